/*
 * dkim_resolver - libopendkim's key queries go through our resolver.
 *
 * libopendkim asks through four hooks (start, wait, cancel, plus the
 * service handle) and parses the reply packet we copy into its buffer.
 * What it makes of our answers (checked against libopendkim 2.11's
 * dkim_get_key_dns and by dkim_test):
 *
 *   TG_OK        the reply packet           key record parsed
 *   TG_NOTFOUND  the NXDOMAIN/NODATA reply  DKIM_SIGERROR_NOKEY: permerror
 *   TG_PERM      an NXDOMAIN we build       no key can exist: permerror
 *   TG_TEMP      DKIM_DNS_ERROR             DKIM_SIGERROR_KEYFAIL: temperror
 *
 * libopendkim's own resolver reports NXDOMAIN as a failed query, i.e. a
 * temporary error; with these hooks a missing key is a permanent one, as
 * RFC 6376 6.1.2 says, and a timeout or SERVFAIL stays temporary (we
 * never hand libopendkim a SERVFAIL packet: it would read it as "no
 * key").  A reply that lacks a packet, or one larger than libopendkim's
 * buffer, is rebuilt from the answer's records.  The resolver is shared
 * and thread-safe; each query handle belongs to the one thread verifying
 * that message.  Init and close are no-ops: the resolver's lifetime is
 * the pipeline's, not libopendkim's.  Queries dkim_prefetch already made
 * for this message are answered from its list, not asked again.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "dkim_int.h"
#include "tollgate/log.h"

#define DKIM_DNS_HDRLEN		12
#define DKIM_DNS_RCODE_NX	3

/* One query libopendkim started. */
struct dkim_rquery {
	struct tg_dns_query	*q;	/* NULL once waited on */
	bool			 pre;	/* answered from the prefetch list */
	enum tg_status		 pre_st;
	const struct tg_dns_answer *pre_ans;	/* borrowed from the list */
	unsigned char		*buf;	/* libopendkim's reply buffer */
	size_t			 buflen;
	char			*name;
	int			 type;
};

/* dkim_wire_name - name in DNS wire format at p; 0 if it cannot be */
static size_t
dkim_wire_name(const char *name, unsigned char *p, size_t cap)
{
	size_t		 o = 0, len;
	const char	*dot;

	while (*name != '\0') {
		dot = strchr(name, '.');
		len = dot != NULL ? (size_t)(dot - name) : strlen(name);
		if (len == 0 || len > 63 || o + len + 2 > cap || o + len > 254)
			return 0;
		p[o++] = (unsigned char)len;
		memcpy(p + o, name, len);
		o += len;
		name += len + (dot != NULL ? 1 : 0);
	}
	p[o++] = 0;
	return o;
}

/* dkim_put16 - a 16-bit field, network order */
static void
dkim_put16(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)((v >> 8) & 0xff);
	p[1] = (unsigned char)(v & 0xff);
}

/*
 * dkim_packet_build - a reply packet for name/type: rcode and, when ans
 * is given, its records; 0 if it does not fit in cap.
 */
static size_t
dkim_packet_build(const struct dkim_rquery *rq, int rcode,
    const struct tg_dns_answer *ans, unsigned char *p, size_t cap)
{
	size_t	o, n, i, count = ans != NULL ? ans->count : 0;

	if (cap < DKIM_DNS_HDRLEN + 4 || count > 0xffff)
		return 0;
	memset(p, 0, DKIM_DNS_HDRLEN);
	p[2] = 0x81;				/* QR, RD */
	p[3] = (unsigned char)(0x80 | (rcode & 0x0f));	/* RA, rcode */
	dkim_put16(p + 4, 1);
	dkim_put16(p + 6, count);
	if ((n = dkim_wire_name(rq->name, p + DKIM_DNS_HDRLEN,
	    cap - DKIM_DNS_HDRLEN - 4)) == 0)
		return 0;
	o = DKIM_DNS_HDRLEN + n;
	dkim_put16(p + o, (size_t)rq->type);
	dkim_put16(p + o + 2, 1);		/* class IN */
	o += 4;
	for (i = 0; i < count; i++) {
		if (ans->rdlen[i] > 0xffff || o + 12 + ans->rdlen[i] > cap)
			return 0;
		p[o] = 0xc0;			/* the question's name */
		p[o + 1] = DKIM_DNS_HDRLEN;
		dkim_put16(p + o + 2, (size_t)ans->qtype);
		dkim_put16(p + o + 4, 1);
		memset(p + o + 6, 0, 4);	/* TTL: unused */
		dkim_put16(p + o + 10, ans->rdlen[i]);
		memcpy(p + o + 12, ans->rdata[i], ans->rdlen[i]);
		o += 12 + ans->rdlen[i];
	}
	return o;
}

/* dkim_packet_copy - the answer's packet into libopendkim's buffer */
static size_t
dkim_packet_copy(const struct dkim_rquery *rq, const struct tg_dns_answer *ans,
    int rcode)
{
	if (ans != NULL && ans->packet != NULL && ans->packet_len > 0 &&
	    ans->packet_len <= rq->buflen) {
		memcpy(rq->buf, ans->packet, ans->packet_len);
		return ans->packet_len;
	}
	return dkim_packet_build(rq, rcode, ans, rq->buf, rq->buflen);
}

