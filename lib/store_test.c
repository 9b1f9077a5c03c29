/*
 * store_test - both store backends through one table of cases.
 *
 * The embedded backend runs in a temporary directory; the Redis backend
 * against a real redis-server this test starts on a free loopback port
 * in a scratch directory, and kills at the end.  Cases that only Redis
 * can have (a flushed script cache, a server that stops answering or
 * dies) run on Redis alone; the rest run on both.  Windows and lapses
 * are a second or less, so the whole run takes seconds.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tollgate/buf.h"
#include "tollgate/conf.h"
#include "tollgate/log.h"
#include "tollgate/store.h"
#include "tollgate/util.h"
#include "tg_test.h"

#define STORE_TEST_THREADS	32
#define STORE_TEST_CALLS	20	/* per thread */
#define STORE_TEST_LIMIT	100

struct store_test_case {
	const char	*label;
	void		(*fn)(struct tg_store *, enum tg_store_backend);
	bool		 redis_only;
};

struct store_test_run {
	const struct store_test_case	*c;
	enum tg_store_backend		 backend;
	char				 name[128];
};

static char		 store_test_dir[] = "/tmp/store_test.XXXXXX";
static char		 store_test_lmdb[512];
static struct tg_test_redis store_test_redis = TG_TEST_REDIS_INIT;
static pthread_mutex_t	 store_test_log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tg_buf	 store_test_log;

/* store_test_sink - keep every log line for the cases to look at */
static void
store_test_sink(enum tg_log_level level, const char *line, void *arg)
{
	(void)pthread_mutex_lock(&store_test_log_lock);
	tg_buf_puts(&store_test_log, line);
	tg_buf_putc(&store_test_log, '\n');
	(void)pthread_mutex_unlock(&store_test_log_lock);
}

/* store_test_logged - whether a line so far contains s */
static bool
store_test_logged(const char *s)
{
	bool	found;

	(void)pthread_mutex_lock(&store_test_log_lock);
	found = strstr(tg_buf_cstr(&store_test_log), s) != NULL;
	(void)pthread_mutex_unlock(&store_test_log_lock);
	return found;
}

/* store_test_ms - the monotonic clock in ms */
static double
store_test_ms(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* store_test_sleep - sleep ms milliseconds */
static void
store_test_sleep(long ms)
{
	struct timespec	ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
}

/* store_test_redis_start - redis-server on its port (a free one at first) */
static void
store_test_redis_start(void)
{
	if (tg_test_redis_start(&store_test_redis, store_test_dir,
	    store_test_redis.port) == -1)
		fail_msg("redis-server did not answer on port %d",
		    store_test_redis.port);
}

/* store_test_open - a store of the backend; Redis with short limits */
static struct tg_store *
store_test_open(enum tg_store_backend backend, enum tg_store_on_error oe)
{
	struct tg_store_conf	 conf;
	struct tg_store		*s;
	struct tg_err		 err;
	char			 url[64];

	memset(&conf, 0, sizeof(conf));
	conf.backend = backend;
	conf.path = store_test_lmdb;
	(void)snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0",
	    store_test_redis.port);
	conf.url = url;
	conf.timeout_ms = 300;
	conf.breaker_failures = 3;
	conf.breaker_interval_ms = 1000;
	conf.map_size = 64 << 20;
	conf.on_error = oe;
	s = tg_store_open(&conf, &err);
	if (s == NULL)
		fail_msg("tg_store_open: %s", err.text);
	return s;
}

/* store_test_reserve - reserve, which must not fail */
static struct tg_store_quota
store_test_reserve(struct tg_store *s, const char *key, uint64_t window,
    uint64_t limit, uint64_t amount, uint64_t ttl)
{
	struct tg_store_quota	q;
	struct tg_err		err;
	enum tg_status		st;

	st = tg_store_reserve(s, key, window, limit, amount, ttl, &q, &err);
	if (st != TG_OK)
		fail_msg("reserve %s: %s", key, err.text);
	return q;
}

struct store_test_worker {
	struct tg_store	*s;
	const char	*key;
	int		 calls;
	int		 admitted;
	int		 failed;
};

/* store_test_work - calls reservations of 1 against the shared limit */
static void *
store_test_work(void *arg)
{
	struct store_test_worker	*w = arg;
	struct tg_store_quota		 q;
	int				 i;

	for (i = 0; i < w->calls; i++) {
		if (tg_store_reserve(w->s, w->key, 60000, STORE_TEST_LIMIT, 1,
		    60000, &q, NULL) != TG_OK)
			w->failed++;
		else if (q.admitted)
			w->admitted++;
	}
	return NULL;
}

/* store_test_hammer - n threads of calls each on key; admitted total */
static int
store_test_hammer(struct tg_store *s, const char *key, int n, int calls,
    int *failed)
{
	struct store_test_worker	w[STORE_TEST_THREADS];
	pthread_t			t[STORE_TEST_THREADS];
	int				i, total = 0;

	*failed = 0;
	for (i = 0; i < n; i++) {
		w[i] = (struct store_test_worker){ s, key, calls, 0, 0 };
		if (pthread_create(&t[i], NULL, store_test_work, &w[i]) != 0)
			abort();
	}
	for (i = 0; i < n; i++) {
		(void)pthread_join(t[i], NULL);
		total += w[i].admitted;
		*failed += w[i].failed;
	}
	return total;
}

/* case_threads - 32 threads x 20 calls, limit 100: exactly 100 */
static void
case_threads(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store_usage	u;
	int			failed, admitted;

	admitted = store_test_hammer(s, "threads", STORE_TEST_THREADS,
	    STORE_TEST_CALLS, &failed);
	assert_int_equal(failed, 0);
	assert_int_equal(admitted, STORE_TEST_LIMIT);
	assert_int_equal(tg_store_usage(s, "threads", 60000, STORE_TEST_LIMIT,
	    &u, NULL), TG_OK);
	assert_int_equal(u.used, STORE_TEST_LIMIT);
	assert_int_equal(u.remaining, 0);
	print_message("%s: %d threads x %d calls, limit %d: %d admitted\n",
	    b == TG_STORE_REDIS ? "redis" : "embedded", STORE_TEST_THREADS,
	    STORE_TEST_CALLS, STORE_TEST_LIMIT, admitted);
}

/* case_processes - two processes of 16 threads each: exactly 100 */
static void
case_processes(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store	*cs;
	pid_t		 pid[2];
	int		 i, status, total = 0, failed;

	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		assert_true(pid[i] != -1);
		if (pid[i] == 0) {
			/* The child's own handle: none crosses fork(). */
			cs = store_test_open(b, TG_STORE_ON_ERROR_FAIL);
			total = store_test_hammer(cs, "processes", 16,
			    STORE_TEST_CALLS, &failed);
			cs = tg_store_close(cs);
			_exit(failed != 0 ? 255 : total);
		}
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status));
		assert_true(WEXITSTATUS(status) != 255);
		total += WEXITSTATUS(status);
	}
	assert_int_equal(total, STORE_TEST_LIMIT);
	print_message("%s: 2 processes x 16 threads x %d calls, limit %d: "
	    "%d admitted\n", b == TG_STORE_REDIS ? "redis" : "embedded",
	    STORE_TEST_CALLS, STORE_TEST_LIMIT, total);
}

