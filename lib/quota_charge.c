/*
 * quota_charge - which counters a message charges, and charging them:
 * reserve all or nothing, then commit or refund.
 *
 * Planning reads only the message and the immutable policy.  The limit
 * of a counter is the most specific setting: the sender's own table
 * entry (an address), else its domain's entry, else the rule's max; a
 * rule keyed on the sender domain (the tenant's shared pool) takes the
 * domain's entry only.  Charging talks to the store, one call per
 * counter, from the calling thread.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota_int.h"

/* tg_quota_addr - the address of "<a@b>" or "a@b", lower case */
static void
tg_quota_addr(const char *in, char *out, size_t size)
{
	size_t	n;

	out[0] = '\0';
	if (in == NULL)
		return;
	in += strspn(in, " <");
	n = strcspn(in, ">");
	if (n >= size)
		n = size - 1;
	memcpy(out, in, n);
	out[n] = '\0';
	tg_quota_lower(out);
}

/* tg_quota_domain - the domain of an address, or NULL */
static const char *
tg_quota_domain(const char *addr)
{
	const char	*at = strrchr(addr, '@');

	return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

/* tg_quota_exempt_name - whether a name is on the exempt list */
static const char *
tg_quota_exempt_name(const struct tg_quota_policy *pol, const char *name)
{
	const struct tg_quota_entry	*e;
	size_t				 i;

	if (name == NULL || *name == '\0')
		return NULL;
	for (i = 0; i < pol->nexempt; i++)
		if (strcmp(pol->exempt[i], name) == 0)
			return pol->exempt[i];
	if ((e = tg_quota_find(pol, name)) != NULL && e->exempt)
		return e->who;
	return NULL;
}

/* tg_quota_limit - the most specific max of rule ri for this sender */
static uint64_t
tg_quota_limit(const struct tg_quota_policy *pol, size_t ri,
    const char *sender, const char *domain, const char **source)
{
	const struct tg_quota_entry	*e;
	uint64_t			 bit = 1ULL << ri;

	if (pol->rules[ri].key != TG_QUOTA_KEY_SENDER_DOMAIN &&
	    *sender != '\0' && (e = tg_quota_find(pol, sender)) != NULL &&
	    (e->set & bit) != 0) {
		*source = "mailbox";
		return e->max[ri];
	}
	if (domain != NULL && (e = tg_quota_find(pol, domain)) != NULL &&
	    (e->set & bit) != 0) {
		*source = "tenant";
		return e->max[ri];
	}
	*source = "rule";
	return pol->rules[ri].max;
}

/* tg_quota_fnv - 64-bit FNV-1a, for values too long for a key */
static uint64_t
tg_quota_fnv(const char *s)
{
	uint64_t	h = 14695981039346656037ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/*
 * tg_quota_store_key - "q:RULE:VALUE"; bytes a store key may not hold
 * are %XX, and a value that would not fit is its hash.
 */
static void
tg_quota_store_key(const struct tg_quota_rule *r, const char *value,
    char *key, size_t size)
{
	size_t	n;
	int	w;

	w = snprintf(key, size, "q:%s:", r->name);
	n = (size_t)w;
	for (; *value != '\0' && n + 4 < size; value++) {
		unsigned char c = (unsigned char)*value;

		if (c <= ' ' || c == '{' || c == '}' || c == '%' || c == 0x7f)
			n += (size_t)snprintf(key + n, size - n, "%%%02X", c);
		else
			key[n++] = (char)c;
	}
	key[n] = '\0';
	if (*value != '\0')
		(void)snprintf(key, size, "q:%s:#%016llx", r->name,
		    (unsigned long long)tg_quota_fnv(value));
}

/* tg_quota_push - one more charge in the plan */
static void
tg_quota_push(const struct tg_quota_policy *pol, struct tg_quota_plan *plan,
    size_t ri, const char *value, uint64_t amount, const char *sender,
    const char *domain)
{
	struct tg_quota_charge	*c;

	plan->v = tg_reallocarray(plan->v, plan->n + 1, sizeof(*plan->v));
	c = &plan->v[plan->n++];
	memset(c, 0, sizeof(*c));
	c->rule = &pol->rules[ri];
	(void)snprintf(c->who, sizeof(c->who), "%s", value);
	tg_quota_store_key(c->rule, value, c->key, sizeof(c->key));
	c->amount = amount;
	c->max = tg_quota_limit(pol, ri, sender, domain, &c->source);
}

/* tg_quota_prefix - the client's network as "addr/len" */
static bool
tg_quota_prefix(const char *addr, int p4, int p6, char *out, size_t size)
{
	unsigned char	b[16];
	char		text[INET6_ADDRSTRLEN];
	int		af, bits, len, i;

	af = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(af, addr, b) != 1)
		return false;
	bits = af == AF_INET ? p4 : p6;
	len = af == AF_INET ? 4 : 16;
	for (i = 0; i < len; i++) {
		if (bits >= 8)
			bits -= 8;
		else {
			b[i] &= (unsigned char)(0xff << (8 - bits));
			bits = 0;
		}
	}
	if (inet_ntop(af, b, text, sizeof(text)) == NULL)
		return false;
	return (size_t)snprintf(out, size, "%s/%d", text, af == AF_INET ? p4 :
	    p6) < size;
}

/* tg_quota_plan_rcpt_domains - one charge per distinct recipient domain */
static void
tg_quota_plan_rcpt_domains(const struct tg_quota_policy *pol,
    const struct tg_quota_msg *m, struct tg_quota_plan *plan, size_t ri,
    const char *sender, const char *domain)
{
	char		 a[TG_STORE_KEY_MAX], b[TG_STORE_KEY_MAX];
	const char	*d, *d2;
	uint64_t	 n;
	size_t		 i, j;

	for (i = 0; i < m->nrcpts; i++) {
		tg_quota_addr(m->rcpts[i], a, sizeof(a));
		if ((d = tg_quota_domain(a)) == NULL)
			continue;
		n = 0;
		for (j = 0; j < m->nrcpts; j++) {
			tg_quota_addr(m->rcpts[j], b, sizeof(b));
			if ((d2 = tg_quota_domain(b)) == NULL ||
			    strcmp(d, d2) != 0)
				continue;
			if (j < i)
				break;	/* charged with an earlier one */
			n++;
		}
		if (j < i)
			continue;
		tg_quota_push(pol, plan, ri, d, pol->rules[ri].count ==
		    TG_QUOTA_MESSAGES ? 1 : n, sender, domain);
	}
}

/* tg_quota_plan_rule - the charges of one rule, if it applies */
static void
tg_quota_plan_rule(const struct tg_quota_policy *pol,
    const struct tg_quota_msg *m, struct tg_quota_plan *plan, size_t ri,
    const char *sender, const char *domain)
{
	const struct tg_quota_rule	*r = &pol->rules[ri];
	char				 v[TG_STORE_KEY_MAX];
	uint64_t			 amount;

	if ((r->dir == TG_QUOTA_OUTBOUND && !m->outbound) ||
	    (r->dir == TG_QUOTA_INBOUND && m->outbound))
		return;
	amount = r->count == TG_QUOTA_MESSAGES ? 1 : (uint64_t)m->nrcpts;
	switch (r->key) {
	case TG_QUOTA_KEY_SASL:
		if (m->sasl_user == NULL || *m->sasl_user == '\0')
			return;
		(void)snprintf(v, sizeof(v), "%s", m->sasl_user);
		tg_quota_lower(v);
		break;
	case TG_QUOTA_KEY_SENDER:
		if (*sender == '\0')
			return;
		(void)snprintf(v, sizeof(v), "%s", sender);
		break;
	case TG_QUOTA_KEY_SENDER_DOMAIN:
		if (domain == NULL)
			return;
		(void)snprintf(v, sizeof(v), "%s", domain);
		break;
	case TG_QUOTA_KEY_CLIENT_IP:
		if (m->client_addr == NULL || !tg_quota_prefix(m->client_addr,
		    r->prefix4, r->prefix6, v, sizeof(v)))
			return;
		break;
	case TG_QUOTA_KEY_RCPT_DOMAIN:
		tg_quota_plan_rcpt_domains(pol, m, plan, ri, sender, domain);
		return;
	case TG_QUOTA_KEY_MESSAGE:
		(void)snprintf(v, sizeof(v), "%s", "message");
		break;
	default:
		TG_PANIC("quota: key %d", (int)r->key);
	}
	tg_quota_push(pol, plan, ri, v, amount, sender, domain);
}

/* tg_quota_plan_make - every charge of the message */
void
tg_quota_plan_make(const struct tg_quota_policy *pol,
    const struct tg_quota_msg *m, struct tg_quota_plan *plan)
{
	char		 sender[TG_STORE_KEY_MAX], user[TG_STORE_KEY_MAX];
	const char	*domain;
	size_t		 i;

	memset(plan, 0, sizeof(*plan));
	tg_quota_addr(m->sender, sender, sizeof(sender));
	domain = tg_quota_domain(sender);
	(void)snprintf(user, sizeof(user), "%s", m->sasl_user != NULL ?
	    m->sasl_user : "");
	tg_quota_lower(user);
	if ((plan->exempt_by = tg_quota_exempt_name(pol, sender)) != NULL ||
	    (plan->exempt_by = tg_quota_exempt_name(pol, domain)) != NULL ||
	    (plan->exempt_by = tg_quota_exempt_name(pol, user)) != NULL ||
	    (m->client_addr != NULL && tg_netlist_match(pol->nets,
	    m->client_addr) && (plan->exempt_by = m->client_addr) != NULL)) {
		plan->exempt = true;
		return;
	}
	for (i = 0; i < pol->nrules; i++)
		tg_quota_plan_rule(pol, m, plan, i, sender, domain);
}

/* tg_quota_plan_fini - release the charges */
void
tg_quota_plan_fini(struct tg_quota_plan *plan)
{
	free(plan->v);
	memset(plan, 0, sizeof(*plan));
}

/* tg_quota_store_failed - a store failure for charge c: on_error says */
static bool
tg_quota_store_failed(struct tg_quota_charge *c, struct tg_quota_result *res,
    const char *why)
{
	res->store_failed = true;
	if (res->error[0] == '\0')
		(void)snprintf(res->error, sizeof(res->error), "%s", why);
	if (c->rule->on_error == TG_QUOTA_ON_ERROR_ACCEPT)
		return true;
	res->outcome = TG_QUOTA_STORE_ERROR;
	res->hit = c;
	return false;
}

/*
 * tg_quota_over - c is over its limit: a shadow rule only notes it (the
 * first one, true); any other stops the message (false)
 */
static bool
tg_quota_over(struct tg_quota_charge *c, uint64_t retry,
    struct tg_quota_result *res)
{
	if (c->rule->shadow) {
		if (res->shadow_hit == NULL) {
			res->shadow_hit = c;
			res->shadow_retry_ms = retry;
		}
		return true;
	}
	res->outcome = TG_QUOTA_OVER;
	res->hit = c;
	res->retry_after_ms = retry;
	return false;
}

/* tg_quota_reserve_answer - see quota.h */
bool
tg_quota_reserve_answer(struct tg_quota_charge *c, enum tg_status st,
    const struct tg_store_quota *q, const char *why,
    struct tg_quota_result *res)
{
	if (st != TG_OK)
		return tg_quota_store_failed(c, res, why);
	c->approximate = q->approximate;
	if (q->admitted) {
		c->reserved = true;
		c->id = q->id;
	}
	if (q->approximate) {
		res->approximate = true;
		/* The rule asked not to trust a local count: it is given
		 * back with the others when the message stops. */
		if (c->rule->on_error != TG_QUOTA_ON_ERROR_LOCAL)
			return tg_quota_store_failed(c, res,
			    "store failing, local count not wanted");
	}
	c->used = q->used;
	if (q->admitted)
		return true;
	return tg_quota_over(c, q->retry_after_ms, res);
}

/* tg_quota_local_unwanted - see quota.h */
bool
tg_quota_local_unwanted(const struct tg_quota_charge *c)
{
	return c->reserved && c->approximate &&
	    c->rule->on_error != TG_QUOTA_ON_ERROR_LOCAL;
}

/*
 * tg_quota_reserve_one - reserve one charge; false when the message
 * must stop here (res says why; the caller refunds the plan)
 */
static bool
tg_quota_reserve_one(struct tg_store *store, struct tg_quota_charge *c,
    uint64_t ttl_ms, struct tg_quota_result *res)
{
	struct tg_store_quota	q;
	struct tg_err		err;
	enum tg_status		st;
	bool			ok;

	if (c->rule->key == TG_QUOTA_KEY_MESSAGE) {
		c->used = c->amount;
		return c->amount <= c->max || tg_quota_over(c, 0, res);
	}
	st = tg_store_reserve(store, c->key, c->rule->window_ms, c->max,
	    c->amount, ttl_ms, &q, &err);
	ok = tg_quota_reserve_answer(c, st, &q, err.text, res);
	/* A local count the rule does not want goes back now, even when
	 * on_error = accept lets the message go on. */
	if (tg_quota_local_unwanted(c))
		(void)tg_quota_refund_one(store, c);
	return ok;
}

/* tg_quota_refund_one - give one reservation back; false on failure */
bool
tg_quota_refund_one(struct tg_store *store, struct tg_quota_charge *c)
{
	struct tg_err	err;
	enum tg_status	st;

	if (!c->reserved)
		return true;
	c->reserved = false;
	st = tg_store_refund(store, c->key, c->id, &err);
	return st == TG_OK || st == TG_NOTFOUND;
}

/* tg_quota_reserve - every charge, or none */
void
tg_quota_reserve(struct tg_store *store, struct tg_quota_plan *plan,
    uint64_t ttl_ms, struct tg_quota_result *res)
{
	struct tg_quota_charge	*c;
	uint64_t		 left, best = UINT64_MAX;
	size_t			 i;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < plan->n; i++) {
		c = &plan->v[i];
		if (!tg_quota_reserve_one(store, c, ttl_ms, res)) {
			(void)tg_quota_refund(store, plan);
			return;
		}
		left = c->used >= c->max ? 0 : c->max - c->used;
		if (!c->rule->shadow && left < best) {
			best = left;
			res->tightest = c;
		}
	}
}

