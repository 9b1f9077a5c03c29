# tollgate-policyd: the Postfix policy-delegation server.  Its codec,
# check registry and checks are a library: the pipeline's registry lists
# their config sections (one conf.d for both daemons), and the unit
# tests link them without the daemon.
noinst_LIBRARIES += policyd/libtg_policyd.a
policyd_libtg_policyd_a_SOURCES = \
	policyd/policyd_proto.c policyd/policyd_check.c policyd/greylist.c \
	policyd/quota.c \
	include/tollgate/policyd.h
TG_POLICYD_LIBS = policyd/libtg_policyd.a

sbin_PROGRAMS += policyd/tollgate-policyd
policyd_tollgate_policyd_SOURCES = policyd/policyd.c
policyd_tollgate_policyd_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
# The registry (config sections) pulls in the modules, and they the
# pipeline's ctx.o, which nothing before them asked for: list it again.
policyd_tollgate_policyd_LDADD = $(TG_PIPELINE_LIBS) \
	milters/pipeline/libtg_pipeline.a $(TG_PIPELINE_LIBS)

check_PROGRAMS += policyd/policyd_proto_test policyd/greylist_test
TESTS += policyd/policyd_proto_test policyd/greylist_test
policyd_policyd_proto_test_SOURCES = policyd/policyd_proto_test.c
policyd_policyd_proto_test_CFLAGS = $(TG_TEST_CFLAGS)
policyd_policyd_proto_test_LDADD = $(TG_POLICYD_LIBS) $(TG_CORE_LIBS) \
	$(CMOCKA_LIBS)
policyd_greylist_test_SOURCES = policyd/greylist_test.c policyd/pd_test.h
policyd_greylist_test_CFLAGS = $(TG_TEST_CFLAGS)
policyd_greylist_test_LDADD = $(TG_TEST_LIBS) $(TG_PIPELINE_LIBS) \
	milters/pipeline/libtg_pipeline.a $(TG_PIPELINE_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += policyd/quota_test
TESTS += policyd/quota_test
policyd_quota_test_SOURCES = policyd/quota_test.c policyd/pd_test.h
policyd_quota_test_CFLAGS = $(TG_TEST_CFLAGS)
policyd_quota_test_LDADD = $(TG_TEST_LIBS) $(TG_PIPELINE_LIBS) \
	milters/pipeline/libtg_pipeline.a $(TG_PIPELINE_LIBS) $(CMOCKA_LIBS)
