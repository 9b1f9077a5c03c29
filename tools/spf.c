/*
 * spf - `tollgatectl spf`: one SPF check, as the milter would make it.
 *
 *   tollgatectl spf [-c DIR] [--engine native|libspf2] [--zone FILE]...
 *       [--dns] [-v] IP HELO SENDER
 *
 * The check runs with the [spf] settings of the configuration (engine,
 * explanation, time limit; --engine overrides the engine) on the
 * daemon's resolver, and prints the result, the explanation, the
 * deciding mechanism and the number of DNS lookups, as spfquery does.
 * SENDER "" or "<>" checks the HELO identity (RFC 7208 2.4).  DNS is
 * offline unless --dns is given: answers come from the configured local
 * data plus the --zone files, as for `tollgatectl scan`.  The exit
 * status is 0 whatever the result; it says only whether a check ran.
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
#include "tollgate/spf.h"

#ifndef TG_SYSCONFDIR
#define TG_SYSCONFDIR "/etc"
#endif

struct spf_ctl_opts {
	struct tg_pipeline_opts	 pipe;
	const char		**zones;
	size_t			 nzones;
	int			 engine;	/* -1: as configured */
	bool			 verbose;
};

/* spf_ctl_usage - the synopsis */
static int
spf_ctl_usage(void)
{
	fprintf(stderr, "usage: tollgatectl spf [-c DIR] [--engine "
	    "native|libspf2] [--zone FILE]... [--dns] [-v]\n"
	    "\tIP HELO SENDER\n");
	return EX_USAGE;
}

/* spf_ctl_engine - an engine name; -1 if unknown */
static int
spf_ctl_engine(const char *name)
{
	int	i;

	for (i = 0; spf_engine_names[i] != NULL; i++)
		if (strcmp(spf_engine_names[i], name) == 0)
			return i;
	return -1;
}

/* spf_ctl_args - options into o; the index of IP, or -1 */
static int
spf_ctl_args(int argc, char **argv, struct spf_ctl_opts *o)
{
	static const struct option longopts[] = {
		{ "engine", required_argument, NULL, 'e' },
		{ "zone", required_argument, NULL, 'z' },
		{ "dns", no_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	int	ch;

	o->pipe.confdir = TG_SYSCONFDIR "/tollgate/conf.d";
	o->pipe.force_offline = true;
	o->engine = -1;
	while ((ch = getopt_long(argc, argv, "c:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->pipe.confdir = optarg;
			break;
		case 'e':
			if ((o->engine = spf_ctl_engine(optarg)) < 0)
				return -1;
			break;
		case 'z':
			o->zones = tg_reallocarray(o->zones, o->nzones + 1,
			    sizeof(*o->zones));
			o->zones[o->nzones++] = optarg;
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
	o->pipe.zone_files = o->zones;
	o->pipe.nzone_files = o->nzones;
	return argc - optind == 3 ? optind : -1;
}

/* spf_ctl_sender - SENDER without angle brackets; "" for "<>" */
static char *
spf_ctl_sender(const char *s)
{
	size_t	len = strlen(s);

	if (len >= 2 && s[0] == '<' && s[len - 1] == '>')
		return tg_strndup(s + 1, len - 2);
	return tg_strdup(s);
}

/* spf_ctl_print - the answer, one "key: value" line each */
static void
spf_ctl_print(enum spf_engine engine, const struct spf_answer *ans)
{
	printf("result: %s\n", spf_result_name(ans->result));
	printf("identity: %s\n", ans->helo ? "helo" : "mailfrom");
	printf("domain: %s\n", ans->domain);
	printf("explanation: %s\n", ans->explanation[0] != '\0' ?
	    ans->explanation : "-");
	printf("mechanism: %s\n", ans->mechanism[0] != '\0' ?
	    ans->mechanism : "-");
	if (ans->reason[0] != '\0')
		printf("reason: %s\n", ans->reason);
	printf("dns lookups: %u\n", ans->dns_lookups);
	printf("void lookups: %u\n", ans->void_lookups);
	printf("engine: %s\n", spf_engine_names[engine]);
}

/* ctl_spf - tollgatectl spf */
int
ctl_spf(int argc, char **argv)
{
	struct spf_ctl_opts	 o;
	struct spf_request	 req;
	struct spf_answer	 ans;
	struct tg_err		 err;
	enum spf_engine		 engine;
	char			*sender = NULL;
	int			 first, rc = 0;

	memset(&o, 0, sizeof(o));
	if ((first = spf_ctl_args(argc, argv, &o)) < 0) {
		free(o.zones);
		return spf_ctl_usage();
	}
	if (tg_pipeline_init(&o.pipe, &err) != TG_OK) {
		fprintf(stderr, "tollgatectl: %s\n", err.text);
		rc = EX_CONFIG;
		goto out;
	}
	tg_log_set_level(o.verbose ? TG_LOG_DEBUG : TG_LOG_WARN);
	memset(&req, 0, sizeof(req));
	spf_conf_request(&req, &engine);
	if (o.engine >= 0)
		engine = (enum spf_engine)o.engine;
	sender = spf_ctl_sender(argv[first + 2]);
	req.ip = argv[first];
	req.helo = argv[first + 1];
	req.sender = sender;
	req.receiver = tg_core_conf.authserv_id;
	if (spf_engine_check(engine, tg_pipeline_dns(), &req, &ans) != TG_OK) {
		fprintf(stderr, "tollgatectl: %s\n", ans.reason);
		rc = EX_DATAERR;
	} else
		spf_ctl_print(engine, &ans);
out:
	tg_pipeline_fini();
	free(sender);
	free(o.zones);
	return rc;
}
