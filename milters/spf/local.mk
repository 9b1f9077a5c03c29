# The SPF module and its two engines: the native RFC 7208 check_host()
# and libspf2 on our resolver, linked into tollgate-milter and
# tollgatectl through TG_SPF_LIBS; with their unit tests and the openspf
# conformance suites (testdata/, converted from the shared YAML by
# convert.py).
noinst_LIBRARIES += milters/spf/libtg_spf.a
milters_spf_libtg_spf_a_SOURCES = \
	milters/spf/spf.c milters/spf/spf_report.c milters/spf/spf_cache.c \
	milters/spf/spf_engine.c milters/spf/spf_libspf2.c \
	milters/spf/spf_eval.c milters/spf/spf_mech.c milters/spf/spf_record.c \
	milters/spf/spf_macro.c milters/spf/spf_int.h milters/spf/spf_check.h \
	include/tollgate/spf.h
TG_SPF_LIBS = milters/spf/libtg_spf.a $(SPF2_LIBS)

check_PROGRAMS += milters/spf/spf_eval_test milters/spf/spf_suite_test \
	milters/spf/spf_test
TESTS += milters/spf/spf_eval_test milters/spf/spf_suite_test \
	milters/spf/spf_test
milters_spf_spf_eval_test_SOURCES = milters/spf/spf_eval_test.c
milters_spf_spf_eval_test_CFLAGS = $(TG_TEST_CFLAGS)
milters_spf_spf_eval_test_LDADD = $(TG_SPF_LIBS) $(TG_CORE_LIBS) \
	$(CMOCKA_LIBS)
milters_spf_spf_suite_test_SOURCES = milters/spf/spf_suite_test.c
milters_spf_spf_suite_test_CFLAGS = $(TG_TEST_CFLAGS)
milters_spf_spf_suite_test_LDADD = $(TG_SPF_LIBS) $(TG_CORE_LIBS)
# spf_test: the module through the real pipeline, on local zone data.
milters_spf_spf_test_SOURCES = milters/spf/spf_test.c
milters_spf_spf_test_CFLAGS = $(TG_TEST_CFLAGS)
milters_spf_spf_test_LDADD = $(TG_TEST_LIBS) $(TG_PIPELINE_LIBS) \
	$(CMOCKA_LIBS)

TG_SPF_FIXTURES = \
	milters/spf/testdata/rfc7208-tests.txt \
	milters/spf/testdata/rfc4408-tests.txt \
	milters/spf/testdata/test.txt
EXTRA_DIST += $(TG_SPF_FIXTURES) \
	milters/spf/testdata/convert.py \
	milters/spf/testdata/SOURCE.md \
	milters/spf/testdata/rfc7208-tests.LICENSE \
	milters/spf/testdata/rfc4408-tests.LICENSE \
	milters/spf/fuzz/spf_fuzz.c \
	milters/spf/fuzz/corpus/rec1 milters/spf/fuzz/corpus/rec2 \
	milters/spf/fuzz/corpus/rec3 milters/spf/fuzz/corpus/macro1

# libFuzzer target over record text and macro expansion; needs clang, not
# run by make check or CI.  "make spf-fuzz", then for example
#   milters/spf/fuzz/spf_fuzz -max_total_time=60 \
#       $(srcdir)/milters/spf/fuzz/corpus
TG_SPF_FUZZ_CC = clang
TG_SPF_FUZZ_SRCS = \
	$(srcdir)/lib/util.c $(srcdir)/lib/buf.c $(srcdir)/lib/log.c \
	$(srcdir)/milters/spf/spf_record.c $(srcdir)/milters/spf/spf_macro.c \
	$(srcdir)/milters/spf/fuzz/spf_fuzz.c
milters/spf/fuzz/spf_fuzz: $(TG_SPF_FUZZ_SRCS) \
    $(srcdir)/milters/spf/spf_int.h
	@$(MKDIR_P) milters/spf/fuzz
	$(TG_SPF_FUZZ_CC) -std=gnu11 -g -O1 \
	    -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all -I$(top_srcdir)/include \
	    -I$(top_builddir) -o $@ $(TG_SPF_FUZZ_SRCS)
spf-fuzz: milters/spf/fuzz/spf_fuzz
.PHONY: spf-fuzz
CLEANFILES += milters/spf/fuzz/spf_fuzz
