/*
 * spam_rules_run - a compiled rule set over one message.
 *
 * Order: one Aho-Corasick pass per text (headers, body, rawbody, URIs,
 * full) marks which prefilter literals occur; then every non-meta rule
 * whose literal occurred (or that has none) runs its regex or native
 * eval; then the metas, in dependency order, on the values of the rules
 * they name (hit counts: 0 or 1, more for tflags multiple).
 *
 * As in SpamAssassin, body and rawbody rules match each line (paragraph)
 * on its own, uri rules each URI, full rules the whole message, header
 * rules the header's text (several instances joined with '\n').  Within
 * body and rawbody, a rule with a literal runs only on the lines that
 * contain one, found with memmem in a lowercased copy.
 *
 * Every match runs under PCRE2's match and depth limits, so that no
 * regex can hang a message; a match cut by a limit counts as no match
 * and marks the score partial.  Each call has its own match data and
 * JIT stack: the rule set is shared read-only between threads.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/buf.h"

#include "spam_rules_int.h"

/* Backtracking bounds: Perl's own engine has none, but the rule sets we
 * load have no regex that needs more than a small fraction of these on
 * real mail; a pathological one stops here instead of taking seconds. */
#define SPAM_MATCH_LIMIT	200000
#define SPAM_DEPTH_LIMIT	5000
/* tflags multiple without maxhits: counting stops here */
#define SPAM_MULTIPLE_MAX	1000

struct spam_run {
	const struct spam_rules	*rs;
	const struct spam_msg	*msg;
	unsigned char		*found;		/* per literal: target bits */
	pcre2_match_data	*md;
	pcre2_match_context	*mctx;
	pcre2_jit_stack		*jit;
	char			*lbody;		/* lowercased body, rawbody */
	char			*lraw;
	struct tg_buf		 hdr;		/* scratch: a header's text */
	bool			 partial;
};

/* ---- headers ---- */

/* spam_hdr_append - one instance in form, '\n' between instances */
static void
spam_hdr_append(const struct spam_header *h, enum spam_hdr_form form,
    struct tg_buf *out, bool *first)
{
	const char	*v = form == SPAM_HDR_RAW ? h->raw : h->decoded;

	if (v == NULL)
		v = h->raw != NULL ? h->raw : "";
	if (!*first)
		tg_buf_putc(out, '\n');
	*first = false;
	if (form == SPAM_HDR_ADDR)
		spam_addr_first(v, out);
	else if (form == SPAM_HDR_NAME)
		spam_addr_name(v, out);
	else
		tg_buf_puts(out, v);
}

/* spam_hdr_named - every instance of name */
static bool
spam_hdr_named(const struct spam_msg *msg, const char *name,
    enum spam_hdr_form form, struct tg_buf *out, bool *first)
{
	bool	found = false;
	size_t	i;

	for (i = 0; i < msg->nheaders; i++)
		if (tg_strcasecmp(msg->headers[i].name, name) == 0) {
			spam_hdr_append(&msg->headers[i], form, out, first);
			found = true;
		}
	return found;
}

bool
spam_hdr_get(const struct spam_msg *msg, const char *name,
    enum spam_hdr_form form, struct tg_buf *out)
{
	const struct spam_header	*h;
	bool				 first = true, found = false;
	size_t				 i;

