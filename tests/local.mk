# Helpers shared by the modules' unit tests (tests/lib/tg_test.h).
noinst_LIBRARIES += tests/lib/libtg_test.a
tests_lib_libtg_test_a_SOURCES = tests/lib/tg_test.c tests/lib/tg_test.h
tests_lib_libtg_test_a_CFLAGS = $(AM_CFLAGS)
TG_TEST_LIBS = tests/lib/libtg_test.a

# Integration tests: a private Postfix on loopback relaying to an SMTP
# sink, with tollgate-milter as its milter (tests/integration/lib.sh).
# They run as root; each one starts and stops everything it uses.
TG_INTEGRATION_TESTS = \
	tests/integration/postfix_smoke.test \
	tests/integration/dkim_sign.test \
	tests/integration/dkim_verify.test \
	tests/integration/latency.test \
	tests/integration/tollgatectl.test \
	tests/integration/spf_dmarc.test \
	tests/integration/dmarc_report.test \
	tests/integration/opendmarc.test \
	tests/integration/ratelimit.test \
	tests/integration/policyd.test \
	tests/integration/policyd_quota.test \
	tests/integration/reload.test \
	tests/integration/policyd_reload.test \
	tests/integration/greylist_ctl.test \
	tests/integration/policyd_fault.test \
	tests/integration/ratelimit_fault.test \
	tests/integration/metrics.test \
	tests/integration/decision_log.test \
	tests/integration/privileges.test \
	tests/integration/sendmail.test \
	tests/integration/spam_accuracy.test \
	tests/integration/spam.test
TESTS += $(TG_INTEGRATION_TESTS)

# The scripts find lib.sh, data and the milter binary through these,
# so out-of-tree builds (build-asan/, distcheck) test their own binary.
AM_TESTS_ENVIRONMENT = \
	abs_top_srcdir='$(abs_top_srcdir)'; export abs_top_srcdir; \
	abs_top_builddir='$(abs_top_builddir)'; export abs_top_builddir; \
	TG_TESTDATA='$(TG_TESTDATA)'; export TG_TESTDATA;

EXTRA_DIST += $(TG_INTEGRATION_TESTS) \
	tests/integration/lib.sh \
	tests/integration/sink.py \
	tests/integration/tgmail.py \
	tests/integration/slowsmtp.py \
	tests/integration/sendmail.sh \
	tests/integration/mdkim_verify.pl \
	tests/integration/mkdata.sh \
	tests/integration/packages.txt \
	tests/integration/README.md \
	tests/integration/data/zone.txt \
	tests/integration/data/auth-zone.txt \
	tests/integration/data/example.com.rsa2024.key \
	tests/integration/data/example.com.ed2024.key \
	tests/integration/data/example.net.net2024.key

# The Sendmail packages sendmail.test fetched and unpacked (sendmail.sh)
# live in the build tree until distclean.
distclean-local: tg-distclean-sendmail
.PHONY: tg-distclean-sendmail
tg-distclean-sendmail:
	rm -rf tests/integration/sendmail-cache
