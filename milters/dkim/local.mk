# The DKIM module (libopendkim), linked into tollgate-milter and
# tollgatectl through TG_DKIM_LIBS, and its unit tests.
noinst_LIBRARIES += milters/dkim/libtg_dkim.a
milters_dkim_libtg_dkim_a_SOURCES = \
	milters/dkim/dkim.c milters/dkim/dkim_sign.c \
	milters/dkim/dkim_verify.c milters/dkim/dkim_resolver.c \
	milters/dkim/dkim_prefetch.c \
	milters/dkim/dkim_table.c milters/dkim/dkim_keys.c \
	milters/dkim/dkim_keycache.c milters/dkim/dkim_mem.c \
	milters/dkim/dkim_addr.c milters/dkim/dkim_map.c \
	milters/dkim/dkim_int.h include/tollgate/dkim.h
milters_dkim_libtg_dkim_a_CFLAGS = $(AM_CFLAGS) $(OPENDKIM_CFLAGS) \
	$(CRYPTO_CFLAGS)
TG_DKIM_LIBS = milters/dkim/libtg_dkim.a $(OPENDKIM_LIBS) $(CRYPTO_LIBS)

# dkim_test: tables, keys, the DNS glue, and whole messages through the
# real pipeline (sign, verify, RFC 8463, dkimpy and Mail::DKIM corpora).
check_PROGRAMS += milters/dkim/dkim_test
TESTS += milters/dkim/dkim_test
milters_dkim_dkim_test_SOURCES = milters/dkim/dkim_test.c \
	milters/dkim/dkim_test_util.c milters/dkim/dkim_test_tables.c \
	milters/dkim/dkim_test_corpus.c milters/dkim/dkim_test.h
milters_dkim_dkim_test_CFLAGS = $(TG_TEST_CFLAGS) $(OPENDKIM_CFLAGS) \
	$(CRYPTO_CFLAGS)
milters_dkim_dkim_test_LDADD = $(TG_TEST_LIBS) $(TG_PIPELINE_LIBS) \
	$(CMOCKA_LIBS)

# dkim_bench: start-up time of large key and signing tables; built by
# make check, run by hand (see its header).
check_PROGRAMS += milters/dkim/dkim_bench
milters_dkim_dkim_bench_SOURCES = milters/dkim/dkim_bench.c
milters_dkim_dkim_bench_CFLAGS = $(AM_CFLAGS) $(OPENDKIM_CFLAGS) \
	$(CRYPTO_CFLAGS)
milters_dkim_dkim_bench_LDADD = $(TG_DKIM_LIBS) $(TG_CORE_LIBS)
