/*
 * dmarc_report.h - the durable record of DMARC-evaluated messages, from
 * which `tollgatectl dmarc report` builds aggregate reports (RFC 9990).
 *
 * The DMARC module adds one record per evaluated message; the store is
 * on local disk, shared by the milter's threads and tollgatectl, and
 * survives restarts.  Records are kept until reported, then expired.
 *
 * Threading: one store handle may be used by many threads at once.
 */
#ifndef TOLLGATE_DMARC_REPORT_H
#define TOLLGATE_DMARC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util.h"

#define DMARC_REPORT_MAX_DKIM	8	/* DKIM results kept per message */

/* One DKIM signature's result as RFC 9990 reports it. */
struct dmarc_report_dkim {
	const char	*domain;	/* d= */
	const char	*selector;	/* s=, or NULL */
	const char	*result;	/* "none" "pass" "fail" "policy"
					 * "neutral" "temperror" "permerror" */
};

/*
 * One evaluated message.  Every pointer is borrowed for the call; NULL
 * means absent (a tag not in the record, no reason).
 */
struct dmarc_report_rec {
	time_t		 when;
	const char	*source_ip;
	const char	*header_from;	/* RFC5322.From domain */
	const char	*envelope_from;	/* RFC5321.MailFrom domain; "" null */
	const char	*envelope_to;	/* first recipient's domain */
	/* policy_published: the record that applied */
	const char	*policy_domain;
	const char	*p, *sp, *np;	/* "none" "quarantine" "reject" */
	const char	*adkim, *aspf;	/* "r" or "s" */
	int		 pct;		/* 0-100; -1 when the record has none */
	const char	*fo;
	bool		 testing;	/* t=y (RFC 9989) */
	const char	*rua;		/* the rua= tag as published */
	/* policy_evaluated */
	const char	*disposition;	/* "none" "quarantine" "reject" */
	bool		 dkim_pass;	/* aligned DKIM pass */
	bool		 spf_pass;	/* aligned SPF pass */
	const char	*reason;	/* RFC 9990 PolicyOverrideType:
					 * "local_policy" "sampled_out" ... */
	const char	*reason_comment;
	/* auth_results */
	struct dmarc_report_dkim dkim[DMARC_REPORT_MAX_DKIM];
	size_t		 ndkim;
	const char	*spf_domain;	/* the MAIL FROM identity's domain */
	const char	*spf_result;	/* "none" "neutral" "pass" "fail"
					 * "softfail" "temperror" "permerror" */
};

/*
 * The reporting settings, read from [dmarc] by the DMARC module (keys
 * report_dir, report_org_name, report_email, report_sendmail,
 * report_keep) and used by the module and by `tollgatectl dmarc report`.
 * dir is "" when reports are off: nothing is recorded.
 */
struct dmarc_report_conf {
	const char	*dir;		/* the store's directory */
	const char	*org_name;	/* report_metadata org_name */
	const char	*email;		/* report_metadata email, From: */
	const char	*sendmail;	/* sendmail-compatible program */
	long		 keep;		/* seconds records are kept at most */
};

/* dmarc_report_settings - the loaded [dmarc] report settings (after
 * tg_pipeline_init); implemented by the DMARC module */
const struct dmarc_report_conf *dmarc_report_settings(void);

struct dmarc_report_store;

/*
 * dmarc_report_open - the store in directory dir, created if missing
 * (unless readonly).  NULL with err filled on failure.
 */
struct dmarc_report_store *dmarc_report_open(const char *dir, bool readonly,
		    struct tg_err *err);
/* dmarc_report_close - release the handle; NULL-safe, returns NULL */
struct dmarc_report_store *dmarc_report_close(struct dmarc_report_store *);

/*
 * dmarc_report_add - record one message durably.  TG_OK, or TG_TEMP
 * with err filled when the store cannot take it (full disk); the caller
 * logs.  Thread-safe.
 */
enum tg_status	dmarc_report_add(struct dmarc_report_store *,
		    const struct dmarc_report_rec *, struct tg_err *err);

#endif
