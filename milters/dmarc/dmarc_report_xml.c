/*
 * dmarc_report_xml - rows of an aggregate report and its RFC 9990 XML.
 *
 * Records of one policy domain are folded into rows: messages with the
 * same source address, evaluated policy, identifiers and authentication
 * results make one row with a count.  The row key is the record's own
 * serialization with the per-message and policy_published fields
 * cleared, so two records share a row exactly when everything a row
 * reports is equal.  A table holds at most max_rows rows, and rows of
 * at most DMARC_REPORT_MAX_KEYS bytes in all (long attacker-chosen
 * selectors must not make 10000 rows huge); the scan stops there and the
 * rest of the period goes into a further report, so memory stays bounded
 * however much mail a domain sends.
 *
 * Every string in the XML is escaped: source addresses, domains and
 * comments come from the message or the DNS, so they are the sender's.
 * Bytes that are not valid UTF-8, and characters XML 1.0 forbids, become
 * U+FFFD, so the report always parses.
 *
 * Not thread-safe: one aggregation per report run.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tollgate/buf.h"
#include "tollgate/dmarc_report.h"
#include "tollgate/util.h"

#include "dmarc_report_int.h"

#define DMARC_REPORT_NS		"urn:ietf:params:xml:ns:dmarc-2.0"
#define DMARC_REPORT_FFFD	"\xef\xbf\xbd"
#define DMARC_REPORT_MAX_KEYS	(8u << 20)	/* row bytes per report */

struct dmarc_report_row {
	char		*key;		/* row-reduced serialization */
	size_t		 keylen;
	uint64_t	 hash;
	uint64_t	 count;
};

struct dmarc_report_agg {
	struct dmarc_report_row	 *rows;		/* in first-seen order */
	size_t			  nrows, max_rows;
	size_t			  keybytes;	/* of all rows */
	size_t			 *slots;	/* open addressing: row + 1 */
	size_t			  nslots;	/* a power of two */
	uint64_t		  messages;
	struct tg_buf		  policy;	/* last record, serialized */
	struct tg_buf		  scratch;
};

static uint64_t	dmarc_report_hash(const void *, size_t);
static void	dmarc_report_xml_elem(struct tg_buf *, const char *,
		    const char *, const char *);
static const char *dmarc_report_enum(const char *, const char *const *);
static void	dmarc_report_xml_policy(struct tg_buf *,
		    const struct dmarc_report_rec *, const char *);
static void	dmarc_report_xml_row(struct tg_buf *,
		    const struct dmarc_report_rec *, uint64_t);

static const char *const dmarc_report_dispositions[] = {
	"none", "quarantine", "reject", NULL
};
static const char *const dmarc_report_actions[] = {
	"none", "pass", "quarantine", "reject", NULL
};
static const char *const dmarc_report_alignments[] = { "r", "s", NULL };
static const char *const dmarc_report_overrides[] = {
	"local_policy", "mailing_list", "other", "policy_test_mode",
	"trusted_forwarder", NULL
};
static const char *const dmarc_report_dkim_results[] = {
	"none", "pass", "fail", "policy", "neutral", "temperror",
	"permerror", NULL
};
static const char *const dmarc_report_spf_results[] = {
	"none", "pass", "fail", "softfail", "policy", "neutral",
	"temperror", "permerror", NULL
};

