/*
 * dmarc - the DMARC module: RFC 9989 policy evaluation of inbound mail,
 * with RFC 7489 records (pct=) still honoured.
 *
 * The header hook reads the author domains of every From: field
 * (dmarc_from.c); everything else happens at end of message, after
 * DKIM's eom.  Each distinct author domain is evaluated, so several
 * From: fields or authors of different domains cannot shed a policy:
 * the strictest outcome decides (RFC 7489 6.6.1, dmarc_rank) and its
 * domain is the A-R's header.from.  A From: the strict reader refuses is
 * read leniently (every local@domain in it); only a message with no
 * author domain at all is permerror and gets on_bad_from, and one with
 * more than DMARC_AUTHORS_MAX is refused.  The policy record is fetched
 * through tollgate's resolver (dmarc_policy.c: PSL or DNS tree walk); a
 * temporary DNS failure is temperror and gets on_error, never pass or
 * fail, and so is a message with no aligned pass whose SPF or DKIM
 * identifier that would align had a temporary error.  Alignment: with the
 * PSL, libopendmarc decides it from the record, the SPF result of the
 * MAIL FROM identity (spf_msg_mailfrom) and every DKIM result
 * (dkim_results); with the tree walk we compare organizational domains
 * found by walking (RFC 9989 4.10.2) ourselves, since libopendmarc only
 * knows the PSL.  A failing message gets the policy that applies (p= for
 * the From domain's own record, else sp=, or np= when the From domain
 * does not exist), lowered one step when pct= samples it out or t=y
 * says the owner is testing, then [dmarc] enforcement: reject,
 * quarantine (the MTA's hold queue, or a header) or nothing, with
 * no_enforce_domains and trusted_forwarders (and [spf] trusted_relays,
 * which SPF did not check) as local overrides.  Mail from our own users
 * (tg_ctx_outbound) is not evaluated.
 *
 * Each evaluated message gets one Authentication-Results resinfo, its
 * decision-line field, one info line, and, when report_dir is set, one
 * record per author domain with a policy in the aggregate-report store.
 *
 * Threading: the configuration, the PSL and the report store handle are
 * set up in init and only read afterwards (the store is thread-safe);
 * per-message data lives in the message's state and memory.  Sampling
 * uses arc4random, which is thread-safe.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmarc_int.h"
#include "tollgate/authres.h"
#include "tollgate/buf.h"
#include "tollgate/conf.h"
#include "tollgate/dkim.h"
#include "tollgate/dmarc_report.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"
#include "tollgate/spf.h"

#define DMARC_QUARANTINE_HDR	"X-DMARC-Quarantine"

enum dmarc_reject_action { DMARC_RA_REJECT = 0, DMARC_RA_QUARANTINE,
    DMARC_RA_NONE };
enum dmarc_quar_action { DMARC_QA_QUARANTINE = 0, DMARC_QA_HEADER,
    DMARC_QA_NONE };
enum dmarc_bad_from { DMARC_BF_ACCEPT = 0, DMARC_BF_REJECT };

static const char *const dmarc_org_names[] = { "psl", "tree_walk", NULL };
static const char *const dmarc_ra_names[] = { "reject", "quarantine",
    "none", NULL };
static const char *const dmarc_qa_names[] = { "quarantine", "header",
    "none", NULL };
static const char *const dmarc_bf_names[] = { "accept", "reject", NULL };

/* The [dmarc] section, as loaded. */
static struct {
	int	 org_domain;
	char	*psl_file;
	int	 reject_action;
	int	 quarantine_action;
	int	 on_bad_from;
	int	 on_error;
	char	*no_enforce_domains;
	char	*trusted_forwarders;
	char	*report_dir;
	char	*report_org_name;
	char	*report_email;
	char	*report_sendmail;
	long	 report_keep;
} dmarc_conf;

static const struct tg_param dmarc_params[] = {
	TG_PARAM_ENUM("org_domain", "psl", &dmarc_conf.org_domain,
	    dmarc_org_names, "organizational domain: psl (RFC 7489) or "
	    "tree_walk (RFC 9989 DNS tree walk)"),
	TG_PARAM_STRING("psl_file",
	    "/usr/share/publicsuffix/public_suffix_list.dat",
	    &dmarc_conf.psl_file, "the Public Suffix List, for org_domain = "
	    "psl"),
	TG_PARAM_ENUM("reject_action", "reject", &dmarc_conf.reject_action,
	    dmarc_ra_names, "failing mail under p=reject: reject, "
	    "quarantine or none"),
	TG_PARAM_ENUM("quarantine_action", "quarantine",
	    &dmarc_conf.quarantine_action, dmarc_qa_names,
	    "failing mail under p=quarantine: quarantine (MTA hold queue), "
	    "header (X-DMARC-Quarantine) or none"),
	TG_PARAM_ENUM("on_bad_from", "accept", &dmarc_conf.on_bad_from,
	    dmarc_bf_names, "no author domain in From: (permerror): "
	    "accept or reject"),
	TG_PARAM_ENUM("on_error", "accept", &dmarc_conf.on_error,
	    tg_on_error_names, "policy lookup failed (temperror): accept or "
	    "tempfail"),
	TG_PARAM_STRING("no_enforce_domains", "",
	    &dmarc_conf.no_enforce_domains,
	    "From domains (and their subdomains) whose policy is not enforced"),
	TG_PARAM_STRING("trusted_forwarders", "",
	    &dmarc_conf.trusted_forwarders,
	    "client networks (forwarders, lists) whose mail is not enforced"),
	TG_PARAM_STRING("report_dir", "", &dmarc_conf.report_dir,
	    "aggregate-report store directory; empty: no reports"),
	TG_PARAM_STRING("report_org_name", "", &dmarc_conf.report_org_name,
	    "org_name of our reports; empty: the authserv-id"),
	TG_PARAM_STRING("report_email", "", &dmarc_conf.report_email,
	    "From: of our reports; empty: postmaster@ the authserv-id"),
	TG_PARAM_STRING("report_sendmail", "/usr/sbin/sendmail",
	    &dmarc_conf.report_sendmail, "sendmail-compatible program that "
	    "sends the reports"),
	TG_PARAM_TIME("report_keep", "7d", &dmarc_conf.report_keep, 3600,
	    366 * 86400, "longest time records are kept"),
	TG_PARAM_END
};

