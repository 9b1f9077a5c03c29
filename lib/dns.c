/*
 * dns - the one resolver every module uses, on libunbound.
 *
 * A struct tg_dns wraps one ub_ctx in threaded asynchronous mode, so all
 * threads share unbound's cache.  tg_dns_start hands a query to
 * ub_resolve_async; one dispatcher thread polls ub_fd() and runs
 * ub_process(), whose callback stores the result in the query and wakes
 * its waiter.  A wait ends at the deadline fixed when the query started:
 * the query is then cancelled in unbound or, when unbound has already
 * taken the answer off its queue, marked abandoned so that the callback
 * frees it.
 *
 * Local data is checked line by line on a scratch context, because
 * ub_ctx_set_option stores local-data without parsing it, and is handed
 * to the real context as unbound options when the first query starts.
 * That finalizes the context, so no local data can be added later.
 * unbound answers local data without following CNAMEs, so we follow
 * unfinished chains ourselves.  No DNSSEC validation is done.
 *
 * Threading: tg_dns_new, tg_dns_load* and tg_dns_free are start-up and
 * shut-down calls; the query calls are thread-safe.  dns->lock guards
 * every query field and the commit state.  We call unbound with it held;
 * unbound calls us back with none of its own locks held, so the lock
 * order is always ours first.  A query belongs to whoever started it
 * until tg_dns_wait or tg_dns_cancel, and to the callback once abandoned.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

#include "tollgate/buf.h"
#include "tollgate/dns.h"
#include "tollgate/log.h"
#include "tollgate/metrics.h"
#include "tollgate/util.h"

#define TG_DNS_MAX_NAME		253	/* RFC 1035 2.3.4, as text */
#define TG_DNS_MAX_LABEL	63
#define TG_DNS_MAX_HOPS		8	/* CNAME links we follow */
#define TG_DNS_CLASS_IN		1
#define TG_DNS_RCODE_NOERROR	0
#define TG_DNS_RCODE_SERVFAIL	2
#define TG_DNS_RCODE_NXDOMAIN	3
#define TG_DNS_RCODE_REFUSED	5

/* A growable list of strings the list owns. */
struct tg_dns_strv {
	char	**v;
	size_t	  n;
	size_t	  cap;
};

enum tg_dns_fail_kind {
	TG_DNS_FAIL_TIMEOUT,
	TG_DNS_FAIL_SERVFAIL
};

/* A "$TIMEOUT name." or "$SERVFAIL name." line. */
struct tg_dns_fail {
	char			*name;	/* lower case, no final dot */
	enum tg_dns_fail_kind	 kind;
};

struct tg_dns_query {
	struct tg_dns		*dns;
	struct tg_dns_query	*prev;	/* dns->abandoned, if abandoned */
	struct tg_dns_query	*next;
	char			*name;	/* as asked, for messages */
	int			 type;
	int			 async_id;
	unsigned int		 hops;	/* CNAME links followed */
	uint32_t		 chain_ttl;	/* of those links */
	struct timespec		 deadline;	/* CLOCK_MONOTONIC */
	struct timespec		 started;	/* for the latency metric */
	pthread_cond_t		 cond;	/* done was set */
	bool			 done;
	bool			 abandoned;
	enum tg_status		 status;
	struct tg_dns_answer	*ans;
	struct tg_err		 err;
};

struct tg_dns {
	struct ub_ctx		*ctx;
	struct ub_ctx		*scratch;	/* parses local data */
	pthread_mutex_t		 lock;
	pthread_condattr_t	 condattr;	/* monotonic clock */
	pthread_t		 thread;
	bool			 thread_started;
	int			 wake[2];	/* stops the dispatcher */
	long			 timeout;
	bool			 offline;
	bool			 committed;	/* ctx is final */
	struct tg_err		 commit_err;	/* TG_OK unless it failed */
	struct tg_dns_strv	 data;		/* local-data lines */
	struct tg_dns_strv	 owners;	/* their owner names */
	struct tg_dns_strv	 zones;		/* SOA owners */
	struct tg_dns_fail	*fails;
	size_t			 nfails;
	struct tg_dns_query	*abandoned;
};

/* A resource record found in a reply packet. */
struct tg_dns_rr {
	unsigned int	 type;
	uint32_t	 ttl;
	size_t		 rdoff;
	size_t		 rdlen;
};

static void	tg_dns_lock(struct tg_dns *);
static void	tg_dns_unlock(struct tg_dns *);
static int	tg_dns_strv_cmp(const void *, const void *);
static void	tg_dns_strv_push(struct tg_dns_strv *, char *);
static void	tg_dns_strv_sort(struct tg_dns_strv *);
static void	tg_dns_strv_fini(struct tg_dns_strv *);
static bool	tg_dns_name_norm(const char *, size_t, char *, size_t, bool);
static bool	tg_dns_unescape(const char *, size_t, size_t *, unsigned int *);
static void	tg_dns_name_escape(const char *, char *, size_t);
static const char *tg_dns_type_name(int, char *, size_t);
static const char *tg_dns_token(const char **, size_t *);
static enum tg_status tg_dns_set(struct tg_dns *, const char *, const char *,
		    struct tg_err *);
static enum tg_status tg_dns_configure(struct tg_dns *,
		    const struct tg_dns_conf *, struct tg_err *);
static enum tg_status tg_dns_forward(struct tg_dns *, const char *,
		    struct tg_err *);
static enum tg_status tg_dns_spawn(struct tg_dns *, struct tg_err *);
static void	*tg_dns_dispatch(void *);
static enum tg_status tg_dns_add_fail(struct tg_dns *, const char *,
		    struct tg_err *);
static enum tg_status tg_dns_add_record(struct tg_dns *, const char *,
		    struct tg_err *);
static bool	tg_dns_record_check(const char *, bool *);
static const struct tg_dns_fail *tg_dns_fail_find(const struct tg_dns *,
		    const char *);
static bool	tg_dns_covered(const struct tg_dns *, const char *);
static enum tg_status tg_dns_commit(struct tg_dns *);
static enum tg_status tg_dns_commit_zones(struct tg_dns *, struct tg_err *);
static void	tg_dns_done(struct tg_dns_query *, enum tg_status,
		    const char *, const char *);
