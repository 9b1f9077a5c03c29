/*
 * spam_bayes - the Bayes classifier: token counts in the store,
 * Robinson's f(w) and Fisher's chi-square combining.
 *
 * Why this classifier: it is what SpamAssassin (Bayes/CombineChi.pm)
 * and SpamBayes run, tuned on real mail over years, and its output's
 * ends (BAYES_00, BAYES_99) are reliable: a message with strong evidence
 * both ways, or unlike everything learned, lands near 0.5 instead of at
 * an extreme (Graham's naive product would push it to one end), which
 * keeps false positives down.  The constants are SpamBayes' (measured
 * better than SpamAssassin's here: spam_bayes_int.h).
 *
 * The store (under "bayes:<scope>:", scope "global" or a recipient
 * domain):
 *   nspam, nham		messages learned of each class
 *   s:<hash>, h:<hash>	how many spam and ham messages had the token
 *				(16 hex digits of its 64-bit hash)
 *   seen:<digest>		"spam" or "ham": a message learned, keyed on
 *				SHA-1 of its Message-ID and body
 * Scoring is two batched reads (the totals, then every token's two
 * counts); learning one read of the seen record, one batched increment
 * and the seen record's write.  The increment and the seen record are
 * two calls: a learn cut between them (Redis down) leaves the counts
 * learned without the record, so learning that message again counts it
 * twice; rare, and the classifier tolerates it.
 *
 * The keys (spam_bayes_params), as conf.d/spam.conf's [bayes] shows
 * them:
 *
 *	# Bayes: spam and ham messages learned before it gives a verdict
 *	#bayes_min_spam = 200
 *	#bayes_min_ham = 200
 *	# Bayes token counts: global, or one set per recipient domain
 *	#bayes_scope = global
 *	# learn messages whose score (without Bayes' points) passes the
 *	# thresholds below
 *	#bayes_auto_learn = no
 *	# auto-learn as spam at this score or more
 *	#bayes_auto_learn_spam = 12
 *	# auto-learn as ham at this score or less
 *	#bayes_auto_learn_ham = 0
 */
#include "config.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tollgate/conf.h"
#include "tollgate/store.h"
#include "tollgate/util.h"

#include "spam_bayes_int.h"

#define SPAM_BAYES_KEYLEN	TG_STORE_KEY_MAX
#define SPAM_BAYES_SCOPE_MAX	200

static const char *const spam_bayes_scope_names[] = {
	"global", "domain", NULL
};

static struct spam_bayes_conf	spam_bayes_cf = {
	.min_spam = 200,
	.min_ham = 200,
	.auto_learn = false,
	.auto_learn_spam = 12,
	.auto_learn_ham = 0,
	.scope = SPAM_BAYES_SCOPE_GLOBAL,
};

const struct tg_param spam_bayes_params[] = {
	TG_PARAM_LONG("bayes_min_spam", "200", &spam_bayes_cf.min_spam, 1,
	    1000000, "spam messages learned before Bayes gives a verdict"),
	TG_PARAM_LONG("bayes_min_ham", "200", &spam_bayes_cf.min_ham, 1,
	    1000000, "ham messages learned before Bayes gives a verdict"),
	TG_PARAM_ENUM("bayes_scope", "global", &spam_bayes_cf.scope,
	    spam_bayes_scope_names, "token counts: global, or one set per "
	    "recipient domain"),
	TG_PARAM_BOOL("bayes_auto_learn", "no", &spam_bayes_cf.auto_learn,
	    "learn messages whose score passes the thresholds below"),
	TG_PARAM_LONG("bayes_auto_learn_spam", "12",
	    &spam_bayes_cf.auto_learn_spam, -1000, 1000,
	    "auto-learn as spam at this score or more (without Bayes' own)"),
	TG_PARAM_LONG("bayes_auto_learn_ham", "0",
	    &spam_bayes_cf.auto_learn_ham, -1000, 1000,
	    "auto-learn as ham at this score or less (without Bayes' own)"),
	TG_PARAM_END
};

