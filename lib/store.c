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
 * Asynchronous calls (tg_store_async_*) go to the backend's async_send
 * when it has one (Redis); otherwise the synchronous call answers at
 * once and the result waits in the handle's queue for the loop's next
 * turn, so no callback runs inside the call that started it.
 *
 * Threading: the store handle is read-only after open but for the
 * fallback, which has its own mutex.  An async handle belongs to the
 * thread running its loop.
 */
#include "config.h"

#include <event2/event.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tollgate/conf.h"
#include "tollgate/log.h"
#include "tollgate/store.h"
#include "tollgate/util.h"

#include "store_int.h"

#define TG_STORE_LOCAL_ID	((uint64_t)1 << 62)
#define TG_STORE_LOCAL_BUCKETS	256

/* One counter of the fallback. */
struct tg_store_lkey {
	struct tg_store_lkey	*next;
	char			*key;
	struct tg_store_entry	*ent;
	size_t			 n, cap;
};

struct tg_store_async {
	struct tg_store		*s;
	struct event_base	*base;
	struct event		*kick;		/* drains the queue */
	void			*be;		/* the backend's, or NULL */
	struct tg_store_areq	*head, **tail;	/* completed, to deliver */
};

struct tg_store {
	const struct tg_store_ops	*ops;
	void				*be;
	enum tg_store_on_error		 on_error;
	pthread_mutex_t			 lock;		/* the fallback */
	struct tg_store_lkey		*local[TG_STORE_LOCAL_BUCKETS];
	uint64_t			 local_seq;
	bool				 local_used;
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

static enum tg_status	tg_store_check(const char *, struct tg_err *);
static bool	tg_store_fallback(struct tg_store *, enum tg_status,
		    const struct tg_err *);
static void	tg_store_local_forget(struct tg_store *);
static struct tg_store_lkey *tg_store_local_key(struct tg_store *,
		    const char *, bool);
static void	tg_store_local_prune(struct tg_store_lkey *, uint64_t,
		    uint64_t);
static enum tg_status	tg_store_local_reserve(struct tg_store *,
			    const char *, uint64_t, uint64_t, uint64_t,
			    uint64_t, struct tg_store_quota *);
static enum tg_status	tg_store_local_drop(struct tg_store *, const char *,
			    uint64_t, bool);
static void	tg_store_local_usage(struct tg_store *, const char *,
		    uint64_t, uint64_t, struct tg_store_usage *);
static int	tg_store_leaves_cmp(const void *, const void *);
static int	tg_store_str_cmp(const void *, const void *);
static enum tg_status	tg_store_reserve_args(const char *, uint64_t,
			    uint64_t, uint64_t, uint64_t, struct tg_err *);
static void	tg_store_async_kick(evutil_socket_t, short, void *);
static void	tg_store_async_deliver(struct tg_store_areq *);
static void	tg_store_async_done(struct tg_store_areq *, enum tg_status,
		    const struct tg_store_quota *, const struct tg_err *);
static void	tg_store_async_start(struct tg_store_async *,
		    struct tg_store_areq *);

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
static enum tg_status
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

/*
 * tg_store_fallback - whether to answer locally after st: only for a
 * backend failure, only with on_error = local.  Success ends the
 * fallback's period, and its counters with it.
 */
static bool
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
static enum tg_status
tg_store_reserve_args(const char *key, uint64_t window_ms, uint64_t limit,
    uint64_t amount, uint64_t ttl_ms, struct tg_err *err)
{
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	if (window_ms == 0 || amount == 0 || ttl_ms == 0 ||
	    limit >= TG_STORE_LOCAL_ID || amount >= TG_STORE_LOCAL_ID ||
	    window_ms >= TG_STORE_LOCAL_ID || ttl_ms >= TG_STORE_LOCAL_ID)
		return tg_err_set(err, TG_PERM, "store: reserve: window, "
		    "amount and ttl must be positive, and all below 2^62");
	return TG_OK;
}

/* tg_store_reserve - check, then the backend, else maybe the fallback */
enum tg_status
tg_store_reserve(struct tg_store *s, const char *key, uint64_t window_ms,
    uint64_t limit, uint64_t amount, uint64_t ttl_ms,
    struct tg_store_quota *q, struct tg_err *err)
{
	struct tg_err	e;
	enum tg_status	st;

	memset(q, 0, sizeof(*q));
	if ((st = tg_store_reserve_args(key, window_ms, limit, amount, ttl_ms,
	    err)) != TG_OK)
		return st;
	st = s->ops->reserve(s->be, key, window_ms, limit, amount, ttl_ms, q,
	    &e);
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
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	if (id & TG_STORE_LOCAL_ID)
		return tg_store_local_drop(s, key, id, false);
	st = s->ops->commit(s->be, key, id, &e);
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
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	if (id & TG_STORE_LOCAL_ID)
		return tg_store_local_drop(s, key, id, true);
	st = s->ops->refund(s->be, key, id, &e);
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
	enum tg_status	st;

