/*
 * metrics - tollgate's fixed catalogue of counters, gauges and
 * histograms, the Prometheus text format, and its HTTP endpoint.
 *
 * Every series lives in static storage sized at compile time: a metric
 * has at most two labels, each with a fixed list of values plus
 * "other", so updating never allocates and never takes a lock, and no
 * input can make the set of series grow.  Counters and gauges are one
 * _Atomic int64_t per series; a histogram series is one atomic count
 * per bucket (not cumulative: one increment per observation) and an
 * _Atomic double sum updated by compare-and-swap.  Buckets are summed
 * into the cumulative form only when rendering, so _count always equals
 * the +Inf bucket.
 *
 * The endpoint is libmicrohttpd with its own polling thread: a scrape
 * only reads the atomics, so it can never hold up a milter thread or
 * policyd's loop, and its connection limit and timeout bound what a
 * misbehaving client can take.
 *
 * Threading: any thread may update or render at any time.
 * tg_metrics_http_start and _stop are for the main thread at start-up
 * and exit.
 */
#include "config.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "tollgate/buf.h"
#include "tollgate/metrics.h"
#include "tollgate/util.h"

#define TG_METRIC_MAX_BUCKETS	16
#define TG_METRICS_HTTP_CONNS	16	/* scrapers at once */
#define TG_METRICS_HTTP_IDLE	10	/* seconds */

enum tg_metric_kind { TG_MK_COUNTER, TG_MK_GAUGE, TG_MK_HISTOGRAM };

/* One label: its name and its fixed values; "other" is implied last. */
struct tg_metric_label {
	const char		*name;
	const char *const	*values;
	size_t			 n;
};

struct tg_metric_hist {
	_Atomic uint64_t	 bucket[TG_METRIC_MAX_BUCKETS + 1]; /* +Inf last */
	_Atomic double		 sum;
};

struct tg_metric {
	const char			*name;
	const char			*help;
	enum tg_metric_kind		 kind;
	unsigned int			 scope;
	const struct tg_metric_label	*l1, *l2;
	const double			*le;	/* histogram upper bounds */
	size_t				 nle;
	_Atomic int64_t			*v;	/* counter, gauge: per series */
	struct tg_metric_hist		*h;	/* histogram: per series */
};

#define TG_LABEL(var, lname, vals) \
	static const struct tg_metric_label var = { lname, vals, \
	    TG_NITEMS(vals) }
/* Series of a metric: (values + other) of each label. */
#define TG_SERIES(a, b)	(((a) + 1) * ((b) + 1))

static const char *const tg_mv_action[] = {
	"accept", "reject", "tempfail", "quarantine", "discard"
};
static const char *const tg_mv_module[] = {
	"spf", "dkim", "dmarc", "ratelimit", "spam"
};
/* The first words modules write in the decision line (tg_ctx_result). */
static const char *const tg_mv_result[] = {
	"pass", "fail", "softfail", "neutral", "none", "temperror",
	"permerror", "policy", "skip", "signed", "unsigned", "error", "ok",
	"exempt", "defer", "reject", "tempfail", "ham", "spam"
};
static const char *const tg_mv_stage[] = {
	"connect", "helo", "mail", "rcpt", "header", "eoh", "body", "eom",
	"abort", "done"
};
static const char *const tg_mv_rrtype[] = {
	"A", "AAAA", "MX", "TXT", "PTR", "CNAME", "NS", "SOA"
};
static const char *const tg_mv_status[] = {
	"ok", "notfound", "temp", "perm"
};
static const char *const tg_mv_storeop[] = {
	"reserve", "commit", "refund", "usage", "reset", "list", "kv_get",
	"kv_set", "kv_del", "kv_incr", "kv_mget", "kv_mincr", "sweep",
	"kv_list"
};
static const char *const tg_mv_check[] = {
	"greylist", "quota", "none", "malformed"
};
/* Postfix access(5) actions, as policyd answers them. */
static const char *const tg_mv_pdaction[] = {
	"dunno", "ok", "reject", "defer", "defer_if_permit",
	"defer_if_reject", "hold", "discard", "prepend", "warn", "filter",
	"redirect", "info"
};
static const char *const tg_mv_quota[] = { "defer", "reject" };

