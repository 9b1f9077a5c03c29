/*
 * store_lmdb - the embedded backend: one LMDB environment in a
 * directory.
 *
 * LMDB gives what one host needs: the milter's threads and policyd share
 * the file through its lock file, writers are serialized across
 * processes (so every operation, one write transaction, is atomic), and
 * readers never block.  Commits are not flushed to disk one by one
 * (MDB_NOSYNC): a flush per message would put the disk's latency on
 * the mail path.  A commit is in the file once it returns, so counters
 * survive a daemon's restart or crash; a crash of the host may lose the
 * last seconds the kernel had not written back.  Closing syncs.  Reader
 * slots of dead processes are cleared at open.
 *
 * Two databases.  "quota": for a counter key K, "K\0" holds the
 * reservation sequence and when the newest entry leaves its window (so
 * a sweep can drop idle counters), and "K\0" + id (8 bytes,
 * big-endian) one entry:
 * admitted time, amount, lapse time (0: committed), each 8 bytes
 * big-endian.  Ids grow, so a counter's entries are contiguous and in
 * admission order.  "kv": K holds the expiry (8 bytes, 0: none) and the
 * value.  Values are fixed big-endian fields, never struct dumps.
 *
 * LMDB forbids opening one environment twice in a process (closing the
 * second would drop the first's locks), so handles on one directory
 * share an environment, counted in a process-wide list.
 *
 * Threading: each call runs its own transaction (MDB_NOTLS: a read
 * transaction is not tied to a thread).  Thread-safe.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tollgate/daemon.h"
#include "tollgate/store.h"
#include "tollgate/util.h"

#include "store_int.h"

struct tg_store_lmdb_env {
	struct tg_store_lmdb_env	*next;
	dev_t				 dev;
	ino_t				 ino;
	MDB_env				*env;
	MDB_dbi				 quota;
	MDB_dbi				 kv;
	unsigned int			 refs;
};

struct tg_store_lmdb {
	struct tg_store_lmdb_env	*e;
	char				*path;
};

static pthread_mutex_t			 tg_store_lmdb_lock =
					    PTHREAD_MUTEX_INITIALIZER;
static struct tg_store_lmdb_env		*tg_store_lmdb_envs;

static enum tg_status	tg_store_lmdb_err(struct tg_err *, const char *, int);
static struct tg_store_lmdb_env *tg_store_lmdb_env_open(const char *, size_t,
		    struct tg_err *);
static enum tg_status	tg_store_lmdb_load(MDB_txn *, MDB_dbi, const char *,
			    uint64_t, uint64_t, bool, uint64_t *,
			    struct tg_store_entry **, size_t *);
static enum tg_status	tg_store_lmdb_sweep_db(struct tg_store_lmdb *,
			    MDB_dbi, bool, size_t *, struct tg_err *);

/* tg_store_lmdb_err - an LMDB error as a status: space is temporary */
static enum tg_status
tg_store_lmdb_err(struct tg_err *err, const char *what, int rc)
{
	enum tg_status	st;

	switch (rc) {
	case MDB_NOTFOUND:
		st = TG_NOTFOUND;
		break;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case MDB_READERS_FULL:
	case MDB_MAP_RESIZED:
	case ENOSPC:
	case EAGAIN:
	case EBUSY:
	case EIO:
	case ENOMEM:
		st = TG_TEMP;
		break;
	default:
		st = TG_PERM;
		break;
	}
	return tg_err_set(err, st, "store: embedded: %s: %s", what,
	    mdb_strerror(rc));
}

