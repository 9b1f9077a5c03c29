/*
 * ctx - the per-connection, per-message context modules act through.
 *
 * A context belongs to one connection and so to one libmilter thread at a
 * time; nothing here is locked.  Message memory (tg_ctx_alloc, the
 * modules' states, edits, results) hangs off ctx->msg and is released in
 * one place, tg_ctx_msg_end, after running the deferred frees in reverse
 * order of registration.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_int.h"
#include "tollgate/conf.h"
#include "tollgate/log.h"

/* One allocation or deferred call, kept on a list for release. */
struct tg_ctx_block {
	struct tg_ctx_block	*next;
	void			(*fn)(void *);
	void			*arg;
	max_align_t		 data[];
};

static const char *const tg_verdict_names[] = {
	"continue", "accept", "quarantine", "tempfail", "reject", "discard"
};

/* tg_verdict_name - the verdict's name for logs */
const char *
tg_verdict_name(enum tg_verdict v)
{
	if ((size_t)v >= TG_NITEMS(tg_verdict_names))
		TG_PANIC("bad verdict %d", (int)v);
	return tg_verdict_names[v];
}

/* tg_verdict_rank - reject beats tempfail beats discard beats the rest */
static int
tg_verdict_rank(enum tg_verdict v)
{
	switch (v) {
	case TG_CONTINUE:
		return 0;
	case TG_ACCEPT:
		return 1;
	case TG_QUARANTINE:
		return 2;
	case TG_DISCARD:
		return 3;
	case TG_TEMPFAIL:
		return 4;
	case TG_REJECT:
		return 5;
	}
	TG_PANIC("bad verdict %d", (int)v);
}

/* tg_verdict_final - see pipeline_int.h */
bool
tg_verdict_final(enum tg_verdict v)
{
	return v != TG_CONTINUE && v != TG_QUARANTINE;
}

/* tg_verdict_stronger - the verdict that wins */
enum tg_verdict
tg_verdict_stronger(enum tg_verdict a, enum tg_verdict b)
{
	return tg_verdict_rank(b) > tg_verdict_rank(a) ? b : a;
}

/* tg_ctx_log_prefix - "queueid: module: " for the logger */
static void
tg_ctx_log_prefix(const struct tg_ctx *ctx, char *buf, size_t n)
{
	const char	*mod = NULL;

	if (ctx->module >= 0)
		mod = tg_registry_module((size_t)ctx->module)->name;
	(void)snprintf(buf, n, "%s: %s%s", tg_ctx_queue_id(ctx),
	    mod != NULL ? mod : "", mod != NULL ? ": " : "");
}

/* tg_ctx_new - a context for one connection */
struct tg_ctx *
tg_ctx_new(tg_macro_fn macro, void *arg)
{
	struct tg_ctx	*ctx;

	tg_log_set_prefix_fn(tg_ctx_log_prefix);
	ctx = tg_calloc(1, sizeof(*ctx));
	ctx->macro = macro;
	ctx->macro_arg = arg;
	ctx->module = -1;
	return ctx;
}

/* tg_ctx_free - release a connection's context; accepts NULL */
struct tg_ctx *
tg_ctx_free(struct tg_ctx *ctx)
{
	if (ctx == NULL)
		return NULL;
	tg_ctx_msg_end(ctx);
	free(ctx->hostname);
	free(ctx->addr);
	free(ctx->helo);
	free(ctx->last_decision);
	free(ctx);
	return NULL;
}

/* tg_ctx_msg_begin - fresh message state, zeroed module states */
void
tg_ctx_msg_begin(struct tg_ctx *ctx)
{
	const struct tg_module	*m;
	size_t			 i;

	tg_ctx_msg_end(ctx);
	ctx->msg = tg_calloc(1, sizeof(*ctx->msg));
	for (i = 0; i < tg_registry_count(); i++) {
		m = tg_registry_module(i);
		if (tg_registry_enabled(i) && m->msg_state_size > 0)
			ctx->msg->states[i] = tg_ctx_alloc(ctx,
			    m->msg_state_size);
	}
}

