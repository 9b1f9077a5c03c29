/*
 * dmarc_report_codec - the stored form of a struct dmarc_report_rec.
 *
 * Layout (all integers big-endian):
 *   version(1) when(8) pct(2, 0xffff none) flags(1) ndkim(1)
 *   then strings, each length(2) bytes, length 0xffff for NULL, in the
 *   order of dmarc_report_fields() followed by domain, selector, result
 *   of each DKIM result.
 * Strings longer than DMARC_REPORT_MAX_STR are cut at a UTF-8 character
 * boundary: they are attacker-supplied, and a store entry must stay
 * small.  Decoding checks every length, so a damaged entry is TG_PERM,
 * never a read past its end.
 *
 * Pure functions; thread-safe.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tollgate/buf.h"
#include "tollgate/dmarc_report.h"
#include "tollgate/util.h"

#include "dmarc_report_int.h"

#define DMARC_REPORT_VERSION	1
#define DMARC_REPORT_NULL	0xffffu
#define DMARC_REPORT_HDR	13	/* version when pct flags ndkim */
#define DMARC_REPORT_NFIELDS	18

#define DMARC_REPORT_F_TESTING	0x01
#define DMARC_REPORT_F_DKIM	0x02
#define DMARC_REPORT_F_SPF	0x04

/* The string fields of a record, in stored order. */
struct dmarc_report_fieldv {
	const char	**p[DMARC_REPORT_NFIELDS];
};

static void	dmarc_report_fields(struct dmarc_report_rec *,
		    struct dmarc_report_fieldv *);
static void	dmarc_report_put_str(struct tg_buf *, const char *);

/* dmarc_report_fields - pointers to rec's strings, in stored order */
static void
dmarc_report_fields(struct dmarc_report_rec *r, struct dmarc_report_fieldv *f)
{
	const char	**const v[DMARC_REPORT_NFIELDS] = {
		&r->source_ip, &r->header_from, &r->envelope_from,
		&r->envelope_to, &r->policy_domain, &r->p, &r->sp, &r->np,
		&r->adkim, &r->aspf, &r->fo, &r->rua, &r->disposition,
		&r->reason, &r->reason_comment, &r->spf_domain,
		&r->spf_result, NULL
	};

	memcpy(f->p, v, sizeof(v));
}