/* Per-message state. */
struct dmarc_msg {
	size_t			 nfrom;		/* From: fields seen */
	struct dmarc_authors	 authors;	/* their author domains */
	const char		*from_why;	/* why one had none; static */
	struct dmarc_result	 res;
	char			 domain[DMARC_DOMAIN_MAX + 1]; /* decided */
	char			 policy_domain[DMARC_DOMAIN_MAX + 1];
};

/*
 * One author domain's evaluation, from discovery to its outcome; only
 * the one that decides (dmarc_strictest) acts on the message.
 */
struct dmarc_eval {
	struct dmarc_lookup	*lk;		/* the message's, shared */
	const char		*domain;	/* the author domain */
	struct dmarc_record	 rec;
	bool			 at_from;
	enum dmarc_res		 res;
	enum dmarc_policy	 policy;	/* that applies, on pass/fail */
	enum dmarc_policy	 dis;		/* asked for, before actions */
	bool			 dkim_aligned, spf_aligned;
	const char		*which;		/* "p", "sp" or "np" */
	const char		*reason;	/* RFC 9990 override, or NULL */
	const char		*why;
};

static struct tg_dns			*dmarc_dns;
static struct tg_netlist		*dmarc_forwarders;
static char				**dmarc_noenforce;
static struct dmarc_report_store	*dmarc_store;
static struct dmarc_report_conf		 dmarc_report_conf;
static char				 dmarc_report_from[320];

static enum tg_status	dmarc_init(const struct tg_env *, struct tg_err *);
static void		dmarc_fini(void);
static enum tg_verdict	dmarc_header(struct tg_ctx *, const char *,
			    const char *);
static enum tg_verdict	dmarc_eom(struct tg_ctx *);

const struct tg_module tg_module_dmarc = {
	.name = "dmarc",
	.abi = TG_MODULE_ABI,
	.params = dmarc_params,
	.msg_state_size = sizeof(struct dmarc_msg),
	.init = dmarc_init,
	.fini = dmarc_fini,
	.header = dmarc_header,
	.eom = dmarc_eom,
};

static const char *const dmarc_res_names[] = {
	"none", "pass", "fail", "temperror", "permerror"
};
static const char *const dmarc_policy_names[] = {
	"none", "quarantine", "reject"
};

/* dmarc_res_name - the RFC 8601 / RFC 9989 result name */
const char *
dmarc_res_name(enum dmarc_res r)
{
	if ((size_t)r >= TG_NITEMS(dmarc_res_names))
		return "permerror";
	return dmarc_res_names[r];
}

/* dmarc_policy_name - "none", "quarantine" or "reject" */
const char *
dmarc_policy_name(enum dmarc_policy p)
{
	if ((size_t)p >= TG_NITEMS(dmarc_policy_names))
		return "none";
	return dmarc_policy_names[p];
}

/* dmarc_words - a NULL-terminated list of lowercase domains */
static char **
dmarc_words(const char *text)
{
	char		**v = tg_calloc(1, sizeof(*v));
	const char	 *p = text;
	size_t		  n = 0, len;

	for (;; p += len) {
		p += strspn(p, " \t,");
		if ((len = strcspn(p, " \t,")) == 0)
			break;
		v = tg_reallocarray(v, n + 2, sizeof(*v));
		v[n] = dmarc_lower(tg_strndup(p, len));
		/* "example.com." names example.com */
		if (len > 1 && v[n][len - 1] == '.')
			v[n][len - 1] = '\0';
		v[++n] = NULL;
	}
	return v;
}

