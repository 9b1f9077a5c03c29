/*
 * dmarc_policy - DMARC policy discovery on tollgate's resolver, and the
 * libopendmarc wrapper for records and the Public Suffix List.
 *
 * The _dmarc TXT records are fetched here, never by libopendmarc:
 * opendmarc_policy_query_dmarc blocks on its own resolver and, after a
 * temporary error at the From domain, silently goes on to the
 * organizational domain, where RFC 7489 6.6.3 and RFC 9989 4.10 say the
 * answer is temperror.  A TXT set is reduced to the records that start
 * with "v=DMARC1" (RFC 7489 6.6.3 step 4); exactly one must remain.
 * libopendmarc parses it (opendmarc_policy_parse_dmarc, so its leniency
 * such as "p=n" is kept) and we read the tags it does not know: np=,
 * psd= and t= of RFC 9989, and whether pct= was written at all.  The
 * pct= value is libopendmarc's reading ("pct=50x" is 50), so that the
 * records it accepts are sampled as it would sample them.
 *
 * Two ways to the organizational domain: the PSL (RFC 7489 3.2), loaded
 * into libopendmarc once at init, and the DNS Tree Walk of RFC 9989
 * 4.10, at most DMARC_WALK_MAX queries per walk.  One message's lookups
 * share a struct dmarc_lookup: every _dmarc answer (temporary failures
 * too) and every tree walk's result is remembered until the message
 * ends, and the alignment walks stop at DMARC_MSG_QUERIES_MAX _dmarc
 * queries.
 *
 * Threading: libopendmarc (dmarc_lib.c) is thread-safe as we use it;
 * everything else works on the caller's structures.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dmarc_int.h"
#include "tollgate/buf.h"
#include "tollgate/log.h"

/* What one _dmarc query gave. */
enum dmarc_fetch {
	DMARC_FETCH_NONE,	/* no DMARC record there */
	DMARC_FETCH_OK,		/* one usable record */
	DMARC_FETCH_BAD,	/* one record, unusable */
	DMARC_FETCH_MULTI,	/* several records: none applies */
	DMARC_FETCH_TEMP,	/* lookup failed for now */
	DMARC_FETCH_CAPPED	/* not asked: DMARC_MSG_QUERIES_MAX reached */
};

/* One _dmarc answer of this message. */
struct dmarc_fetch_memo {
	char			 domain[DMARC_DOMAIN_MAX + 1];
	enum dmarc_fetch	 f;	/* _OK: one record, in txt */
	char			*txt;	/* owned */
};

/* One tree walk of this message. */
struct dmarc_org_memo {
	char	 domain[DMARC_DOMAIN_MAX + 1];
	char	 org[DMARC_DOMAIN_MAX + 1];
};

/* dmarc_is_record - starts with the v=DMARC1 tag (RFC 7489 6.6.3) */
bool
dmarc_is_record(const char *txt)
{
	const char	*p = txt + strspn(txt, " \t");

	if (*p != 'v')
		return false;
	p++;
	p += strspn(p, " \t");
	if (*p++ != '=')
		return false;
	p += strspn(p, " \t");
	if (strncmp(p, "DMARC1", 6) != 0)
		return false;
	p += 6;
	p += strspn(p, " \t");
	return *p == ';' || *p == '\0';
}

/* dmarc_policy_of - libopendmarc's policy letter as our enum */
static enum dmarc_policy
dmarc_policy_of(char c)
{
	switch (c) {
	case 'r':
		return DMARC_POLICY_REJECT;
	case 'q':
		return DMARC_POLICY_QUARANTINE;
	default:
		return DMARC_POLICY_NONE;
	}
}

/* dmarc_policy_word - "none" "quarantine" "reject"; false if neither */
static bool
dmarc_policy_word(const char *v, enum dmarc_policy *out)
{
	if (tg_strcasecmp(v, "none") == 0)
		*out = DMARC_POLICY_NONE;
	else if (tg_strcasecmp(v, "quarantine") == 0)
		*out = DMARC_POLICY_QUARANTINE;
	else if (tg_strcasecmp(v, "reject") == 0)
		*out = DMARC_POLICY_REJECT;
	else
		return false;
	return true;
}

