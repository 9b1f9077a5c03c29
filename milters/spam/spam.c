/*
 * spam - the spam-scoring module: a drop-in for spamass-milter with
 * SpamAssassin behind it.
 *
 * For inbound mail the module keeps the header block and the first
 * max_scan_bytes of the body as the MTA sends them (the rest passes
 * unscanned), starts the DNSBL lookups of the client at MAIL FROM (or
 * of the first untrusted hop, when the client is a trusted relay or
 * internal, at end of headers), and at end of message: extracts the message
 * (spam_mime.c), runs the rules (spam_rules*.c), asks Bayes
 * (spam_bayes*.c) and the URIBLs, adds the DKIM/SPF/DMARC results'
 * weights, and compares the total with the thresholds (global, or the
 * recipient domain's from domain_table).  It always removes X-Spam-*
 * headers that came with the message (they would be forgeries of
 * ours) and adds SpamAssassin's X-Spam-Status, X-Spam-Score and
 * X-Spam-Level, X-Spam-Flag: YES on spam, X-Spam-Report when
 * add_report is set.
 *
 * A scan that runs past time_limit or hits a size limit still gives a
 * verdict on what it has (tests=... with "partial" in the log line).
 * A store failure (Bayes) or DNS failure follows on_error.
 *
 * What it does not do: judge outbound or authenticated mail (unless
 * scan_outbound), evaluate rules (spam_rules*.c) or Bayes.
 *
 * Threads: configuration, the rule set, the domain table, the DNSBL
 * zones and the store are made in init and read-only afterwards (the
 * store is thread-safe).  Everything else is per message.
 */
#include "config.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tollgate/buf.h"
#include "tollgate/conf.h"
#include "tollgate/dkim.h"
#include "tollgate/dmarc.h"
#include "tollgate/dns.h"
#include "tollgate/log.h"
#include "tollgate/module.h"
#include "tollgate/spam.h"
#include "tollgate/spf.h"
#include "tollgate/store.h"

#include "spam_int.h"

#define SPAM_VERSION		"tollgate-0.1"
#define SPAM_MAX_HOPS		8
#define SPAM_MAX_XSPAM		8
#define SPAM_OFF		HUGE_VAL

/* The [spam] section, as loaded. */
static struct {
	char	*rules;
	char	*required_score;
	char	*quarantine_score;
	char	*tempfail_score;
	char	*reject_score;
	char	*domain_table;
	long	 max_scan_bytes;
	long	 max_body_text;
	long	 max_parts;
	long	 max_depth;
	long	 max_uris;
	long	 max_headers;
	long	 time_limit;
	bool	 scan_outbound;
	bool	 add_report;
	bool	 use_bayes;
	char	*dnsbl;
	char	*uribl;
	long	 max_uribl_domains;
	char	*trusted_relays;
	char	*auth_scores;
	int	 on_error;
} spam_conf;

static const struct tg_param spam_params[] = {
	TG_PARAM_STRING("rules", "", &spam_conf.rules,
	    "SpamAssassin-syntax rules: files or directories (*.cf), "
	    "blank-separated; empty: none"),
	TG_PARAM_STRING("required_score", "5.0", &spam_conf.required_score,
	    "points from which mail is spam: X-Spam-Flag: YES"),
	TG_PARAM_STRING("quarantine_score", "off",
	    &spam_conf.quarantine_score,
	    "points from which mail goes to the MTA's hold queue; off: never"),
	TG_PARAM_STRING("tempfail_score", "off", &spam_conf.tempfail_score,
	    "points from which mail is deferred (4xx, score-based "
	    "greylisting); off: never"),
	TG_PARAM_STRING("reject_score", "off", &spam_conf.reject_score,
	    "points from which mail is refused (5xx); off: never"),
	TG_PARAM_STRING("domain_table", "", &spam_conf.domain_table,
	    "per recipient domain thresholds: lines of \"domain required "
	    "quarantine tempfail reject\" (- or off: never); empty: none"),
	TG_PARAM_SIZE("max_scan_bytes", "512k", &spam_conf.max_scan_bytes,
	    4096, 64L * 1024 * 1024, "bytes of a message scanned; the rest "
	    "passes unscanned"),
	TG_PARAM_SIZE("max_body_text", "256k", &spam_conf.max_body_text,
	    1024, 64L * 1024 * 1024, "decoded text kept for the rules"),
	TG_PARAM_LONG("max_parts", "100", &spam_conf.max_parts, 1, 100000,
	    "MIME parts looked at"),
	TG_PARAM_LONG("max_depth", "20", &spam_conf.max_depth, 1, 100,
	    "multipart and message/rfc822 nesting entered"),
	TG_PARAM_LONG("max_uris", "500", &spam_conf.max_uris, 1, 100000,
	    "URIs recorded"),
	TG_PARAM_LONG("max_headers", "1000", &spam_conf.max_headers, 1,
	    100000, "headers of the header block kept for the rules"),
	TG_PARAM_TIME("time_limit", "10s", &spam_conf.time_limit, 1, 600,
	    "longest scan; past it the verdict uses what was checked"),
	TG_PARAM_BOOL("scan_outbound", "no", &spam_conf.scan_outbound,
	    "scan authenticated and internal (outbound) mail too"),
	TG_PARAM_BOOL("add_report", "no", &spam_conf.add_report,
	    "add X-Spam-Report (each rule hit, its points and description)"),
	TG_PARAM_BOOL("use_bayes", "yes", &spam_conf.use_bayes,
	    "ask Bayes (token counts in the [store])"),
	TG_PARAM_STRING("dnsbl", "", &spam_conf.dnsbl,
	    "DNSBL zones for the client address: zone:127.0.0.N=points,... "
	    "or zone:any=points, blank-separated; empty: none"),
	TG_PARAM_STRING("uribl", "", &spam_conf.uribl,
	    "URIBL zones for URI host names, same syntax; empty: none"),
	TG_PARAM_LONG("max_uribl_domains", "20", &spam_conf.max_uribl_domains,
	    0, 1000, "URI host names looked up per message"),
	TG_PARAM_STRING("trusted_relays", "", &spam_conf.trusted_relays,
	    "relays (networks) whose Received: hop is skipped to find the "
	    "client to look up; internal_networks are skipped too"),
	TG_PARAM_STRING("auth_scores", "DKIM_VALID=-0.1 DKIM_INVALID=0.1 "
	    "SPF_PASS=-0.001 SPF_FAIL=0.9 SPF_SOFTFAIL=0.7 DMARC_PASS=-0.1 "
	    "DMARC_NONE=0.5 DMARC_QUAR=1.5 DMARC_REJECT=3.0",
	    &spam_conf.auth_scores,
	    "points of the DKIM/SPF/DMARC results (NAME=points, blank-"
	    "separated; a name left out adds nothing)"),
	TG_PARAM_ENUM("on_error", "accept", &spam_conf.on_error,
	    tg_on_error_names, "store or DNS failure during a scan: accept "
	    "(score without it) or tempfail"),
	TG_PARAM_END
};