/* case_refused - a refusal consumes nothing; too big never fits */
static void
case_refused(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store_quota	q;

	q = store_test_reserve(s, "refused", 60000, 5, 3, 60000);
	assert_true(q.admitted);
	assert_false(q.approximate);
	assert_int_equal(q.used, 3);
	assert_int_equal(q.remaining, 2);
	assert_true(q.id != 0);
	q = store_test_reserve(s, "refused", 60000, 5, 3, 60000);
	assert_false(q.admitted);
	assert_int_equal(q.used, 3);
	assert_int_equal(q.remaining, 2);
	assert_true(q.retry_after_ms > 58000 && q.retry_after_ms <= 60000);
	q = store_test_reserve(s, "refused", 60000, 5, 2, 60000);
	assert_true(q.admitted);
	assert_int_equal(q.used, 5);
	assert_int_equal(q.remaining, 0);
	q = store_test_reserve(s, "refused", 60000, 5, 1, 60000);
	assert_false(q.admitted);
	assert_int_equal(q.used, 5);
	q = store_test_reserve(s, "refused-big", 60000, 5, 6, 60000);
	assert_false(q.admitted);
	assert_int_equal(q.used, 0);
	assert_int_equal(q.retry_after_ms, 60000);
	/* A limit of 0 refuses everything. */
	q = store_test_reserve(s, "refused-zero", 60000, 0, 1, 60000);
	assert_false(q.admitted);
}

/* case_refund - refund gives back, once; a committed amount too */
static void
case_refund(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store_quota	q, q2;
	struct tg_err		err;

	q = store_test_reserve(s, "refund", 60000, 2, 2, 60000);
	assert_true(q.admitted);
	assert_false(store_test_reserve(s, "refund", 60000, 2, 1,
	    60000).admitted);
	assert_int_equal(tg_store_refund(s, "refund", q.id, &err), TG_OK);
	assert_int_equal(tg_store_refund(s, "refund", q.id, &err),
	    TG_NOTFOUND);
	assert_int_equal(tg_store_commit(s, "refund", q.id, &err),
	    TG_NOTFOUND);
	q = store_test_reserve(s, "refund", 60000, 2, 2, 60000);
	assert_true(q.admitted);
	assert_int_equal(tg_store_commit(s, "refund", q.id, &err), TG_OK);
	assert_int_equal(tg_store_commit(s, "refund", q.id, &err), TG_OK);
	q2 = store_test_reserve(s, "refund", 60000, 2, 1, 60000);
	assert_false(q2.admitted);
	assert_int_equal(tg_store_refund(s, "refund", q.id, &err), TG_OK);
	q2 = store_test_reserve(s, "refund", 60000, 2, 1, 60000);
	assert_true(q2.admitted);
	assert_int_equal(q2.used, 1);
	/* An id never handed out. */
	assert_int_equal(tg_store_commit(s, "refund", 999999, &err),
	    TG_NOTFOUND);
	assert_int_equal(tg_store_refund(s, "nosuchkey", 1, &err),
	    TG_NOTFOUND);
}

/* case_lapse - an uncommitted reservation lapses; a committed one not */
static void
case_lapse(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store_quota	q, c;
	struct tg_store_usage	u;

	q = store_test_reserve(s, "lapse", 60000, 1, 1, 300);
	assert_true(q.admitted);
	c = store_test_reserve(s, "lapse-kept", 60000, 1, 1, 300);
	assert_true(c.admitted);
	assert_int_equal(tg_store_commit(s, "lapse-kept", c.id, NULL), TG_OK);
	assert_false(store_test_reserve(s, "lapse", 60000, 1, 1,
	    300).admitted);
	store_test_sleep(450);
	assert_int_equal(tg_store_usage(s, "lapse", 60000, 1, &u, NULL),
	    TG_OK);
	assert_int_equal(u.used, 0);
	assert_int_equal(tg_store_commit(s, "lapse", q.id, NULL),
	    TG_NOTFOUND);
	assert_true(store_test_reserve(s, "lapse", 60000, 1, 1,
	    300).admitted);
	assert_false(store_test_reserve(s, "lapse-kept", 60000, 1, 1,
	    300).admitted);
}

/*
 * store_test_at_once - key's ttl-0 reservation of 2 out of 2: counted
 * at once and past any ttl (it leaves with the window only), its
 * commit TG_OK, its refund gives it back once
 */
static void
store_test_at_once(struct tg_store *s, const char *key, bool approximate)
{
	struct tg_store_quota	q, p;
	struct tg_store_usage	u;
	struct tg_err		err;

	assert_int_equal(tg_store_reserve(s, key, 60000, 3, 2, 0, &q, &err),
	    TG_OK);
	assert_true(q.admitted);
	assert_int_equal(q.approximate, approximate);
	assert_int_equal(q.used, 2);
	/* A pending one beside it, to lapse. */
	assert_int_equal(tg_store_reserve(s, key, 60000, 3, 1, 300, &p, &err),
	    TG_OK);
	assert_true(p.admitted);
	store_test_sleep(450);
	assert_int_equal(tg_store_usage(s, key, 60000, 3, &u, &err), TG_OK);
	assert_int_equal(u.used, 2);
	/* Not pending: it frees only when it leaves the window. */
	assert_true(u.frees_in_ms > 59000);
	assert_int_equal(tg_store_commit(s, key, q.id, &err), TG_OK);
	assert_int_equal(tg_store_usage(s, key, 60000, 3, &u, &err), TG_OK);
	assert_int_equal(u.used, 2);
	assert_int_equal(tg_store_refund(s, key, q.id, &err), TG_OK);
	assert_int_equal(tg_store_refund(s, key, q.id, &err), TG_NOTFOUND);
	assert_int_equal(tg_store_usage(s, key, 60000, 3, &u, &err), TG_OK);
	assert_int_equal(u.used, 0);
	assert_int_equal(tg_store_reserve(s, key, 60000, 3, 3, 0, &q, &err),
	    TG_OK);
	assert_true(q.admitted);
}

/* case_at_once - ttl 0: committed at once */
static void
case_at_once(struct tg_store *s, enum tg_store_backend b)
{
	store_test_at_once(s, "atonce", false);
}

/* case_sliding - entries leave one by one as the window slides */
static void
case_sliding(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store_quota	q;
	struct tg_store_usage	u;
	double			t0;

	t0 = store_test_ms();
	assert_true(store_test_reserve(s, "slide", 1000, 2, 1,
	    5000).admitted);
	store_test_sleep(500);
	assert_true(store_test_reserve(s, "slide", 1000, 2, 1,
	    5000).admitted);
	q = store_test_reserve(s, "slide", 1000, 2, 1, 5000);
	assert_false(q.admitted);
	/* The first entry leaves 1000 ms after it came. */
	assert_true(q.retry_after_ms >= 300 && q.retry_after_ms <= 520);
	assert_int_equal(tg_store_usage(s, "slide", 1000, 2, &u, NULL), TG_OK);
	assert_int_equal(u.used, 2);
	assert_int_equal(u.remaining, 0);
	assert_true(u.frees_in_ms >= 300 && u.frees_in_ms <= 520);
	store_test_sleep((long)(t0 + 1100 - store_test_ms()));
	q = store_test_reserve(s, "slide", 1000, 2, 1, 5000);
	assert_true(q.admitted);
	assert_int_equal(q.used, 2);
	q = store_test_reserve(s, "slide", 1000, 2, 1, 5000);
	assert_false(q.admitted);
	assert_true(q.retry_after_ms <= 500);
}

