/*
 * greylist_test - greylisting decisions on the real embedded store, with
 * SPF answered by the real resolver from local zone data, and a clock
 * the test moves.  Each step of a table is one request and the action
 * and log note it must get.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_test.h"
#include "tollgate/pipeline.h"
#include "tollgate/policyd.h"
#include "tollgate/store.h"

#include "pd_test.h"

static char		 gt_dir[] = "/tmp/greylist_test.XXXXXX";
static time_t		 gt_now;
static struct tg_store	*gt_store;
static struct tg_store_async *gt_async;

/* gt_clock - the test's time */
static time_t
gt_clock(void)
{
	return gt_now;
}

/* gt_start - load conf (plus extra lines), open the store, init */
static enum tg_status
gt_start(const char *extra, const char *url, struct tg_err *err)
{
	struct tg_pipeline_opts	 opts;
	struct tg_store_conf	 sc;
	struct pd_env		 env;
	enum tg_status		 st;
	char			*text;

	text = tg_printf_dup("[dns]\noffline = yes\nlocal_data = %s/zone\n"
	    "[store]\npath = %s/store\n%s%s%s\n[greylist]\ndelay = 5m\n"
	    "whitelist_after = 2\nexempt_networks = 198.51.100.0/24\n%s",
	    gt_dir, gt_dir, url != NULL ? "backend = redis\nurl = " : "",
	    url != NULL ? url : "", url != NULL ? "\ntimeout = 1s\n" : "",
	    extra);
	memset(&opts, 0, sizeof(opts));
	opts.conf_text = text;
	st = tg_pipeline_load(&opts, err);
	free(text);
	if (st != TG_OK)
		return st;
	tg_store_conf_loaded(&sc);
	if ((gt_store = tg_store_open(&sc, err)) == NULL)
		return TG_PERM;
	env.store = gt_store;
	env.astore = gt_async = pd_test_async(gt_store);
	env.dns = tg_pipeline_dns();
	return pd_checks_init(&env, err);
}

/* gt_stop - undo gt_start */
static void
gt_stop(void)
{
	gt_async = tg_store_async_free(gt_async);
	pd_checks_fini();
	gt_store = tg_store_close(gt_store);
	tg_pipeline_fini();
}

/* setup - a scratch dir with zone data */
static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(gt_dir) == NULL || !tg_test_write(gt_dir, "zone",
	    "pool.example. 300 IN SOA ns. host. 1 3600 600 86400 300\n"
	    "pool.example. 300 IN TXT \"v=spf1 ip4:203.0.113.0/24 "
	    "ip4:198.18.0.0/24 -all\"\n"
	    "example.org. 300 IN SOA ns. host. 1 3600 600 86400 300\n"))
		return -1;
	pd_greylist_set_clock(gt_clock);
	return 0;
}

/* teardown - remove the scratch dir */
static int
teardown(void **state)
{
	(void)state;
	pd_greylist_set_clock(NULL);
	return tg_test_rmtree(gt_dir) ? 0 : -1;
}

struct gt_step {
	const char	*label;
	long		 at;		/* seconds after the start */
	const char	*ip;		/* NULL: no client_address */
	const char	*sender;
	const char	*rcpt;
	const char	*extra;		/* more lines of the request */
	const char	*want;		/* action */
	const char	*want_note;	/* substring of the log note */
};

