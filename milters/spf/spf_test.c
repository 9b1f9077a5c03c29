/*
 * spf_test - unit tests of the SPF module, without network.
 *
 * Whole messages go through the real pipeline (tg_pipeline_init with
 * configuration text, tg_scan_message), and DNS answers come from the
 * real resolver loaded with a zone file written here: a root SOA makes
 * every name the file does not list NXDOMAIN, and "$TIMEOUT" lines
 * make a name time out.  One table covers each policy choice, the
 * skipped clients, the null sender, the header texts, both engines and
 * hostile input; separate tests cover the cache (a repeated check must
 * not reach DNS: the resolver logs each query at debug, so the log
 * counts them) and the cache's bounds.
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "spf_int.h"
#include "tg_test.h"
#include "tollgate/buf.h"
#include "tollgate/dns.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"
#include "tollgate/spf.h"

#define T_SOA	"300 IN SOA ns.invalid. host.invalid. 1 3600 600 86400 300"
/* 200 bytes of local part */
#define T_LONG	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static const char t_zone_text[] =
    ". " T_SOA "\n"
    "example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
    "helo.example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
    "badhelo.example.org. 300 IN TXT \"v=spf1 -all\"\n"
    "soft.example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 ~all\"\n"
    "neutral.example.org. 300 IN TXT \"v=spf1 ?all\"\n"
    "broken.example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.300 -all\"\n"
    "exp.example.org. 300 IN TXT \"v=spf1 -all exp=why.example.org\"\n"
    "why.example.org. 300 IN TXT \"%{i} may not send for %{d}\"\n"
    "inc.example.org. 300 IN TXT \"v=spf1 include:slow.example.org "
    "-all\"\n"
    "local.example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
    "ttl0.example.org. 0 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
    "neg.example.org. 3600 IN TXT \"v=spf1 a:gone.example.org -all\"\n"
    "long.example.org. 3600 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
    "$TIMEOUT slow.example.org.\n";

static char	 t_dir[64];
static char	*t_zone;

/* The outcome of one message. */
struct t_run {
	enum tg_verdict	 verdict;
	char		*reply;		/* "550 5.7.23 text" or "" */
	char		*received;	/* Received-SPF values, unfolded */
	size_t		 max_line;	/* longest header line */
	size_t		 nreceived;
	char		*authres;	/* our Authentication-Results */
	char		*decision;
};

/* One message's envelope and what must come of it. */
struct t_case {
	const char	*label;
	const char	*conf;		/* [spf] settings, or more */
	const char	*ip;
	const char	*helo;
	const char	*from;
	const char	*auth;
	enum tg_verdict	 want;
	const char	*want_reply;	/* substring; NULL: no reply */
	const char	*want_received;	/* substring; NULL: none */
	size_t		 want_nreceived;
	const char	*want_authres;	/* substring; NULL: no spf= */
	const char	*want_decision;	/* substring */
	const char	*want_log;	/* substring; NULL: not checked */
};

