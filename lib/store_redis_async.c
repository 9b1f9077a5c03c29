/*
 * store_redis_async - the Redis backend's asynchronous calls, for an
 * event loop (policyd).
 *
 * Each async handle owns one hiredis async connection on hiredis's
 * libevent adapter, made with its first call; hiredis calls each reply
 * callback exactly once (with NULL when the connection goes), and each
 * call completes its request exactly once from there.  Counters are
 * scripts (as store_redis.c's); records are plain GET, SET and DEL.
 * hiredis 0.14 has no command timeout, so each call has a timer: when
 * it fires, the connection is closed, every call on it fails with
 * TG_TEMP, and the next call connects again.  NOSCRIPT is answered by sending the script
 * itself with EVAL, which also caches it; a hash not known yet is
 * fetched with SCRIPT LOAD beside the first EVAL.  The breaker and the
 * script hashes are the synchronous side's (store_redis.c).
 *
 * Reply objects never leave this file.  Threading: a handle belongs to
 * its loop's thread; the shared handle's fields are under its mutex.
 */
#include "config.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/store.h"
#include "tollgate/util.h"

#include "store_int.h"
#include "store_redis_int.h"

struct tg_redis_async {
	struct tg_store_redis	*r;
	struct event_base	*base;
	redisAsyncContext	*ac;
	bool			 freeing;
	const char		*drop_reason;	/* while dropping ac */
	char			 setup_err[256]; /* AUTH or SELECT refused */
};

/* One call in flight. */
struct tg_redis_pending {
	struct tg_redis_async	*ra;
	struct tg_store_areq	*req;
	struct event		*timer;
	enum tg_redis_script	 which;
	bool			 plain;		/* a command, not a script */
	bool			 eval;		/* send the text, not hash */
	int			 nargs;
	char			 b[4][24];
	char			*keys[3];
	int			 nkeys;
};

static void	tg_redis_pending_free(struct tg_redis_pending *);
static void	tg_redis_async_drop(struct tg_redis_async *, const char *);
static void	tg_redis_async_connected(const redisAsyncContext *, int);
static void	tg_redis_async_disconnected(const redisAsyncContext *, int);
static void	tg_redis_async_loaded(redisAsyncContext *, void *, void *);
static void	tg_redis_async_setup(redisAsyncContext *, void *, void *);
static int	tg_redis_async_cmd(struct tg_redis_pending *,
		    redisAsyncContext *);
static void	tg_redis_async_reply(redisAsyncContext *, void *, void *);
static int	tg_redis_async_plain(struct tg_redis_pending *,
		    redisAsyncContext *);
static enum tg_status	tg_redis_async_answer(struct tg_store_redis *,
			    const redisReply *, struct tg_store_areq *,
			    struct tg_store_quota *, struct tg_err *);
static void	tg_redis_async_args(struct tg_redis_pending *,
		    const struct tg_store_areq *);
static void	tg_redis_async_timeout(evutil_socket_t, short, void *);
static redisAsyncContext *tg_redis_async_connect(struct tg_redis_async *,
		    struct tg_err *);

/* tg_redis_pending_free - the call's keys and itself */
static void
tg_redis_pending_free(struct tg_redis_pending *p)
{
	int	i;

	for (i = 0; i < p->nkeys; i++)
		free(p->keys[i]);
	free(p);
}

/* tg_store_redis_async_new - a handle; it connects with its first call */
void *
tg_store_redis_async_new(void *arg, struct event_base *base)
{
	struct tg_redis_async	*ra;

	ra = tg_calloc(1, sizeof(*ra));
	ra->r = arg;
	ra->base = base;
	return ra;
}

/* tg_redis_async_drop - close the connection: its calls fail now */
static void
tg_redis_async_drop(struct tg_redis_async *ra, const char *why)
{
	redisAsyncContext	*ac = ra->ac;

	if (ac == NULL)
		return;
	ra->ac = NULL;
	ra->drop_reason = why;
	redisAsyncFree(ac);
	ra->drop_reason = NULL;
}

