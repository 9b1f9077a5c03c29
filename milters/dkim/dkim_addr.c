/*
 * dkim_addr - the author address of a From: field, for choosing keys.
 *
 * RFC 5322 3.4: From: is a mailbox-list.  We sign only when it holds
 * exactly one mailbox, and take that mailbox's addr-spec: the part in
 * angle brackets if there is one, else the whole text, with comments
 * removed, quoted local parts unquoted and the domain lowercased.  Groups,
 * domain literals and anything unparsable are refused with a reason for
 * the log.  Also the domain-name syntax checks shared by the module.
 * Pure functions, thread-safe.
 */
#include "config.h"

#include <string.h>

#include "dkim_int.h"

#define DKIM_LABEL_MAX	63
#define DKIM_DOMAIN_MAX	253

/* dkim_addr_strip - the value without comments; quoted strings kept */
static void
dkim_addr_strip(const char *v, struct tg_buf *out)
{
	int	depth = 0;
	bool	quoted = false;

	for (; *v != '\0'; v++) {
		if (*v == '\\' && v[1] != '\0' && (quoted || depth > 0)) {
			if (depth == 0) {
				tg_buf_putc(out, v[0]);
				tg_buf_putc(out, v[1]);
			}
			v++;
		} else if (depth == 0 && *v == '"') {
			quoted = !quoted;
			tg_buf_putc(out, *v);
		} else if (!quoted && *v == '(') {
			depth++;
		} else if (!quoted && *v == ')' && depth > 0) {
			if (--depth == 0)
				tg_buf_putc(out, ' ');
		} else if (depth == 0)
			tg_buf_putc(out, *v == '\r' || *v == '\n' ? ' ' : *v);
	}
}

/* dkim_addr_scan - find top-level ',' '<' '>' ':' '@' outside quotes */
static const char *
dkim_addr_scan(const char *p, const char *set)
{
	bool	quoted = false;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && quoted && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && strchr(set, *p) != NULL)
			return p;
	}
	return NULL;
}

/* dkim_addr_local - the local part, unquoted and lowercased */
static bool
dkim_addr_local(const char *p, const char *end, struct tg_buf *user)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (; p < end; p++) {
		if (*p == '"')
			continue;
		if (*p == '\\' && p + 1 < end)
			p++;
		tg_buf_putc(user, *p >= 'A' && *p <= 'Z' ?
		    (char)(*p - 'A' + 'a') : *p);
	}
	return user->len > 0;
}

/* dkim_addr_domain - the domain, trimmed, lowercased, no final dot */
static bool
dkim_addr_domain(const char *p, const char *end, struct tg_buf *domain)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end > p && end[-1] == '.')
		end--;
	for (; p < end; p++)
		tg_buf_putc(domain, *p >= 'A' && *p <= 'Z' ?
		    (char)(*p - 'A' + 'a') : *p);
	return dkim_domain_ok(tg_buf_cstr(domain));
}

/* dkim_addr_spec - split "local@domain" between start and end */
static bool
dkim_addr_spec(const char *start, const char *end, struct tg_buf *user,
    struct tg_buf *domain, const char **why)
{
	const char	*at = NULL, *p, *route;

	/* Obsolete source route "@a,@b:user@dom" (RFC 5322 4.4). */
	if ((route = dkim_addr_scan(start, ":")) != NULL && route < end)
		start = route + 1;
	for (p = dkim_addr_scan(start, "@"); p != NULL && p < end;
	    p = dkim_addr_scan(p + 1, "@"))
		at = p;
	if (at == NULL) {
		*why = "no @ in the address";
		return false;
	}
	if (!dkim_addr_local(start, at, user)) {
		*why = "empty local part";
		return false;
	}
	if (!dkim_addr_domain(at + 1, end, domain)) {
		*why = "domain is not a valid domain name";
		return false;
	}
	return true;
}

/* dkim_addr_parse - the one mailbox of a From: value */
bool
dkim_addr_parse(const char *value, struct tg_buf *user, struct tg_buf *domain,
    const char **why)
{
	struct tg_buf	 b;
	const char	*s, *lt, *gt;
	bool		 ok = false;

	tg_buf_init(&b);
	dkim_addr_strip(value, &b);
	s = tg_buf_cstr(&b);
	if (dkim_addr_scan(s, ",") != NULL)
		*why = "more than one address";
	else if ((lt = dkim_addr_scan(s, "<")) != NULL) {
		if ((gt = dkim_addr_scan(lt, ">")) == NULL)
			*why = "no closing >";
		else if (dkim_addr_scan(lt + 1, "<") != NULL &&
		    dkim_addr_scan(lt + 1, "<") < gt)
			*why = "nested <";
		else if (dkim_addr_scan(s, ":") != NULL &&
		    dkim_addr_scan(s, ":") < lt)
			*why = "group syntax";
		else
			ok = dkim_addr_spec(lt + 1, gt, user, domain, why);
	} else if (dkim_addr_scan(s, ";") != NULL)
		*why = "group syntax";
	else
		ok = dkim_addr_spec(s, s + strlen(s), user, domain, why);
	tg_buf_fini(&b);
	return ok;
}

/* dkim_label_char - letter, digit, hyphen or underscore */
static bool
dkim_label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* dkim_labels_ok - dot-separated labels of at most 63 characters */
bool
dkim_labels_ok(const char *s, size_t min)
{
	size_t	len = 0, labels = 0;

	if (s == NULL || strlen(s) > DKIM_DOMAIN_MAX)
		return false;
	for (;; s++) {
		if (*s == '.' || *s == '\0') {
			if (len == 0 || s[-1] == '-')
				return false;
			labels++;
			len = 0;
			if (*s == '\0')
				return labels >= min;
		} else if (!dkim_label_char(*s) || ++len > DKIM_LABEL_MAX ||
		    (len == 1 && *s == '-'))
			return false;
	}
}

/* dkim_domain_ok - at least two labels: "example.com" */
bool
dkim_domain_ok(const char *s)
{
	return dkim_labels_ok(s, 2);
}
