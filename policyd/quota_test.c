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
#include "tollgate/log.h"
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

/* qt_write - a rules file in the scratch dir */
static void
qt_write(const char *name, const char *text)
{
	if (!tg_test_write(qt_dir, name, text))
		fail_msg("cannot write %s", name);
}

/* qt_used - the counter of key now, and whether it is a local count */
static uint64_t
qt_used(const char *key, bool *approximate)
{
	struct tg_store_usage	u;
	struct tg_err		err;

	if (tg_store_usage(qt_store, key, 3600000, 100, &u, &err) != TG_OK)
		fail_msg("usage %s: %s", key, err.text);
	if (approximate != NULL)
		*approximate = u.approximate;
	return u.used;
}

/*
 * test_local_unwanted - Redis down, [store] on_error = local: a rule
 * with on_error = accept lets the message go but never keeps the local
 * count (as tg_quota_reserve does); at RCPT a tempfail rule does not
 * answer from a local count either.
 */
static void
test_local_unwanted(void **state)
{
	static const struct qt_step eom = { "accept rule, local count",
	    "END-OF-MESSAGE", "a@example.org", 1, NULL, "DUNNO",
	    "store=failed" };
	static const struct qt_step look = { "tempfail rule, local count",
	    "RCPT", "a@example.org", -1, NULL,
	    "DEFER_IF_PERMIT 4.7.1 sending quota cannot be checked",
	    "quota=tempfail limit=strict" };
	static const struct qt_step look_lax = { "accept rule at RCPT",
	    "RCPT", "b@example.org", -1, NULL, "DUNNO", "store=failed" };
	struct tg_err	 err;
	bool		 approx = false;
	char		*extra;
	int		 i;

	(void)state;
	qt_write("lax", "limit lax count=messages key=sender_domain "
	    "window=1h max=3 on_error=accept\n");
	qt_write("strict", "limit strict count=messages key=sender_domain "
	    "window=1h max=3 on_error=tempfail\n");
	extra = tg_printf_dup("rules_file = %s/lax\n", qt_dir);
	if (qt_start(extra, "redis://127.0.0.1:1/0\non_error = local",
	    &err) != TG_OK)
		fail_msg("start: %s", err.text);
	free(extra);
	for (i = 0; i < 2; i++)
		qt_run(&eom);
	assert_int_equal(qt_used("q:lax:example.org", &approx), 0);
	assert_true(approx);
	qt_run(&look_lax);
	qt_stop();
	extra = tg_printf_dup("rules_file = %s/strict\n", qt_dir);
	if (qt_start(extra, "redis://127.0.0.1:1/0\non_error = local",
	    &err) != TG_OK)
		fail_msg("start: %s", err.text);
	free(extra);
	qt_run(&look);
	qt_stop();
}

/* qt_run_gone - one END-OF-MESSAGE whose client left before the
 * answer: the note */
static void
qt_run_gone(const char *sender, struct tg_buf *note)
{
	struct pd_request	 req;
	struct pd_job		 job;
	struct tg_buf		 in;
	size_t			 used;
	int			 done = 0;

	tg_buf_init(&in);
	tg_buf_printf(&in, "request=smtpd_access_policy\nprotocol_state="
	    "END-OF-MESSAGE\nclient_address=127.0.0.1\nsender=%s\n"
	    "recipient=r@example.com\nrecipient_count=1\n\n", sender);
	assert_int_equal(pd_proto_parse(in.data, in.len, &used, &req),
	    PD_PARSE_DONE);
	memset(&job, 0, sizeof(job));
	job.req = &req;
	job.done = pd_test_done;
	job.arg = &done;
	/* as pd_conn_free marks the jobs of a client that closed */
	job.client_gone = true;
	pd_checks_start(&job);
	while (done == 0 && event_base_loop(pd_test_base, EVLOOP_ONCE) == 0)
		;
	assert_int_equal(done, 1);
	assert_int_equal(job.st, TG_OK);
	tg_buf_reset(note);
	tg_buf_puts(note, tg_buf_cstr(&job.note));
	pd_job_fini(&job);
	pd_request_clear(&req);
	tg_buf_fini(&in);
}

/* test_client_gone - Postfix gave up on the answer (its policy timeout,
 * 451): the message was not taken and costs nothing */
