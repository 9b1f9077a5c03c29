/*
 * daemon.h - start-up of the daemons (tollgate-milter, tollgate-policyd):
 * going into the background so that the operator still sees why
 * start-up failed, and the pid file.
 *
 * tg_daemonize forks before any thread exists; the parent waits on a
 * pipe until the child reports with tg_daemon_ready (start-up went
 * well: the parent exits 0) or tg_daemon_fail (the parent prints the
 * reason and exits EX_CONFIG), so the exit status of the command tells.
 * In the foreground the descriptor is -1 and both only log or return.
 */
#ifndef TOLLGATE_DAEMON_H
#define TOLLGATE_DAEMON_H

#include "util.h"

/* tg_daemonize - fork and setsid; returns the child's end of the pipe */
int		tg_daemonize(const char *progname);
/* tg_daemon_ready - report success (error NULL) or error; stdio to
 * /dev/null on success */
void		tg_daemon_ready(int fd, const char *error);
/* tg_daemon_fail - a start-up failure: report it, log it, exit code */
TG_NORETURN void tg_daemon_fail(int fd, int code, const char *text);
/* tg_daemon_pidfile - write our pid to path ("" or NULL: none), or fail */
void		tg_daemon_pidfile(int fd, const char *path);

#endif
