/*
 * scan - `tollgatectl scan`: what tollgate would do with a message.
 *
 * Each message file goes through the daemon's pipeline (tg_scan_message),
 * with the envelope from the options, and we print the verdict, the
 * header edits (or the whole resulting message with --output) and the
 * decision line.  DNS is offline unless --dns is given: answers come from
 * the configured local data plus --zone files.  Without --client-ip or
 * --auth the message counts as received from an outside client at
 * 192.0.2.1 (TEST-NET-1); --local makes it a local submission.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"
#include "tollgate/spam.h"

#ifndef TG_SYSCONFDIR
#define TG_SYSCONFDIR "/etc"
#endif

struct scan_opts {
	struct tg_scan_env	 env;
	struct tg_pipeline_opts	 pipe;
	const char		**rcpts;
	const char		**zones;
	bool			 output;
	bool			 verbose;
};

/* scan_print_edits - one line per header edit */
static void
scan_print_edits(const struct tg_ctx *ctx)
{
	const struct tg_edit	*e;
	size_t			 n, i;
	const char		*v;

	n = tg_ctx_edits(ctx, &e);
	for (i = 0; i < n; i++) {
		if (e[i].kind == TG_EDIT_DELETE) {
			printf("delete: %s #%zu\n", e[i].name, e[i].index);
			continue;
		}
		printf("%s: %s: ", e[i].kind == TG_EDIT_ADD ? "add" : "prepend",
		    e[i].name);
		for (v = e[i].value; *v != '\0'; v++)
			if (*v != '\r')
				putchar(*v);
		putchar('\n');
	}
}

/* scan_print_spam - the spam score and each rule that hit */
static void
scan_print_spam(struct tg_ctx *ctx)
{
	const char	*name, *desc;
	double		 score, required, pts;
	size_t		 i;

	if (!spam_msg_result(ctx, &score, &required))
		return;
	printf("spam: score=%.1f required=%.1f\n", score, required);
	for (i = 0; spam_msg_hit(ctx, i, &name, &pts, &desc); i++)
		printf("  %6.1f %-24s %s\n", pts, name, desc != NULL ? desc :
		    "");
}

/* scan_one - one message file */
static int
scan_one(const struct scan_opts *o, const char *path)
{
	struct tg_ctx	*ctx;
	struct tg_err	 err;
	enum tg_verdict	 v;
	const char	*rcode, *xcode, *text;
	char		*msg, *out;
	size_t		 len, outlen;

	if (tg_read_file(path, &msg, &len, &err) != TG_OK) {
		fprintf(stderr, "tollgatectl: %s\n", err.text);
		return EX_NOINPUT;
	}
	v = tg_scan_message(&o->env, msg, len, &ctx);
	if (o->output) {
		out = tg_apply_edits(ctx, msg, len, &outlen);
		(void)fwrite(out, 1, outlen, stdout);
		free(out);
	} else {
		printf("== %s\nverdict: %s\n", path, tg_verdict_name(v));
		tg_ctx_get_reply(ctx, &rcode, &xcode, &text);
		if (rcode != NULL)
			printf("reply: %s %s %s\n", rcode, xcode, text);
		scan_print_edits(ctx);
		scan_print_spam(ctx);
		printf("decision: %s\n", tg_ctx_decision(ctx) != NULL ?
		    tg_ctx_decision(ctx) : "-");
	}
	tg_stage_done(ctx);
	ctx = tg_ctx_free(ctx);
	free(msg);
	return 0;
}

/* scan_push - append to a NULL-terminated list */
static const char **
scan_push(const char **list, size_t *n, const char *s)
{
	list = tg_reallocarray(list, *n + 2, sizeof(*list));
	list[(*n)++] = s;
	list[*n] = NULL;
	return list;
}

/* scan_args - parse options into o; returns the index of the first file */
static int
scan_args(int argc, char **argv, struct scan_opts *o)
{
	static const struct option longopts[] = {
		{ "client-ip", required_argument, NULL, 'i' },
		{ "helo", required_argument, NULL, 'h' },
		{ "mail-from", required_argument, NULL, 'm' },
		{ "rcpt", required_argument, NULL, 'r' },
		{ "auth", required_argument, NULL, 'a' },
		{ "zone", required_argument, NULL, 'z' },
		{ "output", no_argument, NULL, 'o' },
		{ "local", no_argument, NULL, 'L' },
		{ "dns", no_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	size_t	nz = 0;
	int	ch;

	o->pipe.confdir = TG_SYSCONFDIR "/tollgate/conf.d";
	o->pipe.force_offline = true;
	o->env.client_addr = "192.0.2.1";
	o->env.client_name = "[192.0.2.1]";
	o->env.queue_id = "scan";
	while ((ch = getopt_long(argc, argv, "c:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->pipe.confdir = optarg;
			break;
		case 'i':
			o->env.client_addr = optarg;
			o->env.client_name = optarg;
			break;
		case 'h':
			o->env.helo = optarg;
			break;
		case 'm':
			o->env.mail_from = optarg;
			break;
		case 'r':
			o->rcpts = scan_push(o->rcpts, &o->env.nrcpts, optarg);
			break;
		case 'a':
			o->env.auth_user = optarg;
			break;
		case 'z':
			o->zones = scan_push(o->zones, &nz, optarg);
			break;
		case 'o':
			o->output = true;
			break;
		case 'L':
			o->env.client_addr = NULL;
			o->env.client_name = "localhost";
			break;
		case 'D':
			o->pipe.force_offline = false;
			break;
		case 'v':
			o->verbose = true;
			break;
		default:
			return -1;
		}
	}
	o->env.rcpts = o->rcpts;
	o->pipe.zone_files = o->zones;
	o->pipe.nzone_files = nz;
	return optind < argc ? optind : -1;
}

/* ctl_scan - tollgatectl scan */
int
ctl_scan(int argc, char **argv)
{
	struct scan_opts	o;
	struct tg_err		err;
	int			first, i, rc = 0;

	memset(&o, 0, sizeof(o));
	if ((first = scan_args(argc, argv, &o)) < 0) {
		fprintf(stderr, "usage: tollgatectl scan [-c DIR] "
		    "[--client-ip IP | --local] [--helo NAME] [--mail-from ADDR]"
		    "\n\t[--rcpt ADDR]... [--auth USER] [--zone FILE]... "
		    "[--dns] [--output] [-v] MESSAGE...\n");
		rc = EX_USAGE;
	} else if (tg_pipeline_init(&o.pipe, &err) != TG_OK) {
		fprintf(stderr, "tollgatectl: %s\n", err.text);
		rc = EX_CONFIG;
	} else {
		tg_log_set_level(o.verbose ? TG_LOG_DEBUG : TG_LOG_WARN);
		for (i = first; i < argc; i++)
			if (scan_one(&o, argv[i]) != 0)
				rc = EX_NOINPUT;
	}
	tg_pipeline_fini();
	free(o.rcpts);
	free(o.zones);
	return rc;
}