/* tg_ctx_msg_end - run deferred frees and release the message */
void
tg_ctx_msg_end(struct tg_ctx *ctx)
{
	struct tg_ctx_msg	*msg = ctx->msg;
	struct tg_ctx_block	*b, *next;

	if (msg == NULL)
		return;
	for (b = msg->defers; b != NULL; b = next) {
		next = b->next;
		b->fn(b->arg);
		free(b);
	}
	for (b = msg->blocks; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(ctx->last_decision);
	ctx->last_decision = msg->decision;
	free(msg->edits);
	free(msg->authres);
	free(msg->rcpts);
	free(msg);
	ctx->msg = NULL;
}

/* tg_ctx_need_msg - the message state; a module calling outside one is
 * a pipeline bug */
static struct tg_ctx_msg *
tg_ctx_need_msg(const struct tg_ctx *ctx)
{
	if (ctx->msg == NULL)
		TG_PANIC("message call outside a message");
	return ctx->msg;
}

/* tg_ctx_alloc - zeroed memory that lives as long as the message */
void *
tg_ctx_alloc(struct tg_ctx *ctx, size_t n)
{
	struct tg_ctx_msg	*msg = tg_ctx_need_msg(ctx);
	struct tg_ctx_block	*b;

	if (n > SIZE_MAX - sizeof(*b))
		TG_PANIC("allocation overflow: %zu", n);
	b = tg_calloc(1, sizeof(*b) + n);
	b->next = msg->blocks;
	msg->blocks = b;
	return b->data;
}

/* tg_ctx_strdup - a copy of s that lives as long as the message */
char *
tg_ctx_strdup(struct tg_ctx *ctx, const char *s)
{
	size_t	 len = strlen(s);
	char	*p;

	p = tg_ctx_alloc(ctx, len + 1);
	memcpy(p, s, len);
	return p;
}

/* tg_ctx_msg_dup - tg_ctx_strdup for the pipeline's own fields */
char *
tg_ctx_msg_dup(struct tg_ctx *ctx, const char *s)
{
	return s == NULL ? NULL : tg_ctx_strdup(ctx, s);
}

/* tg_ctx_defer - call fn(p) when the message is released */
void
tg_ctx_defer(struct tg_ctx *ctx, void (*fn)(void *), void *p)
{
	struct tg_ctx_msg	*msg = tg_ctx_need_msg(ctx);
	struct tg_ctx_block	*b;

	b = tg_calloc(1, sizeof(*b));
	b->fn = fn;
	b->arg = p;
	b->next = msg->defers;
	msg->defers = b;
}

/* tg_ctx_queue_id - the MTA's queue id, or "-" before it has one */
const char *
tg_ctx_queue_id(const struct tg_ctx *ctx)
{
	const char	*id;

	if (ctx->msg != NULL && ctx->msg->queue_id != NULL)
		return ctx->msg->queue_id;
	if (ctx->macro != NULL && (id = ctx->macro(ctx->macro_arg, "i")) !=
	    NULL && *id != '\0') {
		if (ctx->msg != NULL)
			ctx->msg->queue_id = tg_ctx_strdup((struct tg_ctx *)ctx,
			    id);
		return id;
	}
	return "-";
}

/* tg_ctx_peer - the client */
const struct tg_peer *
tg_ctx_peer(const struct tg_ctx *ctx)
{
	return &ctx->peer;
}

/* tg_ctx_helo - the HELO/EHLO name, or NULL */
const char *
tg_ctx_helo(const struct tg_ctx *ctx)
{
	return ctx->helo;
}

/* tg_ctx_auth_user - SASL login name, or NULL */
const char *
tg_ctx_auth_user(const struct tg_ctx *ctx)
{
	return ctx->msg != NULL ? ctx->msg->auth_user : NULL;
}

/* tg_ctx_internal - client in internal_networks, or a local submission */
bool
tg_ctx_internal(const struct tg_ctx *ctx)
{
	return ctx->internal;
}

/* tg_ctx_outbound - mail from our own users */
bool
tg_ctx_outbound(const struct tg_ctx *ctx)
{
	return ctx->internal || tg_ctx_auth_user(ctx) != NULL;
}

/* tg_ctx_mail_from - the envelope sender as the MTA gave it */
const char *
tg_ctx_mail_from(const struct tg_ctx *ctx)
{
	return ctx->msg != NULL && ctx->msg->mail_from != NULL ?
	    ctx->msg->mail_from : "<>";
}

/* tg_ctx_rcpt_count - accepted recipients so far */
size_t
tg_ctx_rcpt_count(const struct tg_ctx *ctx)
{
	return ctx->msg != NULL ? ctx->msg->nrcpts : 0;
}

/* tg_ctx_rcpt - the i-th accepted recipient */
const char *
tg_ctx_rcpt(const struct tg_ctx *ctx, size_t i)
{
	if (ctx->msg == NULL || i >= ctx->msg->nrcpts)
		TG_PANIC("recipient %zu out of range", i);
	return ctx->msg->rcpts[i];
}

/* tg_ctx_macro - an MTA macro, or NULL */
const char *
tg_ctx_macro(const struct tg_ctx *ctx, const char *name)
{
	return ctx->macro != NULL ? ctx->macro(ctx->macro_arg, name) : NULL;
}

/* tg_ctx_authserv_id - ours, from [core] authserv_id */
const char *
tg_ctx_authserv_id(const struct tg_ctx *ctx)
{
	return tg_core_conf.authserv_id;
}

/* tg_ctx_state - the running module's per-message state */
void *
tg_ctx_state(struct tg_ctx *ctx)
{
	if (ctx->module < 0)
		TG_PANIC("tg_ctx_state outside a module hook");
	return tg_ctx_need_msg(ctx)->states[ctx->module];
}

/* tg_ctx_state_of - another module's state, NULL if it is not enabled */
void *
tg_ctx_state_of(struct tg_ctx *ctx, const struct tg_module *m)
{
	size_t	i;

	for (i = 0; i < tg_registry_count(); i++)
		if (tg_registry_module(i) == m)
			return tg_ctx_need_msg(ctx)->states[i];
	return NULL;
}

/* tg_ctx_reply - the SMTP reply for a tempfail or reject */
void
tg_ctx_reply(struct tg_ctx *ctx, const char *rcode, const char *xcode,
    const char *fmt, ...)
{
	struct tg_ctx_msg	*msg = tg_ctx_need_msg(ctx);
	struct tg_buf		 b;
	va_list			 ap;
	size_t			 i;

	tg_buf_init(&b);
	va_start(ap, fmt);
	tg_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* Reply text goes to the remote client: printable, bounded. */
	for (i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20 ||
		    (unsigned char)b.data[i] >= 0x7f || b.data[i] == '%')
			b.data[i] = '?';
	if (b.len > 400)
		b.data[400] = '\0';
	msg->reply_rcode = tg_ctx_strdup(ctx, rcode);
	msg->reply_xcode = tg_ctx_strdup(ctx, xcode);
	msg->reply_text = tg_ctx_strdup(ctx, tg_buf_cstr(&b));
	tg_buf_fini(&b);
}

/* tg_ctx_edit - record one header edit */
static void
tg_ctx_edit(struct tg_ctx *ctx, enum tg_edit_kind kind, const char *name,
    const char *value, size_t index)
{
	struct tg_ctx_msg	*msg = tg_ctx_need_msg(ctx);
	struct tg_edit		*e;

	msg->edits = tg_reallocarray(msg->edits, msg->nedits + 1,
	    sizeof(*msg->edits));
	e = &msg->edits[msg->nedits++];
	e->kind = kind;
	e->name = tg_ctx_strdup(ctx, name);
	e->value = value != NULL ? tg_ctx_strdup(ctx, value) : NULL;
	e->index = index;
}

/* tg_ctx_add_header - append a header */
void
tg_ctx_add_header(struct tg_ctx *ctx, const char *name, const char *value)
{
	tg_ctx_edit(ctx, TG_EDIT_ADD, name, value, 0);
}

/* tg_ctx_prepend_header - insert a header at the top */
void
tg_ctx_prepend_header(struct tg_ctx *ctx, const char *name,
    const char *value)
{
	tg_ctx_edit(ctx, TG_EDIT_PREPEND, name, value, 0);
}

/* tg_ctx_delete_header - remove the n-th header of that name */
void
tg_ctx_delete_header(struct tg_ctx *ctx, const char *name, size_t n)
{
	tg_ctx_edit(ctx, TG_EDIT_DELETE, name, NULL, n);
}

/* tg_ctx_authres - one resinfo for our Authentication-Results */
void
tg_ctx_authres(struct tg_ctx *ctx, const char *fmt, ...)
{
	struct tg_ctx_msg	*msg = tg_ctx_need_msg(ctx);
	struct tg_buf		 b;
	va_list			 ap;

	tg_buf_init(&b);
	va_start(ap, fmt);
	tg_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	msg->authres = tg_reallocarray(msg->authres, msg->nauthres + 1,
	    sizeof(*msg->authres));
	msg->authres[msg->nauthres++] = tg_ctx_strdup(ctx, tg_buf_cstr(&b));
	tg_buf_fini(&b);
}

/* tg_ctx_result - the running module's field for the decision line */
void
tg_ctx_result(struct tg_ctx *ctx, const char *fmt, ...)
{
	struct tg_ctx_msg	*msg = tg_ctx_need_msg(ctx);
	struct tg_buf		 b;
	va_list			 ap;

	if (ctx->module < 0)
		TG_PANIC("tg_ctx_result outside a module hook");
	tg_buf_init(&b);
	va_start(ap, fmt);
	tg_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	msg->results[ctx->module] = tg_ctx_strdup(ctx, tg_buf_cstr(&b));
	tg_buf_fini(&b);
}

/* tg_ctx_edits - the header edits, in the order made */
size_t
tg_ctx_edits(const struct tg_ctx *ctx, const struct tg_edit **edits)
{
	if (ctx->msg == NULL) {
		*edits = NULL;
		return 0;
	}
	*edits = ctx->msg->edits;
	return ctx->msg->nedits;
}

/* tg_ctx_get_reply - the reply set by a module, NULL parts if none */
void
tg_ctx_get_reply(const struct tg_ctx *ctx, const char **rcode,
    const char **xcode, const char **text)
{
	*rcode = *xcode = *text = NULL;
	if (ctx->msg == NULL)
		return;
	*rcode = ctx->msg->reply_rcode;
	*xcode = ctx->msg->reply_xcode;
	*text = ctx->msg->reply_text;
}

/* tg_ctx_decision - the last decision line logged on this connection */
const char *
tg_ctx_decision(const struct tg_ctx *ctx)
{
	if (ctx->msg != NULL && ctx->msg->decision != NULL)
		return ctx->msg->decision;
	return ctx->last_decision;
}

/* tg_ctx_quarantined - whether a module asked for quarantine, and why */
bool
tg_ctx_quarantined(const struct tg_ctx *ctx, const char **why)
{
	*why = ctx->msg != NULL ? ctx->msg->quarantine : NULL;
	return *why != NULL;
}
