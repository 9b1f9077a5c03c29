/*
 * dkim_test_util - helpers of the DKIM module's tests: scratch files
 * and one message through the real pipeline
 * (t_run) with what it left behind (results, our Authentication-Results,
 * the decision line, the message after the header edits).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "dkim_test.h"
#include "tollgate/buf.h"
#include "tollgate/dkim.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"


/* t_path - a path under the scratch directory */
char *
t_path(const char *name)
{
	return tg_printf_dup("%s/%s", t_dir, name);
}

/* t_write - a scratch file with the given mode */
char *
t_write(const char *name, const char *text, int mode)
{
	char	*p = t_path(name);
	FILE	*fp;

	assert_non_null(fp = fopen(p, "w"));
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(p, (mode_t)mode), 0);
	return p;
}

/* t_slurp - a whole file */
char *
t_slurp(const char *path, size_t *lenp)
{
	char	*text;
	size_t	 len;

	if (tg_read_file(path, &text, &len, NULL) != TG_OK)
		return NULL;
	if (lenp != NULL)
		*lenp = len;
	return text;
}

/* t_crlf - every line end made CRLF */
char *
t_crlf(const char *s)
{
	struct tg_buf	b;

	tg_buf_init(&b);
	for (; *s != '\0'; s++) {
		if (*s == '\n' && (b.len == 0 || b.data[b.len - 1] != '\r'))
			tg_buf_putc(&b, '\r');
		tg_buf_putc(&b, *s);
	}
	return tg_buf_steal(&b);
}

/* t_pipeline - the pipeline with [dkim] settings and a zone */
void
t_pipeline(const char *dkim_conf, const char *zone)
{
	struct tg_pipeline_opts	 o;
	struct tg_err		 err;
	const char		*zones[1];
	char			*conf;

	conf = tg_printf_dup("[core]\nauthserv_id = mx.test\nmodules = dkim\n"
	    "log_level = debug\n[dkim]\n%s", dkim_conf);
	memset(&o, 0, sizeof(o));
	o.conf_text = conf;
	zones[0] = zone;
	o.zone_files = zones;
	o.nzone_files = zone != NULL ? 1 : 0;
	o.force_offline = true;
	if (tg_pipeline_init(&o, &err) != TG_OK)
		fail_msg("pipeline init: %s", err.text);
	free(conf);
	tg_test_log_reset();
}

/* t_pipeline_done - release the pipeline */
void
t_pipeline_done(void)
{
	tg_pipeline_fini();
}

/* t_run_collect - what the module and the pipeline left in ctx */
static void
t_run_collect(struct tg_ctx *ctx, struct t_run *r)
{
	const struct dkim_result	*res;
	const struct tg_edit		*e;
	struct tg_buf			 b;
	size_t				 n, i;

	tg_buf_init(&b);
	n = dkim_results(ctx, &res);
	for (i = 0; i < n; i++)
		tg_buf_printf(&b, "%s%s", i > 0 ? "," : "",
		    dkim_res_name(res[i].res));
	r->results = tg_buf_steal(&b);
	n = dkim_results(ctx, &res);
	for (i = 0; i < n; i++)
		tg_buf_printf(&b, "%s%s", i > 0 ? ";" : "",
		    res[i].reason != NULL ? res[i].reason : "-");
	r->reasons = tg_buf_steal(&b);
	n = tg_ctx_edits(ctx, &e);
	for (i = 0; i < n; i++) {
		if (strcmp(e[i].name, "Authentication-Results") == 0 &&
		    r->authres == NULL)
			r->authres = tg_strdup(e[i].value);
		if (strcmp(e[i].name, "DKIM-Signature") == 0 &&
		    e[i].kind == TG_EDIT_PREPEND)
			r->nsig_added++;
	}
	if (r->authres == NULL)
		r->authres = tg_strdup("");
	r->decision = tg_strdup(tg_ctx_decision(ctx) != NULL ?
	    tg_ctx_decision(ctx) : "");
}

/* t_run - one message through every stage */
void
t_run(const char *msg, bool outbound, struct t_run *r)
{
	static const char *const rcpts[] = { "<bob@example.org>" };
	struct tg_scan_env	 env;
	struct tg_ctx		*ctx;
	char			*text;
	size_t			 len, outlen;

	memset(r, 0, sizeof(*r));
	memset(&env, 0, sizeof(env));
	env.client_addr = outbound ? "127.0.0.1" : "192.0.2.10";
	env.client_name = outbound ? "localhost" : "mail.example.net";
	env.helo = env.client_name;
	env.mail_from = "<alice@example.com>";
	env.rcpts = rcpts;
	env.nrcpts = 1;
	env.queue_id = "TESTQ1";
	text = t_crlf(msg);
	len = strlen(text);
	r->verdict = tg_scan_message(&env, text, len, &ctx);
	t_run_collect(ctx, r);
	r->out = tg_apply_edits(ctx, text, len, &outlen);
	tg_stage_done(ctx);
	tg_ctx_free(ctx);
	free(text);
}

/* t_run_free - release a run */
void
t_run_free(struct t_run *r)
{
	free(r->results);
	free(r->reasons);
	free(r->authres);
	free(r->decision);
	free(r->out);
	memset(r, 0, sizeof(*r));
}

/*
 * t_overall - one verdict for a message: pass if any signature passed,
 * else policy (one verified but RFC 8301 refused it), fail, ...
 */
const char *
t_overall(const char *results)
{
	static const char *const order[] = { "pass", "policy", "fail",
	    "temperror", "permerror", "neutral", "none" };
	const char	*p;
	size_t		 i, n;

	for (i = 0; i < TG_NITEMS(order); i++) {
		n = strlen(order[i]);
		for (p = results; (p = strstr(p, order[i])) != NULL; p += n)
			if ((p == results || p[-1] == ',') &&
			    (p[n] == '\0' || p[n] == ','))
				return order[i];
	}
	return "none";
}
