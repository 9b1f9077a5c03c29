/*
 * dmarc_report_rua - where aggregate reports go: the rua= tag's mailto:
 * URIs, and the external destination verification of RFC 9990 4.
 *
 * rua= comes from the policy domain's DNS record, so it is the domain
 * owner's text, and maybe an attacker's: every address is checked to be
 * a plain mailbox before it can reach sendmail's argument vector, and a
 * destination outside the policy domain receives reports only when it
 * published <policy-domain>._report._dmarc.<host> IN TXT "v=DMARC1...".
 *
 * "Outside" is judged without a public suffix list: a host that is the
 * policy domain or a name under it needs no check; any other host is
 * checked, also when it is a sibling under the same organizational
 * domain.  That errs on the side the RFC protects (no report to an
 * unverified mailbox) at the cost of one TXT lookup.
 *
 * Thread-safe (no state); DNS goes through tollgate's resolver.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tollgate/buf.h"
#include "tollgate/dmarc_report.h"
#include "tollgate/dns.h"
#include "tollgate/util.h"

#include "dmarc_report_int.h"

#define DMARC_REPORT_MAX_NAME	253	/* RFC 1035 2.3.4, in text form */

static bool	dmarc_report_rua_one(const char *, size_t,
		    struct dmarc_report_rua *);
static bool	dmarc_report_rua_size(const char *, size_t, uint64_t *);
static char	*dmarc_report_pct_decode(const char *, size_t);
static bool	dmarc_report_dmarc1(const char *, char **);

/* dmarc_report_hostname_ok - letters, digits, '-', '_' labels and dots */
bool
dmarc_report_hostname_ok(const char *s)
{
	size_t	label = 0, n = 0;

	for (; *s != '\0'; s++, n++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && n <= DMARC_REPORT_MAX_NAME;
}

/* dmarc_report_rua_size - "!" 1*DIGIT [k m g t], in bytes (powers of 2) */
static bool
dmarc_report_rua_size(const char *s, size_t n, uint64_t *out)
{
	uint64_t	v = 0;
	size_t		i, shift = 0;

	for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return false;
	if (i < n) {
		switch (s[i] | 0x20) {
		case 'k': shift = 10; break;
		case 'm': shift = 20; break;
		case 'g': shift = 30; break;
		case 't': shift = 40; break;
		default: return false;
		}
		if (++i != n)
			return false;
	}
	if (shift > 0 && v > (UINT64_MAX >> shift))
		return false;
	*out = v << shift;
	return true;
}

/* dmarc_report_pct_decode - %XX escapes of a URI part; NULL if broken */
static char *
dmarc_report_pct_decode(const char *s, size_t n)
{
	struct tg_buf	b;
	size_t		i;
	unsigned int	v;
	char		hex[3] = { 0, 0, 0 };
	char		*end;

	tg_buf_init(&b);
	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			tg_buf_putc(&b, s[i]);
			continue;
		}
		if (n - i < 3) {
			tg_buf_fini(&b);
			return NULL;
		}
		hex[0] = s[i + 1];
		hex[1] = s[i + 2];
		v = (unsigned int)strtoul(hex, &end, 16);
		if (end != hex + 2 || v == 0) {
			tg_buf_fini(&b);
			return NULL;
		}
		tg_buf_putc(&b, (char)v);
		i += 2;
	}
	return tg_buf_steal(&b);
}

/* dmarc_report_mailbox_ok - local@domain, nothing a header or argv
 * could misread: no controls, spaces, quotes, brackets or separators */
bool
dmarc_report_mailbox_ok(const char *addr)
{
	const char	*at = strrchr(addr, '@'), *p;

	if (at == NULL || at == addr || addr[0] == '-')
		return false;
	for (p = addr; p < at; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
		    strchr("<>()[],;:@\\\"", *p) != NULL)
			return false;
	return dmarc_report_hostname_ok(at + 1);
}

/* dmarc_report_rua_one - one URI (already trimmed) into r */
static bool
dmarc_report_rua_one(const char *s, size_t n, struct dmarc_report_rua *r)
{
	const char	*bang, *q;
	size_t		 alen, i;
	char		*addr;

	memset(r, 0, sizeof(*r));
	if (n < 7 || tg_strncasecmp(s, "mailto:", 7) != 0)
		return false;
	s += 7;
	n -= 7;
	/* RFC 9989: "!" and "," inside a URI must be %-encoded. */
	if ((bang = memchr(s, '!', n)) != NULL) {
		if (!dmarc_report_rua_size(bang + 1, n - (size_t)(bang - s) - 1,
		    &r->max_size))
			return false;
		n = (size_t)(bang - s);
	}
	/* RFC 6068 hfields (?subject=...) are not ours to follow. */
	alen = (q = memchr(s, '?', n)) != NULL ? (size_t)(q - s) : n;
	if ((addr = dmarc_report_pct_decode(s, alen)) == NULL)
		return false;
	if (!dmarc_report_mailbox_ok(addr)) {
		free(addr);
		return false;
	}
	r->addr = addr;
	r->host = tg_strdup(strrchr(addr, '@') + 1);
	for (i = 0; r->host[i] != '\0'; i++)
		if (r->host[i] >= 'A' && r->host[i] <= 'Z')
			r->host[i] = (char)(r->host[i] - 'A' + 'a');
	return true;
}

