# libtollgate: the core every program links.
noinst_LIBRARIES += lib/libtollgate.a
lib_libtollgate_a_SOURCES = \
	lib/util.c lib/buf.c lib/log.c lib/conf.c lib/netlist.c \
	lib/dns.c lib/authres.c lib/daemon.c include/tollgate/daemon.h \
	lib/store.c lib/store_lmdb.c lib/store_redis.c lib/store_redis_async.c \
	lib/store_redis_lua.c lib/store_redis_scan.c lib/store_kv.c \
	lib/store_async.c \
	lib/store_int.h lib/store_redis_int.h \
	include/tollgate/store.h \
	lib/quota.c lib/quota_charge.c lib/quota_int.h include/tollgate/quota.h \
	lib/metrics.c include/tollgate/metrics.h \
	lib/handover.c include/tollgate/handover.h \
	include/tollgate/util.h include/tollgate/buf.h include/tollgate/log.h \
	include/tollgate/conf.h include/tollgate/dns.h \
	include/tollgate/authres.h include/tollgate/module.h
lib_libtollgate_a_CFLAGS = $(AM_CFLAGS) $(UNBOUND_CFLAGS) $(LMDB_CFLAGS) \
	$(HIREDIS_CFLAGS) $(LIBEVENT_CFLAGS) $(MHD_CFLAGS)
TG_CORE_LIBS = lib/libtollgate.a $(UNBOUND_LIBS) $(LMDB_LIBS) $(HIREDIS_LIBS) \
	$(LIBEVENT_LIBS) $(MHD_LIBS)

# Unit tests beside the code (cmocka).
TG_TEST_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) -I$(top_srcdir)/tests/lib \
	-DTG_SRCDIR='"$(abs_top_srcdir)"' -DTG_BUILDDIR='"$(abs_top_builddir)"' \
	-DTG_TESTDATA='"$(TG_TESTDATA)"'
check_PROGRAMS += lib/util_test lib/conf_test lib/dns_test lib/authres_test \
	lib/store_test lib/log_test lib/metrics_test
TESTS += lib/util_test lib/conf_test lib/dns_test lib/authres_test \
	lib/store_test lib/log_test lib/metrics_test
lib_log_test_SOURCES = lib/log_test.c
lib_log_test_CFLAGS = $(TG_TEST_CFLAGS)
lib_log_test_LDADD = $(TG_CORE_LIBS) $(CMOCKA_LIBS)
lib_util_test_SOURCES = lib/util_test.c
lib_util_test_CFLAGS = $(TG_TEST_CFLAGS)
lib_util_test_LDADD = $(TG_CORE_LIBS) $(CMOCKA_LIBS)
lib_conf_test_SOURCES = lib/conf_test.c
lib_conf_test_CFLAGS = $(TG_TEST_CFLAGS)
lib_conf_test_LDADD = $(TG_CORE_LIBS) $(CMOCKA_LIBS)
lib_dns_test_SOURCES = lib/dns_test.c
lib_dns_test_CFLAGS = $(TG_TEST_CFLAGS) $(UNBOUND_CFLAGS)
lib_dns_test_LDADD = $(TG_CORE_LIBS) $(CMOCKA_LIBS)
lib_authres_test_SOURCES = lib/authres_test.c
lib_authres_test_CFLAGS = $(TG_TEST_CFLAGS)
lib_authres_test_LDADD = $(TG_CORE_LIBS) $(CMOCKA_LIBS)
lib_store_test_SOURCES = lib/store_test.c
lib_store_test_CFLAGS = $(TG_TEST_CFLAGS) $(HIREDIS_CFLAGS) $(LIBEVENT_CFLAGS)
lib_store_test_LDADD = $(TG_TEST_LIBS) $(TG_CORE_LIBS) $(CMOCKA_LIBS)
lib_metrics_test_SOURCES = lib/metrics_test.c
lib_metrics_test_CFLAGS = $(TG_TEST_CFLAGS)
lib_metrics_test_LDADD = $(TG_CORE_LIBS) $(CMOCKA_LIBS) -lpthread

# store_batch_test: tg_store_kv_mget/mincr on both backends (a real
# redis-server).
check_PROGRAMS += lib/store_batch_test
TESTS += lib/store_batch_test
lib_store_batch_test_SOURCES = lib/store_batch_test.c
lib_store_batch_test_CFLAGS = $(TG_TEST_CFLAGS)
lib_store_batch_test_LDADD = $(TG_TEST_LIBS) $(TG_CORE_LIBS) \
	$(CMOCKA_LIBS)

# daemon_test: the run user, groups and socket modes (tg_daemon_priv_resolve).
check_PROGRAMS += lib/daemon_test
TESTS += lib/daemon_test
lib_daemon_test_SOURCES = lib/daemon_test.c
lib_daemon_test_CFLAGS = $(TG_TEST_CFLAGS)
lib_daemon_test_LDADD = $(TG_CORE_LIBS) $(CMOCKA_LIBS)

# handover_test: a successor inherits only what it is passed, with and
# without close_range (seccomp makes it fail, as on Linux < 5.11).
check_PROGRAMS += lib/handover_test
TESTS += lib/handover_test
lib_handover_test_SOURCES = lib/handover_test.c
lib_handover_test_CFLAGS = $(TG_TEST_CFLAGS)
lib_handover_test_LDADD = $(TG_CORE_LIBS) $(CMOCKA_LIBS)