/* gt_run - one request through the enabled checks */
static void
gt_run(const struct gt_step *s, time_t t0)
{
	struct pd_request	 req;
	struct tg_buf		 in, action, note;
	struct tg_err		 err;
	size_t			 used;

	tg_buf_init(&in);
	tg_buf_init(&action);
	tg_buf_init(&note);
	gt_now = t0 + s->at;
	tg_buf_puts(&in, "request=smtpd_access_policy\n");
	if (s->ip != NULL)
		tg_buf_printf(&in, "client_address=%s\n", s->ip);
	tg_buf_printf(&in, "sender=%s\nrecipient=%s\nhelo_name=mx.test\n%s\n",
	    s->sender, s->rcpt, s->extra != NULL ? s->extra : "");
	assert_int_equal(pd_proto_parse(in.data, in.len, &used, &req),
	    PD_PARSE_DONE);
	if (pd_test_checks(&req, &action, &note, &err) != TG_OK)
		fail_msg("%s: check failed: %s", s->label, err.text);
	if (strcmp(tg_buf_cstr(&action), s->want) != 0)
		fail_msg("%s: action \"%s\", want \"%s\" (%s)", s->label,
		    tg_buf_cstr(&action), s->want, tg_buf_cstr(&note));
	if (strstr(tg_buf_cstr(&note), s->want_note) == NULL)
		fail_msg("%s: note \"%s\" lacks \"%s\"", s->label,
		    tg_buf_cstr(&note), s->want_note);
	pd_request_clear(&req);
	tg_buf_fini(&in);
	tg_buf_fini(&action);
	tg_buf_fini(&note);
}

#define DEFER(n) "DEFER_IF_PERMIT 4.7.1 Greylisted, try again in " #n \
	" seconds"

static const struct gt_step steps[] = {
	{ "first seen defers", 0, "192.0.2.7", "a@example.org",
	  "b@example.com", NULL, DEFER(300), "greylist=new" },
	{ "retry before delay defers", 100, "192.0.2.7", "a@example.org",
	  "b@example.com", NULL, DEFER(200), "greylist=early" },
	{ "same /24 is the same triplet", 150, "192.0.2.99", "A@Example.org",
	  "b@example.com", NULL, DEFER(150), "key=\"grey:t:192.0.2.0/24/" },
	{ "retry after delay passes", 301, "192.0.2.7", "a@example.org",
	  "b@example.com", NULL, "DUNNO", "greylist=passed" },
	{ "known triplet passes", 302, "192.0.2.8", "a@example.org",
	  "b@example.com", NULL, "DUNNO", "greylist=known" },
	{ "other network is new", 303, "192.0.3.7", "a@example.org",
	  "b@example.com", NULL, DEFER(300), "greylist=new" },
	{ "second triplet of the network", 400, "192.0.2.7", "a@example.org",
	  "c@example.com", NULL, DEFER(300), "greylist=new" },
	{ "its pass whitelists the network (after 2)", 701, "192.0.2.7",
	  "a@example.org", "c@example.com", NULL, "DUNNO",
	  "whitelisted=192.0.2.0/24" },
	{ "whitelisted network skips greylisting", 702, "192.0.2.200",
	  "z@example.net", "new@example.com", NULL, "DUNNO",
	  "greylist=whitelisted" },
	{ "authenticated client exempt", 0, "192.0.5.1", "u@example.org",
	  "b@example.com", "sasl_username=u\n", "DUNNO", "exempt(sasl)" },
	{ "exempt network", 0, "198.51.100.5", "u@example.org",
	  "b@example.com", NULL, "DUNNO", "exempt(network)" },
	{ "missing client_address", 0, NULL, "u@example.org",
	  "b@example.com", NULL, "DUNNO", "skip(no client_address)" },
	{ "not at RCPT", 0, "192.0.5.1", "u@example.org", "b@example.com",
	  "protocol_state=DATA\n", "DUNNO", "skip(state)" },
	{ "IPv6 /64", 0, "2001:db8:1:2:3::4", "v6@example.org",
	  "b@example.com", NULL, DEFER(300), "key=\"grey:t:2001:db8:1:2::/64/" },
	{ "IPv6 same /64 retry", 400, "2001:db8:1:2:ffff::1",
	  "v6@example.org", "b@example.com", NULL, "DUNNO",
	  "greylist=passed" },
	{ "SPF pass keys on the domain", 1000, "203.0.113.5",
	  "bulk@pool.example", "b@example.com", NULL, DEFER(300),
	  "spf=pass key=\"grey:t:d=pool.example/" },
	{ "SPF result cached", 1010, "203.0.113.5", "bulk@pool.example",
	  "b@example.com", NULL, DEFER(290), "spf=pass(cached)" },
	{ "retry from another pool network passes", 1301, "198.18.0.9",
	  "bulk@pool.example", "b@example.com", NULL, "DUNNO",
	  "greylist=passed" },
	{ "SPF fail keys on the network", 1400, "192.0.7.1",
	  "bulk@pool.example", "b@example.com", NULL, DEFER(300),
	  "spf=fail key=\"grey:t:192.0.7.0/24/" },
	{ "no SPF record: network key", 1400, "192.0.8.1", "n@example.org",
	  "b@example.com", NULL, DEFER(300), "spf=none key=\"grey:t:192.0.8" },
	{ "long addresses hash the key", 0, "192.0.9.1",
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "@example.org",
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	  "@example.com", NULL, DEFER(300), "key=\"grey:t:h" },
	{ "odd bytes in the sender", 0, "192.0.10.1", "a b{}@example.org",
	  "b@example.com", NULL, DEFER(300), "key=\"grey:t:h" },
};

