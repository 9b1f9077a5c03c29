/*
 * spf_int.h - the SPF engine's parts, shared by its files, its tests and
 * its fuzz target; not for other modules (they use tollgate/spf.h).
 *
 * spf_macro.c: macro-string syntax and expansion (RFC 7208 7), and the
 * name checks around them (domain-spec, toplabel, target names).
 * spf_record.c: one record's text into terms (RFC 7208 4.6, 5, 6).
 * spf_eval.c, spf_mech.c: check_host() itself, on the resolver (the
 * record loop and results; the mechanisms), sharing spf_check.h.
 * spf_libspf2.c: the same check by libspf2, on a DNS layer of ours.
 * spf_engine.c: the one interface in front of both.
 * spf_cache.c: the module's result cache.
 * spf.c, spf_report.c: the milter module, its headers and its policy.
 *
 * The engine parts are reentrant and keep no global state; the cache
 * locks itself.
 */
#ifndef SPF_INT_H
#define SPF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "tollgate/spf.h"

#define SPF_MAX_LOOKUPS	10	/* RFC 7208 4.6.4: DNS terms */
#define SPF_MAX_VOIDS	2	/* RFC 7208 4.6.4: void lookups */
#define SPF_MAX_MX	10	/* RFC 7208 4.6.4: more is a permerror */
#define SPF_MAX_PTR	10	/* RFC 7208 4.6.4: the rest are ignored */
/*
 * include and redirect nest one level per DNS-querying term, so the
 * lookup limit ends any chain first; the depth limit makes the bound on
 * recursion visible without that argument.
 */
#define SPF_MAX_DEPTH	(SPF_MAX_LOOKUPS + 1)
#define SPF_LABEL_MAX	63	/* RFC 1035 2.3.4 */
#define SPF_LOCAL_MAX	256	/* RFC 5321 says 64; be lenient */
/*
 * Longest macro expansion.  A domain is cut to 253 bytes after expansion
 * (7.3) and an explanation to SPF_EXPLANATION_MAX, so more is only ever
 * an attack on our memory: such an expansion fails.
 */
#define SPF_EXPAND_MAX	2048
/* A record longer than this is refused; real ones stay under 1 KiB. */
#define SPF_RECORD_MAX	8192

/* Where a macro-string appears decides what it may contain. */
enum spf_macro_use {
	SPF_MACRO_DOMAIN,	/* domain-spec: no c, r, t (7.1), no space */
	SPF_MACRO_MODIFIER,	/* unknown-modifier value: no space */
	SPF_MACRO_EXPLAIN	/* exp= TXT text: spaces too (6.2) */
};

/* The result of an expansion: bounded, NUL-terminated. */
struct spf_text {
	char	 s[SPF_EXPAND_MAX + 1];
	size_t	 len;
};

/* Computes %{p} on first use; returns a name valid for the check. */
typedef const char *(*spf_ptr_fn)(void *, const char *domain);

/* The values of the macro letters (7.3); all borrowed. */
struct spf_macro_vars {
	const char	*sender;	/* s: local@domain */
	const char	*local;		/* l */
	const char	*sender_domain;	/* o */
	const char	*domain;	/* d: the domain being checked */
	const char	*ip;		/* i: IPv4, or IPv6 nibbles */
	const char	*client;	/* c: IPv4 or RFC 5952 IPv6 */
	const char	*helo;		/* h */
	const char	*receiver;	/* r */
	const char	*version;	/* v: "in-addr" or "ip6" */
	time_t		 now;		/* t */
	spf_ptr_fn	 ptr;		/* p; NULL: "unknown" */
	void		*ptr_arg;
};

/*
 * spf_macro_valid - is s[0..len) a macro-string (or explain-string) for
 * use?  *macro_end (may be NULL) tells whether it ends in a macro-expand,
 * which a domain-spec needs when it does not end in a toplabel (7.1).
 */
bool	spf_macro_valid(const char *, size_t, enum spf_macro_use, bool *);

/*
 * spf_macro_expand - expand s[0..len) into out.  false on a syntax error
 * or when the result would pass SPF_EXPAND_MAX bytes.
 */
bool	spf_macro_expand(const char *, size_t, enum spf_macro_use,
	    const struct spf_macro_vars *, struct spf_text *);

/* spf_domain_spec_valid - non-empty macro-string with a domain-end (7.1) */
bool	spf_domain_spec_valid(const char *, size_t);

/* spf_toplabel_valid - RFC 7208 7.1 toplabel: LDH, not all digits */
bool	spf_toplabel_valid(const char *, size_t);

/*
 * spf_target_name - an expanded domain-spec as a name to query (7.3):
 * the final dot dropped, labels cut from the left to fit 253 bytes.
 * false (out undefined) when no query can be made of it: an empty
 * name or label, or a label over 63 bytes.  outsz > SPF_DOMAIN_MAX.
 */
bool	spf_target_name(const struct spf_text *, char *, size_t);

/*
 * spf_domain_valid - may name be checked at all (4.3)?  A multi-label
 * name of visible ASCII with labels of 1 to 63 bytes, at most 253 bytes
 * without its optional final dot, ending in a toplabel.
 */