	memset(u, 0, sizeof(*u));
	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	if (window_ms == 0)
		return tg_err_set(err, TG_PERM, "store: usage: zero window");
	st = s->ops->usage(s->be, key, window_ms, limit, u, &e);
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
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	return s->ops->reset(s->be, key, err);
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
	enum tg_status	st;

	*keys = NULL;
	*n = 0;
	if (prefix == NULL)
		prefix = "";
	if (*prefix != '\0' && !tg_store_key_ok(prefix))
		return tg_store_check(prefix, err);
	if ((st = s->ops->list(s->be, prefix, keys, n, err)) != TG_OK)
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
	enum tg_status	st;

	*value = NULL;
	*len = 0;
	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	return s->ops->kv_get(s->be, key, value, len, err);
}

/* tg_store_kv_set_ttl - checked, then the backend */
enum tg_status
tg_store_kv_set_ttl(struct tg_store *s, const char *key, const void *value,
    size_t len, uint64_t ttl_ms, struct tg_err *err)
{
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	if (len > TG_STORE_VALUE_MAX || (value == NULL && len != 0) ||
	    ttl_ms >= TG_STORE_LOCAL_ID)
		return tg_err_set(err, TG_PERM, "store: value longer than %d "
		    "bytes, or ttl out of range", TG_STORE_VALUE_MAX);
	return s->ops->kv_set(s->be, key, value == NULL ? "" : value, len,
	    ttl_ms, err);
}

/* tg_store_kv_del - checked, then the backend */
enum tg_status
tg_store_kv_del(struct tg_store *s, const char *key, struct tg_err *err)
{
	enum tg_status	st;

	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	return s->ops->kv_del(s->be, key, err);
}

/* tg_store_kv_incr - checked, then the backend */
enum tg_status
tg_store_kv_incr(struct tg_store *s, const char *key, int64_t delta,
    uint64_t ttl_ms, int64_t *value, struct tg_err *err)
{
	enum tg_status	st;

	*value = 0;
	if ((st = tg_store_check(key, err)) != TG_OK)
		return st;
	if (ttl_ms >= TG_STORE_LOCAL_ID)
		return tg_err_set(err, TG_PERM, "store: ttl out of range");
	return s->ops->kv_incr(s->be, key, delta, ttl_ms, value, err);
}

/* tg_store_sweep - the backend's, if it needs one */
enum tg_status
tg_store_sweep(struct tg_store *s, size_t *removed, struct tg_err *err)
{
	if (s->ops->sweep == NULL)
		return TG_OK;
	return s->ops->sweep(s->be, removed, err);
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
static enum tg_status
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
		e->expires = now + ttl;
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
static void
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

/* tg_store_async_new - a handle for calls from base's loop */
struct tg_store_async *
tg_store_async_new(struct tg_store *s, struct event_base *base)
{
	struct tg_store_async	*a;

	a = tg_calloc(1, sizeof(*a));
	a->s = s;
	a->base = base;
	a->tail = &a->head;
	if ((a->kick = event_new(base, -1, 0, tg_store_async_kick, a)) ==
	    NULL)
		TG_PANIC("event_new failed");
	if (s->ops->async_new != NULL)
		a->be = s->ops->async_new(s->be, base);
	return a;
}

/* tg_store_async_free - finish everything pending, then free */
struct tg_store_async *
tg_store_async_free(struct tg_store_async *a)
{
	if (a == NULL)
		return NULL;
	/* In-flight calls complete into the queue, drained below. */
	if (a->be != NULL)
		a->s->ops->async_free(a->be);
	tg_store_async_kick(-1, 0, a);
	event_free(a->kick);
	free(a);
	return NULL;
}

/* tg_store_async_deliver - the caller's callback, then the request goes */
static void
tg_store_async_deliver(struct tg_store_areq *r)
{
	const struct tg_err	*e = r->st == TG_OK ? NULL : &r->err;

	if (r->kind == TG_STORE_A_RESERVE)
		r->qcb(r->st, r->st == TG_OK ? &r->q : NULL, e, r->arg);
	else
		r->dcb(r->st, e, r->arg);
	free(r->key);
	free(r);
}

/* tg_store_async_kick - deliver the queue (from the loop) */
static void
tg_store_async_kick(evutil_socket_t fd, short what, void *arg)
{
	struct tg_store_async	*a = arg;
	struct tg_store_areq	*r;

	(void)fd;
	(void)what;
	while ((r = a->head) != NULL) {
		if ((a->head = r->next) == NULL)
			a->tail = &a->head;
		tg_store_async_deliver(r);
	}
}

/* tg_store_async_queue - r has its result: deliver at the loop's turn */
static void
tg_store_async_queue(struct tg_store_areq *r)
{
	struct tg_store_async	*a = r->a;

	r->next = NULL;
	*a->tail = r;
	a->tail = &r->next;
	event_active(a->kick, 0, 0);
}

/*
 * tg_store_async_done - the backend's result, with the fallback applied
 * as for the synchronous calls; called from the loop, so the caller's
 * callback may run at once.
 */
static void
tg_store_async_done(struct tg_store_areq *r, enum tg_status st,
    const struct tg_store_quota *q, const struct tg_err *err)
{
	struct tg_store	*s = r->a->s;

	r->st = st;
	if (q != NULL)
		r->q = *q;
	if (err != NULL && st != TG_OK)
		r->err = *err;
	if (tg_store_fallback(s, st, &r->err)) {
		if (r->kind == TG_STORE_A_RESERVE)
			r->st = tg_store_local_reserve(s, r->key, r->window,
			    r->limit, r->amount, r->ttl, &r->q);
	}
	tg_store_async_deliver(r);
}

/* tg_store_async_sync - the synchronous call, for the queue */
static void
tg_store_async_sync(struct tg_store *s, struct tg_store_areq *r)
{
	switch (r->kind) {
	case TG_STORE_A_RESERVE:
		r->st = tg_store_reserve(s, r->key, r->window, r->limit,
		    r->amount, r->ttl, &r->q, &r->err);
		break;
	case TG_STORE_A_COMMIT:
		r->st = tg_store_commit(s, r->key, r->id, &r->err);
		break;
	case TG_STORE_A_REFUND:
		r->st = tg_store_refund(s, r->key, r->id, &r->err);
		break;
	}
}

/* tg_store_async_start - to the backend, or answered now and queued */
static void
tg_store_async_start(struct tg_store_async *a, struct tg_store_areq *r)
{
	struct tg_store	*s = a->s;

	r->a = a;
	r->done = tg_store_async_done;
	if (r->st != TG_OK || (r->id & TG_STORE_LOCAL_ID) || a->be == NULL) {
		if (r->st == TG_OK)
			tg_store_async_sync(s, r);
		tg_store_async_queue(r);
		return;
	}
	if ((r->st = s->ops->async_send(a->be, r, &r->err)) == TG_OK)
		return;
	if (tg_store_fallback(s, r->st, &r->err) &&
	    r->kind == TG_STORE_A_RESERVE)
		r->st = tg_store_local_reserve(s, r->key, r->window, r->limit,
		    r->amount, r->ttl, &r->q);
	tg_store_async_queue(r);
}

/* tg_store_async_req - a request for key (copied when valid) */
static struct tg_store_areq *
tg_store_async_req(enum tg_store_akind kind, const char *key)
{
	struct tg_store_areq	*r;

	r = tg_calloc(1, sizeof(*r));
	r->kind = kind;
	r->st = tg_store_check(key, &r->err);
	r->key = tg_strdup(r->st == TG_OK ? key : "");
	return r;
}

/* tg_store_async_reserve - as tg_store_reserve, answered by cb */
void
tg_store_async_reserve(struct tg_store_async *a, const char *key,
    uint64_t window_ms, uint64_t limit, uint64_t amount, uint64_t ttl_ms,
    tg_store_quota_cb cb, void *arg)
{
	struct tg_store_areq	*r;

	r = tg_store_async_req(TG_STORE_A_RESERVE, key);
	r->window = window_ms;
	r->limit = limit;
	r->amount = amount;
	r->ttl = ttl_ms;
	r->qcb = cb;
	r->arg = arg;
	if (r->st == TG_OK)
		r->st = tg_store_reserve_args(key, window_ms, limit, amount,
		    ttl_ms, &r->err);
	tg_store_async_start(a, r);
}

/* tg_store_async_commit - as tg_store_commit, answered by cb */
void
tg_store_async_commit(struct tg_store_async *a, const char *key,
    uint64_t id, tg_store_done_cb cb, void *arg)
{
	struct tg_store_areq	*r;

	r = tg_store_async_req(TG_STORE_A_COMMIT, key);
	r->id = id;
	r->dcb = cb;
	r->arg = arg;
	tg_store_async_start(a, r);
}

/* tg_store_async_refund - as tg_store_refund, answered by cb */
void
tg_store_async_refund(struct tg_store_async *a, const char *key,
    uint64_t id, tg_store_done_cb cb, void *arg)
{
	struct tg_store_areq	*r;

	r = tg_store_async_req(TG_STORE_A_REFUND, key);
	r->id = id;
	r->dcb = cb;
	r->arg = arg;
	tg_store_async_start(a, r);
}
