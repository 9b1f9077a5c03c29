/*
 * dmarc_test - unit tests of the DMARC module, without network.
 *
 * Whole messages go through the real pipeline (modules spf dkim dmarc,
 * tg_pipeline_init with configuration text and zone data for the
 * resolver): every case builds its zone from a root SOA (so unlisted
 * names are NXDOMAIN), the DKIM keys of the rspamd corpus (two of its
 * signed messages give aligned and unaligned DKIM passes) and its own
 * records.  The table covers pass by DKIM and by SPF, relaxed and strict
 * alignment, p=, sp=, np=, pct= and t=, missing, malformed and timed-out
 * records, SPF and DKIM temporary errors, several author domains and
 * From: fields (the strictest outcome applies) and the lenient reading
 * of unparsable ones, enforcement choices, local overrides ([spf]
 * trusted_relays among them), the tree walk against the PSL with its
 * per-message cache and query budget, and outbound mail.  dmarc_test_corpus.c
 * runs the shared rspamd and OpenDMARC vectors.
 */
#include "config.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmarc_int.h"
#include "dmarc_report_int.h"
#include "dmarc_test.h"
#include "tollgate/buf.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"

char			 t_dir[64];
static char		*t_keys;	/* rspamd's DKIM keys as zone lines */

/* ---- helpers ---- */

/* t_write - a scratch file */
char *
t_write(const char *name, const char *text)
{
	char	*p = tg_printf_dup("%s/%s", t_dir, name);
	FILE	*fp;

	assert_non_null(fp = fopen(p, "w"));
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
	return p;
}

/* t_slurp - a whole file */
char *
t_slurp(const char *path)
{
	char	*text;
	size_t	 len;

	if (tg_read_file(path, &text, &len, NULL) != TG_OK)
		return NULL;
	return text;
}

/* t_pipeline - the pipeline with the given modules, settings and zone */
void
t_pipeline(const char *modules, const char *dmarc_conf, const char *zone)
{
	struct tg_pipeline_opts	 o;
	struct tg_err		 err;
	const char		*zones[1];
	char			*conf, *zpath;

	conf = tg_printf_dup("[core]\nauthserv_id = mx.test\nmodules = %s\n"
	    "log_level = debug\n[spf]\non_fail = accept\ncache_size = 0\n"
	    "[dmarc]\n%s%s\n", modules, strstr(dmarc_conf, "psl_file") ==
	    NULL ? "psl_file = " T_RSPAMD "/public-suffixes.dat\n" : "",
	    dmarc_conf);
	zpath = t_write("zone", zone);
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
	tg_test_log_reset();
}

/* t_pipeline_done - release the pipeline */
void
t_pipeline_done(void)
{
	tg_pipeline_fini();
}

/* t_run_collect - what the modules and the pipeline left in ctx */
static void
t_run_collect(struct tg_ctx *ctx, struct t_run *r)
{
	const struct tg_edit	*e;
	const char		*rc, *xc, *text, *why;
	struct tg_buf		 b;
	size_t			 n, i;

	dmarc_msg_result(ctx, &r->res);
	r->header_from = tg_strdup(r->res.header_from != NULL ?
	    r->res.header_from : "");
	r->policy_domain = tg_strdup(r->res.policy_domain != NULL ?
	    r->res.policy_domain : "");
	r->res.header_from = r->res.policy_domain = NULL;
	tg_buf_init(&b);
	n = tg_ctx_edits(ctx, &e);
	for (i = 0; i < n; i++) {
		if (strcmp(e[i].name, "Authentication-Results") == 0 &&
		    r->authres == NULL)
			r->authres = tg_strdup(e[i].value);
		if (e[i].kind == TG_EDIT_ADD)
			tg_buf_printf(&b, "%s: %s\n", e[i].name, e[i].value);
	}
	r->added = tg_buf_steal(&b);
	if (r->authres == NULL)
		r->authres = tg_strdup("");
	tg_ctx_get_reply(ctx, &rc, &xc, &text);
	r->reply = rc != NULL ? tg_printf_dup("%s %s %s", rc, xc, text) :
	    tg_strdup("");
	r->quarantine = tg_ctx_quarantined(ctx, &why) ? tg_strdup(why) : NULL;
	r->decision = tg_strdup(tg_ctx_decision(ctx) != NULL ?
	    tg_ctx_decision(ctx) : "");
}

/* t_run - one message through every stage */
void
t_run(const char *msg, const char *client_ip, const char *mail_from,
    struct t_run *r)
{
	static const char *const rcpts[] = { "<bob@example.org>" };
	struct tg_scan_env	 env;
	struct tg_ctx		*ctx;

	memset(r, 0, sizeof(*r));
	memset(&env, 0, sizeof(env));
	env.client_addr = client_ip;
	env.client_name = "mail.example.net";
	env.helo = "mail.example.net";
	env.mail_from = mail_from;
	env.rcpts = rcpts;
	env.nrcpts = 1;
	env.queue_id = "TESTQ1";
	r->verdict = tg_scan_message(&env, msg, strlen(msg), &ctx);
	t_run_collect(ctx, r);
	tg_stage_done(ctx);
	tg_ctx_free(ctx);
}

/* t_run_free - release a run */
void
t_run_free(struct t_run *r)
{
	free(r->header_from);
	free(r->policy_domain);
	free(r->authres);
	free(r->decision);
	free(r->reply);
	free(r->quarantine);
	free(r->added);
	memset(r, 0, sizeof(*r));
}

/* ---- the cases ---- */

#define T_SOA	". 300 IN SOA ns. host. 1 3600 600 86400 300\n"
#define T_SPF1	" 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\n"
#define T_SPF	"example.com." T_SPF1 "mail.example.com." T_SPF1 \
		"sub.example.com. 300 IN A 192.0.2.80\n"
#define T_DMARC(d, v)	"_dmarc." d ". 300 IN TXT \"" v "\"\n"

#define T_HDRS	"To: Bob <bob@example.org>\nSubject: numbers\n" \
		"Date: Tue, 01 Dec 2026 10:00:00 +0000\n" \
		"Message-ID: <m1@example.com>\n"
#define T_MSG(from)	"From: " from "\n" T_HDRS "\nHello Bob.\n"

#define T_GOOD	"192.0.2.10"		/* SPF pass for example.com */
#define T_BAD	"198.51.100.7"		/* SPF fail for example.com */