static void	tg_dns_submit(struct tg_dns_query *, const char *);
static void	tg_dns_callback(void *, int, struct ub_result *);
static bool	tg_dns_chain_open(const struct tg_dns_query *,
		    const struct ub_result *);
static void	tg_dns_follow(struct tg_dns_query *,
		    const struct ub_result *);
static enum tg_status tg_dns_result(struct tg_dns_query *, int,
		    const struct ub_result *);
static struct tg_dns_answer *tg_dns_answer_new(const struct ub_result *, int);
static bool	tg_dns_drop(struct tg_dns_query *);
static void	tg_dns_query_destroy(struct tg_dns_query *);
static void	tg_dns_log(const struct tg_dns_query *, enum tg_status,
		    const struct tg_dns_answer *, const char *);
static bool	tg_dns_skip_name(const unsigned char *, size_t, size_t *);
static bool	tg_dns_next_rr(const unsigned char *, size_t, size_t *,
		    struct tg_dns_rr *);
static bool	tg_dns_packet_ttl(const unsigned char *, size_t, int, bool,
		    uint32_t *);

/* tg_dns_lock - take dns->lock; failure is our bug */
static void
tg_dns_lock(struct tg_dns *dns)
{
	int	r;

	if ((r = pthread_mutex_lock(&dns->lock)) != 0)
		TG_PANIC("dns: mutex lock: %s", strerror(r));
}

/* tg_dns_unlock - release dns->lock */
static void
tg_dns_unlock(struct tg_dns *dns)
{
	int	r;

	if ((r = pthread_mutex_unlock(&dns->lock)) != 0)
		TG_PANIC("dns: mutex unlock: %s", strerror(r));
}

/* tg_dns_strv_push - append s, which the list takes */
static void
tg_dns_strv_push(struct tg_dns_strv *sv, char *s)
{
	if (sv->n == sv->cap) {
		sv->cap = sv->cap == 0 ? 16 : sv->cap * 2;
		sv->v = tg_reallocarray(sv->v, sv->cap, sizeof(*sv->v));
	}
	sv->v[sv->n++] = s;
}

/* tg_dns_strv_cmp - qsort order for tg_dns_strv_sort */
static int
tg_dns_strv_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* tg_dns_strv_sort - sort and drop duplicates */
static void
tg_dns_strv_sort(struct tg_dns_strv *sv)
{
	size_t	i, n;

	if (sv->n < 2)
		return;
	qsort(sv->v, sv->n, sizeof(*sv->v), tg_dns_strv_cmp);
	for (i = 1, n = 1; i < sv->n; i++) {
		if (strcmp(sv->v[i], sv->v[n - 1]) == 0)
			free(sv->v[i]);
		else
			sv->v[n++] = sv->v[i];
	}
	sv->n = n;
}

/* tg_dns_strv_fini - free the list and its strings */
static void
tg_dns_strv_fini(struct tg_dns_strv *sv)
{
	size_t	i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof(*sv));
}

/*
 * tg_dns_name_norm - check the first len bytes of name as a domain name
 * and write its lower-case form, as raw label bytes without the final
 * dot, to out.  "." is the root, written as "".  With escapes, name is in
 * presentation form (zone files, unbound's canonname): "\DDD" and "\X"
 * stand for one byte.  Without, every byte but the dot is itself (names
 * built by SPF macros may hold spaces).  An escaped dot or a NUL byte is
 * refused: the raw form could not tell it from a label boundary.  The
 * length checks count raw bytes, as the wire does (RFC 1035 2.3.4).
 */
