# tollgatectl: the operator's command line.
sbin_PROGRAMS += tools/tollgatectl
tools_tollgatectl_SOURCES = tools/tollgatectl.c tools/scan.c tools/spf.c \
	tools/dmarc.c tools/quota.c tools/greylist.c tools/ctl.h \
	tools/config_rules.c tools/learn.c tools/ctl.c
tools_tollgatectl_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/milters/spam
tools_tollgatectl_LDADD = $(TG_PIPELINE_LIBS) $(TG_SPAM_LIBS) $(TG_CORE_LIBS)