/* Messages from the rspamd corpus, DKIM-signed with keys in t_keys. */
#define T_DKIM_PASS	"pass_none.eml"	/* d=cacophony.za.org, aligned */
#define T_DKIM_SUB	"onsubdomain_pass_relaxed.eml"	/* d=mom.za.org,
						 * From: my.mom.za.org */

struct t_case {
	const char	*label;
	const char	*conf;		/* [dmarc] lines */
	const char	*zone;		/* records besides T_SOA, T_SPF */
	const char	*msg;		/* message text, or NULL: file */
	const char	*file;		/* rspamd message */
	const char	*ip;
	const char	*mail_from;
	enum tg_verdict	 want;
	enum dmarc_res	 want_res;
	int		 want_dis;	/* enum dmarc_policy, -1: any */
	const char	*want_ar;	/* substring of our A-R, or NULL */
	const char	*want_log;	/* substring of the log, or NULL */
};

static const struct t_case t_cases[] = {
	{ "aligned pass via DKIM only", "", T_DMARC("cacophony.za.org",
	  "v=DMARC1; p=reject"), NULL, T_DKIM_PASS, T_GOOD,
	  "<x@nospf.example.net>", TG_ACCEPT, DMARC_RES_PASS,
	  DMARC_POLICY_NONE, "dmarc=pass (p=reject dis=none) "
	  "header.from=cacophony.za.org", "dkim_aligned=yes spf_aligned=no" },
	{ "aligned pass via SPF only", "", T_DMARC("example.com",
	  "v=DMARC1; p=reject"), T_MSG("Alice <alice@example.com>"), NULL,
	  T_GOOD, "<alice@example.com>", TG_ACCEPT, DMARC_RES_PASS,
	  DMARC_POLICY_NONE, "dmarc=pass (p=reject dis=none) "
	  "header.from=example.com", "dkim_aligned=no spf_aligned=yes" },
	{ "fail under p=reject is rejected", "", T_DMARC("example.com",
	  "v=DMARC1; p=reject"), T_MSG("Alice <alice@example.com>"), NULL,
	  T_BAD, "<alice@example.com>", TG_REJECT, DMARC_RES_FAIL,
	  DMARC_POLICY_REJECT, "dmarc=fail (p=reject dis=reject)",
	  "result=fail from=example.com policy_domain=example.com p=reject" },
	{ "relaxed SPF alignment of a subdomain passes", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("alice@example.com"), NULL, T_GOOD,
	  "<bounce@mail.example.com>", TG_ACCEPT, DMARC_RES_PASS,
	  DMARC_POLICY_NONE, NULL, "spf_aligned=yes" },
	{ "strict SPF alignment of a subdomain fails", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject; aspf=s"),
	  T_MSG("alice@example.com"), NULL, T_GOOD,
	  "<bounce@mail.example.com>", TG_REJECT, DMARC_RES_FAIL,
	  DMARC_POLICY_REJECT, NULL, "spf_aligned=no" },
	{ "relaxed DKIM alignment of a parent domain passes", "",
	  T_DMARC("my.mom.za.org", "v=DMARC1; p=reject"), NULL, T_DKIM_SUB,
	  T_GOOD, "<x@nospf.example.net>", TG_ACCEPT, DMARC_RES_PASS,
	  DMARC_POLICY_NONE, "header.from=my.mom.za.org",
	  "dkim_aligned=yes" },
	{ "strict DKIM alignment of a parent domain fails", "",
	  T_DMARC("my.mom.za.org", "v=DMARC1; p=reject; adkim=s"), NULL,
	  T_DKIM_SUB, T_GOOD, "<x@nospf.example.net>", TG_REJECT,
	  DMARC_RES_FAIL, DMARC_POLICY_REJECT, NULL, "dkim_aligned=no" },
	{ "sp= applies to a subdomain", "", T_DMARC("example.com",
	  "v=DMARC1; p=none; sp=reject"), T_MSG("a@sub.example.com"), NULL,
	  T_BAD, "<a@sub.example.com>", TG_REJECT, DMARC_RES_FAIL,
	  DMARC_POLICY_REJECT, "dmarc=fail (p=reject dis=reject) "
	  "header.from=sub.example.com",
	  "policy_domain=example.com sp=reject" },
	{ "sp=none spares a subdomain of p=reject", "", T_DMARC("example.com",
	  "v=DMARC1; p=reject; sp=none"), T_MSG("a@sub.example.com"), NULL,
	  T_BAD, "<a@sub.example.com>", TG_ACCEPT, DMARC_RES_FAIL,
	  DMARC_POLICY_NONE, "dmarc=fail (p=none dis=none)", "sp=none" },
	{ "np= applies to a non-existent subdomain", "",
	  T_DMARC("example.com", "v=DMARC1; p=none; np=reject"),
	  T_MSG("a@ghost.example.com"), NULL, T_BAD, "<a@example.com>",
	  TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT, NULL, "np=reject" },
	{ "np= does not apply to an existing subdomain", "",
	  T_DMARC("example.com", "v=DMARC1; p=none; np=reject"),
	  T_MSG("a@sub.example.com"), NULL, T_BAD, "<a@example.com>",
	  TG_ACCEPT, DMARC_RES_FAIL, DMARC_POLICY_NONE, NULL, "sp=none" },
	{ "pct=0 lowers reject to quarantine", "", T_DMARC("example.com",
	  "v=DMARC1; p=reject; pct=0"), T_MSG("alice@example.com"), NULL,
	  T_BAD, "<alice@example.com>", TG_QUARANTINE, DMARC_RES_FAIL,
	  DMARC_POLICY_QUARANTINE, "dmarc=fail (p=reject dis=quarantine)",
	  "reason=sampled_out" },
	{ "pct=0 lowers quarantine to none", "", T_DMARC("example.com",
	  "v=DMARC1; p=quarantine; pct=0"), T_MSG("alice@example.com"), NULL,
	  T_BAD, "<alice@example.com>", TG_ACCEPT, DMARC_RES_FAIL,
	  DMARC_POLICY_NONE, "(p=quarantine dis=none)", "reason=sampled_out" },
	{ "pct=100 always enforces", "", T_DMARC("example.com",
	  "v=DMARC1; p=reject; pct=100"), T_MSG("alice@example.com"), NULL,
	  T_BAD, "<alice@example.com>", TG_REJECT, DMARC_RES_FAIL,
	  DMARC_POLICY_REJECT, NULL, "reason=-" },
	{ "t=y (testing) works like pct=0", "", T_DMARC("example.com",
	  "v=DMARC1; p=reject; t=y"), T_MSG("alice@example.com"), NULL,
	  T_BAD, "<alice@example.com>", TG_QUARANTINE, DMARC_RES_FAIL,
	  DMARC_POLICY_QUARANTINE, NULL, "reason=policy_test_mode" },
	{ "no record is none", "", "", T_MSG("alice@example.com"), NULL, T_BAD,
	  "<alice@example.com>", TG_ACCEPT, DMARC_RES_NONE, -1,
	  "dmarc=none header.from=example.com", "reason=\"no record\"" },
	{ "a TXT record that is not DMARC is none", "", T_DMARC("example.com",
	  "v=spf1 -all"), T_MSG("alice@example.com"), NULL, T_BAD,
	  "<alice@example.com>", TG_ACCEPT, DMARC_RES_NONE, -1, NULL, NULL },
	{ "two DMARC records: none applies", "", T_DMARC("example.com",
	  "v=DMARC1; p=reject") T_DMARC("example.com", "v=DMARC1; p=none"),
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@example.com>",
	  TG_ACCEPT, DMARC_RES_NONE, -1, NULL, "several records" },
	{ "malformed record is permerror", "", T_DMARC("example.com",
	  "v=DMARC1; p=bogus"), T_MSG("alice@example.com"), NULL, T_BAD,
	  "<alice@example.com>", TG_ACCEPT, DMARC_RES_PERMERROR, -1,
	  "dmarc=permerror header.from=example.com", "malformed record" },
	{ "bad p= with a mailto: rua= reads as p=none", "",
	  T_DMARC("example.com", "v=DMARC1; p=bogus; "
	  "rua=mailto:d@example.com"), T_MSG("alice@example.com"), NULL, T_BAD,
	  "<alice@example.com>", TG_ACCEPT, DMARC_RES_FAIL, DMARC_POLICY_NONE,
	  "dmarc=fail (p=none dis=none)", NULL },
	{ "timeout is temperror, accepted by default", "",
	  "$TIMEOUT _dmarc.example.com.\n", T_MSG("alice@example.com"), NULL,
	  T_BAD, "<alice@example.com>", TG_ACCEPT, DMARC_RES_TEMPERROR, -1,
	  "dmarc=temperror header.from=example.com", "on_error=accept" },
	{ "timeout with on_error = tempfail", "on_error = tempfail\n",
	  "$TIMEOUT _dmarc.example.com.\n", T_MSG("alice@example.com"), NULL,
	  T_BAD, "<alice@example.com>", TG_TEMPFAIL, DMARC_RES_TEMPERROR, -1,
	  NULL, "on_error=tempfail" },
	{ "timeout at the organizational domain is temperror", "",
	  "$TIMEOUT _dmarc.example.com.\n", T_MSG("a@sub.example.com"), NULL,
	  T_BAD, "<a@sub.example.com>", TG_ACCEPT, DMARC_RES_TEMPERROR, -1,
	  NULL, NULL },
	{ "servfail is temperror", "", "$SERVFAIL _dmarc.example.com.\n",
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@example.com>",
	  TG_ACCEPT, DMARC_RES_TEMPERROR, -1, NULL, NULL },
	{ "authors of two domains: the strictest policy applies", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("a@example.com, b@example.org"), NULL, T_BAD,
	  "<a@example.com>", TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT,
	  "dmarc=fail (p=reject dis=reject) header.from=example.com",
	  "authors=2" },
	{ "a p=reject author after another domain is not shed", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject")
	  T_DMARC("example.org", "v=DMARC1; p=none"),
	  T_MSG("x@example.org, \"CEO\" <ceo@example.com>"), NULL, T_BAD,
	  "<x@example.org>", TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT,
	  "header.from=example.com", "from=example.com" },
	{ "an aligned pass does not cover an unaligned author", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject")
	  T_DMARC("bank.example", "v=DMARC1; p=quarantine"),
	  T_MSG("alice@example.com, ceo@bank.example"), NULL, T_GOOD,
	  "<alice@example.com>", TG_QUARANTINE, DMARC_RES_FAIL,
	  DMARC_POLICY_QUARANTINE, "dmarc=fail (p=quarantine "
	  "dis=quarantine) header.from=bank.example", NULL },
	{ "authors of two domains without policies: on_bad_from is not used",
	  "on_bad_from = reject\n", "", T_MSG("a@example.com, b@example.org"),
	  NULL, T_BAD, "<a@example.com>", TG_ACCEPT, DMARC_RES_NONE, -1,
	  "dmarc=none header.from=example.com", NULL },
	{ "more author domains than evaluated are refused", "", "",
	  T_MSG("a@d1.example, a@d2.example, a@d3.example, a@d4.example, "
	  "a@d5.example, a@d6.example, a@d7.example, a@d8.example, "
	  "a@d9.example, a@d10.example, a@example.com"), NULL, T_GOOD,
	  "<a@example.com>", TG_REJECT, DMARC_RES_PERMERROR, -1,
	  "dmarc=permerror (too many author domains)", NULL },
	{ "two authors of one domain are evaluated", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("A <a@example.com>, \"B, b\" <b@EXAMPLE.com>"), NULL, T_BAD,
	  "<a@example.com>", TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT,
	  "header.from=example.com", NULL },
	{ "missing From is permerror", "", "", "Subject: none\n\nbody\n", NULL,
	  T_BAD, "<alice@example.com>", TG_ACCEPT, DMARC_RES_PERMERROR, -1,
	  "dmarc=permerror (no From field)", NULL },
	{ "missing From with on_bad_from = reject", "on_bad_from = reject\n",
	  "", "Subject: none\n\nbody\n", NULL, T_BAD, "<alice@example.com>",
	  TG_REJECT, DMARC_RES_PERMERROR, -1, NULL, NULL },
	{ "two From fields: the second one's p=reject applies", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  "From: a@example.org\nFrom: ceo@example.com\n" T_HDRS "\nbody\n",
	  NULL, T_BAD, "<a@example.org>", TG_REJECT, DMARC_RES_FAIL,
	  DMARC_POLICY_REJECT, "dmarc=fail (p=reject dis=reject) "
	  "header.from=example.com", "authors=2" },
	{ "two From fields of one domain are one author domain", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  "From: a@example.com\nFrom: b@EXAMPLE.com\n" T_HDRS "\nbody\n",
	  NULL, T_GOOD, "<a@example.com>", TG_ACCEPT, DMARC_RES_PASS,
	  DMARC_POLICY_NONE, "header.from=example.com", "queries=1\n" },
	{ "unparsable From without any address is permerror", "", "",
	  T_MSG("Alice Example"), NULL, T_BAD, "<alice@example.com>",
	  TG_ACCEPT, DMARC_RES_PERMERROR, -1, "(address without a domain)",
	  NULL },
	{ "a domain literal is no author domain", "", "",
	  T_MSG("alice@[192.0.2.1]"), NULL, T_BAD, "<alice@example.com>",
	  TG_ACCEPT, DMARC_RES_PERMERROR, -1, "(domain literal)", NULL },
	{ "unparsable From: the address is read leniently", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("\"CEO\" <ceo@example.com>>"), NULL, T_BAD,
	  "<ceo@example.com>", TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT,
	  "dmarc=fail (p=reject dis=reject) header.from=example.com",
	  "from_parse=lenient" },
	{ "unparsable From: every address is read leniently", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("ceo@example.com, <x@example.org>>"), NULL, T_BAD,
	  "<x@example.org>", TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT,
	  "header.from=example.com", "authors=2 from_parse=lenient" },
	{ "unparsable From read leniently still passes when aligned", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("Alice <alice@example.com"), NULL, T_GOOD,
	  "<alice@example.com>", TG_ACCEPT, DMARC_RES_PASS, DMARC_POLICY_NONE,
	  "dmarc=pass (p=reject dis=none) header.from=example.com", NULL },
	{ "SPF temperror of the aligned MAIL FROM is temperror, not fail", "",
	  "$TIMEOUT spft.example.\n"
	  T_DMARC("spft.example", "v=DMARC1; p=reject"),
	  T_MSG("alice@spft.example"), NULL, T_BAD, "<alice@spft.example>",
	  TG_ACCEPT, DMARC_RES_TEMPERROR, -1,
	  "dmarc=temperror header.from=spft.example",
	  "reason=\"SPF temperror\"" },
	{ "SPF temperror with on_error = tempfail defers",
	  "on_error = tempfail\n", "$TIMEOUT mail.spft.example.\n"
	  T_DMARC("spft.example", "v=DMARC1; p=reject"),
	  T_MSG("alice@spft.example"), NULL, T_BAD,
	  "<b@mail.spft.example>", TG_TEMPFAIL, DMARC_RES_TEMPERROR, -1,
	  NULL, "on_error=tempfail" },
	{ "SPF temperror of an unaligned MAIL FROM does not spare a fail", "",
	  "$TIMEOUT spft.example.\n"
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@spft.example>",
	  TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT, NULL, NULL },
	{ "SPF temperror under strict aspf= of a subdomain is fail", "",
	  "$TIMEOUT mail.spft.example.\n"
	  T_DMARC("spft.example", "v=DMARC1; p=reject; aspf=s"),
	  T_MSG("alice@spft.example"), NULL, T_BAD,
	  "<b@mail.spft.example>", TG_REJECT, DMARC_RES_FAIL,
	  DMARC_POLICY_REJECT, NULL, NULL },
	{ "DKIM temperror of an aligned d= is temperror, not fail", "",
	  "$TIMEOUT dkim._domainkey.cacophony.za.org.\n"
	  T_DMARC("cacophony.za.org", "v=DMARC1; p=reject"), NULL,
	  T_DKIM_PASS, T_GOOD, "<x@nospf.example.net>", TG_ACCEPT,
	  DMARC_RES_TEMPERROR, -1, "dmarc=temperror "
	  "header.from=cacophony.za.org", "reason=\"DKIM temperror\"" },
	{ "tree walk: DKIM temperror of a relaxed-aligned d= is temperror",
	  "org_domain = tree_walk\n",
	  "$TIMEOUT testdkim._domainkey.mom.za.org.\n"
	  T_DMARC("my.mom.za.org", "v=DMARC1; p=reject")
	  T_DMARC("mom.za.org", "v=DMARC1; p=reject"), NULL, T_DKIM_SUB,
	  T_GOOD, "<x@nospf.example.net>", TG_ACCEPT, DMARC_RES_TEMPERROR, -1,
	  NULL, "reason=\"DKIM temperror\"" },
	{ "tree walk: SPF temperror of a relaxed-aligned MAIL FROM",
	  "org_domain = tree_walk\n", "$TIMEOUT mail.spft.example.\n"
	  T_DMARC("spft.example", "v=DMARC1; p=reject"),
	  T_MSG("alice@spft.example"), NULL, T_BAD,
	  "<b@mail.spft.example>", TG_ACCEPT, DMARC_RES_TEMPERROR, -1, NULL,
	  "reason=\"SPF temperror\"" },
	{ "p=quarantine goes to the MTA's hold queue", "",
	  T_DMARC("example.com", "v=DMARC1; p=quarantine"),
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@example.com>",
	  TG_QUARANTINE, DMARC_RES_FAIL, DMARC_POLICY_QUARANTINE, NULL, NULL },
	{ "quarantine_action = header marks the message",
	  "quarantine_action = header\n", T_DMARC("example.com",
	  "v=DMARC1; p=quarantine"), T_MSG("alice@example.com"), NULL, T_BAD,
	  "<alice@example.com>", TG_ACCEPT, DMARC_RES_FAIL,
	  DMARC_POLICY_QUARANTINE, NULL, NULL },
	{ "quarantine_action = none", "quarantine_action = none\n",
	  T_DMARC("example.com", "v=DMARC1; p=quarantine"),
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@example.com>",
	  TG_ACCEPT, DMARC_RES_FAIL, DMARC_POLICY_NONE, NULL,
	  "reason=local_policy" },
	{ "reject_action = quarantine", "reject_action = quarantine\n",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@example.com>",
	  TG_QUARANTINE, DMARC_RES_FAIL, DMARC_POLICY_QUARANTINE, NULL,
	  "reason=local_policy" },
	{ "reject_action = none", "reject_action = none\n",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@example.com>",
	  TG_ACCEPT, DMARC_RES_FAIL, DMARC_POLICY_NONE,
	  "(p=reject dis=none)", "reason=local_policy" },
	{ "no_enforce_domains covers subdomains",
	  "no_enforce_domains = other.example EXAMPLE.com\n",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("a@sub.example.com"), NULL, T_BAD, "<a@sub.example.com>",
	  TG_ACCEPT, DMARC_RES_FAIL, DMARC_POLICY_NONE, NULL,
	  "reason=local_policy" },
	{ "no_enforce_domains is not a suffix match",
	  "no_enforce_domains = ample.com\n",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@example.com>",
	  TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT, NULL, NULL },
	{ "trusted_forwarders", "trusted_forwarders = 198.51.100.0/24\n",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@example.com>",
	  TG_ACCEPT, DMARC_RES_FAIL, DMARC_POLICY_NONE, NULL,
	  "reason=trusted_forwarder" },
	{ "[spf] trusted_relays: a fail without SPF is not enforced",
	  "[spf]\ntrusted_relays = 198.51.100.0/24\n",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@example.com>",
	  TG_ACCEPT, DMARC_RES_FAIL, DMARC_POLICY_NONE,
	  "dmarc=fail (p=reject dis=none) header.from=example.com",
	  "reason=trusted_forwarder" },
	{ "[spf] trusted_relays covers only the relays",
	  "[spf]\ntrusted_relays = 203.0.113.0/24\n",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@example.com>",
	  TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT, NULL, NULL },
	{ "pct=0x reads as libopendmarc reads it: 0", "",
	  T_DMARC("example.com", "v=DMARC1; p=reject; pct=0x"),
	  T_MSG("alice@example.com"), NULL, T_BAD, "<alice@example.com>",
	  TG_QUARANTINE, DMARC_RES_FAIL, DMARC_POLICY_QUARANTINE,
	  "dmarc=fail (p=reject dis=quarantine)", "reason=sampled_out" },
	{ "PSL: no record between the From and the org domain", "",
	  T_DMARC("y.example.com", "v=DMARC1; p=reject"),
	  T_MSG("a@x.y.example.com"), NULL, T_BAD, "<a@example.com>",
	  TG_ACCEPT, DMARC_RES_NONE, -1, NULL, "queries=2" },
	{ "tree walk: the record of an intermediate domain",
	  "org_domain = tree_walk\n",
	  T_DMARC("y.example.com", "v=DMARC1; p=reject"),
	  T_MSG("a@x.y.example.com"), NULL, T_BAD, "<a@example.com>",
	  TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT, NULL,
	  "policy_domain=y.example.com sp=reject" },
	{ "tree walk: long names jump to 7 labels (8 queries at most)",
	  "org_domain = tree_walk\n",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("a@1.2.3.4.5.6.7.8.example.com"), NULL, T_BAD,
	  "<a@example.com>", TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT,
	  NULL, "queries=7" },
	{ "tree walk: a public suffix domain's policy (psd=y)",
	  "org_domain = tree_walk\n",
	  T_DMARC("com", "v=DMARC1; p=reject; psd=y"),
	  T_MSG("a@brand.com"), NULL, T_BAD, "<a@brand.com>", TG_REJECT,
	  DMARC_RES_FAIL, DMARC_POLICY_REJECT, NULL, "policy_domain=com" },
	{ "tree walk: relaxed alignment below a psd=y domain",
	  "org_domain = tree_walk\n",
	  T_DMARC("com", "v=DMARC1; p=reject; psd=y")
	  T_DMARC("brand.com", "v=DMARC1; p=reject")
	  "brand.com. 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\n",
	  T_MSG("a@mail.brand.com"), NULL, T_GOOD, "<b@brand.com>", TG_ACCEPT,
	  DMARC_RES_PASS, DMARC_POLICY_NONE, NULL, "spf_aligned=yes" },
	{ "tree walk: no alignment across a psd=y domain",
	  "org_domain = tree_walk\n",
	  T_DMARC("com", "v=DMARC1; p=reject; psd=y")
	  "other.com. 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\n",
	  T_MSG("a@brand.com"), NULL, T_GOOD, "<b@other.com>", TG_REJECT,
	  DMARC_RES_FAIL, DMARC_POLICY_REJECT, NULL, "spf_aligned=no" },
	{ "tree walk: relaxed alignment reuses the discovery's answers",
	  "org_domain = tree_walk\n",
	  T_DMARC("example.com", "v=DMARC1; p=reject"),
	  T_MSG("a@x.y.example.com"), NULL, T_GOOD, "<b@example.com>",
	  TG_ACCEPT, DMARC_RES_PASS, DMARC_POLICY_NONE, NULL,
	  "spf_aligned=yes reason=- queries=4\n" },
	{ "tree walk: an identical DKIM domain needs no walk",
	  "org_domain = tree_walk\n", T_DMARC("cacophony.za.org",
	  "v=DMARC1; p=reject"), NULL, T_DKIM_PASS, T_GOOD,
	  "<x@mail.example.com>", TG_ACCEPT, DMARC_RES_PASS,
	  DMARC_POLICY_NONE, NULL, "dkim_aligned=yes spf_aligned=no "
	  "reason=- queries=1\n" },
	{ "tree walk: alignment walks stop at the message's query budget",
	  "org_domain = tree_walk\n",
	  T_DMARC("brand.example", "v=DMARC1; p=reject") "mail.brand.example."
	  T_SPF1, T_MSG("a@1.2.3.4.5.6.7.8.d1.example, "
	  "a@1.2.3.4.5.6.7.8.d2.example, a@1.2.3.4.5.6.7.8.d3.example, "
	  "a@y.brand.example"), NULL, T_GOOD, "<b@mail.brand.example>",
	  TG_REJECT, DMARC_RES_FAIL, DMARC_POLICY_REJECT,
	  "header.from=y.brand.example",
	  "tree walk of mail.brand.example: stopped at 24 queries" },
	{ "tree walk: within the budget the same author passes",
	  "org_domain = tree_walk\n",
	  T_DMARC("brand.example", "v=DMARC1; p=reject") "mail.brand.example."
	  T_SPF1, T_MSG("a@y.brand.example, a@1.2.3.4.5.6.7.8.d1.example"),
	  NULL, T_GOOD, "<b@mail.brand.example>", TG_ACCEPT, DMARC_RES_NONE, -1,
	  "dmarc=none header.from=1.2.3.4.5.6.7.8.d1.example",
	  "author domain y.brand.example: result=pass" },
	{ "tree walk: timeout is temperror", "org_domain = tree_walk\n",
	  "$TIMEOUT _dmarc.y.example.com.\n", T_MSG("a@x.y.example.com"), NULL,
	  T_BAD, "<a@example.com>", TG_ACCEPT, DMARC_RES_TEMPERROR, -1, NULL,
	  NULL },
	{ "outbound mail is not evaluated", "", T_DMARC("example.com",
	  "v=DMARC1; p=reject"), T_MSG("alice@example.com"), NULL,
	  "127.0.0.1", "<alice@example.com>", TG_ACCEPT, DMARC_RES_NONE, -1,
	  "", "not evaluated: outbound mail" },
};