const struct spam_bayes_conf *
spam_bayes_conf(void)
{
	return &spam_bayes_cf;
}

const struct spam_limits *
spam_bayes_file_limits(void)
{
	static const struct spam_limits	lim = {
		.max_scan_bytes = 512 << 10,
		.max_body_text = 256 << 10,
		.max_parts = 100,
		.max_depth = 20,
		.max_uris = 500,
		.max_headers = 1000,
	};

	return &lim;
}

/* ---- the arithmetic ---- */

double
spam_bayes_chi2q(double x2, unsigned int v)
{
	double		m = x2 / 2.0, sum, term;
	unsigned int	i;

	if (x2 <= 0.0 || v < 2)
		return 1.0;
	/* for even v: e^-m * sum of m^i / i! for i < v/2 */
	sum = term = exp(-m);
	for (i = 1; i < v / 2; i++) {
		term *= m / i;
		sum += term;
	}
	return sum < 1.0 ? sum : 1.0;
}

double
spam_bayes_fw(double s, double h, double ns, double nh)
{
	double	rs, rh, p, n = s + h;

	rs = ns > 0 ? s / ns : 0;
	rh = nh > 0 ? h / nh : 0;
	p = rs + rh > 0 ? rs / (rs + rh) : SPAM_BAYES_X;
	return (SPAM_BAYES_S * SPAM_BAYES_X + n * p) / (SPAM_BAYES_S + n);
}

/* spam_bayes_strength_cmp - most significant first */
static int
spam_bayes_strength_cmp(const void *a, const void *b)
{
	double	x = fabs(*(const double *)a - 0.5);
	double	y = fabs(*(const double *)b - 0.5);

	return x > y ? -1 : x < y;
}

double
spam_bayes_combine(double *fw, size_t n)
{
	double	sl = 0, hl = 0, s, h, p;
	size_t	i;

	if (n == 0)
		return 0.5;
	qsort(fw, n, sizeof(*fw), spam_bayes_strength_cmp);
	if (n > SPAM_BAYES_MAX_USED)
		n = SPAM_BAYES_MAX_USED;
	for (i = 0; i < n; i++) {
		/* f(w) is never 0 or 1 (s > 0), but keep the logs finite */
		p = fw[i] < 1e-200 ? 1e-200 : fw[i] > 1 - 1e-16 ?
		    1 - 1e-16 : fw[i];
		sl += log(1.0 - p);
		hl += log(p);
	}
	/* SpamBayes' form: S near 1 when the tokens are spammy, H when
	 * hammy; the verdict is their difference mapped to 0..1 */
	s = 1.0 - spam_bayes_chi2q(-2.0 * sl, 2 * (unsigned int)n);
	h = 1.0 - spam_bayes_chi2q(-2.0 * hl, 2 * (unsigned int)n);
	return (s - h + 1.0) / 2.0;
}

const char *
spam_bayes_rule(double prob)
{
	static const struct {
		double		 below;
		const char	*name;
	} bands[] = {
		{ 0.01, "BAYES_00" }, { 0.05, "BAYES_05" },
		{ 0.20, "BAYES_20" }, { 0.40, "BAYES_40" },
		{ 0.60, "BAYES_50" }, { 0.80, "BAYES_60" },
		{ 0.95, "BAYES_80" }, { 0.99, "BAYES_95" },
	};
	size_t	i;

	for (i = 0; i < TG_NITEMS(bands); i++)
		if (prob < bands[i].below)
			return bands[i].name;
	return "BAYES_99";
}

const char *
spam_bayes_rule_extra(double prob)
{
	return prob >= 0.999 ? "BAYES_999" : NULL;
}

/* ---- store keys ---- */

