# The ratelimit module, linked into tollgate-milter and tollgatectl
# through TG_RATELIMIT_LIBS; the quota rules it enforces are in
# libtollgate (lib/quota*.c), shared with tollgate-policyd.
noinst_LIBRARIES += milters/ratelimit/libtg_ratelimit.a
milters_ratelimit_libtg_ratelimit_a_SOURCES = \
	milters/ratelimit/ratelimit.c include/tollgate/ratelimit.h
TG_RATELIMIT_LIBS = milters/ratelimit/libtg_ratelimit.a

# ratelimit_test: the rules parser, the tenant table's precedence, and
# whole messages through the real pipeline on an embedded store.
check_PROGRAMS += milters/ratelimit/ratelimit_test
TESTS += milters/ratelimit/ratelimit_test
milters_ratelimit_ratelimit_test_SOURCES = milters/ratelimit/ratelimit_test.c
# The case table leaves a step's trailing fields (how it ends, a
# recipient list) out when they are the default.
milters_ratelimit_ratelimit_test_CFLAGS = $(TG_TEST_CFLAGS) \
	-Wno-missing-field-initializers
milters_ratelimit_ratelimit_test_LDADD = $(TG_TEST_LIBS) $(TG_PIPELINE_LIBS) \
	$(CMOCKA_LIBS)
