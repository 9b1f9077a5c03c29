/*
 * spf_macro - RFC 7208 section 7: macro-string syntax and expansion,
 * and the name rules around them (domain-spec, toplabel, the 253-byte
 * cut of 7.3, the identity checks of 4.3).
 *
 * One walker, spf_macro_walk, reads a macro-string token by token; given
 * no output it only checks the syntax, so that checking and expanding
 * can never disagree.  Expansion writes into a fixed struct spf_text and
 * fails rather than grow past it.  Nothing here queries DNS: %{p} comes
 * from a callback the caller supplies.
 *
 * Threading: reentrant, no globals.  Ownership: all arguments borrowed.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tollgate/util.h"

#include "spf_int.h"

#define SPF_MACRO_DELIMS	".-+,/_="	/* 7.1 delimiter */
#define SPF_MACRO_LETTERS	"slodiphcrtv"	/* 7.1 macro-letter */
#define SPF_MACRO_DIGITS_MAX	255		/* > any label count */

/* One %{...} macro-expand, as read. */
struct spf_macro {
	char		 letter;	/* lower case */
	bool		 upper;		/* URL-escape it (7.3) */
	unsigned int	 keep;		/* right-hand parts; 0: all */
	bool		 reverse;
	const char	*delims;	/* into the macro-string */
	size_t		 ndelims;
};

static bool	spf_macro_walk(const char *, size_t, enum spf_macro_use,
		    const struct spf_macro_vars *, struct spf_text *, bool *);
static bool	spf_macro_percent(const char *, size_t, size_t *,
		    enum spf_macro_use, const struct spf_macro_vars *,
		    struct spf_text *);
static bool	spf_macro_read(const char *, size_t, size_t *,
		    enum spf_macro_use, struct spf_macro *);
static bool	spf_macro_value(const struct spf_macro *,
		    const struct spf_macro_vars *, struct spf_text *);
static const char *spf_macro_letter(char, const struct spf_macro_vars *,
		    char *, size_t);
static bool	spf_macro_is_delim(char, const struct spf_macro *);
static bool	spf_macro_parts(const char *, const struct spf_macro *,
		    struct spf_text *);
static bool	spf_text_put(struct spf_text *, const char *, size_t,
		    bool);
static bool	spf_is_alnum(char);

/* spf_is_alnum - ASCII letter or digit, whatever the locale */
static bool
spf_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/*
 * spf_text_put - append n bytes, URL-escaped if asked (7.3, RFC 3986).
 * out stays NUL-terminated even when it is full and false is returned.
 */
static bool
spf_text_put(struct spf_text *out, const char *s, size_t n, bool escape)
{
	static const char	hex[] = "0123456789ABCDEF";
	unsigned char		c;
	size_t			i;
	bool			ok = true;

	for (i = 0; i < n && ok; i++) {
		c = (unsigned char)s[i];
		if (!escape || spf_is_alnum((char)c) ||
		    (c != '\0' && strchr("-._~", c) != NULL)) {
			if ((ok = out->len + 1 <= SPF_EXPAND_MAX))
				out->s[out->len++] = (char)c;
		} else if ((ok = out->len + 3 <= SPF_EXPAND_MAX)) {
			out->s[out->len++] = '%';
			out->s[out->len++] = hex[c >> 4];
			out->s[out->len++] = hex[c & 0x0f];
		}
	}
	out->s[out->len] = '\0';
	return ok;
}

/* spf_macro_valid - see spf_int.h */
bool
spf_macro_valid(const char *s, size_t len, enum spf_macro_use use,
    bool *macro_end)
{
	return spf_macro_walk(s, len, use, NULL, NULL, macro_end);
}

/* spf_macro_expand - see spf_int.h */
bool
spf_macro_expand(const char *s, size_t len, enum spf_macro_use use,
    const struct spf_macro_vars *vars, struct spf_text *out)
{
	out->len = 0;
	out->s[0] = '\0';
	return spf_macro_walk(s, len, use, vars, out, NULL);
}

/*
 * spf_macro_walk - check, and expand when out is set, a macro-string.
 * A literal is %x21-24 / %x26-7E (7.1); an explain-string adds SP (6.2).
 */
static bool
spf_macro_walk(const char *s, size_t len, enum spf_macro_use use,
    const struct spf_macro_vars *vars, struct spf_text *out,
    bool *macro_end)
{
	size_t	i = 0;
	bool	end = false;
	char	c;

	while (i < len) {
		c = s[i];
		if (c == '%') {
			if (!spf_macro_percent(s, len, &i, use, vars, out))
				return false;
			end = true;
			continue;
		}
		if ((c < 0x21 || c > 0x7e) &&
		    !(c == ' ' && use == SPF_MACRO_EXPLAIN))
			return false;
		if (out != NULL && !spf_text_put(out, &s[i], 1, false))
			return false;
		end = false;
		i++;
	}
	if (macro_end != NULL)
		*macro_end = end;
	return true;
}