TG_LABEL(tg_ml_action, "action", tg_mv_action);
TG_LABEL(tg_ml_module, "module", tg_mv_module);
TG_LABEL(tg_ml_result, "result", tg_mv_result);
TG_LABEL(tg_ml_stage, "stage", tg_mv_stage);
TG_LABEL(tg_ml_rrtype, "type", tg_mv_rrtype);
TG_LABEL(tg_ml_status, "result", tg_mv_status);
TG_LABEL(tg_ml_storeop, "op", tg_mv_storeop);
TG_LABEL(tg_ml_check, "check", tg_mv_check);
TG_LABEL(tg_ml_pdaction, "action", tg_mv_pdaction);
TG_LABEL(tg_ml_quota, "action", tg_mv_quota);

/* Latency buckets, seconds: 100 us to 10 s (DNS and Redis timeouts). */
static const double tg_le_seconds[] = {
	0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
	0.5, 1, 2.5, 5, 10
};
/* Spam scores, SpamAssassin-like points. */
static const double tg_le_score[] = {
	-5, -2, 0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20
};
_Static_assert(TG_NITEMS(tg_le_seconds) <= TG_METRIC_MAX_BUCKETS, "buckets");
_Static_assert(TG_NITEMS(tg_le_score) <= TG_METRIC_MAX_BUCKETS, "buckets");

#define TG_NV(a)	TG_NITEMS(a)
static _Atomic int64_t tg_mv_messages[TG_SERIES(TG_NV(tg_mv_action), 0)];
static _Atomic int64_t tg_mv_results[TG_SERIES(TG_NV(tg_mv_module),
    TG_NV(tg_mv_result))];
static _Atomic int64_t tg_mv_shadow[TG_SERIES(TG_NV(tg_mv_quota), 0)];
static struct tg_metric_hist tg_mh_spam[1];
static struct tg_metric_hist tg_mh_stage[TG_SERIES(TG_NV(tg_mv_stage), 0)];
static _Atomic int64_t tg_mv_conns[1];
static _Atomic int64_t tg_mv_dns[TG_SERIES(TG_NV(tg_mv_rrtype),
    TG_NV(tg_mv_status))];
static struct tg_metric_hist tg_mh_dns[TG_SERIES(TG_NV(tg_mv_rrtype), 0)];
static _Atomic int64_t tg_mv_store[TG_SERIES(TG_NV(tg_mv_storeop),
    TG_NV(tg_mv_status))];
static struct tg_metric_hist tg_mh_store[TG_SERIES(TG_NV(tg_mv_storeop), 0)];
static _Atomic int64_t tg_mv_breaker[1];
static _Atomic int64_t tg_mv_trips[1];
static _Atomic int64_t tg_mv_requests[TG_SERIES(TG_NV(tg_mv_check),
    TG_NV(tg_mv_pdaction))];
static _Atomic int64_t tg_mv_check_errors[TG_SERIES(TG_NV(tg_mv_check), 0)];
static _Atomic int64_t tg_mv_clients[1];

#define TG_M_BOTH	(TG_METRICS_MILTER | TG_METRICS_POLICYD)

