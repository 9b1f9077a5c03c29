/*
 * util.h - tollgate's basic vocabulary: statuses, errors, allocators,
 * checked parsers and the compiler-extension macros.
 *
 * The allocators never return NULL: they log and abort when memory runs
 * out, so callers do not check.
 */
#ifndef TOLLGATE_UTIL_H
#define TOLLGATE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#define TG_NORETURN	__attribute__((noreturn))
#define TG_UNUSED	__attribute__((unused))
#define TG_NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/* Result of anything that can fail because of the outside world. */
enum tg_status {
	TG_OK = 0,
	TG_NOTFOUND,		/* a definite "no such thing" */
	TG_TEMP,		/* try again later: timeout, server failure */
	TG_PERM			/* permanent: malformed, refused */
};

/* An error class plus text, filled by a callee for its caller to log. */
struct tg_err {
	enum tg_status	 status;
	char		 text[512];
};

/* tg_err_set - fill err (which may be NULL) and return status */
enum tg_status	tg_err_set(struct tg_err *, enum tg_status, const char *, ...)
		    TG_PRINTF(3, 4);

/* tg_status_name - "ok", "notfound", "temp" or "perm" */
const char	*tg_status_name(enum tg_status);

#define TG_PANIC(...)	tg_panic(__FILE__, __LINE__, __VA_ARGS__)
TG_NORETURN void tg_panic(const char *, int, const char *, ...)
		    TG_PRINTF(3, 4);

void	*tg_malloc(size_t);
void	*tg_calloc(size_t, size_t);	/* checks n * size for overflow */
void	*tg_realloc(void *, size_t);
void	*tg_reallocarray(void *, size_t, size_t);
char	*tg_strdup(const char *);
char	*tg_strndup(const char *, size_t);
char	*tg_printf_dup(const char *, ...) TG_PRINTF(1, 2);
/* tg_strv_free - free a NULL-terminated list of strings; NULL-safe,
 * returns NULL */
char	**tg_strv_free(char **);

/*
 * Checked parsers: they accept the whole string or nothing, and return
 * false (leaving *out alone) on syntax errors or values out of [min, max].
 */
bool	tg_parse_long(const char *, long, long, long *);
/* "30", "30s", "5m", "2h", "1d", "1w": seconds */
bool	tg_parse_duration(const char *, long, long, long *);
/* "512", "512k", "10m", "1g": bytes */
bool	tg_parse_size(const char *, long, long, long *);
/* "yes"/"no", "true"/"false", "on"/"off", "1"/"0" */
bool	tg_parse_bool(const char *, bool *);

/* ASCII case-insensitive comparisons, independent of locale. */
int	tg_strcasecmp(const char *, const char *);
int	tg_strncasecmp(const char *, const char *, size_t);

/* tg_trim - strip ASCII white space at both ends, in place */
char	*tg_trim(char *);

/* tg_read_file - whole file into a NUL-terminated string the caller owns */
enum tg_status	tg_read_file(const char *, char **, size_t *, struct tg_err *);

/*
 * tg_put_be64, tg_get_be64 - a 64-bit number as 8 big-endian bytes, the
 * form in which store keys sort by number
 */
static inline void
tg_put_be64(unsigned char *p, uint64_t v)
{
	int	i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static inline uint64_t
tg_get_be64(const unsigned char *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

#endif
