/*
 * args - the command line both daemons share (see pipeline.h).  It lives
 * with the pipeline because --print-defaults lists the pipeline's
 * sections.  Start-up only: exit() is allowed here.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "tollgate/conf.h"
#include "tollgate/pipeline.h"

#ifndef TG_SYSCONFDIR
#define TG_SYSCONFDIR "/etc"
#endif

static TG_NORETURN void	tg_daemon_usage(const char *, const char *);

/* tg_daemon_usage - the command line, then exit */
static void
tg_daemon_usage(const char *progname, const char *listen_word)
{
	fprintf(stderr, "usage: %s [-f] [-c confdir] [-p %s] [-P pidfile] "
	    "[-u user[:group]]\n"
	    "       %s --print-defaults\n", progname, listen_word, progname);
	exit(EX_USAGE);
}

/* tg_daemon_args - see pipeline.h */
void
tg_daemon_args(int argc, char **argv, const char *progname,
    const char *listen_word, struct tg_daemon_args *a)
{
	static const struct option longopts[] = {
		{ "print-defaults", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 }
	};
	const struct tg_conf_section	*secs;
	size_t				 n;
	int				 ch;

	memset(a, 0, sizeof(*a));
	a->confdir = TG_SYSCONFDIR "/tollgate/conf.d";
	while ((ch = getopt_long(argc, argv, "c:fp:P:u:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			a->confdir = optarg;
			break;
		case 'f':
			a->foreground = true;
			break;
		case 'p':
			a->listen = optarg;
			break;
		case 'P':
			a->pidfile = optarg;
			break;
		case 'u':
			if (*optarg == '\0' || *optarg == ':')
				tg_daemon_usage(progname, listen_word);
			a->user = optarg;
			break;
		case 'D':
			secs = tg_pipeline_sections(&n);
			tg_conf_defaults(secs, n);
			tg_conf_print_defaults(stdout, secs, n);
			tg_conf_free(secs, n);
			exit(0);
		default:
			tg_daemon_usage(progname, listen_word);
		}
	}
	if (optind != argc)
		tg_daemon_usage(progname, listen_word);
}
