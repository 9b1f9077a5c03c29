# The pipeline (shared by tollgate-milter and tollgatectl) and the daemon.
noinst_LIBRARIES += milters/pipeline/libtg_pipeline.a
milters_pipeline_libtg_pipeline_a_SOURCES = \
	milters/pipeline/ctx.c milters/pipeline/stage.c \
	milters/pipeline/registry.c milters/pipeline/scan.c milters/pipeline/args.c \
	milters/pipeline/pipeline_int.h include/tollgate/pipeline.h
# Static libraries in link order: a module after the ones that use it.
TG_PIPELINE_LIBS = milters/pipeline/libtg_pipeline.a $(TG_POLICYD_LIBS) \
	$(TG_RATELIMIT_LIBS) \
	$(TG_SPAM_LIBS) $(TG_DMARC_LIBS) \
	$(TG_DMARC_REPORT_LIBS) $(TG_SPF_LIBS) $(TG_DKIM_LIBS) $(TG_CORE_LIBS)

sbin_PROGRAMS += milters/pipeline/tollgate-milter
milters_pipeline_tollgate_milter_SOURCES = milters/pipeline/milter.c
milters_pipeline_tollgate_milter_CFLAGS = $(AM_CFLAGS) $(MILTER_CFLAGS)
milters_pipeline_tollgate_milter_LDADD = $(TG_PIPELINE_LIBS) $(MILTER_LIBS)

check_PROGRAMS += milters/pipeline/pipeline_test
TESTS += milters/pipeline/pipeline_test
milters_pipeline_pipeline_test_SOURCES = milters/pipeline/pipeline_test.c
milters_pipeline_pipeline_test_CFLAGS = $(TG_TEST_CFLAGS)
milters_pipeline_pipeline_test_LDADD = $(TG_PIPELINE_LIBS) $(CMOCKA_LIBS)
