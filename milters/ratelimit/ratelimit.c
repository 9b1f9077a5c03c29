/*
 * ratelimit - the sending-quota module: the quota rules (quota.h) on
 * every message, charged against the shared store.
 *
 * At end of message, when the recipients are known, the module plans
 * the message's charges (exempt senders and clients charge nothing;
 * rules apply to outbound mail unless they say mail=inbound or any) and
 * reserves them all or none.  A refused limit defers (450 4.7.1) or
 * rejects (550 5.7.1) with a reply naming the limit and when to retry;
 * a shadow rule only logs what it would have done.  The reservations
 * are committed when the pipeline's final verdict is accept or
 * quarantine, and refunded when it is anything else (a later module's
 * reject, a tempfail, a discard) or the message is aborted: mail that
 * is not accepted never costs quota.  A reservation the MTA never
 * settles (a lost connection) lapses in the store after
 * reservation_ttl.  A store failure does what the failing rule's
 * on_error says.
 *
 * Threading: the store is thread-safe; the policy is immutable, and
 * each message holds a reference to it (taken under a lock) until the
 * message is released, so a reload can swap in a new one.  Per-message data
 * (the plan) lives in the message's state.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/conf.h"
#include "tollgate/log.h"
#include "tollgate/metrics.h"
#include "tollgate/quota.h"
#include "tollgate/ratelimit.h"
#include "tollgate/store.h"

#define RL_WARN_INTERVAL	60	/* seconds between store warnings */

static struct {
	char	*rules_file;
	char	*exempt;
	long	 reservation_ttl;	/* seconds */
} rl_conf;

static const struct tg_param rl_params[] = {
	TG_PARAM_STRING("rules_file", "", &rl_conf.rules_file,
	    "the limits (limit, table and exempt lines); required"),
	TG_PARAM_STRING("exempt", "", &rl_conf.exempt,
	    "senders, domains, SASL users or networks never counted"),
	TG_PARAM_TIME("reservation_ttl", "10m", &rl_conf.reservation_ttl, 10,
	    86400, "a reservation never committed stops counting after this"),
	TG_PARAM_END
};

struct rl_msg {
	struct tg_quota_policy	*pol;		/* a reference */
	struct tg_quota_plan	 plan;
	bool			 held;		/* plan holds reservations */
};

static struct tg_store		*rl_store;
/*
 * The policy in force.  A message takes a reference under the lock, so
 * a reload can swap the pointer under it and drop its own reference:
 * the old policy goes with the last message that uses it.
 */
static struct tg_quota_policy	*rl_policy;
static pthread_mutex_t		 rl_policy_lock = PTHREAD_MUTEX_INITIALIZER;

static void	rl_fini(void);

/* rl_init - the rules and the store */
static enum tg_status
rl_init(const struct tg_env *env, struct tg_err *err)
{
	struct tg_store_conf	 sc;
	struct tg_quota_policy	*pol;
	struct tg_err		 nerr;
	size_t			 i;

	(void)env;
	if (*rl_conf.rules_file == '\0')
		return tg_err_set(err, TG_PERM, "[ratelimit] rules_file: "
		    "required when the module is enabled");
	if ((pol = tg_quota_policy_load(rl_conf.rules_file, rl_conf.exempt,
	    &nerr)) == NULL)
		return tg_err_set(err, TG_PERM, "[ratelimit] %s", nerr.text);
	tg_store_conf_loaded(&sc);
	for (i = 0; i < tg_quota_policy_nrules(pol); i++)
		if (tg_quota_policy_rule(pol, i)->on_error ==
		    TG_QUOTA_ON_ERROR_LOCAL &&
		    sc.on_error != TG_STORE_ON_ERROR_LOCAL) {
			(void)tg_err_set(err, TG_PERM, "[ratelimit] limit %s: "
			    "on_error=local needs [store] on_error = local",
			    tg_quota_policy_rule(pol, i)->name);
			(void)tg_quota_policy_unref(pol);
			return TG_PERM;
		}
	if ((rl_store = tg_store_open(&sc, &nerr)) == NULL) {
		(void)tg_quota_policy_unref(pol);
		return tg_err_set(err, TG_PERM, "[ratelimit] store: %s",
		    nerr.text);
	}
	rl_policy = pol;
	return TG_OK;
}

/* tg_ratelimit_rules - the loaded rules_file and exempt settings */
void
tg_ratelimit_rules(const char **rules_file, const char **exempt)
{
	*rules_file = rl_conf.rules_file;
	*exempt = rl_conf.exempt;
}

/* rl_fini - release the policy and the store */
static void
rl_fini(void)
{
	rl_policy = tg_quota_policy_unref(rl_policy);
	rl_store = tg_store_close(rl_store);
}

/* rl_policy_get - a reference to the policy in force */
static struct tg_quota_policy *
rl_policy_get(void)
{
	struct tg_quota_policy	*pol;

	if (pthread_mutex_lock(&rl_policy_lock) != 0)
		TG_PANIC("ratelimit: policy lock");
	pol = tg_quota_policy_ref(rl_policy);
	(void)pthread_mutex_unlock(&rl_policy_lock);
	return pol;
}

