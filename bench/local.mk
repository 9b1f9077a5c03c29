# Load drivers and a trivial milter for benchmarks (bench/README.md).
# Built with everything else so they stay -Werror clean; bench/run, the
# benchmark itself, is not part of make check.
noinst_PROGRAMS += bench/milterload bench/nullmilter bench/policyload
bench_milterload_SOURCES = bench/milterload.c bench/milterload_corpus.c \
	bench/milterload.h bench/loadstat.c bench/loadstat.h
bench_milterload_LDADD = $(TG_CORE_LIBS)
bench_nullmilter_SOURCES = bench/nullmilter.c
bench_nullmilter_CFLAGS = $(AM_CFLAGS) $(MILTER_CFLAGS)
bench_nullmilter_LDADD = $(MILTER_LIBS)
bench_policyload_SOURCES = bench/policyload.c bench/loadstat.c \
	bench/loadstat.h
bench_policyload_LDADD = $(TG_CORE_LIBS)

# The drivers tested by driving nullmilter and tollgate-milter briefly.
TESTS += bench/drivers.test
EXTRA_DIST += bench/drivers.test bench/run bench/postfix_e2e \
	bench/README.md bench/mkcorpus