bool	spf_domain_valid(const char *);

enum spf_mech {
	SPF_MECH_ALL,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS
};

/* One directive; pointers are into the record's text. */
struct spf_term {
	enum spf_mech	 mech;
	enum spf_result	 qual;		/* the result on a match */
	const char	*text;		/* the term as written */
	size_t		 text_len;
	const char	*spec;		/* domain-spec, or NULL */
	size_t		 spec_len;
	unsigned int	 cidr4;		/* prefix lengths */
	unsigned int	 cidr6;
	unsigned char	 net[16];	/* ip4 (first 4 bytes), ip6 */
};

/* A parsed record.  Zero it before spf_record_parse. */
struct spf_record {
	char		*text;		/* our copy of the record */
	size_t		 len;
	struct spf_term	*terms;
	size_t		 nterms;
	size_t		 cap;		/* of terms */
	const char	*redirect;	/* domain-specs, or NULL */
	size_t		 redirect_len;
	const char	*exp;
	size_t		 exp_len;
};

/* spf_record_is_spf1 - "v=spf1", any case, then a space or the end (4.5) */
bool	spf_record_is_spf1(const char *, size_t);

/*
 * spf_record_parse - check the whole record (4.6: a syntax error
 * anywhere is a permerror, even after a matching term) and fill rec.
 * false with why filled on any syntax error; rec is then empty.
 */
bool	spf_record_parse(struct spf_record *, const char *, size_t, char *,
	    size_t);
void	spf_record_fini(struct spf_record *);

/* spf_cidr_match - do the first bits of a and b agree? (bits <= 128) */
bool	spf_cidr_match(const unsigned char *, const unsigned char *,
	    unsigned int);

/*
 * spf_explain_fail - ans->explanation for a fail another engine found,
 * built as spf_check builds it (6.2): the exp= of the record that
 * decided, else req->default_exp.  The deciding record is found by
 * following redirect= from the identity's record past records with no
 * "-" term (only those cannot have decided themselves); a record with
 * "-" terms and redirect= is taken to have decided.  Lowers ans->ttl.
 */
void	spf_explain_fail(struct tg_dns *, const struct spf_request *,
	    struct spf_answer *);

/*
 * spf_libspf2_check - spf_check done by libspf2 over our resolver; the
 * contract of spf_check.  Thread-safe: every call has its own libspf2
 * server and request.
 */
enum tg_status	spf_libspf2_check(struct tg_dns *,
		    const struct spf_request *, struct spf_answer *);

/*
 * The result cache: answers by key (every input the result depends on,
 * as one string), each valid for its own number of seconds, at most max
 * entries (the least recently used goes first).  Thread-safe: one mutex.
 * spf_cache_new(0) makes no cache; the calls then do nothing.
 */
struct spf_cache;
struct spf_cache *spf_cache_new(size_t max);
struct spf_cache *spf_cache_free(struct spf_cache *);	/* accepts NULL */
/* spf_cache_get - a copy of a live entry into ans; false if none */
bool		 spf_cache_get(struct spf_cache *, const char *,
		    struct spf_answer *);
/* spf_cache_put - keep ans for ttl seconds (0: not at all) */
void		 spf_cache_put(struct spf_cache *, const char *,
		    const struct spf_answer *, long ttl);
/* spf_cache_count - live and expired entries held, for tests */
size_t		 spf_cache_count(struct spf_cache *);

/* What policy does with a result ([spf] on_fail and the like). */
enum spf_action {
	SPF_ACTION_ACCEPT = 0,	/* mark only */
	SPF_ACTION_TEMPFAIL,	/* 451 4.7.24 */
	SPF_ACTION_REJECT	/* 550 5.7.23, or 5.7.24 for the errors */
};

/* One identity's check for this message (spf.c). */
struct spf_ident {
	bool			 checked;
	bool			 cached;	/* answer from the cache */
	const char		*domain;	/* lower case */
	struct spf_answer	 ans;
};

/* The module's per-message state. */
struct spf_msg {
	bool			 null_sender;
	bool			 trusted_relay;	/* skipped: [spf] trusted_relays */
	const char		*sender;	/* no <>; "" when null */
	struct spf_ident	 mailfrom;
	struct spf_ident	 helo;
};

/*
 * spf_report.c: what the module writes.  helo_id says which identity
 * the check was for (identity=helo, smtp.helo).
 *   spf_report_received  prepends one Received-SPF (RFC 7208 9.1)
 *   spf_report_authres   adds one spf= resinfo (RFC 8601 2.7.2)
 *   spf_report_reply     the SMTP reply for a tempfail or reject
 */
void	spf_report_received(struct tg_ctx *, const struct spf_msg *,
	    const struct spf_ident *, bool helo_id);
void	spf_report_authres(struct tg_ctx *, const struct spf_ident *,
	    bool helo_id);
void	spf_report_reply(struct tg_ctx *, const struct spf_ident *,
	    enum spf_action);

#endif
