/*
 * quota.h - sending quota rules, the tenant table, and charging a
 * message against the store: shared by tollgate-milter's ratelimit
 * module and tollgate-policyd.
 *
 * A rules file holds "limit" lines (what is counted, per what key, over
 * which window, how much, what to do when it is exceeded) and names a
 * table file of per-tenant and per-mailbox overrides and exemptions.
 * Both are parsed at start-up into one immutable struct tg_quota_policy
 * with errors at file:line.  A policy is shared read-only by every
 * thread; tg_quota_policy_ref / _unref let a reload swap in a new one
 * while messages still use the old one.
 *
 * Charging a message is: tg_quota_plan (which counters, how much, at
 * what limit: no I/O), tg_quota_reserve (reserve every counter or none),
 * then tg_quota_commit when the message is accepted or tg_quota_refund
 * when it is not.  A reservation neither committed nor refunded lapses
 * in the store after its ttl.
 */
#ifndef TOLLGATE_QUOTA_H
#define TOLLGATE_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

#define TG_QUOTA_NAME_MAX	32	/* with the NUL */

enum tg_quota_count { TG_QUOTA_MESSAGES = 0, TG_QUOTA_RECIPIENTS };
enum tg_quota_key {
	TG_QUOTA_KEY_SASL = 0,		/* sasl_username */
	TG_QUOTA_KEY_SENDER,		/* envelope sender address */
	TG_QUOTA_KEY_SENDER_DOMAIN,	/* the tenant */
	TG_QUOTA_KEY_CLIENT_IP,		/* client address or its prefix */
	TG_QUOTA_KEY_RCPT_DOMAIN,	/* each recipient domain */
	TG_QUOTA_KEY_MESSAGE		/* each message: a per-message cap */
};
enum tg_quota_action { TG_QUOTA_DEFER = 0, TG_QUOTA_REJECT };
enum tg_quota_on_error {
	TG_QUOTA_ON_ERROR_ACCEPT = 0,
	TG_QUOTA_ON_ERROR_TEMPFAIL,
	TG_QUOTA_ON_ERROR_LOCAL		/* take the store's local count */
};
enum tg_quota_dir { TG_QUOTA_OUTBOUND = 0, TG_QUOTA_INBOUND, TG_QUOTA_ANY };

struct tg_quota_rule {
	char			 name[TG_QUOTA_NAME_MAX];
	enum tg_quota_count	 count;
	enum tg_quota_key	 key;
	uint64_t		 window_ms;	/* 0 for key=message */
	uint64_t		 max;		/* default limit */
	enum tg_quota_action	 action;
	enum tg_quota_on_error	 on_error;
	enum tg_quota_dir	 dir;
	bool			 shadow;	/* log only */
	int			 prefix4;	/* key=client_ip: 1..32 */
	int			 prefix6;	/* 1..128 */
};

struct tg_quota_policy;

/*
 * tg_quota_policy_load - parse the rules file (and the table file it
 * names, relative paths taken from the rules file's directory).  NULL
 * with err "file:line: what" on any error.  extra_exempt: more exempt
 * entries, space-separated (from the module's config), may be NULL.
 */
struct tg_quota_policy *tg_quota_policy_load(const char *rules_path,
		    const char *extra_exempt, struct tg_err *);
/* tg_quota_policy_parse - the same from text, named label (tests) */
struct tg_quota_policy *tg_quota_policy_parse(const char *text,
		    const char *label, const char *extra_exempt,
		    struct tg_err *);
/* tg_quota_policy_ref - one more user; returns its argument */
struct tg_quota_policy *tg_quota_policy_ref(struct tg_quota_policy *);
/* tg_quota_policy_unref - one user less; frees with the last; NULL */
struct tg_quota_policy *tg_quota_policy_unref(struct tg_quota_policy *);
size_t		 tg_quota_policy_nrules(const struct tg_quota_policy *);
const struct tg_quota_rule *tg_quota_policy_rule(
		    const struct tg_quota_policy *, size_t);

/* What a message brings; strings are borrowed for the call. */
struct tg_quota_msg {
	const char		*sasl_user;	/* NULL: not authenticated */
	const char		*sender;	/* "a@b", "<a@b>", "" */
	const char		*client_addr;	/* NULL: local */
	bool			 outbound;
	const char *const	*rcpts;		/* "<a@b>" or "a@b" */
	size_t			 nrcpts;
};

