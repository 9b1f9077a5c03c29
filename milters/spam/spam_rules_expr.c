/*
 * spam_rules_expr - the expressions of meta rules and of "if" lines.
 *
 * SpamAssassin hands both to Perl; we parse the subset its rule files
 * use: || && ! ( ), + - * /, the comparisons > >= < <= == !=, numbers
 * and names.  In a meta rule a name is a rule, worth its hit count (0 or
 * 1, more for tflags multiple); in an "if" line the names are version,
 * plugin(X) and can(X), valued by the caller's leaf function, and are
 * resolved while parsing.  Precedence follows Perl.  Trees are built at
 * load and read-only after; evaluation allocates nothing.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "spam_rules_int.h"

/* Deep enough for any real rule, bounded so that a hostile file cannot
 * exhaust the stack. */
#define SPAM_EXPR_MAXDEPTH	200

struct spam_expr_parser {
	const char		*s;
	spam_expr_leaf_fn	 leaf;
	struct tg_err		*err;
	int			 depth;
	bool			 failed;
};

static struct spam_expr *spam_expr_or(struct spam_expr_parser *);

/* spam_expr_node - a new node */
static struct spam_expr *
spam_expr_node(enum spam_expr_op op, struct spam_expr *a, struct spam_expr *b)
{
	struct spam_expr	*e = tg_calloc(1, sizeof(*e));

	e->op = op;
	e->a = a;
	e->b = b;
	e->rule = -1;
	return e;
}

/* spam_expr_fail - record the first syntax error */
static struct spam_expr *
spam_expr_fail(struct spam_expr_parser *p, const char *why)
{
	if (!p->failed)
		(void)tg_err_set(p->err, TG_PERM, "%s at \"%.20s\"", why, p->s);
	p->failed = true;
	return NULL;
}

/* spam_expr_skipws - past white space */
static void
spam_expr_skipws(struct spam_expr_parser *p)
{
	while (isspace((unsigned char)*p->s))
		p->s++;
}

/* spam_expr_accept - consume tok if it is next */
static bool
spam_expr_accept(struct spam_expr_parser *p, const char *tok)
{
	size_t	n = strlen(tok);

	spam_expr_skipws(p);
	if (strncmp(p->s, tok, n) != 0)
		return false;
	/* "=" alone, "!" before "=": not the token asked for */
	if (n == 1 && (tok[0] == '<' || tok[0] == '>' || tok[0] == '!') &&
	    p->s[1] == '=')
		return false;
	p->s += n;
	return true;
}

/* spam_expr_name - a rule name, or a leaf of an "if" line */
static struct spam_expr *
spam_expr_name(struct spam_expr_parser *p)
{
	const char		*start = p->s;
	struct spam_expr	*e;
	char			*name;
	int			 paren = 0;

	while (isalnum((unsigned char)*p->s) || *p->s == '_' || *p->s == ':')
		p->s++;
	if (p->leaf != NULL && *p->s == '(') {
		do {
			paren += *p->s == '(' ? 1 : *p->s == ')' ? -1 : 0;
			p->s++;
		} while (paren > 0 && *p->s != '\0');
		if (paren > 0)
			return spam_expr_fail(p, "missing )");
	}
	name = tg_strndup(start, (size_t)(p->s - start));
	e = spam_expr_node(SPAM_EX_NUM, NULL, NULL);
	if (p->leaf == NULL) {
		e->op = SPAM_EX_RULE;
		e->name = name;
		return e;
	}
	if (!p->leaf(name, &e->num)) {
		p->s = start;
		free(name);
		free(e);
		return spam_expr_fail(p, "unknown condition");
	}
	free(name);
	return e;
}

/* spam_expr_primary - number, name, ( expr ), ! x, - x */
static struct spam_expr *
spam_expr_primary(struct spam_expr_parser *p)
{
	struct spam_expr	*e;
	char			*end;

	spam_expr_skipws(p);
	if (++p->depth > SPAM_EXPR_MAXDEPTH)
		return spam_expr_fail(p, "expression nested too deep");
	if (spam_expr_accept(p, "!")) {
		e = spam_expr_primary(p);
		e = e != NULL ? spam_expr_node(SPAM_EX_NOT, e, NULL) : NULL;
	} else if (spam_expr_accept(p, "-")) {
		e = spam_expr_primary(p);
		e = e != NULL ? spam_expr_node(SPAM_EX_NEG, e, NULL) : NULL;
	} else if (spam_expr_accept(p, "(")) {
		e = spam_expr_or(p);
		if (e != NULL && !spam_expr_accept(p, ")")) {
			e = spam_expr_free(e);
			(void)spam_expr_fail(p, "missing )");
		}
	} else if (isdigit((unsigned char)*p->s) || *p->s == '.') {
		e = spam_expr_node(SPAM_EX_NUM, NULL, NULL);
		e->num = strtod(p->s, &end);
		p->s = end;
	} else if (isalpha((unsigned char)*p->s) || *p->s == '_')
		e = spam_expr_name(p);
	else
		e = spam_expr_fail(p, *p->s == '\0' ? "unexpected end" :
		    "unexpected character");
	p->depth--;
	return e;
}

