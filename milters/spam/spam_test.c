/*
 * spam_test - the spam module through the real pipeline (modules
 * "spam", or "spf dkim dmarc spam"), with a small rules file and local
 * zone data: ham and spam headers, thresholds (tag, quarantine,
 * tempfail, reject, per recipient domain), forged X-Spam-* removed,
 * outbound mail skipped, DNSBL listing and timeout, URIBL, Received:
 * hop behind a trusted relay, size and limits giving a verdict.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_test.h"
#include "tollgate/buf.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"
#include "tollgate/spam.h"

static char	t_dir[64];

#define T_RULES \
	"body     T_PILLS     /\\bcheap pills\\b/i\n" \
	"describe T_PILLS     Sells pills\n" \
	"score    T_PILLS     4.0\n" \
	"header   T_SUBJ_WIN  Subject =~ /\\bwinner\\b/i\n" \
	"score    T_SUBJ_WIN  2.0\n" \
	"uri      T_URI_SHOP  /shop\\.example\\.test/\n" \
	"score    T_URI_SHOP  1.5\n" \
	"score    RCVD_IN_BL_TEST 2.5\n"

#define T_ZONE \
	"bl.test. 300 IN SOA ns. host. 1 3600 600 86400 300\n" \
	"99.2.0.192.bl.test. 300 IN A 127.0.0.2\n" \
	"7.113.0.203.bl.test. 300 IN A 127.0.0.4\n" \
	"$TIMEOUT 98.2.0.192.bl.test.\n" \
	"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2" \
	".bl.test. 300 IN A 127.0.0.4\n" \
	"uri.test. 300 IN SOA ns. host. 1 3600 600 86400 300\n" \
	"bad.example.test.uri.test. 300 IN A 127.0.0.2\n"

#define T_HAM \
	"From: alice@example.net\r\n" \
	"To: bob@example.org\r\n" \
	"Subject: lunch\r\n" \
	"Message-ID: <1@example.net>\r\n" \
	"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n" \
	"\r\n" \
	"See you at noon.\r\n"

#define T_SPAM \
	"From: promo@example.net\r\n" \
	"To: bob@example.org\r\n" \
	"Subject: you are a WINNER\r\n" \
	"X-Spam-Status: No, score=-10 forged\r\n" \
	"X-Spam-Flag: NO\r\n" \
	"X-Spam-Status: No, again\r\n" \
	"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n" \
	"\r\n" \
	"Buy cheap pills at http://shop.example.test/x now.\r\n"

struct t_run {
	enum tg_verdict	 verdict;
	char		*added;		/* "Name: value\n" for each add */
	char		*deleted;	/* "Name#n\n" for each delete */
	char		*reply;
	char		*decision;
	char		*log;
	bool		 quarantined;
	double		 score;
	bool		 scanned;
	char		*hits;		/* "NAME=points\n" */
};

/* t_write - a scratch file; the path is the caller's */
static char *
t_write(const char *name, const char *text)
{
	char	*p = tg_printf_dup("%s/%s", t_dir, name);

	assert_true(tg_test_write(t_dir, name, text));
	return p;
}

/* t_pipeline - the pipeline with [spam] settings and the test zone */
static void
t_pipeline(const char *modules, const char *spam_conf)
{
	struct tg_pipeline_opts	 o;
	struct tg_err		 err;
	const char		*zones[1];
	char			*conf, *zpath, *rules;

	rules = t_write("t.cf", T_RULES);
	zpath = t_write("zone", T_ZONE);
	conf = tg_printf_dup("[core]\nauthserv_id = mx.test\nmodules = %s\n"
	    "log_level = debug\n[spam]\nrules = %s\nuse_bayes = no\n%s\n",
	    modules, rules, spam_conf);
	memset(&o, 0, sizeof(o));
	o.conf_text = conf;
	zones[0] = zpath;
	o.zone_files = zones;
	o.nzone_files = 1;
	o.force_offline = true;
	if (tg_pipeline_init(&o, &err) != TG_OK)
		fail_msg("pipeline init: %s", err.text);
	free(conf);
	free(zpath);
	free(rules);
	tg_test_log_reset();
}

