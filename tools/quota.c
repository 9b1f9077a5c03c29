/*
 * quota - `tollgatectl quota`: the sending-quota counters in the store.
 *
 *   tollgatectl quota [-c DIR] show KEY
 *   tollgatectl quota [-c DIR] list [PREFIX]
 *   tollgatectl quota [-c DIR] reset KEY
 *
 * KEY is what an operator knows: a SASL user, a sender address, a
 * sender domain (the tenant) or a client IP.  The counters it names
 * come from lib/quota's own planning (tg_quota_plan_make on a message
 * built from KEY), so the store keys and the limits after tenant-table
 * overrides are those the milter and policyd charge.  The rules and
 * the store are those of the configuration ([ratelimit] rules_file,
 * [store]).  Output is one line per counter of key=value fields.
 * Limits keyed on the recipient domain or the message are not shown:
 * no operator key names them.  An unknown KEY is used=0, not an error.
 */
#include "config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"
#include "tollgate/quota.h"
#include "tollgate/ratelimit.h"
#include "tollgate/store.h"

#define QUOTA_CTL_MAXCH	64	/* charges of one KEY, both directions */

struct quota_ctl {
	struct tg_quota_policy	*pol;
	struct tg_store		*store;
	struct tg_quota_charge	 v[QUOTA_CTL_MAXCH];
	size_t			 n;
};

static const char *const quota_ctl_count_names[] = {
	"messages", "recipients"
};

/* quota_ctl_usage - the synopsis */
static int
quota_ctl_usage(void)
{
	return ctl_synopsis("tollgatectl quota [-c DIR] show KEY\n"
	    "       tollgatectl quota [-c DIR] list [PREFIX]\n"
	    "       tollgatectl quota [-c DIR] reset KEY\n");
}

/* quota_ctl_wanted - whether a rule's key kind is one KEY can name */
static bool
quota_ctl_wanted(enum tg_quota_key k, const char *key, bool ip)
{
	if (ip)
		return k == TG_QUOTA_KEY_CLIENT_IP;
	if (strchr(key, '@') != NULL)
		return k == TG_QUOTA_KEY_SASL || k == TG_QUOTA_KEY_SENDER;
	return k == TG_QUOTA_KEY_SASL || k == TG_QUOTA_KEY_SENDER_DOMAIN;
}

/* quota_ctl_add - the wanted charges of one plan, without duplicates */
static void
quota_ctl_add(struct quota_ctl *q, const struct tg_quota_plan *plan,
    const char *key, bool ip)
{
	size_t	i, j;

	for (i = 0; i < plan->n; i++) {
		if (!quota_ctl_wanted(plan->v[i].rule->key, key, ip))
			continue;
		for (j = 0; j < q->n; j++)
			if (strcmp(q->v[j].key, plan->v[i].key) == 0)
				break;
		if (j < q->n || q->n == QUOTA_CTL_MAXCH)
			continue;
		q->v[q->n++] = plan->v[i];
	}
}

/* quota_ctl_plan - the counters KEY names; false when KEY is exempt */
static bool
quota_ctl_plan(struct quota_ctl *q, const char *key, const char **exempt_by)
{
	struct tg_quota_msg	 m;
	struct tg_quota_plan	 plan;
	unsigned char		 addr[16];
	char			 sender[TG_STORE_KEY_MAX + 2];
	bool			 ip;
	int			 dir;

	ip = inet_pton(AF_INET, key, addr) == 1 ||
	    inet_pton(AF_INET6, key, addr) == 1;
	(void)snprintf(sender, sizeof(sender), "%s%s",
	    strchr(key, '@') != NULL ? "" : "@", key);
	q->n = 0;
	for (dir = 0; dir < 2; dir++) {
		memset(&m, 0, sizeof(m));
		m.outbound = dir == 0;
		m.nrcpts = 1;
		if (ip)
			m.client_addr = key;
		else {
			m.sasl_user = key;
			m.sender = sender;
		}
		tg_quota_plan_make(q->pol, &m, &plan);
		if (plan.exempt) {
			*exempt_by = plan.exempt_by;
			tg_quota_plan_fini(&plan);
			return false;
		}
		quota_ctl_add(q, &plan, key, ip);
		tg_quota_plan_fini(&plan);
	}
	return true;
}

/* quota_ctl_print - one counter: what counts, its window and its use */
static enum tg_status
quota_ctl_print(struct quota_ctl *q, const struct tg_quota_rule *r,
    const char *key, uint64_t max)
{
	struct tg_store_usage	 u;
	struct tg_err		 err;
	char			 win[32], frees[32];

	if (tg_store_usage(q->store, key, r->window_ms, max, &u, &err) !=
	    TG_OK) {
		fprintf(stderr, "tollgatectl: %s: %s\n", key, err.text);
		return TG_TEMP;
	}
	tg_quota_duration(r->window_ms, win, sizeof(win));
	if (u.frees_in_ms == 0)
		(void)snprintf(frees, sizeof(frees), "-");
	else
		(void)snprintf(frees, sizeof(frees), "%llus",
		    (unsigned long long)((u.frees_in_ms + 999) / 1000));
	printf("limit=%s count=%s window=%s max=%llu used=%llu remaining=%llu "
	    "frees_in=%s key=%s%s\n", r->name, quota_ctl_count_names[r->count],
	    win, (unsigned long long)max, (unsigned long long)u.used,
	    (unsigned long long)u.remaining, frees, key,
	    u.approximate ? " approximate=yes" : "");
	return TG_OK;
}

