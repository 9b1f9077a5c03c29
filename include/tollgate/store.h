/*
 * store.h - counters and small key/value records behind one interface.
 *
 * Two backends: "embedded" (LMDB in a local directory: persistent,
 * shared by the milter and policyd processes and their threads,
 * survives restarts) and "redis" (hiredis; many hosts share one server).
 * Every operation is atomic on both: one write transaction on LMDB, one
 * Lua script on Redis.
 *
 * Quotas use an exact sliding window log, not GCRA.  Each admitted
 * request is one entry (time, amount, and for a reservation not yet
 * committed, when it lapses); the used amount is the sum of the entries
 * younger than the window.  That gives what quotas need: the count is
 * exact at every instant (no bucket edges, no smoothing), a request
 * that would pass the limit writes nothing, and reserve, commit and
 * refund are operations on one entry: commit makes it permanent, refund
 * deletes it, and an entry never committed stops counting when its
 * reservation_ttl passes.  The window and limit are arguments of each
 * call, not stored, so a changed limit or window applies at once; but a
 * call drops the entries older than its window, so a counter key
 * serves one window: a tenant's hourly and daily limits are two keys.
 * GCRA keeps one timestamp per key and cannot give back one message's
 * amount exactly.  The cost is memory: one small entry per admitted
 * request in the window.  On Redis an operation costs O(log n) plus the
 * entries it expires; on LMDB it reads the counter's entries (one
 * cursor scan: about 0.15 ms for 5,000).
 *
 * Keys are 1 to TG_STORE_KEY_MAX bytes of printable ASCII or UTF-8:
 * no control characters, space, '{' or '}' (Redis keys put the whole
 * key in a {hash tag}, so every script of a counter touches one slot of
 * a Redis Cluster; LMDB keys are at most 511 bytes).  Anything else is
 * TG_PERM.
 *
 * Errors: TG_TEMP when the backend fails (Redis down, slow, LMDB map
 * full), with err saying why.  A reservation whose answer was lost (a
 * timeout after the server ran the script) may have been made; never
 * committed, it lapses after its ttl, so a lost answer costs quota for
 * reservation_ttl at most (for the window with ttl 0).  TG_PERM for a
 * bad argument, TG_NOTFOUND where a function says so.  Redis failures
 * trip a circuit breaker: after breaker_failures failures in a row,
 * calls fail at once for breaker_interval, then the next call tries
 * again.  With on_error = local, reserve/commit/refund/usage answer
 * from a per-process in-memory window while the backend fails (struct
 * tg_store_quota's approximate is then true) and a warning says so.
 *
 * Threading: a struct tg_store is shared by all threads of a process;
 * every call is thread-safe and bounded by the configured timeout.  A
 * store must not be used across fork(): open one in the child.
 */
#ifndef TOLLGATE_STORE_H
#define TOLLGATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "util.h"

#define TG_STORE_KEY_MAX	256	/* an address is at most 254 */

enum tg_store_backend { TG_STORE_EMBEDDED = 0, TG_STORE_REDIS };
enum tg_store_on_error { TG_STORE_ON_ERROR_FAIL = 0, TG_STORE_ON_ERROR_LOCAL };

struct tg_store_conf {
	enum tg_store_backend	 backend;
	const char		*path;		/* embedded: a directory */
	const char		*url;		/* redis://h:p/db, unix:/path */
	const char		*password;	/* redis AUTH; NULL, "": none */
	long			 timeout_ms;	/* each Redis round trip */
	/* The breaker opens after breaker_failures failures in a row and
	 * stays open for breaker_interval_ms. */
	long			 breaker_failures;
	long			 breaker_interval_ms;
	size_t			 map_size;	/* embedded: LMDB map, bytes */
	enum tg_store_on_error	 on_error;
};

/* The answer to a reservation. */
struct tg_store_quota {
	bool		 admitted;
	bool		 approximate;	/* from the local fallback */
	uint64_t	 used;		/* in the window, after this request */
	uint64_t	 remaining;	/* limit - used, 0 when over */
	uint64_t	 retry_after_ms; /* refused: when it would fit; 0 */
	uint64_t	 id;		/* admitted: the reservation */
};

/* What tollgatectl quota show prints. */
struct tg_store_usage {
	bool		 approximate;
	uint64_t	 used;
	uint64_t	 remaining;
	uint64_t	 frees_in_ms;	/* when the oldest entry leaves; 0 */
};

struct tg_store;

/*
 * [store] configuration: the table to register as a section, and the
 * values it loaded as a struct tg_store_conf (valid until the config is
 * freed).
 */
const struct tg_param	*tg_store_params(void);
void		 tg_store_conf_loaded(struct tg_store_conf *);

/*
 * tg_store_open - a store as conf says (conf is copied).  Embedded:
 * creates the directory.  Redis: the connection is made lazily, so a
 * server that is down at start-up is TG_TEMP per call, not an open
 * failure; a bad URL is.  NULL with err filled on failure.
 */
struct tg_store	*tg_store_open(const struct tg_store_conf *, struct tg_err *);
/* tg_store_close - accepts NULL, returns NULL */
struct tg_store	*tg_store_close(struct tg_store *);
/* tg_store_backend_name - "embedded" or "redis" */
const char	*tg_store_backend_name(const struct tg_store *);

