/*
 * dkim_prefetch - key queries started while the headers come in.
 *
 * libopendkim 2.11 looks the keys up one after another inside dkim_eoh
 * (verify mode), so a message with ten signatures whose key servers time
 * out would wait ten resolver timeouts.  Instead, each DKIM-Signature
 * field seen by the header hook starts the query for its
 * s=._domainkey.d= at once (DESIGN: queries started early, collected
 * late).  At eoh we wait for all of them, so the message waits at most
 * about one timeout, and run dkim_eoh with the list marked as this
 * thread's current one: dkim_resolver's start hook answers libopendkim
 * from it instead of asking again.  A name we could not predict (an odd
 * d= or s=) is simply asked by libopendkim as before.
 *
 * A list belongs to one message and is only touched by the thread
 * handling that message; the thread-local pointer is set just around
 * dkim_eoh and cleared right after.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dkim_int.h"

/* One prefetched key query. */
struct dkim_pf_entry {
	char			*name;
	struct tg_dns_query	*q;	/* NULL once waited on */
	enum tg_status		 st;
	struct tg_dns_answer	*ans;
};

struct dkim_prefetch {
	struct dkim_pf_entry	*e;
	size_t			 n;
};

/* The list dkim_eoh may use on this thread, or NULL. */
static _Thread_local const struct dkim_prefetch *dkim_pf_current;

/* dkim_pf_find - the entry for name, or NULL */
static struct dkim_pf_entry *
dkim_pf_find(const struct dkim_prefetch *pf, const char *name)
{
	size_t	i;

	for (i = 0; pf != NULL && i < pf->n; i++)
		if (tg_strcasecmp(pf->e[i].name, name) == 0)
			return &pf->e[i];
	return NULL;
}

/* dkim_pf_tag - the value of tag t in a tag-list, white space removed */
static bool
dkim_pf_tag(const char *v, const char *t, char *out, size_t n)
{
	const char	*p = v, *eq;
	size_t		 len = 0, tl = strlen(t);

	for (;;) {
		p += strspn(p, " \t\r\n");
		if (strncmp(p, t, tl) == 0 &&
		    *(eq = p + tl + strspn(p + tl, " \t\r\n")) == '=')
			break;
		if ((p = strchr(p, ';')) == NULL)
			return false;
		p++;
	}
	for (p = eq + 1; *p != '\0' && *p != ';'; p++) {
		if (strchr(" \t\r\n", *p) != NULL)
			continue;
		if (len + 1 >= n)
			return false;
		out[len++] = *p;
	}
	out[len] = '\0';
	return len > 0;
}

/* dkim_prefetch_sig - start the key query of one DKIM-Signature value */
void
dkim_prefetch_sig(struct dkim_prefetch **pfp, struct tg_dns *dns,
    const char *value)
{
	struct dkim_prefetch	*pf = *pfp;
	struct dkim_pf_entry	*e;
	char			 d[256], sel[256], *name;

	if (!dkim_pf_tag(value, "d", d, sizeof(d)) ||
	    !dkim_pf_tag(value, "s", sel, sizeof(sel)) ||
	    !dkim_domain_ok(d) || !dkim_labels_ok(sel, 1))
		return;		/* libopendkim decides what is wrong */
	name = tg_printf_dup("%s._domainkey.%s", sel, d);
	if (pf == NULL)
		*pfp = pf = tg_calloc(1, sizeof(*pf));
	if (dkim_pf_find(pf, name) != NULL) {
		free(name);
		return;
	}
	pf->e = tg_reallocarray(pf->e, pf->n + 1, sizeof(*pf->e));
	e = &pf->e[pf->n];
	memset(e, 0, sizeof(*e));
	e->name = name;
	e->st = TG_TEMP;
	if ((e->q = tg_dns_start(dns, name, TG_DNS_TXT)) == NULL) {
		free(name);
		return;
	}
	pf->n++;
}

/* dkim_prefetch_collect - wait for every query (each has its deadline) */
void
dkim_prefetch_collect(struct dkim_prefetch *pf)
{
	struct tg_err	err;
	size_t		i;

	for (i = 0; pf != NULL && i < pf->n; i++) {
		if (pf->e[i].q == NULL)
			continue;
		pf->e[i].st = tg_dns_wait(pf->e[i].q, &pf->e[i].ans, &err);
		pf->e[i].q = NULL;
	}
}

/* dkim_prefetch_enter - the list this thread's dkim_eoh uses; NULL: none */
void
dkim_prefetch_enter(const struct dkim_prefetch *pf)
{
	dkim_pf_current = pf;
}

/* dkim_prefetch_answer - this thread's collected answer for name */
bool
dkim_prefetch_answer(const char *name, int type, enum tg_status *st,
    const struct tg_dns_answer **ans)
{
	const struct dkim_pf_entry	*e;

	if (type != TG_DNS_TXT ||
	    (e = dkim_pf_find(dkim_pf_current, name)) == NULL || e->q != NULL)
		return false;
	*st = e->st;
	*ans = e->ans;
	return true;
}

/* dkim_prefetch_free - cancel what is running, free answers; NULL ok */
void
dkim_prefetch_free(struct dkim_prefetch *pf)
{
	size_t	i;

	if (pf == NULL)
		return;
	for (i = 0; i < pf->n; i++) {
		if (pf->e[i].q != NULL)
			tg_dns_cancel(pf->e[i].q);
		(void)tg_dns_answer_free(pf->e[i].ans);
		free(pf->e[i].name);
	}
	free(pf->e);
	free(pf);
}
