/*
 * spam_bayes_tok - a message's Bayes tokens, after SpamAssassin's
 * Bayes tokenizer (Mail::SpamAssassin::Bayes::tokenize).
 *
 * Body (the Subject and the text parts, HTML rendered): words of
 * letters, digits, bytes of UTF-8 sequences and - ' $ ! _ . , @ *, with
 * leading and trailing punctuation stripped and ASCII lowercased (UTF-8
 * letters kept as written); words under 3 bytes are skipped, words over
 * 15 become "sk:" and their first 7 bytes (on a UTF-8 boundary), and a
 * long word with '.' or '@' (a host or an address) also gives its
 * pieces.  Headers: each header's words prefixed with its name ("H" and
 * the lowercase name), except those that say nothing about the sender
 * or that a filter added (X-Spam-*, Date, Status...); Received gives
 * its host names and its IPv4 addresses with their /24 and /16, and no
 * ids or dates; Message-ID its domain; address headers their domains;
 * X-Mailer and User-Agent their whole value too.  URIs: each domain and
 * its parent domains, and the pieces of each path.  MIME: each part's
 * type, charset and file-name extension, and whether there was HTML or
 * broken MIME.
 *
 * Tokens are hashed to 64 bits (the first 8 bytes of SHA-1, OpenSSL),
 * as SpamAssassin keeps 40 bits of SHA-1: collisions are then rare
 * enough to ignore for a few million tokens.
 */
#include "config.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/util.h"

#include "spam_bayes_int.h"

#define SPAM_BAYES_TOKBUF	320
#define SPAM_BAYES_HOST_MAX	64	/* Received host names */

struct spam_bayes_tokctx {
	spam_bayes_emit_fn	 emit;
	void			*arg;
};

/* Headers that say nothing of the sender, or that a filter added. */
static const char *const spam_bayes_skip_hdrs[] = {
	"date", "delivery-date", "delivered-to", "envelope-to",
	"content-length", "lines", "status", "x-status", "x-keywords",
	"x-uid", "x-uidl", "x-flags", "x-evolution", "x-bogosity",
	"x-pyzor", "x-authentication-warning", "x-gnus-mail-source",
	"x-mime-autoconverted", "x-converted-to-plain-text",
	"x-original-to", "x-loop", "x-mailman-version", "x-beenthere",
	"precedence", "errors-to", "list-archive", "list-help",
	"list-post", "list-subscribe", "list-unsubscribe", "list-id",
	"content-transfer-encoding", "mime-version", "references",
	"in-reply-to", "sender", "return-path", "x-original-date",
};

/* spam_bayes_wordch - whether c belongs in a word */
static bool
spam_bayes_wordch(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80 || strchr("-'$!_.,@*", c) !=
	    NULL;
}

/* spam_bayes_edgech - punctuation stripped from a word's ends */
static bool
spam_bayes_edgech(unsigned char c)
{
	return strchr("-'.,!*_@$", c) != NULL;
}

/* spam_bayes_put - emit prefix + text[0..len) lowercased (ASCII) */
static void
spam_bayes_put(struct spam_bayes_tokctx *t, const char *prefix,
    const char *text, size_t len)
{
	char	buf[SPAM_BAYES_TOKBUF];
	size_t	p = strlen(prefix), i;

	if (p + len > sizeof(buf))
		len = sizeof(buf) - p;
	memcpy(buf, prefix, p);
	for (i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)text[i];

		buf[p + i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : (char)c;
	}
	t->emit(buf, p + len, t->arg);
}

/* spam_bayes_utf8_cut - the longest prefix of s, at most n bytes, that
 * ends on a UTF-8 character boundary */
