/*
 * dkim - the DKIM module: signs outbound mail, verifies inbound mail.
 *
 * At MAIL FROM the module picks the job: outbound mail (authenticated or
 * from internal_networks, tg_ctx_outbound) is signed when its From:
 * domain has keys (dkim_sign.c), every other message is verified.  For
 * verification each header goes to libopendkim as "Name:value" (the
 * value keeps its leading space and CRLF folding), then eoh, the body in
 * the chunks the MTA sends (never buffered), and eom.  The key of each
 * DKIM-Signature is queried as soon as its header arrives, all in
 * parallel (dkim_prefetch.c).  Each signature, up to max_signatures,
 * becomes a struct dkim_result, one Authentication-Results resinfo and
 * part of the decision line ("pass,fail", "none"); dkim_verify.c says
 * what each outcome means.  Mail we cannot judge because libopendkim
 * or DNS failed (temperror with no passing signature) gets on_error:
 * accept (default) or tempfail.
 *
 * libopendkim is set up once in init (one DKIM_LIB, options, our
 * resolver) and only read afterwards; every message has its own DKIM
 * handles, freed through tg_ctx_defer at the end of the message or at
 * once by abort.  There is no lock: libmilter threads share only
 * read-only data.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim_int.h"
#include "tollgate/conf.h"
#include "tollgate/log.h"

#define DKIM_SIGHDR	"DKIM-Signature"

/* The [dkim] section, as loaded. */
static struct {
	char	*key_table;
	char	*signing_table;
	char	*keys;
	char	*canonicalization;
	char	*sign_headers;
	char	*oversign_headers;
	long	 max_signatures;
	long	 min_key_bits;
	bool	 sign;
	bool	 verify;
	int	 on_error;
} dkim_conf;

static const struct tg_param dkim_params[] = {
	TG_PARAM_BOOL("sign", "yes", &dkim_conf.sign,
	    "sign outbound mail whose From: domain has keys"),
	TG_PARAM_BOOL("verify", "yes", &dkim_conf.verify,
	    "verify the DKIM signatures of inbound mail"),
	TG_PARAM_STRING("keys", "", &dkim_conf.keys,
	    "inline keys: domain:selector:/path/key, space-separated"),
	TG_PARAM_STRING("key_table", "", &dkim_conf.key_table,
	    "OpenDKIM KeyTable: keyname domain:selector:/path/key"),
	TG_PARAM_STRING("signing_table", "", &dkim_conf.signing_table,
	    "OpenDKIM SigningTable: pattern keyname; refile:/path for globs"),
	TG_PARAM_STRING("canonicalization", "relaxed/relaxed",
	    &dkim_conf.canonicalization,
	    "header/body canonicalization: relaxed or simple"),
	TG_PARAM_STRING("sign_headers", "from reply-to subject date to cc "
	    "resent-date resent-from resent-to resent-cc in-reply-to "
	    "references list-id list-help list-unsubscribe list-subscribe "
	    "list-post list-owner list-archive message-id mime-version "
	    "content-type content-transfer-encoding", &dkim_conf.sign_headers,
	    "header fields signed when present (RFC 6376 5.4)"),
	TG_PARAM_STRING("oversign_headers", "from reply-to subject date to cc "
	    "message-id in-reply-to references mime-version content-type "
	    "content-transfer-encoding", &dkim_conf.oversign_headers,
	    "fields listed once more so none can be added (RFC 6376 8.15)"),
	TG_PARAM_LONG("max_signatures", "10", &dkim_conf.max_signatures, 1,
	    100, "most signatures verified per message"),
	TG_PARAM_LONG("min_key_bits", "1024", &dkim_conf.min_key_bits, 512,
	    16384, "smallest RSA key that signs or passes (RFC 8301)"),
	TG_PARAM_ENUM("on_error", "accept", &dkim_conf.on_error,
	    tg_on_error_names, "mail we cannot judge: accept or tempfail"),
	TG_PARAM_END
};

