/*
 * dmarc_report_run - one reporting run: for each policy domain, the
 * period's records into reports, each written, sent, and then deleted.
 *
 * A domain's records are read in chunks of at most max_rows rows, so a
 * run holds one chunk of one domain in memory.  Records are deleted only
 * after their report was written (and sent, with --send), and only the
 * records that report contains: a record the milter adds during the run
 * is left for the next one.  A report that failed is left whole and
 * built again, byte for byte the same name and Report-ID, by the next
 * run (RFC 9990 3.2.1: a resent report keeps its file name).
 *
 * Choices where RFC 9990 leaves room:
 *  - the receiver in the file name and the Submitter in the Subject are
 *    the domain of report_email;
 *  - date_range is [begin, end - 1]: end is the last second covered;
 *  - the Report-ID, which is also the file name's unique-id, is made of
 *    the first record's time and store sequence number and a hash of
 *    this host's name: unique, alphanumeric and stable across re-runs;
 *  - a policy_published is the last record's (the final configuration);
 *  - a destination that is too small for the report, or not authorized,
 *    is skipped for good; a DNS or sendmail failure keeps the records.
 *
 * Not thread-safe (one run at a time in a process).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tollgate/buf.h"
#include "tollgate/dmarc_report.h"
#include "tollgate/dns.h"
#include "tollgate/log.h"
#include "tollgate/util.h"

#include "dmarc_report_int.h"

/* What became of one report. */
enum dmarc_report_fate {
	DMARC_REPORT_DONE,	/* written and delivered: delete records */
	DMARC_REPORT_KEEP,	/* failed for now: keep them */
	DMARC_REPORT_DRY	/* --dry-run: change nothing */
};

struct dmarc_report_job {
	struct dmarc_report_store		*store;
	const struct dmarc_report_run_opts	*o;
	struct dmarc_report_stats		*stats;
	struct dmarc_report_agg			*agg;
	const char				*receiver;
	uint32_t				 hosttag;
};

/* One built report. */
struct dmarc_report_doc {
	char		 report_id[64];
	char		*filename;
	struct tg_buf	 gz;
	char		*rua;		/* the last record's rua=, or NULL */
};

static enum tg_status	dmarc_report_domain(struct dmarc_report_job *,
			    const char *, struct tg_err *);
static enum dmarc_report_fate dmarc_report_chunk(struct dmarc_report_job *,
			    const struct dmarc_report_span *);
static bool	dmarc_report_build(struct dmarc_report_job *,
		    const struct dmarc_report_span *,
		    struct dmarc_report_doc *);
static bool	dmarc_report_write(const char *, const char *,
		    const struct tg_buf *);
static enum dmarc_report_fate dmarc_report_deliver(struct dmarc_report_job *,
			    const char *, const struct dmarc_report_doc *);

