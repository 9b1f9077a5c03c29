/*
 * ratelimit_test - unit tests of the quota rules and the ratelimit
 * module, without network.
 *
 * The rules parser and the tenant table are tested for their errors
 * (file:line).  Whole messages go through the real pipeline
 * (tg_pipeline_init with configuration text, tg_scan_message, then
 * tg_stage_done or tg_stage_abort as the milter would) on an embedded
 * store in a fresh temp directory per case.  Each case is a sequence of
 * messages with the verdict, log and reply each must get: counting
 * messages and recipients, several limits all or nothing, defer and
 * reject, the per-message recipient cap, the tenant/mailbox hierarchy,
 * the exempt list, shadow rules, inbound mail, client networks,
 * recipient domains, refund on abort and on a later module's reject
 * (DMARC), and each on_error against a Redis port nobody listens on.
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
#include "tollgate/quota.h"

static char	t_dir[64];
static int	t_serial;

/* t_write - a scratch file; the caller frees the path */
static char *
t_write(const char *name, const char *text)
{
	char	*p = tg_printf_dup("%s/%s", t_dir, name);
	FILE	*fp;

	assert_non_null(fp = fopen(p, "w"));
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
	return p;
}

/* ---- the parser ---- */

static const struct t_parse {
	const char	*label;
	const char	*rules;
	const char	*table;		/* NULL: none */
	const char	*want;		/* error substring; NULL: loads */
} parse_cases[] = {
	{ "a full rule loads",
	  "# tenants\nlimit t count=messages key=sender_domain window=1h "
	  "max=500 action=defer on_error=tempfail shadow=no mail=any\n"
	  "limit n key=client_ip prefix=24 prefix6=64 window=1d max=9\n"
	  "limit cap count=recipients key=message max=50 action=reject\n"
	  "exempt a@example.com 192.0.2.0/24 2001:db8::/32\n",
	  NULL, NULL },
	{ "window required", "limit x count=messages key=sender max=5\n",
	  NULL, "rules:1: limit x: window= is required" },
	{ "no window with key=message",
	  "\nlimit x key=message window=1h max=5\n", NULL,
	  "rules:2: limit x: window= is required, except" },
	{ "bad key", "\n\nlimit y key=nope window=1h max=1\n", NULL,
	  "rules:3: limit y: bad key \"nope\"" },
	{ "bad max", "limit y key=sender window=1h max=-1\n", NULL,
	  "rules:1: limit y: bad max \"-1\"" },
	{ "bad window", "limit y key=sender window=1y max=1\n", NULL,
	  "rules:1: limit y: bad window \"1y\"" },
	{ "max required", "limit y key=sender window=1h\n", NULL,
	  "rules:1: limit y: key= and max= are required" },
	{ "not key=value", "limit y key=sender window=1h max=1 fast\n", NULL,
	  "rules:1: limit y: expected key=value, got \"fast\"" },
	{ "bad name", "limit y.z key=sender window=1h max=1\n", NULL,
	  "rules:1: limit needs a name" },
	{ "twice", "limit a key=sender window=1h max=1\n"
	  "limit a key=sender window=1d max=9\n", NULL,
	  "rules:2: limit a defined twice" },
	{ "unknown statement", "limit a key=sender window=1h max=1\nlimits\n",
	  NULL, "rules:2: unknown statement \"limits\"" },
	{ "bad exempt network", "exempt 300.1.2.3/8\n", NULL,
	  "bad network" },
	{ "table loads",
	  "limit a key=sender window=1h max=1\ntable tenants\n",
	  "example.com a=5\n# x\nboss@example.com a=9\nvip.example exempt\n",
	  NULL },
	{ "table: unknown limit",
	  "limit a key=sender window=1h max=1\ntable tenants\n",
	  "example.com a=5\n\nother.example b=3\n",
	  "tenants:3: no limit called \"b\"" },
	{ "table: bad max",
	  "limit a key=sender window=1h max=1\ntable tenants\n",
	  "example.com a=lots\n", "tenants:1: expected NAME=MAX or exempt" },
	{ "table: twice",
	  "limit a key=sender window=1h max=1\ntable tenants\n",
	  "example.com a=5\nEXAMPLE.com a=6\n",
	  "tenants:2: example.com listed twice" },
	{ "table: missing file",
	  "limit a key=sender window=1h max=1\ntable nosuch\n", NULL,
	  "nosuch" },
};

