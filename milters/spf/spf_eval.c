/*
 * spf_eval - check_host() of RFC 7208 on tollgate's resolver.
 *
 * spf_check sets up one struct spf_check (the client, the identity,
 * the macro values, the counters of 4.6.4 and a deadline), then
 * spf_host fetches and runs a record, recursing for include and
 * redirect with an explicit depth.  Every limit of 4.6.4 is counted over
 * the whole check: DNS-querying terms when they are evaluated (so a
 * record may list more than ten if evaluation stops early), void
 * lookups of those terms, at most 10 MX and 10 PTR names.  exp= is
 * looked up once, after the result, only on fail, and counts against
 * nothing (6.2).  The client's validated names (5.5) are found at most
 * once per check and serve both ptr and %{p}.
 *
 * What this file does not do: parse records (spf_record.c), expand
 * macros (spf_macro.c), cache (the resolver does), log decisions (the
 * module does; the resolver logs each query at debug).
 *
 * Threading: reentrant; the state lives in one heap block per call.
 * Ownership: answers from the resolver are freed before each function
 * returns; nothing outlives spf_check but the caller's spf_answer.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tollgate/buf.h"
#include "tollgate/dns.h"
#include "tollgate/spf.h"
#include "tollgate/util.h"

#include "spf_int.h"

#define SPF_NAME_BUF	(SPF_DOMAIN_MAX + 1)
#define SPF_SHOWN(n)	((int)((n) > 80 ? 80 : (n)))	/* in reasons */

/* What evaluating one term comes to (4.6.2). */
enum spf_ev {
	SPF_EV_NOMATCH,
	SPF_EV_MATCH,
	SPF_EV_TEMP,		/* the check ends: temperror */
	SPF_EV_PERM		/* the check ends: permerror */
};

/* The client's validated domain names (5.5), found once per check. */
struct spf_ptr_cache {
	bool		 done;
	enum tg_status	 status;	/* of the PTR lookup */
	size_t		 n;
	char		 names[SPF_MAX_PTR][SPF_NAME_BUF];
};

/* One spf_check() call. */
struct spf_check {
	struct tg_dns			*dns;
	const struct spf_request	*req;
	struct spf_answer		*ans;
	int				 af;	/* after unmapping */
	unsigned char			 addr[16];
	char				 ip_i[72];	/* %{i} */
	char				 ip_c[INET6_ADDRSTRLEN]; /* %{c} */
	char				 local[SPF_LOCAL_MAX + 1];
	char				 domain[SPF_NAME_BUF];
	char				 sender[SPF_LOCAL_MAX + 1 +
					    SPF_NAME_BUF];
	struct spf_macro_vars		 vars;	/* .domain per use */
	unsigned int			 lookups;
	unsigned int			 voids;
	struct timespec			 deadline;	/* monotonic */
	struct spf_ptr_cache		 ptr;
};

static const char *const spf_result_names[] = {
	[SPF_NONE] = "none",
	[SPF_NEUTRAL] = "neutral",
	[SPF_PASS] = "pass",
	[SPF_FAIL] = "fail",
	[SPF_SOFTFAIL] = "softfail",
	[SPF_TEMPERROR] = "temperror",
	[SPF_PERMERROR] = "permerror",
};

static void	spf_explain_default(struct spf_check *, const char *);
static bool	spf_has_fail(const struct spf_record *);
static bool	spf_client(struct spf_check *, const char *);
static bool	spf_identity(struct spf_check *);
static bool	spf_identity_domain(struct spf_check *, const char *);
static void	spf_start(struct spf_check *);
static void	spf_finish(struct spf_check *, enum spf_result);
static void	spf_reason(struct spf_check *, const char *, ...)
		    TG_PRINTF(2, 3);
static void	spf_copy(char *, size_t, const char *, size_t, bool);
static enum tg_status spf_dns(struct spf_check *, const char *, int,
		    struct tg_dns_answer **, struct tg_err *);
