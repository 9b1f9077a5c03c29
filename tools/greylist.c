/*
 * greylist - `tollgatectl greylist`: the greylisting records that
 * tollgate-policyd keeps in the store.
 *
 *   tollgatectl greylist [-c DIR] show [PREFIX]
 *   tollgatectl greylist [-c DIR] flush PREFIX | --all
 *
 * PREFIX is the beginning of what a record is about: a client network
 * ("192.0.2." or "192.0.2.0/24"), an SPF domain as the triplet keys it
 * ("d=example.net"), or a client IP for the SPF cache.  show prints
 * one line of key=value fields per record: each triplet (its origin,
 * sender, recipient, state, when first seen, when it passes, when it
 * expires), each whitelisted network, each network's pass count and
 * each cached SPF result.  flush deletes the records show would print;
 * with --all, every greylisting record.  The record layout is the one
 * policyd/greylist.c writes (its header comment); the store and the
 * delay are those of the configuration ([store], [greylist] delay).
 * Records come from tg_store_kv_list, a page at a time, so a store of
 * millions of triplets is never in memory at once; on Redis they come
 * in no particular order.  Times are UTC.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "ctl.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"
#include "tollgate/policyd.h"
#include "tollgate/store.h"

/* The record kinds, by key prefix (policyd/greylist.c). */
static const char *const grey_ctl_spaces[] = {
	"grey:t:", "grey:awl:", "grey:awlc:", "grey:spf:"
};

struct grey_ctl {
	struct tg_store	*store;
	time_t		 now;
	long		 delay;		/* [greylist] delay, seconds */
	bool		 flush;
	size_t		 n;		/* shown or flushed */
	size_t		 failed;	/* deletions that failed */
};

/* grey_ctl_usage - the synopsis */
static int
grey_ctl_usage(void)
{
	return ctl_synopsis("tollgatectl greylist [-c DIR] show [PREFIX]\n"
	    "       tollgatectl greylist [-c DIR] flush PREFIX | --all\n");
}

/* grey_ctl_time - t as 2026-01-31T12:00:00Z */
static void
grey_ctl_time(time_t t, char *buf, size_t len)
{
	struct tm	tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(buf, len, "%lld", (long long)t);
}

/* grey_ctl_expires - when a record with ttl_ms left goes, or "never" */
static void
grey_ctl_expires(const struct grey_ctl *g, uint64_t ttl_ms, char *buf,
    size_t len)
{
	if (ttl_ms == 0)
		(void)snprintf(buf, len, "never");
	else
		grey_ctl_time(g->now + (time_t)((ttl_ms + 999) / 1000), buf,
		    len);
}

/*
 * grey_ctl_split - split "ORIGIN/SENDER/RCPT": an origin is a network
 * ("192.0.2.0/24", one '/') or "d=DOMAIN"; the recipient follows the
 * last '/'.  false when k has no such shape (a hashed key).
 */
static bool
grey_ctl_split(const char *k, char *origin, char *sender, char *rcpt,
    size_t len)
{
	const char	*a, *b;

	if ((a = strchr(k, '/')) == NULL)
		return false;
	if (strncmp(k, "d=", 2) != 0 && (a = strchr(a + 1, '/')) == NULL)
		return false;
	if ((b = strrchr(a + 1, '/')) == NULL || (size_t)(a - k) >= len ||
	    (size_t)(b - a) > len || strlen(b + 1) >= len)
		return false;
	(void)snprintf(origin, len, "%.*s", (int)(a - k), k);
	(void)snprintf(sender, len, "%.*s", (int)(b - a - 1), a + 1);
	(void)snprintf(rcpt, len, "%s", b + 1);
	return true;
}

/* grey_ctl_triplet - one triplet record "FIRST PASSED" */
static void
grey_ctl_triplet(const struct grey_ctl *g, const struct tg_store_kv_rec *r)
{
	char		 o[TG_STORE_KEY_MAX], s[TG_STORE_KEY_MAX];
	char		 rc[TG_STORE_KEY_MAX], who[3 * TG_STORE_KEY_MAX + 64];
	char		 first[32], passes[32], exp[32];
	const char	*state;
	long long	 t;
	int		 passed;

	if (grey_ctl_split(r->key + 7, o, s, rc, sizeof(o)))
		(void)snprintf(who, sizeof(who), "%s=%s sender=%s rcpt=%s",
		    strncmp(o, "d=", 2) == 0 ? "spf_domain" : "net",
		    strncmp(o, "d=", 2) == 0 ? o + 2 : o, s, rc);
	else
		(void)snprintf(who, sizeof(who), "hashed=yes");
	grey_ctl_expires(g, r->ttl_ms, exp, sizeof(exp));
	if (sscanf(r->value, "%lld %d", &t, &passed) != 2) {
		printf("triplet %s state=unreadable expires=%s key=%s\n", who,
		    exp, r->key);
		return;
	}
	grey_ctl_time((time_t)t, first, sizeof(first));
	if (passed) {
		state = "passed";
		(void)snprintf(passes, sizeof(passes), "-");
	} else {
		state = g->now - (time_t)t < g->delay ? "waiting" : "ready";
		grey_ctl_time((time_t)t + g->delay, passes, sizeof(passes));
	}
	printf("triplet %s state=%s first_seen=%s passes_at=%s expires=%s "
	    "key=%s\n", who, state, first, passes, exp, r->key);
}