/* test_parse - every parser case, from files */
static void
test_parse(void **state)
{
	struct tg_quota_policy	*pol;
	struct tg_err		 err;
	char			*rules, *table;
	size_t			 i;

	(void)state;
	for (i = 0; i < TG_NITEMS(parse_cases); i++) {
		const struct t_parse *c = &parse_cases[i];

		rules = t_write("rules", c->rules);
		(void)unlink(table = tg_printf_dup("%s/tenants", t_dir));
		free(table);
		table = c->table != NULL ? t_write("tenants", c->table) : NULL;
		memset(&err, 0, sizeof(err));
		pol = tg_quota_policy_load(rules, NULL, &err);
		if (c->want == NULL && pol == NULL)
			fail_msg("%s: %s", c->label, err.text);
		if (c->want != NULL && (pol != NULL ||
		    strstr(err.text, c->want) == NULL))
			fail_msg("%s: got \"%s\", want \"%s\"", c->label,
			    pol != NULL ? "(loaded)" : err.text, c->want);
		pol = tg_quota_policy_unref(pol);
		free(rules);
		free(table);
	}
}

/* test_reply_text - the refusal names the limit and when to retry */
static void
test_reply_text(void **state)
{
	struct tg_quota_rule	r;
	struct tg_quota_charge	c;
	char			text[300], d[32];

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(&c, 0, sizeof(c));
	memcpy(r.name, "tenant_msgs", sizeof("tenant_msgs"));
	r.window_ms = 3600 * 1000;
	c.rule = &r;
	c.max = 500;
	memcpy(c.who, "example.com", sizeof("example.com"));
	tg_quota_reply(&c, 754 * 1000 + 1, text, sizeof(text));
	assert_string_equal(text, "sending limit tenant_msgs exceeded (500 "
	    "messages per 1h for example.com), try again in 13m");
	tg_quota_duration(59 * 1000 + 1, d, sizeof(d));
	assert_string_equal(d, "60s");
	tg_quota_duration(86400 * 1000, d, sizeof(d));
	assert_string_equal(d, "1d");
}

/* ---- messages through the pipeline ---- */

enum t_end { T_DONE = 0, T_ABORT };

struct t_step {
	const char	*from;		/* envelope sender */
	const char	*auth;		/* SASL user; NULL: none */
	const char	*ip;		/* client; NULL: 198.51.100.7 */
	size_t		 nrcpts;	/* 0: one */
	enum tg_verdict	 want;
	const char	*want_log;	/* NULL: not checked */
	const char	*want_reply;	/* NULL: not checked */
	enum t_end	 end;
	const char	*rcpt_list;	/* space-separated, instead */
};

#define T_MAX_STEPS	8

struct t_case {
	const char	*label;
	const char	*rules;
	const char	*table;		/* NULL: none */
	const char	*extra;		/* more config text */
	struct t_step	 steps[T_MAX_STEPS];
};

#define A	"alice"		/* an authenticated user */
#define OK	TG_ACCEPT
#define DEFER	TG_TEMPFAIL
#define REJ	TG_REJECT