static bool
tg_dns_name_norm(const char *name, size_t len, char *out, size_t outsz,
    bool escapes)
{
	size_t		i, n = 0, label = 0;
	unsigned int	c;

	if (len > 0 && name[len - 1] == '.' &&
	    (len < 2 || name[len - 2] != '\\'))
		len--;
	if (len == 0)
		return outsz > 0 && name[0] == '.' && (out[0] = '\0', true);
	for (i = 0; i < len; i++) {
		c = (unsigned char)name[i];
		if (escapes && c == '\\' && !tg_dns_unescape(name, len, &i, &c))
			return false;
		else if (c == '.' && (!escapes || name[i] == '.')) {
			if (label == 0)
				return false;
			label = 0;
			c = '.';
		} else if (c == 0 || c == '.' || ++label > TG_DNS_MAX_LABEL)
			return false;
		if (n + 1 >= outsz || n >= TG_DNS_MAX_NAME)
			return false;
		out[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[n] = '\0';
	return label > 0;
}

/*
 * tg_dns_unescape - the escape at name[*i] ("\DDD" or "\X") as one byte
 * in *c; *i is left on its last character.
 */
static bool
tg_dns_unescape(const char *name, size_t len, size_t *i, unsigned int *c)
{
	size_t	j = *i + 1;

	if (j >= len)
		return false;
	if (!isdigit((unsigned char)name[j])) {
		*c = (unsigned char)name[j];
		*i = j;
		return *c != '.';	/* "\." is refused, see above */
	}
	if (j + 2 >= len || !isdigit((unsigned char)name[j + 1]) ||
	    !isdigit((unsigned char)name[j + 2]))
		return false;
	*c = (unsigned int)(name[j] - '0') * 100 +
	    (unsigned int)(name[j + 1] - '0') * 10 +
	    (unsigned int)(name[j + 2] - '0');
	*i = j + 2;
	return *c <= 255 && *c != '.';
}

/*
 * tg_dns_name_escape - a normalized name in the presentation form unbound
 * reads: bytes other than letters, digits, '-', '_' and the dots between
 * labels as "\DDD".  out must hold 4 * TG_DNS_MAX_NAME + 2 bytes.
 */
static void
tg_dns_name_escape(const char *norm, char *out, size_t outsz)
{
	const unsigned char	*p;
	size_t			 n = 0;

	for (p = (const unsigned char *)norm; *p != '\0' && n + 5 < outsz;
	    p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.')
			out[n++] = (char)*p;
		else
			n += (size_t)snprintf(out + n, outsz - n, "\\%03u", *p);
	}
	out[n] = '\0';
}

/* tg_dns_type_name - "A", "TXT"... or "TYPE99", for messages */
static const char *
tg_dns_type_name(int type, char *buf, size_t bufsz)
{
	static const struct {
		int		 type;
		const char	*name;
	} names[] = {
		{ TG_DNS_A, "A" }, { TG_DNS_NS, "NS" },
		{ TG_DNS_CNAME, "CNAME" }, { TG_DNS_SOA, "SOA" },
		{ TG_DNS_PTR, "PTR" }, { TG_DNS_MX, "MX" },
		{ TG_DNS_TXT, "TXT" }, { TG_DNS_AAAA, "AAAA" },
	};
	size_t	i;
	int	n;

	for (i = 0; i < TG_NITEMS(names); i++)
		if (names[i].type == type)
			return names[i].name;
	n = snprintf(buf, bufsz, "TYPE%d", type);
	if (n < 0 || (size_t)n >= bufsz)
		return "TYPE?";
	return buf;
}

/* tg_dns_token - the next blank-separated token of *p, or NULL */
static const char *
tg_dns_token(const char **p, size_t *len)
{
	const char	*s = *p;

	s += strspn(s, " \t\r\n");
	if (*s == '\0')
		return NULL;
	*len = strcspn(s, " \t\r\n");
	*p = s + *len;
	return s;
}

/* tg_dns_new - make the resolver; see dns.h */
struct tg_dns *
tg_dns_new(const struct tg_dns_conf *conf, struct tg_err *err)
{
	struct tg_dns	*dns;

	if (conf->timeout <= 0) {
		(void)tg_err_set(err, TG_PERM, "dns: timeout must be positive");
		return NULL;
	}
	dns = tg_calloc(1, sizeof(*dns));
	dns->wake[0] = dns->wake[1] = -1;
	dns->timeout = conf->timeout;
	dns->offline = conf->offline;
	if (pthread_mutex_init(&dns->lock, NULL) != 0 ||
	    pthread_condattr_init(&dns->condattr) != 0 ||
	    pthread_condattr_setclock(&dns->condattr, CLOCK_MONOTONIC) != 0)
		TG_PANIC("dns: cannot set up locks");
	if ((dns->ctx = ub_ctx_create()) == NULL) {
		(void)tg_err_set(err, TG_TEMP, "dns: cannot create resolver");
		return tg_dns_free(dns);
	}
	if (tg_dns_configure(dns, conf, err) != TG_OK)
		return tg_dns_free(dns);
	if (conf->local_data != NULL && conf->local_data[0] != '\0' &&
	    tg_dns_load(dns, conf->local_data, err) != TG_OK)
		return tg_dns_free(dns);
	if (tg_dns_spawn(dns, err) != TG_OK)
		return tg_dns_free(dns);
	return dns;
}

/* tg_dns_set - one unbound option, "name:" and value */
static enum tg_status
tg_dns_set(struct tg_dns *dns, const char *opt, const char *val,
    struct tg_err *err)
{
	int	r;

	if ((r = ub_ctx_set_option(dns->ctx, opt, val)) != 0)
		return tg_err_set(err, TG_PERM, "dns: option %s %s: %s", opt,
		    val, ub_strerror(r));
	return TG_OK;
}

/*
 * tg_dns_configure - threads, no validator, and where queries go.
 * Offline, the iterator may query no address at all, so even a name that
 * slips past the local zones fails at once and nothing leaves the host.
 */
static enum tg_status
tg_dns_configure(struct tg_dns *dns, const struct tg_dns_conf *conf,
    struct tg_err *err)
{
	int	r;

	if ((r = ub_ctx_async(dns->ctx, 1)) != 0)
		return tg_err_set(err, TG_TEMP, "dns: threads: %s",
		    ub_strerror(r));
	/* No trust anchors: the validator would only cost time. */
	if (tg_dns_set(dns, "module-config:", "iterator", err) != TG_OK)
		return TG_PERM;
	if (dns->offline) {
		if (tg_dns_set(dns, "do-not-query-address:", "0.0.0.0/0",
		    err) != TG_OK)
			return TG_PERM;
		return tg_dns_set(dns, "do-not-query-address:", "::/0", err);
	}
	if (conf->forwarders != NULL && conf->forwarders[0] != '\0')
		return tg_dns_forward(dns, conf->forwarders, err);
	if ((r = ub_ctx_resolvconf(dns->ctx, conf->resolv_conf)) != 0)
		return tg_err_set(err, TG_PERM, "dns: %s: %s",
		    conf->resolv_conf != NULL ? conf->resolv_conf :
		    "/etc/resolv.conf", ub_strerror(r));
	/* resolv.conf may name a local stub, or none (then 127.0.0.1). */
	return tg_dns_set(dns, "do-not-query-localhost:", "no", err);
}

/* tg_dns_forward - send every query to the space-separated addresses */
static enum tg_status
tg_dns_forward(struct tg_dns *dns, const char *list, struct tg_err *err)
{
	const char	*tok;
	char		*addr;
	size_t		 len;
	int		 r;

	while ((tok = tg_dns_token(&list, &len)) != NULL) {
		addr = tg_strndup(tok, len);
		r = ub_ctx_set_fwd(dns->ctx, addr);
		if (r != 0)
			(void)tg_err_set(err, TG_PERM,
			    "dns: bad forwarder \"%s\": %s", addr,
			    ub_strerror(r));
		free(addr);
		if (r != 0)
			return TG_PERM;
	}
	/* unbound refuses loopback servers unless told; ours are chosen. */
	return tg_dns_set(dns, "do-not-query-localhost:", "no", err);
}

/*
 * tg_dns_spawn - start the dispatcher with every signal blocked, so that
 * signals go to the threads the daemon chose (libmilter's sigwait).
 */
static enum tg_status
tg_dns_spawn(struct tg_dns *dns, struct tg_err *err)
{
	sigset_t	all, old;
	int		r;

	if (pipe2(dns->wake, O_CLOEXEC) == -1)
		return tg_err_set(err, TG_TEMP, "dns: pipe: %s",
		    strerror(errno));
	(void)sigfillset(&all);
	if ((r = pthread_sigmask(SIG_BLOCK, &all, &old)) != 0)
		TG_PANIC("dns: pthread_sigmask: %s", strerror(r));
	r = pthread_create(&dns->thread, NULL, tg_dns_dispatch, dns);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return tg_err_set(err, TG_TEMP, "dns: thread: %s",
		    strerror(r));
	dns->thread_started = true;
	return TG_OK;
}

/* tg_dns_dispatch - run unbound's callbacks until told to stop */
static void *
tg_dns_dispatch(void *arg)
{
	struct tg_dns	*dns = arg;
	struct pollfd	 pfd[2];
	int		 r;

	memset(pfd, 0, sizeof(pfd));
	pfd[0].fd = ub_fd(dns->ctx);
	pfd[0].events = POLLIN;
	pfd[1].fd = dns->wake[0];
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			tg_log_err(NULL, "dns: poll");
			return NULL;
		}
		if (pfd[1].revents != 0)
			return NULL;
		if (pfd[0].revents != 0 && (r = ub_process(dns->ctx)) != 0) {
			/* Queries now end at their deadlines. */
			tg_log_errx(NULL, "dns: ub_process: %s",
			    ub_strerror(r));
			return NULL;
		}
	}
}