/* case_usage - used, remaining, and when the oldest entry leaves */
static void
case_usage(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store_usage	u;
	struct tg_err		err;

	assert_int_equal(tg_store_usage(s, "usage", 3600000, 10, &u, &err),
	    TG_OK);
	assert_int_equal(u.used, 0);
	assert_int_equal(u.remaining, 10);
	assert_int_equal(u.frees_in_ms, 0);
	assert_true(store_test_reserve(s, "usage", 3600000, 10, 3,
	    3600000).admitted);
	assert_true(store_test_reserve(s, "usage", 3600000, 10, 4,
	    60000).admitted);
	assert_int_equal(tg_store_usage(s, "usage", 3600000, 10, &u, &err),
	    TG_OK);
	assert_int_equal(u.used, 7);
	assert_int_equal(u.remaining, 3);
	/* The pending 4 lapses first, in a minute. */
	assert_true(u.frees_in_ms > 59000 && u.frees_in_ms <= 60000);
	/* usage changes nothing, however often it is asked. */
	assert_int_equal(tg_store_usage(s, "usage", 3600000, 5, &u, &err),
	    TG_OK);
	assert_int_equal(u.used, 7);
	assert_int_equal(u.remaining, 0);
}

/* case_list_reset - keys by prefix, and reset forgets one counter */
static void
case_list_reset(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store_usage	 u;
	char			**keys;
	size_t			 n;

	assert_true(store_test_reserve(s, "tenant:b.example", 60000, 9, 1,
	    60000).admitted);
	assert_true(store_test_reserve(s, "tenant:a.example", 60000, 9, 2,
	    60000).admitted);
	assert_true(store_test_reserve(s, "tenant*x", 60000, 9, 1,
	    60000).admitted);
	assert_int_equal(tg_store_list(s, "tenant:", &keys, &n, NULL), TG_OK);
	assert_int_equal(n, 2);
	assert_string_equal(keys[0], "tenant:a.example");
	assert_string_equal(keys[1], "tenant:b.example");
	keys = tg_store_list_free(keys, n);
	/* A glob character in the prefix is a plain character. */
	assert_int_equal(tg_store_list(s, "tenant*", &keys, &n, NULL), TG_OK);
	assert_int_equal(n, 1);
	assert_string_equal(keys[0], "tenant*x");
	keys = tg_store_list_free(keys, n);
	assert_int_equal(tg_store_reset(s, "tenant:a.example", NULL), TG_OK);
	assert_int_equal(tg_store_usage(s, "tenant:a.example", 60000, 9, &u,
	    NULL), TG_OK);
	assert_int_equal(u.used, 0);
	assert_int_equal(tg_store_list(s, "tenant:", &keys, &n, NULL), TG_OK);
	assert_int_equal(n, 1);
	assert_string_equal(keys[0], "tenant:b.example");
	keys = tg_store_list_free(keys, n);
	assert_int_equal(tg_store_list(s, "", &keys, &n, NULL), TG_OK);
	assert_true(n >= 2);
	keys = tg_store_list_free(keys, n);
}

/* case_kv - records with and without a ttl, and counters */
static void
case_kv(struct tg_store *s, enum tg_store_backend b)
{
	static const char	 bin[] = { 'a', '\0', 'b', '\n', (char)0xff };
	struct tg_err		 err;
	char			*v;
	size_t			 len;
	int64_t			 n;

	assert_int_equal(tg_store_kv_get(s, "kv:none", &v, &len, &err),
	    TG_NOTFOUND);
	assert_null(v);
	assert_int_equal(tg_store_kv_set_ttl(s, "kv:bin", bin, sizeof(bin), 0,
	    &err), TG_OK);
	assert_int_equal(tg_store_kv_get(s, "kv:bin", &v, &len, &err), TG_OK);
	assert_int_equal(len, sizeof(bin));
	assert_memory_equal(v, bin, sizeof(bin));
	free(v);
	assert_int_equal(tg_store_kv_set_ttl(s, "kv:short", "x", 1, 300,
	    &err), TG_OK);
	assert_int_equal(tg_store_kv_incr(s, "kv:n", 5, 300, &n, &err), TG_OK);
	assert_int_equal(n, 5);
	assert_int_equal(tg_store_kv_incr(s, "kv:n", -2, 300, &n, &err),
	    TG_OK);
	assert_int_equal(n, 3);
	assert_int_equal(tg_store_kv_incr(s, "kv:bin", 1, 0, &n, &err),
	    TG_PERM);
	assert_int_equal(tg_store_kv_get(s, "kv:short", &v, &len, &err),
	    TG_OK);
	assert_string_equal(v, "x");
	free(v);
	store_test_sleep(400);
	assert_int_equal(tg_store_kv_get(s, "kv:short", &v, &len, &err),
	    TG_NOTFOUND);
	assert_int_equal(tg_store_kv_incr(s, "kv:n", 1, 0, &n, &err), TG_OK);
	assert_int_equal(n, 1);
	assert_int_equal(tg_store_kv_del(s, "kv:bin", &err), TG_OK);
	assert_int_equal(tg_store_kv_del(s, "kv:bin", &err), TG_NOTFOUND);
	/* Records and counters are separate namespaces. */
	assert_int_equal(tg_store_kv_set_ttl(s, "both", "1", 1, 0, &err),
	    TG_OK);
	assert_true(store_test_reserve(s, "both", 60000, 1, 1,
	    60000).admitted);
	assert_int_equal(tg_store_kv_get(s, "both", &v, &len, &err), TG_OK);
	free(v);
}

