# systemd units for both daemons, installed into systemdsystemunitdir
# (pkg-config systemd, or configure --with-systemdsystemunitdir=DIR; =no
# installs none).
TG_UNITS = systemd/tollgate-milter.service systemd/tollgate-policyd.service
if TG_HAVE_SYSTEMD
systemdsystemunit_DATA = $(TG_UNITS)
endif
CLEANFILES += $(TG_UNITS)
EXTRA_DIST += systemd/tollgate-milter.service.in \
	systemd/tollgate-policyd.service.in systemd/units.test

systemd/tollgate-milter.service: $(srcdir)/systemd/tollgate-milter.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && $(TG_SUBST) $(srcdir)/$@.in > $@
systemd/tollgate-policyd.service: $(srcdir)/systemd/tollgate-policyd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && $(TG_SUBST) $(srcdir)/$@.in > $@

# units.test verifies the built units (systemd-analyze verify, and an
# exposure score); check builds them even when none are installed.
check_DATA = $(TG_UNITS)
TESTS += systemd/units.test
