/*
 * spf - the SPF module: checks the HELO and MAIL FROM identities of
 * inbound mail (RFC 7208) at MAIL FROM and applies [spf] policy.
 *
 * For each message from an outside client (not outbound mail, not a
 * trusted relay) the module checks the HELO name, when the client gave
 * one, and the MAIL FROM address.  A null reverse-path makes the MAIL
 * FROM identity postmaster@<HELO> (RFC 7208 2.4), which is the HELO
 * check itself: it is made once and recorded for both identities, with
 * one Received-SPF (identity=helo) and one resinfo (smtp.helo).  Each
 * other identity checked gets its own Received-SPF header and resinfo
 * (spf_report.c).  Policy follows the MAIL FROM result (on_fail,
 * on_softfail, on_permerror, on_temperror); with helo_policy a HELO
 * fail is treated like a MAIL FROM fail.  The results stay in the
 * message state for DMARC (spf_msg_mailfrom, spf_msg_helo).
 *
 * Answers are cached (spf_cache.c) by engine, client, HELO name and the
 * whole sender (%{l} and %{s} make the local part matter), for the
 * smallest DNS TTL the check saw, at most cache_max_ttl; temperror is
 * never cached, so a DNS outage is not remembered past its end.  Every
 * DNS wait is bounded by the resolver's timeout and the whole check by
 * time_limit.
 *
 * What it does not do: evaluate SPF (spf_eval.c, spf_libspf2.c), or
 * judge mail that is ours (outbound) or comes through a relay we trust,
 * whose client address says nothing about the sender.
 *
 * Threading: configuration, the trusted-relay list and the cache are
 * made in init; afterwards only the cache changes, under its own lock.
 * Per-message data lives in the message state and message memory.
 */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spf_int.h"
#include "tollgate/buf.h"
#include "tollgate/conf.h"
#include "tollgate/log.h"
#include "tollgate/spf.h"

/* The [spf] section, as loaded. */
static struct {
	int	 engine;
	char	*trusted_relays;
	char	*explanation;
	int	 on_fail;
	int	 on_softfail;
	int	 on_permerror;
	int	 on_temperror;
	bool	 helo_policy;
	long	 time_limit;
	long	 cache_size;
	long	 cache_max_ttl;
} spf_conf;

static const char *const spf_action_names[] = { "accept", "tempfail",
    "reject", NULL };

/*
 * Defaults, as an operator of a receiving MX expects them (see
 * conf.d/spf.conf): every result only marks the message, and DMARC,
 * later in the pipeline, applies the policy the domain's owner chose.
 * Refusing an SPF fail at MAIL FROM would also refuse forwarded mail
 * whose DKIM signature still verifies and which DMARC would pass
 * (RFC 7489 10.1); on_fail = reject is there for sites without DMARC.
 * "~all" is by definition a domain not ready for rejection (RFC 7208
 * 8.5).  A broken record (permerror) is the publisher's bug, not proof
 * of forgery.  temperror is a dependency failure, so like every
 * on_error it is accept or tempfail, never a permanent refusal: and
 * deferring would make every message from a domain with flaky DNS wait
 * on that domain's servers.
 */
