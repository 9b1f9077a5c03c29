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

#include "tollgate/buf.h"
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

/*
 * Records.  Values are kept raw and escaped when the line is formatted:
 * logfmt (key=value, the value in double quotes when it is empty or has a
 * blank, '=', '"', '\' or a byte outside printable ASCII) and JSON (one
 * object, every value a string but numbers).  Inside quotes both use the
 * same escapes: \" \\ \n \r \t, \u00XX for other control bytes, \uXXXX
 * (a surrogate pair above U+FFFF) for valid UTF-8, so the line is plain
 * ASCII, and a byte that is not part of valid UTF-8 stands for the
 * Latin-1 character of its value (\u00e9 for 0xe9): 8-bit garbage from a
 * peer becomes valid text, never an unparsable line.
 */
const char *const tg_log_format_names[] = { "logfmt", "json", NULL };

static enum tg_log_format tg_log_format_cur = TG_LOG_LOGFMT;

struct tg_log_field {
	char	*key;
	char	*value;
	bool	 num;
};

struct tg_log_rec {
	char			*event;
	struct tg_log_field	 f[TG_LOG_REC_FIELDS];
	size_t			 n;
	bool			 dropped;	/* fields beyond the limit */
};

/* tg_log_set_format - the format of records; set at start-up */
void
tg_log_set_format(enum tg_log_format fmt)
{
	tg_log_format_cur = fmt;
}

/* tg_log_get_format - the format of records */
enum tg_log_format
tg_log_get_format(void)
{
	return tg_log_format_cur;
}

/* tg_log_rec_new - an empty record named event */
struct tg_log_rec *
tg_log_rec_new(const char *event)
{
	struct tg_log_rec	*r = tg_calloc(1, sizeof(*r));

	r->event = tg_strdup(event);
	return r;
}

/* tg_log_rec_free - release a record */
struct tg_log_rec *
tg_log_rec_free(struct tg_log_rec *r)
{
	size_t	i;

	if (r == NULL)
		return NULL;
	for (i = 0; i < r->n; i++) {
		free(r->f[i].key);
		free(r->f[i].value);
	}
	free(r->event);
	free(r);
	return NULL;
}

/*
 * tg_log_rec_key - a key both formats take bare: letters, digits, '_',
 * '-' and '.', anything else '_'; a key already in the record gets "_2",
 * "_3" ... so that a JSON object never repeats a name.
 */