static enum spf_result spf_host(struct spf_check *, const char *,
		    unsigned int, bool);
static enum tg_status spf_fetch(struct spf_check *, const char *,
		    struct spf_record *);
static size_t	spf_select(const struct tg_dns_answer *, struct tg_buf *);
static bool	spf_txt_bytes(const struct tg_dns_answer *, size_t,
		    struct tg_buf *);
static enum spf_result spf_run(struct spf_check *, const struct spf_record *,
		    const char *, unsigned int, bool);
static enum spf_ev spf_term(struct spf_check *, const struct spf_term *,
		    const char *, unsigned int);
static bool	spf_count(struct spf_check *, const char *, size_t);
static enum spf_ev spf_void(struct spf_check *, const char *);
static bool	spf_target(struct spf_check *, const char *, size_t,
		    const char *, char *);
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
static enum spf_result spf_redirect(struct spf_check *,
		    const struct spf_record *, const char *, unsigned int,
		    bool);
static void	spf_explain(struct spf_check *, const struct spf_record *,
		    const char *);
static bool	spf_exp_text(struct spf_check *, const struct spf_record *,
		    const struct spf_macro_vars *, struct spf_text *);
static bool	spf_wire_name(const unsigned char *, size_t, char *, size_t);
static bool	spf_name_under(const char *, const char *);
static void	spf_reverse_name(const struct spf_check *, char *, size_t);
static void	spf_ptr_fill(struct spf_check *);
static const char *spf_ptr_macro(void *, const char *);

/* spf_result_name - see spf.h */
const char *
spf_result_name(enum spf_result r)
{
	if ((size_t)r >= TG_NITEMS(spf_result_names))
		return "permerror";
	return spf_result_names[r];
}

/* spf_result_parse - see spf.h */
bool
spf_result_parse(const char *s, enum spf_result *r)
{
	size_t	i;

	for (i = 0; i < TG_NITEMS(spf_result_names); i++)
		if (tg_strcasecmp(s, spf_result_names[i]) == 0) {
			*r = (enum spf_result)i;
			return true;
		}
	return false;
}

/* spf_check - see spf.h */
enum tg_status
spf_check(struct tg_dns *dns, const struct spf_request *req,
    struct spf_answer *ans)
{
	struct spf_check	*chk;
	enum spf_result		 r = SPF_NONE;

	memset(ans, 0, sizeof(*ans));
	ans->ttl = SPF_TTL_NONE;
	/* About 5 KiB: on the heap, for the sake of small thread stacks. */
	chk = tg_calloc(1, sizeof(*chk));
	chk->dns = dns;
	chk->req = req;
	chk->ans = ans;
	if (!spf_client(chk, req->ip)) {
		spf_reason(chk, "client address \"%.64s\" is not an IP address",
		    req->ip != NULL ? req->ip : "");
		free(chk);
		return TG_PERM;
	}
	if (spf_identity(chk)) {
		spf_start(chk);
		r = spf_host(chk, chk->domain, 0, true);
	}
	spf_finish(chk, r);
	free(chk);
	return TG_OK;
}

/* spf_explain_default - req's default_exp for a fail at domain */
static void
spf_explain_default(struct spf_check *chk, const char *domain)
{
	struct spf_macro_vars	 vars = chk->vars;
	struct spf_text		*text;
	const char		*def = chk->req->default_exp;

	if (def == NULL)
		return;
	text = tg_malloc(sizeof(*text));
	vars.domain = domain;
	if (spf_macro_expand(def, strlen(def), SPF_MACRO_EXPLAIN, &vars,
	    text))
		spf_copy(chk->ans->explanation, sizeof(chk->ans->explanation),
		    text->s, text->len, true);
	free(text);
}

/* spf_has_fail - does the record have a "-" term, which may decide? */
static bool
spf_has_fail(const struct spf_record *rec)
{
	size_t	i;

	for (i = 0; i < rec->nterms; i++)
		if (rec->terms[i].qual == SPF_FAIL)
			return true;
	return false;
}

