/*
 * spam_rules_re - SpamAssassin's Perl regexes on PCRE2, and the literal
 * prefilter that keeps thousands of rules cheap.
 *
 * A rule's regex is written the Perl way: /re/flags, or m with another
 * delimiter (m{re}, m!re!).  PCRE2 compiles nearly all of Perl 5's
 * syntax as it is; the front end finds the delimiters, maps the flags
 * (i s m x n; g and o mean nothing for a test, a u l d are charset
 * modes we do not need in byte mode), rewrites Perl 5.34's {,n} as
 * {0,n}, and refuses anything PCRE2 cannot compile with its message.
 * Patterns run in byte mode, not UTF: message text may be broken UTF-8
 * and SpamAssassin's rules match bytes ([\x80-\xff]).
 *
 * The prefilter: from each regex we take the longest run of plain
 * characters that every match must contain (outside groups, classes and
 * quantified atoms; none if the pattern has a top-level alternation).
 * All literals go into one Aho-Corasick automaton, run once over each
 * text of a message (headers, body, rawbody, URIs, full); a regex whose
 * literal is absent cannot match and is not run.  The automaton is a
 * dense table over an alphabet reduced to the bytes the literals use,
 * ASCII case folded.  Debian packages no small multi-pattern matcher
 * for C (Hyperscan is x86-only and would also replace PCRE2's Perl
 * compatibility), hence this one, in about a hundred lines.
 *
 * Everything here is built at load and read-only afterwards.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/buf.h"

#include "spam_rules_int.h"

/* A shorter literal filters too little to pay for its check. */
#define SPAM_LIT_MIN	3

struct spam_litset {
	char		**lits;
	size_t		  nlits;
	/* the automaton, after spam_litset_build */
	unsigned char	  cls[256];
	size_t		  ncls;
	int32_t		 *go;		/* nstates * ncls */
	int32_t		 *term;		/* literal ending at a state, or -1 */
	int32_t		 *dict;		/* next state on the fail chain
					   with a term, or -1 */
	size_t		  nstates;
	long		 *nl;		/* literals holding a '\n' */
	size_t		  nnl;
};

/* spam_litset_new - empty */
struct spam_litset *
spam_litset_new(void)
{
	return tg_calloc(1, sizeof(struct spam_litset));
}

/* spam_litset_free - NULL-safe */
struct spam_litset *
spam_litset_free(struct spam_litset *ls)
{
	size_t	i;

	if (ls == NULL)
		return NULL;
	for (i = 0; i < ls->nlits; i++)
		free(ls->lits[i]);
	free(ls->lits);
	free(ls->go);
	free(ls->term);
	free(ls->dict);
	free(ls->nl);
	free(ls);
	return NULL;
}

/* spam_litset_add - lowercase copy, once; linear search is fine at load
 * for a few thousand literals */
long
spam_litset_add(struct spam_litset *ls, const char *s, size_t n)
{
	char	*l = tg_strndup(s, n);
	size_t	 i;

	for (i = 0; i < n; i++)
		l[i] = (char)tolower((unsigned char)l[i]);
	for (i = 0; i < ls->nlits; i++)
		if (strcmp(ls->lits[i], l) == 0) {
			free(l);
			return (long)i;
		}
	ls->lits = tg_reallocarray(ls->lits, ls->nlits + 1, sizeof(char *));
	ls->lits[ls->nlits] = l;
	return (long)ls->nlits++;
}

size_t
spam_litset_count(const struct spam_litset *ls)
{
	return ls->nlits;
}

const char *
spam_litset_get(const struct spam_litset *ls, long i)
{
	return ls->lits[i];
}