/* thresholds, parsed; SPAM_OFF: never */
struct spam_thresholds {
	double	required, quarantine, tempfail, reject;
};

struct spam_domain {
	char			*domain;
	struct spam_thresholds	 t;
};

struct spam_auth_score {
	char	*name;
	double	 points;
};

static struct spam_rules	*spam_rules_set;
static struct spam_dnsbl	*spam_zones;
static struct tg_store		*spam_store;
static struct tg_netlist	*spam_trusted;
/* hops in these are the MTA's own or a content filter's, never the
 * sender to look up (loopback, RFC 1918, RFC 4193, link-local) */
static struct tg_netlist	*spam_private;
#define SPAM_PRIVATE_NETS	"127.0.0.0/8 10.0.0.0/8 172.16.0.0/12 " \
				"192.168.0.0/16 ::1/128 fc00::/7 fe80::/10"

static struct tg_dns		*spam_dns;
static struct spam_thresholds	 spam_global;
static struct spam_domain	*spam_domains;
static size_t			 spam_ndomains;
static struct spam_auth_score	*spam_auth;
static size_t			 spam_nauth;

/* One message. */
struct spam_state {
	bool			 ready;		/* release deferred */
	bool			 skip;
	bool			 over;		/* body beyond max_scan_bytes */
	struct tg_buf		 raw;
	char			*hops[SPAM_MAX_HOPS];	/* Received: [ip] */
	size_t			 nhops;
	struct {
		char	*name;
		size_t	 count;
	}			 xspam[SPAM_MAX_XSPAM];
	size_t			 nxspam;
	struct spam_dnsbl_q	*ipq;
	const char		*looked_up;	/* the address asked about */
	struct spam_score	 sc;
	bool			 scanned;
	double			 required;
};

/* Built-in points of rules run outside the rule set, when it has no
 * score line for them (SpamAssassin 3.4's 50_scores.cf, Bayes on). */
static const struct {
	const char	*name;
	double		 points;
} spam_builtin_scores[] = {
	{ "BAYES_00", -1.9 }, { "BAYES_05", -0.5 }, { "BAYES_20", -0.001 },
	{ "BAYES_40", -0.001 }, { "BAYES_50", 0.8 }, { "BAYES_60", 1.5 },
	{ "BAYES_80", 2.0 }, { "BAYES_95", 3.0 }, { "BAYES_99", 3.5 },
	{ "BAYES_999", 0.2 },
};

/* ---- configuration ---- */

/* spam_parse_points - "5.0" or "off" (SPAM_OFF) */
static bool
spam_parse_points(const char *s, double *out)
{
	char	*end;

	if (tg_strcasecmp(s, "off") == 0 || strcmp(s, "-") == 0) {
		*out = SPAM_OFF;
		return true;
	}
	*out = strtod(s, &end);
	return end != s && *end == '\0' && isfinite(*out) && *out > -1000 &&
	    *out < 1000;
}