/* t_run - one message through every stage */
static void
t_run(const char *msg, const char *client_ip, const char *rcpt,
    const char *auth_user, struct t_run *r)
{
	const char		*rcpts[1];
	const struct tg_edit	*e;
	const char		*rc, *xc, *text, *why, *name, *desc;
	struct tg_scan_env	 env;
	struct tg_ctx		*ctx;
	struct tg_buf		 add, del, hits;
	double			 pts, req;
	size_t			 n, i;

	memset(r, 0, sizeof(*r));
	memset(&env, 0, sizeof(env));
	rcpts[0] = rcpt != NULL ? rcpt : "<bob@example.org>";
	env.client_addr = client_ip;
	env.client_name = "mail.example.net";
	env.helo = "mail.example.net";
	env.mail_from = "<promo@example.net>";
	env.rcpts = rcpts;
	env.nrcpts = 1;
	env.auth_user = auth_user;
	env.queue_id = "TESTQ1";
	tg_test_log_reset();
	r->verdict = tg_scan_message(&env, msg, strlen(msg), &ctx);
	tg_buf_init(&add);
	tg_buf_init(&del);
	tg_buf_init(&hits);
	n = tg_ctx_edits(ctx, &e);
	for (i = 0; i < n; i++) {
		if (e[i].kind == TG_EDIT_DELETE)
			tg_buf_printf(&del, "%s#%zu\n", e[i].name, e[i].index);
		else
			tg_buf_printf(&add, "%s: %s\n", e[i].name, e[i].value);
	}
	r->added = tg_buf_steal(&add);
	r->deleted = tg_buf_steal(&del);
	tg_ctx_get_reply(ctx, &rc, &xc, &text);
	r->reply = rc != NULL ? tg_printf_dup("%s %s %s", rc, xc, text) :
	    tg_strdup("");
	r->quarantined = tg_ctx_quarantined(ctx, &why);
	r->decision = tg_strdup(tg_ctx_decision(ctx) != NULL ?
	    tg_ctx_decision(ctx) : "");
	r->scanned = spam_msg_result(ctx, &r->score, &req);
	for (i = 0; spam_msg_hit(ctx, i, &name, &pts, &desc); i++)
		tg_buf_printf(&hits, "%s=%.1f\n", name, pts);
	r->hits = tg_buf_steal(&hits);
	tg_stage_done(ctx);
	tg_ctx_free(ctx);
	r->log = tg_strdup(tg_test_log());
}

static void
t_run_free(struct t_run *r)
{
	free(r->added);
	free(r->deleted);
	free(r->reply);
	free(r->decision);
	free(r->log);
	free(r->hits);
}

/* a ham message: No, no flag, decision field */
static void
test_ham(void **state)
{
	struct t_run	r;

	(void)state;
	t_pipeline("spam", "");
	t_run(T_HAM, "198.51.100.1", NULL, NULL, &r);
	assert_int_equal(r.verdict, TG_ACCEPT);
	assert_true(r.scanned);
	assert_non_null(strstr(r.added, "X-Spam-Status: No, score=0.0 "
	    "required=5.0 tests=none autolearn=no version=tollgate-0.1\n"));
	assert_non_null(strstr(r.added, "X-Spam-Score: 0.0\n"));
	assert_null(strstr(r.added, "X-Spam-Flag"));
	assert_null(strstr(r.added, "X-Spam-Report"));
	assert_null(strstr(r.added, "X-Spam-Level"));
	assert_non_null(strstr(r.decision, "score=0.0"));
	assert_non_null(strstr(r.decision, "tests=none"));
	t_run_free(&r);
	tg_pipeline_fini();
}