/* t_case_msg - the case's message text (caller frees) */
static char *
t_case_msg(const struct t_case *c)
{
	char	*path, *text;

	if (c->msg != NULL)
		return tg_strdup(c->msg);
	path = tg_printf_dup("%s/messages/%s", T_RSPAMD, c->file);
	if ((text = t_slurp(path)) == NULL)
		fail_msg("%s: cannot read %s", c->label, path);
	free(path);
	return text;
}

/* t_case_check - the run against what the case wants */
static void
t_case_check(const struct t_case *c, const struct t_run *r)
{
	if (r->verdict != c->want || r->res.res != c->want_res ||
	    (c->want_dis >= 0 && (int)r->res.disposition != c->want_dis) ||
	    (c->want_ar != NULL && (*c->want_ar == '\0' ?
	    strstr(r->authres, "dmarc=") != NULL :
	    strstr(r->authres, c->want_ar) == NULL)) ||
	    (c->want_log != NULL && strstr(tg_test_log(), c->want_log) == NULL))
		fail_msg("%s: verdict %s (want %s) res %s (want %s) dis %s "
		    "(want %d)\nA-R: %s\nlog:\n%s", c->label,
		    tg_verdict_name(r->verdict), tg_verdict_name(c->want),
		    dmarc_res_name(r->res.res), dmarc_res_name(c->want_res),
		    dmarc_policy_name(r->res.disposition), c->want_dis,
		    r->authres, tg_test_log());
}