static const struct t_case t_cases[] = {
	{ "pass", "", "192.0.2.7", "helo.example.org", "<alice@example.org>",
	  NULL, TG_ACCEPT, NULL,
	  "pass (mx.test: domain of alice@example.org designates 192.0.2.7 "
	  "as permitted sender) client-ip=192.0.2.7;", 2,
	  "spf=pass smtp.mailfrom=example.org", "spf=pass helo=pass",
	  "result=pass identity=mailfrom domain=example.org" },
	{ "pass: the HELO resinfo too", "", "192.0.2.7", "helo.example.org",
	  "<alice@example.org>", NULL, TG_ACCEPT, NULL,
	  "identity=helo;", 2, "spf=pass smtp.helo=helo.example.org",
	  "spf=pass helo=pass", NULL },
	{ "pass: Received-SPF key-value pairs", "", "192.0.2.7",
	  "helo.example.org", "<alice@example.org>", NULL, TG_ACCEPT, NULL,
	  "envelope-from=\"alice@example.org\"; helo=helo.example.org; "
	  "receiver=mx.test; identity=mailfrom; "
	  "mechanism=\"ip4:192.0.2.0/24\";", 2, "spf=pass", "spf=pass",
	  NULL },
	{ "fail is only marked by default", "", "198.51.100.1",
	  "helo.example.org", "<alice@example.org>", NULL, TG_ACCEPT, NULL,
	  "fail (", 2, "spf=fail smtp.mailfrom=example.org",
	  "spf=fail helo=fail action=accept", "result=fail" },
	{ "fail: on_fail = reject", "on_fail = reject", "198.51.100.1",
	  "helo.example.org", "<alice@example.org>", NULL, TG_REJECT,
	  "550 5.7.23 SPF fail: 198.51.100.1 is not allowed to send mail for "
	  "example.org", "fail (mx.test: domain of alice@example.org does not "
	  "designate 198.51.100.1 as permitted sender)", 2, NULL,
	  "stage=mail", "result=fail identity=mailfrom" },
	{ "fail: the reply gives the exp= explanation", "on_fail = reject",
	  "198.51.100.1",
	  NULL, "<bob@exp.example.org>", NULL, TG_REJECT,
	  "550 5.7.23 SPF fail: 198.51.100.1 may not send for exp.example.org",
	  "mechanism=-all;", 1, NULL, "spf=fail action=reject", NULL },
	{ "fail: on_fail = accept marks only", "on_fail = accept",
	  "198.51.100.1", "helo.example.org", "<alice@example.org>", NULL,
	  TG_ACCEPT, NULL, "fail (", 2, "spf=fail smtp.mailfrom=example.org",
	  "spf=fail helo=fail", "action=accept" },
	{ "fail: on_fail = tempfail", "on_fail = tempfail", "198.51.100.1",
	  "helo.example.org", "<alice@example.org>", NULL, TG_TEMPFAIL,
	  "451 4.7.24 SPF fail for example.org, try again later", "fail (", 2,
	  NULL, "action=tempfail", "action=tempfail" },
	{ "softfail is accepted by default", "", "198.51.100.1", NULL,
	  "<a@soft.example.org>", NULL, TG_ACCEPT, NULL,
	  "softfail (mx.test: domain of transitioning a@soft.example.org",
	  1, "spf=softfail smtp.mailfrom=soft.example.org", "spf=softfail",
	  "action=accept" },
	{ "softfail: on_softfail = reject", "on_softfail = reject",
	  "198.51.100.1", NULL, "<a@soft.example.org>", NULL, TG_REJECT,
	  "550 5.7.23 SPF softfail: 198.51.100.1", "softfail (", 1, NULL,
	  "action=reject", NULL },
	{ "softfail: on_softfail = tempfail", "on_softfail = tempfail",
	  "198.51.100.1", NULL, "<a@soft.example.org>", NULL, TG_TEMPFAIL,
	  "451 4.7.24", "softfail (", 1, NULL, "action=tempfail", NULL },
	{ "neutral is accepted", "on_softfail = reject", "198.51.100.1", NULL,
	  "<a@neutral.example.org>", NULL, TG_ACCEPT, NULL,
	  "neutral (mx.test: 198.51.100.1 is neither permitted nor denied",
	  1, "spf=neutral", "spf=neutral", NULL },
	{ "none: no record", "", "198.51.100.1", NULL, "<a@nosuch.example>",
	  NULL, TG_ACCEPT, NULL, "none (mx.test: nosuch.example: no SPF "
	  "record)", 1, "spf=none smtp.mailfrom=nosuch.example", "spf=none",
	  NULL },
	{ "permerror is accepted by default", "", "192.0.2.7", NULL,
	  "<a@broken.example.org>", NULL, TG_ACCEPT, NULL,
	  "permerror (mx.test: permanent error in processing domain of "
	  "a@broken.example.org)", 1, "spf=permerror", "spf=permerror",
	  "action=accept reason=" },
	{ "permerror: the problem is named", "", "192.0.2.7", NULL,
	  "<a@broken.example.org>", NULL, TG_ACCEPT, NULL, "problem=\"", 1,
	  "spf=permerror", "spf=permerror", NULL },
	{ "permerror: on_permerror = reject", "on_permerror = reject",
	  "192.0.2.7", NULL, "<a@broken.example.org>", NULL, TG_REJECT,
	  "550 5.7.24 SPF permerror for broken.example.org: ", "permerror (",
	  1, NULL, "action=reject", NULL },
	{ "temperror ($TIMEOUT) is accepted by default", "", "192.0.2.7",
	  NULL, "<a@slow.example.org>", NULL, TG_ACCEPT, NULL,
	  "temperror (mx.test: error in processing during lookup of "
	  "a@slow.example.org)", 1, "spf=temperror", "spf=temperror",
	  "timeout" },
	{ "temperror: on_temperror = tempfail", "on_temperror = tempfail",
	  "192.0.2.7", NULL, "<a@slow.example.org>", NULL, TG_TEMPFAIL,
	  "451 4.7.24 SPF temperror for slow.example.org, try again later",
	  "temperror (", 1, NULL, "spf=temperror action=tempfail",
	  "result=temperror" },
	{ "temperror in an include: on_temperror = tempfail",
	  "on_temperror = tempfail", "198.51.100.1", NULL,
	  "<a@inc.example.org>", NULL, TG_TEMPFAIL, "451 4.7.24",
	  "temperror (", 1, NULL, "action=tempfail", NULL },
	{ "outbound (SASL) is not checked", "", "198.51.100.1",
	  "helo.example.org", "<alice@example.org>", "alice", TG_ACCEPT, NULL,
	  NULL, 0, NULL, "spf=skip:outbound", NULL },
	{ "outbound (internal network) is not checked", "", "127.0.0.1",
	  "helo.example.org", "<alice@example.org>", NULL, TG_ACCEPT, NULL,
	  NULL, 0, NULL, "spf=skip:outbound", NULL },
	{ "a trusted relay is not checked",
	  "trusted_relays = 203.0.113.0/24 2001:db8:1::/48", "203.0.113.5",
	  "relay.example.net", "<alice@example.org>", NULL, TG_ACCEPT, NULL,
	  NULL, 0, NULL, "spf=skip:trusted-relay", NULL },
	{ "a trusted relay (IPv6) is not checked",
	  "trusted_relays = 203.0.113.0/24 2001:db8:1::/48", "2001:db8:1::25",
	  "relay.example.net", "<alice@example.org>", NULL, TG_ACCEPT, NULL,
	  NULL, 0, NULL, "spf=skip:trusted-relay", NULL },
	{ "other clients are checked despite trusted_relays",
	  "trusted_relays = 203.0.113.0/24\non_fail = reject", "198.51.100.1",
	  NULL,
	  "<alice@example.org>", NULL, TG_REJECT, "550 5.7.23", "fail (", 1,
	  NULL, "spf=fail", NULL },
	{ "null sender: one check, of the HELO name", "", "192.0.2.7",
	  "helo.example.org", "<>", NULL, TG_ACCEPT, NULL,
	  "pass (mx.test: domain of helo.example.org designates 192.0.2.7 "
	  "as permitted sender) client-ip=192.0.2.7; envelope-from=\"\";",
	  1,
	  "spf=pass smtp.helo=helo.example.org", "spf=pass identity=helo",
	  "identity=helo domain=helo.example.org" },
	{ "null sender: a HELO fail drives policy", "on_fail = reject",
	  "198.51.100.1",
	  "helo.example.org", "<>", NULL, TG_REJECT,
	  "550 5.7.23 SPF fail: 198.51.100.1 is not allowed to send mail for "
	  "helo.example.org", "identity=helo;", 1, NULL,
	  "spf=fail identity=helo", NULL },
	{ "null sender without HELO: nothing to check", "", "192.0.2.7", NULL,
	  "<>", NULL, TG_ACCEPT, NULL, NULL, 0, NULL, "spf=skip:no-identity",
	  NULL },
	{ "HELO fail, MAIL FROM pass: accepted by default", "", "192.0.2.7",
	  "badhelo.example.org", "<alice@example.org>", NULL, TG_ACCEPT, NULL,
	  "fail (mx.test: domain of badhelo.example.org", 2,
	  "spf=fail smtp.helo=badhelo.example.org", "spf=pass helo=fail",
	  NULL },
	{ "HELO fail: helo_policy = yes rejects",
	  "helo_policy = yes\non_fail = reject",
	  "192.0.2.7", "badhelo.example.org", "<alice@example.org>", NULL,
	  TG_REJECT, "550 5.7.23 SPF fail: 192.0.2.7 is not allowed to send "
	  "mail for badhelo.example.org", "identity=helo;", 2, NULL,
	  "spf=pass helo=fail action=reject",
	  "result=fail identity=helo domain=badhelo.example.org" },
	{ "HELO fail: helo_policy = yes, on_fail = accept",
	  "helo_policy = yes\non_fail = accept", "192.0.2.7",
	  "badhelo.example.org", "<alice@example.org>", NULL, TG_ACCEPT, NULL,
	  "fail (", 2, "spf=fail smtp.helo=badhelo.example.org",
	  "spf=pass helo=fail", NULL },
	{ "IPv6 client: quoted client-ip", "on_fail = reject", "2001:db8::1",
	  NULL,
	  "<alice@example.org>", NULL, TG_REJECT, "550 5.7.23 SPF fail: "
	  "2001:db8::1", "client-ip=\"2001:db8::1\";", 1, NULL, "spf=fail",
	  NULL },
	{ "a source route and ESMTP brackets", "", "192.0.2.7", NULL,
	  "<@relay.example.net:alice@example.org>", NULL, TG_ACCEPT, NULL,
	  "envelope-from=\"alice@example.org\";", 1, "spf=pass", "spf=pass",
	  NULL },
	{ "bad client IP: not checked", "", "not-an-address", NULL,
	  "<alice@example.org>", NULL, TG_ACCEPT, NULL, NULL, 0, NULL,
	  "spf=skip:bad-client-ip", "is not an IP address" },
	{ "8-bit garbage in HELO and sender", "", "192.0.2.7",
	  "h\xc3\xa9lo\x01(x)\".example.org",
	  "<\xff\xfe\"\\@ex\x80" "ample.org>", NULL, TG_ACCEPT, NULL,
	  "none (mx.test: ", 2, "spf=none smtp.mailfrom=\"ex?ample.org\"",
	  "spf=none helo=none", NULL },
	{ "8-bit garbage: the HELO resinfo is quoted", "", "192.0.2.7",
	  "h\xc3\xa9lo\x01(x)\".example.org", "<a@example.org>", NULL,
	  TG_ACCEPT, NULL, "helo=\"h??lo?(x)\\\".example.org\";", 2,
	  "spf=none smtp.helo=\"h??lo?(x)\\\".example.org\"",
	  "spf=pass helo=none", NULL },
	{ "a huge sender stays within the line limit", "", "192.0.2.7",
	  "helo.example.org", "<" T_LONG T_LONG "@example.org>", NULL,
	  TG_ACCEPT, NULL, "envelope-from=\"" T_LONG, 2,
	  "spf=none smtp.mailfrom=example.org", "spf=none helo=pass",
	  "local part longer than" },
	{ "libspf2 engine: null sender, one check of the HELO name",
	  "engine = libspf2", "192.0.2.7", "helo.example.org", "<>", NULL,
	  TG_ACCEPT, NULL, "identity=helo;", 1,
	  "spf=pass smtp.helo=helo.example.org", "spf=pass identity=helo",
	  NULL },
	{ "libspf2 engine: 8-bit garbage", "engine = libspf2", "192.0.2.7",
	  "h\xc3\xa9lo\x01(x)\".example.org",
	  "<\xff\xfe\"\\@ex\x80" "ample.org>", NULL, TG_ACCEPT, NULL,
	  "none (mx.test: ", 2, "spf=none smtp.mailfrom=\"ex?ample.org\"",
	  "spf=none helo=none", NULL },
	{ "libspf2 engine: pass", "engine = libspf2", "192.0.2.7",
	  "helo.example.org", "<alice@example.org>", NULL, TG_ACCEPT, NULL,
	  "pass (mx.test: domain of alice@example.org designates", 2,
	  "spf=pass smtp.mailfrom=example.org", "spf=pass helo=pass", NULL },
	{ "libspf2 engine: fail with our explanation",
	  "engine = libspf2\non_fail = reject",
	  "198.51.100.1", NULL, "<bob@exp.example.org>", NULL, TG_REJECT,
	  "550 5.7.23 SPF fail: 198.51.100.1 may not send for exp.example.org",
	  "fail (", 1, NULL, "spf=fail", NULL },
	{ "libspf2 engine: temperror", "engine = libspf2\n"
	  "on_temperror = tempfail", "192.0.2.7", NULL, "<a@slow.example.org>",
	  NULL, TG_TEMPFAIL, "451 4.7.24", "temperror (", 1, NULL,
	  "spf=temperror", NULL },
	{ "native engine: no free pass for loopback",
	  "[core]\ninternal_networks = 10.0.0.0/8\n[spf]\non_fail = reject",
	  "127.0.0.1",
	  NULL, "<a@local.example.org>", NULL, TG_REJECT, "550 5.7.23",
	  "fail (", 1, NULL, "spf=fail", NULL },
	{ "libspf2 engine: no free pass for loopback",
	  "[core]\ninternal_networks = 10.0.0.0/8\n[spf]\nengine = libspf2\n"
	  "on_fail = reject",
	  "127.0.0.1", NULL, "<a@local.example.org>", NULL, TG_REJECT,
	  "550 5.7.23", "fail (", 1, NULL, "spf=fail", NULL },
	{ "libspf2 engine: IPv4-mapped IPv6 is IPv4",
	  "engine = libspf2", "::ffff:192.0.2.7", NULL, "<a@example.org>",
	  NULL, TG_ACCEPT, NULL, "pass (", 1, "spf=pass", "spf=pass", NULL },
};

