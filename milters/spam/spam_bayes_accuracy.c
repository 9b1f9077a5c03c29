/*
 * spam_bayes_accuracy - train Bayes on a fixed part of a corpus, score
 * the rest, and report precision, recall, F1 and the ham false-positive
 * rate per ham directory.
 *
 *   spam_bayes_accuracy [-k K] [-f FOLD] [-s S] [-r RULES]
 *       [-t THRESHOLD] [-p PROB] [-o SCORES] [--max-fp RATE]
 *       [--min-recall RATE] [--min-bayes-recall RATE] CORPUS
 *
 * CORPUS holds easy_ham, hard_ham, spam (and easy_ham_2, spam_2 if
 * present).  In each directory, files in sorted name order: file i is
 * tested when i % K == FOLD (default K - 1; K = 5: 4 of every 5
 * learned), else learned, into an embedded store in a scratch
 * directory.  With -s S, only every S-th of each directory's test files
 * (the first, the S+1-th, ...) is scored: a smaller fixed subset, same
 * training.  A message is
 * spam when its score reaches THRESHOLD (default 5): the BAYES_xx
 * points, plus, with -r, the points of the rules RULES loads (their
 * "score" lines also give BAYES_xx's points; without them,
 * SpamAssassin's defaults for a Bayes-enabled set without network
 * tests).  Bayes alone is also reported: spam when its probability
 * reaches PROB (default 0.99, BAYES_99).  --max-fp applies to both
 * verdicts, --min-recall to the score's (Bayes alone without -r),
 * --min-bayes-recall to Bayes alone's.  -o writes "dir/file class
 * score prob tests rules" per scored message, rules being the score less
 * the BAYES_xx points (bench/spam_bayes_cv re-adds other BAYES_xx
 * points to it).  Exit 1 when the ham false-positive rate is >= --max-fp or
 * the recall below --min-recall; 2 on a usage or set-up error.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tollgate/buf.h"
#include "tollgate/log.h"
#include "tollgate/store.h"
#include "tollgate/util.h"

#include "spam_bayes_int.h"

static const struct {
	const char	*dir;
	bool		 spam;
} acc_dirs[] = {
	{ "easy_ham", false }, { "easy_ham_2", false }, { "hard_ham", false },
	{ "spam", true }, { "spam_2", true },
};

/* SpamAssassin 3.4's BAYES_xx points, score set 2 (Bayes, no network) */
static const struct {
	const char	*name;
	double		 points;
} acc_bayes_points[] = {
	{ "BAYES_00", -1.9 }, { "BAYES_05", -0.5 }, { "BAYES_20", -0.001 },
	{ "BAYES_40", -0.001 }, { "BAYES_50", 0.8 }, { "BAYES_60", 1.5 },
	{ "BAYES_80", 2.0 }, { "BAYES_95", 3.0 }, { "BAYES_99", 3.5 },
	{ "BAYES_999", 0.2 },
};

struct acc_file {
	char	*path;
	char	*label;		/* dir/name */
	size_t	 dir;
	bool	 test;
	bool	 skip;	/* a test file left out by -s */
};

struct acc_tally {
	size_t	n, flagged;
	size_t	bayes;		/* Bayes' probability alone >= -p */
};

/* acc_cmp - file names in order */
static int
acc_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* acc_list - the files of CORPUS/dir in name order, marked train/test */
static void
acc_list(const char *corpus, size_t d, long k, long fold, long sub,
    struct acc_file **v, size_t *n, size_t *cap)
{
	DIR		*dp;
	struct dirent	*de;
	char		*path, **names = NULL;
	size_t		 nn = 0, nc = 0, i, ntest = 0;
	bool		 test;

	path = tg_printf_dup("%s/%s", corpus, acc_dirs[d].dir);
	if ((dp = opendir(path)) == NULL) {
		free(path);
		return;
	}
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "cmds") == 0)
			continue;
		if (nn == nc) {
			nc = nc == 0 ? 256 : nc * 2;
			names = tg_reallocarray(names, nc, sizeof(*names));
		}
		names[nn++] = tg_strdup(de->d_name);
	}
	(void)closedir(dp);
	if (nn > 0)
		qsort(names, nn, sizeof(*names), acc_cmp);
	for (i = 0; i < nn; i++) {
		if (*n == *cap) {
			*cap = *cap == 0 ? 1024 : *cap * 2;
			*v = tg_reallocarray(*v, *cap, sizeof(**v));
		}
		(*v)[*n].path = tg_printf_dup("%s/%s", path, names[i]);
		(*v)[*n].label = tg_printf_dup("%s/%s", acc_dirs[d].dir,
		    names[i]);
		(*v)[*n].dir = d;
		test = (long)(i % (size_t)k) == fold;
		(*v)[*n].skip = test && (long)(ntest++ % (size_t)sub) != 0;
		(*v)[(*n)++].test = test;
		free(names[i]);
	}
	free(names);
	free(path);
}