/* dmarc_init - the PSL, local overrides and the report store */
static enum tg_status
dmarc_init(const struct tg_env *env, struct tg_err *err)
{
	struct tg_err	nerr;

	dmarc_dns = env->dns;
	if (dmarc_conf.org_domain == DMARC_ORG_PSL &&
	    dmarc_lib_psl_load(dmarc_conf.psl_file, err) != TG_OK)
		return TG_PERM;
	dmarc_noenforce = dmarc_words(dmarc_conf.no_enforce_domains);
	if ((dmarc_forwarders = tg_netlist_parse(
	    dmarc_conf.trusted_forwarders, &nerr)) == NULL) {
		dmarc_fini();
		return tg_err_set(err, TG_PERM, "[dmarc] trusted_forwarders: "
		    "%s", nerr.text);
	}
	if (*dmarc_conf.report_dir != '\0' &&
	    (dmarc_store = dmarc_report_open(dmarc_conf.report_dir, false,
	    &nerr)) == NULL) {
		dmarc_fini();
		return tg_err_set(err, TG_PERM, "[dmarc] report_dir %s: %s",
		    dmarc_conf.report_dir, nerr.text);
	}
	return TG_OK;
}

/* dmarc_fini - release what init made */
static void
dmarc_fini(void)
{
	dmarc_store = dmarc_report_close(dmarc_store);
	dmarc_forwarders = tg_netlist_free(dmarc_forwarders);
	dmarc_noenforce = tg_strv_free(dmarc_noenforce);
	if (dmarc_conf.org_domain == DMARC_ORG_PSL)
		dmarc_lib_psl_unload();
}

/*
 * dmarc_report_settings - the [dmarc] report keys, defaults resolved
 * (org_name and email from the authserv-id); rebuilt on each call, so
 * for start-up and tollgatectl, not for message threads
 */
const struct dmarc_report_conf *
dmarc_report_settings(void)
{
	const char	*id = tg_core_conf.authserv_id != NULL ?
			    tg_core_conf.authserv_id : "";

	dmarc_report_conf.dir = dmarc_conf.report_dir != NULL ?
	    dmarc_conf.report_dir : "";
	dmarc_report_conf.org_name = dmarc_conf.report_org_name != NULL &&
	    *dmarc_conf.report_org_name != '\0' ?
	    dmarc_conf.report_org_name : id;
	if (dmarc_conf.report_email != NULL &&
	    *dmarc_conf.report_email != '\0')
		dmarc_report_conf.email = dmarc_conf.report_email;
	else {
		(void)snprintf(dmarc_report_from, sizeof(dmarc_report_from),
		    "postmaster@%s", id);
		dmarc_report_conf.email = dmarc_report_from;
	}
	dmarc_report_conf.sendmail = dmarc_conf.report_sendmail != NULL ?
	    dmarc_conf.report_sendmail : "/usr/sbin/sendmail";
	dmarc_report_conf.keep = dmarc_conf.report_keep;
	return &dmarc_report_conf;
}

/*
 * dmarc_header - the author domains of each From: field (RFC 5322 3.6
 * wants exactly one; RFC 7489 6.6.1: with several, every domain counts).
 * A value the strict reader refuses is read leniently.
 */
static enum tg_verdict
dmarc_header(struct tg_ctx *ctx, const char *name, const char *value)
{
	struct dmarc_msg	*m = tg_ctx_state(ctx);
	const char		*why;
	enum tg_status		 st;

	if (tg_strcasecmp(name, "From") != 0)
		return TG_CONTINUE;
	m->nfrom++;
	st = dmarc_from_domains(value, &m->authors, &why);
	if (st == TG_PERM && dmarc_from_lenient(value, &m->authors) == TG_OK)
		tg_log_debug(ctx, "from: %s: author domains read leniently",
		    why);
	else if (st != TG_OK)
		m->from_why = why;
	return TG_CONTINUE;
}

/* dmarc_msg_result - this message's result for later modules */
void
dmarc_msg_result(struct tg_ctx *ctx, struct dmarc_result *out)
{
	struct dmarc_msg	*m = tg_ctx_state_of(ctx, &tg_module_dmarc);

	memset(out, 0, sizeof(*out));
	if (m != NULL)
		*out = m->res;
}

/* dmarc_hfrom - header.from= value: quoted unless it is a plain token */
static const char *
dmarc_hfrom(struct tg_ctx *ctx, const char *d)
{
	struct tg_buf	 b;
	char		*s;

	if (tg_authres_value_ok(d))
		return d;
	tg_buf_init(&b);
	tg_buf_printf(&b, "\"%s\"", d);
	s = tg_ctx_strdup(ctx, tg_buf_cstr(&b));
	tg_buf_fini(&b);
	return s;
}

/* dmarc_bad_from - RFC 9989 4.4: no author domain at all: permerror */
static enum tg_verdict
dmarc_bad_from(struct tg_ctx *ctx, struct dmarc_msg *m, const char *why)
{
	m->res.evaluated = true;
	m->res.res = DMARC_RES_PERMERROR;
	tg_ctx_authres(ctx, "dmarc=permerror (%s)", why);
	tg_ctx_result(ctx, "permerror");
	tg_log_info(ctx, "result=permerror from=- reason=\"%s\" "
	    "on_bad_from=%s", why, dmarc_bf_names[dmarc_conf.on_bad_from]);
	if (dmarc_conf.on_bad_from != DMARC_BF_REJECT)
		return TG_CONTINUE;
	tg_ctx_reply(ctx, "550", "5.7.1", "message rejected: no "
	    "RFC5322.From author domain (%s)", why);
	return TG_REJECT;
}

