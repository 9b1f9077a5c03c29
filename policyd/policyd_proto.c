/*
 * policyd_proto - the policy-delegation codec: requests in, replies out.
 *
 * A request is "name=value" lines, each ended by LF (a CR before it is
 * dropped), and ends with an empty line.  The parser works on the bytes
 * the connection has buffered and is restartable: it either finds a
 * whole request or consumes nothing.  Limits (PD_LINE_MAX and the
 * others) bound what one client can make us hold; past one the client
 * gets disconnected, as it cannot be a Postfix smtpd.  No I/O, no
 * global state: safe anywhere.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/policyd.h"

/* pd_name_ok - attribute names are lower-case words (a-z, 0-9, _) */
static bool
pd_name_ok(const char *p, size_t len)
{
	size_t	i;

	if (len == 0 || len > 64)
		return false;
	for (i = 0; i < len; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' &&
		    p[i] <= '9') || p[i] == '_'))
			return false;
	return true;
}

/* pd_malformed - mark req malformed once, keeping the first reason */
static void
pd_malformed(struct pd_request *req, const char *why)
{
	if (req->malformed)
		return;
	req->malformed = true;
	(void)snprintf(req->why, sizeof(req->why), "%s", why);
}

/* pd_line - one "name=value" line into req */
static void
pd_line(struct pd_request *req, const char *line, size_t len)
{
	const char	*eq;
	size_t		 nlen;

	if (memchr(line, '\0', len) != NULL) {
		pd_malformed(req, "NUL byte in request");
		return;
	}
	if ((eq = memchr(line, '=', len)) == NULL) {
		pd_malformed(req, "line without '='");
		return;
	}
	nlen = (size_t)(eq - line);
	if (!pd_name_ok(line, nlen)) {
		pd_malformed(req, "bad attribute name");
		return;
	}
	if (req->nattrs > 0) {
		char	*name = tg_strndup(line, nlen);
		bool	 dup = pd_request_get(req, name) != NULL;

		free(name);
		if (dup) {
			pd_malformed(req, "duplicate attribute");
			return;
		}
	}
	req->attrs[req->nattrs].name = tg_strndup(line, nlen);
	req->attrs[req->nattrs].value = tg_strndup(eq + 1, len - nlen - 1);
	req->nattrs++;
}

/* pd_proto_parse - see policyd.h */
enum pd_parse
pd_proto_parse(const char *buf, size_t len, size_t *used,
    struct pd_request *req)
{
	const char	*nl;
	size_t		 pos = 0, llen, avail, nlines = 0;

	memset(req, 0, sizeof(*req));
	for (;;) {
		avail = len - pos;
		nl = memchr(buf + pos, '\n', avail < PD_LINE_MAX + 2 ?
		    avail : PD_LINE_MAX + 2);
		if (nl == NULL) {
			pd_request_clear(req);
			return avail > PD_LINE_MAX + 1 || pos + avail >
			    PD_REQUEST_MAX ? PD_PARSE_TOO_MUCH : PD_PARSE_MORE;
		}
		llen = (size_t)(nl - (buf + pos));
		if (llen > 0 && buf[pos + llen - 1] == '\r')
			llen--;
		if (llen > PD_LINE_MAX || pos + llen > PD_REQUEST_MAX ||
		    ++nlines > PD_ATTRS_MAX + 1) {
			pd_request_clear(req);
			return PD_PARSE_TOO_MUCH;
		}
		if (llen == 0) {
			*used = (size_t)(nl - buf) + 1;
			return PD_PARSE_DONE;
		}
		if (req->nattrs == PD_ATTRS_MAX) {
			pd_request_clear(req);
			return PD_PARSE_TOO_MUCH;
		}
		pd_line(req, buf + pos, llen);
		pos = (size_t)(nl - buf) + 1;
	}
}

/* pd_request_clear - release the attributes */
void
pd_request_clear(struct pd_request *req)
{
	size_t	i;

	for (i = 0; i < req->nattrs; i++) {
		free(req->attrs[i].name);
		free(req->attrs[i].value);
	}
	memset(req, 0, sizeof(*req));
}

/* pd_request_get - linear: a request has some 30 attributes */
const char *
pd_request_get(const struct pd_request *req, const char *name)
{
	size_t	i;

	for (i = 0; i < req->nattrs; i++)
		if (strcmp(req->attrs[i].name, name) == 0)
			return req->attrs[i].value;
	return NULL;
}

/* pd_proto_reply - an action line Postfix can read whatever we got */
void
pd_proto_reply(struct tg_buf *out, const char *action)
{
	size_t	i;

	tg_buf_puts(out, "action=");
	for (i = 0; action[i] != '\0' && i < PD_ACTION_MAX; i++) {
		unsigned char	c = (unsigned char)action[i];

		tg_buf_putc(out, c >= ' ' && c < 0x7f ? (char)c : '?');
	}
	tg_buf_puts(out, "\n\n");
}

/*
 * pd_action_code_ok - "4NN text" or "5NN text", and a DSN code after it,
 * if any, of the same class (STYLE: replies from config are checked)
 */
static bool
pd_action_code_ok(const char *t)
{
	if ((t[0] != '4' && t[0] != '5') || t[1] < '0' || t[1] > '9' ||
	    t[2] < '0' || t[2] > '9' || (t[3] != '\0' && t[3] != ' '))
		return false;
	if (t[3] == '\0' || t[4] < '2' || t[4] > '5' || t[5] != '.')
		return true;	/* no DSN code */
	return t[4] == t[0];
}

/* pd_action_ok - the access(5) actions a policy server may answer */
bool
pd_action_ok(const char *text)
{
	static const char *const bare[] = { "DUNNO", "OK", "PREPEND",
	    "DEFER_IF_PERMIT", "DEFER_IF_REJECT", "DEFER", "REJECT", "HOLD",
	    "DISCARD", "WARN", "INFO", NULL };
	size_t	i, len, n;

	n = strlen(text);
	if (n == 0 || n > PD_ACTION_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)text[i] < ' ' ||
		    (unsigned char)text[i] >= 0x7f)
			return false;
	if (text[0] >= '0' && text[0] <= '9')
		return pd_action_code_ok(text);
	for (i = 0; bare[i] != NULL; i++) {
		len = strlen(bare[i]);
		if (strncmp(text, bare[i], len) == 0 &&
		    (text[len] == '\0' || text[len] == ' '))
			return true;
	}
	return false;
}
