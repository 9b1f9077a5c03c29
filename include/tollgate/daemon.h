/*
 * daemon.h - start-up of the daemons (tollgate-milter, tollgate-policyd):
 * going into the background so that the operator still sees why
 * start-up failed, the pid file, and privileges.
 *
 * tg_daemonize forks before any thread exists; the parent waits on a
 * pipe until the child reports with tg_daemon_ready (start-up went
 * well: the parent exits 0) or tg_daemon_fail (the parent prints the
 * reason and exits EX_CONFIG), so the exit status of the command tells.
 * In the foreground the descriptor is -1 and both only log or return.
 *
 * Privileges.  A daemon starts as root, loads its configuration (keys
 * are read then), resolves the run user with tg_daemon_priv_resolve,
 * opens its listening socket, gives a unix socket its owner and mode
 * with tg_daemon_socket_perms, and calls tg_daemon_drop, which switches
 * to the run user for good; the pid file is written after that, so the
 * unprivileged daemon can remove it at exit.  Anything read later (a
 * SIGHUP reload) is read as the run user.  Root without a run user is
 * refused unless allow_root says otherwise.
 */
#ifndef TOLLGATE_DAEMON_H
#define TOLLGATE_DAEMON_H

#include <sys/types.h>

#include <stdbool.h>

#include "util.h"

/* tg_daemonize - fork and setsid; returns the child's end of the pipe */
int		tg_daemonize(const char *progname);
/* tg_daemon_ready - report success (error NULL) or error; stdio to
 * /dev/null on success */
void		tg_daemon_ready(int fd, const char *error);
/* tg_daemon_fail - a start-up failure: report it, log it, exit code */
TG_NORETURN void tg_daemon_fail(int fd, int code, const char *text);
/*
 * The pid file names the process that serves, for systemd (PIDFile=,
 * read again when the main pid exits) and for kill -HUP $(cat ...).
 * A reload's successor writes it before its predecessor exits; each
 * write replaces the file whole (a temporary file renamed over it), so
 * a reader never sees half of one.  Not thread-safe: one thread at a
 * time calls these.
 */
/* tg_daemon_pidfile - write our pid to path ("" or NULL: none), or
 * fail; the path is kept for _reclaim and _remove */
void		tg_daemon_pidfile(int fd, const char *path);
/* tg_daemon_pidfile_reclaim - serving again after a successor failed
 * (it may have written its pid, or removed the file): write ours back
 * unless the file names us already; a failure is logged */
void		tg_daemon_pidfile_reclaim(void);
/* tg_daemon_pidfile_remove - at exit: remove the pid file if it still
 * names this process (after a hand-over it names the successor) */
void		tg_daemon_pidfile_remove(void);

/*
 * What the configuration and the command line say about privileges.
 * Strings are borrowed; "" and NULL mean unset.  user may be
 * "user:group" (the -u option), which overrides group.  section names
 * the configuration section of the socket keys, for messages.
 */
struct tg_daemon_priv {
	const char	*user;		/* unset: keep the current user */
	const char	*group;		/* unset: the user's login group */
	const char	*umask;		/* octal, after the drop */
	bool		 allow_root;	/* root with no user is allowed */
	const char	*socket_owner;	/* unix socket; unset: run user */
	const char	*socket_group;	/* unset: the run group */
	const char	*socket_mode;	/* octal */
	const char	*section;	/* "milter", "policyd" */
};

/* The resolved identities, from tg_daemon_priv_resolve. */
struct tg_daemon_ids {
	bool	 drop;			/* switch to uid, gid */
	uid_t	 uid;
	gid_t	 gid;
	char	 user[64];		/* for initgroups and the log */
	uid_t	 sock_uid;
	gid_t	 sock_gid;
	mode_t	 sock_mode;
	mode_t	 umask;
};

/*
 * tg_daemon_priv_resolve - look up users and groups and parse the
 * modes.  TG_PERM with a message for the operator when a name is
 * unknown, a mode is malformed, root would keep running with no user
 * and allow_root off, or a non-root process is asked to become another
 * user.  On success it also sets the umask to 0177 so that a socket
 * created before tg_daemon_socket_perms is never more open than wanted.
 */
enum tg_status	tg_daemon_priv_resolve(const struct tg_daemon_priv *,
		    struct tg_daemon_ids *, struct tg_err *);
/* tg_daemon_socket_perms - owner, group and mode of a unix socket
 * ("unix:PATH", "local:PATH" or "/PATH"; other specs are left alone),
 * or fail.  Not root (a reload's successor, or started as the user),
 * only a group the user is a member of can be given. */
void		tg_daemon_socket_perms(int fd, const struct tg_daemon_ids *,
		    const char *spec);
/* tg_daemon_own - note a file or directory made now, as root, that
 * the run user must own (an embedded store's: a reload's successor and
 * other processes as the user open it); tg_daemon_drop gives it to the
 * user.  Not root: nothing to do.  Thread-safe. */
void		tg_daemon_own(const char *path);
/* tg_daemon_drop - give what tg_daemon_own noted to the run user,
 * switch to it and its groups for good (checked: root cannot be
 * regained), set the umask; or fail */
void		tg_daemon_drop(int fd, const struct tg_daemon_ids *);

#endif
