/*
 * dmarc_report_test - the report store, the RFC 9990 reporter and its
 * delivery, against a real LMDB store in a temporary directory.
 *
 * Generated XML is checked with xmllint against the schema RFC 9990
 * gives (testdata/rfc9990.xsd); DNS answers for the external
 * destination check come from the real resolver loaded with local data,
 * offline.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "tollgate/buf.h"
#include "tollgate/dmarc_report.h"
#include "tollgate/dns.h"
#include "tollgate/log.h"
#include "tollgate/util.h"

#include "dmarc_report_int.h"

#define RT_THREADS	6
#define RT_PER_THREAD	50
#define RT_DAY		86400
#define RT_BEGIN	1764547200	/* 2025-12-01T00:00:00Z */

#define RT_XSD		TG_SRCDIR "/milters/dmarc/testdata/rfc9990.xsd"

static char		rt_dir[] = "/tmp/dmarc_report_test.XXXXXX";
static struct tg_buf	rt_log;		/* captured log lines */

/* rt_sink - keep log lines for the tests to look at */
static void
rt_sink(enum tg_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	tg_buf_puts(&rt_log, line);
	tg_buf_putc(&rt_log, '\n');
}

/* rt_rmtree - remove a scratch directory (flat: files only, or one level) */
static void
rt_rmtree(const char *dir)
{
	char	cmd[512];

	if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) < (int)sizeof(cmd))
		(void)system(cmd);
}

/* rt_subdir - a fresh directory under the scratch directory */
static char *
rt_subdir(const char *name)
{
	char	*d;

	d = tg_printf_dup("%s/%s", rt_dir, name);
	rt_rmtree(d);
	assert_int_equal(mkdir(d, 0700), 0);
	return d;
}

/* rt_rec - a plausible record; i varies the source address */
static void
rt_rec(struct dmarc_report_rec *r, const char *domain, time_t when, int i,
    char *ip, size_t iplen)
{
	memset(r, 0, sizeof(*r));
	(void)snprintf(ip, iplen, "192.0.2.%d", i % 200);
	r->when = when;
	r->source_ip = ip;
	r->header_from = domain;
	r->envelope_from = domain;
	r->envelope_to = "example.net";
	r->policy_domain = domain;
	r->p = "reject";
	r->sp = "quarantine";
	r->np = NULL;
	r->adkim = "r";
	r->aspf = "s";
	r->pct = -1;
	r->fo = "1";
	r->testing = false;
	r->rua = "mailto:dmarc@example.com";
	r->disposition = "none";
	r->dkim_pass = true;
	r->spf_pass = i % 2 == 0;
	r->dkim[0].domain = domain;
	r->dkim[0].selector = "sel";
	r->dkim[0].result = "pass";
	r->ndkim = 1;
	r->spf_domain = domain;
	r->spf_result = i % 2 == 0 ? "pass" : "softfail";
}

/* rt_count - records in the store */
static size_t
rt_count(struct dmarc_report_store *s)
{
	size_t	n = 0;

	assert_int_equal(dmarc_report_count(s, &n, NULL), TG_OK);
	return n;
}