	if (strcmp(name, "ALL") == 0) {
		for (i = 0; i < msg->nheaders; i++) {
			h = &msg->headers[i];
			tg_buf_printf(out, "%s: %s\n", h->name,
			    form == SPAM_HDR_RAW || h->decoded == NULL ?
			    (h->raw ? h->raw : "") : h->decoded);
		}
		return msg->nheaders > 0;
	}
	if (strcmp(name, "ToCc") == 0) {
		found = spam_hdr_named(msg, "To", form, out, &first);
		return spam_hdr_named(msg, "Cc", form, out, &first) || found;
	}
	if (strcmp(name, "MESSAGEID") == 0) {
		found = spam_hdr_named(msg, "Message-Id", form, out, &first);
		found |= spam_hdr_named(msg, "Resent-Message-Id", form, out,
		    &first);
		return spam_hdr_named(msg, "X-Message-Id", form, out, &first) ||
		    found;
	}
	if (strcmp(name, "EnvelopeFrom") == 0) {
		/* SpamAssassin's envelope_sender_header guesses, in order;
		 * the MTA's Return-Path is the one Postfix writes */
		if (spam_hdr_named(msg, "X-Envelope-From", SPAM_HDR_ADDR, out,
		    &first))
			return true;
		return spam_hdr_named(msg, "Return-Path", SPAM_HDR_ADDR, out,
		    &first);
	}
	return spam_hdr_named(msg, name, form, out, &first);
}

/* spam_addr_item - the first item of an address list: up to a comma
 * outside quotes, <>, and comments; a group's "name:" dropped */
static size_t
spam_addr_item(const char *s, size_t *start)
{
	size_t	i, colon = 0;
	int	paren = 0;
	bool	quote = false, angle = false, at = false;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '\\' && s[i + 1] != '\0') {
			i++;
			continue;
		}
		if (quote) {
			quote = s[i] != '"';
			continue;
		}
		if (paren > 0) {
			paren += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
			continue;
		}
		if (s[i] == '"')
			quote = true;
		else if (s[i] == '(')
			paren = 1;
		else if (s[i] == '<')
			angle = true;
		else if (s[i] == '>')
			angle = false;
		else if (s[i] == '@')
			at = true;
		else if (s[i] == ':' && !angle && !at && colon == 0)
			colon = i + 1;
		else if ((s[i] == ',' || s[i] == ';') && !angle)
			break;
	}
	*start = colon;
	return i;
}

void
spam_addr_first(const char *s, struct tg_buf *out)
{
	const char	*lt, *gt;
	size_t		 start, end, i;
	int		 paren = 0;
	bool		 quote = false;

	end = spam_addr_item(s, &start);
	lt = memchr(s + start, '<', end - start);
	if (lt != NULL && (gt = memchr(lt, '>', (size_t)(s + end - lt))) !=
	    NULL) {
		tg_buf_append(out, lt + 1, (size_t)(gt - lt - 1));
		return;
	}
	/* addr-spec (comment): drop comments and white space */
	for (i = start; i < end; i++) {
		if (quote || s[i] == '"') {
			quote = s[i] == '"' ? !quote : quote;
			tg_buf_putc(out, s[i]);
		} else if (paren > 0 || s[i] == '(')
			paren += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
		else if (!isspace((unsigned char)s[i]))
			tg_buf_putc(out, s[i]);
	}
}

/* spam_name_clean - display name without quotes, "'Foo'" as Foo */
static void
spam_name_clean(const char *s, size_t n, struct tg_buf *out)
{
	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	while (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
		s++;
		n -= 2;
	}
	tg_buf_append(out, s, n);
}

void
spam_addr_name(const char *s, struct tg_buf *out)
{
	const char	*lt, *op, *cp;
	size_t		 start, end;

	end = spam_addr_item(s, &start);
	lt = memchr(s + start, '<', end - start);
	if (lt != NULL) {
		spam_name_clean(s + start, (size_t)(lt - s - start), out);
		return;
	}
	/* addr-spec (Foo Blah): the comment */
	op = memchr(s + start, '(', end - start);
	if (op != NULL && (cp = memchr(op, ')', (size_t)(s + end - op))) !=
	    NULL)
		spam_name_clean(op + 1, (size_t)(cp - op - 1), out);
}

/* ---- matching ---- */

/* spam_match_count - matches of re in text, at most max */
static long
spam_match_count(struct spam_run *run, const struct spam_re *re,
    const char *text, size_t len, long max)
{
	PCRE2_SIZE	*ov, off = 0;
	long		 n = 0;
	int		 rc;

	while (n < max && off <= len) {
		rc = pcre2_match(re->code, (PCRE2_SPTR)text, len, off, 0,
		    run->md, run->mctx);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			/* match or depth limit, or the JIT stack */
			run->partial = true;
			break;
		}
		n++;
		ov = pcre2_get_ovector_pointer(run->md);
		off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
	}
	return n;
}