/* spf_macro_percent - one "%" token at *ip: %%, %_, %- or %{...} */
static bool
spf_macro_percent(const char *s, size_t len, size_t *ip,
    enum spf_macro_use use, const struct spf_macro_vars *vars,
    struct spf_text *out)
{
	struct spf_macro	m;
	size_t			i = *ip;
	const char		*lit = NULL;

	if (i + 1 >= len)
		return false;	/* 7.1: a lone "%" is a syntax error */
	switch (s[i + 1]) {
	case '%':
		lit = "%";
		break;
	case '_':
		lit = " ";
		break;
	case '-':
		lit = "%20";
		break;
	case '{':
		if (!spf_macro_read(s, len, ip, use, &m))
			return false;
		return out == NULL || spf_macro_value(&m, vars, out);
	default:
		return false;
	}
	*ip = i + 2;
	return out == NULL || spf_text_put(out, lit, strlen(lit), false);
}

/*
 * spf_macro_read - "%{" letter *DIGIT ["r"] *delimiter "}" at *ip.
 * c, r and t belong to explanations only (7.1); a DIGIT must not be 0.
 */
static bool
spf_macro_read(const char *s, size_t len, size_t *ip, enum spf_macro_use use,
    struct spf_macro *m)
{
	size_t	i = *ip + 2;
	bool	digits = false;

	memset(m, 0, sizeof(*m));
	if (i >= len || strchr(SPF_MACRO_LETTERS, s[i] | 0x20) == NULL ||
	    s[i] == '\0')
		return false;
	m->letter = (char)(s[i] | 0x20);
	m->upper = s[i] >= 'A' && s[i] <= 'Z';
	if (use == SPF_MACRO_DOMAIN && strchr("crt", m->letter) != NULL)
		return false;
	for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		digits = true;
		m->keep = m->keep * 10 + (unsigned int)(s[i] - '0');
		if (m->keep > SPF_MACRO_DIGITS_MAX)
			m->keep = SPF_MACRO_DIGITS_MAX;
	}
	if (digits && m->keep == 0)
		return false;
	if (i < len && (s[i] == 'r' || s[i] == 'R')) {
		m->reverse = true;
		i++;
	}
	m->delims = &s[i];
	while (i < len && s[i] != '\0' && strchr(SPF_MACRO_DELIMS, s[i]) !=
	    NULL)
		i++;
	m->ndelims = (size_t)(&s[i] - m->delims);
	if (i >= len || s[i] != '}')
		return false;
	*ip = i + 1;
	return true;
}

/* spf_macro_letter - the raw value of a letter (7.3) */
static const char *
spf_macro_letter(char letter, const struct spf_macro_vars *v, char *tbuf,
    size_t tsz)
{
	switch (letter) {
	case 's':
		return v->sender;
	case 'l':
		return v->local;
	case 'o':
		return v->sender_domain;
	case 'd':
		return v->domain;
	case 'i':
		return v->ip;
	case 'c':
		return v->client;
	case 'h':
		return v->helo;
	case 'r':
		return v->receiver != NULL ? v->receiver : "unknown";
	case 'v':
		return v->version;
	case 'p':
		return v->ptr != NULL ? v->ptr(v->ptr_arg, v->domain) :
		    "unknown";
	case 't':
		(void)snprintf(tbuf, tsz, "%" PRIdMAX, (intmax_t)v->now);
		return tbuf;
	default:
		TG_PANIC("spf: macro letter '%c' passed the syntax check",
		    letter);
	}
}

/* spf_macro_value - the transformed, maybe escaped, value of m */
static bool
spf_macro_value(const struct spf_macro *m, const struct spf_macro_vars *vars,
    struct spf_text *out)
{
	struct spf_text	 part;
	const char	*val;
	char		 tbuf[32];

	val = spf_macro_letter(m->letter, vars, tbuf, sizeof(tbuf));
	if (val == NULL)
		val = "";
	part.len = 0;
	part.s[0] = '\0';
	if (!spf_macro_parts(val, m, &part))
		return false;
	return spf_text_put(out, part.s, part.len, m->upper);
}

/* spf_macro_is_delim - does c split parts for m ("." by default)? */
static bool
spf_macro_is_delim(char c, const struct spf_macro *m)
{
	if (m->ndelims == 0)
		return c == '.';
	return c != '\0' && memchr(m->delims, c, m->ndelims) != NULL;
}