/* test_codec - every field survives encode/decode; damage is TG_PERM */
static void
test_codec(void **state)
{
	struct dmarc_report_rec		 r;
	struct dmarc_report_item	 it;
	struct tg_buf			 b;
	char				 ip[32], longs[3000];
	size_t				 cut;

	rt_rec(&r, "Example.COM", RT_BEGIN + 5, 7, ip, sizeof(ip));
	r.pct = 50;
	r.testing = true;
	r.reason = "local_policy";
	r.reason_comment = "forwarder <list>";
	r.dkim[1].domain = "other.example";
	r.dkim[1].selector = NULL;
	r.dkim[1].result = "fail";
	r.ndkim = 2;
	memset(longs, 'x', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	/* a two-byte character straddling the cut is dropped whole */
	longs[DMARC_REPORT_MAX_STR - 1] = '\xc3';
	longs[DMARC_REPORT_MAX_STR] = '\xa9';
	r.envelope_to = longs;
	tg_buf_init(&b);
	dmarc_report_encode(&b, &r);
	assert_int_equal(dmarc_report_decode(b.data, b.len, &it), TG_OK);
	assert_int_equal(it.rec.when, RT_BEGIN + 5);
	assert_string_equal(it.rec.source_ip, "192.0.2.7");
	assert_string_equal(it.rec.policy_domain, "Example.COM");
	assert_null(it.rec.np);
	assert_int_equal(it.rec.pct, 50);
	assert_true(it.rec.testing);
	assert_true(it.rec.dkim_pass);
	assert_false(it.rec.spf_pass);
	assert_string_equal(it.rec.reason_comment, "forwarder <list>");
	assert_int_equal(it.rec.ndkim, 2);
	assert_string_equal(it.rec.dkim[1].domain, "other.example");
	assert_null(it.rec.dkim[1].selector);
	assert_string_equal(it.rec.dkim[1].result, "fail");
	assert_string_equal(it.rec.spf_result, "softfail");
	assert_int_equal(strlen(it.rec.envelope_to), DMARC_REPORT_MAX_STR - 1);
	dmarc_report_item_fini(&it);
	/* Every truncation and a wrong version are refused. */
	for (cut = 0; cut < b.len; cut++)
		assert_int_equal(dmarc_report_decode(b.data, cut, &it),
		    TG_PERM);
	b.data[0] = 9;
	assert_int_equal(dmarc_report_decode(b.data, b.len, &it), TG_PERM);
	tg_buf_fini(&b);
}

struct rt_thread {
	struct dmarc_report_store	*store;
	int				 id;
	int				 failures;
};

/* rt_adder - one milter thread's worth of records for three domains */
static void *
rt_adder(void *arg)
{
	static const char *const domains[] = {
		"a.example", "b.example", "c.example.org"
	};
	struct rt_thread	*t = arg;
	struct dmarc_report_rec	 r;
	char			 ip[32];
	int			 i;

	for (i = 0; i < RT_PER_THREAD; i++) {
		rt_rec(&r, domains[i % 3], RT_BEGIN + i * 60 + t->id, i, ip,
		    sizeof(ip));
		if (dmarc_report_add(t->store, &r, NULL) != TG_OK)
			t->failures++;
	}
	return NULL;
}

struct rt_collect {
	size_t		n;
	uint64_t	last_time;
	bool		ordered;
	size_t		stop_at;	/* 0: never */
};

/* rt_collect_fn - count records and check time order */
static enum tg_status
rt_collect_fn(const struct dmarc_report_item *it, void *arg)
{
	struct rt_collect	*c = arg;

	if (c->stop_at != 0 && c->n == c->stop_at)
		return TG_NOTFOUND;
	if (it->time < c->last_time)
		c->ordered = false;
	c->last_time = it->time;
	c->n++;
	return TG_OK;
}

/* rt_span - a span of a domain over [begin, end) */
static void
rt_span(struct dmarc_report_span *sp, const char *domain, uint64_t begin,
    uint64_t end)
{
	memset(sp, 0, sizeof(*sp));
	assert_true(dmarc_report_lower_domain(domain, sp->domain,
	    sizeof(sp->domain)));
	sp->begin = begin;
	sp->end = end;
}

/* test_store_threads - concurrent adds, durable across a reopen */
static void
test_store_threads(void **state)
{
	struct dmarc_report_store	*s;
	struct rt_thread		 t[RT_THREADS];
	pthread_t			 tid[RT_THREADS];
	struct dmarc_report_span	 sp;
	struct rt_collect		 c;
	struct tg_err			 err;
	char				*dir, dom[DMARC_REPORT_MAX_DOMAIN + 1];
	size_t				 ndom = 0;
	int				 i;

	dir = tg_printf_dup("%s/threads", rt_dir);
	s = dmarc_report_open(dir, false, &err);
	assert_non_null(s);
	for (i = 0; i < RT_THREADS; i++) {
		t[i] = (struct rt_thread){ .store = s, .id = i };
		assert_int_equal(pthread_create(&tid[i], NULL, rt_adder,
		    &t[i]), 0);
	}
	for (i = 0; i < RT_THREADS; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(t[i].failures, 0);
	}
	s = dmarc_report_close(s);

	/* A second process would open it the same way: read-only here. */
	s = dmarc_report_open(dir, true, &err);
	assert_non_null(s);
	assert_int_equal(rt_count(s), RT_THREADS * RT_PER_THREAD);
	dom[0] = '\0';
	while (dmarc_report_next_domain(s, dom, dom, NULL) == TG_OK)
		ndom++;
	assert_int_equal(ndom, 3);
	/* One domain in time order; the other domains' records not seen. */
	rt_span(&sp, "B.Example.", RT_BEGIN, RT_BEGIN + RT_DAY);
	memset(&c, 0, sizeof(c));
	c.ordered = true;
	assert_int_equal(dmarc_report_scan(s, &sp, rt_collect_fn, &c, NULL),
	    TG_OK);
	assert_true(sp.done);
	assert_true(c.ordered);
	/* i % 3 == 1 for i < 50: 17 per thread */
	assert_int_equal(c.n, 17 * RT_THREADS);
	/* A read-only handle refuses writes. */
	assert_int_equal(dmarc_report_delete_span(s, &sp, &c.n, &err),
	    TG_PERM);
	s = dmarc_report_close(s);
	assert_null(dmarc_report_close(NULL));
	free(dir);
}

/* test_store_chunks_delete - resumable chunks, exact deletion, expiry */
static void
test_store_chunks_delete(void **state)
{
	struct dmarc_report_store	*s;
	struct dmarc_report_span	 sp;
	struct dmarc_report_rec		 r;
	struct rt_collect		 c;
	char				*dir, ip[32];
	size_t				 ndel, total = 0;
	int				 i;

	dir = rt_subdir("chunks");
	s = dmarc_report_open(dir, false, NULL);
	assert_non_null(s);
	/* 30 records today, 5 yesterday, 5 tomorrow, 4 of another domain */
	for (i = 0; i < 30; i++) {
		rt_rec(&r, "x.example", RT_BEGIN + i * 100, i, ip, sizeof(ip));
		assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
	}
	for (i = 0; i < 5; i++) {
		rt_rec(&r, "x.example", RT_BEGIN - 10 - i, i, ip, sizeof(ip));
		assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
		rt_rec(&r, "x.example", RT_BEGIN + RT_DAY + i, i, ip,
		    sizeof(ip));
		assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
	}
	for (i = 0; i < 4; i++) {
		rt_rec(&r, "x.example.net", RT_BEGIN + i, i, ip, sizeof(ip));
		assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
	}
	assert_int_equal(rt_count(s), 44);
	rt_span(&sp, "x.example", RT_BEGIN, RT_BEGIN + RT_DAY);
	memset(&c, 0, sizeof(c));
	c.stop_at = 12;
	do {
		c.n = 0;
		assert_int_equal(dmarc_report_scan(s, &sp, rt_collect_fn, &c,
		    NULL), TG_OK);
		total += c.n;
		/* A record added after the snapshot, inside the chunk's
		 * range, must survive the chunk's deletion. */
		if (total == 12) {
			rt_rec(&r, "x.example", RT_BEGIN + 500, 1, ip,
			    sizeof(ip));
			assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
		}
		assert_int_equal(dmarc_report_delete_span(s, &sp, &ndel,
		    NULL), TG_OK);
		assert_int_equal(ndel, c.n);
	} while (!sp.done);
	assert_int_equal(total, 30);
	/* left: 5 + 5 x.example, 4 x.example.net, and the late one */
	assert_int_equal(rt_count(s), 15);
	assert_int_equal(dmarc_report_expire(s, RT_BEGIN, &ndel, NULL), TG_OK);
	assert_int_equal(ndel, 5);
	assert_int_equal(dmarc_report_expire(s, RT_BEGIN + 4, &ndel, NULL),
	    TG_OK);
	assert_int_equal(ndel, 4);
	assert_int_equal(rt_count(s), 6);
	s = dmarc_report_close(s);
	free(dir);
}

/* test_store_errors - bad input and a store that cannot be opened */
static void
test_store_errors(void **state)
{
	struct dmarc_report_store	*s;
	struct dmarc_report_rec		 r;
	struct tg_err			 err;
	char				*dir, ip[32], big[300];

	assert_null(dmarc_report_open("", false, &err));
	dir = tg_printf_dup("%s/missing", rt_dir);
	assert_null(dmarc_report_open(dir, true, &err));
	assert_int_equal(err.status, TG_NOTFOUND);
	free(dir);
	dir = rt_subdir("errors");
	s = dmarc_report_open(dir, false, NULL);
	assert_non_null(s);
	rt_rec(&r, NULL, RT_BEGIN, 1, ip, sizeof(ip));
	assert_int_equal(dmarc_report_add(s, &r, &err), TG_PERM);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	r.policy_domain = big;
	assert_int_equal(dmarc_report_add(s, &r, &err), TG_PERM);
	r.policy_domain = "";
	assert_int_equal(dmarc_report_add(s, &r, &err), TG_PERM);
	assert_int_equal(rt_count(s), 0);
	s = dmarc_report_close(s);
	free(dir);
}

/* rt_gunzip - an independent inflate of a gzip file into a string */
static char *
rt_gunzip(const char *path, size_t *outlen)
{
	struct tg_buf	 out;
	z_stream	 z;
	char		*gz;
	size_t		 len;
	unsigned char	 chunk[4096];
	int		 rc;

	assert_int_equal(tg_read_file(path, &gz, &len, NULL), TG_OK);
	assert_true(len > 18);
	/* RFC 1952 magic */
	assert_int_equal((unsigned char)gz[0], 0x1f);
	assert_int_equal((unsigned char)gz[1], 0x8b);
	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (unsigned char *)gz;
	z.avail_in = (uInt)len;
	tg_buf_init(&out);
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = inflate(&z, Z_NO_FLUSH);
		assert_true(rc == Z_OK || rc == Z_STREAM_END);
		tg_buf_append(&out, chunk, sizeof(chunk) - z.avail_out);
	} while (rc != Z_STREAM_END);
	assert_int_equal(z.avail_in, 0);
	(void)inflateEnd(&z);
	free(gz);
	*outlen = out.len;
	return tg_buf_steal(&out);
}

