/*
 * stage - running the enabled modules at each SMTP stage.
 *
 * Modules run in registry order.  A module's verdict other than continue
 * ends the message at once (the strongest verdict wins if several come at
 * end of message), except at RCPT, where a reject or tempfail refuses
 * that recipient only, and at header and body, where the verdict waits
 * for eoh and eom since the MTA gets no reply per header or chunk.  The
 * pipeline itself removes Authentication-Results headers that claim our
 * authserv-id (RFC 8601 5), adds our one header at end of message, and
 * logs one decision line per message.  Once the driver has answered the
 * MTA, tg_stage_done tells every module the final verdict (its done
 * hook), so reservations follow what really happened to the message.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline_int.h"
#include "tollgate/authres.h"
#include "tollgate/buf.h"
#include "tollgate/log.h"
#include "tollgate/metrics.h"

typedef enum tg_verdict (*tg_stage_call)(struct tg_ctx *,
    const struct tg_module *, const void *);

static enum tg_verdict	tg_call_connect(struct tg_ctx *,
			    const struct tg_module *, const void *);
static enum tg_verdict	tg_call_helo(struct tg_ctx *,
			    const struct tg_module *, const void *);
static enum tg_verdict	tg_call_envfrom(struct tg_ctx *,
			    const struct tg_module *, const void *);
static enum tg_verdict	tg_call_envrcpt(struct tg_ctx *,
			    const struct tg_module *, const void *);
static enum tg_verdict	tg_call_header(struct tg_ctx *,
			    const struct tg_module *, const void *);
static enum tg_verdict	tg_call_eoh(struct tg_ctx *,
			    const struct tg_module *, const void *);
static enum tg_verdict	tg_call_body(struct tg_ctx *,
			    const struct tg_module *, const void *);
static enum tg_verdict	tg_call_eom(struct tg_ctx *,
			    const struct tg_module *, const void *);
static enum tg_verdict	tg_call_abort(struct tg_ctx *,
			    const struct tg_module *, const void *);
static enum tg_verdict	tg_call_done(struct tg_ctx *,
			    const struct tg_module *, const void *);

/* tg_stage_metric_name - the stage label of a call, for the histogram */
static const char *
tg_stage_metric_name(tg_stage_call call)
{
	static const struct {
		tg_stage_call	 call;
		const char	*name;
	} names[] = {
		{ tg_call_connect, "connect" }, { tg_call_helo, "helo" },
		{ tg_call_envfrom, "mail" }, { tg_call_envrcpt, "rcpt" },
		{ tg_call_header, "header" }, { tg_call_eoh, "eoh" },
		{ tg_call_body, "body" }, { tg_call_eom, "eom" },
		{ tg_call_abort, "abort" }, { tg_call_done, "done" },
	};
	size_t	i;

	for (i = 0; i < TG_NITEMS(names); i++)
		if (names[i].call == call)
			return names[i].name;
	TG_PANIC("stage: unknown call");
}

/* tg_stage_run - call one stage in every enabled module that hooks it */
static enum tg_verdict
tg_stage_run(struct tg_ctx *ctx, tg_stage_call call, const void *arg,
    bool stop_early)
{
	enum tg_verdict	v, result = TG_CONTINUE;
	struct timespec	t0;
	size_t		i;

	tg_metric_now(&t0);
	for (i = 0; i < tg_registry_count(); i++) {
		if (!tg_registry_enabled(i))
			continue;
		ctx->module = (int)i;
		v = call(ctx, tg_registry_module(i), arg);
		ctx->module = -1;
		if (v == TG_QUARANTINE && ctx->msg != NULL &&
		    ctx->msg->quarantine == NULL)
			ctx->msg->quarantine = tg_ctx_strdup(ctx,
			    tg_registry_module(i)->name);
		result = tg_verdict_stronger(result, v);
		if (stop_early && tg_verdict_final(v))
			break;
	}
	tg_metric_since(TG_M_STAGE_SECONDS, tg_stage_metric_name(call), &t0);
	return result;
}

/*
 * tg_stage_client_name - the client's name as Postfix logs it: MTAs pass
 * "[addr]" when the address has no verified name, and Postfix writes
 * that client as unknown[addr].
 */
static const char *
tg_stage_client_name(const struct tg_ctx *ctx)
{
	if (ctx->hostname == NULL || ctx->hostname[0] == '\0')
		return ctx->addr != NULL ? "unknown" : "localhost";
	return ctx->hostname[0] == '[' ? "unknown" : ctx->hostname;
}

/*
 * tg_stage_metrics - count the final action and each module's result:
 * the first word of its decision field, or of each comma-separated item
 * of it (DKIM writes one result per signature: "pass,fail").
 */
