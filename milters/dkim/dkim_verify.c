/*
 * dkim_verify - what one verified signature means, in RFC 8601 words.
 *
 * After dkim_eom, libopendkim has marked each signature passed or not and
 * given failed ones a DKIM_SIGERROR code.  We map them:
 *
 *   passed, body hash matches         pass, unless RFC 8301 forbids it:
 *     a=rsa-sha1                        policy "rsa-sha1 not allowed"
 *     RSA key under min_key_bits        policy "key too small"
 *     d= not a domain name              permerror "invalid d="
 *   signature or body hash mismatch   fail
 *   key query failed (timeout,        temperror: never pass or fail
 *     SERVFAIL, resolver error)
 *   no key (NXDOMAIN, NODATA)         permerror "no key"
 *   anything else (malformed tags,    permerror with libopendkim's reason
 *     bad or revoked key record)
 *   not evaluated                     neutral
 *
 * RFC 8301 choice: a signature that verifies with a forbidden algorithm or
 * a short key gets "policy" (RFC 8601 2.7.1: signed, but not acceptable
 * to the ADMD), not "fail", so that the log and the header say the
 * cryptography held and our policy refused it; DMARC treats both as not
 * pass.  libopendkim's own key-size floor is lowered to 0 so the signature
 * is still checked and we can tell policy from fail.  Thread-safe.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dkim_int.h"
#include "tollgate/authres.h"
#include "tollgate/buf.h"
#include "tollgate/module.h"

#define DKIM_B_PREFIX	12	/* RFC 6008 3: at least 8 characters */

static const char *const dkim_res_names[] = {
	"none", "pass", "fail", "neutral", "policy", "temperror", "permerror"
};

/* dkim_res_name - RFC 8601 name of a result */
const char *
dkim_res_name(enum dkim_res r)
{
	if ((size_t)r >= TG_NITEMS(dkim_res_names))
		TG_PANIC("bad dkim result %d", (int)r);
	return dkim_res_names[r];
}

