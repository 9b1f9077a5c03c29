/*
 * spam_dnsbl - DNS blocklists: the client address (or the first
 * untrusted hop) against DNSBL zones, URI host names against URIBL
 * zones, each listing's return code mapped to points.
 *
 * Configuration is one string per kind, zones separated by blanks:
 *   zen.example:127.0.0.2=3.0,127.0.0.4=2.5 other.example:any=1.5
 * "any" matches every 127.0.0.0/8 answer; a zone without a map is
 * "any=1.0".  The rule name is RCVD_IN_<ZONE> (URIBL_<ZONE>), the zone
 * uppercased with every other character '_', so a rule set's score
 * lines can set its points by that name.
 *
 * Queries go through tollgate's resolver: started early (tg_dns_start
 * never blocks), collected late (tg_dns_wait is bounded by the
 * query's deadline).  A failed or timed-out query gives no points and
 * is reported to the caller, who logs it.
 *
 * Threads: a struct spam_dnsbl is read-only after parse; a struct
 * spam_dnsbl_q belongs to one message.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/buf.h"
#include "tollgate/dns.h"
#include "tollgate/util.h"

#include "spam_int.h"

#define SPAM_DNSBL_MAX_CODES	16
#define SPAM_DNSBL_MAX_ZONES	16

struct spam_dnsbl_code {
	bool		any;
	unsigned char	addr[4];
	double		points;
};

struct spam_dnsbl_zone {
	char			*zone;
	char			*rule;
	bool			 uri;
	struct spam_dnsbl_code	 codes[SPAM_DNSBL_MAX_CODES];
	size_t			 ncodes;
};

struct spam_dnsbl {
	struct spam_dnsbl_zone	zones[SPAM_DNSBL_MAX_ZONES];
	size_t			nzones;
};

struct spam_dnsbl_one {
	const struct spam_dnsbl_zone	*zone;
	char				*name;
	struct tg_dns_query		*q;
};

struct spam_dnsbl_q {
	struct spam_dnsbl_one	*v;
	size_t			 n, cap;
};

/* spam_dnsbl_code_parse - "127.0.0.2=3.0" or "any=1.5" */
static bool
spam_dnsbl_code_parse(const char *s, size_t len, struct spam_dnsbl_code *c)
{
	char	*t = tg_strndup(s, len), *eq, *end;
	bool	 ok = false;

	memset(c, 0, sizeof(*c));
	if ((eq = strchr(t, '=')) == NULL) {
		free(t);
		return false;
	}
	*eq = '\0';
	if (strcmp(t, "any") == 0)
		c->any = true;
	else if (inet_pton(AF_INET, t, c->addr) != 1)
		goto out;
	c->points = strtod(eq + 1, &end);
	ok = end != eq + 1 && *end == '\0' && c->points > -100 &&
	    c->points < 100;
out:
	free(t);
	return ok;
}

/* spam_dnsbl_zone_parse - "zone[:map]" into z */
static enum tg_status
spam_dnsbl_zone_parse(const char *s, size_t len, bool uri,
    struct spam_dnsbl_zone *z, struct tg_err *err)
{
	const char	*colon = memchr(s, ':', len), *p, *end = s + len;
	size_t		 zl = colon != NULL ? (size_t)(colon - s) : len, n, i;

	if (zl == 0 || zl > 200)
		return tg_err_set(err, TG_PERM, "bad zone \"%.*s\"", (int)len, s);
	z->zone = tg_strndup(s, zl);
	z->uri = uri;
	z->rule = tg_printf_dup("%s%s", uri ? "URIBL_" : "RCVD_IN_", z->zone);
	for (i = uri ? 6 : 8; z->rule[i] != '\0'; i++) {
		if (z->rule[i] >= 'a' && z->rule[i] <= 'z')
			z->rule[i] = (char)(z->rule[i] - 32);
		else if (!((z->rule[i] >= 'A' && z->rule[i] <= 'Z') ||
		    (z->rule[i] >= '0' && z->rule[i] <= '9')))
			z->rule[i] = '_';
	}
	if (colon == NULL) {
		z->codes[0].any = true;
		z->codes[0].points = 1.0;
		z->ncodes = 1;
		return TG_OK;
	}
	for (p = colon + 1; p < end; p += n + 1) {
		n = strcspn(p, ",");
		if ((size_t)(end - p) < n)
			n = (size_t)(end - p);
		if (z->ncodes == SPAM_DNSBL_MAX_CODES ||
		    !spam_dnsbl_code_parse(p, n, &z->codes[z->ncodes]))
			return tg_err_set(err, TG_PERM, "zone %s: bad return "
			    "code map \"%.*s\" (want 127.0.0.N=points or "
			    "any=points)", z->zone, (int)n, p);
		z->ncodes++;
	}
	return TG_OK;
}