/* test_cases - the table through the pipeline */
static void
test_cases(void **state)
{
	const struct t_case	*c;
	struct t_run		 r;
	size_t			 i;
	char			*zone, *msg;

	for (i = 0; i < TG_NITEMS(t_cases); i++) {
		c = &t_cases[i];
		zone = tg_printf_dup("%s%s%s%s", T_SOA, T_SPF, t_keys,
		    c->zone);
		t_pipeline("spf dkim dmarc", c->conf, zone);
		msg = t_case_msg(c);
		t_run(msg, c->ip, c->mail_from, &r);
		t_case_check(c, &r);
		t_run_free(&r);
		t_pipeline_done();
		free(msg);
		free(zone);
	}
}

/* test_enforcement_details - reply text, quarantine, header, decision */
static void
test_enforcement_details(void **state)
{
	struct t_run	 r;
	char		*zone;

	zone = tg_printf_dup("%s%s%s", T_SOA, T_SPF, T_DMARC("example.com",
	    "v=DMARC1; p=reject; sp=quarantine"));
	t_pipeline("spf dkim dmarc", "", zone);
	t_run(T_MSG("alice@example.com"), T_BAD, "<alice@example.com>", &r);
	assert_string_equal(r.reply, "550 5.7.1 message rejected by the "
	    "DMARC policy of example.com");
	assert_non_null(strstr(r.decision,
	    " dmarc=\"fail p=reject dis=reject\" action=reject"));
	assert_string_equal(r.header_from, "example.com");
	assert_string_equal(r.policy_domain, "example.com");
	assert_true(r.res.evaluated);
	t_run_free(&r);
	t_run(T_MSG("a@sub.example.com"), T_BAD, "<a@example.com>", &r);
	assert_int_equal(r.verdict, TG_QUARANTINE);
	assert_string_equal(r.quarantine, "dmarc");
	assert_non_null(strstr(r.decision, " action=quarantine "
	    "quarantine=dmarc"));
	t_run_free(&r);
	t_pipeline_done();
	t_pipeline("spf dkim dmarc", "quarantine_action = header\n", zone);
	t_run(T_MSG("a@sub.example.com"), T_BAD, "<a@example.com>", &r);
	assert_int_equal(r.verdict, TG_ACCEPT);
	assert_null(r.quarantine);
	assert_string_equal(r.added, "X-DMARC-Quarantine: yes (DMARC policy "
	    "of sub.example.com)\n");
	t_run_free(&r);
	t_pipeline_done();
	t_pipeline("spf dkim dmarc", "on_error = tempfail\n",
	    T_SOA "$TIMEOUT _dmarc.example.com.\n");
	t_run(T_MSG("alice@example.com"), T_BAD, "<alice@example.com>", &r);
	assert_int_equal(r.verdict, TG_TEMPFAIL);
	assert_string_equal(r.reply, "451 4.7.1 DMARC policy of example.com "
	    "cannot be checked now, try again later");
	t_run_free(&r);
	t_pipeline_done();
	free(zone);
}

