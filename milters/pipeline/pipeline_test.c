/*
 * pipeline_test - the stages, header handling, forged
 * Authentication-Results removal, the decision line, header edits applied
 * to a message, and the shipped conf.d against the parameter tables.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tollgate/conf.h"
#include "tollgate/pipeline.h"

static const char base_conf[] =
    "[core]\nauthserv_id = mx.test.example\nmodules =\n"
    "[dns]\noffline = yes\n";

/* setup - a pipeline with no modules: the core alone */
static int
setup(void **state)
{
	struct tg_pipeline_opts	opts;
	struct tg_err		err;

	memset(&opts, 0, sizeof(opts));
	opts.conf_text = base_conf;
	if (tg_pipeline_init(&opts, &err) != TG_OK) {
		fprintf(stderr, "init: %s\n", err.text);
		return -1;
	}
	return 0;
}

/* teardown - release the pipeline */
static int
teardown(void **state)
{
	tg_pipeline_fini();
	return 0;
}

static const char *const rcpts[] = { "<a@example.org>", "<b@example.org>" };
static const struct tg_scan_env inbound = {
	.client_addr = "192.0.2.7", .client_name = "mail.example.net",
	.helo = "mail.example.net", .mail_from = "<x@example.net>",
	.rcpts = rcpts, .nrcpts = 2, .queue_id = "Q1"
};

/* scan - one message; returns the ctx */
static struct tg_ctx *
scan(const struct tg_scan_env *env, const char *msg, enum tg_verdict want)
{
	struct tg_ctx	*ctx;

	assert_int_equal(tg_scan_message(env, msg, strlen(msg), &ctx), want);
	return ctx;
}

/* test_forged_authres - ours removed, others kept (RFC 8601 5) */
static void
test_forged_authres(void **state)
{
	static const char msg[] =
	    "Authentication-Results: other.example; dkim=pass\n"
	    "Authentication-Results: (c) MX.TEST.EXAMPLE; dkim=pass\n"
	    "From: x@example.net\n"
	    "Authentication-Results: mx.test.example;\n\tspf=pass\n"
	    "Subject: hi\n\nbody\n";
	const struct tg_edit	*e;
	struct tg_ctx		*ctx;
	size_t			 n, len;
	char			*out;

	ctx = scan(&inbound, msg, TG_ACCEPT);
	n = tg_ctx_edits(ctx, &e);
	assert_int_equal(n, 2);
	assert_int_equal(e[0].kind, TG_EDIT_DELETE);
	assert_int_equal(e[0].index, 2);
	assert_int_equal(e[1].index, 3);
	out = tg_apply_edits(ctx, msg, strlen(msg), &len);
	assert_string_equal(out,
	    "Authentication-Results: other.example; dkim=pass\n"
	    "From: x@example.net\nSubject: hi\n\nbody\n");
	free(out);
	tg_stage_done(ctx);
	tg_ctx_free(ctx);
}

/* test_decision - the line names client, envelope and action */
static void
test_decision(void **state)
{
	struct tg_ctx	*ctx;
	const char	*d;

	ctx = scan(&inbound, "Subject: x\r\n\r\nbody\r\n", TG_ACCEPT);
	tg_stage_done(ctx);
	d = tg_ctx_decision(ctx);
	assert_non_null(d);
	assert_non_null(strstr(d, "decision stage=eom "
	    "client=mail.example.net[192.0.2.7] helo=mail.example.net "
	    "from=<x@example.net> rcpts=2 auth=- action=accept"));
	tg_ctx_free(ctx);
}

/* test_decision_unknown_client - "[addr]" is logged as unknown[addr] */
static void
test_decision_unknown_client(void **state)
{
	struct tg_scan_env	 env = inbound;
	struct tg_ctx		*ctx;

	env.client_name = "[192.0.2.7]";
	ctx = scan(&env, "Subject: x\r\n\r\nbody\r\n", TG_ACCEPT);
	tg_stage_done(ctx);
	assert_non_null(strstr(tg_ctx_decision(ctx),
	    " client=unknown[192.0.2.7] "));
	tg_ctx_free(ctx);
}

