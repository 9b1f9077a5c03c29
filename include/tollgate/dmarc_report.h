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
#include <stdint.h>
#include <stdio.h>
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
 * (unless readonly).  NULL with err filled on failure.  Handles on one
 * directory in one process share one LMDB environment (LMDB forbids
 * opening it twice), so the DMARC module and tollgatectl may both open
 * it; a writer cannot join an environment first opened read-only.
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

/*
 * The reporter, used by `tollgatectl dmarc report`.  Not thread-safe:
 * one report run at a time per process (runs in other processes are
 * safe; the store serializes them).
 */
struct tg_dns;

/* One mailto: destination of a rua= tag (RFC 9989). */
struct dmarc_report_rua {
	char		*addr;		/* the decoded mailbox */
	char		*host;		/* its domain, lower case */
	uint64_t	 max_size;	/* bytes; 0: no limit given */
};

/*
 * dmarc_report_rua_parse - the mailto: URIs of a rua= value: comma-
 * separated, each with an optional !size[kmgt] limit.  Other schemes and
 * unusable URIs are skipped (*nskipped counts them, may be NULL).  The
 * array (*out, *n entries) belongs to the caller: dmarc_report_rua_free.
 */
void		dmarc_report_rua_parse(const char *, struct dmarc_report_rua **,
		    size_t *n, size_t *nskipped);
void		dmarc_report_rua_free(struct dmarc_report_rua *, size_t);

/*
 * dmarc_report_verify_dest - RFC 9990 4 external destination check of
 * host for reports about policy_domain: TG_OK when host is in the policy
 * domain or <policy_domain>._report._dmarc.<host> has a v=DMARC1 TXT
 * record (then *override, if not NULL, may receive that record's rua=,
 * caller-owned, NULL if none); TG_NOTFOUND when not authorized; TG_TEMP
 * when the DNS failed for now.  err says why.
 */
enum tg_status	dmarc_report_verify_dest(struct tg_dns *,
		    const char *policy_domain, const char *host,
		    char **override, struct tg_err *);

/* One report run over [begin, end). */
struct dmarc_report_run_opts {
	const struct dmarc_report_conf	*conf;
	struct tg_dns			*dns;	/* for --send */
	time_t				 begin, end;
	time_t				 now;	/* for report_keep */
	const char			*out_dir;	/* NULL: no files */
	bool				 send;
	bool				 dry_run;	/* change nothing */
	size_t				 max_rows;	/* 0: the default */
	FILE				*listing;	/* one line per report;
							 * NULL: quiet */
};

struct dmarc_report_stats {
	size_t		reports;	/* built */
	size_t		sent;		/* messages handed to sendmail */
	size_t		failed;		/* reports kept for the next run */
	size_t		deleted;	/* records reported and deleted */
	size_t		expired;	/* records past report_keep */
};

/*
 * dmarc_report_run - build a report for each policy domain with records
 * in the period (several when one has more than max_rows rows), write
 * each .xml.gz to out_dir, send it to the domain's rua= destinations
 * when send, and delete the records reported; then delete records
 * older than conf->keep.  A report that could not be written or sent
 * leaves its records for the next run (stats->failed; the cause is
 * logged).  TG_OK unless the store itself failed (TG_TEMP) or the
 * settings cannot make a report (TG_PERM: report_email not a plain
 * mailbox, no org_name, an empty period, --send without a resolver or
 * report_sendmail); err says which.
 */
enum tg_status	dmarc_report_run(struct dmarc_report_store *,
		    const struct dmarc_report_run_opts *,
		    struct dmarc_report_stats *, struct tg_err *);

#endif