/* case_hostile - bad keys are TG_PERM everywhere; UTF-8 is fine */
static void
case_hostile(struct tg_store *s, enum tg_store_backend b)
{
	static const char *const bad[] = {
		"", "a b", "tab\tkey", "new\nline", "x{tag}", "}", "\x01\x02",
		"del\x7f",
	};
	struct tg_store_quota	 q;
	struct tg_store_usage	 u;
	struct tg_err		 err;
	char			 longkey[TG_STORE_KEY_MAX + 2], *v, **keys;
	size_t			 i, len, n;
	int64_t			 iv;

	for (i = 0; i < TG_NITEMS(bad); i++) {
		assert_int_equal(tg_store_reserve(s, bad[i], 1000, 1, 1, 1000,
		    &q, &err), TG_PERM);
		assert_non_null(strstr(err.text, "bad key"));
		assert_int_equal(tg_store_commit(s, bad[i], 1, &err), TG_PERM);
		assert_int_equal(tg_store_refund(s, bad[i], 1, &err), TG_PERM);
		assert_int_equal(tg_store_usage(s, bad[i], 1000, 1, &u, &err),
		    TG_PERM);
		assert_int_equal(tg_store_reset(s, bad[i], &err), TG_PERM);
		assert_int_equal(tg_store_kv_get(s, bad[i], &v, &len, &err),
		    TG_PERM);
		assert_int_equal(tg_store_kv_set_ttl(s, bad[i], "x", 1, 0,
		    &err), TG_PERM);
		assert_int_equal(tg_store_kv_incr(s, bad[i], 1, 0, &iv, &err),
		    TG_PERM);
	}
	assert_int_equal(tg_store_reserve(s, NULL, 1000, 1, 1, 1000, &q,
	    &err), TG_PERM);
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	assert_int_equal(tg_store_reserve(s, longkey, 1000, 1, 1, 1000, &q,
	    &err), TG_PERM);
	longkey[TG_STORE_KEY_MAX] = '\0';
	assert_int_equal(tg_store_reserve(s, longkey, 1000, 1, 1, 1000, &q,
	    &err), TG_OK);
	assert_true(q.admitted);
	assert_true(store_test_reserve(s, "j\xc3\xbcrgen@b\xc3\xbc" "cher.de",
	    1000, 1, 1, 1000).admitted);
	/* Bad arguments other than the key. */
	assert_int_equal(tg_store_reserve(s, "args", 0, 1, 1, 1000, &q, &err),
	    TG_PERM);
	assert_int_equal(tg_store_reserve(s, "args", 1000, 1, 0, 1000, &q,
	    &err), TG_PERM);
	/* ttl 0 is no bad argument: committed at once. */
	assert_int_equal(tg_store_reserve(s, "args", 1000, 1, 1, 0, &q, &err),
	    TG_OK);
	assert_true(q.admitted);
	assert_int_equal(tg_store_reserve(s, "args", 1000, UINT64_MAX, 1,
	    1000, &q, &err), TG_PERM);
	assert_int_equal(tg_store_kv_set_ttl(s, "args", longkey,
	    TG_STORE_VALUE_MAX + 1, 0, &err), TG_PERM);
	assert_int_equal(tg_store_list(s, "a b", &keys, &n, &err), TG_PERM);
}

/* case_sweep - expired records and idle counters go; the rest stays */
static void
case_sweep(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store_usage	 u;
	char			*v, **keys, key[64];
	size_t			 len, n, removed = 0;
	int			 i;

	for (i = 0; i < 3; i++)
		assert_true(store_test_reserve(s, "sweep:idle", 200, 5, 1,
		    200).admitted);
	assert_true(store_test_reserve(s, "sweep:busy", 60000, 5, 2,
	    60000).admitted);
	assert_int_equal(tg_store_kv_set_ttl(s, "sweep:gone", "x", 1, 200,
	    NULL), TG_OK);
	assert_int_equal(tg_store_kv_set_ttl(s, "sweep:kept", "y", 1, 0,
	    NULL), TG_OK);
	/* More than one sweep transaction's worth. */
	for (i = 0; i < 2500; i++) {
		(void)snprintf(key, sizeof(key), "sweep:many:%d", i);
		assert_int_equal(tg_store_kv_set_ttl(s, key, "z", 1, 200,
		    NULL), TG_OK);
	}
	store_test_sleep(300);
	assert_int_equal(tg_store_sweep(s, &removed, NULL), TG_OK);
	/* Redis expired them itself; here, a record, a counter and its 3
	 * entries, and what earlier cases left to expire. */
	if (b == TG_STORE_REDIS)
		assert_int_equal(removed, 0);
	else
		assert_true(removed >= 2505);
	assert_int_equal(tg_store_list(s, "sweep:", &keys, &n, NULL), TG_OK);
	assert_int_equal(n, 1);
	assert_string_equal(keys[0], "sweep:busy");
	keys = tg_store_list_free(keys, n);
	assert_int_equal(tg_store_usage(s, "sweep:busy", 60000, 5, &u, NULL),
	    TG_OK);
	assert_int_equal(u.used, 2);
	assert_int_equal(tg_store_kv_get(s, "sweep:kept", &v, &len, NULL),
	    TG_OK);
	free(v);
	removed = 0;
	assert_int_equal(tg_store_sweep(s, &removed, NULL), TG_OK);
	assert_int_equal(removed, 0);
}

/* What case_kv_list's callback saw. */
struct store_test_kvl {
	struct tg_store	*s;
	size_t		 n, dup, bad;
	size_t		 stop_at;	/* 0: never stop */
	bool		 del;		/* delete what is reported */
	unsigned char	 seen[2600];
};

/* store_test_kvl_cb - check one record, remember it, maybe delete it */
static bool
store_test_kvl_cb(const struct tg_store_kv_rec *r, void *arg)
{
	struct store_test_kvl	*t = arg;
	long			 i;
	char			 want[32];

	if (strncmp(r->key, "kvl:", 4) != 0 ||
	    !tg_parse_long(r->key + 4, 0, 2599, &i)) {
		t->bad++;
		return true;
	}
	(void)snprintf(want, sizeof(want), "v%ld", i);
	if (r->len != strlen(want) || strcmp(r->value, want) != 0 ||
	    (i % 2 == 0 ? r->ttl_ms != 0 : r->ttl_ms == 0 ||
	    r->ttl_ms > 60000))
		t->bad++;
	if (t->seen[i]++ != 0)
		t->dup++;
	t->n++;
	if (t->del)
		assert_int_equal(tg_store_kv_del(t->s, r->key, NULL), TG_OK);
	return t->stop_at == 0 || t->n < t->stop_at;
}

/* case_kv_list - every live record of a prefix, over several pages */
static void
case_kv_list(struct tg_store *s, enum tg_store_backend b)
{
	struct store_test_kvl	 t;
	struct tg_err		 err;
	char			 key[32], val[32];
	size_t			 i, uniq;
	int			 j;

	(void)b;
	/* 2.5 pages; the even ones never expire, the odd in a minute */
	for (j = 0; j < 2500; j++) {
		(void)snprintf(key, sizeof(key), "kvl:%d", j);
		(void)snprintf(val, sizeof(val), "v%d", j);
		assert_int_equal(tg_store_kv_set_ttl(s, key, val, strlen(val),
		    j % 2 == 0 ? 0 : 60000, NULL), TG_OK);
	}
	/* Not listed: another prefix, an expired record, a counter. */
	assert_int_equal(tg_store_kv_set_ttl(s, "kvm:1", "x", 1, 0, NULL),
	    TG_OK);
	assert_int_equal(tg_store_kv_set_ttl(s, "kvl:2599", "v2599", 5, 100,
	    NULL), TG_OK);
	assert_true(store_test_reserve(s, "kvl:q", 60000, 5, 1,
	    60000).admitted);
	store_test_sleep(200);
	memset(&t, 0, sizeof(t));
	t.s = s;
	assert_int_equal(tg_store_kv_list(s, "kvl:", store_test_kvl_cb, &t,
	    NULL), TG_OK);
	for (i = uniq = 0; i < 2500; i++)
		uniq += t.seen[i] != 0;
	assert_int_equal(uniq, 2500);
	assert_int_equal(t.bad, 0);
	assert_int_equal(t.seen[2599], 0);
	/* Stopping early, then deleting from the callback. */
	memset(&t, 0, sizeof(t));
	t.s = s;
	t.stop_at = 1500;
	assert_int_equal(tg_store_kv_list(s, "kvl:", store_test_kvl_cb, &t,
	    NULL), TG_OK);
	assert_int_equal(t.n, 1500);
	memset(&t, 0, sizeof(t));
	t.s = s;
	t.del = true;
	assert_int_equal(tg_store_kv_list(s, "kvl:", store_test_kvl_cb, &t,
	    NULL), TG_OK);
	assert_int_equal(t.n - t.dup, 2500);
	memset(&t, 0, sizeof(t));
	assert_int_equal(tg_store_kv_list(s, "kvl:", store_test_kvl_cb, &t,
	    NULL), TG_OK);
	assert_int_equal(t.n, 0);
	assert_int_equal(tg_store_kv_del(s, "kvm:1", NULL), TG_OK);
	/* A bad prefix is refused. */
	assert_int_equal(tg_store_kv_list(s, "", store_test_kvl_cb, &t, &err),
	    TG_PERM);
	assert_int_equal(tg_store_kv_list(s, "a b", store_test_kvl_cb, &t,
	    &err), TG_PERM);
}

