/*
 * dkim_keycache - libopendkim's per-message key parse, answered from
 * the keys parsed at start-up.
 *
 * libopendkim 2.11 parses the private key again for every message it
 * signs: dkim_eom calls dkim_privkey_load, which runs
 * PEM_read_bio_PrivateKey over the PEM text given to dkim_sign and frees
 * the key afterwards.  On OpenSSL 3 that parse costs ~0.5 ms (decoder
 * set-up), and a fresh RSA key pays ~0.6 ms more in its first signature
 * (Montgomery and blinding set-up): together about four times the
 * RSA-2048 signature itself, and the main cost of signing a message
 * (bench/RESULTS.md, "DKIM signing: the key parse").  The library has
 * no call that takes a parsed key.
 *
 * So the milter defines PEM_read_bio_PrivateKey itself.  The dynamic
 * linker binds libopendkim's call to the executable's definition (ELF
 * symbol interposition: the executable comes first in the lookup
 * scope); it looks the BIO's text up among the keys loaded at start-up
 * and returns that EVP_PKEY with one more reference, which libopendkim's
 * EVP_PKEY_free gives back after signing.  Any other text goes to
 * OpenSSL's own function (dlsym RTLD_NEXT), so other callers see no
 * difference.  An EVP_PKEY may sign on several threads at once (OpenSSL
 * locks the lazily built parts: the legacy RSA copy, its Montgomery
 * contexts and blinding).
 *
 * One exception: libopendkim 2.11 never frees the key it loaded for an
 * Ed25519 signature (dkim_free releases key data for RSA only; see
 * tests/integration/lsan.supp), so an Ed25519 key is lent without a
 * reference, or each message would add one for good (and an int
 * counter wraps after 2^31 messages).  Only for library versions up to
 * DKIM_KEYCACHE_ED25519_LEAKS; a later one gets its reference, which
 * is right if it frees the key and costs a count per message if not.
 *
 * The table is keyed by a hash of the PEM text and checked byte for
 * byte; it changes only while keys load or are freed, at start-up and
 * at shutdown, when nothing signs, so lookups take no lock.
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim_int.h"

typedef EVP_PKEY *(*dkim_pem_read_fn)(BIO *, EVP_PKEY **, pem_password_cb *,
    void *);

/* The last libopendkim known to leak the key of an Ed25519 signature. */
#define DKIM_KEYCACHE_ED25519_LEAKS	0x020B0000U

static struct dkim_map	*dkim_keycache;
static atomic_ulong	 dkim_keycache_nhits;
static dkim_pem_read_fn	 dkim_pem_read_real;
static pthread_once_t	 dkim_pem_read_once = PTHREAD_ONCE_INIT;

/* dkim_pem_read_resolve - OpenSSL's PEM_read_bio_PrivateKey, once */
static void
dkim_pem_read_resolve(void)
{
	dkim_pem_read_real = (dkim_pem_read_fn)dlsym(RTLD_NEXT,
	    "PEM_read_bio_PrivateKey");
	if (dkim_pem_read_real == NULL)
		TG_PANIC("dlsym PEM_read_bio_PrivateKey failed");
}

/* dkim_keycache_name - the table key for PEM text: FNV-1a 64 in hex */
static void
dkim_keycache_name(const char *pem, size_t len, char name[17])
{
	uint64_t	h = 14695981039346656037ULL;
	size_t		i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)pem[i]) * 1099511628211ULL;
	(void)snprintf(name, 17, "%016llx", (unsigned long long)h);
}

/* dkim_keycache_add - see dkim_int.h; a second key with the same text
 * (or hash) stays out, and is parsed per message as before */
void
dkim_keycache_add(struct dkim_key *k)
{
	char	name[17];

	if (dkim_keycache == NULL)
		dkim_keycache = dkim_map_new();
	dkim_keycache_name(k->pem, strlen(k->pem), name);
	(void)dkim_map_put(dkim_keycache, name, k);
}

/* dkim_keycache_del - see dkim_int.h */
void
dkim_keycache_del(struct dkim_key *k)
{
	char	name[17];

	if (dkim_keycache == NULL)
		return;
	dkim_keycache_name(k->pem, strlen(k->pem), name);
	if (dkim_map_get(dkim_keycache, name) == k)
		(void)dkim_map_del(dkim_keycache, name);
	if (dkim_map_count(dkim_keycache) == 0) {
		dkim_map_free(dkim_keycache, NULL);
		dkim_keycache = NULL;
	}
}

/* dkim_keycache_hits - see dkim_int.h */
unsigned long
dkim_keycache_hits(void)
{
	return atomic_load_explicit(&dkim_keycache_nhits,
	    memory_order_relaxed);
}

/* dkim_keycache_find - the loaded key whose PEM is exactly the BIO's */
static struct dkim_key *
dkim_keycache_find(BIO *bp)
{
	struct dkim_key	*k;
	char		*data, name[17];
	long		 n;

	if (dkim_keycache == NULL || (n = BIO_get_mem_data(bp, &data)) <= 0)
		return NULL;
	dkim_keycache_name(data, (size_t)n, name);
	k = dkim_map_get(dkim_keycache, name);
	if (k == NULL || strlen(k->pem) != (size_t)n ||
	    memcmp(k->pem, data, (size_t)n) != 0)
		return NULL;
	return k;
}

/* dkim_keycache_ref - the reference libopendkim will give back, if any */
static bool
dkim_keycache_ref(const struct dkim_key *k)
{
	return k->alg != DKIM_SIGN_ED25519SHA256 ||
	    dkim_libversion() > DKIM_KEYCACHE_ED25519_LEAKS;
}

/*
 * PEM_read_bio_PrivateKey - OpenSSL's function, answered from the cache
 * when bp is a memory BIO holding a loaded key's PEM (see above).
 */
EVP_PKEY *
PEM_read_bio_PrivateKey(BIO *bp, EVP_PKEY **x, pem_password_cb *cb, void *u)
{
	struct dkim_key	*k;

	if (x == NULL && BIO_method_type(bp) == BIO_TYPE_MEM &&
	    (k = dkim_keycache_find(bp)) != NULL &&
	    (!dkim_keycache_ref(k) || EVP_PKEY_up_ref(k->pkey) == 1)) {
		atomic_fetch_add_explicit(&dkim_keycache_nhits, 1,
		    memory_order_relaxed);
		return k->pkey;
	}
	(void)pthread_once(&dkim_pem_read_once, dkim_pem_read_resolve);
	return dkim_pem_read_real(bp, x, cb, u);
}
