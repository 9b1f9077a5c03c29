/*
 * dkim_keys - private signing keys, read once at start-up.
 *
 * A key file is refused unless it is a regular file that only its owner
 * can read (DESIGN: a key readable by others is refused) and OpenSSL can
 * parse it as an RSA or Ed25519 private key.  Accepted forms: PEM (PKCS#1
 * or PKCS#8), DER, and the base64 32-byte Ed25519 seed that OpenDKIM's
 * and dkimpy's tools write.  libopendkim 2.11 takes the key as a C string
 * (dkim_sign uses strlen) and parses it with PEM_read_bio_PrivateKey when
 * it starts with "-----", which also covers Ed25519 in PKCS#8; so every
 * key is handed over re-encoded as PKCS#8 PEM, whatever its file form.
 * A file that is already PEM with a "BEGIN [RSA ]PRIVATE KEY" first line
 * is handed over as it is.  The type comes from EVP_PKEY_get_base_id: RSA
 * signs rsa-sha256, Ed25519 signs ed25519-sha256 (RFC 8463).
 *
 * Speed: OpenSSL 3 spends ~370us setting up decoders for each
 * PEM_read_bio_PrivateKey; one OSSL_DECODER_CTX reused for every file
 * (struct dkim_keyloader) parses a key in 15-35us, which is what lets
 * 100,000 distinct key files load in seconds.  Start-up only; not
 * thread-safe.  The parsed key is kept (dkim_keycache.c): libopendkim
 * would otherwise parse the PEM again for every message it signs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dkim_int.h"

#define DKIM_KEY_MAX_BYTES	(64 * 1024)
#define DKIM_ED25519_SEED	32

/* The decoder reused for every key file of one load. */
struct dkim_keyloader {
	OSSL_DECODER_CTX	*dc;
	EVP_PKEY		*out;	/* where dc puts each key */
};

static enum tg_status	dkim_key_read(const char *, char **, size_t *,
			    struct tg_err *);

