/*
 * dmarc_report - the durable store of DMARC-evaluated messages.
 *
 * One LMDB environment in a directory holds two databases: "records"
 * (one entry per message, keyed as dmarc_report_int.h says) and "meta"
 * (the seq counter).  LMDB gives what the milter and tollgatectl need:
 * many threads and processes share it through its lock file, and
 * readers never block the writer.  A writer does not fsync each commit
 * (MDB_NOSYNC): the milter adds a record at the end of every message,
 * and a disk flush there would put the disk's latency on the mail
 * path.  A commit is in the file once it returns, so it survives the
 * daemon's crash or restart; a crash of the host may lose the last
 * seconds the kernel had not written back, which a report can spare.
 * Closing a store syncs it.  Reader slots of processes that died (a
 * tollgatectl killed mid-run) are cleared at open, so they cannot pin
 * old pages and let the map fill.  The
 * map is sized generously once; a full map is TG_TEMP, so the milter
 * goes on filtering mail and only stops recording until a report run
 * or expiry frees space.
 *
 * Values are a versioned, length-prefixed serialization, never a C
 * struct dump, so the layout survives a compiler or ABI change.
 *
 * This file does not build reports (dmarc_report_xml.c) or read the
 * configuration (the DMARC module does).
 *
 * LMDB forbids opening one environment twice in a process (closing
 * the second would drop the first's file locks), yet the DMARC module
 * and tollgatectl's report command both open the store in tollgatectl.
 * So handles for the same directory share one environment, counted in a
 * process-wide list.
 *
 * Threading: a handle holds only the environment and database handles,
 * fixed after open; each call uses its own transaction (MDB_NOTLS, so a
 * read transaction is not tied to a thread).  Thread-safe.
 */
#include "config.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tollgate/buf.h"
#include "tollgate/daemon.h"
#include "tollgate/dmarc_report.h"
#include "tollgate/util.h"

#include "dmarc_report_int.h"

/*
 * The map is virtual address space, not disk: the file grows only as
 * records are added.  At some 300 bytes a record, 4 GiB holds more than
 * ten million messages, far more than a day's reports keep.
 */
#if SIZE_MAX > 0xffffffffu
#define DMARC_REPORT_MAP_SIZE	((size_t)4 << 30)
#else
#define DMARC_REPORT_MAP_SIZE	((size_t)512 << 20)
#endif

#define DMARC_REPORT_BATCH	10000	/* deletions per transaction */

/* One open environment, shared by the handles on its directory. */
struct dmarc_report_env {
	struct dmarc_report_env	*next;
	dev_t			 dev;
	ino_t			 ino;
	MDB_env			*env;
	MDB_dbi			 records;
	MDB_dbi			 meta;
	bool			 readonly;
	unsigned int		 refs;
};

struct dmarc_report_store {
	struct dmarc_report_env	*shared;
	MDB_env			*env;
	MDB_dbi			 records;
	MDB_dbi			 meta;
	bool			 readonly;
};

static pthread_mutex_t		 dmarc_report_envs_lock =
				    PTHREAD_MUTEX_INITIALIZER;
static struct dmarc_report_env	*dmarc_report_envs;
static size_t			 dmarc_report_map_size =
				    DMARC_REPORT_MAP_SIZE;

static const char dmarc_report_seq_key[] = "seq";

static enum tg_status	dmarc_report_mdb_err(struct tg_err *, const char *,
			    int);
static size_t	dmarc_report_key(unsigned char *, const char *, uint64_t,
		    uint64_t);
static bool	dmarc_report_key_split(const MDB_val *, const char *,
		    uint64_t *, uint64_t *);
static enum tg_status	dmarc_report_next_seq(struct dmarc_report_store *,
			    MDB_txn *, uint64_t *, struct tg_err *);
static uint64_t	dmarc_report_snap_seq(struct dmarc_report_store *, MDB_txn *);

