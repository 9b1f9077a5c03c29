# tollgatectl: the operator's command line.
sbin_PROGRAMS += tools/tollgatectl
tools_tollgatectl_SOURCES = tools/tollgatectl.c tools/scan.c tools/spf.c \
	tools/dmarc.c tools/quota.c tools/ctl.h
tools_tollgatectl_LDADD = $(TG_PIPELINE_LIBS)