/* spf_explain_fail - see spf_int.h */
void
spf_explain_fail(struct tg_dns *dns, const struct spf_request *req,
    struct spf_answer *ans)
{
	struct spf_check	*chk;
	struct spf_record	 rec;
	char			 dom[SPF_NAME_BUF], next[SPF_NAME_BUF];
	unsigned int		 hops;
	bool			 done = false, ok;

	chk = tg_calloc(1, sizeof(*chk));
	chk->dns = dns;
	chk->req = req;
	chk->ans = tg_calloc(1, sizeof(*chk->ans));
	chk->ans->ttl = SPF_TTL_NONE;
	if (!spf_client(chk, req->ip) || !spf_identity(chk))
		goto out;
	spf_start(chk);
	memcpy(dom, chk->domain, sizeof(dom));
	/* redirect= counts against the 10 lookups: so many hops at most. */
	for (hops = 0; !done && hops <= SPF_MAX_LOOKUPS; hops++) {
		if (spf_fetch(chk, dom, &rec) != TG_OK)
			break;
		if (rec.redirect == NULL || spf_has_fail(&rec)) {
			spf_explain(chk, &rec, dom);
			done = true;
		} else {
			ok = spf_target(chk, rec.redirect, rec.redirect_len,
			    dom, next);
			if (ok)
				memcpy(dom, next, sizeof(dom));
			done = !ok;
		}
		spf_record_fini(&rec);
	}
	if (chk->ans->explanation[0] == '\0')
		spf_explain_default(chk, dom);
	memcpy(ans->explanation, chk->ans->explanation,
	    sizeof(ans->explanation));
	if (chk->ans->ttl < ans->ttl)
		ans->ttl = chk->ans->ttl;
out:
	free(chk->ans);
	free(chk);
}

/*
 * spf_client - the client address; an IPv4-mapped IPv6 address is the
 * IPv4 address in every respect (5, 5.6).  Also the %{i}, %{c} and %{v}
 * forms: i writes IPv6 as dotted nibbles (7.3), upper case as in the
 * RFC's examples.
 */
static bool
spf_client(struct spf_check *chk, const char *ip)
{
	static const char	hex[] = "0123456789ABCDEF";
	unsigned char		a6[16];
	size_t			i, o = 0;

	if (ip == NULL)
		return false;
	if (inet_pton(AF_INET, ip, chk->addr) == 1)
		chk->af = AF_INET;
	else if (inet_pton(AF_INET6, ip, a6) != 1)
		return false;
	else if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(void *)a6)) {
		chk->af = AF_INET;
		memcpy(chk->addr, a6 + 12, 4);
	} else {
		chk->af = AF_INET6;
		memcpy(chk->addr, a6, 16);
	}
	if (inet_ntop(chk->af, chk->addr, chk->ip_c, sizeof(chk->ip_c)) ==
	    NULL)
		TG_PANIC("spf: inet_ntop of a parsed address");
	if (chk->af == AF_INET) {
		memcpy(chk->ip_i, chk->ip_c, sizeof(chk->ip_c));
		return true;
	}
	for (i = 0; i < 16; i++) {
		chk->ip_i[o++] = hex[chk->addr[i] >> 4];
		chk->ip_i[o++] = '.';
		chk->ip_i[o++] = hex[chk->addr[i] & 0x0f];
		chk->ip_i[o++] = i < 15 ? '.' : '\0';
	}
	return true;
}

/*
 * spf_identity - the <sender> and <domain> of check_host() (2.4, 4.3):
 * MAIL FROM, or "postmaster@" the HELO name when it is empty; no local
 * part reads as "postmaster".  false (result none) when the domain
 * cannot be checked.
 */