/* spam_parse_global - the four threshold settings */
static enum tg_status
spam_parse_global(struct tg_err *err)
{
	static const struct {
		const char	*key;
		size_t		 off;
	} keys[] = {
		{ "required_score", offsetof(struct spam_thresholds, required) },
		{ "quarantine_score", offsetof(struct spam_thresholds,
		    quarantine) },
		{ "tempfail_score", offsetof(struct spam_thresholds, tempfail) },
		{ "reject_score", offsetof(struct spam_thresholds, reject) },
	};
	const char	*vals[4];
	size_t		 i;

	vals[0] = spam_conf.required_score;
	vals[1] = spam_conf.quarantine_score;
	vals[2] = spam_conf.tempfail_score;
	vals[3] = spam_conf.reject_score;
	for (i = 0; i < TG_NITEMS(keys); i++)
		if (!spam_parse_points(vals[i], (double *)(void *)
		    ((char *)&spam_global + keys[i].off)))
			return tg_err_set(err, TG_PERM, "[spam] %s: \"%s\" is "
			    "not a number of points or off", keys[i].key,
			    vals[i]);
	if (spam_global.required == SPAM_OFF)
		return tg_err_set(err, TG_PERM, "[spam] required_score: "
		    "must be a number");
	return TG_OK;
}

/* spam_domain_line - "domain required quarantine tempfail reject" */
static enum tg_status
spam_domain_line(char *line, const char *file, unsigned int lineno,
    struct tg_err *err)
{
	char			*f[6], *p = line;
	size_t			 n = 0;
	struct spam_domain	 d;

	while (n < TG_NITEMS(f)) {
		p += strspn(p, " \t");
		if (*p == '\0' || *p == '#')
			break;
		f[n++] = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
	}
	if (n == 0)
		return TG_OK;
	if (n != 5)
		return tg_err_set(err, TG_PERM, "%s:%u: want \"domain required "
		    "quarantine tempfail reject\"", file, lineno);
	if (!spam_parse_points(f[1], &d.t.required) ||
	    d.t.required == SPAM_OFF ||
	    !spam_parse_points(f[2], &d.t.quarantine) ||
	    !spam_parse_points(f[3], &d.t.tempfail) ||
	    !spam_parse_points(f[4], &d.t.reject))
		return tg_err_set(err, TG_PERM, "%s:%u: bad points (a number, "
		    "or - for never; required must be a number)", file, lineno);
	d.domain = tg_strdup(f[0]);
	spam_domains = tg_reallocarray(spam_domains, spam_ndomains + 1,
	    sizeof(*spam_domains));
	spam_domains[spam_ndomains++] = d;
	return TG_OK;
}

/* spam_domain_load - the domain_table file */
static enum tg_status
spam_domain_load(const char *path, struct tg_err *err)
{
	char		*text, *line, *nl;
	size_t		 len;
	unsigned int	 lineno = 0;
	enum tg_status	 st = TG_OK;
	struct tg_err	 rerr;

	if (*path == '\0')
		return TG_OK;
	if (tg_read_file(path, &text, &len, &rerr) != TG_OK)
		return tg_err_set(err, TG_PERM, "[spam] domain_table: %s",
		    rerr.text);
	for (line = text; line != NULL && st == TG_OK; line = nl) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		lineno++;
		line[strcspn(line, "\r")] = '\0';
		st = spam_domain_line(line, path, lineno, err);
	}
	free(text);
	return st;
}

/* spam_auth_parse - auth_scores: NAME=points ... */
static enum tg_status
spam_auth_parse(const char *s, struct tg_err *err)
{
	char	*tok, *eq;
	size_t	 len;
	double	 pts;

	for (;;) {
		s += strspn(s, " \t");
		if (*s == '\0')
			return TG_OK;
		len = strcspn(s, " \t");
		tok = tg_strndup(s, len);
		if ((eq = strchr(tok, '=')) == NULL || eq == tok ||
		    !spam_parse_points(eq + 1, &pts) || pts == SPAM_OFF) {
			(void)tg_err_set(err, TG_PERM, "[spam] auth_scores: bad "
			    "\"%s\" (want NAME=points)", tok);
			free(tok);
			return TG_PERM;
		}
		*eq = '\0';
		spam_auth = tg_reallocarray(spam_auth, spam_nauth + 1,
		    sizeof(*spam_auth));
		spam_auth[spam_nauth].name = tok;
		spam_auth[spam_nauth++].points = pts;
		s += len;
	}
}

/* spam_open_store - the store for Bayes */
static enum tg_status
spam_open_store(struct tg_err *err)
{
	struct tg_store_conf	sc;
	struct tg_err		nerr;

	if (!spam_conf.use_bayes)
		return TG_OK;
	tg_store_conf_loaded(&sc);
	if ((spam_store = tg_store_open(&sc, &nerr)) == NULL)
		return tg_err_set(err, TG_PERM, "[spam] store: %s", nerr.text);
	return TG_OK;
}

static void	spam_fini(void);