/* t_pipeline - the pipeline with spf enabled and the test zone */
static void
t_pipeline(const char *spf_conf)
{
	struct tg_pipeline_opts	 o;
	struct tg_err		 err;
	const char		*zones[1];
	char			*conf;

	conf = tg_printf_dup("[core]\nauthserv_id = mx.test\nmodules = spf\n"
	    "log_level = debug\n[spf]\n%s\n", spf_conf);
	memset(&o, 0, sizeof(o));
	o.conf_text = conf;
	zones[0] = t_zone;
	o.zone_files = zones;
	o.nzone_files = 1;
	o.force_offline = true;
	if (tg_pipeline_init(&o, &err) != TG_OK)
		fail_msg("pipeline init: %s", err.text);
	free(conf);
	tg_test_log_reset();
}

/*
 * t_unfold - a header value with its folds (CRLF TAB) made spaces; the
 * longest line, "Received-SPF: " included, into *max_line
 */
static void
t_unfold(struct tg_buf *b, const char *v, size_t *max_line)
{
	size_t	col = strlen("Received-SPF: ");

	for (; *v != '\0'; v++) {
		if (v[0] == '\r' && v[1] == '\n' && v[2] == '\t') {
			tg_buf_putc(b, ' ');
			v += 2;
			col = 8;
			continue;
		}
		tg_buf_putc(b, *v);
		if (++col > *max_line)
			*max_line = col;
	}
	tg_buf_putc(b, '\n');
}

