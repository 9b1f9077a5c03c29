/*
 * dkim_test - unit tests of the DKIM module, without network.
 *
 * dkim_test_tables.c drives the pieces directly: the KeyTable and
 * SigningTable parser, key files, the From: parser.  This file makes the
 * keys and the zone, and runs whole messages through the real pipeline
 * (tg_pipeline_init with configuration text and a zone file for the
 * resolver's local data; helpers in dkim_test_util.c):
 * sign, then verify the signed text as inbound mail, and every DNS and
 * crypto outcome we promise.  Keys are made fresh with OpenSSL in a
 * scratch directory; messages signed with forbidden parameters (rsa-sha1,
 * a 512-bit key) come from libopendkim directly.  dkim_test_corpus.c adds
 * the third-party suites.
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dkim_int.h"
#include "dkim_test.h"
#include "tollgate/buf.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"

/*
 * Sanitizer hooks (names fixed by LeakSanitizer): full stacks.  No
 * leak is suppressed: what libopendkim 2.11 loses for an Ed25519
 * signature (its signature buffer) is reclaimed by the module
 * (dkim_mem.c), and test_keycache checks that it is.
 */
const char	*__lsan_default_options(void);
const char	*__asan_default_options(void);

/* __asan_default_options - full stacks for AddressSanitizer */
const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

/* __lsan_default_options - full stacks for LeakSanitizer */
const char *
__lsan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

char			 t_dir[64];
static DKIM_LIB		*t_lib;
static char		*t_zone;	/* the zone file of part two */
char			*t_rsa_pem, *t_ed_pem, *t_weak_pem;

#define T_MSG \
	"From: \"Alice Q. Example\" <alice@example.com> (work)\n" \
	"To: Bob <bob@example.org>\n" \
	"Subject: quarterly numbers\n" \
	"Date: Tue, 01 Dec 2026 10:00:00 +0000\n" \
	"Message-ID: <m1@example.com>\n" \
	"\n" \
	"Hello Bob,\n" \
	"\n" \
	"the numbers are in.\n"

#define T_KEYS	"keys = example.com:rsa2024:%s/rsa.key " \
		"example.com:ed2024:%s/ed.key\n"

/* ---- keys made for these tests ---- */

/* t_genkey - a fresh RSA (bits) or Ed25519 (bits 0) key */
static EVP_PKEY *
t_genkey(int bits)
{
	EVP_PKEY_CTX	*c;
	EVP_PKEY	*k = NULL;

	c = EVP_PKEY_CTX_new_id(bits > 0 ? EVP_PKEY_RSA : EVP_PKEY_ED25519,
	    NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_keygen_init(c), 1);
	if (bits > 0)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(c, bits), 1);
	assert_int_equal(EVP_PKEY_keygen(c, &k), 1);
	EVP_PKEY_CTX_free(c);
	return k;
}

/* t_pem - private key PEM: PKCS#1 for RSA when legacy, else PKCS#8 */
static char *
t_pem(EVP_PKEY *k, bool legacy)
{
	BIO	*b = BIO_new(BIO_s_mem());
	char	*data, *s;
	long	 n;

	if (legacy)
		assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, k,
		    NULL, NULL, 0, NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0,
		    NULL, NULL), 1);
	n = BIO_get_mem_data(b, &data);
	s = tg_strndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

/* t_b64 - base64 without line breaks */
char *
t_b64(const unsigned char *p, size_t n)
{
	char	*out = tg_malloc(n / 3 * 4 + 8);

	(void)EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* t_pubrec - the DNS key record of k */
static char *
t_pubrec(EVP_PKEY *k)
{
	unsigned char	*der = NULL, raw[32];
	size_t		 rawlen = sizeof(raw);
	char		*b64, *rec;
	int		 n;

	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
		assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &rawlen),
		    1);
		b64 = t_b64(raw, rawlen);
		rec = tg_printf_dup("v=DKIM1; k=ed25519; p=%s", b64);
	} else {
		assert_true((n = i2d_PUBKEY(k, &der)) > 0);
		b64 = t_b64(der, (size_t)n);
		OPENSSL_free(der);
		rec = tg_printf_dup("v=DKIM1; k=rsa; p=%s", b64);
	}
	free(b64);
	return rec;
}