static const struct t_case cases[] = {
	{ "N messages pass, the next is deferred with the limit's name",
	  "limit tenant_msgs count=messages key=sender_domain window=1h "
	  "max=2\n", NULL, NULL, {
	  { "<a@example.com>", A, NULL, 0, OK, "ratelimit=\"ok used=1/2\"", NULL },
	  { "<b@EXAMPLE.com>", A, NULL, 0, OK, "ratelimit=\"ok used=2/2\"", NULL },
	  { "<a@example.com>", A, NULL, 0, DEFER,
	    "action=defer limit=tenant_msgs key=example.com used=2 amount=1 "
	    "max=2 source=rule",
	    "450 4.7.1 sending limit tenant_msgs exceeded (2 messages per 1h "
	    "for example.com), try again in " },
	  { "<c@other.example>", A, NULL, 0, OK, "used=1/2", NULL } } },
	{ "recipients are counted, a refusal consumes nothing",
	  "limit r count=recipients key=sasl_username window=1d max=5\n",
	  NULL, NULL, {
	  { "<a@example.com>", A, NULL, 3, OK, "used=3/5", NULL },
	  { "<a@example.com>", A, NULL, 3, DEFER, "used=3 amount=3 max=5",
	    "recipients per 1d for alice" },
	  { "<a@example.com>", "ALICE", NULL, 2, OK, "used=5/5", NULL } } },
	{ "all or nothing: a refused limit refunds the others",
	  "limit tenant count=messages key=sender_domain window=1h max=10\n"
	  "limit box count=messages key=sender window=1h max=1\n",
	  NULL, NULL, {
	  { "<a@example.com>", A, NULL, 0, OK,
	    "limit=tenant key=example.com amount=1 used=1 max=10", NULL },
	  { "<a@example.com>", A, NULL, 0, DEFER, "limit=box", NULL },
	  { "<a@example.com>", A, NULL, 0, DEFER, "limit=box", NULL },
	  { "<b@example.com>", A, NULL, 0, OK,
	    "limit=tenant key=example.com amount=1 used=2 max=10", NULL } } },
	{ "action=reject answers 550 5.7.1",
	  "limit r count=messages key=sender window=10m max=1 "
	  "action=reject\n", NULL, NULL, {
	  { "<a@example.com>", A, NULL, 0, OK, NULL, NULL },
	  { "<a@example.com>", A, NULL, 0, REJ, "action=reject limit=r",
	    "550 5.7.1 sending limit r exceeded (1 messages per 10m for "
	    "a@example.com), try again in 10m" } } },
	{ "per-message recipient cap",
	  "limit cap count=recipients key=message max=2 action=reject\n",
	  NULL, NULL, {
	  { "<a@example.com>", A, NULL, 2, OK, "used=2/2", NULL },
	  { "<a@example.com>", A, NULL, 3, REJ, "limit=cap",
	    "550 5.7.1 limit cap: at most 2 recipients per message" } } },
	{ "hierarchy: mailbox entry, then tenant entry, then the rule",
	  "limit pool count=messages key=sender_domain window=1h max=100\n"
	  "limit box count=messages key=sender window=1h max=1\n"
	  "limit cap count=recipients key=message max=5\n"
	  "table tenants\n",
	  "example.com box=2 cap=3\nboss@example.com box=3 cap=9\n"
	  "small.example pool=1\n", NULL, {
	  { "<a@example.com>", A, NULL, 0, OK, NULL, NULL },
	  { "<a@example.com>", A, NULL, 0, OK,
	    "limit=box key=a@example.com amount=1 used=2 max=2 "
	    "source=tenant", NULL },
	  { "<c@example.com>", A, NULL, 4, DEFER, "limit=cap", NULL },
	  { "<boss@example.com>", A, NULL, 8, OK,
	    "limit=cap key=message amount=8 used=8 max=9 source=mailbox",
	    NULL },
	  { "<x@other.example>", A, NULL, 0, OK,
	    "limit=box key=x@other.example amount=1 used=1 max=1 source=rule",
	    NULL },
	  { "<x@small.example>", A, NULL, 0, OK, "source=tenant", NULL },
	  { "<y@small.example>", A, NULL, 0, DEFER,
	    "limit=pool key=small.example used=1 amount=1 max=1 "
	    "source=tenant", NULL } } },
	{ "exempt list, exempt entries and [ratelimit] exempt",
	  "limit r count=messages key=sasl_username window=1h max=0\n"
	  "exempt postmaster@example.com\ntable tenants\n",
	  "vip.example exempt\n", "exempt = 203.0.113.0/24 bob\n", {
	  { "<a@example.com>", A, NULL, 0, DEFER, "limit=r", NULL },
	  { "<Postmaster@example.com>", A, NULL, 0, OK,
	    "exempt=postmaster@example.com", NULL },
	  { "<a@vip.example>", A, NULL, 0, OK, "exempt=vip.example", NULL },
	  { "<a@example.com>", A, "203.0.113.9", 0, OK,
	    "exempt=203.0.113.9", NULL },
	  { "<a@example.com>", "Bob", NULL, 0, OK, "exempt=bob", NULL } } },
	{ "shadow: logs would-defer, does not act",
	  "limit s count=messages key=sender window=1h max=1 shadow=yes\n"
	  "limit t count=messages key=sender window=1h max=5\n",
	  NULL, NULL, {
	  { "<a@example.com>", A, NULL, 0, OK, "ratelimit=\"ok used=1/5\"", NULL },
	  { "<a@example.com>", A, NULL, 0, OK,
	    "action=would-defer limit=s key=a@example.com used=1 amount=1 "
	    "max=1 shadow=yes", NULL },
	  { "<a@example.com>", A, NULL, 0, OK,
	    "ratelimit=\"ok used=3/5 shadow-defer s", NULL } } },
	{ "inbound mail is not counted unless a rule says so",
	  "limit out count=messages key=sender_domain window=1h max=1\n"
	  "limit in count=messages key=client_ip window=1h max=1 "
	  "mail=inbound\n", NULL, NULL, {
	  { "<a@example.net>", NULL, NULL, 0, OK,
	    "limit=in key=198.51.100.7/32", NULL },
	  { "<b@example.net>", NULL, NULL, 0, DEFER, "limit=in", NULL },
	  { "<a@example.com>", A, NULL, 0, OK, "used=1/1", NULL },
	  { "<a@example.com>", NULL, "127.0.0.1", 0, DEFER, "limit=out",
	    NULL } } },
	{ "client networks: /24 and /64 prefixes",
	  "limit net count=messages key=client_ip prefix=24 prefix6=64 "
	  "window=1h max=1 mail=any\n", NULL, NULL, {
	  { "<a@example.net>", NULL, "192.0.2.5", 0, OK,
	    "key=192.0.2.0/24", NULL },
	  { "<b@example.net>", NULL, "192.0.2.77", 0, DEFER,
	    "key=192.0.2.0/24", NULL },
	  { "<a@example.net>", NULL, "2001:db8:1:2::5", 0, OK,
	    "key=2001:db8:1:2::/64", NULL },
	  { "<a@example.net>", NULL, "2001:db8:1:2:ffff::1", 0, DEFER, NULL,
	    NULL },
	  { "<a@example.net>", NULL, "2001:db8:1:3::5", 0, OK, NULL,
	    NULL } } },
	{ "recipient domains",
	  "limit dom count=recipients key=rcpt_domain window=1h max=2\n",
	  NULL, NULL, {
	  { "<a@example.com>", A, NULL, 0, OK,
	    "limit=dom key=a.example amount=2 used=2", NULL, T_DONE,
	    "<x@a.example> <y@A.example> <z@b.example>" },
	  { "<a@example.com>", A, NULL, 0, DEFER, "key=a.example", NULL,
	    T_DONE, "<w@a.example>" },
	  { "<a@example.com>", A, NULL, 0, OK, "key=b.example amount=1 used=2",
	    NULL, T_DONE, "<w@b.example>" } } },
	{ "abort refunds, accept commits",
	  "limit r count=messages key=sender window=1h max=1\n",
	  NULL, NULL, {
	  { "<a@example.com>", A, NULL, 0, OK, "used=1/1", NULL, T_ABORT },
	  { "<a@example.com>", A, NULL, 0, OK, "used=1/1", NULL, T_ABORT },
	  { "<a@example.com>", A, NULL, 0, OK, "used=1/1", NULL },
	  { "<a@example.com>", A, NULL, 0, DEFER, "limit=r", NULL } } },
	{ "store down, on_error=accept: accepted, the log says so",
	  "limit r count=messages key=sender window=1h max=0 "
	  "on_error=accept\n", NULL,
	  "[store]\nbackend = redis\nurl = redis://127.0.0.1:1/0\n", {
	  { "<a@example.com>", A, NULL, 0, OK, "store=failed", NULL } } },
	{ "store down, on_error=tempfail: 451",
	  "limit r count=messages key=sender window=1h max=9 "
	  "on_error=tempfail\n", NULL,
	  "[store]\nbackend = redis\nurl = redis://127.0.0.1:1/0\n", {
	  { "<a@example.com>", A, NULL, 0, DEFER,
	    "action=tempfail limit=r reason=store-error",
	    "451 4.7.1 sending quota cannot be checked now" } } },
	{ "store down, on_error=local: counted locally, still enforced",
	  "limit r count=messages key=sender window=1h max=1 "
	  "on_error=local\n", NULL,
	  "[store]\nbackend = redis\nurl = redis://127.0.0.1:1/0\n"
	  "on_error = local\n", {
	  { "<a@example.com>", A, NULL, 0, OK, "ok used=1/1 approximate",
	    NULL },
	  { "<a@example.com>", A, NULL, 0, DEFER, "approximate=yes",
	    NULL } } },
	{ "store local, rule wants tempfail: 451",
	  "limit r count=messages key=sender window=1h max=1 "
	  "on_error=tempfail\n", NULL,
	  "[store]\nbackend = redis\nurl = redis://127.0.0.1:1/0\n"
	  "on_error = local\n", {
	  { "<a@example.com>", A, NULL, 0, DEFER, "local count not wanted",
	    "451 4.7.1" } } },
};