static char *
tg_log_rec_key(const struct tg_log_rec *r, const char *key)
{
	struct tg_buf	 b;
	const char	*p;
	char		*base;
	size_t		 i, nth = 1;
	bool		 taken;

	tg_buf_init(&b);
	for (p = key; *p != '\0' && b.len < 64; p++)
		tg_buf_putc(&b, (*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '_' || *p == '-' || *p == '.' ? *p : '_');
	if (b.len == 0)
		tg_buf_putc(&b, '_');
	base = tg_buf_steal(&b);
	for (;;) {
		if (nth > 1)
			tg_buf_printf(&b, "%s_%zu", base, nth);
		else
			tg_buf_puts(&b, base);
		taken = strcmp(tg_buf_cstr(&b), "event") == 0;
		for (i = 0; i < r->n && !taken; i++)
			taken = strcmp(r->f[i].key, tg_buf_cstr(&b)) == 0;
		if (!taken)
			break;
		tg_buf_reset(&b);
		nth++;
	}
	free(base);
	return tg_buf_steal(&b);
}

/* tg_log_rec_put - append a field, taking ownership of value */
static void
tg_log_rec_put(struct tg_log_rec *r, const char *key, char *value, bool num)
{
	if (r->n == TG_LOG_REC_FIELDS) {
		r->dropped = true;
		free(value);
		return;
	}
	r->f[r->n].key = tg_log_rec_key(r, key);
	r->f[r->n].value = value;
	r->f[r->n].num = num;
	r->n++;
}

/* tg_log_rec_add - a text field */
void
tg_log_rec_add(struct tg_log_rec *r, const char *key, const char *value)
{
	tg_log_rec_put(r, key, tg_strdup(value != NULL ? value : "-"), false);
}

/* tg_log_rec_addf - a text field, formatted */
void
tg_log_rec_addf(struct tg_log_rec *r, const char *key, const char *fmt, ...)
{
	struct tg_buf	b;
	va_list		ap;

	tg_buf_init(&b);
	va_start(ap, fmt);
	tg_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	tg_log_rec_put(r, key, tg_buf_steal(&b), false);
}

/* tg_log_rec_add_num - a number */
void
tg_log_rec_add_num(struct tg_log_rec *r, const char *key, long long v)
{
	struct tg_buf	b;

	tg_buf_init(&b);
	tg_buf_printf(&b, "%lld", v);
	tg_log_rec_put(r, key, tg_buf_steal(&b), true);
}

/* tg_log_pairs_key_next - whether the next word after p is key=... */
static bool
tg_log_pairs_key_next(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return true;
	for (; *p != '\0' && *p != ' ' && *p != '\t'; p++)
		if (*p == '=')
			return true;
	return false;
}

/* tg_log_rec_add_pairs - fields from "k=v k2=\"v 2\"" text */
void
tg_log_rec_add_pairs(struct tg_log_rec *r, const char *text)
{
	struct tg_buf	 key, val;
	const char	*p = text;

	tg_buf_init(&key);
	tg_buf_init(&val);
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		tg_buf_reset(&key);
		tg_buf_reset(&val);
		while (*p != '\0' && *p != '=' && *p != ' ' && *p != '\t')
			tg_buf_putc(&key, *p++);
		if (*p == '=' && p[1] == '"') {
			for (p += 2; *p != '\0' && *p != '"'; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				tg_buf_putc(&val, *p);
			}
			if (*p == '"')
				p++;
		} else if (*p == '=') {
			/* Words without '=' after a value belong to it. */
			for (p++; *p != '\0'; p++) {
				if ((*p == ' ' || *p == '\t') &&
				    tg_log_pairs_key_next(p))
					break;
				tg_buf_putc(&val, *p);
			}
		}
		tg_log_rec_put(r, tg_buf_cstr(&key), tg_buf_steal(&val),
		    false);
	}
	tg_buf_fini(&key);
	tg_buf_fini(&val);
}

/*
 * tg_log_utf8_len - length of the valid UTF-8 sequence at s (n bytes
 * left), 0 if there is none; *cp gets the code point.  Overlong forms,
 * surrogates and code points above U+10FFFF are not valid (RFC 3629).
 */
static size_t
tg_log_utf8_len(const unsigned char *s, size_t n, unsigned long *cp)
{
	static const unsigned long	 min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	unsigned long			 c;
	size_t				 len, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* tg_log_u - one \uXXXX escape */
static void
tg_log_u(struct tg_buf *b, unsigned long u)
{
	static const char	hex[] = "0123456789abcdef";
	char			e[6] = { '\\', 'u' };

	e[2] = hex[(u >> 12) & 0xf];
	e[3] = hex[(u >> 8) & 0xf];
	e[4] = hex[(u >> 4) & 0xf];
	e[5] = hex[u & 0xf];
	tg_buf_append(b, e, sizeof(e));
}

/* tg_log_quote - s (n bytes) as a double-quoted, escaped ASCII string */
static void
tg_log_quote(struct tg_buf *b, const unsigned char *s, size_t n)
{
	unsigned long	cp;
	size_t		i, run, len;

	tg_buf_putc(b, '"');
	for (i = 0; i < n; i++) {
		/* copy a run of plain characters at once */
		for (run = i; run < n && s[run] >= 0x20 && s[run] < 0x7f &&
		    s[run] != '"' && s[run] != '\\'; run++)
			;
		if (run > i) {
			tg_buf_append(b, s + i, run - i);
			i = run - 1;
			continue;
		}
		switch (s[i]) {
		case '"':
			tg_buf_puts(b, "\\\"");
			continue;
		case '\\':
			tg_buf_puts(b, "\\\\");
			continue;
		case '\n':
			tg_buf_puts(b, "\\n");
			continue;
		case '\r':
			tg_buf_puts(b, "\\r");
			continue;
		case '\t':
			tg_buf_puts(b, "\\t");
			continue;
		default:
			break;
		}
		if (s[i] < 0x80 || (len = tg_log_utf8_len(s + i, n - i,
		    &cp)) == 0) {
			/* a control byte, or 8-bit garbage read as Latin-1 */
			tg_log_u(b, s[i]);
			continue;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			tg_log_u(b, 0xd800 + (cp >> 10));
			tg_log_u(b, 0xdc00 + (cp & 0x3ff));
		} else
			tg_log_u(b, cp);
		i += len - 1;
	}
	tg_buf_putc(b, '"');
}

/* tg_log_bare - whether logfmt may write s unquoted */
static bool
tg_log_bare(const unsigned char *s, size_t n)
{
	size_t	i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '=' ||
		    s[i] == '"' || s[i] == '\\')
			return false;
	return true;
}

