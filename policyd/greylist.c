/*
 * greylist - the greylisting check of tollgate-policyd.
 *
 * A triplet (client origin, sender, recipient) seen for the first time
 * is deferred; the same triplet retried after delay passes and is then
 * known for lifetime (renewed with every pass).  The origin is the
 * client's network (ipv4_prefix, ipv6_prefix), or, with spf_pool, the
 * sender's domain when that domain's SPF record passes the client
 * address: big senders retry from another address of their pool, and
 * would otherwise be greylisted again and again.  A network whose
 * triplets passed whitelist_after times skips greylisting for
 * whitelist_lifetime.  Authenticated clients (sasl_username) and
 * exempt_networks are never greylisted.
 *
 * All state is in the store, so MX hosts sharing a Redis share it:
 *   grey:t:ORIGIN/SENDER/RCPT   "FIRST PASSED"  (a hash when too long)
 *   grey:spf:IP/DOMAIN          the SPF result for that pair
 *   grey:awlc:NET               passes counted for the whitelist
 *   grey:awl:NET                present while NET is whitelisted
 * The SPF result is cached in the store for spf_cache_ttl, so a
 * triplet's retries and its other recipients cost no DNS.  Store calls
 * are asynchronous (each bounded by [store] timeout): a request's state
 * is a struct gl_req that goes from one callback to the next, and the
 * loop serves other connections meanwhile.  SPF itself is not: its DNS
 * lookups block the loop for at most spf_time_limit, and only on a
 * cache miss.  Runs on the event loop's thread only; configuration is
 * read-only after init.
 */
#include "config.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tollgate/log.h"
#include "tollgate/policyd.h"
#include "tollgate/spf.h"

static struct {
	long	 delay;
	long	 lifetime;
	long	 retry_window;
	long	 ipv4_prefix;
	long	 ipv6_prefix;
	long	 whitelist_after;
	long	 whitelist_lifetime;
	char	*exempt_networks;
	bool	 exempt_authenticated;
	bool	 spf_pool;
	long	 spf_cache_ttl;
	long	 spf_time_limit;
	char	*reply;
} gl_conf;

static const struct tg_param gl_params[] = {
	TG_PARAM_TIME("delay", "5m", &gl_conf.delay, 0, 86400,
	    "a new triplet passes when retried this long after first seen"),
	TG_PARAM_TIME("lifetime", "35d", &gl_conf.lifetime, 60, 31536000,
	    "a passed triplet stays known this long after its last pass"),
	TG_PARAM_TIME("retry_window", "2d", &gl_conf.retry_window, 60,
	    31536000, "a new triplet is forgotten unless retried this soon"),
	TG_PARAM_LONG("ipv4_prefix", "24", &gl_conf.ipv4_prefix, 8, 32,
	    "IPv4 clients in one network of this prefix are one origin"),
	TG_PARAM_LONG("ipv6_prefix", "64", &gl_conf.ipv6_prefix, 16, 128,
	    "IPv6 clients in one network of this prefix are one origin"),
	TG_PARAM_LONG("whitelist_after", "5", &gl_conf.whitelist_after, 0,
	    100000, "a network skips greylisting after this many passes; "
	    "0: never"),
	TG_PARAM_TIME("whitelist_lifetime", "35d", &gl_conf.whitelist_lifetime,
	    60, 31536000, "how long a network stays whitelisted"),
	TG_PARAM_STRING("exempt_networks", "127.0.0.0/8 ::1/128",
	    &gl_conf.exempt_networks, "clients never greylisted"),
	TG_PARAM_BOOL("exempt_authenticated", "yes",
	    &gl_conf.exempt_authenticated,
	    "never greylist SASL-authenticated clients"),
	TG_PARAM_BOOL("spf_pool", "yes", &gl_conf.spf_pool,
	    "key the triplet on the sender domain when SPF passes the client"),
	TG_PARAM_TIME("spf_cache_ttl", "1h", &gl_conf.spf_cache_ttl, 1,
	    86400, "how long an SPF result stays in the store"),
	TG_PARAM_TIME("spf_time_limit", "5s", &gl_conf.spf_time_limit, 1, 60,
	    "longest SPF check (it blocks the event loop)"),
	TG_PARAM_STRING("reply", "Greylisted, try again in $seconds seconds",
	    &gl_conf.reply, "text of the 4.7.1 deferral; $seconds is the wait"),
	TG_PARAM_END
};

