# The DMARC module (libopendmarc), linked into tollgate-milter and
# tollgatectl through TG_DMARC_LIBS, and its unit tests.
noinst_LIBRARIES += milters/dmarc/libtg_dmarc.a
milters_dmarc_libtg_dmarc_a_SOURCES = \
	milters/dmarc/dmarc.c milters/dmarc/dmarc_from.c \
	milters/dmarc/dmarc_policy.c milters/dmarc/dmarc_lib.c \
	milters/dmarc/dmarc_int.h milters/dmarc/dmarc_lib.h \
	include/tollgate/dmarc.h
TG_DMARC_LIBS = milters/dmarc/libtg_dmarc.a $(OPENDMARC_LIBS)

# dmarc_test: whole messages through the real pipeline (spf dkim dmarc)
# on local zone data, the From: parser, the tree walk, and the shared
# rspamd and OpenDMARC vectors in TG_TESTDATA.
check_PROGRAMS += milters/dmarc/dmarc_test
TESTS += milters/dmarc/dmarc_test
milters_dmarc_dmarc_test_SOURCES = milters/dmarc/dmarc_test.c \
	milters/dmarc/dmarc_test_corpus.c milters/dmarc/dmarc_test.h
milters_dmarc_dmarc_test_CFLAGS = $(TG_TEST_CFLAGS) $(CRYPTO_CFLAGS)
milters_dmarc_dmarc_test_LDADD = $(TG_TEST_LIBS) $(TG_PIPELINE_LIBS) \
	$(CRYPTO_LIBS) $(CMOCKA_LIBS)

EXTRA_DIST += milters/dmarc/fuzz/dmarc_fuzz.c \
	milters/dmarc/fuzz/corpus/from1 milters/dmarc/fuzz/corpus/from2

# libFuzzer target over the From: parser; needs clang, not run by make
# check or CI.  "make dmarc-fuzz", then for example
#   milters/dmarc/fuzz/dmarc_fuzz -max_total_time=60 \
#       $(srcdir)/milters/dmarc/fuzz/corpus
TG_DMARC_FUZZ_CC = clang
TG_DMARC_FUZZ_SRCS = \
	$(srcdir)/lib/util.c $(srcdir)/lib/buf.c $(srcdir)/lib/log.c \
	$(srcdir)/milters/dmarc/dmarc_from.c \
	$(srcdir)/milters/dmarc/fuzz/dmarc_fuzz.c
milters/dmarc/fuzz/dmarc_fuzz: $(TG_DMARC_FUZZ_SRCS) \
    $(srcdir)/milters/dmarc/dmarc_int.h
	@$(MKDIR_P) milters/dmarc/fuzz
	$(TG_DMARC_FUZZ_CC) -std=gnu11 -g -O1 \
	    -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all -I$(top_srcdir)/include \
	    -I$(top_builddir) -o $@ $(TG_DMARC_FUZZ_SRCS)
dmarc-fuzz: milters/dmarc/fuzz/dmarc_fuzz
.PHONY: dmarc-fuzz
CLEANFILES += milters/dmarc/fuzz/dmarc_fuzz