/* dmarc_record_tag - one tag=value libopendmarc does not keep for us */
static void
dmarc_record_tag(struct dmarc_record *rec, const char *tag, const char *v)
{
	if (strcmp(tag, "np") == 0)
		/* RFC 9989 4.7: an unknown value is as if np= were absent. */
		rec->has_np = dmarc_policy_word(v, &rec->np);
	else if (strcmp(tag, "sp") == 0)
		rec->has_sp = true;
	else if (strcmp(tag, "psd") == 0 && (v[0] == 'y' || v[0] == 'n') &&
	    v[1] == '\0')
		rec->psd = v[0];
	else if (strcmp(tag, "t") == 0)
		rec->testing = strcmp(v, "y") == 0;
	else if (strcmp(tag, "pct") == 0)
		rec->pct = 100;	/* written; the value is libopendmarc's */
	else if (strcmp(tag, "rua") == 0 && rec->rua == NULL)
		rec->rua = tg_strdup(v);
	else if (strcmp(tag, "fo") == 0 && rec->fo == NULL)
		rec->fo = tg_strdup(v);
}

/* dmarc_record_tags - split "t=v; t=v" and read the tags we need */
static void
dmarc_record_tags(struct dmarc_record *rec)
{
	char	*copy = tg_strdup(rec->text), *p = copy, *semi, *eq;

	for (; p != NULL; p = semi) {
		if ((semi = strchr(p, ';')) != NULL)
			*semi++ = '\0';
		if ((eq = strchr(p, '=')) == NULL)
			continue;
		*eq = '\0';
		dmarc_record_tag(rec, tg_trim(p), tg_trim(eq + 1));
	}
	free(copy);
}

/*
 * dmarc_record_nopolicy - the record without its p= and sp= tags, and
 * "p=none" instead (RFC 7489 6.6.3); caller frees
 */
static char *
dmarc_record_nopolicy(const char *text)
{
	struct tg_buf	 b;
	char		*copy = tg_strdup(text), *p = copy, *semi, *name, *tag;

	tg_buf_init(&b);
	for (; p != NULL; p = semi) {
		if ((semi = strchr(p, ';')) != NULL)
			*semi++ = '\0';
		name = tg_strndup(p, strcspn(p, "="));
		tag = tg_trim(name);
		p = tg_trim(p);
		if (strcmp(tag, "p") != 0 && strcmp(tag, "sp") != 0 &&
		    *p != '\0')
			tg_buf_printf(&b, "%s; ", p);
		free(name);
	}
	tg_buf_puts(&b, "p=none");
	free(copy);
	return tg_buf_steal(&b);
}

/*
 * dmarc_record_fallback - RFC 7489 6.6.3: a record whose p= is missing
 * or invalid, or whose sp= is invalid, but which names a reporting
 * address, is read as p=none so that reports still reach its owner.
 */
static bool
dmarc_record_fallback(struct dmarc_record *rec, struct dmarc_lib_parsed *lp)
{
	char	*alt;

	if ((lp->status != DMARC_LIB_BAD_VALUE &&
	    lp->status != DMARC_LIB_NO_P) || rec->rua == NULL ||
	    strstr(rec->rua, "mailto:") == NULL)
		return false;
	alt = dmarc_record_nopolicy(rec->text);
	dmarc_lib_parse(alt, lp);
	if (lp->status != 0) {
		free(alt);
		return false;
	}
	free(rec->text);
	rec->text = alt;
	rec->has_sp = false;
	rec->p_fallback = true;
	return true;
}

/* dmarc_record_parse - libopendmarc's parse plus the RFC 9989 tags */
enum tg_status
dmarc_record_parse(const char *text, struct dmarc_record *rec)
{
	struct dmarc_lib_parsed	lp;

	memset(rec, 0, sizeof(*rec));
	rec->text = tg_strdup(text);
	rec->pct = -1;
	dmarc_record_tags(rec);
	dmarc_lib_parse(text, &lp);
	rec->parse_status = lp.status;
	if (lp.status != 0 && !dmarc_record_fallback(rec, &lp))
		return TG_PERM;
	rec->p = dmarc_policy_of(lp.p);
	/* RFC 7489 6.3: sp= defaults to p=; RFC 9989 4.7: np= to sp=. */
	rec->sp = rec->has_sp ? dmarc_policy_of(lp.sp) : rec->p;
	if (!rec->has_np)
		rec->np = rec->sp;
	rec->adkim_strict = lp.adkim_strict;
	rec->aspf_strict = lp.aspf_strict;
	/* It refuses a pct= outside 0-100, so lp.pct is in range. */
	if (rec->pct >= 0 && lp.pct >= 0 && lp.pct <= 100)
		rec->pct = lp.pct;
	return TG_OK;
}

