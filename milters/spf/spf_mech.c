/*
 * spf_mech - the mechanisms of RFC 7208 5 for the native engine: what
 * each one asks the resolver and whether the client matches, with the
 * limits of 4.6.4 (DNS-querying terms, void lookups, MX and PTR names)
 * counted on the check's state.  The client's validated names (5.5) are
 * found once per check and serve both ptr and %{p}.
 *
 * Threading: reentrant; all state is the caller's struct spf_check.
 * Ownership: answers from the resolver are freed before each function
 * returns.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/dns.h"
#include "tollgate/spf.h"
#include "tollgate/util.h"

#include "spf_check.h"
#include "spf_int.h"

static enum spf_ev spf_void(struct spf_check *, const char *);
static enum spf_ev spf_lookup_ev(struct spf_check *, enum tg_status, bool,
		    const char *, const struct tg_err *);
static enum tg_status spf_addrs(struct spf_check *, const char *,
		    unsigned int, unsigned int, bool *, struct tg_err *);
static enum spf_ev spf_mech_a(struct spf_check *, const struct spf_term *,
		    const char *);
static enum spf_ev spf_mech_mx(struct spf_check *, const struct spf_term *,
		    const char *);
static enum spf_ev spf_mx_hosts(struct spf_check *, const struct spf_term *,
		    const struct tg_dns_answer *, const char *);
static enum spf_ev spf_mech_ptr(struct spf_check *, const struct spf_term *,
		    const char *);
static enum spf_ev spf_mech_exists(struct spf_check *,
		    const struct spf_term *, const char *);
static enum spf_ev spf_include(struct spf_check *, const struct spf_term *,
		    const char *, unsigned int);
static bool	spf_wire_name(const unsigned char *, size_t, char *, size_t);
static bool	spf_name_under(const char *, const char *);
static void	spf_reverse_name(const struct spf_check *, char *, size_t);
static void	spf_ptr_fill(struct spf_check *);

/* spf_term - does one mechanism match? (5) */
enum spf_ev
spf_term(struct spf_check *chk, const struct spf_term *t, const char *domain,
    unsigned int depth)
{
	switch (t->mech) {
	case SPF_MECH_ALL:
		return SPF_EV_MATCH;
	case SPF_MECH_IP4:
		return chk->af == AF_INET && spf_cidr_match(chk->addr, t->net,
		    t->cidr4) ? SPF_EV_MATCH : SPF_EV_NOMATCH;
	case SPF_MECH_IP6:
		return chk->af == AF_INET6 && spf_cidr_match(chk->addr,
		    t->net, t->cidr6) ? SPF_EV_MATCH : SPF_EV_NOMATCH;
	case SPF_MECH_INCLUDE:
		return spf_include(chk, t, domain, depth);
	case SPF_MECH_A:
		return spf_mech_a(chk, t, domain);
	case SPF_MECH_MX:
		return spf_mech_mx(chk, t, domain);
	case SPF_MECH_PTR:
		return spf_mech_ptr(chk, t, domain);
	case SPF_MECH_EXISTS:
		return spf_mech_exists(chk, t, domain);
	}
	TG_PANIC("spf: mechanism %d cannot be evaluated", (int)t->mech);
}

/*
 * spf_count - one more DNS-querying term (4.6.4: at most 10 per check);
 * false, with the reason set, past the limit.
 */
bool
spf_count(struct spf_check *chk, const char *text, size_t len)
{
	if (chk->lookups++ < SPF_MAX_LOOKUPS)
		return true;
	spf_reason(chk, "more than %d DNS lookups, at \"%.*s\"",
	    SPF_MAX_LOOKUPS, SPF_SHOWN(len), text);
	return false;
}

/* spf_void - a term's lookup found nothing (4.6.4: at most 2 may) */
static enum spf_ev
spf_void(struct spf_check *chk, const char *name)
{
	if (++chk->voids <= SPF_MAX_VOIDS)
		return SPF_EV_NOMATCH;
	spf_reason(chk, "more than %d void lookups, at %s", SPF_MAX_VOIDS,
	    name);
	return SPF_EV_PERM;
}