/* dmarc_report_hosttag - a short hash of this host's name */
static uint32_t
dmarc_report_hosttag(void)
{
	char		 host[256];
	const char	*p;
	uint32_t	 h = 2166136261u;

	if (gethostname(host, sizeof(host)) == -1)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for (p = host; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

/* dmarc_report_run - every domain, then report_keep expiry */
enum tg_status
dmarc_report_run(struct dmarc_report_store *s,
    const struct dmarc_report_run_opts *o, struct dmarc_report_stats *stats,
    struct tg_err *err)
{
	struct dmarc_report_job	job;
	char			dom[DMARC_REPORT_MAX_DOMAIN + 1] = "";
	enum tg_status		st;
	size_t			n;

	memset(stats, 0, sizeof(*stats));
	if (o->conf->email == NULL || !dmarc_report_mailbox_ok(o->conf->email))
		return tg_err_set(err, TG_PERM, "report_email is not a "
		    "plain mailbox: \"%s\"", o->conf->email != NULL ?
		    o->conf->email : "");
	if (o->conf->org_name == NULL || *o->conf->org_name == '\0')
		return tg_err_set(err, TG_PERM, "report_org_name is empty");
	if (o->begin < 0 || o->end <= o->begin)
		return tg_err_set(err, TG_PERM, "empty report period");
	if (o->send && (o->dns == NULL || o->conf->sendmail == NULL))
		return tg_err_set(err, TG_PERM, "sending needs a resolver and "
		    "report_sendmail");
	job.store = s;
	job.o = o;
	job.stats = stats;
	job.agg = dmarc_report_agg_new(o->max_rows);
	job.receiver = strrchr(o->conf->email, '@') + 1;
	job.hosttag = dmarc_report_hosttag();
	while ((st = dmarc_report_next_domain(s, dom, dom, err)) == TG_OK)
		if ((st = dmarc_report_domain(&job, dom, err)) != TG_OK)
			break;
	job.agg = dmarc_report_agg_free(job.agg);
	if (st != TG_NOTFOUND)
		return st;
	if (o->dry_run || o->conf->keep <= 0 || o->now <= o->conf->keep)
		return TG_OK;
	st = dmarc_report_expire(s, o->now - o->conf->keep, &n, err);
	stats->expired = n;
	return st;
}

/* dmarc_report_domain - one policy domain's records of the period */
static enum tg_status
dmarc_report_domain(struct dmarc_report_job *job, const char *dom,
    struct tg_err *err)
{
	struct dmarc_report_span	span;
	enum dmarc_report_fate		fate;
	enum tg_status			st;
	size_t				ndel;

	/* The domain names a file and a Subject: nothing else may. */
	if (!dmarc_report_hostname_ok(dom)) {
		tg_log_warnx(NULL, "dmarc report: domain=%s: not a host "
		    "name, left for expiry", dom);
		return TG_OK;
	}
	memset(&span, 0, sizeof(span));
	(void)snprintf(span.domain, sizeof(span.domain), "%s", dom);
	span.begin = (uint64_t)job->o->begin;
	span.end = (uint64_t)job->o->end;
	do {
		dmarc_report_agg_reset(job->agg);
		st = dmarc_report_scan(job->store, &span, dmarc_report_agg_add,
		    job->agg, err);
		if (st != TG_OK)
			return st;
		if (!span.any)
			break;
		if (span.nbad > 0)
			tg_log_warnx(NULL, "dmarc report: domain=%s: %zu "
			    "undecodable records skipped", dom, span.nbad);
		fate = dmarc_report_chunk(job, &span);
		if (fate == DMARC_REPORT_KEEP)
			job->stats->failed++;
		if (fate != DMARC_REPORT_DONE)
			continue;
		st = dmarc_report_delete_span(job->store, &span, &ndel, err);
		job->stats->deleted += ndel;
		if (st != TG_OK)
			return st;
	} while (!span.done);
	return TG_OK;
}

/* dmarc_report_chunk - build, list, write and send one report */
static enum dmarc_report_fate
dmarc_report_chunk(struct dmarc_report_job *job,
    const struct dmarc_report_span *span)
{
	const struct dmarc_report_run_opts	*o = job->o;
	struct dmarc_report_doc			 doc;
	enum dmarc_report_fate			 fate = DMARC_REPORT_DONE;

	if (!dmarc_report_build(job, span, &doc))
		return DMARC_REPORT_KEEP;
	job->stats->reports++;
	if (o->listing != NULL)
		fprintf(o->listing, "%s %s rows=%zu messages=%" PRIu64 "\n",
		    o->dry_run ? "would report" : "report", doc.filename,
		    dmarc_report_agg_rows(job->agg),
		    dmarc_report_agg_messages(job->agg));
	if (o->dry_run)
		fate = DMARC_REPORT_DRY;
	else if (o->out_dir != NULL &&
	    !dmarc_report_write(o->out_dir, doc.filename, &doc.gz))
		fate = DMARC_REPORT_KEEP;
	else if (o->send)
		fate = dmarc_report_deliver(job, span->domain, &doc);
	free(doc.filename);
	free(doc.rua);
	tg_buf_fini(&doc.gz);
	return fate;
}

/* dmarc_report_build - the XML, gzipped, and its names */
static bool
dmarc_report_build(struct dmarc_report_job *job,
    const struct dmarc_report_span *span, struct dmarc_report_doc *doc)
{
	struct dmarc_report_meta	m;
	struct dmarc_report_item	pol;
	struct tg_buf			xml;
	struct tg_err			err;
	bool				ok;

	memset(doc, 0, sizeof(*doc));
	/* RFC 9990 3.2.1: unique-id is 1*(ALPHA / DIGIT). */
	(void)snprintf(doc->report_id, sizeof(doc->report_id),
	    "%" PRIx64 "t%" PRIx64 "s%08" PRIx32, span->first_time,
	    span->first_seq, job->hosttag);
	m.org_name = job->o->conf->org_name;
	m.email = job->o->conf->email;
	m.report_id = doc->report_id;
	m.policy_domain = span->domain;
	m.begin = span->begin;
	m.end = span->end - 1;
	doc->filename = tg_printf_dup("%s!%s!%" PRIu64 "!%" PRIu64
	    "!%s.xml.gz", job->receiver, span->domain, m.begin, m.end,
	    doc->report_id);
	if (dmarc_report_agg_policy(job->agg, &pol) == TG_OK) {
		if (pol.rec.rua != NULL)
			doc->rua = tg_strdup(pol.rec.rua);
		dmarc_report_item_fini(&pol);
	}
	tg_buf_init(&xml);
	dmarc_report_xml(job->agg, &m, &xml);
	ok = dmarc_report_gzip(xml.data, xml.len, &doc->gz, &err) == TG_OK;
	tg_buf_fini(&xml);
	if (!ok) {
		tg_log_warnx(NULL, "dmarc report: domain=%s: %s", span->domain,
		    err.text);
		free(doc->filename);
		free(doc->rua);
		tg_buf_fini(&doc->gz);
	}
	return ok;
}

/* dmarc_report_write - dir/name, complete or not at all (rename) */
static bool
dmarc_report_write(const char *dir, const char *name, const struct tg_buf *b)
{
	char	*path, *tmp;
	size_t	 off = 0;
	ssize_t	 w;
	int	 fd;
	bool	 ok = false;

	path = tg_printf_dup("%s/%s", dir, name);
	tmp = tg_printf_dup("%s/.%s.tmp", dir, name);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1) {
		tg_log_warn(NULL, "dmarc report: %s", tmp);
		goto out;
	}
	while (off < b->len && ((w = write(fd, b->data + off,
	    b->len - off)) > 0 || (w == -1 && errno == EINTR)))
		off += w > 0 ? (size_t)w : 0;
	if (off != b->len || fsync(fd) == -1) {
		tg_log_warn(NULL, "dmarc report: %s", tmp);
		(void)close(fd);
		(void)unlink(tmp);
		goto out;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		tg_log_warn(NULL, "dmarc report: %s", path);
		(void)unlink(tmp);
		goto out;
	}
	ok = true;
out:
	free(path);
	free(tmp);
	return ok;
}

/*
 * dmarc_report_dest - the verified address for one rua= entry into
 * *addr (borrowed from r or owned via *own); TG_NOTFOUND: skip it
 */
static enum tg_status
dmarc_report_dest(struct dmarc_report_job *job, const char *domain,
    const struct dmarc_report_rua *r, const char **addr, uint64_t *max,
    char **own)
{
	struct dmarc_report_rua	*ov;
	struct tg_err		 err;
	enum tg_status		 st;
	char			*override;
	size_t			 nov, i;

	*addr = r->addr;
	*max = r->max_size;
	*own = NULL;
	st = dmarc_report_verify_dest(job->o->dns, domain, r->host, &override,
	    &err);
	if (st != TG_OK) {
		tg_log_warnx(NULL, "dmarc report: domain=%s rua=%s: %s%s",
		    domain, r->addr, st == TG_TEMP ? "verification failed "
		    "for now: " : "not authorized: ", err.text);
		return st;
	}
	/* RFC 9990 4 step 9: the consumer may name another mailbox, on the
	 * same host only. */
	dmarc_report_rua_parse(override, &ov, &nov, NULL);
	for (i = 0; i < nov; i++)
		if (strcmp(ov[i].host, r->host) == 0) {
			*own = tg_strdup(ov[i].addr);
			*addr = *own;
			*max = ov[i].max_size;
			break;
		}
	dmarc_report_rua_free(ov, nov);
	free(override);
	return TG_OK;
}

/* dmarc_report_deliver - the report to each rua= mailbox in turn */
static enum dmarc_report_fate
dmarc_report_deliver(struct dmarc_report_job *job, const char *domain,
    const struct dmarc_report_doc *doc)
{
	const struct dmarc_report_conf	*c = job->o->conf;
	struct dmarc_report_mail	 m;
	struct dmarc_report_rua		*r;
	struct tg_buf			 msg;
	struct tg_err			 err;
	enum dmarc_report_fate		 fate = DMARC_REPORT_DONE;
	const char			*addr;
	uint64_t			 max;
	char				*own;
	size_t				 n, i;

	dmarc_report_rua_parse(doc->rua, &r, &n, NULL);
	if (n == 0 && job->o->listing != NULL)
		fprintf(job->o->listing, "  no rua= mailto: destination\n");
	m = (struct dmarc_report_mail){ .from = c->email,
	    .submitter = job->receiver, .policy_domain = domain,
	    .report_id = doc->report_id, .filename = doc->filename,
	    .gz = doc->gz.data, .gzlen = doc->gz.len, .now = job->o->now };
	tg_buf_init(&msg);
	for (i = 0; i < n; i++) {
		switch (dmarc_report_dest(job, domain, &r[i], &addr, &max,
		    &own)) {
		case TG_OK:
			break;
		case TG_TEMP:
			fate = DMARC_REPORT_KEEP;
			continue;
		default:
			continue;
		}
		tg_buf_reset(&msg);
		dmarc_report_mime(&m, addr, &msg);
		/* RFC 9990 3.2: a URI whose limit the message exceeds MUST
		 * NOT be used. */
		if (max != 0 && msg.len > max) {
			tg_log_warnx(NULL, "dmarc report: domain=%s rua=%s: "
			    "report of %zu bytes over the limit of %" PRIu64,
			    domain, addr, msg.len, max);
		} else if (dmarc_report_sendmail(c->sendmail, c->email, addr,
		    msg.data, msg.len, DMARC_REPORT_SENDMAIL_SECS,
		    &err) != TG_OK) {
			tg_log_warnx(NULL, "dmarc report: domain=%s rua=%s: %s",
			    domain, addr, err.text);
			fate = DMARC_REPORT_KEEP;
		} else {
			job->stats->sent++;
			if (job->o->listing != NULL)
				fprintf(job->o->listing, "  sent to %s\n",
				    addr);
		}
		free(own);
	}
	tg_buf_fini(&msg);
	dmarc_report_rua_free(r, n);
	return fate;
}