/* dmarc_report_rua_parse - split a rua= value at commas */
void
dmarc_report_rua_parse(const char *rua, struct dmarc_report_rua **out,
    size_t *n, size_t *nskipped)
{
	struct dmarc_report_rua	 r;
	const char		*p, *e, *comma;
	size_t			 skipped = 0;

	*out = NULL;
	*n = 0;
	for (p = rua != NULL ? rua : ""; *p != '\0'; p = comma + 1) {
		if ((comma = strchr(p, ',')) == NULL)
			comma = p + strlen(p);
		e = comma;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > p) {
			if (dmarc_report_rua_one(p, (size_t)(e - p), &r)) {
				*out = tg_reallocarray(*out, *n + 1,
				    sizeof(**out));
				(*out)[(*n)++] = r;
			} else
				skipped++;
		}
		if (*comma == '\0')
			break;
	}
	if (nskipped != NULL)
		*nskipped = skipped;
}

/* dmarc_report_rua_free - release a parsed list */
void
dmarc_report_rua_free(struct dmarc_report_rua *r, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(r[i].addr);
		free(r[i].host);
	}
	free(r);
}

/*
 * dmarc_report_dmarc1 - whether a TXT record is tag=value pairs starting
 * with v=DMARC1 (RFC 9990 4 step 6); its rua= value into *rua
 */
static bool
dmarc_report_dmarc1(const char *txt, char **rua)
{
	char	*copy, *tag, *next, *eq, *val;
	bool	 first = true, ok = false;

	*rua = NULL;
	copy = tg_strdup(txt);
	for (tag = copy; tag != NULL; tag = next) {
		if ((next = strchr(tag, ';')) != NULL)
			*next++ = '\0';
		tag = tg_trim(tag);
		if (*tag == '\0' && !first)
			continue;
		if ((eq = strchr(tag, '=')) == NULL)
			break;
		*eq = '\0';
		val = tg_trim(eq + 1);
		tag = tg_trim(tag);
		if (first) {
			if (strcmp(tag, "v") != 0 || strcmp(val, "DMARC1") != 0)
				break;
			first = false;
			ok = true;
		} else if (strcmp(tag, "rua") == 0 && *rua == NULL)
			*rua = tg_strdup(val);
	}
	free(copy);
	if (!ok) {
		free(*rua);
		*rua = NULL;
	}
	return ok;
}

/* dmarc_report_in_domain - host is domain or a name under it */
static bool
dmarc_report_in_domain(const char *host, const char *domain)
{
	size_t	h = strlen(host), d = strlen(domain);

	if (h == d)
		return tg_strcasecmp(host, domain) == 0;
	return h > d && host[h - d - 1] == '.' &&
	    tg_strcasecmp(host + h - d, domain) == 0;
}

/* dmarc_report_verify_dest - RFC 9990 4, steps 1 to 9 */
enum tg_status
dmarc_report_verify_dest(struct tg_dns *dns, const char *policy_domain,
    const char *host, char **override, struct tg_err *err)
{
	struct tg_dns_answer	*ans = NULL;
	enum tg_status		 st;
	char			*name, *txt, *rua;
	size_t			 i;

	if (override != NULL)
		*override = NULL;
	if (dmarc_report_in_domain(host, policy_domain))
		return TG_OK;
	name = tg_printf_dup("%s._report._dmarc.%s", policy_domain, host);
	if (strlen(name) > DMARC_REPORT_MAX_NAME) {
		/* Step 4: no positive determination can be made. */
		st = tg_err_set(err, TG_NOTFOUND, "%s: name too long", name);
		free(name);
		return st;
	}
	st = tg_dns_resolve(dns, name, TG_DNS_TXT, &ans, err);
	if (st == TG_TEMP || st == TG_PERM) {
		free(name);
		return st == TG_TEMP ? TG_TEMP : tg_err_set(err, TG_NOTFOUND,
		    "%s: unusable name", policy_domain);
	}
	st = tg_err_set(err, TG_NOTFOUND, "%s: no v=DMARC1 record", name);
	for (i = 0; ans != NULL && i < ans->count; i++) {
		if ((txt = tg_dns_txt_join(ans, i)) == NULL)
			continue;
		if (dmarc_report_dmarc1(txt, &rua)) {
			st = TG_OK;
			if (override != NULL && *override == NULL)
				*override = rua;
			else
				free(rua);
		}
		free(txt);
	}
	ans = tg_dns_answer_free(ans);
	free(name);
	return st;
}
