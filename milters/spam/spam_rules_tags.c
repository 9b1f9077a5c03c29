/*
 * spam_rules_tags - SpamAssassin's ReplaceTags, natively.
 *
 * Rule files define named regex fragments (replace_tag A [a@4], and
 * replace_pre, replace_inter, replace_post fragments) and list the
 * rules whose regexes use them (replace_rules NAME...).  Once all files
 * are read, each listed rule's regex has its <A> tags replaced and is
 * compiled again.  This follows finish_parsing_end() of SpamAssassin
 * 4.0's Plugin/ReplaceTags.pm step by step: the <pre X>, <post X> and
 * <inter X> markers (the first of each) are taken out; the regex is split
 * into text and tags; the pre fragment goes before each tag, the post
 * fragment after each, the inter fragment into the empty text between
 * two tags (and before a leading tag); then each tag with a definition
 * is replaced; up to six passes while replacements bring new tags.
 * Only the default delimiters < and > are read.
 *
 * Used by the loader only, at start-up.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tollgate/buf.h"

#include "spam_rules_int.h"

/* spam_tags_set - define (or redefine) one fragment */
void
spam_tags_set(struct spam_tags *t, enum spam_tag_kind k, const char *name,
    const char *value)
{
	struct spam_tag	*v;
	size_t		 i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].kind == k && strcmp(t->v[i].name, name) == 0) {
			free(t->v[i].value);
			t->v[i].value = tg_strdup(value);
			return;
		}
	t->v = tg_reallocarray(t->v, t->n + 1, sizeof(*t->v));
	v = &t->v[t->n++];
	v->kind = k;
	v->name = tg_strdup(name);
	v->value = tg_strdup(value);
}

/* spam_tags_get - a fragment's value, or NULL */
static const char *
spam_tags_get(const struct spam_tags *t, enum spam_tag_kind k,
    const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].kind == k && strlen(t->v[i].name) == len &&
		    strncmp(t->v[i].name, name, len) == 0)
			return t->v[i].value;
	return NULL;
}

void
spam_tags_fini(struct spam_tags *t)
{
	size_t	i;

	for (i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].value);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* spam_tags_marker - take out the first "<word NAME>"; NAME's fragment
 * of kind k, or NULL */
static const char *
spam_tags_marker(const struct spam_tags *t, char *re, const char *word,
    enum spam_tag_kind k)
{
	const char	*v;
	char		*p, *end;
	size_t		 wl = strlen(word);

	for (p = re; (p = strchr(p, '<')) != NULL; p++) {
		if (strncmp(p + 1, word, wl) != 0 || p[1 + wl] != ' ' ||
		    (end = strchr(p + wl + 2, '>')) == NULL ||
		    end == p + wl + 2)
			continue;
		v = spam_tags_get(t, k, p + wl + 2, (size_t)(end - p - wl - 2));
		memmove(p, end + 1, strlen(end + 1) + 1);
		return v;
	}
	return NULL;
}

/* spam_tags_is_tag - a <[^<>]+> at p: its length, else 0 */
static size_t
spam_tags_is_tag(const char *p)
{
	size_t	i;

	if (*p != '<')
		return 0;
	for (i = 1; p[i] != '\0' && p[i] != '<' && p[i] != '>'; i++)
		;
	return p[i] == '>' && i > 1 ? i + 1 : 0;
}

/* spam_tags_pass - one pass over re into out; true if a replacement
 * brought in a new tag */
static bool
spam_tags_pass(const struct spam_tags *t, char *re, struct tg_buf *out)
{
	const char	*pre, *post, *inter, *v, *p, *text;
	size_t		 tl;
	bool		 again = false, first = true;

	pre = spam_tags_marker(t, re, "pre", SPAM_TAG_PRE);
	post = spam_tags_marker(t, re, "post", SPAM_TAG_POST);
	inter = spam_tags_marker(t, re, "inter", SPAM_TAG_INTER);
	for (p = text = re; ; ) {
		tl = *p != '\0' ? spam_tags_is_tag(p) : 0;
		if (*p != '\0' && tl == 0) {
			p++;
			continue;
		}
		/* the text before this tag (or the end): empty between two
		 * tags, or before a leading one, takes the inter fragment;
		 * Perl's split drops a trailing empty field */
		if (p > text)
			tg_buf_append(out, text, (size_t)(p - text));
		else if (inter != NULL && tl > 0 && (first || p == text))
			tg_buf_puts(out, inter);
		if (tl == 0)
			break;
		first = false;
		if (pre != NULL)
			tg_buf_puts(out, pre);
		v = spam_tags_get(t, SPAM_TAG_TAG, p + 1, tl - 2);
		if (v != NULL) {
			tg_buf_puts(out, v);
			for (const char *q = v; *q; q++)
				again |= *q == '<' && strchr(q, '>') != NULL;
		} else
			tg_buf_append(out, p, tl);
		if (post != NULL)
			tg_buf_puts(out, post);
		p += tl;
		text = p;
	}
	tg_buf_puts(out, "");
	return again;
}

char *
spam_tags_apply(const struct spam_tags *t, const char *re)
{
	struct tg_buf	 out;
	char		*cur = tg_strdup(re);
	int		 pass;
	bool		 again = true;

	/* SpamAssassin: at most 6 passes ($passes <= 5 after the first) */
	for (pass = 0; again && pass < 6; pass++) {
		tg_buf_init(&out);
		again = spam_tags_pass(t, cur, &out);
		free(cur);
		cur = tg_buf_steal(&out);
	}
	return cur;
}
