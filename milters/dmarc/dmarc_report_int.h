/*
 * dmarc_report_int.h - the report store's internals shared by the
 * store (dmarc_report.c) and the reporter (dmarc_report_*.c).
 *
 * Keys are  policy-domain NUL time(8, big-endian) seq(8, big-endian),
 * with the domain in lower case, so that a cursor walks one policy
 * domain at a time in time order.  seq is a counter kept in the store
 * itself and bumped in the adding transaction, so it is unique across
 * every process sharing the store, and it only grows: a record with a
 * seq above the value seen in a read snapshot was added after it.
 */
#ifndef TOLLGATE_DMARC_REPORT_INT_H
#define TOLLGATE_DMARC_REPORT_INT_H

#include <stdint.h>

#include "tollgate/buf.h"
#include "tollgate/dmarc_report.h"

#define DMARC_REPORT_MAX_DOMAIN	255	/* longest policy domain we key */
#define DMARC_REPORT_MAX_STR	2048	/* longer strings are truncated */

/* A record read back from the store; the strings live in blob. */
struct dmarc_report_item {
	struct dmarc_report_rec	 rec;
	uint64_t		 time;
	uint64_t		 seq;
	char			*blob;
};

/*
 * One pass over a policy domain's records in [begin, end), possibly in
 * several chunks.  The scan resumes after (last_time, last_seq) when
 * started; it records the first and last record it consumed and the
 * highest seq committed when its snapshot was taken, which is what
 * dmarc_report_delete_span needs to delete exactly what was consumed.
 */
struct dmarc_report_span {
	char		 domain[DMARC_REPORT_MAX_DOMAIN + 1];
	uint64_t	 begin, end;
	bool		 started;	/* a chunk was consumed before */
	bool		 any;		/* this chunk consumed records */
	bool		 done;		/* the scan reached the span's end */
	uint64_t	 first_time, first_seq;
	uint64_t	 last_time, last_seq;
	uint64_t	 snap_seq;
	size_t		 nrecs;		/* consumed in this chunk */
	size_t		 nbad;		/* undecodable records skipped */
};

/*
 * Called for each record of a scan: TG_OK consumes it and goes on,
 * TG_NOTFOUND stops before it (the chunk is full; the next scan starts
 * with it).  Any other status stops the scan and is returned.
 */
typedef enum tg_status (*dmarc_report_scan_fn)(
		    const struct dmarc_report_item *, void *);

/*
 * dmarc_report_next_domain - the first policy domain with records whose
 * key sorts after `after` ("" for the first), into out (size
 * DMARC_REPORT_MAX_DOMAIN + 1).  TG_NOTFOUND when there is none.
 */
enum tg_status	dmarc_report_next_domain(struct dmarc_report_store *,
		    const char *after, char *out, struct tg_err *);

/* dmarc_report_scan - one chunk of span; see dmarc_report_scan_fn */
enum tg_status	dmarc_report_scan(struct dmarc_report_store *,
		    struct dmarc_report_span *, dmarc_report_scan_fn, void *,
		    struct tg_err *);

/*
 * dmarc_report_delete_span - delete the records the last chunk of span
 * consumed (first..last with seq <= snap_seq); *ndel counts them.
 */
enum tg_status	dmarc_report_delete_span(struct dmarc_report_store *,
		    const struct dmarc_report_span *, size_t *ndel,
		    struct tg_err *);

/* dmarc_report_expire - delete every record older than before */
enum tg_status	dmarc_report_expire(struct dmarc_report_store *, time_t before,
		    size_t *ndel, struct tg_err *);

/*
 * dmarc_report_set_map_size - the LMDB map size (bytes; 0: the generous
 * default) of environments opened from now on; tests use a small one to
 * see a full store.
 */
void		dmarc_report_set_map_size(size_t);

/* dmarc_report_count - records in the store, for tests and --dry-run */
enum tg_status	dmarc_report_count(struct dmarc_report_store *, size_t *,
		    struct tg_err *);