/* spam_dnsbl_add - every zone of one setting */
static enum tg_status
spam_dnsbl_add(struct spam_dnsbl *d, const char *s, bool uri,
    struct tg_err *err)
{
	size_t	len;

	for (;;) {
		s += strspn(s, " \t");
		if (*s == '\0')
			return TG_OK;
		len = strcspn(s, " \t");
		if (d->nzones == SPAM_DNSBL_MAX_ZONES)
			return tg_err_set(err, TG_PERM, "more than %d zones",
			    SPAM_DNSBL_MAX_ZONES);
		if (spam_dnsbl_zone_parse(s, len, uri, &d->zones[d->nzones++],
		    err) != TG_OK)
			return TG_PERM;
		s += len;
	}
}

/* spam_dnsbl_parse - see spam_int.h */
enum tg_status
spam_dnsbl_parse(struct spam_dnsbl **out, const char *dnsbl,
    const char *uribl, struct tg_err *err)
{
	struct spam_dnsbl	*d = tg_calloc(1, sizeof(*d));

	*out = NULL;
	if (spam_dnsbl_add(d, dnsbl, false, err) != TG_OK ||
	    spam_dnsbl_add(d, uribl, true, err) != TG_OK) {
		(void)spam_dnsbl_free(d);
		return TG_PERM;
	}
	*out = d;
	return TG_OK;
}

/* spam_dnsbl_free - see spam_int.h */
struct spam_dnsbl *
spam_dnsbl_free(struct spam_dnsbl *d)
{
	size_t	i;

	if (d == NULL)
		return NULL;
	for (i = 0; i < d->nzones; i++) {
		free(d->zones[i].zone);
		free(d->zones[i].rule);
	}
	free(d);
	return NULL;
}

/* spam_dnsbl_count - zones of the kind */
size_t
spam_dnsbl_count(const struct spam_dnsbl *d, bool uri)
{
	size_t	i, n = 0;

	for (i = 0; d != NULL && i < d->nzones; i++)
		if (d->zones[i].uri == uri)
			n++;
	return n;
}

/* spam_dnsbl_push - one query in flight */
static void
spam_dnsbl_push(struct spam_dnsbl_q *q, const struct spam_dnsbl_zone *z,
    struct tg_dns *dns, char *name)
{
	if (q->n == q->cap) {
		q->cap = q->cap == 0 ? 8 : q->cap * 2;
		q->v = tg_reallocarray(q->v, q->cap, sizeof(*q->v));
	}
	q->v[q->n].zone = z;
	q->v[q->n].name = name;
	q->v[q->n++].q = tg_dns_start(dns, name, TG_DNS_A);
}

/* spam_dnsbl_reverse - an address as DNSBL labels, or NULL */
static char *
spam_dnsbl_reverse(const char *ip)
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 a[16];
	struct tg_buf		 b;
	int			 i;

	if (inet_pton(AF_INET, ip, a) == 1)
		return tg_printf_dup("%u.%u.%u.%u", a[3], a[2], a[1], a[0]);
	if (inet_pton(AF_INET6, ip, a) != 1)
		return NULL;
	tg_buf_init(&b);
	for (i = 15; i >= 0; i--) {
		tg_buf_putc(&b, hex[a[i] & 0xf]);
		tg_buf_putc(&b, '.');
		tg_buf_putc(&b, hex[a[i] >> 4]);
		if (i > 0)
			tg_buf_putc(&b, '.');
	}
	return tg_buf_steal(&b);
}

/* spam_dnsbl_start_ip - see spam_int.h */
struct spam_dnsbl_q *
spam_dnsbl_start_ip(const struct spam_dnsbl *d, struct tg_dns *dns,
    const char *ip)
{
	struct spam_dnsbl_q	*q;
	char			*rev;
	size_t			 i;

	if (d == NULL || dns == NULL || ip == NULL ||
	    spam_dnsbl_count(d, false) == 0 ||
	    (rev = spam_dnsbl_reverse(ip)) == NULL)
		return NULL;
	q = tg_calloc(1, sizeof(*q));
	for (i = 0; i < d->nzones; i++)
		if (!d->zones[i].uri)
			spam_dnsbl_push(q, &d->zones[i], dns, tg_printf_dup(
			    "%s.%s", rev, d->zones[i].zone));
	free(rev);
	return q;
}