/* One counter to charge, as tg_quota_plan fills it. */
struct tg_quota_charge {
	const struct tg_quota_rule *rule;	/* in the policy */
	char		 key[TG_STORE_KEY_MAX + 1];	/* store key */
	char		 who[TG_STORE_KEY_MAX + 1];	/* for the log */
	uint64_t	 amount;
	uint64_t	 max;		/* after overrides */
	const char	*source;	/* "rule", "tenant", "mailbox" */
	/* filled by tg_quota_reserve */
	bool		 reserved;	/* holds reservation id */
	uint64_t	 id;
	uint64_t	 used;
	bool		 approximate;
};

struct tg_quota_plan {
	bool			 exempt;	/* nothing to charge */
	const char		*exempt_by;	/* the matching entry */
	struct tg_quota_charge	*v;
	size_t			 n;
};

/*
 * tg_quota_plan_make - the counters a message charges (the caller frees
 * plan->v with free()); rules that do not apply (direction, no SASL
 * user, no client address) are left out.
 */
void		tg_quota_plan_make(const struct tg_quota_policy *,
		    const struct tg_quota_msg *, struct tg_quota_plan *);
void		tg_quota_plan_fini(struct tg_quota_plan *);

enum tg_quota_outcome {
	TG_QUOTA_PASS = 0,	/* every counter reserved (or shadowed) */
	TG_QUOTA_OVER,		/* a limit refused: see hit */
	TG_QUOTA_STORE_ERROR	/* a rule with on_error tempfail failed */
};

struct tg_quota_result {
	enum tg_quota_outcome	 outcome;
	const struct tg_quota_charge *hit;	/* OVER, STORE_ERROR */
	uint64_t		 retry_after_ms;	/* OVER */
	/* logged by the caller: */
	const struct tg_quota_charge *shadow_hit;	/* first one */
	uint64_t		 shadow_retry_ms;
	const struct tg_quota_charge *tightest;	/* least remaining */
	bool			 store_failed;	/* some rule, any on_error */
	bool			 approximate;
	char			 error[512];	/* the store's, if failed */
};

/*
 * tg_quota_reserve - reserve every charge of the plan against the
 * store, all or nothing: when one limit refuses (and is not shadow) or
 * a store failure is to tempfail, the charges already reserved are
 * refunded and res says why.  Shadow rules are reserved like the others
 * when they fit (so the shadow count is real) and only noted when not.
 */
void		tg_quota_reserve(struct tg_store *, struct tg_quota_plan *,
		    uint64_t ttl_ms, struct tg_quota_result *);
/*
 * tg_quota_reserve_answer - the rules of tg_quota_reserve for one
 * charge's reservation, for a caller that reserves asynchronously
 * (policyd): st, q and why (the error text when st is not TG_OK) are
 * the store's answer.  Fills c and res; false when the message stops
 * here.  c stays reserved when the store admitted it, so the caller's
 * refund of the plan gives it back.  When it returns with
 * tg_quota_local_unwanted(c) true the caller refunds c at once, even
 * when the message goes on (on_error = accept), as tg_quota_reserve
 * does: that count is never committed.
 */
bool		tg_quota_reserve_answer(struct tg_quota_charge *c,
		    enum tg_status st, const struct tg_store_quota *q,
		    const char *why, struct tg_quota_result *res);
/* tg_quota_local_unwanted - c holds a local (approximate) count its
 * rule does not trust (on_error is not local) */
bool		tg_quota_local_unwanted(const struct tg_quota_charge *c);
/*
 * tg_quota_commit, tg_quota_refund - settle every reserved charge;
 * the number of store failures (the reservations lapse on their own).
 */
size_t		tg_quota_commit(struct tg_store *, struct tg_quota_plan *);
size_t		tg_quota_refund(struct tg_store *, struct tg_quota_plan *);

/* tg_quota_reply - the SMTP text for a refusal: which limit, when */
void		tg_quota_reply(const struct tg_quota_charge *,
		    uint64_t retry_after_ms, char *, size_t);
/* tg_quota_duration - "90s", "15m", "2h", "1d" for a window */
void		tg_quota_duration(uint64_t ms, char *, size_t);

#endif