/* rt_xmllint - whether xmllint accepts the file against the schema */
static bool
rt_xmllint(const char *xmlpath)
{
	char	*cmd;
	int	 rc;

	cmd = tg_printf_dup("xmllint --noout --schema '%s' '%s' >/dev/null "
	    "2>&1", RT_XSD, xmlpath);
	rc = system(cmd);
	free(cmd);
	return rc == 0;
}

/* rt_count_str - occurrences of needle in hay */
static size_t
rt_count_str(const char *hay, const char *needle)
{
	size_t	n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* rt_sum_counts - the sum of every <count>N</count> */
static unsigned long
rt_sum_counts(const char *xml)
{
	unsigned long	sum = 0;
	long		v;
	const char	*p = xml, *e;
	char		 num[32];

	while ((p = strstr(p, "<count>")) != NULL) {
		p += 7;
		e = strchr(p, '<');
		assert_non_null(e);
		assert_true((size_t)(e - p) < sizeof(num));
		memcpy(num, p, (size_t)(e - p));
		num[e - p] = '\0';
		assert_true(tg_parse_long(num, 1, 1000000, &v));
		sum += (unsigned long)v;
	}
	return sum;
}

struct rt_report {
	char		*name;
	char		*xml;
};

/* rt_reports - every .xml.gz in dir: unpacked, schema-checked */
static size_t
rt_reports(const char *dir, struct rt_report *out, size_t max)
{
	char	*cmd, line[1024], *path, *xmlpath;
	FILE	*f;
	size_t	 n = 0, len;
	int	 fd;

	cmd = tg_printf_dup("ls '%s' | sort", dir);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		assert_true(n < max);
		out[n].name = tg_strdup(line);
		path = tg_printf_dup("%s/%s", dir, line);
		out[n].xml = rt_gunzip(path, &len);
		assert_int_equal(strlen(out[n].xml), len);
		/* xmllint reads a file: the unpacked XML beside the dir */
		xmlpath = tg_printf_dup("%s/unpacked.xml", rt_dir);
		fd = open(xmlpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(fd != -1);
		assert_int_equal(write(fd, out[n].xml, len), (ssize_t)len);
		assert_int_equal(close(fd), 0);
		if (!rt_xmllint(xmlpath))
			fail_msg("%s is not schema-valid:\n%s", line,
			    out[n].xml);
		free(xmlpath);
		free(path);
		n++;
	}
	assert_int_equal(pclose(f), 0);
	free(cmd);
	return n;
}

/* rt_reports_free - release what rt_reports returned */
static void
rt_reports_free(struct rt_report *r, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(r[i].name);
		free(r[i].xml);
	}
}