/* spam_bayes_scope - "global" or a domain, lowercased, checked */
static enum tg_status
spam_bayes_scope(const char *scope, char *out, size_t size,
    struct tg_err *err)
{
	size_t	i;

	if (scope == NULL || *scope == '\0')
		scope = "global";
	for (i = 0; scope[i] != '\0'; i++) {
		if (i + 1 >= size || (unsigned char)scope[i] <= ' ' ||
		    scope[i] == ':' || scope[i] == '{' || scope[i] == '}' ||
		    scope[i] == 0x7f)
			return tg_err_set(err, TG_PERM, "bayes: scope "
			    "\"%.80s\": not a domain", scope);
		out[i] = scope[i] >= 'A' && scope[i] <= 'Z' ?
		    (char)(scope[i] + 32) : scope[i];
	}
	out[i] = '\0';
	return TG_OK;
}

/* spam_bayes_key - "bayes:<scope>:<what>" into k */
static void
spam_bayes_key(char *k, const char *scope, const char *what)
{
	if (snprintf(k, SPAM_BAYES_KEYLEN, "bayes:%s:%s", scope, what) >=
	    SPAM_BAYES_KEYLEN)
		TG_PANIC("bayes key too long for scope %s", scope);
}

/* spam_bayes_tok_key - the s: or h: key of a token hash */
static void
spam_bayes_tok_key(char *k, const char *scope, char cls, uint64_t h)
{
	char	what[24];

	(void)snprintf(what, sizeof(what), "%c:%016llx", cls,
	    (unsigned long long)h);
	spam_bayes_key(k, scope, what);
}

/* ---- counts ---- */

enum tg_status
spam_bayes_counts(struct tg_store *st, const char *scope, int64_t *nspam,
    int64_t *nham, struct tg_err *err)
{
	char		 sc[SPAM_BAYES_SCOPE_MAX], k[2][SPAM_BAYES_KEYLEN];
	const char	*keys[2] = { k[0], k[1] };
	int64_t		 v[2];
	enum tg_status	 s;

	*nspam = *nham = 0;
	if ((s = spam_bayes_scope(scope, sc, sizeof(sc), err)) != TG_OK)
		return s;
	spam_bayes_key(k[0], sc, "nspam");
	spam_bayes_key(k[1], sc, "nham");
	if ((s = tg_store_kv_mget(st, keys, 2, v, err)) != TG_OK)
		return s;
	*nspam = v[0] > 0 ? v[0] : 0;
	*nham = v[1] > 0 ? v[1] : 0;
	return TG_OK;
}

/* spam_bayes_keys - the keys array for the s: and h: keys of toks:
 * keys[2i] spam, keys[2i+1] ham; extra slots at the end for the caller */
static const char **
spam_bayes_keys(const char *sc, const struct spam_bayes_toks *t,
    size_t extra, char (**buf)[SPAM_BAYES_KEYLEN])
{
	const char	**keys;
	size_t		  i;

	*buf = tg_calloc(2 * t->n + extra, sizeof(**buf));
	keys = tg_calloc(2 * t->n + extra, sizeof(*keys));
	for (i = 0; i < 2 * t->n + extra; i++)
		keys[i] = (*buf)[i];
	for (i = 0; i < t->n; i++) {
		spam_bayes_tok_key((*buf)[2 * i], sc, 's', t->h[i]);
		spam_bayes_tok_key((*buf)[2 * i + 1], sc, 'h', t->h[i]);
	}
	return keys;
}