/* The catalogue, in enum tg_metric_id order. */
static const struct tg_metric tg_metrics[TG_M_COUNT] = {
	[TG_M_MESSAGES] = { "tollgate_messages_total",
	    "Messages by final action.", TG_MK_COUNTER, TG_METRICS_MILTER,
	    &tg_ml_action, NULL, NULL, 0, tg_mv_messages, NULL },
	[TG_M_MODULE_RESULTS] = { "tollgate_module_results_total",
	    "Module results recorded in decision lines (DKIM: one per "
	    "signature).", TG_MK_COUNTER, TG_METRICS_MILTER, &tg_ml_module,
	    &tg_ml_result, NULL, 0, tg_mv_results, NULL },
	[TG_M_QUOTA_SHADOW] = { "tollgate_quota_shadow_hits_total",
	    "Messages a shadow quota rule would have refused.",
	    TG_MK_COUNTER, TG_METRICS_MILTER, &tg_ml_quota, NULL, NULL, 0,
	    tg_mv_shadow, NULL },
	[TG_M_SPAM_SCORE] = { "tollgate_spam_score",
	    "Spam score of scored messages.", TG_MK_HISTOGRAM,
	    TG_METRICS_MILTER, NULL, NULL, tg_le_score, TG_NV(tg_le_score),
	    NULL, tg_mh_spam },
	[TG_M_STAGE_SECONDS] = { "tollgate_stage_duration_seconds",
	    "Time the enabled modules took per SMTP stage call.",
	    TG_MK_HISTOGRAM, TG_METRICS_MILTER, &tg_ml_stage, NULL,
	    tg_le_seconds, TG_NV(tg_le_seconds), NULL, tg_mh_stage },
	[TG_M_MILTER_CONNS] = { "tollgate_milter_connections",
	    "MTA connections open.", TG_MK_GAUGE, TG_METRICS_MILTER, NULL,
	    NULL, NULL, 0, tg_mv_conns, NULL },
	[TG_M_DNS_QUERIES] = { "tollgate_dns_queries_total",
	    "DNS queries answered, by type and result.", TG_MK_COUNTER,
	    TG_M_BOTH, &tg_ml_rrtype, &tg_ml_status, NULL, 0, tg_mv_dns,
	    NULL },
	[TG_M_DNS_SECONDS] = { "tollgate_dns_query_duration_seconds",
	    "Time from the start of a DNS query to its answer or timeout.",
	    TG_MK_HISTOGRAM, TG_M_BOTH, &tg_ml_rrtype, NULL, tg_le_seconds,
	    TG_NV(tg_le_seconds), NULL, tg_mh_dns },
	[TG_M_STORE_OPS] = { "tollgate_store_operations_total",
	    "Store operations, by operation and result.", TG_MK_COUNTER,
	    TG_M_BOTH, &tg_ml_storeop, &tg_ml_status, NULL, 0, tg_mv_store,
	    NULL },
	[TG_M_STORE_SECONDS] = { "tollgate_store_operation_duration_seconds",
	    "Time one store operation took in the backend.", TG_MK_HISTOGRAM,
	    TG_M_BOTH, &tg_ml_storeop, NULL, tg_le_seconds,
	    TG_NV(tg_le_seconds), NULL, tg_mh_store },
	[TG_M_STORE_BREAKER_OPEN] = { "tollgate_store_breaker_open",
	    "1 while the Redis circuit breaker is open.", TG_MK_GAUGE,
	    TG_M_BOTH, NULL, NULL, NULL, 0, tg_mv_breaker, NULL },
	[TG_M_STORE_BREAKER_TRIPS] = { "tollgate_store_breaker_trips_total",
	    "Times the Redis circuit breaker opened.", TG_MK_COUNTER,
	    TG_M_BOTH, NULL, NULL, NULL, 0, tg_mv_trips, NULL },
	[TG_M_POLICYD_REQUESTS] = { "tollgate_policyd_requests_total",
	    "Policy requests, by the check that decided and the action.",
	    TG_MK_COUNTER, TG_METRICS_POLICYD, &tg_ml_check, &tg_ml_pdaction,
	    NULL, 0, tg_mv_requests, NULL },
	[TG_M_POLICYD_CHECK_ERRORS] = { "tollgate_policyd_check_errors_total",
	    "Checks that could not decide (store or DNS failure).",
	    TG_MK_COUNTER, TG_METRICS_POLICYD, &tg_ml_check, NULL, NULL, 0,
	    tg_mv_check_errors, NULL },
	[TG_M_POLICYD_CLIENTS] = { "tollgate_policyd_clients",
	    "smtpd connections open.", TG_MK_GAUGE, TG_METRICS_POLICYD, NULL,
	    NULL, NULL, 0, tg_mv_clients, NULL },
};

static _Atomic int64_t	tg_metrics_start_time;

struct tg_metrics_http {
	struct MHD_Daemon	*mhd;
	unsigned int		 scope;
};

static size_t	tg_metric_index(const struct tg_metric_label *,
		    const char *);
static size_t	tg_metric_series(const struct tg_metric *, const char *,
		    const char *);

/* tg_metric_get_def - the catalogue entry, or a panic for a bad id */
static const struct tg_metric *
tg_metric_get_def(enum tg_metric_id id)
{
	if ((unsigned int)id >= TG_M_COUNT)
		TG_PANIC("metrics: bad id %d", (int)id);
	return &tg_metrics[id];
}

