/*
 * store_redis - the Redis backend, through hiredis.
 *
 * A counter K is three keys with one {hash tag}, the whole of K, so
 * each script stays in one Redis Cluster slot: the hash "tg:q:{K}"
 * (field "n" the reservation sequence, starting from the time in ms x
 * 1000 as on LMDB so ids stay unique when an expired counter starts
 * again; field "u" the sum of the amounts; field ID one entry "AMOUNT
 * LAPSE TIME", decimal ms, LAPSE 0 once committed), and two sorted
 * sets of entry ids, "tg:q:{K}:t" by admission time and "tg:q:{K}:p"
 * (pending only) by lapse time, from whose fronts departed entries are
 * taken.  The time is the server's (TIME in the script), so the hosts
 * sharing a server share one clock.
 *
 * Every quota operation is one Lua script, loaded with SCRIPT LOAD and
 * called with EVALSHA; a server that forgot it (restart, SCRIPT FLUSH)
 * answers NOSCRIPT, and the script is loaded again and the call
 * repeated once on the same connection.  The keys expire when the
 * newest entry leaves the window, so idle counters cost nothing.  A
 * record of kv_* is the string "tg:kv:{K}".
 *
 * Connections: hiredis contexts are not thread-safe, so each call
 * takes one from a pool (or connects a new one) and gives it back; a
 * connection that failed is closed, and the next call connects afresh:
 * that is the reconnect.  Connecting and each answer are bounded by
 * the timeout.  The circuit breaker: after breaker_failures connection
 * failures or timeouts in a row, calls fail at once with TG_TEMP for
 * breaker_interval, then calls try again; one success closes it.
 *
 * The Lua scripts are in store_redis_lua.c, the asynchronous calls in
 * store_redis_async.c.
 *
 * Reply objects never leave this file.  Threading: the pool, the
 * script hashes and the breaker are under one mutex, never held across
 * a round trip.
 */
#include "config.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/buf.h"
#include "tollgate/metrics.h"
#include "tollgate/store.h"
#include "tollgate/util.h"

#include "store_int.h"
#include "store_redis_int.h"

static enum tg_status	tg_redis_parse_url(struct tg_store_redis *,
			    const char *, struct tg_err *);
static enum tg_status	tg_redis_get(struct tg_store_redis *,
			    redisContext **, struct tg_err *);
static redisContext *tg_redis_connect(struct tg_store_redis *,
		    struct tg_err *);
static enum tg_status	tg_redis_script(struct tg_store_redis *,
			    enum tg_redis_script, const char *, int,
			    const char **, redisReply **, struct tg_err *);
static enum tg_status	tg_redis_script_keys(struct tg_store_redis *,
			    enum tg_redis_script, int, const char **, int,
			    const char **, redisReply **, struct tg_err *);
static bool	tg_redis_ints(const redisReply *, size_t, long long *);
static char	*tg_redis_key(const char *, const char *);

/* tg_redis_parse_url - redis://HOST[:PORT][/DB] or unix:PATH */
static enum tg_status
tg_redis_parse_url(struct tg_store_redis *r, const char *url,
    struct tg_err *err)
{
	const char	*p, *slash, *colon, *shown;
	char		*num;
	long		 v;

	r->port = 6379;
	if (url == NULL)
		url = "";
	/* A password in the URL must not reach the logs. */
	shown = strchr(url, '@') != NULL ? "(not shown)" : url;
	if (strncmp(url, "unix:", 5) == 0 && url[5] == '/') {
		r->unix_path = tg_strdup(url + 5);
		r->where = tg_strdup(url);
		return TG_OK;
	}
	if (strncmp(url, "redis://", 8) != 0 || url[8] == '\0')
		return tg_err_set(err, TG_PERM, "store: redis: url \"%.100s\": "
		    "not redis://HOST:PORT/DB or unix:/PATH", shown);
	p = url + 8;
	slash = strchr(p, '/');
	if (p[0] == '[') {	/* [IPv6]:port */
		if ((colon = strchr(p, ']')) == NULL ||
		    (slash != NULL && colon > slash))
			return tg_err_set(err, TG_PERM, "store: redis: url "
			    "\"%.100s\": bad address", shown);
		r->host = tg_strndup(p + 1, (size_t)(colon - p - 1));
		colon = colon[1] == ':' ? colon + 1 : NULL;
	} else {
		colon = strchr(p, ':');
		if (colon != NULL && slash != NULL && colon > slash)
			colon = NULL;
		r->host = tg_strndup(p, (size_t)((colon != NULL ? colon :
		    slash != NULL ? slash : p + strlen(p)) - p));
	}
	if (*r->host == '\0' || strchr(r->host, '@') != NULL)
		return tg_err_set(err, TG_PERM, "store: redis: url \"%.100s\": "
		    "bad host (a password goes in the password key)", shown);
	if (colon != NULL) {
		num = tg_strndup(colon + 1, (size_t)((slash != NULL ? slash :
		    colon + 1 + strlen(colon + 1)) - colon - 1));
		if (!tg_parse_long(num, 1, 65535, &v)) {
			free(num);
			return tg_err_set(err, TG_PERM, "store: redis: url "
			    "\"%.100s\": bad port", shown);
		}
		free(num);
		r->port = (int)v;
	}
	if (slash != NULL && slash[1] != '\0' &&
	    !tg_parse_long(slash + 1, 0, 100000, &r->db))
		return tg_err_set(err, TG_PERM, "store: redis: url \"%.100s\": "
		    "bad database number", shown);
	r->where = tg_printf_dup("%s:%d", r->host, r->port);
	return TG_OK;
}

