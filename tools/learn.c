/*
 * learn - `tollgatectl learn`: teach Bayes messages from files.
 *
 *   tollgatectl learn [-c DIR] [--scope DOMAIN] --spam|--ham FILE|DIR...
 *   tollgatectl learn [-c DIR] [--scope DOMAIN] --forget FILE|DIR...
 *
 * Each FILE is one message (a first mbox "From " line is dropped); a
 * DIR is walked, files in name order, dot files skipped.  The store is
 * the configuration's [store], the one the daemons use; the scope is
 * "global" or, with --scope, a recipient domain's own counts (as
 * [spam] bayes_scope = domain uses).  A message learned before with
 * the same class is "already known"; with the other class it moves.
 * Prints the counts; exits 0, or 1 when a message failed (a file that
 * cannot be read, the store down), EX_USAGE, EX_CONFIG.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "ctl.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"
#include "tollgate/store.h"
#include "tollgate/util.h"

#include "spam_bayes_int.h"

#define LEARN_MAX_FILE	(32 << 20)	/* bytes read of one message */
#define LEARN_MAX_DEPTH	16

struct learn_ctl {
	struct tg_store	*store;
	const char	*scope;
	enum spam_class	 cls;
	bool		 forget;
	size_t		 count[4];	/* by enum spam_bayes_outcome */
	size_t		 notknown, failed;
};

/* learn_usage - the synopsis */
static int
learn_usage(void)
{
	return ctl_synopsis("tollgatectl learn [-c DIR] [--scope DOMAIN] "
	    "--spam|--ham|--forget FILE|DIR...\n");
}

/* learn_read - a file's bytes (NUL-terminated), or NULL with errno */
static char *
learn_read(const char *path, size_t *len)
{
	FILE	*f;
	char	*buf;
	size_t	 cap = 65536, r;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	buf = tg_malloc(cap + 1);
	*len = 0;
	while ((r = fread(buf + *len, 1, cap - *len, f)) > 0) {
		*len += r;
		if (*len == cap && cap < LEARN_MAX_FILE) {
			cap *= 2;
			buf = tg_realloc(buf, cap + 1);
		} else if (*len == cap)
			break;
	}
	if (ferror(f)) {
		(void)fclose(f);
		free(buf);
		errno = EIO;
		return NULL;
	}
	(void)fclose(f);
	buf[*len] = '\0';
	return buf;
}

/* learn_file - one message */
static void
learn_file(struct learn_ctl *l, const char *path)
{
	struct spam_msg		*m;
	struct tg_err		 err;
	enum spam_bayes_outcome	 out;
	enum tg_status		 st;
	char			*data, *nl;
	size_t			 len, off = 0;

	if ((data = learn_read(path, &len)) == NULL) {
		fprintf(stderr, "tollgatectl: %s: %s\n", path, strerror(errno));
		l->failed++;
		return;
	}
	if (len > 5 && strncmp(data, "From ", 5) == 0 &&
	    (nl = strchr(data, '\n')) != NULL)
		off = (size_t)(nl + 1 - data);
	m = spam_mime_parse(data + off, len - off, spam_bayes_file_limits());
	st = spam_bayes_train(l->store, l->scope, m, l->cls, l->forget, &out,
	    &err);
	if (st == TG_OK)
		l->count[out]++;
	else if (st == TG_NOTFOUND && l->forget)
		l->notknown++;
	else {
		fprintf(stderr, "tollgatectl: %s: %s\n", path, err.text);
		l->failed++;
	}
	(void)spam_msg_free(m);
	free(data);
}

/* learn_name_cmp - directory entries in name order */
static int
learn_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* learn_path - a file, or a directory walked */
static void
learn_path(struct learn_ctl *l, const char *path, int depth)
{
	struct stat	 sb;
	DIR		*dp;
	struct dirent	*de;
	char		**names = NULL, *sub;
	size_t		  n = 0, cap = 0, i;

	if (stat(path, &sb) == -1) {
		fprintf(stderr, "tollgatectl: %s: %s\n", path, strerror(errno));
		l->failed++;
		return;
	}
	if (!S_ISDIR(sb.st_mode)) {
		learn_file(l, path);
		return;
	}
	if (depth >= LEARN_MAX_DEPTH || (dp = opendir(path)) == NULL) {
		fprintf(stderr, "tollgatectl: %s: %s\n", path, depth >=
		    LEARN_MAX_DEPTH ? "nested too deep" : strerror(errno));
		l->failed++;
		return;
	}
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			names = tg_reallocarray(names, cap, sizeof(*names));
		}
		names[n++] = tg_strdup(de->d_name);
	}
	(void)closedir(dp);
	if (n > 1)
		qsort(names, n, sizeof(*names), learn_name_cmp);
	for (i = 0; i < n; i++) {
		sub = tg_printf_dup("%s/%s", path, names[i]);
		learn_path(l, sub, depth + 1);
		free(sub);
		free(names[i]);
	}
	free(names);
}

/* learn_open - the configuration's store; an exit code, 0 when ready */
static int
learn_open(struct learn_ctl *l, const char *confdir)
{
	int	rc;

	if ((rc = ctl_load(confdir)) != 0)
		return rc;
	return ctl_store_open(&l->store);
}

/* ctl_learn - tollgatectl learn */
int
ctl_learn(int argc, char **argv)
{
	static const struct option	 opts[] = {
		{ "spam", no_argument, NULL, 's' },
		{ "ham", no_argument, NULL, 'h' },
		{ "forget", no_argument, NULL, 'f' },
		{ "scope", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 }
	};
	struct learn_ctl		 l;
	const char			*confdir = CTL_CONFDIR;
	int64_t				 ns, nh;
	struct tg_err			 err;
	size_t				 i;
	int				 ch, modes = 0, rc;

	memset(&l, 0, sizeof(l));
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			confdir = optarg;
			break;
		case 's':
			l.cls = SPAM_CLASS_SPAM;
			modes++;
			break;
		case 'h':
			l.cls = SPAM_CLASS_HAM;
			modes++;
			break;
		case 'f':
			l.forget = true;
			modes++;
			break;
		case 'S':
			/* domains are case-blind; Bayes keys them lowercase */
			for (i = 0; optarg[i] != '\0'; i++)
				if (optarg[i] >= 'A' && optarg[i] <= 'Z')
					optarg[i] = (char)(optarg[i] + 32);
			l.scope = optarg;
			break;
		default:
			return learn_usage();
		}
	}
	if (modes != 1 || optind >= argc)
		return learn_usage();
	if ((rc = learn_open(&l, confdir)) == 0) {
		tg_log_set_level(TG_LOG_WARN);
		for (; optind < argc; optind++)
			learn_path(&l, argv[optind], 0);
		if (l.forget)
			printf("forgotten %zu, not known %zu, failed %zu\n",
			    l.count[SPAM_BAYES_FORGOTTEN], l.notknown,
			    l.failed);
		else
			printf("learned %zu, moved from %s %zu, already known "
			    "%zu, failed %zu\n", l.count[SPAM_BAYES_LEARNED],
			    l.cls == SPAM_CLASS_SPAM ? "ham" : "spam",
			    l.count[SPAM_BAYES_MOVED],
			    l.count[SPAM_BAYES_ALREADY], l.failed);
		if (spam_bayes_counts(l.store, l.scope, &ns, &nh, &err) ==
		    TG_OK)
			printf("scope %s: %lld spam, %lld ham learned\n",
			    l.scope != NULL ? l.scope : "global",
			    (long long)ns, (long long)nh);
		rc = l.failed > 0 ? 1 : 0;
	}
	ctl_close(&l.store);
	return rc;
}
