# The DMARC report store (LMDB) and the aggregate reporter (RFC 9990),
# linked by the DMARC module and tollgatectl through
# TG_DMARC_REPORT_LIBS, with their unit test.
noinst_LIBRARIES += milters/dmarc/libtg_dmarc_report.a
milters_dmarc_libtg_dmarc_report_a_SOURCES = \
	milters/dmarc/dmarc_report.c milters/dmarc/dmarc_report_codec.c \
	milters/dmarc/dmarc_report_xml.c milters/dmarc/dmarc_report_rua.c \
	milters/dmarc/dmarc_report_send.c milters/dmarc/dmarc_report_run.c \
	milters/dmarc/dmarc_report_int.h include/tollgate/dmarc_report.h
milters_dmarc_libtg_dmarc_report_a_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS) \
	$(ZLIB_CFLAGS)
TG_DMARC_REPORT_LIBS = milters/dmarc/libtg_dmarc_report.a $(LMDB_LIBS) \
	$(ZLIB_LIBS)

check_PROGRAMS += milters/dmarc/dmarc_report_test
TESTS += milters/dmarc/dmarc_report_test
milters_dmarc_dmarc_report_test_SOURCES = milters/dmarc/dmarc_report_test.c
milters_dmarc_dmarc_report_test_CFLAGS = $(TG_TEST_CFLAGS) $(ZLIB_CFLAGS)
milters_dmarc_dmarc_report_test_LDADD = $(TG_DMARC_REPORT_LIBS) \
	$(TG_CORE_LIBS) $(CMOCKA_LIBS)
EXTRA_DIST += milters/dmarc/testdata/rfc9990.xsd \
	milters/dmarc/testdata/SOURCE.md
