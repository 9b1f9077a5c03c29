/*
 * dkim_int.h - the DKIM module's insides, shared by milters/dkim/ only.
 *
 * Everything reachable from struct dkim_keyring is built by init and
 * read-only afterwards, so message threads share it without locks.
 * Functions that can fail at start-up fill a struct tg_err and log
 * nothing; the per-message ones log through the message context.
 */
#ifndef TOLLGATE_DKIM_INT_H
#define TOLLGATE_DKIM_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <opendkim/dkim.h>

#include "tollgate/buf.h"
#include "tollgate/dkim.h"
#include "tollgate/dns.h"
#include "tollgate/module.h"
#include "tollgate/util.h"

/* Most signatures one message gets (one per key of the From: domain). */
#define DKIM_MAX_SIGNERS	8

/* One signature to make: borrowed from the keyring (domain may be the
 * message's From: domain when the KeyTable says "%"). */
struct dkim_signreq {
	const char		*domain;
	const char		*selector;
	const char		*ident;		/* i=, or NULL */
	const struct dkim_key	*key;
};

/* What init set up; read-only afterwards. */
struct dkim_runtime {
	DKIM_LIB		*lib;
	struct tg_dns		*dns;
	struct dkim_keyring	*ring;
	dkim_canon_t		 hcanon, bcanon;
	long			 max_signatures;
	long			 min_key_bits;
	int			 on_error;
};

enum dkim_job {
	DKIM_JOB_UNSET = 0,	/* envfrom not seen yet */
	DKIM_JOB_NONE,		/* nothing to do for this message */
	DKIM_JOB_VERIFY,
	DKIM_JOB_SIGN
};

/* One signature being made. */
struct dkim_signing {
	DKIM			*h;
	struct dkim_signreq	 req;
};

/* Per-message state (tg_ctx_state). */
/*
 * dkim_mem.c: the blocks libopendkim allocates for a message's signing
 * handles (the closure of dkim_sign), so that what it loses is freed
 * with the message.  The two hooks go to dkim_init.
 */
union dkim_mem_hdr;
struct dkim_arena {
	union dkim_mem_hdr	*head;
};
void		*dkim_mem_alloc(void *, size_t);
void		 dkim_mem_free(void *, void *);
/* dkim_arena_release - after every handle is freed: the blocks left */
size_t		 dkim_arena_release(struct dkim_arena *);
unsigned long	 dkim_mem_reclaimed(void);

struct dkim_msg {
	enum dkim_job		 job;
	struct dkim_arena	 arena;		/* the signing handles' blocks */
	bool			 broken;	/* libopendkim failed */
	bool			 nosig;		/* verify: eoh found none */
	DKIM			*vh;		/* verify handle */
	struct dkim_prefetch	*pf;		/* its key queries */
	size_t			 nsighdrs;	/* DKIM-Signature fields */
	struct tg_buf		 line;		/* verify: "Name:value" */
	struct tg_buf		 hdrs;		/* sign: "Name:value\0"... */
	size_t			 nhdrs;
	size_t			 nfrom;
	const char		*from;		/* first From: value */
	struct dkim_signing	 signers[DKIM_MAX_SIGNERS];
	size_t			 nsigners;
	struct dkim_result	*res;
	size_t			 nres;
};

/* dkim.c: the on_error action for a message we cannot judge. */
enum tg_verdict	 dkim_on_error(struct tg_ctx *, const struct dkim_runtime *,
		    const char *);

/* dkim_sign.c: signing one message. */
/* dkim_sign_eoh - choose keys from the From: field and start signing */
enum tg_verdict	 dkim_sign_eoh(struct tg_ctx *, struct dkim_msg *,
		    const struct dkim_runtime *);
void		 dkim_sign_body(struct tg_ctx *, struct dkim_msg *,
		    const unsigned char *, size_t);
/* dkim_sign_eom - finish and prepend the DKIM-Signature fields */
enum tg_verdict	 dkim_sign_eom(struct tg_ctx *, struct dkim_msg *,
		    const struct dkim_runtime *);
/* dkim_msg_release - free the message's libopendkim handles (idempotent) */
void		 dkim_msg_release(void *);

/* dkim_map.c: string keys (ASCII case-insensitive) to pointers. */
struct dkim_map;
struct dkim_map	*dkim_map_new(void);
/* dkim_map_free - free the map; fn (may be NULL) frees each value */
void		 dkim_map_free(struct dkim_map *, void (*)(void *));
void		*dkim_map_get(const struct dkim_map *, const char *);
/* dkim_map_put - add key (copied); false if the key is already there */
bool		 dkim_map_put(struct dkim_map *, const char *, void *);
/* dkim_map_del - remove key; its value, or NULL if it was not there */
void		*dkim_map_del(struct dkim_map *, const char *);
size_t		 dkim_map_count(const struct dkim_map *);

/* dkim_keys.c: one private key file, read and checked once. */
struct dkim_key {
	char		*path;
	char		*pem;		/* PKCS#8/PKCS#1 PEM for libopendkim */
	struct evp_pkey_st *pkey;	/* the parsed key (dkim_keycache.c) */
	dkim_alg_t	 alg;		/* a DKIM_SIGN_* constant */
	const char	*alg_name;	/* "rsa-sha256", "ed25519-sha256" */
	unsigned int	 bits;
};

