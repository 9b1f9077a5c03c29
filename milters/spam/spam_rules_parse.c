/*
 * spam_rules_parse - the lines that define rules and set their scores,
 * for the loader (spam_rules.c): header, body, rawbody, uri, full, meta
 * and eval: rules; score, tflags, describe; the ReplaceTags settings;
 * rule kinds of plugins tollgate lacks, refused by name.
 *
 * Each function reads one line's words after the directive; a rule it
 * cannot take is refused through spam_refuse (the reason grouped for the
 * report), a malformed line through spam_line_error.  Load time only.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/buf.h"

#include "spam_rules_int.h"

/* ---- rule definitions ---- */

/* spam_eval_parse - "eval:name(args)" into fn and args; false with why */
static bool
spam_eval_parse(struct spam_loader *ld, struct spam_entry *e, const char *s)
{
	struct tg_err	 err;
	const char	*p, *why = NULL;
	char		*fname, q;
	struct tg_buf	 arg;

	(void)ld;
	for (p = s; isalnum((unsigned char)*p) || *p == '_'; p++)
		;
	fname = tg_strndup(s, (size_t)(p - s));
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '(' && *p != '\0') {
		spam_refuse(ld, e, true, "eval: expects name(args)");
		free(fname);
		return false;
	}
	if ((e->r.eval = spam_eval_lookup(fname, &why)) == NULL) {
		char *t = tg_printf_dup("eval:%s %s", fname, why);

		spam_refuse(ld, e, false, t);
		free(t);
		free(fname);
		return false;
	}
	tg_buf_init(&arg);
	for (p += *p == '('; *p != '\0' && *p != ')';) {
		while (isspace((unsigned char)*p) || *p == ',')
			p++;
		if (*p == ')' || *p == '\0')
			break;
		tg_buf_reset(&arg);
		if (*p == '\'' || *p == '"') {
			for (q = *p++; *p != '\0' && *p != q; p++)
				tg_buf_putc(&arg, *p);
			p += *p == q;
		} else
			for (; *p != '\0' && *p != ',' && *p != ')' &&
			    !isspace((unsigned char)*p); p++)
				tg_buf_putc(&arg, *p);
		if (e->r.args.n == SPAM_EVAL_MAXARGS)
			break;
		e->r.args.v[e->r.args.n++] = tg_strdup(tg_buf_cstr(&arg) ?
		    tg_buf_cstr(&arg) : "");
	}
	tg_buf_fini(&arg);
	if (!spam_eval_check_args(fname, &e->r.args, &err)) {
		spam_refuse(ld, e, true, err.text);
		free(fname);
		return false;
	}
	free(fname);
	e->r.kind = SPAM_RULE_EVAL;
	return true;
}

/* spam_regex_rule - the regex of a rule, nothing after it but (for
 * header rules) [if-unset: STRING] */
static bool
spam_regex_rule(struct spam_loader *ld, struct spam_entry *e, const char *s,
    bool header)
{
	struct tg_err	 err;
	const char	*end, *start = s;

	if (spam_re_compile(&s, ld->rs->lits, &e->r.re, &err) != TG_OK) {
		spam_refuse(ld, e, true, err.text);
		return false;
	}
	e->src = tg_strndup(start, (size_t)(s - start));
	while (isspace((unsigned char)*s))
		s++;
	if (header && strncmp(s, "[if-unset:", 10) == 0 &&
	    (end = strrchr(s, ']')) != NULL) {
		s += 10;
		while (isspace((unsigned char)*s))
			s++;
		e->r.unset = tg_strndup(s, (size_t)(end - s));
		s = end + 1;
		while (isspace((unsigned char)*s))
			s++;
	}
	if (*s != '\0') {
		spam_refuse(ld, e, true, "text after the regex");
		return false;
	}
	return true;
}