static void
tg_stage_metrics(const struct tg_ctx_msg *msg)
{
	const char	*p, *name;
	size_t		 i, len;

	tg_metric_inc(TG_M_MESSAGES, tg_verdict_name(msg->verdict ==
	    TG_CONTINUE ? TG_ACCEPT : msg->verdict), NULL);
	for (i = 0; i < tg_registry_count(); i++) {
		if (!tg_registry_enabled(i) || msg->results[i] == NULL)
			continue;
		name = tg_registry_module(i)->name;
		for (p = msg->results[i];; p += len + 1) {
			len = strcspn(p, ", ");
			tg_metric_inc(TG_M_MODULE_RESULTS, name, p);
			if (p[len] != ',')
				break;
		}
	}
}

/* tg_stage_decide - record a message-level verdict; log if it is final */
static enum tg_verdict
tg_stage_decide(struct tg_ctx *ctx, enum tg_verdict v, const char *stage)
{
	struct tg_ctx_msg	*msg = ctx->msg;
	struct tg_log_rec	*rec;
	const char		*why;
	size_t			 i;

	if (msg == NULL)
		return v;
	msg->verdict = tg_verdict_stronger(msg->verdict, v);
	/* Quarantine lets the message go on, except at its end. */
	if (v == TG_CONTINUE || (v == TG_QUARANTINE &&
	    strcmp(stage, "eom") != 0))
		return v;
	tg_stage_metrics(msg);
	/* One record per message, in [core] log_format (decision-log.md). */
	rec = tg_log_rec_new("decision");
	tg_log_rec_add(rec, "stage", stage);
	tg_log_rec_addf(rec, "client", "%s[%s]", tg_stage_client_name(ctx),
	    ctx->addr != NULL ? ctx->addr : "local");
	tg_log_rec_add(rec, "helo", ctx->helo);
	tg_log_rec_add(rec, "from", tg_ctx_mail_from(ctx));
	tg_log_rec_add_num(rec, "rcpts", (long long)msg->nrcpts);
	tg_log_rec_add(rec, "auth", msg->auth_user);
	for (i = 0; i < tg_registry_count(); i++)
		if (tg_registry_enabled(i))
			tg_log_rec_add(rec, tg_registry_module(i)->name,
			    msg->results[i]);
	tg_log_rec_add(rec, "action", tg_verdict_name(
	    msg->verdict == TG_CONTINUE ? TG_ACCEPT : msg->verdict));
	if (tg_ctx_quarantined(ctx, &why))
		tg_log_rec_add(rec, "quarantine", why);
	if (msg->reply_rcode != NULL)
		tg_log_rec_addf(rec, "reply", "%s %s %s", msg->reply_rcode,
		    msg->reply_xcode, msg->reply_text);
	tg_log_rec_add(rec, "qid", tg_ctx_queue_id(ctx));
	free(msg->decision);
	msg->decision = tg_log_rec_emit(rec, TG_LOG_INFO);
	rec = tg_log_rec_free(rec);
	return v;
}

/* tg_call_connect - one module's connect hook */
static enum tg_verdict
tg_call_connect(struct tg_ctx *ctx, const struct tg_module *m,
    const void *arg)
{
	return m->connect != NULL ? m->connect(ctx, &ctx->peer) : TG_CONTINUE;
}

/* tg_stage_connect - a new SMTP connection */
enum tg_verdict
tg_stage_connect(struct tg_ctx *ctx, const char *hostname, const char *addr)
{
	free(ctx->hostname);
	free(ctx->addr);
	ctx->hostname = tg_strdup(hostname != NULL ? hostname : "localhost");
	ctx->addr = addr != NULL ? tg_strdup(addr) : NULL;
	ctx->peer.hostname = ctx->hostname;
	ctx->peer.addr = ctx->addr;
	/* No address: a local submission (Postfix non_smtpd_milters). */
	ctx->internal = addr == NULL ||
	    tg_netlist_match(tg_pipeline_internal_nets(), addr);
	return tg_stage_run(ctx, tg_call_connect, NULL, true);
}

/* tg_call_helo - one module's helo hook */
static enum tg_verdict
tg_call_helo(struct tg_ctx *ctx, const struct tg_module *m, const void *arg)
{
	return m->helo != NULL ? m->helo(ctx, arg) : TG_CONTINUE;
}

/* tg_stage_helo - HELO or EHLO */
enum tg_verdict
tg_stage_helo(struct tg_ctx *ctx, const char *name)
{
	free(ctx->helo);
	ctx->helo = tg_strdup(name);
	return tg_stage_run(ctx, tg_call_helo, name, true);
}

