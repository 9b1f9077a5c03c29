/*
 * store_async - the asynchronous store calls (tg_store_async_*), for an
 * event loop.
 *
 * A call goes to the backend's async_send when it has one (Redis);
 * otherwise the synchronous call answers at once and the result waits
 * in the handle's queue for the loop's next turn, so no callback runs
 * inside the call that started it.  The local fallback applies to the
 * counters as for the synchronous calls (store.c), never to records.
 *
 * Threading: an async handle belongs to the thread running its loop.
 */
#include "config.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/metrics.h"
#include "tollgate/store.h"
#include "tollgate/util.h"

#include "store_int.h"

/* The store_ops metric's op label of each kind (enum tg_store_akind). */
static const char *const tg_store_async_ops[] = {
	"reserve", "commit", "refund", "usage", "kv_get", "kv_set", "kv_del",
	"kv_incr"
};
_Static_assert(TG_NITEMS(tg_store_async_ops) == TG_STORE_A_KV_INCR + 1,
    "an op name for each kind");

static void	tg_store_async_kick(evutil_socket_t, short, void *);
static void	tg_store_async_deliver(struct tg_store_areq *);
static void	tg_store_async_done(struct tg_store_areq *, enum tg_status,
		    const struct tg_store_quota *, const struct tg_err *);
static void	tg_store_async_start(struct tg_store_async *,
		    struct tg_store_areq *);
static void	tg_store_async_local(struct tg_store *,
		    struct tg_store_areq *);
static void	tg_store_async_metric(const struct tg_store_areq *,
		    enum tg_status);

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
	/*
	 * In-flight calls complete into the queue, drained below.  Calls a
	 * callback starts from now on fail at once: the backend's handle
	 * is gone.
	 */
	a->closing = true;
	if (a->be != NULL)
		a->s->ops->async_free(a->be);
	a->be = NULL;
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

	switch (r->kind) {
	case TG_STORE_A_RESERVE:
		r->qcb(r->st, r->st == TG_OK ? &r->q : NULL, e, r->arg);
		break;
	case TG_STORE_A_USAGE:
		r->ucb(r->st, r->st == TG_OK ? &r->u : NULL, e, r->arg);
		break;
	case TG_STORE_A_KV_GET:
		r->kcb(r->st, r->st == TG_OK ? r->value : NULL,
		    r->st == TG_OK ? r->len : 0, e, r->arg);
		break;
	case TG_STORE_A_KV_INCR:
		r->icb(r->st, r->st == TG_OK ? r->delta : 0, e, r->arg);
		break;
	case TG_STORE_A_COMMIT:
	case TG_STORE_A_REFUND:
	case TG_STORE_A_KV_SET:
	case TG_STORE_A_KV_DEL:
		r->dcb(r->st, e, r->arg);
		break;
	}
	free(r->value);
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

/* tg_store_async_metric - count a backend call and its time, as the
 * synchronous calls do (those count themselves) */
static void
tg_store_async_metric(const struct tg_store_areq *r, enum tg_status st)
{
	tg_metric_inc(TG_M_STORE_OPS, tg_store_async_ops[r->kind],
	    tg_status_name(st));
	tg_metric_since(TG_M_STORE_SECONDS, tg_store_async_ops[r->kind],
	    &r->t0);
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

	tg_store_async_metric(r, st);
	r->st = st;
	if (q != NULL)
		r->q = *q;
	if (err != NULL && st != TG_OK)
		r->err = *err;
	tg_store_async_local(s, r);
	tg_store_async_deliver(r);
}

/*
 * tg_store_async_local - the fallback after r's backend answer, as the
 * synchronous calls have it: counters only, never the records
 */