/* test_pct_sampling - pct=50 samples: both outcomes over many messages */
static void
test_pct_sampling(void **state)
{
	struct t_run	 r;
	size_t		 i, nrej = 0, nquar = 0;

	t_pipeline("spf dmarc", "", T_SOA T_SPF T_DMARC("example.com",
	    "v=DMARC1; p=reject; pct=50"));
	for (i = 0; i < 200; i++) {
		t_run(T_MSG("alice@example.com"), T_BAD, "<alice@example.com>",
		    &r);
		nrej += r.verdict == TG_REJECT;
		nquar += r.verdict == TG_QUARANTINE;
		t_run_free(&r);
	}
	t_pipeline_done();
	/* The chance of fewer than 40 of either in 200 is below 1e-15. */
	assert_int_equal(nrej + nquar, 200);
	assert_true(nrej > 40 && nquar > 40);
}

/* test_from_parser - the RFC5322.From author domain */
static void
test_from_parser(void **state)
{
	static const struct {
		const char	*value;
		enum tg_status	 want;
		const char	*domain;
	} cases[] = {
		{ " Alice <alice@Example.COM>\r\n", TG_OK, "example.com" },
		{ " alice@example.com.", TG_OK, "example.com" },
		{ " \"a@evil.example\" <alice@example.com>", TG_OK,
		  "example.com" },
		{ " (a@evil.example) alice @ example.com", TG_OK,
		  "example.com" },
		{ " Friends: a@example.com, b@example.com;", TG_OK,
		  "example.com" },
		{ " <@relay.example:alice@example.com>", TG_OK, "example.com" },
		{ " =?utf-8?q?J=C3=B6rg?= <j@b\xc3\xbc" "cher.example>", TG_OK,
		  "b\xc3\xbc" "cher.example" },
		{ " undisclosed-recipients:;", TG_NOTFOUND, "" },
		{ " ", TG_NOTFOUND, "" },
		{ " a@example.com, b@example.org", TG_PERM, "" },
		{ " alice@[192.0.2.1]", TG_PERM, "" },
		{ " alice", TG_PERM, "" },
		{ " alice@", TG_PERM, "" },
		{ " alice@exa mple..com", TG_PERM, "" },
		{ " \"unterminated <a@example.com>", TG_PERM, "" },
		{ " (unterminated a@example.com", TG_PERM, "" },
		{ " <a@example.com", TG_PERM, "" },
		{ " a@example.com>", TG_PERM, "" },
		{ " <a@example.com> <b@example.com>", TG_PERM, "" },
		{ " a@exa;mple.com", TG_PERM, "" },
	};
	char		 out[DMARC_DOMAIN_MAX + 1];
	const char	*why;
	size_t		 i;

	for (i = 0; i < TG_NITEMS(cases); i++) {
		if (dmarc_from_domain(cases[i].value, out, &why) !=
		    cases[i].want || strcmp(out, cases[i].domain) != 0)
			fail_msg("from %zu \"%s\": got \"%s\" (%s)", i,
			    cases[i].value, out, why != NULL ? why : "ok");
		assert_true(cases[i].want == TG_OK ? why == NULL :
		    why != NULL);
	}
}