/* spam: the rules hit, tagged, forged X-Spam-* removed */
static void
test_spam_tagged(void **state)
{
	struct t_run	r;

	(void)state;
	t_pipeline("spam", "add_report = yes\n");
	t_run(T_SPAM, "198.51.100.1", NULL, NULL, &r);
	assert_int_equal(r.verdict, TG_ACCEPT);
	assert_non_null(strstr(r.hits, "T_PILLS=4.0\n"));
	assert_non_null(strstr(r.hits, "T_SUBJ_WIN=2.0\n"));
	assert_non_null(strstr(r.hits, "T_URI_SHOP=1.5\n"));
	assert_true(r.score > 7.4 && r.score < 7.6);
	assert_non_null(strstr(r.added, "X-Spam-Flag: YES\n"));
	assert_non_null(strstr(r.added, "X-Spam-Status: Yes, score=7.5 "
	    "required=5.0 tests="));
	assert_non_null(strstr(r.added, "X-Spam-Score: 7.5\n"));
	assert_non_null(strstr(r.added, "X-Spam-Level: *******\n"));
	assert_non_null(strstr(r.added, "X-Spam-Report: "));
	assert_non_null(strstr(r.added, "Sells pills"));
	/* both forged X-Spam-Status and the X-Spam-Flag, last first */
	assert_non_null(strstr(r.deleted, "X-Spam-Status#2\nX-Spam-Status#1\n"));
	assert_non_null(strstr(r.deleted, "X-Spam-Flag#1\n"));
	/* the forged header's "-10" never counted */
	assert_non_null(strstr(r.decision, "action=tag"));
	t_run_free(&r);
	tg_pipeline_fini();
}

/* the thresholds: reject, tempfail, quarantine, and per domain */
static void
test_thresholds(void **state)
{
	struct t_run	 r;
	char		*table, *conf;

	(void)state;
	t_pipeline("spam", "reject_score = 7.0\n");
	t_run(T_SPAM, "198.51.100.1", NULL, NULL, &r);
	assert_int_equal(r.verdict, TG_REJECT);
	assert_string_equal(r.reply, "550 5.7.1 message looks like spam");
	t_run_free(&r);
	tg_pipeline_fini();

	t_pipeline("spam", "tempfail_score = 6.0\nreject_score = 20\n");
	t_run(T_SPAM, "198.51.100.1", NULL, NULL, &r);
	assert_int_equal(r.verdict, TG_TEMPFAIL);
	assert_non_null(strstr(r.reply, "451 4.7.1"));
	t_run_free(&r);
	tg_pipeline_fini();

	t_pipeline("spam", "quarantine_score = 6.0\n");
	t_run(T_SPAM, "198.51.100.1", NULL, NULL, &r);
	assert_true(r.quarantined);
	t_run_free(&r);
	tg_pipeline_fini();

	table = t_write("domains", "# domain required quarantine tempfail "
	    "reject\nstrict.test 3.0 - - 7.0\nlax.test 10 - - -\n");
	conf = tg_printf_dup("reject_score = 7.0\ndomain_table = %s\n", table);
	t_pipeline("spam", conf);
	t_run(T_SPAM, "198.51.100.1", "<x@STRICT.test>", NULL, &r);
	assert_int_equal(r.verdict, TG_REJECT);
	t_run_free(&r);
	t_run(T_SPAM, "198.51.100.1", "<x@lax.test>", NULL, &r);
	assert_int_equal(r.verdict, TG_ACCEPT);
	assert_non_null(strstr(r.added, "X-Spam-Status: No, score=7.5 "
	    "required=10.0"));
	assert_null(strstr(r.added, "X-Spam-Flag"));
	t_run_free(&r);
	t_run(T_HAM, "198.51.100.1", "<x@strict.test>", NULL, &r);
	assert_non_null(strstr(r.added, "required=3.0"));
	t_run_free(&r);
	tg_pipeline_fini();
	free(conf);
	free(table);
}

/* outbound (authenticated) mail is not judged, unless scan_outbound */
static void
test_outbound(void **state)
{
	struct t_run	r;

	(void)state;
	t_pipeline("spam", "reject_score = 7.0\n");
	t_run(T_SPAM, "198.51.100.1", NULL, "alice", &r);
	assert_int_equal(r.verdict, TG_ACCEPT);
	assert_false(r.scanned);
	assert_null(strstr(r.added, "X-Spam"));
	assert_non_null(strstr(r.decision, "skipped=outbound"));
	t_run_free(&r);
	tg_pipeline_fini();
	t_pipeline("spam", "reject_score = 7.0\nscan_outbound = yes\n");
	t_run(T_SPAM, "198.51.100.1", NULL, "alice", &r);
	assert_int_equal(r.verdict, TG_REJECT);
	t_run_free(&r);
	tg_pipeline_fini();
}

