/*
 * spf_record - one SPF record's text into terms (RFC 7208 4.5, 4.6, 5,
 * 6 and the ABNF of 12).
 *
 * The whole record is checked before anything is evaluated, because a
 * syntax error anywhere is a permerror even when an earlier term would
 * match (4.6).  The grammar is applied strictly: terms are separated by
 * spaces only, a record holds printable ASCII only, CIDR lengths have no
 * leading zeros, an ip4-network has exactly four numbers, and the known
 * modifier names never fall back to unknown-modifier.  Domain-specs are
 * kept unexpanded; spf_eval expands them when their term is evaluated.
 *
 * Threading: reentrant.  Ownership: the record owns a copy of its text,
 * and every term points into that copy; spf_record_fini frees both.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/util.h"

#include "spf_int.h"

#define SPF_VERSION	"v=spf1"
#define SPF_VERSION_LEN	6

struct spf_mech_name {
	const char	*name;
	enum spf_mech	 mech;
};

/* RFC 7208 5: the eight mechanisms; names are case-insensitive (12). */
static const struct spf_mech_name spf_mech_names[] = {
	{ "all", SPF_MECH_ALL },
	{ "include", SPF_MECH_INCLUDE },
	{ "a", SPF_MECH_A },
	{ "mx", SPF_MECH_MX },
	{ "ptr", SPF_MECH_PTR },
	{ "ip4", SPF_MECH_IP4 },
	{ "ip6", SPF_MECH_IP6 },
	{ "exists", SPF_MECH_EXISTS },
};

static bool	spf_term_parse(struct spf_record *, const char *, size_t,
		    char *, size_t);
static bool	spf_modifier(struct spf_record *, const char *, size_t,
		    size_t, char *, size_t);
static bool	spf_mechanism(struct spf_record *, const char *, size_t,
		    char *, size_t);
static bool	spf_mech_args(struct spf_term *, const char *, size_t);
static bool	spf_host_args(struct spf_term *, const char *, size_t);
static bool	spf_cidr_len(const char *, size_t, unsigned int,
		    unsigned int *);
static bool	spf_dual_cidr(const char *, size_t, struct spf_term *);
static size_t	spf_cidr_suffix(const char *, size_t, struct spf_term *,
		    bool *);
static bool	spf_ip4_parse(const char *, size_t, unsigned char *);
static bool	spf_ip_args(struct spf_term *, const char *, size_t);
static bool	spf_is_alpha(char);
static bool	spf_is_digit(char);
static size_t	spf_digits(const char *, size_t);

/* spf_is_alpha - ASCII letter */
static bool
spf_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* spf_is_digit - ASCII digit */
static bool
spf_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* spf_digits - how many digits s[0..n) starts with */
static size_t
spf_digits(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n && spf_is_digit(s[i]); i++)
		continue;
	return i;
}

/* spf_record_is_spf1 - see spf_int.h */
bool
spf_record_is_spf1(const char *s, size_t n)
{
	return n >= SPF_VERSION_LEN &&
	    tg_strncasecmp(s, SPF_VERSION, SPF_VERSION_LEN) == 0 &&
	    (n == SPF_VERSION_LEN || s[SPF_VERSION_LEN] == ' ');
}

/* spf_record_parse - see spf_int.h */
bool
spf_record_parse(struct spf_record *rec, const char *s, size_t n, char *why,
    size_t whysz)
{
	size_t	i, end;

	memset(rec, 0, sizeof(*rec));
	if (!spf_record_is_spf1(s, n)) {
		(void)snprintf(why, whysz, "not an SPF record");
		return false;
	}
	if (n > SPF_RECORD_MAX) {
		(void)snprintf(why, whysz, "record longer than %d bytes",
		    SPF_RECORD_MAX);
		return false;
	}
	/* 3.1, 4.6.1: printable ASCII, and only SP separates terms. */
	for (i = 0; i < n && s[i] >= 0x20 && s[i] <= 0x7e; i++)
		continue;
	if (i < n) {
		(void)snprintf(why, whysz, "invalid byte 0x%02x in record",
		    (unsigned char)s[i]);
		return false;
	}
	rec->text = tg_malloc(n + 1);
	memcpy(rec->text, s, n);
	rec->text[n] = '\0';
	rec->len = n;
	for (i = SPF_VERSION_LEN; i < n; i = end) {
		for (; i < n && rec->text[i] == ' '; i++)
			continue;
		for (end = i; end < n && rec->text[end] != ' '; end++)
			continue;
		if (end > i && !spf_term_parse(rec, &rec->text[i], end - i,
		    why, whysz)) {
			spf_record_fini(rec);
			return false;
		}
	}
	return true;
}

/* spf_record_fini - free what spf_record_parse made; rec is zeroed */
void
spf_record_fini(struct spf_record *rec)
{
	free(rec->terms);
	free(rec->text);
	memset(rec, 0, sizeof(*rec));
}

/*
 * spf_term_parse - a directive or a modifier.  A modifier is a name
 * (ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )) right before "=" (4.6.1).
 */
