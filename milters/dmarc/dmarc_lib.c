/*
 * dmarc_lib - libopendmarc behind plain types (see dmarc_lib.h).
 *
 * libopendmarc parses records, holds the Public Suffix List and decides
 * alignment; it never queries DNS for us (the records come from
 * dmarc_policy.c).  Its policy context remembers only one DKIM domain,
 * chosen as results are stored, and reads the From domain and adkim=
 * while doing so: the record is stored first (opendmarc_policy_store_dmarc
 * also sets the From domain), then SPF, then each DKIM result.
 *
 * Threading: the PSL is process-global (loaded at init, read under
 * libopendmarc's mutex); every call here uses a policy context of its
 * own, freed before returning.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opendmarc/dmarc.h>

#include "dmarc_lib.h"

/*
 * libopendmarc 1.4.2 exports its PSL lookup but its public header does
 * not declare it; this is the prototype in its opendmarc_tld.c.
 */
int	opendmarc_get_tld(u_char *, u_char *, size_t);

#define DMARC_LIB_NAME_MAX	256

_Static_assert(DMARC_LIB_BAD_VALUE == DMARC_PARSE_ERROR_BAD_VALUE &&
    DMARC_LIB_NO_P == DMARC_PARSE_ERROR_NO_REQUIRED_P,
    "libopendmarc parse statuses");

static OPENDMARC_LIB_T	dmarc_lib;

/* dmarc_lib_ctx - a fresh policy context; only memory can fail */
static DMARC_POLICY_T *
dmarc_lib_ctx(const char *ip)
{
	DMARC_POLICY_T	*pctx;

	pctx = opendmarc_policy_connect_init((u_char *)(ip != NULL ? ip :
	    "0.0.0.0"), ip != NULL && strchr(ip, ':') != NULL);
	if (pctx == NULL)
		TG_PANIC("opendmarc_policy_connect_init: out of memory");
	return pctx;
}

/* dmarc_lib_copy - a writable copy, for libopendmarc's u_char * */
static bool
dmarc_lib_copy(char *buf, size_t n, const char *s)
{
	return (size_t)snprintf(buf, n, "%s", s) < n;
}

/* dmarc_lib_parse - libopendmarc's view of a record */
void
dmarc_lib_parse(const char *text, struct dmarc_lib_parsed *out)
{
	DMARC_POLICY_T	*pctx = dmarc_lib_ctx(NULL);
	char		*copy = tg_strdup(text);
	int		 p = 0, sp = 0, adkim = 0, aspf = 0, pct = 100;

	memset(out, 0, sizeof(*out));
	out->status = opendmarc_policy_parse_dmarc(pctx,
	    (u_char *)"record.invalid", (u_char *)copy);
	if (out->status == DMARC_PARSE_OKAY) {
		(void)opendmarc_policy_fetch_p(pctx, &p);
		(void)opendmarc_policy_fetch_sp(pctx, &sp);
		(void)opendmarc_policy_fetch_adkim(pctx, &adkim);
		(void)opendmarc_policy_fetch_aspf(pctx, &aspf);
		(void)opendmarc_policy_fetch_pct(pctx, &pct);
	}
	out->pct = pct;
	out->p = (char)p;
	out->sp = (char)sp;
	out->adkim_strict = adkim == DMARC_RECORD_A_STRICT;
	out->aspf_strict = aspf == DMARC_RECORD_A_STRICT;
	(void)opendmarc_policy_connect_shutdown(pctx);
	free(copy);
}

/* dmarc_lib_status_name - the name of a libopendmarc status */
const char *
dmarc_lib_status_name(int st)
{
	switch (st) {
	case DMARC_PARSE_OKAY:
		return "DMARC_PARSE_OKAY";
	case DMARC_PARSE_ERROR_EMPTY:
		return "DMARC_PARSE_ERROR_EMPTY";
	case DMARC_PARSE_ERROR_NULL_CTX:
		return "DMARC_PARSE_ERROR_NULL_CTX";
	case DMARC_PARSE_ERROR_BAD_VERSION:
		return "DMARC_PARSE_ERROR_BAD_VERSION";
	case DMARC_PARSE_ERROR_BAD_VALUE:
		return "DMARC_PARSE_ERROR_BAD_VALUE";
	case DMARC_PARSE_ERROR_NO_REQUIRED_P:
		return "DMARC_PARSE_ERROR_NO_REQUIRED_P";
	case DMARC_PARSE_ERROR_NO_DOMAIN:
		return "DMARC_PARSE_ERROR_NO_DOMAIN";
	case DMARC_PARSE_ERROR_NO_ALLOC:
		return "DMARC_PARSE_ERROR_NO_ALLOC";
	default:
		return "DMARC_PARSE_ERROR_OTHER";
	}
}