/* rl_release - at the message's end: reservations lapse, plan goes */
static void
rl_release(void *arg)
{
	struct rl_msg	*m = arg;

	tg_quota_plan_fini(&m->plan);
	m->pol = tg_quota_policy_unref(m->pol);
}

/* rl_shadow_note - the decision-line text of a shadow refusal */
static void
rl_shadow_note(const struct tg_quota_result *res, char *out, size_t size)
{
	out[0] = '\0';
	if (res->shadow_hit != NULL)
		(void)snprintf(out, size, " shadow-%s %s",
		    res->shadow_hit->rule->action == TG_QUOTA_REJECT ?
		    "reject" : "defer", res->shadow_hit->rule->name);
}

/* rl_log_shadow - "would defer": what a shadow rule would have done */
static void
rl_log_shadow(struct tg_ctx *ctx, const struct tg_quota_result *res)
{
	const struct tg_quota_charge	*c = res->shadow_hit;
	char				 text[400];

	if (c == NULL)
		return;
	tg_metric_inc(TG_M_QUOTA_SHADOW, c->rule->action == TG_QUOTA_REJECT ?
	    "reject" : "defer", NULL);
	tg_quota_reply(c, res->shadow_retry_ms, text, sizeof(text));
	tg_log_info(ctx, "action=would-%s limit=%s key=%s used=%llu "
	    "amount=%llu max=%llu shadow=yes reply=\"%s\"",
	    c->rule->action == TG_QUOTA_REJECT ? "reject" : "defer",
	    c->rule->name, c->who, (unsigned long long)c->used,
	    (unsigned long long)c->amount, (unsigned long long)c->max, text);
}

/* rl_over - a limit refused: defer or reject, with the reason */
static enum tg_verdict
rl_over(struct tg_ctx *ctx, const struct tg_quota_result *res)
{
	const struct tg_quota_charge	*c = res->hit;
	bool				 rej = c->rule->action ==
					    TG_QUOTA_REJECT;
	char				 text[400], note[96];

	tg_quota_reply(c, res->retry_after_ms, text, sizeof(text));
	rl_shadow_note(res, note, sizeof(note));
	tg_log_info(ctx, "action=%s limit=%s key=%s used=%llu amount=%llu "
	    "max=%llu source=%s retry_after=%llus%s", rej ? "reject" : "defer",
	    c->rule->name, c->who, (unsigned long long)c->used,
	    (unsigned long long)c->amount, (unsigned long long)c->max,
	    c->source, (unsigned long long)((res->retry_after_ms + 999) /
	    1000), c->approximate ? " approximate=yes" : "");
	rl_log_shadow(ctx, res);
	tg_ctx_result(ctx, "%s %s%s", rej ? "reject" : "defer", c->rule->name,
	    note);
	if (rej) {
		tg_ctx_reply(ctx, "550", "5.7.1", "%s", text);
		return TG_REJECT;
	}
	tg_ctx_reply(ctx, "450", "4.7.1", "%s", text);
	return TG_TEMPFAIL;
}

/* rl_store_error - a rule with on_error = tempfail could not count */
static enum tg_verdict
rl_store_error(struct tg_ctx *ctx, const struct tg_quota_result *res)
{
	tg_log_warn_limited(ctx, "ratelimit store tempfail", RL_WARN_INTERVAL,
	    "store: %s: limit %s on_error=tempfail", res->error,
	    res->hit->rule->name);
	tg_log_info(ctx, "action=tempfail limit=%s reason=store-error "
	    "error=\"%s\"", res->hit->rule->name, res->error);
	tg_ctx_result(ctx, "tempfail %s store-error", res->hit->rule->name);
	tg_ctx_reply(ctx, "451", "4.7.1", "sending quota cannot be checked "
	    "now, try again later");
	return TG_TEMPFAIL;
}

/* rl_log_charges - every counter of the message, at debug */
static void
rl_log_charges(struct tg_ctx *ctx, const struct rl_msg *m)
{
	const struct tg_quota_charge	*c;
	size_t				 i;

	for (i = 0; i < m->plan.n; i++) {
		c = &m->plan.v[i];
		tg_log_debug(ctx, "limit=%s key=%s amount=%llu used=%llu "
		    "max=%llu source=%s%s", c->rule->name, c->who,
		    (unsigned long long)c->amount, (unsigned long long)c->used,
		    (unsigned long long)c->max, c->source,
		    c->rule->shadow ? " shadow=yes" : "");
	}
}

