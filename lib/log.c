/*
 * log - syslog or stderr, one line per call.
 *
 * The level is checked before anything is formatted.  Each line gets the
 * message's prefix (queue id and current module, from the pipeline's
 * prefix function) and is made printable: control and 8-bit bytes become
 * \xHH and the line is cut at TG_LOG_MAX bytes, since much of what we log
 * comes from remote peers.  Thread-safe: stderr lines are written with one
 * write(2); the rate limiter and sink switch take a mutex.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "tollgate/log.h"

#define TG_LOG_MAX	2000

const char *const tg_log_level_names[] = {
	"err", "warn", "notice", "info", "debug", NULL
};

static const int tg_log_syslog_prio[] = {
	LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG
};

static struct {
	enum tg_log_level	 level;
	bool			 to_stderr;
	tg_log_sink		 sink;
	void			*sink_arg;
	tg_log_prefix_fn	 prefix;
} tg_log_state = { TG_LOG_INFO, true, NULL, NULL, NULL };

static pthread_mutex_t tg_log_mutex = PTHREAD_MUTEX_INITIALIZER;

/* tg_log_open - choose syslog (with ident) or stderr */
void
tg_log_open(const char *ident, bool to_stderr)
{
	tg_log_state.to_stderr = to_stderr;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* tg_log_set_level - lines above this level are dropped unformatted */
void
tg_log_set_level(enum tg_log_level level)
{
	tg_log_state.level = level;
}

/* tg_log_enabled - whether a line at this level would be written */
bool
tg_log_enabled(enum tg_log_level level)
{
	return level <= tg_log_state.level;
}

/* tg_log_set_sink - send lines to a test's function instead */
void
tg_log_set_sink(tg_log_sink sink, void *arg)
{
	pthread_mutex_lock(&tg_log_mutex);
	tg_log_state.sink = sink;
	tg_log_state.sink_arg = arg;
	pthread_mutex_unlock(&tg_log_mutex);
}

/* tg_log_set_prefix_fn - how to name the message a line is about */
void
tg_log_set_prefix_fn(tg_log_prefix_fn fn)
{
	tg_log_state.prefix = fn;
}

/* tg_log_escape - printable copy of src into dst (size n, n > 4) */
static void
tg_log_escape(char *dst, size_t n, const char *src)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*s = (const unsigned char *)src;
	size_t			 o = 0;

	for (; *s != '\0' && o + 5 < n; s++) {
		if (*s >= 0x20 && *s < 0x7f) {
			dst[o++] = (char)*s;
			continue;
		}
		dst[o++] = '\\';
		dst[o++] = 'x';
		dst[o++] = hex[*s >> 4];
		dst[o++] = hex[*s & 0xf];
	}
	if (*s != '\0' && o + 4 < n) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

/* tg_log_emit - write one finished line to its destination */
static void
tg_log_emit(enum tg_log_level level, const char *line)
{
	char	out[TG_LOG_MAX + 64];
	int	n;

	pthread_mutex_lock(&tg_log_mutex);
	if (tg_log_state.sink != NULL) {
		tg_log_state.sink(level, line, tg_log_state.sink_arg);
		pthread_mutex_unlock(&tg_log_mutex);
		return;
	}
	pthread_mutex_unlock(&tg_log_mutex);
	if (!tg_log_state.to_stderr) {
		syslog(tg_log_syslog_prio[level], "%s", line);
		return;
	}
	n = snprintf(out, sizeof(out), "%s: %s\n", tg_log_level_names[level],
	    line);
	if (n > 0)
		(void)!write(STDERR_FILENO, out,
		    (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1);
}

/* tg_vlog - format, escape and write one line */
void
tg_vlog(enum tg_log_level level, struct tg_ctx *ctx, bool with_errno,
    const char *fmt, va_list ap)
{
	char	raw[TG_LOG_MAX], safe[TG_LOG_MAX], prefix[128] = "";
	char	line[TG_LOG_MAX + sizeof(prefix) + 128];
	int	saved = errno;

	if (!tg_log_enabled(level))
		return;
	(void)vsnprintf(raw, sizeof(raw), fmt, ap);
	tg_log_escape(safe, sizeof(safe), raw);
	if (ctx != NULL && tg_log_state.prefix != NULL)
		tg_log_state.prefix(ctx, prefix, sizeof(prefix));
	if (with_errno)
		(void)snprintf(line, sizeof(line), "%s%s: %s", prefix, safe,
		    strerror(saved));
	else
		(void)snprintf(line, sizeof(line), "%s%s", prefix, safe);
	tg_log_emit(level, line);
	errno = saved;
}

/* tg_log - log one line at level */
void
tg_log(enum tg_log_level level, struct tg_ctx *ctx, bool with_errno,
    const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	tg_vlog(level, ctx, with_errno, fmt, ap);
	va_end(ap);
}

/*
 * The rate limiter remembers a few causes by pointer: callers pass string
 * constants, so the pointer identifies the cause.
 */
#define TG_LOG_LIMIT_SLOTS	32
static struct {
	const char	*cause;
	time_t		 last;
	unsigned long	 suppressed;
} tg_log_limits[TG_LOG_LIMIT_SLOTS];

/* tg_log_warn_limited - a warning at most once per interval per cause */
void
tg_log_warn_limited(struct tg_ctx *ctx, const char *cause, int interval,
    const char *fmt, ...)
{
	unsigned long	 suppressed = 0;
	time_t		 now = time(NULL);
	size_t		 i, slot = 0;
	bool		 emit = true;
	va_list		 ap;

	pthread_mutex_lock(&tg_log_mutex);
	for (i = 0; i < TG_LOG_LIMIT_SLOTS; i++) {
		if (tg_log_limits[i].cause == cause ||
		    tg_log_limits[i].cause == NULL) {
			slot = i;
			break;
		}
		if (tg_log_limits[i].last < tg_log_limits[slot].last)
			slot = i;
	}
	if (tg_log_limits[slot].cause == cause &&
	    now - tg_log_limits[slot].last < interval) {
		tg_log_limits[slot].suppressed++;
		emit = false;
	} else {
		suppressed = tg_log_limits[slot].cause == cause ?
		    tg_log_limits[slot].suppressed : 0;
		tg_log_limits[slot].cause = cause;
		tg_log_limits[slot].last = now;
		tg_log_limits[slot].suppressed = 0;
	}
	pthread_mutex_unlock(&tg_log_mutex);
	if (!emit)
		return;
	va_start(ap, fmt);
	tg_vlog(TG_LOG_WARN, ctx, false, fmt, ap);
	va_end(ap);
	if (suppressed > 0)
		tg_log_warnx(ctx, "%s: %lu similar warnings suppressed", cause,
		    suppressed);
}

/* tg_fatal_common - log and exit, for start-up errors only */
static TG_NORETURN void
tg_fatal_common(int code, bool with_errno, const char *fmt, va_list ap)
{
	tg_vlog(TG_LOG_ERR, NULL, with_errno, fmt, ap);
	exit(code == 0 ? EX_SOFTWARE : code);
}

/* tg_fatal - log with errno text and exit */
void
tg_fatal(int code, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	tg_fatal_common(code, true, fmt, ap);
}

/* tg_fatalx - log and exit */
void
tg_fatalx(int code, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	tg_fatal_common(code, false, fmt, ap);
}