static struct dkim_runtime	 dkim_rt;
static char			**dkim_sign_list, **dkim_oversign_list;

static enum tg_status	dkim_mod_init(const struct tg_env *, struct tg_err *);
static void		dkim_mod_fini(void);
static enum tg_verdict	dkim_envfrom(struct tg_ctx *, const char *);
static enum tg_verdict	dkim_header_hook(struct tg_ctx *, const char *,
			    const char *);
static enum tg_verdict	dkim_eoh_hook(struct tg_ctx *);
static enum tg_verdict	dkim_body_hook(struct tg_ctx *, const unsigned char *,
			    size_t);
static enum tg_verdict	dkim_eom_hook(struct tg_ctx *);
static void		dkim_abort(struct tg_ctx *);

const struct tg_module tg_module_dkim = {
	.name = "dkim",
	.abi = TG_MODULE_ABI,
	.params = dkim_params,
	.msg_state_size = sizeof(struct dkim_msg),
	.init = dkim_mod_init,
	.fini = dkim_mod_fini,
	.envfrom = dkim_envfrom,
	.header = dkim_header_hook,
	.eoh = dkim_eoh_hook,
	.body = dkim_body_hook,
	.eom = dkim_eom_hook,
	.abort = dkim_abort,
};

/* dkim_words - a NULL-terminated lowercase list of header names */
static char **
dkim_words(const char *text, const char *what, bool need_from,
    struct tg_err *err)
{
	char		**v = NULL, *w;
	const char	 *p = text;
	size_t		  n = 0, len, i;
	bool		  from = false;

	for (;; p += len) {
		p += strspn(p, " \t,:");
		if ((len = strcspn(p, " \t,:")) == 0)
			break;
		w = tg_strndup(p, len);
		for (i = 0; i < len; i++) {
			if (w[i] >= 'A' && w[i] <= 'Z')
				w[i] = (char)(w[i] - 'A' + 'a');
			else if ((unsigned char)w[i] <= ' ' ||
			    (unsigned char)w[i] >= 0x7f)
				w[i] = '?';
		}
		from = from || strcmp(w, "from") == 0;
		v = tg_reallocarray(v, n + 2, sizeof(*v));
		v[n++] = w;
		v[n] = NULL;
	}
	if (need_from && !from) {
		for (i = 0; i < n; i++)
			free(v[i]);
		free(v);
		(void)tg_err_set(err, TG_PERM, "[dkim] %s: must include from "
		    "(RFC 6376 5.4)", what);
		return NULL;
	}
	return v != NULL ? v : tg_calloc(1, sizeof(*v));
}

/* dkim_canon_parse - "relaxed/simple", "relaxed" (body simple) ... */
static enum tg_status
dkim_canon_parse(const char *s, struct tg_err *err)
{
	const char	*slash = strchr(s, '/');
	size_t		 hl = slash != NULL ? (size_t)(slash - s) : strlen(s);
	const char	*b = slash != NULL ? slash + 1 : "simple";

	if (hl == 7 && strncmp(s, "relaxed", 7) == 0)
		dkim_rt.hcanon = DKIM_CANON_RELAXED;
	else if (hl == 6 && strncmp(s, "simple", 6) == 0)
		dkim_rt.hcanon = DKIM_CANON_SIMPLE;
	else
		return tg_err_set(err, TG_PERM, "[dkim] canonicalization: "
		    "\"%s\" is not relaxed or simple", s);
	if (strcmp(b, "relaxed") == 0)
		dkim_rt.bcanon = DKIM_CANON_RELAXED;
	else if (strcmp(b, "simple") == 0)
		dkim_rt.bcanon = DKIM_CANON_SIMPLE;
	else
		return tg_err_set(err, TG_PERM, "[dkim] canonicalization: "
		    "\"%s\" is not relaxed or simple", s);
	return TG_OK;
}