/* tg_redis_free - everything open made */
static void
tg_redis_free(struct tg_store_redis *r)
{
	size_t	i;

	for (i = 0; i < r->nidle; i++)
		redisFree(r->idle[i]);
	free(r->host);
	free(r->unix_path);
	free(r->password);
	free(r->where);
	(void)pthread_mutex_destroy(&r->lock);
	free(r);
}

/* tg_store_redis_open - parse the URL; connections come with calls */
void *
tg_store_redis_open(const struct tg_store_conf *conf, struct tg_err *err)
{
	struct tg_store_redis	*r;
	long			 ms;

	r = tg_calloc(1, sizeof(*r));
	if (pthread_mutex_init(&r->lock, NULL) != 0)
		TG_PANIC("pthread_mutex_init failed");
	if (tg_redis_parse_url(r, conf->url, err) != TG_OK) {
		tg_redis_free(r);
		return NULL;
	}
	if (conf->password != NULL && *conf->password != '\0')
		r->password = tg_strdup(conf->password);
	ms = conf->timeout_ms > 0 ? conf->timeout_ms : 1000;
	r->tv.tv_sec = ms / 1000;
	r->tv.tv_usec = (ms % 1000) * 1000;
	r->breaker_failures = conf->breaker_failures > 0 ?
	    (unsigned int)conf->breaker_failures : 3;
	r->breaker_ms = conf->breaker_interval_ms > 0 ?
	    (uint64_t)conf->breaker_interval_ms : 5000;
	return r;
}

/* tg_store_redis_close - the idle connections and the handle */
static void
tg_store_redis_close(void *arg)
{
	tg_redis_free(arg);
}

/* tg_redis_setup - AUTH and SELECT on a new connection */
static enum tg_status
tg_redis_setup(struct tg_store_redis *r, redisContext *c, struct tg_err *err)
{
	redisReply	*rep;
	char		 db[24];
	const char	*argv[2];
	size_t		 len[2];
	bool		 ok;

	if (r->password != NULL) {
		argv[0] = "AUTH";
		argv[1] = r->password;
		len[0] = 4;
		len[1] = strlen(r->password);
		rep = redisCommandArgv(c, 2, argv, len);
		ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
		if (rep != NULL && !ok)
			(void)tg_err_set(err, TG_TEMP, "store: redis %s: AUTH: "
			    "%.200s", r->where, rep->type == REDIS_REPLY_ERROR ?
			    rep->str : "unexpected reply");
		freeReplyObject(rep);
		if (!ok)
			return rep == NULL ? tg_err_set(err, TG_TEMP, "store: "
			    "redis %s: %s", r->where, c->errstr) : TG_TEMP;
	}
	if (r->db == 0)
		return TG_OK;
	(void)snprintf(db, sizeof(db), "%ld", r->db);
	argv[0] = "SELECT";
	argv[1] = db;
	len[0] = 6;
	len[1] = strlen(db);
	rep = redisCommandArgv(c, 2, argv, len);
	ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
	freeReplyObject(rep);
	if (!ok)
		return tg_err_set(err, TG_TEMP, "store: redis %s: SELECT %s "
		    "failed", r->where, db);
	return TG_OK;
}

/* tg_redis_connect - a new connection, bounded by the timeout */
static redisContext *
tg_redis_connect(struct tg_store_redis *r, struct tg_err *err)
{
	redisContext	*c;

	if (r->unix_path != NULL)
		c = redisConnectUnixWithTimeout(r->unix_path, r->tv);
	else
		c = redisConnectWithTimeout(r->host, r->port, r->tv);
	if (c == NULL) {
		(void)tg_err_set(err, TG_TEMP, "store: redis %s: cannot "
		    "connect", r->where);
		return NULL;
	}
	if (c->err != 0) {
		(void)tg_err_set(err, TG_TEMP, "store: redis %s: %s",
		    r->where, c->errstr);
		redisFree(c);
		return NULL;
	}
	if (redisSetTimeout(c, r->tv) != REDIS_OK ||
	    tg_redis_setup(r, c, err) != TG_OK) {
		if (c->err != 0)
			(void)tg_err_set(err, TG_TEMP, "store: redis %s: %s",
			    r->where, c->errstr);
		redisFree(c);
		return NULL;
	}
	return c;
}