/* tg_store_redis_async_free - fail what is in flight, then free */
void
tg_store_redis_async_free(void *arg)
{
	struct tg_redis_async	*ra = arg;

	ra->freeing = true;
	tg_redis_async_drop(ra, "store closed");
	free(ra);
}

/* tg_redis_async_connected - a failed connect counts for the breaker */
static void
tg_redis_async_connected(const redisAsyncContext *c, int status)
{
	struct tg_redis_async	*ra = c->data;

	if (status == REDIS_OK)
		return;
	/* hiredis frees c after this; its calls fail. */
	if (ra->ac == c)
		ra->ac = NULL;
	tg_redis_put(ra->r, NULL, false);
}

/* tg_redis_async_disconnected - the server went away */
static void
tg_redis_async_disconnected(const redisAsyncContext *c, int status)
{
	struct tg_redis_async	*ra = c->data;

	if (ra->ac != c)
		return;		/* our own drop, already counted */
	ra->ac = NULL;
	if (status != REDIS_OK)
		tg_redis_put(ra->r, NULL, false);
}

/* tg_redis_async_loaded - SCRIPT LOAD's answer: remember the hash */
static void
tg_redis_async_loaded(redisAsyncContext *c, void *reply, void *priv)
{
	struct tg_redis_async	*ra = c->data;
	redisReply		*rep = reply;
	enum tg_redis_script	 which = (enum tg_redis_script)(intptr_t)priv;

	if (rep == NULL || rep->type != REDIS_REPLY_STRING || rep->len != 40)
		return;
	(void)pthread_mutex_lock(&ra->r->lock);
	memcpy(ra->r->sha[which], rep->str, 40);
	ra->r->sha[which][40] = '\0';
	(void)pthread_mutex_unlock(&ra->r->lock);
}

/*
 * tg_redis_async_setup - AUTH's or SELECT's answer (priv names it): a
 * refusal fails the connection, and the calls queued behind it say why.
 */
static void
tg_redis_async_setup(redisAsyncContext *c, void *reply, void *priv)
{
	struct tg_redis_async	*ra = c->data;
	redisReply		*rep = reply;

	if (rep == NULL || rep->type == REDIS_REPLY_STATUS)
		return;
	(void)snprintf(ra->setup_err, sizeof(ra->setup_err), "%s: %.200s",
	    (const char *)priv, rep->type == REDIS_REPLY_ERROR ? rep->str :
	    "unexpected reply");
	if (ra->ac == c) {
		ra->ac = NULL;
		tg_redis_put(ra->r, NULL, false);
	}
	/* From a callback hiredis frees c when it returns: calls get NULL. */
	ra->drop_reason = ra->setup_err;
	redisAsyncFree(c);
}

/* tg_redis_async_plain - GET, SET (PX) or DEL of p's record on c */
static int
tg_redis_async_plain(struct tg_redis_pending *p, redisAsyncContext *c)
{
	struct tg_store_areq	*req = p->req;
	const char		*argv[5];
	size_t			 len[5];
	int			 argc = 2;

	argv[0] = req->kind == TG_STORE_A_KV_GET ? "GET" :
	    req->kind == TG_STORE_A_KV_SET ? "SET" : "DEL";
	argv[1] = p->keys[0];
	len[0] = strlen(argv[0]);
	len[1] = strlen(argv[1]);
	if (req->kind == TG_STORE_A_KV_SET) {
		argv[2] = req->value;
		len[2] = req->len;
		argc = 3;
		if (req->ttl != 0) {
			argv[3] = "PX";
			len[3] = 2;
			argv[4] = p->b[0];
			len[4] = strlen(p->b[0]);
			argc = 5;
		}
	}
	return redisAsyncCommandArgv(c, tg_redis_async_reply, p, argc, argv,
	    len);
}

