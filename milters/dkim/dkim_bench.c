/*
 * dkim_bench - how long start-up takes with large signing tables.
 *
 *   milters/dkim/dkim_bench [entries] [keyfiles]
 *
 * Writes a KeyTable and a SigningTable of `entries` domains (default
 * 100000) in a scratch directory, whose entries name `keyfiles` distinct
 * key files (default 4: many domains sharing a few keys; pass the same
 * number as entries for one file per domain).  Key files are copies of
 * two RSA-2048 and two Ed25519 keys made here.  Prints the time to load
 * the tables (every key file read, parsed and converted once) and the
 * cost of a lookup.  Not a test: run it by hand and read the numbers.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim_int.h"
#include "tollgate/buf.h"

/* bench_now - monotonic seconds */
static double
bench_now(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bench_key_pem - a fresh key as PEM */
static char *
bench_key_pem(bool rsa)
{
	EVP_PKEY	*k = NULL;
	EVP_PKEY_CTX	*c;
	BIO		*b;
	char		*data, *s;
	long		 n;

	c = EVP_PKEY_CTX_new_id(rsa ? EVP_PKEY_RSA : EVP_PKEY_ED25519, NULL);
	if (c == NULL || EVP_PKEY_keygen_init(c) != 1 || (rsa &&
	    EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048) != 1) ||
	    EVP_PKEY_keygen(c, &k) != 1)
		TG_PANIC("keygen failed");
	EVP_PKEY_CTX_free(c);
	b = BIO_new(BIO_s_mem());
	if (PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1)
		TG_PANIC("PEM_write failed");
	n = BIO_get_mem_data(b, &data);
	s = tg_strndup(data, (size_t)n);
	BIO_free(b);
	EVP_PKEY_free(k);
	return s;
}

/* bench_write - a file with mode */
static void
bench_write(const char *path, const char *text, mode_t mode)
{
	FILE	*fp;

	if ((fp = fopen(path, "w")) == NULL ||
	    fwrite(text, 1, strlen(text), fp) != strlen(text) ||
	    fclose(fp) != 0 || chmod(path, mode) != 0)
		TG_PANIC("cannot write %s", path);
}

/* bench_tables - key files, KeyTable and SigningTable */
static void
bench_tables(const char *dir, long entries, long files)
{
	struct tg_buf	 kt, st;
	char		*pem[4], path[512];
	long		 i;

	for (i = 0; i < 4; i++)
		pem[i] = bench_key_pem(i < 2);
	for (i = 0; i < files; i++) {
		(void)snprintf(path, sizeof(path), "%s/k%ld.key", dir, i);
		bench_write(path, pem[i % 4], 0600);
	}
	tg_buf_init(&kt);
	tg_buf_init(&st);
	for (i = 0; i < entries; i++) {
		tg_buf_printf(&kt, "key%ld d%ld.example:sel%ld:%s/k%ld.key\n",
		    i, i, i % 7, dir, i % files);
		tg_buf_printf(&st, "d%ld.example key%ld\n", i, i);
	}
	(void)snprintf(path, sizeof(path), "%s/KeyTable", dir);
	bench_write(path, tg_buf_cstr(&kt), 0644);
	(void)snprintf(path, sizeof(path), "%s/SigningTable", dir);
	bench_write(path, tg_buf_cstr(&st), 0644);
	tg_buf_fini(&kt);
	tg_buf_fini(&st);
	for (i = 0; i < 4; i++)
		free(pem[i]);
}

int
main(int argc, char *argv[])
{
	struct dkim_keyring	*r;
	struct dkim_signreq	 q[DKIM_MAX_SIGNERS];
	struct tg_err		 err;
	char			 dir[] = "/tmp/dkim_bench.XXXXXX", path[600];
	char			 dom[64], cmd[128];
	long			 entries = 100000, files = 4, i, hits = 0;
	double			 t0, t1, t2, t3;
	struct dkim_keyring_stats ks;

	if (argc > 1 && !tg_parse_long(argv[1], 1, 10000000, &entries))
		TG_PANIC("usage: dkim_bench [entries] [keyfiles]");
	if (argc > 2 && !tg_parse_long(argv[2], 1, entries, &files))
		TG_PANIC("usage: dkim_bench [entries] [keyfiles]");
	if (mkdtemp(dir) == NULL)
		TG_PANIC("mkdtemp failed");
	t0 = bench_now();
	bench_tables(dir, entries, files);
	t1 = bench_now();
	r = dkim_keyring_new();
	(void)snprintf(path, sizeof(path), "%s/KeyTable", dir);
	if (dkim_keyring_load_keys(r, path, 1024, &err) != TG_OK)
		TG_PANIC("%s", err.text);
	(void)snprintf(path, sizeof(path), "%s/SigningTable", dir);
	if (dkim_keyring_load_signing(r, path, &err) != TG_OK)
		TG_PANIC("%s", err.text);
	t2 = bench_now();
	for (i = 0; i < 1000000; i++) {
		(void)snprintf(dom, sizeof(dom), "d%ld.example", i % (entries *
		    2));
		hits += dkim_keyring_lookup(r, "user", dom, q, 8) > 0;
	}
	t3 = bench_now();
	dkim_keyring_stats(r, &ks);
	printf("entries=%zu key_files=%zu (ed25519 %zu) rules=%zu\n",
	    ks.entries, ks.files, ks.ed25519, ks.rules);
	printf("write tables: %.2fs\nload tables: %.2fs\n", t1 - t0, t2 - t1);
	printf("lookups: 1000000 (%ld hits) in %.2fs: %.2f us each\n", hits,
	    t3 - t2, (t3 - t2));
	dkim_keyring_free(r);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