/* tg_quota_commit - make every reservation permanent */
size_t
tg_quota_commit(struct tg_store *store, struct tg_quota_plan *plan)
{
	struct tg_err	err;
	enum tg_status	st;
	size_t		i, failed = 0;

	for (i = 0; i < plan->n; i++) {
		if (!plan->v[i].reserved)
			continue;
		plan->v[i].reserved = false;
		st = tg_store_commit(store, plan->v[i].key, plan->v[i].id,
		    &err);
		if (st != TG_OK)
			failed++;
	}
	return failed;
}

/* tg_quota_refund - give every reservation back */
size_t
tg_quota_refund(struct tg_store *store, struct tg_quota_plan *plan)
{
	size_t	i, failed = 0;

	for (i = 0; i < plan->n; i++)
		if (!tg_quota_refund_one(store, &plan->v[i]))
			failed++;
	return failed;
}

/* tg_quota_duration - a compact duration, rounded up to its unit */
void
tg_quota_duration(uint64_t ms, char *out, size_t size)
{
	uint64_t	s = (ms + 999) / 1000;

	if (s >= 86400 && s % 86400 == 0)
		(void)snprintf(out, size, "%llud", (unsigned long long)(s /
		    86400));
	else if (s >= 3600 && s % 3600 == 0)
		(void)snprintf(out, size, "%lluh", (unsigned long long)(s /
		    3600));
	else if (s >= 120)
		(void)snprintf(out, size, "%llum", (unsigned long long)((s +
		    59) / 60));
	else
		(void)snprintf(out, size, "%llus", (unsigned long long)s);
}

/* tg_quota_reply - "sending limit NAME exceeded (...), try again in T" */
void
tg_quota_reply(const struct tg_quota_charge *c, uint64_t retry_ms, char *out,
    size_t size)
{
	const char	*what = c->rule->count == TG_QUOTA_MESSAGES ?
			    "messages" : "recipients";
	char		 win[32], retry[32];

	if (c->rule->key == TG_QUOTA_KEY_MESSAGE) {
		(void)snprintf(out, size, "limit %s: at most %llu recipients "
		    "per message", c->rule->name, (unsigned long long)c->max);
		return;
	}
	tg_quota_duration(c->rule->window_ms, win, sizeof(win));
	tg_quota_duration(retry_ms, retry, sizeof(retry));
	(void)snprintf(out, size, "sending limit %s exceeded (%llu %s per %s "
	    "for %s), try again in %s", c->rule->name,
	    (unsigned long long)c->max, what, win, c->who, retry);
}