/* tg_redis_breaker - TG_TEMP while the breaker is open (lock held) */
enum tg_status
tg_redis_breaker(struct tg_store_redis *r, struct tg_err *err)
{
	uint64_t	now = tg_store_now_ms();

	if (r->open_until <= now)
		return TG_OK;
	return tg_err_set(err, TG_TEMP, "store: redis %s: unavailable after "
	    "%u failures, not trying for %" PRIu64 " ms", r->where,
	    r->failures, r->open_until - now);
}

/* tg_redis_get - a pooled or new connection, unless the breaker is open */
static enum tg_status
tg_redis_get(struct tg_store_redis *r, redisContext **cp, struct tg_err *err)
{
	*cp = NULL;
	(void)pthread_mutex_lock(&r->lock);
	if (tg_redis_breaker(r, err) != TG_OK) {
		(void)pthread_mutex_unlock(&r->lock);
		return TG_TEMP;
	}
	if (r->nidle > 0)
		*cp = r->idle[--r->nidle];
	(void)pthread_mutex_unlock(&r->lock);
	if (*cp != NULL)
		return TG_OK;
	if ((*cp = tg_redis_connect(r, err)) == NULL) {
		tg_redis_put(r, NULL, false);
		return TG_TEMP;
	}
	return TG_OK;
}

/* tg_redis_put - return c to the pool (ok) or close it; feed the breaker */
void
tg_redis_put(struct tg_store_redis *r, redisContext *c, bool ok)
{
	(void)pthread_mutex_lock(&r->lock);
	if (ok) {
		if (r->open_until != 0)
			tg_metric_set(TG_M_STORE_BREAKER_OPEN, NULL, NULL, 0);
		r->failures = 0;
		r->open_until = 0;
		if (c != NULL && r->nidle < TG_REDIS_POOL_MAX) {
			r->idle[r->nidle++] = c;
			c = NULL;
		}
	} else if (++r->failures >= r->breaker_failures) {
		if (r->open_until == 0) {
			tg_metric_inc(TG_M_STORE_BREAKER_TRIPS, NULL, NULL);
			tg_metric_set(TG_M_STORE_BREAKER_OPEN, NULL, NULL, 1);
		}
		r->open_until = tg_store_now_ms() + r->breaker_ms;
	}
	(void)pthread_mutex_unlock(&r->lock);
	if (c != NULL)
		redisFree(c);
}

/*
 * tg_redis_call - one command on c; false when the connection is
 * broken (c->err says why), else *rep is the reply, maybe an error.
 */
static bool
tg_redis_call(redisContext *c, int argc, const char **argv,
    const size_t *len, redisReply **rep)
{
	*rep = redisCommandArgv(c, argc, argv, len);
	return *rep != NULL;
}

/* tg_redis_run - one plain command, through the pool and the breaker */
enum tg_status
tg_redis_run(struct tg_store_redis *r, int argc, const char **argv,
    const size_t *len, redisReply **rep, struct tg_err *err)
{
	redisContext	*c;
	enum tg_status	 st;

	*rep = NULL;
	if ((st = tg_redis_get(r, &c, err)) != TG_OK)
		return st;
	if (!tg_redis_call(c, argc, argv, len, rep)) {
		(void)tg_err_set(err, TG_TEMP, "store: redis %s: %s",
		    r->where, c->errstr[0] != '\0' ? c->errstr : "no answer");
		tg_redis_put(r, c, false);
		return TG_TEMP;
	}
	tg_redis_put(r, c, true);
	if ((*rep)->type == REDIS_REPLY_ERROR) {
		st = tg_err_set(err, strstr((*rep)->str, "not an integer") !=
		    NULL || strstr((*rep)->str, "overflow") != NULL ? TG_PERM :
		    TG_TEMP, "store: redis %s: %.200s", r->where, (*rep)->str);
		freeReplyObject(*rep);
		*rep = NULL;
		return st;
	}
	return TG_OK;
}

/* tg_redis_load - SCRIPT LOAD on c; false when c broke */
static bool
tg_redis_load(struct tg_store_redis *r, redisContext *c,
    enum tg_redis_script which, struct tg_err *err, bool *loaded)
{
	const char	*text = tg_redis_script_text(which);
	redisReply	*rep;
	const char	*argv[3] = { "SCRIPT", "LOAD", text };
	size_t		 len[3] = { 6, 4, strlen(text) };