/* dmarc_record_fini - free a record's strings */
void
dmarc_record_fini(struct dmarc_record *rec)
{
	free(rec->text);
	free(rec->rua);
	free(rec->fo);
	memset(rec, 0, sizeof(*rec));
}

/* dmarc_fetch_select - the one DMARC record of a TXT answer, or why not */
static enum dmarc_fetch
dmarc_fetch_select(const struct tg_dns_answer *ans, char **found)
{
	size_t	 i, n = 0;
	char	*txt;

	*found = NULL;
	for (i = 0; i < ans->count; i++) {
		if ((txt = tg_dns_txt_join(ans, i)) == NULL)
			continue;
		if (dmarc_is_record(txt) && n++ == 0)
			*found = txt;
		else
			free(txt);
	}
	if (n <= 1)
		return n == 1 ? DMARC_FETCH_OK : DMARC_FETCH_NONE;
	free(*found);
	*found = NULL;
	return DMARC_FETCH_MULTI;
}

/* dmarc_fetch_memo_find - this message's answer for domain, or NULL */
static struct dmarc_fetch_memo *
dmarc_fetch_memo_find(struct dmarc_lookup *lk, const char *domain)
{
	size_t	i;

	for (i = 0; i < lk->nfetched; i++)
		if (tg_strcasecmp(lk->fetched[i].domain, domain) == 0)
			return &lk->fetched[i];
	return NULL;
}

/* dmarc_fetch_query - query _dmarc.domain and remember what it gave */
static struct dmarc_fetch_memo *
dmarc_fetch_query(struct dmarc_lookup *lk, const char *domain,
    const char *name)
{
	struct tg_dns_answer	*ans = NULL;
	struct dmarc_fetch_memo	*fm;
	struct tg_err		 err;
	enum tg_status		 st;

	lk->fetched = tg_reallocarray(lk->fetched, lk->nfetched + 1,
	    sizeof(*lk->fetched));
	fm = &lk->fetched[lk->nfetched++];
	memset(fm, 0, sizeof(*fm));
	(void)snprintf(fm->domain, sizeof(fm->domain), "%s", domain);
	lk->queries++;
	lk->dmarc_queries++;
	err.text[0] = '\0';
	st = tg_dns_resolve(lk->dns, name, TG_DNS_TXT, &ans, &err);
	tg_log_debug(lk->ctx, "query %s: %s%s%s", name, tg_status_name(st),
	    st == TG_OK ? "" : ": ", st == TG_OK ? "" : err.text);
	if (st == TG_TEMP)
		fm->f = DMARC_FETCH_TEMP;
	else if (st != TG_OK)
		fm->f = DMARC_FETCH_NONE;	/* NXDOMAIN, NODATA, bad name */
	else
		fm->f = dmarc_fetch_select(ans, &fm->txt);
	(void)tg_dns_answer_free(ans);
	return fm;
}

/*
 * dmarc_fetch - the record at _dmarc.domain, parsed, from DNS or this
 * message's earlier answer; with budget, only within
 * DMARC_MSG_QUERIES_MAX
 */
static enum dmarc_fetch
dmarc_fetch(struct dmarc_lookup *lk, const char *domain,
    struct dmarc_record *rec, bool budget)
{
	struct dmarc_fetch_memo	*fm;
	enum tg_status		 st;
	char			 name[DMARC_DOMAIN_MAX + 8];

	memset(rec, 0, sizeof(*rec));
	if ((size_t)snprintf(name, sizeof(name), "_dmarc.%s", domain) >=
	    sizeof(name))
		return DMARC_FETCH_NONE;	/* no such name can exist */
	if ((fm = dmarc_fetch_memo_find(lk, domain)) == NULL) {
		if (budget && lk->dmarc_queries >= DMARC_MSG_QUERIES_MAX)
			return DMARC_FETCH_CAPPED;
		fm = dmarc_fetch_query(lk, domain, name);
	}
	if (fm->f != DMARC_FETCH_OK)
		return fm->f;
	st = dmarc_record_parse(fm->txt, rec);
	(void)snprintf(rec->domain, sizeof(rec->domain), "%s", domain);
	dmarc_lower(rec->domain);
	return st == TG_OK ? DMARC_FETCH_OK : DMARC_FETCH_BAD;
}