/* spam_init - thresholds, tables, rules, zones, store */
static enum tg_status
spam_init(const struct tg_env *env, struct tg_err *err)
{
	struct spam_rules_report	rep;
	struct tg_err			nerr;

	spam_dns = env->dns;
	if (spam_parse_global(err) != TG_OK ||
	    spam_domain_load(spam_conf.domain_table, err) != TG_OK ||
	    spam_auth_parse(spam_conf.auth_scores, err) != TG_OK)
		goto fail;
	if ((spam_trusted = tg_netlist_parse(spam_conf.trusted_relays,
	    &nerr)) == NULL) {
		(void)tg_err_set(err, TG_PERM, "[spam] trusted_relays: %s",
		    nerr.text);
		goto fail;
	}
	if ((spam_private = tg_netlist_parse(SPAM_PRIVATE_NETS, &nerr)) ==
	    NULL)
		TG_PANIC("private networks: %s", nerr.text);
	if (spam_dnsbl_parse(&spam_zones, spam_conf.dnsbl, spam_conf.uribl,
	    &nerr) != TG_OK) {
		(void)tg_err_set(err, TG_PERM, "[spam] dnsbl/uribl: %s",
		    nerr.text);
		goto fail;
	}
	if (*spam_conf.rules != '\0') {
		if (spam_rules_load(&spam_rules_set, spam_conf.rules, &rep,
		    &nerr) != TG_OK) {
			(void)tg_err_set(err, TG_PERM, "[spam] rules: %s",
			    nerr.text);
			goto fail;
		}
		tg_log_info(NULL, "spam: rules=%s loaded=%zu skipped=%zu "
		    "errors=%zu", spam_conf.rules, rep.loaded, rep.skipped,
		    rep.errors);
	}
	if (spam_open_store(err) != TG_OK)
		goto fail;
	return TG_OK;
fail:
	spam_fini();
	return TG_PERM;
}

/* spam_fini - release what init made */
static void
spam_fini(void)
{
	size_t	i;

	spam_rules_set = spam_rules_free(spam_rules_set);
	spam_zones = spam_dnsbl_free(spam_zones);
	spam_store = tg_store_close(spam_store);
	spam_trusted = tg_netlist_free(spam_trusted);
	spam_private = tg_netlist_free(spam_private);
	for (i = 0; i < spam_ndomains; i++)
		free(spam_domains[i].domain);
	free(spam_domains);
	spam_domains = NULL;
	spam_ndomains = 0;
	for (i = 0; i < spam_nauth; i++)
		free(spam_auth[i].name);
	free(spam_auth);
	spam_auth = NULL;
	spam_nauth = 0;
}

/* ---- per message ---- */

/* spam_release - the message's allocations (deferred to its end) */
static void
spam_release(void *arg)
{
	struct spam_state	*s = arg;
	size_t			 i;

	tg_buf_fini(&s->raw);
	for (i = 0; i < s->nhops; i++)
		free(s->hops[i]);
	for (i = 0; i < s->nxspam; i++)
		free(s->xspam[i].name);
	s->ipq = spam_dnsbl_q_free(s->ipq);
	spam_score_fini(&s->sc);
}

/* spam_state - this message's state, its release arranged */
static struct spam_state *
spam_state(struct tg_ctx *ctx)
{
	struct spam_state	*s = tg_ctx_state(ctx);

	if (!s->ready) {
		s->ready = true;
		tg_buf_init(&s->raw);
		spam_score_init(&s->sc);
		tg_ctx_defer(ctx, spam_release, s);
		s->skip = !spam_conf.scan_outbound && tg_ctx_outbound(ctx);
	}
	return s;
}

/* spam_hop - the first address literal "[...]" of a Received: value */
static char *
spam_hop(const char *v)
{
	const char	*p, *e;
	unsigned char	 a[16];
	char		 ip[64];
	size_t		 n;

	for (p = v; (p = strchr(p, '[')) != NULL; p++) {
		if ((e = strchr(p, ']')) == NULL)
			return NULL;
		n = (size_t)(e - p - 1);
		if (n >= 5 && tg_strncasecmp(p + 1, "ipv6:", 5) == 0) {
			p += 5;
			n -= 5;
		}
		if (n == 0 || n >= sizeof(ip))
			continue;
		memcpy(ip, p + 1, n);
		ip[n] = '\0';
		if (inet_pton(AF_INET, ip, a) == 1 ||
		    inet_pton(AF_INET6, ip, a) == 1)
			return tg_strdup(ip);
	}
	return NULL;
}

/* spam_header - keep the header; note Received hops and X-Spam-* */
static enum tg_verdict
spam_header(struct tg_ctx *ctx, const char *name, const char *value)
{
	struct spam_state	*s = spam_state(ctx);
	size_t			 i, vl;
	char			*hop;

	if (s->skip)
		return TG_CONTINUE;
	if (tg_strncasecmp(name, "X-Spam-", 7) == 0) {
		for (i = 0; i < s->nxspam; i++)
			if (tg_strcasecmp(s->xspam[i].name, name) == 0)
				break;
		if (i == s->nxspam && s->nxspam < SPAM_MAX_XSPAM)
			s->xspam[s->nxspam++].name = tg_strdup(name);
		if (i < s->nxspam)
			s->xspam[i].count++;
		/* a forgery of ours: not scanned, removed at eom */
		return TG_CONTINUE;
	}
	if (tg_strcasecmp(name, "Received") == 0 && s->nhops < SPAM_MAX_HOPS &&
	    (hop = spam_hop(value)) != NULL)
		s->hops[s->nhops++] = hop;
	if (s->raw.len >= (size_t)spam_conf.max_scan_bytes) {
		s->over = true;
		return TG_CONTINUE;
	}
	tg_buf_puts(&s->raw, name);
	tg_buf_putc(&s->raw, ':');
	tg_buf_puts(&s->raw, value);
	vl = strlen(value);
	if (vl < 2 || strcmp(value + vl - 2, "\r\n") != 0)
		tg_buf_puts(&s->raw, "\r\n");
	return TG_CONTINUE;
}