/* dkim_init_keys - the signing tables; keys are read here, once */
static enum tg_status
dkim_init_keys(struct tg_err *err)
{
	struct dkim_keyring_stats	ks;
	enum tg_status			st = TG_OK;
	clock_t				t0 = clock();

	dkim_rt.ring = dkim_keyring_new();
	if (!dkim_conf.sign)
		return TG_OK;
	if (*dkim_conf.signing_table != '\0' && *dkim_conf.key_table == '\0')
		return tg_err_set(err, TG_PERM, "[dkim] signing_table needs "
		    "key_table");
	if (*dkim_conf.key_table != '\0' && *dkim_conf.signing_table == '\0')
		return tg_err_set(err, TG_PERM, "[dkim] key_table needs "
		    "signing_table");
	if (*dkim_conf.keys != '\0')
		st = dkim_keyring_add_inline(dkim_rt.ring, dkim_conf.keys,
		    dkim_conf.min_key_bits, err);
	if (st == TG_OK && *dkim_conf.key_table != '\0')
		st = dkim_keyring_load_keys(dkim_rt.ring, dkim_conf.key_table,
		    dkim_conf.min_key_bits, err);
	if (st == TG_OK && *dkim_conf.signing_table != '\0')
		st = dkim_keyring_load_signing(dkim_rt.ring,
		    dkim_conf.signing_table, err);
	if (st != TG_OK)
		return st;
	dkim_keyring_stats(dkim_rt.ring, &ks);
	tg_log_info(NULL, "dkim: signing keys loaded: entries=%zu files=%zu "
	    "ed25519=%zu rules=%zu cpu=%.2fs", ks.entries, ks.files,
	    ks.ed25519, ks.rules, (double)(clock() - t0) / CLOCKS_PER_SEC);
	/*
	 * libopendkim 2.11's dkim_free releases the key material of RSA
	 * signing handles only (sig_keytype == DKIM_KEYTYPE_RSA): every
	 * Ed25519 signature leaks its parsed key, about 550 bytes.
	 */
	if (ks.ed25519 > 0)
		tg_log_notice(NULL, "dkim: libopendkim 2.11 leaks about 550 "
		    "bytes per Ed25519 signature (dkim_free frees only RSA "
		    "keys); fixed libopendkim or periodic restarts needed for "
		    "high volumes");
	return TG_OK;
}

/* dkim_init_lib - the one DKIM_LIB, its options and our resolver */
static enum tg_status
dkim_init_lib(const struct tg_env *env, struct tg_err *err)
{
	unsigned int	flags = DKIM_LIBFLAGS_BADSIGHANDLES;
	unsigned int	minbits = 0;	/* we judge key sizes ourselves */

	if ((dkim_rt.lib = dkim_init(dkim_mem_alloc, dkim_mem_free)) == NULL)
		return tg_err_set(err, TG_PERM, "[dkim] dkim_init failed");
	/* BADSIGHANDLES: a malformed signature is reported, not skipped. */
	if (dkim_options(dkim_rt.lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
	    sizeof(flags)) != DKIM_STAT_OK ||
	    dkim_options(dkim_rt.lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS,
	    &minbits, sizeof(minbits)) != DKIM_STAT_OK ||
	    dkim_options(dkim_rt.lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
	    dkim_sign_list, sizeof(dkim_sign_list)) != DKIM_STAT_OK ||
	    dkim_options(dkim_rt.lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
	    dkim_oversign_list, sizeof(dkim_oversign_list)) != DKIM_STAT_OK)
		return tg_err_set(err, TG_PERM, "[dkim] libopendkim refused "
		    "an option (sign_headers?)");
	dkim_resolver_attach(dkim_rt.lib, env->dns);
	dkim_rt.dns = env->dns;
	return TG_OK;
}

