/*
 * dkim_test_tables - the DKIM module's parts without the pipeline: the
 * KeyTable/SigningTable parser (good files, OpenDKIM lookup order, refile
 * wildcards, bad lines reported with file:line), key files (PEM, DER,
 * base64 DER and seeds accepted; missing, unparsable, short or
 * group/world-readable ones refused), the From: parser and wildcards.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dkim_int.h"
#include "dkim_test.h"
#include "tollgate/buf.h"

/* test_keyring_tables - KeyTable + SigningTable lookups as OpenDKIM */
void
test_keyring_tables(void **state)
{
	struct dkim_keyring	*r = dkim_keyring_new();
	struct dkim_signreq	 q[DKIM_MAX_SIGNERS];
	struct dkim_keyring_stats ks;
	struct tg_err		 err;
	char			*kt, *st, *text;
	size_t			 n;

	(void)state;
	text = tg_printf_dup("# comment\n\nrsa example.com:rsa2024:%s/rsa.key\n"
	    "ed example.com:ed2024:%s/ed.key\n"
	    "sub sub.example.net:s1:%s/rsa.key\n"
	    "any %%:generic:%s/ed.key\n"
	    "boss example.com:boss:%s/rsa.key\n", t_dir, t_dir, t_dir, t_dir,
	    t_dir);
	kt = t_write("keytable", text, 0644);
	free(text);
	st = t_write("signtable", "example.com rsa\nexample.com ed\n"
	    "boss@example.com boss @example.com\n"
	    ".example.net sub\n*  any\n", 0644);
	assert_int_equal(dkim_keyring_load_keys(r, kt, 1024, &err), TG_OK);
	assert_int_equal(dkim_keyring_load_signing(r, st, &err), TG_OK);
	dkim_keyring_stats(r, &ks);
	assert_int_equal(ks.entries, 5);
	assert_int_equal(ks.files, 2);	/* each key file read once */
	assert_int_equal(ks.ed25519, 1);
	assert_int_equal(ks.rules, 4);
	n = dkim_keyring_lookup(r, "alice", "example.com", q, 8);
	assert_int_equal(n, 2);
	assert_string_equal(q[0].selector, "rsa2024");
	assert_string_equal(q[1].selector, "ed2024");
	assert_string_equal(q[1].key->alg_name, "ed25519-sha256");
	n = dkim_keyring_lookup(r, "boss", "example.com", q, 8);
	assert_int_equal(n, 1);
	assert_string_equal(q[0].selector, "boss");
	assert_string_equal(q[0].ident, "@example.com");
	n = dkim_keyring_lookup(r, "x", "a.sub.example.net", q, 8);
	assert_int_equal(n, 1);
	assert_string_equal(q[0].domain, "sub.example.net");
	/* "*" with a "%" key: the From domain signs with the generic key */
	n = dkim_keyring_lookup(r, "x", "other.test", q, 8);
	assert_int_equal(n, 1);
	assert_string_equal(q[0].domain, "other.test");
	assert_string_equal(q[0].selector, "generic");
	dkim_keyring_free(r);
	free(kt);
	free(st);
}

/* test_keyring_refile - wildcard patterns, first match in file order */
void
test_keyring_refile(void **state)
{
	struct dkim_keyring	*r = dkim_keyring_new();
	struct dkim_signreq	 q[DKIM_MAX_SIGNERS];
	struct tg_err		 err;
	char			*kt, *st, *text, *spec;

	(void)state;
	text = tg_printf_dup("a example.com:a:%s/rsa.key\n"
	    "b example.com:b:%s/ed.key\nc example.org:c:%s/rsa.key\n",
	    t_dir, t_dir, t_dir);
	kt = t_write("keytable2", text, 0644);
	free(text);
	st = t_write("refile", "ceo@example.com b\n*@example.com a\n"
	    "*@example.com b\n*@*.example.org c\n", 0644);
	spec = tg_printf_dup("refile:%s", st);
	assert_int_equal(dkim_keyring_load_keys(r, kt, 1024, &err), TG_OK);
	assert_int_equal(dkim_keyring_load_signing(r, spec, &err), TG_OK);
	assert_int_equal(dkim_keyring_lookup(r, "ceo", "example.com", q, 8), 1);
	assert_string_equal(q[0].selector, "b");
	assert_int_equal(dkim_keyring_lookup(r, "x", "example.com", q, 8), 2);
	assert_string_equal(q[0].selector, "a");
	assert_string_equal(q[1].selector, "b");
	assert_int_equal(dkim_keyring_lookup(r, "x", "m.example.org", q, 8), 1);
	assert_int_equal(dkim_keyring_lookup(r, "x", "example.org", q, 8), 0);
	assert_int_equal(dkim_keyring_lookup(r, "x", "example.net", q, 8), 0);
	dkim_keyring_free(r);
	free(kt);
	free(st);
	free(spec);
}

