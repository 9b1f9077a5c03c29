/*
 * spam_rules_test - the rule engine alone: parsing and refusals, regex
 * translation and the prefilter literal, header forms, meta rules
 * (boolean and arithmetic), tflags multiple, if/ifplugin blocks, scores,
 * native evals, and Debian's SpamAssassin rule set when installed.
 * Messages are built as struct spam_msg directly, without the MIME part.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "tollgate/buf.h"
#include "tollgate/log.h"

#include "spam_rules_int.h"

/* ---- helpers ---- */

struct test_msg {
	struct spam_msg		 m;
	struct spam_header	 h[16];
	struct tg_buf		 full;
};

/* test_msg_make - headers "Name: value", NULL-terminated; body lines
 * '\n'-joined; decoded header values equal raw ones unless given after
 * a '|' ("Subject: =?utf-8?q?x?=|x") */
static struct test_msg *
test_msg_make(const char *const *hdrs, const char *body, const char *raw,
    const char *const *uris)
{
	struct test_msg	*t = tg_calloc(1, sizeof(*t));
	const char	*c, *bar;
	size_t		 i;

	tg_buf_init(&t->full);
	for (i = 0; hdrs != NULL && hdrs[i] != NULL; i++) {
		c = strchr(hdrs[i], ':');
		assert_non_null(c);
		t->h[i].name = tg_strndup(hdrs[i], (size_t)(c - hdrs[i]));
		c++;
		while (*c == ' ')
			c++;
		bar = strchr(c, '|');
		t->h[i].raw = bar ? tg_strndup(c, (size_t)(bar - c)) :
		    tg_strdup(c);
		t->h[i].decoded = tg_strdup(bar ? bar + 1 : c);
		tg_buf_printf(&t->full, "%s: %s\r\n", t->h[i].name,
		    t->h[i].raw);
	}
	t->m.headers = t->h;
	t->m.nheaders = i;
	tg_buf_puts(&t->full, "\r\n");
	tg_buf_puts(&t->full, raw != NULL ? raw : body != NULL ? body : "");
	t->m.full = t->full.data;
	t->m.full_len = t->full.len;
	if (body != NULL) {
		t->m.body = tg_strdup(body);
		t->m.body_len = strlen(body);
	}
	if (raw != NULL || body != NULL) {
		t->m.rawbody = tg_strdup(raw != NULL ? raw : body);
		t->m.rawbody_len = strlen(t->m.rawbody);
	}
	for (i = 0; uris != NULL && uris[i] != NULL; i++)
		;
	t->m.uris = tg_calloc(i + 1, sizeof(char *));
	for (i = 0; uris != NULL && uris[i] != NULL; i++)
		t->m.uris[i] = tg_strdup(uris[i]);
	t->m.nuris = i;
	return t;
}

static void
test_msg_free(struct test_msg *t)
{
	size_t	i;

	for (i = 0; i < t->m.nheaders; i++) {
		free(t->h[i].name);
		free(t->h[i].raw);
		free(t->h[i].decoded);
	}
	for (i = 0; i < t->m.nuris; i++)
		free(t->m.uris[i]);
	free(t->m.uris);
	free(t->m.body);
	free(t->m.rawbody);
	tg_buf_fini(&t->full);
	free(t);
}

/* test_load - rules text written to a temporary file and loaded */
static struct spam_rules *
test_load(const char *text, struct spam_rules_report *rep, char *path,
    size_t pathsz)
{
	struct spam_rules	*rs;
	struct tg_err		 err;
	FILE			*f;
	int			 fd;

	(void)snprintf(path, pathsz, "/tmp/spam_rules_test.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	if (spam_rules_load(&rs, path, rep, &err) != TG_OK)
		fail_msg("load: %s", err.text);
	(void)unlink(path);
	return rs;
}

/* test_hits - the hit names, space-separated, in rule order */
static char *
test_hits(const struct spam_rules *rs, const struct test_msg *t)
{
	struct spam_score	s;
	struct tg_buf		b;
	size_t			i;

	spam_score_init(&s);
	spam_rules_run(rs, &t->m, &s);
	tg_buf_init(&b);
	tg_buf_puts(&b, "");
	for (i = 0; i < s.nhits; i++)
		tg_buf_printf(&b, "%s%s", i ? " " : "", s.hits[i].name);
	spam_score_fini(&s);
	return tg_buf_steal(&b);
}

/* test_reason - count of a skip reason, 0 if absent */
static size_t
test_reason(const struct spam_rules *rs, const char *text)
{
	const char	*t;
	size_t		 i, n;

	for (i = 0; spam_rules_skip_reason(rs, i, &t, &n); i++)
		if (strcmp(t, text) == 0)
			return n;
	return 0;
}

/* test_has_error - an error containing both a and b */
static bool
test_has_error(const struct spam_rules *rs, const char *a, const char *b)
{
	const char	*e;
	size_t		 i;

	for (i = 0; (e = spam_rules_error(rs, i)) != NULL; i++)
		if (strstr(e, a) != NULL && strstr(e, b) != NULL)
			return true;
	return false;
}

#define EXPECT_HITS(rs, t, want) do {					\
	char *got_ = test_hits((rs), (t));				\
	assert_string_equal(got_, (want));				\
	free(got_);							\
} while (0)

/* ---- tests ---- */