static size_t
spam_bayes_utf8_cut(const char *s, size_t len, size_t n)
{
	if (len <= n)
		return len;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* spam_bayes_word - one word (ends already stripped) under prefix */
static void
spam_bayes_word(struct spam_bayes_tokctx *t, const char *prefix,
    const char *w, size_t len, size_t min, size_t max)
{
	char	 sk[SPAM_BAYES_TOKBUF];
	size_t	 i, start;

	if (len < min)
		return;
	if (len <= max) {
		spam_bayes_put(t, prefix, w, len);
		return;
	}
	(void)snprintf(sk, sizeof(sk), "%ssk:", prefix);
	spam_bayes_put(t, sk, w, spam_bayes_utf8_cut(w, len, 7));
	if (memchr(w, '.', len) == NULL && memchr(w, '@', len) == NULL)
		return;
	/* a host name or an address: its pieces too */
	for (start = i = 0; i <= len; i++) {
		if (i < len && w[i] != '.' && w[i] != '@')
			continue;
		if (i - start >= min && i - start <= SPAM_BAYES_TOKEN_MAX)
			spam_bayes_put(t, prefix, w + start, i - start);
		start = i + 1;
	}
}

/*
 * spam_bayes_words - split text into words under prefix; skip_digits
 * drops words with a digit (ids, dates and times in Received)
 */
static void
spam_bayes_words(struct spam_bayes_tokctx *t, const char *prefix,
    const char *text, size_t len, size_t min, size_t max, bool skip_digits)
{
	size_t	i = 0, s, e, k;
	bool	digit;

	while (i < len) {
		while (i < len && !spam_bayes_wordch((unsigned char)text[i]))
			i++;
		s = i;
		while (i < len && spam_bayes_wordch((unsigned char)text[i]))
			i++;
		e = i;
		while (s < e && spam_bayes_edgech((unsigned char)text[s]))
			s++;
		while (e > s && spam_bayes_edgech((unsigned char)text[e - 1]))
			e--;
		if (s == e)
			continue;
		if (skip_digits) {
			for (digit = false, k = s; k < e && !digit; k++)
				digit = text[k] >= '0' && text[k] <= '9';
			if (digit)
				continue;
		}
		spam_bayes_word(t, prefix, text + s, e - s, min, max);
	}
}

/* spam_bayes_ipv4 - the IPv4 address at s (up to 15 bytes), as its
 * length, or 0 */
static size_t
spam_bayes_ipv4(const char *s, size_t len, int dots_at[3])
{
	size_t	i, digits = 0;
	int	dots = 0;

	for (i = 0; i < len && i < 16; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			if (++digits > 3)
				return 0;
		} else if (s[i] == '.' && digits > 0 && dots < 3) {
			dots_at[dots++] = (int)i;
			digits = 0;
		} else
			break;
	}
	return dots == 3 && digits > 0 ? i : 0;
}

/* spam_bayes_received - host names, and each IPv4 with /24 and /16 */
static void
spam_bayes_received(struct spam_bayes_tokctx *t, const char *v)
{
	const char	*semi = strrchr(v, ';');
	size_t		 len, i, n;
	int		 dots[3];

	/* the date after the last ';' says nothing of the sender */
	len = semi != NULL ? (size_t)(semi - v) : strlen(v);

	/* host names whole: they are what Received says of the sender */
	spam_bayes_words(t, "Hrcvd:", v, len, 3, SPAM_BAYES_HOST_MAX, true);
	for (i = 0; i < len; i++) {
		if (i > 0 && ((v[i - 1] >= '0' && v[i - 1] <= '9') ||
		    v[i - 1] == '.'))
			continue;
		if ((n = spam_bayes_ipv4(v + i, len - i, dots)) == 0)
			continue;
		if (i + n < len && (v[i + n] == '.' ||
		    (v[i + n] >= '0' && v[i + n] <= '9')))
			continue;
		spam_bayes_put(t, "Hrcvd:ip:", v + i, n);
		spam_bayes_put(t, "Hrcvd:ip:", v + i, (size_t)dots[2]);
		spam_bayes_put(t, "Hrcvd:ip:", v + i, (size_t)dots[1]);
		i += n;
	}
}