/* dkim_mod_init - check the settings, load keys, set up libopendkim */
static enum tg_status
dkim_mod_init(const struct tg_env *env, struct tg_err *err)
{
	enum tg_status	st;

	memset(&dkim_rt, 0, sizeof(dkim_rt));
	dkim_rt.max_signatures = dkim_conf.max_signatures;
	dkim_rt.min_key_bits = dkim_conf.min_key_bits;
	dkim_rt.on_error = dkim_conf.on_error;
	st = dkim_canon_parse(dkim_conf.canonicalization, err);
	if (st == TG_OK && (dkim_sign_list = dkim_words(dkim_conf.sign_headers,
	    "sign_headers", true, err)) == NULL)
		st = TG_PERM;
	if (st == TG_OK) {
		dkim_oversign_list = dkim_words(dkim_conf.oversign_headers,
		    "oversign_headers", false, err);
		if ((st = dkim_init_keys(err)) == TG_OK)
			st = dkim_init_lib(env, err);
	}
	/* The pipeline calls fini only after a successful init. */
	if (st != TG_OK)
		dkim_mod_fini();
	return st;
}

/* dkim_mod_fini - free everything init made */
static void
dkim_mod_fini(void)
{
	if (dkim_rt.lib != NULL)
		dkim_close(dkim_rt.lib);
	dkim_keyring_free(dkim_rt.ring);
	memset(&dkim_rt, 0, sizeof(dkim_rt));
	dkim_sign_list = tg_strv_free(dkim_sign_list);
	dkim_oversign_list = tg_strv_free(dkim_oversign_list);
}

/* dkim_on_error - the operator's choice for mail we cannot judge */
enum tg_verdict
dkim_on_error(struct tg_ctx *ctx, const struct dkim_runtime *rt,
    const char *why)
{
	/* A dependency failing fails for many messages: log it sparingly. */
	tg_log_warn_limited(ctx, why, 60, "%s: on_error=%s", why,
	    tg_on_error_names[rt->on_error]);
	if (rt->on_error != TG_ON_ERROR_TEMPFAIL)
		return TG_CONTINUE;
	tg_ctx_reply(ctx, "451", "4.7.5", "DKIM %s, try again later", why);
	return TG_TEMPFAIL;
}

/* dkim_msg_start - the job for this message, once */
static struct dkim_msg *
dkim_msg_start(struct tg_ctx *ctx)
{
	struct dkim_msg	*m = tg_ctx_state(ctx);
	DKIM_STAT	 st;

	if (m->job != DKIM_JOB_UNSET)
		return m;
	tg_ctx_defer(ctx, dkim_msg_release, m);
	if (tg_ctx_outbound(ctx))
		m->job = dkim_conf.sign ? DKIM_JOB_SIGN : DKIM_JOB_NONE;
	else
		m->job = dkim_conf.verify ? DKIM_JOB_VERIFY : DKIM_JOB_NONE;
	if (m->job != DKIM_JOB_VERIFY)
		return m;
	m->vh = dkim_verify(dkim_rt.lib, (const u_char *)tg_ctx_queue_id(ctx),
	    NULL, &st);
	if (m->vh == NULL) {
		tg_log_errx(ctx, "verify: %s", dkim_getresultstr(st));
		m->broken = true;
	}
	return m;
}

/* dkim_envfrom - a new message: sign or verify */
static enum tg_verdict
dkim_envfrom(struct tg_ctx *ctx, const char *from)
{
	(void)from;
	(void)dkim_msg_start(ctx);
	return TG_CONTINUE;
}

/* dkim_header_verify - one header into the verify handle */
static void
dkim_header_verify(struct tg_ctx *ctx, struct dkim_msg *m, const char *name,
    const char *value)
{
	DKIM_STAT	st;

	if (tg_strcasecmp(name, DKIM_SIGHDR) == 0) {
		if (++m->nsighdrs > (size_t)dkim_rt.max_signatures)
			return;	/* beyond max_signatures: not verified */
		dkim_prefetch_sig(&m->pf, dkim_rt.dns, value);
	}
	tg_buf_reset(&m->line);
	tg_buf_printf(&m->line, "%s:%s", name, value);
	st = dkim_header(m->vh, (u_char *)m->line.data, m->line.len);
	/* A malformed signature is reported at eom (BADSIGHANDLES). */
	if (st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL) {
		tg_log_errx(ctx, "verify: header: %s", dkim_getresultstr(st));
		m->broken = true;
	}
}

