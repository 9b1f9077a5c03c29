/*
 * ctl - what tollgatectl's store commands share: the usage line, the
 * -c DIR option, loading the configuration and opening its store, with
 * errors reported the one way (see ctl.h).
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"
#include "tollgate/pipeline.h"
#include "tollgate/store.h"

/* ctl_synopsis - see ctl.h */
int
ctl_synopsis(const char *synopsis)
{
	fprintf(stderr, "usage: %s", synopsis);
	return EX_USAGE;
}

/* ctl_confdir - see ctl.h */
bool
ctl_confdir(int argc, char **argv, bool verb_first, const char **confdir)
{
	int	ch;

	while ((ch = getopt(argc, argv, verb_first ? "+c:" : "c:")) != -1) {
		if (ch != 'c')
			return false;
		*confdir = optarg;
	}
	return optind < argc;
}

/* ctl_load - see ctl.h */
int
ctl_load(const char *confdir)
{
	struct tg_pipeline_opts	opts;
	struct tg_err		err;

	memset(&opts, 0, sizeof(opts));
	opts.confdir = confdir;
	opts.force_offline = true;
	if (tg_pipeline_load(&opts, &err) != TG_OK) {
		fprintf(stderr, "tollgatectl: %s\n", err.text);
		return EX_CONFIG;
	}
	return 0;
}

/* ctl_store_open - see ctl.h */
int
ctl_store_open(struct tg_store **sp)
{
	struct tg_store_conf	sc;
	struct tg_err		err;

	tg_store_conf_loaded(&sc);
	if ((*sp = tg_store_open(&sc, &err)) == NULL) {
		fprintf(stderr, "tollgatectl: store: %s\n", err.text);
		return EX_UNAVAILABLE;
	}
	return 0;
}

/* ctl_close - see ctl.h */
void
ctl_close(struct tg_store **sp)
{
	*sp = tg_store_close(*sp);
	tg_pipeline_fini();
}