/* tg_redis_async_cmd - EVALSHA (or EVAL) p's script, or its command */
static int
tg_redis_async_cmd(struct tg_redis_pending *p, redisAsyncContext *c)
{
	struct tg_redis_async	*ra = p->ra;
	const char		*argv[12];
	size_t			 len[12];
	char			 sha[41], nk[4];
	int			 i, argc, nargs;
	const char		*load[3] = { "SCRIPT", "LOAD",
				    tg_redis_script_text(p->which) };
	size_t			 loadlen[3] = { 6, 4,
				    strlen(tg_redis_script_text(p->which)) };

	if (p->plain)
		return tg_redis_async_plain(p, c);
	(void)pthread_mutex_lock(&ra->r->lock);
	memcpy(sha, ra->r->sha[p->which], sizeof(sha));
	(void)pthread_mutex_unlock(&ra->r->lock);
	if (sha[0] == '\0' && !p->eval) {
		/* Cache it for the next calls; this one sends the text. */
		(void)redisAsyncCommandArgv(c, tg_redis_async_loaded,
		    (void *)(intptr_t)p->which, 3, load, loadlen);
		p->eval = true;
	}
	(void)snprintf(nk, sizeof(nk), "%d", p->nkeys);
	argv[0] = p->eval ? "EVAL" : "EVALSHA";
	argv[1] = p->eval ? tg_redis_script_text(p->which) : sha;
	argv[2] = nk;
	argc = 3;
	for (i = 0; i < p->nkeys; i++)
		argv[argc++] = p->keys[i];
	nargs = p->nargs;
	for (i = 0; i < nargs; i++)
		argv[argc++] = p->b[i];
	for (i = 0; i < argc; i++)
		len[i] = strlen(argv[i]);
	return redisAsyncCommandArgv(c, tg_redis_async_reply, p, argc, argv,
	    len);
}

/* tg_redis_async_answer - a reply that is not an error, for req's kind */
static enum tg_status
tg_redis_async_answer(struct tg_store_redis *r, const redisReply *rep,
    struct tg_store_areq *req, struct tg_store_quota *q, struct tg_err *err)
{
	size_t	i;

	switch (req->kind) {
	case TG_STORE_A_RESERVE:
		return tg_redis_reserve_reply(r, rep, q, err);
	case TG_STORE_A_COMMIT:
	case TG_STORE_A_REFUND:
		return tg_redis_settle_reply(r, rep, req->key, req->id, err);
	case TG_STORE_A_USAGE:
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
			break;
		for (i = 0; i < 3; i++)
			if (rep->element[i]->type != REDIS_REPLY_INTEGER ||
			    rep->element[i]->integer < 0)
				goto bad;
		req->u.used = (uint64_t)rep->element[0]->integer;
		req->u.remaining = (uint64_t)rep->element[1]->integer;
		req->u.frees_in_ms = (uint64_t)rep->element[2]->integer;
		return TG_OK;
	case TG_STORE_A_KV_INCR:
		if (rep->type != REDIS_REPLY_INTEGER)
			break;
		req->delta = rep->integer;
		return TG_OK;
	case TG_STORE_A_KV_GET:
		if (rep->type == REDIS_REPLY_NIL)
			return tg_err_set(err, TG_NOTFOUND, "store: redis: "
			    "kv %s: none", req->key);
		if (rep->type != REDIS_REPLY_STRING)
			break;
		req->value = tg_malloc(rep->len + 1);
		memcpy(req->value, rep->str, rep->len);
		req->value[rep->len] = '\0';
		req->len = rep->len;
		return TG_OK;
	case TG_STORE_A_KV_SET:
		if (rep->type != REDIS_REPLY_STATUS)
			break;
		return TG_OK;
	case TG_STORE_A_KV_DEL:
		if (rep->type != REDIS_REPLY_INTEGER)
			break;
		return rep->integer == 1 ? TG_OK : tg_err_set(err,
		    TG_NOTFOUND, "store: redis: kv %s: none", req->key);
	}
bad:
	return tg_err_set(err, TG_TEMP, "store: redis %s: unexpected reply",
	    r->where);
}