/* tg_metric_word_len - the length of a label value's first word */
static size_t
tg_metric_word_len(const char *s)
{
	return strcspn(s, " \t\r\n,:;=/");
}

/* tg_metric_index - position of s's first word in the label, n: other */
static size_t
tg_metric_index(const struct tg_metric_label *l, const char *s)
{
	size_t	i, len;

	if (l == NULL)
		return 0;
	if (s == NULL)
		return l->n;
	len = tg_metric_word_len(s);
	for (i = 0; i < l->n; i++)
		if (strlen(l->values[i]) == len &&
		    tg_strncasecmp(l->values[i], s, len) == 0)
			return i;
	return l->n;
}

/* tg_metric_series - the series of the label values a, b */
static size_t
tg_metric_series(const struct tg_metric *m, const char *a, const char *b)
{
	size_t	n2 = m->l2 != NULL ? m->l2->n + 1 : 1;

	return tg_metric_index(m->l1, a) * n2 + tg_metric_index(m->l2, b);
}

/* tg_metric_add - see metrics.h */
void
tg_metric_add(enum tg_metric_id id, const char *l1, const char *l2,
    int64_t n)
{
	const struct tg_metric	*m = tg_metric_get_def(id);

	if (m->kind == TG_MK_HISTOGRAM)
		TG_PANIC("metrics: %s is a histogram", m->name);
	atomic_fetch_add_explicit(&m->v[tg_metric_series(m, l1, l2)], n,
	    memory_order_relaxed);
}

/* tg_metric_inc - see metrics.h */
void
tg_metric_inc(enum tg_metric_id id, const char *l1, const char *l2)
{
	tg_metric_add(id, l1, l2, 1);
}

/* tg_metric_set - see metrics.h */
void
tg_metric_set(enum tg_metric_id id, const char *l1, const char *l2,
    int64_t v)
{
	const struct tg_metric	*m = tg_metric_get_def(id);

	if (m->kind != TG_MK_GAUGE)
		TG_PANIC("metrics: %s is not a gauge", m->name);
	atomic_store_explicit(&m->v[tg_metric_series(m, l1, l2)], v,
	    memory_order_relaxed);
}

/* tg_metric_get - see metrics.h */
int64_t
tg_metric_get(enum tg_metric_id id, const char *l1, const char *l2)
{
	const struct tg_metric	*m = tg_metric_get_def(id);

	if (m->kind == TG_MK_HISTOGRAM)
		TG_PANIC("metrics: %s is a histogram", m->name);
	return atomic_load_explicit(&m->v[tg_metric_series(m, l1, l2)],
	    memory_order_relaxed);
}

/* tg_metric_observe - see metrics.h */
void
tg_metric_observe(enum tg_metric_id id, const char *l1, double x)
{
	const struct tg_metric	*m = tg_metric_get_def(id);
	struct tg_metric_hist	*h;
	double			 old;
	size_t			 b;

	if (m->kind != TG_MK_HISTOGRAM)
		TG_PANIC("metrics: %s is not a histogram", m->name);
	if (!isfinite(x))
		return;
	h = &m->h[tg_metric_series(m, l1, NULL)];
	for (b = 0; b < m->nle && x > m->le[b]; b++)
		;
	atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
	old = atomic_load_explicit(&h->sum, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&h->sum, &old, old + x,
	    memory_order_relaxed, memory_order_relaxed))
		;
}

/* tg_metric_now - see metrics.h */
void
tg_metric_now(struct timespec *ts)
{
	if (clock_gettime(CLOCK_MONOTONIC, ts) == -1)
		TG_PANIC("metrics: clock_gettime");
}

/* tg_metric_since - see metrics.h */
void
tg_metric_since(enum tg_metric_id id, const char *l1,
    const struct timespec *t0)
{
	struct timespec	now;

	tg_metric_now(&now);
	tg_metric_observe(id, l1, (double)(now.tv_sec - t0->tv_sec) +
	    (double)(now.tv_nsec - t0->tv_nsec) / 1e9);
}

/* tg_metrics_spam_score - see metrics.h */
void
tg_metrics_spam_score(double score)
{
	tg_metric_observe(TG_M_SPAM_SCORE, NULL, score);
}

