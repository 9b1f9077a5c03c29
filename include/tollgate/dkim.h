/*
 * dkim.h - the DKIM module (RFC 6376, RFC 8463, RFC 8301): its module
 * descriptor and the verification results later modules read.
 *
 * Inbound mail is verified; every DKIM-Signature up to [dkim]
 * max_signatures gets one struct dkim_result.  Outbound mail (see
 * tg_ctx_outbound) whose From: domain has keys is signed instead, and has
 * no results.  DMARC reads the results through dkim_results().
 */
#ifndef TOLLGATE_DKIM_H
#define TOLLGATE_DKIM_H

#include <stddef.h>

#include "module.h"

/* RFC 8601 2.7.1 result of one signature. */
enum dkim_res {
	DKIM_RES_NONE = 0,	/* the message has no DKIM-Signature */
	DKIM_RES_PASS,		/* verified, acceptable algorithm and key */
	DKIM_RES_FAIL,		/* signature or body hash did not verify */
	DKIM_RES_NEUTRAL,	/* present but not evaluated */
	DKIM_RES_POLICY,	/* verified, but RFC 8301 forbids the
				 * algorithm (rsa-sha1) or the key size */
	DKIM_RES_TEMPERROR,	/* key lookup failed for now (timeout,
				 * SERVFAIL); never pass or fail */
	DKIM_RES_PERMERROR	/* malformed signature, no key (NXDOMAIN or
				 * no TXT), unusable key record, revoked */
};

/*
 * One signature's result.  Strings are borrowed from the message and stay
 * valid until its end.  domain, selector, algorithm and b_prefix are NULL
 * when the signature lacks them (or for DKIM_RES_NONE); b_prefix is the
 * first 12 characters of b= (RFC 6008 header.b); reason is a short text
 * for anything but pass and none, else NULL.
 */
struct dkim_result {
	enum dkim_res	 res;
	const char	*domain;	/* d=, lowercase */
	const char	*selector;	/* s= */
	const char	*algorithm;	/* a=: "rsa-sha256", "ed25519-sha256" */
	const char	*b_prefix;
	const char	*reason;
};

extern const struct tg_module tg_module_dkim;

/*
 * dkim_results - this message's verification results, in header order,
 * at or after end of message (DKIM runs its eom before DMARC's).  *out
 * points at an array owned by the message.  Returns the count: 0 when
 * the module did not verify (disabled, or outbound mail it signs), 1 with
 * DKIM_RES_NONE for an unsigned message.
 */
size_t		 dkim_results(struct tg_ctx *, const struct dkim_result **);

/* dkim_res_name - "none", "pass", "fail", ... (RFC 8601 names) */
const char	*dkim_res_name(enum dkim_res);

#endif