/* t_init - the pipeline with ratelimit, a fresh store and these rules */
static void
t_init(const char *modules, const char *rules, const char *table,
    const char *extra, const char *zone)
{
	struct tg_pipeline_opts	 o;
	struct tg_err		 err;
	const char		*zones[1];
	char			*conf, *rpath, *tpath = NULL, *zpath = NULL;

	rpath = t_write("rules", rules);
	if (table != NULL)
		tpath = t_write("tenants", table);
	conf = tg_printf_dup("[core]\nauthserv_id = mx.test\nmodules = %s\n"
	    "log_level = debug\n[dns]\noffline = yes\n[store]\n"
	    "path = %s/store%d\ntimeout = 1s\n[ratelimit]\nrules_file = %s\n"
	    "%s", modules, t_dir, ++t_serial, rpath, extra != NULL ? extra :
	    "");
	memset(&o, 0, sizeof(o));
	o.conf_text = conf;
	o.force_offline = true;
	if (zone != NULL) {
		zpath = t_write("zone", zone);
		zones[0] = zpath;
		o.zone_files = zones;
		o.nzone_files = 1;
	}
	if (tg_pipeline_init(&o, &err) != TG_OK)
		fail_msg("pipeline init: %s", err.text);
	free(conf);
	free(rpath);
	free(tpath);
	free(zpath);
}