/* tg_metrics_reset - see metrics.h */
void
tg_metrics_reset(void)
{
	const struct tg_metric	*m;
	size_t			 i, s, b, n;

	for (i = 0; i < TG_M_COUNT; i++) {
		m = &tg_metrics[i];
		n = TG_SERIES(m->l1 != NULL ? m->l1->n : 0,
		    m->l2 != NULL ? m->l2->n : 0);
		for (s = 0; s < n; s++) {
			if (m->kind != TG_MK_HISTOGRAM) {
				atomic_store(&m->v[s], 0);
				continue;
			}
			for (b = 0; b <= m->nle; b++)
				atomic_store(&m->h[s].bucket[b], 0);
			atomic_store(&m->h[s].sum, 0.0);
		}
	}
}

/* tg_metrics_escape - s with \\ always, \" if quote, \n as "\n" */
static void
tg_metrics_escape(struct tg_buf *b, const char *s, bool quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			tg_buf_puts(b, "\\\\");
		else if (*s == '\n')
			tg_buf_puts(b, "\\n");
		else if (*s == '"' && quote)
			tg_buf_puts(b, "\\\"");
		else
			tg_buf_putc(b, *s);
	}
}

/* tg_metrics_escape_label - see metrics.h */
void
tg_metrics_escape_label(struct tg_buf *b, const char *s)
{
	tg_metrics_escape(b, s, true);
}

/* tg_metrics_escape_help - see metrics.h */
void
tg_metrics_escape_help(struct tg_buf *b, const char *s)
{
	tg_metrics_escape(b, s, false);
}

/* tg_metrics_value_name - a label's i-th value, "other" past the list */
static const char *
tg_metrics_value_name(const struct tg_metric_label *l, size_t i)
{
	return i < l->n ? l->values[i] : "other";
}