static void
test_client_gone(void **state)
{
	static const struct qt_step eom = { "EOM fits", "END-OF-MESSAGE",
	    "a@example.org", 1, NULL, "DUNNO", "quota=ok" };
	static const struct qt_step over = { "4th is over", "END-OF-MESSAGE",
	    "a@example.org", 1, NULL, MSG_OVER, "quota=defer" };
	struct tg_buf	 note;
	struct tg_err	 err;
	int		 i;

	(void)state;
	tg_buf_init(&note);
	if (qt_start("", NULL, &err) != TG_OK)
		fail_msg("start: %s", err.text);
	qt_run_gone("a@example.org", &note);
	assert_int_equal(qt_used("q:tenant_msgs:example.org", NULL), 0);
	/* the last limit, committed at once, is given back too */
	assert_int_equal(qt_used("q:tenant_rcpts:example.org", NULL), 0);
	if (strstr(tg_buf_cstr(&note), "refunded=client_gone") == NULL)
		fail_msg("note \"%s\" lacks refunded=client_gone",
		    tg_buf_cstr(&note));
	for (i = 0; i < 3; i++)
		qt_run(&eom);
	qt_run(&over);
	qt_stop();
	tg_buf_fini(&note);
}

/* qt_count_of - how many times needle is in s */
static int
qt_count_of(const char *s, const char *needle)
{
	int	n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

/*
 * test_note_quoted - a sender chosen to look like log fields (Postfix
 * sends MAIL FROM:<"x action=reject"@evil> unquoted) stays one value:
 * the decision log record built from the note has one action, ours
 */
static void
test_note_quoted(void **state)
{
	static const struct qt_step over = { "sender key over", "RCPT",
	    "x action=reject qid=F00@evil.example", -1, NULL,
	    "DEFER_IF_PERMIT", "quota=defer limit=per_sender" };
	struct pd_request	 req;
	struct tg_log_rec	*rec;
	struct tg_buf		 in, action, note;
	struct tg_err		 err;
	size_t			 used;
	char			*line;

	(void)state;
	qt_write("sender", "limit per_sender count=messages key=sender "
	    "window=1h max=0\n");
	line = tg_printf_dup("rules_file = %s/sender\n", qt_dir);
	if (qt_start(line, NULL, &err) != TG_OK)
		fail_msg("start: %s", err.text);
	free(line);
	qt_run(&over);
	tg_buf_init(&in);
	tg_buf_init(&action);
	tg_buf_init(&note);
	tg_buf_printf(&in, "request=smtpd_access_policy\nprotocol_state=RCPT\n"
	    "client_address=127.0.0.1\nsender=%s\nrecipient=r@example.com\n"
	    "\n", over.sender);
	assert_int_equal(pd_proto_parse(in.data, in.len, &used, &req),
	    PD_PARSE_DONE);
	assert_int_equal(pd_test_checks(&req, &action, &note, &err), TG_OK);
	rec = tg_log_rec_new("policy");
	tg_log_rec_add_pairs(rec, tg_buf_cstr(&note));
	tg_log_rec_add(rec, "action", "DEFER_IF_PERMIT");
	tg_log_rec_add(rec, "qid", "ABC123");
	/* JSON: every field a "key":"value" member, easy to tell apart */
	line = tg_log_rec_format(rec, TG_LOG_JSON);
	if (qt_count_of(line, "\"action\":") != 1 ||
	    qt_count_of(line, "\"qid\":") != 1 ||
	    strstr(line, "action_2") != NULL || strstr(line, "qid_2") != NULL ||
	    strstr(line, "\"action\":\"DEFER_IF_PERMIT\"") == NULL ||
	    strstr(line, "\"qid\":\"ABC123\"") == NULL)
		fail_msg("note's sender made fields: %s", line);
	free(line);
	(void)tg_log_rec_free(rec);
	pd_request_clear(&req);
	tg_buf_fini(&in);
	tg_buf_fini(&action);
	tg_buf_fini(&note);
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
		cmocka_unit_test(test_local_unwanted),
		cmocka_unit_test(test_client_gone),
		cmocka_unit_test(test_note_quoted),
		cmocka_unit_test(test_bad_conf),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