/* tg_dns_free - stop the dispatcher, then unbound, then free the rest */
struct tg_dns *
tg_dns_free(struct tg_dns *dns)
{
	struct tg_dns_query	*q;
	size_t			 i;
	int			 r;

	if (dns == NULL)
		return NULL;
	if (dns->thread_started) {
		while (write(dns->wake[1], "x", 1) == -1 && errno == EINTR)
			continue;
		if ((r = pthread_join(dns->thread, NULL)) != 0)
			TG_PANIC("dns: pthread_join: %s", strerror(r));
	}
	for (i = 0; i < 2; i++)
		if (dns->wake[i] != -1)
			(void)close(dns->wake[i]);
	/* No callback runs any more, so abandoned queries are ours. */
	if (dns->ctx != NULL)
		ub_ctx_delete(dns->ctx);
	if (dns->scratch != NULL)
		ub_ctx_delete(dns->scratch);
	while ((q = dns->abandoned) != NULL) {
		dns->abandoned = q->next;
		tg_dns_query_destroy(q);
	}
	tg_dns_strv_fini(&dns->data);
	tg_dns_strv_fini(&dns->owners);
	tg_dns_strv_fini(&dns->zones);
	for (i = 0; i < dns->nfails; i++)
		free(dns->fails[i].name);
	free(dns->fails);
	(void)pthread_condattr_destroy(&dns->condattr);
	(void)pthread_mutex_destroy(&dns->lock);
	free(dns);
	return NULL;
}

/* tg_dns_load - every line of a local data file; see dns.h */
enum tg_status
tg_dns_load(struct tg_dns *dns, const char *path, struct tg_err *err)
{
	struct tg_err	 lerr;
	enum tg_status	 st;
	char		*text, *line, *eol;
	size_t		 lineno;

	/* A missing file is a configuration error, not a "no such thing". */
	if (tg_read_file(path, &text, NULL, err) != TG_OK) {
		if (err != NULL)
			err->status = TG_PERM;
		return TG_PERM;
	}
	st = TG_OK;
	for (line = text, lineno = 1; line != NULL; lineno++) {
		if ((eol = strchr(line, '\n')) != NULL)
			*eol++ = '\0';
		if ((st = tg_dns_load_line(dns, line, &lerr)) != TG_OK) {
			(void)tg_err_set(err, st, "%s:%zu: %s", path, lineno,
			    lerr.text);
			break;
		}
		line = eol;
	}
	free(text);
	return st;
}

/* tg_dns_load_line - one line of local data; see dns.h */
enum tg_status
tg_dns_load_line(struct tg_dns *dns, const char *line, struct tg_err *err)
{
	enum tg_status	 st;
	bool		 committed;
	char		*copy, *s;

	tg_dns_lock(dns);
	committed = dns->committed;
	tg_dns_unlock(dns);
	if (committed)
		return tg_err_set(err, TG_PERM,
		    "local data must be loaded before the first query");
	copy = tg_strdup(line);
	s = tg_trim(copy);
	if (*s == '\0' || *s == ';' || *s == '#')
		st = TG_OK;
	else if (*s == '$')
		st = tg_dns_add_fail(dns, s, err);
	else
		st = tg_dns_add_record(dns, s, err);
	free(copy);
	return st;
}

/* tg_dns_add_fail - "$TIMEOUT name." or "$SERVFAIL name." */
static enum tg_status
tg_dns_add_fail(struct tg_dns *dns, const char *line, struct tg_err *err)
{
	enum tg_dns_fail_kind	 kind;
	const char		*p = line, *dir, *name;
	size_t			 dlen = 0, nlen = 0, junk;
	char			 norm[TG_DNS_MAX_NAME + 1];

	dir = tg_dns_token(&p, &dlen);
	if (dlen == 8 && tg_strncasecmp(dir, "$TIMEOUT", 8) == 0)
		kind = TG_DNS_FAIL_TIMEOUT;
	else if (dlen == 9 && tg_strncasecmp(dir, "$SERVFAIL", 9) == 0)
		kind = TG_DNS_FAIL_SERVFAIL;
	else
		return tg_err_set(err, TG_PERM, "unknown directive \"%.*s\"",
		    (int)(dlen > 40 ? 40 : dlen), dir);
	if ((name = tg_dns_token(&p, &nlen)) == NULL ||
	    tg_dns_token(&p, &junk) != NULL ||
	    !tg_dns_name_norm(name, nlen, norm, sizeof(norm), true))
		return tg_err_set(err, TG_PERM,
		    "\"%.80s\": want one valid name after %.*s", line,
		    (int)dlen, dir);
	dns->fails = tg_reallocarray(dns->fails, dns->nfails + 1,
	    sizeof(*dns->fails));
	dns->fails[dns->nfails].name = tg_strdup(norm);
	dns->fails[dns->nfails].kind = kind;
	dns->nfails++;
	return TG_OK;
}

