/*
 * scan - driving a message file through the pipeline, as the MTA would.
 *
 * tollgatectl scan and the tests use this; the daemon uses the libmilter
 * glue instead, but both call the same stages.  A message is split into
 * headers (a header is a line with a colon plus its continuation lines;
 * the first line that is neither ends the header block, as in Postfix)
 * and a body fed in chunks with CRLF line ends.  tg_apply_edits writes
 * the message as the MTA would deliver it after the header edits.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline_int.h"
#include "tollgate/buf.h"

#define TG_SCAN_CHUNK	65536

struct tg_scan_macros {
	const struct tg_scan_env	*env;
};

/* One header of a message text: where it starts, its length. */
struct tg_hdr {
	const char	*start;
	size_t		 len;		/* including the final line end */
	size_t		 name_len;
};

/* tg_scan_macro - the MTA macros a scan can answer */
static const char *
tg_scan_macro(void *arg, const char *name)
{
	const struct tg_scan_env	*env = arg;

	if (strcmp(name, "i") == 0)
		return env->queue_id;
	if (strcmp(name, "{auth_authen}") == 0)
		return env->auth_user;
	return NULL;
}

/* tg_line_end - length of the line at p, including its LF */
static size_t
tg_line_end(const char *p, const char *end)
{
	const char	*nl;

	nl = memchr(p, '\n', (size_t)(end - p));
	return nl == NULL ? (size_t)(end - p) : (size_t)(nl - p) + 1;
}

/* tg_header_next - the header at p, or false at the end of the block */
static bool
tg_header_next(const char *p, const char *end, struct tg_hdr *h)
{
	const char	*colon, *q;
	size_t		 n;

	if (p >= end || *p == '\r' || *p == '\n' || *p == ' ' || *p == '\t')
		return false;
	n = tg_line_end(p, end);
	colon = memchr(p, ':', n);
	if (colon == NULL)
		return false;
	for (q = p; q < colon; q++)
		if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
			return false;
	h->start = p;
	h->name_len = (size_t)(colon - p);
	h->len = n;
	for (q = p + n; q < end && (*q == ' ' || *q == '\t'); q += n) {
		n = tg_line_end(q, end);
		h->len += n;
	}
	return true;
}

/* tg_scan_header - hand one header to the pipeline */
static enum tg_verdict
tg_scan_header(struct tg_ctx *ctx, const struct tg_hdr *h)
{
	enum tg_verdict	 v;
	char		*name, *value;
	size_t		 vlen;

	name = tg_strndup(h->start, h->name_len);
	vlen = h->len - h->name_len - 1;
	/* The MTA hands over the value without the header's line end. */
	while (vlen > 0 && (h->start[h->name_len + 1 + vlen - 1] == '\n' ||
	    h->start[h->name_len + 1 + vlen - 1] == '\r'))
		vlen--;
	value = tg_strndup(h->start + h->name_len + 1, vlen);
	v = tg_stage_header(ctx, name, value);
	free(name);
	free(value);
	return v;
}

/* tg_scan_body - the body in chunks, line ends made CRLF */
static enum tg_verdict
tg_scan_body(struct tg_ctx *ctx, const char *p, const char *end)
{
	struct tg_buf	b;
	enum tg_verdict	v = TG_CONTINUE;

	tg_buf_init(&b);
	for (; p < end; p++) {
		if (*p == '\n' && (b.len == 0 || b.data[b.len - 1] != '\r'))
			tg_buf_putc(&b, '\r');
		tg_buf_putc(&b, *p);
		/* Never cut between CR and LF: flush after a whole line. */
		if (b.len >= TG_SCAN_CHUNK && *p == '\n') {
			v = tg_stage_body(ctx, (unsigned char *)b.data, b.len);
			tg_buf_reset(&b);
		}
	}
	if (b.len > 0)
		v = tg_stage_body(ctx, (unsigned char *)b.data, b.len);
	tg_buf_fini(&b);
	return v;
}

/* tg_scan_envelope - connect, helo, mail and rcpt stages */
static enum tg_verdict
tg_scan_envelope(struct tg_ctx *ctx, const struct tg_scan_env *env)
{
	enum tg_verdict	v;
	size_t		i;

	v = tg_stage_connect(ctx, env->client_name, env->client_addr);
	if (!tg_verdict_final(v) && env->helo != NULL)
		v = tg_stage_helo(ctx, env->helo);
	if (tg_verdict_final(v))
		return v;
	v = tg_stage_envfrom(ctx, env->mail_from != NULL ? env->mail_from :
	    "<>");
	for (i = 0; i < env->nrcpts && !tg_verdict_final(v); i++) {
		v = tg_stage_envrcpt(ctx, env->rcpts[i]);
		if (v == TG_REJECT || v == TG_TEMPFAIL)
			v = TG_CONTINUE;	/* that recipient only */
	}
	return v;
}