/* spam_rule_max - how many hits a rule counts */
static long
spam_rule_max(const struct spam_rule *r)
{
	if (!(r->tflags & SPAM_TF_MULTIPLE))
		return 1;
	return r->maxhits > 0 ? r->maxhits : SPAM_MULTIPLE_MAX;
}

/* spam_lit_absent - none of the rule's literals occurs in target */
static bool
spam_lit_absent(const struct spam_run *run, const struct spam_rule *r,
    enum spam_target t)
{
	size_t	i;

	if (r->re.nlits == 0 || run->rs->prefilter_off)
		return false;
	for (i = 0; i < r->re.nlits; i++)
		if (run->found[r->re.lits[i]] & (1u << t))
			return false;
	return true;
}

/* spam_line_bounds - the line of text around pos */
static void
spam_line_bounds(const char *text, size_t len, size_t pos, size_t *b,
    size_t *e)
{
	const char	*nl;

	*b = pos;
	while (*b > 0 && text[*b - 1] != '\n')
		(*b)--;
	nl = memchr(text + pos, '\n', len - pos);
	*e = nl != NULL ? (size_t)(nl - text) : len;
}

/* spam_next_lit - the next occurrence of literal li at or after pos in
 * lower, or len */
static size_t
spam_next_lit(const struct spam_run *run, long li, const char *lower,
    size_t len, size_t pos)
{
	const char	*lit = spam_litset_get(run->rs->lits, li), *p;

	if (pos >= len)
		return len;
	p = memmem(lower + pos, len - pos, lit, strlen(lit));
	return p != NULL ? (size_t)(p - lower) : len;
}

/* spam_run_lines - a body or rawbody rule over each line; with
 * literals, only the lines holding one (lower: the lowercased text),
 * in order, each once: a merge of each literal's next occurrence */
static long
spam_run_lines(struct spam_run *run, const struct spam_rule *r,
    const char *text, const char *lower, size_t len, enum spam_target t)
{
	size_t	 next[SPAM_LIT_SET_MAX], b, e, pos, j, k, nl = 0;
	long	 n = 0, max = spam_rule_max(r), li[SPAM_LIT_SET_MAX];
	const char *p;

	for (j = 0; j < r->re.nlits && !run->rs->prefilter_off; j++)
		if (run->found[r->re.lits[j]] & (1u << t)) {
			li[nl] = r->re.lits[j];
			next[nl] = spam_next_lit(run, li[nl], lower, len, 0);
			nl++;
		}
	for (pos = 0; pos <= len && n < max; pos = e + 1) {
		if (r->re.nlits > 0 && !run->rs->prefilter_off) {
			for (k = 0, j = 1; j < nl; j++)
				k = next[j] < next[k] ? j : k;
			if (nl == 0 || next[k] >= len)
				break;
			spam_line_bounds(text, len, next[k], &b, &e);
			for (j = 0; j < nl; j++)
				if (next[j] <= e)
					next[j] = spam_next_lit(run, li[j],
					    lower, len, e + 1);
		} else {
			b = pos;
			p = memchr(text + pos, '\n', len - pos);
			e = p != NULL ? (size_t)(p - text) : len;
		}
		n += spam_match_count(run, &r->re, text + b, e - b, max - n);
	}
	return n;
}

