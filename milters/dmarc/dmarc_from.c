/*
 * dmarc_from - the author domain of an RFC5322.From field.
 *
 * The value is read as an RFC 5322 3.4 address-list: mailboxes
 * ("name <addr>" or a bare addr-spec) separated by commas, groups
 * ("name: a, b;"), comments (nested) and quoted strings anywhere, folding
 * white space.  Only the domain of each address is kept, each distinct
 * domain once: with several, the module evaluates every one and applies
 * the strictest outcome (RFC 7489 6.6.1).  Anything that is not an
 * address-list (an unterminated comment or quote, a stray '<' or '>', an
 * address without a domain, a domain literal) is refused by the strict
 * reader.  Obsolete route syntax (RFC 5322 4.4, "<@relay:a@b>") is
 * skipped.  A group without its final ';' is read to the end: Mail
 * From:<a@b> is how some broken software writes its From.
 *
 * A refused value is then read leniently (dmarc_from_lenient): the
 * domain of every addr-spec-looking "local@domain" in it, with comments,
 * quotes and angle brackets only as delimiters, so that
 * "CEO" <ceo@bank.example>> is still held to bank.example's policy;
 * taking every such domain, not one, means no address in a broken value
 * can hide another.  Only a value without any usable local@domain has
 * no author domain (the module's permerror).  A domain literal is never
 * a usable domain.
 *
 * Pure functions on the caller's buffers; thread-safe.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dmarc_int.h"
#include "tollgate/buf.h"

/* The parser's state while walking one value. */
struct dmarc_from_state {
	struct tg_buf	 plain;		/* mailbox text outside <> */
	struct tg_buf	 angle;		/* text inside <> */
	bool		 in_angle, had_angle;
	size_t		 naddr;
	struct dmarc_authors *authors;	/* where domains go */
	const char	*why;
};

static enum tg_status	dmarc_from_skip_comment(const char **);
static enum tg_status	dmarc_from_mailbox(struct dmarc_from_state *);
static enum tg_status	dmarc_from_domain_check(const char *, char *);

/* dmarc_lower - ASCII lower case in place */
char *
dmarc_lower(char *s)
{
	char	*p;

	for (p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

/* dmarc_from_skip_comment - *pp at '(': past the matching ')' */
static enum tg_status
dmarc_from_skip_comment(const char **pp)
{
	const char	*p = *pp;
	int		 depth = 0;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0) {
			*pp = p + 1;
			return TG_OK;
		}
	}
	return TG_PERM;
}

/* dmarc_from_quoted - *pp at '"': past the closing quote; 'q' kept */
static enum tg_status
dmarc_from_quoted(const char **pp, struct tg_buf *b)
{
	const char	*p = *pp + 1;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"') {
			/*
			 * The content does not matter for the domain, but it
			 * must not be read as '@', ',' or '<'.
			 */
			tg_buf_putc(b, 'q');
			*pp = p + 1;
			return TG_OK;
		}
	}
	return TG_PERM;
}

/* dmarc_from_addr - the address of the mailbox just read, or "" */
static const char *
dmarc_from_addr(struct dmarc_from_state *s)
{
	const char	*a;

	if (!s->had_angle)
		return tg_buf_cstr(&s->plain);
	a = tg_buf_cstr(&s->angle);
	/* RFC 5322 4.4 obs-route: "@relay,@relay2:" before the address. */
	if (*a == '@' && strchr(a, ':') != NULL)
		a = strchr(a, ':') + 1;
	return a;
}

/* dmarc_authors_add - dom, unless a has it; past the limit, too_many */
static void
dmarc_authors_add(struct dmarc_authors *a, const char *dom)
{
	size_t	i;

	for (i = 0; i < a->n; i++)
		if (strcmp(a->domain[i], dom) == 0)
			return;
	if (a->n == DMARC_AUTHORS_MAX) {
		a->too_many = true;
		return;
	}
	memcpy(a->domain[a->n++], dom, strlen(dom) + 1);
}

/* dmarc_from_mailbox - one mailbox ended: check and keep its domain */
static enum tg_status
dmarc_from_mailbox(struct dmarc_from_state *s)
{
	char		 dom[DMARC_DOMAIN_MAX + 1];
	const char	*a = dmarc_from_addr(s), *at;

	if (s->in_angle) {
		s->why = "unterminated angle address";
		return TG_PERM;
	}
	if (*a == '\0' && !s->had_angle)
		goto next;	/* an empty list element or group */
	if ((at = strrchr(a, '@')) == NULL) {
		s->why = "address without a domain";
		return TG_PERM;
	}
	if (dmarc_from_domain_check(at + 1, dom) != TG_OK) {
		s->why = at[1] == '[' ? "domain literal" : "bad domain";
		return TG_PERM;
	}
	s->naddr++;
	dmarc_authors_add(s->authors, dom);
next:
	tg_buf_reset(&s->plain);
	tg_buf_reset(&s->angle);
	s->had_angle = false;
	return TG_OK;
}