/* DNSBL: a listed client gets its points; a timeout none, logged */
static void
test_dnsbl(void **state)
{
	struct t_run	r;

	(void)state;
	t_pipeline("spam", "dnsbl = bl.test:127.0.0.2=3.0,127.0.0.4=1.0\n"
	    "uribl = uri.test:any=2.0\ntrusted_relays = 192.0.2.10\n");
	t_run(T_HAM, "192.0.2.99", NULL, NULL, &r);
	/* the rules file's score line wins over the map's 3.0 */
	assert_non_null(strstr(r.hits, "RCVD_IN_BL_TEST=2.5\n"));
	assert_non_null(strstr(r.added, "tests=RCVD_IN_BL_TEST"));
	t_run_free(&r);
	t_run(T_HAM, "198.51.100.1", NULL, NULL, &r);
	assert_string_equal(r.hits, "");
	t_run_free(&r);
	/* IPv6: the address's nibbles reversed (the points are the score
	 * line's again: one rule per zone, whatever the return code) */
	t_run(T_HAM, "2001:db8::1", NULL, NULL, &r);
	assert_non_null(strstr(r.hits, "RCVD_IN_BL_TEST=2.5\n"));
	t_run_free(&r);
	t_run(T_HAM, "192.0.2.98", NULL, NULL, &r);
	assert_string_equal(r.hits, "");
	assert_int_equal(r.verdict, TG_ACCEPT);
	assert_non_null(strstr(r.log, "dnsbl: no answer, no points: "
	    "98.2.0.192.bl.test"));
	assert_non_null(strstr(r.added, "X-Spam-Status: No"));
	t_run_free(&r);
	/* behind a trusted relay: the Received: hop it got the mail from */
	t_run("Received: from relay.test (relay.test [192.0.2.10])\r\n"
	    "\tby mx.test; Mon, 1 Jan 2024 10:00:00 +0000\r\n"
	    "Received: from x (x [203.0.113.7]) by relay.test\r\n"
	    "Subject: hi\r\n\r\nhello\r\n", "192.0.2.10", NULL, NULL, &r);
	assert_non_null(strstr(r.hits, "RCVD_IN_BL_TEST=2.5\n"));
	t_run_free(&r);
	/* URIBL: the URI's host name */
	t_run("Subject: hi\r\n\r\nsee http://Bad.Example.TEST/x\r\n",
	    "198.51.100.1", NULL, NULL, &r);
	assert_non_null(strstr(r.hits, "URIBL_URI_TEST=2.0\n"));
	t_run_free(&r);
	tg_pipeline_fini();
	/* on_error = tempfail: a DNS failure defers */
	t_pipeline("spam", "dnsbl = bl.test\non_error = tempfail\n");
	t_run(T_HAM, "192.0.2.98", NULL, NULL, &r);
	assert_int_equal(r.verdict, TG_TEMPFAIL);
	t_run_free(&r);
	tg_pipeline_fini();
}

/* a dead store: Bayes gives nothing; on_error says what follows */
static void
test_store_down(void **state)
{
	struct t_run	r;

	(void)state;
	t_pipeline("spam", "use_bayes = yes\n[store]\nbackend = redis\n"
	    "url = redis://127.0.0.1:1/0\ntimeout = 1s\n");
	t_run(T_SPAM, "198.51.100.1", NULL, NULL, &r);
	assert_int_equal(r.verdict, TG_ACCEPT);
	assert_null(strstr(r.hits, "BAYES"));
	assert_non_null(strstr(r.added, "X-Spam-Flag: YES\n"));
	assert_non_null(strstr(r.log, "bayes: "));
	t_run_free(&r);
	tg_pipeline_fini();
	t_pipeline("spam", "use_bayes = yes\non_error = tempfail\n[store]\n"
	    "backend = redis\nurl = redis://127.0.0.1:1/0\ntimeout = 1s\n");
	t_run(T_SPAM, "198.51.100.1", NULL, NULL, &r);
	assert_int_equal(r.verdict, TG_TEMPFAIL);
	assert_non_null(strstr(r.reply, "451 4.7.1"));
	t_run_free(&r);
	tg_pipeline_fini();
}

/* limits: a message past max_scan_bytes or max_headers still gets a
 * verdict */