static struct tg_store_async	*gl_astore;
static struct tg_dns		*gl_dns;
static struct tg_netlist	*gl_exempt;
static time_t			(*gl_clock)(void);

/* gl_time - the wall clock, or the test's */
static time_t
gl_time(void)
{
	return gl_clock != NULL ? gl_clock() : time(NULL);
}

/* pd_greylist_set_clock - tests move time; NULL restores the clock */
void
pd_greylist_set_clock(time_t (*fn)(void))
{
	gl_clock = fn;
}

/* pd_greylist_delay - the loaded delay */
long
pd_greylist_delay(void)
{
	return gl_conf.delay;
}

/* gl_init - validate what the loader cannot */
static enum tg_status
gl_init(const struct pd_env *env, struct tg_err *err)
{
	struct tg_err	nerr;
	const char	*p;

	for (p = gl_conf.reply; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f)
			return tg_err_set(err, TG_PERM, "[greylist] reply: "
			    "only printable ASCII");
	if (strlen(gl_conf.reply) > 200)
		return tg_err_set(err, TG_PERM, "[greylist] reply: longer "
		    "than 200 bytes");
	if (gl_conf.spf_pool && env->dns == NULL)
		return tg_err_set(err, TG_PERM, "[greylist] spf_pool needs "
		    "the resolver");
	if (gl_conf.delay >= gl_conf.retry_window)
		return tg_err_set(err, TG_PERM, "[greylist] delay: not shorter "
		    "than retry_window, so no triplet would ever pass");
	if ((gl_exempt = tg_netlist_parse(gl_conf.exempt_networks,
	    &nerr)) == NULL)
		return tg_err_set(err, TG_PERM, "[greylist] exempt_networks: "
		    "%s", nerr.text);
	gl_astore = env->astore;
	gl_dns = env->dns;
	return TG_OK;
}

/* gl_fini - release init's work */
static void
gl_fini(void)
{
	gl_exempt = tg_netlist_free(gl_exempt);
	gl_astore = NULL;
	gl_dns = NULL;
}

/* gl_network - "192.0.2.0/24" for the client address; false if bad */
static bool
gl_network(const char *addr, char *out, size_t outlen)
{
	unsigned char	 a[16];
	char		 text[INET6_ADDRSTRLEN];
	int		 af, bits, i, nbytes;
	long		 prefix;

	af = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(af, addr, a) != 1)
		return false;
	nbytes = af == AF_INET ? 4 : 16;
	prefix = af == AF_INET ? gl_conf.ipv4_prefix : gl_conf.ipv6_prefix;
	for (i = 0; i < nbytes; i++) {
		bits = (int)prefix - 8 * i;
		if (bits <= 0)
			a[i] = 0;
		else if (bits < 8)
			a[i] &= (unsigned char)(0xff << (8 - bits));
	}
	if (inet_ntop(af, a, text, sizeof(text)) == NULL)
		return false;
	i = snprintf(out, outlen, "%s/%ld", text, prefix);
	return i > 0 && (size_t)i < outlen;
}