/*
 * tg_dns_add_record - one resource record.  unbound's own parser checks
 * it, on a scratch context; the real one gets it at commit.
 */
static enum tg_status
tg_dns_add_record(struct tg_dns *dns, const char *line, struct tg_err *err)
{
	const char	*p = line, *owner;
	size_t		 olen;
	char		 norm[TG_DNS_MAX_NAME + 1];
	bool		 soa;

	if (dns->scratch == NULL && (dns->scratch = ub_ctx_create()) == NULL)
		return tg_err_set(err, TG_TEMP, "cannot create a resolver");
	owner = tg_dns_token(&p, &olen);
	if (owner == NULL ||
	    !tg_dns_name_norm(owner, olen, norm, sizeof(norm), true))
		return tg_err_set(err, TG_PERM, "\"%.80s\": bad owner name",
		    line);
	if (!tg_dns_record_check(line, &soa) ||
	    ub_ctx_data_add(dns->scratch, line) != 0)
		return tg_err_set(err, TG_PERM,
		    "\"%.80s\": not a resource record unbound can read", line);
	tg_dns_strv_push(&dns->data, tg_strdup(line));
	tg_dns_strv_push(&dns->owners, tg_strdup(norm));
	if (soa)
		tg_dns_strv_push(&dns->zones, tg_strdup(norm));
	return TG_OK;
}

/*
 * tg_dns_record_check - "owner [ttl] [class] type rdata": is the type
 * SOA?  false when the rdata is missing or a quote is left open, which
 * unbound's parser lets through.
 */
static bool
tg_dns_record_check(const char *line, bool *soa)
{
	static const char *const classes[] = { "IN", "CH", "HS", "CS" };
	const char	*p = line, *tok;
	size_t		 len, i, n;
	bool		 skip, quoted = false;

	for (i = 0; line[i] != '\0'; i++)
		if (line[i] == '\\' && line[i + 1] != '\0')
			i++;
		else if (line[i] == '"')
			quoted = !quoted;
	(void)tg_dns_token(&p, &len);
	for (n = 0; !quoted && n < 3 &&
	    (tok = tg_dns_token(&p, &len)) != NULL; n++) {
		skip = isdigit((unsigned char)tok[0]) != 0;
		for (i = 0; i < TG_NITEMS(classes); i++)
			if (len == 2 && tg_strncasecmp(tok, classes[i], 2) == 0)
				skip = true;
		if (skip)
			continue;
		*soa = len == 3 && tg_strncasecmp(tok, "SOA", 3) == 0;
		return tg_dns_token(&p, &len) != NULL;
	}
	return false;
}

/* tg_dns_fail_find - the $ line for a normalized name, or NULL */
static const struct tg_dns_fail *
tg_dns_fail_find(const struct tg_dns *dns, const char *norm)
{
	size_t	i;

	for (i = 0; i < dns->nfails; i++)
		if (strcmp(dns->fails[i].name, norm) == 0)
			return &dns->fails[i];
	return NULL;
}

/* tg_dns_covered - is a normalized name at or under a SOA zone? */
static bool
tg_dns_covered(const struct tg_dns *dns, const char *name)
{
	size_t	i, nlen = strlen(name), zlen;

	for (i = 0; i < dns->zones.n; i++) {
		zlen = strlen(dns->zones.v[i]);
		if (zlen == 0 || strcmp(name, dns->zones.v[i]) == 0)
			return true;
		if (nlen > zlen && name[nlen - zlen - 1] == '.' &&
		    strcmp(name + nlen - zlen, dns->zones.v[i]) == 0)
			return true;
	}
	return false;
}

/*
 * tg_dns_commit - hand the local data to unbound, once, before the first
 * query.  Called with dns->lock held.
 */
static enum tg_status
tg_dns_commit(struct tg_dns *dns)
{
	struct tg_err	*err = &dns->commit_err;
	size_t		 i;

	if (dns->committed)
		return err->status;
	dns->committed = true;
	err->status = TG_OK;
	if (dns->scratch != NULL)
		ub_ctx_delete(dns->scratch);
	dns->scratch = NULL;
	tg_dns_strv_sort(&dns->zones);
	if (tg_dns_commit_zones(dns, err) != TG_OK)
		return err->status;
	for (i = 0; i < dns->data.n; i++)
		if (tg_dns_set(dns, "local-data:", dns->data.v[i], err) !=
		    TG_OK)
			return err->status = TG_TEMP;
	tg_dns_strv_fini(&dns->data);
	tg_dns_strv_fini(&dns->owners);
	tg_dns_strv_fini(&dns->zones);
	return TG_OK;
}

/*
 * tg_dns_commit_zones - a static zone per SOA.  Offline, the root zone
 * refuses what the data does not list, and each listed name outside the
 * SOA zones becomes a transparent zone: other types then answer NODATA,
 * as a refuse zone would not, while names below it reach the iterator,
 * which may query nobody and fails at once.
 */
static enum tg_status
tg_dns_commit_zones(struct tg_dns *dns, struct tg_err *err)
{
	struct tg_dns_strv	*zv = &dns->zones, *ov = &dns->owners;
	enum tg_status		 st = TG_OK;
	char			*val;
	size_t			 i;

	for (i = 0; i < zv->n && st == TG_OK; i++) {
		val = tg_printf_dup("%s. static", zv->v[i]);
		st = tg_dns_set(dns, "local-zone:", val, err);
		free(val);
	}
	if (!dns->offline || st != TG_OK)
		return st == TG_OK ? TG_OK : (err->status = TG_TEMP);
	/* Sorted, a root SOA comes first; it already covers everything. */
	if (zv->n == 0 || zv->v[0][0] != '\0')
		st = tg_dns_set(dns, "local-zone:", ". refuse", err);
	tg_dns_strv_sort(ov);
	for (i = 0; i < ov->n && st == TG_OK; i++) {
		if (ov->v[i][0] == '\0' || tg_dns_covered(dns, ov->v[i]))
			continue;
		val = tg_printf_dup("%s. transparent", ov->v[i]);
		st = tg_dns_set(dns, "local-zone:", val, err);
		free(val);
	}
	return st == TG_OK ? TG_OK : (err->status = TG_TEMP);
}