/* spam_trusted_addr - a relay whose hop says nothing of the sender */
static bool
spam_trusted_addr(const char *ip)
{
	return tg_netlist_match(spam_trusted, ip);
}

/*
 * spam_envfrom - MAIL FROM: for a client we do not trust, the DNSBL
 * lookups start now, so they overlap the rest of the dialogue; those for
 * a hop behind a trusted relay wait for its Received: header (eoh).
 */
static enum tg_verdict
spam_envfrom(struct tg_ctx *ctx, const char *from)
{
	struct spam_state	*s = spam_state(ctx);
	const struct tg_peer	*peer = tg_ctx_peer(ctx);
	const char		*ip = peer != NULL ? peer->addr : NULL;

	(void)from;
	if (s->skip || spam_dnsbl_count(spam_zones, false) == 0 ||
	    ip == NULL || tg_ctx_internal(ctx) || spam_trusted_addr(ip))
		return TG_CONTINUE;
	s->looked_up = ip;
	s->ipq = spam_dnsbl_start_ip(spam_zones, spam_dns, ip);
	return TG_CONTINUE;
}

/* spam_eoh - end of headers: the DNSBL lookups not started at MAIL FROM
 * (the first untrusted Received: hop) start now */
static enum tg_verdict
spam_eoh(struct tg_ctx *ctx)
{
	struct spam_state	*s = spam_state(ctx);
	const struct tg_peer	*peer = tg_ctx_peer(ctx);
	const char		*ip = peer != NULL ? peer->addr : NULL;
	size_t			 i;

	if (s->skip)
		return TG_CONTINUE;
	tg_buf_puts(&s->raw, "\r\n");
	if (spam_dnsbl_count(spam_zones, false) == 0 || s->ipq != NULL)
		return TG_CONTINUE;
	if (ip == NULL || tg_ctx_internal(ctx) || spam_trusted_addr(ip)) {
		/* the first hop, from the top, not through a relay we trust */
		for (ip = NULL, i = 0; i < s->nhops && ip == NULL; i++)
			if (!spam_trusted_addr(s->hops[i]) &&
			    !tg_netlist_match(spam_private, s->hops[i]))
				ip = s->hops[i];
	}
	if (ip == NULL)
		return TG_CONTINUE;
	s->looked_up = ip;
	s->ipq = spam_dnsbl_start_ip(spam_zones, spam_dns, ip);
	return TG_CONTINUE;
}

/* spam_body - keep the body up to max_scan_bytes */
static enum tg_verdict
spam_body(struct tg_ctx *ctx, const unsigned char *p, size_t len)
{
	struct spam_state	*s = spam_state(ctx);
	size_t			 room, max = (size_t)spam_conf.max_scan_bytes;

	if (s->skip || s->over)
		return TG_CONTINUE;
	room = s->raw.len < max ? max - s->raw.len : 0;
	if (len > room) {
		len = room;
		s->over = true;
	}
	tg_buf_append(&s->raw, p, len);
	return TG_CONTINUE;
}

/* spam_points - a rule's points: the rule set's score line, or def */
static double
spam_points(const char *name, double def)
{
	double	pts;
	size_t	i;

	if (spam_rules_set != NULL && spam_rules_score(spam_rules_set, name,
	    &pts))
		return pts;
	for (i = 0; i < TG_NITEMS(spam_builtin_scores); i++)
		if (strcmp(spam_builtin_scores[i].name, name) == 0)
			return spam_builtin_scores[i].points;
	return def;
}

/* spam_auth_hit - an auth result's hit, when auth_scores names it */
static void
spam_auth_hit(struct spam_score *sc, const char *name, const char *desc)
{
	size_t	i;

	for (i = 0; i < spam_nauth; i++)
		if (strcmp(spam_auth[i].name, name) == 0) {
			spam_score_add(sc, name, spam_auth[i].points, desc);
			return;
		}
}

/* spam_auth_results - DKIM, SPF and DMARC as rule hits */
static void
spam_auth_results(struct tg_ctx *ctx, struct spam_score *sc)
{
	const struct dkim_result	*dr;
	struct spf_identity		 spf;
	struct dmarc_result		 dm;
	size_t				 n, i;
	bool				 pass = false, fail = false;

	n = dkim_results(ctx, &dr);
	for (i = 0; i < n; i++) {
		pass = pass || dr[i].res == DKIM_RES_PASS;
		fail = fail || dr[i].res == DKIM_RES_FAIL;
	}
	if (pass)
		spam_auth_hit(sc, "DKIM_VALID", "a DKIM signature verified");
	else if (fail)
		spam_auth_hit(sc, "DKIM_INVALID", "DKIM signature did not "
		    "verify");
	spf_msg_mailfrom(ctx, &spf);
	if (spf.checked && !spf.trusted_relay) {
		if (spf.result == SPF_PASS)
			spam_auth_hit(sc, "SPF_PASS", "SPF: sender matches");
		else if (spf.result == SPF_FAIL)
			spam_auth_hit(sc, "SPF_FAIL", "SPF: sender does not "
			    "match (fail)");
		else if (spf.result == SPF_SOFTFAIL)
			spam_auth_hit(sc, "SPF_SOFTFAIL", "SPF: sender does not "
			    "match (softfail)");
	}
	dmarc_msg_result(ctx, &dm);
	if (!dm.evaluated)
		return;
	if (dm.res == DMARC_RES_PASS)
		spam_auth_hit(sc, "DMARC_PASS", "DMARC pass");
	else if (dm.res == DMARC_RES_FAIL) {
		if (dm.policy == DMARC_POLICY_REJECT)
			spam_auth_hit(sc, "DMARC_REJECT", "DMARC fail, p=reject");
		else if (dm.policy == DMARC_POLICY_QUARANTINE)
			spam_auth_hit(sc, "DMARC_QUAR", "DMARC fail, "
			    "p=quarantine");
		else
			spam_auth_hit(sc, "DMARC_NONE", "DMARC fail, p=none");
	}
}