/* test_refusals - what is refused, counted, and said with file:line */
static void
test_refusals(void **state)
{
	static const char rules[] =
	    "body GOOD /hello/i\n"				/* 1 */
	    "body BADRE /(unclosed/\n"				/* 2 */
	    "body NOEVAL eval:check_something_new()\n"		/* 3 */
	    "header BADOP Subject ~~ /x/\n"			/* 4 */
	    "body BADFLAG /x/q\n"				/* 5 */
	    "mimeheader MH Content-Type =~ /x/\n"		/* 6 */
	    "header RBL eval:check_rbl('a', 'b.example.')\n"	/* 7 */
	    "endif\n"						/* 8 */
	    "body NOEND /abc\n"					/* 9 */
	    "meta BADMETA GOOD && (\n"				/* 10 */
	    "header BADMOD From:host =~ /x/\n"			/* 11 */
	    "body AFTER /x/ trailing\n"				/* 12 */
	    "score GOOD 1 2\n"					/* 13 */
	    "body 9BAD /x/\n"					/* 14 */
	    "body SHORTARGS eval:check_header_count_range('To')\n" /* 15 */
	    "freemail_domains example.com\n"			/* 16 */
	    "lang de describe GOOD Hallo\n"			/* 17 */
	    "header UNICODE Subject =~ /\\x{263a}/\n"		/* 18 */
	    "body ASSERT /(?<=a+)b/\n";				/* 19 */
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	char			 path[64];

	(void)state;
	rs = test_load(rules, &rep, path, sizeof(path));
	assert_int_equal(rep.loaded, 2);
	assert_int_equal(rep.skipped, 4);
	assert_int_equal(test_reason(rs, "eval:check_something_new not "
	    "implemented"), 1);
	assert_int_equal(test_reason(rs, "mimeheader rules not supported"), 1);
	assert_int_equal(test_reason(rs, "eval:check_rbl done by the DNSBL "
	    "part"), 1);
	assert_int_equal(test_reason(rs, "header modifier :host not "
	    "supported"), 1);
	assert_true(test_has_error(rs, ":2: BADRE", "PCRE2"));
	assert_true(test_has_error(rs, ":2: BADRE", "missing closing"));
	assert_true(test_has_error(rs, ":4: BADOP", "Header =~ /regex/"));
	assert_true(test_has_error(rs, ":5: BADFLAG", "flag q"));
	assert_true(test_has_error(rs, ":8: ", "endif without if"));
	assert_true(test_has_error(rs, ":9: NOEND", "without closing /"));
	assert_true(test_has_error(rs, ":10: BADMETA", "unexpected end"));
	assert_true(test_has_error(rs, ":12: AFTER", "text after the regex"));
	assert_true(test_has_error(rs, ":13: ", "1 or 4 values"));
	assert_true(test_has_error(rs, ":14: ", "bad rule name"));
	assert_true(test_has_error(rs, ":15: SHORTARGS", "needs 3"));
	assert_true(test_has_error(rs, ":19: ASSERT", "PCRE2"));
	assert_int_equal(rep.errors, 11);
	assert_int_equal(spam_rules_ignored(rs), 1);
	assert_null(spam_rules_error(rs, rep.errors));
	(void)spam_rules_free(rs);
}

/* test_missing_path - a path that is not there fails the load */
static void
test_missing_path(void **state)
{
	struct spam_rules	*rs = (struct spam_rules *)1;
	struct tg_err		 err;

	(void)state;
	assert_int_equal(spam_rules_load(&rs, "/nonexistent/rules.cf", NULL,
	    &err), TG_NOTFOUND);
	assert_null(rs);
	assert_non_null(strstr(err.text, "/nonexistent/rules.cf"));
}

/* test_include - a relative include, an include loop, a directory
 * read in name order (a later definition replaces an earlier one) */