/* spam_litset_newstate - a state with no transitions yet */
static int32_t
spam_litset_newstate(struct spam_litset *ls, size_t *cap)
{
	size_t	i;

	if (ls->nstates == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		ls->go = tg_reallocarray(ls->go, *cap * ls->ncls,
		    sizeof(int32_t));
		ls->term = tg_reallocarray(ls->term, *cap, sizeof(int32_t));
		ls->dict = tg_reallocarray(ls->dict, *cap, sizeof(int32_t));
	}
	for (i = 0; i < ls->ncls; i++)
		ls->go[ls->nstates * ls->ncls + i] = -1;
	ls->term[ls->nstates] = -1;
	ls->dict[ls->nstates] = -1;
	return (int32_t)ls->nstates++;
}

/* spam_litset_alphabet - one class per byte the literals use */
static void
spam_litset_alphabet(struct spam_litset *ls)
{
	const unsigned char	*p;
	size_t			 i, c;

	memset(ls->cls, 0, sizeof(ls->cls));
	ls->ncls = 1;		/* class 0: bytes in no literal */
	for (i = 0; i < ls->nlits; i++)
		for (p = (const unsigned char *)ls->lits[i]; *p; p++)
			if (ls->cls[*p] == 0)
				ls->cls[*p] = (unsigned char)ls->ncls++;
	for (c = 'A'; c <= 'Z'; c++)
		ls->cls[c] = ls->cls[tolower((int)c)];
}

/* spam_litset_build - trie, then fail links turned into a full DFA */
void
spam_litset_build(struct spam_litset *ls)
{
	const unsigned char	*p;
	size_t			 cap = 0, i, c, head = 0, tail = 0;
	int32_t			*queue, *fail, s, v, f;

	/* 255 classes at most fit the unsigned char map: literals are
	 * bytes, so this holds. */
	spam_litset_alphabet(ls);
	ls->nl = tg_calloc(ls->nlits + 1, sizeof(long));
	for (i = 0; i < ls->nlits; i++)
		if (strchr(ls->lits[i], '\n') != NULL)
			ls->nl[ls->nnl++] = (long)i;
	ls->nstates = 0;
	(void)spam_litset_newstate(ls, &cap);
	for (i = 0; i < ls->nlits; i++) {
		s = 0;
		for (p = (const unsigned char *)ls->lits[i]; *p; p++) {
			c = ls->cls[*p];
			if (ls->go[(size_t)s * ls->ncls + c] < 0) {
				v = spam_litset_newstate(ls, &cap);
				ls->go[(size_t)s * ls->ncls + c] = v;
			}
			s = ls->go[(size_t)s * ls->ncls + c];
		}
		ls->term[s] = (int32_t)i;
	}
	queue = tg_calloc(ls->nstates, sizeof(int32_t));
	fail = tg_calloc(ls->nstates, sizeof(int32_t));
	queue[tail++] = 0;
	while (head < tail) {
		s = queue[head++];
		for (c = 0; c < ls->ncls; c++) {
			v = ls->go[(size_t)s * ls->ncls + c];
			f = s == 0 ? 0 : ls->go[(size_t)fail[s] * ls->ncls + c];
			if (v < 0 || c == 0) {
				/* no edge: where the fail state goes */
				ls->go[(size_t)s * ls->ncls + c] = c == 0 ? 0 : f;
				continue;
			}
			fail[v] = f;
			ls->dict[v] = ls->term[f] >= 0 ? f : ls->dict[f];
			queue[tail++] = v;
		}
	}
	free(fail);
	free(queue);
}

/* spam_litset_mark_nl - count every literal holding a line end as
 * found: for a text the automaton saw in another shape (headers are
 * scanned as "Name: value" lines, matched as values joined by '\n') */
void
spam_litset_mark_nl(const struct spam_litset *ls, unsigned char *found,
    unsigned char bit)
{
	size_t	i;

	for (i = 0; i < ls->nnl; i++)
		found[ls->nl[i]] |= bit;
}

/* spam_litset_scan - one pass; a literal found stops the walk down its
 * fail chain, whose literals were all marked when it was */
