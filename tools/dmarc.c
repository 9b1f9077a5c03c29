/*
 * dmarc - `tollgatectl dmarc report`: DMARC aggregate reports (RFC 9990)
 * from the store the DMARC module fills.
 *
 * The configuration is loaded as the milter loads it (tg_pipeline_init),
 * so the [dmarc] report_* keys and the [dns] resolver are the daemon's.
 * The period is [--begin, --end), each a Unix time or a UTC date
 * YYYY-MM-DD, or the last --last duration up to now; by default the last
 * whole UTC day.  Reports go to --out DIR as .xml.gz files and, with
 * --send, by mail to each policy domain's rua= destinations; then the
 * reported records are deleted.  --dry-run lists what would be reported
 * and changes nothing.  Records older than report_keep are deleted on
 * every run that is not a dry run.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>

#include "ctl.h"
#include "tollgate/dmarc_report.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"

#ifndef TG_SYSCONFDIR
#define TG_SYSCONFDIR "/etc"
#endif

#define DMARC_CTL_DAY	86400

struct dmarc_ctl_opts {
	const char	*confdir;
	const char	*out_dir;
	time_t		 begin, end;
	bool		 have_begin, have_end;
	bool		 send, dry_run;
};

/* dmarc_ctl_usage - the command's synopsis */
static int
dmarc_ctl_usage(void)
{
	fprintf(stderr, "usage: tollgatectl dmarc report [-c DIR] "
	    "[--begin T --end T | --last DURATION]\n"
	    "\t[--out DIR] [--send] [--dry-run]\n"
	    "T is a Unix time or a UTC date YYYY-MM-DD; the default period "
	    "is the last\nwhole UTC day.\n");
	return EX_USAGE;
}

/* dmarc_ctl_time - a Unix time, or YYYY-MM-DD as its UTC midnight */
static bool
dmarc_ctl_time(const char *s, time_t *out)
{
	struct tm	tm, back;
	long		v, y, m, d;
	char		part[5];
	time_t		t;

	if (tg_parse_long(s, 0, 0x7fffffffL, &v)) {
		*out = (time_t)v;
		return true;
	}
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	(void)snprintf(part, sizeof(part), "%.4s", s);
	if (!tg_parse_long(part, 1970, 9999, &y))
		return false;
	(void)snprintf(part, sizeof(part), "%.2s", s + 5);
	if (!tg_parse_long(part, 1, 12, &m))
		return false;
	(void)snprintf(part, sizeof(part), "%.2s", s + 8);
	if (!tg_parse_long(part, 1, 31, &d))
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)y - 1900;
	tm.tm_mon = (int)m - 1;
	tm.tm_mday = (int)d;
	if ((t = timegm(&tm)) == (time_t)-1 || gmtime_r(&t, &back) == NULL)
		return false;
	/* timegm normalizes 2026-02-30 to March: refuse it instead. */
	if (back.tm_mday != (int)d || back.tm_mon != (int)m - 1)
		return false;
	*out = t;
	return true;
}

/* dmarc_ctl_args - options after "report"; false on a usage error */
static bool
dmarc_ctl_args(int argc, char **argv, struct dmarc_ctl_opts *o, time_t now)
{
	static const struct option longopts[] = {
		{ "begin", required_argument, NULL, 'b' },
		{ "end", required_argument, NULL, 'e' },
		{ "last", required_argument, NULL, 'l' },
		{ "out", required_argument, NULL, 'o' },
		{ "send", no_argument, NULL, 's' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	long	last = 0;
	int	ch;

	o->confdir = TG_SYSCONFDIR "/tollgate/conf.d";
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->confdir = optarg;
			break;
		case 'b':
			if (!dmarc_ctl_time(optarg, &o->begin))
				return false;
			o->have_begin = true;
			break;
		case 'e':
			if (!dmarc_ctl_time(optarg, &o->end))
				return false;
			o->have_end = true;
			break;
		case 'l':
			if (!tg_parse_duration(optarg, 1, 366L * DMARC_CTL_DAY,
			    &last))
				return false;
			break;
		case 'o':
			o->out_dir = optarg;
			break;
		case 's':
			o->send = true;
			break;
		case 'n':
			o->dry_run = true;
			break;
		default:
			return false;
		}
	}
	if (optind != argc || o->have_begin != o->have_end ||
	    (last != 0 && o->have_begin))
		return false;
	if (last != 0) {
		o->end = now;
		o->begin = now - last;
	} else if (!o->have_begin) {
		/* The last whole UTC day, RFC 9990's usual period. */
		o->end = now - now % DMARC_CTL_DAY;
		o->begin = o->end - DMARC_CTL_DAY;
	}
	return o->begin < o->end;
}

