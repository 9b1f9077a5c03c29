# The shipped configuration: one file per concern, every key with its
# default (checked against the parameter tables by conf_test).
dist_pkgsysconf_DATA += conf.d/core.conf conf.d/dkim.conf conf.d/spf.conf \
	conf.d/dmarc.conf conf.d/store.conf conf.d/policyd.conf \
	conf.d/ratelimit.conf conf.d/spam.conf
