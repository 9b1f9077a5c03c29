/*
 * dns.h - the one resolver every module uses, on libunbound.
 *
 * A struct tg_dns is made once at start-up and shared by all threads.
 * It has its own cache, bounds every query by a timeout, and can load
 * local data (resource records in zone-file syntax, one per line, as
 * unbound's local-data takes them) so that tests and the offline demo
 * answer locally:
 *
 *   example.com.            300 IN SOA ns. host. 1 3600 600 86400 300
 *   sel._domainkey.example.com. 300 IN TXT "v=DKIM1; k=rsa; " "p=MIIB..."
 *   $TIMEOUT slow.example.net.
 *   $SERVFAIL broken.example.net.
 *
 * A SOA record makes the resolver authoritative for its zone: names under
 * it that the data does not list answer NXDOMAIN, and listed names with
 * another type answer NODATA.  The two $ lines are our own extension for
 * tests: queries for that name (any type) fail at once as a timeout or a
 * server failure, the failures a real server cannot be made to give on
 * demand.  With offline set, nothing is sent to the network and a name
 * the local data does not cover fails at once with TG_TEMP.
 */
#ifndef TOLLGATE_DNS_H
#define TOLLGATE_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define TG_DNS_A	1
#define TG_DNS_NS	2
#define TG_DNS_CNAME	5
#define TG_DNS_SOA	6
#define TG_DNS_PTR	12
#define TG_DNS_MX	15
#define TG_DNS_TXT	16
#define TG_DNS_AAAA	28

struct tg_dns_conf {
	long		 timeout;	/* seconds per query, > 0 */
	const char	*resolv_conf;	/* NULL: /etc/resolv.conf */
	const char	*forwarders;	/* space-separated IPs; NULL/"": none */
	const char	*local_data;	/* zone-style file; NULL/"": none */
	bool		 offline;
};

/* One answer.  Owned by the caller; free with tg_dns_answer_free. */
struct tg_dns_answer {
	int		 rcode;		/* DNS rcode: 0 NOERROR, 3 NXDOMAIN... */
	int		 qtype;
	uint32_t	 ttl;		/* of the answer, or of the SOA if none */
	size_t		 count;		/* records of qtype in the answer */
	unsigned char	**rdata;	/* wire-format rdata of each record */
	size_t		*rdlen;
	unsigned char	*packet;	/* the whole reply packet, wire format */
	size_t		 packet_len;
};

struct tg_dns;
struct tg_dns_query;

/* tg_dns_new - a resolver; NULL with err filled on bad configuration */
struct tg_dns	*tg_dns_new(const struct tg_dns_conf *, struct tg_err *);
struct tg_dns	*tg_dns_free(struct tg_dns *);

/*
 * tg_dns_load - add local data from a file (same syntax as local_data),
 * before the first query.  Errors name file:line.  Not thread-safe.
 */
enum tg_status	tg_dns_load(struct tg_dns *, const char *, struct tg_err *);
/* tg_dns_load_line - one line of local data, as in a file */
enum tg_status	tg_dns_load_line(struct tg_dns *, const char *,
		    struct tg_err *);

/*
 * tg_dns_resolve - one blocking query, bounded by the timeout.
 *   TG_OK       *ans holds count >= 1 records of type
 *   TG_NOTFOUND NXDOMAIN or NODATA: *ans holds the reply (count 0)
 *   TG_TEMP     timeout, SERVFAIL, REFUSED, offline miss; *ans NULL
 *   TG_PERM     malformed name; *ans NULL
 * err (may be NULL) says why on failure.  Thread-safe.
 */
enum tg_status	tg_dns_resolve(struct tg_dns *, const char *name, int type,
		    struct tg_dns_answer **, struct tg_err *);

/*
 * Asynchronous form, so a module can start a query early in the SMTP
 * dialogue and collect it late.  tg_dns_start never blocks; tg_dns_wait
 * blocks until the answer or the query's deadline (set at start), then
 * frees the query.  tg_dns_cancel frees a query never waited on.
 */
struct tg_dns_query *tg_dns_start(struct tg_dns *, const char *, int);
enum tg_status	tg_dns_wait(struct tg_dns_query *, struct tg_dns_answer **,
		    struct tg_err *);
void		tg_dns_cancel(struct tg_dns_query *);

struct tg_dns_answer *tg_dns_answer_free(struct tg_dns_answer *);

/*
 * tg_dns_txt_join - the character-strings of TXT record i, concatenated
 * (RFC 6376 3.6.2.2, RFC 7208 3.3), as a string the caller owns.  NULL if
 * the rdata is malformed.
 */
char	*tg_dns_txt_join(const struct tg_dns_answer *, size_t);

#endif