void
spam_litset_scan(const struct spam_litset *ls, const char *text, size_t n,
    unsigned char *found, unsigned char bit)
{
	const unsigned char	*p = (const unsigned char *)text;
	size_t			 i;
	int32_t			 s = 0, t;

	if (ls->nlits == 0)
		return;
	for (i = 0; i < n; i++) {
		s = ls->go[(size_t)s * ls->ncls + ls->cls[p[i]]];
		for (t = ls->term[s] >= 0 ? s : ls->dict[s]; t >= 0;
		    t = ls->dict[t]) {
			if (found[ls->term[t]] & bit)
				break;
			found[ls->term[t]] |= bit;
		}
	}
}

/* spam_re_skip_class - past a [...] class starting at p[i] == '[' */
static size_t
spam_re_skip_class(const char *p, size_t n, size_t i)
{
	i++;
	if (i < n && p[i] == '^')
		i++;
	if (i < n && p[i] == ']')
		i++;
	for (; i < n && p[i] != ']'; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
			/* [:alpha:] inside a class */
			for (i += 2; i < n && p[i] != ']'; i++)
				;
		}
	}
	return i < n ? i + 1 : n;
}

/* spam_re_skip_group - past a (...) group starting at p[i] == '(' */
static size_t
spam_re_skip_group(const char *p, size_t n, size_t i)
{
	int	depth = 0;

	for (; i < n; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '[')
			i = spam_re_skip_class(p, n, i) - 1;
		else if (p[i] == '(')
			depth++;
		else if (p[i] == ')' && --depth == 0)
			return i + 1;
	}
	return n;
}

/* spam_re_quant - the quantifier starting at p[i] (white space first
 * skipped in /x mode): 0 none, '+' at least once, '*' maybe never */
static int
spam_re_quant(const char *p, size_t n, size_t i, bool extended)
{
	while (extended && i < n && isspace((unsigned char)p[i]))
		i++;
	if (i >= n)
		return 0;
	if (p[i] == '+')
		return '+';
	if (p[i] == '*' || p[i] == '?')
		return '*';
	if (p[i] == '{' && i + 1 < n && (isdigit((unsigned char)p[i + 1]) ||
	    p[i + 1] == ','))
		return p[i + 1] >= '1' && p[i + 1] <= '9' ? '+' : '*';
	return 0;
}

/* spam_re_escape - the byte a backslash escape at p[i] stands for, or
 * -1 for a class or assertion (\s, \b, \x{263a}...); *k is past it */
static int
spam_re_escape(const char *p, size_t n, size_t i, size_t *k)
{
	unsigned char	d;

	if (i + 1 >= n) {
		*k = n;
		return -1;
	}
	d = (unsigned char)p[i + 1];
	*k = i + 2;
	if (!isalnum(d))
		return d;
	if (d == 't' || d == 'n' || d == 'r')
		return d == 't' ? '\t' : d == 'n' ? '\n' : '\r';
	if (*k < n && p[*k] == '{' && strchr("xpPNgko", d) != NULL) {
		while (*k < n && p[*k] != '}')
			(*k)++;
		*k += *k < n;
	} else if (d == 'x') {
		while (*k < n && *k < i + 4 && isxdigit((unsigned char)p[*k]))
			(*k)++;
	} else if (isdigit(d)) {
		while (*k < n && isdigit((unsigned char)p[*k]))
			(*k)++;
	} else if (d == 'c' || ((d == 'p' || d == 'P') && *k < n))
		(*k)++;
	return -1;
}

/* spam_re_atom - one atom at p[i]: its literal byte or -1, *k past it;
 * -2 when the pattern has a top-level alternation (no literal) */
static int
spam_re_atom(const char *p, size_t n, size_t i, size_t *k)
{
	*k = i + 1;
	switch (p[i]) {
	case '|':
		return -2;
	case '\\':
		return spam_re_escape(p, n, i, k);
	case '(':
		*k = spam_re_skip_group(p, n, i);
		return -1;
	case '[':
		*k = spam_re_skip_class(p, n, i);
		return -1;
	case '{':
		if (spam_re_quant(p, n, i, false) == 0)
			return '{';
		while (*k < n && p[*k - 1] != '}')
			(*k)++;
		return -1;
	case '.': case '^': case '$': case ')': case '*': case '+': case '?':
		return -1;
	default:
		return (unsigned char)p[i];
	}
}

