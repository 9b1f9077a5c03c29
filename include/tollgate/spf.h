/*
 * spf.h - SPF: the native RFC 7208 evaluator (check_host() on tollgate's
 * resolver), the one interface to it and to libspf2, and the results
 * the SPF module records for later modules.
 *
 * spf_check answers one question: may the client at req->ip send mail
 * for the identity in req (the MAIL FROM domain, or the HELO name when
 * the sender is empty, RFC 7208 2.4)?  It does the whole of RFC 7208:
 * record selection (exactly one "v=spf1" TXT record; type SPF is never
 * queried), every mechanism and modifier, macro expansion, exp= on fail,
 * and the processing limits of 4.6.4 counted across the whole check
 * (10 DNS-querying terms, 2 void lookups, 10 MX and 10 PTR names).
 *
 * It is the engine only: no configuration, no logging above debug, no
 * verdicts.  The milter module turns the answer into headers and replies.
 *
 * Threading: spf_check is reentrant and may run on many threads at once
 * against one shared struct tg_dns; it keeps all state on the caller's
 * answer, its own stack and short-lived heap blocks, and writes no
 * global.  Memory: everything in struct spf_answer is inline, so an
 * answer may be copied or kept as long as the caller likes.
 */
#ifndef TOLLGATE_SPF_H
#define TOLLGATE_SPF_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "dns.h"
#include "module.h"
#include "util.h"

/* RFC 7208 2.6; SPF_NONE is 0 so that a zeroed answer says "none". */
enum spf_result {
	SPF_NONE = 0,		/* no record, or no usable identity */
	SPF_NEUTRAL,		/* "?" or nothing matched */
	SPF_PASS,		/* "+": the client is authorized */
	SPF_FAIL,		/* "-": the client is not authorized */
	SPF_SOFTFAIL,		/* "~": probably not authorized */
	SPF_TEMPERROR,		/* a DNS failure; retrying may help */
	SPF_PERMERROR		/* a broken record; needs its publisher */
};

#define SPF_DOMAIN_MAX		253	/* RFC 1035 2.3.4, as text */
#define SPF_EXPLANATION_MAX	512	/* bytes kept, with the NUL */
#define SPF_MECHANISM_MAX	256
#define SPF_REASON_MAX		256
#define SPF_TIME_LIMIT		20	/* seconds; RFC 7208 4.6.4 */

/*
 * One question.  Every pointer is borrowed for the duration of the call.
 *   ip          client address, IPv4 or IPv6 text; an IPv4-mapped IPv6
 *               address is treated as the IPv4 address (RFC 7208 5)
 *   helo        HELO/EHLO argument, for %{h} and for the HELO identity;
 *               NULL reads as ""
 *   sender      MAIL FROM address without the angle brackets; "" or NULL
 *               checks the HELO identity as "postmaster@<helo>"; an
 *               address with no local part gets "postmaster" (4.3)
 *   receiver    our host name, for %{r} in explanations; NULL: "unknown"
 *   default_exp explanation on fail when the record has no usable exp=
 *               (6.2); macro-expanded like an exp= text; NULL: none
 *   now         %{t} in explanations; 0: time(NULL)
 *   time_limit  seconds for the whole check; 0: SPF_TIME_LIMIT.  Past
 *               it, the check ends with temperror (4.6.4).
 */
struct spf_request {
	const char	*ip;
	const char	*helo;
	const char	*sender;
	const char	*receiver;
	const char	*default_exp;
	time_t		 now;
	long		 time_limit;
};

/*
 * The answer.  All strings are NUL-terminated, truncated to fit.
 *   result       the RFC 7208 result
 *   helo         true when the HELO identity was checked
 *   domain       the identity's domain (what %{o} expands to), or ""
 *   mechanism    the term that decided the result as written in the
 *                record that decided it (after redirects), e.g. "-all"
 *                or "include:_spf.example.com"; "default" when nothing
 *                matched; "" for none, temperror and permerror
 *   explanation  on fail only: the expanded exp= text or default_exp,
 *                with bytes outside printable ASCII replaced by '?';
 *                "" otherwise
 *   reason       for none, temperror and permerror: what went wrong,
 *                for the log ("include:foo.example: no SPF record")
 *   dns_lookups  terms that counted against the limit of 10 DNS
 *                lookups (4.6.4); 11 means the limit ended the check
 *   void_lookups of those, the ones whose lookup found nothing; 3 means
 *                the limit of 2 ended the check
 *   ttl          seconds the result may be reused: the smallest TTL of
 *                the DNS answers it depends on, negative answers
 *                included (their SOA's TTL, RFC 2308); SPF_TTL_NONE when
 *                it depends on no DNS answer (a malformed identity)
 */
