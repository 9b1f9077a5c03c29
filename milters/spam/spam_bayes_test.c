/*
 * spam_bayes_test - Bayes alone: the tokenizer on a struct spam_msg
 * built here, the arithmetic against known values, and learn, relearn,
 * forget and classify on the embedded store and on a real redis-server
 * (started on a free loopback port, as lib/store_test does).
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tollgate/buf.h"
#include "tollgate/conf.h"
#include "tollgate/store.h"
#include "tollgate/util.h"

#include "spam_bayes_int.h"
#include "tg_test.h"

static char	 bt_dir[] = "/tmp/spam_bayes_test.XXXXXX";
static char	 bt_lmdb[512];
static char	 bt_url[64];
static struct tg_test_redis bt_redis = TG_TEST_REDIS_INIT;

/* A message built by hand: the fields Bayes reads. */
struct bt_msg {
	struct spam_msg		m;
	struct spam_header	h[8];
	char			*uris[2];
	char			*doms[2];
};

/* bt_msg_make - a message with body and optional headers */
static void
bt_msg_make(struct bt_msg *b, const char *body, const char *subject,
    const char *from, const char *msgid)
{
	memset(b, 0, sizeof(*b));
	b->m.body = (char *)body;
	b->m.body_len = strlen(body);
	b->m.full = body;
	b->m.full_len = strlen(body);
	b->m.headers = b->h;
	if (subject != NULL) {
		b->h[b->m.nheaders].name = (char *)"Subject";
		b->h[b->m.nheaders].raw = (char *)subject;
		b->h[b->m.nheaders++].decoded = (char *)subject;
	}
	if (from != NULL) {
		b->h[b->m.nheaders].name = (char *)"From";
		b->h[b->m.nheaders].raw = (char *)from;
		b->h[b->m.nheaders++].decoded = (char *)from;
	}
	if (msgid != NULL) {
		b->h[b->m.nheaders].name = (char *)"Message-ID";
		b->h[b->m.nheaders].raw = (char *)msgid;
		b->h[b->m.nheaders++].decoded = (char *)msgid;
	}
}

/* bt_collect - keep each token on its own line */
static void
bt_collect(const char *tok, size_t len, void *arg)
{
	struct tg_buf	*b = arg;

	tg_buf_append(b, tok, len);
	tg_buf_putc(b, '\n');
}

/* bt_has - whether the token list holds tok exactly */
static bool
bt_has(struct tg_buf *b, const char *tok)
{
	char	*line = tg_printf_dup("\n%s\n", tok);
	bool	 found;

	found = strstr(tg_buf_cstr(b), line) != NULL;
	free(line);
	return found;
}