/* t_collect - what the module and the pipeline left in ctx */
static void
t_collect(struct tg_ctx *ctx, struct t_run *r)
{
	const struct tg_edit	*e;
	const char		*rc, *xc, *text, *d;
	struct tg_buf		 b;
	size_t			 n, i;

	tg_buf_init(&b);
	tg_ctx_get_reply(ctx, &rc, &xc, &text);
	if (rc != NULL)
		tg_buf_printf(&b, "%s %s %s", rc, xc, text);
	r->reply = tg_buf_steal(&b);
	n = tg_ctx_edits(ctx, &e);
	for (i = 0; i < n; i++) {
		if (strcmp(e[i].name, "Received-SPF") == 0) {
			assert_int_equal(e[i].kind, TG_EDIT_PREPEND);
			t_unfold(&b, e[i].value, &r->max_line);
			r->nreceived++;
		}
		if (strcmp(e[i].name, "Authentication-Results") == 0)
			r->authres = tg_strdup(e[i].value);
	}
	r->received = tg_buf_steal(&b);
	if (r->authres == NULL)
		r->authres = tg_strdup("");
	/* The tables' decision substrings leave out logfmt's quotes. */
	for (d = tg_ctx_decision(ctx); d != NULL && *d != '\0'; d++)
		if (*d != '"')
			tg_buf_putc(&b, *d);
	r->decision = tg_buf_steal(&b);
}