/* test_from_lenient - author domains of values the strict reader refuses */
static void
test_from_lenient(void **state)
{
	static const struct {
		const char	*value;
		const char	*domains;	/* space-separated; "" none */
	} cases[] = {
		{ " \"CEO\" <ceo@Bank.example>>", "bank.example" },
		{ " ceo@bank.example, <x@evil.example>>", "bank.example "
		  "evil.example" },
		{ " \"ceo@bank.example\" <junk>>", "bank.example" },
		{ " <<<><joe@joe.com>>>", "joe.com" },
		{ " (ceo@bank.example", "bank.example" },
		{ " a@b@bank.example.>", "bank.example" },
		{ " <@relay.example:a@bank.example", "bank.example" },
		{ " Alice Example>", "" },
		{ " alice@[192.0.2.1]>", "" },
		{ " @bank.example>", "" },
		{ " alice@bad..example>", "" },
	};
	struct dmarc_authors	 a;
	struct tg_buf		 b;
	const char		*why;
	size_t			 i, j;

	for (i = 0; i < TG_NITEMS(cases); i++) {
		memset(&a, 0, sizeof(a));
		assert_int_not_equal(dmarc_from_domains(cases[i].value, &a,
		    &why), TG_OK);
		assert_int_equal(a.n, 0);
		assert_int_equal(dmarc_from_lenient(cases[i].value, &a),
		    *cases[i].domains != '\0' ? TG_OK : TG_NOTFOUND);
		tg_buf_init(&b);
		for (j = 0; j < a.n; j++)
			tg_buf_printf(&b, "%s%s", j > 0 ? " " : "",
			    a.domain[j]);
		if (strcmp(tg_buf_cstr(&b), cases[i].domains) != 0)
			fail_msg("lenient \"%s\": \"%s\", want \"%s\"",
			    cases[i].value, tg_buf_cstr(&b), cases[i].domains);
		assert_true(a.lenient == (a.n > 0));
		tg_buf_fini(&b);
	}
	/* The strict reader keeps each domain once, and at most the limit. */
	memset(&a, 0, sizeof(a));
	assert_int_equal(dmarc_from_domains(" a@x.example, B@X.example, "
	    "c@y.example", &a, &why), TG_OK);
	assert_int_equal(a.n, 2);
	assert_false(a.too_many || a.lenient);
	assert_int_equal(dmarc_from_domains(" a@1.example, a@2.example, "
	    "a@3.example, a@4.example, a@5.example, a@6.example, a@7.example, "
	    "a@8.example, a@9.example", &a, &why), TG_OK);
	assert_int_equal(a.n, DMARC_AUTHORS_MAX);
	assert_true(a.too_many);
	/* A refused value leaves what earlier fields gave. */
	memset(&a, 0, sizeof(a));
	assert_int_equal(dmarc_from_domains(" a@x.example", &a, &why), TG_OK);
	assert_int_equal(dmarc_from_domains(" b@y.example, <", &a, &why),
	    TG_PERM);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.domain[0], "x.example");
}