/* spam_dnsbl_start_uri - see spam_int.h */
struct spam_dnsbl_q *
spam_dnsbl_start_uri(const struct spam_dnsbl *d, struct tg_dns *dns,
    char *const *domains, size_t ndomains, size_t max)
{
	struct spam_dnsbl_q	*q;
	unsigned char		 a[16];
	size_t			 i, j;

	if (d == NULL || dns == NULL || spam_dnsbl_count(d, true) == 0 ||
	    ndomains == 0)
		return NULL;
	q = tg_calloc(1, sizeof(*q));
	for (j = 0; j < ndomains && j < max; j++) {
		/* an address literal is not a name a URIBL lists */
		if (inet_pton(AF_INET, domains[j], a) == 1 ||
		    strchr(domains[j], '.') == NULL)
			continue;
		for (i = 0; i < d->nzones; i++)
			if (d->zones[i].uri)
				spam_dnsbl_push(q, &d->zones[i], dns,
				    tg_printf_dup("%s.%s", domains[j],
				    d->zones[i].zone));
	}
	return q;
}

/* spam_dnsbl_points - the points of an answer's addresses, 0 if none */
static double
spam_dnsbl_points(const struct spam_dnsbl_zone *z,
    const struct tg_dns_answer *ans, struct tg_buf *codes)
{
	double	pts = 0;
	size_t	i, k;
	bool	hit;

	for (i = 0; i < ans->count; i++) {
		if (ans->rdlen[i] != 4 || ans->rdata[i][0] != 127)
			continue;
		hit = false;
		for (k = 0; k < z->ncodes; k++) {
			if (z->codes[k].any ||
			    memcmp(z->codes[k].addr, ans->rdata[i], 4) == 0) {
				pts += z->codes[k].points;
				hit = true;
			}
		}
		if (hit)
			tg_buf_printf(codes, "%s%u.%u.%u.%u", codes->len > 0 ?
			    "," : "", ans->rdata[i][0], ans->rdata[i][1],
			    ans->rdata[i][2], ans->rdata[i][3]);
	}
	return pts;
}

/* spam_dnsbl_wait - see spam_int.h */
size_t
spam_dnsbl_wait(struct spam_dnsbl_q *q, const struct spam_rules *rules,
    struct spam_score *sc, struct tg_buf *failed)
{
	struct tg_dns_answer	*ans;
	struct tg_err		 err;
	struct tg_buf		 codes;
	enum tg_status		 st;
	char			*desc;
	double			 pts;
	size_t			 i, nfail = 0;

	if (q == NULL)
		return 0;
	for (i = 0; i < q->n; i++) {
		ans = NULL;
		st = q->v[i].q != NULL ? tg_dns_wait(q->v[i].q, &ans, &err) :
		    tg_err_set(&err, TG_TEMP, "query not started");
		q->v[i].q = NULL;
		if (st == TG_TEMP || st == TG_PERM) {
			tg_buf_printf(failed, "%s%s (%s)", nfail > 0 ? ", " :
			    "", q->v[i].name, err.text);
			nfail++;
		} else if (st == TG_OK) {
			tg_buf_init(&codes);
			if ((pts = spam_dnsbl_points(q->v[i].zone, ans,
			    &codes)) != 0 || codes.len > 0) {
				/* a rule set's score line has the last word */
				if (rules != NULL)
					(void)spam_rules_score(rules,
					    q->v[i].zone->rule, &pts);
				desc = tg_printf_dup("listed in %s (%s)",
				    q->v[i].zone->zone, tg_buf_cstr(&codes));
				spam_score_add(sc, q->v[i].zone->rule, pts,
				    desc);
				free(desc);
			}
			tg_buf_fini(&codes);
		}
		ans = tg_dns_answer_free(ans);
	}
	return nfail;
}

/* spam_dnsbl_q_free - see spam_int.h */
struct spam_dnsbl_q *
spam_dnsbl_q_free(struct spam_dnsbl_q *q)
{
	size_t	i;

	if (q == NULL)
		return NULL;
	for (i = 0; i < q->n; i++) {
		if (q->v[i].q != NULL)
			tg_dns_cancel(q->v[i].q);
		free(q->v[i].name);
	}
	free(q->v);
	free(q);
	return NULL;
}

/* spam_dnsbl_rule - the rule name of the i-th zone (tests, scan) */
const char *
spam_dnsbl_rule(const struct spam_dnsbl *d, size_t i)
{
	return d != NULL && i < d->nzones ? d->zones[i].rule : NULL;
}