/* tg_dns_start - start a query; see dns.h */
struct tg_dns_query *
tg_dns_start(struct tg_dns *dns, const char *name, int type)
{
	struct tg_dns_query		*q;
	const struct tg_dns_fail	*fail;
	char				 norm[TG_DNS_MAX_NAME + 1];

	q = tg_calloc(1, sizeof(*q));
	q->dns = dns;
	q->name = tg_strdup(name != NULL ? name : "");
	q->type = type;
	if (pthread_cond_init(&q->cond, &dns->condattr) != 0 ||
	    clock_gettime(CLOCK_MONOTONIC, &q->deadline) == -1)
		TG_PANIC("dns: cannot set up a query");
	q->started = q->deadline;
	q->deadline.tv_sec += dns->timeout;
	if (!tg_dns_name_norm(q->name, strlen(q->name), norm, sizeof(norm),
	    false))
		tg_dns_done(q, TG_PERM, "malformed name", NULL);
	else if (type < 1 || type > 65535)
		tg_dns_done(q, TG_PERM, "bad query type", NULL);
	else if ((fail = tg_dns_fail_find(dns, norm)) != NULL)
		tg_dns_done(q, TG_TEMP, fail->kind == TG_DNS_FAIL_TIMEOUT ?
		    "timeout (local data)" : "servfail (local data)", NULL);
	else {
		tg_dns_lock(dns);
		if (tg_dns_commit(dns) != TG_OK)
			tg_dns_done(q, dns->commit_err.status, "local data",
			    dns->commit_err.text);
		else
			tg_dns_submit(q, norm);
		tg_dns_unlock(dns);
	}
	return q;
}

/* tg_dns_done - end q with a status and "name TYPE: why[: detail]" */
static void
tg_dns_done(struct tg_dns_query *q, enum tg_status st, const char *why,
    const char *detail)
{
	char	tbuf[16];

	q->status = tg_err_set(&q->err, st, "%s %s: %s%s%s", q->name,
	    tg_dns_type_name(q->type, tbuf, sizeof(tbuf)), why,
	    detail != NULL ? ": " : "", detail != NULL ? detail : "");
	q->done = true;
	(void)pthread_cond_signal(&q->cond);
}

/* tg_dns_submit - hand q to unbound under a normalized name; lock held */
static void
tg_dns_submit(struct tg_dns_query *q, const char *norm)
{
	char	name[4 * TG_DNS_MAX_NAME + 2];
	int	r;

	tg_dns_name_escape(norm, name, sizeof(name));
	r = ub_resolve_async(q->dns->ctx, name, q->type, TG_DNS_CLASS_IN, q,
	    tg_dns_callback, &q->async_id);
	if (r != 0)
		tg_dns_done(q, r == UB_SYNTAX ? TG_PERM : TG_TEMP, "resolver",
		    ub_strerror(r));
}

/*
 * tg_dns_callback - an answer from unbound, on the dispatcher thread.
 * It takes dns->lock with no unbound lock held.
 */
static void
tg_dns_callback(void *arg, int ub_err, struct ub_result *res)
{
	struct tg_dns_query	*q = arg;
	struct tg_dns		*dns = q->dns;

	tg_dns_lock(dns);
	if (q->abandoned) {
		if (q->prev != NULL)
			q->prev->next = q->next;
		else
			dns->abandoned = q->next;
		if (q->next != NULL)
			q->next->prev = q->prev;
		tg_dns_query_destroy(q);
	} else if (ub_err == 0 && tg_dns_chain_open(q, res))
		tg_dns_follow(q, res);
	else {
		q->status = tg_dns_result(q, ub_err, res);
		q->done = true;
		(void)pthread_cond_signal(&q->cond);
	}
	tg_dns_unlock(dns);
	ub_resolve_free(res);
}

/*
 * tg_dns_chain_open - did unbound stop at a CNAME?  It does so for local
 * data; after a real server's chain, the target just answers again.
 */
static bool
tg_dns_chain_open(const struct tg_dns_query *q, const struct ub_result *res)
{
	return res->rcode == TG_DNS_RCODE_NOERROR && !res->havedata &&
	    q->type != TG_DNS_CNAME && res->canonname != NULL &&
	    res->qname != NULL &&
	    tg_strcasecmp(res->canonname, res->qname) != 0;
}

/* tg_dns_follow - ask again for the CNAME target; dns->lock held */
static void
tg_dns_follow(struct tg_dns_query *q, const struct ub_result *res)
{
	const struct tg_dns_fail	*fail;
	char				 norm[TG_DNS_MAX_NAME + 1];
	uint32_t			 ttl;

	ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
	if (q->hops == 0 || ttl < q->chain_ttl)
		q->chain_ttl = ttl;
	if (++q->hops > TG_DNS_MAX_HOPS)
		tg_dns_done(q, TG_TEMP, "cname chain too long", NULL);
	else if (!tg_dns_name_norm(res->canonname, strlen(res->canonname),
	    norm, sizeof(norm), true))
		tg_dns_done(q, TG_TEMP, "bad cname target", NULL);
	else if ((fail = tg_dns_fail_find(q->dns, norm)) != NULL)
		tg_dns_done(q, TG_TEMP, fail->kind == TG_DNS_FAIL_TIMEOUT ?
		    "timeout (local data)" : "servfail (local data)", NULL);
	else
		tg_dns_submit(q, norm);
}