/* t_rcpts - the step's recipients; the caller frees with t_rcpts_free */
static char **
t_rcpts(const struct t_step *s, size_t *n)
{
	char		**v;
	const char	 *p;
	size_t		  i, len;

	*n = 0;
	if (s->rcpt_list == NULL) {
		*n = s->nrcpts > 0 ? s->nrcpts : 1;
		v = tg_calloc(*n, sizeof(*v));
		for (i = 0; i < *n; i++)
			v[i] = tg_printf_dup("<r%zu@example.org>", i);
		return v;
	}
	v = tg_calloc(16, sizeof(*v));
	for (p = s->rcpt_list; *p != '\0' && *n < 16; p += len) {
		p += strspn(p, " ");
		len = strcspn(p, " ");
		if (len > 0)
			v[(*n)++] = tg_strndup(p, len);
	}
	return v;
}

/* t_step_run - one message; checks verdict, log and reply */
static void
t_step_run(const char *label, size_t k, const struct t_step *s,
    const char *msg)
{
	struct tg_scan_env	 env;
	struct tg_ctx		*ctx;
	enum tg_verdict		 got;
	const char		*rc, *xc, *text;
	char			**rcpts, reply[600];
	size_t			 n, i;

	rcpts = t_rcpts(s, &n);
	memset(&env, 0, sizeof(env));
	env.client_addr = s->ip != NULL ? s->ip : "198.51.100.7";
	env.client_name = "client.example";
	env.helo = "client.example";
	env.mail_from = s->from;
	env.rcpts = (const char *const *)rcpts;
	env.nrcpts = n;
	env.auth_user = s->auth;
	env.queue_id = "TESTQ1";
	tg_test_log_reset();
	got = tg_scan_message(&env, msg, strlen(msg), &ctx);
	tg_ctx_get_reply(ctx, &rc, &xc, &text);
	(void)snprintf(reply, sizeof(reply), "%s %s %s", rc != NULL ? rc : "-",
	    xc != NULL ? xc : "-", text != NULL ? text : "-");
	if (s->end == T_ABORT)
		tg_stage_abort(ctx);
	else
		tg_stage_done(ctx);
	if (got != s->want)
		fail_msg("%s, message %zu: verdict %s, want %s\n%s", label,
		    k + 1, tg_verdict_name(got), tg_verdict_name(s->want),
		    tg_test_log());
	if (s->want_log != NULL && strstr(tg_test_log(), s->want_log) == NULL)
		fail_msg("%s, message %zu: log lacks \"%s\":\n%s", label,
		    k + 1, s->want_log, tg_test_log());
	if (s->want_reply != NULL && strstr(reply, s->want_reply) == NULL)
		fail_msg("%s, message %zu: reply \"%s\", want \"%s\"", label,
		    k + 1, reply, s->want_reply);
	ctx = tg_ctx_free(ctx);
	for (i = 0; i < n; i++)
		free(rcpts[i]);
	free(rcpts);
}