/* dkim_verify_tag - a signature tag value copied to the message, or NULL */
static const char *
dkim_verify_tag(struct tg_ctx *ctx, DKIM_SIGINFO *sig, const char *tag,
    bool lower)
{
	const unsigned char	*v;
	char			*s, *p;

	v = dkim_sig_gettagvalue(sig, 0, (u_char *)tag);
	if (v == NULL || *v == '\0')
		return NULL;
	s = tg_ctx_strdup(ctx, (const char *)v);
	for (p = s; lower && *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

/* dkim_verify_bprefix - the start of b=, folding white space removed */
static const char *
dkim_verify_bprefix(struct tg_ctx *ctx, DKIM_SIGINFO *sig)
{
	const unsigned char	*v;
	char			 out[DKIM_B_PREFIX + 1];
	size_t			 n = 0;

	v = dkim_sig_gettagvalue(sig, 0, (u_char *)"b");
	for (; v != NULL && *v != '\0' && n < DKIM_B_PREFIX; v++)
		if (strchr(" \t\r\n", *v) == NULL)
			out[n++] = (char)*v;
	out[n] = '\0';
	return n > 0 ? tg_ctx_strdup(ctx, out) : NULL;
}

/* dkim_verify_passed - RFC 8301 and d= checks on a verified signature */
static void
dkim_verify_passed(struct tg_ctx *ctx, DKIM_SIGINFO *sig, long min_bits,
    struct dkim_result *r)
{
	dkim_alg_t	alg = DKIM_SIGN_UNKNOWN;
	unsigned int	bits = 0;
	char		why[64];

	(void)dkim_sig_getsignalg(sig, &alg);
	(void)dkim_sig_getkeysize(sig, &bits);
	r->res = DKIM_RES_POLICY;
	if (alg == DKIM_SIGN_RSASHA1)
		r->reason = "rsa-sha1 not allowed (RFC 8301)";
	else if (alg != DKIM_SIGN_ED25519SHA256 && (long)bits < min_bits) {
		(void)snprintf(why, sizeof(why), "key too small: %u bits "
		    "(RFC 8301)", bits);
		r->reason = tg_ctx_strdup(ctx, why);
	}
	else if (r->domain == NULL || !dkim_domain_ok(r->domain)) {
		r->res = DKIM_RES_PERMERROR;
		r->reason = "invalid d=";
	} else {
		r->res = DKIM_RES_PASS;
		r->reason = NULL;
	}
}

/* dkim_verify_error - the result of a signature that did not verify */
static void
dkim_verify_error(DKIM_SIGINFO *sig, struct dkim_result *r)
{
	int	err = dkim_sig_geterror(sig);

	/* libopendkim says BADSIG for a body hash mismatch too. */
	if (dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH) {
		r->res = DKIM_RES_FAIL;
		r->reason = "body hash mismatch";
		return;
	}
	switch (err) {
	case DKIM_SIGERROR_BADSIG:
		r->res = DKIM_RES_FAIL;
		r->reason = "signature verification failed";
		return;
	case DKIM_SIGERROR_KEYFAIL:
		r->res = DKIM_RES_TEMPERROR;
		r->reason = "key query failed";
		return;
	case DKIM_SIGERROR_NOKEY:
		r->res = DKIM_RES_PERMERROR;
		r->reason = "no key";
		return;
	case DKIM_SIGERROR_OK:
		r->res = DKIM_RES_NEUTRAL;
		r->reason = "not evaluated";
		return;
	default:
		r->res = DKIM_RES_PERMERROR;
		r->reason = dkim_sig_geterrorstr(err);
		if (r->reason == NULL)
			r->reason = "invalid signature";
		return;
	}
}

/* dkim_verify_sig - one signature's result */
void
dkim_verify_sig(struct tg_ctx *ctx, DKIM_SIGINFO *sig, long min_bits,
    struct dkim_result *r)
{
	unsigned int	flags = dkim_sig_getflags(sig);

	memset(r, 0, sizeof(*r));
	r->domain = dkim_verify_tag(ctx, sig, "d", true);
	r->selector = dkim_verify_tag(ctx, sig, "s", false);
	r->algorithm = dkim_verify_tag(ctx, sig, "a", true);
	r->b_prefix = dkim_verify_bprefix(ctx, sig);
	if ((flags & DKIM_SIGFLAG_PASSED) != 0 &&
	    dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH)
		dkim_verify_passed(ctx, sig, min_bits, r);
	else
		dkim_verify_error(sig, r);
}

/* dkim_ar_prop - " name=value", quoted unless value is a plain token */
static void
dkim_ar_prop(struct tg_buf *b, const char *name, const char *value,
    bool quote)
{
	const char	*p;

	if (value == NULL)
		return;
	if (!quote && tg_authres_value_ok(value)) {
		tg_buf_printf(b, " %s=%s", name, value);
		return;
	}
	tg_buf_printf(b, " %s=\"", name);
	for (p = value; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			continue;
		if (*p == '"' || *p == '\\')
			tg_buf_putc(b, '\\');
		tg_buf_putc(b, *p);
	}
	tg_buf_putc(b, '"');
}

/* dkim_verify_authres - "dkim=fail reason=... header.d=..." */
void
dkim_verify_authres(struct tg_ctx *ctx, const struct dkim_result *r)
{
	struct tg_buf	b;

	tg_buf_init(&b);
	tg_buf_printf(&b, "dkim=%s", dkim_res_name(r->res));
	dkim_ar_prop(&b, "reason", r->reason, true);
	dkim_ar_prop(&b, "header.d", r->domain, false);
	dkim_ar_prop(&b, "header.s", r->selector, false);
	dkim_ar_prop(&b, "header.a", r->algorithm, false);
	dkim_ar_prop(&b, "header.b", r->b_prefix, false);
	tg_ctx_authres(ctx, "%s", tg_buf_cstr(&b));
	tg_buf_fini(&b);
}
