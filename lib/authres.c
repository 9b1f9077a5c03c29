/*
 * authres - Authentication-Results header values (RFC 8601).
 *
 * Modules hand the pipeline one resinfo each ("dkim=pass header.d=...");
 * this file joins them under our authserv-id and reads the authserv-id of
 * headers already in a message, so the pipeline can remove those that
 * claim to be ours (RFC 8601 5).  Pure functions, thread-safe.
 */
#include "config.h"

#include <string.h>

#include "tollgate/authres.h"
#include "tollgate/buf.h"

/* tg_authres_build - authserv-id and resinfos, one per folded line */
char *
tg_authres_build(const char *authserv_id, const char *const *resinfo,
    size_t n)
{
	struct tg_buf	b;
	size_t		i;

	tg_buf_init(&b);
	tg_buf_puts(&b, authserv_id);
	if (n == 0)
		tg_buf_puts(&b, "; none");
	for (i = 0; i < n; i++)
		tg_buf_printf(&b, ";\r\n\t%s", resinfo[i]);
	return tg_buf_steal(&b);
}

/* tg_authres_skip_cfws - skip white space and (nested) comments */
static const char *
tg_authres_skip_cfws(const char *p)
{
	int	depth = 0;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && depth > 0 && p[1] != '\0')
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (depth == 0 && strchr(" \t\r\n", *p) == NULL)
			break;
	}
	return p;
}

/* tg_authres_authserv_id - the first token of a header value */
bool
tg_authres_authserv_id(const char *value, char *out, size_t n)
{
	const char	*p, *start;
	size_t		 len;

	start = tg_authres_skip_cfws(value);
	for (p = start; *p != '\0' && strchr(" \t\r\n;(", *p) == NULL; p++)
		;
	len = (size_t)(p - start);
	if (len == 0 || len >= n)
		return false;
	memcpy(out, start, len);
	out[len] = '\0';
	return true;
}

/* tg_authres_value_ok - an RFC 2045 token (no specials, no controls) */
bool
tg_authres_value_ok(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;

	if (*p == '\0')
		return false;
	for (; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f ||
		    strchr("()<>,;:\\\"/[]?=", *p) != NULL)
			return false;
	return true;
}
