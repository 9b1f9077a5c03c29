/*
 * store_batch_test - tg_store_kv_mget and tg_store_kv_mincr on both
 * backends: the embedded one in a temporary directory, Redis against a
 * real redis-server started on a free loopback port (as store_test).
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tollgate/log.h"
#include "tollgate/store.h"
#include "tollgate/util.h"
#include "tg_test.h"

static char	 batch_test_dir[] = "/tmp/store_batch_test.XXXXXX";
static char	 batch_test_lmdb[512];
static char	 batch_test_url[64];
static struct tg_test_redis batch_test_redis = TG_TEST_REDIS_INIT;

/* batch_test_open - a store of the backend */
static struct tg_store *
batch_test_open(enum tg_store_backend backend)
{
	struct tg_store	*s;
	struct tg_err	 err;

	s = tg_test_store_open(backend, batch_test_lmdb, batch_test_url, &err);
	if (s == NULL)
		fail_msg("tg_store_open: %s", err.text);
	return s;
}

/* batch_test_redis_start - redis-server on a free port, and its URL */
static void
batch_test_redis_start(void)
{
	if (tg_test_redis_start_url(&batch_test_redis, batch_test_dir,
	    batch_test_url, sizeof(batch_test_url)) == -1)
		fail_msg("redis-server did not start");
}

/* test_batch - counts add up, absent is 0, 0 deletes, bad input */
static void
test_batch(void **state)
{
	enum tg_store_backend	 b = *(enum tg_store_backend *)*state;
	struct tg_store		*s = batch_test_open(b);
	struct tg_err		 err;
	const char		*keys[3] = { "b:one", "b:two", "b:one" };
	const char		*bad[2] = { "b:ok", "bad key" };
	const char		*txt = "b:text";
	int64_t			 d[3] = { 5, -2, 1 }, v[3], back[2] = { -6 };
	char			*val;
	size_t			 len;

	assert_int_equal(tg_store_kv_mget(s, keys, 3, v, &err), TG_OK);
	assert_int_equal(v[0] + v[1] + v[2], 0);
	/* a key twice in one batch adds twice */
	assert_int_equal(tg_store_kv_mincr(s, keys, d, 3, 0, v, &err), TG_OK);
	assert_int_equal(v[0], 5);
	assert_int_equal(v[1], -2);
	assert_int_equal(v[2], 6);
	assert_int_equal(tg_store_kv_mget(s, keys, 2, v, &err), TG_OK);
	assert_int_equal(v[0], 6);
	assert_int_equal(v[1], -2);
	/* the single-key calls see the same records */
	assert_int_equal(tg_store_kv_incr(s, "b:two", 2, 0, &v[2], &err),
	    TG_OK);
	assert_int_equal(v[2], 0);
	/* a count back to 0 is deleted */
	assert_int_equal(tg_store_kv_mincr(s, keys, back, 1, 0, NULL, &err),
	    TG_OK);
	assert_int_equal(tg_store_kv_get(s, "b:one", &val, &len, &err),
	    TG_NOTFOUND);
	/* bad keys and sizes change nothing */
	assert_int_equal(tg_store_kv_mincr(s, bad, d, 2, 0, NULL, &err),
	    TG_PERM);
	assert_int_equal(tg_store_kv_mget(s, bad, 1, v, &err), TG_OK);
	assert_int_equal(v[0], 0);
	assert_int_equal(tg_store_kv_mget(s, keys, 0, v, &err), TG_PERM);
	/* a record that is not a counter fails the whole batch */
	assert_int_equal(tg_store_kv_set_ttl(s, txt, "abc", 3, 0, &err),
	    TG_OK);
	bad[1] = txt;
	assert_int_equal(tg_store_kv_mincr(s, bad, d, 2, 0, NULL, &err),
	    TG_PERM);
	assert_int_equal(tg_store_kv_mget(s, bad, 1, v, &err), TG_OK);
	assert_int_equal(v[0], 0);
	assert_int_equal(tg_store_kv_mget(s, bad, 2, v, &err), TG_PERM);
	(void)tg_store_close(s);
}

/* test_batch_large - a thousand keys, with a ttl that expires */
static void
test_batch_large(void **state)
{
	enum tg_store_backend	 b = *(enum tg_store_backend *)*state;
	struct tg_store		*s = batch_test_open(b);
	struct timespec		 ts = { 0, 300 * 1000 * 1000 };
	struct tg_err		 err;
	enum { N = 1000 };
	static char		 names[N][32];
	const char		*keys[N];
	int64_t			 d[N], v[N];
	size_t			 i;

	for (i = 0; i < N; i++) {
		(void)snprintf(names[i], sizeof(names[i]), "big:%zu", i);
		keys[i] = names[i];
		d[i] = (int64_t)i + 1;
	}
	assert_int_equal(tg_store_kv_mincr(s, keys, d, N, 200, NULL, &err),
	    TG_OK);
	assert_int_equal(tg_store_kv_mincr(s, keys, d, N, 200, v, &err),
	    TG_OK);
	for (i = 0; i < N; i++)
		assert_int_equal(v[i], 2 * ((int64_t)i + 1));
	(void)nanosleep(&ts, NULL);
	assert_int_equal(tg_store_kv_mget(s, keys, N, v, &err), TG_OK);
	for (i = 0; i < N; i++)
		assert_int_equal(v[i], 0);
	(void)tg_store_close(s);
}

/* batch_test_setup - the scratch directory and redis-server */
static int
batch_test_setup(void **state)
{
	(void)state;
	if (mkdtemp(batch_test_dir) == NULL)
		return -1;
	(void)snprintf(batch_test_lmdb, sizeof(batch_test_lmdb), "%s/lmdb",
	    batch_test_dir);
	batch_test_redis_start();
	return 0;
}

/* batch_test_teardown - kill the server, remove the directory */
static int
batch_test_teardown(void **state)
{
	char	cmd[600];

	(void)state;
	tg_test_redis_stop(&batch_test_redis);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", batch_test_dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	static enum tg_store_backend	 emb = TG_STORE_EMBEDDED;
	static enum tg_store_backend	 red = TG_STORE_REDIS;
	const struct CMUnitTest		 tests[] = {
		{ "embedded: batch", test_batch, NULL, NULL, &emb },
		{ "redis: batch", test_batch, NULL, NULL, &red },
		{ "embedded: 1000 keys, ttl", test_batch_large, NULL, NULL,
		    &emb },
		{ "redis: 1000 keys, ttl", test_batch_large, NULL, NULL, &red },
	};

	(void)signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, batch_test_setup,
	    batch_test_teardown);
}