/* A candidate: any one of these literals must occur. */
struct spam_re_cand {
	char	s[SPAM_LIT_SET_MAX][SPAM_LIT_MAX + 1];
	size_t	n;
	size_t	minlen;
};

static bool spam_re_req(const char *, size_t, bool, int,
		    struct spam_re_cand *);

/* spam_re_better - keep c in best if it filters better: a longer
 * shortest literal, then fewer literals */
static void
spam_re_better(struct spam_re_cand *best, const struct spam_re_cand *c)
{
	if (c->n == 0)
		return;
	if (best->n == 0 || c->minlen > best->minlen ||
	    (c->minlen == best->minlen && c->n < best->n))
		*best = *c;
}

/* spam_re_run_cand - a literal run as a one-literal candidate */
static void
spam_re_run_cand(struct spam_re_cand *best, const char *run, size_t len)
{
	struct spam_re_cand	c;

	if (len < SPAM_LIT_MIN)
		return;
	memcpy(c.s[0], run, len);
	c.s[0][len] = '\0';
	c.n = 1;
	c.minlen = len;
	spam_re_better(best, &c);
}

/* spam_re_group_body - where a group's pattern starts, for groups whose
 * match is part of the whole one: (...), (?:...), (?>...), (?|...),
 * (?<name>...), (?P<name>...), (?'name'...), (?flags:...); 0 for
 * lookarounds, comments, conditionals and (?flags) */
static size_t
spam_re_group_body(const char *p, size_t i, size_t k, bool *x)
{
	size_t	j = i + 2;

	if (p[i + 1] != '?')
		return i + 1;
	if (strchr(":>|", p[j]) != NULL)
		return j + 1;
	if (p[j] == 'P' && p[j + 1] == '<')
		j++;
	if ((p[j] == '<' && p[j + 1] != '=' && p[j + 1] != '!') ||
	    p[j] == '\'') {
		while (j < k && p[j] != '>' && (p[j] != '\'' || j == i + 2))
			j++;
		return j < k ? j + 1 : 0;
	}
	for (; j < k && (isalpha((unsigned char)p[j]) || p[j] == '-' ||
	    p[j] == '^'); j++)
		if (p[j] == 'x')
			*x = true;
	return j < k && p[j] == ':' ? j + 1 : 0;
}

/* spam_re_seq - the best candidate of a sequence without top-level
 * alternation: literal runs, and groups the match cannot skip */
static bool
spam_re_seq(const char *p, size_t n, bool extended, int depth,
    struct spam_re_cand *best)
{
	struct spam_re_cand	 c;
	char			 run[SPAM_LIT_MAX];
	size_t			 i = 0, k, len = 0, body;
	int			 ch, q;
	bool			 quoted = false, x;

	best->n = 0;
	while (i < n) {
		if (quoted && p[i] == '\\' && i + 1 < n && p[i + 1] == 'E') {
			quoted = false;
			i += 2;
			continue;
		}
		if (!quoted && extended && isspace((unsigned char)p[i])) {
			i++;
			continue;
		}
		if (!quoted && extended && p[i] == '#') {
			while (i < n && p[i] != '\n')
				i++;
			continue;
		}
		if (!quoted && p[i] == '\\' && i + 1 < n && p[i + 1] == 'Q') {
			quoted = true;
			i += 2;
			continue;
		}
		if (quoted) {
			ch = (unsigned char)p[i];
			k = i + 1;
			/* only a quantifier after \E applies */
			q = k + 1 < n && p[k] == '\\' && p[k + 1] == 'E' ?
			    spam_re_quant(p, n, k + 2, extended) : 0;
		} else {
			ch = spam_re_atom(p, n, i, &k);
			q = spam_re_quant(p, n, k, extended);
		}
		if (ch == -2)
			return false;	/* cannot happen: split before */
		if (ch >= 0 && q != '*' && len < sizeof(run))
			run[len++] = (char)tolower(ch);
		if (ch < 0 || q != 0 || len == sizeof(run)) {
			spam_re_run_cand(best, run, len);
			len = 0;
		}
		x = extended;
		if (!quoted && p[i] == '(' && q != '*' && depth < 8 && k <= n &&
		    k > i + 1 && p[k - 1] == ')' &&
		    (body = spam_re_group_body(p, i, k - 1, &x)) > 0 &&
		    spam_re_req(p + body, k - 1 - body, x, depth + 1, &c))
			spam_re_better(best, &c);
		i = k;
	}
	spam_re_run_cand(best, run, len);
	return best->n > 0;
}

