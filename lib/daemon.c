/*
 * daemon - background start-up and the pid file, for both daemons (see
 * daemon.h).  Runs at start-up only, before any thread: tg_fatal is
 * allowed here.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "tollgate/daemon.h"
#include "tollgate/log.h"

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

/* tg_daemon_pidfile - see daemon.h */
void
tg_daemon_pidfile(int fd, const char *path)
{
	char	 buf[600];
	FILE	*fp;

	if (path == NULL || *path == '\0')
		return;
	if ((fp = fopen(path, "w")) == NULL || fprintf(fp, "%ld\n",
	    (long)getpid()) < 0 || fclose(fp) != 0) {
		(void)snprintf(buf, sizeof(buf), "%s: %s", path,
		    strerror(errno));
		tg_daemon_fail(fd, EX_CANTCREAT, buf);
	}
}