/* A reusable key parser for one start-up load (fast on OpenSSL 3). */
struct dkim_keyloader;
struct dkim_keyloader *dkim_keyloader_new(void);
void		 dkim_keyloader_free(struct dkim_keyloader *);

/*
 * dkim_key_load - read path: refused (TG_PERM, the path in err) if it is
 * missing, not a regular file, readable by group or others, not a key
 * OpenSSL can parse (PEM, DER, or a base64 Ed25519 seed), neither RSA nor
 * Ed25519, or an RSA key under min_bits.
 */
enum tg_status	 dkim_key_load(struct dkim_keyloader *, const char *, long,
		    struct dkim_key **, struct tg_err *);
void		 dkim_key_free(void *);

/*
 * dkim_keycache.c: the parsed keys libopendkim gets back instead of
 * parsing the PEM again for every message.  add/del at load and free
 * (start-up and shutdown, no signing in flight); hits counts the
 * parses answered from the cache.
 */
void		 dkim_keycache_add(struct dkim_key *);
void		 dkim_keycache_del(struct dkim_key *);
unsigned long	 dkim_keycache_hits(void);

/* dkim_table.c: KeyTable, SigningTable and inline keys. */
struct dkim_keyring;


struct dkim_keyring	*dkim_keyring_new(void);
void			 dkim_keyring_free(struct dkim_keyring *);
/* dkim_keyring_load_keys - a KeyTable file ("file:" prefix allowed) */
enum tg_status	 dkim_keyring_load_keys(struct dkim_keyring *, const char *,
		    long, struct tg_err *);
/* dkim_keyring_load_signing - a SigningTable; "refile:" for patterns */
enum tg_status	 dkim_keyring_load_signing(struct dkim_keyring *,
		    const char *, struct tg_err *);
/* dkim_keyring_add_inline - "domain:selector:/path ..." ([dkim] keys) */
enum tg_status	 dkim_keyring_add_inline(struct dkim_keyring *, const char *,
		    long, struct tg_err *);
/*
 * dkim_keyring_lookup - the signatures for From: user@domain (both
 * lowercase), at most max, into out; returns how many (0: not ours).
 */
size_t		 dkim_keyring_lookup(const struct dkim_keyring *,
		    const char *, const char *, struct dkim_signreq *, size_t);
/* The sizes of a keyring, for the start-up log line. */
struct dkim_keyring_stats {
	size_t	entries;	/* KeyTable entries and inline keys */
	size_t	files;		/* key files read */
	size_t	ed25519;	/* of which Ed25519 */
	size_t	rules;		/* SigningTable patterns */
};
void		 dkim_keyring_stats(const struct dkim_keyring *,
		    struct dkim_keyring_stats *);
/* dkim_glob_match - "*" wildcards, ASCII case-insensitive (refile) */
bool		 dkim_glob_match(const char *, const char *);

/* dkim_addr.c: the From: field. */
/*
 * dkim_addr_parse - the addr-spec of a From: value (display names,
 * comments, quoted local parts, angle brackets); user and domain are
 * filled (domain lowercase, no final dot).  False with *why set if there
 * is not exactly one usable mailbox.
 */
bool		 dkim_addr_parse(const char *, struct tg_buf *, struct tg_buf *,
		    const char **);
/* dkim_labels_ok - at least min dot-separated labels of letters, digits,
 * "-" and "_" (selectors, RFC 6376 3.1) */
bool		 dkim_labels_ok(const char *, size_t);
/* dkim_domain_ok - a domain name of two labels or more (RFC 6376 3.5) */
bool		 dkim_domain_ok(const char *);

/* dkim_resolver.c: libopendkim's DNS through our resolver. */
void		 dkim_resolver_attach(DKIM_LIB *, struct tg_dns *);

/* dkim_prefetch.c: key queries started per header, answered at eoh. */
struct dkim_prefetch;
/* dkim_prefetch_sig - query the key of one DKIM-Signature value; the
 * list is made on first use */
void		 dkim_prefetch_sig(struct dkim_prefetch **, struct tg_dns *,
		    const char *);
/* dkim_prefetch_collect - wait for all (bounded by their deadlines) */
void		 dkim_prefetch_collect(struct dkim_prefetch *);
/* dkim_prefetch_enter - the list this thread's dkim_eoh uses (or NULL) */
void		 dkim_prefetch_enter(const struct dkim_prefetch *);
/* dkim_prefetch_answer - a collected answer of this thread's list */
bool		 dkim_prefetch_answer(const char *, int, enum tg_status *,
		    const struct tg_dns_answer **);
void		 dkim_prefetch_free(struct dkim_prefetch *);

/* dkim_verify.c: one signature's outcome. */
/*
 * dkim_verify_sig - the result of sig after dkim_eom; strings come from
 * the message's memory (ctx).  min_bits: RFC 8301 floor for RSA keys.
 */
void		 dkim_verify_sig(struct tg_ctx *, DKIM_SIGINFO *, long,
		    struct dkim_result *);
/* dkim_verify_authres - the resinfo for one result (tg_ctx_authres) */
void		 dkim_verify_authres(struct tg_ctx *,
		    const struct dkim_result *);

#endif