static void
test_tokens(void **state)
{
	struct bt_msg		 b;
	struct spam_part	 part = { .type = (char *)"text/html",
				    .charset = (char *)"utf-8",
				    .filename = (char *)"Invoice.ZIP" };
	struct tg_buf		 t = { 0 };
	char			*u = (char *)"http://www.Example.com/buy/cheap-"
				    "pills?id=5";
	char			*d = (char *)"www.example.com";

	(void)state;
	bt_msg_make(&b, "Hello WORLD, this is a supercalifragilistic test "
	    "ab 'quoted' Gr\xc3\xb6\xc3\x9f" "enwahnsinnigkeit "
	    "\xc3\x84\xc3\x84\xc3\x84\xc3\x84\xc3\x84\xc3\x84\xc3\x84\xc3\x84"
	    "\xc3\x84 mail.bigbank-security.example.com", "Cheap Pills",
	    "Joe <joe@Example.COM>", "<abc.123@host.example.org>");
	b.h[b.m.nheaders].name = (char *)"Received";
	b.h[b.m.nheaders++].decoded = (char *)"from mail.example.net "
	    "(mail.example.net [192.0.2.7]) by mx.local with ESMTP id "
	    "12AB3C; Mon, 1 Jan 2024 10:00:00 +0000";
	b.h[b.m.nheaders].name = (char *)"X-Spam-Status";
	b.h[b.m.nheaders++].decoded = (char *)"Yes, score=20.1";
	b.h[b.m.nheaders].name = (char *)"X-Mailer";
	b.h[b.m.nheaders++].raw = (char *)"Microsoft Outlook Express 6";
	b.m.uris = &u;
	b.m.nuris = 1;
	b.m.uri_domains = &d;
	b.m.nuri_domains = 1;
	b.m.parts = &part;
	b.m.nparts = 1;
	b.m.has_html = true;
	tg_buf_putc(&t, '\n');
	spam_bayes_tokens(&b.m, bt_collect, &t);
	/* body words: lowercased, ends stripped, short ones skipped */
	assert_true(bt_has(&t, "hello"));
	assert_true(bt_has(&t, "world"));
	assert_true(bt_has(&t, "quoted"));
	assert_false(bt_has(&t, "ab"));
	assert_false(bt_has(&t, "world,"));
	/* long words: "sk:" and 7 bytes, cut on a UTF-8 boundary */
	assert_true(bt_has(&t, "sk:superca"));
	assert_true(bt_has(&t, "sk:gr\xc3\xb6\xc3\x9f" "e"));
	assert_true(bt_has(&t, "sk:\xc3\x84\xc3\x84\xc3\x84"));
	/* a long host name: its pieces too */
	assert_true(bt_has(&t, "sk:mail.bi"));
	assert_true(bt_has(&t, "example"));
	assert_false(bt_has(&t, "bigbank-security"));	/* 16 bytes */
	/* headers */
	assert_true(bt_has(&t, "Hsubject:cheap"));
	assert_true(bt_has(&t, "Hfrom:joe@example.com"));
	assert_true(bt_has(&t, "Hfrom:d:example.com"));
	assert_true(bt_has(&t, "Hmid:d:host.example.org"));
	assert_true(bt_has(&t, "Hrcvd:mail.example.net"));
	assert_true(bt_has(&t, "Hrcvd:ip:192.0.2.7"));
	assert_true(bt_has(&t, "Hrcvd:ip:192.0.2"));
	assert_true(bt_has(&t, "Hrcvd:ip:192.0"));
	assert_false(bt_has(&t, "Hrcvd:12ab3c"));
	assert_false(bt_has(&t, "Hrcvd:jan"));
	assert_null(strstr(tg_buf_cstr(&t), "Hx-spam"));
	assert_true(bt_has(&t, "Hmailer:microsoft outlook express 6"));
	/* URIs and parts */
	assert_true(bt_has(&t, "U:d:www.example.com"));
	assert_true(bt_has(&t, "U:d:example.com"));
	assert_false(bt_has(&t, "U:d:com"));
	assert_true(bt_has(&t, "U:p:buy"));
	assert_true(bt_has(&t, "U:p:cheap"));
	assert_true(bt_has(&t, "U:p:pills"));
	assert_true(bt_has(&t, "P:t:text/html"));
	assert_true(bt_has(&t, "P:cs:utf-8"));
	assert_true(bt_has(&t, "P:ext:zip"));
	assert_true(bt_has(&t, "M:html"));
	tg_buf_fini(&t);
}

static void
test_toks_make(void **state)
{
	struct bt_msg		b;
	struct spam_bayes_toks	t;
	size_t			i;

	(void)state;
	bt_msg_make(&b, "spam spam spam eggs eggs bacon", NULL, NULL, NULL);
	spam_bayes_toks_make(&b.m, &t);
	assert_int_equal(t.n, 3);	/* distinct, sorted */
	for (i = 1; i < t.n; i++)
		assert_true(t.h[i - 1] < t.h[i]);
	assert_true(t.h[0] == spam_bayes_hash("spam", 4) ||
	    t.h[1] == spam_bayes_hash("spam", 4) ||
	    t.h[2] == spam_bayes_hash("spam", 4));
	/* SHA-1("abc") = a9993e36 4706816a ... */
	assert_true(spam_bayes_hash("abc", 3) == 0xa9993e364706816aULL);
	spam_bayes_toks_fini(&t);
}