static const struct tg_param spf_params[] = {
	TG_PARAM_ENUM("engine", "native", &spf_conf.engine, spf_engine_names,
	    "SPF evaluator: native (RFC 7208, passes the openspf suites) or "
	    "libspf2"),
	TG_PARAM_STRING("trusted_relays", "", &spf_conf.trusted_relays,
	    "clients not checked (backup MX, forwarders we trust): networks"),
	TG_PARAM_STRING("explanation", "%{c} is not allowed to send mail "
	    "for %{o}", &spf_conf.explanation,
	    "explanation on fail when the record has no exp= (RFC 7208 6.2)"),
	TG_PARAM_ENUM("on_fail", "accept", &spf_conf.on_fail,
	    spf_action_names, "MAIL FROM fail: accept, tempfail or reject"),
	TG_PARAM_ENUM("on_softfail", "accept", &spf_conf.on_softfail,
	    spf_action_names, "MAIL FROM softfail: accept, tempfail or "
	    "reject"),
	TG_PARAM_ENUM("on_permerror", "accept", &spf_conf.on_permerror,
	    spf_action_names, "broken SPF record: accept, tempfail or "
	    "reject"),
	TG_PARAM_ENUM("on_temperror", "accept", &spf_conf.on_temperror,
	    tg_on_error_names, "DNS failure during the check: accept or "
	    "tempfail"),
	TG_PARAM_BOOL("helo_policy", "no", &spf_conf.helo_policy,
	    "apply on_fail to a HELO fail too"),
	TG_PARAM_TIME("time_limit", "20s", &spf_conf.time_limit, 1, 120,
	    "longest time for one check (RFC 7208 4.6.4)"),
	TG_PARAM_LONG("cache_size", "10000", &spf_conf.cache_size, 0,
	    10000000, "results kept for repeated checks; 0: no cache"),
	TG_PARAM_TIME("cache_max_ttl", "1h", &spf_conf.cache_max_ttl, 0,
	    86400, "longest time a result is kept, whatever the DNS TTLs"),
	TG_PARAM_END
};

static struct tg_netlist	*spf_trusted;
static struct spf_cache		*spf_cache;
static struct tg_dns		*spf_dns;

static enum tg_status	spf_init(const struct tg_env *, struct tg_err *);
static void		spf_fini(void);
static enum tg_verdict	spf_helo(struct tg_ctx *, const char *);
static enum tg_verdict	spf_envfrom(struct tg_ctx *, const char *);
static const char	*spf_sender(struct tg_ctx *, const char *);
static enum tg_status	spf_ident_check(struct tg_ctx *,
			    struct spf_ident *, const char *, const char *,
			    const char *, time_t);
static time_t		 spf_now(void);
static char		*spf_cache_key(const char *, const char *,
			    const char *);
static long		 spf_cache_ttl(const struct spf_answer *);
static const char	*spf_domain(struct tg_ctx *, const char *);
static enum tg_verdict	 spf_skip(struct tg_ctx *, const char *);
static void		 spf_record(struct tg_ctx *, struct spf_msg *);
static enum tg_verdict	 spf_policy(struct tg_ctx *, struct spf_msg *);
static enum spf_action	 spf_action_for(enum spf_result);
static void		 spf_identity_out(const struct spf_msg *,
			    const struct spf_ident *, struct spf_identity *);

const struct tg_module tg_module_spf = {
	.name = "spf",
	.abi = TG_MODULE_ABI,
	.params = spf_params,
	.msg_state_size = sizeof(struct spf_msg),
	.init = spf_init,
	.fini = spf_fini,
	.helo = spf_helo,
	.envfrom = spf_envfrom,
};

/* spf_init - check the settings; the trusted relays and the cache */
static enum tg_status
spf_init(const struct tg_env *env, struct tg_err *err)
{
	struct tg_err	nerr;
	const char	*exp = spf_conf.explanation;

	spf_dns = env->dns;
	if (*exp != '\0' && !spf_macro_valid(exp, strlen(exp),
	    SPF_MACRO_EXPLAIN, NULL))
		return tg_err_set(err, TG_PERM, "[spf] explanation: not a "
		    "valid macro-string (RFC 7208 7.1)");
	if ((spf_trusted = tg_netlist_parse(spf_conf.trusted_relays,
	    &nerr)) == NULL)
		return tg_err_set(err, TG_PERM, "[spf] trusted_relays: %s",
		    nerr.text);
	spf_cache = spf_cache_new((size_t)spf_conf.cache_size);
	return TG_OK;
}

/* spf_fini - free what init made */
static void
spf_fini(void)
{
	spf_trusted = tg_netlist_free(spf_trusted);
	spf_cache = spf_cache_free(spf_cache);
	spf_dns = NULL;
}

/* spf_conf_request - see spf.h */
void
spf_conf_request(struct spf_request *req, enum spf_engine *engine)
{
	req->default_exp = *spf_conf.explanation != '\0' ?
	    spf_conf.explanation : NULL;
	req->time_limit = spf_conf.time_limit;
	*engine = (enum spf_engine)spf_conf.engine;
}

