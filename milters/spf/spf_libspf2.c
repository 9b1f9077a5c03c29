/*
 * spf_libspf2 - the second SPF engine: libspf2 (1.2.10) on tollgate's
 * resolver, behind the interface of spf_check.
 *
 * libspf2 gets a DNS layer of ours (an SPF_dns_server_t whose lookup
 * calls tg_dns_resolve and builds an SPF_dns_rr_t), so every query is
 * bounded by the resolver's timeout and the check's time limit, and
 * tests answer from local data as for the native engine.  Around the
 * library this file fixes what it gets wrong or does not do:
 *   - no free pass for loopback clients: libspf2's query entry points
 *     give 127.0.0.0/8 and ::1 "pass" before looking at any record, so
 *     we run its record lookup and interpreter ourselves (what
 *     SPF_request_query_mailfrom does, minus that);
 *   - an IPv4-mapped IPv6 client is checked as IPv4 (RFC 7208 5);
 *   - an identity that is not a domain name gives none (4.3) before
 *     libspf2 sees it;
 *   - void lookups are counted in the DNS layer (4.6.4: more than 2 is
 *     permerror), which libspf2 does not do.  The layer cannot tell a
 *     mechanism's lookup from the address lookups of MX hosts and PTR
 *     names, so it counts every empty A, AAAA, MX and PTR answer: a
 *     little stricter than 4.6.4, never laxer;
 *   - PTR answers are cut to 10 names (4.6.4);
 *   - SPF_RESULT_INVALID becomes temperror when a DNS query failed and
 *     permerror otherwise;
 *   - the explanation is never libspf2's (its default text points at a
 *     web site): it is built by spf_explain_fail from the exp= record
 *     or our default, as the native engine builds it.
 * libspf2 does not say which term matched: mechanism is "default" when
 * none did, "" otherwise.  dns_lookups is libspf2's count of DNS terms.
 *
 * Only this file includes <spf2/spf.h>.
 *
 * Threading: libspf2's server and request objects are not thread-safe,
 * so each check makes its own and frees them; the DNS layer's state is
 * on the caller's stack.  The library's global message handlers are set
 * once (pthread_once) to our logger.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spf2/spf.h>

#include "spf_int.h"
#include "tollgate/dns.h"
#include "tollgate/log.h"

/* One check's DNS layer: libspf2 hands it back to us as hook. */
struct spf2_state {
	SPF_dns_server_t	 layer;
	struct tg_dns		*dns;
	struct timespec		 deadline;	/* monotonic */
	unsigned int		 voids;
	bool			 dns_error;
	uint32_t		 ttl;
	char			 why[SPF_REASON_MAX];
};

static pthread_once_t	spf2_once = PTHREAD_ONCE_INIT;

static void	spf2_handlers(void);
static void	spf2_log(const char *, int, const char *);
TG_NORETURN static void spf2_fatal(const char *, int, const char *);
static SPF_dns_rr_t *spf2_lookup(SPF_dns_server_t *, const char *, ns_type,
		    int);
static bool	spf2_time_up(const struct spf2_state *);
static void	spf2_fill(SPF_dns_rr_t *, const struct tg_dns_answer *, int);
static bool	spf2_rr_put(SPF_dns_rr_t *, int, const void *, size_t);
static bool	spf2_wire_name(const unsigned char *, size_t, char *,
		    size_t);
static bool	spf2_client(SPF_request_t *, const char *);
static const char *spf2_identity(const struct spf_request *,
		    struct spf_answer *);
static SPF_response_t *spf2_run(SPF_request_t *);
static enum spf_result spf2_result(SPF_response_t *, struct spf2_state *,
		    struct spf_answer *);

/* spf2_log - libspf2's warnings and notes, at debug: they are chatty */
static void
spf2_log(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	tg_log_debug(NULL, "spf: libspf2: %s", msg != NULL ? msg : "");
}

/* spf2_fatal - libspf2 calls this on a broken invariant or no memory */
static void
spf2_fatal(const char *file, int line, const char *msg)
{
	tg_panic(file != NULL ? file : "libspf2", line, "spf: libspf2: %s",
	    msg != NULL ? msg : "");
}

/* spf2_handlers - libspf2 prints to stdout and stderr unless told */
static void
spf2_handlers(void)
{
	SPF_error_handler = spf2_fatal;
	SPF_warning_handler = spf2_log;
	SPF_info_handler = spf2_log;
	SPF_debug_handler = spf2_log;
}