/* acc_read - a file, less a first mbox "From " line */
static struct spam_msg *
acc_read(const char *path, char **data)
{
	FILE	*f;
	size_t	 len = 0, cap = 0, r, off = 0;
	char	*nl;

	*data = NULL;
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	do {
		if (cap - len < 65536) {
			cap = cap == 0 ? 65536 : cap * 2;
			*data = tg_realloc(*data, cap + 1);
		}
		r = fread(*data + len, 1, cap - len, f);
		len += r;
	} while (r > 0);
	(void)fclose(f);
	(*data)[len] = '\0';
	if (len > 5 && strncmp(*data, "From ", 5) == 0 &&
	    (nl = memchr(*data, '\n', len)) != NULL)
		off = (size_t)(nl + 1 - *data);
	return spam_mime_parse(*data + off, len - off,
	    spam_bayes_file_limits());
}

/* acc_points - BAYES_xx's points: the rules' score line, else SA's */
static double
acc_points(const struct spam_rules *rules, const char *name)
{
	double	p;
	size_t	i;

	if (rules != NULL && spam_rules_score(rules, name, &p))
		return p;
	for (i = 0; i < TG_NITEMS(acc_bayes_points); i++)
		if (strcmp(acc_bayes_points[i].name, name) == 0)
			return acc_bayes_points[i].points;
	return 0;
}

/* acc_score - the message's score and Bayes' probability */
static double
acc_score(struct tg_store *st, const struct spam_rules *rules,
    const struct spam_msg *m, double *prob, double *rulepts,
    struct tg_buf *tests)
{
	struct spam_score	 sc;
	struct tg_err		 err;
	const char		*extra;
	double			 total;
	size_t			 i;

	spam_score_init(&sc);
	if (rules != NULL)
		spam_rules_run(rules, m, &sc);
	*prob = 0.5;
	if (spam_bayes_classify(st, NULL, m, prob, &err) == TG_OK) {
		spam_score_add(&sc, spam_bayes_rule(*prob), acc_points(rules,
		    spam_bayes_rule(*prob)), NULL);
		if ((extra = spam_bayes_rule_extra(*prob)) != NULL)
			spam_score_add(&sc, extra, acc_points(rules, extra),
			    NULL);
	} else
		fprintf(stderr, "bayes: %s\n", err.text);
	total = *rulepts = 0;
	for (i = 0; i < sc.nhits; i++) {
		total += sc.hits[i].points;
		if (strncmp(sc.hits[i].name, "BAYES_", 6) != 0)
			*rulepts += sc.hits[i].points;
		if (tests != NULL) {
			if (i > 0)
				tg_buf_putc(tests, ',');
			tg_buf_puts(tests, sc.hits[i].name);
		}
	}
	spam_score_fini(&sc);
	return total;
}

/* acc_store - an embedded store in a scratch directory */
static struct tg_store *
acc_store(char *dir)
{
	struct tg_store_conf	 c;
	struct tg_store		*st;
	struct tg_err		 err;
	char			*path;

	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		return NULL;
	}
	path = tg_printf_dup("%s/lmdb", dir);
	memset(&c, 0, sizeof(c));
	c.backend = TG_STORE_EMBEDDED;
	c.path = path;
	c.map_size = (size_t)1 << 30;
	c.timeout_ms = 1000;
	if ((st = tg_store_open(&c, &err)) == NULL)
		fprintf(stderr, "store: %s\n", err.text);
	free(path);
	return st;
}

/* acc_rates - precision, recall, F1 and ham FP rate of a tally:
 * by score (scored) or by Bayes' probability */