/*
 * spf_helo - nothing to do yet: the check waits for MAIL FROM, when the
 * message and the sender exist.  The hook is here so that the milter
 * keeps the HELO event and tg_ctx_helo is known.
 */
static enum tg_verdict
spf_helo(struct tg_ctx *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return TG_CONTINUE;
}

/* spf_envfrom - check both identities, report, apply policy */
static enum tg_verdict
spf_envfrom(struct tg_ctx *ctx, const char *from)
{
	struct spf_msg	*m = tg_ctx_state(ctx);
	const char	*ip = tg_ctx_peer(ctx)->addr;
	const char	*helo = tg_ctx_helo(ctx);
	enum tg_status	 st = TG_OK;
	time_t		 deadline;

	if (tg_ctx_outbound(ctx) || ip == NULL)
		return spf_skip(ctx, "outbound");
	if (tg_netlist_match(spf_trusted, ip)) {
		m->trusted_relay = true;
		return spf_skip(ctx, "trusted-relay");
	}
	m->sender = spf_sender(ctx, from);
	m->null_sender = *m->sender == '\0';
	/* One time_limit for both checks: the MTA's own timeout is fixed. */
	deadline = spf_now() + spf_conf.time_limit;
	if (helo != NULL && *helo != '\0')
		st = spf_ident_check(ctx, &m->helo, ip, helo, "", deadline);
	if (st == TG_OK && m->null_sender)
		m->mailfrom = m->helo;
	else if (st == TG_OK)
		st = spf_ident_check(ctx, &m->mailfrom, ip, helo, m->sender,
		    deadline);
	if (st != TG_OK) {
		/* Not an address: nothing can be said about the client. */
		tg_log_notice(ctx, "client address \"%s\" is not an IP "
		    "address: not checked", ip);
		memset(&m->helo, 0, sizeof(m->helo));
		memset(&m->mailfrom, 0, sizeof(m->mailfrom));
		return spf_skip(ctx, "bad-client-ip");
	}
	if (!m->helo.checked && !m->mailfrom.checked)
		return spf_skip(ctx, "no-identity");
	spf_record(ctx, m);
	return spf_policy(ctx, m);
}

/* spf_now - monotonic seconds, for the check's deadline */
static time_t
spf_now(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		TG_PANIC("spf: no monotonic clock");
	return ts.tv_sec;
}

/*
 * spf_sender - the reverse-path without brackets, a source route
 * ("<@a,@b:user@example.com>", RFC 5321 4.1.2) or ESMTP parameters;
 * "" for the null reverse-path.  Message memory.
 */
static const char *
spf_sender(struct tg_ctx *ctx, const char *from)
{
	const char	*p = from != NULL ? from : "", *colon;
	size_t		 len;
	char		*s;

	p += strspn(p, " \t");
	if (*p == '<') {
		p++;
		len = strcspn(p, ">");
	} else
		len = strcspn(p, " \t");
	s = tg_ctx_alloc(ctx, len + 1);
	memcpy(s, p, len);
	if (s[0] == '@' && (colon = strchr(s, ':')) != NULL)
		memmove(s, colon + 1, strlen(colon + 1) + 1);
	return s;
}

/*
 * spf_ident_check - one identity: from the cache, or from the engine
 * (then cached unless temperror).  TG_PERM when the client address
 * cannot be checked at all; id is then untouched.
 */
