/*
 * quota - the sending-quota check of tollgate-policyd: the quota rules
 * (quota.h, the same rules file format as the milter's ratelimit
 * module) on Postfix policy requests.
 *
 * At protocol_state RCPT the check only looks: it plans one recipient
 * of one message and answers DEFER_IF_PERMIT (or REJECT, as the rule
 * says) with the rule's text when a limit has no room for it, DUNNO
 * otherwise; nothing is reserved.  At END-OF-MESSAGE, when Postfix has
 * received the message and recipient_count is known, the check charges
 * every limit of the message (all or none) at once.  Mail
 * refused at RCPT or DATA, by this check or any other, never reaches
 * END-OF-MESSAGE and so costs nothing.  A rejection after
 * END-OF-MESSAGE (a milter, a later restriction) is not visible to the
 * policy protocol: such mail is charged.  Other states answer DUNNO.
 *
 * Store calls are asynchronous, each bounded by [store] timeout: a
 * request's plan lives in a struct qt_req from callback to callback,
 * and the loop serves other connections meanwhile.  At END-OF-MESSAGE
 * the limits are reserved one after another, as tg_quota_reserve does
 * (lib/quota_charge.c, same rules): the first that refuses, or fails
 * with on_error = tempfail, stops the message and every reservation
 * made for it is refunded before the answer, so the charge stays all or
 * nothing; a message that passes has all its reservations committed
 * before the answer, unless the client left before its answer (Postfix
 * then answered 451 itself): then they are refunded.  The last counter
 * of the plan is reserved with ttl 0, committed at once: when it is
 * admitted every earlier one was, so only those need a commit, and a
 * one-limit message costs one store call (one EVALSHA), not two.  A
 * refund takes a committed entry back too, so a later refusal or a
 * client gone still gives it back.  The price: a lost answer to that
 * last call costs its amount for the window, not for
 * QT_RESERVE_TTL_MS.  A store failure
 * does what the failing rule's on_error says; a local count (the store
 * on_error = local) counts only for an on_error = local rule.  Runs on
 * the event
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

/* How long an EOM reservation but the last may live before its
 * commit: it is committed in the same request, so this bounds only a
 * lost answer. */
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

static struct tg_store_async	*qt_astore;
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
	qt_astore = env->astore;
	return TG_OK;
}