/*
 * dkim_name_ok - whether a key query name is made of host-name labels:
 * d= and s= are domain names (RFC 6376 3.1, 3.5), so a name with other
 * bytes comes from a malformed signature and has no key (permerror); the
 * resolver itself would look such a name up, as SPF macros need.
 */
static bool
dkim_name_ok(const char *name)
{
	const char	*p;
	size_t		 label = 0;

	for (p = name; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_')
			label++;
		else
			return false;
	}
	return label > 0 || (p > name && p[-1] == '.');
}

/* dkim_resolver_start - begin one query (never blocks) */
static int
dkim_resolver_start(void *srv, int type, unsigned char *query,
    unsigned char *buf, size_t buflen, void **qh)
{
	struct dkim_rquery	*rq;

	rq = tg_calloc(1, sizeof(*rq));
	rq->name = tg_strdup((const char *)query);
	rq->type = type;
	rq->buf = buf;
	rq->buflen = buflen;
	if (!dkim_name_ok(rq->name)) {
		rq->pre = true;		/* answered at once: no such key */
		rq->pre_st = TG_PERM;
	} else
		rq->pre = dkim_prefetch_answer(rq->name, type, &rq->pre_st,
		    &rq->pre_ans);
	if (rq->pre && rq->pre_st == TG_PERM)
		tg_log_debug(NULL, "dkim: %s: malformed key name", rq->name);
	else if (rq->pre)
		tg_log_debug(NULL, "dkim: %s: answered from prefetch",
		    rq->name);
	else if ((rq->q = tg_dns_start(srv, rq->name, type)) == NULL) {
		free(rq->name);
		free(rq);
		return -1;
	}
	*qh = rq;
	return 0;
}

/* dkim_resolver_wait - the answer, as a packet libopendkim will parse */
static int
dkim_resolver_wait(void *srv, void *qh, struct timeval *timeout,
    size_t *bytes, int *error, int *dnssec)
{
	struct dkim_rquery	*rq = qh;
	struct tg_dns_answer	*ans = NULL;
	struct tg_err		 err;
	enum tg_status		 st;
	size_t			 n = 0;

	(void)srv;
	(void)timeout;		/* the resolver's own timeout bounds it */
	err.text[0] = '\0';
	if (rq->pre)
		st = rq->pre_st;
	else
		st = tg_dns_wait(rq->q, &ans, &err);
	rq->q = NULL;
	if (dnssec != NULL)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	if (error != NULL)
		*error = 0;
	if (st == TG_OK)
		n = dkim_packet_copy(rq, rq->pre ? rq->pre_ans : ans, 0);
	else if (st == TG_NOTFOUND || st == TG_PERM)
		n = dkim_packet_copy(rq, st == TG_NOTFOUND ? (rq->pre ?
		    rq->pre_ans : ans) : NULL, DKIM_DNS_RCODE_NX);
	else
		tg_log_debug(NULL, "dkim: %s: %s", rq->name, err.text);
	(void)tg_dns_answer_free(ans);
	if (n == 0) {
		if (st != TG_TEMP)
			tg_log_warn_limited(NULL, "dkim-reply-size", 60,
			    "dkim: %s: reply too large for libopendkim",
			    rq->name);
		return DKIM_DNS_ERROR;
	}
	*bytes = n;
	return DKIM_DNS_SUCCESS;
}

/* dkim_resolver_cancel - release a query, waited on or not */
static int
dkim_resolver_cancel(void *srv, void *qh)
{
	struct dkim_rquery	*rq = qh;

	(void)srv;
	if (rq == NULL)
		return 0;
	if (rq->q != NULL)
		tg_dns_cancel(rq->q);
	free(rq->name);
	free(rq);
	return 0;
}

/* dkim_resolver_init - nothing: the pipeline made the resolver */
static int
dkim_resolver_init(void **srv)
{
	(void)srv;
	return 0;
}

/* dkim_resolver_close - nothing: the pipeline frees the resolver */
static void
dkim_resolver_close(void *srv)
{
	(void)srv;
}

/* dkim_resolver_conf - resolver settings come from [dns], not here */
static int
dkim_resolver_conf(void *srv, const char *s)
{
	(void)srv;
	(void)s;
	return 0;
}

/* dkim_resolver_attach - point lib's DNS at our resolver */
void
dkim_resolver_attach(DKIM_LIB *lib, struct tg_dns *dns)
{
	(void)dkim_dns_set_query_service(lib, dns);
	dkim_dns_set_query_start(lib, dkim_resolver_start);
	dkim_dns_set_query_waitreply(lib, dkim_resolver_wait);
	dkim_dns_set_query_cancel(lib, dkim_resolver_cancel);
	dkim_dns_set_init(lib, dkim_resolver_init);
	dkim_dns_set_close(lib, dkim_resolver_close);
	dkim_dns_set_nslist(lib, dkim_resolver_conf);
	dkim_dns_set_config(lib, dkim_resolver_conf);
	dkim_dns_set_trustanchor(lib, dkim_resolver_conf);
}