static const struct dmarc_report_conf rt_conf = {
	.dir = "",
	.org_name = "Tollgate Test & Co <reports>",
	.email = "dmarc-noreply@receiver.example",
	.sendmail = "/nonexistent/sendmail",
	.keep = 7 * RT_DAY,
};

/* rt_opts - options for a file-only run over the test day */
static struct dmarc_report_run_opts
rt_opts(const char *out, size_t max_rows)
{
	return (struct dmarc_report_run_opts){
		.conf = &rt_conf, .begin = RT_BEGIN, .end = RT_BEGIN + RT_DAY,
		.now = RT_BEGIN + RT_DAY + 3600, .out_dir = out,
		.max_rows = max_rows,
	};
}

/* rt_fill - 3 domains x 40 messages in the day, 4 sources each, plus
 * records before and after the day */
static struct dmarc_report_store *
rt_fill(const char *name)
{
	static const char *const domains[] = {
		"a.example", "B.example", "c.example.org"
	};
	struct dmarc_report_store	*s;
	struct dmarc_report_rec		 r;
	char				*dir, ip[32];
	int				 d, i;

	dir = rt_subdir(name);
	s = dmarc_report_open(dir, false, NULL);
	assert_non_null(s);
	for (d = 0; d < 3; d++)
		for (i = 0; i < 40; i++) {
			rt_rec(&r, domains[d], RT_BEGIN + i * 1000, i % 4, ip,
			    sizeof(ip));
			assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
		}
	/* outside the period: yesterday (expires after 7 days) and
	 * well beyond report_keep, and tomorrow */
	rt_rec(&r, "a.example", RT_BEGIN - 1, 1, ip, sizeof(ip));
	assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
	rt_rec(&r, "a.example", RT_BEGIN - 30 * RT_DAY, 1, ip, sizeof(ip));
	assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
	rt_rec(&r, "a.example", RT_BEGIN + RT_DAY, 1, ip, sizeof(ip));
	assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
	free(dir);
	return s;
}

/* test_report_files - aggregation, schema, names, deletion, expiry */
static void
test_report_files(void **state)
{
	struct dmarc_report_store	*s;
	struct dmarc_report_run_opts	 o;
	struct dmarc_report_stats	 st;
	struct rt_report		 rep[8];
	struct tg_err			 err;
	char				*out, want[256];
	size_t				 n, i;

	s = rt_fill("files");
	/* Reopened, as tollgatectl does in its own process. */
	s = dmarc_report_close(s);
	out = tg_printf_dup("%s/files", rt_dir);
	s = dmarc_report_open(out, false, &err);
	assert_non_null(s);
	free(out);
	out = rt_subdir("files-out");
	o = rt_opts(out, 0);
	assert_int_equal(dmarc_report_run(s, &o, &st, &err), TG_OK);
	assert_int_equal(st.reports, 3);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.deleted, 120);
	assert_int_equal(st.expired, 1);	/* the 30-day-old one */
	assert_int_equal(rt_count(s), 2);	/* yesterday, tomorrow */
	n = rt_reports(out, rep, TG_NITEMS(rep));
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++) {
		/* receiver!policy-domain!begin!end!unique-id.xml.gz */
		(void)snprintf(want, sizeof(want), "receiver.example!%s!%d!%d!",
		    i == 0 ? "a.example" : i == 1 ? "b.example" :
		    "c.example.org", RT_BEGIN, RT_BEGIN + RT_DAY - 1);
		assert_memory_equal(rep[i].name, want, strlen(want));
		assert_non_null(strstr(rep[i].name, ".xml.gz"));
		assert_int_equal(strspn(rep[i].name + strlen(want),
		    "0123456789abcdefghijklmnopqrstuvwxyz"),
		    strlen(rep[i].name) - strlen(want) - 7);
		/* 4 sources x 2 SPF outcomes fold into 4 rows (i % 4 fixes
		 * both), 40 messages */
		assert_int_equal(rt_count_str(rep[i].xml, "<record>"), 4);
		assert_int_equal(rt_sum_counts(rep[i].xml), 40);
		assert_non_null(strstr(rep[i].xml,
		    "<org_name>Tollgate Test &amp; Co &lt;reports&gt;"
		    "</org_name>"));
		assert_non_null(strstr(rep[i].xml, "<p>reject</p>"));
		assert_non_null(strstr(rep[i].xml, "<sp>quarantine</sp>"));
		assert_null(strstr(rep[i].xml, "<np>"));
		assert_non_null(strstr(rep[i].xml, "<scope>mfrom</scope>"));
		/* the report_id is the file name's unique-id */
		(void)snprintf(want, sizeof(want),
		    "<report_id>%.*s</report_id>",
		    (int)(strlen(rep[i].name) - strlen(want) - 7),
		    rep[i].name + strlen(want));
		assert_non_null(strstr(rep[i].xml, want));
	}
	rt_reports_free(rep, n);
	/* A second run finds nothing left to report. */
	rt_rmtree(out);
	assert_int_equal(mkdir(out, 0700), 0);
	assert_int_equal(dmarc_report_run(s, &o, &st, &err), TG_OK);
	assert_int_equal(st.reports, 0);
	assert_int_equal(rt_reports(out, rep, TG_NITEMS(rep)), 0);
	s = dmarc_report_close(s);
	free(out);
}

/* test_report_chunks - a row cap splits a domain into more reports,
 * and --dry-run changes nothing */
