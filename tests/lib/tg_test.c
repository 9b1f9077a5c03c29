/*
 * tg_test - helpers shared by the modules' unit tests (see tg_test.h).
 * Modules log from libmilter-like threads in some tests, so the capture
 * buffer is locked; tg_test_log is read after the threads are joined.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tg_test.h"
#include "tollgate/buf.h"
#include "tollgate/log.h"
#include "tollgate/store.h"
#include "tollgate/util.h"

static struct tg_buf	tg_test_logbuf;
static pthread_mutex_t	tg_test_loglock = PTHREAD_MUTEX_INITIALIZER;

/* tg_test_sink - one captured log line */
static void
tg_test_sink(enum tg_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	(void)pthread_mutex_lock(&tg_test_loglock);
	tg_buf_puts(&tg_test_logbuf, line);
	tg_buf_putc(&tg_test_logbuf, '\n');
	(void)pthread_mutex_unlock(&tg_test_loglock);
}

/* tg_test_log_init - capture log lines from now on */
void
tg_test_log_init(void)
{
	tg_buf_init(&tg_test_logbuf);
	tg_log_set_sink(tg_test_sink, NULL);
}

/* tg_test_log_fini - stop capturing */
void
tg_test_log_fini(void)
{
	tg_log_set_sink(NULL, NULL);
	tg_buf_fini(&tg_test_logbuf);
}

/* tg_test_log_reset - forget the captured lines */
void
tg_test_log_reset(void)
{
	(void)pthread_mutex_lock(&tg_test_loglock);
	tg_buf_reset(&tg_test_logbuf);
	(void)pthread_mutex_unlock(&tg_test_loglock);
}

/* tg_test_log - the captured lines */
const char *
tg_test_log(void)
{
	return tg_buf_cstr(&tg_test_logbuf);
}

/* tg_test_zone_txt - see tg_test.h (RFC 1035 3.3.14: 255-byte strings) */
char *
tg_test_zone_txt(const char *name, const char *value)
{
	struct tg_buf	b;
	size_t		i, j, n = strlen(value);

	tg_buf_init(&b);
	tg_buf_printf(&b, "%s%s 300 IN TXT", name,
	    name[strlen(name) - 1] == '.' ? "" : ".");
	for (i = 0; i == 0 || i < n; i += 255) {
		tg_buf_puts(&b, " \"");
		for (j = i; j < n && j < i + 255; j++) {
			if (value[j] == '"' || value[j] == '\\')
				tg_buf_putc(&b, '\\');
			tg_buf_putc(&b, value[j]);
		}
		tg_buf_putc(&b, '"');
	}
	tg_buf_putc(&b, '\n');
	return tg_buf_steal(&b);
}

/* tg_test_write - see tg_test.h */
bool
tg_test_write(const char *dir, const char *name, const char *text)
{
	char	*path;
	size_t	 len = strlen(text);
	int	 fd;
	bool	 ok;

	path = tg_printf_dup("%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	free(path);
	if (fd == -1)
		return false;
	ok = write(fd, text, len) == (ssize_t)len;
	return close(fd) == 0 && ok;
}

/* tg_test_rmtree - see tg_test.h; the name is one we made, quoted */
bool
tg_test_rmtree(const char *dir)
{
	char	*cmd;
	bool	 ok;

	if (strchr(dir, '\'') != NULL)
		return false;
	cmd = tg_printf_dup("rm -rf '%s'", dir);
	ok = system(cmd) == 0;
	free(cmd);
	return ok;
}

/* tg_test_redis_free_port - a loopback port nobody listens on now, or -1 */
static int
tg_test_redis_free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	(void)close(fd);
	return port;
}

/* tg_test_redis_cmd - see tg_test.h; only the reply's type byte matters */
int
tg_test_redis_cmd(const struct tg_test_redis *r, const char *cmd)
{
	struct timeval		 tv = { 1, 0 };
	struct sockaddr_in	 sin;
	char			*line, c;
	size_t			 len;
	int			 fd, ok = -1;

	if (r->port <= 0 || (fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)r->port);
	line = tg_printf_dup("%s\r\n", cmd);
	len = strlen(line);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    send(fd, line, len, MSG_NOSIGNAL) == (ssize_t)len &&
	    recv(fd, &c, 1, 0) == 1)
		ok = c == '-' ? -1 : 0;
	free(line);
	(void)close(fd);
	return ok;
}

/* tg_test_redis_start - see tg_test.h */
int
tg_test_redis_start(struct tg_test_redis *r, const char *dir, int port)
{
	struct timespec	ts = { 0, 10 * 1000 * 1000 };
	char		portstr[16];
	int		i, fd;

	if (port == 0 && (port = tg_test_redis_free_port()) == -1)
		return -1;
	r->port = port;
	(void)snprintf(portstr, sizeof(portstr), "%d", port);
	if ((r->pid = fork()) == -1)
		return -1;
	if (r->pid == 0) {
		if ((fd = open("/dev/null", O_WRONLY)) != -1) {
			(void)dup2(fd, 1);
			(void)dup2(fd, 2);
		}
		execlp("redis-server", "redis-server", "--port", portstr,
		    "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		    "--dir", dir, "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		if (tg_test_redis_cmd(r, "PING") == 0)
			return port;
		if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
			r->pid = -1;
			return -1;
		}
		(void)nanosleep(&ts, NULL);
	}
	tg_test_redis_stop(r);
	return -1;
}

/* tg_test_redis_stop - see tg_test.h */
void
tg_test_redis_stop(struct tg_test_redis *r)
{
	if (r->pid <= 0)
		return;
	(void)kill(r->pid, SIGKILL);
	(void)waitpid(r->pid, NULL, 0);
	r->pid = -1;
}

/* tg_test_store_open - see tg_test.h */
struct tg_store *
tg_test_store_open(enum tg_store_backend backend, const char *path,
    const char *url, struct tg_err *err)
{
	struct tg_store_conf	conf;

	memset(&conf, 0, sizeof(conf));
	conf.backend = backend;
	conf.path = path;
	conf.url = url;
	conf.timeout_ms = 1000;
	conf.breaker_failures = 1000;
	conf.breaker_interval_ms = 10;
	conf.map_size = 64 << 20;
	return tg_store_open(&conf, err);
}

int
tg_test_redis_start_url(struct tg_test_redis *r, const char *dir, char *url,
    size_t urlsz)
{
	int	port;

	if ((port = tg_test_redis_start(r, dir, 0)) == -1)
		return -1;
	(void)snprintf(url, urlsz, "redis://127.0.0.1:%d/0", port);
	return 0;
}
