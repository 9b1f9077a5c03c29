/*
 * handover - reload by hand-over to a fresh process (see handover.h).
 *
 * The control socket is a SOCK_SEQPACKET pair, so one send is one
 * message.  The successor is forked from a threaded process: between
 * fork and exec the child only sets and clears close-on-exec and execs,
 * all async-signal-safe; its environment is built before the fork.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tollgate/handover.h"

#define TG_HANDOVER_ENV		"TOLLGATE_HANDOVER_FD"
#define TG_HANDOVER_LISTEN_ENV	"TOLLGATE_LISTEN_FD"
#define TG_HANDOVER_MAX		1024	/* bytes in one message */

extern char	**environ;

/* Our binary's path as at start-up; "": not known, use /proc/self/exe. */
static char	tg_handover_exe[4096];

/* tg_handover_env_fd - a descriptor number from the environment, or -1 */
static int
tg_handover_env_fd(const char *name)
{
	const char	*v = getenv(name);
	char		*end;
	long		 n;

	if (v == NULL)
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	(void)unsetenv(name);
	if (errno != 0 || *end != '\0' || n < 3 || n > 65535 ||
	    fcntl((int)n, F_GETFD) == -1)
		return -1;
	(void)fcntl((int)n, F_SETFD, FD_CLOEXEC);
	return (int)n;
}

/* tg_handover_child - see handover.h */
void
tg_handover_child(struct tg_handover *h)
{
	ssize_t	n;

	/*
	 * Now, while it is still there: after an upgrade the link names
	 * the old file "(deleted)", and the path itself the new binary.
	 */
	n = readlink("/proc/self/exe", tg_handover_exe,
	    sizeof(tg_handover_exe) - 1);
	tg_handover_exe[n > 0 ? n : 0] = '\0';
	h->fd = tg_handover_env_fd(TG_HANDOVER_ENV);
	h->listen_fd = tg_handover_env_fd(TG_HANDOVER_LISTEN_ENV);
	if (h->fd == -1 && h->listen_fd != -1) {
		(void)close(h->listen_fd);
		h->listen_fd = -1;
	}
}

/* tg_handover_envp - environ without our variables, plus them */
static char **
tg_handover_envp(int cfd, int listen_fd, char *cbuf, char *lbuf,
    size_t bufsize)
{
	char	**envp;
	size_t	  n, i, j = 0;

	for (n = 0; environ[n] != NULL; n++)
		;
	envp = tg_calloc(n + 3, sizeof(*envp));
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], TG_HANDOVER_ENV "=",
		    sizeof(TG_HANDOVER_ENV)) != 0 &&
		    strncmp(environ[i], TG_HANDOVER_LISTEN_ENV "=",
		    sizeof(TG_HANDOVER_LISTEN_ENV)) != 0)
			envp[j++] = environ[i];
	(void)snprintf(cbuf, bufsize, "%s=%d", TG_HANDOVER_ENV, cfd);
	envp[j++] = cbuf;
	if (listen_fd != -1) {
		(void)snprintf(lbuf, bufsize, "%s=%d", TG_HANDOVER_LISTEN_ENV,
		    listen_fd);
		envp[j++] = lbuf;
	}
	envp[j] = NULL;
	return envp;
}

/* tg_handover_spawn - see handover.h */
int
tg_handover_spawn(char *const *argv, int listen_fd, pid_t *pid,
    struct tg_err *err)
{
	char		 cbuf[64], lbuf[64];
	const char	*exe = tg_handover_exe;
	char		**envp;
	long		 maxfd, fd;
	int		 sv[2];
	pid_t		 p;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		(void)tg_err_set(err, TG_TEMP, "socketpair: %s",
		    strerror(errno));
		return -1;
	}
	/* Our binary by name (the upgraded one), so the name is ours too. */
	if (exe[0] == '\0' || access(exe, X_OK) == -1)
		exe = "/proc/self/exe";
	if ((maxfd = sysconf(_SC_OPEN_MAX)) < 0 || maxfd > INT_MAX)
		maxfd = 65536;
	envp = tg_handover_envp(sv[1], listen_fd, cbuf, lbuf, sizeof(cbuf));
	if ((p = fork()) == -1) {
		(void)tg_err_set(err, TG_TEMP, "fork: %s", strerror(errno));
		free(envp);
		(void)close(sv[0]);
		(void)close(sv[1]);
		return -1;
	}
	if (p == 0) {
		/*
		 * The child: async-signal-safe calls only.  Nothing of ours
		 * but the two descriptors passes on (libraries do not all
		 * set close-on-exec, and a chain of reloads would pile up).
		 */
#ifdef CLOSE_RANGE_CLOEXEC
		if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == -1)
#endif
			/* Linux < 5.11: one by one. */
			for (fd = 3; fd < maxfd; fd++)
				(void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
		(void)fcntl(sv[1], F_SETFD, 0);
		if (listen_fd != -1)
			(void)fcntl(listen_fd, F_SETFD, 0);
		(void)execve(exe, argv, envp);
		_exit(127);
	}
	free(envp);
	(void)close(sv[1]);
	*pid = p;
	return sv[0];
}

/* tg_handover_send - see handover.h */
enum tg_status
tg_handover_send(int fd, const char *fmt, ...)
{
	char	 buf[TG_HANDOVER_MAX];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return TG_PERM;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	while (send(fd, buf, (size_t)n, MSG_NOSIGNAL) == -1)
		if (errno != EINTR)
			return TG_PERM;
	return TG_OK;
}

/* tg_handover_recv - see handover.h */
enum tg_status
tg_handover_recv(int fd, char *buf, size_t size, int timeout_ms)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };
	ssize_t		n;
	int		r;

	while ((r = poll(&pfd, 1, timeout_ms)) == -1 && errno == EINTR)
		;
	if (r == 0) {
		(void)snprintf(buf, size, "no answer in %d ms", timeout_ms);
		return TG_TEMP;
	}
	if (r == -1) {
		(void)snprintf(buf, size, "poll: %s", strerror(errno));
		return TG_PERM;
	}
	while ((n = recv(fd, buf, size - 1, 0)) == -1 && errno == EINTR)
		;
	if (n <= 0) {
		(void)snprintf(buf, size, "%s", n == 0 ? "closed" :
		    strerror(errno));
		return TG_PERM;
	}
	buf[n] = '\0';
	return TG_OK;
}

/* tg_handover_reap - see handover.h */
void
tg_handover_reap(pid_t pid, int timeout_ms, char *buf, size_t size)
{
	struct timespec	 ts = { 0, 20 * 1000 * 1000 };
	int		 status, waited = 0;
	pid_t		 r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0 &&
	    waited < timeout_ms) {
		(void)nanosleep(&ts, NULL);
		waited += 20;
	}
	if (r == 0) {
		(void)kill(pid, SIGKILL);
		r = waitpid(pid, &status, 0);
		(void)snprintf(buf, size, "killed after %d ms", timeout_ms);
		return;
	}
	if (r == -1)
		(void)snprintf(buf, size, "waitpid: %s", strerror(errno));
	else if (WIFEXITED(status))
		(void)snprintf(buf, size, "exited with status %d",
		    WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		(void)snprintf(buf, size, "killed by signal %d",
		    WTERMSIG(status));
	else
		(void)snprintf(buf, size, "ended (status %#x)", status);
}