/* dmarc_report_put_str - length and bytes; NULL as the marker length */
static void
dmarc_report_put_str(struct tg_buf *b, const char *s)
{
	unsigned char	len[2];
	size_t		n;

	if (s == NULL) {
		tg_buf_append(b, "\xff\xff", 2);
		return;
	}
	n = strlen(s);
	if (n > DMARC_REPORT_MAX_STR) {
		n = DMARC_REPORT_MAX_STR;
		/* Back up over continuation bytes to a character start. */
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	len[0] = (unsigned char)(n >> 8);
	len[1] = (unsigned char)(n & 0xff);
	tg_buf_append(b, len, 2);
	tg_buf_append(b, s, n);
}

/* dmarc_report_encode - rec into b (appended) */
void
dmarc_report_encode(struct tg_buf *b, const struct dmarc_report_rec *rec)
{
	struct dmarc_report_rec		r = *rec;
	struct dmarc_report_fieldv	f;
	unsigned char			hdr[DMARC_REPORT_HDR];
	uint64_t			when;
	unsigned int			pct;
	size_t				i, nd;
	int				j;

	when = r.when < 0 ? 0 : (uint64_t)r.when;
	pct = r.pct < 0 || r.pct > 100 ? DMARC_REPORT_NULL :
	    (unsigned int)r.pct;
	nd = r.ndkim > DMARC_REPORT_MAX_DKIM ? DMARC_REPORT_MAX_DKIM : r.ndkim;
	hdr[0] = DMARC_REPORT_VERSION;
	for (j = 8; j >= 1; j--) {
		hdr[j] = (unsigned char)(when & 0xff);
		when >>= 8;
	}
	hdr[9] = (unsigned char)(pct >> 8);
	hdr[10] = (unsigned char)(pct & 0xff);
	hdr[11] = (r.testing ? DMARC_REPORT_F_TESTING : 0) |
	    (r.dkim_pass ? DMARC_REPORT_F_DKIM : 0) |
	    (r.spf_pass ? DMARC_REPORT_F_SPF : 0);
	hdr[12] = (unsigned char)nd;
	tg_buf_append(b, hdr, sizeof(hdr));
	dmarc_report_fields(&r, &f);
	for (i = 0; f.p[i] != NULL; i++)
		dmarc_report_put_str(b, *f.p[i]);
	for (i = 0; i < nd; i++) {
		dmarc_report_put_str(b, r.dkim[i].domain);
		dmarc_report_put_str(b, r.dkim[i].selector);
		dmarc_report_put_str(b, r.dkim[i].result);
	}
}

/*
 * dmarc_report_take - the next string of the value: its offset in blob
 * (or SIZE_MAX for NULL) into *off; false past the end.  Strings are
 * copied NUL-terminated into blob at *used.
 */
static bool
dmarc_report_take(const unsigned char *p, size_t len, size_t *pos,
    char *blob, size_t *used, size_t *off)
{
	size_t	n;

	if (len - *pos < 2)
		return false;
	n = (size_t)p[*pos] << 8 | p[*pos + 1];
	*pos += 2;
	if (n == DMARC_REPORT_NULL) {
		*off = SIZE_MAX;
		return true;
	}
	if (len - *pos < n || memchr(p + *pos, '\0', n) != NULL)
		return false;
	memcpy(blob + *used, p + *pos, n);
	blob[*used + n] = '\0';
	*off = *used;
	*used += n + 1;
	*pos += n;
	return true;
}

/* dmarc_report_decode - a stored value back into a record */
enum tg_status
dmarc_report_decode(const void *data, size_t len,
    struct dmarc_report_item *it)
{
	const unsigned char		*p = data;
	struct dmarc_report_fieldv	 f;
	size_t				 offs[DMARC_REPORT_NFIELDS +
					     3 * DMARC_REPORT_MAX_DKIM];
	size_t				 pos, used = 0, nstr, i, j;
	uint64_t			 when = 0;
	unsigned int			 pct;

	memset(it, 0, sizeof(*it));
	if (len < DMARC_REPORT_HDR || p[0] != DMARC_REPORT_VERSION ||
	    p[12] > DMARC_REPORT_MAX_DKIM)
		return TG_PERM;
	for (i = 1; i <= 8; i++)
		when = (when << 8) | p[i];
	pct = (unsigned int)p[9] << 8 | p[10];
	it->rec.ndkim = p[12];
	nstr = DMARC_REPORT_NFIELDS - 1 + 3 * it->rec.ndkim;
	/* Each string is at most as long as the value: one blob holds all. */
	it->blob = tg_malloc(len + nstr);
	for (pos = DMARC_REPORT_HDR, i = 0; i < nstr; i++)
		if (!dmarc_report_take(p, len, &pos, it->blob, &used,
		    &offs[i])) {
			dmarc_report_item_fini(it);
			return TG_PERM;
		}
	if (pos != len) {
		dmarc_report_item_fini(it);
		return TG_PERM;
	}
	it->rec.when = (time_t)when;
	it->rec.pct = pct > 100 ? -1 : (int)pct;
	it->rec.testing = (p[11] & DMARC_REPORT_F_TESTING) != 0;
	it->rec.dkim_pass = (p[11] & DMARC_REPORT_F_DKIM) != 0;
	it->rec.spf_pass = (p[11] & DMARC_REPORT_F_SPF) != 0;
	dmarc_report_fields(&it->rec, &f);
	for (i = 0; f.p[i] != NULL; i++)
		*f.p[i] = offs[i] == SIZE_MAX ? NULL : it->blob + offs[i];
	for (j = 0; j < it->rec.ndkim; j++, i += 3) {
		it->rec.dkim[j].domain = offs[i] == SIZE_MAX ? NULL :
		    it->blob + offs[i];
		it->rec.dkim[j].selector = offs[i + 1] == SIZE_MAX ? NULL :
		    it->blob + offs[i + 1];
		it->rec.dkim[j].result = offs[i + 2] == SIZE_MAX ? NULL :
		    it->blob + offs[i + 2];
	}
	return TG_OK;
}

/* dmarc_report_item_fini - release a decoded record's strings */
void
dmarc_report_item_fini(struct dmarc_report_item *it)
{
	free(it->blob);
	it->blob = NULL;
}