/* spf2_time_up - past the check's time limit (4.6.4)? */
static bool
spf2_time_up(const struct spf2_state *st)
{
	struct timespec	now;

	if (clock_gettime(CLOCK_MONOTONIC, &now) == -1)
		TG_PANIC("spf: no monotonic clock");
	return now.tv_sec > st->deadline.tv_sec ||
	    (now.tv_sec == st->deadline.tv_sec &&
	    now.tv_nsec >= st->deadline.tv_nsec);
}

/*
 * spf2_lookup - our DNS layer: one query to tollgate's resolver, as an
 * SPF_dns_rr_t that libspf2 frees.  NXDOMAIN is HOST_NOT_FOUND, NODATA
 * NO_DATA, a failure TRY_AGAIN; a name the resolver refuses reads as
 * nonexistent, as in the native engine.
 */
static SPF_dns_rr_t *
spf2_lookup(SPF_dns_server_t *server, const char *domain, ns_type type,
    int should_cache)
{
	struct spf2_state	*st = server->hook;
	struct tg_dns_answer	*ans = NULL;
	struct tg_err		 err;
	enum tg_status		 s;
	SPF_dns_stat_t		 herrno = NETDB_SUCCESS;
	SPF_dns_rr_t		*rr;

	(void)should_cache;
	if (spf2_time_up(st))
		s = tg_err_set(&err, TG_TEMP, "time limit reached before %s",
		    domain);
	else
		s = tg_dns_resolve(st->dns, domain, (int)type, &ans, &err);
	if (ans != NULL && ans->ttl < st->ttl)
		st->ttl = ans->ttl;
	if (s == TG_NOTFOUND)
		herrno = ans != NULL && ans->rcode == 3 ? HOST_NOT_FOUND :
		    NO_DATA;
	else if (s == TG_PERM)
		herrno = HOST_NOT_FOUND;
	else if (s == TG_TEMP) {
		herrno = TRY_AGAIN;
		if (!st->dns_error)
			(void)snprintf(st->why, sizeof(st->why), "%.200s",
			    err.text);
		st->dns_error = true;
	}
	rr = SPF_dns_rr_new_init(server, domain, type,
	    ans != NULL ? (int)(ans->ttl & INT32_MAX) : 0, herrno);
	if (rr == NULL)
		TG_PANIC("spf: libspf2: out of memory");
	if (s == TG_OK)
		spf2_fill(rr, ans, (int)type);
	/* 4.6.4: lookups by a, mx, ptr and exists that find nothing. */
	if (rr->herrno != NETDB_SUCCESS && rr->herrno != TRY_AGAIN &&
	    type != ns_t_txt)
		st->voids++;
	(void)tg_dns_answer_free(ans);
	return rr;
}

/* spf2_rr_put - record i of rr: n bytes from p */
static bool
spf2_rr_put(SPF_dns_rr_t *rr, int i, const void *p, size_t n)
{
	if (SPF_dns_rr_buf_realloc(rr, i, n) != SPF_E_SUCCESS)
		TG_PANIC("spf: libspf2: out of memory");
	memcpy(rr->rr[i], p, n);
	return true;
}

/*
 * spf2_fill - the records of ans in libspf2's form: addresses as
 * structs, names as text, TXT strings joined (3.3).  At most 10 PTR
 * names (4.6.4); malformed records are skipped.
 */
static void
spf2_fill(SPF_dns_rr_t *rr, const struct tg_dns_answer *ans, int type)
{
	char	name[SPF_DOMAIN_MAX + 2], *txt;
	size_t	i;
	int	n = 0;

	for (i = 0; i < ans->count; i++) {
		if (type == ns_t_ptr && n >= SPF_MAX_PTR)
			break;
		if ((type == ns_t_a && ans->rdlen[i] == 4) ||
		    (type == ns_t_aaaa && ans->rdlen[i] == 16))
			n += spf2_rr_put(rr, n, ans->rdata[i], ans->rdlen[i]);
		else if (type == ns_t_mx && ans->rdlen[i] > 2 &&
		    spf2_wire_name(ans->rdata[i] + 2, ans->rdlen[i] - 2, name,
		    sizeof(name)))
			n += spf2_rr_put(rr, n, name, strlen(name) + 1);
		else if (type == ns_t_ptr && spf2_wire_name(ans->rdata[i],
		    ans->rdlen[i], name, sizeof(name)))
			n += spf2_rr_put(rr, n, name, strlen(name) + 1);
		else if (type == ns_t_txt &&
		    (txt = tg_dns_txt_join(ans, i)) != NULL) {
			n += spf2_rr_put(rr, n, txt, strlen(txt) + 1);
			free(txt);
		}
	}
	rr->num_rr = n;
	if (n == 0)
		rr->herrno = NO_DATA;
}