/* tg_store_lmdb_env_open - a new environment (list lock held) */
static struct tg_store_lmdb_env *
tg_store_lmdb_env_open(const char *dir, size_t map_size, struct tg_err *err)
{
	struct tg_store_lmdb_env	*e;
	MDB_txn				*txn;
	int				 rc, dead;

	e = tg_calloc(1, sizeof(*e));
	if ((rc = mdb_env_create(&e->env)) != 0) {
		(void)tg_store_lmdb_err(err, "create", rc);
		free(e);
		return NULL;
	}
	(void)mdb_env_set_mapsize(e->env, map_size);
	(void)mdb_env_set_maxdbs(e->env, 2);
	/* The milter's threads and policyd each need a reader slot. */
	(void)mdb_env_set_maxreaders(e->env, 1024);
	if ((rc = mdb_env_open(e->env, dir, MDB_NOTLS | MDB_NOSYNC,
	    0660)) != 0) {
		(void)tg_err_set(err, rc == EACCES ? TG_PERM : TG_TEMP,
		    "store: embedded: %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	(void)mdb_reader_check(e->env, &dead);
	if ((rc = mdb_txn_begin(e->env, NULL, 0, &txn)) != 0) {
		(void)tg_store_lmdb_err(err, dir, rc);
		goto fail;
	}
	if ((rc = mdb_dbi_open(txn, "quota", MDB_CREATE, &e->quota)) != 0 ||
	    (rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &e->kv)) != 0) {
		mdb_txn_abort(txn);
		(void)tg_store_lmdb_err(err, dir, rc);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		(void)tg_store_lmdb_err(err, dir, rc);
		goto fail;
	}
	return e;
fail:
	mdb_env_close(e->env);
	free(e);
	return NULL;
}

/*
 * tg_store_lmdb_own - an environment opened as root: the run user must
 * own its files, or a reload's successor cannot open it (daemon.h).
 */
static void
tg_store_lmdb_own(const char *dir)
{
	char	path[4096];

	(void)snprintf(path, sizeof(path), "%s/data.mdb", dir);
	tg_daemon_own(path);
	(void)snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	tg_daemon_own(path);
}

/* tg_store_lmdb_open - a handle on the directory, sharing its env */
void *
tg_store_lmdb_open(const struct tg_store_conf *conf, struct tg_err *err)
{
	struct tg_store_lmdb		*l;
	struct tg_store_lmdb_env	*e;
	struct stat			 sb;
	const char			*dir = conf->path;

	if (dir == NULL || *dir == '\0') {
		(void)tg_err_set(err, TG_PERM, "store: embedded: no path");
		return NULL;
	}
	if (mkdir(dir, 0770) == 0)
		tg_daemon_own(dir);
	else if (errno != EEXIST) {
		(void)tg_err_set(err, TG_PERM, "store: embedded: %s: %s", dir,
		    strerror(errno));
		return NULL;
	}
	if (stat(dir, &sb) == -1) {
		(void)tg_err_set(err, TG_PERM, "store: embedded: %s: %s", dir,
		    strerror(errno));
		return NULL;
	}
	(void)pthread_mutex_lock(&tg_store_lmdb_lock);
	for (e = tg_store_lmdb_envs; e != NULL; e = e->next)
		if (e->dev == sb.st_dev && e->ino == sb.st_ino)
			break;
	if (e == NULL) {
		e = tg_store_lmdb_env_open(dir, conf->map_size != 0 ?
		    conf->map_size : (size_t)1 << 30, err);
		if (e == NULL) {
			(void)pthread_mutex_unlock(&tg_store_lmdb_lock);
			return NULL;
		}
		e->dev = sb.st_dev;
		e->ino = sb.st_ino;
		tg_store_lmdb_own(dir);
		e->next = tg_store_lmdb_envs;
		tg_store_lmdb_envs = e;
	}
	e->refs++;
	(void)pthread_mutex_unlock(&tg_store_lmdb_lock);
	l = tg_calloc(1, sizeof(*l));
	l->e = e;
	l->path = tg_strdup(dir);
	return l;
}

/* tg_store_lmdb_close - the handle, and the env with its last handle */
static void
tg_store_lmdb_close(void *arg)
{
	struct tg_store_lmdb		*l = arg;
	struct tg_store_lmdb_env	**ep, *e = l->e;

	(void)pthread_mutex_lock(&tg_store_lmdb_lock);
	if (--e->refs == 0) {
		for (ep = &tg_store_lmdb_envs; *ep != e; ep = &(*ep)->next)
			continue;
		*ep = e->next;
		(void)mdb_env_sync(e->env, 1);
		mdb_env_close(e->env);
		free(e);
	}
	(void)pthread_mutex_unlock(&tg_store_lmdb_lock);
	free(l->path);
	free(l);
}

/*
 * tg_store_lmdb_load - the live entries of counter key into *ent, and
 * its sequence record (meta[0] the sequence, meta[1] the end of the
 * newest window); with prune (a write txn), lapsed and departed entries
 * are deleted on the way.
 */
static enum tg_status
tg_store_lmdb_load(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t now,
    uint64_t window, bool prune, uint64_t *meta, struct tg_store_entry **ent,
    size_t *n)
{
	MDB_cursor		*cur;
	MDB_val			 k, v;
	size_t			 klen = strlen(key) + 1, cap = 0;
	struct tg_store_entry	 e;
	const unsigned char	*p;
	int			 rc;

	meta[0] = meta[1] = 0;
	*ent = NULL;
	*n = 0;
	if (mdb_cursor_open(txn, dbi, &cur) != 0)
		return TG_TEMP;
	k.mv_data = (void *)key;
	k.mv_size = klen;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < klen || memcmp(k.mv_data, key, klen) != 0)
			break;
		if (k.mv_size == klen) {
			if (v.mv_size == 16) {
				meta[0] = tg_get_be64(v.mv_data);
				meta[1] = tg_get_be64(
				    (unsigned char *)v.mv_data + 8);
			}
			continue;
		}
		if (k.mv_size != klen + 8 || v.mv_size != 24)
			continue;
		p = v.mv_data;
		e.id = tg_get_be64((const unsigned char *)k.mv_data +
		    klen);
		e.t = tg_get_be64(p);
		e.amount = tg_get_be64(p + 8);
		e.expires = tg_get_be64(p + 16);
		if (tg_store_entry_leaves(&e, window) <= now) {
			/* A failed delete must not look like the end. */
			if (prune && (rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			continue;
		}
		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			*ent = tg_reallocarray(*ent, cap, sizeof(**ent));
		}
		(*ent)[(*n)++] = e;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(*ent);
		*ent = NULL;
		*n = 0;
		return TG_TEMP;
	}
	return TG_OK;
}