/* test_two_messages - one connection, two messages, abort between */
static void
test_two_messages(void **state)
{
	struct tg_ctx	*ctx;

	ctx = tg_ctx_new(NULL, NULL);
	assert_int_equal(tg_stage_connect(ctx, "h", "192.0.2.1"), TG_CONTINUE);
	assert_int_equal(tg_stage_envfrom(ctx, "<a@x.example>"), TG_CONTINUE);
	assert_int_equal(tg_stage_envrcpt(ctx, "<b@y.example>"), TG_CONTINUE);
	tg_stage_abort(ctx);
	assert_int_equal(tg_stage_envfrom(ctx, "<c@x.example>"), TG_CONTINUE);
	assert_int_equal(tg_stage_envrcpt(ctx, "<d@y.example>"), TG_CONTINUE);
	assert_int_equal(tg_stage_header(ctx, "Subject", " s"), TG_CONTINUE);
	assert_int_equal(tg_stage_eoh(ctx), TG_CONTINUE);
	assert_int_equal(tg_stage_body(ctx, (const unsigned char *)"b\r\n",
	    3), TG_CONTINUE);
	assert_int_equal(tg_stage_eom(ctx), TG_ACCEPT);
	assert_non_null(strstr(tg_ctx_decision(ctx), "from=<c@x.example> "
	    "rcpts=1"));
	tg_stage_done(ctx);
	assert_int_equal(tg_stage_envfrom(ctx, "<e@x.example>"), TG_CONTINUE);
	assert_int_equal(tg_stage_eom(ctx), TG_ACCEPT);
	tg_stage_done(ctx);
	tg_ctx_free(ctx);
}

/* test_odd_messages - no body, no headers, garbage, bare CR */
static void
test_odd_messages(void **state)
{
	static const char *const msgs[] = {
		"", "\n", "Subject: only headers", "no colon here\n\nbody",
		"From: a\r\n continued\r\n\tagain\r\nX: y\r\n\r\n",
		"\x80\xff: bin\n\n\x01\x02\x03",
		"Subject: \r\r\n\r\n\r\r\r\n",
	};
	struct tg_ctx	*ctx;
	size_t		 i, len;
	char		*out;

	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		ctx = scan(&inbound, msgs[i], TG_ACCEPT);
		out = tg_apply_edits(ctx, msgs[i], strlen(msgs[i]), &len);
		assert_string_equal(out, msgs[i]);
		free(out);
		tg_stage_done(ctx);
		tg_ctx_free(ctx);
	}
}

/* test_local_submission - no client address: internal, outbound */
static void
test_local_submission(void **state)
{
	struct tg_scan_env	 env = inbound;
	struct tg_ctx		*ctx;

	env.client_addr = NULL;
	ctx = scan(&env, "Subject: x\n\nb\n", TG_ACCEPT);
	assert_non_null(strstr(tg_ctx_decision(ctx), "client=mail.example.net"
	    "[local]"));
	tg_stage_done(ctx);
	tg_ctx_free(ctx);
}

/*
 * test_shipped_conf - conf.d shows every key of every section with its
 * default, and nothing else: the files and the tables cannot drift.
 */
static void
test_shipped_conf(void **state)
{
	const struct tg_conf_section	*secs;
	const struct tg_param		*p;
	struct tg_err			 err;
	char				 want[512], cmd[1024];
	size_t				 n, i;
	FILE				*fp;
	char				 line[1024];
	bool				 found;

	secs = tg_pipeline_sections(&n);
	/* The shipped files load as they are. */
	assert_int_equal(tg_conf_load(TG_SRCDIR "/conf.d", secs, n, &err),
	    TG_OK);
	for (i = 0; i < n; i++) {
		for (p = secs[i].params; p->name != NULL; p++) {
			snprintf(want, sizeof(want), "#%s = %s", p->name,
			    p->def);
			snprintf(cmd, sizeof(cmd), "cat %s/conf.d/*.conf",
			    TG_SRCDIR);
			assert_non_null(fp = popen(cmd, "r"));
			found = false;
			while (fgets(line, sizeof(line), fp) != NULL) {
				line[strcspn(line, "\n")] = '\0';
				if (strcmp(line, want) == 0 ||
				    (*p->def == '\0' && line[0] == '#' &&
				    strncmp(line + 1, p->name, strlen(p->name))
				    == 0 && strcmp(line + 1 + strlen(p->name),
				    " =") == 0))
					found = true;
			}
			pclose(fp);
			if (!found)
				fail_msg("conf.d lacks \"%s\" in [%s]", want,
				    secs[i].name);
		}
	}
	tg_conf_free(secs, n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forged_authres),
		cmocka_unit_test(test_decision),
		cmocka_unit_test(test_decision_unknown_client),
		cmocka_unit_test(test_two_messages),
		cmocka_unit_test(test_odd_messages),
		cmocka_unit_test(test_local_submission),
		cmocka_unit_test(test_shipped_conf),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