/* t_zone_add - append a TXT record to the zone text */
static void
t_zone_add(struct tg_buf *z, const char *name, const char *value)
{
	char	*line = tg_test_zone_txt(name, value);

	tg_buf_puts(z, line);
	free(line);
}

/*
 * Key records that do not allow our RSA key to verify, as in Mail::DKIM's
 * badkey_* cases (whose v=0.5 signatures an RFC 6376 verifier refuses
 * before it looks at the key).  Each selector holds our public key p.
 */
static const struct {
	const char	*selector;
	const char	*record;	/* %s: "p=..." */
	const char	*reason;
} t_bad_records[] = {
	{ "badv", "v=DKIM3; %s", "unknown key version" },
	{ "badsyntax", "k=rsa; t; %s", "key DNS reply corrupt" },
	{ "badk", "v=DKIM1; k=foobar; %s", "unknown key type" },
	{ "bads", "v=DKIM1; s=chat; %s", "not an e-mail key" },
	{ "badh", "v=DKIM1; h=bad; %s", "unknown key hash" },
	{ "sha1only", "v=DKIM1; h=sha1; %s", "hash mismatch" },
	{ "noemail", "v=DKIM1; k=rsa; s=web; %s", "not an e-mail key" },
};

/* t_zone_bad_records - the records of t_bad_records */
static void
t_zone_bad_records(struct tg_buf *z, const char *p)
{
	char	*name, *rec;
	size_t	 i;

	for (i = 0; i < TG_NITEMS(t_bad_records); i++) {
		name = tg_printf_dup("%s._domainkey.example.com",
		    t_bad_records[i].selector);
		rec = tg_printf_dup(t_bad_records[i].record, p);
		t_zone_add(z, name, rec);
		free(name);
		free(rec);
	}
}

/* t_make_zone - example.com's key records, and the failure cases */
static char *
t_make_zone(EVP_PKEY *rsa, EVP_PKEY *ed, EVP_PKEY *weak)
{
	struct tg_buf	 z;
	char		*r, *e, *w, *path;

	r = t_pubrec(rsa);
	e = t_pubrec(ed);
	w = t_pubrec(weak);
	tg_buf_init(&z);
	tg_buf_puts(&z, "example.com. 300 IN SOA ns. host. 1 3600 600 86400 "
	    "300\nexample.org. 300 IN SOA ns. host. 1 3600 600 86400 300\n"
	    "nodata._domainkey.example.com. 300 IN A 192.0.2.1\n"
	    "$TIMEOUT slow._domainkey.example.com.\n"
	    "$SERVFAIL broken._domainkey.example.com.\n");
	t_zone_add(&z, "rsa2024._domainkey.example.com", r);
	t_zone_add(&z, "sha1._domainkey.example.com", r);
	t_zone_add(&z, "ed2024._domainkey.example.com", e);
	t_zone_add(&z, "weak._domainkey.example.com", w);
	t_zone_add(&z, "bad._domainkey.example.com", "v=DKIM1; k=rsa; p=!!");
	t_zone_add(&z, "revoked._domainkey.example.com", "v=DKIM1; p=");
	t_zone_add(&z, "twice._domainkey.example.com", r);
	t_zone_add(&z, "twice._domainkey.example.com", e);
	t_zone_bad_records(&z, strstr(r, "p="));
	path = t_write("zone.txt", tg_buf_cstr(&z), 0644);
	tg_buf_fini(&z);
	free(r);
	free(e);
	free(w);
	return path;
}

/* t_setup - scratch directory, keys, zone, log capture */
static int
t_setup(void **state)
{
	EVP_PKEY	*rsa, *ed, *weak;

	(void)state;
	(void)snprintf(t_dir, 64, "/tmp/dkim_test.XXXXXX");
	if (mkdtemp(t_dir) == NULL)
		return -1;
	tg_test_log_init();
	rsa = t_genkey(2048);
	ed = t_genkey(0);
	weak = t_genkey(512);
	t_rsa_pem = t_pem(rsa, true);
	t_ed_pem = t_pem(ed, false);
	t_weak_pem = t_pem(weak, true);
	free(t_write("rsa.key", t_rsa_pem, 0600));
	free(t_write("ed.key", t_ed_pem, 0600));
	free(t_write("weak.key", t_weak_pem, 0600));
	t_zone = t_make_zone(rsa, ed, weak);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(weak);
	if ((t_lib = dkim_init(NULL, NULL)) == NULL)
		return -1;
	/* t_sign_raw makes what our signer refuses: short keys too */
	return dkim_options(t_lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS,
	    &(unsigned int){ 0 }, sizeof(unsigned int)) == DKIM_STAT_OK ?
	    0 : -1;
}

