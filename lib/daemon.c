/*
 * daemon - background start-up, the pid file and the privilege drop, for
 * both daemons (see daemon.h).  Runs at start-up only, before libmilter
 * or libevent serve anything: tg_fatal is allowed here, and the user
 * database is read with the reentrant calls only out of habit.
 *
 * The drop follows OpenSMTPD: supplementary groups first (initgroups, so
 * a run user in e.g. a key-reading group keeps it), then the group, then
 * the user, all three of real, effective and saved ids, and a check that
 * setuid(0) now fails.
 *
 * The pid file follows the process that serves (systemd's PIDFile=,
 * read again when the main pid exits): it is replaced whole, by rename,
 * a process removes it only while it names that process, and one that
 * serves again after its successor failed writes it back.  Its path is
 * kept in a static: the pid file calls are for one thread at a time.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "tollgate/daemon.h"
#include "tollgate/log.h"

/* Enough for any passwd or group entry we would run as. */
#define TG_PW_BUF	16384

static char	tg_pidfile_path[PATH_MAX];

static int	tg_pidfile_write(const char *);
static bool	tg_pidfile_ours(const char *);
static bool	tg_priv_set(const char *);
static enum tg_status	tg_priv_user(const char *, struct passwd *, char *,
			    struct tg_err *);
static enum tg_status	tg_priv_group(const char *, gid_t *, struct tg_err *);
static enum tg_status	tg_priv_mode(const char *, const char *, mode_t,
			    mode_t *, struct tg_err *);
static enum tg_status	tg_priv_socket(const struct tg_daemon_priv *,
			    struct tg_daemon_ids *, struct tg_err *);
static enum tg_status	tg_priv_run_user(const char *, const char *,
			    struct tg_daemon_ids *, struct tg_err *);
static const char	*tg_socket_path(const char *);

/* tg_daemonize - see daemon.h */
int
tg_daemonize(const char *progname)
{
	char	buf[600];
	ssize_t	n;
	int	fds[2];
	pid_t	pid;

	if (pipe(fds) == -1)
		tg_fatal(EX_OSERR, "pipe");
	if ((pid = fork()) == -1)
		tg_fatal(EX_OSERR, "fork");
	if (pid > 0) {
		(void)close(fds[1]);
		n = read(fds[0], buf, sizeof(buf) - 1);
		if (n == 2 && memcmp(buf, "ok", 2) == 0)
			_exit(0);
		buf[n > 0 ? n : 0] = '\0';
		fprintf(stderr, "%s: %s\n", progname,
		    n > 0 ? buf : "start-up failed");
		_exit(EX_CONFIG);
	}
	(void)close(fds[0]);
	if (setsid() == -1)
		tg_fatal(EX_OSERR, "setsid");
	return fds[1];
}

/* tg_daemon_ready - see daemon.h */
void
tg_daemon_ready(int fd, const char *error)
{
	const char	*msg = error != NULL ? error : "ok";
	int		 null;

	if (fd < 0)
		return;
	(void)!write(fd, msg, strlen(msg));
	(void)close(fd);
	if (error == NULL && (null = open("/dev/null", O_RDWR)) != -1) {
		(void)dup2(null, STDIN_FILENO);
		(void)dup2(null, STDOUT_FILENO);
		(void)dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			(void)close(null);
	}
}

/* tg_daemon_fail - see daemon.h */
void
tg_daemon_fail(int fd, int code, const char *text)
{
	tg_daemon_ready(fd, text);
	tg_fatalx(code, "%s", text);
}

/*
 * tg_pidfile_write - our pid into path, whole: written to a name of our
 * own beside it (same directory, so rename cannot cross file systems;
 * our pid in the name, so a predecessor and its successor never share
 * one), then renamed over it.  A reader sees the old file or the new
 * one, never a half-written one.  The mode is 0666 less the umask.
 * Returns 0 or an errno value.
 */
static int
tg_pidfile_write(const char *path)
{
	char	tmp[PATH_MAX + 32], line[32];
	ssize_t	w;
	int	fd, n, e;

	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path,
	    (long)getpid()) >= (int)sizeof(tmp))
		return ENAMETOOLONG;
	(void)unlink(tmp);	/* left by a crashed process with our pid */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0666)) == -1)
		return errno;
	w = write(fd, line, (size_t)n);
	e = w == n ? 0 : w == -1 ? errno : EIO;
	if (close(fd) == -1 && e == 0)
		e = errno;
	if (e == 0 && rename(tmp, path) == -1)
		e = errno;
	if (e != 0)
		(void)unlink(tmp);
	return e;
}

