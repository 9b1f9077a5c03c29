/*
 * dmarc_test_corpus - the shared DMARC vectors in TG_TESTDATA.
 *
 * rspamd-functional/: the 18 cases of rspamd's DMARC functional suite.
 * fake-dns.tsv becomes the resolver's local data under a root SOA (names
 * it does not list answer NXDOMAIN, as the harness notes ask); each case
 * runs its message through spf, dkim and dmarc with the given client and
 * MAIL FROM, and with the suite's public suffix list.  A case without a
 * client IP has no SPF check in rspamd: it runs without the spf module,
 * from a client that is not ours.  The outcome (result, and for a fail
 * the effective policy after pct=) must match dmarc_result; t_rspamd_diff
 * lists the cases where we disagree on purpose, with the RFC reason (it
 * is empty: all 18 agree).
 *
 * opendmarc/: libopendmarc's own vectors as regression tests of our
 * wrapper: record parse status, alignment pairs and organizational
 * domains under its test list, and From-domain extraction, where our
 * RFC 5322 parser refuses on purpose what libopendmarc guesses at
 * (t_from_diff says which and why); the module still evaluates
 * libopendmarc's domain then, among all the author domains it finds.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmarc_int.h"
#include "dmarc_test.h"
#include "tollgate/buf.h"
#include "tollgate/pipeline.h"

/* A TSV file split into rows of fields (tabs), header row dropped. */
struct t_tsv {
	char	*text;
	char	***rows;
	size_t	 nrows;
	size_t	*nfields;
};

/* t_tsv_load - read and split a TSV file */
static void
t_tsv_load(const char *path, struct t_tsv *t)
{
	char	*line, *next, *f;
	size_t	 n;

	memset(t, 0, sizeof(*t));
	if ((t->text = t_slurp(path)) == NULL)
		fail_msg("cannot read %s", path);
	for (line = t->text; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (line == t->text)
			continue;	/* the header row */
		t->rows = tg_reallocarray(t->rows, t->nrows + 1,
		    sizeof(*t->rows));
		t->nfields = tg_reallocarray(t->nfields, t->nrows + 1,
		    sizeof(*t->nfields));
		t->rows[t->nrows] = NULL;
		for (n = 0, f = line; f != NULL; n++) {
			t->rows[t->nrows] = tg_reallocarray(t->rows[t->nrows],
			    n + 2, sizeof(char *));
			t->rows[t->nrows][n] = f;
			if ((f = strchr(f, '\t')) != NULL)
				*f++ = '\0';
		}
		t->rows[t->nrows][n] = NULL;
		t->nfields[t->nrows++] = n;
	}
}

/* t_tsv_field - field i of row r, "" when the row is shorter */
static const char *
t_tsv_field(const struct t_tsv *t, size_t r, size_t i)
{
	return i < t->nfields[r] ? t->rows[r][i] : "";
}

/* t_tsv_free - release a loaded file */
static void
t_tsv_free(struct t_tsv *t)
{
	size_t	i;

	for (i = 0; i < t->nrows; i++)
		free(t->rows[i]);
	free(t->rows);
	free(t->nfields);
	free(t->text);
	memset(t, 0, sizeof(*t));
}

/* t_ascii - whether s is printable ASCII */
static bool
t_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* t_rspamd_row - one fake-dns.tsv row as a zone line */
static void
t_rspamd_row(struct tg_buf *b, const char *name, const char *type,
    const char *rcode, const char *value)
{
	char	*line;

	/* NXDOMAIN and NODATA: absence under the root SOA says it. */
	if (strcmp(rcode, "timeout") == 0)
		tg_buf_printf(b, "$TIMEOUT %s.\n", name);
	if (strcmp(rcode, "ok") != 0)
		return;
	if (strcmp(type, "TXT") == 0) {
		line = tg_test_zone_txt(name, value);
		tg_buf_puts(b, line);
		free(line);
	} else if (strcmp(type, "MX") == 0 || strcmp(type, "PTR") == 0)
		tg_buf_printf(b, "%s. 300 IN %s %s.\n", name, type, value);
	else
		tg_buf_printf(b, "%s. 300 IN %s %s\n", name, type, value);
}