/*
 * spf_lookup_ev - what a term's lookup comes to: no such name or no
 * record is a void lookup (4.6.4), a DNS failure ends the check with
 * temperror, and a name the resolver refuses does not match (see
 * spf_mech_a).  match is the term's own test of a TG_OK answer.
 */
static enum spf_ev
spf_lookup_ev(struct spf_check *chk, enum tg_status st, bool match,
    const char *name, const struct tg_err *err)
{
	switch (st) {
	case TG_OK:
		return match ? SPF_EV_MATCH : SPF_EV_NOMATCH;
	case TG_NOTFOUND:
		return spf_void(chk, name);
	case TG_TEMP:
		spf_reason(chk, "%s", err->text);
		return SPF_EV_TEMP;
	case TG_PERM:
		break;
	}
	return SPF_EV_NOMATCH;
}

/*
 * spf_target - the <target-name> of a term: spec expanded with %{d} =
 * domain, or domain itself without a spec (4.8).  false when the
 * expansion makes no name that can be queried.
 */
bool
spf_target(struct spf_check *chk, const char *spec, size_t len,
    const char *domain, char *out)
{
	struct spf_macro_vars	vars = chk->vars;
	struct spf_text		text;

	if (spec == NULL) {
		spf_copy(out, SPF_NAME_BUF, domain, strlen(domain), false);
		return true;
	}
	vars.domain = domain;
	return spf_macro_expand(spec, len, SPF_MACRO_DOMAIN, &vars, &text) &&
	    spf_target_name(&text, out, SPF_NAME_BUF);
}

/*
 * spf_addrs - is the client among name's addresses of its own family,
 * within the prefix length (5.3)?  Returns the lookup's status; *match
 * is set only with TG_OK.
 */
static enum tg_status
spf_addrs(struct spf_check *chk, const char *name, unsigned int cidr4,
    unsigned int cidr6, bool *match, struct tg_err *err)
{
	struct tg_dns_answer	*ans;
	enum tg_status		 st;
	size_t			 i, alen = chk->af == AF_INET ? 4 : 16;

	*match = false;
	st = spf_dns(chk, name, chk->af == AF_INET ? TG_DNS_A : TG_DNS_AAAA,
	    &ans, err);
	for (i = 0; st == TG_OK && i < ans->count && !*match; i++)
		*match = ans->rdlen[i] == alen && spf_cidr_match(ans->rdata[i],
		    chk->addr, chk->af == AF_INET ? cidr4 : cidr6);
	(void)tg_dns_answer_free(ans);
	return st;
}

/*
 * spf_mech_a - "a" (5.3).  A target the expansion leaves malformed does
 * not match: RFC 7208 leaves it undefined, and 4.3 treats a malformed
 * <domain> as one with no record.  So does a name the resolver refuses.
 */
static enum spf_ev
spf_mech_a(struct spf_check *chk, const struct spf_term *t,
    const char *domain)
{
	struct tg_err	err;
	enum tg_status	st;
	char		name[SPF_NAME_BUF];
	bool		match;

	if (!spf_count(chk, t->text, t->text_len))
		return SPF_EV_PERM;
	if (!spf_target(chk, t->spec, t->spec_len, domain, name))
		return SPF_EV_NOMATCH;
	st = spf_addrs(chk, name, t->cidr4, t->cidr6, &match, &err);
	return spf_lookup_ev(chk, st, match, name, &err);
}

/*
 * spf_mech_mx - "mx" (5.4): the addresses of each MX host.  More than 10
 * MX records is a permerror (4.6.4); there is no fallback to the
 * target's own address (5.4).
 */
static enum spf_ev
spf_mech_mx(struct spf_check *chk, const struct spf_term *t,
    const char *domain)
{
	struct tg_dns_answer	*ans;
	struct tg_err		 err;
	enum tg_status		 st;
	enum spf_ev		 ev = SPF_EV_NOMATCH;
	char			 name[SPF_NAME_BUF];

	if (!spf_count(chk, t->text, t->text_len))
		return SPF_EV_PERM;
	if (!spf_target(chk, t->spec, t->spec_len, domain, name))
		return SPF_EV_NOMATCH;
	st = spf_dns(chk, name, TG_DNS_MX, &ans, &err);
	if (st == TG_OK && ans->count > SPF_MAX_MX) {
		spf_reason(chk, "%s has more than %d MX records", name,
		    SPF_MAX_MX);
		ev = SPF_EV_PERM;
	} else if (st == TG_OK)
		ev = spf_mx_hosts(chk, t, ans, name);
	else
		ev = spf_lookup_ev(chk, st, false, name, &err);
	(void)tg_dns_answer_free(ans);
	return ev;
}