static void
acc_rates(const struct acc_tally *t, bool scored, double *prec, double *rec,
    double *f1, double *fp)
{
	size_t	d, tp = 0, fpn = 0, hamn = 0, spamn = 0, f;

	for (d = 0; d < TG_NITEMS(acc_dirs); d++) {
		f = scored ? t[d].flagged : t[d].bayes;
		if (acc_dirs[d].spam) {
			spamn += t[d].n;
			tp += f;
		} else {
			hamn += t[d].n;
			fpn += f;
		}
	}
	*prec = tp + fpn > 0 ? (double)tp / (double)(tp + fpn) : 0;
	*rec = spamn > 0 ? (double)tp / (double)spamn : 0;
	*f1 = *prec + *rec > 0 ? 2 * *prec * *rec / (*prec + *rec) : 0;
	*fp = hamn > 0 ? (double)fpn / (double)hamn : 0;
}

/* acc_report - one verdict's table */
static void
acc_report(const struct acc_tally *t, bool scored, double thr,
    const char *what)
{
	double	prec, rec, f1, fp;
	size_t	d, f;

	if (scored)
		printf("%s, spam at score >= %.1f:\n", what, thr);
	else
		printf("Bayes alone, spam at probability >= %.3f:\n", thr);
	for (d = 0; d < TG_NITEMS(acc_dirs); d++) {
		if (t[d].n == 0)
			continue;
		f = scored ? t[d].flagged : t[d].bayes;
		printf("  %-10s tested %4zu  flagged spam %4zu  (%.2f%%)\n",
		    acc_dirs[d].dir, t[d].n, f, 100.0 * (double)f /
		    (double)t[d].n);
	}
	acc_rates(t, scored, &prec, &rec, &f1, &fp);
	printf("  precision %.4f  recall %.4f  F1 %.4f  ham FP rate %.4f\n",
	    prec, rec, f1, fp);
}

static int
acc_usage(void)
{
	fprintf(stderr, "usage: spam_bayes_accuracy [-k K] [-f FOLD] [-s S] "
	    "[-r RULES] [-t THRESHOLD] [-p PROB] [-o SCORES] [--max-fp RATE] "
	    "[--min-recall RATE] [--min-bayes-recall RATE] CORPUS\n");
	return 2;
}