	*loaded = false;
	if (!tg_redis_call(c, 3, argv, len, &rep))
		return false;
	if (rep->type == REDIS_REPLY_STRING && rep->len == 40) {
		(void)pthread_mutex_lock(&r->lock);
		memcpy(r->sha[which], rep->str, 40);
		r->sha[which][40] = '\0';
		(void)pthread_mutex_unlock(&r->lock);
		*loaded = true;
	} else
		(void)tg_err_set(err, TG_TEMP, "store: redis %s: SCRIPT LOAD: "
		    "%.200s", r->where, rep->type == REDIS_REPLY_ERROR ?
		    rep->str : "unexpected reply");
	freeReplyObject(rep);
	return true;
}

/*
 * tg_redis_script - EVALSHA which on key's keys with args; on NOSCRIPT
 * (or before the first load) load it and call once more.
 */
static enum tg_status
tg_redis_script(struct tg_store_redis *r, enum tg_redis_script which,
    const char *key, int nargs, const char **args, redisReply **rep,
    struct tg_err *err)
{
	char		*keys[3];
	int		 i, nkeys;
	enum tg_status	 st;

	nkeys = tg_redis_keys(which, key, keys);
	st = tg_redis_script_keys(r, which, nkeys, (const char **)keys, nargs,
	    args, rep, err);
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	return st;
}

/* tg_redis_script_keys - tg_redis_script with the keys made */
static enum tg_status
tg_redis_script_keys(struct tg_store_redis *r, enum tg_redis_script which,
    int nkeys, const char **keys, int nargs, const char **args,
    redisReply **rep, struct tg_err *err)
{
	redisContext	*c;
	const char	*argv[12];
	size_t		 len[12];
	char		 sha[41], nk[4];
	enum tg_status	 st;
	bool		 loaded;
	int		 i, try, argc;

	*rep = NULL;
	(void)snprintf(nk, sizeof(nk), "%d", nkeys);
	if ((st = tg_redis_get(r, &c, err)) != TG_OK)
		return st;
	for (try = 0; try < 3; try++) {
		(void)pthread_mutex_lock(&r->lock);
		memcpy(sha, r->sha[which], sizeof(sha));
		(void)pthread_mutex_unlock(&r->lock);
		if (sha[0] == '\0') {
			if (!tg_redis_load(r, c, which, err, &loaded))
				goto broken;
			if (!loaded) {
				tg_redis_put(r, c, true);
				return TG_TEMP;
			}
			continue;
		}
		argv[0] = "EVALSHA";
		argv[1] = sha;
		argv[2] = nk;
		argc = 3;
		for (i = 0; i < nkeys; i++)
			argv[argc++] = keys[i];
		for (i = 0; i < nargs; i++)
			argv[argc++] = args[i];
		for (i = 0; i < argc; i++)
			len[i] = strlen(argv[i]);
		if (!tg_redis_call(c, argc, argv, len, rep))
			goto broken;
		if ((*rep)->type != REDIS_REPLY_ERROR ||
		    strncmp((*rep)->str, "NOSCRIPT", 8) != 0)
			break;
		freeReplyObject(*rep);
		*rep = NULL;
		(void)pthread_mutex_lock(&r->lock);
		r->sha[which][0] = '\0';
		(void)pthread_mutex_unlock(&r->lock);
	}
	tg_redis_put(r, c, true);
	if (*rep == NULL)
		return tg_err_set(err, TG_TEMP, "store: redis %s: script not "
		    "accepted", r->where);
	if ((*rep)->type == REDIS_REPLY_ERROR) {
		st = tg_err_set(err, strstr((*rep)->str, "not an integer") !=
		    NULL || strstr((*rep)->str, "overflow") != NULL ? TG_PERM :
		    TG_TEMP, "store: redis %s: %.200s", r->where, (*rep)->str);
		freeReplyObject(*rep);
		*rep = NULL;
		return st;
	}
	return TG_OK;
broken:
	(void)tg_err_set(err, TG_TEMP, "store: redis %s: %s", r->where,
	    c->errstr[0] != '\0' ? c->errstr : "no answer");
	tg_redis_put(r, c, false);
	return TG_TEMP;
}

/* tg_redis_ints - rep is an array of n integers, into v */
static bool
tg_redis_ints(const redisReply *rep, size_t n, long long *v)
{
	size_t	i;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n)
		return false;
	for (i = 0; i < n; i++) {
		if (rep->element[i]->type != REDIS_REPLY_INTEGER ||
		    rep->element[i]->integer < 0)
			return false;
		v[i] = rep->element[i]->integer;
	}
	return true;
}

/* tg_redis_key - "tg:q:{K}" or "tg:kv:{K}": the whole key is the tag */
static char *
tg_redis_key(const char *space, const char *key)
{
	return tg_printf_dup("tg:%s:{%s}", space, key);
}

/*
 * tg_redis_keys - the keys which works on for key K into k (the caller
 * frees them), and how many: a counter's three, or a record's one.
 */