/* spam_run_header - a header rule: the text, or [if-unset:], or "" */
static long
spam_run_header(struct spam_run *run, const struct spam_rule *r)
{
	const char	*text;
	size_t		 len;
	long		 n;
	bool		 present;

	tg_buf_reset(&run->hdr);
	present = spam_hdr_get(run->msg, r->hdr, r->form, &run->hdr);
	if (present) {
		if (spam_lit_absent(run, r, SPAM_TGT_HEADERS))
			return r->negate ? 1 : 0;
		text = run->hdr.data != NULL ? run->hdr.data : "";
		len = run->hdr.len;
	} else {
		text = r->unset != NULL ? r->unset : "";
		len = strlen(text);
	}
	n = spam_match_count(run, &r->re, text, len, spam_rule_max(r));
	if (r->negate)
		return n == 0;
	return n;
}

/* spam_run_uris - a uri rule over each URI */
static long
spam_run_uris(struct spam_run *run, const struct spam_rule *r)
{
	long	n = 0, max = spam_rule_max(r);
	size_t	i;

	if (spam_lit_absent(run, r, SPAM_TGT_URIS))
		return 0;
	for (i = 0; i < run->msg->nuris && n < max; i++)
		n += spam_match_count(run, &r->re, run->msg->uris[i],
		    strlen(run->msg->uris[i]), max - n);
	return n;
}

/* spam_run_rule - one non-meta rule's value */
static long
spam_run_rule(struct spam_run *run, const struct spam_rule *r)
{
	const struct spam_msg	*m = run->msg;

	switch (r->kind) {
	case SPAM_RULE_HEADER:
		return spam_run_header(run, r);
	case SPAM_RULE_EXISTS:
		tg_buf_reset(&run->hdr);
		return spam_hdr_get(m, r->hdr, SPAM_HDR_RAW, &run->hdr);
	case SPAM_RULE_BODY:
		if (m->body == NULL || spam_lit_absent(run, r, SPAM_TGT_BODY))
			return 0;
		return spam_run_lines(run, r, m->body, run->lbody, m->body_len,
		    SPAM_TGT_BODY);
	case SPAM_RULE_RAWBODY:
		if (m->rawbody == NULL ||
		    spam_lit_absent(run, r, SPAM_TGT_RAWBODY))
			return 0;
		return spam_run_lines(run, r, m->rawbody, run->lraw,
		    m->rawbody_len, SPAM_TGT_RAWBODY);
	case SPAM_RULE_URI:
		return spam_run_uris(run, r);
	case SPAM_RULE_FULL:
		if (m->full == NULL || spam_lit_absent(run, r, SPAM_TGT_FULL))
			return 0;
		return spam_match_count(run, &r->re, m->full, m->full_len,
		    spam_rule_max(r));
	case SPAM_RULE_EVAL:
		return r->eval(m, &r->args);
	case SPAM_RULE_META:
		return 0;
	}
	TG_PANIC("spam_run_rule: kind %d", (int)r->kind);
}

/* ---- the pass ---- */

/* spam_lower_dup - ASCII-lowercased copy */
static char *
spam_lower_dup(const char *s, size_t n)
{
	char	*l = tg_malloc(n + 1);
	size_t	 i;

	for (i = 0; i < n; i++)
		l[i] = (char)tolower((unsigned char)s[i]);
	l[n] = '\0';
	return l;
}

/* spam_prefilter - one automaton pass over each text */
static void
spam_prefilter(struct spam_run *run)
{
	const struct spam_msg	*m = run->msg;
	const struct spam_litset *ls = run->rs->lits;
	struct tg_buf		 t;
	size_t			 i;

	tg_buf_init(&t);
	for (i = 0; i < m->nheaders; i++) {
		const struct spam_header *h = &m->headers[i];

		tg_buf_printf(&t, "%s: %s\n%s: %s\n", h->name,
		    h->raw ? h->raw : "", h->name, h->decoded ? h->decoded :
		    "");
	}
	spam_litset_scan(ls, t.data, t.len, run->found, 1u << SPAM_TGT_HEADERS);
	/* a header rule sees instances joined by '\n', not these lines */
	spam_litset_mark_nl(ls, run->found, 1u << SPAM_TGT_HEADERS);
	tg_buf_reset(&t);
	for (i = 0; i < m->nuris; i++) {
		tg_buf_puts(&t, m->uris[i]);
		tg_buf_putc(&t, '\n');
	}
	spam_litset_scan(ls, t.data, t.len, run->found, 1u << SPAM_TGT_URIS);
	tg_buf_fini(&t);
	if (m->body != NULL)
		spam_litset_scan(ls, m->body, m->body_len, run->found,
		    1u << SPAM_TGT_BODY);
	if (m->rawbody != NULL)
		spam_litset_scan(ls, m->rawbody, m->rawbody_len, run->found,
		    1u << SPAM_TGT_RAWBODY);
	if (m->full != NULL)
		spam_litset_scan(ls, m->full, m->full_len, run->found,
		    1u << SPAM_TGT_FULL);
	run->lbody = spam_lower_dup(m->body ? m->body : "", m->body_len);
	run->lraw = spam_lower_dup(m->rawbody ? m->rawbody : "",
	    m->rawbody_len);
}

