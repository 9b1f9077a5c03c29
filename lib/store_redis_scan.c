/*
 * store_redis_scan - listing the Redis backend's key/value records
 * (tg_store_kv_list) without loading them all.
 *
 * Records are the strings "tg:kv:{K}".  One SCAN step with MATCH
 * tg:kv:{PREFIX*} and COUNT TG_STORE_LIST_PAGE names some of them; one
 * EVAL of a small read-only script then answers each one's value and
 * remaining time (GET and PTTL) in one round trip, so a page costs two
 * round trips whatever its size.  A record that expired between the
 * two is skipped.  The script gets the page's keys as KEYS, so it is
 * for one server, not a Redis Cluster, like tg_store_kv_mget.  Each
 * call goes through the pool and the breaker (tg_redis_run); no
 * connection is held while the caller's callback runs.
 *
 * Reply objects never leave this file.  Threading: as store_redis.c.
 */
#include "config.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/buf.h"
#include "tollgate/store.h"
#include "tollgate/util.h"

#include "store_int.h"
#include "store_redis_int.h"

/* Each key's value and PTTL; false and -2 for one gone or not a string. */
static const char tg_redis_kvlist_lua[] =
	"local r = {}\n"
	"for i, k in ipairs(KEYS) do\n"
	"  local v, t = false, -2\n"
	"  if redis.call('TYPE', k).ok == 'string' then\n"
	"    v = redis.call('GET', k)\n"
	"    t = redis.call('PTTL', k)\n"
	"  end\n"
	"  r[2 * i - 1] = v\n"
	"  r[2 * i] = t\n"
	"end\n"
	"return r\n";

/* tg_redis_scan_step - one SCAN from cursor: the keys into *rep */
static enum tg_status
tg_redis_scan_step(struct tg_store_redis *r, const char *pat, char *cursor,
    size_t cursorlen, redisReply **rep, struct tg_err *err)
{
	char		 count[24];
	const char	*argv[6] = { "SCAN", cursor, "MATCH", pat, "COUNT",
			    count };
	size_t		 len[6], i;
	redisReply	*c;

	(void)snprintf(count, sizeof(count), "%d", TG_STORE_LIST_PAGE);
	for (i = 0; i < 6; i++)
		len[i] = strlen(argv[i]);
	if (tg_redis_run(r, 6, argv, len, rep, err) != TG_OK)
		return TG_TEMP;
	if ((*rep)->type != REDIS_REPLY_ARRAY || (*rep)->elements != 2 ||
	    (c = (*rep)->element[0])->type != REDIS_REPLY_STRING ||
	    c->len >= cursorlen ||
	    (*rep)->element[1]->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(*rep);
		*rep = NULL;
		return tg_err_set(err, TG_TEMP, "store: redis %s: SCAN: "
		    "unexpected reply", r->where);
	}
	memcpy(cursor, c->str, c->len);
	cursor[c->len] = '\0';
	return TG_OK;
}

/* tg_redis_scan_page - values and ttls of the keys keys[0..n) */
static enum tg_status
tg_redis_scan_page(struct tg_store_redis *r, redisReply *const *keys,
    size_t n, struct tg_store_kv_page *p, struct tg_err *err)
{
	const char	**argv;
	size_t		 *len, i;
	char		  nk[24];
	redisReply	 *rep, *v, *t;
	enum tg_status	  st;

	argv = tg_calloc(n + 3, sizeof(*argv));
	len = tg_calloc(n + 3, sizeof(*len));
	(void)snprintf(nk, sizeof(nk), "%zu", n);
	argv[0] = "EVAL";
	argv[1] = tg_redis_kvlist_lua;
	argv[2] = nk;
	for (i = 0; i < 3; i++)
		len[i] = strlen(argv[i]);
	for (i = 0; i < n; i++) {
		argv[3 + i] = keys[i]->str;
		len[3 + i] = keys[i]->len;
	}
	st = tg_redis_run(r, (int)(n + 3), argv, len, &rep, err);
	free(argv);
	free(len);
	if (st != TG_OK)
		return st;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 * n) {
		freeReplyObject(rep);
		return tg_err_set(err, TG_TEMP, "store: redis %s: kv list: "
		    "unexpected reply", r->where);
	}
	for (i = 0; i < n; i++) {
		v = rep->element[2 * i];
		t = rep->element[2 * i + 1];
		if (v->type != REDIS_REPLY_STRING ||
		    t->type != REDIS_REPLY_INTEGER || t->integer == -2 ||
		    t->integer == 0)
			continue;	/* gone meanwhile, or not ours */
		/* "tg:kv:{K}": K is the caller's key */
		tg_store_kv_page_add(p, keys[i]->str + 7, keys[i]->len - 8,
		    v->str, v->len, t->integer < 0 ? 0 :
		    (uint64_t)t->integer);
	}
	freeReplyObject(rep);
	return TG_OK;
}

/* tg_redis_scan_ours - the SCAN names that are whole record keys */
static size_t
tg_redis_scan_ours(redisReply *arr, redisReply **keys)
{
	redisReply	*k;
	size_t		 i, n = 0;

	for (i = 0; i < arr->elements; i++) {
		k = arr->element[i];
		if (k->type == REDIS_REPLY_STRING && k->len > 8 &&
		    k->len <= 8 + TG_STORE_KEY_MAX &&
		    strncmp(k->str, "tg:kv:{", 7) == 0 &&
		    k->str[k->len - 1] == '}')
			keys[n++] = k;
	}
	return n;
}

/* tg_store_redis_kv_list - SCAN step by step, each step one page */
enum tg_status
tg_store_redis_kv_list(void *arg, const char *prefix, tg_store_kv_list_cb cb,
    void *cbarg, struct tg_err *err)
{
	struct tg_store_redis	*r = arg;
	struct tg_store_kv_page	 p = { 0 };
	struct tg_buf		 pat = { 0 };
	redisReply		*rep, **keys;
	char			 cursor[32] = "0";
	enum tg_status		 st;
	size_t			 n;
	bool			 go = true;

	tg_buf_puts(&pat, "tg:kv:{");
	tg_redis_glob(&pat, prefix);
	tg_buf_puts(&pat, "*}");
	do {
		if ((st = tg_redis_scan_step(r, tg_buf_cstr(&pat), cursor,
		    sizeof(cursor), &rep, err)) != TG_OK)
			break;
		keys = tg_calloc(rep->element[1]->elements + 1, sizeof(*keys));
		n = tg_redis_scan_ours(rep->element[1], keys);
		st = n == 0 ? TG_OK : tg_redis_scan_page(r, keys, n, &p, err);
		free(keys);
		freeReplyObject(rep);
		if (st != TG_OK)
			break;
		go = tg_store_kv_page_deliver(&p, cb, cbarg);
	} while (go && strcmp(cursor, "0") != 0);
	tg_store_kv_page_fini(&p);
	tg_buf_fini(&pat);
	return st;
}