int
tg_redis_keys(enum tg_redis_script which, const char *key, char **k)
{
	if (which == TG_REDIS_INCR) {
		k[0] = tg_redis_key("kv", key);
		return 1;
	}
	k[0] = tg_redis_key("q", key);
	k[1] = tg_printf_dup("%s:t", k[0]);
	k[2] = tg_printf_dup("%s:p", k[0]);
	return 3;
}

/* tg_redis_u64 - decimal text of v into buf */
const char *
tg_redis_u64(char *buf, size_t size, uint64_t v)
{
	(void)snprintf(buf, size, "%" PRIu64, v);
	return buf;
}

/* tg_redis_reserve_reply - the reserve script's answer into q */
enum tg_status
tg_redis_reserve_reply(struct tg_store_redis *r, const redisReply *rep,
    struct tg_store_quota *q, struct tg_err *err)
{
	long long	v[5];

	if (!tg_redis_ints(rep, 5, v))
		return tg_err_set(err, TG_TEMP, "store: redis %s: reserve: "
		    "unexpected reply", r->where);
	q->admitted = v[0] == 1;
	q->used = (uint64_t)v[1];
	q->remaining = (uint64_t)v[2];
	q->retry_after_ms = (uint64_t)v[3];
	q->id = (uint64_t)v[4];
	return TG_OK;
}

/* tg_redis_settle_reply - the commit or refund script's answer */
enum tg_status
tg_redis_settle_reply(struct tg_store_redis *r, const redisReply *rep,
    const char *key, uint64_t id, struct tg_err *err)
{
	if (rep->type != REDIS_REPLY_INTEGER)
		return tg_err_set(err, TG_TEMP, "store: redis %s: unexpected "
		    "reply", r->where);
	if (rep->integer != 1)
		return tg_err_set(err, TG_NOTFOUND, "store: redis %s: "
		    "reservation %" PRIu64 " of %s: unknown or lapsed",
		    r->where, id, key);
	return TG_OK;
}

/* tg_store_redis_reserve - the reserve script */
static enum tg_status
tg_store_redis_reserve(void *arg, const char *key, uint64_t window,
    uint64_t limit, uint64_t amount, uint64_t ttl, struct tg_store_quota *q,
    struct tg_err *err)
{
	struct tg_store_redis	*r = arg;
	redisReply		*rep;
	char			 b[4][24];
	const char		*args[4];
	enum tg_status		 st;

	args[0] = tg_redis_u64(b[0], sizeof(b[0]), window);
	args[1] = tg_redis_u64(b[1], sizeof(b[1]), limit);
	args[2] = tg_redis_u64(b[2], sizeof(b[2]), amount);
	args[3] = tg_redis_u64(b[3], sizeof(b[3]), ttl);
	st = tg_redis_script(r, TG_REDIS_RESERVE, key, 4, args, &rep, err);
	if (st != TG_OK)
		return st;
	st = tg_redis_reserve_reply(r, rep, q, err);
	freeReplyObject(rep);
	return st;
}

/* tg_redis_settle - the commit or refund script */
static enum tg_status
tg_redis_settle(struct tg_store_redis *r, enum tg_redis_script which,
    const char *key, uint64_t id, struct tg_err *err)
{
	redisReply	*rep;
	char		 b[24];
	const char	*args[1];
	enum tg_status	 st;

	args[0] = tg_redis_u64(b, sizeof(b), id);
	st = tg_redis_script(r, which, key, 1, args, &rep, err);
	if (st != TG_OK)
		return st;
	st = tg_redis_settle_reply(r, rep, key, id, err);
	freeReplyObject(rep);
	return st;
}

/* tg_store_redis_commit - the commit script */
static enum tg_status
tg_store_redis_commit(void *arg, const char *key, uint64_t id,
    struct tg_err *err)
{
	return tg_redis_settle(arg, TG_REDIS_COMMIT, key, id, err);
}

/* tg_store_redis_refund - the refund script */
static enum tg_status
tg_store_redis_refund(void *arg, const char *key, uint64_t id,
    struct tg_err *err)
{
	return tg_redis_settle(arg, TG_REDIS_REFUND, key, id, err);
}

/* tg_store_redis_usage - the usage script: changes nothing */
static enum tg_status
tg_store_redis_usage(void *arg, const char *key, uint64_t window,
    uint64_t limit, struct tg_store_usage *u, struct tg_err *err)
{
	struct tg_store_redis	*r = arg;
	redisReply		*rep;
	char			 b[2][24];
	const char		*args[2];
	long long		 v[3];
	enum tg_status		 st;

	args[0] = tg_redis_u64(b[0], sizeof(b[0]), window);
	args[1] = tg_redis_u64(b[1], sizeof(b[1]), limit);
	st = tg_redis_script(r, TG_REDIS_USAGE, key, 2, args, &rep, err);
	if (st != TG_OK)
		return st;
	if (!tg_redis_ints(rep, 3, v)) {
		freeReplyObject(rep);
		return tg_err_set(err, TG_TEMP, "store: redis %s: usage: "
		    "unexpected reply", r->where);
	}
	freeReplyObject(rep);
	u->used = (uint64_t)v[0];
	u->remaining = (uint64_t)v[1];
	u->frees_in_ms = (uint64_t)v[2];
	return TG_OK;
}