static void
test_report_chunks(void **state)
{
	struct dmarc_report_store	*s;
	struct dmarc_report_run_opts	 o;
	struct dmarc_report_stats	 st;
	struct rt_report		 rep[64];
	char				*out;
	unsigned long			 total = 0;
	size_t				 n, i;

	s = rt_fill("chunks-store");
	out = rt_subdir("chunks-out");
	o = rt_opts(out, 3);
	o.dry_run = true;
	assert_int_equal(dmarc_report_run(s, &o, &st, NULL), TG_OK);
	/*
	 * A report covers consecutive records, so that exactly those are
	 * deleted: sources cycle 0 1 2 3, so each 3-row report holds 3
	 * records, 14 reports per domain.
	 */
	assert_int_equal(st.reports, 42);
	assert_int_equal(st.deleted + st.expired, 0);
	assert_int_equal(rt_count(s), 123);
	assert_int_equal(rt_reports(out, rep, TG_NITEMS(rep)), 0);
	o.dry_run = false;
	assert_int_equal(dmarc_report_run(s, &o, &st, NULL), TG_OK);
	assert_int_equal(st.reports, 42);
	assert_int_equal(st.deleted, 120);
	n = rt_reports(out, rep, TG_NITEMS(rep));
	assert_int_equal(n, 42);
	for (i = 0; i < n; i++) {
		assert_true(rt_count_str(rep[i].xml, "<record>") <= 3);
		total += rt_sum_counts(rep[i].xml);
	}
	assert_int_equal(total, 120);
	rt_reports_free(rep, n);
	s = dmarc_report_close(s);
	free(out);
}

/* test_report_hostile - attacker strings are escaped, schema still holds */
static void
test_report_hostile(void **state)
{
	struct dmarc_report_store	*s;
	struct dmarc_report_run_opts	 o;
	struct dmarc_report_stats	 st;
	struct dmarc_report_rec		 r;
	struct rt_report		 rep[4];
	struct tg_buf			 b;
	char				*dir, *out, ip[32];
	size_t				 n;

	tg_buf_init(&b);
	dmarc_report_xml_escape(&b, "a<b>&\"'\x01\x7f\xff\xc3\xa9"
	    "\xed\xa0\x80\xef\xbf\xbe\xf0\x9f\x98\x80\xc0\xafz");
	assert_string_equal(tg_buf_cstr(&b), "a&lt;b&gt;&amp;&quot;&apos;"
	    "\xef\xbf\xbd\x7f\xef\xbf\xbd\xc3\xa9"
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"	/* a surrogate */
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"	/* U+FFFE */
	    "\xf0\x9f\x98\x80\xef\xbf\xbd\xef\xbf\xbdz");
	tg_buf_fini(&b);

	dir = rt_subdir("hostile");
	s = dmarc_report_open(dir, false, NULL);
	assert_non_null(s);
	rt_rec(&r, "evil.example", RT_BEGIN + 5, 1, ip, sizeof(ip));
	r.header_from = "</header_from><injected/>\x02\xfe";
	r.envelope_from = "";			/* null reverse-path */
	r.envelope_to = "]]><!-- & -->";
	r.reason = "sampled_out";		/* not in RFC 9990 */
	r.reason_comment = NULL;
	r.dkim[0].selector = "s<1>";
	r.dkim[1].domain = "bad.example";
	r.dkim[1].selector = NULL;
	r.dkim[1].result = "bogus";		/* not reportable: dropped */
	r.ndkim = 2;
	r.spf_result = "pass";
	r.disposition = "explode";		/* becomes none */
	r.sp = "maybe";				/* optional: omitted */
	assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
	/* a policy domain unusable in a file name is never reported */
	r.policy_domain = "../../etc/passwd";
	assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
	out = rt_subdir("hostile-out");
	o = rt_opts(out, 0);
	assert_int_equal(dmarc_report_run(s, &o, &st, NULL), TG_OK);
	assert_int_equal(st.reports, 1);
	assert_int_equal(rt_count(s), 1);
	n = rt_reports(out, rep, TG_NITEMS(rep));
	assert_int_equal(n, 1);
	assert_null(strstr(rep[0].xml, "<injected/>"));
	assert_non_null(strstr(rep[0].xml, "&lt;/header_from&gt;&lt;injected/"
	    "&gt;\xef\xbf\xbd\xef\xbf\xbd</header_from>"));
	assert_non_null(strstr(rep[0].xml, "<envelope_from></envelope_from>"));
	assert_non_null(strstr(rep[0].xml, "<type>other</type>"));
	assert_non_null(strstr(rep[0].xml, "<comment>sampled_out</comment>"));
	assert_null(strstr(rep[0].xml, "bad.example"));
	assert_null(strstr(rep[0].xml, "<sp>"));
	assert_non_null(strstr(rep[0].xml, "<disposition>none</disposition>"));
	rt_reports_free(rep, n);
	s = dmarc_report_close(s);
	free(out);
	free(dir);
}