/* tg_call_envfrom - one module's envfrom hook */
static enum tg_verdict
tg_call_envfrom(struct tg_ctx *ctx, const struct tg_module *m,
    const void *arg)
{
	return m->envfrom != NULL ? m->envfrom(ctx, arg) : TG_CONTINUE;
}

/* tg_stage_envfrom - MAIL FROM starts a message */
enum tg_verdict
tg_stage_envfrom(struct tg_ctx *ctx, const char *from)
{
	const char	*auth;

	tg_ctx_msg_begin(ctx);
	ctx->msg->mail_from = tg_ctx_strdup(ctx, from);
	auth = tg_ctx_macro(ctx, "{auth_authen}");
	if (auth != NULL && *auth != '\0')
		ctx->msg->auth_user = tg_ctx_strdup(ctx, auth);
	return tg_stage_decide(ctx, tg_stage_run(ctx, tg_call_envfrom, from,
	    true), "mail");
}

/* tg_call_envrcpt - one module's envrcpt hook */
static enum tg_verdict
tg_call_envrcpt(struct tg_ctx *ctx, const struct tg_module *m,
    const void *arg)
{
	return m->envrcpt != NULL ? m->envrcpt(ctx, arg) : TG_CONTINUE;
}

/* tg_stage_envrcpt - one RCPT TO; a refusal concerns that recipient */
enum tg_verdict
tg_stage_envrcpt(struct tg_ctx *ctx, const char *rcpt)
{
	struct tg_ctx_msg	*msg;
	enum tg_verdict		 v;

	if (ctx->msg == NULL)
		tg_ctx_msg_begin(ctx);
	msg = ctx->msg;
	v = tg_stage_run(ctx, tg_call_envrcpt, rcpt, true);
	if (v == TG_REJECT || v == TG_TEMPFAIL) {
		tg_log_info(ctx, "recipient refused: rcpt=%s action=%s", rcpt,
		    tg_verdict_name(v));
		return v;
	}
	msg->rcpts = tg_reallocarray(msg->rcpts, msg->nrcpts + 1,
	    sizeof(*msg->rcpts));
	msg->rcpts[msg->nrcpts++] = tg_ctx_strdup(ctx, rcpt);
	return tg_stage_decide(ctx, v, "rcpt");
}

/* tg_call_header - one module's header hook */
static enum tg_verdict
tg_call_header(struct tg_ctx *ctx, const struct tg_module *m,
    const void *arg)
{
	const char *const *nv = arg;

	return m->header != NULL ? m->header(ctx, nv[0], nv[1]) : TG_CONTINUE;
}

/* tg_header_crlf - value with bare LF line breaks made CRLF */
static char *
tg_header_crlf(struct tg_ctx *ctx, const char *value)
{
	struct tg_buf	 b;
	const char	*p;
	char		*out;

	if (strchr(value, '\n') == NULL)
		return (char *)value;
	tg_buf_init(&b);
	for (p = value; *p != '\0'; p++) {
		if (*p == '\n' && (p == value || p[-1] != '\r'))
			tg_buf_putc(&b, '\r');
		tg_buf_putc(&b, *p);
	}
	out = tg_ctx_strdup(ctx, tg_buf_cstr(&b));
	tg_buf_fini(&b);
	return out;
}

/* tg_header_forged_ar - an Authentication-Results claiming our id */
static void
tg_header_forged_ar(struct tg_ctx *ctx, const char *name, const char *value)
{
	char	id[256];

	if (tg_strcasecmp(name, "Authentication-Results") != 0)
		return;
	ctx->msg->ar_seen++;
	if (tg_authres_authserv_id(value, id, sizeof(id)) &&
	    tg_strcasecmp(id, tg_core_conf.authserv_id) == 0) {
		tg_log_info(ctx, "removing forged Authentication-Results "
		    "header %zu", ctx->msg->ar_seen);
		tg_ctx_delete_header(ctx, name, ctx->msg->ar_seen);
	}
}

/* tg_stage_header - one header; the verdict waits for eom */
enum tg_verdict
tg_stage_header(struct tg_ctx *ctx, const char *name, const char *value)
{
	const char	*nv[2];

	if (ctx->msg == NULL)
		tg_ctx_msg_begin(ctx);
	nv[0] = name;
	nv[1] = tg_header_crlf(ctx, value);
	ctx->msg->nheaders++;
	tg_header_forged_ar(ctx, name, nv[1]);
	ctx->msg->pending = tg_verdict_stronger(ctx->msg->pending,
	    tg_stage_run(ctx, tg_call_header, nv, false));
	return TG_CONTINUE;
}