/*
 * t_rspamd_zone - fake-dns.tsv as local data.  Names that are not
 * ASCII (a uribl test entry) are left out: no DMARC case uses them.
 */
char *
t_rspamd_zone(bool keys_only)
{
	struct t_tsv	 t;
	struct tg_buf	 b;
	const char	*name;
	size_t		 i;

	t_tsv_load(T_RSPAMD "/fake-dns.tsv", &t);
	tg_buf_init(&b);
	for (i = 0; i < t.nrows; i++) {
		name = t_tsv_field(&t, i, 0);
		if (!t_ascii(name) || *name == '\0' || (keys_only &&
		    strstr(name, "._domainkey.") == NULL))
			continue;
		t_rspamd_row(&b, name, t_tsv_field(&t, i, 1),
		    t_tsv_field(&t, i, 2), t_tsv_field(&t, i, 3));
	}
	t_tsv_free(&t);
	tg_buf_putc(&b, '\0');	/* "" rather than NULL when empty */
	b.len--;
	return tg_buf_steal(&b);
}

/*
 * Cases where our result differs from expected.tsv on purpose, with the
 * RFC reason.  None: every case agrees.  A row here would read
 *   { "case name", "our result", "RFC 9989 x.y: why" },
 */
static const struct {
	const char	*name;
	const char	*ours;
	const char	*reason;
} t_rspamd_diff[] = {
	{ NULL, NULL, NULL }
};

/* t_rspamd_want - dmarc_result as our result and disposition */
static void
t_rspamd_want(const char *s, enum dmarc_res *res, int *dis)
{
	*dis = -1;
	*res = DMARC_RES_NONE;
	if (strncmp(s, "pass", 4) == 0)
		*res = DMARC_RES_PASS;
	else if (strncmp(s, "temperror", 9) == 0)
		*res = DMARC_RES_TEMPERROR;
	else if (strncmp(s, "none", 4) == 0)
		*res = DMARC_RES_NONE;
	else if (strncmp(s, "fail", 4) == 0) {
		*res = DMARC_RES_FAIL;
		*dis = strstr(s, "policy reject") != NULL ?
		    DMARC_POLICY_REJECT : strstr(s, "policy quarantine") !=
		    NULL ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
	} else
		fail_msg("expected.tsv: unknown result \"%s\"", s);
}

/* t_rspamd_diffed - the documented disagreement for a case, or NULL */
static const char *
t_rspamd_diffed(const char *name)
{
	size_t	i;

	for (i = 0; t_rspamd_diff[i].name != NULL; i++)
		if (strcmp(t_rspamd_diff[i].name, name) == 0)
			return t_rspamd_diff[i].ours;
	return NULL;
}

/* t_rspamd_case - one expected.tsv row; true if it agrees */
static bool
t_rspamd_case(const struct t_tsv *t, size_t i, const char *zone)
{
	const char	*name = t_tsv_field(t, i, 0);
	const char	*ip = t_tsv_field(t, i, 2), *mf = t_tsv_field(t, i, 3);
	struct t_run	 r;
	enum dmarc_res	 want;
	char		*path, *msg, *from;
	int		 dis;
	bool		 ok;

	t_rspamd_want(t_tsv_field(t, i, 6), &want, &dis);
	path = tg_printf_dup("%s/messages/%s", T_RSPAMD, t_tsv_field(t, i, 1));
	if ((msg = t_slurp(path)) == NULL)
		fail_msg("%s: cannot read %s", name, path);
	t_pipeline(*ip != '\0' ? "spf dkim dmarc" : "dkim dmarc", "", zone);
	from = tg_printf_dup("<%s>", mf);
	t_run(msg, *ip != '\0' ? ip : "192.0.2.1", from, &r);
	ok = r.res.res == want && (dis < 0 || (int)r.res.disposition == dis);
	if (!ok)
		print_message("rspamd %s: got %s dis=%s, want %s\n%s\n", name,
		    dmarc_res_name(r.res.res),
		    dmarc_policy_name(r.res.disposition),
		    t_tsv_field(t, i, 6), tg_test_log());
	t_run_free(&r);
	t_pipeline_done();
	free(from);
	free(msg);
	free(path);
	return ok;
}

