/*
 * tollgatectl - the operator's command line: one verb per file.
 *
 * This file only dispatches.  Commands use the same pipeline and
 * configuration code as the daemons, never a second implementation.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"
#include "tollgate/conf.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"
#include "tollgate/policyd.h"

static const struct {
	const char	*name;
	int		(*run)(int, char **);
	const char	*usage;
} ctl_commands[] = {
	{ "scan", ctl_scan, "scan [options] MESSAGE...   run messages "
	    "through the pipeline" },
	{ "config", ctl_config, "config check|defaults [-c DIR] "
	    "[--rules PATH]...   check or print the configuration, and "
	    "report on spam rule files" },
	{ "dmarc", ctl_dmarc, "dmarc report [-c DIR] [--begin T --end T | "
	    "--last 1d] [--out DIR] [--send] [--dry-run]   DMARC aggregate "
	    "reports" },
	{ "spf", ctl_spf, "spf [-c DIR] [--engine E] [--zone FILE]... IP HELO "
	    "SENDER   one SPF check" },
	{ "quota", ctl_quota, "quota [-c DIR] show KEY | list [PREFIX] | "
	    "reset KEY   sending-quota counters" },
	{ "greylist", ctl_greylist, "greylist [-c DIR] show [PREFIX] | "
	    "flush PREFIX|--all   greylisting records" },
	{ "learn", ctl_learn, "learn [-c DIR] [--scope DOMAIN] "
	    "--spam|--ham|--forget FILE|DIR...   teach Bayes messages" },
};

/* ctl_usage - list the commands */
static int
ctl_usage(void)
{
	size_t	i;

	fprintf(stderr, "usage: tollgatectl COMMAND ...\n");
	for (i = 0; i < TG_NITEMS(ctl_commands); i++)
		fprintf(stderr, "  tollgatectl %s\n", ctl_commands[i].usage);
	return EX_USAGE;
}

/* ctl_config_problem - one problem of config check, counted in arg */
static void
ctl_config_problem(void *arg, const char *text)
{
	size_t	*n = arg;

	fprintf(stderr, "tollgatectl: %s\n", text);
	(*n)++;
}

/*
 * ctl_config_check - what both daemons do with the configuration before
 * they serve: tollgate-milter's start-up (tg_pipeline_init), then
 * tollgate-policyd's checks; each problem on stderr.  The policy
 * checks get no store: their init only keeps its handle for later
 * requests, and opening it here would make the embedded store's files
 * as whoever runs the check, or test a Redis server's reachability,
 * which is no fault of the configuration (policyd says so at start).
 * The number of problems.
 */
static size_t
ctl_config_check(const char *confdir)
{
	struct tg_pipeline_opts	opts;
	struct pd_env		env;
	struct tg_err		err;
	size_t			n = 0;

	memset(&opts, 0, sizeof(opts));
	opts.confdir = confdir;
	opts.report = ctl_config_problem;
	opts.report_arg = &n;
	if (tg_pipeline_init(&opts, &err) != TG_OK && n == 0)
		ctl_config_problem(&n, err.text);
	/* policyd's checks use the resolver too; its failure is reported */
	memset(&env, 0, sizeof(env));
	if ((env.dns = tg_pipeline_dns()) != NULL)
		(void)pd_checks_check(&env, ctl_config_problem, &n);
	return n;
}

/* ctl_config - config check: load what the daemons would */
int
ctl_config(int argc, char **argv)
{
	const struct tg_conf_section	*secs;
	const char			*confdir;
	size_t				 n;
	char				*rules;
	int				 rc;

	confdir = CTL_CONFDIR;
	if (argc >= 4 && strcmp(argv[2], "-c") == 0)
		confdir = argv[3];
	if (argc >= 2 && strcmp(argv[1], "defaults") == 0) {
		secs = tg_pipeline_sections(&n);
		tg_conf_defaults(secs, n);
		tg_conf_print_defaults(stdout, secs, n);
		tg_conf_free(secs, n);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "check") != 0)
		return ctl_usage();
	if ((n = ctl_config_check(confdir)) > 0) {
		fprintf(stderr, "%zu problem%s\n", n, n == 1 ? "" : "s");
		tg_pipeline_fini();
		return EX_CONFIG;
	}
	printf("%s: configuration ok\n", confdir);
	rules = ctl_config_spam_rules();
	tg_pipeline_fini();
	/* spam rule files: what loads, what is skipped and why */
	rc = ctl_config_rules(argc, argv, rules);
	free(rules);
	return rc;
}

/* main - dispatch to the command */
int
main(int argc, char **argv)
{
	size_t	i;

	tg_log_open("tollgatectl", true);
	if (argc < 2)
		return ctl_usage();
	for (i = 0; i < TG_NITEMS(ctl_commands); i++)
		if (strcmp(argv[1], ctl_commands[i].name) == 0)
			return ctl_commands[i].run(argc - 1, argv + 1);
	return ctl_usage();
}
