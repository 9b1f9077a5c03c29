/*
 * log.h - the one logging API.
 *
 * Lines go to syslog, or to stderr in the foreground and under tests.
 * Each call takes the message context (NULL outside a message); the
 * logger prefixes the queue id and the current module name itself, so a
 * caller writes only "what: why" text or key=value fields.  Untrusted
 * text is escaped and truncated by the logger.  Thread-safe.
 */
#ifndef TOLLGATE_LOG_H
#define TOLLGATE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "util.h"

struct tg_ctx;

enum tg_log_level {
	TG_LOG_ERR = 0,
	TG_LOG_WARN,
	TG_LOG_NOTICE,
	TG_LOG_INFO,
	TG_LOG_DEBUG
};

/* tg_log_open - ident for syslog; stderr when to_stderr */
void	tg_log_open(const char *ident, bool to_stderr);
void	tg_log_set_level(enum tg_log_level);
bool	tg_log_enabled(enum tg_log_level);
/* tg_log_level_names - NULL-terminated, indexed by enum tg_log_level */
extern const char *const tg_log_level_names[];

/*
 * Tests capture log lines: sink gets each formatted line (without the
 * trailing newline) in place of syslog/stderr.  NULL restores.
 */
typedef void (*tg_log_sink)(enum tg_log_level, const char *, void *);
void	tg_log_set_sink(tg_log_sink, void *);

/*
 * The pipeline tells the logger how to name a message: fn writes the
 * "queueid: module: " prefix for ctx into buf.
 */
typedef void (*tg_log_prefix_fn)(const struct tg_ctx *, char *, size_t);
void	tg_log_set_prefix_fn(tg_log_prefix_fn);

void	tg_log(enum tg_log_level, struct tg_ctx *, bool with_errno,
	    const char *, ...) TG_PRINTF(4, 5);
void	tg_vlog(enum tg_log_level, struct tg_ctx *, bool with_errno,
	    const char *, va_list) TG_PRINTF(4, 0);

#define tg_log_err(c, ...)	tg_log(TG_LOG_ERR, (c), true, __VA_ARGS__)
#define tg_log_errx(c, ...)	tg_log(TG_LOG_ERR, (c), false, __VA_ARGS__)
#define tg_log_warn(c, ...)	tg_log(TG_LOG_WARN, (c), true, __VA_ARGS__)
#define tg_log_warnx(c, ...)	tg_log(TG_LOG_WARN, (c), false, __VA_ARGS__)
#define tg_log_notice(c, ...)	tg_log(TG_LOG_NOTICE, (c), false, __VA_ARGS__)
#define tg_log_info(c, ...)	tg_log(TG_LOG_INFO, (c), false, __VA_ARGS__)
#define tg_log_debug(c, ...)	tg_log(TG_LOG_DEBUG, (c), false, __VA_ARGS__)

/*
 * tg_log_warn_limited - a warning logged at most once per interval
 * seconds for the same cause (a short constant string).
 */
void	tg_log_warn_limited(struct tg_ctx *, const char *cause, int interval,
	    const char *, ...) TG_PRINTF(4, 5);

/* Start-up only: log and exit with a sysexits.h code. */
TG_NORETURN void tg_fatal(int, const char *, ...) TG_PRINTF(2, 3);
TG_NORETURN void tg_fatalx(int, const char *, ...) TG_PRINTF(2, 3);

/*
 * Records: the one structured line per message (the milter's decision)
 * and per policy request (policyd), in logfmt or JSON as [core]
 * log_format says (docs/decision-log.md names every field).  A record is
 * an event name and ordered fields; every value is escaped as its format
 * needs and cut at TG_LOG_REC_VALUE_MAX bytes, and the whole line is kept
 * under TG_LOG_REC_MAX bytes by cutting values further, so that a line
 * always parses.  Records are written without the logger's prefix: the
 * queue id, where there is one, is a field.
 */
enum tg_log_format { TG_LOG_LOGFMT = 0, TG_LOG_JSON };
/* tg_log_format_names - NULL-terminated, indexed by enum tg_log_format */
extern const char *const tg_log_format_names[];
void	tg_log_set_format(enum tg_log_format);
enum tg_log_format tg_log_get_format(void);

#define TG_LOG_REC_MAX		1900
#define TG_LOG_REC_VALUE_MAX	256
#define TG_LOG_REC_FIELDS	48

struct tg_log_rec;
struct tg_log_rec *tg_log_rec_new(const char *event);
struct tg_log_rec *tg_log_rec_free(struct tg_log_rec *);	/* NULL ok */
/* tg_log_rec_add - a text field; NULL value is "-"; key is copied */
void	tg_log_rec_add(struct tg_log_rec *, const char *key, const char *);
void	tg_log_rec_addf(struct tg_log_rec *, const char *key,
	    const char *, ...) TG_PRINTF(3, 4);
/* tg_log_rec_add_num - a number (a JSON number, not a string) */
void	tg_log_rec_add_num(struct tg_log_rec *, const char *key,
	    long long);
/*
 * tg_log_rec_add_pairs - the fields of text written as "k=v k2=\"v 2\""
 * (what policyd's checks note); a word without '=' is a field with an
 * empty value.
 */
void	tg_log_rec_add_pairs(struct tg_log_rec *, const char *);
/* tg_log_rec_format - the line in that format; the caller owns it */
char	*tg_log_rec_format(const struct tg_log_rec *, enum tg_log_format);
/* tg_log_rec_emit - format as configured and log at level; returns the
 * line (owned by the caller) whether or not the level is enabled */
char	*tg_log_rec_emit(const struct tg_log_rec *, enum tg_log_level);

#endif