/* test_keyring_errors - bad lines are reported with file:line */
void
test_keyring_errors(void **state)
{
	static const struct {
		const char	*keytable;
		const char	*signtable;	/* NULL: keytable only */
		const char	*want;
	} cases[] = {
		{ "k example.com:sel\n", NULL,
		  ":1: \"example.com:sel\": want" },
		{ "\nk example.com:sel:%s/rsa.key extra\n", NULL, ":2: want" },
		{ "k exa mple\n", NULL, "kt:1: want" },
		{ "k bad_domain:sel:%s/rsa.key\n", NULL, "bad domain" },
		{ "k example.com:-sel:%s/rsa.key\n", NULL, "bad selector" },
		{ "k example.com:s:%s/rsa.key\nk example.com:t:%s/rsa.key\n",
		  NULL, ":2: key name \"k\" defined twice" },
		{ "k example.com:s:%s/nonexistent.key\n", NULL,
		  "nonexistent.key: No such file" },
		{ "k example.com:s:%s/rsa.key\n", "example.com nokey\n",
		  "signtable:1: key name \"nokey\" is not in the key table" },
		{ "k example.com:s:%s/rsa.key\n", "example.com\n",
		  "signtable:1: want" },
		{ "k example.com:s:%s/rsa.key\n", "a k @evil.test\n",
		  "signtable:1: identity" },
	};
	struct dkim_keyring	*r;
	struct tg_err		 err;
	char			*kt, *st, *text;
	size_t			 i;

	(void)state;
	for (i = 0; i < TG_NITEMS(cases); i++) {
		r = dkim_keyring_new();
		text = tg_printf_dup(cases[i].keytable, t_dir, t_dir);
		kt = t_write("kt", text, 0644);
		st = t_write("signtable", cases[i].signtable != NULL ?
		    cases[i].signtable : "", 0644);
		err.text[0] = '\0';
		if (dkim_keyring_load_keys(r, kt, 1024, &err) == TG_OK)
			assert_int_equal(dkim_keyring_load_signing(r, st, &err),
			    TG_PERM);
		if (strstr(err.text, cases[i].want) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.text,
			    cases[i].want);
		dkim_keyring_free(r);
		free(text);
		free(kt);
		free(st);
	}
}

/* t_key_try - dkim_key_load on text written with mode */
static enum tg_status
t_key_try(const char *text, int mode, struct tg_err *err,
    const char **alg)
{
	struct dkim_keyloader	*l = dkim_keyloader_new();
	struct dkim_key		*k = NULL;
	enum tg_status		 st;
	char			*p = t_write("try.key", text, mode);

	st = dkim_key_load(l, p, 1024, &k, err);
	if (st == TG_OK) {
		*alg = k->alg_name;
		/* libopendkim takes PEM only (dkim_sign uses strlen) */
		assert_true(strncmp(k->pem, "-----BEGIN PRIVATE KEY-----", 27)
		    == 0 || strncmp(k->pem, "-----BEGIN RSA PRIVATE KEY-----",
		    31) == 0);
	}
	dkim_key_free(k);
	dkim_keyloader_free(l);
	free(p);
	return st;
}

/* t_der_file - the key of pem as a DER file, or its base64 (0600) */
static char *
t_der_file(const char *pem, bool b64)
{
	BIO		*bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY	*k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	unsigned char	*der = NULL;
	char		*path, *text;
	FILE		*fp;
	int		 n;

	assert_non_null(k);
	assert_true((n = i2d_PrivateKey(k, &der)) > 0);
	if (b64) {
		text = t_b64(der, (size_t)n);
		path = t_write("der64.key", text, 0600);
		free(text);
	} else {
		path = t_path("der.key");
		assert_non_null(fp = fopen(path, "w"));
		assert_int_equal(fwrite(der, 1, (size_t)n, fp), (size_t)n);
		assert_int_equal(fclose(fp), 0);
		assert_int_equal(chmod(path, 0600), 0);
	}
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	BIO_free(bio);
	return path;
}

