/*
 * quota_test - the quota check's decisions on the real embedded store
 * (and a Redis URL nobody listens on, for store failures).  Each step
 * of a table is one request and the action and log note it must get;
 * the steps of a table run in order on one store.
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

static char		 qt_dir[] = "/tmp/quota_test.XXXXXX";
static struct tg_store	*qt_store;
static struct tg_store_async *qt_async;

/*
 * Two limits on the tenant: 3 messages and 5 recipients an hour, and a
 * per-message cap of 4 recipients.  lax.example has one limit that is
 * not counted when the store fails (on_error=accept).
 */
static const char qt_rules[] =
    "limit tenant_msgs count=messages key=sender_domain window=1h max=3 "
    "on_error=tempfail\n"
    "limit tenant_rcpts count=recipients key=sender_domain window=1h max=5 "
    "on_error=tempfail\n"
    "limit rcpt_cap count=recipients key=message max=4 action=reject\n"
    "exempt boss@example.org\n";

/* qt_start - load conf (plus extra lines), open the store, init */
static enum tg_status
qt_start(const char *extra, const char *url, struct tg_err *err)
{
	struct tg_pipeline_opts	 opts;
	struct tg_store_conf	 sc;
	struct pd_env		 env;
	enum tg_status		 st;
	char			*text;

	text = tg_printf_dup("[dns]\noffline = yes\n[store]\npath = %s/store\n"
	    "%s%s%s\n[policyd]\nchecks = quota\n[quota]\nrules_file = "
	    "%s/rules\n%s", qt_dir, url != NULL ? "backend = redis\nurl = " :
	    "", url != NULL ? url : "", url != NULL ? "\ntimeout = 1s\n" : "",
	    qt_dir, extra);
	memset(&opts, 0, sizeof(opts));
	opts.conf_text = text;
	st = tg_pipeline_load(&opts, err);
	free(text);
	if (st != TG_OK)
		return st;
	tg_store_conf_loaded(&sc);
	if ((qt_store = tg_store_open(&sc, err)) == NULL)
		return TG_PERM;
	env.store = qt_store;
	env.astore = qt_async = pd_test_async(qt_store);
	env.dns = NULL;
	return pd_checks_init(&env, err);
}

/* qt_stop - undo qt_start, forget the counters */
static void
qt_stop(void)
{
	char	cmd[128];

	qt_async = tg_store_async_free(qt_async);
	pd_checks_fini();
	qt_store = tg_store_close(qt_store);
	tg_pipeline_fini();
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s/store'", qt_dir);
	if (system(cmd) != 0)
		fail_msg("cannot remove the store");
}

/* setup - a scratch dir with the rules */
static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(qt_dir) == NULL || !tg_test_write(qt_dir, "rules",
	    qt_rules))
		return -1;
	return 0;
}

/* teardown - remove the scratch dir */
static int
teardown(void **state)
{
	(void)state;
	return tg_test_rmtree(qt_dir) ? 0 : -1;
}

struct qt_step {
	const char	*label;
	const char	*state;		/* protocol_state */
	const char	*sender;
	int		 nrcpt;		/* recipient_count; -1: none sent */
	const char	*ip;		/* NULL: 127.0.0.1 (outbound) */
	const char	*want;		/* action, or its start */
	const char	*want_note;	/* substring of the log note */
};