static bool
spf_identity(struct spf_check *chk)
{
	const char	*sender = chk->req->sender, *dom, *at = NULL;
	size_t		 llen = 0;

	if (sender != NULL && sender[0] != '\0') {
		at = strrchr(sender, '@');
		dom = at != NULL ? at + 1 : sender;
		llen = at != NULL ? (size_t)(at - sender) : 0;
	} else {
		chk->ans->helo = true;
		dom = chk->req->helo != NULL ? chk->req->helo : "";
	}
	if (llen > SPF_LOCAL_MAX) {
		spf_reason(chk, "sender local part longer than %d bytes",
		    SPF_LOCAL_MAX);
		return false;
	}
	spf_copy(chk->local, sizeof(chk->local), llen > 0 ? sender :
	    "postmaster", llen > 0 ? llen : strlen("postmaster"), false);
	if (!spf_identity_domain(chk, dom))
		return false;
	if (snprintf(chk->sender, sizeof(chk->sender), "%s@%s", chk->local,
	    chk->domain) >= (int)sizeof(chk->sender))
		TG_PANIC("spf: sender buffer too small");
	return true;
}

/* spf_identity_domain - the identity's domain, checked as 4.3 says */
static bool
spf_identity_domain(struct spf_check *chk, const char *dom)
{
	size_t	dlen = strlen(dom);

	if (dlen > 0 && dom[dlen - 1] == '.')
		dlen--;
	/* For the log only: the answer's copy is made printable. */
	spf_copy(chk->ans->domain, sizeof(chk->ans->domain), dom, dlen, true);
	if (dlen <= SPF_DOMAIN_MAX) {
		memcpy(chk->domain, dom, dlen);
		chk->domain[dlen] = '\0';
	}
	if (dlen > SPF_DOMAIN_MAX || !spf_domain_valid(chk->domain)) {
		spf_reason(chk, "%s \"%.80s\" is not a domain name",
		    chk->ans->helo ? "HELO name" : "sender domain",
		    chk->ans->domain);
		return false;
	}
	return true;
}

/* spf_start - the macro values and the deadline of 4.6.4 */
static void
spf_start(struct spf_check *chk)
{
	const struct spf_request	*req = chk->req;
	struct spf_macro_vars		*v = &chk->vars;

	v->sender = chk->sender;
	v->local = chk->local;
	v->sender_domain = chk->domain;
	v->domain = chk->domain;
	v->ip = chk->ip_i;
	v->client = chk->ip_c;
	v->helo = req->helo != NULL ? req->helo : "";
	v->receiver = req->receiver;
	v->version = chk->af == AF_INET ? "in-addr" : "ip6";
	v->now = req->now != 0 ? req->now : time(NULL);
	v->ptr = spf_ptr_macro;
	v->ptr_arg = chk;
	if (clock_gettime(CLOCK_MONOTONIC, &chk->deadline) == -1)
		TG_PANIC("spf: no monotonic clock");
	chk->deadline.tv_sec += req->time_limit > 0 ? req->time_limit :
	    SPF_TIME_LIMIT;
}

/* spf_finish - the answer's fields that depend on the result */
static void
spf_finish(struct spf_check *chk, enum spf_result r)
{
	struct spf_answer	*ans = chk->ans;

	ans->result = r;
	ans->dns_lookups = chk->lookups;
	ans->void_lookups = chk->voids;
	if (r != SPF_FAIL)
		ans->explanation[0] = '\0';
	if (r == SPF_NONE || r == SPF_TEMPERROR || r == SPF_PERMERROR)
		ans->mechanism[0] = '\0';
	if (r == SPF_NONE)
		spf_reason(chk, "%s: no SPF record", ans->domain);
	else if (r != SPF_TEMPERROR && r != SPF_PERMERROR)
		ans->reason[0] = '\0';
}

/*
 * spf_reason - say why the check ends in none, temperror or permerror.
 * The first reason wins: it comes from the innermost failure.
 */
static void
spf_reason(struct spf_check *chk, const char *fmt, ...)
{
	va_list	ap;

	if (chk->ans->reason[0] != '\0')
		return;
	va_start(ap, fmt);
	/* Truncation is harmless: the text is for the log. */
	(void)vsnprintf(chk->ans->reason, sizeof(chk->ans->reason), fmt, ap);
	va_end(ap);
}

