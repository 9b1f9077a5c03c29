/*
 * dkim_test.h - helpers shared by the DKIM module's test files
 * (dkim_test.c: tables, keys, DNS outcomes, sign and verify through the
 * pipeline; dkim_test_corpus.c: the public suites in TG_TESTDATA).
 */
#ifndef TOLLGATE_DKIM_TEST_H
#define TOLLGATE_DKIM_TEST_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "tg_test.h"
#include "tollgate/module.h"

/* A scratch directory for keys, tables and zones; made once. */
extern char	t_dir[];
/* Keys made once: RSA-2048 (PKCS#1 PEM), Ed25519, RSA-512 (PEM). */
extern char	*t_rsa_pem, *t_ed_pem, *t_weak_pem;

/* t_b64 - base64 without line breaks (caller frees) */
char	*t_b64(const unsigned char *, size_t);

/* t_path - t_dir/name, a string the caller frees */
char	*t_path(const char *);
/* t_write - write text to t_dir/name with mode; returns the path (free) */
char	*t_write(const char *, const char *, int);
/* t_slurp - a file's contents, NUL-terminated; NULL if unreadable */
char	*t_slurp(const char *, size_t *);
/* t_crlf - text with every line end made CRLF (caller frees) */
char	*t_crlf(const char *);

/* t_pipeline - init the pipeline: [dkim] settings and one zone file */
void	 t_pipeline(const char *, const char *);
void	 t_pipeline_done(void);

/* The outcome of one message through the pipeline. */
struct t_run {
	enum tg_verdict	 verdict;
	char		*results;	/* "pass,fail", "" if none */
	char		*reasons;	/* "-;no key": each result's reason */
	char		*authres;	/* our Authentication-Results value */
	char		*decision;
	char		*out;		/* the message after the edits */
	size_t		 nsig_added;	/* DKIM-Signature fields prepended */
};

/* t_run - scan a message (LF or CRLF) as outbound or inbound mail */
void	 t_run(const char *, bool, struct t_run *);
void	 t_run_free(struct t_run *);
/* t_overall - one word for a result list: best of pass > fail > ... */
const char *t_overall(const char *);


/* dkim_test_tables.c */
void	test_keyring_tables(void **);
void	test_keyring_refile(void **);
void	test_keyring_errors(void **);
void	test_key_files(void **);
void	test_addr_parse(void **);
void	test_glob(void **);

/* The corpus tests. */
void	test_corpus_rfc8463_verify(void **);
void	test_corpus_rfc8463_sign(void **);
void	test_corpus_dkimpy(void **);
void	test_corpus_dkimpy_keys(void **);
void	test_corpus_mail_dkim(void **);

#endif