/* gl_lower - a lower-case copy the caller frees */
static char *
gl_lower(const char *s)
{
	char	*c = tg_strdup(s), *p;

	for (p = c; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return c;
}

/* gl_fnv - FNV-1a, for keys too long or too odd to keep readable */
static uint64_t
gl_fnv(const char *s, uint64_t h)
{
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* gl_key - prefix + parts joined by '/', hashed when not a good key */
static char *
gl_key(const char *prefix, const char *a, const char *b, const char *c)
{
	char		*k;
	uint64_t	 h;

	k = c != NULL ? tg_printf_dup("%s%s/%s/%s", prefix, a, b, c) :
	    tg_printf_dup("%s%s/%s", prefix, a, b);
	if (tg_store_key_ok(k) && strlen(k) < TG_STORE_KEY_MAX)
		return k;
	free(k);
	h = gl_fnv(a, 14695981039346656037ULL);
	h = gl_fnv(b, gl_fnv("/", h));
	if (c != NULL)
		h = gl_fnv(c, gl_fnv("/", h));
	return tg_printf_dup("%sh%016" PRIx64, prefix, h);
}

/*
 * One request's greylisting, from store callback to store callback:
 * the whitelist, the SPF cache (and SPF), the triplet, then the pass
 * counted towards the whitelist.  Freed by gl_finish.
 */
struct gl_req {
	struct pd_job	*job;
	char		 net[INET6_ADDRSTRLEN + 8];
	char		*ip, *sender, *rcpt, *helo;
	char		*spf_key;
	char		*domain;	/* "d=DOMAIN" when SPF passed */
	char		*key;		/* the triplet's */
	long long	 first;
	int		 passed;
	time_t		 now;
};

static void	gl_after_awl(enum tg_status, const char *, size_t,
		    const struct tg_err *, void *);
static void	gl_after_spf_get(enum tg_status, const char *, size_t,
		    const struct tg_err *, void *);
static void	gl_after_spf_set(enum tg_status, const struct tg_err *,
		    void *);
static void	gl_triplet(struct gl_req *);
static void	gl_after_get(enum tg_status, const char *, size_t,
		    const struct tg_err *, void *);
static void	gl_after_set(enum tg_status, const struct tg_err *, void *);
static void	gl_after_pass(enum tg_status, const struct tg_err *, void *);
static void	gl_after_incr(enum tg_status, int64_t, const struct tg_err *,
		    void *);
static void	gl_after_awl_set(enum tg_status, const struct tg_err *,
		    void *);

/* gl_finish - answer the job and free the request's state */
static void
gl_finish(struct gl_req *g, enum tg_status st, const struct tg_err *err)
{
	struct pd_job	*job = g->job;

	if (st != TG_OK && err != NULL)
		job->err = *err;
	else if (st != TG_OK)
		(void)tg_err_set(&job->err, st, "greylist: store failed");
	free(g->ip);
	free(g->sender);
	free(g->rcpt);
	free(g->helo);
	free(g->spf_key);
	free(g->domain);
	free(g->key);
	free(g);
	pd_check_done(job, st);
}

/* gl_defer - the deferral with the wait in seconds */
static void
gl_defer(struct tg_buf *action, long wait)
{
	const char	*p, *q;

	tg_buf_puts(action, "DEFER_IF_PERMIT 4.7.1 ");
	for (p = gl_conf.reply; (q = strstr(p, "$seconds")) != NULL;
	    p = q + 8) {
		tg_buf_append(action, p, (size_t)(q - p));
		tg_buf_printf(action, "%ld", wait);
	}
	tg_buf_puts(action, p);
}

/* gl_after_awl - the network's whitelist record, or none */
static void
gl_after_awl(enum tg_status st, const char *v, size_t len,
    const struct tg_err *err, void *arg)
{
	struct gl_req	*g = arg;
	const char	*at = strrchr(g->sender, '@');

	(void)v;
	(void)len;
	if (st == TG_OK) {
		tg_buf_printf(&g->job->note, " greylist=whitelisted net=%s",
		    g->net);
		gl_finish(g, TG_OK, NULL);
		return;
	}
	if (st != TG_NOTFOUND) {
		gl_finish(g, st, err);
		return;
	}
	if (!gl_conf.spf_pool || at == NULL || at[1] == '\0') {
		gl_triplet(g);
		return;
	}
	g->spf_key = gl_key("grey:spf:", g->ip, at + 1, NULL);
	tg_store_async_kv_get(gl_astore, g->spf_key, gl_after_spf_get, g);
}

/* gl_spf_passed - SPF result r decided the origin */
static void
gl_spf_passed(struct gl_req *g, enum spf_result r)
{
	if (r == SPF_PASS)
		g->domain = tg_printf_dup("d=%s", strrchr(g->sender, '@') + 1);
}

/*
 * gl_after_spf_get - the cached SPF result, else SPF now (its DNS
 * blocks the loop for at most spf_time_limit) and cache it
 */
static void
gl_after_spf_get(enum tg_status st, const char *v, size_t len,
    const struct tg_err *err, void *arg)
{
	struct gl_req		*g = arg;
	struct spf_request	 sreq;
	struct spf_answer	 ans;
	enum spf_result		 r = SPF_NONE;

	(void)len;
	if (st == TG_OK && spf_result_parse(v, &r)) {
		tg_buf_printf(&g->job->note, " spf=%s(cached)",
		    spf_result_name(r));
		gl_spf_passed(g, r);
		gl_triplet(g);
		return;
	}
	if (st != TG_OK && st != TG_NOTFOUND) {
		gl_finish(g, st, err);
		return;
	}
	memset(&sreq, 0, sizeof(sreq));
	sreq.ip = g->ip;
	sreq.helo = g->helo;
	sreq.sender = g->sender;
	sreq.receiver = "tollgate-policyd";
	sreq.time_limit = gl_conf.spf_time_limit;
	r = spf_check(gl_dns, &sreq, &ans) == TG_OK ? ans.result :
	    SPF_PERMERROR;
	tg_buf_printf(&g->job->note, " spf=%s", spf_result_name(r));
	gl_spf_passed(g, r);
	if (r == SPF_TEMPERROR) {
		gl_triplet(g);
		return;
	}
	tg_store_async_kv_set(gl_astore, g->spf_key, spf_result_name(r),
	    strlen(spf_result_name(r)), (uint64_t)gl_conf.spf_cache_ttl * 1000,
	    gl_after_spf_set, g);
}

/* gl_after_spf_set - the SPF result is cached */
static void
gl_after_spf_set(enum tg_status st, const struct tg_err *err, void *arg)
{
	struct gl_req	*g = arg;

	if (st != TG_OK) {
		gl_finish(g, st, err);
		return;
	}
	gl_triplet(g);
}

/* gl_triplet - the origin is known: read the triplet */
static void
gl_triplet(struct gl_req *g)
{
	g->key = gl_key("grey:t:", g->domain != NULL ? g->domain : g->net,
	    g->sender, g->rcpt);
	pd_note_add(&g->job->note, "key", g->key);
	tg_store_async_kv_get(gl_astore, g->key, gl_after_get, g);
}

/* gl_set - write the triplet as val for ttl seconds, then next */
static void
gl_set(struct gl_req *g, long long first, int passed, long ttl,
    tg_store_done_cb next)
{
	char	val[64];

	(void)snprintf(val, sizeof(val), "%lld %d", first, passed);
	tg_store_async_kv_set(gl_astore, g->key, val, strlen(val),
	    (uint64_t)ttl * 1000, next, g);
}

/* gl_after_get - defer, pass or renew the triplet */
static void
gl_after_get(enum tg_status st, const char *v, size_t len,
    const struct tg_err *err, void *arg)
{
	struct gl_req	*g = arg;
	struct tg_buf	*note = &g->job->note;

	(void)len;
	g->first = 0;
	g->passed = 0;
	if (st == TG_OK && (sscanf(v, "%lld %d", &g->first, &g->passed) != 2 ||
	    g->first > (long long)g->now))
		st = TG_NOTFOUND;	/* unreadable or from the future */
	if (st == TG_NOTFOUND) {
		tg_buf_printf(note, " greylist=new wait=%ld", gl_conf.delay);
		g->first = (long long)g->now;
		g->passed = 0;
		if (gl_conf.delay > 0) {
			gl_defer(&g->job->action, gl_conf.delay);
			gl_set(g, g->first, 0, gl_conf.retry_window,
			    gl_after_set);
			return;
		}
	} else if (st != TG_OK) {
		gl_finish(g, st, err);
		return;
	} else if (!g->passed && g->now - g->first < gl_conf.delay) {
		tg_buf_printf(note, " greylist=early wait=%lld",
		    (long long)(gl_conf.delay - (g->now - g->first)));
		gl_defer(&g->job->action, (long)(gl_conf.delay -
		    (g->now - g->first)));
		gl_finish(g, TG_OK, NULL);
		return;
	} else
		tg_buf_printf(note, " greylist=%s", g->passed ? "known" :
		    "passed");
	tg_buf_puts(&g->job->action, "DUNNO");
	gl_set(g, g->first, 1, gl_conf.lifetime, gl_after_pass);
}

/* gl_after_set - the new triplet is written */
static void
gl_after_set(enum tg_status st, const struct tg_err *err, void *arg)
{
	gl_finish(arg, st, err);
}

/* gl_after_pass - the pass is written: count it towards the whitelist */
static void
gl_after_pass(enum tg_status st, const struct tg_err *err, void *arg)
{
	struct gl_req	*g = arg;
	char		*key;

	if (st != TG_OK || g->passed || gl_conf.whitelist_after == 0) {
		gl_finish(g, st, err);
		return;
	}
	key = tg_printf_dup("grey:awlc:%s", g->net);
	tg_store_async_kv_incr(gl_astore, key, 1,
	    (uint64_t)gl_conf.whitelist_lifetime * 1000, gl_after_incr, g);
	free(key);
}

/* gl_after_incr - enough passes whitelist the network */
static void
gl_after_incr(enum tg_status st, int64_t n, const struct tg_err *err,
    void *arg)
{
	struct gl_req	*g = arg;
	char		*key;

	if (st != TG_OK || n < gl_conf.whitelist_after) {
		gl_finish(g, st, err);
		return;
	}
	key = tg_printf_dup("grey:awl:%s", g->net);
	tg_store_async_kv_set(gl_astore, key, "1", 1,
	    (uint64_t)gl_conf.whitelist_lifetime * 1000, gl_after_awl_set, g);
	free(key);
}

/* gl_after_awl_set - the network is whitelisted */
static void
gl_after_awl_set(enum tg_status st, const struct tg_err *err, void *arg)
{
	struct gl_req	*g = arg;

	if (st == TG_OK)
		tg_buf_printf(&g->job->note, " whitelisted=%s", g->net);
	gl_finish(g, st, err);
}

/* gl_start - the check hook: what needs no store, then the whitelist */
static void
gl_start(struct pd_job *job)
{
	const struct pd_request	*req = job->req;
	const char	*ip = pd_request_get(req, "client_address");
	const char	*sasl = pd_request_get(req, "sasl_username");
	const char	*state = pd_request_get(req, "protocol_state");
	const char	*s = pd_request_get(req, "sender");
	const char	*r = pd_request_get(req, "recipient");
	const char	*helo = pd_request_get(req, "helo_name");
	struct gl_req	*g;
	char		*key;

	if (state != NULL && tg_strcasecmp(state, "RCPT") != 0) {
		tg_buf_printf(&job->note, " greylist=skip(state)");
		pd_check_done(job, TG_OK);
		return;
	}
	if (gl_conf.exempt_authenticated && sasl != NULL && *sasl != '\0') {
		tg_buf_printf(&job->note, " greylist=exempt(sasl)");
		pd_check_done(job, TG_OK);
		return;
	}
	g = tg_calloc(1, sizeof(*g));
	if (ip == NULL || !gl_network(ip, g->net, sizeof(g->net))) {
		free(g);
		tg_buf_printf(&job->note, " greylist=skip(no client_address)");
		pd_check_done(job, TG_OK);
		return;
	}
	if (tg_netlist_match(gl_exempt, ip)) {
		free(g);
		tg_buf_printf(&job->note, " greylist=exempt(network)");
		pd_check_done(job, TG_OK);
		return;
	}
	g->job = job;
	g->now = gl_time();
	g->ip = tg_strdup(ip);
	g->helo = helo != NULL ? tg_strdup(helo) : NULL;
	g->sender = gl_lower(s != NULL && *s != '\0' ? s : "<>");
	g->rcpt = gl_lower(r != NULL ? r : "");
	key = tg_printf_dup("grey:awl:%s", g->net);
	tg_store_async_kv_get(gl_astore, key, gl_after_awl, g);
	free(key);
}

const struct pd_check pd_check_greylist = {
	.name = "greylist",
	.params = gl_params,
	.init = gl_init,
	.fini = gl_fini,
	.start = gl_start,
};