/* t_teardown - remove the scratch directory */
static int
t_teardown(void **state)
{
	char	cmd[128];

	(void)state;
	dkim_close(t_lib);
	tg_test_log_fini();
	free(t_rsa_pem);
	free(t_ed_pem);
	free(t_weak_pem);
	free(t_zone);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", t_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * t_sign_raw - msg signed by libopendkim directly, for what our signer
 * refuses to make (rsa-sha1, short keys, unknown selectors).
 */
static char *
t_sign_raw(const char *msg, const char *pem, const char *sel, dkim_alg_t alg)
{
	struct tg_buf	 out;
	DKIM_STAT	 st;
	DKIM		*d;
	u_char		*hdr;
	size_t		 hlen;
	char		*text = t_crlf(msg), *p, *end, *body;

	d = dkim_sign(t_lib, (const u_char *)"raw", NULL, (dkim_sigkey_t)pem,
	    (const u_char *)sel, (const u_char *)"example.com",
	    DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, alg, -1, &st);
	assert_non_null(d);
	body = strstr(text, "\r\n\r\n");
	for (p = text; p < body + 2; p = end + 2) {
		for (end = p; (end = strstr(end, "\r\n")) != NULL &&
		    (end[2] == ' ' || end[2] == '\t'); end += 2)
			;
		assert_int_equal(dkim_header(d, (u_char *)p, (size_t)(end - p)),
		    DKIM_STAT_OK);
	}
	assert_int_equal(dkim_eoh(d), DKIM_STAT_OK);
	assert_int_equal(dkim_body(d, (u_char *)body + 4, strlen(body + 4)),
	    DKIM_STAT_OK);
	assert_int_equal(dkim_eom(d, NULL), DKIM_STAT_OK);
	assert_int_equal(dkim_getsighdr_d(d, 16, &hdr, &hlen), DKIM_STAT_OK);
	tg_buf_init(&out);
	tg_buf_printf(&out, "DKIM-Signature: %.*s\r\n%s", (int)hlen,
	    (const char *)hdr, text);
	(void)dkim_free(d);
	free(text);
	return tg_buf_steal(&out);
}

/* t_verify_one - verify text inbound; results and authres substring */
static void
t_verify_one(const char *text, const char *want_results, const char *want_ar)
{
	struct t_run	r;

	t_run(text, false, &r);
	if (strcmp(r.results, want_results) != 0)
		fail_msg("results \"%s\", want \"%s\"; A-R: %s", r.results,
		    want_results, r.authres);
	if (want_ar != NULL && strstr(r.authres, want_ar) == NULL)
		fail_msg("A-R \"%s\" lacks \"%s\"", r.authres, want_ar);
	t_run_free(&r);
}

/* ---- part two: whole messages through the pipeline ---- */

/* t_two_keys - the pipeline signing example.com with both keys */
static void
t_two_keys(const char *extra)
{
	char	*conf;

	conf = tg_printf_dup(T_KEYS "%s", t_dir, t_dir, extra);
	t_pipeline(conf, t_zone);
	free(conf);
}

/* test_sign_verify - both keys sign; the signed text verifies */
static void
test_sign_verify(void **state)
{
	struct t_run	s, v;

	(void)state;
	t_two_keys("");
	t_run(T_MSG, true, &s);
	assert_int_equal(s.verdict, TG_ACCEPT);
	assert_int_equal(s.nsig_added, 2);
	assert_string_equal(s.results, "");
	assert_non_null(strstr(s.decision, "dkim=signed:example.com"));
	assert_non_null(strstr(tg_test_log(), "action=signed d=example.com "
	    "s=rsa2024,ed2024 a=rsa-sha256,ed25519-sha256"));
	assert_non_null(strstr(s.out, "a=ed25519-sha256"));
	assert_non_null(strstr(s.out, "a=rsa-sha256"));
	assert_null(strstr(s.out, "l="));
	assert_non_null(strstr(s.out, "c=relaxed/relaxed"));
	t_run(s.out, false, &v);
	assert_int_equal(v.verdict, TG_ACCEPT);
	assert_string_equal(v.results, "pass,pass");
	assert_non_null(strstr(v.authres, "dkim=pass header.d=example.com "
	    "header.s=ed2024 header.a=ed25519-sha256 header.b="));
	assert_non_null(strstr(v.authres, "header.s=rsa2024"));
	assert_non_null(strstr(v.decision, "dkim=pass,pass"));
	/* both keys were fetched while the body came in */
	assert_non_null(strstr(tg_test_log(), "rsa2024._domainkey.example.com: "
	    "answered from prefetch"));
	assert_non_null(strstr(tg_test_log(), "ed2024._domainkey.example.com: "
	    "answered from prefetch"));
	t_run_free(&s);
	t_run_free(&v);
	t_pipeline_done();
}

/* t_tamper - the signed message with one string replaced */
static char *
t_tamper(const char *text, const char *from, const char *to)
{
	const char	*p = strstr(text, from);
	struct tg_buf	 b;

	assert_non_null(p);
	tg_buf_init(&b);
	tg_buf_append(&b, text, (size_t)(p - text));
	tg_buf_puts(&b, to);
	tg_buf_puts(&b, p + strlen(from));
	return tg_buf_steal(&b);
}

/* test_tampered - a changed body or signed header fails */
static void
test_tampered(void **state)
{
	struct t_run	 s;
	char		*t;

	(void)state;
	t_two_keys("");
	t_run(T_MSG, true, &s);
	t = t_tamper(s.out, "numbers are in", "numbers are out");
	t_verify_one(t, "fail,fail", "dkim=fail reason=\"body hash "
	    "mismatch\" header.d=example.com");
	free(t);
	t = t_tamper(s.out, "Subject: quarterly", "Subject: yearly");
	t_verify_one(t, "fail,fail", "reason=\"signature verification "
	    "failed\"");
	free(t);
	/* an added From: is caught by oversigning (RFC 6376 8.15) */
	t = t_tamper(s.out, "To: Bob", "From: mallory@example.com\r\nTo: Bob");
	t_verify_one(t, "fail,fail", NULL);
	free(t);
	/* unsigned header fields may change */
	t = t_tamper(s.out, "To: Bob", "X-Mailer: any\r\nTo: Bob");
	t_verify_one(t, "pass,pass", NULL);
	free(t);
	t_run_free(&s);
	t_pipeline_done();
}

/* test_dns_outcomes - no key, timeout, SERVFAIL, NODATA, bad records */
static void
test_dns_outcomes(void **state)
{
	static const struct {
		const char	*selector;
		const char	*want;
		const char	*ar;
	} cases[] = {
		{ "gone", "permerror", "reason=\"no key\" header.d=example.com "
		  "header.s=gone" },
		{ "nodata", "permerror", "reason=\"no key\"" },
		{ "slow", "temperror", "dkim=temperror reason=\"key query "
		  "failed\"" },
		{ "broken", "temperror", "dkim=temperror" },
		{ "bad", "permerror", "dkim=permerror" },
		{ "revoked", "permerror", "dkim=permerror" },
		{ "twice", "permerror", "dkim=permerror" },
	};
	char	*t;
	size_t	 i;

	(void)state;
	t_two_keys("");
	for (i = 0; i < TG_NITEMS(cases); i++) {
		t = t_sign_raw(T_MSG, t_rsa_pem, cases[i].selector,
		    DKIM_SIGN_RSASHA256);
		t_verify_one(t, cases[i].want, cases[i].ar);
		free(t);
	}
	assert_non_null(strstr(tg_test_log(), "on_error=accept"));
	for (i = 0; i < TG_NITEMS(t_bad_records); i++) {
		t = t_sign_raw(T_MSG, t_rsa_pem, t_bad_records[i].selector,
		    DKIM_SIGN_RSASHA256);
		t_verify_one(t, "permerror", t_bad_records[i].reason);
		free(t);
	}
	t_pipeline_done();
}

/* test_on_error_tempfail - a key lookup timeout defers when configured */
static void
test_on_error_tempfail(void **state)
{
	struct t_run	 r;
	char		*t, *good;

	(void)state;
	t_two_keys("on_error = tempfail\n");
	t = t_sign_raw(T_MSG, t_rsa_pem, "slow", DKIM_SIGN_RSASHA256);
	t_run(t, false, &r);
	assert_int_equal(r.verdict, TG_TEMPFAIL);
	assert_string_equal(r.results, "temperror");
	assert_non_null(strstr(r.decision, "action=tempfail"));
	t_run_free(&r);
	/* a passing signature next to the timed-out one: judged, accepted */
	good = t_sign_raw(t, t_rsa_pem, "rsa2024", DKIM_SIGN_RSASHA256);
	t_run(good, false, &r);
	assert_int_equal(r.verdict, TG_ACCEPT);
	assert_string_equal(r.results, "pass,temperror");
	t_run_free(&r);
	free(t);
	free(good);
	t_pipeline_done();
}

/* test_rfc8301 - rsa-sha1 and short keys never pass */
static void
test_rfc8301(void **state)
{
	char	*t;

	(void)state;
	t_two_keys("");
	t = t_sign_raw(T_MSG, t_rsa_pem, "sha1", DKIM_SIGN_RSASHA1);
	t_verify_one(t, "policy", "dkim=policy reason=\"rsa-sha1 not allowed "
	    "(RFC 8301)\" header.d=example.com header.s=sha1 "
	    "header.a=rsa-sha1");
	free(t);
	t = t_sign_raw(T_MSG, t_weak_pem, "weak", DKIM_SIGN_RSASHA256);
	t_verify_one(t, "policy", "reason=\"key too small: 512 bits "
	    "(RFC 8301)\"");
	free(t);
	/* tampered and weak: the crypto decides first */
	t = t_sign_raw(T_MSG, t_weak_pem, "weak", DKIM_SIGN_RSASHA256);
	t[strlen(t) - 3] = 'X';
	t_verify_one(t, "fail", NULL);
	free(t);
	t_pipeline_done();
	/* with min_key_bits = 512 the short key is accepted */
	t_two_keys("min_key_bits = 512\n");
	t = t_sign_raw(T_MSG, t_weak_pem, "weak", DKIM_SIGN_RSASHA256);
	t_verify_one(t, "pass", NULL);
	free(t);
	t_pipeline_done();
}

/* test_malformed - broken signatures are permerror, never a crash */
static void
test_malformed(void **state)
{
	static const char *const sigs[] = {
		"DKIM-Signature: v=1; a=rsa-sha256; garbage\n",
		"DKIM-Signature: \n",
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=rsa2024; "
		    "h=from; bh=AAAA; b=\n",
		"DKIM-Signature: v=2; a=rsa-sha256; d=example.com; s=rsa2024; "
		    "h=from; bh=AAAA; b=AAAA\n",
		"DKIM-Signature: v=1; a=rsa-md5; d=example.com; s=rsa2024; "
		    "h=from; bh=AAAA; b=AAAA\n",
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=rsa2024; "
		    "h=subject; bh=AAAA; b=AAAA\n",
		"DKIM-Signature: v=1; a=rsa-sha256; d=ex\"am(ple.com; "
		    "s=x\\y; h=from; bh=AAAA; b=AAAA\n",
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=rsa2024; "
		    "t=99999999999999999999; h=from; bh=AAAA; b=AAAA\n",
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=rsa2024; "
		    "h=from; bh=AAAA; b=AAAA; l=-5\n",
	};
	char	*t;
	size_t	 i;

	(void)state;
	t_two_keys("");
	for (i = 0; i < TG_NITEMS(sigs); i++) {
		t = tg_printf_dup("%s%s", sigs[i], T_MSG);
		t_verify_one(t, "permerror", "dkim=permerror reason=");
		free(t);
	}
	t_pipeline_done();
}

/* test_unsigned - none, and one "dkim=none" resinfo */
static void
test_unsigned(void **state)
{
	struct t_run	r;

	(void)state;
	t_two_keys("");
	t_run(T_MSG, false, &r);
	assert_int_equal(r.verdict, TG_ACCEPT);
	assert_string_equal(r.results, "none");
	assert_non_null(strstr(r.authres, "dkim=none"));
	assert_non_null(strstr(r.decision, "dkim=none"));
	assert_non_null(strstr(tg_test_log(), "result=none"));
	t_run_free(&r);
	t_pipeline_done();
}

/* test_not_ours - outbound mail we have no key for goes out unsigned */
static void
test_not_ours(void **state)
{
	static const struct {
		const char	*from;
		const char	*why;
	} cases[] = {
		{ "From: x@other.example\n", "no key for the From domain\" "
		  "domain=other.example" },
		{ "From: a@example.com\nFrom: b@example.com\n",
		  "several From fields" },
		{ "", "no From field" },
		{ "From: a@example.com, b@example.com\n",
		  "more than one address" },
		{ "From: undisclosed:;\n", "group syntax" },
	};
	struct t_run	 r;
	char		*t;
	size_t		 i;

	(void)state;
	t_two_keys("");
	for (i = 0; i < TG_NITEMS(cases); i++) {
		t = tg_printf_dup("%sSubject: s\n\nbody\n", cases[i].from);
		tg_test_log_reset();
		t_run(t, true, &r);
		assert_int_equal(r.verdict, TG_ACCEPT);
		assert_int_equal(r.nsig_added, 0);
		assert_non_null(strstr(r.decision, "dkim=unsigned"));
		if (strstr(tg_test_log(), cases[i].why) == NULL)
			fail_msg("case %zu: log lacks \"%s\":\n%s", i,
			    cases[i].why, tg_test_log());
		assert_non_null(strstr(tg_test_log(), "action=unsigned"));
		t_run_free(&r);
		free(t);
	}
	t_pipeline_done();
}

/* test_config_refused - start-up refuses unusable keys and settings */
static void
test_config_refused(void **state)
{
	static const struct {
		const char	*conf;
		const char	*want;
	} cases[] = {
		{ "keys = example.com:s:%s/world.key\n", "world.key: readable "
		  "by group or others" },
		{ "keys = example.com:s:%s/none.key\n", "none.key: No such" },
		{ "keys = example.com:s:%s/weak.key\n", "under min_key_bits" },
		{ "keys = example.com:s\n", "want domain:selector" },
		{ "canonicalization = loose\n", "canonicalization" },
		{ "sign_headers = to subject\n", "must include from" },
		{ "signing_table = /x\n", "needs key_table" },
		{ "key_table = %s/kt\nsigning_table = %s/nope\n", "nope" },
		{ "on_error = maybe\n", "on_error" },
	};
	struct tg_pipeline_opts	 o;
	struct tg_err		 err;
	char			*conf, *body, *w;
	size_t			 i;

	(void)state;
	w = t_write("world.key", t_rsa_pem, 0644);
	free(w);
	w = tg_printf_dup("k example.com:s:%s/rsa.key\n", t_dir);
	free(t_write("kt", w, 0644));
	free(w);
	for (i = 0; i < TG_NITEMS(cases); i++) {
		body = tg_printf_dup(cases[i].conf, t_dir, t_dir);
		conf = tg_printf_dup("[core]\nmodules = dkim\n[dkim]\n%s",
		    body);
		memset(&o, 0, sizeof(o));
		o.conf_text = conf;
		o.force_offline = true;
		err.text[0] = '\0';
		assert_int_not_equal(tg_pipeline_init(&o, &err), TG_OK);
		if (strstr(err.text, cases[i].want) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.text,
			    cases[i].want);
		tg_pipeline_fini();
		free(body);
		free(conf);
	}
}

/* test_sign_tables - signing through KeyTable and SigningTable files */
static void
test_sign_tables(void **state)
{
	struct t_run	 s, v;
	char		*kt, *st, *conf, *text;

	(void)state;
	text = tg_printf_dup("k1 example.com:rsa2024:%s/rsa.key\n", t_dir);
	kt = t_write("kt-sign", text, 0644);
	st = t_write("st-sign", "*@example.com k1\n", 0644);
	conf = tg_printf_dup("key_table = file:%s\nsigning_table = refile:%s\n"
	    "canonicalization = simple/simple\n", kt, st);
	t_pipeline(conf, t_zone);
	t_run(T_MSG, true, &s);
	assert_int_equal(s.nsig_added, 1);
	assert_non_null(strstr(s.out, "c=simple/simple"));
	t_run(s.out, false, &v);
	assert_string_equal(v.results, "pass");
	t_run_free(&s);
	t_run_free(&v);
	t_pipeline_done();
	free(text);
	free(kt);
	free(st);
	free(conf);
}

/* t_big_message - n extra headers and a body of about body_mb megabytes */
static char *
t_big_message(size_t nhdr, size_t body_mb)
{
	struct tg_buf	b;
	size_t		i;

	tg_buf_init(&b);
	tg_buf_puts(&b, "From: alice@example.com\r\nSubject: big\r\n");
	for (i = 0; i < nhdr; i++)
		tg_buf_printf(&b, "X-Filler-%zu: value %zu\r\n", i, i);
	tg_buf_puts(&b, "\r\n");
	for (i = 0; i < body_mb * 16384; i++)
		tg_buf_puts(&b, "0123456789abcdef0123456789abcdef"
		    "0123456789abcdef0123456789ab\r\n");
	return tg_buf_steal(&b);
}

/* test_big_messages - many headers, megabytes of body: a result */
static void
test_big_messages(void **state)
{
	struct t_run	 s, v;
	char		*t;

	(void)state;
	t_two_keys("");
	t = t_big_message(3000, 24);
	t_verify_one(t, "none", NULL);
	t_run(t, true, &s);
	assert_int_equal(s.nsig_added, 2);
	t_run(s.out, false, &v);
	assert_string_equal(v.results, "pass,pass");
	t_run_free(&s);
	t_run_free(&v);
	free(t);
	t_pipeline_done();
}

/* test_max_signatures - only the first max_signatures are verified */
static void
test_max_signatures(void **state)
{
	struct tg_buf	 b;
	struct t_run	 r;
	char		*one, *sig;
	size_t		 i, n;

	(void)state;
	t_two_keys("max_signatures = 3\n");
	one = t_sign_raw(T_MSG, t_rsa_pem, "rsa2024", DKIM_SIGN_RSASHA256);
	sig = tg_strndup(one, (size_t)(strstr(one, "\r\nFrom:") + 2 - one));
	tg_buf_init(&b);
	for (i = 0; i < 500; i++)
		tg_buf_puts(&b, sig);
	tg_buf_puts(&b, T_MSG);
	t_run(tg_buf_cstr(&b), false, &r);
	if (strcmp(r.results, "pass,pass,pass") != 0)
		fail_msg("results %s\n%s", r.results, tg_test_log());
	for (n = 0, i = 0; r.authres[i] != '\0'; i++)
		n += strncmp(r.authres + i, "dkim=", 5) == 0;
	assert_int_equal(n, 3);
	t_run_free(&r);
	tg_buf_fini(&b);
	free(one);
	free(sig);
	t_pipeline_done();
}

/* test_abort - a message abandoned mid-body frees its handles */
static void
test_abort(void **state)
{
	struct tg_ctx	*ctx;
	int		 job;

	(void)state;
	t_two_keys("");
	for (job = 0; job < 2; job++) {
		ctx = tg_ctx_new(NULL, NULL);
		(void)tg_stage_connect(ctx, "localhost", job == 0 ?
		    "127.0.0.1" : "192.0.2.1");
		(void)tg_stage_envfrom(ctx, "<alice@example.com>");
		(void)tg_stage_header(ctx, "DKIM-Signature", " v=1; "
		    "a=rsa-sha256; d=example.com; s=rsa2024; h=from; "
		    "bh=AAAA; b=AAAA");
		(void)tg_stage_header(ctx, "From", " alice@example.com");
		(void)tg_stage_eoh(ctx);
		(void)tg_stage_body(ctx, (const unsigned char *)"x\r\n", 3);
		tg_stage_abort(ctx);
		/* and a second message on the same connection still works */
		(void)tg_stage_envfrom(ctx, "<alice@example.com>");
		(void)tg_stage_header(ctx, "From", " alice@example.com");
		(void)tg_stage_eoh(ctx);
		tg_stage_abort(ctx);
		tg_ctx_free(ctx);
	}
	t_pipeline_done();
}

/* test_switches - sign = no / verify = no do nothing */
static void
test_switches(void **state)
{
	struct t_run	r;

	(void)state;
	t_two_keys("sign = no\nverify = no\n");
	t_run(T_MSG, true, &r);
	assert_int_equal(r.nsig_added, 0);
	t_run_free(&r);
	t_run(T_MSG, false, &r);
	assert_string_equal(r.results, "");
	assert_string_equal(r.authres, "");
	t_run_free(&r);
	t_pipeline_done();
}

/* t_worker - sign and verify messages on one thread */
static void *
t_worker(void *arg)
{
	struct t_run	 s, v;
	size_t		 i, *bad = arg;
	char		*msg;

	for (i = 0; i < 25; i++) {
		msg = tg_printf_dup("From: user%zu@example.com\nSubject: %zu\n"
		    "\nbody %zu\n", i, i, i);
		t_run(msg, true, &s);
		t_run(s.out, false, &v);
		*bad += s.nsig_added != 2 ||
		    strcmp(v.results, "pass,pass") != 0;
		t_run_free(&s);
		t_run_free(&v);
		free(msg);
	}
	return NULL;
}

/*
 * test_keycache - libopendkim's per-message key parse is answered from
 * the keys loaded at start-up (dkim_keycache.c): two signatures, two
 * hits, and they verify; a PEM that was not loaded is still parsed by
 * OpenSSL; the map gives keys back after deletions.
 */
static void
test_keycache(void **state)
{
	struct t_run	 s, v;
	struct dkim_map	*m;
	unsigned long	 hits, lost;
	EVP_PKEY	*k;
	char		*pem, name[16];
	size_t		 i;
	BIO		*bio;

	(void)state;
	t_two_keys("");
	hits = dkim_keycache_hits();
	lost = dkim_mem_reclaimed();
	t_run(T_MSG, true, &s);
	assert_int_equal(s.nsig_added, 2);
	assert_int_equal(dkim_keycache_hits(), hits + 2);
	/* the Ed25519 signature's buffer libopendkim loses (dkim_mem.c) */
	assert_int_equal(dkim_mem_reclaimed(), lost + 1);
	t_run(s.out, false, &v);
	assert_string_equal(v.results, "pass,pass");
	t_run_free(&s);
	t_run_free(&v);
	t_pipeline_done();
	/* keys freed with the pipeline: nothing is answered from them */
	k = t_genkey(1024);
	pem = t_pem(k, false);
	bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY_free(k);
	assert_non_null(k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL));
	assert_int_equal(EVP_PKEY_get_bits(k), 1024);
	assert_int_equal(dkim_keycache_hits(), hits + 2);
	EVP_PKEY_free(k);
	BIO_free(bio);
	free(pem);
	m = dkim_map_new();
	for (i = 0; i < 1000; i++) {
		(void)snprintf(name, sizeof(name), "k%zu", i);
		assert_true(dkim_map_put(m, name, (void *)(i + 1)));
	}
	for (i = 0; i < 1000; i += 2) {
		(void)snprintf(name, sizeof(name), "k%zu", i);
		assert_ptr_equal(dkim_map_del(m, name), (void *)(i + 1));
		assert_null(dkim_map_del(m, name));
	}
	assert_int_equal(dkim_map_count(m), 500);
	for (i = 0; i < 1000; i++) {
		(void)snprintf(name, sizeof(name), "k%zu", i);
		assert_ptr_equal(dkim_map_get(m, name),
		    i % 2 == 0 ? NULL : (void *)(i + 1));
	}
	dkim_map_free(m, NULL);
}