/* dmarc_ctl_report - load the configuration, open the store, run */
static int
dmarc_ctl_report(const struct dmarc_ctl_opts *o, time_t now)
{
	const struct dmarc_report_conf	*conf;
	struct dmarc_report_store	*store;
	struct dmarc_report_run_opts	 ro;
	struct dmarc_report_stats	 st;
	struct tg_pipeline_opts		 po;
	struct tg_err			 err;
	struct stat			 sb;
	enum tg_status			 rs;

	memset(&po, 0, sizeof(po));
	po.confdir = o->confdir;
	if (tg_pipeline_init(&po, &err) != TG_OK) {
		fprintf(stderr, "tollgatectl: %s\n", err.text);
		return EX_CONFIG;
	}
	conf = dmarc_report_settings();
	if (conf->dir == NULL || *conf->dir == '\0') {
		fprintf(stderr, "tollgatectl: [dmarc] report_dir is not set: "
		    "there is no report store\n");
		return EX_CONFIG;
	}
	if (o->out_dir != NULL && (stat(o->out_dir, &sb) == -1 ||
	    !S_ISDIR(sb.st_mode))) {
		fprintf(stderr, "tollgatectl: %s: not a directory\n",
		    o->out_dir);
		return EX_CANTCREAT;
	}
	if ((store = dmarc_report_open(conf->dir, o->dry_run, &err)) == NULL) {
		fprintf(stderr, "tollgatectl: %s\n", err.text);
		return err.status == TG_TEMP ? EX_TEMPFAIL : EX_NOINPUT;
	}
	memset(&ro, 0, sizeof(ro));
	ro.conf = conf;
	ro.dns = tg_pipeline_dns();
	ro.begin = o->begin;
	ro.end = o->end;
	ro.now = now;
	ro.out_dir = o->out_dir;
	ro.send = o->send;
	ro.dry_run = o->dry_run;
	ro.listing = stdout;
	rs = dmarc_report_run(store, &ro, &st, &err);
	store = dmarc_report_close(store);
	if (rs != TG_OK) {
		fprintf(stderr, "tollgatectl: %s\n", err.text);
		return rs == TG_PERM ? EX_CONFIG : EX_TEMPFAIL;
	}
	printf("%zu reports for [%lld, %lld): %zu sent, %zu kept for the "
	    "next run, %zu records deleted, %zu expired\n", st.reports,
	    (long long)o->begin, (long long)o->end, st.sent, st.failed,
	    st.deleted, st.expired);
	return st.failed > 0 ? EX_TEMPFAIL : 0;
}

/* ctl_dmarc - tollgatectl dmarc report ... */
int
ctl_dmarc(int argc, char **argv)
{
	struct dmarc_ctl_opts	o;
	time_t			now = time(NULL);
	int			rc;

	memset(&o, 0, sizeof(o));
	if (argc < 2 || strcmp(argv[1], "report") != 0 ||
	    !dmarc_ctl_args(argc - 1, argv + 1, &o, now))
		return dmarc_ctl_usage();
	if (o.out_dir == NULL && !o.send && !o.dry_run) {
		fprintf(stderr, "tollgatectl: nothing to do: give --out DIR, "
		    "--send or --dry-run\n");
		return EX_USAGE;
	}
	rc = dmarc_ctl_report(&o, now);
	tg_pipeline_fini();
	return rc;
}