static void
test_include(void **state)
{
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct test_msg		*t;
	struct tg_err		 err;
	char			 dir[] = "/tmp/spam_rules_inc.XXXXXX", path[128];
	FILE			*f;
	size_t			 i;
	static const struct {
		const char	*name;
		const char	*text;
	} files[] = {
		{ "10_a.cf", "include sub/b.inc\nmeta M_INC __B && __C\n"
		    "body REDEF /first/\n" },
		{ "20_c.cf", "body __C /c/\nbody REDEF /second/\n"
		    "include 20_c.cf\n" },
		{ "sub/b.inc", "body __B /b/\n" },
		{ "ignored.txt", "body NOT_READ /b/\n" },
	};

	(void)state;
	assert_non_null(mkdtemp(dir));
	(void)snprintf(path, sizeof(path), "%s/sub", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	for (i = 0; i < TG_NITEMS(files); i++) {
		(void)snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		assert_non_null(f = fopen(path, "w"));
		assert_true(fputs(files[i].text, f) >= 0);
		assert_int_equal(fclose(f), 0);
	}
	assert_int_equal(spam_rules_load(&rs, dir, &rep, &err), TG_OK);
	assert_true(test_has_error(rs, "20_c.cf:3:", "nested too deep"));
	t = test_msg_make(NULL, "b c second", NULL, NULL);
	EXPECT_HITS(rs, t, "M_INC REDEF");
	test_msg_free(t);
	t = test_msg_make(NULL, "first", NULL, NULL);
	EXPECT_HITS(rs, t, "");
	test_msg_free(t);
	(void)spam_rules_free(rs);
	for (i = TG_NITEMS(files); i > 0; i--) {
		(void)snprintf(path, sizeof(path), "%s/%s", dir,
		    files[i - 1].name);
		(void)unlink(path);
	}
	(void)snprintf(path, sizeof(path), "%s/sub", dir);
	(void)rmdir(path);
	(void)rmdir(dir);
}

/* test_meta - boolean and arithmetic metas, sub-rules, undefined names */
static void
test_meta(void **state)
{
	static const char rules[] =
	    "body __A /apple/\n"
	    "body __B /banana/\n"
	    "body __C /cherry/\n"
	    "body __D /durian/\n"
	    "meta M_AND __A && __B\n"
	    "meta M_NOT __A && !__D\n"
	    "meta M_PAREN (__A || __D) && (__C || __D)\n"
	    "meta M_SUM __A + __B + __C + __D >= 3\n"
	    "meta M_SUM4 (__A + __B + __C + __D) == 4\n"
	    "meta M_GT __A + __B > 1 && !(__C < 1)\n"
	    "meta M_UNDEF __A && !__NO_SUCH_RULE\n"
	    "meta M_UNDEF2 __NO_SUCH_RULE || __D\n"
	    "meta M_META M_AND && M_NOT\n"
	    "meta __SUB __A || __B\n"
	    "meta M_MUL __SUB * 2 - 1 == 1\n"
	    "meta M_LOOP1 M_LOOP2\n"
	    "meta M_LOOP2 M_LOOP1\n";
	static const char *const hdrs[] = { "Subject: fruit", NULL };
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct test_msg		*t;
	char			 path[64];

	(void)state;
	rs = test_load(rules, &rep, path, sizeof(path));
	assert_int_equal(rep.errors, 2);
	assert_true(test_has_error(rs, "M_LOOP1", "loop"));
	t = test_msg_make(hdrs, "an apple\na banana and a cherry", NULL, NULL);
	EXPECT_HITS(rs, t, "M_AND M_NOT M_PAREN M_SUM M_GT M_UNDEF M_META "
	    "M_MUL");
	test_msg_free(t);
	t = test_msg_make(hdrs, "durian", NULL, NULL);
	EXPECT_HITS(rs, t, "M_PAREN M_UNDEF2");
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

/* test_deadline - past the deadline no further rule runs, what ran
 * still counts, and the score is marked partial */
static void
test_deadline(void **state)
{
	static const char rules[] =
	    "body APPLE /apple/\n"
	    "score APPLE 2.0\n"
	    "meta M_APPLE APPLE\n"
	    "score M_APPLE 1.0\n";
	static const char *const hdrs[] = { "Subject: fruit", NULL };
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct spam_score	 s;
	struct test_msg		*t;
	char			 path[64];

	(void)state;
	rs = test_load(rules, &rep, path, sizeof(path));
	t = test_msg_make(hdrs, "an apple", NULL, NULL);
	spam_score_init(&s);
	spam_score_set_deadline(&s, 60.0);
	spam_rules_run(rs, &t->m, &s);
	assert_int_equal(s.nhits, 2);
	assert_false(s.partial);
	spam_score_fini(&s);
	spam_score_init(&s);
	spam_score_set_deadline(&s, -1.0);
	assert_true(spam_score_late(&s));
	spam_rules_run(rs, &t->m, &s);
	assert_int_equal(s.nhits, 0);
	assert_true(s.partial);
	spam_score_fini(&s);
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

/* test_headers - header forms and pseudo-headers */
static void
test_headers(void **state)
{
	static const char rules[] =
	    "header H_SUBJ Subject =~ /^cheap pills$/i\n"
	    "header H_SUBJ_RAW Subject:raw =~ /=\\?utf-8\\?/\n"
	    "header H_DECODED Subject =~ /=\\?utf-8\\?/\n"
	    "header H_ADDR From:addr =~ /^bob\\@example\\.com$/\n"
	    "header H_NAME From:name =~ /^Bob Smith$/\n"
	    "header H_ADDR2 To:addr =~ /^carol\\@example\\.org$/\n"
	    "header H_NAME2 To:name =~ /^Carol$/\n"
	    "header H_EXISTS exists:X-Mailer\n"
	    "header H_NOEXISTS exists:X-Nothing\n"
	    "header H_ALL ALL =~ /^X-Mailer: spamkit/m\n"
	    "header H_TOCC ToCc =~ /dave\\@/\n"
	    "header H_MSGID MESSAGEID =~ /\\@resent\\.example>/\n"
	    "header H_ENV EnvelopeFrom =~ /^bounce\\@example\\.net$/\n"
	    "header H_UNSET X-Missing =~ /^none$/ [if-unset: none]\n"
	    "header H_NOTMISSING X-Missing !~ /./\n"
	    "header H_NEG Subject !~ /pills/\n"
	    "header H_CASE subject =~ /pills/\n"
	    "header H_MULTI Received =~ /first.*\\n.*second/\n"
	    "header H_JOINED Received =~ /irst\\nfrom sec/\n";
	static const char *const hdrs[] = {
	    "Return-Path: <bounce@example.net>",
	    "Received: from first",
	    "Received: from second",
	    "From: \"Bob Smith\" <bob@example.com>",
	    "To: carol@example.org (Carol), erin@example.org",
	    "Cc: dave@example.org",
	    "Subject: =?utf-8?q?cheap_pills?=|cheap pills",
	    "Message-Id: <1@example.com>",
	    "Resent-Message-Id: <2@resent.example>",
	    "X-Mailer: spamkit 1.0",
	    NULL };
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct test_msg		*t;
	char			 path[64];

	(void)state;
	rs = test_load(rules, &rep, path, sizeof(path));
	assert_int_equal(rep.errors, 0);
	assert_int_equal(rep.loaded, 19);
	t = test_msg_make(hdrs, "hello", NULL, NULL);
	EXPECT_HITS(rs, t, "H_SUBJ H_SUBJ_RAW H_ADDR H_NAME H_ADDR2 H_NAME2 "
	    "H_EXISTS H_ALL H_TOCC H_MSGID H_ENV H_UNSET H_NOTMISSING H_CASE "
	    "H_MULTI H_JOINED");
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

/* test_addr - :addr and :name on SpamAssassin's documented cases */
static void
test_addr(void **state)
{
	static const char *const cases[] = {
	    "example@foo", "example@foo (Foo Blah)",
	    "example@foo, example@bar",
	    "display: example@foo (Foo Blah), example@bar ;",
	    "Foo Blah <example@foo>", "\"Foo Blah\" <example@foo>",
	    "\"'Foo Blah'\" <example@foo>" };
	struct tg_buf	b;
	size_t		i;

	(void)state;
	tg_buf_init(&b);
	for (i = 0; i < TG_NITEMS(cases); i++) {
		tg_buf_reset(&b);
		tg_buf_puts(&b, "");
		spam_addr_first(cases[i], &b);
		assert_string_equal(b.data, "example@foo");
		tg_buf_reset(&b);
		tg_buf_puts(&b, "");
		spam_addr_name(cases[i], &b);
		if (i >= 3 || i == 1)
			assert_string_equal(b.data, "Foo Blah");
	}
	tg_buf_fini(&b);
}

/* test_multiple - tflags multiple counts for metas, maxhits bounds */
static void
test_multiple(void **state)
{
	static const char rules[] =
	    "body __X /x\\d/\n"
	    "tflags __X multiple\n"
	    "body __Y /y/\n"
	    "tflags __Y multiple maxhits=2\n"
	    "body __ONCE /x\\d/\n"
	    "meta MANY_X __X >= 4\n"
	    "meta FIVE_X __X > 4\n"
	    "meta Y_CAPPED __Y == 2\n"
	    "meta ONCE_ONE __ONCE == 1\n"
	    "uri __U /^http/\n"
	    "tflags __U multiple\n"
	    "meta THREE_URIS __U == 3\n"
	    "body COUNTED /x1/\n"
	    "tflags COUNTED multiple\n";
	static const char *const uris[] = { "http://a.example/",
	    "http://b.example/", "https://c.example/", "ftp://d.example/",
	    NULL };
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct spam_score	 s;
	struct test_msg		*t;
	char			 path[64];

	(void)state;
	rs = test_load(rules, &rep, path, sizeof(path));
	t = test_msg_make(NULL, "x1 x2\nx3 yyyy\nx4 x1", NULL, uris);
	EXPECT_HITS(rs, t, "MANY_X FIVE_X Y_CAPPED ONCE_ONE THREE_URIS "
	    "COUNTED");
	/* counted twice for metas, scored once */
	spam_score_init(&s);
	spam_rules_run(rs, &t->m, &s);
	assert_true(s.total > 5.99 && s.total < 6.01);
	spam_score_fini(&s);
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

/* test_if_blocks - ifplugin, if (version), can(), plugin(), else */
static void
test_if_blocks(void **state)
{
	static const char rules[] =
	    "ifplugin Mail::SpamAssassin::Plugin::HeaderEval\n"
	    "body IN_HEADEREVAL /a/\n"
	    "endif\n"
	    "ifplugin Mail::SpamAssassin::Plugin::Razor2\n"
	    "body IN_RAZOR2 /a/\n"
	    "if (version >= 3.004000)\n"
	    "body NESTED_OFF /a/\n"
	    "endif\n"
	    "endif\n"
	    "if (version >= 3.004002)\n"
	    "body NEW_ENOUGH /a/\n"
	    "else\n"
	    "body NOT_NEW /a/\n"
	    "endif\n"
	    "if version >= 9.000000\n"
	    "body TOO_NEW /a/\n"
	    "else\n"
	    "body OLD_ELSE /a/\n"
	    "endif\n"
	    "if can(Mail::SpamAssassin::Conf::feature_bug6558_free)\n"
	    "body CAN_YES /a/\n"
	    "endif\n"
	    "if can(Mail::SpamAssassin::Conf::feature_unheard_of)\n"
	    "body CAN_NO /a/\n"
	    "endif\n"
	    "if !plugin(Mail::SpamAssassin::Plugin::Razor2)\n"
	    "body NO_PLUGIN /a/\n"
	    "endif\n"
	    "if !(!plugin(Mail::SpamAssassin::Plugin::DKIM))\n"
	    "score DKIM_VALID -0.1\n"
	    "endif\n"
	    "if (version >= 3.004000) && can(Mail::SpamAssassin::Conf::perl_min_version_5010000)\n"
	    "body BOTH /a/\n"
	    "endif\n"
	    "if (nonsense >= 1)\n"
	    "body NONSENSE /a/\n"
	    "endif\n";
	static const char *const hdrs[] = { "Subject: s", NULL };
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct test_msg		*t;
	char			 path[64];
	double			 v;

	(void)state;
	rs = test_load(rules, &rep, path, sizeof(path));
	assert_int_equal(rep.errors, 1);
	assert_true(test_has_error(rs, ":35:", "unknown condition"));
	assert_int_equal(test_reason(rs, "ifplugin Mail::SpamAssassin::Plugin"
	    "::Razor2: plugin not in tollgate"), 2);
	assert_int_equal(rep.skipped, 6);
	t = test_msg_make(hdrs, "a", NULL, NULL);
	EXPECT_HITS(rs, t, "IN_HEADEREVAL NEW_ENOUGH OLD_ELSE CAN_YES "
	    "NO_PLUGIN BOTH");
	test_msg_free(t);
	assert_true(spam_rules_score(rs, "DKIM_VALID", &v));
	assert_true(v < -0.09 && v > -0.11);
	(void)spam_rules_free(rs);
}

/* test_regex - delimiters, flags, Perl-only syntax, the literal */
static void
test_regex(void **state)
{
	static const char rules[] =
	    "body R_BRACE m{/path/to}i\n"
	    "body R_BANG m!a/b!\n"
	    "body R_X /c h e e s e/x\n"
	    "body R_SLASH /\\/usr\\/bin/\n"
	    "body R_QUANT /zz{,2}q/\n"
	    "body R_S /start.end/s\n"
	    "body R_NOS /start.end/\n"
	    "full R_M /^line two$/m\n"
	    "body R_HASH /number \\#1/\n"
	    "body R_NESTED m{a{2}b}\n"
	    "body R_PERL /(?i)Viagra/\n"
	    "body R_LOOK /foo(?!bar)/\n";
	static const struct {
		const char	*re;
		bool		 x;
		const char	*lit;
	} lits[] = {
		{ "hello world", false, "hello world" },
		{ "cheap\\s+pills", false, "cheap" },
		{ "Viagra|Cialis", false, "viagra|cialis" },
		{ "Viagra|Cialis|x", false, "" },
		{ "(?:buy|order) now online", false, " now online" },
		{ "\\b(?:photo retouching|image editing)\\b", false,
		  "photo retouching|image editing" },
		{ "(?i:free (?:money|cash))", false, "free " },
		{ "(?:abc|de)(?:fghij|klmno)", false, "fghij|klmno" },
		{ "(?:foo)?barbaz", false, "barbaz" },
		{ "(?!unsubscribe)remove", false, "remove" },
		{ "(?<name>hello) th", false, "hello" },
		{ "colou?r match", false, "r match" },
		{ "abc+de", false, "abc" },
		{ "ab\\.com\\b", false, "ab.com" },
		{ "x{2}yyyyyy", false, "yyyyyy" },
		{ "[a-z]+ MONEY[!]", false, " money" },
		{ "f r e e  m o n e y", true, "freemoney" },
		{ "\\Qa.b+c\\E?z", false, "a.b+" },
		{ "\\x41bcdef", false, "bcdef" },
		{ "ab", false, "" },
	};
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct test_msg		*t;
	char			 path[64], out[SPAM_LIT_SET_MAX][SPAM_LIT_MAX + 1];
	struct tg_buf		 b;
	size_t			 i, j, n;

	(void)state;
	rs = test_load(rules, &rep, path, sizeof(path));
	if (rep.errors > 0)
		fail_msg("%s", spam_rules_error(rs, 0));
	assert_int_equal(rep.loaded, 12);
	t = test_msg_make(NULL, "see /PATH/TO it\na/b\ncheese\n/usr/bin\nzzq\n"
	    "number #1\naab\nVIAGRA\nfoobaz start", "line one\nline two\n",
	    NULL);
	EXPECT_HITS(rs, t, "R_BRACE R_BANG R_X R_SLASH R_QUANT R_M R_HASH "
	    "R_NESTED R_PERL R_LOOK");
	test_msg_free(t);
	(void)spam_rules_free(rs);
	for (i = 0; i < TG_NITEMS(lits); i++) {
		n = spam_re_literals(lits[i].re, strlen(lits[i].re), lits[i].x,
		    out, SPAM_LIT_SET_MAX);
		tg_buf_init(&b);
		tg_buf_puts(&b, "");
		for (j = 0; j < n; j++)
			tg_buf_printf(&b, "%s%s", j ? "|" : "", out[j]);
		assert_string_equal(b.data, lits[i].lit);
		tg_buf_fini(&b);
	}
}

/* test_utf - a regex naming a character beyond a byte runs in UTF
 * mode; broken UTF-8 then matches nothing and breaks nothing */
static void
test_utf(void **state)
{
	static const char rules[] =
	    "body U_SMILE /\\x{263a}\\s*now/\n"
	    "body U_BYTES /[\\x80-\\xff]{2}/\n";
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct test_msg		*t;
	char			 path[64];

	(void)state;
	rs = test_load(rules, &rep, path, sizeof(path));
	assert_int_equal(rep.loaded, 2);
	t = test_msg_make(NULL, "smile \xe2\x98\xba now", NULL, NULL);
	EXPECT_HITS(rs, t, "U_SMILE U_BYTES");
	test_msg_free(t);
	t = test_msg_make(NULL, "broken \xe2\x98 now \xff\xfe", NULL, NULL);
	EXPECT_HITS(rs, t, "U_BYTES");
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

/* test_replace_tags - ReplaceTags as SpamAssassin does it: tags, the
 * pre, inter and post fragments, nested tags, rules not listed */
static void
test_replace_tags(void **state)
{
	static const char rules[] =
	    "replace_tag A [a@4]\n"
	    "replace_tag G [gk]\n"
	    "replace_tag I [il|!1]\n"
	    "replace_tag R [r3]\n"
	    "replace_tag V (?:[vu]|\\\\\\/)\n"
	    "replace_tag SP [\\s~_-]\n"
	    "replace_tag AB <A>b\n"
	    "replace_inter W1 \\W?\n"
	    "replace_post P2 {1,2}\n"
	    "replace_pre PX x\n"
	    "body OBFU /(?!viagra)<V>+<SP>*<I>+<SP>*<A>+<SP>*<G>+<SP>*<R>+<SP>*<A>+/i\n"
	    "body INTER /<inter W1><G><R><A>/\n"
	    "body NESTED /<AB>c/\n"
	    "body NOT_LISTED /<A>/\n"
	    "replace_rules OBFU INTER\n"
	    "replace_rules NESTED\n"
	    "replace_start <\n"
	    "replace_end ]\n";
	static const struct {
		const char	*in;
		const char	*out;
	} cases[] = {
		{ "/<A><G>/", "/[a@4][gk]/" },
		{ "/<inter W1><A><G>x<R>/", "/[a@4]\\W?[gk]x[r3]/" },
		{ "/x<post P2><A><G>/", "/x[a@4]{1,2}[gk]{1,2}/" },
		{ "/<pre PX><A>y/", "/x[a@4]y/" },
		{ "/<AB>/", "/[a@4]b/" },
		{ "/<UNKNOWN><A>/", "/<UNKNOWN>[a@4]/" },
		{ "/<font size=3>/", "/<font size=3>/" },
	};
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct spam_tags	 tags = { 0 };
	struct test_msg		*t;
	char			 path[64], *got;
	size_t			 i;

	(void)state;
	spam_tags_set(&tags, SPAM_TAG_TAG, "A", "[a@4]");
	spam_tags_set(&tags, SPAM_TAG_TAG, "G", "[gk]");
	spam_tags_set(&tags, SPAM_TAG_TAG, "R", "[r3]");
	spam_tags_set(&tags, SPAM_TAG_TAG, "AB", "<A>b");
	spam_tags_set(&tags, SPAM_TAG_INTER, "W1", "\\W?");
	spam_tags_set(&tags, SPAM_TAG_POST, "P2", "{1,2}");
	spam_tags_set(&tags, SPAM_TAG_PRE, "PX", "x");
	for (i = 0; i < TG_NITEMS(cases); i++) {
		got = spam_tags_apply(&tags, cases[i].in);
		assert_string_equal(got, cases[i].out);
		free(got);
	}
	spam_tags_fini(&tags);
	rs = test_load(rules, &rep, path, sizeof(path));
	assert_int_equal(rep.errors, 1);
	assert_true(test_has_error(rs, ":18:", "only < and >"));
	t = test_msg_make(NULL, "buy v1@gr4 now\ng-r.a\n@bc\n<A>", NULL, NULL);
	EXPECT_HITS(rs, t, "OBFU INTER NESTED NOT_LISTED");
	test_msg_free(t);
	/* (?!viagra): the plain word is not an obfuscation */
	t = test_msg_make(NULL, "viagra is spelled right", NULL, NULL);
	EXPECT_HITS(rs, t, "INTER");
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

/* test_prefilter - a rule whose literal is absent does not run, case
 * is folded, and lines are kept apart as SpamAssassin does */
static void
test_prefilter(void **state)
{
	static const char rules[] =
	    "body P_CI /Click Here Now/i\n"
	    "body P_CS /Click Here Now/\n"
	    "body P_SPAN /line\\s+break/\n"
	    "rawbody P_RAW /<font color=red>/i\n"
	    "uri P_URI /\\.example\\.biz\\//\n"
	    "header P_HDR From =~ /\\@spam\\.example/\n"
	    "header P_HDR_NEG From !~ /\\@spam\\.example/\n";
	static const char *const hdrs[] = { "From: a@SPAM.example", NULL };
	static const char *const uris[] = { "http://www.example.biz/x",
	    NULL };
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct test_msg		*t;
	char			 path[64];

	(void)state;
	rs = test_load(rules, &rep, path, sizeof(path));
	assert_true(spam_litset_count(rs->lits) >= 5);
	t = test_msg_make(hdrs, "please CLICK HERE NOW\nline\nbreak",
	    "<FONT COLOR=red>x", uris);
	EXPECT_HITS(rs, t, "P_CI P_RAW P_URI P_HDR_NEG");
	test_msg_free(t);
	t = test_msg_make(NULL, "Click Here Now", NULL, NULL);
	EXPECT_HITS(rs, t, "P_CI P_CS P_HDR_NEG");
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

/* test_scores - score sets, defaults, relative scores, score 0 */
static void
test_scores(void **state)
{
	static const char rules[] =
	    "body S_ONE /a/\n"
	    "score S_ONE 2.5\n"
	    "score S_FOUR 0.1 0.2 0.3 0.4\n"
	    "body S_FOUR /a/\n"
	    "body S_DEFAULT /a/\n"
	    "body T_TESTING /a/\n"
	    "body S_NICE /a/\n"
	    "tflags S_NICE nice\n"
	    "body S_ZERO /a/\n"
	    "score S_ZERO 0\n"
	    "body S_REL /a/\n"
	    "score S_REL 1\n"
	    "score S_REL (0.5)\n"
	    "score BAYES_99 0 0 3.5 3.6 # Bayes part's rule\n"
	    "header RCVD_IN_X eval:check_rbl('x', 'x.example.')\n"
	    "tflags RCVD_IN_X net\n"
	    "score RCVD_IN_X 0 2.5 0 1.7\n"
	    "describe S_ONE Scores two and a half\n";
	static const struct {
		const char	*name;
		double		 want;
	} want[] = {
		{ "S_ONE", 2.5 }, { "S_FOUR", 0.3 }, { "S_DEFAULT", 1.0 },
		{ "T_TESTING", 0.01 }, { "S_NICE", -1.0 }, { "S_ZERO", 0 },
		{ "S_REL", 1.5 }, { "BAYES_99", 3.5 }, { "RCVD_IN_X", 1.7 },
	};
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct spam_score	 s;
	struct test_msg		*t;
	char			 path[64];
	double			 v;
	size_t			 i;

	(void)state;
	rs = test_load(rules, &rep, path, sizeof(path));
	assert_int_equal(rep.errors, 0);
	assert_int_equal(rep.loaded, 6);
	assert_int_equal(test_reason(rs, "disabled by score 0"), 1);
	for (i = 0; i < TG_NITEMS(want); i++) {
		assert_true(spam_rules_score(rs, want[i].name, &v));
		assert_true(v > want[i].want - 1e-9 && v < want[i].want + 1e-9);
	}
	assert_false(spam_rules_score(rs, "NO_SUCH", &v));
	t = test_msg_make(NULL, "a", NULL, NULL);
	spam_score_init(&s);
	spam_rules_run(rs, &t->m, &s);
	assert_int_equal(s.nhits, 6);
	assert_true(s.total > 4.31 - 1e-9 && s.total < 4.31 + 1e-9);
	assert_string_equal(s.hits[0].describe, "Scores two and a half");
	spam_score_fini(&s);
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

/* test_evals - the native eval: functions */
static void
test_evals(void **state)
{
	static const char rules[] =
	    "header E_MISSING_TO eval:check_for_missing_to_header()\n"
	    "header E_CAPS eval:subject_is_all_caps()\n"
	    "header E_TWO_SUBJ eval:check_header_count_range('Subject','2','999')\n"
	    "header E_PAST eval:check_for_shifted_date('-12', '-6')\n"
	    "header E_FUTURE eval:check_for_shifted_date('6', '12')\n"
	    "header E_ILLEGAL eval:check_illegal_chars('Subject','0.00','2')\n"
	    "header E_TEMPLATE eval:check_unresolved_template()\n"
	    "header E_TO_USER eval:check_for_to_in_subject('user')\n"
	    "body E_SHORT eval:check_body_length('10')\n"
	    "body E_NOSEP eval:check_msg_parse_flags('missing_head_body_separator')\n";
	static const char *const spam[] = {
	    "Received: by mx.example; Tue, 1 Jan 2002 20:00:00 +0000",
	    "Date: Tue, 1 Jan 2002 12:00:00 +0000",
	    "Subject: FREE MONEY FOR \xc3\xa9\xc3\xa9 YOU",
	    "Subject: SECOND ONE",
	    "X-Campaign: %RND_NUMBER",
	    NULL };
	static const char *const ham[] = {
	    "Received: by mx.example; Tue, 1 Jan 2002 13:00:00 +0100",
	    "Date: Tue, 01 Jan 2002 12:00:00 GMT",
	    "To: Carol <carol@example.org>",
	    "Subject: carol, Lunch today?",
	    NULL };
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct test_msg		*t;
	char			 path[64];

	(void)state;
	rs = test_load(rules, &rep, path, sizeof(path));
	assert_int_equal(rep.errors, 0);
	assert_int_equal(rep.loaded, 10);
	t = test_msg_make(spam, "short", NULL, NULL);
	EXPECT_HITS(rs, t, "E_MISSING_TO E_CAPS E_TWO_SUBJ E_PAST E_ILLEGAL "
	    "E_TEMPLATE E_SHORT");
	test_msg_free(t);
	t = test_msg_make(ham, "a longer body than ten bytes", NULL, NULL);
	EXPECT_HITS(rs, t, "E_TO_USER");
	/* no blank line after the headers */
	t->m.full = "Subject: x\r\nno separator";
	t->m.full_len = strlen(t->m.full);
	EXPECT_HITS(rs, t, "E_TO_USER E_SHORT E_NOSEP");
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

/* test_evals_more - ratware and Outlook Message-Ids, capitals, blank
 * lines */
static void
test_evals_more(void **state)
{
	static const char rules[] =
	    "header E_RATWARE eval:check_ratware_name_id()\n"
	    "header E_OUTLOOK eval:check_outlook_message_id()\n"
	    "body E_UPPER eval:check_for_uppercase('50', '100')\n"
	    "body E_BLANK eval:check_blank_line_ratio('50','100','4')\n"
	    "body E_HTML eval:check_for_mime_html()\n"
	    "body E_HTML_ONLY eval:check_for_mime_html_only()\n";
	static const char *const forged[] = {
	    "Date: Tue, 1 Jan 2002 12:00:00 +0000",
	    "Received: by mx.example; Tue, 1 Jan 2002 12:00:05 +0000",
	    "Message-Id: <0000000000aa$00000000$00000000@pc>",
	    NULL };
	/* the token Outlook writes for 2002-01-01 12:00:00 UTC: 01c192bb */
	static const char *const real[] = {
	    "Date: Tue, 1 Jan 2002 12:00:00 +0000",
	    "Message-Id: <000001c192bb$00000000$00000000@pc>",
	    NULL };
	static const char *const ratware[] = {
	    "Message-Id: <ABCDEFGHIJKLMNOPQRSTUVWXYZAB.bob@mail.example>",
	    "From: \"Bob\" <bob@mail.example>",
	    NULL };
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct test_msg		*t;
	struct tg_buf		 caps;
	char			 path[64];
	int			 i;

	(void)state;
	struct spam_part	 alt[2] = { { .type = "text/plain" },
	    { .type = "text/html" } };

	rs = test_load(rules, &rep, path, sizeof(path));
	assert_int_equal(rep.loaded, 6);
	tg_buf_init(&caps);
	for (i = 0; i < 8; i++)
		tg_buf_puts(&caps, "BUY THE BEST PRODUCT NOW AT LOW PRICES\n");
	t = test_msg_make(forged, caps.data, "a\n\n\n\n\n\nb\n", NULL);
	EXPECT_HITS(rs, t, "E_OUTLOOK E_UPPER E_BLANK");
	test_msg_free(t);
	t = test_msg_make(real, "Some Words In Title Case but mostly not "
	    "capitals at all, as ordinary mail is written by people.", NULL,
	    NULL);
	EXPECT_HITS(rs, t, "");
	test_msg_free(t);
	t = test_msg_make(ratware, "x", NULL, NULL);
	EXPECT_HITS(rs, t, "E_RATWARE");
	/* multipart/alternative: HTML, not HTML only; then HTML only */
	t->m.parts = alt;
	t->m.nparts = 2;
	EXPECT_HITS(rs, t, "E_RATWARE E_HTML");
	t->m.parts = alt + 1;
	t->m.nparts = 1;
	EXPECT_HITS(rs, t, "E_RATWARE E_HTML E_HTML_ONLY");
	t->m.parts = NULL;
	t->m.nparts = 0;
	test_msg_free(t);
	/* capitals in a charset that has no case: not counted */
	t = test_msg_make(NULL, caps.data, NULL, NULL);
	{
		struct spam_part	part = { .type = "text/plain",
		    .charset = "iso-2022-jp" };

		t->m.parts = &part;
		t->m.nparts = 1;
		EXPECT_HITS(rs, t, "");
		t->m.parts = NULL;
		t->m.nparts = 0;
	}
	test_msg_free(t);
	tg_buf_fini(&caps);
	(void)spam_rules_free(rs);
}

/* test_hostile - deep nesting, catastrophic regexes, empty input */
static void
test_hostile(void **state)
{
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct spam_score	 s;
	struct test_msg		*t;
	struct tg_buf		 b;
	char			 path[64];
	size_t			 i;

	(void)state;
	tg_buf_init(&b);
	tg_buf_puts(&b, "body __A /a/\nmeta DEEP ");
	for (i = 0; i < 1000; i++)
		tg_buf_putc(&b, '(');
	tg_buf_puts(&b, "__A\nbody SLOW /(a+)+$/\n");
	rs = test_load(b.data, &rep, path, sizeof(path));
	tg_buf_fini(&b);
	assert_true(test_has_error(rs, "DEEP", "too deep"));
	t = test_msg_make(NULL, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
	    NULL, NULL);
	spam_score_init(&s);
	spam_rules_run(rs, &t->m, &s);
	assert_true(s.partial);
	assert_int_equal(s.nhits, 0);
	spam_score_fini(&s);
	test_msg_free(t);
	/* an empty message: nothing to match, nothing breaks */
	t = test_msg_make(NULL, NULL, NULL, NULL);
	t->m.full = NULL;
	t->m.full_len = 0;
	EXPECT_HITS(rs, t, "");
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

/* test_shipped - our own rule set loads whole, and scores a spam */
static void
test_shipped(void **state)
{
	static const char *const hdrs[] = {
	    "From: offers12345@deals.example",
	    "Subject: ADV: Lowest mortgage rates!!!",
	    NULL };
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct spam_score	 s;
	struct test_msg		*t;
	struct tg_err		 err;

	(void)state;
	assert_int_equal(spam_rules_load(&rs, TG_SRCDIR "/conf.d/spam", &rep,
	    &err), TG_OK);
	assert_int_equal(rep.errors, 0);
	assert_int_equal(rep.skipped, 0);
	assert_true(rep.loaded >= 30);
	t = test_msg_make(hdrs, "Refinance now and eliminate your debt.\n"
	    "No obligation, act now!\nTo be removed from our list, reply "
	    "with REMOVE in the subject.", NULL, NULL);
	spam_score_init(&s);
	spam_rules_run(rs, &t->m, &s);
	assert_true(spam_score_has(&s, "TG_SUBJ_ADV"));
	assert_true(spam_score_has(&s, "TG_SALES_PITCH"));
	assert_true(s.total >= 5);
	spam_score_fini(&s);
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

/* test_mangled - Debian's rules cut in the middle of every line, and
 * with every line's last character doubled: refusals, no crash */
static void
test_mangled(void **state)
{
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct tg_buf		 cut, dbl;
	struct tg_err		 err;
	const char		*file = "/usr/share/spamassassin/72_active.cf";
	char			*text, *p, *nl, path[64];
	size_t			 len, l;

	(void)state;
	if (tg_read_file(file, &text, &len, &err) != TG_OK) {
		print_message("skipped: %s\n", err.text);
		skip();
	}
	tg_buf_init(&cut);
	tg_buf_init(&dbl);
	for (p = text; p < text + len; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(text + len - p))) == NULL)
			nl = text + len;
		l = (size_t)(nl - p);
		tg_buf_append(&cut, p, l / 2);
		tg_buf_putc(&cut, '\n');
		tg_buf_append(&dbl, p, l);
		if (l > 0)
			tg_buf_putc(&dbl, p[l - 1]);
		tg_buf_putc(&dbl, '\n');
	}
	free(text);
	rs = test_load(cut.data, &rep, path, sizeof(path));
	print_message("cut lines: loaded %zu skipped %zu errors %zu\n",
	    rep.loaded, rep.skipped, rep.errors);
	assert_true(rep.errors > 100);
	(void)spam_rules_free(rs);
	rs = test_load(dbl.data, &rep, path, sizeof(path));
	print_message("doubled ends: loaded %zu skipped %zu errors %zu\n",
	    rep.loaded, rep.skipped, rep.errors);
	assert_true(rep.loaded > 0);
	(void)spam_rules_free(rs);
	tg_buf_fini(&cut);
	tg_buf_fini(&dbl);
}

/* test_debian - Debian's spamassassin rules, when installed, load
 * without crashing, in sane numbers, and run */
static void
test_debian(void **state)
{
	static const char *const hdrs[] = {
	    "Received: from mail.example (mail.example [192.0.2.1]) by "
	    "mx.example.org; Tue, 1 Jan 2002 12:00:00 +0000",
	    "From: \"Best Deals\" <deals@offers.example>",
	    "To: undisclosed-recipients:;",
	    "Subject: LOWEST PRICES ON VIAGRA - ORDER NOW",
	    "Date: Tue, 1 Jan 2002 11:58:00 +0000",
	    "Message-Id: <abc123@offers.example>",
	    "MIME-Version: 1.0",
	    "Content-Type: text/html",
	    NULL };
	static const char *const uris[] = { "http://offers.example/buy",
	    NULL };
	struct spam_rules_report rep;
	struct spam_rules	*rs;
	struct spam_score	 s;
	struct test_msg		*t;
	struct tg_err		 err;
	const char		*dir = "/usr/share/spamassassin";
	char			*got, *want;

	(void)state;
	if (access(dir, R_OK) != 0) {
		print_message("skipped: %s absent (Debian package "
		    "spamassassin not installed)\n", dir);
		skip();
	}
	assert_int_equal(spam_rules_load(&rs, dir, &rep, &err), TG_OK);
	print_message("debian rules: loaded %zu skipped %zu errors %zu "
	    "ignored settings %zu\n", rep.loaded, rep.skipped, rep.errors,
	    spam_rules_ignored(rs));
	assert_true(rep.loaded > 1000);
	assert_true(rep.errors * 50 < rep.loaded);
	assert_true(rep.skipped < rep.loaded);
	t = test_msg_make(hdrs, "LOWEST PRICES ON VIAGRA - ORDER NOW\n"
	    "Click here to order viagra online without a prescription!\n"
	    "Limited time offer, act now. To be removed from our list "
	    "click here.", "<html><body><font color=red>Click here</font>"
	    "</body></html>", uris);
	spam_score_init(&s);
	spam_rules_run(rs, &t->m, &s);
	print_message("debian rules on a sample spam: %zu hits, %.2f "
	    "points\n", s.nhits, s.total);
	assert_true(s.nhits >= 3);
	assert_true(s.total > 3);
	/* the literal prefilter changes no result */
	got = test_hits(rs, t);
	rs->prefilter_off = true;
	want = test_hits(rs, t);
	rs->prefilter_off = false;
	assert_string_equal(got, want);
	free(got);
	free(want);
	spam_score_fini(&s);
	test_msg_free(t);
	(void)spam_rules_free(rs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_missing_path),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_multiple),
		cmocka_unit_test(test_if_blocks),
		cmocka_unit_test(test_regex),
		cmocka_unit_test(test_utf),
		cmocka_unit_test(test_replace_tags),
		cmocka_unit_test(test_prefilter),
		cmocka_unit_test(test_scores),
		cmocka_unit_test(test_evals),
		cmocka_unit_test(test_evals_more),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_shipped),
		cmocka_unit_test(test_mangled),
		cmocka_unit_test(test_debian),
	};

	tg_log_open("spam_rules_test", true);
	tg_log_set_level(TG_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