/*
 * spf_mx_hosts - match the client against each MX host's addresses.  A
 * null MX (RFC 7505, ".") has none; a failed address lookup ends the
 * check with temperror, since the answer might have matched.
 */
static enum spf_ev
spf_mx_hosts(struct spf_check *chk, const struct spf_term *t,
    const struct tg_dns_answer *ans, const char *name)
{
	struct tg_err	err;
	char		host[SPF_NAME_BUF];
	size_t		i;
	bool		match;

	for (i = 0; i < ans->count; i++) {
		if (ans->rdlen[i] < 3 || !spf_wire_name(ans->rdata[i] + 2,
		    ans->rdlen[i] - 2, host, sizeof(host)) || host[0] == '\0')
			continue;
		switch (spf_addrs(chk, host, t->cidr4, t->cidr6, &match,
		    &err)) {
		case TG_OK:
			if (match)
				return SPF_EV_MATCH;
			break;
		case TG_TEMP:
			spf_reason(chk, "mx %s: %s", name, err.text);
			return SPF_EV_TEMP;
		case TG_NOTFOUND:
		case TG_PERM:
			break;
		}
	}
	return SPF_EV_NOMATCH;
}

/*
 * spf_mech_ptr - "ptr" (5.5): does a validated name of the client equal
 * the target or end in it?  A failed PTR lookup just does not match.
 */
static enum spf_ev
spf_mech_ptr(struct spf_check *chk, const struct spf_term *t,
    const char *domain)
{
	char	name[SPF_NAME_BUF];
	size_t	i;

	if (!spf_count(chk, t->text, t->text_len))
		return SPF_EV_PERM;
	if (!spf_target(chk, t->spec, t->spec_len, domain, name))
		return SPF_EV_NOMATCH;
	spf_ptr_fill(chk);
	if (chk->ptr.status == TG_NOTFOUND)
		return spf_void(chk, "the client's PTR name");
	for (i = 0; i < chk->ptr.n; i++)
		if (spf_name_under(chk->ptr.names[i], name))
			return SPF_EV_MATCH;
	return SPF_EV_NOMATCH;
}

/* spf_mech_exists - "exists" (5.7): any A record, whatever the client */
static enum spf_ev
spf_mech_exists(struct spf_check *chk, const struct spf_term *t,
    const char *domain)
{
	struct tg_err	err;
	char		name[SPF_NAME_BUF];

	if (!spf_count(chk, t->text, t->text_len))
		return SPF_EV_PERM;
	if (!spf_target(chk, t->spec, t->spec_len, domain, name))
		return SPF_EV_NOMATCH;
	return spf_lookup_ev(chk, spf_dns(chk, name, TG_DNS_A, NULL, &err),
	    true, name, &err);
}

/*
 * spf_include - "include" (5.2): pass matches; fail, softfail and
 * neutral do not; the errors propagate; none is a permerror.  The
 * included record's exp= is never used (6.2).
 */
static enum spf_ev
spf_include(struct spf_check *chk, const struct spf_term *t,
    const char *domain, unsigned int depth)
{
	char	name[SPF_NAME_BUF];

	if (!spf_count(chk, t->text, t->text_len))
		return SPF_EV_PERM;
	if (!spf_target(chk, t->spec, t->spec_len, domain, name)) {
		spf_reason(chk, "\"%.*s\" names no valid domain",
		    SPF_SHOWN(t->text_len), t->text);
		return SPF_EV_PERM;
	}
	switch (spf_host(chk, name, depth + 1, false)) {
	case SPF_PASS:
		return SPF_EV_MATCH;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		return SPF_EV_NOMATCH;
	case SPF_TEMPERROR:
		return SPF_EV_TEMP;
	case SPF_NONE:
		spf_reason(chk, "include:%s: no SPF record", name);
		return SPF_EV_PERM;
	case SPF_PERMERROR:
		break;
	}
	return SPF_EV_PERM;
}