/* t_run - one message through every stage */
static void
t_run(const struct t_case *c, struct t_run *r)
{
	static const char *const rcpts[] = { "<bob@example.com>" };
	static const char	 msg[] = "From: a@example.org\r\n"
	    "Subject: test\r\n\r\nbody\r\n";
	struct tg_scan_env	 env;
	struct tg_ctx		*ctx;

	memset(r, 0, sizeof(*r));
	memset(&env, 0, sizeof(env));
	env.client_addr = c->ip;
	env.client_name = "[client]";
	env.helo = c->helo;
	env.mail_from = c->from;
	env.rcpts = rcpts;
	env.nrcpts = 1;
	env.auth_user = c->auth;
	env.queue_id = "TESTQ1";
	r->verdict = tg_scan_message(&env, msg, strlen(msg), &ctx);
	t_collect(ctx, r);
	tg_stage_done(ctx);
	tg_ctx_free(ctx);
}

/* t_run_free - release a run */
static void
t_run_free(struct t_run *r)
{
	free(r->reply);
	free(r->received);
	free(r->authres);
	free(r->decision);
}

/* t_printable - only printable ASCII, and CRLF TAB folding */
static bool
t_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 0x20 && *s <= 0x7e) || *s == '\r' ||
		    *s == '\n' || *s == '\t'))
			return false;
	return true;
}

/* t_check - one case's outcome against the table */
static void
t_check(const struct t_case *c, const struct t_run *r)
{
	const char	*ar = strstr(r->authres, "spf=");

	if (r->verdict != c->want)
		fail_msg("%s: verdict %s, want %s", c->label,
		    tg_verdict_name(r->verdict), tg_verdict_name(c->want));
	if (c->want_reply == NULL ? r->reply[0] != '\0' :
	    strstr(r->reply, c->want_reply) != r->reply)
		fail_msg("%s: reply \"%s\", want \"%s\"", c->label, r->reply,
		    c->want_reply != NULL ? c->want_reply : "");
	if (r->nreceived != c->want_nreceived || (c->want_received != NULL &&
	    strstr(r->received, c->want_received) == NULL))
		fail_msg("%s: %zu Received-SPF \"%s\", want %zu with \"%s\"",
		    c->label, r->nreceived, r->received, c->want_nreceived,
		    c->want_received != NULL ? c->want_received : "");
	if (c->want_authres == NULL ? ar != NULL :
	    strstr(r->authres, c->want_authres) == NULL)
		fail_msg("%s: Authentication-Results \"%s\", want \"%s\"",
		    c->label, r->authres, c->want_authres != NULL ?
		    c->want_authres : "no spf=");
	if (strstr(r->decision, c->want_decision) == NULL)
		fail_msg("%s: decision \"%s\", want \"%s\"", c->label,
		    r->decision, c->want_decision);
	if (c->want_log != NULL && strstr(tg_test_log(),
	    c->want_log) == NULL)
		fail_msg("%s: log lacks \"%s\":\n%s", c->label, c->want_log,
		    tg_test_log());
	/* Folded to 80 columns, unless a client sends huge names. */
	if (r->max_line > (strlen(c->from) > 100 ? 998 : 80))
		fail_msg("%s: Received-SPF line of %zu bytes: %s", c->label,
		    r->max_line, r->received);
	if (!t_printable(r->received) || !t_printable(r->authres) ||
	    !t_printable(r->reply))
		fail_msg("%s: unprintable bytes in our output", c->label);
}

