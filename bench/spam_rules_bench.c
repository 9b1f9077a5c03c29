/*
 * spam_rules_bench - time the rule engine, and count rule hits on a
 * corpus.
 *
 *   spam_rules_bench time [--no-prefilter] [-n N] RULES MESSAGE
 *	load RULES (paths as for spam_rules_load), then run them N times
 *	(default 200) over MESSAGE; prints the load time and the time per
 *	message (--no-prefilter: every regex runs, to see what the
 *	literal prefilter saves).
 *   spam_rules_bench corpus [--check-prefilter] RULES ham:DIR... spam:DIR...
 *	run RULES over every file of each DIR; prints, for each rule that
 *	hit, its hits on ham and on spam, then per class the messages with
 *	any hit and those reaching 5 points with these rules alone (each
 *	such ham listed with its hits).  With
 *	--check-prefilter, each message is also run with the literal
 *	prefilter off, and any message whose hits differ is listed.
 *
 * Messages go through the MIME part (spam_mime_parse, default limits)
 * as in the milter; only the rules are timed.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tollgate/buf.h"
#include "tollgate/log.h"

#include "spam_rules_int.h"

struct bench_msg {
	struct spam_msg	*m;
	char		*text;
};

/* bench_now - seconds, monotonic */
static double
bench_now(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bench_cpu - this process's CPU seconds: on a shared machine, less
 * disturbed by others than the wall clock */
static double
bench_cpu(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bench_load - a message file through the MIME part */
static bool
bench_load(const char *path, struct bench_msg *bm)
{
	struct tg_err	err;
	size_t		len;

	memset(bm, 0, sizeof(*bm));
	if (tg_read_file(path, &bm->text, &len, &err) != TG_OK) {
		fprintf(stderr, "%s\n", err.text);
		return false;
	}
	bm->m = spam_mime_parse(bm->text, len, NULL);
	return true;
}

/* bench_free - what bench_load made */
static void
bench_free(struct bench_msg *bm)
{
	bm->m = spam_msg_free(bm->m);
	free(bm->text);
}

/* bench_rules - load, with the report on stderr */
static struct spam_rules *
bench_rules(const char *paths)
{
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct tg_err		 err;
	double			 t0 = bench_now();

	if (spam_rules_load(&rs, paths, &rep, &err) != TG_OK) {
		fprintf(stderr, "spam_rules_bench: %s\n", err.text);
		exit(1);
	}
	printf("rules: %zu loaded, %zu skipped, %zu errors, %zu prefilter "
	    "literals, load %.2f s\n", rep.loaded, rep.skipped, rep.errors,
	    spam_litset_count(rs->lits), bench_now() - t0);
	return rs;
}

/* bench_time - the time subcommand */
static int
bench_time(int argc, char **argv)
{
	struct spam_rules	*rs;
	struct spam_score	 s;
	struct bench_msg	 bm;
	long			 n = 200, i;
	double			 t0, c0, dt, dc;

	bool			 nopf = false;

	if (argc >= 2 && strcmp(argv[1], "--no-prefilter") == 0) {
		nopf = true;
		argc--;
		argv++;
	}
	if (argc >= 3 && strcmp(argv[1], "-n") == 0) {
		if (!tg_parse_long(argv[2], 1, 1000000, &n))
			return 2;
		argc -= 2;
		argv += 2;
	}
	if (argc != 3)
		return 2;
	rs = bench_rules(argv[1]);
	rs->prefilter_off = nopf;
	if (!bench_load(argv[2], &bm))
		return 1;
	spam_score_init(&s);
	spam_rules_run(rs, bm.m, &s);
	printf("message: %zu bytes, %zu headers, %zu body bytes, %zu URIs; "
	    "%zu hits, %.2f points\n", bm.m->full_len, bm.m->nheaders,
	    bm.m->body_len, bm.m->nuris, s.nhits, s.total);
	spam_score_fini(&s);
	t0 = bench_now();
	c0 = bench_cpu();
	for (i = 0; i < n; i++) {
		spam_score_init(&s);
		spam_rules_run(rs, bm.m, &s);
		spam_score_fini(&s);
	}
	dc = bench_cpu() - c0;
	dt = bench_now() - t0;
	printf("run: %ld messages, %.3f ms CPU per message (%.3f ms "
	    "wall)\n", n, dc * 1000 / n, dt * 1000 / n);
	bench_free(&bm);
	(void)spam_rules_free(rs);
	return 0;
}

struct bench_count {
	char	*name;
	double	 points;
	size_t	 hits[2];
};

/* bench_count_cmp - most spam hits first */
static int
bench_count_cmp(const void *a, const void *b)
{
	const struct bench_count *x = a, *y = b;

	if (x->hits[1] != y->hits[1])
		return x->hits[1] < y->hits[1] ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* bench_tally - a message's hits into the per-rule counts */
static void
bench_tally(struct bench_count **cs, size_t *n, const struct spam_score *s,
    int cls)
{
	size_t	i, j;

	for (i = 0; i < s->nhits; i++) {
		for (j = 0; j < *n; j++)
			if (strcmp((*cs)[j].name, s->hits[i].name) == 0)
				break;
		if (j == *n) {
			*cs = tg_reallocarray(*cs, *n + 1, sizeof(**cs));
			memset(&(*cs)[j], 0, sizeof(**cs));
			(*cs)[j].name = tg_strdup(s->hits[i].name);
			(*cs)[j].points = s->hits[i].points;
			(*n)++;
		}
		(*cs)[j].hits[cls]++;
	}
}

/* bench_hitlist - the hit names, space-separated */
static char *
bench_hitlist(const struct spam_score *s)
{
	struct tg_buf	b;
	size_t		i;

	tg_buf_init(&b);
	tg_buf_puts(&b, "");
	for (i = 0; i < s->nhits; i++)
		tg_buf_printf(&b, " %s", s->hits[i].name);
	return tg_buf_steal(&b);
}

/* bench_corpus - the corpus subcommand */
static int
bench_corpus(int argc, char **argv)
{
	static const char *const cname[] = { "ham", "spam" };
	struct bench_count	*cs = NULL;
	struct spam_rules	*rs;
	struct spam_score	 s;
	struct bench_msg	 bm;
	struct dirent		*de;
	DIR			*d;
	size_t			 nc = 0, msgs[2] = { 0 }, any[2] = { 0 };
	size_t			 five[2] = { 0 }, i;
	double			 top[2] = { 0, 0 };
	char			*path, *h1, *h2;
	int			 a, cls;
	bool			 check = false;
	size_t			 differ = 0;

	if (argc >= 2 && strcmp(argv[1], "--check-prefilter") == 0) {
		check = true;
		argc--;
		argv++;
	}
	if (argc < 3)
		return 2;
	rs = bench_rules(argv[1]);
	for (a = 2; a < argc; a++) {
		cls = strncmp(argv[a], "spam:", 5) == 0;
		if (!cls && strncmp(argv[a], "ham:", 4) != 0)
			return 2;
		if ((d = opendir(strchr(argv[a], ':') + 1)) == NULL) {
			perror(argv[a]);
			return 1;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.' ||
			    strcmp(de->d_name, "cmds") == 0)
				continue;
			path = tg_printf_dup("%s/%s", strchr(argv[a], ':') + 1,
			    de->d_name);
			if (bench_load(path, &bm)) {
				spam_score_init(&s);
				spam_rules_run(rs, bm.m, &s);
				msgs[cls]++;
				any[cls] += s.nhits > 0;
				five[cls] += s.total >= 5;
				if (s.total > top[cls])
					top[cls] = s.total;
				if (cls == 0 && s.total >= 5) {
					h1 = bench_hitlist(&s);
					printf("ham at %.1f: %s:%s\n", s.total,
					    path, h1);
					free(h1);
				}
				bench_tally(&cs, &nc, &s, cls);
				if (check) {
					h1 = bench_hitlist(&s);
					spam_score_fini(&s);
					spam_score_init(&s);
					rs->prefilter_off = true;
					spam_rules_run(rs, bm.m, &s);
					rs->prefilter_off = false;
					h2 = bench_hitlist(&s);
					if (strcmp(h1, h2) != 0) {
						differ++;
						printf("prefilter differs: %s\n"
						    "  with: %s\n  without: %s\n",
						    path, h1, h2);
					}
					free(h1);
					free(h2);
				}
				spam_score_fini(&s);
				bench_free(&bm);
			}
			free(path);
		}
		(void)closedir(d);
	}
	qsort(cs, nc, sizeof(*cs), bench_count_cmp);
	printf("%-28s %7s %6s %6s\n", "rule", "points", "ham", "spam");
	for (i = 0; i < nc; i++) {
		printf("%-28s %7.2f %6zu %6zu\n", cs[i].name, cs[i].points,
		    cs[i].hits[0], cs[i].hits[1]);
		free(cs[i].name);
	}
	if (check)
		printf("prefilter check: %zu messages differ\n", differ);
	for (cls = 0; cls < 2; cls++)
		printf("%s: %zu messages, %zu with a hit, %zu at 5 points or "
		    "more, highest %.1f\n", cname[cls], msgs[cls], any[cls],
		    five[cls], top[cls]);
	free(cs);
	(void)spam_rules_free(rs);
	return 0;
}

int
main(int argc, char **argv)
{
	int	rc = 2;

	tg_log_open("spam_rules_bench", true);
	tg_log_set_level(TG_LOG_WARN);
	if (argc >= 2 && strcmp(argv[1], "time") == 0)
		rc = bench_time(argc - 1, argv + 1);
	else if (argc >= 2 && strcmp(argv[1], "corpus") == 0)
		rc = bench_corpus(argc - 1, argv + 1);
	if (rc == 2)
		fprintf(stderr, "usage: spam_rules_bench time [--no-prefilter] [-n N] RULES "
		    "MESSAGE\n       spam_rules_bench corpus [--check-prefilter] RULES "
		    "ham:DIR... spam:DIR...\n");
	return rc;
}