/* tg_redis_simple - a command on one of our keys; rep for the caller */
static enum tg_status
tg_redis_simple(struct tg_store_redis *r, const char *cmd, const char *space,
    const char *key, int nextra, const char **extra, const size_t *elen,
    redisReply **rep, struct tg_err *err)
{
	const char	*argv[6];
	size_t		 len[6];
	char		*k;
	enum tg_status	 st;
	int		 i;

	k = tg_redis_key(space, key);
	argv[0] = cmd;
	argv[1] = k;
	len[0] = strlen(cmd);
	len[1] = strlen(k);
	for (i = 0; i < nextra; i++) {
		argv[2 + i] = extra[i];
		len[2 + i] = elen[i];
	}
	st = tg_redis_run(r, 2 + nextra, argv, len, rep, err);
	free(k);
	return st;
}

/* tg_store_redis_reset - DEL of the counter's keys */
static enum tg_status
tg_store_redis_reset(void *arg, const char *key, struct tg_err *err)
{
	redisReply	*rep;
	char		*keys[3];
	const char	*argv[4];
	size_t		 len[4];
	enum tg_status	 st;
	int		 i, n;

	n = tg_redis_keys(TG_REDIS_RESERVE, key, keys);
	argv[0] = "DEL";
	len[0] = 3;
	for (i = 0; i < n; i++) {
		argv[1 + i] = keys[i];
		len[1 + i] = strlen(keys[i]);
	}
	st = tg_redis_run(arg, 1 + n, argv, len, &rep, err);
	if (st == TG_OK)
		freeReplyObject(rep);
	for (i = 0; i < n; i++)
		free(keys[i]);
	return st;
}

/* tg_redis_glob - prefix with SCAN's pattern characters escaped */
void
tg_redis_glob(struct tg_buf *b, const char *prefix)
{
	for (; *prefix != '\0'; prefix++) {
		if (strchr("*?[]\\", *prefix) != NULL)
			tg_buf_putc(b, '\\');
		tg_buf_putc(b, *prefix);
	}
}

/* tg_store_redis_list - SCAN for tg:q:{PREFIX*} */
static enum tg_status
tg_store_redis_list(void *arg, const char *prefix, char ***keys, size_t *n,
    struct tg_err *err)
{
	struct tg_store_redis	*r = arg;
	struct tg_buf		 pat = { 0 };
	redisReply		*rep, *arr;
	char			 cursor[32] = "0";
	const char		*argv[6];
	size_t			 len[6], i, cap = 0, klen;
	enum tg_status		 st = TG_OK;
	const char		*s;

	tg_buf_puts(&pat, "tg:q:{");
	tg_redis_glob(&pat, prefix);
	tg_buf_puts(&pat, "*}");
	do {
		argv[0] = "SCAN";
		argv[1] = cursor;
		argv[2] = "MATCH";
		argv[3] = tg_buf_cstr(&pat);
		argv[4] = "COUNT";
		argv[5] = "1000";
		for (i = 0; i < 6; i++)
			len[i] = strlen(argv[i]);
		if ((st = tg_redis_run(r, 6, argv, len, &rep, err)) != TG_OK)
			break;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    rep->element[0]->len >= sizeof(cursor) ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(rep);
			st = tg_err_set(err, TG_TEMP, "store: redis %s: SCAN: "
			    "unexpected reply", r->where);
			break;
		}
		memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
		cursor[rep->element[0]->len] = '\0';
		arr = rep->element[1];
		for (i = 0; i < arr->elements; i++) {
			if (arr->element[i]->type != REDIS_REPLY_STRING)
				continue;
			s = arr->element[i]->str;
			klen = arr->element[i]->len;
			if (klen < 8 || s[klen - 1] != '}')
				continue;
			if (*n == cap) {
				cap = cap == 0 ? 16 : cap * 2;
				*keys = tg_reallocarray(*keys, cap,
				    sizeof(**keys));
			}
			(*keys)[(*n)++] = tg_strndup(s + 6, klen - 7);
		}
		freeReplyObject(rep);
	} while (strcmp(cursor, "0") != 0);
	tg_buf_fini(&pat);
	if (st != TG_OK) {
		*keys = tg_store_list_free(*keys, *n);
		*n = 0;
	}
	return st;
}