/* dkim_header_hook - verify: pass it on; sign: keep it until eoh */
static enum tg_verdict
dkim_header_hook(struct tg_ctx *ctx, const char *name, const char *value)
{
	struct dkim_msg	*m = dkim_msg_start(ctx);

	if (m->job == DKIM_JOB_VERIFY && !m->broken)
		dkim_header_verify(ctx, m, name, value);
	else if (m->job == DKIM_JOB_SIGN) {
		if (tg_strcasecmp(name, "From") == 0 && m->nfrom++ == 0)
			m->from = tg_ctx_strdup(ctx, value);
		tg_buf_printf(&m->hdrs, "%s:%s", name, value);
		tg_buf_putc(&m->hdrs, '\0');
		m->nhdrs++;
	}
	return TG_CONTINUE;
}

/* dkim_eoh_hook - end of headers */
static enum tg_verdict
dkim_eoh_hook(struct tg_ctx *ctx)
{
	struct dkim_msg	*m = dkim_msg_start(ctx);
	DKIM_STAT	 st;

	if (m->job == DKIM_JOB_SIGN)
		return dkim_sign_eoh(ctx, m, &dkim_rt);
	if (m->job != DKIM_JOB_VERIFY || m->broken)
		return TG_CONTINUE;
	tg_buf_fini(&m->line);
	/* libopendkim fetches the keys in dkim_eoh: ours are ready by now. */
	dkim_prefetch_collect(m->pf);
	dkim_prefetch_enter(m->pf);
	st = dkim_eoh(m->vh);
	dkim_prefetch_enter(NULL);
	tg_log_debug(ctx, "verify: eoh: %s, %zu signature field(s)",
	    dkim_getresultstr(st), m->nsighdrs);
	if (st == DKIM_STAT_NOSIG && m->nsighdrs == 0)
		m->nosig = true;
	else if (st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL) {
		tg_log_errx(ctx, "verify: eoh: %s", dkim_getresultstr(st));
		m->broken = true;
	}
	return TG_CONTINUE;
}

/* dkim_body_hook - one chunk, streamed into libopendkim */
static enum tg_verdict
dkim_body_hook(struct tg_ctx *ctx, const unsigned char *p, size_t len)
{
	struct dkim_msg	*m = tg_ctx_state(ctx);
	DKIM_STAT	 st;

	if (len == 0 || m->broken)
		return TG_CONTINUE;
	if (m->job == DKIM_JOB_SIGN)
		dkim_sign_body(ctx, m, p, len);
	else if (m->job == DKIM_JOB_VERIFY && !m->nosig) {
		st = dkim_body(m->vh, (u_char *)p, len);
		if (st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL) {
			tg_log_errx(ctx, "verify: body: %s",
			    dkim_getresultstr(st));
			m->broken = true;
		}
	}
	return TG_CONTINUE;
}

/* dkim_result_add - one more result in the message's array */
static struct dkim_result *
dkim_result_add(struct tg_ctx *ctx, struct dkim_msg *m, size_t cap)
{
	if (m->res == NULL)
		m->res = tg_ctx_alloc(ctx, cap * sizeof(*m->res));
	memset(&m->res[m->nres], 0, sizeof(*m->res));
	return &m->res[m->nres++];
}

