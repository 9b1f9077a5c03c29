/*
 * store - the store interface: argument checks, backend dispatch, the
 * [store] configuration, the sliding-window arithmetic, and the local
 * fallback.
 *
 * Backends (store_lmdb.c, store_redis.c) do one atomic operation each
 * and report failures in a struct tg_err; this file decides what a
 * failure means.  With on_error = local, a TG_TEMP from the backend on
 * reserve, commit, refund or usage is answered from a per-process
 * in-memory window instead: the limit is enforced approximately (each
 * process counts alone, and from zero) while the backend is down, so an
 * account cannot send without limit during an outage.  Reservation ids
 * from the fallback have TG_STORE_LOCAL_ID set, so their commit and
 * refund go back to it; the fallback forgets everything once the
 * backend answers again, its windows being only a stopgap.
 *
 * Asynchronous calls (tg_store_async_*) are in store_async.c.
 *
 * Threading: the store handle is read-only after open but for the
 * fallback, which has its own mutex.  An async handle belongs to the
 * thread running its loop.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tollgate/conf.h"
#include "tollgate/log.h"
#include "tollgate/metrics.h"
#include "tollgate/store.h"
#include "tollgate/util.h"

#include "store_int.h"

/* One counter of the fallback. */
struct tg_store_lkey {
	struct tg_store_lkey	*next;
	char			*key;
	struct tg_store_entry	*ent;
	size_t			 n, cap;
};

static struct {
	int	 backend;
	char	*path;
	char	*url;
	char	*password;
	long	 timeout;
	long	 breaker_failures;
	long	 breaker_interval;
	long	 map_size;
	int	 on_error;
} tg_store_conf_store;

static const char *const tg_store_backend_names[] = { "embedded", "redis",
    NULL };
static const char *const tg_store_on_error_names[] = { "fail", "local",
    NULL };

static const struct tg_param tg_store_param_table[] = {
	TG_PARAM_ENUM("backend", "embedded", &tg_store_conf_store.backend,
	    tg_store_backend_names, "where counters live"),
	TG_PARAM_STRING("path", "/var/lib/tollgate/store",
	    &tg_store_conf_store.path,
	    "embedded: the directory of the LMDB store"),
	TG_PARAM_STRING("url", "redis://127.0.0.1:6379/0",
	    &tg_store_conf_store.url,
	    "redis: redis://HOST:PORT/DB or unix:PATH"),
	TG_PARAM_STRING("password", "", &tg_store_conf_store.password,
	    "redis: AUTH password; empty: none"),
	TG_PARAM_TIME("timeout", "1s", &tg_store_conf_store.timeout, 1, 60,
	    "redis: longest wait for connecting or one answer"),
	TG_PARAM_LONG("breaker_failures", "3",
	    &tg_store_conf_store.breaker_failures, 1, 1000,
	    "redis: failures in a row after which calls fail at once"),
	TG_PARAM_TIME("breaker_interval", "5s",
	    &tg_store_conf_store.breaker_interval, 1, 3600,
	    "redis: how long calls fail at once before the next try"),
	TG_PARAM_SIZE("map_size", "1g", &tg_store_conf_store.map_size,
	    1L << 20, LONG_MAX, "embedded: largest size of the store file"),
	TG_PARAM_ENUM("on_error", "fail", &tg_store_conf_store.on_error,
	    tg_store_on_error_names,
	    "store failing: fail (each rule's on_error) or local counters"),
	TG_PARAM_END
};

static void	tg_store_local_forget(struct tg_store *);
static struct tg_store_lkey *tg_store_local_key(struct tg_store *,
		    const char *, bool);
static void	tg_store_local_prune(struct tg_store_lkey *, uint64_t,
		    uint64_t);
static enum tg_status	tg_store_local_drop(struct tg_store *, const char *,
			    uint64_t, bool);
static int	tg_store_leaves_cmp(const void *, const void *);
static int	tg_store_str_cmp(const void *, const void *);

/* tg_store_params - the [store] section */
const struct tg_param *
tg_store_params(void)
{
	return tg_store_param_table;
}