static void
test_limits(void **state)
{
	struct t_run	 r;
	struct tg_buf	 b;
	size_t		 i;

	(void)state;
	tg_buf_init(&b);
	tg_buf_puts(&b, "Subject: winner\r\n\r\n");
	for (i = 0; i < 20000; i++)
		tg_buf_puts(&b, "filler filler filler filler filler\r\n");
	tg_buf_puts(&b, "cheap pills\r\n");
	t_pipeline("spam", "max_scan_bytes = 64k\n");
	t_run(tg_buf_cstr(&b), "198.51.100.1", NULL, NULL, &r);
	/* the pills are past the scanned part: only the subject hits */
	assert_non_null(strstr(r.hits, "T_SUBJ_WIN=2.0\n"));
	assert_null(strstr(r.hits, "T_PILLS"));
	assert_non_null(strstr(r.decision, "partial=yes"));
	assert_non_null(strstr(r.log, "scan cut short: size_limit"));
	t_run_free(&r);
	tg_pipeline_fini();

	/* past max_headers the rest of the header block is not looked at */
	tg_buf_reset(&b);
	for (i = 0; i < 5; i++)
		tg_buf_printf(&b, "X-Filler-%zu: x\r\n", i);
	tg_buf_puts(&b, "Subject: winner\r\n\r\nhello\r\n");
	t_pipeline("spam", "max_headers = 3\n");
	t_run(tg_buf_cstr(&b), "198.51.100.1", NULL, NULL, &r);
	assert_null(strstr(r.hits, "T_SUBJ_WIN"));
	assert_non_null(strstr(r.decision, "partial=yes"));
	t_run_free(&r);
	tg_pipeline_fini();
	t_pipeline("spam", "max_headers = 6\n");
	t_run(tg_buf_cstr(&b), "198.51.100.1", NULL, NULL, &r);
	assert_non_null(strstr(r.hits, "T_SUBJ_WIN=2.0\n"));
	assert_null(strstr(r.decision, "partial=yes"));
	t_run_free(&r);
	tg_pipeline_fini();
	tg_buf_fini(&b);
}

/* bad settings stop start-up with the key's name */
static void
test_bad_conf(void **state)
{
	static const char *const bad[] = {
		"required_score = lots\n",
		"required_score = off\n",
		"reject_score = 1e999\n",
		"dnsbl = bl.test:127.0.0.2=x\n",
		"auth_scores = SPF_FAIL\n",
		"domain_table = /nonexistent/table\n",
		"trusted_relays = not-a-net\n",
	};
	struct tg_pipeline_opts	 o;
	struct tg_err		 err;
	char			*conf;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		conf = tg_printf_dup("[core]\nmodules = spam\n[spam]\n"
		    "use_bayes = no\n%s", bad[i]);
		memset(&o, 0, sizeof(o));
		o.conf_text = conf;
		o.force_offline = true;
		assert_int_not_equal(tg_pipeline_init(&o, &err), TG_OK);
		assert_non_null(strstr(err.text, "[spam]"));
		tg_pipeline_fini();
		free(conf);
	}
}

/* with spf dkim dmarc on: their results weigh in */
static void
test_auth(void **state)
{
	struct t_run	r;

	(void)state;
	t_pipeline("spf dkim dmarc spam", "auth_scores = SPF_FAIL=1.0 "
	    "SPF_NONE_X=0\n");
	t_run(T_HAM, "198.51.100.1", NULL, NULL, &r);
	assert_int_equal(r.verdict, TG_ACCEPT);
	assert_true(r.scanned);
	/* no SPF record for example.net in the zone: no SPF_FAIL */
	assert_null(strstr(r.hits, "SPF_FAIL"));
	t_run_free(&r);
	tg_pipeline_fini();
}

static int
setup(void **state)
{
	(void)state;
	snprintf(t_dir, sizeof(t_dir), "/tmp/spam_test.XXXXXX");
	if (mkdtemp(t_dir) == NULL)
		return -1;
	tg_test_log_init();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tg_test_log_fini();
	return tg_test_rmtree(t_dir) ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ham),
		cmocka_unit_test(test_spam_tagged),
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_outbound),
		cmocka_unit_test(test_dnsbl),
		cmocka_unit_test(test_store_down),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_bad_conf),
		cmocka_unit_test(test_auth),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