/* tg_store_redis_kv_get - GET */
static enum tg_status
tg_store_redis_kv_get(void *arg, const char *key, char **value, size_t *len,
    struct tg_err *err)
{
	struct tg_store_redis	*r = arg;
	redisReply		*rep;
	enum tg_status		 st;

	if ((st = tg_redis_simple(r, "GET", "kv", key, 0, NULL, NULL, &rep,
	    err)) != TG_OK)
		return st;
	if (rep->type == REDIS_REPLY_NIL)
		st = tg_err_set(err, TG_NOTFOUND, "store: redis: kv %s: none",
		    key);
	else if (rep->type != REDIS_REPLY_STRING)
		st = tg_err_set(err, TG_TEMP, "store: redis %s: GET: "
		    "unexpected reply", r->where);
	else {
		*value = tg_malloc(rep->len + 1);
		memcpy(*value, rep->str, rep->len);
		(*value)[rep->len] = '\0';
		*len = rep->len;
	}
	freeReplyObject(rep);
	return st;
}

/* tg_store_redis_kv_set - SET, with PX for a ttl */
static enum tg_status
tg_store_redis_kv_set(void *arg, const char *key, const void *value,
    size_t len, uint64_t ttl, struct tg_err *err)
{
	redisReply	*rep;
	const char	*extra[3];
	size_t		 elen[3];
	char		 b[24];
	enum tg_status	 st;

	extra[0] = value;
	elen[0] = len;
	extra[1] = "PX";
	elen[1] = 2;
	extra[2] = tg_redis_u64(b, sizeof(b), ttl);
	elen[2] = strlen(b);
	st = tg_redis_simple(arg, "SET", "kv", key, ttl == 0 ? 1 : 3, extra,
	    elen, &rep, err);
	if (st == TG_OK)
		freeReplyObject(rep);
	return st;
}

/* tg_store_redis_kv_del - DEL; 0 deleted is TG_NOTFOUND */
static enum tg_status
tg_store_redis_kv_del(void *arg, const char *key, struct tg_err *err)
{
	redisReply	*rep;
	enum tg_status	 st;

	if ((st = tg_redis_simple(arg, "DEL", "kv", key, 0, NULL, NULL, &rep,
	    err)) != TG_OK)
		return st;
	if (rep->type != REDIS_REPLY_INTEGER || rep->integer != 1)
		st = tg_err_set(err, TG_NOTFOUND, "store: redis: kv %s: none",
		    key);
	freeReplyObject(rep);
	return st;
}

/* tg_store_redis_kv_incr - INCRBY, and the ttl on a new record */
static enum tg_status
tg_store_redis_kv_incr(void *arg, const char *key, int64_t delta,
    uint64_t ttl, int64_t *value, struct tg_err *err)
{
	struct tg_store_redis	*r = arg;
	redisReply		*rep;
	char			 b[2][24];
	const char		*args[2];
	enum tg_status		 st;

	(void)snprintf(b[0], sizeof(b[0]), "%" PRId64, delta);
	args[0] = b[0];
	args[1] = tg_redis_u64(b[1], sizeof(b[1]), ttl);
	st = tg_redis_script(r, TG_REDIS_INCR, key, 2, args, &rep, err);
	if (st != TG_OK)
		return st;
	if (rep->type != REDIS_REPLY_INTEGER)
		st = tg_err_set(err, TG_TEMP, "store: redis %s: incr: "
		    "unexpected reply", r->where);
	else
		*value = rep->integer;
	freeReplyObject(rep);
	return st;
}

/*
 * The batched increment: all keys checked first, so a record that is
 * not a counter fails the call before anything changed (a script is
 * not rolled back); a count that reaches 0 is deleted.  Sent with EVAL
 * (Redis caches it by its digest): one round trip either way.
 */
static const char tg_redis_mincr_lua[] =
	"local ttl = tonumber(ARGV[1])\n"
	"for i = 1, #KEYS do\n"
	"  local t = redis.call('GET', KEYS[i])\n"
	"  if t and not string.match(t, '^%-?%d+$') then\n"
	"    return redis.error_reply('not an integer: ' .. KEYS[i])\n"
	"  end\n"
	"end\n"
	"local out = {}\n"
	"for i = 1, #KEYS do\n"
	"  local v = redis.call('INCRBY', KEYS[i], ARGV[i + 1])\n"
	"  if v == 0 then\n"
	"    redis.call('DEL', KEYS[i])\n"
	"  elseif v == tonumber(ARGV[i + 1]) and ttl > 0 then\n"
	"    redis.call('PEXPIRE', KEYS[i], ttl)\n"
	"  end\n"
	"  out[i] = v\n"
	"end\n"
	"return out\n";

/* tg_redis_batch_free - the key strings and the argument arrays */
static void
tg_redis_batch_free(char **k, size_t n, const char **argv, size_t *len)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(k[i]);
	free(k);
	free(argv);
	free(len);
}