/* case_reopen - counters survive closing and opening the store */
static void
case_reopen(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store		*s2;
	struct tg_store_quota	 q;
	struct tg_store_usage	 u;

	q = store_test_reserve(s, "reopen", 60000, 10, 4, 60000);
	assert_true(q.admitted);
	assert_int_equal(tg_store_commit(s, "reopen", q.id, NULL), TG_OK);
	assert_true(store_test_reserve(s, "reopen", 60000, 10, 2,
	    60000).admitted);
	/* A second handle in the same process shares the environment. */
	s2 = store_test_open(b, TG_STORE_ON_ERROR_FAIL);
	assert_int_equal(tg_store_usage(s2, "reopen", 60000, 10, &u, NULL),
	    TG_OK);
	assert_int_equal(u.used, 6);
	s2 = tg_store_close(s2);
	assert_int_equal(tg_store_usage(s, "reopen", 60000, 10, &u, NULL),
	    TG_OK);
	assert_int_equal(u.used, 6);
}

/* case_reopen_cold - with every handle closed, the file keeps them */
static void
case_reopen_cold(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store_usage	u;

	/* Runs after case_reopen, on a fresh handle: the env was closed. */
	assert_int_equal(tg_store_usage(s, "reopen", 60000, 10, &u, NULL),
	    TG_OK);
	assert_int_equal(u.used, 6);
	assert_int_equal(u.remaining, 4);
	assert_true(store_test_reserve(s, "reopen", 60000, 10, 4,
	    60000).admitted);
	assert_false(store_test_reserve(s, "reopen", 60000, 10, 1,
	    60000).admitted);
}

/* case_noscript - a flushed script cache is reloaded on the fly */
static void
case_noscript(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store_quota	q;

	q = store_test_reserve(s, "noscript", 60000, 3, 1, 60000);
	assert_true(q.admitted);
	assert_int_equal(tg_test_redis_cmd(&store_test_redis, "SCRIPT FLUSH"),
	    0);
	assert_int_equal(tg_store_commit(s, "noscript", q.id, NULL), TG_OK);
	assert_int_equal(tg_test_redis_cmd(&store_test_redis, "SCRIPT FLUSH"),
	    0);
	q = store_test_reserve(s, "noscript", 60000, 3, 2, 60000);
	assert_true(q.admitted);
	assert_int_equal(q.used, 3);
}

/* case_slow - a server that stops answering costs one timeout */
static void
case_slow(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store_quota	q;
	struct tg_err		err;
	double			t;

	assert_true(store_test_reserve(s, "slow", 60000, 5, 1,
	    60000).admitted);
	assert_int_equal(kill(store_test_redis.pid, SIGSTOP), 0);
	t = store_test_ms();
	assert_int_equal(tg_store_reserve(s, "slow", 60000, 5, 1, 60000, &q,
	    &err), TG_TEMP);
	t = store_test_ms() - t;
	assert_int_equal(kill(store_test_redis.pid, SIGCONT), 0);
	assert_non_null(strstr(err.text, "redis 127.0.0.1:"));
	assert_true(t >= 250 && t < 1500);
	assert_false(q.admitted);
	/* The next call reconnects; the lost call may have counted. */
	q = store_test_reserve(s, "slow", 60000, 5, 1, 60000);
	assert_true(q.admitted);
	assert_true(q.used == 2 || q.used == 3);
}

struct store_test_spin {
	struct tg_store	*s;
	int		*stop;
	int		 ok, temp, other;
};

/* store_test_spin - reserve until told to stop, counting statuses */
static void *
store_test_spin(void *arg)
{
	struct store_test_spin	*w = arg;
	struct tg_store_quota	 q;

	while (!__atomic_load_n(w->stop, __ATOMIC_ACQUIRE)) {
		switch (tg_store_reserve(w->s, "down-mid", 60000, 1000000, 1,
		    60000, &q, NULL)) {
		case TG_OK:
			w->ok++;
			break;
		case TG_TEMP:
			w->temp++;
			break;
		default:
			w->other++;
			break;
		}
	}
	return NULL;
}

/* store_test_kill_mid_run - kill the server under 8 busy threads */
static void
store_test_kill_mid_run(enum tg_store_backend b)
{
	struct store_test_spin	 w[8];
	pthread_t		 t[8];
	struct tg_store		*mid;
	int			 i, stop = 0, ok = 0, temp = 0;

	mid = store_test_open(b, TG_STORE_ON_ERROR_FAIL);
	for (i = 0; i < 8; i++) {
		w[i] = (struct store_test_spin){ mid, &stop, 0, 0, 0 };
		if (pthread_create(&t[i], NULL, store_test_spin, &w[i]) != 0)
			abort();
	}
	store_test_sleep(100);
	tg_test_redis_stop(&store_test_redis);
	store_test_sleep(100);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 8; i++) {
		(void)pthread_join(t[i], NULL);
		assert_int_equal(w[i].other, 0);
		ok += w[i].ok;
		temp += w[i].temp;
	}
	assert_true(ok > 0);
	assert_true(temp > 0);
	mid = tg_store_close(mid);
}

/* case_down - killed: fast TG_TEMP, the breaker, the local fallback,
 * and normal service once the server is back */