/* dmarc_lib_spf - our outcome as libopendmarc's SPF constant */
static int
dmarc_lib_spf(enum dmarc_lib_outcome o)
{
	switch (o) {
	case DMARC_LIB_PASS:
		return DMARC_POLICY_SPF_OUTCOME_PASS;
	case DMARC_LIB_FAIL:
		return DMARC_POLICY_SPF_OUTCOME_FAIL;
	case DMARC_LIB_TEMP:
		return DMARC_POLICY_SPF_OUTCOME_TMPFAIL;
	case DMARC_LIB_NONE:
		break;
	}
	return DMARC_POLICY_SPF_OUTCOME_NONE;
}

/* dmarc_lib_dkim - our outcome as libopendmarc's DKIM constant */
static int
dmarc_lib_dkim(enum dmarc_lib_outcome o)
{
	switch (o) {
	case DMARC_LIB_PASS:
		return DMARC_POLICY_DKIM_OUTCOME_PASS;
	case DMARC_LIB_FAIL:
		return DMARC_POLICY_DKIM_OUTCOME_FAIL;
	case DMARC_LIB_TEMP:
		return DMARC_POLICY_DKIM_OUTCOME_TMPFAIL;
	case DMARC_LIB_NONE:
		break;
	}
	return DMARC_POLICY_DKIM_OUTCOME_NONE;
}

/* dmarc_lib_store_auth - SPF, then every DKIM result */
static void
dmarc_lib_store_auth(DMARC_POLICY_T *pctx, const struct dmarc_lib_query *q)
{
	char	d[DMARC_LIB_NAME_MAX], s[DMARC_LIB_NAME_MAX];
	size_t	i;

	/* RFC 7489 4.2 / RFC 9989 4.4.2: the MAIL FROM identity only. */
	if (q->spf_domain != NULL && *q->spf_domain != '\0' &&
	    dmarc_lib_copy(d, sizeof(d), q->spf_domain))
		(void)opendmarc_policy_store_spf(pctx, (u_char *)d,
		    dmarc_lib_spf(q->spf), DMARC_POLICY_SPF_ORIGIN_MAILFROM,
		    NULL);
	for (i = 0; i < q->ndkim; i++) {
		if (q->dkim[i].domain == NULL ||
		    !dmarc_lib_copy(d, sizeof(d), q->dkim[i].domain) ||
		    !dmarc_lib_copy(s, sizeof(s), q->dkim[i].selector != NULL ?
		    q->dkim[i].selector : ""))
			continue;
		(void)opendmarc_policy_store_dkim(pctx, (u_char *)d,
		    (u_char *)s, dmarc_lib_dkim(q->dkim[i].outcome), NULL);
	}
}

/* dmarc_lib_dkim_exact - a passing DKIM domain equal to the From domain */
static bool
dmarc_lib_dkim_exact(const struct dmarc_lib_query *q)
{
	size_t	i;

	for (i = 0; i < q->ndkim; i++)
		if (q->dkim[i].outcome == DMARC_LIB_PASS &&
		    tg_strcasecmp(q->dkim[i].domain, q->from) == 0)
			return true;
	return false;
}

/*
 * dmarc_lib_strict - RFC 7489 3.1, RFC 9989 4.4: strict alignment is an
 * exact match.  libopendmarc 1.4.2's opendmarc_policy_check_alignment
 * also calls a strict pair aligned when the organizational domain of
 * the authenticated domain equals the From domain (From example.com,
 * SPF or DKIM domain mail.example.com), so a strict pass is checked
 * here again.
 */
static void
dmarc_lib_strict(DMARC_POLICY_T *pctx, const struct dmarc_lib_query *q,
    struct dmarc_lib_answer *ans)
{
	int	adkim = 0, aspf = 0;

	(void)opendmarc_policy_fetch_adkim(pctx, &adkim);
	(void)opendmarc_policy_fetch_aspf(pctx, &aspf);
	if (ans->spf_aligned && aspf == DMARC_RECORD_A_STRICT &&
	    tg_strcasecmp(q->spf_domain, q->from) != 0)
		ans->spf_aligned = false;
	if (ans->dkim_aligned && adkim == DMARC_RECORD_A_STRICT &&
	    !dmarc_lib_dkim_exact(q))
		ans->dkim_aligned = false;
	ans->pass = ans->dkim_aligned || ans->spf_aligned;
}