/* test_record_tags - the tags we read beside libopendmarc */
static void
test_record_tags(void **state)
{
	struct dmarc_record	rec;

	assert_int_equal(dmarc_record_parse("v=DMARC1; p=quarantine; "
	    "np=reject; psd=y; t=y; pct=20; rua=mailto:r@example.com; fo=1",
	    &rec), TG_OK);
	assert_int_equal(rec.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(rec.sp, DMARC_POLICY_QUARANTINE);
	assert_int_equal(rec.np, DMARC_POLICY_REJECT);
	assert_true(rec.has_np && !rec.has_sp && rec.testing);
	assert_int_equal(rec.psd, 'y');
	assert_int_equal(rec.pct, 20);
	assert_string_equal(rec.rua, "mailto:r@example.com");
	assert_string_equal(rec.fo, "1");
	dmarc_record_fini(&rec);
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject; sp=none; "
	    "np=bogus; adkim=s", &rec), TG_OK);
	assert_int_equal(rec.sp, DMARC_POLICY_NONE);
	assert_int_equal(rec.np, DMARC_POLICY_NONE);	/* from sp */
	assert_true(rec.adkim_strict && !rec.aspf_strict && !rec.has_np);
	assert_int_equal(rec.pct, -1);
	dmarc_record_fini(&rec);
	/* pct= as libopendmarc reads it; what it refuses, the record too. */
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject; pct=50x",
	    &rec), TG_OK);
	assert_int_equal(rec.pct, 50);
	dmarc_record_fini(&rec);
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject; pct=101",
	    &rec), TG_PERM);
	dmarc_record_fini(&rec);
	assert_int_equal(dmarc_record_parse("v=DMARC1; sp=x; adkim=s; "
	    "rua=mailto:r@example.com", &rec), TG_OK);
	assert_true(rec.p_fallback && rec.adkim_strict);
	assert_int_equal(rec.p, DMARC_POLICY_NONE);
	assert_int_equal(rec.sp, DMARC_POLICY_NONE);
	dmarc_record_fini(&rec);
	/* Only p= and sp= fall back; a bad adkim= stays unusable. */
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=none; adkim=x; "
	    "rua=mailto:r@example.com", &rec), TG_PERM);
	dmarc_record_fini(&rec);
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=bogus; "
	    "rua=https://example.com/r", &rec), TG_PERM);
	dmarc_record_fini(&rec);
	assert_true(dmarc_is_record("v=DMARC1; p=none"));
	assert_true(dmarc_is_record(" v = DMARC1 ;p=none"));
	assert_false(dmarc_is_record("p=none; v=DMARC1"));
	assert_false(dmarc_is_record("v=DMARC10; p=none"));
	assert_false(dmarc_is_record("v=dmarc1; p=none"));
}

