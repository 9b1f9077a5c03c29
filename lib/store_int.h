/*
 * store_int.h - what lib/store.c shares with its backends: the backend
 * table and the sliding-window arithmetic both the embedded backend and
 * the local fallback use.  Not for use outside lib/store*.c.
 */
#ifndef TOLLGATE_STORE_INT_H
#define TOLLGATE_STORE_INT_H

#include <pthread.h>
#include <time.h>

#include "tollgate/store.h"

/* One admitted request.  expires 0: committed. */
struct tg_store_entry {
	uint64_t	id;
	uint64_t	t;		/* admitted at, ms since the epoch */
	uint64_t	amount;
	uint64_t	expires;	/* pending: lapses at, ms */
};

struct event_base;

enum tg_store_akind {
	TG_STORE_A_RESERVE,
	TG_STORE_A_COMMIT,
	TG_STORE_A_REFUND,
	TG_STORE_A_USAGE,
	TG_STORE_A_KV_GET,
	TG_STORE_A_KV_SET,
	TG_STORE_A_KV_DEL,
	TG_STORE_A_KV_INCR
};

/*
 * One asynchronous call.  The backend calls done exactly once, from the
 * event loop (or from its async_free), never from inside async_send;
 * for usage, kv_get and kv_incr it first fills u, value and len (a
 * string the request then owns) or delta.
 */
struct tg_store_areq {
	struct tg_store_areq	*next;		/* store.c's completion queue */
	enum tg_store_akind	 kind;
	char			*key;
	uint64_t		 window, limit, amount, ttl, id;
	char			*value;		/* kv_set's; kv_get's answer */
	size_t			 len;
	int64_t			 delta;		/* kv_incr's; its answer */
	struct tg_store_usage	 u;		/* usage's answer */
	struct timespec		 t0;		/* sent, for the metrics */
	void			(*done)(struct tg_store_areq *, enum tg_status,
				    const struct tg_store_quota *,
				    const struct tg_err *);
	/* store.c's own: the caller's callback and the result */
	struct tg_store_async	*a;
	tg_store_quota_cb	 qcb;
	tg_store_done_cb	 dcb;
	tg_store_usage_cb	 ucb;
	tg_store_kv_cb		 kcb;
	tg_store_int_cb		 icb;
	void			*arg;
	enum tg_status		 st;
	struct tg_store_quota	 q;
	struct tg_err		 err;
};

/*
 * A backend: each function is one atomic operation, called with a key
 * already checked by tg_store_key_ok.  They fill err and never log.
 */
struct tg_store_ops {
	const char	*name;
	void		(*close)(void *);
	enum tg_status	(*reserve)(void *, const char *, uint64_t, uint64_t,
			    uint64_t, uint64_t, struct tg_store_quota *,
			    struct tg_err *);
	enum tg_status	(*commit)(void *, const char *, uint64_t,
			    struct tg_err *);
	enum tg_status	(*refund)(void *, const char *, uint64_t,
			    struct tg_err *);
	enum tg_status	(*usage)(void *, const char *, uint64_t, uint64_t,
			    struct tg_store_usage *, struct tg_err *);
	enum tg_status	(*reset)(void *, const char *, struct tg_err *);
	enum tg_status	(*list)(void *, const char *, char ***, size_t *,
			    struct tg_err *);
	enum tg_status	(*kv_get)(void *, const char *, char **, size_t *,
			    struct tg_err *);
	enum tg_status	(*kv_set)(void *, const char *, const void *, size_t,
			    uint64_t, struct tg_err *);
	enum tg_status	(*kv_del)(void *, const char *, struct tg_err *);
	enum tg_status	(*kv_incr)(void *, const char *, int64_t, uint64_t,
			    int64_t *, struct tg_err *);
	/* batched counter records (tg_store_kv_mget, tg_store_kv_mincr) */
	enum tg_status	(*kv_mget)(void *, const char *const *, size_t,
			    int64_t *, struct tg_err *);
	enum tg_status	(*kv_mincr)(void *, const char *const *,
			    const int64_t *, size_t, uint64_t, int64_t *,
			    struct tg_err *);
	/* every live record by prefix, a page at a time (tg_store_kv_list) */
	enum tg_status	(*kv_list)(void *, const char *, tg_store_kv_list_cb,
			    void *, struct tg_err *);
	/* NULL: the backend expires records itself */
	enum tg_status	(*sweep)(void *, size_t *, struct tg_err *);
	/*
	 * Asynchronous calls, NULL for a backend that answers at once (the
	 * store then calls the synchronous function and completes the call
	 * from the loop).  async_send returns TG_OK when done will follow,
	 * else the failure, and done is not called.
	 */
	void		*(*async_new)(void *, struct event_base *);
	void		(*async_free)(void *);
	enum tg_status	(*async_send)(void *, struct tg_store_areq *,
			    struct tg_err *);
};