/* test_rspamd - the 18 cases of rspamd's DMARC suite */
void
test_rspamd(void **state)
{
	struct t_tsv	 t;
	char		*zone, *data;
	size_t		 i, agree = 0, diffed = 0;

	t_tsv_load(T_RSPAMD "/expected.tsv", &t);
	data = t_rspamd_zone(false);
	zone = tg_printf_dup(". 300 IN SOA ns. host. 1 3600 600 86400 300\n"
	    "%s", data);
	for (i = 0; i < t.nrows; i++) {
		if (t_rspamd_case(&t, i, zone))
			agree++;
		else if (t_rspamd_diffed(t_tsv_field(&t, i, 0)) != NULL)
			diffed++;
	}
	print_message("rspamd DMARC cases: %zu of %zu agree, %zu differ as "
	    "documented\n", agree, t.nrows, diffed);
	assert_int_equal(t.nrows, 18);
	assert_int_equal(agree + diffed, t.nrows);
	free(zone);
	free(data);
	t_tsv_free(&t);
}

/* test_opendmarc_records - record-parse.tsv: libopendmarc's status */
void
test_opendmarc_records(void **state)
{
	struct dmarc_lib_parsed	 lp;
	struct dmarc_record	 rec;
	struct t_tsv		 t;
	const char		*text, *want;
	size_t			 i;

	t_tsv_load(T_OPENDMARC "/record-parse.tsv", &t);
	assert_int_equal(t.nrows, 19);
	for (i = 0; i < t.nrows; i++) {
		text = t_tsv_field(&t, i, 0);
		want = t_tsv_field(&t, i, 1);
		dmarc_lib_parse(text, &lp);
		if (strcmp(dmarc_lib_status_name(lp.status), want) != 0)
			fail_msg("record \"%s\": %s, want %s", text,
			    dmarc_lib_status_name(lp.status), want);
		/* Our wrapper accepts exactly what libopendmarc does. */
		assert_int_equal(dmarc_record_parse(text, &rec) == TG_OK,
		    strcmp(want, "DMARC_PARSE_OKAY") == 0);
		dmarc_record_fini(&rec);
	}
	t_tsv_free(&t);
}

/* test_opendmarc_alignment - alignment.tsv under its PSL */
void
test_opendmarc_alignment(void **state)
{
	struct t_tsv	 t;
	struct tg_err	 err;
	size_t		 i;
	bool		 want, got;

	if (dmarc_lib_psl_load(T_OPENDMARC "/effective_tld_names.dat",
	    &err) != TG_OK)
		fail_msg("%s", err.text);
	t_tsv_load(T_OPENDMARC "/alignment.tsv", &t);
	assert_int_equal(t.nrows, 10);
	for (i = 0; i < t.nrows; i++) {
		want = strcmp(t_tsv_field(&t, i, 3), "0") == 0;
		got = dmarc_lib_aligned(t_tsv_field(&t, i, 0),
		    t_tsv_field(&t, i, 1),
		    strcmp(t_tsv_field(&t, i, 2), "strict") == 0);
		if (got != want)
			fail_msg("alignment %s %s %s: %d, want %d",
			    t_tsv_field(&t, i, 0), t_tsv_field(&t, i, 1),
			    t_tsv_field(&t, i, 2), got, want);
	}
	t_tsv_free(&t);
	dmarc_lib_psl_unload();
}