/* spam_rcpt_domain - the i-th recipient's domain, lowercase, or NULL */
static char *
spam_rcpt_domain(struct tg_ctx *ctx, size_t i)
{
	const char	*r = tg_ctx_rcpt(ctx, i), *at;
	size_t		 len;
	char		*d;

	if ((at = strrchr(r, '@')) == NULL)
		return NULL;
	len = strcspn(at + 1, ">");
	if (len == 0)
		return NULL;
	d = tg_ctx_alloc(ctx, len + 1);
	memcpy(d, at + 1, len);
	for (i = 0; i < len; i++)
		if (d[i] >= 'A' && d[i] <= 'Z')
			d[i] = (char)(d[i] + 32);
	return d;
}

/*
 * spam_thresholds_for - the recipients' thresholds.  One verdict goes
 * to every recipient of a message, so with several domains each
 * threshold is the most lenient (highest) of theirs: no domain gets
 * mail refused that its own table row would have let in.
 */
static void
spam_thresholds_for(struct tg_ctx *ctx, struct spam_thresholds *t)
{
	const struct spam_thresholds	*r;
	size_t				 i, j;
	char				*d;

	memset(t, 0, sizeof(*t));
	t->required = t->quarantine = t->tempfail = t->reject = -HUGE_VAL;
	for (i = 0; i < tg_ctx_rcpt_count(ctx); i++) {
		r = &spam_global;
		if ((d = spam_rcpt_domain(ctx, i)) != NULL)
			for (j = 0; j < spam_ndomains; j++)
				if (strcmp(spam_domains[j].domain, d) == 0)
					r = &spam_domains[j].t;
		t->required = fmax(t->required, r->required);
		t->quarantine = fmax(t->quarantine, r->quarantine);
		t->tempfail = fmax(t->tempfail, r->tempfail);
		t->reject = fmax(t->reject, r->reject);
	}
	if (tg_ctx_rcpt_count(ctx) == 0)
		*t = spam_global;
}