/* dmarc_report_hash - FNV-1a, 64 bits */
static uint64_t
dmarc_report_hash(const void *p, size_t n)
{
	const unsigned char	*s = p;
	uint64_t		 h = 0xcbf29ce484222325ULL;

	while (n-- > 0) {
		h ^= *s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* dmarc_report_agg_new - an empty table of at most max_rows rows */
struct dmarc_report_agg *
dmarc_report_agg_new(size_t max_rows)
{
	struct dmarc_report_agg	*a;

	a = tg_calloc(1, sizeof(*a));
	a->max_rows = max_rows == 0 ? DMARC_REPORT_MAX_ROWS : max_rows;
	for (a->nslots = 16; a->nslots < 2 * a->max_rows; a->nslots *= 2)
		continue;
	a->slots = tg_calloc(a->nslots, sizeof(*a->slots));
	a->rows = tg_calloc(a->max_rows, sizeof(*a->rows));
	return a;
}

/* dmarc_report_agg_reset - empty the table for the next report */
void
dmarc_report_agg_reset(struct dmarc_report_agg *a)
{
	size_t	i;

	for (i = 0; i < a->nrows; i++)
		free(a->rows[i].key);
	a->nrows = 0;
	a->keybytes = 0;
	a->messages = 0;
	memset(a->slots, 0, a->nslots * sizeof(*a->slots));
	tg_buf_reset(&a->policy);
}

/* dmarc_report_agg_free - release it; NULL-safe */
struct dmarc_report_agg *
dmarc_report_agg_free(struct dmarc_report_agg *a)
{
	if (a == NULL)
		return NULL;
	dmarc_report_agg_reset(a);
	free(a->rows);
	free(a->slots);
	tg_buf_fini(&a->policy);
	tg_buf_fini(&a->scratch);
	free(a);
	return NULL;
}

/* dmarc_report_agg_add - fold one record in; TG_NOTFOUND when full */
enum tg_status
dmarc_report_agg_add(const struct dmarc_report_item *it, void *arg)
{
	struct dmarc_report_agg	*a = arg;
	struct dmarc_report_rec	 r = it->rec;
	struct dmarc_report_row	*row;
	uint64_t		 h;
	size_t			 i;

	/* Clear what is not part of a row; what is left is the row key. */
	r.when = 0;
	r.policy_domain = r.p = r.sp = r.np = r.adkim = r.aspf = NULL;
	r.fo = r.rua = NULL;
	r.pct = -1;
	r.testing = false;
	tg_buf_reset(&a->scratch);
	dmarc_report_encode(&a->scratch, &r);
	h = dmarc_report_hash(a->scratch.data, a->scratch.len);
	for (i = h & (a->nslots - 1); a->slots[i] != 0;
	    i = (i + 1) & (a->nslots - 1)) {
		row = &a->rows[a->slots[i] - 1];
		if (row->hash == h && row->keylen == a->scratch.len &&
		    memcmp(row->key, a->scratch.data, row->keylen) == 0)
			break;
	}
	if (a->slots[i] == 0) {
		if (a->nrows == a->max_rows || (a->nrows > 0 &&
		    a->keybytes + a->scratch.len > DMARC_REPORT_MAX_KEYS))
			return TG_NOTFOUND;
		a->keybytes += a->scratch.len;
		row = &a->rows[a->nrows++];
		row->key = tg_malloc(a->scratch.len);
		memcpy(row->key, a->scratch.data, a->scratch.len);
		row->keylen = a->scratch.len;
		row->hash = h;
		row->count = 0;
		a->slots[i] = a->nrows;
	} else
		row = &a->rows[a->slots[i] - 1];
	row->count++;
	a->messages++;
	/* RFC 9990 2.1: report the final configuration observed. */
	tg_buf_reset(&a->policy);
	dmarc_report_encode(&a->policy, &it->rec);
	return TG_OK;
}

/* dmarc_report_agg_rows, _messages - the table's size */
size_t
dmarc_report_agg_rows(const struct dmarc_report_agg *a)
{
	return a->nrows;
}

uint64_t
dmarc_report_agg_messages(const struct dmarc_report_agg *a)
{
	return a->messages;
}

/* dmarc_report_agg_policy - the last record folded in, decoded */
enum tg_status
dmarc_report_agg_policy(const struct dmarc_report_agg *a,
    struct dmarc_report_item *it)
{
	return dmarc_report_decode(a->policy.data, a->policy.len, it);
}

/* dmarc_report_utf8_len - length of a valid XML character at s, or 0 */
static size_t
dmarc_report_utf8_len(const unsigned char *s)
{
	uint32_t	c;
	size_t		n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, c = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, U+FFFE/FFFF, beyond U+10FFFF. */
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff ||
	    c > 0x10ffff)
		return 0;
	return n;
}

/* dmarc_report_xml_escape - s as XML character data */
void
dmarc_report_xml_escape(struct tg_buf *b, const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n;

	while (*p != '\0') {
		switch (*p) {
		case '&':
			tg_buf_puts(b, "&amp;");
			break;
		case '<':
			tg_buf_puts(b, "&lt;");
			break;
		case '>':
			tg_buf_puts(b, "&gt;");
			break;
		case '"':
			tg_buf_puts(b, "&quot;");
			break;
		case '\'':
			tg_buf_puts(b, "&apos;");
			break;
		default:
			/* XML 1.0 2.2: no C0 controls but tab, LF and CR. */
			if (*p < 0x20 && *p != '\t' && *p != '\n' &&
			    *p != '\r') {
				tg_buf_puts(b, DMARC_REPORT_FFFD);
				break;
			}
			if ((n = dmarc_report_utf8_len(p)) == 0) {
				tg_buf_puts(b, DMARC_REPORT_FFFD);
				break;
			}
			tg_buf_append(b, p, n);
			p += n;
			continue;
		}
		p++;
	}
}

/* dmarc_report_xml_elem - <name>value</name> on its own line */
static void
dmarc_report_xml_elem(struct tg_buf *b, const char *indent, const char *name,
    const char *value)
{
	tg_buf_printf(b, "%s<%s>", indent, name);
	dmarc_report_xml_escape(b, value != NULL ? value : "");
	tg_buf_printf(b, "</%s>\n", name);
}

/* dmarc_report_enum - v if it is one of the schema's values, else NULL */
static const char *
dmarc_report_enum(const char *v, const char *const *allowed)
{
	size_t	i;

	if (v == NULL)
		return NULL;
	for (i = 0; allowed[i] != NULL; i++)
		if (tg_strcasecmp(v, allowed[i]) == 0)
			return allowed[i];
	return NULL;
}

/* dmarc_report_xml_policy - <policy_published> from the last record */
static void
dmarc_report_xml_policy(struct tg_buf *b, const struct dmarc_report_rec *r,
    const char *domain)
{
	const char	*v;

	tg_buf_puts(b, "  <policy_published>\n");
	dmarc_report_xml_elem(b, "    ", "domain", domain);
	/* p is required; a record without a usable one monitors. */
	v = dmarc_report_enum(r->p, dmarc_report_dispositions);
	dmarc_report_xml_elem(b, "    ", "p", v != NULL ? v : "none");
	if ((v = dmarc_report_enum(r->sp, dmarc_report_dispositions)) != NULL)
		dmarc_report_xml_elem(b, "    ", "sp", v);
	if ((v = dmarc_report_enum(r->np, dmarc_report_dispositions)) != NULL)
		dmarc_report_xml_elem(b, "    ", "np", v);
	if ((v = dmarc_report_enum(r->adkim, dmarc_report_alignments)) != NULL)
		dmarc_report_xml_elem(b, "    ", "adkim", v);
	if ((v = dmarc_report_enum(r->aspf, dmarc_report_alignments)) != NULL)
		dmarc_report_xml_elem(b, "    ", "aspf", v);
	if (r->fo != NULL)
		dmarc_report_xml_elem(b, "    ", "fo", r->fo);
	dmarc_report_xml_elem(b, "    ", "testing", r->testing ? "y" : "n");
	tg_buf_puts(b, "  </policy_published>\n");
}

/* dmarc_report_xml_reason - one <reason>; unknown types become "other" */
static void
dmarc_report_xml_reason(struct tg_buf *b, const struct dmarc_report_rec *r)
{
	const char	*type, *comment = r->reason_comment;

	if (r->reason == NULL)
		return;
	/*
	 * RFC 9990 dropped RFC 7489's "forwarded" and "sampled_out": such a
	 * reason is kept as the comment of an "other".
	 */
	if ((type = dmarc_report_enum(r->reason, dmarc_report_overrides)) ==
	    NULL) {
		type = "other";
		if (comment == NULL)
			comment = r->reason;
	}
	tg_buf_puts(b, "        <reason>\n");
	dmarc_report_xml_elem(b, "          ", "type", type);
	if (comment != NULL)
		dmarc_report_xml_elem(b, "          ", "comment", comment);
	tg_buf_puts(b, "        </reason>\n");
}

/* dmarc_report_xml_auth - <auth_results>: DKIM signatures, then SPF */
static void
dmarc_report_xml_auth(struct tg_buf *b, const struct dmarc_report_rec *r)
{
	const char	*v;
	size_t		 i;

	tg_buf_puts(b, "    <auth_results>\n");
	for (i = 0; i < r->ndkim; i++) {
		/* A result outside RFC 8601 2.7.1 cannot be reported. */
		v = dmarc_report_enum(r->dkim[i].result,
		    dmarc_report_dkim_results);
		if (v == NULL || r->dkim[i].domain == NULL)
			continue;
		tg_buf_puts(b, "      <dkim>\n");
		dmarc_report_xml_elem(b, "        ", "domain",
		    r->dkim[i].domain);
		dmarc_report_xml_elem(b, "        ", "selector",
		    r->dkim[i].selector);
		dmarc_report_xml_elem(b, "        ", "result", v);
		tg_buf_puts(b, "      </dkim>\n");
	}
	v = dmarc_report_enum(r->spf_result, dmarc_report_spf_results);
	if (v != NULL) {
		tg_buf_puts(b, "      <spf>\n");
		dmarc_report_xml_elem(b, "        ", "domain", r->spf_domain);
		/* RFC 9990: scope MUST be "mfrom", the only valid value. */
		dmarc_report_xml_elem(b, "        ", "scope", "mfrom");
		dmarc_report_xml_elem(b, "        ", "result", v);
		tg_buf_puts(b, "      </spf>\n");
	}
	tg_buf_puts(b, "    </auth_results>\n");
}

/* dmarc_report_xml_row - one <record> */
static void
dmarc_report_xml_row(struct tg_buf *b, const struct dmarc_report_rec *r,
    uint64_t count)
{
	const char	*v;
	char		 n[32];

	(void)snprintf(n, sizeof(n), "%llu", (unsigned long long)count);
	tg_buf_puts(b, "  <record>\n    <row>\n");
	dmarc_report_xml_elem(b, "      ", "source_ip", r->source_ip);
	dmarc_report_xml_elem(b, "      ", "count", n);
	tg_buf_puts(b, "      <policy_evaluated>\n");
	v = dmarc_report_enum(r->disposition, dmarc_report_actions);
	dmarc_report_xml_elem(b, "        ", "disposition",
	    v != NULL ? v : "none");
	dmarc_report_xml_elem(b, "        ", "dkim",
	    r->dkim_pass ? "pass" : "fail");
	dmarc_report_xml_elem(b, "        ", "spf",
	    r->spf_pass ? "pass" : "fail");
	dmarc_report_xml_reason(b, r);
	tg_buf_puts(b, "      </policy_evaluated>\n    </row>\n");
	tg_buf_puts(b, "    <identifiers>\n");
	dmarc_report_xml_elem(b, "      ", "header_from", r->header_from);
	/* "" (a null reverse-path) is reported as an empty element. */
	if (r->envelope_from != NULL)
		dmarc_report_xml_elem(b, "      ", "envelope_from",
		    r->envelope_from);
	if (r->envelope_to != NULL)
		dmarc_report_xml_elem(b, "      ", "envelope_to",
		    r->envelope_to);
	tg_buf_puts(b, "    </identifiers>\n");
	dmarc_report_xml_auth(b, r);
	tg_buf_puts(b, "  </record>\n");
}

/* dmarc_report_xml - the whole <feedback> document for the table */
void
dmarc_report_xml(const struct dmarc_report_agg *a,
    const struct dmarc_report_meta *m, struct tg_buf *b)
{
	struct dmarc_report_item	it;
	size_t				i;

	tg_buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<feedback xmlns=\"" DMARC_REPORT_NS "\">\n"
	    "  <version>1.0</version>\n"
	    "  <report_metadata>\n");
	dmarc_report_xml_elem(b, "    ", "org_name", m->org_name);
	dmarc_report_xml_elem(b, "    ", "email", m->email);
	dmarc_report_xml_elem(b, "    ", "report_id", m->report_id);
	tg_buf_printf(b, "    <date_range>\n      <begin>%llu</begin>\n"
	    "      <end>%llu</end>\n    </date_range>\n",
	    (unsigned long long)m->begin, (unsigned long long)m->end);
	dmarc_report_xml_elem(b, "    ", "generator", PACKAGE_STRING);
	tg_buf_puts(b, "  </report_metadata>\n");
	if (dmarc_report_agg_policy(a, &it) == TG_OK) {
		dmarc_report_xml_policy(b, &it.rec, m->policy_domain);
		dmarc_report_item_fini(&it);
	} else {
		memset(&it, 0, sizeof(it));
		dmarc_report_xml_policy(b, &it.rec, m->policy_domain);
	}
	for (i = 0; i < a->nrows; i++) {
		/* Keys are our own encoding: decoding cannot fail. */
		if (dmarc_report_decode(a->rows[i].key, a->rows[i].keylen,
		    &it) != TG_OK)
			TG_PANIC("dmarc report: undecodable row key");
		dmarc_report_xml_row(b, &it.rec, a->rows[i].count);
		dmarc_report_item_fini(&it);
	}
	tg_buf_puts(b, "</feedback>\n");
}

/* dmarc_report_gzip - RFC 1952 gzip of data, appended to out */
enum tg_status
dmarc_report_gzip(const void *data, size_t len, struct tg_buf *out,
    struct tg_err *err)
{
	z_stream	z;
	unsigned char	chunk[16384];
	int		rc;

	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip wrapper, not zlib's. */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return tg_err_set(err, TG_TEMP, "gzip: cannot initialise");
	z.next_in = (unsigned char *)(uintptr_t)data;
	do {
		/* Feed at most UINT_MAX at a time: avail_in is an uInt. */
		z.avail_in = len > 0x40000000 ? 0x40000000 : (uInt)len;
		len -= z.avail_in;
		do {
			z.next_out = chunk;
			z.avail_out = sizeof(chunk);
			rc = deflate(&z, len == 0 ? Z_FINISH : Z_NO_FLUSH);
			tg_buf_append(out, chunk, sizeof(chunk) - z.avail_out);
		} while (z.avail_out == 0);
	} while (len > 0);
	(void)deflateEnd(&z);
	if (rc != Z_STREAM_END)
		return tg_err_set(err, TG_TEMP, "gzip: deflate failed");
	return TG_OK;
}
