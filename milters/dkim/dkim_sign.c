/*
 * dkim_sign - signing outbound mail with the From: domain's keys.
 *
 * The keys depend on the From: field, which may be any header, so the
 * headers of an outbound message are kept (they are bounded by the
 * pipeline's header limit) until eoh.  There we sign only if there is
 * exactly one From: field with one mailbox whose address the signing
 * table knows; otherwise the message goes out unsigned, which is logged
 * at info and never delays mail.  Each key gets its own libopendkim
 * handle fed the same headers and body chunks (a domain with an RSA and
 * an Ed25519 key gets two signatures); the body is streamed, never kept.
 * At eom each DKIM-Signature is prepended.  No l= is ever written.
 * Handles belong to the message and are freed by dkim_msg_release.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dkim_int.h"
#include "tollgate/log.h"

#define DKIM_SIGHDR_NAME	"DKIM-Signature"

/* dkim_msg_release - free the message's libopendkim handles */
void
dkim_msg_release(void *p)
{
	struct dkim_msg	*m = p;
	size_t		 i;

	dkim_prefetch_free(m->pf);
	m->pf = NULL;
	if (m->vh != NULL)
		(void)dkim_free(m->vh);
	m->vh = NULL;
	for (i = 0; i < m->nsigners; i++)
		if (m->signers[i].h != NULL)
			(void)dkim_free(m->signers[i].h);
	m->nsigners = 0;
	/* what libopendkim lost (Ed25519's signature buffer; dkim_mem.c) */
	if ((i = dkim_arena_release(&m->arena)) > 0)
		tg_log_debug(NULL, "dkim: freed %zu block(s) libopendkim "
		    "left", i);
	tg_buf_fini(&m->line);
	tg_buf_fini(&m->hdrs);
}

/* dkim_sign_feed - the kept headers and eoh into one handle */
static bool
dkim_sign_feed(struct tg_ctx *ctx, struct dkim_msg *m, DKIM *h)
{
	const char	*p = m->hdrs.data;
	DKIM_STAT	 st;
	size_t		 i, len;

	for (i = 0; i < m->nhdrs; i++, p += len + 1) {
		len = strlen(p);
		if ((st = dkim_header(h, (u_char *)p, len)) != DKIM_STAT_OK) {
			tg_log_warnx(ctx, "sign: header: %s",
			    dkim_getresultstr(st));
			return false;
		}
	}
	if ((st = dkim_eoh(h)) != DKIM_STAT_OK) {
		tg_log_warnx(ctx, "sign: eoh: %s: %s", dkim_getresultstr(st),
		    dkim_geterror(h) != NULL ? dkim_geterror(h) : "");
		return false;
	}
	return true;
}

/* dkim_sign_start - one handle per key, fed the headers */
static bool
dkim_sign_start(struct tg_ctx *ctx, struct dkim_msg *m,
    const struct dkim_runtime *rt, const struct dkim_signreq *req, size_t n)
{
	struct dkim_signing	*s;
	DKIM_STAT		 st;
	size_t			 i;

	for (i = 0; i < n; i++) {
		s = &m->signers[m->nsigners];
		s->req = req[i];
		s->h = dkim_sign(rt->lib, (const u_char *)tg_ctx_queue_id(ctx),
		    &m->arena, (dkim_sigkey_t)req[i].key->pem,
		    (const u_char *)req[i].selector,
		    (const u_char *)req[i].domain, rt->hcanon, rt->bcanon,
		    req[i].key->alg, -1, &st);
		if (s->h == NULL) {
			tg_log_errx(ctx, "sign: d=%s s=%s: %s", req[i].domain,
			    req[i].selector, dkim_getresultstr(st));
			return false;
		}
		m->nsigners++;
		if (req[i].ident != NULL && dkim_set_signer(s->h,
		    (const u_char *)req[i].ident) != DKIM_STAT_OK)
			return false;
		if (!dkim_sign_feed(ctx, m, s->h))
			return false;
	}
	return true;
}

/* dkim_sign_keys - the signatures the From: address gets; 0: none */
static size_t
dkim_sign_keys(struct tg_ctx *ctx, struct dkim_msg *m,
    const struct dkim_runtime *rt, struct dkim_signreq *req)
{
	struct tg_buf	 user, domain;
	const char	*why = NULL;
	size_t		 n = 0;

	tg_buf_init(&user);
	tg_buf_init(&domain);
	if (m->nfrom != 1)
		why = m->nfrom == 0 ? "no From field" : "several From fields";
	else if (dkim_addr_parse(m->from, &user, &domain, &why) &&
	    (n = dkim_keyring_lookup(rt->ring, tg_buf_cstr(&user),
	    tg_buf_cstr(&domain), req, DKIM_MAX_SIGNERS)) == 0)
		tg_log_info(ctx, "action=unsigned reason=\"no key for the "
		    "From domain\" domain=%s", tg_buf_cstr(&domain));
	if (why != NULL)
		tg_log_info(ctx, "action=unsigned reason=\"%s\"", why);
	tg_buf_fini(&user);
	tg_buf_fini(&domain);
	return n;
}