/* Local fallback ids have this bit set (store.c); limits stay below. */
#define TG_STORE_LOCAL_ID	((uint64_t)1 << 62)
#define TG_STORE_LOCAL_BUCKETS	256

struct tg_store_lkey;

/* The store handle (store.c; store_async.c uses it too). */
struct tg_store {
	const struct tg_store_ops	*ops;
	void				*be;
	enum tg_store_on_error		 on_error;
	pthread_mutex_t			 lock;		/* the fallback */
	struct tg_store_lkey		*local[TG_STORE_LOCAL_BUCKETS];
	uint64_t			 local_seq;
	bool				 local_used;
};

/* An async handle (store_async.c). */
struct tg_store_async {
	struct tg_store		*s;
	struct event_base	*base;
	struct event		*kick;		/* drains the queue */
	void			*be;		/* the backend's, or NULL */
	struct tg_store_areq	*head, **tail;	/* completed, to deliver */
	bool			 closing;	/* in tg_store_async_free */
};

/* What store.c lends store_async.c: checks and the fallback. */
enum tg_status	tg_store_check(const char *, struct tg_err *);
enum tg_status	tg_store_reserve_args(const char *, uint64_t, uint64_t,
		    uint64_t, uint64_t, struct tg_err *);
bool		tg_store_fallback(struct tg_store *, enum tg_status,
		    const struct tg_err *);
enum tg_status	tg_store_local_reserve(struct tg_store *, const char *,
		    uint64_t, uint64_t, uint64_t, uint64_t,
		    struct tg_store_quota *);
void		tg_store_local_usage(struct tg_store *, const char *,
		    uint64_t, uint64_t, struct tg_store_usage *);

extern const struct tg_store_ops tg_store_lmdb_ops;
extern const struct tg_store_ops tg_store_redis_ops;

/* Backend constructors: NULL with err filled on failure. */
void	*tg_store_lmdb_open(const struct tg_store_conf *, struct tg_err *);
void	*tg_store_redis_open(const struct tg_store_conf *, struct tg_err *);

/*
 * A page of listed records (store_kv.c): the backend fills it inside
 * its transaction or from one reply, then delivers it outside.
 */
struct tg_store_kv_page {
	struct tg_store_kv_rec	*v;
	size_t			 n, cap;
};
/* tg_store_kv_page_add - a copy of key and value[0..len) */
void		tg_store_kv_page_add(struct tg_store_kv_page *, const char *,
		    size_t, const void *, size_t, uint64_t ttl_ms);
/* tg_store_kv_page_deliver - cb over the page, then empty it; false
 * when cb stopped the listing */
bool		tg_store_kv_page_deliver(struct tg_store_kv_page *,
		    tg_store_kv_list_cb, void *);
/* tg_store_kv_page_fini - free what is left */
void		tg_store_kv_page_fini(struct tg_store_kv_page *);

/* tg_store_now_ms - wall-clock ms: shared by processes, kept by disk */
uint64_t	tg_store_now_ms(void);
/* tg_store_entry_leaves - when e stops counting */
uint64_t	tg_store_entry_leaves(const struct tg_store_entry *, uint64_t);
/*
 * tg_store_decide - the window's verdict over the live entries live[n]
 * (lapsed ones already dropped): fills q but for id and approximate.
 */
void		tg_store_decide(const struct tg_store_entry *, size_t,
		    uint64_t now, uint64_t window, uint64_t limit,
		    uint64_t amount, struct tg_store_quota *);
/* tg_store_summary - used and the earliest departure, for usage */
void		tg_store_summary(const struct tg_store_entry *, size_t,
		    uint64_t now, uint64_t window, uint64_t limit,
		    struct tg_store_usage *);

#endif
