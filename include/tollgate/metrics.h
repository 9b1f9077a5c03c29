/*
 * metrics.h - counters, gauges and histograms, and the Prometheus
 * endpoint that serves them.
 *
 * The catalogue is fixed: every metric tollgate has is one enum
 * tg_metric_id below, with at most two labels whose values come from a
 * fixed list per label (metrics.c).  A label value the list does not
 * know is counted as "other", so no input can grow the set of series.
 * Callers pass label values as text; only the first word counts (up to
 * a blank, ',', ':', ';', '=' or '/'), so "pass p=reject" is "pass" and
 * "DEFER_IF_PERMIT 4.7.1 ..." is "defer_if_permit" (case is ignored).
 *
 * Thread safety: every update is a few relaxed C11 atomic operations on
 * static storage, so any thread may update at any time, before or after
 * tg_metrics_http_start, with no lock and no allocation.  Rendering
 * reads the same atomics; a scrape that races updates may see a
 * histogram's _sum from a moment later than its buckets, never a bucket
 * count below an earlier scrape's.
 */
#ifndef TOLLGATE_METRICS_H
#define TOLLGATE_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "util.h"

enum tg_metric_id {
	/* tollgate-milter */
	TG_M_MESSAGES,		/* counter {action} */
	TG_M_MODULE_RESULTS,	/* counter {module, result} */
	TG_M_QUOTA_SHADOW,	/* counter {action}: shadow rules' refusals */
	TG_M_SPAM_SCORE,	/* histogram: score of each scored message */
	TG_M_STAGE_SECONDS,	/* histogram {stage} */
	TG_M_MILTER_CONNS,	/* gauge: MTA connections open */
	/* both daemons */
	TG_M_DNS_QUERIES,	/* counter {type, result} */
	TG_M_DNS_SECONDS,	/* histogram {type} */
	TG_M_STORE_OPS,		/* counter {op, result} */
	TG_M_STORE_SECONDS,	/* histogram {op} */
	TG_M_STORE_BREAKER_OPEN, /* gauge: 1 while the Redis breaker is open */
	TG_M_STORE_BREAKER_TRIPS, /* counter: times the breaker opened */
	/* tollgate-policyd */
	TG_M_POLICYD_REQUESTS,	/* counter {check, action} */
	TG_M_POLICYD_CHECK_ERRORS, /* counter {check} */
	TG_M_POLICYD_CLIENTS,	/* gauge: smtpd connections open */
	TG_M_COUNT
};

/* Which metrics a daemon shows (tg_metrics_render, _http_start). */
#define TG_METRICS_MILTER	0x1u
#define TG_METRICS_POLICYD	0x2u

/*
 * tg_metric_inc - add 1 to a counter (or gauge).  l1 and l2 are the
 * label values, NULL for a label the metric does not have.
 * tg_metric_add adds n (negative only for gauges).
 */
void	tg_metric_inc(enum tg_metric_id, const char *l1, const char *l2);
void	tg_metric_add(enum tg_metric_id, const char *l1, const char *l2,
	    int64_t n);
/* tg_metric_set - set a gauge */
void	tg_metric_set(enum tg_metric_id, const char *l1, const char *l2,
	    int64_t v);
/* tg_metric_get - a counter's or gauge's value (tests, tollgatectl) */
int64_t	tg_metric_get(enum tg_metric_id, const char *l1, const char *l2);
/*
 * tg_metric_observe - one observation into a histogram.  A NaN or
 * infinite value is ignored: it would poison the sum.
 */
void	tg_metric_observe(enum tg_metric_id, const char *l1, double);
/*
 * tg_metric_since - observe the seconds since t0 (CLOCK_MONOTONIC, from
 * tg_metric_now) into a latency histogram.
 */
void	tg_metric_since(enum tg_metric_id, const char *l1,
	    const struct timespec *t0);
/* tg_metric_now - CLOCK_MONOTONIC now, for tg_metric_since */
void	tg_metric_now(struct timespec *);

/*
 * tg_metrics_spam_score - the spam module's one call: the final score
 * of a message it scored.  Its result word (ham, spam, ...) goes in the
 * decision line as any module's and is counted from there.
 */
void	tg_metrics_spam_score(double);

/*
 * tg_metrics_render - every metric in scope as Prometheus text
 * exposition format 0.0.4 (# HELP, # TYPE, escaped label values,
 * cumulative histogram buckets with _sum and _count), plus
 * process_start_time_seconds.  Appends to out.
 */
void	tg_metrics_render(struct tg_buf *out, unsigned int scope);
/* tg_metrics_escape_label - value as a label value: \\ \" \n escaped */
void	tg_metrics_escape_label(struct tg_buf *, const char *);
/* tg_metrics_escape_help - HELP text: \\ and \n escaped */
void	tg_metrics_escape_help(struct tg_buf *, const char *);
/* tg_metrics_reset - every value to zero (tests only) */
void	tg_metrics_reset(void);

/*
 * The HTTP endpoint (libmicrohttpd, on its own thread): GET /metrics
 * answers 200 with the rendered text, anything else 404.  listen is
 * "PORT" (127.0.0.1), "ADDR:PORT" or "[ADDR6]:PORT"; at most 16
 * connections at once, each dropped after 10 s idle.  Start-up only:
 * an error (bad address, bind failed) is TG_PERM in err.  Signals the
 * daemons handle (TERM, INT, HUP, PIPE) are blocked in its thread.
 * tg_metrics_http_stop accepts NULL and returns NULL.
 */
struct tg_metrics_http;
struct tg_metrics_http	*tg_metrics_http_start(const char *listen,
			    unsigned int scope, struct tg_err *);
struct tg_metrics_http	*tg_metrics_http_stop(struct tg_metrics_http *);
/* tg_metrics_http_port - the port bound (useful when listen said 0) */
unsigned int		 tg_metrics_http_port(const struct tg_metrics_http *);

#endif