/* test_cases - the table, each case on a fresh pipeline */
static void
test_cases(void **state)
{
	struct t_run	r;
	size_t		i;

	(void)state;
	for (i = 0; i < TG_NITEMS(t_cases); i++) {
		t_pipeline(t_cases[i].conf);
		t_run(&t_cases[i], &r);
		t_check(&t_cases[i], &r);
		t_run_free(&r);
		tg_pipeline_fini();
	}
}

/* t_count - occurrences of needle in the captured log */
static size_t
t_count(const char *needle)
{
	const char	*p = tg_test_log();
	size_t		 n = 0;

	for (; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/*
 * t_twice - the same check twice on one pipeline.  Returns the second
 * run's decision field; *queries gets the DNS queries the second run
 * made (the resolver logs each one at debug, answered locally or not).
 */
static char *
t_twice(const char *conf, const char *from, size_t *queries)
{
	static const struct t_case c = { "cache", "", "192.0.2.7",
	    "helo.example.org", NULL, NULL, TG_ACCEPT, NULL, NULL, 0, NULL,
	    "", NULL };
	struct t_case	cc = c;
	struct t_run	r;
	char		*out;

	cc.from = from;
	t_pipeline(conf);
	t_run(&cc, &r);
	assert_non_null(strstr(r.decision, "spf=pass helo=pass"));
	assert_int_not_equal(t_count("dns: name="), 0);
	assert_int_equal(t_count("cache hit: "), 0);
	t_run_free(&r);
	tg_test_log_reset();
	t_run(&cc, &r);
	*queries = t_count("dns: name=");
	out = tg_strdup(strstr(r.decision, "spf="));
	t_run_free(&r);
	tg_pipeline_fini();
	return out;
}

/* test_cache - a repeated check is answered without DNS */
static void
test_cache(void **state)
{
	size_t	 q;
	char	*d;

	(void)state;
	d = t_twice("", "<alice@example.org>", &q);
	assert_int_equal(q, 0);
	/* Both identities, HELO and MAIL FROM, from the cache. */
	assert_int_equal(t_count("cache hit: "), 2);
	assert_non_null(strstr(tg_test_log(), "cached=yes"));
	assert_non_null(strstr(d, "spf=pass helo=pass"));
	free(d);
	/* The libspf2 engine's answers are cached the same way. */
	d = t_twice("engine = libspf2", "<alice@example.org>", &q);
	assert_int_equal(q, 0);
	assert_non_null(strstr(d, "spf=pass helo=pass"));
	free(d);
	/* Without the cache, the second check asks DNS again. */
	d = t_twice("cache_size = 0", "<alice@example.org>", &q);
	assert_int_not_equal(q, 0);
	assert_int_equal(t_count("cache hit: "), 0);
	free(d);
	/* A result lives no longer than cache_max_ttl ... */
	d = t_twice("cache_max_ttl = 0", "<alice@example.org>", &q);
	assert_int_not_equal(q, 0);
	free(d);
	/* ... nor than the smallest TTL of the answers it came from. */
	d = t_twice("", "<alice@ttl0.example.org>", &q);
	assert_int_equal(t_count("cache hit: "), 1);	/* the HELO one */
	assert_int_not_equal(t_count("name=ttl0.example.org type=TXT"), 0);
	free(d);
}

/* test_cache_temperror - not kept: the outage may be over next time */
static void
test_cache_temperror(void **state)
{
	static const struct t_case c = { "temperror", "", "192.0.2.7",
	    NULL, "<a@slow.example.org>", NULL, TG_ACCEPT, NULL, NULL, 0,
	    NULL, "", NULL };
	struct t_run	r;

	(void)state;
	t_pipeline("");
	t_run(&c, &r);
	assert_non_null(strstr(r.decision, "spf=temperror"));
	t_run_free(&r);
	tg_test_log_reset();
	t_run(&c, &r);
	assert_non_null(strstr(r.decision, "spf=temperror"));
	assert_int_equal(t_count("cache hit: "), 0);
	assert_int_equal(t_count("dns: name=slow.example.org type=TXT"), 1);
	t_run_free(&r);
	tg_pipeline_fini();
}

/* test_cache_key - the whole sender is part of the key */
static void
test_cache_key(void **state)
{
	static const struct t_case c = { "key", "", "192.0.2.7",
	    "helo.example.org", "<alice@example.org>", NULL, TG_ACCEPT, NULL,
	    NULL, 0, NULL, "", NULL };
	struct t_case	cc = c;
	struct t_run	r;

	(void)state;
	t_pipeline("");
	t_run(&cc, &r);
	t_run_free(&r);
	tg_test_log_reset();
	cc.from = "<bob@example.org>";
	t_run(&cc, &r);
	/* The HELO check is the same question; the MAIL FROM one is not. */
	assert_int_equal(t_count("cache hit: "), 1);
	assert_int_not_equal(t_count("dns: name=example.org type=TXT"), 0);
	t_run_free(&r);
	tg_pipeline_fini();
}

/* test_cache_bounds - at most max entries; the least recently used go */
static void
test_cache_bounds(void **state)
{
	struct spf_cache	*c;
	struct spf_answer	 a, got;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.result = SPF_PASS;
	assert_null(spf_cache_new(0));
	assert_false(spf_cache_get(NULL, "k", &got));
	c = spf_cache_new(2);
	spf_cache_put(c, "one", &a, 60);
	a.result = SPF_FAIL;
	spf_cache_put(c, "two", &a, 60);
	assert_true(spf_cache_get(c, "one", &got));	/* now the newest */
	assert_int_equal(got.result, SPF_PASS);
	spf_cache_put(c, "three", &a, 60);
	assert_int_equal(spf_cache_count(c), 2);
	assert_false(spf_cache_get(c, "two", &got));
	assert_true(spf_cache_get(c, "one", &got));
	assert_true(spf_cache_get(c, "three", &got));
	assert_int_equal(got.result, SPF_FAIL);
	spf_cache_put(c, "zero", &a, 0);		/* ttl 0: not kept */
	assert_false(spf_cache_get(c, "zero", &got));
	spf_cache_put(c, "three", &a, 60);		/* replaced */
	assert_int_equal(spf_cache_count(c), 2);
	c = spf_cache_free(c);
	assert_null(c);
}

/*
 * test_answer_ttl - both engines report the smallest TTL of the answers
 * a result came from, a negative answer's too, and none for a check that
 * asked nothing
 */
static void
test_answer_ttl(void **state)
{
	static const enum spf_engine engines[] = { SPF_ENGINE_NATIVE,
	    SPF_ENGINE_LIBSPF2 };
	struct spf_request	req;
	struct spf_answer	ans;
	size_t			i;

	(void)state;
	t_pipeline("");
	for (i = 0; i < TG_NITEMS(engines); i++) {
		memset(&req, 0, sizeof(req));
		req.ip = "192.0.2.7";
		req.sender = "a@long.example.org";
		assert_int_equal(spf_engine_check(engines[i],
		    tg_pipeline_dns(), &req, &ans), TG_OK);
		assert_int_equal(ans.result, SPF_PASS);
		assert_int_equal(ans.ttl, 3600);
		req.sender = "a@neg.example.org";
		assert_int_equal(spf_engine_check(engines[i],
		    tg_pipeline_dns(), &req, &ans), TG_OK);
		assert_int_equal(ans.result, SPF_FAIL);
		/* gone.example.org is NXDOMAIN: its SOA's TTL counts. */
		assert_true(ans.ttl <= 300);
		req.sender = "a@nodot";	/* 4.3: not checked at all */
		assert_int_equal(spf_engine_check(engines[i],
		    tg_pipeline_dns(), &req, &ans), TG_OK);
		assert_int_equal(ans.result, SPF_NONE);
		assert_int_equal(ans.ttl, SPF_TTL_NONE);
	}
	tg_pipeline_fini();
}

/* Shared by the threads of test_threads. */
static struct spf_cache	*t_shared_cache;

/* t_thread - checks with both engines, through one shared cache */
static void *
t_thread(void *arg)
{
	struct spf_request	 req;
	struct spf_answer	 ans, got;
	char			 key[32];
	size_t			 i, *bad = arg;

	for (i = 0; i < 40; i++) {
		memset(&req, 0, sizeof(req));
		req.ip = i % 2 ? "192.0.2.7" : "198.51.100.1";
		req.helo = "helo.example.org";
		req.sender = "alice@example.org";
		if (spf_engine_check(i % 3 ? SPF_ENGINE_NATIVE :
		    SPF_ENGINE_LIBSPF2, tg_pipeline_dns(), &req, &ans) !=
		    TG_OK || ans.result != (i % 2 ? SPF_PASS : SPF_FAIL))
			(*bad)++;
		(void)snprintf(key, sizeof(key), "k%zu", i % 7);
		spf_cache_put(t_shared_cache, key, &ans, 60);
		if (spf_cache_get(t_shared_cache, key, &got) &&
		    got.result != SPF_PASS && got.result != SPF_FAIL)
			(*bad)++;
	}
	return NULL;
}

/* test_threads - the engines and the cache on several threads at once */
static void
test_threads(void **state)
{
	pthread_t	tid[4];
	size_t		bad[4] = { 0 }, i;

	(void)state;
	t_pipeline("");
	t_shared_cache = spf_cache_new(5);
	for (i = 0; i < TG_NITEMS(tid); i++)
		assert_int_equal(pthread_create(&tid[i], NULL, t_thread,
		    &bad[i]), 0);
	for (i = 0; i < TG_NITEMS(tid); i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(bad[i], 0);
	}
	assert_true(spf_cache_count(t_shared_cache) <= 5);
	t_shared_cache = spf_cache_free(t_shared_cache);
	tg_pipeline_fini();
}

/* test_accessors - what DMARC reads, through a module hook's ctx */
static void
test_accessors(void **state)
{
	static const char *const rcpts[] = { "<bob@example.com>" };
	static const char	 msg[] = "Subject: t\r\n\r\nb\r\n";
	struct tg_scan_env	 env;
	struct tg_ctx		*ctx;
	struct spf_identity	 mf, helo;

	(void)state;
	t_pipeline("");
	/* The milter keeps the HELO event for us (tg_ctx_helo). */
	assert_true(tg_pipeline_wants(TG_STAGE_HELO));
	memset(&env, 0, sizeof(env));
	env.client_addr = "192.0.2.7";
	env.client_name = "[192.0.2.7]";
	env.helo = "HELO.Example.ORG";
	env.mail_from = "<alice@Example.ORG>";
	env.rcpts = rcpts;
	env.nrcpts = 1;
	assert_int_equal(tg_scan_message(&env, msg, strlen(msg), &ctx),
	    TG_ACCEPT);
	spf_msg_mailfrom(ctx, &mf);
	spf_msg_helo(ctx, &helo);
	assert_true(mf.checked);
	assert_int_equal(mf.result, SPF_PASS);
	assert_string_equal(mf.domain, "example.org");
	assert_true(helo.checked);
	assert_int_equal(helo.result, SPF_PASS);
	assert_string_equal(helo.domain, "helo.example.org");
	tg_stage_done(ctx);
	tg_ctx_free(ctx);
	/* Outbound mail: not checked. */
	env.auth_user = "alice";
	(void)tg_scan_message(&env, msg, strlen(msg), &ctx);
	spf_msg_mailfrom(ctx, &mf);
	assert_false(mf.checked);
	assert_null(mf.domain);
	tg_stage_done(ctx);
	tg_ctx_free(ctx);
	tg_pipeline_fini();
}

/* setup - the scratch directory, the zone and log capture */
static int
setup(void **state)
{
	FILE	*fp;

	(void)state;
	(void)snprintf(t_dir, sizeof(t_dir), "/tmp/spf_test.XXXXXX");
	if (mkdtemp(t_dir) == NULL)
		return -1;
	t_zone = tg_printf_dup("%s/zone.txt", t_dir);
	if ((fp = fopen(t_zone, "w")) == NULL)
		return -1;
	(void)fputs(t_zone_text, fp);
	if (fclose(fp) != 0)
		return -1;
	tg_log_open("spf_test", true);
	tg_test_log_init();
	return 0;
}

/* teardown - remove what setup made */
static int
teardown(void **state)
{
	(void)state;
	tg_test_log_fini();
	(void)unlink(t_zone);
	(void)rmdir(t_dir);
	free(t_zone);
	return 0;
}

/*
 * test_config_refused - settings the loader must refuse: a DNS failure
 * is never a permanent refusal (on_temperror takes accept or tempfail),
 * and an explanation must be a valid macro-string
 */
static void
test_config_refused(void **state)
{
	static const char *const bad[] = {
		"on_temperror = reject",
		"on_fail = maybe",
		"explanation = %{z} is not a macro",
		"trusted_relays = 192.0.2.0/33",
	};
	struct tg_pipeline_opts	 o;
	struct tg_err		 err;
	char			*conf;
	size_t			 i;

	(void)state;
	for (i = 0; i < TG_NITEMS(bad); i++) {
		conf = tg_printf_dup("[core]\nmodules = spf\n[spf]\n%s\n",
		    bad[i]);
		memset(&o, 0, sizeof(o));
		o.conf_text = conf;
		o.force_offline = true;
		if (tg_pipeline_init(&o, &err) == TG_OK)
			fail_msg("accepted: %s", bad[i]);
		tg_pipeline_fini();
		free(conf);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_cache_temperror),
		cmocka_unit_test(test_cache_key),
		cmocka_unit_test(test_cache_bounds),
		cmocka_unit_test(test_answer_ttl),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_config_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
