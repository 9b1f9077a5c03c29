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
 * nothing (6.2).
 *
 * What this file does not do: evaluate mechanisms (spf_mech.c, which
 * shares the check's state through spf_check.h), parse records
 * (spf_record.c), expand macros (spf_macro.c), cache (the module does),
 * log decisions (the module does; the resolver logs each query at
 * debug).
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

#include "spf_check.h"
#include "spf_int.h"

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
static enum tg_status spf_fetch(struct spf_check *, const char *,
		    struct spf_record *);
static size_t	spf_select(const struct tg_dns_answer *, struct tg_buf *);
static bool	spf_txt_bytes(const struct tg_dns_answer *, size_t,
		    struct tg_buf *);
static enum spf_result spf_run(struct spf_check *, const struct spf_record *,
		    const char *, unsigned int, bool);
static enum spf_result spf_redirect(struct spf_check *,
		    const struct spf_record *, const char *, unsigned int,
		    bool);
static void	spf_explain(struct spf_check *, const struct spf_record *,
		    const char *);
static bool	spf_exp_text(struct spf_check *, const struct spf_record *,
		    const struct spf_macro_vars *, struct spf_text *);

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
void
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
void
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
enum tg_status
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
enum spf_result
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

