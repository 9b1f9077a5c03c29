/*
 * dmarc.h - the DMARC module (RFC 9989, and RFC 7489 records): its module
 * descriptor and the result later modules (spam scoring) read.
 *
 * At end of message, after DKIM, the module finds the RFC5322.From
 * domain, fetches its DMARC policy through tollgate's resolver (PSL or
 * DNS tree walk for the organizational domain), checks SPF and DKIM
 * alignment with the results those modules recorded, applies [dmarc]
 * policy and records the message for aggregate reports.
 */
#ifndef TOLLGATE_DMARC_H
#define TOLLGATE_DMARC_H

#include <stdbool.h>

#include "module.h"

extern const struct tg_module tg_module_dmarc;

/* RFC 8601 2.7.1 / RFC 9989 result. */
enum dmarc_res {
	DMARC_RES_NONE = 0,	/* no policy record, or not evaluated */
	DMARC_RES_PASS,		/* aligned SPF or DKIM pass */
	DMARC_RES_FAIL,
	DMARC_RES_TEMPERROR,	/* the policy lookup failed for now, or an
				 * identifier that would align had a
				 * temporary SPF or DKIM error */
	DMARC_RES_PERMERROR	/* no author domain, or unusable record */
};

/* A policy (p=, sp=, np=) or what was done (the disposition). */
enum dmarc_policy {
	DMARC_POLICY_NONE = 0,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT
};

/*
 * This message's DMARC result.  Strings are borrowed until the end of
 * the message; NULL when unknown.
 *   evaluated      false when the module did not evaluate (disabled,
 *                  outbound mail, a skipped client): the rest is zero
 *   header_from    the RFC5322.From author domain whose outcome
 *                  decided: with several, the strictest one's
 *   policy_domain  the domain whose record applied (the From domain or
 *                  its organizational domain)
 *   policy         the policy that applied to this From domain
 *   disposition    what the module did about it, after pct sampling and
 *                  local overrides
 */
struct dmarc_result {
	bool			 evaluated;
	enum dmarc_res		 res;
	const char		*header_from;
	const char		*policy_domain;
	enum dmarc_policy	 policy;
	enum dmarc_policy	 disposition;
	bool			 dkim_aligned;
	bool			 spf_aligned;
};

/* dmarc_msg_result - the result, at or after DMARC's eom */
void		 dmarc_msg_result(struct tg_ctx *, struct dmarc_result *);

/* dmarc_res_name, dmarc_policy_name - RFC 8601 / RFC 9990 names */
const char	*dmarc_res_name(enum dmarc_res);
const char	*dmarc_policy_name(enum dmarc_policy);

#endif