/* tg_scan_message - one message through every stage */
enum tg_verdict
tg_scan_message(const struct tg_scan_env *env, const char *text, size_t len,
    struct tg_ctx **ctxp)
{
	const char	*p = text, *end = text + len;
	struct tg_hdr	 h;
	struct tg_ctx	*ctx;
	enum tg_verdict	 v;

	*ctxp = ctx = tg_ctx_new(tg_scan_macro, (void *)env);
	v = tg_scan_envelope(ctx, env);
	if (tg_verdict_final(v))
		return v;
	while (tg_header_next(p, end, &h)) {
		(void)tg_scan_header(ctx, &h);
		p += h.len;
	}
	/* The empty line that ends the headers is not part of the body. */
	if (p < end && (*p == '\n' || (*p == '\r' && p + 1 < end &&
	    p[1] == '\n')))
		p += *p == '\n' ? 1 : 2;
	/* eoh's verdict waits for eom, as in the milter */
	(void)tg_stage_eoh(ctx);
	(void)tg_scan_body(ctx, p, end);
	return tg_stage_eom(ctx);
}

/* tg_put_value - a header value with its line ends made eol */
static void
tg_put_value(struct tg_buf *b, const char *v, const char *eol)
{
	for (; *v != '\0'; v++) {
		if (*v == '\r')
			continue;
		if (*v == '\n')
			tg_buf_puts(b, eol);
		else
			tg_buf_putc(b, *v);
	}
}

/* tg_edit_deletes - whether edits delete the occurrence-th header name */
static bool
tg_edit_deletes(const struct tg_edit *e, size_t n, const char *name,
    size_t name_len, size_t occurrence)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (e[i].kind == TG_EDIT_DELETE && e[i].index == occurrence &&
		    strlen(e[i].name) == name_len &&
		    tg_strncasecmp(e[i].name, name, name_len) == 0)
			return true;
	return false;
}

/* tg_count_before - occurrences of the header's name up to and with h */
static size_t
tg_count_before(const char *text, const struct tg_hdr *h)
{
	const char	*p = text, *end = h->start + h->len;
	struct tg_hdr	 o;
	size_t		 n = 0;

	while (p < end && tg_header_next(p, end, &o)) {
		if (o.name_len == h->name_len &&
		    tg_strncasecmp(o.start, h->start, h->name_len) == 0)
			n++;
		p += o.len;
	}
	return n;
}

/* tg_apply_edits - the message as the MTA would pass it on */
char *
tg_apply_edits(const struct tg_ctx *ctx, const char *text, size_t len,
    size_t *outlen)
{
	const struct tg_edit	*e;
	const char		*p = text, *end = text + len, *eol;
	struct tg_buf		 b;
	struct tg_hdr		 h;
	size_t			 n, i;
	bool			 deletes = false;

	n = tg_ctx_edits(ctx, &e);
	for (i = 0; i < n; i++)
		deletes = deletes || e[i].kind == TG_EDIT_DELETE;
	eol = (memchr(text, '\r', len) != NULL) ? "\r\n" : "\n";
	tg_buf_init(&b);
	/* A header inserted at the top goes above those inserted before. */
	for (i = n; i > 0; i--) {
		if (e[i - 1].kind != TG_EDIT_PREPEND)
			continue;
		tg_buf_printf(&b, "%s: ", e[i - 1].name);
		tg_put_value(&b, e[i - 1].value, eol);
		tg_buf_puts(&b, eol);
	}
	while (tg_header_next(p, end, &h)) {
		if (!deletes || !tg_edit_deletes(e, n, h.start, h.name_len,
		    tg_count_before(text, &h)))
			tg_buf_append(&b, h.start, h.len);
		p += h.len;
	}
	for (i = 0; i < n; i++) {
		if (e[i].kind != TG_EDIT_ADD)
			continue;
		tg_buf_printf(&b, "%s: ", e[i].name);
		tg_put_value(&b, e[i].value, eol);
		tg_buf_puts(&b, eol);
	}
	tg_buf_append(&b, p, (size_t)(end - p));
	*outlen = b.len;
	return tg_buf_steal(&b);
}