static void
case_down(struct tg_store *s, enum tg_store_backend b)
{
	struct tg_store		*loc;
	struct tg_store_quota	 q;
	struct tg_store_usage	 u;
	struct tg_err		 err;
	double			 t;
	int			 i, admitted = 0;

	loc = store_test_open(b, TG_STORE_ON_ERROR_LOCAL);
	assert_true(store_test_reserve(s, "down", 60000, 5, 1,
	    60000).admitted);
	q = store_test_reserve(loc, "down", 60000, 5, 1, 60000);
	assert_true(q.admitted);
	assert_false(q.approximate);
	store_test_kill_mid_run(b);
	for (i = 0; i < 3; i++) {
		t = store_test_ms();
		assert_int_equal(tg_store_reserve(s, "down", 60000, 5, 1,
		    60000, &q, &err), TG_TEMP);
		assert_true(store_test_ms() - t < 200);
		assert_null(strstr(err.text, "unavailable"));
	}
	/* Open now: no connection is even tried. */
	t = store_test_ms();
	assert_int_equal(tg_store_reserve(s, "down", 60000, 5, 1, 60000, &q,
	    &err), TG_TEMP);
	assert_true(store_test_ms() - t < 20);
	assert_non_null(strstr(err.text, "unavailable after 3 failures"));
	/* Listing fails the same way, at once. */
	assert_int_equal(tg_store_kv_list(s, "down", store_test_kvl_cb, NULL,
	    &err), TG_TEMP);
	/* on_error = local: approximately the limit, from this process. */
	for (i = 0; i < 8; i++) {
		assert_int_equal(tg_store_reserve(loc, "down", 60000, 5, 1,
		    60000, &q, &err), TG_OK);
		assert_true(q.approximate);
		if (q.admitted)
			admitted++;
		if (i == 0)
			assert_int_equal(tg_store_commit(loc, "down", q.id,
			    &err), TG_OK);
	}
	assert_int_equal(admitted, 5);
	assert_int_equal(tg_store_usage(loc, "down", 60000, 5, &u, &err),
	    TG_OK);
	assert_true(u.approximate);
	assert_int_equal(u.used, 5);
	assert_true(store_test_logged("enforcing limits approximately"));
	/* ttl 0 in the fallback too. */
	store_test_at_once(loc, "down:atonce", true);
	/* Back: after the breaker's interval, service as before. */
	store_test_redis_start();
	store_test_sleep(1100);
	q = store_test_reserve(s, "down", 60000, 5, 1, 60000);
	assert_true(q.admitted);
	assert_int_equal(q.used, 1);	/* a new server: a new count */
	q = store_test_reserve(loc, "down", 60000, 5, 1, 60000);
	assert_false(q.approximate);
	assert_true(q.admitted);
	assert_int_equal(q.used, 2);
	assert_true(store_test_logged("local counters dropped"));
	loc = tg_store_close(loc);
}

struct store_test_async {
	struct event_base	*base;
	int			 want;		/* callbacks before loopexit */
	int			 calls;
	int			 admitted;
	int			 reentered;	/* callbacks inside a call */
	bool			 in_call;
	enum tg_status		 last;
	bool			 last_null;
	char			 last_err[512];
	uint64_t		 ids[64];
	int			 nids;
};

/* store_test_async_note - one callback's outcome */
static void
store_test_async_note(struct store_test_async *t, enum tg_status st,
    const struct tg_err *err)
{
	t->calls++;
	if (t->in_call)
		t->reentered++;
	t->last = st;
	(void)snprintf(t->last_err, sizeof(t->last_err), "%s",
	    err != NULL ? err->text : "");
	if (st != TG_OK && err == NULL)
		t->reentered += 1000;	/* a failure must say why */
	if (t->calls == t->want)
		(void)event_base_loopexit(t->base, NULL);
}

/* store_test_async_quota - a reservation's callback */
static void
store_test_async_quota(enum tg_status st, const struct tg_store_quota *q,
    const struct tg_err *err, void *arg)
{
	struct store_test_async	*t = arg;

	t->last_null = q == NULL;
	if (q != NULL && q->admitted) {
		t->admitted++;
		if (t->nids < (int)TG_NITEMS(t->ids))
			t->ids[t->nids++] = q->id;
	}
	if ((st == TG_OK) != (q != NULL))
		t->reentered += 1000;	/* NULL exactly on failure */
	store_test_async_note(t, st, err);
}

/* store_test_async_done - a commit's or refund's callback */
static void
store_test_async_done(enum tg_status st, const struct tg_err *err, void *arg)
{
	store_test_async_note(arg, st, err);
}

/* store_test_async_run - loop until want more callbacks have run */
static void
store_test_async_run(struct store_test_async *t, int more)
{
	struct timeval	tv = { 5, 0 };

	t->want = t->calls + more;
	if (t->calls < t->want) {
		/* A bound, so a lost callback fails the case, not hangs. */
		(void)event_base_loopexit(t->base, &tv);
		(void)event_base_dispatch(t->base);
	}
	assert_int_equal(t->calls, t->want);
}

/* case_async - the callback API: exact, once each, never re-entrant */
static void
case_async(struct tg_store *s, enum tg_store_backend b)
{
	struct store_test_async	 t = { 0 };
	struct tg_store_async	*a;
	struct tg_store_usage	 u;
	int			 i;

	assert_non_null(t.base = event_base_new());
	a = tg_store_async_new(s, t.base);
	for (i = 0; i < 30; i++) {
		t.in_call = true;
		tg_store_async_reserve(a, "async", 60000, 10, 1, 60000,
		    store_test_async_quota, &t);
		t.in_call = false;
	}
	assert_int_equal(t.calls, 0);
	store_test_async_run(&t, 30);
	assert_int_equal(t.admitted, 10);
	assert_int_equal(t.reentered, 0);
	assert_int_equal(t.nids, 10);
	t.in_call = true;
	tg_store_async_commit(a, "async", t.ids[0], store_test_async_done, &t);
	tg_store_async_refund(a, "async", t.ids[1], store_test_async_done, &t);
	t.in_call = false;
	store_test_async_run(&t, 2);
	assert_int_equal(t.last, TG_OK);
	t.in_call = true;
	tg_store_async_refund(a, "async", t.ids[1], store_test_async_done, &t);
	t.in_call = false;
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_NOTFOUND);
	assert_int_equal(tg_store_usage(s, "async", 60000, 10, &u, NULL),
	    TG_OK);
	assert_int_equal(u.used, 9);
	/* A bad key fails, from the loop too, with a NULL result. */
	t.in_call = true;
	tg_store_async_reserve(a, "bad key", 60000, 10, 1, 60000,
	    store_test_async_quota, &t);
	t.in_call = false;
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_PERM);
	assert_true(t.last_null);
	assert_int_equal(t.reentered, 0);
	a = tg_store_async_free(a);
	event_base_free(t.base);
}

/* What case_async_kv's callbacks got. */
struct store_test_akv {
	struct store_test_async	*t;
	char			 value[64];
	int64_t			 n;
	uint64_t		 used;
};

/* store_test_akv_get - kv_get's callback */
static void
store_test_akv_get(enum tg_status st, const char *v, size_t len,
    const struct tg_err *err, void *arg)
{
	struct store_test_akv	*k = arg;

	if ((st == TG_OK) != (v != NULL) || (v != NULL && v[len] != '\0'))
		k->t->reentered += 1000;
	(void)snprintf(k->value, sizeof(k->value), "%s", v != NULL ? v : "");
	store_test_async_note(k->t, st, err);
}

/* store_test_akv_int - kv_incr's callback */
static void
store_test_akv_int(enum tg_status st, int64_t n, const struct tg_err *err,
    void *arg)
{
	struct store_test_akv	*k = arg;

	k->n = n;
	store_test_async_note(k->t, st, err);
}

/* store_test_akv_usage - usage's callback */
static void
store_test_akv_usage(enum tg_status st, const struct tg_store_usage *u,
    const struct tg_err *err, void *arg)
{
	struct store_test_akv	*k = arg;

	if ((st == TG_OK) != (u != NULL))
		k->t->reentered += 1000;
	k->used = u != NULL ? u->used : 0;
	store_test_async_note(k->t, st, err);
}

/* store_test_akv_done - kv_set's and kv_del's callback */
static void
store_test_akv_done(enum tg_status st, const struct tg_err *err, void *arg)
{
	store_test_async_note(((struct store_test_akv *)arg)->t, st, err);
}