/* quota_ctl_show - every limit that applies to KEY */
static int
quota_ctl_show(struct quota_ctl *q, const char *key, bool reset)
{
	struct tg_err	 err;
	const char	*exempt_by = NULL;
	size_t		 i;
	int		 rc = 0;

	if (!quota_ctl_plan(q, key, &exempt_by)) {
		printf("key=%s exempt=%s\n", key, exempt_by);
		return 0;
	}
	if (q->n == 0)
		printf("key=%s limits=none\n", key);
	for (i = 0; i < q->n; i++) {
		if (!reset) {
			if (quota_ctl_print(q, q->v[i].rule, q->v[i].key,
			    q->v[i].max) != TG_OK)
				rc = EX_TEMPFAIL;
			continue;
		}
		if (tg_store_reset(q->store, q->v[i].key, &err) != TG_OK) {
			fprintf(stderr, "tollgatectl: %s: %s\n", q->v[i].key,
			    err.text);
			rc = EX_TEMPFAIL;
			continue;
		}
		printf("reset limit=%s key=%s\n", q->v[i].rule->name,
		    q->v[i].key);
	}
	return rc;
}

/* quota_ctl_rule - the rule a store key "q:RULE:VALUE" belongs to */
static const struct tg_quota_rule *
quota_ctl_rule(const struct tg_quota_policy *pol, const char *key)
{
	const struct tg_quota_rule	*r;
	size_t				 i, len;

	if (strncmp(key, "q:", 2) != 0)
		return NULL;
	for (i = 0; i < tg_quota_policy_nrules(pol); i++) {
		r = tg_quota_policy_rule(pol, i);
		len = strlen(r->name);
		if (strncmp(key + 2, r->name, len) == 0 && key[2 + len] == ':')
			return r;
	}
	return NULL;
}

/*
 * quota_ctl_max - a listed counter's limit: planned again from the
 * value its key shows, so tenant overrides apply; the rule's own max
 * when the key does not give the value back (hashed, a prefix)
 */
static uint64_t
quota_ctl_max(struct quota_ctl *q, const struct tg_quota_rule *r,
    const char *key)
{
	const char	*s = key + 2 + strlen(r->name) + 1, *exempt_by;
	char		 v[TG_STORE_KEY_MAX + 1];
	unsigned int	 c;
	size_t		 n = 0, i;

	for (; *s != '\0' && n < sizeof(v) - 1; s++) {
		if (*s == '%' && sscanf(s + 1, "%2x", &c) == 1) {
			v[n++] = (char)c;
			s += 2;
		} else
			v[n++] = *s;
	}
	v[n] = '\0';
	if (*v == '\0' || !quota_ctl_plan(q, v, &exempt_by))
		return r->max;
	for (i = 0; i < q->n; i++)
		if (strcmp(q->v[i].key, key) == 0)
			return q->v[i].max;
	return r->max;
}

/* quota_ctl_list - the counters in the store; use where the rule is known */
static int
quota_ctl_list(struct quota_ctl *q, const char *prefix)
{
	const struct tg_quota_rule	*r;
	struct tg_err			 err;
	char				**keys;
	size_t				 i, n;
	int				 rc = 0;

	if (tg_store_list(q->store, prefix, &keys, &n, &err) != TG_OK) {
		fprintf(stderr, "tollgatectl: %s\n", err.text);
		return EX_TEMPFAIL;
	}
	for (i = 0; i < n; i++) {
		if ((r = quota_ctl_rule(q->pol, keys[i])) == NULL ||
		    r->window_ms == 0)
			printf("key=%s\n", keys[i]);
		else if (quota_ctl_print(q, r, keys[i], quota_ctl_max(q, r,
		    keys[i])) != TG_OK)
			rc = EX_TEMPFAIL;
	}
	(void)tg_store_list_free(keys, n);
	return rc;
}

/* quota_ctl_open - config, rules and store; an exit code, 0 when ready */
static int
quota_ctl_open(struct quota_ctl *q, const char *confdir)
{
	struct tg_err	 err;
	const char	*rules, *exempt;
	int		 rc;

	if ((rc = ctl_load(confdir)) != 0)
		return rc;
	tg_ratelimit_rules(&rules, &exempt);
	if (*rules == '\0') {
		fprintf(stderr, "tollgatectl: [ratelimit] rules_file: not set\n");
		return EX_CONFIG;
	}
	if ((q->pol = tg_quota_policy_load(rules, exempt, &err)) == NULL) {
		fprintf(stderr, "tollgatectl: %s\n", err.text);
		return EX_CONFIG;
	}
	return ctl_store_open(&q->store);
}

/* ctl_quota - tollgatectl quota */
int
ctl_quota(int argc, char **argv)
{
	struct quota_ctl	 q;
	const char		*confdir = CTL_CONFDIR;
	const char		*verb;
	int			 rc, nargs;

	if (!ctl_confdir(argc, argv, false, &confdir))
		return quota_ctl_usage();
	verb = argv[optind];
	nargs = argc - optind - 1;
	if (strcmp(verb, "list") == 0 ? nargs > 1 : (nargs != 1 ||
	    (strcmp(verb, "show") != 0 && strcmp(verb, "reset") != 0)))
		return quota_ctl_usage();
	memset(&q, 0, sizeof(q));
	if ((rc = quota_ctl_open(&q, confdir)) == 0) {
		tg_log_set_level(TG_LOG_WARN);
		if (strcmp(verb, "list") == 0)
			rc = quota_ctl_list(&q, nargs == 1 ?
			    argv[optind + 1] : "q:");
		else
			rc = quota_ctl_show(&q, argv[optind + 1],
			    strcmp(verb, "reset") == 0);
	}
	q.pol = tg_quota_policy_unref(q.pol);
	ctl_close(&q.store);
	return rc;
}