static enum tg_status
spf_ident_check(struct tg_ctx *ctx, struct spf_ident *id, const char *ip,
    const char *helo, const char *sender, time_t deadline)
{
	struct spf_request	 req;
	char			*key;
	enum tg_status		 st = TG_OK;

	key = spf_cache_key(ip, helo, sender);
	if (spf_cache_get(spf_cache, key, &id->ans)) {
		id->cached = true;
		tg_log_debug(ctx, "cache hit: result=%s ip=%s helo=%s "
		    "sender=%s", spf_result_name(id->ans.result), ip,
		    helo != NULL ? helo : "", sender);
	} else {
		memset(&req, 0, sizeof(req));
		req.ip = ip;
		req.helo = helo;
		req.sender = sender;
		req.receiver = tg_ctx_authserv_id(ctx);
		req.default_exp = *spf_conf.explanation != '\0' ?
		    spf_conf.explanation : NULL;
		/* At least a second: the check then ends as temperror. */
		req.time_limit = deadline > spf_now() ? deadline - spf_now() : 1;
		st = spf_engine_check((enum spf_engine)spf_conf.engine,
		    spf_dns, &req, &id->ans);
		if (st == TG_OK && id->ans.result != SPF_TEMPERROR)
			spf_cache_put(spf_cache, key, &id->ans,
			    spf_cache_ttl(&id->ans));
	}
	free(key);
	if (st != TG_OK)
		return st;
	id->checked = true;
	id->domain = spf_domain(ctx, *sender != '\0' ? sender : helo);
	return TG_OK;
}

/*
 * spf_cache_key - everything the answer depends on besides the DNS
 * data and the configuration: engine, client, HELO name, sender.  Each
 * part carries its length, so no byte in a part can fake a separator.
 */
static char *
spf_cache_key(const char *ip, const char *helo, const char *sender)
{
	if (helo == NULL)
		helo = "";
	return tg_printf_dup("%d %zu:%s %zu:%s %zu:%s", spf_conf.engine,
	    strlen(ip), ip, strlen(helo), helo, strlen(sender), sender);
}

/* spf_cache_ttl - the answer's TTL, capped by cache_max_ttl */
static long
spf_cache_ttl(const struct spf_answer *ans)
{
	if (ans->ttl == SPF_TTL_NONE || ans->ttl > (uint32_t)LONG_MAX ||
	    (long)ans->ttl > spf_conf.cache_max_ttl)
		return spf_conf.cache_max_ttl;
	return (long)ans->ttl;
}

/*
 * spf_domain - the identity's domain as DMARC and the A-R header want
 * it: what follows the last '@' (or the HELO name), without a final
 * dot, lower case, printable, at most SPF_DOMAIN_MAX bytes.  Taken from
 * the identity, not the answer: a check that ends early (an overlong
 * local part) still names its domain.  Message memory.
 */
static const char *
spf_domain(struct tg_ctx *ctx, const char *identity)
{
	const char	*at = strrchr(identity, '@'), *s;
	size_t		 len, i;
	char		*d;

	s = at != NULL ? at + 1 : identity;
	len = strlen(s);
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len > SPF_DOMAIN_MAX)
		len = SPF_DOMAIN_MAX;
	d = tg_ctx_alloc(ctx, len + 1);
	for (i = 0; i < len; i++) {
		d[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') :
		    s[i];
		if ((unsigned char)d[i] < 0x20 || (unsigned char)d[i] >= 0x7f)
			d[i] = '?';
	}
	return d;
}

/* spf_skip - a message the module does not judge */
static enum tg_verdict
spf_skip(struct tg_ctx *ctx, const char *why)
{
	tg_ctx_result(ctx, "skip:%s", why);
	tg_log_debug(ctx, "not checked: %s", why);
	return TG_CONTINUE;
}

/*
 * spf_record - headers, resinfos and the decision field.  With a null
 * sender the one check is the HELO check (see the top of the file).
 */
static void
spf_record(struct tg_ctx *ctx, struct spf_msg *m)
{
	if (m->helo.checked)
		spf_report_received(ctx, m, &m->helo, true);
	if (m->mailfrom.checked && !m->null_sender)
		spf_report_received(ctx, m, &m->mailfrom, false);
	if (m->mailfrom.checked && !m->null_sender)
		spf_report_authres(ctx, &m->mailfrom, false);
	if (m->helo.checked)
		spf_report_authres(ctx, &m->helo, true);
	if (m->null_sender)
		tg_ctx_result(ctx, "%s identity=helo",
		    spf_result_name(m->helo.ans.result));
	else if (m->helo.checked)
		tg_ctx_result(ctx, "%s helo=%s",
		    spf_result_name(m->mailfrom.ans.result),
		    spf_result_name(m->helo.ans.result));
	else
		tg_ctx_result(ctx, "%s", spf_result_name(
		    m->mailfrom.ans.result));
}

