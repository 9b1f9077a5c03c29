/*
 * dmarc_lib.h - the one seam to libopendmarc (dmarc_lib.c).
 *
 * libopendmarc's <opendmarc/dmarc.h> defines macros such as
 * DMARC_POLICY_REJECT that collide with our enum dmarc_policy, so only
 * dmarc_lib.c includes it, and this header uses plain types.
 */
#ifndef TOLLGATE_DMARC_LIB_H
#define TOLLGATE_DMARC_LIB_H

#include <stdbool.h>
#include <stddef.h>

#include "tollgate/util.h"

/* An SPF or DKIM outcome as libopendmarc takes it. */
enum dmarc_lib_outcome {
	DMARC_LIB_NONE = 0,
	DMARC_LIB_PASS,
	DMARC_LIB_FAIL,
	DMARC_LIB_TEMP
};

/* Parse statuses we act on (libopendmarc's values). */
#define DMARC_LIB_BAD_VALUE	4	/* DMARC_PARSE_ERROR_BAD_VALUE */
#define DMARC_LIB_NO_P		5	/* DMARC_PARSE_ERROR_NO_REQUIRED_P */

/* What libopendmarc's parser made of a record. */
struct dmarc_lib_parsed {
	int	 status;	/* DMARC_PARSE_OKAY (0) or an error */
	char	 p, sp;		/* 'n' 'q' 'r'; sp is 0 when absent */
	bool	 adkim_strict, aspf_strict;
	int	 pct;		/* its pct= reading; 100 when absent */
};

/* One DKIM result for alignment. */
struct dmarc_lib_dkim {
	const char		*domain;
	const char		*selector;
	enum dmarc_lib_outcome	 outcome;
};

/* The question for libopendmarc's alignment and policy. */
struct dmarc_lib_query {
	const char		*ip;		/* client, or NULL */
	const char		*record;	/* the record's text */
	const char		*from;		/* RFC5322.From domain */
	const char		*org;		/* the record's domain when it
						 * is not from; else NULL */
	const char		*spf_domain;	/* NULL: SPF not checked */
	enum dmarc_lib_outcome	 spf;
	const struct dmarc_lib_dkim *dkim;
	size_t			 ndkim;
};

struct dmarc_lib_answer {
	bool	pass;
	bool	dkim_aligned, spf_aligned;
};

/* dmarc_lib_parse - opendmarc_policy_parse_dmarc on text */
void		dmarc_lib_parse(const char *, struct dmarc_lib_parsed *);
/* dmarc_lib_status_name - "DMARC_PARSE_OKAY", ... (libopendmarc's names) */
const char	*dmarc_lib_status_name(int);
/*
 * dmarc_lib_evaluate - store the record, SPF and DKIM results in a policy
 * context and read back pass and the alignment.  TG_PERM if libopendmarc
 * refused the record (it was parsed before, so only a bug gets there).
 */
enum tg_status	dmarc_lib_evaluate(const struct dmarc_lib_query *,
		    struct dmarc_lib_answer *);

/* The PSL, loaded into libopendmarc for the whole process. */
enum tg_status	dmarc_lib_psl_load(const char *, struct tg_err *);
void		dmarc_lib_psl_unload(void);
/* dmarc_lib_psl_org - the organizational domain (domain itself if none) */
void		dmarc_lib_psl_org(const char *, char *, size_t);
/* dmarc_lib_aligned - opendmarc_policy_check_alignment(a, b) == 0 */
bool		dmarc_lib_aligned(const char *, const char *, bool strict);

#endif
