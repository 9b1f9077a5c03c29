# The spam-scoring module (GMime for MIME, PCRE2 for rules, Bayes in
# the store), linked into tollgate-milter and tollgatectl through
# TG_SPAM_LIBS.
noinst_LIBRARIES += milters/spam/libtg_spam.a
milters_spam_libtg_spam_a_SOURCES = \
	milters/spam/spam_score.c milters/spam/spam_mime.c \
	milters/spam/spam.c milters/spam/spam_dnsbl.c \
	milters/spam/spam_rules.c milters/spam/spam_rules_re.c \
	milters/spam/spam_rules_expr.c milters/spam/spam_rules_run.c \
	milters/spam/spam_rules_eval.c milters/spam/spam_rules_tags.c \
	milters/spam/spam_rules_parse.c \
	milters/spam/spam_rules_int.h \
	milters/spam/spam_bayes.c milters/spam/spam_bayes_tok.c \
	milters/spam/spam_bayes_int.h \
	milters/spam/spam_int.h include/tollgate/spam.h
milters_spam_libtg_spam_a_CFLAGS = $(AM_CFLAGS) $(GMIME_CFLAGS) $(PCRE2_CFLAGS) \
	$(CRYPTO_CFLAGS) $(LIBXML2_CFLAGS)
TG_SPAM_LIBS = milters/spam/libtg_spam.a $(GMIME_LIBS) $(PCRE2_LIBS) \
	$(CRYPTO_LIBS) $(LIBXML2_LIBS) -lm

# spam_rules_test: the rule engine alone (parser, regexes, metas, evals,
# Debian's rule set when installed).
check_PROGRAMS += milters/spam/spam_rules_test
TESTS += milters/spam/spam_rules_test
milters_spam_spam_rules_test_SOURCES = milters/spam/spam_rules_test.c
milters_spam_spam_rules_test_CFLAGS = $(TG_TEST_CFLAGS) $(PCRE2_CFLAGS)
milters_spam_spam_rules_test_LDADD = $(TG_SPAM_LIBS) $(TG_CORE_LIBS) \
	$(CMOCKA_LIBS)

# bench/spam_rules_bench: rule timing and per-rule corpus hits (built
# with make check, run by hand; see bench/RESULTS.md).
check_PROGRAMS += bench/spam_rules_bench
bench_spam_rules_bench_SOURCES = bench/spam_rules_bench.c
bench_spam_rules_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/milters/spam
bench_spam_rules_bench_CFLAGS = $(AM_CFLAGS) $(PCRE2_CFLAGS)
bench_spam_rules_bench_LDADD = $(TG_SPAM_LIBS) $(TG_CORE_LIBS)

# spam_bayes_test: the tokenizer, the arithmetic, learn/forget/relearn
# on the embedded store and on a real redis-server.
check_PROGRAMS += milters/spam/spam_bayes_test
TESTS += milters/spam/spam_bayes_test
milters_spam_spam_bayes_test_SOURCES = milters/spam/spam_bayes_test.c
milters_spam_spam_bayes_test_CFLAGS = $(TG_TEST_CFLAGS)
milters_spam_spam_bayes_test_LDADD = $(TG_TEST_LIBS) $(TG_SPAM_LIBS) $(TG_CORE_LIBS) \
	$(CMOCKA_LIBS)

# tollgate's own SpamAssassin-syntax rules, installed beside conf.d/ as
# conf.d/spam/ (the [spam] rules setting names the directory).
spamrulesdir = $(pkgsysconfdir)/spam
dist_spamrules_DATA = conf.d/spam/50_tollgate.cf

# spam_bayes_accuracy: train on a corpus part, score the rest (run by
# tests/integration/spam_accuracy.test and bench/spam_accuracy).
check_PROGRAMS += milters/spam/spam_bayes_accuracy
milters_spam_spam_bayes_accuracy_SOURCES = milters/spam/spam_bayes_accuracy.c
milters_spam_spam_bayes_accuracy_CFLAGS = $(AM_CFLAGS) $(GMIME_CFLAGS)
milters_spam_spam_bayes_accuracy_LDADD = $(TG_SPAM_LIBS) $(TG_CORE_LIBS)

# spam_mime_test: MIME extraction (nesting, broken base64, charsets,
# huge lines, RFC 2047, HTML, URIs, limits).
check_PROGRAMS += milters/spam/spam_mime_test
TESTS += milters/spam/spam_mime_test
milters_spam_spam_mime_test_SOURCES = milters/spam/spam_mime_test.c
milters_spam_spam_mime_test_CFLAGS = $(TG_TEST_CFLAGS) $(GMIME_CFLAGS)
milters_spam_spam_mime_test_LDADD = $(TG_SPAM_LIBS) $(TG_CORE_LIBS) \
	$(CMOCKA_LIBS)

# spam_test: the module through the real pipeline (rules file, local
# zone data for the DNSBLs, thresholds, X-Spam-* headers).
check_PROGRAMS += milters/spam/spam_test
TESTS += milters/spam/spam_test
milters_spam_spam_test_SOURCES = milters/spam/spam_test.c
milters_spam_spam_test_CFLAGS = $(TG_TEST_CFLAGS)
milters_spam_spam_test_LDADD = $(TG_TEST_LIBS) $(TG_PIPELINE_LIBS) \
	$(CMOCKA_LIBS)