/* tg_log_cut - how much of s to keep within cap bytes, on a character */
static size_t
tg_log_cut(const unsigned char *s, size_t n, size_t cap)
{
	unsigned long	cp;
	size_t		i = 0, len;

	if (n <= cap)
		return n;
	while (i < cap) {
		len = s[i] >= 0x80 ? tg_log_utf8_len(s + i, n - i, &cp) : 1;
		if (len == 0)
			len = 1;
		if (i + len > cap)
			break;
		i += len;
	}
	return i;
}

/* tg_log_rec_value - one value in fmt, cut at cap bytes */
static void
tg_log_rec_value(struct tg_buf *b, const struct tg_log_field *f,
    enum tg_log_format fmt, size_t cap)
{
	const unsigned char	*s = (const unsigned char *)f->value;
	size_t			 n = strlen(f->value), keep;
	struct tg_buf		 t;

	if (f->num) {
		tg_buf_puts(b, f->value);
		return;
	}
	keep = tg_log_cut(s, n, cap);
	if (keep == n && fmt == TG_LOG_LOGFMT && tg_log_bare(s, n)) {
		tg_buf_append(b, s, n);
		return;
	}
	if (keep == n) {
		tg_log_quote(b, s, n);
		return;
	}
	tg_buf_init(&t);
	tg_buf_append(&t, s, keep);
	tg_buf_puts(&t, "...");
	if (fmt == TG_LOG_LOGFMT && tg_log_bare((const unsigned char *)t.data,
	    t.len))
		tg_buf_append(b, t.data, t.len);
	else
		tg_log_quote(b, (const unsigned char *)t.data, t.len);
	tg_buf_fini(&t);
}

/* tg_log_rec_line - the line with every value cut at cap bytes */
static void
tg_log_rec_line(struct tg_buf *b, const struct tg_log_rec *r,
    enum tg_log_format fmt, size_t cap, size_t *nfields)
{
	size_t	i, mark;

	tg_buf_reset(b);
	if (fmt == TG_LOG_JSON) {
		tg_buf_puts(b, "{\"event\":");
		tg_log_quote(b, (const unsigned char *)r->event,
		    strlen(r->event));
	} else
		tg_buf_puts(b, r->event);
	for (i = 0; i < *nfields; i++) {
		mark = b->len;
		if (fmt == TG_LOG_JSON)
			tg_buf_printf(b, ",\"%s\":", r->f[i].key);
		else
			tg_buf_printf(b, " %s=", r->f[i].key);
		tg_log_rec_value(b, &r->f[i], fmt, cap);
		if (b->len + 40 > TG_LOG_REC_MAX && cap <= 8) {
			/* even short values do not fit: stop here */
			b->len = mark;
			b->data[mark] = '\0';
			*nfields = i;
			break;
		}
	}
	if (*nfields < r->n || r->dropped)
		tg_buf_puts(b, fmt == TG_LOG_JSON ? ",\"truncated\":\"yes\"" :
		    " truncated=yes");
	if (fmt == TG_LOG_JSON)
		tg_buf_putc(b, '}');
}

/* tg_log_rec_format - see log.h */
char *
tg_log_rec_format(const struct tg_log_rec *r, enum tg_log_format fmt)
{
	struct tg_buf	b;
	size_t		cap = TG_LOG_REC_VALUE_MAX, nfields = r->n;

	tg_buf_init(&b);
	for (;;) {
		tg_log_rec_line(&b, r, fmt, cap, &nfields);
		if (b.len <= TG_LOG_REC_MAX || cap <= 8)
			break;
		cap /= 2;
	}
	return tg_buf_steal(&b);
}

/* tg_log_rec_emit - see log.h */
char *
tg_log_rec_emit(const struct tg_log_rec *r, enum tg_log_level level)
{
	char	*line = tg_log_rec_format(r, tg_log_format_cur);

	if (tg_log_enabled(level))
		tg_log_emit(level, line);
	return line;
}
