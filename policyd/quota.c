/*
 * quota - the sending-quota check of tollgate-policyd: the quota rules
 * (quota.h, the same rules file format as the milter's ratelimit
 * module) on Postfix policy requests.
 *
 * At protocol_state RCPT the check only looks: it plans one recipient
 * of one message and answers DEFER_IF_PERMIT (or REJECT, as the rule
 * says) with the rule's text when a limit has no room for it, DUNNO
 * otherwise; nothing is reserved.  At END-OF-MESSAGE, when Postfix has
 * received the message and recipient_count is known, the check reserves
 * every limit of the message (all or none) and commits at once.  Mail
 * refused at RCPT or DATA, by this check or any other, never reaches
 * END-OF-MESSAGE and so costs nothing.  A rejection after
 * END-OF-MESSAGE (a milter, a later restriction) is not visible to the
 * policy protocol: such mail is charged.  Other states answer DUNNO.
 *
 * Store calls are synchronous, each bounded by [store] timeout; a store
 * failure does what the failing rule's on_error says.  Runs on the event
 * loop's thread only; configuration and the policy are read-only after
 * init.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/log.h"
#include "tollgate/policyd.h"
#include "tollgate/quota.h"

/* How long the EOM reservation may live before its commit: it is
 * committed in the same request, so this bounds only a lost answer. */
#define QT_RESERVE_TTL_MS	60000

static struct {
	char	*rules_file;
	char	*exempt;
	char	*outbound_networks;
} qt_conf;

static const struct tg_param qt_params[] = {
	TG_PARAM_STRING("rules_file", "", &qt_conf.rules_file,
	    "the limits, as [ratelimit] rules_file; required when enabled"),
	TG_PARAM_STRING("exempt", "", &qt_conf.exempt,
	    "senders, domains, SASL users or networks never counted"),
	TG_PARAM_STRING("outbound_networks", "127.0.0.0/8 ::1/128",
	    &qt_conf.outbound_networks,
	    "clients whose mail is outbound (SASL-authenticated mail is too)"),
	TG_PARAM_END
};

static struct tg_store		*qt_store;
static struct tg_quota_policy	*qt_policy;
static struct tg_netlist	*qt_outbound;

/* qt_init - the rules and the outbound networks */
static enum tg_status
qt_init(const struct pd_env *env, struct tg_err *err)
{
	struct tg_err	nerr;

	if (*qt_conf.rules_file == '\0')
		return tg_err_set(err, TG_PERM, "[quota] rules_file: "
		    "required when the check is enabled");
	if ((qt_outbound = tg_netlist_parse(qt_conf.outbound_networks,
	    &nerr)) == NULL)
		return tg_err_set(err, TG_PERM, "[quota] outbound_networks: "
		    "%s", nerr.text);
	if ((qt_policy = tg_quota_policy_load(qt_conf.rules_file,
	    qt_conf.exempt, &nerr)) == NULL) {
		qt_outbound = tg_netlist_free(qt_outbound);
		return tg_err_set(err, TG_PERM, "[quota] %s", nerr.text);
	}
	qt_store = env->store;
	return TG_OK;
}

/* qt_fini - release init's work */
static void
qt_fini(void)
{
	qt_policy = tg_quota_policy_unref(qt_policy);
	qt_outbound = tg_netlist_free(qt_outbound);
	qt_store = NULL;
}

/* qt_refuse - the action for a refused charge */
static void
qt_refuse(const struct tg_quota_charge *c, uint64_t retry_ms, bool rcpt,
    struct tg_buf *action, struct tg_buf *note)
{
	bool	rej = c->rule->action == TG_QUOTA_REJECT;
	char	text[400];

	tg_quota_reply(c, retry_ms, text, sizeof(text));
	tg_buf_printf(action, "%s %s %s", rej ? "REJECT" : rcpt ?
	    "DEFER_IF_PERMIT" : "DEFER", rej ? "5.7.1" : "4.7.1", text);
	tg_buf_printf(note, " quota=%s limit=%s key=%s used=%llu max=%llu "
	    "source=%s", rej ? "reject" : "defer", c->rule->name, c->who,
	    (unsigned long long)c->used, (unsigned long long)c->max,
	    c->source);
}

/* qt_store_failed - a rule with on_error = tempfail could not count */
static void
qt_store_failed(const char *rule, const char *why, struct tg_buf *action,
    struct tg_buf *note)
{
	tg_buf_puts(action, "DEFER_IF_PERMIT 4.7.1 sending quota cannot be "
	    "checked now, try again later");
	tg_buf_printf(note, " quota=tempfail limit=%s error=\"%s\"", rule,
	    why);
}

/* qt_look - RCPT: does every limit have room for the plan? */
static void
qt_look(struct tg_quota_plan *plan, struct tg_buf *action,
    struct tg_buf *note)
{
	struct tg_quota_charge	*c;
	struct tg_store_usage	 u;
	struct tg_err		 err;
	size_t			 i;

