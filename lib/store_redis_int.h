/*
 * store_redis_int.h - what the Redis backend's two files share: the
 * handle (pool, script hashes, breaker), the script table and the reply
 * parsers.  Only lib/store_redis*.c include it.
 */
#ifndef TOLLGATE_STORE_REDIS_INT_H
#define TOLLGATE_STORE_REDIS_INT_H

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include "store_int.h"

#define TG_REDIS_POOL_MAX	64	/* idle connections kept */

enum tg_redis_script {
	TG_REDIS_RESERVE = 0,
	TG_REDIS_COMMIT,
	TG_REDIS_REFUND,
	TG_REDIS_USAGE,
	TG_REDIS_INCR,
	TG_REDIS_NSCRIPTS
};

struct tg_store_redis {
	char		*host;		/* NULL for a unix socket */
	char		*unix_path;
	int		 port;
	long		 db;
	char		*password;
	char		*where;		/* for error texts */
	struct timeval	 tv;
	unsigned int	 breaker_failures;
	uint64_t	 breaker_ms;

	pthread_mutex_t	 lock;
	redisContext	*idle[TG_REDIS_POOL_MAX];
	size_t		 nidle;
	char		 sha[TG_REDIS_NSCRIPTS][41];
	unsigned int	 failures;	/* in a row */
	uint64_t	 open_until;	/* breaker open until, ms */
};

/* tg_redis_script_text - the Lua text of a script */
const char	*tg_redis_script_text(enum tg_redis_script);
/* tg_redis_keys - the keys a script works on for K (caller frees) */
int		 tg_redis_keys(enum tg_redis_script, const char *, char **);
/* tg_redis_u64 - decimal text of v into buf */
const char	*tg_redis_u64(char *, size_t, uint64_t);
/* tg_redis_breaker - TG_TEMP while the breaker is open (lock held) */
enum tg_status	 tg_redis_breaker(struct tg_store_redis *, struct tg_err *);
/* tg_redis_put - return c (NULL: none) to the pool, or close it; ok
 * false counts a failure for the breaker, true closes the breaker */
void		 tg_redis_put(struct tg_store_redis *, redisContext *, bool);
/* tg_redis_run - one command through the pool and the breaker; TG_OK
 * with *rep for the caller to free, an error reply is TG_TEMP/TG_PERM */
enum tg_status	 tg_redis_run(struct tg_store_redis *, int, const char **,
		    const size_t *, redisReply **, struct tg_err *);
/* tg_redis_glob - append prefix with SCAN's pattern characters escaped */
struct tg_buf;
void		 tg_redis_glob(struct tg_buf *, const char *);
/* tg_store_redis_kv_list - SCAN the records (store_redis_scan.c) */
enum tg_status	 tg_store_redis_kv_list(void *, const char *,
		    tg_store_kv_list_cb, void *, struct tg_err *);

/* Parse a script's answer. */
enum tg_status	 tg_redis_reserve_reply(struct tg_store_redis *,
		    const redisReply *, struct tg_store_quota *,
		    struct tg_err *);
enum tg_status	 tg_redis_settle_reply(struct tg_store_redis *,
		    const redisReply *, const char *, uint64_t,
		    struct tg_err *);

/* The asynchronous calls (store_redis_async.c). */
void		*tg_store_redis_async_new(void *, struct event_base *);
void		 tg_store_redis_async_free(void *);
enum tg_status	 tg_store_redis_async_send(void *, struct tg_store_areq *,
		    struct tg_err *);

#endif