/* tg_redis_async_reply - one script's answer, or NULL: complete p */
static void
tg_redis_async_reply(redisAsyncContext *c, void *reply, void *priv)
{
	struct tg_redis_pending	*p = priv;
	struct tg_redis_async	*ra = p->ra;
	struct tg_store_areq	*req = p->req;
	redisReply		*rep = reply;
	struct tg_store_quota	 q;
	struct tg_err		 err;
	enum tg_status		 st;

	memset(&q, 0, sizeof(q));
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR && !p->eval &&
	    !p->plain && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
		p->eval = true;
		if (tg_redis_async_cmd(p, c) == REDIS_OK)
			return;
		rep = NULL;
	}
	if (p->timer != NULL)
		event_free(p->timer);
	if (rep == NULL) {
		if (ra->ac == c)
			ra->ac = NULL;
		st = tg_err_set(&err, TG_TEMP, "store: redis %s: %s",
		    ra->r->where, ra->drop_reason != NULL ? ra->drop_reason :
		    c->errstr[0] != '\0' ? c->errstr : "connection lost");
	} else if (rep->type == REDIS_REPLY_ERROR) {
		tg_redis_put(ra->r, NULL, true);
		/* as the synchronous kv_incr: a record not a counter */
		st = tg_err_set(&err, strstr(rep->str, "not an integer") !=
		    NULL || strstr(rep->str, "overflow") != NULL ? TG_PERM :
		    TG_TEMP, "store: redis %s: %.200s", ra->r->where,
		    rep->str);
	} else {
		tg_redis_put(ra->r, NULL, true);
		st = tg_redis_async_answer(ra->r, rep, req, &q, &err);
	}
	tg_redis_pending_free(p);
	req->done(req, st, st == TG_OK ? &q : NULL, &err);
}

/* tg_redis_async_timeout - no answer in time: drop the connection */
static void
tg_redis_async_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct tg_redis_pending	*p = arg;
	struct tg_redis_async	*ra = p->ra;

	(void)fd;
	(void)what;
	event_free(p->timer);
	p->timer = NULL;
	tg_redis_put(ra->r, NULL, false);
	tg_redis_async_drop(ra, "no answer in time");
}

/* tg_redis_async_connect - a new async connection on the loop */
static redisAsyncContext *
tg_redis_async_connect(struct tg_redis_async *ra, struct tg_err *err)
{
	struct tg_store_redis	*r = ra->r;
	redisAsyncContext	*ac;
	char			 db[24];
	const char		*argv[2];
	size_t			 len[2];

	ac = r->unix_path != NULL ? redisAsyncConnectUnix(r->unix_path) :
	    redisAsyncConnect(r->host, r->port);
	if (ac == NULL || ac->err != 0) {
		(void)tg_err_set(err, TG_TEMP, "store: redis %s: %s", r->where,
		    ac != NULL ? ac->errstr : "cannot connect");
		if (ac != NULL)
			redisAsyncFree(ac);
		return NULL;
	}
	ac->data = ra;
	ra->drop_reason = NULL;		/* a refused setup's, now gone */
	if (redisLibeventAttach(ac, ra->base) != REDIS_OK) {
		redisAsyncFree(ac);
		(void)tg_err_set(err, TG_TEMP, "store: redis %s: cannot use "
		    "the event loop", r->where);
		return NULL;
	}
	(void)redisAsyncSetConnectCallback(ac, tg_redis_async_connected);
	(void)redisAsyncSetDisconnectCallback(ac, tg_redis_async_disconnected);
	/* Queued before the first call; a refusal fails the connection. */
	if (r->password != NULL) {
		argv[0] = "AUTH";
		argv[1] = r->password;
		len[0] = 4;
		len[1] = strlen(r->password);
		(void)redisAsyncCommandArgv(ac, tg_redis_async_setup, "AUTH",
		    2, argv, len);
	}
	if (r->db != 0) {
		(void)snprintf(db, sizeof(db), "%ld", r->db);
		argv[0] = "SELECT";
		argv[1] = db;
		len[0] = 6;
		len[1] = strlen(db);
		(void)redisAsyncCommandArgv(ac, tg_redis_async_setup,
		    "SELECT", 2, argv, len);
	}
	return ac;
}