/* spam_bayes_domains - the domain of each address in an address
 * header (after '@', up to a character that cannot be in one) */
static void
spam_bayes_domains(struct spam_bayes_tokctx *t, const char *prefix,
    const char *v)
{
	const char	*at, *e;

	for (at = strchr(v, '@'); at != NULL; at = strchr(at + 1, '@')) {
		for (e = at + 1; *e != '\0' && (spam_bayes_wordch(
		    (unsigned char)*e) && *e != ',' && *e != '@'); e++)
			continue;
		while (e > at + 1 && e[-1] == '.')
			e--;
		if (e > at + 1)
			spam_bayes_put(t, prefix, at + 1,
			    (size_t)(e - at - 1));
	}
}

/* spam_bayes_header - one header's tokens */
static void
spam_bayes_header(struct spam_bayes_tokctx *t, const struct spam_header *h)
{
	char		 name[64], prefix[80];
	const char	*v = h->decoded != NULL ? h->decoded : h->raw;
	size_t		 i, len;

	if (v == NULL || h->name == NULL)
		return;
	for (i = 0; h->name[i] != '\0' && i < sizeof(name) - 1; i++)
		name[i] = h->name[i] >= 'A' && h->name[i] <= 'Z' ?
		    (char)(h->name[i] + 32) : h->name[i];
	name[i] = '\0';
	if (strncmp(name, "x-spam", 6) == 0 ||
	    strncmp(name, "x-virus", 7) == 0 ||
	    strncmp(name, "x-razor", 7) == 0)
		return;
	for (i = 0; i < TG_NITEMS(spam_bayes_skip_hdrs); i++)
		if (strcmp(name, spam_bayes_skip_hdrs[i]) == 0)
			return;
	len = strlen(v);
	if (strcmp(name, "received") == 0) {
		spam_bayes_received(t, v);
		return;
	}
	if (strcmp(name, "message-id") == 0) {
		spam_bayes_domains(t, "Hmid:d:", v);
		return;
	}
	(void)snprintf(prefix, sizeof(prefix), "H%s:", name);
	spam_bayes_words(t, prefix, v, len, 1, SPAM_BAYES_TOKEN_MAX, false);
	if (strcmp(name, "from") == 0 || strcmp(name, "to") == 0 ||
	    strcmp(name, "cc") == 0 || strcmp(name, "reply-to") == 0) {
		(void)snprintf(prefix, sizeof(prefix), "H%s:d:", name);
		spam_bayes_domains(t, prefix, v);
	}
	if (strcmp(name, "x-mailer") == 0 || strcmp(name, "user-agent") == 0)
		spam_bayes_put(t, "Hmailer:", v, len < 60 ? len : 60);
}

/* spam_bayes_uri_path - the pieces of a URI's path and query */
static void
spam_bayes_uri_path(struct spam_bayes_tokctx *t, const char *u)
{
	const char	*p, *s;
	size_t		 n;

	if ((p = strstr(u, "://")) == NULL)
		return;
	if ((p = strchr(p + 3, '/')) == NULL)
		return;
	for (s = ++p; ; p++) {
		if (*p != '\0' && strchr("/?&=.-_#;+%", *p) == NULL)
			continue;
		n = (size_t)(p - s);
		if (n >= 3)
			spam_bayes_word(t, "U:p:", s, n, 3,
			    SPAM_BAYES_TOKEN_MAX);
		if (*p == '\0')
			break;
		s = p + 1;
	}
}