/* tg_dns_result - status and answer of q from unbound's result */
static enum tg_status
tg_dns_result(struct tg_dns_query *q, int ub_err, const struct ub_result *res)
{
	char	tbuf[16];

	if (ub_err != 0) {
		tg_dns_done(q, ub_err == UB_SYNTAX ? TG_PERM : TG_TEMP,
		    "resolver", ub_strerror(ub_err));
		return q->status;
	}
	switch (res->rcode) {
	case TG_DNS_RCODE_NOERROR:
	case TG_DNS_RCODE_NXDOMAIN:
		q->ans = tg_dns_answer_new(res, q->type);
		if (q->hops > 0 && q->chain_ttl < q->ans->ttl)
			q->ans->ttl = q->chain_ttl;
		if (q->ans->count > 0)
			return TG_OK;
		tg_dns_done(q, TG_NOTFOUND, res->rcode ==
		    TG_DNS_RCODE_NXDOMAIN ? "nxdomain" : "nodata", NULL);
		return TG_NOTFOUND;
	case TG_DNS_RCODE_SERVFAIL:
	case TG_DNS_RCODE_REFUSED:
		/* Offline, only names the local data misses get these. */
		if (q->dns->offline)
			tg_dns_done(q, TG_TEMP,
			    "offline: name not in local data", NULL);
		else
			tg_dns_done(q, TG_TEMP, res->rcode ==
			    TG_DNS_RCODE_SERVFAIL ? "servfail" : "refused",
			    NULL);
		return TG_TEMP;
	default:
		(void)tg_err_set(&q->err, TG_TEMP, "%s %s: rcode %d", q->name,
		    tg_dns_type_name(q->type, tbuf, sizeof(tbuf)), res->rcode);
		return TG_TEMP;
	}
}

/* tg_dns_answer_new - copy the records of type and the packet */
static struct tg_dns_answer *
tg_dns_answer_new(const struct ub_result *res, int type)
{
	struct tg_dns_answer	*ans;
	size_t			 i, n = 0;

	ans = tg_calloc(1, sizeof(*ans));
	ans->rcode = res->rcode;
	ans->qtype = type;
	while (res->havedata && res->data[n] != NULL)
		n++;
	if (n > 0) {
		ans->rdata = tg_calloc(n, sizeof(*ans->rdata));
		ans->rdlen = tg_calloc(n, sizeof(*ans->rdlen));
	}
	for (i = 0; i < n; i++) {
		ans->rdlen[i] = res->len[i] > 0 ? (size_t)res->len[i] : 0;
		ans->rdata[i] = tg_malloc(ans->rdlen[i] + 1);
		memcpy(ans->rdata[i], res->data[i], ans->rdlen[i]);
	}
	ans->count = n;
	if (res->answer_packet != NULL && res->answer_len > 0) {
		ans->packet_len = (size_t)res->answer_len;
		ans->packet = tg_malloc(ans->packet_len);
		memcpy(ans->packet, res->answer_packet, ans->packet_len);
	}
	if (!tg_dns_packet_ttl(ans->packet, ans->packet_len, type, n > 0,
	    &ans->ttl))
		ans->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
	return ans;
}

/* tg_dns_metrics - count an answered query and its time by type */
static void
tg_dns_metrics(const struct tg_dns_query *q, enum tg_status st)
{
	const char	*type;
	char		 tbuf[16];

	type = tg_dns_type_name(q->type, tbuf, sizeof(tbuf));
	tg_metric_inc(TG_M_DNS_QUERIES, type, tg_status_name(st));
	tg_metric_since(TG_M_DNS_SECONDS, type, &q->started);
}

/* tg_dns_wait - the answer, or a timeout at the deadline; see dns.h */
enum tg_status
tg_dns_wait(struct tg_dns_query *q, struct tg_dns_answer **ansp,
    struct tg_err *err)
{
	struct tg_dns		*dns;
	struct tg_dns_answer	*ans = NULL;
	enum tg_status		 st;
	bool			 mine = true;
	int			 r;

	if (q == NULL)
		TG_PANIC("dns: wait on no query");
	dns = q->dns;
	tg_dns_lock(dns);
	while (!q->done) {
		r = pthread_cond_timedwait(&q->cond, &dns->lock, &q->deadline);
		if (r == ETIMEDOUT)
			break;
		if (r != 0)
			TG_PANIC("dns: cond_timedwait: %s", strerror(r));
	}
	if (!q->done) {
		tg_dns_done(q, TG_TEMP, "timeout", NULL);
		mine = tg_dns_drop(q);
	}
	st = q->status;
	ans = q->ans;
	q->ans = NULL;
	if (st != TG_OK && err != NULL)
		*err = q->err;
	tg_dns_log(q, st, ans, q->err.text);
	tg_dns_metrics(q, st);
	tg_dns_unlock(dns);
	if (mine)
		tg_dns_query_destroy(q);
	if (st != TG_OK && st != TG_NOTFOUND)
		ans = tg_dns_answer_free(ans);
	if (ansp != NULL)
		*ansp = ans;
	else
		(void)tg_dns_answer_free(ans);
	return st;
}

/*
 * tg_dns_drop - stop caring for q, which unbound still holds; true if it
 * is ours to free.  ub_cancel fails once ub_process has taken the answer
 * off its queue: the callback is then coming, and frees q.  dns->lock
 * held.
 */
static bool
tg_dns_drop(struct tg_dns_query *q)
{
	struct tg_dns	*dns = q->dns;

	if (ub_cancel(dns->ctx, q->async_id) == 0)
		return true;
	q->abandoned = true;
	q->prev = NULL;
	q->next = dns->abandoned;
	if (dns->abandoned != NULL)
		dns->abandoned->prev = q;
	dns->abandoned = q;
	return false;
}

/* tg_dns_cancel - forget a query never waited on; see dns.h */
void
tg_dns_cancel(struct tg_dns_query *q)
{
	struct tg_dns	*dns;
	bool		 mine = true;

	if (q == NULL)
		return;
	dns = q->dns;
	tg_dns_lock(dns);
	if (!q->done)
		mine = tg_dns_drop(q);
	tg_dns_unlock(dns);
	if (mine)
		tg_dns_query_destroy(q);
}

/* tg_dns_resolve - start and wait; see dns.h */
enum tg_status
tg_dns_resolve(struct tg_dns *dns, const char *name, int type,
    struct tg_dns_answer **ansp, struct tg_err *err)
{
	return tg_dns_wait(tg_dns_start(dns, name, type), ansp, err);
}