/* qt_run - one request through the enabled checks */
static void
qt_run(const struct qt_step *s)
{
	struct pd_request	 req;
	struct tg_buf		 in, action, note;
	struct tg_err		 err;
	size_t			 used;

	tg_buf_init(&in);
	tg_buf_init(&action);
	tg_buf_init(&note);
	tg_buf_printf(&in, "request=smtpd_access_policy\nprotocol_state=%s\n"
	    "client_address=%s\nsender=%s\nrecipient=r@example.com\n",
	    s->state, s->ip != NULL ? s->ip : "127.0.0.1", s->sender);
	if (s->nrcpt >= 0)
		tg_buf_printf(&in, "recipient_count=%d\n", s->nrcpt);
	tg_buf_puts(&in, "\n");
	assert_int_equal(pd_proto_parse(in.data, in.len, &used, &req),
	    PD_PARSE_DONE);
	if (pd_test_checks(&req, &action, &note, &err) != TG_OK)
		fail_msg("%s: check failed: %s", s->label, err.text);
	if (strncmp(tg_buf_cstr(&action), s->want, strlen(s->want)) != 0)
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

#define MSG_OVER "DEFER 4.7.1 sending limit tenant_msgs exceeded"
#define RCPT_OVER "DEFER 4.7.1 sending limit tenant_rcpts exceeded"

static const struct qt_step steps[] = {
	{ "RCPT with room", "RCPT", "a@example.org", -1, NULL, "DUNNO",
	  "quota=room limits=3" },
	{ "RCPT reserves nothing", "RCPT", "a@example.org", -1, NULL,
	  "DUNNO", "quota=room" },
	{ "DATA is not charged", "DATA", "a@example.org", 2, NULL, "DUNNO",
	  "quota=skip(state)" },
	{ "EOM charges recipient_count", "END-OF-MESSAGE", "a@example.org", 2,
	  NULL, "DUNNO", "quota=ok limits=3" },
	{ "rcpts used 2/5 after the first", "END-OF-MESSAGE",
	  "b@example.org", 2, NULL, "DUNNO", "used=2/3" },
	/* 4 of 5 recipients used: 2 more do not fit, and the message
	 * limit (2/3 used, room for one) must not be charged either. */
	{ "rcpt limit refuses, all or nothing", "END-OF-MESSAGE",
	  "c@example.org", 2, NULL, RCPT_OVER,
	  "quota=defer limit=tenant_rcpts" },
	{ "message limit still has room for one", "END-OF-MESSAGE",
	  "c@example.org", 1, NULL, "DUNNO", "quota=ok" },
	{ "RCPT sees no room", "RCPT", "d@example.org", -1, NULL,
	  "DEFER_IF_PERMIT 4.7.1 sending limit", "quota=defer" },
	{ "EOM now over the message limit", "END-OF-MESSAGE", "d@example.org",
	  1, NULL, MSG_OVER, "limit=tenant_msgs" },
	{ "per-message cap rejects", "END-OF-MESSAGE", "x@other.example", 5,
	  NULL, "REJECT 5.7.1 limit rcpt_cap: at most 4", "quota=reject" },
	{ "other tenant unaffected", "END-OF-MESSAGE", "x@other.example", 1,
	  NULL, "DUNNO", "quota=ok" },
	{ "exempt sender", "END-OF-MESSAGE", "boss@example.org", 1, NULL,
	  "DUNNO", "quota=exempt" },
	{ "inbound mail not counted", "END-OF-MESSAGE", "x@other.example", 1,
	  "192.0.2.1", "DUNNO", "quota=none mail=inbound" },
};

/* test_steps - the table, in order, on one store */
static void
test_steps(void **state)
{
	struct tg_err	 err;
	size_t		 i;

	(void)state;
	if (qt_start("", NULL, &err) != TG_OK)
		fail_msg("start: %s", err.text);
	for (i = 0; i < TG_NITEMS(steps); i++)
		qt_run(&steps[i]);
	qt_stop();
}

/*
 * test_rejected_free - mail refused before END-OF-MESSAGE (by this
 * check at RCPT, or any other stage) sends no END-OF-MESSAGE and so
 * never reserves: any number of RCPT looks leave the full quota.
 */
static void
test_rejected_free(void **state)
{
	static const struct qt_step look = { "RCPT look", "RCPT",
	    "a@example.org", -1, NULL, "DUNNO", "quota=room" };
	static const struct qt_step eom = { "EOM fits", "END-OF-MESSAGE",
	    "a@example.org", 1, NULL, "DUNNO", "quota=ok" };
	static const struct qt_step over = { "4th is over", "END-OF-MESSAGE",
	    "a@example.org", 1, NULL, MSG_OVER, "quota=defer" };
	struct tg_err	 err;
	int		 i;

	(void)state;
	if (qt_start("", NULL, &err) != TG_OK)
		fail_msg("start: %s", err.text);
	for (i = 0; i < 20; i++)
		qt_run(&look);
	for (i = 0; i < 3; i++)
		qt_run(&eom);
	qt_run(&over);
	qt_stop();
}

/* test_on_error - a dead store does what each rule says */
static void
test_on_error(void **state)
{
	static const struct qt_step strict[] = {
		{ "tempfail rule at RCPT", "RCPT", "a@example.org", -1, NULL,
		  "DEFER_IF_PERMIT 4.7.1 sending quota cannot be checked",
		  "quota=tempfail limit=tenant_msgs" },
		{ "tempfail rule at EOM", "END-OF-MESSAGE", "a@example.org", 1,
		  NULL, "DEFER_IF_PERMIT 4.7.1 sending quota cannot",
		  "quota=tempfail" },
	};
	static const struct qt_step lax = { "accept rule", "END-OF-MESSAGE",
	    "a@example.org", 1, NULL, "DUNNO", "store=failed" };
	struct tg_err	 err;
	FILE		*fp;
	char		*path;
	size_t		 i;

	(void)state;
	/* Port 1 on loopback: nothing listens, connections are refused. */
	if (qt_start("", "redis://127.0.0.1:1/0", &err) != TG_OK)
		fail_msg("start: %s", err.text);
	for (i = 0; i < TG_NITEMS(strict); i++)
		qt_run(&strict[i]);
	qt_stop();
	path = tg_printf_dup("%s/lax", qt_dir);
	if ((fp = fopen(path, "w")) == NULL)
		fail_msg("cannot write %s", path);
	fputs("limit lax count=messages key=sender_domain window=1h max=3 "
	    "on_error=accept\n", fp);
	fclose(fp);
	free(path);
	path = tg_printf_dup("rules_file = %s/lax\n", qt_dir);
	if (qt_start(path, "redis://127.0.0.1:1/0", &err) != TG_OK)
		fail_msg("start: %s", err.text);
	free(path);
	qt_run(&lax);
	qt_stop();
}

/* test_bad_conf - a missing rules file is a start-up error */
static void
test_bad_conf(void **state)
{
	struct tg_err	err;

	(void)state;
	assert_int_equal(qt_start("rules_file =\n", NULL, &err), TG_PERM);
	assert_non_null(strstr(err.text, "rules_file"));
	qt_stop();
	assert_int_equal(qt_start("outbound_networks = 1.2.3/99\n", NULL,
	    &err), TG_PERM);
	assert_non_null(strstr(err.text, "outbound_networks"));
	qt_stop();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_rejected_free),
		cmocka_unit_test(test_on_error),
		cmocka_unit_test(test_bad_conf),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