/* tg_call_eoh - one module's eoh hook */
static enum tg_verdict
tg_call_eoh(struct tg_ctx *ctx, const struct tg_module *m, const void *arg)
{
	return m->eoh != NULL ? m->eoh(ctx) : TG_CONTINUE;
}

/*
 * tg_stage_eoh - end of headers; the verdict waits for eom, as the
 * headers' and the body's do.  The MTA then needs no reply here (the
 * milter negotiates SMFIP_NR_EOH: one round trip less per message); a
 * message refused at this point has its body sent for nothing, which
 * is rare (a module's on_error), and its answer is the same.
 */
enum tg_verdict
tg_stage_eoh(struct tg_ctx *ctx)
{
	enum tg_verdict	v;

	if (ctx->msg == NULL)
		tg_ctx_msg_begin(ctx);
	v = ctx->msg->pending;
	if (!tg_verdict_final(v))
		v = tg_verdict_stronger(v, tg_stage_run(ctx, tg_call_eoh, NULL,
		    true));
	ctx->msg->pending = v;
	return TG_CONTINUE;
}

/* tg_call_body - one module's body hook */
static enum tg_verdict
tg_call_body(struct tg_ctx *ctx, const struct tg_module *m, const void *arg)
{
	const struct { const unsigned char *p; size_t n; } *chunk = arg;

	return m->body != NULL ? m->body(ctx, chunk->p, chunk->n) :
	    TG_CONTINUE;
}

/* tg_stage_body - one body chunk; the verdict waits for eom */
enum tg_verdict
tg_stage_body(struct tg_ctx *ctx, const unsigned char *p, size_t n)
{
	struct { const unsigned char *p; size_t n; } chunk = { p, n };

	if (ctx->msg == NULL)
		tg_ctx_msg_begin(ctx);
	ctx->msg->body_bytes += n;
	/* decided already (at eoh): the modules need not read on */
	if (tg_verdict_final(ctx->msg->pending))
		return TG_CONTINUE;
	ctx->msg->pending = tg_verdict_stronger(ctx->msg->pending,
	    tg_stage_run(ctx, tg_call_body, &chunk, false));
	return TG_CONTINUE;
}

/* tg_call_eom - one module's eom hook */
static enum tg_verdict
tg_call_eom(struct tg_ctx *ctx, const struct tg_module *m, const void *arg)
{
	return m->eom != NULL ? m->eom(ctx) : TG_CONTINUE;
}

/* tg_stage_eom - end of message: every module decides, then we log */
enum tg_verdict
tg_stage_eom(struct tg_ctx *ctx)
{
	struct tg_ctx_msg	*msg;
	enum tg_verdict		 v;
	char			*ar;

	if (ctx->msg == NULL)
		tg_ctx_msg_begin(ctx);
	msg = ctx->msg;
	/* decided before (eoh, body): the eom hooks have nothing to add */
	if (tg_verdict_final(msg->pending))
		return tg_stage_decide(ctx, msg->pending, "eom");
	v = tg_verdict_stronger(msg->pending,
	    tg_stage_run(ctx, tg_call_eom, NULL, false));
	if (msg->nauthres > 0) {
		ar = tg_authres_build(tg_core_conf.authserv_id,
		    (const char *const *)msg->authres, msg->nauthres);
		tg_ctx_prepend_header(ctx, "Authentication-Results", ar);
		free(ar);
	}
	if (v == TG_CONTINUE)
		v = TG_ACCEPT;
	return tg_stage_decide(ctx, v, "eom");
}

/* tg_call_abort - one module's abort hook */
static enum tg_verdict
tg_call_abort(struct tg_ctx *ctx, const struct tg_module *m,
    const void *arg)
{
	if (m->abort != NULL)
		m->abort(ctx);
	return TG_CONTINUE;
}

/* tg_stage_abort - the MTA abandoned the message */
void
tg_stage_abort(struct tg_ctx *ctx)
{
	if (ctx->msg == NULL)
		return;
	(void)tg_stage_run(ctx, tg_call_abort, NULL, false);
	tg_log_debug(ctx, "message aborted");
	tg_ctx_msg_end(ctx);
}

/* tg_call_done - one module's done hook */
static enum tg_verdict
tg_call_done(struct tg_ctx *ctx, const struct tg_module *m, const void *arg)
{
	if (m->done != NULL)
		m->done(ctx, *(const enum tg_verdict *)arg);
	return TG_CONTINUE;
}

/* tg_stage_done - the driver applied the result; release the message */
void
tg_stage_done(struct tg_ctx *ctx)
{
	enum tg_verdict	final;

	if (ctx->msg != NULL) {
		final = ctx->msg->verdict;
		(void)tg_stage_run(ctx, tg_call_done, &final, false);
	}
	tg_ctx_msg_end(ctx);
}