/* dmarc_lookup_fini - free the message's remembered answers */
void
dmarc_lookup_fini(struct dmarc_lookup *lk)
{
	size_t	i;

	for (i = 0; i < lk->nfetched; i++)
		free(lk->fetched[i].txt);
	free(lk->fetched);
	free(lk->orgs);
	lk->fetched = NULL;
	lk->orgs = NULL;
	lk->nfetched = lk->norgs = 0;
}

/* dmarc_found - a fetch that ended discovery, as a status */
static enum tg_status
dmarc_found(enum dmarc_fetch f, const char **why)
{
	switch (f) {
	case DMARC_FETCH_OK:
		return TG_OK;
	case DMARC_FETCH_BAD:
		*why = "malformed record";
		return TG_PERM;
	case DMARC_FETCH_TEMP:
		*why = "policy lookup failed";
		return TG_TEMP;
	case DMARC_FETCH_MULTI:
		*why = "several records";
		return TG_NOTFOUND;
	case DMARC_FETCH_NONE:
	case DMARC_FETCH_CAPPED:	/* discovery is never capped */
		*why = "no record";
		return TG_NOTFOUND;
	}
	TG_PANIC("bad fetch %d", (int)f);
}

/* dmarc_labels - how many labels domain has */
static size_t
dmarc_labels(const char *d)
{
	size_t	n = 1;

	for (; *d != '\0'; d++)
		n += *d == '.';
	return n;
}

/* dmarc_last_labels - the rightmost n labels of d (a suffix of d) */
static const char *
dmarc_last_labels(const char *d, size_t n)
{
	const char	*p = d + strlen(d);
	size_t		 seen = 0;

	while (p > d) {
		p--;
		if (*p == '.' && ++seen == n)
			return p + 1;
	}
	return d;
}

/*
 * dmarc_walk_next - the next target of the tree walk, or NULL after the
 * top-level domain.  RFC 9989 4.10: from 8 or more labels the walk
 * jumps to the rightmost 7, then drops one label at a time, so that it
 * never takes more than DMARC_WALK_MAX queries.
 */
static const char *
dmarc_walk_next(const char *d)
{
	size_t	n = dmarc_labels(d);

	if (n <= 1)
		return NULL;
	if (n >= DMARC_WALK_MAX)
		return dmarc_last_labels(d, DMARC_WALK_MAX - 1);
	return strchr(d, '.') + 1;
}

/* dmarc_discover_psl - RFC 7489 6.6.3: the From domain, then its org */
static enum tg_status
dmarc_discover_psl(struct dmarc_lookup *lk, const char *from,
    struct dmarc_record *rec, bool *at_from, const char **why)
{
	enum dmarc_fetch	f;
	char			org[DMARC_DOMAIN_MAX + 1];

	f = dmarc_fetch(lk, from, rec, false);
	*at_from = true;
	if (f != DMARC_FETCH_NONE)
		return dmarc_found(f, why);
	dmarc_record_fini(rec);
	dmarc_lib_psl_org(from, org, sizeof(org));
	dmarc_lower(org);
	if (strcmp(org, from) == 0)
		return dmarc_found(DMARC_FETCH_NONE, why);
	*at_from = false;
	return dmarc_found(dmarc_fetch(lk, org, rec, false), why);
}

/* dmarc_discover_walk - RFC 9989 4.10.1: the first record up the tree */
static enum tg_status
dmarc_discover_walk(struct dmarc_lookup *lk, const char *from,
    struct dmarc_record *rec, bool *at_from, const char **why)
{
	enum dmarc_fetch	 f;
	const char		*d;
	size_t			 n = 0;

	for (d = from; d != NULL && n < DMARC_WALK_MAX; d = dmarc_walk_next(d),
	    n++) {
		*at_from = d == from;
		f = dmarc_fetch(lk, d, rec, false);
		/* Several records at one level: that level has none. */
		if (f == DMARC_FETCH_NONE || f == DMARC_FETCH_MULTI) {
			dmarc_record_fini(rec);
			continue;
		}
		return dmarc_found(f, why);
	}
	return dmarc_found(DMARC_FETCH_NONE, why);
}