int
main(int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "max-fp", required_argument, NULL, 'F' },
		{ "min-recall", required_argument, NULL, 'R' },
		{ "min-bayes-recall", required_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 }
	};
	struct acc_tally		 tally[TG_NITEMS(acc_dirs)];
	struct spam_rules_report	 rep;
	struct spam_rules		*rules = NULL;
	struct acc_file			*files = NULL;
	struct tg_store			*st;
	struct spam_msg			*m;
	struct tg_buf			 tests = { 0 };
	struct tg_err			 err;
	enum spam_bayes_outcome		 out;
	struct timespec			 t0, t1;
	char				 dir[] = "/tmp/spam_accuracy.XXXXXX";
	char				*data, *cmd;
	const char			*rpath = NULL, *opath = NULL;
	FILE				*of = NULL;
	double				 thr = 5.0, maxfp = 1.0, minrec = 0.0;
	double				 pthr = 0.99, minbayes = 0.0;
	double				 score, prob, rulepts;
	double				 prec, rec, f1, fp;
	size_t				 n = 0, cap = 0, i, d, learned[2] = {0};
	long				 k = 5, fold = -1, sub = 1;
	int				 ch, rc = 0;

	while ((ch = getopt_long(argc, argv, "k:f:s:r:t:p:o:", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'k':
			if (!tg_parse_long(optarg, 2, 100, &k))
				return acc_usage();
			break;
		case 'f':
			if (!tg_parse_long(optarg, 0, 99, &fold))
				return acc_usage();
			break;
		case 's':
			if (!tg_parse_long(optarg, 1, 1000, &sub))
				return acc_usage();
			break;
		case 'r':
			rpath = optarg;
			break;
		case 't':
			thr = strtod(optarg, NULL);
			break;
		case 'p':
			pthr = strtod(optarg, NULL);
			break;
		case 'o':
			opath = optarg;
			break;
		case 'F':
			maxfp = strtod(optarg, NULL);
			break;
		case 'R':
			minrec = strtod(optarg, NULL);
			break;
		case 'B':
			minbayes = strtod(optarg, NULL);
			break;
		default:
			return acc_usage();
		}
	}
	if (optind != argc - 1 || fold >= k)
		return acc_usage();
	if (fold < 0)
		fold = k - 1;
	tg_log_set_level(TG_LOG_ERR);
	/* lines out as they come, whatever ends the run */
	(void)setvbuf(stdout, NULL, _IOLBF, 0);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	if (rpath != NULL) {
		if (spam_rules_load(&rules, rpath, &rep, &err) != TG_OK) {
			fprintf(stderr, "rules: %s\n", err.text);
			return 2;
		}
		printf("rules: %s: %zu loaded, %zu skipped, %zu errors\n",
		    rpath, rep.loaded, rep.skipped, rep.errors);
	}
	for (d = 0; d < TG_NITEMS(acc_dirs); d++)
		acc_list(argv[optind], d, k, fold, sub, &files, &n, &cap);
	if (n == 0) {
		fprintf(stderr, "%s: no corpus there\n", argv[optind]);
		return 2;
	}
	if ((st = acc_store(dir)) == NULL)
		return 2;
	if (opath != NULL && (of = fopen(opath, "w")) == NULL) {
		fprintf(stderr, "%s: %s\n", opath, strerror(errno));
		return 2;
	}
	for (i = 0; i < n; i++) {
		if (files[i].test)
			continue;
		if ((m = acc_read(files[i].path, &data)) == NULL) {
			fprintf(stderr, "%s: unreadable\n", files[i].path);
			continue;
		}
		if (spam_bayes_train(st, NULL, m, acc_dirs[files[i].dir].spam ?
		    SPAM_CLASS_SPAM : SPAM_CLASS_HAM, false, &out, &err) !=
		    TG_OK)
			fprintf(stderr, "%s: %s\n", files[i].path, err.text);
		else if (out == SPAM_BAYES_LEARNED)
			learned[acc_dirs[files[i].dir].spam]++;
		m = spam_msg_free(m);
		free(data);
	}
	memset(tally, 0, sizeof(tally));
	for (i = 0; i < n; i++) {
		if (!files[i].test || files[i].skip)
			continue;
		if ((m = acc_read(files[i].path, &data)) == NULL)
			continue;
		tests.len = 0;
		score = acc_score(st, rules, m, &prob, &rulepts, &tests);
		d = files[i].dir;
		tally[d].n++;
		if (score >= thr)
			tally[d].flagged++;
		if (prob >= pthr)
			tally[d].bayes++;
		if (of != NULL)
			fprintf(of, "%s %s %.3f %.6f %s %.3f\n",
			    files[i].label, acc_dirs[d].spam ? "spam" : "ham",
			    score, prob, tests.len > 0 ? tg_buf_cstr(&tests) :
			    "none", rulepts);
		m = spam_msg_free(m);
		free(data);
	}
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("trained: %zu spam, %zu ham (%ld-1 of every %ld per "
	    "directory, by sorted name; fold %ld", learned[1], learned[0], k,
	    k, fold);
	if (sub > 1)
		printf(", every %ld-th test file scored", sub);
	printf(")\n");
	acc_report(tally, false, pthr, NULL);
	acc_report(tally, true, thr, rules != NULL ? "rules + Bayes" :
	    "Bayes points alone");
	printf("%.1f s\n", (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	acc_rates(tally, rules != NULL, &prec, &rec, &f1, &fp);
	acc_rates(tally, false, &prec, &rec, &f1, &fp);
	if (fp >= maxfp || rec < minbayes) {
		printf("FAIL: Bayes alone: ham FP rate %.4f (limit %.4f), "
		    "recall %.4f (floor %.4f)\n", fp, maxfp, rec, minbayes);
		rc = 1;
	}
	acc_rates(tally, rules != NULL, &prec, &rec, &f1, &fp);
	if (fp >= maxfp) {
		printf("FAIL: ham FP rate %.4f >= %.4f\n", fp, maxfp);
		rc = 1;
	}
	if (rec < minrec) {
		printf("FAIL: recall %.4f < %.4f\n", rec, minrec);
		rc = 1;
	}
	if (of != NULL && fclose(of) != 0)
		rc = 2;
	(void)tg_store_close(st);
	cmd = tg_printf_dup("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 2;
	free(cmd);
	for (i = 0; i < n; i++) {
		free(files[i].path);
		free(files[i].label);
	}
	free(files);
	tg_buf_fini(&tests);
	(void)spam_rules_free(rules);
	return rc;
}