/* grey_ctl_one - print one record as its kind reads */
static void
grey_ctl_one(const struct grey_ctl *g, const struct tg_store_kv_rec *r)
{
	const char	*slash;
	char		 exp[32];

	grey_ctl_expires(g, r->ttl_ms, exp, sizeof(exp));
	if (strncmp(r->key, "grey:t:", 7) == 0)
		grey_ctl_triplet(g, r);
	else if (strncmp(r->key, "grey:awl:", 9) == 0)
		printf("whitelist net=%s expires=%s\n", r->key + 9, exp);
	else if (strncmp(r->key, "grey:awlc:", 10) == 0)
		printf("passes net=%s count=%s expires=%s\n", r->key + 10,
		    r->value, exp);
	else if (strncmp(r->key, "grey:spf:", 9) == 0 &&
	    (slash = strchr(r->key + 9, '/')) != NULL)
		printf("spf_cache ip=%.*s domain=%s result=%s expires=%s\n",
		    (int)(slash - r->key - 9), r->key + 9, slash + 1,
		    r->value, exp);
	else
		printf("record key=%s expires=%s\n", r->key, exp);
}

/* grey_ctl_cb - show or delete one record */
static bool
grey_ctl_cb(const struct tg_store_kv_rec *r, void *arg)
{
	struct grey_ctl	*g = arg;
	struct tg_err	 err;
	enum tg_status	 st;

	if (!g->flush) {
		grey_ctl_one(g, r);
		g->n++;
		return true;
	}
	st = tg_store_kv_del(g->store, r->key, &err);
	if (st == TG_OK)
		g->n++;
	else if (st != TG_NOTFOUND) {
		fprintf(stderr, "tollgatectl: %s: %s\n", r->key, err.text);
		g->failed++;
	}
	return true;
}

/* grey_ctl_list - the records of prefix ("": all), each through cb */
static int
grey_ctl_list(struct grey_ctl *g, const char *prefix)
{
	struct tg_err	err;
	char		key[TG_STORE_KEY_MAX + 16];
	size_t		i;

	for (i = 0; i < TG_NITEMS(grey_ctl_spaces); i++) {
		(void)snprintf(key, sizeof(key), "%s%s", *prefix == '\0' ?
		    "grey:" : grey_ctl_spaces[i], prefix);
		if (tg_store_kv_list(g->store, key, grey_ctl_cb, g, &err) !=
		    TG_OK) {
			fprintf(stderr, "tollgatectl: %s\n", err.text);
			return err.status == TG_PERM ? EX_USAGE : EX_TEMPFAIL;
		}
		if (*prefix == '\0')
			break;
	}
	return g->failed > 0 ? EX_TEMPFAIL : 0;
}

/* grey_ctl_open - config and store; an exit code, 0 when ready */
static int
grey_ctl_open(struct grey_ctl *g, const char *confdir)
{
	int	rc;

	if ((rc = ctl_load(confdir)) != 0 ||
	    (rc = ctl_store_open(&g->store)) != 0)
		return rc;
	g->delay = pd_greylist_delay();
	g->now = time(NULL);
	return 0;
}

/* ctl_greylist - tollgatectl greylist */
int
ctl_greylist(int argc, char **argv)
{
	struct grey_ctl	 g;
	const char	*confdir = CTL_CONFDIR;
	const char	*verb, *prefix;
	int		 rc, nargs;

	/* options end at the verb, so --all is an argument */
	if (!ctl_confdir(argc, argv, true, &confdir))
		return grey_ctl_usage();
	verb = argv[optind];
	nargs = argc - optind - 1;
	prefix = nargs == 1 ? argv[optind + 1] : "";
	memset(&g, 0, sizeof(g));
	if (strcmp(verb, "flush") == 0) {
		/* Never everything by accident: --all says so. */
		if (nargs != 1 || *prefix == '\0')
			return grey_ctl_usage();
		if (strcmp(prefix, "--all") == 0)
			prefix = "";
		g.flush = true;
	} else if (strcmp(verb, "show") != 0 || nargs > 1)
		return grey_ctl_usage();
	if ((rc = grey_ctl_open(&g, confdir)) == 0) {
		tg_log_set_level(TG_LOG_WARN);
		rc = grey_ctl_list(&g, prefix);
		if (g.flush && rc != EX_USAGE)
			printf("flushed=%zu\n", g.n);
		else if (!g.flush && rc == 0 && g.n == 0)
			printf("records=0\n");
	}
	ctl_close(&g.store);
	return rc;
}