/*
 * spf_copy - n bytes of src into dst, cut to fit; with printable, bytes
 * outside printable ASCII become '?' (text bound for SMTP and logs).
 */
static void
spf_copy(char *dst, size_t dstsz, const char *src, size_t n, bool printable)
{
	size_t	i;

	if (n >= dstsz)
		n = dstsz - 1;
	for (i = 0; i < n; i++)
		dst[i] = !printable || (src[i] >= 0x20 && src[i] <= 0x7e) ?
		    src[i] : '?';
	dst[n] = '\0';
}

/*
 * spf_dns - one query, unless the check's time is up (4.6.4: past the
 * limit the result is temperror).  *ans, when asked for, must be freed
 * whatever the status.  Every answer, a negative one too, lowers the
 * answer's ttl: the result holds only as long as the data it came from.
 */
static enum tg_status
spf_dns(struct spf_check *chk, const char *name, int type,
    struct tg_dns_answer **ans, struct tg_err *err)
{
	struct tg_dns_answer	*got = NULL;
	struct timespec		 now;
	enum tg_status		 st;

	if (ans != NULL)
		*ans = NULL;
	if (clock_gettime(CLOCK_MONOTONIC, &now) == -1)
		TG_PANIC("spf: no monotonic clock");
	if (now.tv_sec > chk->deadline.tv_sec ||
	    (now.tv_sec == chk->deadline.tv_sec &&
	    now.tv_nsec >= chk->deadline.tv_nsec))
		return tg_err_set(err, TG_TEMP, "time limit reached before "
		    "%s", name);
	st = tg_dns_resolve(chk->dns, name, type, &got, err);
	if (got != NULL && got->ttl < chk->ans->ttl)
		chk->ans->ttl = got->ttl;
	if (ans != NULL)
		*ans = got;
	else
		(void)tg_dns_answer_free(got);
	return st;
}

/*
 * spf_host - check_host() for domain: fetch its record and run it.
 * include and redirect recurse here with depth + 1.
 */
static enum spf_result
spf_host(struct spf_check *chk, const char *domain, unsigned int depth,
    bool want_exp)
{
	struct spf_record	rec;
	enum spf_result		r = SPF_PERMERROR;

	if (depth > SPF_MAX_DEPTH) {
		spf_reason(chk, "%s: nested more than %d deep", domain,
		    SPF_MAX_DEPTH);
		return SPF_PERMERROR;
	}
	switch (spf_fetch(chk, domain, &rec)) {
	case TG_OK:
		r = spf_run(chk, &rec, domain, depth, want_exp);
		spf_record_fini(&rec);
		break;
	case TG_NOTFOUND:
		r = SPF_NONE;
		break;
	case TG_TEMP:
		r = SPF_TEMPERROR;
		break;
	case TG_PERM:
		r = SPF_PERMERROR;
		break;
	}
	return r;
}

/*
 * spf_fetch - the one SPF record of domain, parsed (4.4, 4.5).
 *   TG_OK       rec holds it
 *   TG_NOTFOUND no record: NXDOMAIN, no TXT, no "v=spf1" among them, or
 *               a name the resolver cannot ask for
 *   TG_TEMP     the lookup failed
 *   TG_PERM     several records, or a syntax error
 */