/* tg_metrics_shortest - the fewest digits that read back as x */
static const char *
tg_metrics_shortest(double x, char *buf, size_t size)
{
	int	prec;

	for (prec = 6; prec < 17; prec++) {
		(void)snprintf(buf, size, "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			return buf;
	}
	(void)snprintf(buf, size, "%.17g", x);
	return buf;
}

/* tg_metrics_put_double - a sample value: Go's ParseFloat syntax */
static void
tg_metrics_put_double(struct tg_buf *b, double x)
{
	char	num[32];

	if (isnan(x))
		tg_buf_puts(b, "NaN");
	else if (isinf(x))
		tg_buf_puts(b, x > 0 ? "+Inf" : "-Inf");
	else
		tg_buf_puts(b, tg_metrics_shortest(x, num, sizeof(num)));
}

/*
 * tg_metrics_labels - {a="x",b="y"} of series s, plus extra (le=...)
 * when given; nothing when there is no label at all.
 */
static void
tg_metrics_labels(struct tg_buf *b, const struct tg_metric *m, size_t s,
    const char *extra)
{
	size_t	n2 = m->l2 != NULL ? m->l2->n + 1 : 1;
	bool	any = false;

	if (m->l1 == NULL && extra == NULL)
		return;
	tg_buf_putc(b, '{');
	if (m->l1 != NULL) {
		tg_buf_printf(b, "%s=\"", m->l1->name);
		tg_metrics_escape_label(b, tg_metrics_value_name(m->l1, s / n2));
		tg_buf_putc(b, '"');
		any = true;
	}
	if (m->l2 != NULL) {
		tg_buf_printf(b, ",%s=\"", m->l2->name);
		tg_metrics_escape_label(b, tg_metrics_value_name(m->l2, s % n2));
		tg_buf_putc(b, '"');
	}
	if (extra != NULL)
		tg_buf_printf(b, "%s%s", any ? "," : "", extra);
	tg_buf_putc(b, '}');
}

/* tg_metrics_render_hist - one histogram series, buckets cumulative */
static void
tg_metrics_render_hist(struct tg_buf *b, const struct tg_metric *m,
    size_t s)
{
	struct tg_buf	le;
	uint64_t	cum = 0;
	size_t		i;

	tg_buf_init(&le);
	for (i = 0; i <= m->nle; i++) {
		cum += atomic_load_explicit(&m->h[s].bucket[i],
		    memory_order_relaxed);
		tg_buf_reset(&le);
		tg_buf_puts(&le, "le=\"");
		if (i < m->nle)
			tg_metrics_put_double(&le, m->le[i]);
		else
			tg_buf_puts(&le, "+Inf");
		tg_buf_putc(&le, '"');
		tg_buf_printf(b, "%s_bucket", m->name);
		tg_metrics_labels(b, m, s, tg_buf_cstr(&le));
		tg_buf_printf(b, " %llu\n", (unsigned long long)cum);
	}
	tg_buf_fini(&le);
	tg_buf_printf(b, "%s_sum", m->name);
	tg_metrics_labels(b, m, s, NULL);
	tg_buf_putc(b, ' ');
	tg_metrics_put_double(b, atomic_load_explicit(&m->h[s].sum,
	    memory_order_relaxed));
	tg_buf_printf(b, "\n%s_count", m->name);
	tg_metrics_labels(b, m, s, NULL);
	tg_buf_printf(b, " %llu\n", (unsigned long long)cum);
}

/* tg_metrics_render_one - HELP, TYPE and every series of m */
static void
tg_metrics_render_one(struct tg_buf *b, const struct tg_metric *m)
{
	static const char *const kinds[] = { "counter", "gauge", "histogram" };
	size_t	s, n;

	n = TG_SERIES(m->l1 != NULL ? m->l1->n : 0,
	    m->l2 != NULL ? m->l2->n : 0);
	tg_buf_printf(b, "# HELP %s ", m->name);
	tg_metrics_escape_help(b, m->help);
	tg_buf_printf(b, "\n# TYPE %s %s\n", m->name, kinds[m->kind]);
	for (s = 0; s < n; s++) {
		/* A metric without labels has one series, not "other". */
		if (m->l1 == NULL && s > 0)
			break;
		if (m->kind == TG_MK_HISTOGRAM) {
			tg_metrics_render_hist(b, m, s);
			continue;
		}
		tg_buf_puts(b, m->name);
		tg_metrics_labels(b, m, s, NULL);
		tg_buf_printf(b, " %lld\n", (long long)atomic_load_explicit(
		    &m->v[s], memory_order_relaxed));
	}
}

/* tg_metrics_render - see metrics.h */
void
tg_metrics_render(struct tg_buf *b, unsigned int scope)
{
	size_t	i;

	for (i = 0; i < TG_M_COUNT; i++)
		if (tg_metrics[i].scope & scope)
			tg_metrics_render_one(b, &tg_metrics[i]);
	tg_buf_puts(b, "# HELP process_start_time_seconds Start time of the "
	    "process since unix epoch in seconds.\n"
	    "# TYPE process_start_time_seconds gauge\n");
	tg_buf_printf(b, "process_start_time_seconds %lld\n",
	    (long long)atomic_load(&tg_metrics_start_time));
}

/* tg_metrics_http_answer - GET /metrics, or 404 */
static enum MHD_Result
tg_metrics_http_answer(void *cls, struct MHD_Connection *conn,
    const char *url, const char *method, const char *version,
    const char *upload, size_t *upload_size, void **con_cls)
{
	static char		 notfound[] = "not found\n";
	struct tg_metrics_http	*h = cls;
	struct MHD_Response	*r;
	struct tg_buf		 b;
	enum MHD_Result		 ret;
	unsigned int		 code = MHD_HTTP_OK;
	size_t			 len;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 ||
	    strcmp(url, "/metrics") != 0) {
		code = MHD_HTTP_NOT_FOUND;
		r = MHD_create_response_from_buffer(sizeof(notfound) - 1,
		    notfound, MHD_RESPMEM_PERSISTENT);
	} else {
		tg_buf_init(&b);
		tg_metrics_render(&b, h->scope);
		len = b.len;
		r = MHD_create_response_from_buffer(len, tg_buf_steal(&b),
		    MHD_RESPMEM_MUST_FREE);
	}
	if (r == NULL)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    code == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8" :
	    "text/plain; charset=utf-8") == MHD_NO) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * tg_metrics_http_addr - "PORT", "ADDR:PORT" or "[ADDR6]:PORT" as a
 * socket address; a bare port is loopback, so metrics never face the
 * network unless the operator says so.
 */