/*
 * spf_macro_parts - split val on the delimiters, reverse if asked, keep
 * the right-most m->keep parts and join them with "." (7.3).  Reversed,
 * the parts kept are the first ones of val, written last to first.
 */
static bool
spf_macro_parts(const char *val, const struct spf_macro *m,
    struct spf_text *out)
{
	size_t		n = strlen(val), nparts = 1, skip, i, end, start;
	unsigned int	keep;

	for (i = 0; i < n; i++)
		if (spf_macro_is_delim(val[i], m))
			nparts++;
	keep = m->keep == 0 || m->keep > nparts ? (unsigned int)nparts :
	    m->keep;
	if (!m->reverse) {
		/* Skip the left-most nparts - keep parts. */
		for (i = 0, skip = nparts - keep; i < n && skip > 0; i++)
			if (spf_macro_is_delim(val[i], m))
				skip--;
		for (; i < n; i++)
			if (!spf_text_put(out, spf_macro_is_delim(val[i], m) ?
			    "." : &val[i], 1, false))
				return false;
		return true;
	}
	/* Find where part keep - 1 ends, then walk back part by part. */
	for (end = 0, skip = keep; end < n; end++)
		if (spf_macro_is_delim(val[end], m) && --skip == 0)
			break;
	while (true) {
		for (start = end; start > 0 &&
		    !spf_macro_is_delim(val[start - 1], m); start--)
			continue;
		if (!spf_text_put(out, &val[start], end - start, false))
			return false;
		if (start == 0)
			return true;
		if (!spf_text_put(out, ".", 1, false))
			return false;
		end = start - 1;
	}
}

/*
 * spf_toplabel_valid - toplabel = ( *alphanum ALPHA *alphanum ) /
 * ( 1*alphanum "-" *( alphanum / "-" ) alphanum ): letters, digits and
 * inner dashes, and not all digits unless a dash makes it LDH (7.1).
 */
bool
spf_toplabel_valid(const char *s, size_t n)
{
	size_t	i;
	bool	alpha = false, dash = false;

	if (n == 0 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '-')
			dash = true;
		else if (!spf_is_alnum(s[i]))
			return false;
		else if (s[i] > '9')
			alpha = true;
	}
	return alpha || dash;
}

/*
 * spf_domain_spec_valid - domain-spec = macro-string domain-end, and
 * domain-end = ( "." toplabel [ "." ] ) / macro-expand (7.1).
 */
bool
spf_domain_spec_valid(const char *s, size_t n)
{
	const char	*dot;
	bool		 macro_end;

	if (n == 0 || !spf_macro_valid(s, n, SPF_MACRO_DOMAIN, &macro_end))
		return false;
	if (macro_end)
		return true;
	if (s[n - 1] == '.')
		n--;
	dot = n > 0 ? memrchr(s, '.', n) : NULL;
	if (dot == NULL)
		return false;	/* a toplabel alone is no domain-end */
	return spf_toplabel_valid(dot + 1, n - (size_t)(dot + 1 - s));
}

/* spf_target_name - see spf_int.h */
bool
spf_target_name(const struct spf_text *in, char *out, size_t outsz)
{
	const char	*s = in->s, *dot;
	size_t		 n = in->len, label;

	if (n > 0 && s[n - 1] == '.')
		n--;
	/* 7.3: drop labels from the left until the name fits. */
	while (n > SPF_DOMAIN_MAX) {
		if ((dot = memchr(s, '.', n)) == NULL)
			return false;
		n -= (size_t)(dot + 1 - s);
		s = dot + 1;
	}
	if (n == 0 || n >= outsz || memchr(s, '\0', n) != NULL)
		return false;
	for (label = 0; n > 0; s++, n--) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (++label > SPF_LABEL_MAX)
			return false;
		*out++ = *s;
	}
	*out = '\0';
	return label > 0;
}

/* spf_domain_valid - see spf_int.h */
bool
spf_domain_valid(const char *name)
{
	size_t	n = strlen(name), i, label = 0, labels = 1, top = 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > SPF_DOMAIN_MAX)
		return false;
	for (i = 0; i < n; i++) {
		if (name[i] < 0x21 || name[i] > 0x7e)
			return false;
		if (name[i] != '.') {
			if (++label > SPF_LABEL_MAX)
				return false;
			continue;
		}
		if (label == 0)
			return false;
		label = 0;
		labels++;
		top = i + 1;
	}
	return label > 0 && labels > 1 &&
	    spf_toplabel_valid(&name[top], n - top);
}