static enum tg_status
spf_fetch(struct spf_check *chk, const char *domain, struct spf_record *rec)
{
	struct tg_dns_answer	*ans;
	struct tg_err		 err;
	struct tg_buf		 text;
	enum tg_status		 st;
	size_t			 n;
	char			 why[128];

	memset(rec, 0, sizeof(*rec));
	st = spf_dns(chk, domain, TG_DNS_TXT, &ans, &err);
	if (st != TG_OK) {
		(void)tg_dns_answer_free(ans);
		if (st == TG_TEMP || st == TG_PERM)
			spf_reason(chk, "%s", err.text);
		return st == TG_TEMP ? TG_TEMP : TG_NOTFOUND;
	}
	tg_buf_init(&text);
	n = spf_select(ans, &text);
	(void)tg_dns_answer_free(ans);
	if (n > 1)
		spf_reason(chk, "%s: %zu SPF records", domain, n);
	else if (n == 1 && !spf_record_parse(rec, tg_buf_cstr(&text),
	    text.len, why, sizeof(why))) {
		spf_reason(chk, "%s: %s", domain, why);
		n = 2;
	}
	tg_buf_fini(&text);
	return n == 0 ? TG_NOTFOUND : n == 1 ? TG_OK : TG_PERM;
}

/*
 * spf_select - how many TXT records are SPF records (4.5); the text of
 * the first one goes to out.  Other TXT records, whatever they hold,
 * are none of our business.
 */
static size_t
spf_select(const struct tg_dns_answer *ans, struct tg_buf *out)
{
	struct tg_buf	txt;
	size_t		i, n = 0;

	for (i = 0; i < ans->count; i++) {
		tg_buf_init(&txt);
		if (spf_txt_bytes(ans, i, &txt) &&
		    spf_record_is_spf1(tg_buf_cstr(&txt), txt.len) &&
		    n++ == 0)
			tg_buf_append(out, tg_buf_cstr(&txt), txt.len);
		tg_buf_fini(&txt);
	}
	return n;
}

/*
 * spf_txt_bytes - the strings of TXT record i joined (3.3), NUL bytes
 * and all.  tg_dns_txt_join refuses a NUL, but "v=spf1 a:x.example\0"
 * is an SPF record with a bad byte, a permerror (7.1), not "no record".
 */
static bool
spf_txt_bytes(const struct tg_dns_answer *ans, size_t i, struct tg_buf *out)
{
	const unsigned char	*rd = ans->rdata[i];
	size_t			 len = ans->rdlen[i], off, n;

	for (off = 0; off < len; off += 1 + n) {
		n = rd[off];
		if (n > len - off - 1)
			return false;
		tg_buf_append(out, rd + off + 1, n);
	}
	return true;
}

/*
 * spf_run - evaluate rec's mechanisms left to right (4.6.2); the first
 * match decides.  Then redirect=, then the default, neutral (4.7).
 */
static enum spf_result
spf_run(struct spf_check *chk, const struct spf_record *rec,
    const char *domain, unsigned int depth, bool want_exp)
{
	const struct spf_term	*t;
	size_t			 i;

	for (i = 0; i < rec->nterms; i++) {
		t = &rec->terms[i];
		switch (spf_term(chk, t, domain, depth)) {
		case SPF_EV_NOMATCH:
			continue;
		case SPF_EV_TEMP:
			return SPF_TEMPERROR;
		case SPF_EV_PERM:
			return SPF_PERMERROR;
		case SPF_EV_MATCH:
			break;
		}
		spf_copy(chk->ans->mechanism, sizeof(chk->ans->mechanism),
		    t->text, t->text_len, true);
		if (t->qual == SPF_FAIL && want_exp)
			spf_explain(chk, rec, domain);
		return t->qual;
	}
	if (rec->redirect != NULL)
		return spf_redirect(chk, rec, domain, depth, want_exp);
	spf_copy(chk->ans->mechanism, sizeof(chk->ans->mechanism), "default",
	    strlen("default"), false);
	return SPF_NEUTRAL;
}

/* spf_term - does one mechanism match? (5) */
static enum spf_ev
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
static bool
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
 * spf_target - the <target-name> of a term: spec expanded with %{d} =
 * domain, or domain itself without a spec (4.8).  false when the
 * expansion makes no name that can be queried.
 */