static void
test_arithmetic(void **state)
{
	double	fw[40];
	size_t	i;

	(void)state;
	/* chi-square upper tail, against tables */
	assert_true(fabs(spam_bayes_chi2q(2.0, 2) - exp(-1.0)) < 1e-12);
	assert_true(fabs(spam_bayes_chi2q(9.487729, 4) - 0.05) < 1e-6);
	assert_true(fabs(spam_bayes_chi2q(18.307038, 10) - 0.05) < 1e-6);
	assert_true(fabs(spam_bayes_chi2q(3.940299, 10) - 0.95) < 1e-6);
	assert_true(spam_bayes_chi2q(0.0, 4) == 1.0);
	assert_true(spam_bayes_chi2q(2000.0, 300) < 1e-100);
	/* Robinson's f(w) */
	assert_true(fabs(spam_bayes_fw(0, 0, 100, 100) - SPAM_BAYES_X) <
	    1e-12);
	assert_true(fabs(spam_bayes_fw(10, 0, 100, 100) -
	    (0.45 * 0.5 + 10.0) / 10.45) < 1e-12);
	assert_true(fabs(spam_bayes_fw(1, 3, 100, 100) -
	    (0.45 * 0.5 + 4 * 0.25) / 4.45) < 1e-12);
	/* ratios, not counts: 10 of 200 spam vs 10 of 100 ham */
	assert_true(fabs(spam_bayes_fw(10, 10, 200, 100) -
	    (0.45 * 0.5 + 20.0 / 3) / 20.45) < 1e-12);
	/* more spam learned: the same counts are less spammy */
	assert_true(spam_bayes_fw(5, 5, 200, 100) < 0.5);
	/* Fisher combining */
	assert_true(spam_bayes_combine(fw, 0) == 0.5);
	for (i = 0; i < 20; i++)
		fw[i] = 0.99;
	assert_true(spam_bayes_combine(fw, 20) > 0.999);
	for (i = 0; i < 20; i++)
		fw[i] = 0.01;
	assert_true(spam_bayes_combine(fw, 20) < 0.001);
	for (i = 0; i < 40; i++)
		fw[i] = i % 2 == 0 ? 0.99 : 0.01;
	assert_true(fabs(spam_bayes_combine(fw, 40) - 0.5) < 1e-9);
	/* one token alone: chi2 with 2 df, S = 1 - 0.9, H = 1 - 0.1... */
	fw[0] = 0.9;
	assert_true(fabs(spam_bayes_combine(fw, 1) -
	    ((1 - 0.1) - (1 - 0.9) + 1) / 2) < 1e-12);
	/* the bands */
	assert_string_equal(spam_bayes_rule(0.0), "BAYES_00");
	assert_string_equal(spam_bayes_rule(0.03), "BAYES_05");
	assert_string_equal(spam_bayes_rule(0.5), "BAYES_50");
	assert_string_equal(spam_bayes_rule(0.96), "BAYES_95");
	assert_string_equal(spam_bayes_rule(0.995), "BAYES_99");
	assert_null(spam_bayes_rule_extra(0.995));
	assert_string_equal(spam_bayes_rule_extra(0.9995), "BAYES_999");
}

/* bt_open - a store of the backend */
static struct tg_store *
bt_open(enum tg_store_backend backend)
{
	struct tg_store	*s;
	struct tg_err	 err;

	s = tg_test_store_open(backend, bt_lmdb, bt_url, &err);
	if (s == NULL)
		fail_msg("tg_store_open: %s", err.text);
	return s;
}

/* bt_redis_start - a private redis-server on a free loopback port */
static int
bt_redis_start(void)
{
	return tg_test_redis_start_url(&bt_redis, bt_dir, bt_url,
	    sizeof(bt_url));
}

/* bt_train - train, which must succeed, and give the outcome */
static enum spam_bayes_outcome
bt_train(struct tg_store *s, const char *scope, struct bt_msg *b,
    enum spam_class cls, bool forget)
{
	enum spam_bayes_outcome	out;
	struct tg_err		err;

	if (spam_bayes_train(s, scope, &b->m, cls, forget, &out, &err) !=
	    TG_OK)
		fail_msg("train: %s", err.text);
	return out;
}