/*
 * spf_wire_name - an uncompressed wire-format name (MX and PTR rdata)
 * as text without the final dot; the root is "".  false for a name we
 * could not write back unambiguously.
 */
static bool
spf_wire_name(const unsigned char *p, size_t n, char *out, size_t outsz)
{
	size_t	off = 0, o = 0, l, i;

	while (off < n) {
		l = p[off++];
		if (l == 0) {
			out[o] = '\0';
			return true;
		}
		/* > 63 is also a compression pointer: not in rdata. */
		if (l > SPF_LABEL_MAX || l > n - off ||
		    o + (o > 0) + l >= outsz)
			return false;
		if (o > 0)
			out[o++] = '.';
		for (i = 0; i < l; i++, off++) {
			if (p[off] < 0x21 || p[off] > 0x7e || p[off] == '.')
				return false;
			out[o++] = (char)p[off];
		}
	}
	return false;
}

/* spf_name_under - is name the domain dom or below it, in any case? */
static bool
spf_name_under(const char *name, const char *dom)
{
	size_t	n = strlen(name), d = strlen(dom);

	if (n == d)
		return tg_strcasecmp(name, dom) == 0;
	return n > d && name[n - d - 1] == '.' &&
	    tg_strcasecmp(name + n - d, dom) == 0;
}

/* spf_reverse_name - the client's in-addr.arpa or ip6.arpa name */
static void
spf_reverse_name(const struct spf_check *chk, char *out, size_t outsz)
{
	static const char	hex[] = "0123456789abcdef";
	const unsigned char	*a = chk->addr;
	size_t			 i, o = 0;

	if (chk->af == AF_INET) {
		if (snprintf(out, outsz, "%u.%u.%u.%u.in-addr.arpa", a[3],
		    a[2], a[1], a[0]) >= (int)outsz)
			TG_PANIC("spf: reverse name buffer too small");
		return;
	}
	if (outsz < 16 * 4 + sizeof("ip6.arpa"))
		TG_PANIC("spf: reverse name buffer too small");
	for (i = 16; i > 0; i--) {
		out[o++] = hex[a[i - 1] & 0x0f];
		out[o++] = '.';
		out[o++] = hex[a[i - 1] >> 4];
		out[o++] = '.';
	}
	memcpy(out + o, "ip6.arpa", sizeof("ip6.arpa"));
}

/*
 * spf_ptr_fill - the client's validated names (5.5), once per check:
 * of the first 10 PTR names, those whose addresses include the client.
 * A failed address lookup skips that name (5.5).
 */
static void
spf_ptr_fill(struct spf_check *chk)
{
	struct spf_ptr_cache	*pc = &chk->ptr;
	struct tg_dns_answer	*ans;
	char			 rev[80], name[SPF_NAME_BUF];
	size_t			 i;
	bool			 match;

	if (pc->done)
		return;
	pc->done = true;
	spf_reverse_name(chk, rev, sizeof(rev));
	pc->status = spf_dns(chk, rev, TG_DNS_PTR, &ans, NULL);
	for (i = 0; pc->status == TG_OK && i < ans->count &&
	    i < SPF_MAX_PTR; i++) {
		if (!spf_wire_name(ans->rdata[i], ans->rdlen[i], name,
		    sizeof(name)) || name[0] == '\0')
			continue;
		if (spf_addrs(chk, name, 32, 128, &match, NULL) == TG_OK &&
		    match)
			memcpy(pc->names[pc->n++], name, sizeof(name));
	}
	(void)tg_dns_answer_free(ans);
}

/*
 * spf_ptr_macro - %{p} (7.3): domain itself if validated, else a
 * validated name below it, else any, else "unknown".
 */
const char *
spf_ptr_macro(void *arg, const char *domain)
{
	struct spf_check	*chk = arg;
	size_t			 i;

	spf_ptr_fill(chk);
	for (i = 0; i < chk->ptr.n; i++)
		if (tg_strcasecmp(chk->ptr.names[i], domain) == 0)
			return chk->ptr.names[i];
	for (i = 0; i < chk->ptr.n; i++)
		if (spf_name_under(chk->ptr.names[i], domain))
			return chk->ptr.names[i];
	return chk->ptr.n > 0 ? chk->ptr.names[0] : "unknown";
}