static bool
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
	char		name[SPF_NAME_BUF];
	bool		match;

	if (!spf_count(chk, t->text, t->text_len))
		return SPF_EV_PERM;
	if (!spf_target(chk, t->spec, t->spec_len, domain, name))
		return SPF_EV_NOMATCH;
	switch (spf_addrs(chk, name, t->cidr4, t->cidr6, &match, &err)) {
	case TG_OK:
		return match ? SPF_EV_MATCH : SPF_EV_NOMATCH;
	case TG_NOTFOUND:
		return spf_void(chk, name);
	case TG_TEMP:
		spf_reason(chk, "%s", err.text);
		return SPF_EV_TEMP;
	case TG_PERM:
		break;
	}
	return SPF_EV_NOMATCH;
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
	else if (st == TG_NOTFOUND)
		ev = spf_void(chk, name);
	else if (st == TG_TEMP) {
		spf_reason(chk, "%s", err.text);
		ev = SPF_EV_TEMP;
	}
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
	switch (spf_dns(chk, name, TG_DNS_A, NULL, &err)) {
	case TG_OK:
		return SPF_EV_MATCH;
	case TG_NOTFOUND:
		return spf_void(chk, name);
	case TG_TEMP:
		spf_reason(chk, "%s", err.text);
		return SPF_EV_TEMP;
	case TG_PERM:
		break;
	}
	return SPF_EV_NOMATCH;
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
 * spf_redirect - "redirect=" (6.1): the target's result is ours, with
 * its own exp= (6.2); none, or a malformed target, is a permerror.
 */
static enum spf_result
spf_redirect(struct spf_check *chk, const struct spf_record *rec,
    const char *domain, unsigned int depth, bool want_exp)
{
	enum spf_result	r;
	char		name[SPF_NAME_BUF];

	if (!spf_count(chk, rec->redirect, rec->redirect_len))
		return SPF_PERMERROR;
	if (!spf_target(chk, rec->redirect, rec->redirect_len, domain,
	    name)) {
		spf_reason(chk, "redirect=%.*s names no valid domain",
		    SPF_SHOWN(rec->redirect_len), rec->redirect);
		return SPF_PERMERROR;
	}
	r = spf_host(chk, name, depth + 1, want_exp);
	if (r != SPF_NONE)
		return r;
	spf_reason(chk, "redirect=%s: no SPF record", name);
	return SPF_PERMERROR;
}

/*
 * spf_explain - the explanation of a fail decided by rec (6.2): its
 * exp= text, or else the caller's default; any failure on the way just
 * falls back.
 */
static void
spf_explain(struct spf_check *chk, const struct spf_record *rec,
    const char *domain)
{
	struct spf_macro_vars	 vars = chk->vars;
	struct spf_text		*text;
	const char		*def = chk->req->default_exp;

	text = tg_malloc(sizeof(*text));
	vars.domain = domain;
	if ((rec->exp != NULL && spf_exp_text(chk, rec, &vars, text)) ||
	    (def != NULL && spf_macro_expand(def, strlen(def),
	    SPF_MACRO_EXPLAIN, &vars, text)))
		spf_copy(chk->ans->explanation,
		    sizeof(chk->ans->explanation), text->s, text->len, true);
	free(text);
}

/*
 * spf_exp_text - rec's exp= expanded: exactly one TXT record at the
 * target, a valid explain-string (6.2).  Not counted in any limit.
 */
static bool
spf_exp_text(struct spf_check *chk, const struct spf_record *rec,
    const struct spf_macro_vars *vars, struct spf_text *out)
{
	struct tg_dns_answer	*ans;
	char			 name[SPF_NAME_BUF], *txt = NULL;
	bool			 ok;

	if (!spf_target(chk, rec->exp, rec->exp_len, vars->domain, name))
		return false;
	if (spf_dns(chk, name, TG_DNS_TXT, &ans, NULL) == TG_OK &&
	    ans->count == 1)
		txt = tg_dns_txt_join(ans, 0);
	(void)tg_dns_answer_free(ans);
	if (txt == NULL)
		return false;
	ok = spf_macro_expand(txt, strlen(txt), SPF_MACRO_EXPLAIN, vars, out);
	free(txt);
	return ok;
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
static const char *
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