/* spam_re_req - the literals one of which every match contains: each
 * top-level alternative must give its own, and they are pooled */
static bool
spam_re_req(const char *p, size_t n, bool extended, int depth,
    struct spam_re_cand *out)
{
	struct spam_re_cand	c;
	size_t			i, start = 0, j;
	bool			quoted = false;

	out->n = 0;
	out->minlen = SPAM_LIT_MAX;
	for (i = 0; i <= n; i++) {
		if (i < n && quoted) {
			quoted = !(p[i] == '\\' && i + 1 < n && p[i + 1] == 'E');
			i += !quoted;
			continue;
		}
		if (i < n && p[i] == '\\') {
			quoted = i + 1 < n && p[i + 1] == 'Q';
			i++;
			continue;
		}
		if (i < n && p[i] == '[') {
			i = spam_re_skip_class(p, n, i) - 1;
			continue;
		}
		if (i < n && p[i] == '(') {
			i = spam_re_skip_group(p, n, i) - 1;
			continue;
		}
		if (i < n && p[i] != '|')
			continue;
		if (!spam_re_seq(p + start, i - start, extended, depth, &c) ||
		    out->n + c.n > SPAM_LIT_SET_MAX)
			return false;
		for (j = 0; j < c.n; j++)
			memcpy(out->s[out->n++], c.s[j], sizeof(c.s[j]));
		if (c.minlen < out->minlen)
			out->minlen = c.minlen;
		start = i + 1;
	}
	return out->n > 0;
}

size_t
spam_re_literals(const char *p, size_t n, bool extended,
    char out[][SPAM_LIT_MAX + 1], size_t max)
{
	struct spam_re_cand	c;
	size_t			i;

	if (!spam_re_req(p, n, extended, 0, &c) || c.n > max)
		return 0;
	for (i = 0; i < c.n; i++)
		memcpy(out[i], c.s[i], sizeof(c.s[i]));
	return c.n;
}

/* spam_re_closer - the delimiter closing open */
static char
spam_re_closer(char open)
{
	switch (open) {
	case '{': return '}';
	case '(': return ')';
	case '[': return ']';
	case '<': return '>';
	default: return open;
	}
}

/* spam_re_inline_x - an inline (?x) anywhere turns on extended syntax
 * for the literal scan too */
static bool
spam_re_inline_x(const char *p)
{
	const char	*q;

	for (; (p = strstr(p, "(?")) != NULL; p += 2)
		for (q = p + 2; isalpha((unsigned char)*q) || *q == '^'; q++)
			if (*q == 'x')
				return true;
	return false;
}

/* spam_re_split - delimiters and flags: the pattern into pat (Perl
 * 5.34's {,n} rewritten to {0,n}), PCRE2 options into *opts */
