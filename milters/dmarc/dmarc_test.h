/*
 * dmarc_test.h - helpers shared by the DMARC module's test files
 * (dmarc_test.c: cases through the real pipeline on local zone data;
 * dmarc_test_corpus.c: the rspamd and OpenDMARC vectors in TG_TESTDATA).
 */
#ifndef TOLLGATE_DMARC_TEST_H
#define TOLLGATE_DMARC_TEST_H

#include <stdbool.h>
#include <stddef.h>

#include "tollgate/dmarc.h"
#include "tg_test.h"
#include "tollgate/module.h"

#define T_RSPAMD	TG_TESTDATA "/dmarc/rspamd-functional"
#define T_OPENDMARC	TG_TESTDATA "/dmarc/opendmarc"

/* A scratch directory for zones and lists; made once. */
extern char	t_dir[];

/* t_write - text into t_dir/name; returns the path (caller frees) */
char	*t_write(const char *, const char *);
/* t_slurp - a whole file, NUL-terminated (caller frees); NULL if none */
char	*t_slurp(const char *);
/* t_rspamd_zone - fake-dns.tsv as local data; only DKIM keys if keys */
char	*t_rspamd_zone(bool keys_only);

/*
 * t_pipeline - init the pipeline: modules, [dmarc] settings (psl_file
 * is added when they lack one: rspamd's list) and zone text.
 */
void	 t_pipeline(const char *modules, const char *dmarc_conf,
	    const char *zone);
void	 t_pipeline_done(void);

/* One message through the pipeline, and what it left behind. */
struct t_run {
	enum tg_verdict		 verdict;
	struct dmarc_result	 res;
	char			*header_from;	/* copies of res strings */
	char			*policy_domain;
	char			*authres;	/* our A-R value, or "" */
	char			*decision;
	char			*reply;		/* "550 5.7.1 text", or "" */
	char			*quarantine;	/* who asked, or NULL */
	char			*added;		/* "Name: value\n" of adds */
};

/* t_run - scan msg (LF) from client_ip (NULL: none) with mail_from */
void	 t_run(const char *msg, const char *client_ip, const char *mail_from,
	    struct t_run *);
void	 t_run_free(struct t_run *);


/* dmarc_test_corpus.c */
void	test_rspamd(void **);
void	test_opendmarc_records(void **);
void	test_opendmarc_alignment(void **);
void	test_opendmarc_from(void **);
void	test_opendmarc_org(void **);

#endif