static bool
spf_term_parse(struct spf_record *rec, const char *t, size_t n, char *why,
    size_t whysz)
{
	size_t	i = 0;

	if (spf_is_alpha(t[0])) {
		for (i = 1; i < n && (spf_is_alpha(t[i]) ||
		    spf_is_digit(t[i]) || strchr("-_.", t[i]) != NULL); i++)
			continue;
		if (i < n && t[i] == '=')
			return spf_modifier(rec, t, n, i, why, whysz);
	}
	return spf_mechanism(rec, t, n, why, whysz);
}

/*
 * spf_modifier - redirect=, exp= or an unknown modifier, whose name ends
 * at t[eq].  The known two take a domain-spec and appear at most once
 * (6); an unknown one needs a valid macro-string and is otherwise
 * ignored (6, A).
 */
static bool
spf_modifier(struct spf_record *rec, const char *t, size_t n, size_t eq,
    char *why, size_t whysz)
{
	const char	**spec, *val = t + eq + 1;
	size_t		 *spec_len, vlen = n - eq - 1;

	if (eq == 8 && tg_strncasecmp(t, "redirect", 8) == 0) {
		spec = &rec->redirect;
		spec_len = &rec->redirect_len;
	} else if (eq == 3 && tg_strncasecmp(t, "exp", 3) == 0) {
		spec = &rec->exp;
		spec_len = &rec->exp_len;
	} else {
		if (spf_macro_valid(val, vlen, SPF_MACRO_MODIFIER, NULL))
			return true;
		(void)snprintf(why, whysz, "bad macro-string in \"%.*s\"",
		    (int)(n > 64 ? 64 : n), t);
		return false;
	}
	if (*spec != NULL) {
		(void)snprintf(why, whysz, "%.*s= appears twice", (int)eq, t);
		return false;
	}
	if (!spf_domain_spec_valid(val, vlen)) {
		(void)snprintf(why, whysz, "bad domain-spec in \"%.*s\"",
		    (int)(n > 64 ? 64 : n), t);
		return false;
	}
	*spec = val;
	*spec_len = vlen;
	return true;
}

/* spf_mechanism - [ qualifier ] mechanism, appended to rec->terms */
static bool
spf_mechanism(struct spf_record *rec, const char *t, size_t n, char *why,
    size_t whysz)
{
	struct spf_term	 term;
	size_t		 nlen, i;
	int		 shown = (int)(n > 64 ? 64 : n);

	memset(&term, 0, sizeof(term));
	term.text = t;
	term.text_len = n;
	term.qual = t[0] == '-' ? SPF_FAIL : t[0] == '~' ? SPF_SOFTFAIL :
	    t[0] == '?' ? SPF_NEUTRAL : SPF_PASS;
	if (strchr("+-~?", t[0]) != NULL) {
		t++;
		n--;
	}
	for (nlen = 0; nlen < n && t[nlen] != ':' && t[nlen] != '/'; nlen++)
		continue;
	for (i = 0; i < TG_NITEMS(spf_mech_names); i++)
		if (strlen(spf_mech_names[i].name) == nlen &&
		    tg_strncasecmp(t, spf_mech_names[i].name, nlen) == 0)
			break;
	if (i == TG_NITEMS(spf_mech_names)) {
		(void)snprintf(why, whysz, "unknown mechanism \"%.*s\"",
		    shown, term.text);
		return false;
	}
	term.mech = spf_mech_names[i].mech;
	if (!spf_mech_args(&term, t + nlen, n - nlen)) {
		(void)snprintf(why, whysz, "bad mechanism \"%.*s\"", shown,
		    term.text);
		return false;
	}
	if (rec->nterms == rec->cap) {
		rec->cap = rec->cap == 0 ? 16 : rec->cap * 2;
		rec->terms = tg_reallocarray(rec->terms, rec->cap,
		    sizeof(*rec->terms));
	}
	rec->terms[rec->nterms++] = term;
	return true;
}

/* spf_mech_args - what follows the mechanism name, per mechanism (5.x) */
static bool
spf_mech_args(struct spf_term *term, const char *a, size_t n)
{
	term->cidr4 = 32;
	term->cidr6 = 128;
	switch (term->mech) {
	case SPF_MECH_ALL:
		return n == 0;
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
		if (n < 2 || a[0] != ':' || !spf_domain_spec_valid(a + 1,
		    n - 1))
			return false;
		term->spec = a + 1;
		term->spec_len = n - 1;
		return true;
	case SPF_MECH_PTR:
		if (n == 0)
			return true;
		if (n < 2 || a[0] != ':' || !spf_domain_spec_valid(a + 1,
		    n - 1))
			return false;
		term->spec = a + 1;
		term->spec_len = n - 1;
		return true;
	case SPF_MECH_A:
	case SPF_MECH_MX:
		return spf_host_args(term, a, n);
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		return spf_ip_args(term, a, n);
	}
	TG_PANIC("spf: mechanism %d has no parser", (int)term->mech);
}