/* dmarc_discover - the record that applies to the From domain */
enum tg_status
dmarc_discover(struct dmarc_lookup *lk, const char *from,
    struct dmarc_record *rec, bool *at_from, const char **why)
{
	memset(rec, 0, sizeof(*rec));
	*why = NULL;
	if (lk->mode == DMARC_ORG_TREE_WALK)
		return dmarc_discover_walk(lk, from, rec, at_from, why);
	return dmarc_discover_psl(lk, from, rec, at_from, why);
}

/*
 * dmarc_org_walk - RFC 9989 4.10.2: walk from d to the top; psd=n marks
 * the organizational domain, psd=y (above d) a public suffix whose
 * child on d's path is it; otherwise the record with fewest labels,
 * and with no record at all, d itself.
 */
static enum tg_status
dmarc_org_walk(struct dmarc_lookup *lk, const char *d, char *out, size_t sz)
{
	struct dmarc_record	 rec;
	enum dmarc_fetch	 f;
	const char		*t, *best = d;
	size_t			 n = 0;

	for (t = d; t != NULL && n < DMARC_WALK_MAX; t = dmarc_walk_next(t),
	    n++) {
		f = dmarc_fetch(lk, t, &rec, true);
		if (f == DMARC_FETCH_TEMP)
			return TG_TEMP;
		if (f == DMARC_FETCH_CAPPED) {
			tg_log_debug(lk->ctx, "tree walk of %s: stopped at %u "
			    "queries", d, lk->dmarc_queries);
			*out = '\0';
			return TG_NOTFOUND;
		}
		if (f == DMARC_FETCH_OK && rec.psd == 'n') {
			dmarc_record_fini(&rec);
			best = t;
			break;
		}
		if (f == DMARC_FETCH_OK && rec.psd == 'y' && t != d) {
			dmarc_record_fini(&rec);
			best = dmarc_last_labels(d, dmarc_labels(t) + 1);
			break;
		}
		if (f == DMARC_FETCH_OK)
			best = t;
		dmarc_record_fini(&rec);
	}
	(void)snprintf(out, sz, "%s", best);
	return TG_OK;
}

/* dmarc_org_domain - the organizational domain, by PSL or tree walk */
enum tg_status
dmarc_org_domain(struct dmarc_lookup *lk, const char *domain, char *out,
    size_t n)
{
	struct dmarc_org_memo	*om;
	char			 low[DMARC_DOMAIN_MAX + 1];
	enum tg_status		 st;
	size_t			 i;

	(void)snprintf(low, sizeof(low), "%s", domain);
	dmarc_lower(low);
	if (lk->mode == DMARC_ORG_PSL) {
		dmarc_lib_psl_org(low, out, n);
		dmarc_lower(out);
		return TG_OK;
	}
	for (i = 0; i < lk->norgs; i++)
		if (strcmp(lk->orgs[i].domain, low) == 0) {
			(void)snprintf(out, n, "%s", lk->orgs[i].org);
			return TG_OK;
		}
	if ((st = dmarc_org_walk(lk, low, out, n)) != TG_OK)
		return st;
	lk->orgs = tg_reallocarray(lk->orgs, lk->norgs + 1, sizeof(*lk->orgs));
	om = &lk->orgs[lk->norgs++];
	(void)snprintf(om->domain, sizeof(om->domain), "%s", low);
	(void)snprintf(om->org, sizeof(om->org), "%s", out);
	return TG_OK;
}

/* dmarc_domain_exists - false only for NXDOMAIN (RFC 8020) */
bool
dmarc_domain_exists(struct dmarc_lookup *lk, const char *domain)
{
	struct tg_dns_answer	*ans = NULL;
	enum tg_status		 st;
	bool			 exists = true;

	lk->queries++;
	st = tg_dns_resolve(lk->dns, domain, TG_DNS_A, &ans, NULL);
	if (st == TG_NOTFOUND && ans != NULL && ans->rcode == 3)
		exists = false;
	(void)tg_dns_answer_free(ans);
	return exists;
}