#define T_MSG	"From: a@example.com\nTo: r0@example.org\nSubject: hi\n" \
		"Date: Tue, 01 Dec 2026 10:00:00 +0000\n" \
		"Message-ID: <m1@example.com>\n\nHello.\n"

/* test_cases - every message case through the pipeline */
static void
test_cases(void **state)
{
	size_t	i, k;

	(void)state;
	for (i = 0; i < TG_NITEMS(cases); i++) {
		t_init("ratelimit", cases[i].rules, cases[i].table,
		    cases[i].extra, NULL);
		for (k = 0; k < T_MAX_STEPS && cases[i].steps[k].from != NULL;
		    k++)
			t_step_run(cases[i].label, k, &cases[i].steps[k], T_MSG);
		tg_pipeline_fini();
	}
}

/*
 * test_dmarc_reject_refunds - a message DMARC rejects after ratelimit
 * reserved costs nothing: with a limit of 1, three rejected messages
 * leave the quota whole for the next good one.
 */
static void
test_dmarc_reject_refunds(void **state)
{
	static const char zone[] =
	    ". 300 IN SOA ns. host. 1 3600 600 86400 300\n"
	    "example.com. 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\n"
	    "_dmarc.example.com. 300 IN TXT \"v=DMARC1; p=reject\"\n";
	static const struct t_step bad = { "<a@example.com>", NULL,
	    "198.51.100.7", 0, REJ, "limit=in key=example.com amount=1 used=1",
	    "550 5.7.1", T_DONE, NULL };
	static const struct t_step good = { "<a@example.com>", NULL,
	    "192.0.2.10", 0, OK, "ratelimit=\"ok used=1/1\"", NULL, T_DONE,
	    NULL };
	static const struct t_step over = { "<a@example.com>", NULL,
	    "192.0.2.10", 0, DEFER, "limit=in", "450 4.7.1", T_DONE, NULL };
	int	i;

	(void)state;
	t_init("spf dkim dmarc ratelimit",
	    "limit in count=messages key=sender_domain window=1h max=1 "
	    "mail=inbound\n", NULL,
	    "[spf]\non_fail = accept\ncache_size = 0\n"
	    "[dmarc]\norg_domain = tree_walk\n", zone);
	for (i = 0; i < 3; i++)
		t_step_run("dmarc reject", (size_t)i, &bad, T_MSG);
	t_step_run("dmarc pass", 3, &good, T_MSG);
	t_step_run("dmarc pass over", 4, &over, T_MSG);
	tg_pipeline_fini();
}

/* test_init_errors - start-up refuses what cannot work */
static void
test_init_errors(void **state)
{
	static const struct {
		const char	*conf;
		const char	*want;
	} c[] = {
		{ "[core]\nmodules = ratelimit\n[dns]\noffline = yes\n",
		  "rules_file: required" },
		{ "[core]\nmodules = ratelimit\n[dns]\noffline = yes\n"
		  "[ratelimit]\nrules_file = %s\n", "on_error=local needs" },
	};
	struct tg_pipeline_opts	 o;
	struct tg_err		 err;
	char			*rules, *conf;
	size_t			 i;

	(void)state;
	rules = t_write("rules", "limit r key=sender window=1h max=1 "
	    "on_error=local\n");
	for (i = 0; i < TG_NITEMS(c); i++) {
		conf = tg_printf_dup(c[i].conf, rules);
		memset(&o, 0, sizeof(o));
		o.conf_text = conf;
		o.force_offline = true;
		memset(&err, 0, sizeof(err));
		assert_int_not_equal(tg_pipeline_init(&o, &err), TG_OK);
		if (strstr(err.text, c[i].want) == NULL)
			fail_msg("init error \"%s\", want \"%s\"", err.text,
			    c[i].want);
		tg_pipeline_fini();
		free(conf);
	}
	free(rules);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_reply_text),
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_dmarc_reject_refunds),
		cmocka_unit_test(test_init_errors),
	};
	char	cmd[128];
	int	rc;

	(void)snprintf(t_dir, sizeof(t_dir), "/tmp/tg_rl_test.XXXXXX");
	if (mkdtemp(t_dir) == NULL)
		return 1;
	tg_test_log_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	tg_test_log_fini();
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
	if (system(cmd) != 0)
		rc = rc != 0 ? rc : 1;
	return rc;
}