/* dmarc_report_encode - the compact serialization of a record */
void		dmarc_report_encode(struct tg_buf *,
		    const struct dmarc_report_rec *);
/* dmarc_report_decode - back into item (blob owned by item); TG_PERM if
 * malformed */
enum tg_status	dmarc_report_decode(const void *, size_t,
		    struct dmarc_report_item *);
void		dmarc_report_item_fini(struct dmarc_report_item *);

/* dmarc_report_lower_domain - a policy domain as keyed: lower case, no
 * final dot; false when empty or too long */
bool		dmarc_report_lower_domain(const char *, char *, size_t);
/* dmarc_report_hostname_ok - dot-separated letter, digit, '-' and '_'
 * labels: safe in a file name, a Subject and a DNS query */
bool		dmarc_report_hostname_ok(const char *);
/* dmarc_report_mailbox_ok - a plain local@host-name mailbox */
bool		dmarc_report_mailbox_ok(const char *);

/*
 * Aggregation (dmarc_report_xml.c): a table of at most max_rows rows
 * (0: DMARC_REPORT_MAX_ROWS).  dmarc_report_agg_add is a
 * dmarc_report_scan_fn; it answers TG_NOTFOUND when a record needs a
 * new row and the table is full.
 */
#define DMARC_REPORT_MAX_ROWS	10000

struct dmarc_report_agg;
struct dmarc_report_agg *dmarc_report_agg_new(size_t max_rows);
struct dmarc_report_agg *dmarc_report_agg_free(struct dmarc_report_agg *);
void		dmarc_report_agg_reset(struct dmarc_report_agg *);
enum tg_status	dmarc_report_agg_add(const struct dmarc_report_item *, void *);
size_t		dmarc_report_agg_rows(const struct dmarc_report_agg *);
uint64_t	dmarc_report_agg_messages(const struct dmarc_report_agg *);
/* dmarc_report_agg_policy - the last record added (its policy) */
enum tg_status	dmarc_report_agg_policy(const struct dmarc_report_agg *,
		    struct dmarc_report_item *);

/* What report_metadata says; strings borrowed. */
struct dmarc_report_meta {
	const char	*org_name;
	const char	*email;
	const char	*report_id;
	const char	*policy_domain;
	uint64_t	 begin, end;	/* date_range, end inclusive */
};

/* dmarc_report_xml - the RFC 9990 document, appended to the buffer */
void		dmarc_report_xml(const struct dmarc_report_agg *,
		    const struct dmarc_report_meta *, struct tg_buf *);
/* dmarc_report_xml_escape - a string as XML character data */
void		dmarc_report_xml_escape(struct tg_buf *, const char *);
/* dmarc_report_gzip - RFC 1952 gzip, appended to out */
enum tg_status	dmarc_report_gzip(const void *, size_t, struct tg_buf *out,
		    struct tg_err *);

/*
 * Delivery (dmarc_report_send.c): the report as an RFC 5322/MIME
 * message, and one run of the sendmail program for one recipient.
 */
struct dmarc_report_mail {
	const char	*from;		/* report_email */
	const char	*submitter;	/* our domain */
	const char	*policy_domain;
	const char	*report_id;
	const char	*filename;
	const void	*gz;
	size_t		 gzlen;
	time_t		 now;
};
void		dmarc_report_mime(const struct dmarc_report_mail *,
		    const char *rcpt, struct tg_buf *);
/*
 * The longest one sendmail run may take: Postfix's hands a report to its
 * queue in well under a second, and a stuck one (a queue lock, a full
 * disk) must not hold the run; the records stay for the next one.
 */
#define DMARC_REPORT_SENDMAIL_SECS	120

/*
 * dmarc_report_sendmail - run program (split at white space, no shell)
 * with msg on its input; TG_TEMP when it fails or has not finished
 * within secs (it is then killed)
 */
enum tg_status	dmarc_report_sendmail(const char *program, const char *from,
		    const char *rcpt, const char *msg, size_t len, int secs,
		    struct tg_err *);

#endif