/*
 * spf2_wire_name - an uncompressed wire-format name as text without the
 * final dot ("" for the root); false if malformed or not plain text.
 */
static bool
spf2_wire_name(const unsigned char *p, size_t n, char *out, size_t outsz)
{
	size_t	off = 0, o = 0, l;

	while (off < n) {
		if ((l = p[off++]) == 0) {
			out[o] = '\0';
			return true;
		}
		if (l > 63 || l > n - off || o + 1 + l >= outsz)
			return false;
		if (o > 0)
			out[o++] = '.';
		for (; l > 0; l--, off++) {
			if (p[off] < 0x21 || p[off] > 0x7e || p[off] == '.')
				return false;
			out[o++] = (char)p[off];
		}
	}
	return false;
}

/* spf2_client - the client into the request; mapped IPv6 as IPv4 */
static bool
spf2_client(SPF_request_t *sreq, const char *ip)
{
	struct in_addr	a4;
	struct in6_addr	a6;

	if (ip == NULL)
		return false;
	if (inet_pton(AF_INET, ip, &a4) == 1)
		return SPF_request_set_ipv4(sreq, a4) == SPF_E_SUCCESS;
	if (inet_pton(AF_INET6, ip, &a6) != 1)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[12], 4);
		return SPF_request_set_ipv4(sreq, a4) == SPF_E_SUCCESS;
	}
	return SPF_request_set_ipv6(sreq, a6) == SPF_E_SUCCESS;
}

/*
 * spf2_identity - the identity's domain into ans (printable, for the
 * log) and as the return value; NULL when it is not a domain name
 * (4.3: result none), with ans->reason set.
 */
static const char *
spf2_identity(const struct spf_request *req, struct spf_answer *ans)
{
	const char	*s = req->sender, *at, *dom;
	size_t		 len, i;

	ans->helo = s == NULL || *s == '\0';
	if (ans->helo)
		dom = req->helo != NULL ? req->helo : "";
	else
		dom = (at = strrchr(s, '@')) != NULL ? at + 1 : s;
	len = strlen(dom);
	if (len > 0 && dom[len - 1] == '.')
		len--;
	for (i = 0; i < len && i < SPF_DOMAIN_MAX; i++)
		ans->domain[i] = dom[i] >= 0x20 && dom[i] <= 0x7e ? dom[i] :
		    '?';
	ans->domain[i] = '\0';
	if (len <= SPF_DOMAIN_MAX && strlen(ans->domain) == len &&
	    memcmp(ans->domain, dom, len) == 0 &&
	    spf_domain_valid(ans->domain))
		return ans->domain;
	(void)snprintf(ans->reason, sizeof(ans->reason), "%s \"%.80s\" is "
	    "not a domain name", ans->helo ? "HELO name" : "sender domain",
	    ans->domain);
	return NULL;
}

/*
 * spf2_run - SPF_request_query_mailfrom without its loopback free
 * ride: fetch the record of the current domain and interpret it.
 */
static SPF_response_t *
spf2_run(SPF_request_t *sreq)
{
	SPF_response_t	*resp;
	SPF_record_t	*rec = NULL;
	SPF_errcode_t	 err;

	if ((resp = SPF_response_new(sreq)) == NULL)
		TG_PANIC("spf: libspf2: out of memory");
	sreq->cur_dom = sreq->env_from_dp;
	err = SPF_server_get_record(sreq->spf_server, sreq, resp, &rec);
	if (err != SPF_E_SUCCESS) {
		if (rec != NULL)
			SPF_record_free(rec);
		(void)SPF_i_done(resp, resp->result, resp->reason, resp->err);
		return resp;
	}
	resp->spf_record_exp = rec;
	(void)SPF_record_interpret(rec, sreq, resp, 0);
	SPF_record_free(rec);
	resp->spf_record_exp = NULL;
	return resp;
}

/* spf2_result - libspf2's answer in ours, with the fixes above */
static enum spf_result
spf2_result(SPF_response_t *resp, struct spf2_state *st,
    struct spf_answer *ans)
{
	enum spf_result	r;

