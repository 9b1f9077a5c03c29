/*
 * spf_report - what the SPF module writes: Received-SPF (RFC 7208 9.1),
 * the spf= resinfo of our Authentication-Results (RFC 8601 2.7.2) and
 * the SMTP reply when policy refuses the message (RFC 7372 codes).
 *
 * Everything here comes partly from the remote side (HELO name, sender,
 * the record's explanation and the reasons that quote it), so every
 * value is made printable ASCII and quoted where the header grammar
 * needs it; the pipeline bounds and cleans reply text once more.
 *
 * Threading: no state; strings built here go to message memory through
 * the tg_ctx_* calls.
 */
#include "config.h"

#include <string.h>

#include "spf_int.h"
#include "tollgate/authres.h"
#include "tollgate/buf.h"
#include "tollgate/module.h"

#define SPF_FOLD_AT	76	/* header line length we fold before */
/*
 * Longest value or name written: a reverse-path may be 256 bytes (RFC
 * 5321 4.5.3.1.3) but nothing stops a client from sending more, and no
 * header line may pass 998 (RFC 5322 2.1.1).
 */
#define SPF_VALUE_MAX	300

static bool	spf_dot_atom(const char *);
static void	spf_put_quoted(struct tg_buf *, const char *);
static void	spf_put_comment(struct tg_buf *, const char *);
static void	spf_comment(struct tg_buf *, const struct tg_ctx *,
		    const struct spf_ident *, const char *);
static void	spf_pair(struct tg_buf *, size_t *, const char *,
		    const char *);
static void	spf_wrap(struct tg_buf *, size_t *, const char *);

/* spf_dot_atom - RFC 5322 3.2.3 dot-atom-text */
static bool
spf_dot_atom(const char *s)
{
	static const char	atext[] = "!#$%&'*+-/=?^_`{|}~";
	bool			dot = true;	/* no dot may lead */

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (dot)
				return false;
			dot = true;
			continue;
		}
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr(atext, *s) != NULL))
			return false;
		dot = false;
	}
	return !dot;
}

/*
 * spf_put_quoted - a quoted-string, bytes outside printable ASCII '?',
 * cut at SPF_VALUE_MAX bytes
 */
static void
spf_put_quoted(struct tg_buf *b, const char *s)
{
	size_t	n;

	tg_buf_putc(b, '"');
	for (n = 0; *s != '\0' && n < SPF_VALUE_MAX; s++, n++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) {
			tg_buf_putc(b, '?');
			continue;
		}
		if (*s == '"' || *s == '\\')
			tg_buf_putc(b, '\\');
		tg_buf_putc(b, *s);
	}
	tg_buf_putc(b, '"');
}

/* spf_put_comment - text inside a comment: parens and \ escaped */
static void
spf_put_comment(struct tg_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) {
			tg_buf_putc(b, '?');
			continue;
		}
		if (*s == '(' || *s == ')' || *s == '\\')
			tg_buf_putc(b, '\\');
		tg_buf_putc(b, *s);
	}
}

/*
 * spf_comment - the human-readable part of Received-SPF, worded as RFC
 * 7208 9.1's example and the usual implementations word it.
 */
static void
spf_comment(struct tg_buf *b, const struct tg_ctx *ctx,
    const struct spf_ident *id, const char *who)
{
	const char	*ip = tg_ctx_peer(ctx)->addr;
	struct tg_buf	 t;

	tg_buf_init(&t);
	tg_buf_printf(&t, "%s: ", tg_ctx_authserv_id(ctx));
	switch (id->ans.result) {
	case SPF_PASS:
		tg_buf_printf(&t, "domain of %.*s designates %s as permitted "
		    "sender", SPF_VALUE_MAX, who, ip);
		break;
	case SPF_FAIL:
		tg_buf_printf(&t, "domain of %.*s does not designate %s as "
		    "permitted sender", SPF_VALUE_MAX, who, ip);
		break;
	case SPF_SOFTFAIL:
		tg_buf_printf(&t, "domain of transitioning %.*s does not "
		    "designate %s as permitted sender", SPF_VALUE_MAX, who, ip);
		break;
	case SPF_NEUTRAL:
		tg_buf_printf(&t, "%s is neither permitted nor denied by "
		    "domain of %.*s", ip, SPF_VALUE_MAX, who);
		break;
	case SPF_NONE:
		tg_buf_printf(&t, "%s", id->ans.reason[0] != '\0' ?
		    id->ans.reason : "no SPF record");
		break;
	case SPF_TEMPERROR:
		tg_buf_printf(&t, "error in processing during lookup of %.*s",
		    SPF_VALUE_MAX, who);
		break;
	case SPF_PERMERROR:
		tg_buf_printf(&t, "permanent error in processing domain of "
		    "%.*s", SPF_VALUE_MAX, who);
		break;
	}
	tg_buf_putc(b, '(');
	spf_put_comment(b, tg_buf_cstr(&t));
	tg_buf_putc(b, ')');
	tg_buf_fini(&t);
}

/*
 * spf_pair - "key=value;" on the current line, or folded onto a new
 * one when the line would grow past SPF_FOLD_AT.  *col tracks the line.
 */