/*
 * tg_store_reserve - admit amount (>= 1) against limit over the last
 * window_ms, or refuse it and change nothing.  An admitted amount is
 * a reservation q->id, counted from now on; it lapses after ttl_ms
 * unless committed.  ttl_ms 0 means committed at once: one call where
 * reserve and commit would be two (the last limit of a charge).  Such
 * an entry counts for the whole window, can still be refunded by id,
 * and its commit is TG_OK; but a lost answer then costs its amount for
 * the window, not for a ttl.  A refusal is TG_OK with q->admitted false
 * and q->retry_after_ms (window_ms when amount > limit: it never fits).
 */
enum tg_status	tg_store_reserve(struct tg_store *, const char *key,
		    uint64_t window_ms, uint64_t limit, uint64_t amount,
		    uint64_t ttl_ms, struct tg_store_quota *, struct tg_err *);
/*
 * tg_store_commit - make reservation id permanent for its window.
 * Committing twice is TG_OK.  TG_NOTFOUND: it lapsed, was refunded or
 * left the window; nothing counts for it any more.
 */
enum tg_status	tg_store_commit(struct tg_store *, const char *key,
		    uint64_t id, struct tg_err *);
/* tg_store_refund - give reservation id back, committed or not;
 * TG_NOTFOUND as for commit */
enum tg_status	tg_store_refund(struct tg_store *, const char *key,
		    uint64_t id, struct tg_err *);
/* tg_store_usage - the key's window now; it changes nothing visible
 * (Redis drops entries that left the window, as reserve would) */
enum tg_status	tg_store_usage(struct tg_store *, const char *key,
		    uint64_t window_ms, uint64_t limit, struct tg_store_usage *,
		    struct tg_err *);
/* tg_store_reset - forget every entry of the key's counter */
enum tg_status	tg_store_reset(struct tg_store *, const char *key,
		    struct tg_err *);
/*
 * tg_store_list - the counter keys starting with prefix ("" for all),
 * sorted, as an array of *n strings the caller frees with
 * tg_store_list_free.  On Redis this scans the one server of the URL.
 */
enum tg_status	tg_store_list(struct tg_store *, const char *prefix,
		    char ***keys, size_t *n, struct tg_err *);
char		**tg_store_list_free(char **, size_t);

/*
 * Key/value records with a time to live (greylisting).  Their keys are
 * a namespace apart from the counters'.  Values are at most
 * TG_STORE_VALUE_MAX bytes of anything.
 */
#define TG_STORE_VALUE_MAX	4096
/* tg_store_kv_get - a copy the caller frees (NUL-terminated beyond
 * *len); TG_NOTFOUND when absent or expired */
enum tg_status	tg_store_kv_get(struct tg_store *, const char *key,
		    char **value, size_t *len, struct tg_err *);
/* tg_store_kv_set_ttl - create or replace; ttl_ms 0: no expiry */
enum tg_status	tg_store_kv_set_ttl(struct tg_store *, const char *key,
		    const void *value, size_t len, uint64_t ttl_ms,
		    struct tg_err *);
/* tg_store_kv_del - TG_NOTFOUND when there was none */
enum tg_status	tg_store_kv_del(struct tg_store *, const char *key,
		    struct tg_err *);
/*
 * tg_store_kv_incr - add delta to a decimal counter record (absent
 * counts as 0) and return the new value; ttl_ms is set when the record
 * is created and left alone afterwards.
 */
enum tg_status	tg_store_kv_incr(struct tg_store *, const char *key,
		    int64_t delta, uint64_t ttl_ms, int64_t *value,
		    struct tg_err *);

/* One record as tg_store_kv_list reports it; valid during the call. */
struct tg_store_kv_rec {
	const char	*key;
	const char	*value;		/* NUL-terminated beyond len */
	size_t		 len;
	uint64_t	 ttl_ms;	/* left to live; 0: no expiry */
};
/* Return false to stop the listing (tg_store_kv_list is then TG_OK). */
typedef bool	(*tg_store_kv_list_cb)(const struct tg_store_kv_rec *,
		    void *);
/*
 * tg_store_kv_list - call cb for every live record whose key starts
 * with prefix (1 or more bytes, a valid key beginning).  It works in
 * pages of TG_STORE_LIST_PAGE records, so millions of records are
 * never in memory at once, and no transaction or connection is held
 * while cb runs: cb may change the store (tg_store_kv_del a record it
 * was given, say).  The embedded backend goes in key order, one short
 * read transaction per page; Redis uses SCAN MATCH on the one server of
 * the URL, in no order, and may report a record twice when the server
 * resizes its table meanwhile (SCAN's guarantee).  A record changed or
 * added during the listing may or may not be reported.  TG_TEMP when
 * the backend fails (records reported up to then stay reported).
 */
#define TG_STORE_LIST_PAGE	1000
enum tg_status	tg_store_kv_list(struct tg_store *, const char *prefix,
		    tg_store_kv_list_cb, void *, struct tg_err *);