/* dkim_verify_collect - results from libopendkim after eom */
static void
dkim_verify_collect(struct tg_ctx *ctx, struct dkim_msg *m)
{
	DKIM_SIGINFO	**sigs = NULL;
	struct dkim_result *r;
	DKIM_STAT	  st;
	int		  n = 0, i;

	if (m->nosig) {
		(void)dkim_result_add(ctx, m, 1);
		return;
	}
	st = dkim_eom(m->vh, NULL);
	tg_log_debug(ctx, "verify: eom: %s: %s", dkim_getresultstr(st),
	    dkim_geterror(m->vh) != NULL ? dkim_geterror(m->vh) : "-");
	if (st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL) {
		tg_log_errx(ctx, "verify: eom: %s", dkim_getresultstr(st));
		m->broken = true;
		return;
	}
	if (dkim_getsiglist(m->vh, &sigs, &n) != DKIM_STAT_OK || n <= 0) {
		/* DKIM-Signature fields libopendkim could not even keep. */
		r = dkim_result_add(ctx, m, 1);
		r->res = m->nsighdrs > 0 ? DKIM_RES_PERMERROR : DKIM_RES_NONE;
		r->reason = m->nsighdrs > 0 ? "malformed signature" : NULL;
		return;
	}
	if (n > dkim_rt.max_signatures)
		n = (int)dkim_rt.max_signatures;
	for (i = 0; i < n; i++)
		dkim_verify_sig(ctx, sigs[i], dkim_rt.min_key_bits,
		    dkim_result_add(ctx, m, (size_t)n));
}

/* dkim_verify_report - headers, decision field and log line */
static enum tg_verdict
dkim_verify_report(struct tg_ctx *ctx, struct dkim_msg *m)
{
	struct tg_buf	res, doms;
	enum tg_verdict	v;
	size_t		i;
	bool		pass = false, temp = false;

	tg_buf_init(&res);
	tg_buf_init(&doms);
	for (i = 0; i < m->nres; i++) {
		dkim_verify_authres(ctx, &m->res[i]);
		tg_buf_printf(&res, "%s%s", i > 0 ? "," : "",
		    dkim_res_name(m->res[i].res));
		tg_buf_printf(&doms, "%s%s", i > 0 ? "," : "",
		    m->res[i].domain != NULL ? m->res[i].domain : "-");
		pass = pass || m->res[i].res == DKIM_RES_PASS;
		temp = temp || m->res[i].res == DKIM_RES_TEMPERROR;
	}
	tg_ctx_result(ctx, "%s", tg_buf_cstr(&res));
	/* RFC 8601 temperror: never pass or fail; the operator decides. */
	v = temp && !pass ? dkim_on_error(ctx, &dkim_rt, m->broken ?
	    "verifier failed" : "key lookup failed") : TG_CONTINUE;
	tg_log_info(ctx, "result=%s d=%s%s%s", tg_buf_cstr(&res),
	    tg_buf_cstr(&doms), temp && !pass ? " on_error=" : "",
	    temp && !pass ? tg_on_error_names[dkim_rt.on_error] : "");
	tg_buf_fini(&res);
	tg_buf_fini(&doms);
	return v;
}

/* dkim_eom_hook - end of message: finish signing or verification */
static enum tg_verdict
dkim_eom_hook(struct tg_ctx *ctx)
{
	struct dkim_msg		*m = dkim_msg_start(ctx);
	struct dkim_result	*r;
	enum tg_verdict		 v = TG_CONTINUE;

	if (m->job == DKIM_JOB_SIGN)
		v = dkim_sign_eom(ctx, m, &dkim_rt);
	else if (m->job == DKIM_JOB_VERIFY) {
		if (!m->broken)
			dkim_verify_collect(ctx, m);
		if (m->broken) {
			m->nres = 0;
			r = dkim_result_add(ctx, m, 1);
			r->res = DKIM_RES_TEMPERROR;
			r->reason = "verifier failed";
		}
		v = dkim_verify_report(ctx, m);
	}
	dkim_msg_release(m);
	return v;
}

/* dkim_abort - the message is abandoned: free its handles now */
static void
dkim_abort(struct tg_ctx *ctx)
{
	dkim_msg_release(tg_ctx_state(ctx));
}

/* dkim_results - the verification results of this message */
size_t
dkim_results(struct tg_ctx *ctx, const struct dkim_result **out)
{
	struct dkim_msg	*m = tg_ctx_state_of(ctx, &tg_module_dkim);

	*out = NULL;
	if (m == NULL || m->job != DKIM_JOB_VERIFY)
		return 0;
	*out = m->res;
	return m->nres;
}
