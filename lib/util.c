/*
 * util - allocators that never fail, checked parsers, error records.
 *
 * The allocators abort the process when memory runs out: a mail filter
 * that cannot allocate a few bytes cannot do anything useful, and the
 * MTA's milter_default_action decides what happens to mail meanwhile.
 * Everything here is thread-safe.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tollgate/log.h"
#include "tollgate/util.h"

static TG_NORETURN void tg_oom(size_t);

/* tg_oom - report an allocation failure and abort */
static void
tg_oom(size_t n)
{
	tg_panic(__FILE__, __LINE__, "out of memory allocating %zu bytes", n);
}

/* tg_malloc - malloc that never returns NULL */
void *
tg_malloc(size_t n)
{
	void	*p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		tg_oom(n);
	return p;
}

/* tg_calloc - calloc that checks n * size and never returns NULL */
void *
tg_calloc(size_t n, size_t size)
{
	void	*p;

	if (n == 0 || size == 0)
		n = size = 1;
	if ((p = calloc(n, size)) == NULL)
		tg_oom(n * size);
	return p;
}

/* tg_realloc - realloc that never returns NULL */
void *
tg_realloc(void *p, size_t n)
{
	void	*q;

	if ((q = realloc(p, n == 0 ? 1 : n)) == NULL)
		tg_oom(n);
	return q;
}

/* tg_reallocarray - realloc of n * size with an overflow check */
void *
tg_reallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		TG_PANIC("allocation overflow: %zu * %zu", n, size);
	return tg_realloc(p, n * size);
}

/* tg_strdup - strdup that never returns NULL */
char *
tg_strdup(const char *s)
{
	return tg_strndup(s, strlen(s));
}

/* tg_strv_free - see util.h */
char **
tg_strv_free(char **v)
{
	size_t	i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
	return NULL;
}

/* tg_strndup - a copy of at most n bytes of s, NUL-terminated */
char *
tg_strndup(const char *s, size_t n)
{
	size_t	 len;
	char	*p;

	len = strnlen(s, n);
	p = tg_malloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* tg_printf_dup - a formatted string the caller owns */
char *
tg_printf_dup(const char *fmt, ...)
{
	va_list	 ap;
	char	*p;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		tg_oom(strlen(fmt));
	return p;
}

/* tg_err_set - fill err if given and return status */
enum tg_status
tg_err_set(struct tg_err *err, enum tg_status status, const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL)
		return status;
	err->status = status;
	va_start(ap, fmt);
	(void)vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return status;
}

/* tg_status_name - short name of a status, for logs */
const char *
tg_status_name(enum tg_status status)
{
	switch (status) {
	case TG_OK:
		return "ok";
	case TG_NOTFOUND:
		return "notfound";
	case TG_TEMP:
		return "temp";
	case TG_PERM:
		return "perm";
	}
	return "unknown";
}

/* tg_panic - a broken invariant: log where, then abort */
void
tg_panic(const char *file, int line, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tg_log(TG_LOG_ERR, NULL, false, "panic: %s:%d: %s", file, line, msg);
	abort();
}

/* tg_parse_long - a whole decimal string within [min, max] */
bool
tg_parse_long(const char *s, long min, long max, long *out)
{
	char	*end;
	long	 v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* tg_parse_scaled - a number with an optional unit letter from units */
static bool
tg_parse_scaled(const char *s, const char *units, const long *factors,
    long min, long max, long *out)
{
	char		 num[32];
	const char	*u;
	size_t		 len;
	long		 v, f = 1;

	if (s == NULL || (len = strlen(s)) == 0 || len >= sizeof(num))
		return false;
	memcpy(num, s, len + 1);
	if (isalpha((unsigned char)num[len - 1])) {
		if ((u = strchr(units, tolower((unsigned char)num[len - 1]))) ==
		    NULL)
			return false;
		f = factors[u - units];
		num[len - 1] = '\0';
	}
	if (!tg_parse_long(num, 0, LONG_MAX, &v) || v > LONG_MAX / f)
		return false;
	v *= f;
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* tg_parse_duration - seconds, with an optional s m h d w unit */
bool
tg_parse_duration(const char *s, long min, long max, long *out)
{
	static const long f[] = { 1, 60, 3600, 86400, 604800 };

	return tg_parse_scaled(s, "smhdw", f, min, max, out);
}

/* tg_parse_size - bytes, with an optional k m g unit */
bool
tg_parse_size(const char *s, long min, long max, long *out)
{
	static const long f[] = { 1024L, 1024L * 1024, 1024L * 1024 * 1024 };

	return tg_parse_scaled(s, "kmg", f, min, max, out);
}

/* tg_parse_bool - yes/no and its usual spellings */
bool
tg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t	i;

	for (i = 0; i < TG_NITEMS(yes); i++) {
		if (tg_strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (tg_strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* tg_lower - ASCII tolower, independent of locale */
static int
tg_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* tg_strcasecmp - ASCII case-insensitive comparison */
int
tg_strcasecmp(const char *a, const char *b)
{
	return tg_strncasecmp(a, b, SIZE_MAX);
}

/* tg_strncasecmp - ASCII case-insensitive comparison of at most n bytes */
int
tg_strncasecmp(const char *a, const char *b, size_t n)
{
	int	d;

	for (; n > 0; a++, b++, n--) {
		d = tg_lower((unsigned char)*a) - tg_lower((unsigned char)*b);
		if (d != 0 || *a == '\0')
			return d;
	}
	return 0;
}

/* tg_trim - strip ASCII white space at both ends, in place */
char *
tg_trim(char *s)
{
	size_t	len;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
	    s[len - 1] == '\r' || s[len - 1] == '\n'))
		s[--len] = '\0';
	return s;
}

/* tg_read_file - read a whole file into a NUL-terminated string */
enum tg_status
tg_read_file(const char *path, char **out, size_t *lenp, struct tg_err *err)
{
	struct stat	 st;
	char		*p;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return tg_err_set(err, errno == ENOENT ? TG_NOTFOUND : TG_PERM,
		    "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		(void)close(fd);
		return tg_err_set(err, TG_PERM, "%s: not a regular file", path);
	}
	p = tg_malloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size &&
	    (n = read(fd, p + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	(void)close(fd);
	if (len != (size_t)st.st_size) {
		free(p);
		return tg_err_set(err, TG_PERM, "%s: short read", path);
	}
	p[len] = '\0';
	*out = p;
	if (lenp != NULL)
		*lenp = len;
	return TG_OK;
}