/* tg_pidfile_ours - whether the file at path names this process */
static bool
tg_pidfile_ours(const char *path)
{
	char	buf[32];
	ssize_t	n;
	long	pid;
	int	fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return tg_parse_long(buf, 1, LONG_MAX, &pid) && pid == (long)getpid();
}

/* tg_daemon_pidfile - see daemon.h */
void
tg_daemon_pidfile(int fd, const char *path)
{
	char	buf[PATH_MAX + 200];
	int	e;

	if (path == NULL || *path == '\0')
		return;
	if (snprintf(tg_pidfile_path, sizeof(tg_pidfile_path), "%s", path) >=
	    (int)sizeof(tg_pidfile_path))
		e = ENAMETOOLONG;
	else
		e = tg_pidfile_write(path);
	if (e != 0) {
		tg_pidfile_path[0] = '\0';
		(void)snprintf(buf, sizeof(buf), "pid file %s: %s%s", path,
		    strerror(e), e == EACCES && geteuid() != 0 ?
		    " (written by the run user: its directory must be "
		    "writable by that user)" : "");
		tg_daemon_fail(fd, EX_CANTCREAT, buf);
	}
}

/* tg_daemon_pidfile_reclaim - see daemon.h */
void
tg_daemon_pidfile_reclaim(void)
{
	int	e;

	if (tg_pidfile_path[0] == '\0' || tg_pidfile_ours(tg_pidfile_path))
		return;
	if ((e = tg_pidfile_write(tg_pidfile_path)) != 0)
		tg_log_warnx(NULL, "pid file %s: cannot write it back: %s",
		    tg_pidfile_path, strerror(e));
	else
		tg_log_notice(NULL, "pid file %s: names this process again",
		    tg_pidfile_path);
}

/* tg_daemon_pidfile_remove - see daemon.h */
void
tg_daemon_pidfile_remove(void)
{
	if (tg_pidfile_path[0] == '\0')
		return;
	/* A successor's, after a hand-over: it is the one systemd follows. */
	if (!tg_pidfile_ours(tg_pidfile_path))
		tg_log_debug(NULL, "pid file %s: names another process; left",
		    tg_pidfile_path);
	else if (unlink(tg_pidfile_path) == -1 && errno != ENOENT)
		tg_log_warn(NULL, "pid file %s: cannot remove", tg_pidfile_path);
	tg_pidfile_path[0] = '\0';
}

/* tg_priv_set - whether an optional setting has a value */
static bool
tg_priv_set(const char *s)
{
	return s != NULL && *s != '\0';
}

/* tg_priv_user - the passwd entry of a user name; buf holds its strings */
static enum tg_status
tg_priv_user(const char *name, struct passwd *pw, char *buf,
    struct tg_err *err)
{
	struct passwd	*res = NULL;
	int		 e;

	e = getpwnam_r(name, pw, buf, TG_PW_BUF, &res);
	if (res == NULL)
		return tg_err_set(err, TG_PERM, "user \"%s\": %s", name,
		    e != 0 ? strerror(e) : "no such user");
	return TG_OK;
}

/* tg_priv_group - the id of a group name */
static enum tg_status
tg_priv_group(const char *name, gid_t *gid, struct tg_err *err)
{
	struct group	 gr, *res = NULL;
	char		*buf = tg_malloc(TG_PW_BUF);
	int		 e;

	e = getgrnam_r(name, &gr, buf, TG_PW_BUF, &res);
	if (res != NULL)
		*gid = gr.gr_gid;
	free(buf);
	if (res == NULL)
		return tg_err_set(err, TG_PERM, "group \"%s\": %s", name,
		    e != 0 ? strerror(e) : "no such group");
	return TG_OK;
}

/* tg_priv_mode - an octal mode no wider than mask, e.g. "0660" */
static enum tg_status
tg_priv_mode(const char *key, const char *text, mode_t mask, mode_t *out,
    struct tg_err *err)
{
	const char	*p;
	unsigned long	 v = 0;

	for (p = text; *p >= '0' && *p <= '7' && p - text < 5; p++)
		v = v * 8 + (unsigned long)(*p - '0');
	if (p == text || *p != '\0' || (v & ~(unsigned long)mask) != 0)
		return tg_err_set(err, TG_PERM, "%s: bad mode \"%s\" (octal, "
		    "at most %04o)", key, text, (unsigned int)mask);
	*out = (mode_t)v;
	return TG_OK;
}

/* tg_priv_socket - owner, group and mode of a unix socket */
static enum tg_status
tg_priv_socket(const struct tg_daemon_priv *p, struct tg_daemon_ids *ids,
    struct tg_err *err)
{
	struct passwd	 pw;
	struct tg_err	 e;
	char		*buf, key[64];
	enum tg_status	 st = TG_OK;