/*
 * dmarc_too_many - more author domains than DMARC_AUTHORS_MAX.  Every
 * one would have to be evaluated (RFC 7489 6.6.1, where such messages
 * "are typically rejected"); skipping some, or on_bad_from = accept,
 * would let a message hide a domain behind the others, so it is refused.
 */
static enum tg_verdict
dmarc_too_many(struct tg_ctx *ctx, struct dmarc_msg *m)
{
	m->res.evaluated = true;
	m->res.res = DMARC_RES_PERMERROR;
	tg_ctx_authres(ctx, "dmarc=permerror (too many author domains)");
	tg_ctx_result(ctx, "permerror");
	tg_log_info(ctx, "result=permerror from=- reason=\"more than %d "
	    "author domains\"", DMARC_AUTHORS_MAX);
	tg_ctx_reply(ctx, "550", "5.7.1", "message rejected: more than %d "
	    "RFC5322.From author domains", DMARC_AUTHORS_MAX);
	return TG_REJECT;
}

/* dmarc_spf_outcome - our SPF result as libopendmarc's outcome */
static enum dmarc_lib_outcome
dmarc_spf_outcome(enum spf_result r)
{
	switch (r) {
	case SPF_PASS:
		return DMARC_LIB_PASS;
	case SPF_NONE:
		return DMARC_LIB_NONE;
	case SPF_TEMPERROR:
		return DMARC_LIB_TEMP;
	default:
		return DMARC_LIB_FAIL;	/* neutral, softfail: not a pass */
	}
}

/* dmarc_dkim_outcome - our DKIM result as libopendmarc's outcome */
static enum dmarc_lib_outcome
dmarc_dkim_outcome(enum dkim_res r)
{
	switch (r) {
	case DKIM_RES_PASS:
		return DMARC_LIB_PASS;
	case DKIM_RES_NONE:
		return DMARC_LIB_NONE;
	case DKIM_RES_TEMPERROR:
		return DMARC_LIB_TEMP;
	default:
		return DMARC_LIB_FAIL;	/* policy: RFC 8301 refused it */
	}
}

/* dmarc_dkim_list - the DKIM results that name a domain */
static size_t
dmarc_dkim_list(struct tg_ctx *ctx, struct dmarc_lib_dkim **out)
{
	const struct dkim_result	*dr;
	struct dmarc_lib_dkim		*dk;
	size_t				 n, i, k = 0;

	n = dkim_results(ctx, &dr);
	dk = tg_ctx_alloc(ctx, (n > 0 ? n : 1) * sizeof(*dk));
	for (i = 0; i < n; i++) {
		if (dr[i].domain == NULL)
			continue;
		dk[k].domain = dr[i].domain;
		dk[k].selector = dr[i].selector;
		dk[k++].outcome = dmarc_dkim_outcome(dr[i].res);
	}
	*out = dk;
	return k;
}

/* dmarc_dkim_passes - the distinct d= domains of passing signatures */
static size_t
dmarc_dkim_passes(struct tg_ctx *ctx, struct dmarc_lib_dkim **out)
{
	struct dmarc_lib_dkim	*dk;
	size_t			 n = dmarc_dkim_list(ctx, &dk), i, j, k = 0;

	for (i = 0; i < n; i++) {
		if (dk[i].outcome != DMARC_LIB_PASS)
			continue;
		for (j = 0; j < k; j++)
			if (tg_strcasecmp(dk[j].domain, dk[i].domain) == 0)
				break;
		if (j == k)
			dk[k++] = dk[i];
	}
	*out = dk;
	return k;
}

/* dmarc_align_psl - libopendmarc decides alignment and pass (PSL) */
static enum tg_status
dmarc_align_psl(struct tg_ctx *ctx, struct dmarc_eval *ev,
    struct dmarc_lib_answer *ans)
{
	struct dmarc_lib_query	q;
	struct spf_identity	spf;
	struct dmarc_lib_dkim	*dk;

	memset(&q, 0, sizeof(q));
	spf_msg_mailfrom(ctx, &spf);
	q.ip = tg_ctx_peer(ctx)->addr;
	q.record = ev->rec.text;
	q.from = ev->domain;
	q.org = ev->at_from ? NULL : ev->rec.domain;
	q.spf_domain = spf.checked ? spf.domain : NULL;
	q.spf = dmarc_spf_outcome(spf.result);
	q.ndkim = dmarc_dkim_list(ctx, &dk);
	q.dkim = dk;
	return dmarc_lib_evaluate(&q, ans);
}

/*
 * dmarc_id_aligned - RFC 9989 4.4: identical domains, or under relaxed
 * mode the same organizational domain (PSL or tree walk).  from_org is
 * the author domain's, filled on first use.  A walk the query budget
 * stopped counts as not aligned; TG_TEMP when a lookup failed.
 */