#define SPF_TTL_NONE	UINT32_MAX

struct spf_answer {
	enum spf_result	 result;
	bool		 helo;
	char		 domain[SPF_DOMAIN_MAX + 1];
	char		 mechanism[SPF_MECHANISM_MAX];
	char		 explanation[SPF_EXPLANATION_MAX];
	char		 reason[SPF_REASON_MAX];
	unsigned int	 dns_lookups;
	unsigned int	 void_lookups;
	uint32_t	 ttl;
};

/*
 * spf_check - run check_host() for req and fill ans.
 *   TG_OK    ans->result holds the RFC 7208 result, whatever it is
 *            (DNS failures are the result temperror, not a status)
 *   TG_PERM  the request cannot be checked: req->ip is not an IP
 *            address; ans->result is SPF_NONE and ans->reason says why
 * Thread-safe.  Blocks for DNS: the time limit is checked before each
 * query, so a check may overrun it by one resolver timeout.
 */
enum tg_status	 spf_check(struct tg_dns *, const struct spf_request *,
		    struct spf_answer *);

/*
 * spf_result_name - "none", "neutral", "pass", "fail", "softfail",
 * "temperror" or "permerror" (RFC 7208 2.6, as RFC 8601 2.7.2 writes them);
 * a value outside the enum reads "permerror".  Static strings.
 */
const char	*spf_result_name(enum spf_result);

/* spf_result_parse - the inverse of spf_result_name; false if unknown */
bool		 spf_result_parse(const char *, enum spf_result *);

/*
 * The engines behind one interface: the native one above, and libspf2
 * (milters/spf/spf_libspf2.c) on the same resolver, for comparison and
 * as a second opinion.  spf_engine_names is NULL-terminated and indexed
 * by the enum ([spf] engine).
 */
enum spf_engine {
	SPF_ENGINE_NATIVE = 0,
	SPF_ENGINE_LIBSPF2
};
extern const char *const spf_engine_names[];

/*
 * spf_engine_check - spf_check with the chosen engine: the same request,
 * answer, statuses and thread-safety.  libspf2 does not say which term
 * matched, so its mechanism is "default" when none did and "" otherwise;
 * its dns_lookups is libspf2's own count of DNS terms.
 */
enum tg_status	 spf_engine_check(enum spf_engine, struct tg_dns *,
		    const struct spf_request *, struct spf_answer *);

/*
 * spf_conf_request - default_exp and time_limit as the module fills
 * them, and the configured engine, for a check made outside the
 * pipeline (tollgatectl spf); after tg_pipeline_init.  The strings are
 * borrowed from the configuration.
 */
void		 spf_conf_request(struct spf_request *, enum spf_engine *);

/*
 * The SPF module (milters/spf/spf.c): checks the HELO and MAIL FROM
 * identities of inbound mail with the configured engine, adds
 * Received-SPF and the spf= resinfo, and applies [spf] policy.
 */
extern const struct tg_module tg_module_spf;

/*
 * One identity's result for this message, for later modules (DMARC).
 *   checked  false when the module did not evaluate it: disabled,
 *            outbound or trusted-relay mail, no HELO name given; the
 *            other fields are then SPF_NONE and NULL
 *   trusted_relay  not checked because the client is one of [spf]
 *            trusted_relays (a backup MX or a forwarder we trust): the
 *            client is not the sender's, so no SPF result can exist
 *   result   the RFC 7208 result
 *   domain   the identity's domain, lower case: for the MAIL FROM
 *            identity the sender's domain, or the HELO name when the
 *            reverse-path is null (RFC 7208 2.4); borrowed until the end
 *            of the message
 */
struct spf_identity {
	bool		 checked;
	bool		 trusted_relay;
	enum spf_result	 result;
	const char	*domain;
};

/*
 * spf_msg_mailfrom, spf_msg_helo - this message's result for the MAIL
 * FROM identity (identity=mailfrom) and for the HELO identity
 * (identity=helo), valid from MAIL FROM on.  DMARC takes only the MAIL
 * FROM one (RFC 7489 3.1.2, RFC 9989 4.4.2).  NULL ctx state (module not
 * enabled) gives checked = false.
 */
void	 spf_msg_mailfrom(struct tg_ctx *, struct spf_identity *);
void	 spf_msg_helo(struct tg_ctx *, struct spf_identity *);

#endif