/* spam_header_spec - "Name:mod:mod" into hdr and form */
static bool
spam_header_spec(struct spam_loader *ld, struct spam_entry *e, char *spec)
{
	char	*mod, *t;

	if ((mod = strchr(spec, ':')) != NULL)
		*mod++ = '\0';
	e->r.hdr = tg_strdup(spec);
	while (mod != NULL) {
		if ((t = strchr(mod, ':')) != NULL)
			*t++ = '\0';
		if (strcmp(mod, "raw") == 0) {
			if (e->r.form == SPAM_HDR_DECODED)
				e->r.form = SPAM_HDR_RAW;
		} else if (strcmp(mod, "addr") == 0)
			e->r.form = SPAM_HDR_ADDR;
		else if (strcmp(mod, "name") == 0)
			e->r.form = SPAM_HDR_NAME;
		else {
			char *why = tg_printf_dup("header modifier :%s not "
			    "supported", mod);

			spam_refuse(ld, e, false, why);
			free(why);
			return false;
		}
		mod = t;
	}
	return true;
}

/* spam_header_rule - header NAME Hdr =~ /re/ | exists:Hdr | eval:f() */
static bool
spam_header_rule(struct spam_loader *ld, struct spam_entry *e, char *rest)
{
	char	*spec, *op;

	rest = tg_trim(rest);
	if (strncmp(rest, "eval:", 5) == 0)
		return spam_eval_parse(ld, e, rest + 5);
	if (strncmp(rest, "exists:", 7) == 0) {
		e->r.kind = SPAM_RULE_EXISTS;
		e->r.hdr = tg_strdup(tg_trim(rest + 7));
		return true;
	}
	spec = spam_word(&rest);
	op = spam_word(&rest);
	if (spec == NULL || op == NULL ||
	    (strcmp(op, "=~") != 0 && strcmp(op, "!~") != 0)) {
		spam_refuse(ld, e, true, "header rule needs: Header =~ /regex/");
		return false;
	}
	e->r.kind = SPAM_RULE_HEADER;
	e->r.negate = op[0] == '!';
	if (!spam_header_spec(ld, e, spec))
		return false;
	return spam_regex_rule(ld, e, rest, true);
}

/* spam_define - a rule line: kind NAME definition */
void
spam_define(struct spam_loader *ld, const char *kind, char *rest)
{
	static const struct {
		const char		*kind;
		enum spam_rule_kind	 k;
	} kinds[] = {
		{ "body", SPAM_RULE_BODY }, { "rawbody", SPAM_RULE_RAWBODY },
		{ "uri", SPAM_RULE_URI }, { "full", SPAM_RULE_FULL },
	};
	struct spam_entry	*e;
	struct tg_err		 err;
	char			*name;
	size_t			 i;

	if ((name = spam_word(&rest)) == NULL || !spam_valid_name(name)) {
		spam_line_error(ld, "missing or bad rule name");
		return;
	}
	e = spam_entry(ld, name);
	spam_rule_clear(e);
	e->defined = true;
	e->r.where = tg_printf_dup("%s:%zu", ld->file, ld->line);
	rest = tg_trim(rest);
	if (strcmp(kind, "header") == 0) {
		(void)spam_header_rule(ld, e, rest);
		return;
	}
	if (strcmp(kind, "meta") == 0) {
		e->r.kind = SPAM_RULE_META;
		if ((e->r.meta = spam_expr_parse(rest, NULL, &err)) == NULL)
			spam_refuse(ld, e, true, err.text);
		return;
	}
	for (i = 0; i < TG_NITEMS(kinds); i++)
		if (strcmp(kind, kinds[i].kind) == 0)
			e->r.kind = kinds[i].k;
	if (strncmp(rest, "eval:", 5) == 0)
		(void)spam_eval_parse(ld, e, rest + 5);
	else
		(void)spam_regex_rule(ld, e, rest, false);
}

/* spam_foreign - a rule of a plugin we lack: the name is refused */
void
spam_foreign(struct spam_loader *ld, const char *kind, char *rest)
{
	struct spam_entry	*e;
	char			*name, *why;

	if ((name = spam_word(&rest)) == NULL || !spam_valid_name(name))
		return;
	e = spam_entry(ld, name);
	spam_rule_clear(e);
	e->defined = true;
	e->r.where = tg_printf_dup("%s:%zu", ld->file, ld->line);
	why = tg_printf_dup("%s rules not supported", kind);
	spam_refuse(ld, e, false, why);
	free(why);
}

/* ---- settings ---- */

/* spam_score_line - score NAME s0 [s1 s2 s3]; "(n)" values are relative
 * to the score already set */