	for (i = 0; i < plan->n; i++) {
		c = &plan->v[i];
		if (c->rule->window_ms == 0) {
			u.used = 0;	/* a per-message cap: no counter */
			u.remaining = c->max;
			u.frees_in_ms = 0;
		} else if (tg_store_usage(qt_store, c->key, c->rule->window_ms,
		    c->max, &u, &err) != TG_OK) {
			if (c->rule->on_error == TG_QUOTA_ON_ERROR_ACCEPT) {
				tg_buf_printf(note, " store=failed");
				continue;
			}
			qt_store_failed(c->rule->name, err.text, action, note);
			return;
		}
		c->used = u.used;
		if (u.remaining >= c->amount)
			continue;
		if (c->rule->shadow) {
			tg_buf_printf(note, " shadow=%s", c->rule->name);
			continue;
		}
		qt_refuse(c, c->rule->window_ms == 0 || u.frees_in_ms == 0 ?
		    c->rule->window_ms : u.frees_in_ms, true, action, note);
		return;
	}
	tg_buf_printf(note, " quota=room limits=%zu", plan->n);
}

/* qt_charge - END-OF-MESSAGE: reserve all or none, commit at once */
static void
qt_charge(struct tg_quota_plan *plan, struct tg_buf *action,
    struct tg_buf *note)
{
	struct tg_quota_result	 res;
	const struct tg_quota_charge *c;
	size_t			 failed;

	tg_quota_reserve(qt_store, plan, QT_RESERVE_TTL_MS, &res);
	if (res.shadow_hit != NULL)
		tg_buf_printf(note, " shadow=%s", res.shadow_hit->rule->name);
	switch (res.outcome) {
	case TG_QUOTA_OVER:
		qt_refuse(res.hit, res.retry_after_ms, false, action, note);
		return;
	case TG_QUOTA_STORE_ERROR:
		qt_store_failed(res.hit->rule->name, res.error, action, note);
		return;
	case TG_QUOTA_PASS:
		break;
	}
	if ((failed = tg_quota_commit(qt_store, plan)) > 0)
		tg_buf_printf(note, " commit_failed=%zu", failed);
	if (res.store_failed)
		tg_buf_printf(note, " store=failed");
	if ((c = res.tightest) == NULL) {
		tg_buf_printf(note, " quota=ok limits=%zu", plan->n);
		return;
	}
	tg_buf_printf(note, " quota=ok limits=%zu tightest=%s used=%llu/%llu%s",
	    plan->n, c->rule->name, (unsigned long long)c->used,
	    (unsigned long long)c->max, res.approximate ?
	    " approximate=yes" : "");
}

/* qt_count - recipient_count as a number; 0 when absent or bad */
static size_t
qt_count(const struct pd_request *req)
{
	const char	*v = pd_request_get(req, "recipient_count");
	long		 n;

	if (v == NULL || !tg_parse_long(v, 0, 100000, &n))
		return 0;
	return (size_t)n;
}

/* qt_check - the check hook */
static enum tg_status
qt_check(const struct pd_request *req, struct tg_buf *action,
    struct tg_buf *note, struct tg_err *err)
{
	const char		*state = pd_request_get(req, "protocol_state");
	const char		*sasl = pd_request_get(req, "sasl_username");
	const char		*ip = pd_request_get(req, "client_address");
	const char		*rcpt = pd_request_get(req, "recipient");
	const char		**rcpts;
	struct tg_quota_msg	 qm;
	struct tg_quota_plan	 plan;
	bool			 at_rcpt;
	size_t			 i, n;

	(void)err;
	if (state == NULL)
		state = "";
	at_rcpt = tg_strcasecmp(state, "RCPT") == 0;
	if (!at_rcpt && tg_strcasecmp(state, "END-OF-MESSAGE") != 0) {
		tg_buf_printf(note, " quota=skip(state)");
		return TG_OK;
	}
	/* Postfix sends recipient at END-OF-MESSAGE only when there is
	 * one: without it, key=rcpt_domain rules have nothing to count. */
	n = at_rcpt ? 1 : qt_count(req);
	if (n == 0) {
		tg_buf_printf(note, " quota=skip(no recipients)");
		return TG_OK;
	}
	rcpts = tg_calloc(n, sizeof(*rcpts));
	for (i = 0; i < n; i++)
		rcpts[i] = rcpt != NULL ? rcpt : "";
	memset(&qm, 0, sizeof(qm));
	qm.sasl_user = sasl != NULL && *sasl != '\0' ? sasl : NULL;
	qm.sender = pd_request_get(req, "sender");
	if (qm.sender == NULL)
		qm.sender = "";
	qm.client_addr = ip != NULL && *ip != '\0' &&
	    strcmp(ip, "unknown") != 0 ? ip : NULL;
	qm.outbound = qm.sasl_user != NULL || qm.client_addr == NULL ||
	    tg_netlist_match(qt_outbound, qm.client_addr);
	qm.rcpts = rcpts;
	qm.nrcpts = n;
	tg_quota_plan_make(qt_policy, &qm, &plan);
	if (plan.exempt)
		tg_buf_printf(note, " quota=exempt(%s)", plan.exempt_by);
	else if (plan.n == 0)
		tg_buf_printf(note, " quota=none mail=%s", qm.outbound ?
		    "outbound" : "inbound");
	else if (at_rcpt)
		qt_look(&plan, action, note);
	else
		qt_charge(&plan, action, note);
	tg_quota_plan_fini(&plan);
	free(rcpts);
	return TG_OK;
}

const struct pd_check pd_check_quota = {
	.name = "quota",
	.params = qt_params,
	.init = qt_init,
	.fini = qt_fini,
	.check = qt_check,
};