/* bt_counts - the scope's totals as nspam * 100 + nham */
static int64_t
bt_counts(struct tg_store *s, const char *scope)
{
	int64_t	ns, nh;

	assert_int_equal(spam_bayes_counts(s, scope, &ns, &nh, NULL), TG_OK);
	return ns * 100 + nh;
}

/* bt_token_count - a token's s: or h: count, straight from the store */
static int64_t
bt_token_count(struct tg_store *s, const char *scope, char cls,
    const char *tok)
{
	char		 k[TG_STORE_KEY_MAX];
	const char	*key = k;
	int64_t		 v;

	(void)snprintf(k, sizeof(k), "bayes:%s:%c:%016llx", scope, cls,
	    (unsigned long long)spam_bayes_hash(tok, strlen(tok)));
	assert_int_equal(tg_store_kv_mget(s, &key, 1, &v, NULL), TG_OK);
	return v;
}

static void
test_learn(void **state)
{
	enum tg_store_backend	 backend = *(enum tg_store_backend *)*state;
	struct tg_store		*s = bt_open(backend);
	struct tg_conf_section	 sec = { "spam", spam_bayes_params };
	struct bt_msg		 sp[2], hm[2], t1, t2;
	struct tg_err		 err;
	const char		*scope = backend == TG_STORE_REDIS ?
				    "redis.example" : "global";
	double			 p;

	(void)state;
	assert_int_equal(tg_conf_load_text("[spam]\nbayes_min_spam = 2\n"
	    "bayes_min_ham = 2\n", "test", &sec, 1, &err), TG_OK);
	bt_msg_make(&sp[0], "buy cheap viagra pills now, limited offer "
	    "click here", "Cheap pills", "promo@pills.example", "<1@pills>");
	bt_msg_make(&sp[1], "cheap viagra and cialis pills, best offer, "
	    "click now", "Best offer", "sales@pills.example", "<2@pills>");
	bt_msg_make(&hm[0], "the meeting about the release schedule moved "
	    "to thursday", "Release meeting", "alice@work.example",
	    "<3@work>");
	bt_msg_make(&hm[1], "notes from the release meeting attached, see "
	    "the schedule", "Meeting notes", "bob@work.example", "<4@work>");
	bt_msg_make(&t1, "limited offer on viagra pills, click", "Pills",
	    "x@pills.example", "<5@pills>");
	bt_msg_make(&t2, "is the release meeting still on thursday",
	    "Meeting", "alice@work.example", "<6@work>");

	assert_int_equal(spam_bayes_classify(s, scope, &t1.m, &p, &err),
	    TG_NOTFOUND);
	assert_int_equal(bt_train(s, scope, &sp[0], SPAM_CLASS_SPAM, false),
	    SPAM_BAYES_LEARNED);
	assert_int_equal(bt_train(s, scope, &sp[1], SPAM_CLASS_SPAM, false),
	    SPAM_BAYES_LEARNED);
	assert_int_equal(bt_train(s, scope, &hm[0], SPAM_CLASS_HAM, false),
	    SPAM_BAYES_LEARNED);
	assert_int_equal(spam_bayes_classify(s, scope, &t1.m, &p, &err),
	    TG_NOTFOUND);	/* 1 ham learned, 2 needed */
	assert_int_equal(bt_train(s, scope, &hm[1], SPAM_CLASS_HAM, false),
	    SPAM_BAYES_LEARNED);
	assert_int_equal(bt_counts(s, scope), 202);
	assert_int_equal(bt_token_count(s, scope, 's', "viagra"), 2);
	assert_int_equal(bt_token_count(s, scope, 'h', "meeting"), 2);
	assert_int_equal(bt_token_count(s, scope, 's', "meeting"), 0);

	assert_int_equal(spam_bayes_classify(s, scope, &t1.m, &p, &err),
	    TG_OK);
	assert_true(p > 0.95);
	assert_string_equal(spam_bayes_rule(p), p >= 0.99 ? "BAYES_99" :
	    "BAYES_95");
	assert_int_equal(spam_bayes_classify(s, scope, &t2.m, &p, &err),
	    TG_OK);
	assert_true(p < 0.05);

	/* the same message twice is counted once */
	assert_int_equal(bt_train(s, scope, &sp[0], SPAM_CLASS_SPAM, false),
	    SPAM_BAYES_ALREADY);
	assert_int_equal(bt_counts(s, scope), 202);
	assert_int_equal(bt_token_count(s, scope, 's', "viagra"), 2);
	/* relearned as the other class: moved */
	assert_int_equal(bt_train(s, scope, &sp[0], SPAM_CLASS_HAM, false),
	    SPAM_BAYES_MOVED);
	assert_int_equal(bt_counts(s, scope), 103);
	assert_int_equal(bt_token_count(s, scope, 's', "viagra"), 1);
	assert_int_equal(bt_token_count(s, scope, 'h', "viagra"), 1);
	/* forgotten: out of the counts; forgetting again is NOTFOUND */
	assert_int_equal(bt_train(s, scope, &sp[0], SPAM_CLASS_HAM, true),
	    SPAM_BAYES_FORGOTTEN);
	assert_int_equal(bt_counts(s, scope), 102);
	assert_int_equal(bt_token_count(s, scope, 'h', "viagra"), 0);
	assert_int_equal(spam_bayes_forget(s, scope, &sp[0].m, &err),
	    TG_NOTFOUND);
	/* and learned again from nothing */
	assert_int_equal(spam_bayes_learn(s, scope, &sp[0].m, SPAM_CLASS_SPAM,
	    &err), TG_OK);
	assert_int_equal(bt_counts(s, scope), 202);

	/* scopes are apart; a bad scope is refused */
	assert_int_equal(bt_counts(s, "other.example"), 0);
	assert_int_equal(spam_bayes_classify(s, "Other.Example", &t1.m, &p,
	    &err), TG_NOTFOUND);
	assert_int_equal(spam_bayes_learn(s, "bad scope", &sp[0].m,
	    SPAM_CLASS_SPAM, &err), TG_PERM);
	assert_int_equal(spam_bayes_learn(s, "a:b", &sp[0].m,
	    SPAM_CLASS_SPAM, &err), TG_PERM);
	tg_conf_defaults(&sec, 1);
	assert_int_equal(spam_bayes_conf()->min_spam, 200);
	(void)tg_store_close(s);
}