/*
 * spf_host_args - a and mx: [ ":" domain-spec ] [ dual-cidr-length ].
 * With a domain-spec, a CIDR suffix is only what parses as one at the
 * end: "a:foo:bar/baz.example.com" is all domain-spec (7.1 allows any
 * visible character but "%" in it).
 */
static bool
spf_host_args(struct spf_term *term, const char *a, size_t n)
{
	size_t	spec_len;
	bool	ok;

	if (n == 0 || a[0] == '/')
		return spf_dual_cidr(a, n, term);
	if (a[0] != ':')
		return false;
	spec_len = spf_cidr_suffix(a + 1, n - 1, term, &ok);
	if (!ok || !spf_domain_spec_valid(a + 1, spec_len))
		return false;
	term->spec = a + 1;
	term->spec_len = spec_len;
	return true;
}

/*
 * spf_cidr_len - ip4-cidr-length or ip6-cidr-length digits: "0" or no
 * leading zero, at most max.
 */
static bool
spf_cidr_len(const char *s, size_t n, unsigned int max, unsigned int *out)
{
	unsigned int	v = 0;
	size_t		i;

	if (n == 0 || n > 3 || n != spf_digits(s, n) || (n > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < n; i++)
		v = v * 10 + (unsigned int)(s[i] - '0');
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* spf_dual_cidr - all of s[0..n) is [ "/" ip4 ] [ "//" ip6 ] (5.3) */
static bool
spf_dual_cidr(const char *s, size_t n, struct spf_term *term)
{
	size_t	d;

	if (n >= 1 && s[0] == '/' && (n < 2 || s[1] != '/')) {
		d = spf_digits(s + 1, n - 1);
		if (!spf_cidr_len(s + 1, d, 32, &term->cidr4))
			return false;
		s += 1 + d;
		n -= 1 + d;
	}
	if (n == 0)
		return true;
	if (n < 3 || s[0] != '/' || s[1] != '/')
		return false;
	return spf_cidr_len(s + 2, n - 2, 128, &term->cidr6);
}

/*
 * spf_cidr_suffix - the length of s without a dual-cidr-length at its
 * end; *ok false when a "/digits" there is not a valid length.
 */
static size_t
spf_cidr_suffix(const char *s, size_t n, struct spf_term *term, bool *ok)
{
	size_t	d, end = n;

	*ok = true;
	for (d = end; d > 0 && spf_is_digit(s[d - 1]); d--)
		continue;
	if (d < end && d >= 2 && s[d - 1] == '/' && s[d - 2] == '/') {
		*ok = spf_cidr_len(s + d, end - d, 128, &term->cidr6);
		end = d - 2;
		for (d = end; d > 0 && spf_is_digit(s[d - 1]); d--)
			continue;
	}
	if (*ok && d < end && d >= 1 && s[d - 1] == '/') {
		*ok = spf_cidr_len(s + d, end - d, 32, &term->cidr4);
		end = d - 1;
	}
	return end;
}

/*
 * spf_ip4_parse - ip4-network: four qnum, each 0-255 written without
 * leading zeros (5.6), into out[0..4).
 */
static bool
spf_ip4_parse(const char *s, size_t n, unsigned char *out)
{
	unsigned int	v;
	size_t		i, d, pos = 0;

	for (i = 0; i < 4; i++) {
		if (i > 0 && (pos >= n || s[pos++] != '.'))
			return false;
		d = spf_digits(s + pos, n - pos);
		if (d == 0 || d > 3 || (d > 1 && s[pos] == '0'))
			return false;
		for (v = 0; d > 0; d--)
			v = v * 10 + (unsigned int)(s[pos++] - '0');
		if (v > 255)
			return false;
		out[i] = (unsigned char)v;
	}
	return pos == n;
}

/* spf_ip_args - ip4: ":" ip4-network [ "/" len ], ip6 likewise (5.6) */
static bool
spf_ip_args(struct spf_term *term, const char *a, size_t n)
{
	const char	*slash;
	char		 buf[INET6_ADDRSTRLEN];
	size_t		 alen;

	if (n < 2 || a[0] != ':')
		return false;
	a++;
	n--;
	slash = memchr(a, '/', n);
	alen = slash != NULL ? (size_t)(slash - a) : n;
	if (slash != NULL && !spf_cidr_len(slash + 1, n - alen - 1,
	    term->mech == SPF_MECH_IP4 ? 32 : 128, term->mech ==
	    SPF_MECH_IP4 ? &term->cidr4 : &term->cidr6))
		return false;
	if (term->mech == SPF_MECH_IP4)
		return spf_ip4_parse(a, alen, term->net);
	if (alen == 0 || alen >= sizeof(buf))
		return false;
	memcpy(buf, a, alen);
	buf[alen] = '\0';
	return inet_pton(AF_INET6, buf, term->net) == 1;
}

/* spf_cidr_match - see spf_int.h */
bool
spf_cidr_match(const unsigned char *a, const unsigned char *b,
    unsigned int bits)
{
	unsigned int	bytes = bits / 8, rest = bits % 8;
	unsigned char	mask;

	if (bits > 128)
		TG_PANIC("spf: prefix length %u", bits);
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}