/* spam_bayes_uris - domains with their parents, and path pieces */
static void
spam_bayes_uris(struct spam_bayes_tokctx *t, const struct spam_msg *m)
{
	const char	*d, *dot;
	size_t		 i;

	for (i = 0; i < m->nuri_domains; i++) {
		for (d = m->uri_domains[i]; d != NULL; d = dot != NULL ?
		    dot + 1 : NULL) {
			spam_bayes_put(t, "U:d:", d, strlen(d));
			if ((dot = strchr(d, '.')) == NULL ||
			    strchr(dot + 1, '.') == NULL)
				break;
		}
	}
	for (i = 0; i < m->nuris && i < 200; i++)
		spam_bayes_uri_path(t, m->uris[i]);
}

/* spam_bayes_parts - types, charsets, file-name extensions, flags */
static void
spam_bayes_parts(struct spam_bayes_tokctx *t, const struct spam_msg *m)
{
	const struct spam_part	*p;
	const char		*ext;
	size_t			 i;

	for (i = 0; i < m->nparts; i++) {
		p = &m->parts[i];
		if (p->type != NULL)
			spam_bayes_put(t, "P:t:", p->type, strlen(p->type));
		if (p->charset != NULL)
			spam_bayes_put(t, "P:cs:", p->charset,
			    strlen(p->charset));
		if (p->filename != NULL &&
		    (ext = strrchr(p->filename, '.')) != NULL)
			spam_bayes_put(t, "P:ext:", ext + 1, strlen(ext + 1));
		if (p->broken)
			spam_bayes_put(t, "M:", "broken", 6);
	}
	if (m->has_html)
		spam_bayes_put(t, "M:", "html", 4);
	if (m->malformed)
		spam_bayes_put(t, "M:", "malformed", 9);
}

void
spam_bayes_tokens(const struct spam_msg *m, spam_bayes_emit_fn emit,
    void *arg)
{
	struct spam_bayes_tokctx	t = { emit, arg };
	size_t				i;

	if (m->body != NULL)
		spam_bayes_words(&t, "", m->body, m->body_len,
		    SPAM_BAYES_TOKEN_MIN, SPAM_BAYES_TOKEN_MAX, false);
	for (i = 0; i < m->nheaders; i++)
		spam_bayes_header(&t, &m->headers[i]);
	spam_bayes_uris(&t, m);
	spam_bayes_parts(&t, m);
}

uint64_t
spam_bayes_hash(const char *tok, size_t len)
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen = 0;
	uint64_t	h = 0;
	int		i;

	if (EVP_Digest(tok, len, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen < 8)
		TG_PANIC("EVP_Digest(sha1) failed");
	for (i = 0; i < 8; i++)
		h = h << 8 | md[i];
	return h;
}

/* spam_bayes_toks_add - the emit function of spam_bayes_toks_make */
static void
spam_bayes_toks_add(const char *tok, size_t len, void *arg)
{
	struct spam_bayes_toks	*t = arg;

	if (t->n == t->cap) {
		t->cap = t->cap == 0 ? 512 : t->cap * 2;
		t->h = tg_reallocarray(t->h, t->cap, sizeof(*t->h));
	}
	t->h[t->n++] = spam_bayes_hash(tok, len);
}

/* spam_bayes_u64_cmp - qsort order */
static int
spam_bayes_u64_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void
spam_bayes_toks_make(const struct spam_msg *m, struct spam_bayes_toks *t)
{
	size_t	i, j;

	memset(t, 0, sizeof(*t));
	spam_bayes_tokens(m, spam_bayes_toks_add, t);
	if (t->n == 0)
		return;
	qsort(t->h, t->n, sizeof(*t->h), spam_bayes_u64_cmp);
	for (i = j = 1; i < t->n; i++)
		if (t->h[i] != t->h[j - 1])
			t->h[j++] = t->h[i];
	t->n = j;
	/* a bound on one message's batch: an arbitrary but fixed subset */
	if (t->n > SPAM_BAYES_MSG_TOKENS)
		t->n = SPAM_BAYES_MSG_TOKENS;
}

void
spam_bayes_toks_fini(struct spam_bayes_toks *t)
{
	free(t->h);
	memset(t, 0, sizeof(*t));
}