/* dmarc_report_mdb_err - an LMDB error as a status: space is temporary */
static enum tg_status
dmarc_report_mdb_err(struct tg_err *err, const char *what, int rc)
{
	enum tg_status	st;

	switch (rc) {
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case MDB_READERS_FULL:
	case MDB_MAP_RESIZED:
	case ENOSPC:
	case EAGAIN:
	case EBUSY:
	case EIO:
		st = TG_TEMP;
		break;
	case ENOENT:
	case MDB_NOTFOUND:
		st = TG_NOTFOUND;
		break;
	default:
		st = TG_PERM;
		break;
	}
	return tg_err_set(err, st, "dmarc report store: %s: %s", what,
	    mdb_strerror(rc));
}

/* dmarc_report_lower_domain - the keyed form of a policy domain */
bool
dmarc_report_lower_domain(const char *in, char *out, size_t outsz)
{
	size_t	n, i;

	if (in == NULL)
		return false;
	n = strlen(in);
	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > DMARC_REPORT_MAX_DOMAIN || n >= outsz)
		return false;
	for (i = 0; i < n; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'Z') ?
		    (char)(in[i] - 'A' + 'a') : in[i];
	out[n] = '\0';
	return true;
}

/* dmarc_report_key - domain NUL time seq into key; returns its length */
static size_t
dmarc_report_key(unsigned char *key, const char *domain, uint64_t t,
    uint64_t seq)
{
	size_t	n = strlen(domain);

	memcpy(key, domain, n + 1);
	tg_put_be64(key + n + 1, t);
	tg_put_be64(key + n + 9, seq);
	return n + 17;
}

/* dmarc_report_key_split - whether k is domain's, and its time and seq */
static bool
dmarc_report_key_split(const MDB_val *k, const char *domain, uint64_t *t,
    uint64_t *seq)
{
	size_t			 n = strlen(domain);
	const unsigned char	*p = k->mv_data;

	if (k->mv_size != n + 17 || memcmp(p, domain, n) != 0 || p[n] != '\0')
		return false;
	*t = tg_get_be64(p + n + 1);
	*seq = tg_get_be64(p + n + 9);
	return true;
}