/* rl_pass - every limit fits: log the tightest one */
static enum tg_verdict
rl_pass(struct tg_ctx *ctx, const struct rl_msg *m,
    const struct tg_quota_result *res)
{
	const struct tg_quota_charge	*c = res->tightest;
	char				 note[96];

	if (res->store_failed)
		tg_log_warn_limited(ctx, "ratelimit store accept",
		    RL_WARN_INTERVAL, "store: %s: on_error=accept, not counted",
		    res->error);
	if (res->approximate)
		tg_log_warn_limited(ctx, "ratelimit local", RL_WARN_INTERVAL,
		    "store failing: limits counted locally, approximately");
	rl_shadow_note(res, note, sizeof(note));
	rl_log_shadow(ctx, res);
	rl_log_charges(ctx, m);
	if (c == NULL) {
		tg_log_info(ctx, "action=accept limits=%zu%s", m->plan.n,
		    res->store_failed ? " store=failed" : "");
		tg_ctx_result(ctx, "ok%s%s", res->store_failed ?
		    " store-error" : "", note);
		return TG_CONTINUE;
	}
	tg_log_info(ctx, "action=accept limits=%zu tightest=%s key=%s "
	    "used=%llu max=%llu source=%s%s%s", m->plan.n, c->rule->name,
	    c->who, (unsigned long long)c->used, (unsigned long long)c->max,
	    c->source, res->approximate ? " approximate=yes" : "",
	    res->store_failed ? " store=failed" : "");
	tg_ctx_result(ctx, "ok used=%llu/%llu%s%s", (unsigned long long)c->used,
	    (unsigned long long)c->max, res->approximate ? " approximate" : "",
	    note);
	return TG_CONTINUE;
}

/* rl_eom - plan and reserve every limit of the message */
static enum tg_verdict
rl_eom(struct tg_ctx *ctx)
{
	struct rl_msg		*m = tg_ctx_state(ctx);
	struct tg_quota_msg	 qm;
	struct tg_quota_result	 res;
	const char		**rcpts;
	size_t			 i, n = tg_ctx_rcpt_count(ctx);

	m->pol = rl_policy_get();
	tg_ctx_defer(ctx, rl_release, m);
	rcpts = tg_ctx_alloc(ctx, (n + 1) * sizeof(*rcpts));
	for (i = 0; i < n; i++)
		rcpts[i] = tg_ctx_rcpt(ctx, i);
	memset(&qm, 0, sizeof(qm));
	qm.sasl_user = tg_ctx_auth_user(ctx);
	qm.sender = tg_ctx_mail_from(ctx);
	qm.client_addr = tg_ctx_peer(ctx)->addr;
	qm.outbound = tg_ctx_outbound(ctx);
	qm.rcpts = rcpts;
	qm.nrcpts = n;
	tg_quota_plan_make(m->pol, &qm, &m->plan);
	if (m->plan.exempt) {
		tg_log_info(ctx, "action=accept exempt=%s", m->plan.exempt_by);
		tg_ctx_result(ctx, "exempt");
		return TG_CONTINUE;
	}
	if (m->plan.n == 0) {
		tg_log_info(ctx, "action=accept limits=0 mail=%s",
		    qm.outbound ? "outbound" : "inbound");
		tg_ctx_result(ctx, "none");
		return TG_CONTINUE;
	}
	tg_quota_reserve(rl_store, &m->plan,
	    (uint64_t)rl_conf.reservation_ttl * 1000, &res);
	switch (res.outcome) {
	case TG_QUOTA_PASS:
		m->held = true;
		return rl_pass(ctx, m, &res);
	case TG_QUOTA_OVER:
		return rl_over(ctx, &res);
	case TG_QUOTA_STORE_ERROR:
		return rl_store_error(ctx, &res);
	}
	TG_PANIC("quota outcome %d", (int)res.outcome);
}

/* rl_settle - commit or refund what the message holds */
static void
rl_settle(struct tg_ctx *ctx, struct rl_msg *m, bool commit)
{
	size_t	failed;

	if (!m->held)
		return;
	m->held = false;
	failed = commit ? tg_quota_commit(rl_store, &m->plan) :
	    tg_quota_refund(rl_store, &m->plan);
	tg_log_debug(ctx, "quota %s limits=%zu failed=%zu",
	    commit ? "committed" : "refunded", m->plan.n, failed);
	if (failed > 0)
		tg_log_warn_limited(ctx, "ratelimit settle", RL_WARN_INTERVAL,
		    "store: %zu of %zu %s failed, the reservations lapse "
		    "after reservation_ttl", failed, m->plan.n,
		    commit ? "commits" : "refunds");
}

/* rl_done - the final verdict: accepted mail is charged, other is not */
static void
rl_done(struct tg_ctx *ctx, enum tg_verdict final)
{
	rl_settle(ctx, tg_ctx_state(ctx), final == TG_ACCEPT ||
	    final == TG_QUARANTINE);
}

/* rl_abort - the message was abandoned: give everything back */
static void
rl_abort(struct tg_ctx *ctx)
{
	rl_settle(ctx, tg_ctx_state(ctx), false);
}

const struct tg_module tg_module_ratelimit = {
	.name = "ratelimit",
	.abi = TG_MODULE_ABI,
	.params = rl_params,
	.msg_state_size = sizeof(struct rl_msg),
	.init = rl_init,
	.fini = rl_fini,
	.eom = rl_eom,
	.abort = rl_abort,
	.done = rl_done,
};