/* test_rua_parse - mailto: URIs, size limits, hostile addresses */
static void
test_rua_parse(void **state)
{
	static const struct {
		const char	*rua;
		size_t		 n, skipped;
		const char	*addr0, *host0;
		uint64_t	 size0;
		const char	*addr1;
	} cases[] = {
		{ "mailto:d@example.com", 1, 0, "d@example.com",
		  "example.com", 0, NULL },
		{ " mailto:d@Example.COM!10m , MAILTO:e@x.example!512 ", 2, 0,
		  "d@Example.COM", "example.com", 10 << 20, "e@x.example" },
		{ "mailto:a%21b@example.com!1k,https://x.example/r", 1, 1,
		  "a!b@example.com", "example.com", 1024, NULL },
		/* a decoded comma could split a recipient list: refused */
		{ "mailto:a%2Cb@example.com", 0, 1, NULL, NULL, 0, NULL },
		{ "mailto:r@example.com?subject=hi!2g", 1, 0, "r@example.com",
		  "example.com", (uint64_t)2 << 30, NULL },
		{ "mailto:-oQ/tmp@example.com,mailto:a b@x.example,"
		  "mailto:a@b@c,mailto:x@ex%0Aample.com,mailto:x@y!9q,"
		  "mailto:@x.example,mailto:x%00@y.example", 0, 7,
		  NULL, NULL, 0, NULL },
		{ "", 0, 0, NULL, NULL, 0, NULL },
		{ ",,mailto:z@z.example,", 1, 0, "z@z.example", "z.example",
		  0, NULL },
	};
	struct dmarc_report_rua	*r;
	size_t			 i, n, skipped;

	for (i = 0; i < TG_NITEMS(cases); i++) {
		dmarc_report_rua_parse(cases[i].rua, &r, &n, &skipped);
		assert_int_equal(n, cases[i].n);
		assert_int_equal(skipped, cases[i].skipped);
		if (n > 0) {
			assert_string_equal(r[0].addr, cases[i].addr0);
			assert_string_equal(r[0].host, cases[i].host0);
			assert_int_equal(r[0].max_size, cases[i].size0);
		}
		if (n > 1)
			assert_string_equal(r[1].addr, cases[i].addr1);
		dmarc_report_rua_free(r, n);
	}
	dmarc_report_rua_parse(NULL, &r, &n, NULL);
	assert_int_equal(n, 0);
}

static const char *const rt_zone[] = {
	"example.net. 300 IN SOA ns.example.net. h.example.net. 1 3600 600 "
	    "86400 300",
	"a.example._report._dmarc.example.net. 300 IN TXT \"v=DMARC1\"",
	"b.example._report._dmarc.example.net. 300 IN TXT \"v=spf1 -all\"",
	"c.example._report._dmarc.example.net. 300 IN TXT \"p=none; "
	    "v=DMARC1\"",
	"d.example._report._dmarc.example.net. 300 IN TXT \"v = DMARC1 ; "
	    "rua=mailto:other@example.net,mailto:x@elsewhere.example\"",
	"$SERVFAIL e.example._report._dmarc.example.net.",
	"$TIMEOUT f.example._report._dmarc.example.net.",
};

/* rt_dns - an offline resolver holding rt_zone */
static struct tg_dns *
rt_dns(void)
{
	struct tg_dns_conf	 conf = { .timeout = 2, .offline = true };
	struct tg_dns		*dns;
	struct tg_err		 err;
	size_t			 i;

	dns = tg_dns_new(&conf, &err);
	assert_non_null(dns);
	for (i = 0; i < TG_NITEMS(rt_zone); i++)
		if (tg_dns_load_line(dns, rt_zone[i], &err) != TG_OK)
			fail_msg("%s: %s", rt_zone[i], err.text);
	return dns;
}

/* test_verify_dest - RFC 9990 4: pass, fail and temperror */
static void
test_verify_dest(void **state)
{
	static const struct {
		const char	*domain, *host;
		enum tg_status	 want;
		const char	*override;
	} cases[] = {
		{ "a.example", "example.net", TG_OK, NULL },
		{ "b.example", "example.net", TG_NOTFOUND, NULL },
		{ "c.example", "example.net", TG_NOTFOUND, NULL },
		{ "d.example", "example.net", TG_OK,
		  "mailto:other@example.net,mailto:x@elsewhere.example" },
		{ "e.example", "example.net", TG_TEMP, NULL },
		{ "f.example", "example.net", TG_TEMP, NULL },
		{ "g.example", "example.net", TG_NOTFOUND, NULL },
		/* inside the policy domain: no query (offline would fail) */
		{ "example.org", "example.org", TG_OK, NULL },
		{ "example.org", "reports.Example.ORG", TG_OK, NULL },
		{ "example.org", "badexample.org", TG_TEMP, NULL },
	};
	struct tg_dns	*dns;
	struct tg_err	 err;
	char		*ov, *longd;
	size_t		 i;

	dns = rt_dns();
	for (i = 0; i < TG_NITEMS(cases); i++) {
		assert_int_equal(dmarc_report_verify_dest(dns, cases[i].domain,
		    cases[i].host, &ov, &err), cases[i].want);
		if (cases[i].override != NULL)
			assert_string_equal(ov, cases[i].override);
		else
			assert_null(ov);
		free(ov);
	}
	/* Step 4: a name over 253 octets cannot be verified. */
	longd = tg_printf_dup("%0250d.example", 0);
	assert_int_equal(dmarc_report_verify_dest(dns, "x.example", longd,
	    NULL, &err), TG_NOTFOUND);
	free(longd);
	dns = tg_dns_free(dns);
}

/* rt_sendmail - a fake sendmail program: saves argv and stdin, exits
 * with the status in the file "status" beside it */
static char *
rt_sendmail(const char *dir)
{
	char	*path, *script;
	int	 fd;

	path = tg_printf_dup("%s/sendmail", dir);
	script = tg_printf_dup("#!/bin/sh\n"
	    "n=$(ls '%s'/msg.* 2>/dev/null | wc -l)\n"
	    "printf '%%s\\n' \"$*\" > '%s'/argv.$n\n"
	    "cat > '%s'/msg.$n\n"
	    "exit $(cat '%s'/status)\n", dir, dir, dir, dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0700);
	assert_true(fd != -1);
	assert_int_equal(write(fd, script, strlen(script)),
	    (ssize_t)strlen(script));
	assert_int_equal(close(fd), 0);
	free(script);
	return path;
}