static enum tg_status
spam_re_split(const char **sp, struct tg_buf *pat, uint32_t *opts,
    struct tg_err *err)
{
	const char	*s = *sp;
	char		 open, close;
	int		 depth = 0;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == 'm' && s[1] != '\0' && !isalnum((unsigned char)s[1]) &&
	    !isspace((unsigned char)s[1]))
		s++;
	else if (*s != '/')
		return tg_err_set(err, TG_PERM, "regex must start with / or m");
	open = *s++;
	close = spam_re_closer(open);
	for (; *s != '\0'; s++) {
		if (*s == '\\' && s[1] != '\0') {
			tg_buf_append(pat, s++, 2);
			continue;
		}
		if (*s == close && open != close && depth > 0)
			depth--;
		else if (*s == close)
			break;
		else if (*s == open && open != close)
			depth++;
		if (*s == '{' && s[1] == ',' && isdigit((unsigned char)s[2]))
			tg_buf_puts(pat, "{0");
		else
			tg_buf_putc(pat, *s);
	}
	if (*s != close)
		return tg_err_set(err, TG_PERM, "regex without closing %c",
		    close);
	for (s++, *opts = 0; isalpha((unsigned char)*s); s++) {
		switch (*s) {
		case 'i': *opts |= PCRE2_CASELESS; break;
		case 's': *opts |= PCRE2_DOTALL; break;
		case 'm': *opts |= PCRE2_MULTILINE; break;
		case 'x': *opts |= PCRE2_EXTENDED; break;
		case 'n': *opts |= PCRE2_NO_AUTO_CAPTURE; break;
		case 'g': case 'o': case 'a': case 'u': case 'l': case 'd':
			break;
		default:
			return tg_err_set(err, TG_PERM,
			    "regex flag %c not supported", *s);
		}
	}
	*sp = s;
	return TG_OK;
}

enum tg_status
spam_re_compile(const char **sp, struct spam_litset *lits, struct spam_re *re,
    struct tg_err *err)
{
	struct tg_buf	 pat;
	PCRE2_UCHAR	 msg[160];
	PCRE2_SIZE	 off;
	char		 lit[SPAM_LIT_SET_MAX][SPAM_LIT_MAX + 1];
	uint32_t	 opts = 0;
	int		 code;
	size_t		 n, i;

	memset(re, 0, sizeof(*re));
	tg_buf_init(&pat);
	if (spam_re_split(sp, &pat, &opts, err) != TG_OK) {
		tg_buf_fini(&pat);
		return TG_PERM;
	}
	re->code = pcre2_compile((PCRE2_SPTR)tg_buf_cstr(&pat), pat.len, opts,
	    &code, &off, NULL);
	/* \x{263a} and the like name characters, not bytes: such a regex
	 * runs in UTF mode, safe on invalid UTF-8 too (which then matches
	 * nothing), as the MIME part gives text in UTF-8 */
	if (re->code == NULL && code == PCRE2_ERROR_CODE_POINT_TOO_BIG)
		re->code = pcre2_compile((PCRE2_SPTR)tg_buf_cstr(&pat),
		    pat.len, opts | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code,
		    &off, NULL);
	if (re->code == NULL) {
		re->too_large = code == PCRE2_ERROR_PATTERN_TOO_LARGE;
		(void)pcre2_get_error_message(code, msg, sizeof(msg));
		(void)tg_err_set(err, TG_PERM, "regex not compiled by PCRE2 "
		    "at offset %zu: %s", (size_t)off, (const char *)msg);
		tg_buf_fini(&pat);
		return TG_PERM;
	}
	/* JIT is an optimisation: without it (no JIT on this CPU, or
	 * no memory for it) the interpreter gives the same answers. */
	(void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
	n = spam_re_literals(tg_buf_cstr(&pat), pat.len,
	    (opts & PCRE2_EXTENDED) != 0 || spam_re_inline_x(tg_buf_cstr(&pat)),
	    lit, SPAM_LIT_SET_MAX);
	if (n > 0 && lits != NULL) {
		re->lits = tg_calloc(n, sizeof(long));
		for (i = 0; i < n; i++)
			re->lits[i] = spam_litset_add(lits, lit[i],
			    strlen(lit[i]));
		re->nlits = n;
	}
	tg_buf_fini(&pat);
	return TG_OK;
}

void
spam_re_fini(struct spam_re *re)
{
	pcre2_code_free(re->code);
	re->code = NULL;
	free(re->lits);
	re->lits = NULL;
	re->nlits = 0;
}