/* test_opendmarc_org - org-domain.tsv under its PSL */
void
test_opendmarc_org(void **state)
{
	struct t_tsv	 t;
	struct tg_err	 err;
	char		 out[DMARC_DOMAIN_MAX + 1];
	size_t		 i;

	if (dmarc_lib_psl_load(T_OPENDMARC "/effective_tld_names.dat",
	    &err) != TG_OK)
		fail_msg("%s", err.text);
	t_tsv_load(T_OPENDMARC "/org-domain.tsv", &t);
	assert_int_equal(t.nrows, 3);
	for (i = 0; i < t.nrows; i++) {
		dmarc_lib_psl_org(t_tsv_field(&t, i, 0), out, sizeof(out));
		if (strcmp(out, t_tsv_field(&t, i, 1)) != 0)
			fail_msg("org of %s: %s, want %s",
			    t_tsv_field(&t, i, 0), out, t_tsv_field(&t, i, 1));
	}
	t_tsv_free(&t);
	dmarc_lib_psl_unload();
}

/*
 * From values where our parser refuses what libopendmarc's
 * opendmarc_util_finddomain guesses at, and why.  The module evaluates
 * every author domain (strictly read, or leniently when the value does
 * not parse), libopendmarc's among them.
 */
static const struct {
	const char	*value;
	const char	*reason;
} t_from_diff[] = {
	{ "Joe Johnson <joe@joe.com>, ace@ace.com",
	  "RFC 7489 6.6.1, RFC 9989 4.4: authors of different domains "
	  "have no single policy; permerror, not the first one" },
	{ "joe@joe.com, ace@ace.com",
	  "RFC 7489 6.6.1, RFC 9989 4.4: as above" },
	{ "<<<><joe@joe.com>>>",
	  "RFC 5322 3.4: angle brackets do not nest; unparsable" },
};

/* t_from_differs - whether our refusal of value is documented */
static bool
t_from_differs(const char *value)
{
	size_t	i;

	for (i = 0; i < TG_NITEMS(t_from_diff); i++)
		if (strcmp(t_from_diff[i].value, value) == 0)
			return true;
	return false;
}

/* t_from_covers - the module's author domains of value include want */
static void
t_from_covers(const char *value, const char *want)
{
	struct dmarc_authors	 a;
	const char		*why;
	size_t			 i;

	memset(&a, 0, sizeof(a));
	if (dmarc_from_domains(value, &a, &why) == TG_PERM)
		(void)dmarc_from_lenient(value, &a);
	for (i = 0; i < a.n; i++)
		if (strcmp(a.domain[i], want) == 0)
			return;
	fail_msg("from \"%s\": %s is not among its author domains", value,
	    want);
}

/* test_opendmarc_from - from-header-domain.tsv through our parser */
void
test_opendmarc_from(void **state)
{
	struct t_tsv	 t;
	const char	*v, *why;
	char		 out[DMARC_DOMAIN_MAX + 1];
	size_t		 i, differ = 0;
	enum tg_status	 st;

	t_tsv_load(T_OPENDMARC "/from-header-domain.tsv", &t);
	assert_int_equal(t.nrows, 13);
	for (i = 0; i < t.nrows; i++) {
		v = t_tsv_field(&t, i, 0);
		st = dmarc_from_domain(v, out, &why);
		if (t_from_differs(v)) {
			if (st != TG_PERM)
				fail_msg("from \"%s\": accepted as %s", v, out);
			t_from_covers(v, t_tsv_field(&t, i, 1));
			differ++;
		} else if (st != TG_OK ||
		    strcmp(out, t_tsv_field(&t, i, 1)) != 0)
			fail_msg("from \"%s\": %s (%s), want %s", v, out,
			    why != NULL ? why : "ok", t_tsv_field(&t, i, 1));
	}
	assert_int_equal(differ, TG_NITEMS(t_from_diff));
	t_tsv_free(&t);
}