/* rt_put - a small file */
static void
rt_put(const char *dir, const char *name, const char *text)
{
	char	*path;
	int	 fd;

	path = tg_printf_dup("%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
	free(path);
}

/* rt_get - a small file's contents, or NULL */
static char *
rt_get(const char *dir, const char *name)
{
	char	*path, *text = NULL;
	size_t	 len;

	path = tg_printf_dup("%s/%s", dir, name);
	if (tg_read_file(path, &text, &len, NULL) != TG_OK)
		text = NULL;
	free(path);
	return text;
}

/*
 * test_sendmail_stuck - a sendmail that neither reads nor exits is
 * killed at the deadline, and the hand-over fails for now: the run
 * goes on and the records stay
 */
static void
test_sendmail_stuck(void **state)
{
	struct timespec	 t0, t1;
	struct tg_err	 err;
	char		*dir, *sm, *msg;
	size_t		 len = 1024 * 1024;

	(void)state;
	dir = rt_subdir("stuck");
	rt_put(dir, "sendmail", "#!/bin/sh\nexec sleep 60\n");
	sm = tg_printf_dup("%s/sendmail", dir);
	assert_int_equal(chmod(sm, 0700), 0);
	msg = tg_malloc(len);
	memset(msg, 'x', len);	/* more than a pipe holds */
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(dmarc_report_sendmail(sm, "r@example.net",
	    "a@example.org", msg, len, 1, &err), TG_TEMP);
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 10);
	assert_non_null(strstr(err.text, "killed"));
	free(msg);
	free(sm);
	free(dir);
}

/* test_send - rua delivery through a sendmail program: failure keeps
 * the records, success deletes them; sizes and verification */
static void
test_send(void **state)
{
	struct dmarc_report_conf	 conf = rt_conf;
	struct dmarc_report_store	*s;
	struct dmarc_report_run_opts	 o;
	struct dmarc_report_stats	 st;
	struct dmarc_report_rec		 r;
	struct tg_dns			*dns;
	char				*dir, *mail, *sm, *t, *id, ip[32];
	const char			*p;
	size_t				 len;

	dir = rt_subdir("send");
	mail = rt_subdir("send-mail");
	sm = rt_sendmail(mail);
	conf.sendmail = tg_printf_dup("%s -oi", sm);
	s = dmarc_report_open(dir, false, NULL);
	assert_non_null(s);
	rt_rec(&r, "a.example", RT_BEGIN + 10, 1, ip, sizeof(ip));
	/* in-domain, external+verified, external+unverified, too small */
	r.rua = "mailto:agg@a.example,mailto:rep@example.net,"
	    "mailto:x@b.example.net,mailto:small@a.example!100";
	assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
	dns = rt_dns();
	o = rt_opts(NULL, 0);
	o.conf = &conf;
	o.dns = dns;
	o.send = true;

	/* sendmail fails: nothing deleted, counted as failed */
	rt_put(mail, "status", "75\n");
	tg_buf_reset(&rt_log);
	assert_int_equal(dmarc_report_run(s, &o, &st, NULL), TG_OK);
	id = tg_printf_dup("%s/msg.0", mail);
	assert_int_equal(tg_read_file(id, &t, &len, NULL), TG_OK);
	free(id);
	assert_non_null(p = strstr(t, "Report-ID: "));
	id = tg_strndup(p, strcspn(p, "\n") + 1);
	free(t);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.sent, 0);
	assert_int_equal(rt_count(s), 1);
	assert_non_null(strstr(tg_buf_cstr(&rt_log), "rua=agg@a.example: "));
	assert_non_null(strstr(tg_buf_cstr(&rt_log), "exited with status 75"));
	assert_non_null(strstr(tg_buf_cstr(&rt_log), "rua=x@b.example.net: "
	    "not authorized: a.example._report._dmarc.b.example.net"));
	assert_non_null(strstr(tg_buf_cstr(&rt_log), "rua=small@a.example: "
	    "report of "));

	rt_rmtree(mail);
	assert_int_equal(mkdir(mail, 0700), 0);
	free(rt_sendmail(mail));
	rt_put(mail, "status", "0\n");
	assert_int_equal(dmarc_report_run(s, &o, &st, NULL), TG_OK);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.sent, 2);
	assert_int_equal(st.deleted, 1);
	assert_int_equal(rt_count(s), 0);
	t = rt_get(mail, "argv.0");
	assert_string_equal(t, "-oi -i -f dmarc-noreply@receiver.example -- "
	    "agg@a.example\n");
	free(t);
	t = rt_get(mail, "argv.1");
	assert_string_equal(t, "-oi -i -f dmarc-noreply@receiver.example -- "
	    "rep@example.net\n");
	free(t);
	assert_null(rt_get(mail, "argv.2"));
	t = rt_get(mail, "msg.0");
	assert_non_null(t);
	assert_non_null(strstr(t, "\nSubject: Report Domain: a.example\n"
	    " Submitter: receiver.example\n Report-ID: "));
	assert_non_null(strstr(t, "From: dmarc-noreply@receiver.example\n"));
	assert_non_null(strstr(t, "To: agg@a.example\n"));
	/* RFC 9990 3.2.1: a resent report keeps its Report-ID (and name) */
	assert_non_null(strstr(t, id));
	free(id);
	assert_non_null(strstr(t, "Content-Type: application/gzip; "
	    "name=\"receiver.example!a.example!"));
	assert_non_null(strstr(t, "Content-Transfer-Encoding: base64\n\n"
	    "H4sI"));	/* base64 of the gzip magic 1f 8b 08 */
	free(t);

	/* A DNS temperror for a destination keeps the records too. */
	r.rua = "mailto:x@f.example.net";
	r.policy_domain = r.header_from = "f.example";
	assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
	assert_int_equal(dmarc_report_run(s, &o, &st, NULL), TG_OK);
	assert_int_equal(st.failed, 0);	/* f.example._report... at
					 * example.net, not f.example.net */
	r.rua = "mailto:x@example.net";
	assert_int_equal(dmarc_report_add(s, &r, NULL), TG_OK);
	assert_int_equal(dmarc_report_run(s, &o, &st, NULL), TG_OK);
	assert_int_equal(st.failed, 1);
	assert_int_equal(rt_count(s), 1);

	dns = tg_dns_free(dns);
	s = dmarc_report_close(s);
	free((char *)conf.sendmail);
	free(sm);
	free(mail);
	free(dir);
}