	ids->sock_uid = ids->uid;
	ids->sock_gid = ids->gid;
	if (tg_priv_set(p->socket_owner)) {
		buf = tg_malloc(TG_PW_BUF);
		st = tg_priv_user(p->socket_owner, &pw, buf, &e);
		if (st == TG_OK)
			ids->sock_uid = pw.pw_uid;
		free(buf);
		if (st != TG_OK)
			return tg_err_set(err, st, "[%s] socket_owner: %s",
			    p->section, e.text);
	}
	if (tg_priv_set(p->socket_group) &&
	    tg_priv_group(p->socket_group, &ids->sock_gid, &e) != TG_OK)
		return tg_err_set(err, TG_PERM, "[%s] socket_group: %s",
		    p->section, e.text);
	(void)snprintf(key, sizeof(key), "[%s] socket_mode", p->section);
	return tg_priv_mode(key, tg_priv_set(p->socket_mode) ?
	    p->socket_mode : "0660", 0777, &ids->sock_mode, err);
}

/* tg_priv_run_user - ids of "user" or "user:group" (group: a default) */
static enum tg_status
tg_priv_run_user(const char *spec, const char *group,
    struct tg_daemon_ids *ids, struct tg_err *err)
{
	struct passwd	 pw;
	const char	*colon = strchr(spec, ':');
	char		*buf;
	enum tg_status	 st;

	if (snprintf(ids->user, sizeof(ids->user), "%.*s", colon != NULL ?
	    (int)(colon - spec) : (int)strlen(spec), spec) >=
	    (int)sizeof(ids->user) || ids->user[0] == '\0')
		return tg_err_set(err, TG_PERM, "user \"%s\": bad name", spec);
	if (colon != NULL)
		group = colon + 1;
	buf = tg_malloc(TG_PW_BUF);
	st = tg_priv_user(ids->user, &pw, buf, err);
	if (st == TG_OK) {
		ids->uid = pw.pw_uid;
		ids->gid = pw.pw_gid;
	}
	free(buf);
	if (st != TG_OK)
		return st;
	if (tg_priv_set(group))
		return tg_priv_group(group, &ids->gid, err);
	return TG_OK;
}

/* tg_daemon_priv_resolve - see daemon.h */
enum tg_status
tg_daemon_priv_resolve(const struct tg_daemon_priv *p,
    struct tg_daemon_ids *ids, struct tg_err *err)
{
	memset(ids, 0, sizeof(*ids));
	ids->uid = geteuid();
	ids->gid = getegid();
	if (tg_priv_mode("[core] umask", tg_priv_set(p->umask) ? p->umask :
	    "007", 0777, &ids->umask, err) != TG_OK)
		return TG_PERM;
	if (!tg_priv_set(p->user)) {
		if (ids->uid == 0 && !p->allow_root)
			return tg_err_set(err, TG_PERM, "refusing to run as "
			    "root: set the user to run as (-u user[:group] "
			    "or [core] user), or [core] allow_root = yes");
	} else {
		if (tg_priv_run_user(p->user, p->group, ids, err) != TG_OK)
			return TG_PERM;
		if (ids->uid == 0 && !p->allow_root)
			return tg_err_set(err, TG_PERM, "refusing to run as "
			    "root (user %s): set [core] allow_root = yes",
			    ids->user);
		/* Not root: only "switching" to ourselves is possible. */
		if (geteuid() == 0)
			ids->drop = true;
		else if (ids->uid != geteuid() || ids->gid != getegid())
			return tg_err_set(err, TG_PERM, "cannot switch to user "
			    "%s: not running as root", ids->user);
	}
	if (tg_priv_socket(p, ids, err) != TG_OK)
		return TG_PERM;
	(void)umask(0177);
	return TG_OK;
}

/* tg_socket_path - the file system path of a listen spec, or NULL */
static const char *
tg_socket_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	return spec[0] == '/' ? spec : NULL;
}