/* dkim_key_nopass - refuse encrypted keys instead of prompting */
static int
dkim_key_nopass(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* dkim_key_read - the file's bytes, if only its owner may read it */
static enum tg_status
dkim_key_read(const char *path, char **out, size_t *lenp, struct tg_err *err)
{
	struct stat	 st;
	ssize_t		 n;
	size_t		 len = 0;
	char		*p;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return tg_err_set(err, TG_PERM, "key %s: %s", path,
		    strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > DKIM_KEY_MAX_BYTES) {
		(void)close(fd);
		return tg_err_set(err, TG_PERM, "key %s: not a regular file "
		    "of at most %d bytes", path, DKIM_KEY_MAX_BYTES);
	}
	if ((st.st_mode & 077) != 0) {
		(void)close(fd);
		return tg_err_set(err, TG_PERM, "key %s: readable by group or "
		    "others (mode %04o); chmod 600 it", path,
		    (unsigned int)(st.st_mode & 07777));
	}
	p = tg_malloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size &&
	    (n = read(fd, p + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	(void)close(fd);
	p[len] = '\0';
	*out = p;
	*lenp = len;
	return TG_OK;
}

/* dkim_key_b64 - strict base64 (line breaks allowed) into out */
static bool
dkim_key_b64(const char *text, size_t len, unsigned char *out, size_t cap,
    size_t *outlen)
{
	EVP_ENCODE_CTX	*e;
	int		 n = 0, fin = 0;
	bool		 ok;

	/* Base64 never grows: 3 bytes out per 4 in, plus slack. */
	if (len / 4 * 3 + 3 > cap || len > (size_t)INT32_MAX)
		return false;
	if ((e = EVP_ENCODE_CTX_new()) == NULL)
		return false;
	EVP_DecodeInit(e);
	ok = EVP_DecodeUpdate(e, out, &n, (const unsigned char *)text,
	    (int)len) != -1 && EVP_DecodeFinal(e, out + n, &fin) == 1;
	EVP_ENCODE_CTX_free(e);
	*outlen = (size_t)n + (size_t)fin;
	return ok && *outlen > 0;
}

/* dkim_keyloader_new - a decoder for any private key, PEM or DER */
struct dkim_keyloader *
dkim_keyloader_new(void)
{
	struct dkim_keyloader	*l;

	l = tg_calloc(1, sizeof(*l));
	l->dc = OSSL_DECODER_CTX_new_for_pkey(&l->out, NULL, NULL, NULL,
	    EVP_PKEY_KEYPAIR, NULL, NULL);
	if (l->dc == NULL ||
	    OSSL_DECODER_CTX_set_pem_password_cb(l->dc, dkim_key_nopass,
	    NULL) != 1)
		TG_PANIC("OSSL_DECODER_CTX_new_for_pkey failed");
	return l;
}

/* dkim_keyloader_free - release the decoder; accepts NULL */
void
dkim_keyloader_free(struct dkim_keyloader *l)
{
	if (l == NULL)
		return;
	OSSL_DECODER_CTX_free(l->dc);
	free(l);
}

/* dkim_key_decode - one key from PEM or DER bytes, or NULL */
static EVP_PKEY *
dkim_key_decode(struct dkim_keyloader *l, const unsigned char *p, size_t n)
{
	EVP_PKEY	*pk;

	l->out = NULL;
	if (OSSL_DECODER_from_data(l->dc, &p, &n) != 1) {
		EVP_PKEY_free(l->out);
		l->out = NULL;
	}
	pk = l->out;
	l->out = NULL;
	return pk;
}

/* dkim_key_parse_b64 - base64 of DER or of a raw Ed25519 seed */
static EVP_PKEY *
dkim_key_parse_b64(struct dkim_keyloader *l, const char *text, size_t len)
{
	unsigned char	*bin;
	EVP_PKEY	*pk = NULL;
	size_t		 blen, cap = len + 4;

	bin = tg_malloc(cap);
	if (dkim_key_b64(text, len, bin, cap, &blen)) {
		if (blen == DKIM_ED25519_SEED)
			pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519,
			    NULL, bin, blen);
		else
			pk = dkim_key_decode(l, bin, blen);
	}
	OPENSSL_cleanse(bin, cap);
	free(bin);
	return pk;
}

/* dkim_key_parse - the key in the file's text, or NULL */
static EVP_PKEY *
dkim_key_parse(struct dkim_keyloader *l, const char *text, size_t len)
{
	EVP_PKEY	*pk;

	pk = dkim_key_decode(l, (const unsigned char *)text, len);
	if (pk == NULL && strstr(text, "-----BEGIN") == NULL)
		pk = dkim_key_parse_b64(l, text, len);
	ERR_clear_error();
	return pk;
}

/* dkim_key_is_pem - a file libopendkim can take as it is */
static bool
dkim_key_is_pem(const char *text)
{
	return strncmp(text, "-----BEGIN PRIVATE KEY-----\n", 28) == 0 ||
	    strncmp(text, "-----BEGIN RSA PRIVATE KEY-----\n", 32) == 0;
}

/* dkim_key_pem - the key as PKCS#8 PEM text, or NULL */
static char *
dkim_key_pem(EVP_PKEY *pk)
{
	BIO	*bio;
	char	*data, *pem = NULL;
	long	 n;

	if ((bio = BIO_new(BIO_s_secmem())) == NULL)
		return NULL;
	if (PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0)
		pem = tg_strndup(data, (size_t)n);
	BIO_free(bio);
	ERR_clear_error();
	return pem;
}

/* dkim_key_classify - algorithm and size; TG_PERM for anything else */
static enum tg_status
dkim_key_classify(EVP_PKEY *pk, long min_bits, struct dkim_key *k,
    struct tg_err *err)
{
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		k->alg = DKIM_SIGN_RSASHA256;
		k->alg_name = "rsa-sha256";
		k->bits = (unsigned int)EVP_PKEY_get_bits(pk);
		/* RFC 8301 3.2: signers MUST use at least 1024 bits. */
		if ((long)k->bits < min_bits)
			return tg_err_set(err, TG_PERM, "key %s: RSA key of %u "
			    "bits is under min_key_bits %ld", k->path, k->bits,
			    min_bits);
		return TG_OK;
	case EVP_PKEY_ED25519:
		k->alg = DKIM_SIGN_ED25519SHA256;
		k->alg_name = "ed25519-sha256";
		k->bits = 256;
		return TG_OK;
	default:
		return tg_err_set(err, TG_PERM, "key %s: neither an RSA nor an "
		    "Ed25519 key", k->path);
	}
}

/* dkim_key_load - read, check and convert one key file */
enum tg_status
dkim_key_load(struct dkim_keyloader *l, const char *path, long min_bits,
    struct dkim_key **out, struct tg_err *err)
{
	struct dkim_key	*k;
	enum tg_status	 st;
	EVP_PKEY	*pk;
	char		*text = NULL;
	size_t		 len = 0;

	if ((st = dkim_key_read(path, &text, &len, err)) != TG_OK)
		return st;
	if ((pk = dkim_key_parse(l, text, len)) == NULL) {
		OPENSSL_cleanse(text, len);
		free(text);
		return tg_err_set(err, TG_PERM, "key %s: not a private key "
		    "OpenSSL can parse (PEM, DER or base64 Ed25519 seed)",
		    path);
	}
	k = tg_calloc(1, sizeof(*k));
	k->path = tg_strdup(path);
	if ((st = dkim_key_classify(pk, min_bits, k, err)) == TG_OK) {
		k->pem = dkim_key_is_pem(text) ? tg_strdup(text) :
		    dkim_key_pem(pk);
		if (k->pem == NULL)
			st = tg_err_set(err, TG_PERM, "key %s: cannot encode",
			    path);
	}
	k->pkey = pk;
	OPENSSL_cleanse(text, len);
	free(text);
	if (st != TG_OK) {
		dkim_key_free(k);
		return st;
	}
	dkim_keycache_add(k);
	*out = k;
	return TG_OK;
}

/* dkim_key_free - wipe and free a key; accepts NULL */
void
dkim_key_free(void *p)
{
	struct dkim_key	*k = p;

	if (k == NULL)
		return;
	if (k->pem != NULL) {
		dkim_keycache_del(k);
		OPENSSL_cleanse(k->pem, strlen(k->pem));
		free(k->pem);
	}
	EVP_PKEY_free(k->pkey);
	free(k->path);
	free(k);
}