	switch (SPF_response_result(resp)) {
	case SPF_RESULT_PASS:
		r = SPF_PASS;
		break;
	case SPF_RESULT_FAIL:
		r = SPF_FAIL;
		break;
	case SPF_RESULT_SOFTFAIL:
		r = SPF_SOFTFAIL;
		break;
	case SPF_RESULT_NEUTRAL:
		r = SPF_NEUTRAL;
		break;
	case SPF_RESULT_NONE:
		r = SPF_NONE;
		break;
	case SPF_RESULT_TEMPERROR:
		r = SPF_TEMPERROR;
		break;
	case SPF_RESULT_PERMERROR:
		r = SPF_PERMERROR;
		break;
	case SPF_RESULT_INVALID:
	default:
		r = st->dns_error ? SPF_TEMPERROR : SPF_PERMERROR;
		break;
	}
	/* The third void lookup ended the check before anything else. */
	if (st->voids > SPF_MAX_VOIDS) {
		r = SPF_PERMERROR;
		(void)snprintf(st->why, sizeof(st->why), "more than %d void "
		    "lookups", SPF_MAX_VOIDS);
	}
	if (r == SPF_NEUTRAL || r == SPF_PASS || r == SPF_FAIL ||
	    r == SPF_SOFTFAIL) {
		if (SPF_response_reason(resp) == SPF_REASON_DEFAULT)
			(void)snprintf(ans->mechanism, sizeof(ans->mechanism),
			    "default");
	} else if (st->why[0] != '\0' && (r != SPF_NONE ||
	    st->voids > SPF_MAX_VOIDS))
		(void)snprintf(ans->reason, sizeof(ans->reason), "%s",
		    st->why);
	else if (SPF_response_messages(resp) > 0)
		(void)snprintf(ans->reason, sizeof(ans->reason), "%s",
		    SPF_error_message(SPF_response_message(resp, 0)));
	if (r == SPF_NONE && ans->reason[0] == '\0')
		(void)snprintf(ans->reason, sizeof(ans->reason), "%s: no SPF "
		    "record", ans->domain);
	ans->dns_lookups = resp->num_dns_mech > 0 ?
	    (unsigned int)resp->num_dns_mech : 0;
	ans->void_lookups = st->voids;
	return r;
}

/* spf_libspf2_check - see spf_int.h */
enum tg_status
spf_libspf2_check(struct tg_dns *dns, const struct spf_request *req,
    struct spf_answer *ans)
{
	struct spf2_state	 st;
	SPF_server_t		*srv;
	SPF_request_t		*sreq;
	SPF_response_t		*resp;
	const char		*dom;
	enum tg_status		 status = TG_OK;

	memset(ans, 0, sizeof(*ans));
	ans->ttl = SPF_TTL_NONE;
	if (pthread_once(&spf2_once, spf2_handlers) != 0)
		TG_PANIC("spf: pthread_once");
	memset(&st, 0, sizeof(st));
	st.dns = dns;
	st.ttl = SPF_TTL_NONE;
	st.layer.lookup = spf2_lookup;
	st.layer.name = "tollgate";
	st.layer.hook = &st;
	if (clock_gettime(CLOCK_MONOTONIC, &st.deadline) == -1)
		TG_PANIC("spf: no monotonic clock");
	st.deadline.tv_sec += req->time_limit > 0 ? req->time_limit :
	    SPF_TIME_LIMIT;
	/* destroy is NULL: SPF_server_free leaves our layer alone. */
	if ((srv = SPF_server_new_dns(&st.layer, 0)) == NULL ||
	    SPF_server_set_rec_dom(srv, req->receiver != NULL ?
	    req->receiver : "unknown") != SPF_E_SUCCESS ||
	    (sreq = SPF_request_new(srv)) == NULL)
		TG_PANIC("spf: libspf2: out of memory");
	if (!spf2_client(sreq, req->ip)) {
		(void)snprintf(ans->reason, sizeof(ans->reason), "client "
		    "address \"%.64s\" is not an IP address",
		    req->ip != NULL ? req->ip : "");
		status = TG_PERM;
	} else if ((dom = spf2_identity(req, ans)) != NULL) {
		if (req->helo != NULL && *req->helo != '\0' &&
		    SPF_request_set_helo_dom(sreq, req->helo) != SPF_E_SUCCESS)
			TG_PANIC("spf: libspf2: out of memory");
		if (SPF_request_set_env_from(sreq, ans->helo ? "" :
		    req->sender) != 0)
			TG_PANIC("spf: libspf2: out of memory");
		resp = spf2_run(sreq);
		ans->result = spf2_result(resp, &st, ans);
		SPF_response_free(resp);
	}
	SPF_request_free(sreq);
	SPF_server_free(srv);
	ans->ttl = st.ttl;
	if (ans->result == SPF_FAIL)
		spf_explain_fail(dns, req, ans);
	return status;
}
