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
 * are synchronous, each bounded by [store] timeout.  Runs on the event
 * loop's thread only; configuration is read-only after init.
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

static struct tg_store		*gl_store;
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
	gl_store = env->store;
	gl_dns = env->dns;
	return TG_OK;
}

/* gl_fini - release init's work */
static void
gl_fini(void)
{
	gl_exempt = tg_netlist_free(gl_exempt);
	gl_store = NULL;
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

/* gl_spf_domain - the sender's domain if SPF passes the client, else
 * NULL; the result is cached in the store */
static enum tg_status
gl_spf_domain(const struct pd_request *req, const char *ip,
    const char *sender, char **domain, struct tg_buf *note,
    struct tg_err *err)
{
	struct spf_request	 sreq;
	struct spf_answer	 ans;
	enum spf_result		 r = SPF_NONE;
	enum tg_status		 st;
	const char		*at = strrchr(sender, '@');
	char			*key, *v = NULL;
	size_t			 len;

	*domain = NULL;
	if (!gl_conf.spf_pool || at == NULL || at[1] == '\0')
		return TG_OK;
	key = gl_key("grey:spf:", ip, at + 1, NULL);
	st = tg_store_kv_get(gl_store, key, &v, &len, err);
	if (st == TG_OK && spf_result_parse(v, &r)) {
		tg_buf_printf(note, " spf=%s(cached)", spf_result_name(r));
	} else if (st == TG_OK || st == TG_NOTFOUND) {
		memset(&sreq, 0, sizeof(sreq));
		sreq.ip = ip;
		sreq.helo = pd_request_get(req, "helo_name");
		sreq.sender = sender;
		sreq.receiver = "tollgate-policyd";
		sreq.time_limit = gl_conf.spf_time_limit;
		r = spf_check(gl_dns, &sreq, &ans) == TG_OK ? ans.result :
		    SPF_PERMERROR;
		tg_buf_printf(note, " spf=%s", spf_result_name(r));
		st = r == SPF_TEMPERROR ? TG_OK : tg_store_kv_set_ttl(gl_store,
		    key, spf_result_name(r), strlen(spf_result_name(r)),
		    (uint64_t)gl_conf.spf_cache_ttl * 1000, err);
	}
	free(v);
	free(key);
	if (st == TG_OK && r == SPF_PASS)
		*domain = tg_printf_dup("d=%s", at + 1);
	return st;
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

/* gl_passed - a triplet passed: count it towards the whitelist */
static enum tg_status
gl_passed(const char *net, struct tg_buf *note, struct tg_err *err)
{
	enum tg_status	 st;
	int64_t		 n;
	char		*key;

	if (gl_conf.whitelist_after == 0)
		return TG_OK;
	key = tg_printf_dup("grey:awlc:%s", net);
	st = tg_store_kv_incr(gl_store, key, 1,
	    (uint64_t)gl_conf.whitelist_lifetime * 1000, &n, err);
	free(key);
	if (st != TG_OK || n < gl_conf.whitelist_after)
		return st;
	key = tg_printf_dup("grey:awl:%s", net);
	st = tg_store_kv_set_ttl(gl_store, key, "1", 1,
	    (uint64_t)gl_conf.whitelist_lifetime * 1000, err);
	free(key);
	if (st == TG_OK)
		tg_buf_printf(note, " whitelisted=%s", net);
	return st;
}

/* gl_triplet - defer, pass or renew the triplet at key */
static enum tg_status
gl_triplet(const char *key, const char *net, struct tg_buf *action,
    struct tg_buf *note, struct tg_err *err)
{
	enum tg_status	 st;
	long long	 first = 0;
	int		 passed = 0;
	time_t		 now = gl_time();
	char		*v = NULL, val[64];
	size_t		 len;

	st = tg_store_kv_get(gl_store, key, &v, &len, err);
	if (st == TG_OK && (sscanf(v, "%lld %d", &first, &passed) != 2 ||
	    first > (long long)now))
		st = TG_NOTFOUND;	/* unreadable or from the future */
	free(v);
	if (st == TG_NOTFOUND) {
		(void)snprintf(val, sizeof(val), "%lld 0", (long long)now);
		tg_buf_printf(note, " greylist=new wait=%ld", gl_conf.delay);
		if (gl_conf.delay == 0)
			goto pass;
		gl_defer(action, gl_conf.delay);
		return tg_store_kv_set_ttl(gl_store, key, val, strlen(val),
		    (uint64_t)gl_conf.retry_window * 1000, err);
	}
	if (st != TG_OK)
		return st;
	if (!passed && now - first < gl_conf.delay) {
		tg_buf_printf(note, " greylist=early wait=%lld",
		    (long long)(gl_conf.delay - (now - first)));
		gl_defer(action, (long)(gl_conf.delay - (now - first)));
		return TG_OK;
	}
	tg_buf_printf(note, " greylist=%s", passed ? "known" : "passed");
pass:
	(void)snprintf(val, sizeof(val), "%lld 1", first > 0 ? first :
	    (long long)now);
	tg_buf_puts(action, "DUNNO");
	if ((st = tg_store_kv_set_ttl(gl_store, key, val, strlen(val),
	    (uint64_t)gl_conf.lifetime * 1000, err)) != TG_OK || passed)
		return st;
	return gl_passed(net, note, err);
}

/* gl_check - the check hook */
static enum tg_status
gl_check(const struct pd_request *req, struct tg_buf *action,
    struct tg_buf *note, struct tg_err *err)
{
	const char	*ip = pd_request_get(req, "client_address");
	const char	*sasl = pd_request_get(req, "sasl_username");
	const char	*state = pd_request_get(req, "protocol_state");
	const char	*s = pd_request_get(req, "sender");
	const char	*r = pd_request_get(req, "recipient");
	enum tg_status	 st;
	char		 net[INET6_ADDRSTRLEN + 8];
	char		*key, *origin, *sender, *rcpt, *dom;
	size_t		 len;

	if (state != NULL && tg_strcasecmp(state, "RCPT") != 0) {
		tg_buf_printf(note, " greylist=skip(state)");
		return TG_OK;
	}
	if (gl_conf.exempt_authenticated && sasl != NULL && *sasl != '\0') {
		tg_buf_printf(note, " greylist=exempt(sasl)");
		return TG_OK;
	}
	if (ip == NULL || !gl_network(ip, net, sizeof(net))) {
		tg_buf_printf(note, " greylist=skip(no client_address)");
		return TG_OK;
	}
	if (tg_netlist_match(gl_exempt, ip)) {
		tg_buf_printf(note, " greylist=exempt(network)");
		return TG_OK;
	}
	key = tg_printf_dup("grey:awl:%s", net);
	st = tg_store_kv_get(gl_store, key, &origin, &len, err);
	free(key);
	if (st == TG_OK) {
		free(origin);
		tg_buf_printf(note, " greylist=whitelisted net=%s", net);
		return TG_OK;
	}
	if (st != TG_NOTFOUND)
		return st;
	sender = gl_lower(s != NULL && *s != '\0' ? s : "<>");
	rcpt = gl_lower(r != NULL ? r : "");
	if ((st = gl_spf_domain(req, ip, sender, &dom, note, err)) == TG_OK) {
		origin = dom != NULL ? dom : tg_strdup(net);
		key = gl_key("grey:t:", origin, sender, rcpt);
		tg_buf_printf(note, " key=%s", key);
		st = gl_triplet(key, net, action, note, err);
		free(key);
		free(origin);
	}
	free(sender);
	free(rcpt);
	return st;
}

const struct pd_check pd_check_greylist = {
	.name = "greylist",
	.params = gl_params,
	.init = gl_init,
	.fini = gl_fini,
	.check = gl_check,
};