static enum tg_status
tg_metrics_http_addr(const char *spec, struct sockaddr_storage *ss,
    struct tg_err *err)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	const char		*colon, *port, *orig = spec;
	char			 host[INET6_ADDRSTRLEN];
	long			 p;
	size_t			 hlen;

	memset(ss, 0, sizeof(*ss));
	colon = strrchr(spec, ':');
	port = colon != NULL ? colon + 1 : spec;
	hlen = colon != NULL ? (size_t)(colon - spec) : 0;
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
		if (hlen == 2)
			goto bad;
		spec++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host) || !tg_parse_long(port, 0, 65535, &p))
		goto bad;
	if (hlen == 0)
		(void)snprintf(host, sizeof(host), "127.0.0.1");
	else
		(void)snprintf(host, sizeof(host), "%.*s", (int)hlen, spec);
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		return TG_OK;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		return TG_OK;
	}
bad:
	return tg_err_set(err, TG_PERM, "metrics_listen: want PORT, "
	    "ADDR:PORT or [ADDR6]:PORT, not \"%s\"", orig);
}

/*
 * tg_metrics_proc_start - when this process started, in Unix seconds:
 * /proc/stat's btime plus /proc/self/stat's starttime (field 22, clock
 * ticks after boot), as Prometheus' own clients compute it; now if
 * /proc cannot tell.
 */
static int64_t
tg_metrics_proc_start(void)
{
	unsigned long long	 ticks, btime = 0;
	char			 line[1024], *p;
	long			 hz = sysconf(_SC_CLK_TCK);
	FILE			*fp;
	int			 i;

	if (hz <= 0 || (fp = fopen("/proc/stat", "r")) == NULL)
		return (int64_t)time(NULL);
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "btime %llu", &btime) == 1)
			break;
	(void)fclose(fp);
	if (btime == 0 || (fp = fopen("/proc/self/stat", "r")) == NULL)
		return (int64_t)time(NULL);
	p = fgets(line, sizeof(line), fp);
	(void)fclose(fp);
	/* The command name may hold blanks: fields count from its ')'. */
	if (p == NULL || (p = strrchr(line, ')')) == NULL)
		return (int64_t)time(NULL);
	for (i = 2; i < 22 && p != NULL; i++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu", &ticks) != 1)
		return (int64_t)time(NULL);
	return (int64_t)(btime + ticks / (unsigned long long)hz);
}

/* tg_metrics_http_start - see metrics.h */
struct tg_metrics_http *
tg_metrics_http_start(const char *listen, unsigned int scope,
    struct tg_err *err)
{
	struct sockaddr_storage	 ss;
	struct tg_metrics_http	*h;
	sigset_t		 block, old;
	unsigned int		 flags = MHD_USE_AUTO_INTERNAL_THREAD;
	int			 r;

	if (tg_metrics_http_addr(listen, &ss, err) != TG_OK)
		return NULL;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (atomic_load(&tg_metrics_start_time) == 0)
		atomic_store(&tg_metrics_start_time, tg_metrics_proc_start());
	h = tg_calloc(1, sizeof(*h));
	h->scope = scope;
	/* The thread inherits our mask: the daemons' signals stay ours. */
	(void)sigemptyset(&block);
	(void)sigaddset(&block, SIGTERM);
	(void)sigaddset(&block, SIGINT);
	(void)sigaddset(&block, SIGHUP);
	(void)sigaddset(&block, SIGPIPE);
	if ((r = pthread_sigmask(SIG_BLOCK, &block, &old)) != 0)
		TG_PANIC("metrics: pthread_sigmask: %s", strerror(r));
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL,
	    tg_metrics_http_answer, h,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)TG_METRICS_HTTP_CONNS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)TG_METRICS_HTTP_IDLE,
	    MHD_OPTION_END);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (h->mhd == NULL) {
		(void)tg_err_set(err, TG_PERM, "metrics_listen %s: cannot "
		    "listen (address in use or not ours?)", listen);
		free(h);
		return NULL;
	}
	return h;
}

/* tg_metrics_http_port - see metrics.h */
unsigned int
tg_metrics_http_port(const struct tg_metrics_http *h)
{
	const union MHD_DaemonInfo	*di;

	di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	return di != NULL ? di->port : 0;
}

/* tg_metrics_http_stop - see metrics.h */
struct tg_metrics_http *
tg_metrics_http_stop(struct tg_metrics_http *h)
{
	if (h == NULL)
		return NULL;
	MHD_stop_daemon(h->mhd);
	free(h);
	return NULL;
}