/* case_async_kv - records and usage through the callback API */
static void
case_async_kv(struct tg_store *s, enum tg_store_backend b)
{
	struct store_test_async	 t = { 0 };
	struct store_test_akv	 k = { .t = &t };
	struct tg_store_async	*a;
	char			*v;
	size_t			 len;

	(void)b;
	assert_non_null(t.base = event_base_new());
	a = tg_store_async_new(s, t.base);
	t.in_call = true;
	tg_store_async_kv_get(a, "akv:1", store_test_akv_get, &k);
	t.in_call = false;
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_NOTFOUND);
	t.in_call = true;
	tg_store_async_kv_set(a, "akv:1", "hello", 5, 0, store_test_akv_done,
	    &k);
	tg_store_async_kv_set(a, "akv:2", "brief", 5, 150,
	    store_test_akv_done, &k);
	tg_store_async_kv_get(a, "akv:1", store_test_akv_get, &k);
	t.in_call = false;
	store_test_async_run(&t, 3);
	assert_int_equal(t.last, TG_OK);
	assert_string_equal(k.value, "hello");
	/* The synchronous side sees what the async side wrote. */
	assert_int_equal(tg_store_kv_get(s, "akv:2", &v, &len, NULL), TG_OK);
	assert_string_equal(v, "brief");
	free(v);
	store_test_sleep(250);
	tg_store_async_kv_get(a, "akv:2", store_test_akv_get, &k);
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_NOTFOUND);
	tg_store_async_kv_incr(a, "akv:n", 3, 60000, store_test_akv_int, &k);
	tg_store_async_kv_incr(a, "akv:n", 4, 60000, store_test_akv_int, &k);
	store_test_async_run(&t, 2);
	assert_int_equal(t.last, TG_OK);
	assert_int_equal(k.n, 7);
	/* A record that is not a counter. */
	tg_store_async_kv_incr(a, "akv:1", 1, 0, store_test_akv_int, &k);
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_PERM);
	tg_store_async_kv_del(a, "akv:1", store_test_akv_done, &k);
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_OK);
	tg_store_async_kv_del(a, "akv:1", store_test_akv_done, &k);
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_NOTFOUND);
	assert_true(store_test_reserve(s, "akv:q", 60000, 10, 3,
	    60000).admitted);
	tg_store_async_usage(a, "akv:q", 60000, 10, store_test_akv_usage, &k);
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_OK);
	assert_int_equal(k.used, 3);
	/* Bad arguments fail from the loop. */
	t.in_call = true;
	tg_store_async_kv_get(a, "bad key", store_test_akv_get, &k);
	tg_store_async_usage(a, "akv:q", 0, 10, store_test_akv_usage, &k);
	tg_store_async_kv_set(a, "akv:big", "x", TG_STORE_VALUE_MAX + 1, 0,
	    store_test_akv_done, &k);
	t.in_call = false;
	store_test_async_run(&t, 3);
	assert_int_equal(t.last, TG_PERM);
	assert_int_equal(t.reentered, 0);
	a = tg_store_async_free(a);
	event_base_free(t.base);
}

/* A callback that starts another call, as policyd's checks do. */
struct store_test_chain {
	struct tg_store_async	*a;
	int			 calls;
	enum tg_status		 last;
};

/* store_test_chain_cb - the first two answers each start a call */
static void
store_test_chain_cb(enum tg_status st, const char *v, size_t len,
    const struct tg_err *err, void *arg)
{
	struct store_test_chain	*c = arg;

	(void)v;
	(void)len;
	(void)err;
	c->last = st;
	if (++c->calls < 3)
		tg_store_async_kv_get(c->a, "chain:1", store_test_chain_cb, c);
}

/* case_async_free_chain - freed with a call pending whose callbacks
 * call again: all answer, the later ones TG_TEMP, none after free */
static void
case_async_free_chain(struct tg_store *s, enum tg_store_backend b)
{
	struct store_test_chain	 c = { 0 };
	struct event_base	*base;

	(void)b;
	assert_non_null(base = event_base_new());
	c.a = tg_store_async_new(s, base);
	tg_store_async_kv_get(c.a, "chain:1", store_test_chain_cb, &c);
	c.a = tg_store_async_free(c.a);
	assert_int_equal(c.calls, 3);
	assert_int_equal(c.last, TG_TEMP);
	event_base_free(base);
}

/* store_test_async_refused - one reservation on a store opened with url */
static void
store_test_async_refused(const char *url, const char *password,
    const char *want)
{
	struct store_test_async	 t = { 0 };
	struct tg_store_conf	 conf;
	struct tg_store		*s;
	struct tg_store_async	*a;
	struct tg_err		 err;

	memset(&conf, 0, sizeof(conf));
	conf.backend = TG_STORE_REDIS;
	conf.url = url;
	conf.password = password;
	conf.timeout_ms = 300;
	conf.breaker_failures = 3;
	conf.breaker_interval_ms = 1000;
	conf.on_error = TG_STORE_ON_ERROR_FAIL;
	if ((s = tg_store_open(&conf, &err)) == NULL)
		fail_msg("tg_store_open: %s", err.text);
	assert_non_null(t.base = event_base_new());
	a = tg_store_async_new(s, t.base);
	tg_store_async_reserve(a, "asetup", 60000, 10, 1, 60000,
	    store_test_async_quota, &t);
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_TEMP);
	assert_int_equal(t.admitted, 0);
	if (strstr(t.last_err, want) == NULL)
		fail_msg("wanted \"%s\" in: %s", want, t.last_err);
	a = tg_store_async_free(a);
	event_base_free(t.base);
	s = tg_store_close(s);
}

/* case_async_setup - a refused AUTH or SELECT fails the calls, saying so */
static void
case_async_setup(struct tg_store *s, enum tg_store_backend b)
{
	char	url[96];

	(void)s;
	(void)b;
	/* The test server has no password: AUTH is an error. */
	(void)snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0",
	    store_test_redis.port);
	store_test_async_refused(url, "wrong", "AUTH: ");
	(void)snprintf(url, sizeof(url), "redis://127.0.0.1:%d/999",
	    store_test_redis.port);
	store_test_async_refused(url, NULL, "SELECT: ");
}