/* tg_daemon_socket_perms - see daemon.h */
void
tg_daemon_socket_perms(int fd, const struct tg_daemon_ids *ids,
    const char *spec)
{
	const char	*path = tg_socket_path(spec);
	struct stat	 st;
	char		 buf[600];
	uid_t		 uid = ids->sock_uid;
	gid_t		 gid = ids->sock_gid;
	bool		 root = geteuid() == 0;

	if (path == NULL)
		return;
	/*
	 * Change only what differs: not root (started as the user, or a
	 * reload's successor), chown works only for a group we are in,
	 * but a set-group-ID directory may already have given the socket
	 * its group.
	 */
	if (lstat(path, &st) == 0) {
		if (st.st_uid == uid)
			uid = (uid_t)-1;
		if (st.st_gid == gid)
			gid = (gid_t)-1;
	}
	if (((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    chown(path, uid, gid) == -1) || chmod(path, ids->sock_mode) == -1) {
		(void)snprintf(buf, sizeof(buf), "socket %s: cannot set owner "
		    "%ld:%ld mode %04o: %s%s", path, (long)ids->sock_uid,
		    (long)ids->sock_gid, (unsigned int)ids->sock_mode,
		    strerror(errno), root ? "" : " (not root: the user must "
		    "be a member of socket_group, or the directory set-group-ID "
		    "to it)");
		tg_daemon_fail(fd, EX_NOPERM, buf);
	}
}

/* Files made as root that the run user must own (tg_daemon_own). */
static pthread_mutex_t	  tg_daemon_own_lock = PTHREAD_MUTEX_INITIALIZER;
static char		**tg_daemon_owned;
static size_t		  tg_daemon_nowned;

/* tg_daemon_own - see daemon.h */
void
tg_daemon_own(const char *path)
{
	if (geteuid() != 0)
		return;
	(void)pthread_mutex_lock(&tg_daemon_own_lock);
	tg_daemon_owned = tg_reallocarray(tg_daemon_owned,
	    tg_daemon_nowned + 1, sizeof(*tg_daemon_owned));
	tg_daemon_owned[tg_daemon_nowned++] = tg_strdup(path);
	(void)pthread_mutex_unlock(&tg_daemon_own_lock);
}

/*
 * tg_daemon_own_all - give the files noted to the run user, before the
 * drop.  Only what root owns, not through a link (the directory may be
 * the user's): a directory, or a regular file with one name.
 */
static void
tg_daemon_own_all(const struct tg_daemon_ids *ids)
{
	struct stat	 sb;
	size_t		 i;
	int		 fd;

	(void)pthread_mutex_lock(&tg_daemon_own_lock);
	for (i = 0; i < tg_daemon_nowned; i++) {
		fd = open(tg_daemon_owned[i], O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (fd == -1 || fstat(fd, &sb) == -1 || (sb.st_uid == 0 &&
		    (S_ISDIR(sb.st_mode) || (S_ISREG(sb.st_mode) &&
		    sb.st_nlink == 1)) && fchown(fd, ids->uid, ids->gid) ==
		    -1)) {
			if (fd != -1 || errno != ENOENT)
				tg_log_warn(NULL, "cannot give %s to user %s "
				    "(a reload will fail)", tg_daemon_owned[i],
				    ids->user);
		}
		if (fd != -1)
			(void)close(fd);
		free(tg_daemon_owned[i]);
	}
	free(tg_daemon_owned);
	tg_daemon_owned = NULL;
	tg_daemon_nowned = 0;
	(void)pthread_mutex_unlock(&tg_daemon_own_lock);
}

/* tg_daemon_drop - see daemon.h */
void
tg_daemon_drop(int fd, const struct tg_daemon_ids *ids)
{
	uid_t	 ru, eu, su;
	gid_t	 rg, eg, sg;
	char	 buf[600];

	if (ids->drop) {
		tg_daemon_own_all(ids);
		if (initgroups(ids->user, ids->gid) == -1 ||
		    setresgid(ids->gid, ids->gid, ids->gid) == -1 ||
		    setresuid(ids->uid, ids->uid, ids->uid) == -1) {
			(void)snprintf(buf, sizeof(buf), "cannot switch to "
			    "user %s (uid %ld gid %ld): %s", ids->user,
			    (long)ids->uid, (long)ids->gid, strerror(errno));
			tg_daemon_fail(fd, EX_NOPERM, buf);
		}
		/* The drop must be final: no saved id may lead back. */
		if (getresuid(&ru, &eu, &su) == -1 ||
		    getresgid(&rg, &eg, &sg) == -1 || ru != ids->uid ||
		    eu != ids->uid || su != ids->uid || rg != ids->gid ||
		    eg != ids->gid || sg != ids->gid ||
		    (ids->uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)))
			tg_daemon_fail(fd, EX_SOFTWARE, "privilege drop is not "
			    "final: root can be regained");
		tg_log_notice(NULL, "running as user %s uid=%ld gid=%ld",
		    ids->user, (long)ids->uid, (long)ids->gid);
	} else if (geteuid() == 0)
		tg_log_warnx(NULL, "running as root (allow_root = yes)");
	(void)umask(ids->umask);
}