/* test_key_files - forms we read, files we refuse */
void
test_key_files(void **state)
{
	struct dkim_keyloader	*l = dkim_keyloader_new();
	struct tg_err		 err;
	struct dkim_key		*k = NULL;
	const char		*alg = NULL;
	char			*seed, *p, *der;

	(void)state;
	assert_int_equal(t_key_try(t_rsa_pem, 0600, &err, &alg), TG_OK);
	assert_string_equal(alg, "rsa-sha256");
	assert_int_equal(t_key_try(t_ed_pem, 0400, &err, &alg), TG_OK);
	assert_string_equal(alg, "ed25519-sha256");
	/* the base64 seed of RFC 8463 A.1 / dkimpy's rfc8032_7_1.key */
	seed = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=\n";
	assert_int_equal(t_key_try(seed, 0600, &err, &alg), TG_OK);
	assert_string_equal(alg, "ed25519-sha256");
	/* DER, binary and base64 (OpenDKIM's KeyTable allows the latter) */
	der = t_der_file(t_rsa_pem, false);
	assert_int_equal(dkim_key_load(l, der, 1024, &k, &err), TG_OK);
	assert_non_null(strstr(k->pem, "-----BEGIN PRIVATE KEY-----"));
	dkim_key_free(k);
	k = NULL;
	free(der);
	der = t_der_file(t_ed_pem, true);
	assert_int_equal(dkim_key_load(l, der, 1024, &k, &err), TG_OK);
	assert_string_equal(k->alg_name, "ed25519-sha256");
	dkim_key_free(k);
	k = NULL;
	free(der);
	/* readable by others: refused, with the file name */
	assert_int_equal(t_key_try(t_rsa_pem, 0644, &err, &alg), TG_PERM);
	assert_non_null(strstr(err.text, "try.key"));
	assert_non_null(strstr(err.text, "readable by group or others"));
	assert_int_equal(t_key_try(t_rsa_pem, 0640, &err, &alg), TG_PERM);
	assert_int_equal(t_key_try("not a key\n", 0600, &err, &alg), TG_PERM);
	assert_non_null(strstr(err.text, "not a private key"));
	assert_int_equal(t_key_try("", 0600, &err, &alg), TG_PERM);
	/* an RSA key under min_key_bits cannot sign */
	assert_int_equal(t_key_try(t_weak_pem, 0600, &err, &alg), TG_PERM);
	assert_non_null(strstr(err.text, "512 bits"));
	p = t_path("missing.key");
	assert_int_equal(dkim_key_load(l, p, 1024, &k, &err), TG_PERM);
	assert_non_null(strstr(err.text, "missing.key"));
	free(p);
	assert_int_equal(dkim_key_load(l, t_dir, 1024, &k, &err), TG_PERM);
	dkim_keyloader_free(l);
}

/* test_addr_parse - the From: mailbox */
void
test_addr_parse(void **state)
{
	static const struct {
		const char	*value;
		const char	*user, *domain;	/* NULL: refused */
	} cases[] = {
		{ " alice@Example.COM", "alice", "example.com" },
		{ " Alice <alice@example.com>", "alice", "example.com" },
		{ " \"Doe, John\" <john@example.com>", "john", "example.com" },
		{ " (comment, with) \"q\\\"x\"@example.com.", "q\"x",
		  "example.com" },
		{ " \"a@b\" <x@example.com> (c <d@e.f>)", "x", "example.com" },
		{ "\r\n\tBob\r\n <bob@sub.Example.ORG>", "bob",
		  "sub.example.org" },
		{ " \"quoted local\"@example.com", "quoted local",
		  "example.com" },
		{ " <@route.example:a@example.com>", "a", "example.com" },
		{ " a@example.com, b@example.com", NULL, NULL },
		{ " undisclosed-recipients:;", NULL, NULL },
		{ " group: a@example.com;", NULL, NULL },
		{ " nobody", NULL, NULL },
		{ " a@[192.0.2.1]", NULL, NULL },
		{ " a@localhost", NULL, NULL },
		{ " Alice <alice@example.com", NULL, NULL },
		{ " @example.com", NULL, NULL },
		{ "", NULL, NULL },
	};
	struct tg_buf	 u, d;
	const char	*why;
	size_t		 i;
	bool		 ok;

	(void)state;
	for (i = 0; i < TG_NITEMS(cases); i++) {
		tg_buf_init(&u);
		tg_buf_init(&d);
		why = NULL;
		ok = dkim_addr_parse(cases[i].value, &u, &d, &why);
		if (ok != (cases[i].user != NULL))
			fail_msg("case %zu \"%s\": %s (%s)", i, cases[i].value,
			    ok ? "accepted" : "refused", why ? why : "");
		if (ok) {
			assert_string_equal(tg_buf_cstr(&u), cases[i].user);
			assert_string_equal(tg_buf_cstr(&d), cases[i].domain);
		} else
			assert_non_null(why);
		tg_buf_fini(&u);
		tg_buf_fini(&d);
	}
}

/* test_glob - refile wildcards */
void
test_glob(void **state)
{
	(void)state;
	assert_true(dkim_glob_match("*@example.com", "a@EXAMPLE.com"));
	assert_true(dkim_glob_match("*", ""));
	assert_true(dkim_glob_match("a*b*c", "axxbyyc"));
	assert_true(dkim_glob_match("*@*.example.com", "u@a.b.example.com"));
	assert_false(dkim_glob_match("*@*.example.com", "u@example.com"));
	assert_false(dkim_glob_match("*@example.com", "a@example.com.evil"));
	assert_false(dkim_glob_match("a*b", "ac"));
	assert_true(dkim_labels_ok("s1._x", 1));
	assert_false(dkim_domain_ok("legitimate.com(.attacker.com"));
	assert_false(dkim_domain_ok("com"));
	assert_false(dkim_domain_ok("a..b"));
}