/* tg_redis_async_args - the script (or command) and its arguments */
static void
tg_redis_async_args(struct tg_redis_pending *p,
    const struct tg_store_areq *req)
{
	switch (req->kind) {
	case TG_STORE_A_RESERVE:
		p->which = TG_REDIS_RESERVE;
		(void)tg_redis_u64(p->b[0], sizeof(p->b[0]), req->window);
		(void)tg_redis_u64(p->b[1], sizeof(p->b[1]), req->limit);
		(void)tg_redis_u64(p->b[2], sizeof(p->b[2]), req->amount);
		(void)tg_redis_u64(p->b[3], sizeof(p->b[3]), req->ttl);
		p->nargs = 4;
		break;
	case TG_STORE_A_COMMIT:
	case TG_STORE_A_REFUND:
		p->which = req->kind == TG_STORE_A_COMMIT ? TG_REDIS_COMMIT :
		    TG_REDIS_REFUND;
		(void)tg_redis_u64(p->b[0], sizeof(p->b[0]), req->id);
		p->nargs = 1;
		break;
	case TG_STORE_A_USAGE:
		p->which = TG_REDIS_USAGE;
		(void)tg_redis_u64(p->b[0], sizeof(p->b[0]), req->window);
		(void)tg_redis_u64(p->b[1], sizeof(p->b[1]), req->limit);
		p->nargs = 2;
		break;
	case TG_STORE_A_KV_INCR:
		p->which = TG_REDIS_INCR;
		(void)snprintf(p->b[0], sizeof(p->b[0]), "%" PRId64,
		    req->delta);
		(void)tg_redis_u64(p->b[1], sizeof(p->b[1]), req->ttl);
		p->nargs = 2;
		break;
	case TG_STORE_A_KV_GET:
	case TG_STORE_A_KV_SET:
	case TG_STORE_A_KV_DEL:
		/* TG_REDIS_INCR's one key is the record's. */
		p->which = TG_REDIS_INCR;
		p->plain = true;
		(void)tg_redis_u64(p->b[0], sizeof(p->b[0]), req->ttl);
		break;
	}
}

/* tg_store_redis_async_send - one script, its answer from the loop */
enum tg_status
tg_store_redis_async_send(void *arg, struct tg_store_areq *req,
    struct tg_err *err)
{
	struct tg_redis_async	*ra = arg;
	struct tg_store_redis	*r = ra->r;
	struct tg_redis_pending	*p;
	struct timeval		 tv = r->tv;
	enum tg_status		 st;

	if (ra->freeing)
		return tg_err_set(err, TG_TEMP, "store: redis %s: closing",
		    r->where);
	(void)pthread_mutex_lock(&r->lock);
	st = tg_redis_breaker(r, err);
	(void)pthread_mutex_unlock(&r->lock);
	if (st != TG_OK)
		return st;
	if (ra->ac == NULL && (ra->ac = tg_redis_async_connect(ra, err)) ==
	    NULL) {
		tg_redis_put(r, NULL, false);
		return TG_TEMP;
	}
	p = tg_calloc(1, sizeof(*p));
	p->ra = ra;
	p->req = req;
	tg_redis_async_args(p, req);
	p->nkeys = tg_redis_keys(p->which, req->key, p->keys);
	if (tg_redis_async_cmd(p, ra->ac) != REDIS_OK) {
		tg_redis_pending_free(p);
		return tg_err_set(err, TG_TEMP, "store: redis %s: cannot "
		    "send", r->where);
	}
	if ((p->timer = evtimer_new(ra->base, tg_redis_async_timeout, p)) ==
	    NULL || evtimer_add(p->timer, &tv) != 0)
		TG_PANIC("evtimer failed");
	return TG_OK;
}