/* tg_store_lmdb_reserve - prune, decide, and add the entry: one txn */
static enum tg_status
tg_store_lmdb_reserve(void *arg, const char *key, uint64_t window,
    uint64_t limit, uint64_t amount, uint64_t ttl, struct tg_store_quota *q,
    struct tg_err *err)
{
	struct tg_store_lmdb	*l = arg;
	struct tg_store_entry	*ent;
	MDB_txn			*txn;
	MDB_val			 k, v;
	unsigned char		 kb[TG_STORE_KEY_MAX + 9], vb[24];
	size_t			 n, klen = strlen(key) + 1;
	uint64_t		 now, meta[2];
	int			 rc;

	if ((rc = mdb_txn_begin(l->e->env, NULL, 0, &txn)) != 0)
		return tg_store_lmdb_err(err, "reserve", rc);
	/* The clock is read inside the writers' lock, so it never runs
	 * backwards between two processes' entries. */
	now = tg_store_now_ms();
	if (tg_store_lmdb_load(txn, l->e->quota, key, now, window, true, meta,
	    &ent, &n) != TG_OK) {
		mdb_txn_abort(txn);
		return tg_err_set(err, TG_TEMP, "store: embedded: reserve: "
		    "cannot read %s", l->path);
	}
	tg_store_decide(ent, n, now, window, limit, amount, q);
	free(ent);
	if (!q->admitted) {
		/* Nothing consumed; the pruning may be kept. */
		if ((rc = mdb_txn_commit(txn)) != 0)
			return tg_store_lmdb_err(err, "reserve", rc);
		return TG_OK;
	}
	/*
	 * A counter swept or reset starts again; starting from the time
	 * keeps ids unique, so a late commit of a lapsed id cannot hit a
	 * newer reservation.
	 */
	if (meta[0] == 0)
		meta[0] = now * 1000;
	q->id = ++meta[0];
	memcpy(kb, key, klen);
	tg_put_be64(vb, meta[0]);
	tg_put_be64(vb + 8, meta[1] > now + window ? meta[1] :
	    now + window);
	k.mv_data = kb;
	k.mv_size = klen;
	v.mv_data = vb;
	v.mv_size = 16;
	if ((rc = mdb_put(txn, l->e->quota, &k, &v, 0)) != 0)
		goto fail;
	tg_put_be64(kb + klen, meta[0]);
	k.mv_size = klen + 8;
	tg_put_be64(vb, now);
	tg_put_be64(vb + 8, amount);
	/* ttl 0: committed at once (expiry 0, as a commit writes) */
	tg_put_be64(vb + 16, ttl == 0 ? 0 : now + ttl);
	v.mv_size = 24;
	if ((rc = mdb_put(txn, l->e->quota, &k, &v, 0)) != 0)
		goto fail;
	if ((rc = mdb_txn_commit(txn)) != 0)
		return tg_store_lmdb_err(err, "reserve", rc);
	return TG_OK;
fail:
	mdb_txn_abort(txn);
	memset(q, 0, sizeof(*q));
	return tg_store_lmdb_err(err, "reserve", rc);
}