/* tg_dns_query_destroy - free a query no one else can reach */
static void
tg_dns_query_destroy(struct tg_dns_query *q)
{
	(void)tg_dns_answer_free(q->ans);
	(void)pthread_cond_destroy(&q->cond);
	free(q->name);
	free(q);
}

/* tg_dns_log - one debug line per query result */
static void
tg_dns_log(const struct tg_dns_query *q, enum tg_status st,
    const struct tg_dns_answer *ans, const char *why)
{
	char	tbuf[16];

	if (!tg_log_enabled(TG_LOG_DEBUG))
		return;
	if (st == TG_OK)
		tg_log_debug(NULL, "dns: name=%s type=%s result=ok count=%zu "
		    "ttl=%u", q->name, tg_dns_type_name(q->type, tbuf,
		    sizeof(tbuf)), ans->count, (unsigned int)ans->ttl);
	else
		tg_log_debug(NULL,
		    "dns: name=%s type=%s result=%s error=\"%s\"",
		    q->name, tg_dns_type_name(q->type, tbuf, sizeof(tbuf)),
		    tg_status_name(st), why);
}

/* tg_dns_answer_free - see dns.h */
struct tg_dns_answer *
tg_dns_answer_free(struct tg_dns_answer *ans)
{
	size_t	i;

	if (ans == NULL)
		return NULL;
	for (i = 0; i < ans->count; i++)
		free(ans->rdata[i]);
	free(ans->rdata);
	free(ans->rdlen);
	free(ans->packet);
	free(ans);
	return NULL;
}

/*
 * tg_dns_txt_join - see dns.h.  Empty rdata and a NUL inside a string
 * also count as malformed: the result could not say what the record says.
 */
char *
tg_dns_txt_join(const struct tg_dns_answer *ans, size_t i)
{
	const unsigned char	*rd;
	struct tg_buf		 b;
	size_t			 off, n, len;

	if (ans == NULL || i >= ans->count || ans->rdlen[i] == 0)
		return NULL;
	rd = ans->rdata[i];
	len = ans->rdlen[i];
	tg_buf_init(&b);
	for (off = 0; off < len; off += 1 + n) {
		n = rd[off];
		if (n > len - off - 1 ||
		    memchr(rd + off + 1, '\0', n) != NULL) {
			tg_buf_fini(&b);
			return NULL;
		}
		tg_buf_append(&b, rd + off + 1, n);
	}
	return tg_buf_steal(&b);
}

/* tg_dns_skip_name - step over a possibly compressed name at *off */
static bool
tg_dns_skip_name(const unsigned char *p, size_t len, size_t *off)
{
	size_t	o = *off;

	while (o < len) {
		if (p[o] == 0) {
			*off = o + 1;
			return true;
		}
		if ((p[o] & 0xc0) == 0xc0) {
			if (o + 2 > len)
				return false;
			*off = o + 2;
			return true;
		}
		if ((p[o] & 0xc0) != 0)
			return false;
		o += 1 + (size_t)p[o];
	}
	return false;
}

/* tg_dns_next_rr - the record at *off; RFC 2181 8: a TTL over 2^31 is 0 */
static bool
tg_dns_next_rr(const unsigned char *p, size_t len, size_t *off,
    struct tg_dns_rr *rr)
{
	size_t	o = *off;

	if (!tg_dns_skip_name(p, len, &o) || len - o < 10)
		return false;
	rr->type = (unsigned int)p[o] << 8 | p[o + 1];
	rr->ttl = (uint32_t)p[o + 4] << 24 | (uint32_t)p[o + 5] << 16 |
	    (uint32_t)p[o + 6] << 8 | p[o + 7];
	if (rr->ttl > INT32_MAX)
		rr->ttl = 0;
	rr->rdlen = (size_t)p[o + 8] << 8 | p[o + 9];
	rr->rdoff = o + 10;
	if (rr->rdlen > len - rr->rdoff)
		return false;
	*off = rr->rdoff + rr->rdlen;
	return true;
}

/*
 * tg_dns_packet_ttl - the smallest TTL of the answer's records of type
 * (and CNAMEs leading there); for a negative answer, RFC 2308 5: the
 * smaller of the SOA's TTL and its MINIMUM, or 0 without a SOA.
 */
static bool
tg_dns_packet_ttl(const unsigned char *p, size_t len, int type,
    bool positive, uint32_t *ttl)
{
	struct tg_dns_rr	rr;
	size_t			off = 12, i, o, an, ns, qd;
	uint32_t		min = UINT32_MAX, soamin;

	if (p == NULL || len < 12)
		return false;
	qd = (size_t)p[4] << 8 | p[5];
	an = (size_t)p[6] << 8 | p[7];
	ns = (size_t)p[8] << 8 | p[9];
	for (i = 0; i < qd; i++)
		if (!tg_dns_skip_name(p, len, &off) || len - off < 4)
			return false;
		else
			off += 4;
	for (i = 0; i < an; i++) {
		if (!tg_dns_next_rr(p, len, &off, &rr))
			return false;
		if (positive && (rr.type == (unsigned int)type ||
		    rr.type == TG_DNS_CNAME) && rr.ttl < min)
			min = rr.ttl;
	}
	for (i = 0; !positive && i < ns && min == UINT32_MAX; i++) {
		if (!tg_dns_next_rr(p, len, &off, &rr))
			return false;
		o = rr.rdoff;
		if (rr.type != TG_DNS_SOA || !tg_dns_skip_name(p, len, &o) ||
		    !tg_dns_skip_name(p, len, &o) ||
		    o + 20 > rr.rdoff + rr.rdlen)
			continue;
		soamin = (uint32_t)p[o + 16] << 24 |
		    (uint32_t)p[o + 17] << 16 | (uint32_t)p[o + 18] << 8 |
		    p[o + 19];
		min = soamin < rr.ttl ? soamin : rr.ttl;
	}
	*ttl = min == UINT32_MAX ? 0 : min;
	return true;
}