/* t_rmtree - remove a scratch directory and the files in it */
static void
t_rmtree(const char *dir)
{
	struct dirent	*e;
	DIR		*d;
	char		*p;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		p = tg_printf_dup("%s/%s", dir, e->d_name);
		if (unlink(p) == -1)
			t_rmtree(p);
		free(p);
	}
	(void)closedir(d);
	(void)rmdir(dir);
}

/* t_init_fails - start-up with these [dmarc] lines fails with that error */
static void
t_init_fails(const char *dmarc_conf, const char *want)
{
	struct tg_pipeline_opts	 o;
	struct tg_err		 err;
	char			*text;

	text = tg_printf_dup("[core]\nmodules = dmarc\n[dmarc]\n"
	    "psl_file = %s/public-suffixes.dat\n%s", T_RSPAMD, dmarc_conf);
	memset(&o, 0, sizeof(o));
	o.conf_text = text;
	o.force_offline = true;
	assert_int_not_equal(tg_pipeline_init(&o, &err), TG_OK);
	if (strstr(err.text, want) == NULL)
		fail_msg("init error \"%s\", want \"%s\"", err.text, want);
	tg_pipeline_fini();
	free(text);
}

/* test_bad_settings - settings that stop start-up */
static void
test_bad_settings(void **state)
{
	t_init_fails("psl_file = /nonexistent/psl.dat\n",
	    "[dmarc] psl_file /nonexistent/psl.dat");
	t_init_fails("trusted_forwarders = 192.0.2.300\n",
	    "[dmarc] trusted_forwarders");
	t_init_fails("org_domain = dns\n", "org_domain");
}

/* test_reports - evaluated messages reach the report store */
static void
test_reports(void **state)
{
	const struct dmarc_report_conf	*rc;
	struct dmarc_report_store	*st;
	struct tg_err			 err;
	struct t_run			 r;
	char				*dir, *conf;
	char				 dom[DMARC_REPORT_MAX_DOMAIN + 1];
	size_t				 n = 0;

	dir = tg_printf_dup("%s/reports", t_dir);
	conf = tg_printf_dup("report_dir = %s\n", dir);
	t_pipeline("spf dkim dmarc", conf, T_SOA T_SPF T_DMARC("example.com",
	    "v=DMARC1; p=reject; rua=mailto:agg@example.com"));
	rc = dmarc_report_settings();
	assert_string_equal(rc->dir, dir);
	assert_string_equal(rc->org_name, "mx.test");
	assert_string_equal(rc->email, "postmaster@mx.test");
	assert_string_equal(rc->sendmail, "/usr/sbin/sendmail");
	assert_int_equal(rc->keep, 7 * 86400);
	t_run(T_MSG("alice@example.com"), T_BAD, "<alice@example.com>", &r);
	assert_int_equal(r.verdict, TG_REJECT);
	t_run_free(&r);
	t_run(T_MSG("alice@example.com"), T_GOOD, "<alice@example.com>", &r);
	assert_int_equal(r.res.res, DMARC_RES_PASS);
	t_run_free(&r);
	/* No policy, nothing to report to. */
	t_run(T_MSG("a@example.org"), T_BAD, "<a@example.org>", &r);
	assert_int_equal(r.res.res, DMARC_RES_NONE);
	t_run_free(&r);
	assert_null(strstr(tg_test_log(), "report store:"));
	t_pipeline_done();
	assert_non_null(st = dmarc_report_open(dir, true, &err));
	assert_int_equal(dmarc_report_count(st, &n, &err), TG_OK);
	assert_int_equal(n, 2);
	assert_int_equal(dmarc_report_next_domain(st, "", dom, &err), TG_OK);
	assert_string_equal(dom, "example.com");
	st = dmarc_report_close(st);
	free(conf);
	/* A store that cannot be made stops start-up. */
	conf = tg_printf_dup("report_dir = %s/zone/x\n", t_dir);
	t_init_fails(conf, "[dmarc] report_dir");
	free(conf);
	t_rmtree(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_parser),
		cmocka_unit_test(test_from_lenient),
		cmocka_unit_test(test_record_tags),
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_enforcement_details),
		cmocka_unit_test(test_pct_sampling),
		cmocka_unit_test(test_reports),
		cmocka_unit_test(test_bad_settings),
		cmocka_unit_test(test_rspamd),
		cmocka_unit_test(test_opendmarc_records),
		cmocka_unit_test(test_opendmarc_alignment),
		cmocka_unit_test(test_opendmarc_from),
		cmocka_unit_test(test_opendmarc_org),
	};
	int	rc;

	(void)snprintf(t_dir, sizeof(t_dir), "/tmp/dmarc_test.XXXXXX");
	if (mkdtemp(t_dir) == NULL)
		return 1;
	tg_test_log_init();
	t_keys = t_rspamd_zone(true);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(t_keys);
	tg_test_log_fini();
	t_rmtree(t_dir);
	return rc;
}