/* case_async_faults - NOSCRIPT, a silent server, freeing mid-call */
static void
case_async_faults(struct tg_store *s, enum tg_store_backend b)
{
	struct store_test_async	 t = { 0 };
	struct tg_store_async	*a;
	double			 ms;

	assert_non_null(t.base = event_base_new());
	a = tg_store_async_new(s, t.base);
	assert_int_equal(tg_test_redis_cmd(&store_test_redis, "SCRIPT FLUSH"),
	    0);
	tg_store_async_reserve(a, "afault", 60000, 10, 1, 60000,
	    store_test_async_quota, &t);
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_OK);
	assert_int_equal(t.admitted, 1);
	/* Flushed while the hash is known: EVALSHA, NOSCRIPT, EVAL. */
	assert_int_equal(tg_test_redis_cmd(&store_test_redis, "SCRIPT FLUSH"),
	    0);
	tg_store_async_reserve(a, "afault", 60000, 10, 1, 60000,
	    store_test_async_quota, &t);
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_OK);
	assert_int_equal(t.admitted, 2);
	assert_int_equal(kill(store_test_redis.pid, SIGSTOP), 0);
	ms = store_test_ms();
	tg_store_async_reserve(a, "afault", 60000, 10, 1, 60000,
	    store_test_async_quota, &t);
	store_test_async_run(&t, 1);
	ms = store_test_ms() - ms;
	assert_int_equal(t.last, TG_TEMP);
	assert_true(t.last_null);
	assert_non_null(strstr(t.last_err, "no answer in time"));
	assert_true(ms >= 250 && ms < 1500);
	/* Freed with a call in flight: it completes before free returns. */
	tg_store_async_reserve(a, "afault", 60000, 10, 1, 60000,
	    store_test_async_quota, &t);
	assert_int_equal(t.calls, 3);
	a = tg_store_async_free(a);
	assert_int_equal(t.calls, 4);
	assert_int_equal(t.last, TG_TEMP);
	assert_int_equal(kill(store_test_redis.pid, SIGCONT), 0);
	/* A new handle connects and is served. */
	a = tg_store_async_new(s, t.base);
	tg_store_async_reserve(a, "afault", 60000, 10, 1, 60000,
	    store_test_async_quota, &t);
	store_test_async_run(&t, 1);
	assert_int_equal(t.last, TG_OK);
	assert_int_equal(t.reentered, 0);
	a = tg_store_async_free(a);
	event_base_free(t.base);
}

static const struct store_test_case store_test_cases[] = {
	{ "exact under 32 threads", case_threads, false },
	{ "exact across two processes", case_processes, false },
	{ "a refusal consumes nothing", case_refused, false },
	{ "refund gives back", case_refund, false },
	{ "an uncommitted reservation lapses", case_lapse, false },
	{ "ttl 0 commits at once", case_at_once, false },
	{ "the window slides", case_sliding, false },
	{ "usage and remaining", case_usage, false },
	{ "list and reset", case_list_reset, false },
	{ "key/value records", case_kv, false },
	{ "listing key/value records", case_kv_list, false },
	{ "hostile keys", case_hostile, false },
	{ "sweeping", case_sweep, false },
	{ "counters survive reopening", case_reopen, false },
	{ "counters survive closing all", case_reopen_cold, false },
	{ "asynchronous calls", case_async, false },
	{ "asynchronous records and usage", case_async_kv, false },
	{ "freeing with a chain of calls", case_async_free_chain, false },
	{ "NOSCRIPT is recovered", case_noscript, true },
	{ "asynchronous faults", case_async_faults, true },
	{ "refused AUTH or SELECT", case_async_setup, true },
	{ "a stopped server times out", case_slow, true },
	{ "a dead server: breaker, fallback, recovery", case_down, true },
};

/* test_conf - the [store] section as an open argument; bad values */
static void
test_conf(void **state)
{
	struct tg_conf_section	 sec = { "store", tg_store_params() };
	struct tg_store_conf	 c;
	struct tg_err		 err;
	struct tg_store		*s;

	tg_conf_defaults(&sec, 1);
	tg_store_conf_loaded(&c);
	assert_int_equal(c.backend, TG_STORE_EMBEDDED);
	assert_int_equal(c.timeout_ms, 1000);
	assert_int_equal(c.on_error, TG_STORE_ON_ERROR_FAIL);
	assert_int_equal(tg_conf_load_text("[store]\nbackend = redis\n"
	    "url = unix:/run/redis.sock\ntimeout = 2s\nbreaker_failures = 7\n"
	    "breaker_interval = 1m\nmap_size = 64m\non_error = local\n",
	    "t", &sec, 1, &err), TG_OK);
	tg_store_conf_loaded(&c);
	assert_int_equal(c.backend, TG_STORE_REDIS);
	assert_string_equal(c.url, "unix:/run/redis.sock");
	assert_int_equal(c.timeout_ms, 2000);
	assert_int_equal(c.breaker_failures, 7);
	assert_int_equal(c.breaker_interval_ms, 60000);
	assert_int_equal(c.map_size, 64 << 20);
	assert_int_equal(c.on_error, TG_STORE_ON_ERROR_LOCAL);
	assert_int_equal(tg_conf_load_text("[store]\non_error = accept\n", "t",
	    &sec, 1, &err), TG_PERM);
	/* URLs the Redis backend refuses at open. */
	c.url = "http://127.0.0.1:6379";
	assert_null(s = tg_store_open(&c, &err));
	assert_non_null(strstr(err.text, "url"));
	c.url = "redis://127.0.0.1:99999/0";
	assert_null(s = tg_store_open(&c, &err));
	c.url = "redis://:secret@127.0.0.1/0";
	assert_null(s = tg_store_open(&c, &err));
	assert_null(strstr(err.text, "secret"));
	c.url = "redis://[::1]:6380/3";
	assert_non_null(s = tg_store_open(&c, &err));
	s = tg_store_close(s);
	tg_conf_free(&sec, 1);
}

/* store_test_one - one case on a fresh handle of its backend */
static void
store_test_one(void **state)
{
	const struct store_test_run	*r = *state;
	struct tg_store			*s;

	s = store_test_open(r->backend, TG_STORE_ON_ERROR_FAIL);
	assert_string_equal(tg_store_backend_name(s),
	    r->backend == TG_STORE_REDIS ? "redis" : "embedded");
	r->c->fn(s, r->backend);
	s = tg_store_close(s);
}

/* store_test_setup - the scratch directory and redis-server */
static int
store_test_setup(void **state)
{
	if (mkdtemp(store_test_dir) == NULL)
		return -1;
	(void)snprintf(store_test_lmdb, sizeof(store_test_lmdb), "%s/lmdb",
	    store_test_dir);
	tg_log_set_sink(store_test_sink, NULL);
	tg_log_set_level(TG_LOG_DEBUG);
	store_test_redis_start();
	return 0;
}

/* store_test_teardown - kill the server, remove the directory */
static int
store_test_teardown(void **state)
{
	char	cmd[600];

	tg_test_redis_stop(&store_test_redis);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", store_test_dir);
	if (system(cmd) != 0)
		return -1;
	tg_log_set_sink(NULL, NULL);
	tg_buf_fini(&store_test_log);
	return 0;
}

int
main(void)
{
	static struct store_test_run	runs[2 * TG_NITEMS(store_test_cases)];
	struct CMUnitTest		tests[TG_NITEMS(runs) + 1];
	size_t				i, b, n = 0;

	(void)signal(SIGPIPE, SIG_IGN);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_conf);
	for (b = 0; b < 2; b++) {
		for (i = 0; i < TG_NITEMS(store_test_cases); i++) {
			if (b == TG_STORE_EMBEDDED &&
			    store_test_cases[i].redis_only)
				continue;
			runs[n].c = &store_test_cases[i];
			runs[n].backend = (enum tg_store_backend)b;
			(void)snprintf(runs[n].name, sizeof(runs[n].name),
			    "%s: %s", b == TG_STORE_REDIS ? "redis" :
			    "embedded", store_test_cases[i].label);
			tests[n] = (struct CMUnitTest){
				.name = runs[n].name,
				.test_func = store_test_one,
				.initial_state = &runs[n],
			};
			n++;
		}
	}
	return _cmocka_run_group_tests("store", tests, n, store_test_setup,
	    store_test_teardown);
}