static enum tg_status
dmarc_id_aligned(struct dmarc_eval *ev, const char *a, bool strict,
    char *from_org, bool *aligned)
{
	char		org[DMARC_DOMAIN_MAX + 1];
	enum tg_status	st;

	*aligned = tg_strcasecmp(a, ev->domain) == 0;
	if (*aligned || strict)
		return TG_OK;
	if (*from_org == '\0' && (st = dmarc_org_domain(ev->lk, ev->domain,
	    from_org, DMARC_DOMAIN_MAX + 1)) != TG_OK)
		return st == TG_TEMP ? TG_TEMP : TG_OK;
	if ((st = dmarc_org_domain(ev->lk, a, org, sizeof(org))) != TG_OK)
		return st == TG_TEMP ? TG_TEMP : TG_OK;
	*aligned = strcmp(org, from_org) == 0;
	return TG_OK;
}

/*
 * dmarc_align_walk - alignment by tree walk, cheapest first: identical
 * domains need no query, then one walk per distinct passing identifier
 * until one aligns.  A lookup failing for one identifier is temperror
 * only when no other one aligned.
 */
static enum tg_status
dmarc_align_walk(struct tg_ctx *ctx, struct dmarc_eval *ev,
    struct dmarc_lib_answer *ans)
{
	struct spf_identity	 spf;
	struct dmarc_lib_dkim	*dk;
	char			 from_org[DMARC_DOMAIN_MAX + 1] = "";
	size_t			 n, i;
	bool			 temp = false, al, spf_pass;

	memset(ans, 0, sizeof(*ans));
	n = dmarc_dkim_passes(ctx, &dk);
	spf_msg_mailfrom(ctx, &spf);
	spf_pass = spf.checked && spf.result == SPF_PASS && spf.domain != NULL;
	for (i = 0; i < n; i++)
		if (tg_strcasecmp(dk[i].domain, ev->domain) == 0)
			ans->dkim_aligned = true;
	ans->spf_aligned = spf_pass && tg_strcasecmp(spf.domain,
	    ev->domain) == 0;
	for (i = 0; i < n && !ans->dkim_aligned && !ans->spf_aligned &&
	    !ev->rec.adkim_strict; i++) {
		if (dmarc_id_aligned(ev, dk[i].domain, false, from_org,
		    &al) != TG_OK)
			temp = true;
		else
			ans->dkim_aligned = al;
	}
	if (spf_pass && !ans->dkim_aligned && !ans->spf_aligned &&
	    !ev->rec.aspf_strict) {
		if (dmarc_id_aligned(ev, spf.domain, false, from_org,
		    &al) != TG_OK)
			temp = true;
		else
			ans->spf_aligned = al;
	}
	ans->pass = ans->dkim_aligned || ans->spf_aligned;
	return temp && !ans->pass ? TG_TEMP : TG_OK;
}

/*
 * dmarc_temp_aligned - no aligned pass, but an identifier that would
 * align had a temporary error (the MAIL FROM domain's SPF temperror, a
 * DKIM key lookup that failed): a retry may pass, so the result is
 * temperror, never fail (RFC 9989: temperror is never pass or fail)
 */
static bool
dmarc_temp_aligned(struct tg_ctx *ctx, struct dmarc_eval *ev)
{
	const struct dkim_result	*dr;
	struct spf_identity		 spf;
	char				 from_org[DMARC_DOMAIN_MAX + 1] = "";
	size_t				 n, i;
	bool				 al;

	spf_msg_mailfrom(ctx, &spf);
	if (spf.checked && spf.result == SPF_TEMPERROR && spf.domain != NULL &&
	    (dmarc_id_aligned(ev, spf.domain, ev->rec.aspf_strict, from_org,
	    &al) != TG_OK || al)) {
		ev->why = "SPF temperror";
		return true;
	}
	n = dkim_results(ctx, &dr);
	for (i = 0; i < n; i++) {
		if (dr[i].res != DKIM_RES_TEMPERROR || dr[i].domain == NULL)
			continue;
		if (dmarc_id_aligned(ev, dr[i].domain, ev->rec.adkim_strict,
		    from_org, &al) != TG_OK || al) {
			ev->why = "DKIM temperror";
			return true;
		}
	}
	return false;
}

/* dmarc_applied - p= for the From domain's own record, else sp= or np= */
static enum dmarc_policy
dmarc_applied(struct dmarc_eval *ev, bool fail)
{
	if (ev->at_from) {
		ev->which = "p";
		return ev->rec.p;
	}
	/* RFC 9989 4.7 np=: only a From domain that does not exist. */
	if (fail && ev->rec.has_np && !dmarc_domain_exists(ev->lk,
	    ev->domain)) {
		ev->which = "np";
		return ev->rec.np;
	}
	ev->which = "sp";
	return ev->rec.sp;
}

/* dmarc_lower_policy - one step down: reject to quarantine to none */
static enum dmarc_policy
dmarc_lower_policy(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE :
	    DMARC_POLICY_NONE;
}

/* dmarc_noenforce_match - the From domain or a parent is listed */
static bool
dmarc_noenforce_match(const char *d)
{
	size_t	i, dl = strlen(d), wl;

	for (i = 0; dmarc_noenforce[i] != NULL; i++) {
		wl = strlen(dmarc_noenforce[i]);
		if (strcmp(d, dmarc_noenforce[i]) == 0 || (dl > wl &&
		    d[dl - wl - 1] == '.' &&
		    strcmp(d + dl - wl, dmarc_noenforce[i]) == 0))
			return true;
	}
	return false;
}