/* spam_run_init - per-call matching state */
static void
spam_run_init(struct spam_run *run, const struct spam_rules *rs,
    const struct spam_msg *msg)
{
	memset(run, 0, sizeof(*run));
	run->rs = rs;
	run->msg = msg;
	run->found = tg_calloc(spam_litset_count(rs->lits) + 1, 1);
	run->md = pcre2_match_data_create(1, NULL);
	run->mctx = pcre2_match_context_create(NULL);
	if (run->md == NULL || run->mctx == NULL)
		TG_PANIC("pcre2: out of memory");
	(void)pcre2_set_match_limit(run->mctx, SPAM_MATCH_LIMIT);
	(void)pcre2_set_depth_limit(run->mctx, SPAM_DEPTH_LIMIT);
	/* without a JIT stack of our own (no JIT support), the interpreter
	 * runs with the limits above */
	if ((run->jit = pcre2_jit_stack_create(32 * 1024, 1024 * 1024,
	    NULL)) != NULL)
		pcre2_jit_stack_assign(run->mctx, NULL, run->jit);
	tg_buf_init(&run->hdr);
}

/* spam_run_fini - its release */
static void
spam_run_fini(struct spam_run *run)
{
	free(run->found);
	free(run->lbody);
	free(run->lraw);
	pcre2_match_data_free(run->md);
	pcre2_match_context_free(run->mctx);
	pcre2_jit_stack_free(run->jit);
	tg_buf_fini(&run->hdr);
}

void
spam_rules_run(const struct spam_rules *rs, const struct spam_msg *msg,
    struct spam_score *score)
{
	struct spam_run		 run;
	const struct spam_rule	*r;
	double			*vals;
	size_t			 i;

	spam_run_init(&run, rs, msg);
	spam_prefilter(&run);
	vals = tg_calloc(rs->nrules + 1, sizeof(double));
	for (i = 0; i < rs->nrules; i++) {
		/* past the deadline the rules not run count as misses:
		 * the verdict is on what ran, marked partial */
		if (i % 32 == 0 && spam_score_late(score)) {
			run.partial = true;
			break;
		}
		if (rs->rules[i].enabled && rs->rules[i].kind != SPAM_RULE_META)
			vals[i] = (double)spam_run_rule(&run, &rs->rules[i]);
	}
	for (i = 0; i < rs->nmetas; i++) {
		r = &rs->rules[rs->metas[i]];
		if (r->enabled)
			vals[rs->metas[i]] = spam_expr_eval(r->meta, vals) != 0;
	}
	/* a rule counts once in the score however often it matched (the
	 * count is for metas), as SpamAssassin lists it once in tests= */
	for (i = 0; i < rs->nrules; i++) {
		r = &rs->rules[i];
		if (vals[i] > 0 && r->enabled && r->score != 0 &&
		    strncmp(r->name, "__", 2) != 0)
			spam_score_add(score, r->name, r->score, r->describe);
	}
	if (run.partial)
		score->partial = true;
	free(vals);
	spam_run_fini(&run);
}
