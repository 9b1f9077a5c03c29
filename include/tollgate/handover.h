/*
 * handover.h - reload by hand-over to a fresh process, for both daemons.
 *
 * On SIGHUP a daemon starts a new copy of itself (the same program and
 * command line) with one end of a control socket.  The successor loads
 * its configuration as at start-up and says "ok" or "error TEXT" (and
 * exits); the predecessor logs the refusal and goes on, or stops
 * listening and says "go"; the successor listens and says "ready"; the
 * predecessor drains and exits.  A listening socket may be passed on
 * instead (tollgate-policyd): then the successor serves it at once and
 * "go" only tells it that the predecessor stopped accepting.  See
 * module.h for what this means for modules.  The successor writes the
 * pid file before "ready"; a predecessor that goes on serving after a
 * failure past "go" writes its own pid back (daemon.h).
 */
#ifndef TOLLGATE_HANDOVER_H
#define TOLLGATE_HANDOVER_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* A successor's view: the control socket and an inherited listener. */
struct tg_handover {
	int	fd;		/* control socket; -1: not a successor */
	int	listen_fd;	/* inherited listening socket, or -1 */
};

/*
 * tg_handover_child - in main, before anything else opens descriptors:
 * whether this process is a successor (from its environment, which is
 * then cleaned).  It also notes our binary's path, for successors: the
 * path as at start-up, which after an upgrade is the new binary.
 */
void		tg_handover_child(struct tg_handover *);

/*
 * tg_handover_spawn - start a successor running our own binary with
 * argv, passing listen_fd (or -1).  Returns the control socket, or -1
 * with err set; *pid gets the successor's pid.
 */
int		tg_handover_spawn(char *const *argv, int listen_fd,
		    pid_t *pid, struct tg_err *);

/* tg_handover_send - one message ("ok", "go", "ready", "error ...") */
enum tg_status	tg_handover_send(int fd, const char *, ...) TG_PRINTF(2, 3);

/*
 * tg_handover_recv - wait up to timeout_ms for one message into buf
 * (NUL-terminated).  TG_OK; TG_TEMP on timeout; TG_PERM when the other
 * side closed or failed (buf then says so).
 */
enum tg_status	tg_handover_recv(int fd, char *buf, size_t size,
		    int timeout_ms);

/*
 * tg_handover_reap - after a failed hand-over: collect the successor
 * (waiting up to timeout_ms, then killing it) and describe how it ended.
 */
void		tg_handover_reap(pid_t, int timeout_ms, char *, size_t);

#endif