/* tg_store_redis_kv_mget - one MGET */
static enum tg_status
tg_store_redis_kv_mget(void *arg, const char *const *keys, size_t n,
    int64_t *values, struct tg_err *err)
{
	struct tg_store_redis	*r = arg;
	redisReply		*rep, *e;
	const char		**argv;
	size_t			*len, i;
	char			**k, num[32];
	long			 v = 0;
	enum tg_status		 st;

	k = tg_calloc(n, sizeof(*k));
	argv = tg_calloc(n + 1, sizeof(*argv));
	len = tg_calloc(n + 1, sizeof(*len));
	argv[0] = "MGET";
	len[0] = 4;
	for (i = 0; i < n; i++) {
		k[i] = tg_redis_key("kv", keys[i]);
		argv[1 + i] = k[i];
		len[1 + i] = strlen(k[i]);
	}
	st = tg_redis_run(r, (int)(n + 1), argv, len, &rep, err);
	tg_redis_batch_free(k, n, argv, len);
	if (st != TG_OK)
		return st;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n) {
		freeReplyObject(rep);
		return tg_err_set(err, TG_TEMP, "store: redis %s: MGET: "
		    "unexpected reply", r->where);
	}
	for (i = 0; i < n && st == TG_OK; i++) {
		e = rep->element[i];
		values[i] = 0;
		if (e->type == REDIS_REPLY_NIL)
			continue;
		if (e->type != REDIS_REPLY_STRING || e->len >= sizeof(num))
			st = TG_PERM;
		else {
			memcpy(num, e->str, e->len);
			num[e->len] = '\0';
			if (!tg_parse_long(num, -INT64_MAX, INT64_MAX, &v))
				st = TG_PERM;
		}
		if (st != TG_OK)
			(void)tg_err_set(err, st, "store: redis: kv %s: not a "
			    "counter", keys[i]);
		else
			values[i] = v;
	}
	freeReplyObject(rep);
	return st;
}

/* tg_store_redis_kv_mincr - one EVAL of every key */
static enum tg_status
tg_store_redis_kv_mincr(void *arg, const char *const *keys,
    const int64_t *deltas, size_t n, uint64_t ttl, int64_t *values,
    struct tg_err *err)
{
	struct tg_store_redis	*r = arg;
	redisReply		*rep;
	const char		**argv;
	size_t			*len, i, argc = 4 + 2 * n;
	char			**k, nkeys[24], sttl[24];
	enum tg_status		 st;

	/* the key names, then the deltas' texts, in one array to free */
	k = tg_calloc(2 * n, sizeof(*k));
	argv = tg_calloc(argc, sizeof(*argv));
	len = tg_calloc(argc, sizeof(*len));
	argv[0] = "EVAL";
	argv[1] = tg_redis_mincr_lua;
	argv[2] = tg_redis_u64(nkeys, sizeof(nkeys), n);
	for (i = 0; i < n; i++) {
		k[i] = tg_redis_key("kv", keys[i]);
		argv[3 + i] = k[i];
		k[n + i] = tg_printf_dup("%" PRId64, deltas[i]);
		argv[4 + n + i] = k[n + i];
	}
	argv[3 + n] = tg_redis_u64(sttl, sizeof(sttl), ttl);
	for (i = 0; i < argc; i++)
		len[i] = strlen(argv[i]);
	st = tg_redis_run(r, (int)argc, argv, len, &rep, err);
	tg_redis_batch_free(k, 2 * n, argv, len);
	if (st != TG_OK)
		return st;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n)
		st = tg_err_set(err, TG_TEMP, "store: redis %s: mincr: "
		    "unexpected reply", r->where);
	for (i = 0; st == TG_OK && values != NULL && i < n; i++)
		values[i] = rep->element[i]->type == REDIS_REPLY_INTEGER ?
		    rep->element[i]->integer : 0;
	freeReplyObject(rep);
	return st;
}

const struct tg_store_ops tg_store_redis_ops = {
	.name = "redis",
	.close = tg_store_redis_close,
	.reserve = tg_store_redis_reserve,
	.commit = tg_store_redis_commit,
	.refund = tg_store_redis_refund,
	.usage = tg_store_redis_usage,
	.reset = tg_store_redis_reset,
	.list = tg_store_redis_list,
	.kv_get = tg_store_redis_kv_get,
	.kv_set = tg_store_redis_kv_set,
	.kv_del = tg_store_redis_kv_del,
	.kv_incr = tg_store_redis_kv_incr,
	.kv_mget = tg_store_redis_kv_mget,
	.kv_mincr = tg_store_redis_kv_mincr,
	.kv_list = tg_store_redis_kv_list,
	.async_new = tg_store_redis_async_new,
	.async_free = tg_store_redis_async_free,
	.async_send = tg_store_redis_async_send,
};