/* qt_fini - release init's work */
static void
qt_fini(void)
{
	qt_policy = tg_quota_policy_unref(qt_policy);
	qt_outbound = tg_netlist_free(qt_outbound);
	qt_astore = NULL;
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
	/* who is the sender's or the client's text: quoted */
	tg_buf_printf(note, " quota=%s limit=%s", rej ? "reject" : "defer",
	    c->rule->name);
	pd_note_add(note, "key", c->who);
	tg_buf_printf(note, " used=%llu max=%llu source=%s",
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
	tg_buf_printf(note, " quota=tempfail limit=%s", rule);
	pd_note_add(note, "error", why);
}

/*
 * One request's quota work across store callbacks: the plan, the
 * charge being looked at or reserved, and the settlements (commits or
 * refunds) still to answer.  Freed by qt_finish.
 */
struct qt_req {
	struct pd_job		*job;
	const char		**rcpts;
	struct tg_quota_plan	 plan;
	struct tg_quota_result	 res;
	size_t			 i;		/* the charge at hand */
	size_t			 last;		/* the last counter; n: none */
	size_t			 settling;	/* answers still to come */
	size_t			 failed;	/* settlements that failed */
	bool			 committing;	/* else refunding */
	bool			 go_on;		/* past an unwanted count */
};

static void	qt_look_next(struct qt_req *);
static void	qt_reserve_next(struct qt_req *);

/* qt_finish - the check's answer; the request's state goes */
static void
qt_finish(struct qt_req *q)
{
	struct pd_job	*job = q->job;

	tg_quota_plan_fini(&q->plan);
	free(q->rcpts);
	free(q);
	pd_check_done(job, TG_OK);
}

/* qt_look_usage - one limit's usage: room, a refusal, or a failure */
static void
qt_look_usage(enum tg_status st, const struct tg_store_usage *u,
    const struct tg_err *err, void *arg)
{
	struct qt_req		*q = arg;
	struct tg_quota_charge	*c = &q->plan.v[q->i];
	struct tg_buf		*note = &q->job->note;

	if (st != TG_OK) {
		if (c->rule->on_error == TG_QUOTA_ON_ERROR_ACCEPT) {
			tg_buf_printf(note, " store=failed");
			q->i++;
			qt_look_next(q);
			return;
		}
		qt_store_failed(c->rule->name, err->text, &q->job->action,
		    note);
		qt_finish(q);
		return;
	}
	/* A local count the rule does not trust is a store failure. */
	if (u->approximate && c->rule->on_error != TG_QUOTA_ON_ERROR_LOCAL) {
		if (c->rule->on_error == TG_QUOTA_ON_ERROR_ACCEPT) {
			tg_buf_printf(note, " store=failed");
			q->i++;
			qt_look_next(q);
			return;
		}
		qt_store_failed(c->rule->name, "store failing, local count "
		    "not wanted", &q->job->action, note);
		qt_finish(q);
		return;
	}
	c->used = u->used;
	if (u->remaining < c->amount) {
		if (!c->rule->shadow) {
			qt_refuse(c, u->frees_in_ms == 0 ? c->rule->window_ms :
			    u->frees_in_ms, true, &q->job->action, note);
			qt_finish(q);
			return;
		}
		tg_buf_printf(note, " shadow=%s", c->rule->name);
	}
	q->i++;
	qt_look_next(q);
}

/* qt_look_next - RCPT: does the next limit have room for the plan? */
static void
qt_look_next(struct qt_req *q)
{
	struct tg_quota_charge	*c;
	struct tg_buf		*note = &q->job->note;

	for (; q->i < q->plan.n; q->i++) {
		c = &q->plan.v[q->i];
		if (c->rule->window_ms != 0) {
			tg_store_async_usage(qt_astore, c->key,
			    c->rule->window_ms, c->max, qt_look_usage, q);
			return;
		}
		/* A per-message cap: no counter. */
		c->used = 0;
		if (c->max >= c->amount)
			continue;
		if (c->rule->shadow) {
			tg_buf_printf(note, " shadow=%s", c->rule->name);
			continue;
		}
		qt_refuse(c, 0, true, &q->job->action, note);
		qt_finish(q);
		return;
	}
	tg_buf_printf(note, " quota=room limits=%zu", q->plan.n);
	qt_finish(q);
}

/* qt_charged - END-OF-MESSAGE settled: the outcome in action and note */
static void
qt_charged(struct qt_req *q)
{
	const struct tg_quota_charge	*c;
	struct tg_quota_result		*res = &q->res;
	struct tg_buf			*note = &q->job->note;

	if (res->shadow_hit != NULL)
		tg_buf_printf(note, " shadow=%s", res->shadow_hit->rule->name);
	if (res->outcome == TG_QUOTA_OVER) {
		qt_refuse(res->hit, res->retry_after_ms, false,
		    &q->job->action, note);
		return;
	}
	if (res->outcome == TG_QUOTA_STORE_ERROR) {
		qt_store_failed(res->hit->rule->name, res->error,
		    &q->job->action, note);
		return;
	}
	if (q->failed > 0)
		tg_buf_printf(note, " commit_failed=%zu", q->failed);
	if (res->store_failed)
		tg_buf_printf(note, " store=failed");
	if ((c = res->tightest) == NULL) {
		tg_buf_printf(note, " quota=ok limits=%zu", q->plan.n);
		return;
	}
	tg_buf_printf(note, " quota=ok limits=%zu tightest=%s used=%llu/%llu%s",
	    q->plan.n, c->rule->name, (unsigned long long)c->used,
	    (unsigned long long)c->max, res->approximate ?
	    " approximate=yes" : "");
}

/* qt_settled - one commit's or refund's answer; the last one finishes */
static void
qt_settled(enum tg_status st, const struct tg_err *err, void *arg)
{
	struct qt_req	*q = arg;

	(void)err;
	/* A refund of a lapsed reservation is no failure: nothing counts. */
	if (st != TG_OK && (q->committing || st != TG_NOTFOUND))
		q->failed++;
	if (--q->settling > 0)
		return;
	qt_charged(q);
	qt_finish(q);
}

/* qt_to_settle - whether charge i waits for a commit or a refund: the
 * last counter needs no commit, it was committed at once */
static bool
qt_to_settle(const struct qt_req *q, size_t i, bool commit)
{
	return q->plan.v[i].reserved && !(commit && i == q->last);
}

/*
 * qt_settle - commit (the message passed) or refund (it did not) every
 * reserved charge; all at once, finished when the last one answers
 */
static void
qt_settle(struct qt_req *q, bool commit)
{
	struct tg_quota_charge	*c;
	size_t			 i, n = 0;

	/* A client gone before its answer: Postfix did not take the
	 * mail (its policy timeout answered 451), so nothing is charged. */
	if (commit && q->job->client_gone) {
		tg_buf_printf(&q->job->note, " refunded=client_gone");
		commit = false;
	}
	q->committing = commit;
	for (i = 0; i < q->plan.n; i++)
		n += qt_to_settle(q, i, commit);
	if (n == 0) {
		qt_charged(q);
		qt_finish(q);
		return;
	}
	/* Counted first: a callback may not come before the last start. */
	q->settling = n;
	for (i = 0; i < q->plan.n; i++) {
		c = &q->plan.v[i];
		if (!qt_to_settle(q, i, commit))
			continue;
		c->reserved = false;
		if (commit)
			tg_store_async_commit(qt_astore, c->key, c->id,
			    qt_settled, q);
		else
			tg_store_async_refund(qt_astore, c->key, c->id,
			    qt_settled, q);
	}
}

/* qt_tightest - c passed: remember the limit with the least room */
static void
qt_tightest(struct qt_req *q, const struct tg_quota_charge *c)
{
	uint64_t	left = c->used >= c->max ? 0 : c->max - c->used;
	uint64_t	best;

	if (c->rule->shadow)
		return;
	best = q->res.tightest == NULL ? UINT64_MAX :
	    q->res.tightest->used >= q->res.tightest->max ? 0 :
	    q->res.tightest->max - q->res.tightest->used;
	if (left < best)
		q->res.tightest = c;
}

/* qt_reserved_next - after a charge's answer: the next one, or settle */
static void
qt_reserved_next(struct qt_req *q)
{
	if (!q->go_on) {
		qt_settle(q, false);
		return;
	}
	qt_tightest(q, &q->plan.v[q->i]);
	q->i++;
	qt_reserve_next(q);
}

/* qt_dropped - an unwanted local count is back: go on as answered */
static void
qt_dropped(enum tg_status st, const struct tg_err *err, void *arg)
{
	(void)st;
	(void)err;
	qt_reserved_next(arg);
}

/* qt_reserved - a reservation's callback: the next one, or settle */
static void
qt_reserved(enum tg_status st, const struct tg_store_quota *sq,
    const struct tg_err *err, void *arg)
{
	struct qt_req		*q = arg;
	struct tg_quota_charge	*c = &q->plan.v[q->i];

	/* the rules of tg_quota_reserve (lib/quota_charge.c); a refusal
	 * or a failure to tempfail refunds what was reserved */
	q->go_on = tg_quota_reserve_answer(c, st, sq, st == TG_OK ? NULL :
	    err->text, &q->res);
	/* A local count the rule does not want goes back now, even when
	 * on_error = accept lets the message go on. */
	if (tg_quota_local_unwanted(c)) {
		c->reserved = false;
		tg_store_async_refund(qt_astore, c->key, c->id, qt_dropped, q);
		return;
	}
	qt_reserved_next(q);
}

/* qt_reserve_next - END-OF-MESSAGE: reserve the charges one by one */
static void
qt_reserve_next(struct qt_req *q)
{
	struct tg_quota_charge	*c;

	for (; q->i < q->plan.n; q->i++) {
		c = &q->plan.v[q->i];
		if (c->rule->key != TG_QUOTA_KEY_MESSAGE) {
			tg_store_async_reserve(qt_astore, c->key,
			    c->rule->window_ms, c->max, c->amount,
			    q->i == q->last ? 0 : QT_RESERVE_TTL_MS,
			    qt_reserved, q);
			return;
		}
		/* A per-message cap: no counter. */
		c->used = c->amount;
		if (c->amount > c->max && !c->rule->shadow) {
			q->res.outcome = TG_QUOTA_OVER;
			q->res.hit = c;
			q->res.retry_after_ms = 0;
			qt_settle(q, false);
			return;
		}
		if (c->amount > c->max && q->res.shadow_hit == NULL)
			q->res.shadow_hit = c;
		qt_tightest(q, c);
	}
	qt_settle(q, true);
}

/* qt_last_counter - the index of the plan's last counter, n if none */
static size_t
qt_last_counter(const struct tg_quota_plan *plan)
{
	size_t	i;

	for (i = plan->n; i > 0; i--)
		if (plan->v[i - 1].rule->key != TG_QUOTA_KEY_MESSAGE)
			return i - 1;
	return plan->n;
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

/* qt_start - the check hook: plan, then look (RCPT) or charge (EOM) */
static void
qt_start(struct pd_job *job)
{
	const struct pd_request	*req = job->req;
	const char		*state = pd_request_get(req, "protocol_state");
	const char		*sasl = pd_request_get(req, "sasl_username");
	const char		*ip = pd_request_get(req, "client_address");
	const char		*rcpt = pd_request_get(req, "recipient");
	struct tg_quota_msg	 qm;
	struct qt_req		*q;
	bool			 at_rcpt;
	size_t			 i, n;

	if (state == NULL)
		state = "";
	at_rcpt = tg_strcasecmp(state, "RCPT") == 0;
	if (!at_rcpt && tg_strcasecmp(state, "END-OF-MESSAGE") != 0) {
		tg_buf_printf(&job->note, " quota=skip(state)");
		pd_check_done(job, TG_OK);
		return;
	}
	/* Postfix sends recipient at END-OF-MESSAGE only when there is
	 * one: without it, key=rcpt_domain rules have nothing to count. */
	n = at_rcpt ? 1 : qt_count(req);
	if (n == 0) {
		tg_buf_printf(&job->note, " quota=skip(no recipients)");
		pd_check_done(job, TG_OK);
		return;
	}
	q = tg_calloc(1, sizeof(*q));
	q->job = job;
	q->rcpts = tg_calloc(n, sizeof(*q->rcpts));
	for (i = 0; i < n; i++)
		q->rcpts[i] = rcpt != NULL ? rcpt : "";
	memset(&qm, 0, sizeof(qm));
	qm.sasl_user = sasl != NULL && *sasl != '\0' ? sasl : NULL;
	qm.sender = pd_request_get(req, "sender");
	if (qm.sender == NULL)
		qm.sender = "";
	qm.client_addr = ip != NULL && *ip != '\0' &&
	    strcmp(ip, "unknown") != 0 ? ip : NULL;
	qm.outbound = qm.sasl_user != NULL || qm.client_addr == NULL ||
	    tg_netlist_match(qt_outbound, qm.client_addr);
	qm.rcpts = q->rcpts;
	qm.nrcpts = n;
	tg_quota_plan_make(qt_policy, &qm, &q->plan);
	if (q->plan.exempt) {
		tg_buf_printf(&job->note, " quota=exempt(%s)",
		    q->plan.exempt_by);
		qt_finish(q);
	} else if (q->plan.n == 0) {
		tg_buf_printf(&job->note, " quota=none mail=%s", qm.outbound ?
		    "outbound" : "inbound");
		qt_finish(q);
	} else if (at_rcpt)
		qt_look_next(q);
	else {
		q->last = qt_last_counter(&q->plan);
		qt_reserve_next(q);
	}
}

const struct pd_check pd_check_quota = {
	.name = "quota",
	.params = qt_params,
	.init = qt_init,
	.fini = qt_fini,
	.start = qt_start,
};
