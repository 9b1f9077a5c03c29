/*
 * spam_rules - loading SpamAssassin-syntax rule files.
 *
 * Reads the rule kinds that need no Perl: header (with :raw, :addr,
 * :name, exists:, [if-unset:], the pseudo-headers ALL, ToCc, MESSAGEID,
 * EnvelopeFrom), body, rawbody, uri, full, meta, and eval: rules whose
 * function we implement natively (spam_rules_eval.c); the settings
 * score, describe, tflags; the structure lines include, ifplugin, if,
 * else, endif.  "lang xx" lines are for other locales and skipped,
 * priority is not needed (metas run after what they use), and other
 * settings (welcomelists, plugin options) are counted as ignored.
 *
 * As in SpamAssassin, a name collects its definition, score, describe
 * and tflags from any file in any order, and a later definition
 * replaces an earlier one; the rule set is finished once every file is
 * read.  A rule we cannot run is refused, never half-run: the refusal
 * (why, and file:line for errors) is counted for the load report.
 *
 * Scores: the score set for net tests off and Bayes on
 * (SPAM_RULES_SCORESET), for tflags net rules (which the DNSBL part
 * runs) the set for net tests on and Bayes on; no score line means 1.0,
 * 0.01 for T_ rules, -1.0 for tflags nice, none for __ sub-rules; a
 * score of 0 disables.
 *
 * This file holds the loader's frame: files and directories, includes,
 * the if/ifplugin stack, the name table, and the finished set; the
 * directives themselves are parsed in spam_rules_parse.c.  The loader
 * runs at start-up in one thread; the result is read-only.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tollgate/buf.h"
#include "tollgate/log.h"

#include "spam_rules_int.h"

#define SPAM_INCLUDE_MAXDEPTH	8

static enum tg_status spam_load_path(struct spam_loader *, const char *,
		    struct tg_err *);

/* Plugins whose rules tollgate runs: the evals we implement natively,
 * and those another part does (Bayes; DNSBL, URIBL; DKIM, SPF by their
 * modules).  Their eval rules are then refused one by one, with the
 * reason, but their score lines are kept. */
static const char *const spam_plugins[] = {
	"Mail::SpamAssassin::Plugin::HeaderEval",
	"Mail::SpamAssassin::Plugin::BodyEval",
	"Mail::SpamAssassin::Plugin::MIMEEval",
	"Mail::SpamAssassin::Plugin::Bayes",
	"Mail::SpamAssassin::Plugin::DNSEval",
	"Mail::SpamAssassin::Plugin::URIDNSBL",
	"Mail::SpamAssassin::Plugin::DKIM",
	"Mail::SpamAssassin::Plugin::SPF",
	"Mail::SpamAssassin::Plugin::DMARC",
	"Mail::SpamAssassin::Plugin::ReplaceTags",
};

/* can(X) features we match: syntax and semantics SpamAssassin 4.0 adds
 * that tollgate reads the same way. */
static const char *const spam_features[] = {
	"Mail::SpamAssassin::Conf::feature_bug6558_free",
	"Mail::SpamAssassin::Conf::perl_min_version_5010000",
	"Mail::SpamAssassin::Conf::feature_registryboundaries",
	"Mail::SpamAssassin::Conf::feature_welcomelist_blocklist",
	"Mail::SpamAssassin::Conf::feature_blocklist_welcomelist",
	"Mail::SpamAssassin::Conf::feature_yesno_takes_args",
	"Mail::SpamAssassin::Plugin::BodyEval::has_check_body_length",
};

/* Rule kinds of plugins we do not have: counted as skipped rules. */
static const char *const spam_foreign_kinds[] = {
	"mimeheader", "askdns", "urirhssub", "urirhsbl", "uridnsbl",
	"uri_detail", "rbl_headers", "hashbl_acl", "check_rbl",
};