/* spam_elapsed - seconds since t0 */
static double
spam_elapsed(const struct timespec *t0)
{
	struct timespec	now;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	    (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * spam_bayes - Bayes' hit; false on a store failure (err says why).
 * Too few messages learned is no hit and no failure.
 */
static bool
spam_bayes(struct tg_ctx *ctx, const struct spam_msg *m,
    struct spam_score *sc, const char **scope, struct tg_err *err)
{
	const char	*name, *extra;
	double		 prob;
	enum tg_status	 st;
	char		*desc;

	*scope = "global";
	if (spam_store == NULL)
		return true;
	if (spam_bayes_conf()->scope == SPAM_BAYES_SCOPE_DOMAIN &&
	    tg_ctx_rcpt_count(ctx) > 0 &&
	    (*scope = spam_rcpt_domain(ctx, 0)) == NULL)
		*scope = "global";
	st = spam_bayes_classify(spam_store, *scope, m, &prob, err);
	if (st == TG_NOTFOUND)
		return true;
	if (st != TG_OK)
		return false;
	name = spam_bayes_rule(prob);
	desc = tg_printf_dup("Bayes spam probability is %.3f", prob);
	spam_score_add(sc, name, spam_points(name, 0), desc);
	if ((extra = spam_bayes_rule_extra(prob)) != NULL)
		spam_score_add(sc, extra, spam_points(extra, 0), desc);
	free(desc);
	return true;
}

/* spam_is_bayes - whether a hit is Bayes' own */
static bool
spam_is_bayes(const char *name)
{
	return strncmp(name, "BAYES_", 6) == 0;
}

/*
 * spam_autolearn - SpamAssassin's auto-learn: the total without Bayes'
 * points at or past the spam or ham threshold.  "no", "spam", "ham",
 * or "failed".
 */
static const char *
spam_autolearn(struct tg_ctx *ctx, const struct spam_msg *m,
    const struct spam_score *sc, const char *scope, bool partial)
{
	const struct spam_bayes_conf	*bc = spam_bayes_conf();
	struct tg_err			 err;
	enum spam_class			 cls;
	double				 t = 0;
	size_t				 i;

	if (spam_store == NULL || !bc->auto_learn || partial)
		return "no";
	for (i = 0; i < sc->nhits; i++)
		if (!spam_is_bayes(sc->hits[i].name))
			t += sc->hits[i].points;
	if (t >= (double)bc->auto_learn_spam)
		cls = SPAM_CLASS_SPAM;
	else if (t <= (double)bc->auto_learn_ham)
		cls = SPAM_CLASS_HAM;
	else
		return "no";
	if (spam_bayes_learn(spam_store, scope, m, cls, &err) != TG_OK) {
		tg_log_warn_limited(ctx, "spam-autolearn", 60, "autolearn: %s",
		    err.text);
		return "failed";
	}
	return cls == SPAM_CLASS_SPAM ? "spam" : "ham";
}

/* spam_tests - "A,B,C" or "none", for the decision line */
static void
spam_tests(struct tg_buf *b, const struct spam_score *sc)
{
	size_t	i;

	if (sc->nhits == 0)
		tg_buf_puts(b, "none");
	for (i = 0; i < sc->nhits; i++)
		tg_buf_printf(b, "%s%s", i > 0 ? "," : "", sc->hits[i].name);
}

/*
 * spam_tests_folded - tests= for X-Spam-Status, folded after a comma
 * as SpamAssassin does, so no line passes 78 characters for long hit
 * lists (RFC 5322 2.1.1)
 */
static void
spam_tests_folded(struct tg_buf *b, const struct spam_score *sc)
{
	size_t	i, col = b->len + sizeof("X-Spam-Status: ") - 1, n;

	if (sc->nhits == 0)
		tg_buf_puts(b, "none");
	for (i = 0; i < sc->nhits; i++) {
		n = strlen(sc->hits[i].name) + 1;
		if (i > 0 && col + n > 76) {
			tg_buf_puts(b, "\r\n\t");
			col = 8;
		}
		tg_buf_printf(b, "%s%s", sc->hits[i].name, i + 1 < sc->nhits ?
		    "," : "");
		col += n;
	}
}

/* spam_headers - X-Spam-* out (forgeries), ours in */
static void
spam_headers(struct tg_ctx *ctx, struct spam_state *s, bool spam,
    const char *autolearn)
{
	struct tg_buf	b;
	size_t		i, n;

	for (i = 0; i < s->nxspam; i++)
		for (n = s->xspam[i].count; n > 0; n--)
			tg_ctx_delete_header(ctx, s->xspam[i].name, n);
	tg_buf_init(&b);
	tg_buf_printf(&b, "%s, score=%.1f required=%.1f tests=", spam ? "Yes" :
	    "No", s->sc.total, s->required);
	spam_tests_folded(&b, &s->sc);
	tg_buf_printf(&b, " autolearn=%s version=" SPAM_VERSION, autolearn);
	if (spam)
		tg_ctx_add_header(ctx, "X-Spam-Flag", "YES");
	tg_ctx_add_header(ctx, "X-Spam-Status", tg_buf_cstr(&b));
	tg_buf_reset(&b);
	tg_buf_printf(&b, "%.1f", s->sc.total);
	tg_ctx_add_header(ctx, "X-Spam-Score", tg_buf_cstr(&b));
	/* SpamAssassin's X-Spam-Level: one star a whole point, at most 50
	 * (filters match "\*{5}"); none below one point */
	tg_buf_reset(&b);
	for (i = 0; i < 50 && (double)(i + 1) <= s->sc.total; i++)
		tg_buf_putc(&b, '*');
	if (b.len > 0)
		tg_ctx_add_header(ctx, "X-Spam-Level", tg_buf_cstr(&b));
	if (spam_conf.add_report && s->sc.nhits > 0) {
		tg_buf_reset(&b);
		tg_buf_puts(&b, "Content analysis details:");
		for (i = 0; i < s->sc.nhits; i++)
			tg_buf_printf(&b, "\r\n\t* %5.1f %s %s",
			    s->sc.hits[i].points, s->sc.hits[i].name,
			    s->sc.hits[i].describe != NULL ?
			    s->sc.hits[i].describe : "");
		tg_ctx_add_header(ctx, "X-Spam-Report", tg_buf_cstr(&b));
	}
	tg_buf_fini(&b);
}

/* spam_verdict - the thresholds' action for the total */
static enum tg_verdict
spam_verdict(struct tg_ctx *ctx, const struct spam_thresholds *t, double sc,
    const char **action)
{
	if (sc >= t->reject) {
		*action = "reject";
		tg_ctx_reply(ctx, "550", "5.7.1", "message looks like spam");
		return TG_REJECT;
	}
	if (sc >= t->tempfail) {
		*action = "tempfail";
		tg_ctx_reply(ctx, "451", "4.7.1", "message looks like spam, "
		    "try again later");
		return TG_TEMPFAIL;
	}
	if (sc >= t->quarantine) {
		*action = "quarantine";
		return TG_QUARANTINE;
	}
	*action = sc >= t->required ? "tag" : "none";
	return TG_CONTINUE;
}

/* spam_dnsbl_collect - the lookups' hits; false if one failed */
static bool
spam_dnsbl_collect(struct tg_ctx *ctx, struct spam_state *s,
    const struct spam_msg *m)
{
	struct spam_dnsbl_q	*uq;
	struct tg_buf		 failed;
	size_t			 nfail;

	tg_buf_init(&failed);
	uq = spam_dnsbl_start_uri(spam_zones, spam_dns, m->uri_domains,
	    m->nuri_domains, (size_t)spam_conf.max_uribl_domains);
	nfail = spam_dnsbl_wait(s->ipq, spam_rules_set, &s->sc, &failed);
	s->ipq = spam_dnsbl_q_free(s->ipq);
	nfail += spam_dnsbl_wait(uq, spam_rules_set, &s->sc, &failed);
	uq = spam_dnsbl_q_free(uq);
	if (nfail > 0)
		tg_log_warn_limited(ctx, "spam-dnsbl", 60, "dnsbl: no answer, "
		    "no points: %s", tg_buf_cstr(&failed));
	tg_buf_fini(&failed);
	return nfail == 0;
}

/* spam_limits - the extraction's limits from [spam] */
static void
spam_limits(struct spam_limits *lim)
{
	lim->max_scan_bytes = (size_t)spam_conf.max_scan_bytes;
	lim->max_body_text = (size_t)spam_conf.max_body_text;
	lim->max_parts = (size_t)spam_conf.max_parts;
	lim->max_depth = (size_t)spam_conf.max_depth;
	lim->max_uris = (size_t)spam_conf.max_uris;
	lim->max_headers = (size_t)spam_conf.max_headers;
}

/* spam_eom - scan, score, verdict, headers */
static enum tg_verdict
spam_eom(struct tg_ctx *ctx)
{
	struct spam_state	*s = spam_state(ctx);
	struct spam_limits	 lim;
	struct spam_thresholds	 t;
	struct spam_msg		*m;
	struct timespec		 t0;
	struct tg_err		 err;
	struct tg_buf		 tests;
	const char		*action, *scope = "global", *autolearn;
	enum tg_verdict		 v;
	bool			 failed = false, late = false;

	if (s->skip) {
		tg_ctx_result(ctx, "skipped=outbound");
		return TG_CONTINUE;
	}
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	spam_limits(&lim);
	m = spam_mime_parse(tg_buf_cstr(&s->raw), s->raw.len, &lim);
	if (s->over)
		m->truncated = true;
	spam_score_set_deadline(&s->sc, (double)spam_conf.time_limit -
	    spam_elapsed(&t0));
	if (spam_rules_set != NULL)
		spam_rules_run(spam_rules_set, m, &s->sc);
	late = spam_score_late(&s->sc);
	if (!late && !spam_bayes(ctx, m, &s->sc, &scope, &err)) {
		tg_log_warn_limited(ctx, "spam-bayes", 60, "bayes: %s",
		    err.text);
		failed = true;
	}
	if (!late && !spam_dnsbl_collect(ctx, s, m))
		failed = true;
	spam_auth_results(ctx, &s->sc);
	late = late || spam_score_late(&s->sc);
	s->sc.partial = s->sc.partial || late || m->truncated;
	if (failed && spam_conf.on_error == TG_ON_ERROR_TEMPFAIL) {
		spam_msg_free(m);
		tg_ctx_result(ctx, "error=dependency action=tempfail");
		tg_ctx_reply(ctx, "451", "4.7.1", "spam check unavailable, "
		    "try again later");
		return TG_TEMPFAIL;
	}
	spam_thresholds_for(ctx, &t);
	s->required = t.required;
	s->scanned = true;
	autolearn = spam_autolearn(ctx, m, &s->sc, scope, s->sc.partial);
	v = spam_verdict(ctx, &t, s->sc.total, &action);
	spam_headers(ctx, s, s->sc.total >= t.required, autolearn);
	tg_buf_init(&tests);
	spam_tests(&tests, &s->sc);
	tg_ctx_result(ctx, "score=%.1f required=%.1f action=%s tests=%s%s",
	    s->sc.total, t.required, action, tg_buf_cstr(&tests),
	    s->sc.partial ? " partial=yes" : "");
	if (late || m->truncated)
		tg_log_info(ctx, "scan cut short: %s%s, verdict from what was "
		    "checked", late ? "time_limit" : "",
		    m->truncated ? (late ? " size_limit" : "size_limit") : "");
	tg_buf_fini(&tests);
	spam_msg_free(m);
	return v;
}

/* spam_msg_result - see spam.h */
bool
spam_msg_result(struct tg_ctx *ctx, double *score, double *required)
{
	struct spam_state	*s = tg_ctx_state_of(ctx, &tg_module_spam);

	if (s == NULL || !s->scanned)
		return false;
	*score = s->sc.total;
	*required = s->required;
	return true;
}

/* spam_msg_hit - see spam.h */
bool
spam_msg_hit(struct tg_ctx *ctx, size_t i, const char **name,
    double *points, const char **describe)
{
	struct spam_state	*s = tg_ctx_state_of(ctx, &tg_module_spam);

	if (s == NULL || !s->scanned || i >= s->sc.nhits)
		return false;
	*name = s->sc.hits[i].name;
	*points = s->sc.hits[i].points;
	*describe = s->sc.hits[i].describe;
	return true;
}

const struct tg_module tg_module_spam = {
	.name = "spam",
	.abi = TG_MODULE_ABI,
	.params = spam_params,
	.msg_state_size = sizeof(struct spam_state),
	.init = spam_init,
	.fini = spam_fini,
	.envfrom = spam_envfrom,
	.header = spam_header,
	.eoh = spam_eoh,
	.body = spam_body,
	.eom = spam_eom,
};