/* dmarc_report_env_open - a new environment for dir (lock held) */
static struct dmarc_report_env *
dmarc_report_env_open(const char *dir, bool readonly, struct tg_err *err)
{
	struct dmarc_report_env	*e;
	MDB_txn			*txn;
	unsigned int		 flags = MDB_NOTLS;
	int			 rc, dead;

	flags |= readonly ? MDB_RDONLY : MDB_NOSYNC;
	e = tg_calloc(1, sizeof(*e));
	e->readonly = readonly;
	if ((rc = mdb_env_create(&e->env)) != 0) {
		(void)dmarc_report_mdb_err(err, "create", rc);
		free(e);
		return NULL;
	}
	(void)mdb_env_set_mapsize(e->env, dmarc_report_map_size);
	(void)mdb_env_set_maxdbs(e->env, 2);
	/* The milter's threads and tollgatectl each need a reader slot. */
	(void)mdb_env_set_maxreaders(e->env, 1024);
	if ((rc = mdb_env_open(e->env, dir, flags, 0660)) != 0) {
		(void)tg_err_set(err, rc == ENOENT ? TG_NOTFOUND :
		    rc == EACCES ? TG_PERM : TG_TEMP,
		    "dmarc report store: %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	(void)mdb_reader_check(e->env, &dead);
	if ((rc = mdb_txn_begin(e->env, NULL, readonly ? MDB_RDONLY : 0,
	    &txn)) != 0) {
		(void)dmarc_report_mdb_err(err, dir, rc);
		goto fail;
	}
	flags = readonly ? 0 : MDB_CREATE;
	if ((rc = mdb_dbi_open(txn, "records", flags, &e->records)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", flags, &e->meta)) != 0) {
		mdb_txn_abort(txn);
		(void)dmarc_report_mdb_err(err, dir, rc);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		(void)dmarc_report_mdb_err(err, dir, rc);
		goto fail;
	}
	return e;
fail:
	mdb_env_close(e->env);
	free(e);
	return NULL;
}

/* dmarc_report_set_map_size - the map size of stores opened later */
void
dmarc_report_set_map_size(size_t n)
{
	(void)pthread_mutex_lock(&dmarc_report_envs_lock);
	dmarc_report_map_size = n == 0 ? DMARC_REPORT_MAP_SIZE : n;
	(void)pthread_mutex_unlock(&dmarc_report_envs_lock);
}

/* dmarc_report_own - the run user must own the files (daemon.h) */
static void
dmarc_report_own(const char *dir)
{
	char	path[4096];

	(void)snprintf(path, sizeof(path), "%s/data.mdb", dir);
	tg_daemon_own(path);
	(void)snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	tg_daemon_own(path);
}

/* dmarc_report_open - a handle on the store in dir, shared if open */
struct dmarc_report_store *
dmarc_report_open(const char *dir, bool readonly, struct tg_err *err)
{
	struct dmarc_report_store	*s;
	struct dmarc_report_env		*e;
	struct stat			 st;

	if (dir == NULL || *dir == '\0') {
		(void)tg_err_set(err, TG_PERM, "dmarc report store: no "
		    "directory configured");
		return NULL;
	}
	if (!readonly && mkdir(dir, 0770) == 0)
		tg_daemon_own(dir);	/* opened as root: see daemon.h */
	else if (!readonly && errno != EEXIST) {
		(void)tg_err_set(err, TG_PERM, "dmarc report store: %s: %s",
		    dir, strerror(errno));
		return NULL;
	}
	if (stat(dir, &st) == -1) {
		(void)tg_err_set(err, errno == ENOENT ? TG_NOTFOUND : TG_PERM,
		    "dmarc report store: %s: %s", dir, strerror(errno));
		return NULL;
	}
	(void)pthread_mutex_lock(&dmarc_report_envs_lock);
	for (e = dmarc_report_envs; e != NULL; e = e->next)
		if (e->dev == st.st_dev && e->ino == st.st_ino)
			break;
	if (e != NULL && e->readonly && !readonly) {
		(void)pthread_mutex_unlock(&dmarc_report_envs_lock);
		(void)tg_err_set(err, TG_PERM, "dmarc report store: %s: "
		    "already open read-only in this process", dir);
		return NULL;
	}
	if (e == NULL) {
		if ((e = dmarc_report_env_open(dir, readonly, err)) == NULL) {
			(void)pthread_mutex_unlock(&dmarc_report_envs_lock);
			return NULL;
		}
		e->dev = st.st_dev;
		e->ino = st.st_ino;
		if (!readonly)
			dmarc_report_own(dir);
		e->next = dmarc_report_envs;
		dmarc_report_envs = e;
	}
	e->refs++;
	(void)pthread_mutex_unlock(&dmarc_report_envs_lock);
	s = tg_calloc(1, sizeof(*s));
	s->shared = e;
	s->env = e->env;
	s->records = e->records;
	s->meta = e->meta;
	s->readonly = readonly;
	return s;
}

/* dmarc_report_close - release the handle, and the environment with
 * its last handle */
struct dmarc_report_store *
dmarc_report_close(struct dmarc_report_store *s)
{
	struct dmarc_report_env	**ep, *e;

	if (s == NULL)
		return NULL;
	(void)pthread_mutex_lock(&dmarc_report_envs_lock);
	e = s->shared;
	if (--e->refs == 0) {
		for (ep = &dmarc_report_envs; *ep != e; ep = &(*ep)->next)
			continue;
		*ep = e->next;
		if (!e->readonly)
			(void)mdb_env_sync(e->env, 1);
		mdb_env_close(e->env);
		free(e);
	}
	(void)pthread_mutex_unlock(&dmarc_report_envs_lock);
	free(s);
	return NULL;
}

/* dmarc_report_next_seq - bump the counter inside the write txn */
static enum tg_status
dmarc_report_next_seq(struct dmarc_report_store *s, MDB_txn *txn,
    uint64_t *seq, struct tg_err *err)
{
	MDB_val		k, v;
	unsigned char	buf[8];
	int		rc;

	k.mv_data = (void *)dmarc_report_seq_key;
	k.mv_size = sizeof(dmarc_report_seq_key) - 1;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0 && v.mv_size == 8)
		*seq = tg_get_be64(v.mv_data) + 1;
	else if (rc == MDB_NOTFOUND)
		*seq = 1;
	else
		return dmarc_report_mdb_err(err, "seq", rc == 0 ?
		    MDB_CORRUPTED : rc);
	tg_put_be64(buf, *seq);
	v.mv_data = buf;
	v.mv_size = sizeof(buf);
	if ((rc = mdb_put(txn, s->meta, &k, &v, 0)) != 0)
		return dmarc_report_mdb_err(err, "seq", rc);
	return TG_OK;
}

/* dmarc_report_snap_seq - the counter as a read snapshot sees it */
static uint64_t
dmarc_report_snap_seq(struct dmarc_report_store *s, MDB_txn *txn)
{
	MDB_val	k, v;

	k.mv_data = (void *)dmarc_report_seq_key;
	k.mv_size = sizeof(dmarc_report_seq_key) - 1;
	if (mdb_get(txn, s->meta, &k, &v) != 0 || v.mv_size != 8)
		return 0;
	return tg_get_be64(v.mv_data);
}

/* dmarc_report_add - one record, committed before return */
enum tg_status
dmarc_report_add(struct dmarc_report_store *s,
    const struct dmarc_report_rec *rec, struct tg_err *err)
{
	unsigned char	 key[DMARC_REPORT_MAX_DOMAIN + 18];
	char		 dom[DMARC_REPORT_MAX_DOMAIN + 1];
	struct tg_buf	 val;
	MDB_txn		*txn;
	MDB_val		 k, v;
	uint64_t	 seq = 0;
	enum tg_status	 st;
	int		 rc;

	if (s->readonly)
		return tg_err_set(err, TG_PERM, "dmarc report store: "
		    "opened read-only");
	if (!dmarc_report_lower_domain(rec->policy_domain, dom, sizeof(dom)))
		return tg_err_set(err, TG_PERM, "dmarc report store: bad "
		    "policy domain");
	tg_buf_init(&val);
	dmarc_report_encode(&val, rec);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
		tg_buf_fini(&val);
		return dmarc_report_mdb_err(err, "begin", rc);
	}
	if ((st = dmarc_report_next_seq(s, txn, &seq, err)) != TG_OK)
		goto abort;
	k.mv_data = key;
	k.mv_size = dmarc_report_key(key, dom,
	    rec->when < 0 ? 0 : (uint64_t)rec->when, seq);
	v.mv_data = val.data;
	v.mv_size = val.len;
	if ((rc = mdb_put(txn, s->records, &k, &v, MDB_NOOVERWRITE)) != 0) {
		st = dmarc_report_mdb_err(err, "add", rc);
		goto abort;
	}
	tg_buf_fini(&val);
	if ((rc = mdb_txn_commit(txn)) != 0)
		return dmarc_report_mdb_err(err, "commit", rc);
	return TG_OK;
abort:
	mdb_txn_abort(txn);
	tg_buf_fini(&val);
	return st;
}

/* dmarc_report_next_domain - skip from one domain's keys to the next */
enum tg_status
dmarc_report_next_domain(struct dmarc_report_store *s, const char *after,
    char *out, struct tg_err *err)
{
	char		 seek[DMARC_REPORT_MAX_DOMAIN + 2];
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	size_t		 n;
	int		 rc;

	/*
	 * after "\x01" sorts above every "after NUL ..." key and below any
	 * longer domain, so it lands on the next domain's first key.
	 */
	n = strlen(after);
	memcpy(seek, after, n);
	seek[n] = '\x01';
	k.mv_data = seek;
	k.mv_size = n == 0 ? 0 : n + 1;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return dmarc_report_mdb_err(err, "begin", rc);
	if ((rc = mdb_cursor_open(txn, s->records, &cur)) != 0) {
		mdb_txn_abort(txn);
		return dmarc_report_mdb_err(err, "cursor", rc);
	}
	rc = mdb_cursor_get(cur, &k, &v, n == 0 ? MDB_FIRST : MDB_SET_RANGE);
	if (rc == 0) {
		n = strnlen(k.mv_data, k.mv_size);
		if (n + 17 != k.mv_size || n > DMARC_REPORT_MAX_DOMAIN)
			rc = MDB_CORRUPTED;
		else {
			memcpy(out, k.mv_data, n);
			out[n] = '\0';
		}
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		return TG_NOTFOUND;
	return rc == 0 ? TG_OK : dmarc_report_mdb_err(err, "domains", rc);
}

/* dmarc_report_scan - walk span's records from where it stopped */
enum tg_status
dmarc_report_scan(struct dmarc_report_store *s, struct dmarc_report_span *sp,
    dmarc_report_scan_fn fn, void *arg, struct tg_err *err)
{
	unsigned char			 key[DMARC_REPORT_MAX_DOMAIN + 18];
	struct dmarc_report_item	 it;
	MDB_txn				*txn;
	MDB_cursor			*cur;
	MDB_val				 k, v;
	uint64_t			 t, seq;
	enum tg_status			 st = TG_OK;
	int				 rc, op = MDB_SET_RANGE;

	sp->any = false;
	sp->done = false;
	sp->nrecs = 0;
	k.mv_data = key;
	k.mv_size = sp->started ?
	    dmarc_report_key(key, sp->domain, sp->last_time, sp->last_seq) :
	    dmarc_report_key(key, sp->domain, sp->begin, 0);
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return dmarc_report_mdb_err(err, "begin", rc);
	sp->snap_seq = dmarc_report_snap_seq(s, txn);
	if ((rc = mdb_cursor_open(txn, s->records, &cur)) != 0) {
		mdb_txn_abort(txn);
		return dmarc_report_mdb_err(err, "cursor", rc);
	}
	for (; (rc = mdb_cursor_get(cur, &k, &v, op)) == 0; op = MDB_NEXT) {
		if (!dmarc_report_key_split(&k, sp->domain, &t, &seq) ||
		    t >= sp->end)
			break;
		/* Resuming: the last consumed key itself was reported. */
		if (sp->started && t == sp->last_time && seq == sp->last_seq)
			continue;
		if (dmarc_report_decode(v.mv_data, v.mv_size, &it) != TG_OK) {
			/*
			 * Skipped, so one bad value spoils no report; one
			 * between the first and last records reported goes
			 * with that span (delete_span), others at expiry.
			 */
			sp->nbad++;
			continue;
		}
		it.time = t;
		it.seq = seq;
		st = fn(&it, arg);
		dmarc_report_item_fini(&it);
		if (st != TG_OK)
			break;
		if (!sp->any) {
			sp->first_time = t;
			sp->first_seq = seq;
		}
		sp->any = true;
		sp->started = true;
		sp->last_time = t;
		sp->last_seq = seq;
		sp->nrecs++;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return dmarc_report_mdb_err(err, "scan", rc);
	sp->done = st == TG_OK;
	return st == TG_NOTFOUND ? TG_OK : st;
}

/*
 * dmarc_report_delete_range - delete domain's keys from (t0, s0) through
 * (t1, s1) whose seq is at most maxseq, in batches so that one huge
 * report does not need one huge transaction (MDB_TXN_FULL).
 */
static enum tg_status
dmarc_report_delete_range(struct dmarc_report_store *s, const char *domain,
    uint64_t t0, uint64_t s0, uint64_t t1, uint64_t s1, uint64_t maxseq,
    size_t *ndel, struct tg_err *err)
{
	unsigned char	 key[DMARC_REPORT_MAX_DOMAIN + 18];
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint64_t	 t, seq;
	size_t		 batch;
	int		 rc;
	bool		 more = true;

	while (more) {
		if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
			return dmarc_report_mdb_err(err, "begin", rc);
		if ((rc = mdb_cursor_open(txn, s->records, &cur)) != 0) {
			mdb_txn_abort(txn);
			return dmarc_report_mdb_err(err, "cursor", rc);
		}
		k.mv_data = key;
		k.mv_size = dmarc_report_key(key, domain, t0, s0);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		for (batch = 0; rc == 0; rc = mdb_cursor_get(cur, &k, &v,
		    MDB_NEXT)) {
			if (!dmarc_report_key_split(&k, domain, &t, &seq) ||
			    t > t1 || (t == t1 && seq > s1))
				break;
			if (seq > maxseq)
				continue;
			if (batch == DMARC_REPORT_BATCH) {
				/* Resume here in the next transaction. */
				t0 = t;
				s0 = seq;
				break;
			}
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			batch++;
		}
		more = rc == 0 && batch == DMARC_REPORT_BATCH;
		mdb_cursor_close(cur);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			mdb_txn_abort(txn);
			return dmarc_report_mdb_err(err, "delete", rc);
		}
		if ((rc = mdb_txn_commit(txn)) != 0)
			return dmarc_report_mdb_err(err, "commit", rc);
		*ndel += batch;
	}
	return TG_OK;
}

/* dmarc_report_delete_span - delete what the last scan consumed */
enum tg_status
dmarc_report_delete_span(struct dmarc_report_store *s,
    const struct dmarc_report_span *sp, size_t *ndel, struct tg_err *err)
{
	*ndel = 0;
	if (!sp->any)
		return TG_OK;
	if (s->readonly)
		return tg_err_set(err, TG_PERM, "dmarc report store: "
		    "opened read-only");
	return dmarc_report_delete_range(s, sp->domain, sp->first_time,
	    sp->first_seq, sp->last_time, sp->last_seq, sp->snap_seq, ndel,
	    err);
}

/* dmarc_report_expire - report_keep: drop each domain's old records */
enum tg_status
dmarc_report_expire(struct dmarc_report_store *s, time_t before,
    size_t *ndel, struct tg_err *err)
{
	char		dom[DMARC_REPORT_MAX_DOMAIN + 1] = "";
	enum tg_status	st;

	*ndel = 0;
	if (before <= 0)
		return TG_OK;
	if (s->readonly)
		return tg_err_set(err, TG_PERM, "dmarc report store: "
		    "opened read-only");
	while ((st = dmarc_report_next_domain(s, dom, dom, err)) == TG_OK) {
		st = dmarc_report_delete_range(s, dom, 0, 0,
		    (uint64_t)before - 1, UINT64_MAX, UINT64_MAX, ndel, err);
		if (st != TG_OK)
			return st;
	}
	return st == TG_NOTFOUND ? TG_OK : st;
}

/* dmarc_report_count - entries in the records database */
enum tg_status
dmarc_report_count(struct dmarc_report_store *s, size_t *n,
    struct tg_err *err)
{
	MDB_txn		*txn;
	MDB_stat	 st;
	int		 rc;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return dmarc_report_mdb_err(err, "begin", rc);
	rc = mdb_stat(txn, s->records, &st);
	mdb_txn_abort(txn);
	if (rc != 0)
		return dmarc_report_mdb_err(err, "stat", rc);
	*n = st.ms_entries;
	return TG_OK;
}