/* spam_in_list - s is one of list */
static bool
spam_in_list(const char *s, const char *const *list, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* ---- the name table ---- */

/* spam_hash_str - FNV-1a */
static size_t
spam_hash_str(const char *s)
{
	size_t	h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* spam_find - entry index of name, or -1 */
static long
spam_find(const struct spam_loader *ld, const char *name)
{
	size_t	i, e;

	if (ld->hashsz == 0)
		return -1;
	for (i = spam_hash_str(name) & (ld->hashsz - 1);
	    (e = ld->hash[i]) != 0; i = (i + 1) & (ld->hashsz - 1))
		if (strcmp(ld->ents[e - 1].r.name, name) == 0)
			return (long)(e - 1);
	return -1;
}

/* spam_rehash - double the table */
static void
spam_rehash(struct spam_loader *ld)
{
	size_t	e, i;

	free(ld->hash);
	ld->hashsz = ld->hashsz ? ld->hashsz * 2 : 1024;
	ld->hash = tg_calloc(ld->hashsz, sizeof(size_t));
	for (e = 0; e < ld->nents; e++) {
		i = spam_hash_str(ld->ents[e].r.name) & (ld->hashsz - 1);
		while (ld->hash[i] != 0)
			i = (i + 1) & (ld->hashsz - 1);
		ld->hash[i] = e + 1;
	}
}

/* spam_entry - the entry of name, made on first mention */
struct spam_entry *
spam_entry(struct spam_loader *ld, const char *name)
{
	long	i = spam_find(ld, name);

	if (i >= 0)
		return &ld->ents[i];
	ld->ents = tg_reallocarray(ld->ents, ld->nents + 1, sizeof(*ld->ents));
	memset(&ld->ents[ld->nents], 0, sizeof(*ld->ents));
	ld->ents[ld->nents].r.name = tg_strdup(name);
	ld->nents++;
	if (ld->nents * 2 > ld->hashsz)
		spam_rehash(ld);
	else {
		size_t	h = spam_hash_str(name) & (ld->hashsz - 1);

		while (ld->hash[h] != 0)
			h = (h + 1) & (ld->hashsz - 1);
		ld->hash[h] = ld->nents;
	}
	return &ld->ents[ld->nents - 1];
}

/* spam_rule_clear - drop a definition (a new one replaces it) */
void
spam_rule_clear(struct spam_entry *e)
{
	size_t	i;

	free(e->r.where);
	free(e->r.hdr);
	free(e->r.unset);
	spam_re_fini(&e->r.re);
	e->r.meta = spam_expr_free(e->r.meta);
	for (i = 0; i < e->r.args.n; i++)
		free(e->r.args.v[i]);
	e->r.where = e->r.hdr = e->r.unset = NULL;
	e->r.args.n = 0;
	e->r.eval = NULL;
	e->r.negate = false;
	e->r.form = SPAM_HDR_DECODED;
	free(e->skip);
	free(e->error);
	free(e->src);
	e->skip = e->error = e->src = NULL;
	e->defined = false;
}

/* ---- report pieces ---- */

/* spam_line_error - an error not tied to a rule name */
void
spam_line_error(struct spam_loader *ld, const char *why)
{
	struct spam_rules	*rs = ld->rs;

	rs->errors = tg_reallocarray(rs->errors, rs->nerrors + 1,
	    sizeof(char *));
	rs->errors[rs->nerrors++] = tg_printf_dup("%s:%zu: %s", ld->file,
	    ld->line, why);
}

/* spam_refuse - a rule we will not run; error (malformed) or skip */
void
spam_refuse(struct spam_loader *ld, struct spam_entry *e, bool error,
    const char *why)
{
	if (error)
		e->error = tg_printf_dup("%s:%zu: %s: %s", ld->file, ld->line,
		    e->r.name, why);
	else
		e->skip = tg_strdup(why);
}

/* spam_reason_add - one more refusal for why */
static void
spam_reason_add(struct spam_rules *rs, const char *why)
{
	size_t	i;

	for (i = 0; i < rs->nreasons; i++)
		if (strcmp(rs->reasons[i].text, why) == 0) {
			rs->reasons[i].count++;
			return;
		}
	rs->reasons = tg_reallocarray(rs->reasons, rs->nreasons + 1,
	    sizeof(*rs->reasons));
	rs->reasons[rs->nreasons].text = tg_strdup(why);
	rs->reasons[rs->nreasons++].count = 1;
}

/* ---- words ---- */

/* spam_word - the next white-space separated word, NUL-terminated in
 * place; NULL at the end */
char *
spam_word(char **sp)
{
	char	*s = *sp, *w;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0')
		return NULL;
	w = s;
	while (*s != '\0' && !isspace((unsigned char)*s))
		s++;
	if (*s != '\0')
		*s++ = '\0';
	*sp = s;
	return w;
}

/* spam_valid_name - SpamAssassin's rule names: \w+, no leading digit */
bool
spam_valid_name(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

/* ---- conditions ---- */

/* spam_if_leaf - version, plugin(X), can(X), perl_version */
static bool
spam_if_leaf(const char *name, double *v)
{
	size_t	n = strlen(name);

	if (strcmp(name, "version") == 0) {
		*v = SPAM_RULES_SA_VERSION;
		return true;
	}
	if (strcmp(name, "perl_version") == 0) {
		*v = 5.036;
		return true;
	}
	if (n > 8 && strncmp(name, "plugin(", 7) == 0 && name[n - 1] == ')') {
		char	*x = tg_strndup(name + 7, n - 8);

		*v = spam_in_list(tg_trim(x), spam_plugins,
		    TG_NITEMS(spam_plugins));
		free(x);
		return true;
	}
	if (n > 5 && strncmp(name, "can(", 4) == 0 && name[n - 1] == ')') {
		char	*x = tg_strndup(name + 4, n - 5);

		*v = spam_in_list(tg_trim(x), spam_features,
		    TG_NITEMS(spam_features));
		free(x);
		return true;
	}
	return false;
}

/* spam_if_push - a new frame; why is what makes it false */
static void
spam_if_push(struct spam_loader *ld, bool cond, char *why)
{
	struct spam_if	*f;
	bool		 parent = ld->nifs == 0 || ld->ifs[ld->nifs - 1].on;

	if (ld->nifs == SPAM_IF_MAXDEPTH) {
		spam_line_error(ld, "if/ifplugin nested too deep");
		free(why);
		return;
	}
	f = &ld->ifs[ld->nifs++];
	f->taken = cond;
	f->parent_on = parent;
	f->on = parent && cond;
	f->why = why;
}

/* spam_if_line - ifplugin, if, else, endif; true if line was one */
static bool
spam_if_line(struct spam_loader *ld, const char *dir, char *rest)
{
	struct spam_expr	*e;
	struct tg_err		 err;
	bool			 v;

	if (strcmp(dir, "ifplugin") == 0) {
		rest = tg_trim(rest);
		v = spam_in_list(rest, spam_plugins, TG_NITEMS(spam_plugins));
		spam_if_push(ld, v, tg_printf_dup("ifplugin %s: plugin not in "
		    "tollgate", rest));
	} else if (strcmp(dir, "if") == 0) {
		e = spam_expr_parse(rest, spam_if_leaf, &err);
		v = false;
		if (e == NULL)
			spam_line_error(ld, err.text);
		else
			v = spam_expr_eval(e, NULL) != 0;
		(void)spam_expr_free(e);
		spam_if_push(ld, v, tg_printf_dup("if %s: false",
		    tg_trim(rest)));
	} else if (strcmp(dir, "else") == 0) {
		if (ld->nifs == 0)
			spam_line_error(ld, "else without if");
		else {
			struct spam_if *f = &ld->ifs[ld->nifs - 1];

			f->taken = !f->taken;
			f->on = f->parent_on && f->taken;
		}
	} else if (strcmp(dir, "endif") == 0) {
		if (ld->nifs == 0)
			spam_line_error(ld, "endif without if");
		else
			free(ld->ifs[--ld->nifs].why);
	} else
		return false;
	return true;
}

/* spam_if_why - the reason of the innermost false frame */
static const char *
spam_if_why(const struct spam_loader *ld)
{
	size_t	i;

	for (i = ld->nifs; i > 0; i--)
		if (!ld->ifs[i - 1].taken)
			return ld->ifs[i - 1].why;
	return "inside a false if";
}

/* spam_inactive - a rule inside a false if: refused unless defined
 * elsewhere (the other branch usually is) */
static void
spam_inactive(struct spam_loader *ld, const char *dir, char *rest)
{
	static const char *const kinds[] = { "header", "body", "rawbody",
	    "uri", "full", "meta" };
	struct spam_entry	*e;
	char			*name;

	if (!spam_in_list(dir, kinds, TG_NITEMS(kinds)) &&
	    !spam_in_list(dir, spam_foreign_kinds,
	    TG_NITEMS(spam_foreign_kinds)))
		return;
	if ((name = spam_word(&rest)) == NULL || !spam_valid_name(name))
		return;
	e = spam_entry(ld, name);
	if (e->defined || e->skip != NULL)
		return;
	e->skip = tg_strdup(spam_if_why(ld));
}


/* spam_strip_comment - SpamAssassin's rule: # starts a comment unless
 * written \# (which then stands for #) */
static void
spam_strip_comment(char *s)
{
	char	*r, *w;

	for (r = w = s; *r != '\0'; r++) {
		if (*r == '#' && (r == s || r[-1] != '\\'))
			break;
		if (*r == '\\' && r[1] == '#')
			continue;
		*w++ = *r;
	}
	*w = '\0';
}

/* spam_line - one line of a file */
static void
spam_line(struct spam_loader *ld, char *s)
{
	static const char *const kinds[] = { "header", "body", "rawbody",
	    "uri", "full", "meta" };
	char	*dir, *rest, *path;
	struct tg_err err;

	spam_strip_comment(s);
	rest = s;
	if ((dir = spam_word(&rest)) == NULL)
		return;
	if (spam_if_line(ld, dir, rest))
		return;
	if (ld->nifs > 0 && !ld->ifs[ld->nifs - 1].on) {
		spam_inactive(ld, dir, rest);
		return;
	}
	if (spam_in_list(dir, kinds, TG_NITEMS(kinds)))
		spam_define(ld, dir, rest);
	else if (spam_in_list(dir, spam_foreign_kinds,
	    TG_NITEMS(spam_foreign_kinds)))
		spam_foreign(ld, dir, rest);
	else if (strcmp(dir, "score") == 0)
		spam_score_line(ld, rest);
	else if (strcmp(dir, "tflags") == 0)
		spam_tflags_line(ld, rest);
	else if (strcmp(dir, "describe") == 0)
		spam_describe_line(ld, rest);
	else if (strncmp(dir, "replace_", 8) == 0)
		spam_replace_line(ld, dir + 8, rest);
	else if (strcmp(dir, "include") == 0) {
		rest = tg_trim(rest);
		path = rest[0] == '/' || strrchr(ld->file, '/') == NULL ?
		    tg_strdup(rest) : tg_printf_dup("%.*s/%s",
		    (int)(strrchr(ld->file, '/') - ld->file), ld->file, rest);
		if (spam_load_path(ld, path, &err) != TG_OK)
			spam_line_error(ld, err.text);
		free(path);
	} else if (strcmp(dir, "lang") != 0 && strcmp(dir, "priority") != 0)
		ld->rs->ignored++;
}

/* spam_load_file - every line of one file */
static enum tg_status
spam_load_file(struct spam_loader *ld, const char *path, struct tg_err *err)
{
	const char	*ofile = ld->file;
	size_t		 oline = ld->line, nifs = ld->nifs, len;
	char		*text, *s, *nl;

	if (ld->incdepth >= SPAM_INCLUDE_MAXDEPTH)
		return tg_err_set(err, TG_PERM, "%s: includes nested too deep",
		    path);
	if (tg_read_file(path, &text, &len, err) != TG_OK)
		return err->status;
	ld->incdepth++;
	ld->file = path;
	ld->line = 0;
	for (s = text; s < text + len; s = nl + 1) {
		if ((nl = memchr(s, '\n', (size_t)(text + len - s))) == NULL)
			nl = text + len;
		*nl = '\0';
		if (nl > s && nl[-1] == '\r')
			nl[-1] = '\0';
		ld->line++;
		spam_line(ld, s);
	}
	if (ld->nifs > nifs) {
		spam_line_error(ld, "if/ifplugin without endif at end of file");
		while (ld->nifs > nifs)
			free(ld->ifs[--ld->nifs].why);
	}
	free(text);
	ld->file = ofile;
	ld->line = oline;
	ld->incdepth--;
	return TG_OK;
}

/* spam_cmp_str - qsort on char * */
static int
spam_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* spam_load_path - a file, or each *.cf of a directory in name order */
static enum tg_status
spam_load_path(struct spam_loader *ld, const char *path, struct tg_err *err)
{
	struct stat	 st;
	struct dirent	*de;
	DIR		*d;
	char		**names = NULL;
	size_t		 n = 0, i, l;
	enum tg_status	 st2 = TG_OK;

	if (stat(path, &st) == -1)
		return tg_err_set(err, errno == ENOENT ? TG_NOTFOUND : TG_PERM,
		    "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return spam_load_file(ld, path, err);
	if ((d = opendir(path)) == NULL)
		return tg_err_set(err, TG_PERM, "%s: %s", path,
		    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		l = strlen(de->d_name);
		if (l < 4 || de->d_name[0] == '.' ||
		    strcmp(de->d_name + l - 3, ".cf") != 0)
			continue;
		names = tg_reallocarray(names, n + 1, sizeof(char *));
		names[n++] = tg_printf_dup("%s/%s", path, de->d_name);
	}
	(void)closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(char *), spam_cmp_str);
	for (i = 0; i < n; i++) {
		if (st2 == TG_OK)
			st2 = spam_load_file(ld, names[i], err);
		free(names[i]);
	}
	free(names);
	return st2;
}

/* ---- finishing the set ---- */

/* spam_final_score - the score a rule carries */
static double
spam_final_score(const struct spam_entry *e)
{
	if (e->scored)
		return e->scores[e->r.tflags & SPAM_TF_NET ?
		    SPAM_RULES_SCORESET_NET : SPAM_RULES_SCORESET];
	if (strncmp(e->r.name, "__", 2) == 0)
		return 0;
	if (strncmp(e->r.name, "T_", 2) == 0)
		return 0.01;
	return e->r.tflags & SPAM_TF_NICE ? -1.0 : 1.0;
}

/* spam_cmp_score - qsort on score entries by name */
static int
spam_cmp_score(const void *a, const void *b)
{
	return strcmp(((const struct spam_score_entry *)a)->name,
	    ((const struct spam_score_entry *)b)->name);
}

/* spam_resolve - meta names to rule indexes (-1: not run: worth 0) */
static void
spam_resolve(const struct spam_loader *ld, const long *map,
    struct spam_expr *x)
{
	long	i;

	if (x == NULL)
		return;
	if (x->op == SPAM_EX_RULE) {
		i = spam_find(ld, x->name);
		x->rule = i >= 0 ? map[i] : -1;
	}
	spam_resolve(ld, map, x->a);
	spam_resolve(ld, map, x->b);
}

/* spam_meta_deps - whether x uses a meta not yet ordered; visits it */
static bool spam_meta_visit(struct spam_rules *, size_t, unsigned char *);

static bool
spam_meta_deps(struct spam_rules *rs, const struct spam_expr *x,
    unsigned char *mark)
{
	if (x == NULL)
		return true;
	if (x->op == SPAM_EX_RULE && x->rule >= 0 &&
	    rs->rules[x->rule].kind == SPAM_RULE_META &&
	    !spam_meta_visit(rs, (size_t)x->rule, mark))
		return false;
	return spam_meta_deps(rs, x->a, mark) && spam_meta_deps(rs, x->b, mark);
}

/* spam_meta_visit - depth first: a meta after every meta it uses;
 * false on a loop (mark 1: in progress, 2: ordered) */
static bool
spam_meta_visit(struct spam_rules *rs, size_t i, unsigned char *mark)
{
	if (mark[i] == 2)
		return true;
	if (mark[i] == 1)
		return false;
	mark[i] = 1;
	if (!spam_meta_deps(rs, rs->rules[i].meta, mark))
		return false;
	mark[i] = 2;
	rs->metas[rs->nmetas++] = i;
	return true;
}

/* spam_order_metas - dependency order; a meta in a loop is an error */
static void
spam_order_metas(struct spam_rules *rs)
{
	unsigned char	*mark = tg_calloc(rs->nrules ? rs->nrules : 1, 1);
	size_t		 i, j;

	rs->metas = tg_calloc(rs->nrules ? rs->nrules : 1, sizeof(size_t));
	for (i = 0; i < rs->nrules; i++) {
		if (rs->rules[i].kind != SPAM_RULE_META || mark[i] == 2)
			continue;
		if (spam_meta_visit(rs, i, mark))
			continue;
		/* a loop: every meta still in progress is taken out */
		for (j = 0; j < rs->nrules; j++)
			if (mark[j] == 1) {
				mark[j] = 2;
				rs->rules[j].enabled = false;
				rs->errors = tg_reallocarray(rs->errors,
				    rs->nerrors + 1, sizeof(char *));
				rs->errors[rs->nerrors++] = tg_printf_dup(
				    "%s: %s: meta rules use each other in a "
				    "loop", rs->rules[j].where,
				    rs->rules[j].name);
			}
	}
	free(mark);
}

/* spam_entry_free - what was not moved into the rule set */
static void
spam_entry_free(struct spam_entry *e)
{
	spam_rule_clear(e);
	free(e->r.name);
	free(e->r.describe);
	e->r.name = e->r.describe = NULL;
}

/* spam_classify - where an entry goes: true if it runs */
static bool
spam_classify(struct spam_rules *rs, struct spam_entry *e)
{
	if (!e->defined) {
		/* only ever seen inside a false if */
		if (e->skip != NULL)
			spam_reason_add(rs, e->skip);
		return false;
	}
	if (e->error != NULL) {
		tg_log_notice(NULL, "rules: refused: %s", e->error);
		rs->errors = tg_reallocarray(rs->errors, rs->nerrors + 1,
		    sizeof(char *));
		rs->errors[rs->nerrors++] = e->error;
		e->error = NULL;
		return false;
	}
	if (e->skip == NULL && e->scored && spam_final_score(e) == 0) {
		spam_reason_add(rs, "disabled by score 0");
		return false;
	}
	if (e->skip != NULL) {
		tg_log_debug(NULL, "rules: skipped: %s: %s: %s",
		    e->r.where != NULL ? e->r.where : "?", e->r.name, e->skip);
		spam_reason_add(rs, e->skip);
		return false;
	}
	return true;
}

/* spam_replace_tags - a replace_rules rule's regex with its tags
 * replaced, compiled again (the first compile's literals stay in the
 * set unused; they cost the automaton a few states) */
static void
spam_replace_tags(struct spam_loader *ld, struct spam_entry *e)
{
	struct tg_err	 err;
	const char	*s;
	char		*re;

	if (!e->replace || !e->defined || e->src == NULL || e->error != NULL ||
	    e->skip != NULL)
		return;
	re = spam_tags_apply(&ld->tags, e->src);
	if (strcmp(re, e->src) != 0) {
		spam_re_fini(&e->r.re);
		s = re;
		if (spam_re_compile(&s, ld->rs->lits, &e->r.re, &err) != TG_OK &&
		    e->r.re.too_large)
			/* Perl takes them; PCRE2's 64 KB compiled-code
			 * limit does not: an engine limit, not a bad file */
			e->skip = tg_strdup("regex too large for PCRE2 after "
			    "replace_tag");
		else if (e->r.re.code == NULL)
			e->error = tg_printf_dup("%s: %s: after replace_tag: %s",
			    e->r.where, e->r.name, err.text);
	}
	free(re);
}

/* spam_finish - entries into the rule set, scores, meta order */
static void
spam_finish(struct spam_loader *ld)
{
	struct spam_rules	*rs = ld->rs;
	struct spam_entry	*e;
	long			*map = tg_calloc(ld->nents + 1, sizeof(long));
	size_t			 i;

	for (i = 0; i < ld->nents; i++)
		spam_replace_tags(ld, &ld->ents[i]);
	rs->rules = tg_calloc(ld->nents + 1, sizeof(*rs->rules));
	rs->scores = tg_calloc(ld->nents + 1, sizeof(*rs->scores));
	/* first where each goes, then the metas' names while the name
	 * table still has them all, then the move */
	for (i = 0; i < ld->nents; i++) {
		e = &ld->ents[i];
		map[i] = -1;
		if (e->defined || e->scored) {
			rs->scores[rs->nscores].name = tg_strdup(e->r.name);
			rs->scores[rs->nscores++].score = spam_final_score(e);
		}
		if (spam_classify(rs, e))
			map[i] = (long)rs->nrules++;
	}
	for (i = 0; i < ld->nents; i++)
		if (map[i] >= 0)
			spam_resolve(ld, map, ld->ents[i].r.meta);
	for (i = 0; i < ld->nents; i++) {
		e = &ld->ents[i];
		if (map[i] < 0) {
			spam_entry_free(e);
			continue;
		}
		e->r.score = spam_final_score(e);
		e->r.has_score = e->scored;
		e->r.enabled = true;
		rs->rules[map[i]] = e->r;
		memset(&e->r, 0, sizeof(e->r));
		free(e->src);
		e->src = NULL;
	}
	free(map);
	qsort(rs->scores, rs->nscores, sizeof(*rs->scores), spam_cmp_score);
	spam_order_metas(rs);
	spam_litset_build(rs->lits);
}

/* spam_loader_fini - the name table (entries already moved or freed) */
static void
spam_loader_fini(struct spam_loader *ld, bool finished)
{
	size_t	i;

	if (!finished)
		for (i = 0; i < ld->nents; i++)
			spam_entry_free(&ld->ents[i]);
	for (i = 0; i < ld->nents; i++)
		free(ld->ents[i].r.name);
	while (ld->nifs > 0)
		free(ld->ifs[--ld->nifs].why);
	free(ld->ents);
	free(ld->hash);
	spam_tags_fini(&ld->tags);
}

enum tg_status
spam_rules_load(struct spam_rules **out, const char *paths,
    struct spam_rules_report *rep, struct tg_err *err)
{
	struct spam_loader	 ld;
	struct spam_rules	*rs;
	char			*list = tg_strdup(paths), *p = list, *path;
	size_t			 i;

	*out = NULL;
	memset(&ld, 0, sizeof(ld));
	rs = ld.rs = tg_calloc(1, sizeof(*rs));
	rs->lits = spam_litset_new();
	for (; (path = strsep(&p, " \t,")) != NULL;) {
		if (*path == '\0')
			continue;
		if (spam_load_path(&ld, path, err) != TG_OK) {
			spam_loader_fini(&ld, false);
			free(list);
			(void)spam_rules_free(rs);
			return err->status;
		}
	}
	free(list);
	spam_finish(&ld);
	spam_loader_fini(&ld, true);
	if (rep != NULL) {
		memset(rep, 0, sizeof(*rep));
		for (i = 0; i < rs->nrules; i++)
			rep->loaded += rs->rules[i].enabled;
		for (i = 0; i < rs->nreasons; i++)
			rep->skipped += rs->reasons[i].count;
		rep->errors = rs->nerrors;
	}
	*out = rs;
	return TG_OK;
}

struct spam_rules *
spam_rules_free(struct spam_rules *rs)
{
	struct spam_rule	*r;
	size_t			 i, j;

	if (rs == NULL)
		return NULL;
	for (i = 0; i < rs->nrules; i++) {
		r = &rs->rules[i];
		free(r->name);
		free(r->where);
		free(r->hdr);
		free(r->unset);
		free(r->describe);
		spam_re_fini(&r->re);
		(void)spam_expr_free(r->meta);
		for (j = 0; j < r->args.n; j++)
			free(r->args.v[j]);
	}
	free(rs->rules);
	for (i = 0; i < rs->nscores; i++)
		free(rs->scores[i].name);
	free(rs->scores);
	for (i = 0; i < rs->nreasons; i++)
		free(rs->reasons[i].text);
	free(rs->reasons);
	for (i = 0; i < rs->nerrors; i++)
		free(rs->errors[i]);
	free(rs->errors);
	free(rs->metas);
	(void)spam_litset_free(rs->lits);
	free(rs);
	return NULL;
}

bool
spam_rules_score(const struct spam_rules *rs, const char *name,
    double *points)
{
	struct spam_score_entry	 key = { .name = (char *)(uintptr_t)name };
	struct spam_score_entry	*e;

	e = bsearch(&key, rs->scores, rs->nscores, sizeof(*rs->scores),
	    spam_cmp_score);
	if (e == NULL)
		return false;
	*points = e->score;
	return true;
}

bool
spam_rules_skip_reason(const struct spam_rules *rs, size_t i,
    const char **text, size_t *count)
{
	if (i >= rs->nreasons)
		return false;
	*text = rs->reasons[i].text;
	*count = rs->reasons[i].count;
	return true;
}

const char *
spam_rules_error(const struct spam_rules *rs, size_t i)
{
	return i < rs->nerrors ? rs->errors[i] : NULL;
}

size_t
spam_rules_ignored(const struct spam_rules *rs)
{
	return rs->ignored;
}
