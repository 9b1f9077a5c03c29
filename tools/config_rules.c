/*
 * config_rules - `tollgatectl config check --rules PATH`: what the spam
 * rule engine makes of SpamAssassin-syntax rule files.
 *
 * For each path of [spam] rules in the configuration, then each
 * --rules PATH (a .cf file or a directory of them), it loads the rules
 * as the spam module does at start-up and prints how many rules will
 * run, how many were skipped and why (grouped, largest first), and each
 * error with file:line.  Each PATH is loaded on its own, so that its
 * counts are its own; a meta rule naming rules of another PATH sees
 * them as not hit here.  Exit status: EX_CONFIG when a PATH cannot be
 * read; rule errors are reported, not fatal, as the module runs the
 * rest.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"
#include "spam_int.h"
#include "tollgate/conf.h"
#include "tollgate/pipeline.h"

struct ctl_reason {
	const char	*text;
	size_t		 count;
};

/* ctl_reason_cmp - largest count first, then by text */
static int
ctl_reason_cmp(const void *a, const void *b)
{
	const struct ctl_reason	*x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->text, y->text);
}

/* ctl_config_rules_one - the report of one path */
static int
ctl_config_rules_one(const char *path)
{
	struct spam_rules_report  rep;
	struct spam_rules	 *rs;
	struct ctl_reason	 *rv = NULL;
	struct tg_err		  err;
	const char		 *text, *e;
	size_t			  n = 0, count, i;

	if (spam_rules_load(&rs, path, &rep, &err) != TG_OK) {
		fprintf(stderr, "tollgatectl: rules: %s\n", err.text);
		return EX_CONFIG;
	}
	printf("rules %s: %zu loaded, %zu skipped, %zu errors, %zu other "
	    "settings ignored\n", path, rep.loaded, rep.skipped, rep.errors,
	    spam_rules_ignored(rs));
	while (spam_rules_skip_reason(rs, n, &text, &count))
		n++;
	rv = tg_calloc(n + 1, sizeof(*rv));
	for (i = 0; i < n; i++)
		(void)spam_rules_skip_reason(rs, i, &rv[i].text, &rv[i].count);
	qsort(rv, n, sizeof(*rv), ctl_reason_cmp);
	for (i = 0; i < n; i++)
		printf("  skipped: %s: %zu\n", rv[i].text, rv[i].count);
	for (i = 0; (e = spam_rules_error(rs, i)) != NULL; i++)
		printf("  error: %s\n", e);
	free(rv);
	(void)spam_rules_free(rs);
	return 0;
}

char *
ctl_config_spam_rules(void)
{
	const struct tg_conf_section	*secs;
	const struct tg_param		*p;
	size_t				 n, i;

	secs = tg_pipeline_sections(&n);
	for (i = 0; i < n; i++) {
		if (strcmp(secs[i].name, "spam") != 0)
			continue;
		for (p = secs[i].params; p->name != NULL; p++)
			if (strcmp(p->name, "rules") == 0 &&
			    p->type == TG_PT_STRING &&
			    *(char **)p->store != NULL)
				return tg_strdup(*(char **)p->store);
	}
	return NULL;
}

int
ctl_config_rules(int argc, char **argv, const char *configured)
{
	char	*list, *p, *path;
	int	 i, rc = 0, r;

	/* [spam] rules: paths as spam_rules_load splits them */
	list = p = tg_strdup(configured != NULL ? configured : "");
	while ((path = strsep(&p, " \t,")) != NULL)
		if (*path != '\0' && (r = ctl_config_rules_one(path)) != 0)
			rc = r;
	free(list);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rules") != 0)
			continue;
		if (i + 1 >= argc) {
			fprintf(stderr, "tollgatectl: --rules needs a path\n");
			return EX_USAGE;
		}
		if ((r = ctl_config_rules_one(argv[++i])) != 0)
			rc = r;
	}
	return rc;
}