/* dkim_sign_eoh - decide and start signing */
enum tg_verdict
dkim_sign_eoh(struct tg_ctx *ctx, struct dkim_msg *m,
    const struct dkim_runtime *rt)
{
	struct dkim_signreq	req[DKIM_MAX_SIGNERS];
	size_t			n;
	bool			ok;

	if ((n = dkim_sign_keys(ctx, m, rt, req)) == 0) {
		tg_ctx_result(ctx, "unsigned");
		m->job = DKIM_JOB_NONE;
		tg_buf_fini(&m->hdrs);
		return TG_CONTINUE;
	}
	ok = dkim_sign_start(ctx, m, rt, req, n);
	tg_buf_fini(&m->hdrs);
	m->nhdrs = 0;
	if (!ok) {
		m->broken = true;
		dkim_msg_release(m);
		tg_ctx_result(ctx, "error");
		m->job = DKIM_JOB_NONE;
		return dkim_on_error(ctx, rt, "signing failed");
	}
	return TG_CONTINUE;
}

/* dkim_sign_body - one body chunk into every handle */
void
dkim_sign_body(struct tg_ctx *ctx, struct dkim_msg *m,
    const unsigned char *p, size_t len)
{
	DKIM_STAT	st;
	size_t		i;

	for (i = 0; i < m->nsigners && !m->broken; i++) {
		st = dkim_body(m->signers[i].h, (u_char *)p, len);
		if (st != DKIM_STAT_OK) {
			tg_log_errx(ctx, "sign: body: %s",
			    dkim_getresultstr(st));
			m->broken = true;
		}
	}
}

/* dkim_sign_header - one signer's DKIM-Signature, LF-folded for the MTA */
static bool
dkim_sign_header(struct tg_ctx *ctx, struct dkim_signing *s)
{
	u_char		*hdr = NULL;
	size_t		 len = 0;
	DKIM_STAT	 st;
	char		*v, *p, *q;

	if ((st = dkim_eom(s->h, NULL)) != DKIM_STAT_OK ||
	    (st = dkim_getsighdr_d(s->h, strlen(DKIM_SIGHDR_NAME ": "), &hdr,
	    &len)) != DKIM_STAT_OK || hdr == NULL) {
		tg_log_errx(ctx, "sign: d=%s s=%s: %s: %s", s->req.domain,
		    s->req.selector, dkim_getresultstr(st),
		    dkim_geterror(s->h) != NULL ? dkim_geterror(s->h) : "");
		return false;
	}
	/* libmilter takes LF line ends; the MTA writes its own. */
	v = tg_strndup((const char *)hdr, len);
	for (p = q = v; *p != '\0'; p++)
		if (*p != '\r')
			*q++ = *p;
	*q = '\0';
	tg_ctx_prepend_header(ctx, DKIM_SIGHDR_NAME, v);
	free(v);
	return true;
}

/* dkim_sign_eom - finish every signature and add the headers */
enum tg_verdict
dkim_sign_eom(struct tg_ctx *ctx, struct dkim_msg *m,
    const struct dkim_runtime *rt)
{
	struct tg_buf	sel, alg;
	size_t		i, done = 0;

	tg_buf_init(&sel);
	tg_buf_init(&alg);
	for (i = 0; i < m->nsigners && !m->broken; i++) {
		if (!dkim_sign_header(ctx, &m->signers[i]))
			continue;
		tg_buf_printf(&sel, "%s%s", done > 0 ? "," : "",
		    m->signers[i].req.selector);
		tg_buf_printf(&alg, "%s%s", done > 0 ? "," : "",
		    m->signers[i].req.key->alg_name);
		done++;
	}
	if (done > 0) {
		tg_log_info(ctx, "action=signed d=%s s=%s a=%s",
		    m->signers[0].req.domain, tg_buf_cstr(&sel),
		    tg_buf_cstr(&alg));
		tg_ctx_result(ctx, "signed:%s", m->signers[0].req.domain);
	}
	tg_buf_fini(&sel);
	tg_buf_fini(&alg);
	if (done == m->nsigners && !m->broken)
		return TG_CONTINUE;
	if (done == 0)
		tg_ctx_result(ctx, "error");
	return dkim_on_error(ctx, rt, "signing failed");
}