static void
tg_store_async_local(struct tg_store *s, struct tg_store_areq *r)
{
	if (r->kind > TG_STORE_A_USAGE || !tg_store_fallback(s, r->st,
	    &r->err))
		return;
	if (r->kind == TG_STORE_A_RESERVE)
		r->st = tg_store_local_reserve(s, r->key, r->window, r->limit,
		    r->amount, r->ttl, &r->q);
	else if (r->kind == TG_STORE_A_USAGE) {
		tg_store_local_usage(s, r->key, r->window, r->limit, &r->u);
		r->st = TG_OK;
	}
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
	case TG_STORE_A_USAGE:
		r->st = tg_store_usage(s, r->key, r->window, r->limit, &r->u,
		    &r->err);
		break;
	case TG_STORE_A_KV_GET:
		free(r->value);
		r->value = NULL;
		r->st = tg_store_kv_get(s, r->key, &r->value, &r->len,
		    &r->err);
		break;
	case TG_STORE_A_KV_SET:
		r->st = tg_store_kv_set_ttl(s, r->key, r->value, r->len,
		    r->ttl, &r->err);
		break;
	case TG_STORE_A_KV_DEL:
		r->st = tg_store_kv_del(s, r->key, &r->err);
		break;
	case TG_STORE_A_KV_INCR:
		r->st = tg_store_kv_incr(s, r->key, r->delta, r->ttl,
		    &r->delta, &r->err);
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
	if (r->st == TG_OK && a->closing)
		r->st = tg_err_set(&r->err, TG_TEMP, "store: closing");
	if (r->st != TG_OK || (r->id & TG_STORE_LOCAL_ID) || a->be == NULL) {
		if (r->st == TG_OK)
			tg_store_async_sync(s, r);
		tg_store_async_queue(r);
		return;
	}
	tg_metric_now(&r->t0);
	if ((r->st = s->ops->async_send(a->be, r, &r->err)) == TG_OK)
		return;
	tg_store_async_metric(r, r->st);
	tg_store_async_local(s, r);
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

/* tg_store_async_usage - as tg_store_usage, answered by cb */
void
tg_store_async_usage(struct tg_store_async *a, const char *key,
    uint64_t window_ms, uint64_t limit, tg_store_usage_cb cb, void *arg)
{
	struct tg_store_areq	*r;

	r = tg_store_async_req(TG_STORE_A_USAGE, key);
	r->window = window_ms;
	r->limit = limit;
	r->ucb = cb;
	r->arg = arg;
	if (r->st == TG_OK && window_ms == 0)
		r->st = tg_err_set(&r->err, TG_PERM, "store: usage: zero "
		    "window");
	tg_store_async_start(a, r);
}

/* tg_store_async_kv_get - as tg_store_kv_get, answered by cb */
void
tg_store_async_kv_get(struct tg_store_async *a, const char *key,
    tg_store_kv_cb cb, void *arg)
{
	struct tg_store_areq	*r;

	r = tg_store_async_req(TG_STORE_A_KV_GET, key);
	r->kcb = cb;
	r->arg = arg;
	tg_store_async_start(a, r);
}

/* tg_store_async_kv_set - as tg_store_kv_set_ttl (value copied) */
void
tg_store_async_kv_set(struct tg_store_async *a, const char *key,
    const void *value, size_t len, uint64_t ttl_ms, tg_store_done_cb cb,
    void *arg)
{
	struct tg_store_areq	*r;

	r = tg_store_async_req(TG_STORE_A_KV_SET, key);
	r->dcb = cb;
	r->arg = arg;
	r->ttl = ttl_ms;
	if (r->st == TG_OK && (len > TG_STORE_VALUE_MAX || (value == NULL &&
	    len != 0) || ttl_ms >= TG_STORE_LOCAL_ID))
		r->st = tg_err_set(&r->err, TG_PERM, "store: value longer "
		    "than %d bytes, or ttl out of range", TG_STORE_VALUE_MAX);
	if (r->st == TG_OK) {
		r->value = tg_malloc(len + 1);
		if (len > 0)
			memcpy(r->value, value, len);
		r->value[len] = '\0';
		r->len = len;
	}
	tg_store_async_start(a, r);
}

/* tg_store_async_kv_del - as tg_store_kv_del, answered by cb */
void
tg_store_async_kv_del(struct tg_store_async *a, const char *key,
    tg_store_done_cb cb, void *arg)
{
	struct tg_store_areq	*r;

	r = tg_store_async_req(TG_STORE_A_KV_DEL, key);
	r->dcb = cb;
	r->arg = arg;
	tg_store_async_start(a, r);
}

/* tg_store_async_kv_incr - as tg_store_kv_incr, answered by cb */
void
tg_store_async_kv_incr(struct tg_store_async *a, const char *key,
    int64_t delta, uint64_t ttl_ms, tg_store_int_cb cb, void *arg)
{
	struct tg_store_areq	*r;

	r = tg_store_async_req(TG_STORE_A_KV_INCR, key);
	r->delta = delta;
	r->ttl = ttl_ms;
	r->icb = cb;
	r->arg = arg;
	if (r->st == TG_OK && ttl_ms >= TG_STORE_LOCAL_ID)
		r->st = tg_err_set(&r->err, TG_PERM, "store: ttl out of "
		    "range");
	tg_store_async_start(a, r);
}