/*
 * dmarc_disposition - what the policy asks for a failing message after
 * sampling (RFC 7489 6.6.4 pct=, RFC 9989 t=y: one step down) and the
 * local overrides.  A client in [spf] trusted_relays counts as a
 * trusted forwarder: SPF skipped it, so the fail may only be the SPF
 * pass that could not happen.
 */
static enum dmarc_policy
dmarc_disposition(struct tg_ctx *ctx, struct dmarc_eval *ev,
    enum dmarc_policy policy)
{
	const char		*addr = tg_ctx_peer(ctx)->addr;
	struct spf_identity	 spf;
	enum dmarc_policy	 dis = policy;

	if (dis != DMARC_POLICY_NONE && ev->rec.testing) {
		dis = dmarc_lower_policy(dis);
		ev->reason = "policy_test_mode";
	} else if (dis != DMARC_POLICY_NONE && ev->rec.pct >= 0 &&
	    ev->rec.pct < 100 &&
	    arc4random_uniform(100) >= (uint32_t)ev->rec.pct) {
		dis = dmarc_lower_policy(dis);
		ev->reason = "sampled_out";
	}
	if (dis == DMARC_POLICY_NONE)
		return dis;
	if (dmarc_noenforce_match(ev->domain)) {
		ev->reason = "local_policy";
		return DMARC_POLICY_NONE;
	}
	spf_msg_mailfrom(ctx, &spf);
	if (spf.trusted_relay || (addr != NULL &&
	    tg_netlist_match(dmarc_forwarders, addr))) {
		ev->reason = "trusted_forwarder";
		return DMARC_POLICY_NONE;
	}
	return dis;
}

/* dmarc_enforce - [dmarc] reject_action and quarantine_action */
static enum tg_verdict
dmarc_enforce(struct tg_ctx *ctx, struct dmarc_eval *ev,
    enum dmarc_policy *dis)
{
	struct tg_buf	b;

	if (*dis == DMARC_POLICY_REJECT) {
		if (dmarc_conf.reject_action == DMARC_RA_REJECT) {
			tg_ctx_reply(ctx, "550", "5.7.1", "message rejected by "
			    "the DMARC policy of %s", ev->domain);
			return TG_REJECT;
		}
		ev->reason = "local_policy";
		*dis = dmarc_conf.reject_action == DMARC_RA_QUARANTINE ?
		    DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
	}
	if (*dis != DMARC_POLICY_QUARANTINE)
		return TG_CONTINUE;
	switch (dmarc_conf.quarantine_action) {
	case DMARC_QA_QUARANTINE:
		return TG_QUARANTINE;
	case DMARC_QA_HEADER:
		tg_buf_init(&b);
		tg_buf_printf(&b, "yes (DMARC policy of %s)", ev->domain);
		tg_ctx_add_header(ctx, DMARC_QUARANTINE_HDR, tg_buf_cstr(&b));
		tg_buf_fini(&b);
		return TG_CONTINUE;
	default:
		ev->reason = "local_policy";
		*dis = DMARC_POLICY_NONE;
		return TG_CONTINUE;
	}
}

/* dmarc_addr_domain - the domain of "<a@b>" in lower case, "" if none */
static const char *
dmarc_addr_domain(struct tg_ctx *ctx, const char *addr)
{
	const char	*at = strrchr(addr, '@');
	char		*d;

	if (at == NULL)
		return "";
	d = tg_ctx_strdup(ctx, at + 1);
	d[strcspn(d, ">")] = '\0';
	return dmarc_lower(d);
}

/* dmarc_report_auth - auth_results of the report record */
static void
dmarc_report_auth(struct tg_ctx *ctx, struct dmarc_report_rec *r)
{
	const struct dkim_result	*dr;
	struct spf_identity		 spf;
	size_t				 n, i;

	n = dkim_results(ctx, &dr);
	for (i = 0; i < n && r->ndkim < DMARC_REPORT_MAX_DKIM; i++) {
		if (dr[i].domain == NULL)
			continue;
		r->dkim[r->ndkim].domain = dr[i].domain;
		r->dkim[r->ndkim].selector = dr[i].selector;
		r->dkim[r->ndkim++].result = dkim_res_name(dr[i].res);
	}
	spf_msg_mailfrom(ctx, &spf);
	if (spf.checked) {
		r->spf_domain = spf.domain;
		r->spf_result = spf_result_name(spf.result);
	}
}

/*
 * dmarc_report - one record for aggregate reports, per author domain
 * with a policy; never delays mail
 */
