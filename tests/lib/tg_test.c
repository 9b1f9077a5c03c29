/*
 * tg_test - helpers shared by the modules' unit tests (see tg_test.h).
 * Modules log from libmilter-like threads in some tests, so the capture
 * buffer is locked; tg_test_log is read after the threads are joined.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tg_test.h"
#include "tollgate/buf.h"
#include "tollgate/log.h"
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