/* test_redis_down - a dead server is TG_TEMP, not a crash */
static void
test_redis_down(void **state)
{
	struct tg_store	*s;
	struct bt_msg	 b;
	struct tg_err	 err;
	double		 p;

	(void)state;
	tg_test_redis_stop(&bt_redis);
	s = bt_open(TG_STORE_REDIS);
	bt_msg_make(&b, "anything at all", NULL, NULL, NULL);
	assert_int_equal(spam_bayes_classify(s, NULL, &b.m, &p, &err),
	    TG_TEMP);
	assert_int_equal(spam_bayes_learn(s, NULL, &b.m, SPAM_CLASS_HAM,
	    &err), TG_TEMP);
	(void)tg_store_close(s);
}

static int
bt_setup(void **state)
{
	(void)state;
	if (mkdtemp(bt_dir) == NULL)
		return -1;
	(void)snprintf(bt_lmdb, sizeof(bt_lmdb), "%s/lmdb", bt_dir);
	return bt_redis_start();
}

static int
bt_teardown(void **state)
{
	char	cmd[600];

	(void)state;
	tg_test_redis_stop(&bt_redis);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bt_dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	static enum tg_store_backend	emb = TG_STORE_EMBEDDED;
	static enum tg_store_backend	red = TG_STORE_REDIS;
	const struct CMUnitTest		tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_toks_make),
		cmocka_unit_test(test_arithmetic),
		{ "learn: embedded", test_learn, NULL, NULL, &emb },
		{ "learn: redis", test_learn, NULL, NULL, &red },
		cmocka_unit_test(test_redis_down),
	};

	(void)signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, bt_setup, bt_teardown);
}