static void
dmarc_report(struct tg_ctx *ctx, const struct dmarc_eval *ev)
{
	const struct dmarc_record	*rec = &ev->rec;
	struct dmarc_report_rec		 r;
	struct tg_err			 err;

	if (dmarc_store == NULL)
		return;
	memset(&r, 0, sizeof(r));
	r.when = time(NULL);
	r.source_ip = tg_ctx_peer(ctx)->addr;
	r.header_from = ev->domain;
	r.envelope_from = dmarc_addr_domain(ctx, tg_ctx_mail_from(ctx));
	r.envelope_to = tg_ctx_rcpt_count(ctx) > 0 ?
	    dmarc_addr_domain(ctx, tg_ctx_rcpt(ctx, 0)) : NULL;
	r.policy_domain = rec->domain;
	r.p = dmarc_policy_name(rec->p);
	r.sp = rec->has_sp ? dmarc_policy_name(rec->sp) : NULL;
	r.np = rec->has_np ? dmarc_policy_name(rec->np) : NULL;
	r.adkim = rec->adkim_strict ? "s" : "r";
	r.aspf = rec->aspf_strict ? "s" : "r";
	r.pct = rec->pct;
	r.fo = rec->fo;
	r.testing = rec->testing;
	r.rua = rec->rua;
	r.disposition = dmarc_policy_name(ev->dis);
	r.dkim_pass = ev->dkim_aligned;
	r.spf_pass = ev->spf_aligned;
	r.reason = ev->reason;
	dmarc_report_auth(ctx, &r);
	if (dmarc_report_add(dmarc_store, &r, &err) != TG_OK)
		tg_log_warn_limited(ctx, "dmarc report store", 60,
		    "report store: %s", err.text);
}

/* dmarc_authors_note - " authors=N" and " from_parse=lenient", or "" */
static const char *
dmarc_authors_note(struct tg_ctx *ctx, const struct dmarc_msg *m)
{
	struct tg_buf	 b;
	char		*s;

	tg_buf_init(&b);
	if (m->authors.n > 1)
		tg_buf_printf(&b, " authors=%zu", m->authors.n);
	if (m->authors.lenient)
		tg_buf_puts(&b, " from_parse=lenient");
	s = tg_ctx_strdup(ctx, tg_buf_cstr(&b));
	tg_buf_fini(&b);
	return s;
}

/* dmarc_no_policy - none, permerror or temperror: nothing to enforce */
static enum tg_verdict
dmarc_no_policy(struct tg_ctx *ctx, struct dmarc_msg *m,
    struct dmarc_eval *ev)
{
	enum dmarc_res	res = ev->res;

	tg_ctx_authres(ctx, "dmarc=%s header.from=%s", dmarc_res_name(res),
	    dmarc_hfrom(ctx, ev->domain));
	tg_ctx_result(ctx, "%s", dmarc_res_name(res));
	tg_log_info(ctx, "result=%s from=%s reason=\"%s\" queries=%u%s%s%s",
	    dmarc_res_name(res), ev->domain, ev->why != NULL ? ev->why : "-",
	    ev->lk->queries, res == DMARC_RES_TEMPERROR ? " on_error=" : "",
	    res == DMARC_RES_TEMPERROR ?
	    tg_on_error_names[dmarc_conf.on_error] : "",
	    dmarc_authors_note(ctx, m));
	if (res != DMARC_RES_TEMPERROR)
		return TG_CONTINUE;
	/* RFC 9989 temperror is never pass or fail: the operator decides. */
	tg_log_warn_limited(ctx, "dmarc policy lookup", 60, "%s: on_error=%s",
	    ev->why != NULL ? ev->why : "lookup failed",
	    tg_on_error_names[dmarc_conf.on_error]);
	if (dmarc_conf.on_error != TG_ON_ERROR_TEMPFAIL)
		return TG_CONTINUE;
	tg_ctx_reply(ctx, "451", "4.7.1", "DMARC policy of %s cannot be "
	    "checked now, try again later", ev->domain);
	return TG_TEMPFAIL;
}

/* dmarc_record_result - A-R, decision field and the info line */
static void
dmarc_record_result(struct tg_ctx *ctx, struct dmarc_msg *m,
    struct dmarc_eval *ev)
{
	const char	*res = dmarc_res_name(m->res.res);
	const char	*pol = dmarc_policy_name(m->res.policy);
	const char	*dis = dmarc_policy_name(m->res.disposition);

	tg_ctx_authres(ctx, "dmarc=%s (p=%s dis=%s) header.from=%s", res, pol,
	    dis, dmarc_hfrom(ctx, m->domain));
	tg_ctx_result(ctx, "%s p=%s dis=%s", res, pol, dis);
	tg_log_info(ctx, "result=%s from=%s policy_domain=%s %s=%s dis=%s "
	    "dkim_aligned=%s spf_aligned=%s reason=%s queries=%u%s", res,
	    m->domain, m->policy_domain, ev->which, pol, dis,
	    m->res.dkim_aligned ? "yes" : "no",
	    m->res.spf_aligned ? "yes" : "no",
	    ev->reason != NULL ? ev->reason : "-", ev->lk->queries,
	    dmarc_authors_note(ctx, m));
}

/*
 * dmarc_evaluate - one author domain: discovery, alignment, the policy
 * that applies and the disposition it asks for; acts on nothing
 */