/* spf_action_for - the configured action for a MAIL FROM result */
static enum spf_action
spf_action_for(enum spf_result r)
{
	switch (r) {
	case SPF_FAIL:
		return (enum spf_action)spf_conf.on_fail;
	case SPF_SOFTFAIL:
		return (enum spf_action)spf_conf.on_softfail;
	case SPF_PERMERROR:
		return (enum spf_action)spf_conf.on_permerror;
	case SPF_TEMPERROR:
		return spf_conf.on_temperror == TG_ON_ERROR_TEMPFAIL ?
		    SPF_ACTION_TEMPFAIL : SPF_ACTION_ACCEPT;
	case SPF_NONE:
	case SPF_NEUTRAL:
	case SPF_PASS:
		break;
	}
	return SPF_ACTION_ACCEPT;
}

/*
 * spf_policy - the MAIL FROM result decides (RFC 7208 8); with
 * helo_policy a HELO fail counts as a fail too (2.3).  Logs the one
 * decision line of the module.
 */
static enum tg_verdict
spf_policy(struct tg_ctx *ctx, struct spf_msg *m)
{
	const struct spf_ident	*by = &m->mailfrom;
	enum spf_action		 act = SPF_ACTION_ACCEPT;

	if (m->mailfrom.checked)
		act = spf_action_for(m->mailfrom.ans.result);
	if (act == SPF_ACTION_ACCEPT && spf_conf.helo_policy &&
	    m->helo.checked && m->helo.ans.result == SPF_FAIL) {
		act = (enum spf_action)spf_conf.on_fail;
		by = &m->helo;
	}
	if (m->null_sender || !by->checked)
		by = &m->helo;
	tg_log_info(ctx, "result=%s identity=%s domain=%s ip=%s "
	    "mechanism=%s helo=%s lookups=%u cached=%s action=%s%s%s%s",
	    spf_result_name(by->ans.result), by == &m->helo ? "helo" :
	    "mailfrom", by->domain, tg_ctx_peer(ctx)->addr,
	    by->ans.mechanism[0] != '\0' ? by->ans.mechanism : "-",
	    m->helo.checked ? spf_result_name(m->helo.ans.result) : "-",
	    by->ans.dns_lookups, by->cached ? "yes" : "no",
	    spf_action_names[act], by->ans.reason[0] != '\0' ?
	    " reason=\"" : "", by->ans.reason, by->ans.reason[0] != '\0' ?
	    "\"" : "");
	/* A DNS failure hits many messages: warn, but sparingly. */
	if (by->ans.result == SPF_TEMPERROR)
		tg_log_warn_limited(ctx, "spf temperror", 60, "dns failure: "
		    "%s: on_temperror=%s", by->ans.reason,
		    spf_action_names[spf_conf.on_temperror]);
	if (act == SPF_ACTION_ACCEPT)
		return TG_CONTINUE;
	spf_report_reply(ctx, by, act);
	return act == SPF_ACTION_REJECT ? TG_REJECT : TG_TEMPFAIL;
}

/* spf_identity_out - the public view of one identity of m */
static void
spf_identity_out(const struct spf_msg *m, const struct spf_ident *id,
    struct spf_identity *out)
{
	memset(out, 0, sizeof(*out));
	if (m == NULL)
		return;
	out->trusted_relay = m->trusted_relay;
	if (!id->checked)
		return;
	out->checked = true;
	out->result = id->ans.result;
	out->domain = id->domain;
}

/* spf_msg_mailfrom - see spf.h */
void
spf_msg_mailfrom(struct tg_ctx *ctx, struct spf_identity *out)
{
	struct spf_msg	*m = tg_ctx_state_of(ctx, &tg_module_spf);

	spf_identity_out(m, m != NULL ? &m->mailfrom : NULL, out);
}

/* spf_msg_helo - see spf.h */
void
spf_msg_helo(struct tg_ctx *ctx, struct spf_identity *out)
{
	struct spf_msg	*m = tg_ctx_state_of(ctx, &tg_module_spf);

	spf_identity_out(m, m != NULL ? &m->helo : NULL, out);
}