/* dmarc_lib_evaluate - libopendmarc's alignment and pass/fail */
enum tg_status
dmarc_lib_evaluate(const struct dmarc_lib_query *q,
    struct dmarc_lib_answer *ans)
{
	DMARC_POLICY_T	*pctx;
	char		*rec = tg_strdup(q->record);
	char		 from[DMARC_LIB_NAME_MAX], org[DMARC_LIB_NAME_MAX];
	int		 st, da = 0, sa = 0;

	memset(ans, 0, sizeof(*ans));
	if (!dmarc_lib_copy(from, sizeof(from), q->from) ||
	    !dmarc_lib_copy(org, sizeof(org), q->org != NULL ? q->org : "")) {
		free(rec);
		return TG_PERM;
	}
	pctx = dmarc_lib_ctx(q->ip);
	st = opendmarc_policy_store_dmarc(pctx, (u_char *)rec, (u_char *)from,
	    q->org != NULL ? (u_char *)org : NULL);
	if (st == DMARC_PARSE_OKAY) {
		dmarc_lib_store_auth(pctx, q);
		ans->pass = opendmarc_get_policy_to_enforce(pctx) ==
		    DMARC_POLICY_PASS;
		(void)opendmarc_policy_fetch_alignment(pctx, &da, &sa);
		ans->dkim_aligned = da == DMARC_POLICY_DKIM_ALIGNMENT_PASS;
		ans->spf_aligned = sa == DMARC_POLICY_SPF_ALIGNMENT_PASS;
		dmarc_lib_strict(pctx, q, ans);
	}
	(void)opendmarc_policy_connect_shutdown(pctx);
	free(rec);
	return st == DMARC_PARSE_OKAY ? TG_OK : TG_PERM;
}

/* dmarc_lib_psl_load - the Public Suffix List into libopendmarc */
enum tg_status
dmarc_lib_psl_load(const char *path, struct tg_err *err)
{
	FILE	*fp;
	int	 rc;

	memset(&dmarc_lib, 0, sizeof(dmarc_lib));
	dmarc_lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
	if (!dmarc_lib_copy((char *)dmarc_lib.tld_source_file,
	    sizeof(dmarc_lib.tld_source_file), path))
		return tg_err_set(err, TG_PERM, "[dmarc] psl_file: path too "
		    "long");
	/* libopendmarc reads it with fopen too; this names the error. */
	if ((fp = fopen(path, "r")) == NULL)
		return tg_err_set(err, TG_PERM, "[dmarc] psl_file %s: %s",
		    path, strerror(errno));
	(void)fclose(fp);
	if ((rc = opendmarc_policy_library_init(&dmarc_lib)) != 0)
		return tg_err_set(err, TG_PERM, "[dmarc] psl_file %s: "
		    "libopendmarc cannot load it (%d)", path, rc);
	return TG_OK;
}

/* dmarc_lib_psl_unload - release libopendmarc's copy of the list */
void
dmarc_lib_psl_unload(void)
{
	(void)opendmarc_policy_library_shutdown(&dmarc_lib);
}

/*
 * dmarc_lib_psl_org - the PSL's organizational domain of domain.
 * libopendmarc 1.4.2's opendmarc_get_tld returns 0 and leaves its
 * output untouched when no rule of the list matches (its loop never
 * reaches the "no match" branch), so out is cleared first.  No match
 * means the list's default rule "*": the top label is the public
 * suffix, and the organizational domain is the last two labels (RFC
 * 7489 3.2).
 */
void
dmarc_lib_psl_org(const char *domain, char *out, size_t n)
{
	char		 copy[DMARC_LIB_NAME_MAX];
	const char	*p;

	if (n == 0)
		return;
	out[0] = '\0';
	if (dmarc_lib_copy(copy, sizeof(copy), domain) &&
	    opendmarc_get_tld((u_char *)copy, (u_char *)out, n) == 0 &&
	    *out != '\0')
		return;
	/* the default rule: from the second-to-last dot on */
	p = strrchr(domain, '.');
	while (p != NULL && p > domain && p[-1] != '.')
		p--;
	if (p == NULL || p == domain)
		p = domain;
	(void)snprintf(out, n, "%s", p);
}

/* dmarc_lib_aligned - libopendmarc's alignment check of two domains */
bool
dmarc_lib_aligned(const char *a, const char *b, bool strict)
{
	char	ca[DMARC_LIB_NAME_MAX], cb[DMARC_LIB_NAME_MAX];

	if (!dmarc_lib_copy(ca, sizeof(ca), a) ||
	    !dmarc_lib_copy(cb, sizeof(cb), b))
		return false;
	return opendmarc_policy_check_alignment((u_char *)ca, (u_char *)cb,
	    strict ? DMARC_RECORD_A_STRICT : DMARC_RECORD_A_RELAXED) == 0;
}