/* tg_store_conf_loaded - the [store] values as an open argument */
void
tg_store_conf_loaded(struct tg_store_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->backend = (enum tg_store_backend)tg_store_conf_store.backend;
	c->path = tg_store_conf_store.path;
	c->url = tg_store_conf_store.url;
	c->password = tg_store_conf_store.password;
	c->timeout_ms = tg_store_conf_store.timeout * 1000;
	c->breaker_failures = tg_store_conf_store.breaker_failures;
	c->breaker_interval_ms = tg_store_conf_store.breaker_interval * 1000;
	c->map_size = (size_t)tg_store_conf_store.map_size;
	c->on_error = (enum tg_store_on_error)tg_store_conf_store.on_error;
}

/* tg_store_now_ms - milliseconds since the epoch */
uint64_t
tg_store_now_ms(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* tg_store_entry_leaves - the window's end, or the lapse if earlier */
uint64_t
tg_store_entry_leaves(const struct tg_store_entry *e, uint64_t window)
{
	uint64_t	end = e->t + window;

	return e->expires != 0 && e->expires < end ? e->expires : end;
}

/* tg_store_leaves_cmp - order entries by departure (qsort) */
static int
tg_store_leaves_cmp(const void *a, const void *b)
{
	const uint64_t	*x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* tg_store_decide - admit or refuse amount over the live entries */
void
tg_store_decide(const struct tg_store_entry *live, size_t n, uint64_t now,
    uint64_t window, uint64_t limit, uint64_t amount,
    struct tg_store_quota *q)
{
	uint64_t	 used = 0, freed = 0, (*dep)[2];
	size_t		 i;

	for (i = 0; i < n; i++)
		used += live[i].amount;
	memset(q, 0, sizeof(*q));
	if (amount <= limit && used <= limit - amount) {
		q->admitted = true;
		q->used = used + amount;
		q->remaining = limit - q->used;
		return;
	}
	q->used = used;
	q->remaining = used < limit ? limit - used : 0;
	q->retry_after_ms = window;
	if (amount > limit)
		return;
	/* The earliest departure after which the request fits. */
	dep = tg_calloc(n == 0 ? 1 : n, sizeof(*dep));
	for (i = 0; i < n; i++) {
		dep[i][0] = tg_store_entry_leaves(&live[i], window);
		dep[i][1] = live[i].amount;
	}
	qsort(dep, n, sizeof(*dep), tg_store_leaves_cmp);
	for (i = 0; i < n; i++) {
		freed += dep[i][1];
		if (used - freed <= limit - amount) {
			q->retry_after_ms = dep[i][0] > now ?
			    dep[i][0] - now : 0;
			break;
		}
	}
	free(dep);
}

/* tg_store_summary - used, remaining, the first departure */
void
tg_store_summary(const struct tg_store_entry *live, size_t n, uint64_t now,
    uint64_t window, uint64_t limit, struct tg_store_usage *u)
{
	uint64_t	first = UINT64_MAX, l;
	size_t		i;

	memset(u, 0, sizeof(*u));
	for (i = 0; i < n; i++) {
		u->used += live[i].amount;
		if ((l = tg_store_entry_leaves(&live[i], window)) < first)
			first = l;
	}
	u->remaining = u->used < limit ? limit - u->used : 0;
	u->frees_in_ms = n == 0 ? 0 : first > now ? first - now : 0;
}

/* tg_store_key_ok - 1..TG_STORE_KEY_MAX bytes, printable, no {} */
bool
tg_store_key_ok(const char *key)
{
	const unsigned char	*p;
	size_t			 n;

	if (key == NULL || *key == '\0')
		return false;
	for (p = (const unsigned char *)key, n = 0; *p != '\0'; p++, n++) {
		if (n >= TG_STORE_KEY_MAX || *p <= ' ' || *p == 0x7f ||
		    *p == '{' || *p == '}')
			return false;
	}
	return true;
}

/* tg_store_check - a key's TG_PERM with a printable reason */
enum tg_status
tg_store_check(const char *key, struct tg_err *err)
{
	if (tg_store_key_ok(key))
		return TG_OK;
	return tg_err_set(err, TG_PERM, "store: bad key: empty, longer than "
	    "%d bytes, or with a control character, space, { or }",
	    TG_STORE_KEY_MAX);
}

/* tg_store_open - the backend conf names */
struct tg_store *
tg_store_open(const struct tg_store_conf *conf, struct tg_err *err)
{
	struct tg_store	*s;

	s = tg_calloc(1, sizeof(*s));
	switch (conf->backend) {
	case TG_STORE_EMBEDDED:
		s->ops = &tg_store_lmdb_ops;
		s->be = tg_store_lmdb_open(conf, err);
		break;
	case TG_STORE_REDIS:
		s->ops = &tg_store_redis_ops;
		s->be = tg_store_redis_open(conf, err);
		break;
	}
	if (s->ops == NULL) {
		(void)tg_err_set(err, TG_PERM, "store: unknown backend %d",
		    (int)conf->backend);
		free(s);
		return NULL;
	}
	if (s->be == NULL) {
		free(s);
		return NULL;
	}
	s->on_error = conf->on_error;
	if (pthread_mutex_init(&s->lock, NULL) != 0)
		TG_PANIC("pthread_mutex_init failed");
	return s;
}

/* tg_store_close - the backend, then the fallback's counters */
struct tg_store *
tg_store_close(struct tg_store *s)
{
	if (s == NULL)
		return NULL;
	s->ops->close(s->be);
	tg_store_local_forget(s);
	(void)pthread_mutex_destroy(&s->lock);
	free(s);
	return NULL;
}

/* tg_store_backend_name - for logs and tollgatectl */
const char *
tg_store_backend_name(const struct tg_store *s)
{
	return s->ops->name;
}

/* tg_store_metric - count one backend operation and its time; st */
static enum tg_status
tg_store_metric(const char *op, enum tg_status st, const struct timespec *t0)
{
	tg_metric_inc(TG_M_STORE_OPS, op, tg_status_name(st));
	tg_metric_since(TG_M_STORE_SECONDS, op, t0);
	return st;
}

/*
 * tg_store_fallback - whether to answer locally after st: only for a
 * backend failure, only with on_error = local.  Success ends the
 * fallback's period, and its counters with it.
 */
bool
tg_store_fallback(struct tg_store *s, enum tg_status st,
    const struct tg_err *err)
{
	if (s->on_error != TG_STORE_ON_ERROR_LOCAL)
		return false;
	if (st != TG_TEMP) {
		if (__atomic_load_n(&s->local_used, __ATOMIC_ACQUIRE)) {
			tg_log_notice(NULL, "store: %s answers again, local "
			    "counters dropped", s->ops->name);
			tg_store_local_forget(s);
		}
		return false;
	}
	tg_log_warn_limited(NULL, "store-local", 60, "store: %s; enforcing "
	    "limits approximately with local counters", err->text);
	return true;
}

/* tg_store_reserve_args - the key and the numbers reserve accepts */
enum tg_status
tg_store_reserve_args(const char *key, uint64_t window_ms, uint64_t limit,
    uint64_t amount, uint64_t ttl_ms, struct tg_err *err)
{
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	/* ttl 0 is allowed: the entry is committed at once. */
	if (window_ms == 0 || amount == 0 ||
	    limit >= TG_STORE_LOCAL_ID || amount >= TG_STORE_LOCAL_ID ||
	    window_ms >= TG_STORE_LOCAL_ID || ttl_ms >= TG_STORE_LOCAL_ID)
		return tg_err_set(err, TG_PERM, "store: reserve: window and "
		    "amount must be positive, and all below 2^62");
	return TG_OK;
}

/* tg_store_reserve - check, then the backend, else maybe the fallback */
enum tg_status
tg_store_reserve(struct tg_store *s, const char *key, uint64_t window_ms,
    uint64_t limit, uint64_t amount, uint64_t ttl_ms,
    struct tg_store_quota *q, struct tg_err *err)
{
	struct tg_err	e;
	struct timespec	t0;
	enum tg_status	st;

	memset(q, 0, sizeof(*q));
	if ((st = tg_store_reserve_args(key, window_ms, limit, amount, ttl_ms,
	    err)) != TG_OK)
		return st;
	tg_metric_now(&t0);
	st = tg_store_metric("reserve", s->ops->reserve(s->be, key, window_ms,
	    limit, amount, ttl_ms, q, &e), &t0);
	if (!tg_store_fallback(s, st, &e)) {
		if (st != TG_OK && err != NULL)
			*err = e;
		return st;
	}
	return tg_store_local_reserve(s, key, window_ms, limit, amount,
	    ttl_ms, q);
}

/* tg_store_commit - a fallback id stays in the fallback */
enum tg_status
tg_store_commit(struct tg_store *s, const char *key, uint64_t id,
    struct tg_err *err)
{
	struct tg_err	e;
	struct timespec	t0;
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	if (id & TG_STORE_LOCAL_ID)
		return tg_store_local_drop(s, key, id, false);
	tg_metric_now(&t0);
	st = tg_store_metric("commit", s->ops->commit(s->be, key, id, &e), &t0);
	/* The fallback does not know the id: the failure stands. */
	(void)tg_store_fallback(s, st, &e);
	if (st != TG_OK && err != NULL)
		*err = e;
	return st;
}

/* tg_store_refund - as commit */
enum tg_status
tg_store_refund(struct tg_store *s, const char *key, uint64_t id,
    struct tg_err *err)
{
	struct tg_err	e;
	struct timespec	t0;
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	if (id & TG_STORE_LOCAL_ID)
		return tg_store_local_drop(s, key, id, true);
	tg_metric_now(&t0);
	st = tg_store_metric("refund", s->ops->refund(s->be, key, id, &e), &t0);
	if (st != TG_OK && err != NULL)
		*err = e;
	return st;
}

/* tg_store_usage - the backend's window, else maybe the fallback's */
enum tg_status
tg_store_usage(struct tg_store *s, const char *key, uint64_t window_ms,
    uint64_t limit, struct tg_store_usage *u, struct tg_err *err)
{
	struct tg_err	e;
	struct timespec	t0;
	enum tg_status	st;

	memset(u, 0, sizeof(*u));
	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	if (window_ms == 0)
		return tg_err_set(err, TG_PERM, "store: usage: zero window");
	tg_metric_now(&t0);
	st = tg_store_metric("usage", s->ops->usage(s->be, key, window_ms, limit,
	    u, &e), &t0);
	if (!tg_store_fallback(s, st, &e)) {
		if (st != TG_OK && err != NULL)
			*err = e;
		return st;
	}
	tg_store_local_usage(s, key, window_ms, limit, u);
	return TG_OK;
}

/* tg_store_reset - the backend only: the fallback is forgotten anyway */
enum tg_status
tg_store_reset(struct tg_store *s, const char *key, struct tg_err *err)
{
	struct timespec	t0;
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	tg_metric_now(&t0);
	return tg_store_metric("reset", s->ops->reset(s->be, key, err), &t0);
}

/* tg_store_str_cmp - strcmp for qsort over char * */
static int
tg_store_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* tg_store_list - the backend's keys, sorted */
enum tg_status
tg_store_list(struct tg_store *s, const char *prefix, char ***keys,
    size_t *n, struct tg_err *err)
{
	struct timespec	t0;
	enum tg_status	st;

	*keys = NULL;
	*n = 0;
	if (prefix == NULL)
		prefix = "";
	if (*prefix != '\0' && !tg_store_key_ok(prefix))
		return tg_store_check(prefix, err);
	tg_metric_now(&t0);
	if ((st = tg_store_metric("list", s->ops->list(s->be, prefix, keys, n,
	    err), &t0)) != TG_OK)
		return st;
	if (*n > 1)
		qsort(*keys, *n, sizeof(**keys), tg_store_str_cmp);
	return TG_OK;
}

/* tg_store_list_free - the strings and the array */
char **
tg_store_list_free(char **keys, size_t n)
{
	size_t	i;

	for (i = 0; keys != NULL && i < n; i++)
		free(keys[i]);
	free(keys);
	return NULL;
}

/* tg_store_kv_get - checked, then the backend */
enum tg_status
tg_store_kv_get(struct tg_store *s, const char *key, char **value,
    size_t *len, struct tg_err *err)
{
	struct timespec	t0;
	enum tg_status	st;

	*value = NULL;
	*len = 0;
	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	tg_metric_now(&t0);
	return tg_store_metric("kv_get", s->ops->kv_get(s->be, key, value, len,
	    err), &t0);
}

/* tg_store_kv_set_ttl - checked, then the backend */
enum tg_status
tg_store_kv_set_ttl(struct tg_store *s, const char *key, const void *value,
    size_t len, uint64_t ttl_ms, struct tg_err *err)
{
	struct timespec	t0;
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	if (len > TG_STORE_VALUE_MAX || (value == NULL && len != 0) ||
	    ttl_ms >= TG_STORE_LOCAL_ID)
		return tg_err_set(err, TG_PERM, "store: value longer than %d "
		    "bytes, or ttl out of range", TG_STORE_VALUE_MAX);
	tg_metric_now(&t0);
	return tg_store_metric("kv_set", s->ops->kv_set(s->be, key,
	    value == NULL ? "" : value, len, ttl_ms, err), &t0);
}

/* tg_store_kv_del - checked, then the backend */
enum tg_status
tg_store_kv_del(struct tg_store *s, const char *key, struct tg_err *err)
{
	struct timespec	t0;
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	tg_metric_now(&t0);
	return tg_store_metric("kv_del", s->ops->kv_del(s->be, key, err), &t0);
}

/* tg_store_kv_incr - checked, then the backend */
enum tg_status
tg_store_kv_incr(struct tg_store *s, const char *key, int64_t delta,
    uint64_t ttl_ms, int64_t *value, struct tg_err *err)
{
	struct timespec	t0;
	enum tg_status	st;

	*value = 0;
	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	if (ttl_ms >= TG_STORE_LOCAL_ID)
		return tg_err_set(err, TG_PERM, "store: ttl out of range");
	tg_metric_now(&t0);
	return tg_store_metric("kv_incr", s->ops->kv_incr(s->be, key, delta,
	    ttl_ms, value, err), &t0);
}

/* tg_store_kv_list - checked, then the backend's pages */
enum tg_status
tg_store_kv_list(struct tg_store *s, const char *prefix,
    tg_store_kv_list_cb cb, void *arg, struct tg_err *err)
{
	struct timespec	t0;

	if (prefix == NULL || !tg_store_key_ok(prefix))
		return tg_store_check(prefix, err);
	tg_metric_now(&t0);
	return tg_store_metric("kv_list", s->ops->kv_list(s->be, prefix, cb,
	    arg, err), &t0);
}

/* tg_store_kv_batch_check - n in range and every key valid */
static enum tg_status
tg_store_kv_batch_check(const char *const *keys, size_t n,
    struct tg_err *err)
{
	enum tg_status	st;
	size_t		i;

	if (n == 0 || n > TG_STORE_BATCH_MAX)
		return tg_err_set(err, TG_PERM, "store: batch of %zu keys: "
		    "not 1 to %d", n, TG_STORE_BATCH_MAX);
	for (i = 0; i < n; i++)
		if ((st = tg_store_check(keys[i], err)) != TG_OK)
			return st;
	return TG_OK;
}

/* tg_store_kv_mget - checked, then the backend */
enum tg_status
tg_store_kv_mget(struct tg_store *s, const char *const *keys, size_t n,
    int64_t *values, struct tg_err *err)
{
	struct timespec	t0;
	enum tg_status	st;

	if ((st = tg_store_kv_batch_check(keys, n, err)) != TG_OK)
		return st;
	memset(values, 0, n * sizeof(*values));
	tg_metric_now(&t0);
	return tg_store_metric("kv_mget", s->ops->kv_mget(s->be, keys, n,
	    values, err), &t0);
}

/* tg_store_kv_mincr - checked, then the backend */
enum tg_status
tg_store_kv_mincr(struct tg_store *s, const char *const *keys,
    const int64_t *deltas, size_t n, uint64_t ttl_ms, int64_t *values,
    struct tg_err *err)
{
	struct timespec	t0;
	enum tg_status	st;

	if ((st = tg_store_kv_batch_check(keys, n, err)) != TG_OK)
		return st;
	if (ttl_ms >= TG_STORE_LOCAL_ID)
		return tg_err_set(err, TG_PERM, "store: ttl out of range");
	tg_metric_now(&t0);
	return tg_store_metric("kv_mincr", s->ops->kv_mincr(s->be, keys,
	    deltas, n, ttl_ms, values, err), &t0);
}

/* tg_store_sweep - the backend's, if it needs one */
enum tg_status
tg_store_sweep(struct tg_store *s, size_t *removed, struct tg_err *err)
{
	struct timespec	t0;

	if (s->ops->sweep == NULL)
		return TG_OK;
	tg_metric_now(&t0);
	return tg_store_metric("sweep", s->ops->sweep(s->be, removed, err),
	    &t0);
}

/* tg_store_local_forget - drop every fallback counter */
static void
tg_store_local_forget(struct tg_store *s)
{
	struct tg_store_lkey	*k, *next;
	size_t			 i;

	(void)pthread_mutex_lock(&s->lock);
	for (i = 0; i < TG_STORE_LOCAL_BUCKETS; i++) {
		for (k = s->local[i]; k != NULL; k = next) {
			next = k->next;
			free(k->key);
			free(k->ent);
			free(k);
		}
		s->local[i] = NULL;
	}
	__atomic_store_n(&s->local_used, false, __ATOMIC_RELEASE);
	(void)pthread_mutex_unlock(&s->lock);
}

/* tg_store_local_key - the fallback counter of key (lock held) */
static struct tg_store_lkey *
tg_store_local_key(struct tg_store *s, const char *key, bool create)
{
	struct tg_store_lkey	*k;
	const unsigned char	*p;
	uint32_t		 h = 2166136261u;	/* FNV-1a */

	for (p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	h %= TG_STORE_LOCAL_BUCKETS;
	for (k = s->local[h]; k != NULL; k = k->next)
		if (strcmp(k->key, key) == 0)
			return k;
	if (!create)
		return NULL;
	k = tg_calloc(1, sizeof(*k));
	k->key = tg_strdup(key);
	k->next = s->local[h];
	s->local[h] = k;
	return k;
}

/* tg_store_local_prune - drop the entries that stopped counting */
static void
tg_store_local_prune(struct tg_store_lkey *k, uint64_t now, uint64_t window)
{
	size_t	i, j;

	for (i = j = 0; i < k->n; i++)
		if (tg_store_entry_leaves(&k->ent[i], window) > now)
			k->ent[j++] = k->ent[i];
	k->n = j;
}

/* tg_store_local_reserve - reserve in the process's own window */
enum tg_status
tg_store_local_reserve(struct tg_store *s, const char *key,
    uint64_t window, uint64_t limit, uint64_t amount, uint64_t ttl,
    struct tg_store_quota *q)
{
	struct tg_store_lkey	*k;
	struct tg_store_entry	*e;
	uint64_t		 now = tg_store_now_ms();

	(void)pthread_mutex_lock(&s->lock);
	__atomic_store_n(&s->local_used, true, __ATOMIC_RELEASE);
	k = tg_store_local_key(s, key, true);
	tg_store_local_prune(k, now, window);
	tg_store_decide(k->ent, k->n, now, window, limit, amount, q);
	q->approximate = true;
	if (q->admitted) {
		if (k->n == k->cap) {
			k->cap = k->cap == 0 ? 16 : k->cap * 2;
			k->ent = tg_reallocarray(k->ent, k->cap,
			    sizeof(*k->ent));
		}
		e = &k->ent[k->n++];
		e->id = q->id = TG_STORE_LOCAL_ID | ++s->local_seq;
		e->t = now;
		e->amount = amount;
		/* ttl 0: committed at once, as a commit leaves it */
		e->expires = ttl == 0 ? 0 : now + ttl;
	}
	(void)pthread_mutex_unlock(&s->lock);
	return TG_OK;
}

/* tg_store_local_drop - commit (refund false) or refund a fallback id */
static enum tg_status
tg_store_local_drop(struct tg_store *s, const char *key, uint64_t id,
    bool refund)
{
	struct tg_store_lkey	*k;
	enum tg_status		 st = TG_NOTFOUND;
	size_t			 i;

	(void)pthread_mutex_lock(&s->lock);
	k = tg_store_local_key(s, key, false);
	for (i = 0; k != NULL && i < k->n; i++) {
		if (k->ent[i].id != id)
			continue;
		if (refund)
			k->ent[i] = k->ent[--k->n];
		else if (k->ent[i].expires > tg_store_now_ms())
			k->ent[i].expires = 0;
		else if (k->ent[i].expires != 0)
			break;
		st = TG_OK;
		break;
	}
	(void)pthread_mutex_unlock(&s->lock);
	return st;
}

/* tg_store_local_usage - the fallback's view of key */
void
tg_store_local_usage(struct tg_store *s, const char *key, uint64_t window,
    uint64_t limit, struct tg_store_usage *u)
{
	struct tg_store_lkey	*k;
	uint64_t		 now = tg_store_now_ms();

	(void)pthread_mutex_lock(&s->lock);
	if ((k = tg_store_local_key(s, key, false)) != NULL) {
		tg_store_local_prune(k, now, window);
		tg_store_summary(k->ent, k->n, now, window, limit, u);
	} else
		tg_store_summary(NULL, 0, now, window, limit, u);
	u->approximate = true;
	(void)pthread_mutex_unlock(&s->lock);
}
