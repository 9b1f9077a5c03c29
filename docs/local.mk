# Manual pages and the operator's documents.  tollgate.conf(5) is
# generated at build time: docs/mkconfman fills the hand-written
# template with every section's keys from the parameter tables the
# daemons load, so a key added anywhere is documented at the next build
# (docs/confman_test fails for a key without help text).
noinst_PROGRAMS += docs/mkconfman
docs_mkconfman_SOURCES = docs/mkconfman.c docs/confman.c docs/confman.h
docs_mkconfman_LDADD = $(TG_PIPELINE_LIBS) \
	milters/pipeline/libtg_pipeline.a $(TG_PIPELINE_LIBS)

TG_MAN_IN = docs/tollgate.conf.5.in docs/tollgate-milter.8.in \
	docs/tollgate-policyd.8.in docs/tollgatectl.8.in
man_MANS = docs/tollgate.conf.5 docs/tollgate-milter.8 \
	docs/tollgate-policyd.8 docs/tollgatectl.8
CLEANFILES += $(man_MANS)
dist_doc_DATA = docs/decision-log.md docs/postfix.md docs/sendmail.md
EXTRA_DIST += $(TG_MAN_IN)

# Paths in pages and units are the ones configure chose.
TG_SUBST = sed -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	-e 's|@sbindir[@]|$(sbindir)|g' \
	-e 's|@localstatedir[@]|$(localstatedir)|g' \
	-e 's|@docdir[@]|$(docdir)|g' \
	-e 's|@VERSION[@]|$(VERSION)|g'

docs/tollgate.conf.5: docs/mkconfman$(EXEEXT) $(srcdir)/docs/tollgate.conf.5.in
	$(AM_V_GEN)$(MKDIR_P) docs && \
	docs/mkconfman$(EXEEXT) $(srcdir)/docs/tollgate.conf.5.in | \
	    $(TG_SUBST) > $@.tmp && mv $@.tmp $@
docs/tollgate-milter.8: $(srcdir)/docs/tollgate-milter.8.in Makefile
	$(AM_V_GEN)$(MKDIR_P) docs && $(TG_SUBST) $(srcdir)/$@.in > $@
docs/tollgate-policyd.8: $(srcdir)/docs/tollgate-policyd.8.in Makefile
	$(AM_V_GEN)$(MKDIR_P) docs && $(TG_SUBST) $(srcdir)/$@.in > $@
docs/tollgatectl.8: $(srcdir)/docs/tollgatectl.8.in Makefile
	$(AM_V_GEN)$(MKDIR_P) docs && $(TG_SUBST) $(srcdir)/$@.in > $@

check_PROGRAMS += docs/confman_test
TESTS += docs/confman_test docs/man.test
docs_confman_test_SOURCES = docs/confman_test.c docs/confman.c docs/confman.h
docs_confman_test_CFLAGS = $(TG_TEST_CFLAGS)
docs_confman_test_LDADD = $(TG_PIPELINE_LIBS) \
	milters/pipeline/libtg_pipeline.a $(TG_PIPELINE_LIBS) $(CMOCKA_LIBS)
# man.test lints the built pages: it needs them built first.
docs/man.log: $(man_MANS)
EXTRA_DIST += docs/man.test

# Debian packaging travels with the sources (dpkg-buildpackage -us -uc -b).
EXTRA_DIST += debian/changelog debian/control debian/copyright debian/rules \
	debian/source/format debian/tollgate.dirs debian/tollgate.postinst \
	debian/tollgate.postrm
