# The spam-scoring module (GMime for MIME, PCRE2 for rules, Bayes in
# the store), linked into tollgate-milter and tollgatectl through
# TG_SPAM_LIBS.
noinst_LIBRARIES += milters/spam/libtg_spam.a
milters_spam_libtg_spam_a_SOURCES = \
	milters/spam/spam_score.c \
	milters/spam/spam_int.h
milters_spam_libtg_spam_a_CFLAGS = $(AM_CFLAGS) $(GMIME_CFLAGS) $(PCRE2_CFLAGS)
TG_SPAM_LIBS = milters/spam/libtg_spam.a $(GMIME_LIBS) $(PCRE2_LIBS)