enum tg_status
spam_bayes_classify(struct tg_store *st, const char *scope,
    const struct spam_msg *m, double *prob, struct tg_err *err)
{
	struct spam_bayes_toks	  t;
	char			  sc[SPAM_BAYES_SCOPE_MAX];
	char			(*buf)[SPAM_BAYES_KEYLEN];
	const char		**keys;
	int64_t			 *v, ns, nh;
	double			 *fw, f;
	size_t			  i, n = 0;
	enum tg_status		  s;

	*prob = 0.5;
	if ((s = spam_bayes_scope(scope, sc, sizeof(sc), err)) != TG_OK)
		return s;
	if ((s = spam_bayes_counts(st, sc, &ns, &nh, err)) != TG_OK)
		return s;
	if (ns < spam_bayes_cf.min_spam || nh < spam_bayes_cf.min_ham)
		return tg_err_set(err, TG_NOTFOUND, "bayes: %s: %lld spam and "
		    "%lld ham learned, %ld and %ld needed", sc, (long long)ns,
		    (long long)nh, spam_bayes_cf.min_spam,
		    spam_bayes_cf.min_ham);
	spam_bayes_toks_make(m, &t);
	if (t.n == 0) {
		spam_bayes_toks_fini(&t);
		return TG_OK;
	}
	keys = spam_bayes_keys(sc, &t, 0, &buf);
	v = tg_calloc(2 * t.n, sizeof(*v));
	s = tg_store_kv_mget(st, keys, 2 * t.n, v, err);
	fw = tg_calloc(t.n, sizeof(*fw));
	for (i = 0; s == TG_OK && i < t.n; i++) {
		if (v[2 * i] < 0)
			v[2 * i] = 0;
		if (v[2 * i + 1] < 0)
			v[2 * i + 1] = 0;
		if (v[2 * i] + v[2 * i + 1] == 0)
			continue;
		f = spam_bayes_fw((double)v[2 * i], (double)v[2 * i + 1],
		    (double)ns, (double)nh);
		if (fabs(f - 0.5) >= SPAM_BAYES_MIN_STRENGTH)
			fw[n++] = f;
	}
	if (s == TG_OK)
		*prob = spam_bayes_combine(fw, n);
	free(fw);
	free(v);
	free(keys);
	free(buf);
	spam_bayes_toks_fini(&t);
	return s;
}

/* ---- learning ---- */

/* spam_bayes_digest - the seen key's digest: SHA-1 of the Message-ID
 * and the body (the whole message when it has neither) */