/* test_threads - libmilter's threads share the module: no lock needed */
static void
test_threads(void **state)
{
	pthread_t	th[4];
	size_t		bad[4] = { 0 }, i;
	unsigned long	hits;

	(void)state;
	t_two_keys("");
	hits = dkim_keycache_hits();
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, t_worker,
		    &bad[i]), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(bad[i], 0);
	}
	/* every signature used the shared parsed keys */
	assert_int_equal(dkim_keycache_hits(), hits + 4 * 25 * 2);
	t_pipeline_done();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyring_tables),
		cmocka_unit_test(test_keyring_refile),
		cmocka_unit_test(test_keyring_errors),
		cmocka_unit_test(test_key_files),
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_dns_outcomes),
		cmocka_unit_test(test_on_error_tempfail),
		cmocka_unit_test(test_rfc8301),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_unsigned),
		cmocka_unit_test(test_not_ours),
		cmocka_unit_test(test_config_refused),
		cmocka_unit_test(test_sign_tables),
		cmocka_unit_test(test_big_messages),
		cmocka_unit_test(test_max_signatures),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_switches),
		cmocka_unit_test(test_keycache),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_corpus_rfc8463_verify),
		cmocka_unit_test(test_corpus_rfc8463_sign),
		cmocka_unit_test(test_corpus_dkimpy),
		cmocka_unit_test(test_corpus_dkimpy_keys),
		cmocka_unit_test(test_corpus_mail_dkim),
	};

	return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