/* dmarc_from_domain_check - a usable domain name, lowercased into out */
static enum tg_status
dmarc_from_domain_check(const char *d, char *out)
{
	size_t		 len = strlen(d), i;
	unsigned char	 c;

	while (len > 0 && d[len - 1] == '.')
		len--;		/* a root dot names the same domain */
	if (len == 0 || len > DMARC_DOMAIN_MAX || d[0] == '.')
		return TG_PERM;
	for (i = 0; i < len; i++) {
		c = (unsigned char)d[i];
		if (c == '.' && d[i + 1] == '.')
			return TG_PERM;
		/* LDH, '_' as some publish, and UTF-8 U-labels (RFC 6532). */
		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '-' && c != '.' &&
		    c != '_' && c < 0x80)
			return TG_PERM;
	}
	memcpy(out, d, len);
	out[len] = '\0';
	dmarc_lower(out);
	return TG_OK;
}

/* dmarc_from_char - one character outside comments and quotes */
static enum tg_status
dmarc_from_char(struct dmarc_from_state *s, char c)
{
	if (s->in_angle) {
		if (c == '>')
			s->in_angle = false;
		else if (c == '<') {
			s->why = "nested angle address";
			return TG_PERM;
		} else if (c != ' ')
			tg_buf_putc(&s->angle, c);
		return TG_OK;
	}
	switch (c) {
	case '<':
		if (s->had_angle) {
			s->why = "two angle addresses in one mailbox";
			return TG_PERM;
		}
		s->in_angle = s->had_angle = true;
		return TG_OK;
	case '>':
		s->why = "stray '>'";
		return TG_PERM;
	case ',':
		return dmarc_from_mailbox(s);
	case ':':
		/* A group: what came before is its display name. */
		tg_buf_reset(&s->plain);
		return TG_OK;
	case ';':
		return dmarc_from_mailbox(s);
	case ' ':
		return TG_OK;	/* FWS between the tokens of an addr-spec */
	default:
		tg_buf_putc(&s->plain, c);
		return TG_OK;
	}
}

/* dmarc_from_walk - the whole value, mailbox by mailbox */
static enum tg_status
dmarc_from_walk(struct dmarc_from_state *s, const char *p)
{
	enum tg_status	st;
	char		c;

	while (*p != '\0') {
		if (*p == '(') {
			if (dmarc_from_skip_comment(&p) != TG_OK) {
				s->why = "unterminated comment";
				return TG_PERM;
			}
			continue;
		}
		if (*p == '"' && !s->in_angle) {
			if (dmarc_from_quoted(&p, &s->plain) != TG_OK) {
				s->why = "unterminated quoted string";
				return TG_PERM;
			}
			continue;
		}
		c = *p++;
		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		if ((st = dmarc_from_char(s, c)) != TG_OK)
			return st;
	}
	return dmarc_from_mailbox(s);
}

/* dmarc_from_domains - the author domains of a From: value, strictly */
enum tg_status
dmarc_from_domains(const char *value, struct dmarc_authors *a,
    const char **why)
{
	struct dmarc_from_state	s;
	enum tg_status		st;
	size_t			n = a->n;
	bool			too_many = a->too_many;

	memset(&s, 0, sizeof(s));
	tg_buf_init(&s.plain);
	tg_buf_init(&s.angle);
	s.authors = a;
	st = dmarc_from_walk(&s, value);
	tg_buf_fini(&s.plain);
	tg_buf_fini(&s.angle);
	if (st == TG_OK && s.naddr == 0) {
		s.why = "no author address";
		st = TG_NOTFOUND;
	}
	if (st != TG_OK) {
		/* Only appended to: undo what this value added. */
		a->n = n;
		a->too_many = too_many;
	}
	*why = st == TG_OK ? NULL : s.why;
	return st;
}

/* dmarc_from_lenient - every local@domain of a value that does not parse */
enum tg_status
dmarc_from_lenient(const char *value, struct dmarc_authors *a)
{
	static const char	 delim[] = " \t\r\n<>()\",;:[]\\";
	char			 dom[DMARC_DOMAIN_MAX + 1], *tok;
	const char		*p = value, *at;
	size_t			 len;
	bool			 found = false;

	for (;; p += len) {
		p += strspn(p, delim);
		if ((len = strcspn(p, delim)) == 0)
			break;
		tok = tg_strndup(p, len);
		at = strrchr(tok, '@');
		if (at != NULL && at != tok &&
		    dmarc_from_domain_check(at + 1, dom) == TG_OK) {
			dmarc_authors_add(a, dom);
			found = true;
		}
		free(tok);
	}
	a->lenient = a->lenient || found;
	return found ? TG_OK : TG_NOTFOUND;
}

/* dmarc_from_domain - the one author domain of a From: value */
enum tg_status
dmarc_from_domain(const char *value, char *out, const char **why)
{
	struct dmarc_authors	a;
	enum tg_status		st;

	memset(&a, 0, sizeof(a));
	out[0] = '\0';
	if ((st = dmarc_from_domains(value, &a, why)) != TG_OK)
		return st;
	if (a.n > 1 || a.too_many) {
		*why = "several author domains";
		return TG_PERM;
	}
	memcpy(out, a.domain[0], strlen(a.domain[0]) + 1);
	return TG_OK;
}