/* test_steps - the table, in order, on one store */
static void
test_steps(void **state)
{
	struct tg_err	 err;
	size_t		 i;
	char		*v;
	size_t		 len;

	(void)state;
	if (gt_start("", NULL, &err) != TG_OK)
		fail_msg("start: %s", err.text);
	for (i = 0; i < TG_NITEMS(steps); i++)
		gt_run(&steps[i], 1000000);
	/* Exempt clients leave no state behind. */
	assert_int_equal(tg_store_kv_get(gt_store,
	    "grey:t:192.0.5.0/24/u@example.org/b@example.com", &v, &len, &err),
	    TG_NOTFOUND);
	gt_stop();
}

/* test_reply_text - the configured text and $seconds */
static void
test_reply_text(void **state)
{
	static const struct gt_step s = { "custom text", 0, "192.0.20.1",
	    "a@example.org", "b@example.com", NULL,
	    "DEFER_IF_PERMIT 4.7.1 wait 120s (120)", "greylist=new" };
	struct tg_err	err;

	(void)state;
	if (gt_start("delay = 2m\nreply = wait $secondss ($seconds)\n", NULL,
	    &err) != TG_OK)
		fail_msg("start: %s", err.text);
	gt_run(&s, 2000000);
	gt_stop();
}

/* test_bad_conf - what the loader cannot check, init does */
static void
test_bad_conf(void **state)
{
	struct tg_err	err;

	(void)state;
	assert_int_equal(gt_start("[policyd]\ndefault_action = MAYBE\n", NULL,
	    &err), TG_PERM);
	assert_non_null(strstr(err.text, "default_action"));
	gt_stop();
	assert_int_equal(gt_start("exempt_networks = 300.1.1.1/8\n", NULL,
	    &err), TG_PERM);
	assert_non_null(strstr(err.text, "exempt_networks"));
	gt_stop();
	assert_int_equal(gt_start("delay = 1d\nretry_window = 1h\n", NULL,
	    &err), TG_PERM);
	assert_non_null(strstr(err.text, "retry_window"));
	gt_stop();
	assert_int_equal(gt_start("[policyd]\nchecks = greylist nope\n", NULL,
	    &err), TG_PERM);
	assert_non_null(strstr(err.text, "nope"));
	gt_stop();
}

/* test_store_down - a dead store is a status, for default_action */
static void
test_store_down(void **state)
{
	struct pd_request	 req;
	struct tg_buf		 action, note;
	struct tg_err		 err;
	const char		 in[] = "client_address=192.0.2.1\n"
	    "sender=a@example.org\nrecipient=b@example.com\n\n";
	size_t			 used;

	(void)state;
	/* Port 1 on loopback: nothing listens, connections are refused. */
	if (gt_start("", "redis://127.0.0.1:1/0", &err) != TG_OK)
		fail_msg("start: %s", err.text);
	tg_buf_init(&action);
	tg_buf_init(&note);
	assert_int_equal(pd_proto_parse(in, strlen(in), &used, &req),
	    PD_PARSE_DONE);
	assert_int_equal(pd_test_checks(&req, &action, &note, &err), TG_TEMP);
	pd_request_clear(&req);
	tg_buf_fini(&action);
	tg_buf_fini(&note);
	gt_stop();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_reply_text),
		cmocka_unit_test(test_bad_conf),
		cmocka_unit_test(test_store_down),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