/* The binary levels, lowest first; each lists its operators. */
static const struct spam_expr_level {
	const char		*tok[3];
	enum spam_expr_op	 op[3];
} spam_expr_levels[] = {
	{ { "||" }, { SPAM_EX_OR } },
	{ { "&&" }, { SPAM_EX_AND } },
	{ { "==", "!=" }, { SPAM_EX_EQ, SPAM_EX_NE } },
	{ { ">=", "<=" }, { SPAM_EX_GE, SPAM_EX_LE } },
	{ { ">", "<" }, { SPAM_EX_GT, SPAM_EX_LT } },
	{ { "+", "-" }, { SPAM_EX_ADD, SPAM_EX_SUB } },
	{ { "*", "/" }, { SPAM_EX_MUL, SPAM_EX_DIV } },
};

/* spam_expr_level - left-associative binary operators of one level;
 * levels 3 and 4 (comparisons) are one Perl level, parsed together */
static struct spam_expr *
spam_expr_level(struct spam_expr_parser *p, size_t lv)
{
	struct spam_expr	*a, *b;
	size_t			 next = lv == 3 ? 5 : lv + 1;
	size_t			 i, l;
	bool			 found;

	if (lv >= TG_NITEMS(spam_expr_levels))
		return spam_expr_primary(p);
	if ((a = spam_expr_level(p, next)) == NULL)
		return NULL;
	for (;;) {
		found = false;
		for (l = lv; l <= (lv == 3 ? 4 : lv) && !found; l++)
			for (i = 0; i < 3 && spam_expr_levels[l].tok[i] &&
			    !found; i++) {
				if (!spam_expr_accept(p,
				    spam_expr_levels[l].tok[i]))
					continue;
				found = true;
				if ((b = spam_expr_level(p, next)) == NULL)
					return spam_expr_free(a);
				a = spam_expr_node(spam_expr_levels[l].op[i],
				    a, b);
			}
		if (!found)
			return a;
	}
}

/* spam_expr_or - a whole (sub)expression */
static struct spam_expr *
spam_expr_or(struct spam_expr_parser *p)
{
	return spam_expr_level(p, 0);
}

/* spam_expr_parse - text to tree, all of it */
struct spam_expr *
spam_expr_parse(const char *s, spam_expr_leaf_fn leaf, struct tg_err *err)
{
	struct spam_expr_parser	 p = { .s = s, .leaf = leaf, .err = err };
	struct spam_expr	*e;

	e = spam_expr_or(&p);
	if (e == NULL) {
		if (!p.failed)
			(void)tg_err_set(err, TG_PERM, "bad expression");
		return NULL;
	}
	spam_expr_skipws(&p);
	if (*p.s != '\0') {
		(void)spam_expr_fail(&p, "unexpected text");
		return spam_expr_free(e);
	}
	return e;
}

/* spam_expr_free - the whole tree */
struct spam_expr *
spam_expr_free(struct spam_expr *e)
{
	if (e == NULL)
		return NULL;
	spam_expr_free(e->a);
	spam_expr_free(e->b);
	free(e->name);
	free(e);
	return NULL;
}

/* spam_expr_eval - Perl's values: true is 1, false 0; x/0 is 0 */
double
spam_expr_eval(const struct spam_expr *e, const double *vals)
{
	double	a, b;

	switch (e->op) {
	case SPAM_EX_NUM:
		return e->num;
	case SPAM_EX_RULE:
		return e->rule >= 0 ? vals[e->rule] : 0;
	case SPAM_EX_NOT:
		return spam_expr_eval(e->a, vals) == 0;
	case SPAM_EX_NEG:
		return -spam_expr_eval(e->a, vals);
	case SPAM_EX_AND:
		/* Perl's && gives the last value evaluated */
		a = spam_expr_eval(e->a, vals);
		return a == 0 ? a : spam_expr_eval(e->b, vals);
	case SPAM_EX_OR:
		a = spam_expr_eval(e->a, vals);
		return a != 0 ? a : spam_expr_eval(e->b, vals);
	default:
		break;
	}
	a = spam_expr_eval(e->a, vals);
	b = spam_expr_eval(e->b, vals);
	switch (e->op) {
	case SPAM_EX_ADD: return a + b;
	case SPAM_EX_SUB: return a - b;
	case SPAM_EX_MUL: return a * b;
	case SPAM_EX_DIV: return b != 0 ? a / b : 0;
	case SPAM_EX_GT: return a > b;
	case SPAM_EX_GE: return a >= b;
	case SPAM_EX_LT: return a < b;
	case SPAM_EX_LE: return a <= b;
	case SPAM_EX_EQ: return a == b;
	case SPAM_EX_NE: return a != b;
	default:
		TG_PANIC("spam_expr_eval: op %d", (int)e->op);
	}
}