/* tg_store_lmdb_settle - commit (refund false) or refund entry id */
static enum tg_status
tg_store_lmdb_settle(struct tg_store_lmdb *l, const char *key, uint64_t id,
    bool refund, struct tg_err *err)
{
	MDB_txn		*txn;
	MDB_val		 k, v;
	unsigned char	 kb[TG_STORE_KEY_MAX + 9], vb[24];
	size_t		 klen = strlen(key) + 1;
	uint64_t	 expires;
	bool		 lapsed;
	int		 rc;

	memcpy(kb, key, klen);
	tg_put_be64(kb + klen, id);
	k.mv_data = kb;
	k.mv_size = klen + 8;
	if ((rc = mdb_txn_begin(l->e->env, NULL, 0, &txn)) != 0)
		return tg_store_lmdb_err(err, "settle", rc);
	if ((rc = mdb_get(txn, l->e->quota, &k, &v)) != 0 || v.mv_size != 24) {
		mdb_txn_abort(txn);
		return tg_err_set(err, rc == 0 || rc == MDB_NOTFOUND ?
		    TG_NOTFOUND : TG_TEMP, "store: embedded: reservation %"
		    PRIu64 " of %s: %s", id, key, rc == 0 ? "damaged" :
		    mdb_strerror(rc));
	}
	memcpy(vb, v.mv_data, 24);
	expires = tg_get_be64(vb + 16);
	lapsed = expires != 0 && expires <= tg_store_now_ms();
	if (refund || lapsed)
		rc = mdb_del(txn, l->e->quota, &k, NULL);
	else if (expires != 0) {
		tg_put_be64(vb + 16, 0);
		v.mv_data = vb;
		rc = mdb_put(txn, l->e->quota, &k, &v, 0);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return tg_store_lmdb_err(err, "settle", rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return tg_store_lmdb_err(err, "settle", rc);
	if (lapsed)
		return tg_err_set(err, TG_NOTFOUND, "store: embedded: "
		    "reservation %" PRIu64 " of %s lapsed", id, key);
	return TG_OK;
}

/* tg_store_lmdb_commit - the entry becomes permanent */
static enum tg_status
tg_store_lmdb_commit(void *arg, const char *key, uint64_t id,
    struct tg_err *err)
{
	return tg_store_lmdb_settle(arg, key, id, false, err);
}

/* tg_store_lmdb_refund - the entry goes */
static enum tg_status
tg_store_lmdb_refund(void *arg, const char *key, uint64_t id,
    struct tg_err *err)
{
	return tg_store_lmdb_settle(arg, key, id, true, err);
}

/* tg_store_lmdb_usage - a read transaction: changes nothing */
static enum tg_status
tg_store_lmdb_usage(void *arg, const char *key, uint64_t window,
    uint64_t limit, struct tg_store_usage *u, struct tg_err *err)
{
	struct tg_store_lmdb	*l = arg;
	struct tg_store_entry	*ent;
	MDB_txn			*txn;
	size_t			 n;
	uint64_t		 now = tg_store_now_ms(), meta[2];
	enum tg_status		 st;
	int			 rc;

	if ((rc = mdb_txn_begin(l->e->env, NULL, MDB_RDONLY, &txn)) != 0)
		return tg_store_lmdb_err(err, "usage", rc);
	st = tg_store_lmdb_load(txn, l->e->quota, key, now, window, false,
	    meta, &ent, &n);
	mdb_txn_abort(txn);
	if (st != TG_OK)
		return tg_err_set(err, st, "store: embedded: usage: cannot "
		    "read %s", l->path);
	tg_store_summary(ent, n, now, window, limit, u);
	free(ent);
	return TG_OK;
}

/*
 * tg_store_lmdb_cursor - a transaction (flags: 0 or MDB_RDONLY) and a
 * cursor on dbi in it; an LMDB error code, with nothing left open
 */
static int
tg_store_lmdb_cursor(struct tg_store_lmdb *l, MDB_dbi dbi,
    unsigned int flags, MDB_txn **txn, MDB_cursor **cur)
{
	int	rc;

	if ((rc = mdb_txn_begin(l->e->env, NULL, flags, txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(*txn, dbi, cur)) != 0)
		mdb_txn_abort(*txn);
	return rc;
}

/* tg_store_lmdb_reset - delete the sequence and every entry of key */
static enum tg_status
tg_store_lmdb_reset(void *arg, const char *key, struct tg_err *err)
{
	struct tg_store_lmdb	*l = arg;
	MDB_txn			*txn;
	MDB_cursor		*cur;
	MDB_val			 k, v;
	size_t			 klen = strlen(key) + 1;
	int			 rc;

	if ((rc = tg_store_lmdb_cursor(l, l->e->quota, 0, &txn,
	    &cur)) != 0)
		return tg_store_lmdb_err(err, "reset", rc);
	k.mv_data = (void *)key;
	k.mv_size = klen;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < klen || memcmp(k.mv_data, key, klen) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return tg_store_lmdb_err(err, "reset", rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return tg_store_lmdb_err(err, "reset", rc);
	return TG_OK;
}

/* tg_store_lmdb_list - the counters (their sequence records) by prefix */
static enum tg_status
tg_store_lmdb_list(void *arg, const char *prefix, char ***keys, size_t *n,
    struct tg_err *err)
{
	struct tg_store_lmdb	*l = arg;
	MDB_txn			*txn;
	MDB_cursor		*cur;
	MDB_val			 k, v;
	size_t			 plen = strlen(prefix), cap = 0;
	int			 rc;

	if ((rc = tg_store_lmdb_cursor(l, l->e->quota, MDB_RDONLY, &txn,
	    &cur)) != 0)
		return tg_store_lmdb_err(err, "list", rc);
	k.mv_data = (void *)prefix;
	k.mv_size = plen;
	rc = mdb_cursor_get(cur, &k, &v, plen == 0 ? MDB_FIRST :
	    MDB_SET_RANGE);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		/* A sequence record is "K\0": one NUL, at the end. */
		if (memchr(k.mv_data, '\0', k.mv_size) !=
		    (char *)k.mv_data + k.mv_size - 1)
			continue;
		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			*keys = tg_reallocarray(*keys, cap, sizeof(**keys));
		}
		(*keys)[(*n)++] = tg_strdup(k.mv_data);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		*keys = tg_store_list_free(*keys, *n);
		*n = 0;
		return tg_store_lmdb_err(err, "list", rc);
	}
	return TG_OK;
}

/* tg_store_lmdb_kv_read - key's live value in txn; TG_NOTFOUND */
static enum tg_status
tg_store_lmdb_kv_read(struct tg_store_lmdb *l, MDB_txn *txn,
    const char *key, MDB_val *v, uint64_t *expires, struct tg_err *err)
{
	MDB_val	k;
	int	rc;

	k.mv_data = (void *)key;
	k.mv_size = strlen(key);
	if ((rc = mdb_get(txn, l->e->kv, &k, v)) != 0)
		return tg_store_lmdb_err(err, "kv", rc);
	if (v->mv_size < 8)
		return tg_err_set(err, TG_NOTFOUND, "store: embedded: kv: "
		    "damaged record");
	*expires = tg_get_be64(v->mv_data);
	if (*expires != 0 && *expires <= tg_store_now_ms())
		return tg_err_set(err, TG_NOTFOUND, "store: embedded: kv: "
		    "expired");
	v->mv_data = (char *)v->mv_data + 8;
	v->mv_size -= 8;
	return TG_OK;
}

/* tg_store_lmdb_kv_write - key = expires + value in txn */
static int
tg_store_lmdb_kv_write(struct tg_store_lmdb *l, MDB_txn *txn,
    const char *key, const void *value, size_t len, uint64_t expires)
{
	MDB_val	k, v;
	int	rc;

	k.mv_data = (void *)key;
	k.mv_size = strlen(key);
	v.mv_size = len + 8;
	if ((rc = mdb_put(txn, l->e->kv, &k, &v, MDB_RESERVE)) != 0)
		return rc;
	tg_put_be64(v.mv_data, expires);
	memcpy((char *)v.mv_data + 8, value, len);
	return 0;
}

/* tg_store_lmdb_kv_get - a copy of the live value */
static enum tg_status
tg_store_lmdb_kv_get(void *arg, const char *key, char **value, size_t *len,
    struct tg_err *err)
{
	struct tg_store_lmdb	*l = arg;
	MDB_txn			*txn;
	MDB_val			 v;
	uint64_t		 expires;
	enum tg_status		 st;
	int			 rc;

	if ((rc = mdb_txn_begin(l->e->env, NULL, MDB_RDONLY, &txn)) != 0)
		return tg_store_lmdb_err(err, "kv", rc);
	if ((st = tg_store_lmdb_kv_read(l, txn, key, &v, &expires, err)) ==
	    TG_OK) {
		*value = tg_malloc(v.mv_size + 1);
		memcpy(*value, v.mv_data, v.mv_size);
		(*value)[v.mv_size] = '\0';
		*len = v.mv_size;
	}
	mdb_txn_abort(txn);
	return st;
}

/* tg_store_lmdb_kv_set - replace the record */
static enum tg_status
tg_store_lmdb_kv_set(void *arg, const char *key, const void *value,
    size_t len, uint64_t ttl, struct tg_err *err)
{
	struct tg_store_lmdb	*l = arg;
	MDB_txn			*txn;
	int			 rc;

	if ((rc = mdb_txn_begin(l->e->env, NULL, 0, &txn)) != 0)
		return tg_store_lmdb_err(err, "kv", rc);
	if ((rc = tg_store_lmdb_kv_write(l, txn, key, value, len, ttl == 0 ?
	    0 : tg_store_now_ms() + ttl)) != 0) {
		mdb_txn_abort(txn);
		return tg_store_lmdb_err(err, "kv", rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return tg_store_lmdb_err(err, "kv", rc);
	return TG_OK;
}

/* tg_store_lmdb_kv_del - an expired record counts as absent */
static enum tg_status
tg_store_lmdb_kv_del(void *arg, const char *key, struct tg_err *err)
{
	struct tg_store_lmdb	*l = arg;
	MDB_txn			*txn;
	MDB_val			 k, v;
	uint64_t		 expires;
	enum tg_status		 st;
	int			 rc;

	if ((rc = mdb_txn_begin(l->e->env, NULL, 0, &txn)) != 0)
		return tg_store_lmdb_err(err, "kv", rc);
	st = tg_store_lmdb_kv_read(l, txn, key, &v, &expires, err);
	k.mv_data = (void *)key;
	k.mv_size = strlen(key);
	if ((rc = mdb_del(txn, l->e->kv, &k, NULL)) != 0 &&
	    rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return tg_store_lmdb_err(err, "kv", rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return tg_store_lmdb_err(err, "kv", rc);
	return st;
}

/*
 * tg_store_lmdb_kv_page - up to a page of live records from the first
 * key at or after from (past it when skip), in one read transaction;
 * *more when the page filled up
 */
static enum tg_status
tg_store_lmdb_kv_page(struct tg_store_lmdb *l, const char *prefix,
    const char *from, bool skip, struct tg_store_kv_page *p, bool *more,
    struct tg_err *err)
{
	size_t		 plen = strlen(prefix);
	uint64_t	 now = tg_store_now_ms(), expires;
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	int		 rc;

	*more = false;
	if ((rc = tg_store_lmdb_cursor(l, l->e->kv, MDB_RDONLY, &txn,
	    &cur)) != 0)
		return tg_store_lmdb_err(err, "kv list", rc);
	k.mv_data = (void *)from;
	k.mv_size = strlen(from);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if (skip && k.mv_size == strlen(from) &&
		    memcmp(k.mv_data, from, k.mv_size) == 0)
			continue;
		if (p->n == TG_STORE_LIST_PAGE) {
			*more = true;
			break;
		}
		/* Our keys have no NUL; damaged records are skipped. */
		if (v.mv_size < 8 || k.mv_size > TG_STORE_KEY_MAX ||
		    memchr(k.mv_data, '\0', k.mv_size) != NULL)
			continue;
		expires = tg_get_be64(v.mv_data);
		if (expires != 0 && expires <= now)
			continue;
		tg_store_kv_page_add(p, k.mv_data, k.mv_size,
		    (char *)v.mv_data + 8, v.mv_size - 8, expires == 0 ? 0 :
		    expires - now);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return tg_store_lmdb_err(err, "kv list", rc);
	return TG_OK;
}

/* tg_store_lmdb_kv_list - page after page, in key order */
static enum tg_status
tg_store_lmdb_kv_list(void *arg, const char *prefix, tg_store_kv_list_cb cb,
    void *cbarg, struct tg_err *err)
{
	struct tg_store_kv_page	 p = { 0 };
	char			 last[TG_STORE_KEY_MAX + 1];
	enum tg_status		 st;
	bool			 more, skip = false;

	(void)snprintf(last, sizeof(last), "%s", prefix);
	do {
		if ((st = tg_store_lmdb_kv_page(arg, prefix, last, skip, &p,
		    &more, err)) != TG_OK)
			break;
		if (p.n > 0) {
			(void)snprintf(last, sizeof(last), "%s",
			    p.v[p.n - 1].key);
			skip = true;
		}
		if (!tg_store_kv_page_deliver(&p, cb, cbarg))
			break;
	} while (more);
	tg_store_kv_page_fini(&p);
	return st;
}

/* tg_store_lmdb_add - *cur += delta, false (and *cur as it was) when a
 * counter's range (+-INT64_MAX) would overflow */
static bool
tg_store_lmdb_add(int64_t *cur, int64_t delta)
{
	if ((delta > 0 && *cur > INT64_MAX - delta) ||
	    (delta < 0 && *cur < -INT64_MAX - delta))
		return false;
	*cur += delta;
	return true;
}

/* tg_store_lmdb_kv_incr - read, add, write: one txn */
static enum tg_status
tg_store_lmdb_kv_incr(void *arg, const char *key, int64_t delta,
    uint64_t ttl, int64_t *value, struct tg_err *err)
{
	struct tg_store_lmdb	*l = arg;
	MDB_txn			*txn;
	MDB_val			 v;
	uint64_t		 expires;
	char			 num[32];
	long			 cur = 0;
	int			 rc, len;

	if ((rc = mdb_txn_begin(l->e->env, NULL, 0, &txn)) != 0)
		return tg_store_lmdb_err(err, "kv", rc);
	if (tg_store_lmdb_kv_read(l, txn, key, &v, &expires, NULL) == TG_OK) {
		if (v.mv_size >= sizeof(num))
			goto notnum;
		memcpy(num, v.mv_data, v.mv_size);
		num[v.mv_size] = '\0';
		if (!tg_parse_long(num, -INT64_MAX, INT64_MAX, &cur))
			goto notnum;
	} else
		expires = ttl == 0 ? 0 : tg_store_now_ms() + ttl;
	if (!tg_store_lmdb_add(&cur, delta))
		goto notnum;
	*value = cur;
	len = snprintf(num, sizeof(num), "%" PRId64, *value);
	if ((rc = tg_store_lmdb_kv_write(l, txn, key, num, (size_t)len,
	    expires)) != 0) {
		mdb_txn_abort(txn);
		return tg_store_lmdb_err(err, "kv", rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return tg_store_lmdb_err(err, "kv", rc);
	return TG_OK;
notnum:
	mdb_txn_abort(txn);
	*value = 0;
	return tg_err_set(err, TG_PERM, "store: embedded: kv %s: not a "
	    "counter, or it would overflow", key);
}

/* tg_store_lmdb_kv_count - the counter of a live record v, false if
 * it is not one */
static bool
tg_store_lmdb_kv_count(const MDB_val *v, int64_t *count)
{
	char	num[32];
	long	cur;

	if (v->mv_size >= sizeof(num))
		return false;
	memcpy(num, v->mv_data, v->mv_size);
	num[v->mv_size] = '\0';
	if (!tg_parse_long(num, -INT64_MAX, INT64_MAX, &cur))
		return false;
	*count = cur;
	return true;
}

/* tg_store_lmdb_kv_mget - n counters in one read transaction */
static enum tg_status
tg_store_lmdb_kv_mget(void *arg, const char *const *keys, size_t n,
    int64_t *values, struct tg_err *err)
{
	struct tg_store_lmdb	*l = arg;
	MDB_txn			*txn;
	MDB_val			 v;
	uint64_t		 expires;
	enum tg_status		 st = TG_OK;
	size_t			 i;
	int			 rc;

	if ((rc = mdb_txn_begin(l->e->env, NULL, MDB_RDONLY, &txn)) != 0)
		return tg_store_lmdb_err(err, "kv", rc);
	for (i = 0; i < n; i++) {
		values[i] = 0;
		if (tg_store_lmdb_kv_read(l, txn, keys[i], &v, &expires,
		    NULL) != TG_OK)
			continue;
		if (!tg_store_lmdb_kv_count(&v, &values[i])) {
			st = tg_err_set(err, TG_PERM, "store: embedded: kv "
			    "%s: not a counter", keys[i]);
			break;
		}
	}
	mdb_txn_abort(txn);
	return st;
}

/* tg_store_lmdb_kv_mincr - n increments in one write transaction; a
 * count that reaches 0 is deleted */
static enum tg_status
tg_store_lmdb_kv_mincr(void *arg, const char *const *keys,
    const int64_t *deltas, size_t n, uint64_t ttl, int64_t *values,
    struct tg_err *err)
{
	struct tg_store_lmdb	*l = arg;
	MDB_txn			*txn;
	MDB_val			 k, v;
	uint64_t		 expires;
	int64_t			 cur, d;
	char			 num[32];
	size_t			 i;
	int			 rc, len;

	if ((rc = mdb_txn_begin(l->e->env, NULL, 0, &txn)) != 0)
		return tg_store_lmdb_err(err, "kv", rc);
	for (i = 0; i < n; i++) {
		cur = 0;
		d = deltas[i];
		if (tg_store_lmdb_kv_read(l, txn, keys[i], &v, &expires,
		    NULL) == TG_OK) {
			if (!tg_store_lmdb_kv_count(&v, &cur))
				goto notnum;
		} else
			expires = ttl == 0 ? 0 : tg_store_now_ms() + ttl;
		if (!tg_store_lmdb_add(&cur, d))
			goto notnum;
		if (values != NULL)
			values[i] = cur;
		if (cur == 0) {
			k.mv_data = (void *)keys[i];
			k.mv_size = strlen(keys[i]);
			rc = mdb_del(txn, l->e->kv, &k, NULL);
			if (rc == MDB_NOTFOUND)
				rc = 0;
		} else {
			len = snprintf(num, sizeof(num), "%" PRId64, cur);
			rc = tg_store_lmdb_kv_write(l, txn, keys[i], num,
			    (size_t)len, expires);
		}
		if (rc != 0) {
			mdb_txn_abort(txn);
			return tg_store_lmdb_err(err, "kv", rc);
		}
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return tg_store_lmdb_err(err, "kv", rc);
	return TG_OK;
notnum:
	mdb_txn_abort(txn);
	return tg_err_set(err, TG_PERM, "store: embedded: kv %s: not a "
	    "counter, or it would overflow", keys[i]);
}

/*
 * tg_store_lmdb_swept - whether the record k, v goes: an expired kv
 * record; in quota, a counter whose newest window ended (its sequence
 * record, remembered in dead, and the entries after it).
 */
static bool
tg_store_lmdb_swept(const MDB_val *k, const MDB_val *v, bool quota,
    uint64_t now, unsigned char *dead, size_t *deadlen)
{
	uint64_t	t;

	if (!quota) {
		t = v->mv_size >= 8 ? tg_get_be64(v->mv_data) : 0;
		return t != 0 && t <= now;
	}
	if (*deadlen != 0 && k->mv_size > *deadlen &&
	    memcmp(k->mv_data, dead, *deadlen) == 0)
		return true;
	*deadlen = 0;
	if (memchr(k->mv_data, '\0', k->mv_size) !=
	    (char *)k->mv_data + k->mv_size - 1 || v->mv_size != 16 ||
	    k->mv_size > TG_STORE_KEY_MAX + 1)
		return false;
	t = tg_get_be64((unsigned char *)v->mv_data + 8);
	if (t == 0 || t > now)
		return false;
	memcpy(dead, k->mv_data, k->mv_size);
	*deadlen = k->mv_size;
	return true;
}

/*
 * tg_store_lmdb_sweep_db - delete what tg_store_lmdb_swept says, in
 * transactions of at most TG_STORE_LMDB_SWEEP_BATCH deletions, so
 * writers are never held up for long.
 */
#define TG_STORE_LMDB_SWEEP_BATCH	1000
static enum tg_status
tg_store_lmdb_sweep_db(struct tg_store_lmdb *l, MDB_dbi dbi, bool quota,
    size_t *removed, struct tg_err *err)
{
	unsigned char	 last[TG_STORE_KEY_MAX + 9], dead[TG_STORE_KEY_MAX + 1];
	size_t		 lastlen = 0, deadlen = 0, batch;
	uint64_t	 now = tg_store_now_ms();
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	int		 rc;

	do {
		if ((rc = tg_store_lmdb_cursor(l, dbi, 0, &txn,
		    &cur)) != 0)
			return tg_store_lmdb_err(err, "sweep", rc);
		k.mv_data = last;
		k.mv_size = lastlen;
		rc = mdb_cursor_get(cur, &k, &v, lastlen == 0 ? MDB_FIRST :
		    MDB_SET_RANGE);
		for (batch = 0; rc == 0 && batch < TG_STORE_LMDB_SWEEP_BATCH;
		    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (!tg_store_lmdb_swept(&k, &v, quota, now, dead,
			    &deadlen))
				continue;
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			batch++;
		}
		/* Stopped by the batch: k is the first record not seen. */
		if (rc == 0) {
			if (k.mv_size > sizeof(last))
				rc = MDB_BAD_VALSIZE;
			else {
				memcpy(last, k.mv_data, k.mv_size);
				lastlen = k.mv_size;
			}
		}
		mdb_cursor_close(cur);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			mdb_txn_abort(txn);
			return tg_store_lmdb_err(err, "sweep", rc);
		}
		if ((rc = mdb_txn_commit(txn)) != 0)
			return tg_store_lmdb_err(err, "sweep", rc);
		*removed += batch;
	} while (batch == TG_STORE_LMDB_SWEEP_BATCH);
	return TG_OK;
}

/* tg_store_lmdb_sweep - expired records, then idle counters */
static enum tg_status
tg_store_lmdb_sweep(void *arg, size_t *removed, struct tg_err *err)
{
	struct tg_store_lmdb	*l = arg;
	enum tg_status		 st;

	if ((st = tg_store_lmdb_sweep_db(l, l->e->kv, false, removed, err)) !=
	    TG_OK)
		return st;
	return tg_store_lmdb_sweep_db(l, l->e->quota, true, removed, err);
}

const struct tg_store_ops tg_store_lmdb_ops = {
	.name = "embedded",
	.close = tg_store_lmdb_close,
	.reserve = tg_store_lmdb_reserve,
	.commit = tg_store_lmdb_commit,
	.refund = tg_store_lmdb_refund,
	.usage = tg_store_lmdb_usage,
	.reset = tg_store_lmdb_reset,
	.list = tg_store_lmdb_list,
	.kv_get = tg_store_lmdb_kv_get,
	.kv_set = tg_store_lmdb_kv_set,
	.kv_del = tg_store_lmdb_kv_del,
	.kv_incr = tg_store_lmdb_kv_incr,
	.kv_mget = tg_store_lmdb_kv_mget,
	.kv_mincr = tg_store_lmdb_kv_mincr,
	.kv_list = tg_store_lmdb_kv_list,
	.sweep = tg_store_lmdb_sweep,
};