static void
dmarc_evaluate(struct tg_ctx *ctx, struct dmarc_eval *ev)
{
	struct dmarc_lib_answer	ans;
	enum tg_status		st;

	st = dmarc_discover(ev->lk, ev->domain, &ev->rec, &ev->at_from,
	    &ev->why);
	if (st != TG_OK) {
		ev->res = st == TG_TEMP ? DMARC_RES_TEMPERROR : st == TG_PERM ?
		    DMARC_RES_PERMERROR : DMARC_RES_NONE;
		return;
	}
	if (ev->lk->mode == DMARC_ORG_TREE_WALK)
		st = dmarc_align_walk(ctx, ev, &ans);
	else
		st = dmarc_align_psl(ctx, ev, &ans);
	if (st != TG_OK) {
		ev->why = st == TG_TEMP ? "alignment lookup failed" :
		    "record refused by libopendmarc";
		ev->res = st == TG_TEMP ? DMARC_RES_TEMPERROR :
		    DMARC_RES_PERMERROR;
		return;
	}
	if (!ans.pass && dmarc_temp_aligned(ctx, ev)) {
		ev->res = DMARC_RES_TEMPERROR;
		return;
	}
	ev->res = ans.pass ? DMARC_RES_PASS : DMARC_RES_FAIL;
	ev->dkim_aligned = ans.dkim_aligned;
	ev->spf_aligned = ans.spf_aligned;
	ev->policy = dmarc_applied(ev, !ans.pass);
	if (!ans.pass)
		ev->dis = dmarc_disposition(ctx, ev, ev->policy);
	tg_log_debug(ctx, "author domain %s: result=%s dis=%s", ev->domain,
	    dmarc_res_name(ev->res), dmarc_policy_name(ev->dis));
}

/*
 * dmarc_rank - how strict an outcome is.  RFC 7489 6.6.1: with several
 * author domains the strongest disposition applies; a temperror, which
 * on_error may defer, is stronger than a fail whose disposition is none,
 * and an unauthenticated domain (none, permerror) than a pass.
 */
static int
dmarc_rank(const struct dmarc_eval *ev)
{
	switch (ev->res) {
	case DMARC_RES_PASS:
		return 0;
	case DMARC_RES_NONE:
		return 1;
	case DMARC_RES_PERMERROR:
		return 2;
	case DMARC_RES_TEMPERROR:
		return 4;
	case DMARC_RES_FAIL:
		return ev->dis == DMARC_POLICY_REJECT ? 6 :
		    ev->dis == DMARC_POLICY_QUARANTINE ? 5 : 3;
	}
	TG_PANIC("bad dmarc result %d", (int)ev->res);
}

/* dmarc_decide - the deciding domain's outcome: result, A-R, verdict */
static enum tg_verdict
dmarc_decide(struct tg_ctx *ctx, struct dmarc_msg *m, struct dmarc_eval *ev)
{
	enum tg_verdict	v = TG_CONTINUE;

	(void)snprintf(m->domain, sizeof(m->domain), "%s", ev->domain);
	m->res.header_from = m->domain;
	m->res.res = ev->res;
	if (ev->res != DMARC_RES_PASS && ev->res != DMARC_RES_FAIL)
		return dmarc_no_policy(ctx, m, ev);
	(void)snprintf(m->policy_domain, sizeof(m->policy_domain), "%s",
	    ev->rec.domain);
	m->res.policy_domain = m->policy_domain;
	m->res.dkim_aligned = ev->dkim_aligned;
	m->res.spf_aligned = ev->spf_aligned;
	m->res.policy = ev->policy;
	if (ev->res == DMARC_RES_FAIL)
		v = dmarc_enforce(ctx, ev, &ev->dis);
	m->res.disposition = ev->dis;
	dmarc_record_result(ctx, m, ev);
	return v;
}

/*
 * dmarc_eom - evaluate every author domain (DKIM's eom has run) and act
 * on the strictest outcome
 */
static enum tg_verdict
dmarc_eom(struct tg_ctx *ctx)
{
	struct dmarc_msg	*m = tg_ctx_state(ctx);
	struct dmarc_lookup	 lk;
	struct dmarc_eval	*ev;
	enum tg_verdict		 v;
	size_t			 i, best = 0;

	if (tg_ctx_outbound(ctx)) {
		tg_log_debug(ctx, "not evaluated: outbound mail");
		return TG_CONTINUE;
	}
	if (m->authors.n == 0)
		return dmarc_bad_from(ctx, m, m->nfrom == 0 ? "no From field" :
		    m->from_why != NULL ? m->from_why : "no author address");
	if (m->authors.too_many)
		return dmarc_too_many(ctx, m);
	m->res.evaluated = true;
	memset(&lk, 0, sizeof(lk));
	lk.ctx = ctx;
	lk.dns = dmarc_dns;
	lk.mode = (enum dmarc_org_mode)dmarc_conf.org_domain;
	ev = tg_ctx_alloc(ctx, m->authors.n * sizeof(*ev));
	for (i = 0; i < m->authors.n; i++) {
		ev[i].lk = &lk;
		ev[i].domain = m->authors.domain[i];
		dmarc_evaluate(ctx, &ev[i]);
		if (dmarc_rank(&ev[i]) > dmarc_rank(&ev[best]))
			best = i;
	}
	v = dmarc_decide(ctx, m, &ev[best]);
	for (i = 0; i < m->authors.n; i++) {
		if (ev[i].res == DMARC_RES_PASS || ev[i].res == DMARC_RES_FAIL)
			dmarc_report(ctx, &ev[i]);
		dmarc_record_fini(&ev[i].rec);
	}
	dmarc_lookup_fini(&lk);
	return v;
}