static void
spam_bayes_digest(const struct spam_msg *m, char hex[41])
{
	const struct spam_header	*mid = NULL;
	EVP_MD_CTX			*c;
	unsigned char			 md[EVP_MAX_MD_SIZE];
	unsigned int			 len = 0;
	size_t				 i;
	bool				 ok;

	/* not spam_msg_header: Bayes stands alone in its tests */
	for (i = 0; mid == NULL && i < m->nheaders; i++)
		if (m->headers[i].name != NULL &&
		    strcasecmp(m->headers[i].name, "Message-ID") == 0)
			mid = &m->headers[i];
	if ((c = EVP_MD_CTX_new()) == NULL)
		TG_PANIC("EVP_MD_CTX_new failed");
	ok = EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1;
	if (mid != NULL && mid->raw != NULL)
		ok = ok && EVP_DigestUpdate(c, mid->raw, strlen(mid->raw)) == 1;
	ok = ok && EVP_DigestUpdate(c, "\n", 1) == 1;
	if (m->body_len > 0)
		ok = ok && EVP_DigestUpdate(c, m->body, m->body_len) == 1;
	else if (mid == NULL && m->full_len > 0)
		ok = ok && EVP_DigestUpdate(c, m->full, m->full_len) == 1;
	ok = ok && EVP_DigestFinal_ex(c, md, &len) == 1 && len >= 20;
	EVP_MD_CTX_free(c);
	if (!ok)
		TG_PANIC("sha1 digest failed");
	for (i = 0; i < 20; i++)
		(void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* spam_bayes_seen - the class a message was learned as, or -1 */
static enum tg_status
spam_bayes_seen(struct tg_store *st, const char *key, int *cls,
    struct tg_err *err)
{
	enum tg_status	 s;
	char		*v;
	size_t		 len;

	*cls = -1;
	s = tg_store_kv_get(st, key, &v, &len, err);
	if (s == TG_NOTFOUND)
		return TG_OK;
	if (s != TG_OK)
		return s;
	if (strcmp(v, "spam") == 0)
		*cls = SPAM_CLASS_SPAM;
	else if (strcmp(v, "ham") == 0)
		*cls = SPAM_CLASS_HAM;
	free(v);
	return TG_OK;
}

enum tg_status
spam_bayes_train(struct tg_store *st, const char *scope,
    const struct spam_msg *m, enum spam_class cls, bool forget,
    enum spam_bayes_outcome *out, struct tg_err *err)
{
	struct spam_bayes_toks	  t;
	char			  sc[SPAM_BAYES_SCOPE_MAX], hex[41];
	char			  seenkey[SPAM_BAYES_KEYLEN], what[48];
	char			(*buf)[SPAM_BAYES_KEYLEN];
	const char		**keys;
	const char		 *name;
	int64_t			 *d;
	size_t			  i, j, n;
	int			  was;
	enum tg_status		  s;

	*out = SPAM_BAYES_ALREADY;
	if ((s = spam_bayes_scope(scope, sc, sizeof(sc), err)) != TG_OK)
		return s;
	spam_bayes_digest(m, hex);
	(void)snprintf(what, sizeof(what), "seen:%s", hex);
	spam_bayes_key(seenkey, sc, what);
	if ((s = spam_bayes_seen(st, seenkey, &was, err)) != TG_OK)
		return s;
	if (forget && was == -1)
		return tg_err_set(err, TG_NOTFOUND, "bayes: %s: message not "
		    "learned", sc);
	if (!forget && was == (int)cls)
		return TG_OK;
	spam_bayes_toks_make(m, &t);
	keys = spam_bayes_keys(sc, &t, 2, &buf);
	n = 2 * t.n + 2;
	spam_bayes_key(buf[n - 2], sc, "nspam");
	spam_bayes_key(buf[n - 1], sc, "nham");
	d = tg_calloc(n, sizeof(*d));
	/* +1 on the new class, -1 on the class it had */
	for (i = 0; i < n; i += 2) {
		if (!forget)
			d[i + (cls == SPAM_CLASS_SPAM ? 0 : 1)] += 1;
		if (was != -1)
			d[i + (was == SPAM_CLASS_SPAM ? 0 : 1)] -= 1;
	}
	/* keys whose delta is 0 are left out of the batch */
	for (i = j = 0; i < n; i++)
		if (d[i] != 0) {
			keys[j] = keys[i];
			d[j++] = d[i];
		}
	s = tg_store_kv_mincr(st, keys, d, j, 0, NULL, err);
	free(d);
	free(keys);
	free(buf);
	spam_bayes_toks_fini(&t);
	if (s != TG_OK)
		return s;
	name = cls == SPAM_CLASS_SPAM ? "spam" : "ham";
	if (forget)
		s = tg_store_kv_del(st, seenkey, err);
	else
		s = tg_store_kv_set_ttl(st, seenkey, name, strlen(name), 0, err);
	if (s != TG_OK)
		return s;
	*out = forget ? SPAM_BAYES_FORGOTTEN : was == -1 ? SPAM_BAYES_LEARNED :
	    SPAM_BAYES_MOVED;
	return TG_OK;
}

enum tg_status
spam_bayes_learn(struct tg_store *st, const char *scope,
    const struct spam_msg *m, enum spam_class cls, struct tg_err *err)
{
	enum spam_bayes_outcome	out;

	return spam_bayes_train(st, scope, m, cls, false, &out, err);
}

enum tg_status
spam_bayes_forget(struct tg_store *st, const char *scope,
    const struct spam_msg *m, struct tg_err *err)
{
	enum spam_bayes_outcome	out;

	return spam_bayes_train(st, scope, m, SPAM_CLASS_HAM, true, &out,
	    err);
}