static void
spf_pair(struct tg_buf *b, size_t *col, const char *key, const char *value)
{
	struct tg_buf	p;

	tg_buf_init(&p);
	tg_buf_printf(&p, "%s=", key);
	if (spf_dot_atom(value) && strlen(value) <= SPF_VALUE_MAX)
		tg_buf_puts(&p, value);
	else
		spf_put_quoted(&p, value);
	tg_buf_putc(&p, ';');
	if (*col + 1 + p.len > SPF_FOLD_AT) {
		tg_buf_puts(b, "\r\n\t");
		*col = 8;
	} else {
		tg_buf_putc(b, ' ');
		(*col)++;
	}
	tg_buf_append(b, p.data, p.len);
	*col += p.len;
	tg_buf_fini(&p);
}

/*
 * spf_wrap - text onto b, folded at its spaces before lines grow past
 * SPF_FOLD_AT (RFC 5322 2.2.3; a comment may hold folding white space).
 * A word longer than a line stays whole: lines stay far below 998.
 */
static void
spf_wrap(struct tg_buf *b, size_t *col, const char *text)
{
	const char	*p = text;
	size_t		 n;

	while (*p != '\0') {
		n = strcspn(p + 1, " ") + 1;
		if (*p == ' ' && *col + n > SPF_FOLD_AT && *col > 8) {
			tg_buf_puts(b, "\r\n\t");
			*col = 8;
			p++;
			n--;
		}
		tg_buf_append(b, p, n);
		*col += n;
		p += n;
	}
}

/* spf_report_received - see spf_int.h */
void
spf_report_received(struct tg_ctx *ctx, const struct spf_msg *m,
    const struct spf_ident *id, bool helo_id)
{
	const char	*helo = tg_ctx_helo(ctx);
	struct tg_buf	 b, first;
	size_t		 col;

	tg_buf_init(&b);
	tg_buf_init(&first);
	tg_buf_printf(&first, "%s ", spf_result_name(id->ans.result));
	spf_comment(&first, ctx, id, helo_id ? (helo != NULL ? helo : "") :
	    m->sender);
	col = sizeof("Received-SPF: ") - 1;
	spf_wrap(&b, &col, tg_buf_cstr(&first));
	tg_buf_fini(&first);
	spf_pair(&b, &col, "client-ip", tg_ctx_peer(ctx)->addr);
	spf_pair(&b, &col, "envelope-from", m->sender);
	if (helo != NULL && *helo != '\0')
		spf_pair(&b, &col, "helo", helo);
	spf_pair(&b, &col, "receiver", tg_ctx_authserv_id(ctx));
	spf_pair(&b, &col, "identity", helo_id ? "helo" : "mailfrom");
	if (id->ans.mechanism[0] != '\0')
		spf_pair(&b, &col, "mechanism", id->ans.mechanism);
	if (id->ans.result == SPF_TEMPERROR ||
	    id->ans.result == SPF_PERMERROR)
		spf_pair(&b, &col, "problem", id->ans.reason);
	tg_ctx_prepend_header(ctx, "Received-SPF", tg_buf_cstr(&b));
	tg_buf_fini(&b);
}

/* spf_report_authres - see spf_int.h */
void
spf_report_authres(struct tg_ctx *ctx, const struct spf_ident *id,
    bool helo_id)
{
	struct tg_buf	b;

	tg_buf_init(&b);
	tg_buf_printf(&b, "spf=%s %s=", spf_result_name(id->ans.result),
	    helo_id ? "smtp.helo" : "smtp.mailfrom");
	if (tg_authres_value_ok(id->domain))
		tg_buf_puts(&b, id->domain);
	else
		spf_put_quoted(&b, id->domain);
	tg_ctx_authres(ctx, "%s", tg_buf_cstr(&b));
	tg_buf_fini(&b);
}

/*
 * spf_report_reply - RFC 7372: 5.7.23 "SPF validation failed" for fail
 * and softfail, x.7.24 "SPF validation error" for the errors and for
 * any deferral.  The text names the domain and, on fail, gives the
 * explanation the domain published (RFC 7208 8.4).
 */
void
spf_report_reply(struct tg_ctx *ctx, const struct spf_ident *id,
    enum spf_action act)
{
	const char	*ip = tg_ctx_peer(ctx)->addr;
	const char	*r = spf_result_name(id->ans.result);

	if (act == SPF_ACTION_TEMPFAIL) {
		tg_ctx_reply(ctx, "451", "4.7.24", "SPF %s for %.253s, try "
		    "again later", r, id->domain);
		return;
	}
	switch (id->ans.result) {
	case SPF_FAIL:
		if (id->ans.explanation[0] != '\0')
			tg_ctx_reply(ctx, "550", "5.7.23", "SPF fail: %.300s",
			    id->ans.explanation);
		else
			tg_ctx_reply(ctx, "550", "5.7.23", "SPF fail: %s is "
			    "not allowed to send mail for %.253s", ip,
			    id->domain);
		break;
	case SPF_SOFTFAIL:
		tg_ctx_reply(ctx, "550", "5.7.23", "SPF softfail: %s is not "
		    "allowed to send mail for %.253s", ip, id->domain);
		break;
	case SPF_NONE:
	case SPF_NEUTRAL:
	case SPF_PASS:
	case SPF_TEMPERROR:
	case SPF_PERMERROR:
		tg_ctx_reply(ctx, "550", "5.7.24", "SPF %s for %.253s: %.200s",
		    r, id->domain, id->ans.reason);
		break;
	}
}