/*
 * Batched counter records (Bayes token counts: hundreds a message).
 * tg_store_kv_mget - the counter records keys[0..n-1] in one read (one
 * LMDB read transaction; one MGET on Redis): values[i] is the count,
 * 0 when absent or expired.  A record that is not a counter is
 * TG_PERM.  tg_store_kv_mincr - add deltas[i] to keys[i], all or none
 * (one LMDB write transaction; one Lua script on Redis), ttl_ms as for
 * kv_incr; values (NULL: not wanted) gets the new counts.  n is 1 to
 * TG_STORE_BATCH_MAX.  On Redis the keys go to one server in one call
 * (not for a Redis Cluster, whose keys spread over slots).
 */
#define TG_STORE_BATCH_MAX	20000
enum tg_status	tg_store_kv_mget(struct tg_store *, const char *const *keys,
		    size_t n, int64_t *values, struct tg_err *);
enum tg_status	tg_store_kv_mincr(struct tg_store *, const char *const *keys,
		    const int64_t *deltas, size_t n, uint64_t ttl_ms,
		    int64_t *values, struct tg_err *);

/*
 * Asynchronous calls for an event loop (policyd, libevent).  Every
 * callback runs exactly once, from the loop, never from inside the
 * call that started it; on failure with a NULL result
 * and err saying why (err is NULL on success).  Pointers passed to a
 * callback are valid during the call only.  On Redis each call is one
 * command on one connection owned by the handle, bounded by the timeout
 * (a timeout closes that connection: every call in flight on it fails
 * with TG_TEMP, and the next call reconnects); the circuit breaker and
 * on_error = local work as for the synchronous calls.  The embedded
 * backend answers at once (LMDB is local and fast), and the callback
 * runs at the loop's next turn.  Keys are copied.
 *
 * A handle belongs to the loop's thread; tg_store_async_free runs the
 * callbacks still pending, with TG_TEMP for calls still in flight (and
 * for calls those callbacks start), before it returns, so it must not
 * be called from a store callback.
 * The store must outlive its async handles.
 */
struct event_base;
struct tg_store_async;
typedef void	(*tg_store_quota_cb)(enum tg_status,
		    const struct tg_store_quota *, const struct tg_err *,
		    void *);
typedef void	(*tg_store_done_cb)(enum tg_status, const struct tg_err *,
		    void *);

struct tg_store_async *tg_store_async_new(struct tg_store *,
		    struct event_base *);
struct tg_store_async *tg_store_async_free(struct tg_store_async *);
void		tg_store_async_reserve(struct tg_store_async *, const char *key,
		    uint64_t window_ms, uint64_t limit, uint64_t amount,
		    uint64_t ttl_ms, tg_store_quota_cb, void *);
void		tg_store_async_commit(struct tg_store_async *, const char *key,
		    uint64_t id, tg_store_done_cb, void *);
void		tg_store_async_refund(struct tg_store_async *, const char *key,
		    uint64_t id, tg_store_done_cb, void *);
/*
 * The same for usage and the key/value records, as their synchronous
 * calls (the local fallback answers usage as tg_store_usage does; the
 * records have no fallback).  kv_get's value is NUL-terminated beyond
 * len, NULL unless TG_OK (absent: TG_NOTFOUND); kv_del's absent record
 * is TG_NOTFOUND.  On Redis these are one command each (GET, SET with
 * PX, DEL; kv_incr and usage one script), on the handle's connection.
 */
typedef void	(*tg_store_usage_cb)(enum tg_status,
		    const struct tg_store_usage *, const struct tg_err *,
		    void *);
typedef void	(*tg_store_kv_cb)(enum tg_status, const char *value,
		    size_t len, const struct tg_err *, void *);
typedef void	(*tg_store_int_cb)(enum tg_status, int64_t,
		    const struct tg_err *, void *);
void		tg_store_async_usage(struct tg_store_async *, const char *key,
		    uint64_t window_ms, uint64_t limit, tg_store_usage_cb,
		    void *);
void		tg_store_async_kv_get(struct tg_store_async *, const char *key,
		    tg_store_kv_cb, void *);
void		tg_store_async_kv_set(struct tg_store_async *, const char *key,
		    const void *value, size_t len, uint64_t ttl_ms,
		    tg_store_done_cb, void *);
void		tg_store_async_kv_del(struct tg_store_async *, const char *key,
		    tg_store_done_cb, void *);
void		tg_store_async_kv_incr(struct tg_store_async *,
		    const char *key, int64_t delta, uint64_t ttl_ms,
		    tg_store_int_cb, void *);

/*
 * tg_store_sweep - delete expired records and counters idle for longer
 * than their last window, adding their number to *removed.  The
 * embedded store keeps them until swept (its file would grow without
 * bound otherwise), so a daemon calls this now and then, say once a
 * minute; it works in short transactions.  Redis expires keys itself:
 * TG_OK at once.
 */
enum tg_status	tg_store_sweep(struct tg_store *, size_t *removed,
		    struct tg_err *);

/* tg_store_key_ok - whether a key obeys the rules above */
bool		tg_store_key_ok(const char *);

#endif
