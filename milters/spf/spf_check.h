/*
 * spf_check.h - the state of one check_host() call, shared by the files
 * of the native engine only: spf_eval.c (the record loop, results,
 * explanations) and spf_mech.c (the mechanisms and the client's
 * validated names).  Nothing else sees struct spf_check.
 */
#ifndef SPF_CHECK_H
#define SPF_CHECK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "tollgate/dns.h"
#include "tollgate/spf.h"
#include "tollgate/util.h"

#include "spf_int.h"

#define SPF_NAME_BUF	(SPF_DOMAIN_MAX + 1)
#define SPF_SHOWN(n)	((int)((n) > 80 ? 80 : (n)))	/* in reasons */

/* What evaluating one term comes to (4.6.2). */
enum spf_ev {
	SPF_EV_NOMATCH,
	SPF_EV_MATCH,
	SPF_EV_TEMP,		/* the check ends: temperror */
	SPF_EV_PERM		/* the check ends: permerror */
};

/* The client's validated domain names (5.5), found once per check. */
struct spf_ptr_cache {
	bool		 done;
	enum tg_status	 status;	/* of the PTR lookup */
	size_t		 n;
	char		 names[SPF_MAX_PTR][SPF_NAME_BUF];
};

/* One spf_check() call. */
struct spf_check {
	struct tg_dns			*dns;
	const struct spf_request	*req;
	struct spf_answer		*ans;
	int				 af;	/* after unmapping */
	unsigned char			 addr[16];
	char				 ip_i[72];	/* %{i} */
	char				 ip_c[INET6_ADDRSTRLEN]; /* %{c} */
	char				 local[SPF_LOCAL_MAX + 1];
	char				 domain[SPF_NAME_BUF];
	char				 sender[SPF_LOCAL_MAX + 1 +
					    SPF_NAME_BUF];
	struct spf_macro_vars		 vars;	/* .domain per use */
	unsigned int			 lookups;
	unsigned int			 voids;
	struct timespec			 deadline;	/* monotonic */
	struct spf_ptr_cache		 ptr;
};

/* spf_eval.c */
/* spf_reason - why the check ended (none, temperror, permerror) */
void		spf_reason(struct spf_check *, const char *, ...)
		    TG_PRINTF(2, 3);
/* spf_copy - n bytes of src into dst, cut to fit; printable: ASCII only */
void		spf_copy(char *, size_t, const char *, size_t, bool);
/* spf_dns - one query, counted against the deadline; *ans may be NULL */
enum tg_status	spf_dns(struct spf_check *, const char *, int,
		    struct tg_dns_answer **, struct tg_err *);
/* spf_host - check_host() for domain, one level deeper */
enum spf_result	spf_host(struct spf_check *, const char *, unsigned int,
		    bool);

/* spf_mech.c */
/* spf_term - does one mechanism match? (5) */
enum spf_ev	spf_term(struct spf_check *, const struct spf_term *,
		    const char *, unsigned int);
/* spf_target - a term's <target-name> (4.8); false if none can be made */
bool		spf_target(struct spf_check *, const char *, size_t,
		    const char *, char *);
/* spf_count - one more DNS-querying term (4.6.4); false past the limit */
bool		spf_count(struct spf_check *, const char *, size_t);
/* spf_ptr_macro - %{p}: the client's validated name (5.5, 7.3) */
const char	*spf_ptr_macro(void *, const char *);

#endif
