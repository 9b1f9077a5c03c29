/*
 * dmarc_int.h - the DMARC module's internals, shared by its files only:
 * the RFC5322.From parser (dmarc_from.c), policy discovery and the
 * libopendmarc wrapper (dmarc_policy.c) and the module (dmarc.c).
 */
#ifndef TOLLGATE_DMARC_INT_H
#define TOLLGATE_DMARC_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "dmarc_lib.h"
#include "tollgate/dmarc.h"
#include "tollgate/dns.h"
#include "tollgate/util.h"

#define DMARC_DOMAIN_MAX	253	/* RFC 1035 2.3.4, as text */
#define DMARC_WALK_MAX		8	/* RFC 9989 4.10: queries per walk */

/*
 * _dmarc queries the alignment walks of one message may cause, counting
 * the queries its policy discovery made before them.  One discovery
 * walk (at most DMARC_WALK_MAX) and the walks of the From domain and of
 * one identifier, which share most of their names through the cache,
 * fit; a message with many DKIM signatures of unrelated domains cannot
 * make us walk for each.  Past it a walk is not made and its identifier
 * counts as not aligned.  Discovery itself is not cut short: skipping
 * one author domain's policy would let a message hide it.
 */
#define DMARC_MSG_QUERIES_MAX	20

/*
 * Distinct author domains one message may have.  Each is evaluated
 * (RFC 7489 6.6.1), so this bounds the DNS work of one From: field; no
 * real message comes near it.
 */
#define DMARC_AUTHORS_MAX	10

/* How the organizational domain is found ([dmarc] org_domain). */
enum dmarc_org_mode {
	DMARC_ORG_PSL = 0,	/* RFC 7489 3.2: the Public Suffix List */
	DMARC_ORG_TREE_WALK	/* RFC 9989 4.10: the DNS Tree Walk */
};

/*
 * The author domains of a message's From: fields, lower case, without a
 * trailing dot, each once, in the order found.
 *   too_many  more than DMARC_AUTHORS_MAX distinct domains; the first
 *             DMARC_AUTHORS_MAX are kept
 *   lenient   at least one domain came from dmarc_from_lenient
 */
struct dmarc_authors {
	char	 domain[DMARC_AUTHORS_MAX][DMARC_DOMAIN_MAX + 1];
	size_t	 n;
	bool	 too_many;
	bool	 lenient;
};

/*
 * dmarc_from_domains - add the author domains of an RFC5322.From value
 * (the text after "From:") to a, read strictly as an RFC 5322 3.4
 * address-list.
 *   TG_OK        at least one address; its domains are in a
 *   TG_NOTFOUND  no address at all (an empty group); a is unchanged
 *   TG_PERM      unparsable or a domain literal; a is unchanged, why
 *                (a static string) says what is wrong
 */
enum tg_status	dmarc_from_domains(const char *, struct dmarc_authors *,
		    const char **why);

/*
 * dmarc_from_lenient - for a value dmarc_from_domains refuses: add the
 * domain of every addr-spec-looking "local@domain" in it to a (comments,
 * quotes and angle brackets only delimit; the domain must be a usable
 * name) and set a->lenient.  TG_OK if one was found, else TG_NOTFOUND.
 */
enum tg_status	dmarc_from_lenient(const char *, struct dmarc_authors *);

/*
 * dmarc_from_domain - the one author domain of a From: value into out
 * (DMARC_DOMAIN_MAX + 1 bytes), with dmarc_from_domains' statuses; also
 * TG_PERM ("several author domains") when the addresses have different
 * domains.  For tests and the fuzz target; the module evaluates them all.
 */
enum tg_status	dmarc_from_domain(const char *, char *, const char **why);

/* One DMARC policy record as published, after selection and parsing. */
struct dmarc_record {
	char			*text;		/* as fetched; owned */
	char			 domain[DMARC_DOMAIN_MAX + 1]; /* where found */
	enum dmarc_policy	 p, sp, np;	/* sp from p, np from sp */
	bool			 has_sp, has_np;
	bool			 adkim_strict, aspf_strict;
	int			 pct;		/* -1: no pct= tag */
	bool			 testing;	/* t=y */
	int			 psd;		/* 'y', 'n' or 0: no psd= tag */
	char			*rua;		/* rua= value or NULL; owned */
	char			*fo;		/* fo= value or NULL; owned */
	int			 parse_status;	/* libopendmarc's */
	bool			 p_fallback;	/* bad p=/sp= read as p=none */
};

/*
 * dmarc_record_parse - parse text with libopendmarc (its status in
 * parse_status, DMARC_PARSE_OKAY is 0) and the tags it does not know
 * (np=, psd=, t=, RFC 9989) ourselves.  TG_OK or TG_PERM (unusable
 * record: a bad version, tag value or missing p=; but a bad or missing
 * p= or bad sp= with a mailto: rua= reads as p=none, RFC 7489 6.6.3).
 * rec is zeroed first; free with dmarc_record_fini.
 */
enum tg_status	dmarc_record_parse(const char *text, struct dmarc_record *);
void		dmarc_record_fini(struct dmarc_record *);

/* dmarc_is_record - whether TXT text is a DMARC record ("v=DMARC1") */
bool		dmarc_is_record(const char *);

/*
 * Policy discovery.  dmarc_discover fetches the record that applies to
 * from (RFC 7489 6.6.3 with the PSL, or RFC 9989 4.10.1 with the tree
 * walk).
 *   TG_OK        *rec holds it; *at_from says it is the From domain's own
 *   TG_NOTFOUND  no record applies
 *   TG_TEMP      a lookup failed for now (temperror)
 *   TG_PERM      the record that applies is unusable (permerror); rec
 *                holds its text and parse status
 * why (a static string) says what went wrong.
 */
struct dmarc_fetch_memo;
struct dmarc_org_memo;
struct dmarc_lookup {
	struct tg_ctx		*ctx;		/* for the debug log */
	struct tg_dns		*dns;
	enum dmarc_org_mode	 mode;
	unsigned int		 queries;	/* DNS queries made */
	unsigned int		 dmarc_queries;	/* of those, _dmarc TXT */
	/* This message's _dmarc answers and tree walks; owned. */
	struct dmarc_fetch_memo	*fetched;
	size_t			 nfetched;
	struct dmarc_org_memo	*orgs;
	size_t			 norgs;
};
enum tg_status	dmarc_discover(struct dmarc_lookup *, const char *from,
		    struct dmarc_record *, bool *at_from, const char **why);

/* dmarc_lookup_fini - free what the lookups of one message cached */
void		dmarc_lookup_fini(struct dmarc_lookup *);

/*
 * dmarc_org_domain - the organizational domain of domain into out: the
 * PSL's answer, or the tree walk of RFC 9989 4.10.2, remembered for the
 * rest of the message.  TG_TEMP when a lookup failed; TG_NOTFOUND when
 * the walk would pass DMARC_MSG_QUERIES_MAX (out is then "").
 */
enum tg_status	dmarc_org_domain(struct dmarc_lookup *, const char *,
		    char *out, size_t);

/*
 * dmarc_domain_exists - false only when DNS says NXDOMAIN for domain
 * (RFC 9989 np=: a non-existent domain; RFC 8020).
 */
bool		dmarc_domain_exists(struct dmarc_lookup *, const char *);

/* dmarc_lower - lowercase s in place; returns s */
char		*dmarc_lower(char *);

#endif