/* test_run_refuses - bad settings are refused before anything runs */
static void
test_run_refuses(void **state)
{
	struct dmarc_report_conf	 conf = rt_conf;
	struct dmarc_report_store	*s;
	struct dmarc_report_run_opts	 o;
	struct dmarc_report_stats	 st;
	struct tg_err			 err;
	char				*dir;

	dir = rt_subdir("refuse");
	s = dmarc_report_open(dir, false, NULL);
	o = rt_opts(NULL, 0);
	o.conf = &conf;
	conf.email = "not a mailbox";
	assert_int_equal(dmarc_report_run(s, &o, &st, &err), TG_PERM);
	conf.email = rt_conf.email;
	o.end = o.begin;
	assert_int_equal(dmarc_report_run(s, &o, &st, &err), TG_PERM);
	o = rt_opts(NULL, 0);
	o.send = true;
	assert_int_equal(dmarc_report_run(s, &o, &st, &err), TG_PERM);
	s = dmarc_report_close(s);
	free(dir);
}

/* test_store_full - a full map is TG_TEMP, and expiry makes room */
static void
test_store_full(void **state)
{
	struct dmarc_report_store	*s;
	struct dmarc_report_rec		 r;
	struct tg_err			 err;
	char				*dir, ip[32], big[2001];
	size_t				 n = 0, ndel;
	enum tg_status			 st;

	dir = rt_subdir("full");
	dmarc_report_set_map_size(256 << 10);
	s = dmarc_report_open(dir, false, &err);
	dmarc_report_set_map_size(0);
	assert_non_null(s);
	memset(big, 'c', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	rt_rec(&r, "full.example", RT_BEGIN, 1, ip, sizeof(ip));
	r.reason_comment = big;
	while ((st = dmarc_report_add(s, &r, &err)) == TG_OK) {
		assert_true(++n < 1000);
		r.when++;
	}
	assert_int_equal(st, TG_TEMP);
	assert_non_null(strstr(err.text, "MDB_MAP_FULL"));
	assert_true(n > 10);
	assert_int_equal(rt_count(s), n);
	/* Expiry frees pages that later adds reuse. */
	assert_int_equal(dmarc_report_expire(s, RT_BEGIN + (time_t)n / 2,
	    &ndel, NULL), TG_OK);
	assert_int_equal(ndel, n / 2);
	assert_int_equal(dmarc_report_add(s, &r, &err), TG_OK);
	s = dmarc_report_close(s);
	free(dir);
}

/* test_store_shared - two handles on one directory in one process share
 * the environment: closing one leaves the other working */
static void
test_store_shared(void **state)
{
	struct dmarc_report_store	*a, *b, *ro;
	struct dmarc_report_rec		 r;
	struct tg_err			 err;
	char				*dir, ip[32];

	dir = rt_subdir("shared");
	a = dmarc_report_open(dir, false, NULL);
	b = dmarc_report_open(dir, false, NULL);
	ro = dmarc_report_open(dir, true, NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(ro);
	rt_rec(&r, "s.example", RT_BEGIN, 1, ip, sizeof(ip));
	assert_int_equal(dmarc_report_add(a, &r, NULL), TG_OK);
	a = dmarc_report_close(a);
	assert_int_equal(dmarc_report_add(b, &r, NULL), TG_OK);
	assert_int_equal(dmarc_report_add(ro, &r, &err), TG_PERM);
	assert_int_equal(rt_count(ro), 2);
	b = dmarc_report_close(b);
	assert_int_equal(rt_count(ro), 2);
	ro = dmarc_report_close(ro);
	/* opened read-only first: a writer cannot join it */
	ro = dmarc_report_open(dir, true, NULL);
	assert_non_null(ro);
	assert_null(dmarc_report_open(dir, false, &err));
	assert_non_null(strstr(err.text, "read-only"));
	ro = dmarc_report_close(ro);
	a = dmarc_report_open(dir, false, NULL);
	assert_non_null(a);
	assert_int_equal(rt_count(a), 2);
	a = dmarc_report_close(a);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec),
		cmocka_unit_test(test_store_threads),
		cmocka_unit_test(test_store_chunks_delete),
		cmocka_unit_test(test_store_errors),
		cmocka_unit_test(test_store_shared),
		cmocka_unit_test(test_store_full),
		cmocka_unit_test(test_report_files),
		cmocka_unit_test(test_report_chunks),
		cmocka_unit_test(test_report_hostile),
		cmocka_unit_test(test_rua_parse),
		cmocka_unit_test(test_verify_dest),
		cmocka_unit_test(test_send),
		cmocka_unit_test(test_sendmail_stuck),
		cmocka_unit_test(test_run_refuses),
	};
	int	rc;

	if (mkdtemp(rt_dir) == NULL)
		return 1;
	tg_log_set_sink(rt_sink, NULL);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	tg_log_set_sink(NULL, NULL);
	tg_buf_fini(&rt_log);
	rt_rmtree(rt_dir);
	return rc;
}