void
spam_score_line(struct spam_loader *ld, char *rest)
{
	struct spam_entry	*e;
	double			 v[4];
	char			*name, *w, *end;
	size_t			 n = 0, i;
	bool			 rel = false;

	if ((name = spam_word(&rest)) == NULL || !spam_valid_name(name)) {
		spam_line_error(ld, "score: missing or bad rule name");
		return;
	}
	while (n < 4 && (w = spam_word(&rest)) != NULL) {
		if (*w == '(') {
			rel = true;
			w++;
		}
		v[n] = strtod(w, &end);
		if (end == w || (*end != '\0' && *end != ')')) {
			spam_line_error(ld, "score: not a number");
			return;
		}
		n++;
	}
	if (n != 1 && n != 4) {
		spam_line_error(ld, "score: needs 1 or 4 values");
		return;
	}
	e = spam_entry(ld, name);
	for (i = 0; i < 4; i++)
		e->scores[i] = (rel ? e->scores[i] : 0) + v[n == 1 ? 0 : i];
	e->scored = true;
}

/* spam_tflags_line - tflags NAME flag... (later lines replace) */
void
spam_tflags_line(struct spam_loader *ld, char *rest)
{
	struct spam_entry	*e;
	char			*name, *w;
	long			 n;

	if ((name = spam_word(&rest)) == NULL || !spam_valid_name(name))
		return;
	e = spam_entry(ld, name);
	e->r.tflags = 0;
	e->r.maxhits = 0;
	while ((w = spam_word(&rest)) != NULL) {
		if (strcmp(w, "multiple") == 0)
			e->r.tflags |= SPAM_TF_MULTIPLE;
		else if (strcmp(w, "nice") == 0)
			e->r.tflags |= SPAM_TF_NICE;
		else if (strcmp(w, "net") == 0)
			e->r.tflags |= SPAM_TF_NET;
		else if (strcmp(w, "learn") == 0)
			e->r.tflags |= SPAM_TF_LEARN;
		else if (strcmp(w, "userconf") == 0)
			e->r.tflags |= SPAM_TF_USERCONF;
		else if (strncmp(w, "maxhits=", 8) == 0) {
			if (!tg_parse_long(w + 8, 1, 1000000, &n))
				spam_line_error(ld, "tflags: bad maxhits");
			else
				e->r.maxhits = n;
		}
		/* noautolearn, autolearn_force, publish, nosubject...:
		 * nothing to do for scoring */
	}
}

/* spam_describe_line - describe NAME text */
void
spam_describe_line(struct spam_loader *ld, char *rest)
{
	struct spam_entry	*e;
	char			*name;

	if ((name = spam_word(&rest)) == NULL || !spam_valid_name(name))
		return;
	e = spam_entry(ld, name);
	free(e->r.describe);
	e->r.describe = tg_strdup(tg_trim(rest));
}

/* spam_replace_line - ReplaceTags settings: replace_tag, _pre,
 * _inter, _post NAME VALUE; replace_rules NAME...; replace_start and
 * replace_end only as the default < and > */
void
spam_replace_line(struct spam_loader *ld, const char *what, char *rest)
{
	static const struct {
		const char		*what;
		enum spam_tag_kind	 kind;
	} kinds[] = {
		{ "tag", SPAM_TAG_TAG }, { "pre", SPAM_TAG_PRE },
		{ "inter", SPAM_TAG_INTER }, { "post", SPAM_TAG_POST },
	};
	char	*name;
	size_t	 i;

	if (strcmp(what, "rules") == 0) {
		while ((name = spam_word(&rest)) != NULL)
			if (spam_valid_name(name))
				spam_entry(ld, name)->replace = true;
		return;
	}
	if (strcmp(what, "start") == 0 || strcmp(what, "end") == 0) {
		if (strcmp(tg_trim(rest), what[0] == 's' ? "<" : ">") != 0)
			spam_line_error(ld, "replace_start/replace_end: only "
			    "< and > are supported");
		return;
	}
	for (i = 0; i < TG_NITEMS(kinds); i++)
		if (strcmp(what, kinds[i].what) == 0) {
			if ((name = spam_word(&rest)) == NULL) {
				spam_line_error(ld, "replace_tag: no name");
				return;
			}
			spam_tags_set(&ld->tags, kinds[i].kind, name,
			    tg_trim(rest));
			return;
		}
	ld->rs->ignored++;
}
