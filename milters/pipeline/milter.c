/*
 * tollgate-milter - the libmilter glue and the daemon's main.
 *
 * This is the only file that includes libmilter's headers.  Each libmilter
 * callback maps to one pipeline stage; the connection's struct tg_ctx is
 * the milter private data.  We negotiate away every event and reply the
 * enabled modules do not need (each costs the MTA a round trip), and set
 * TCP_NODELAY on the listening socket so a reply never waits for the
 * MTA's delayed ACK.  libmilter runs each connection on its own thread.
 *
 * Signals.  libmilter's own signal thread stops the milter at once on
 * SIGHUP, SIGTERM or SIGINT.  We block those before any thread exists
 * and run smfi_main on a thread of its own, so the main thread, always
 * waiting in sigtimedwait, is the one the kernel hands them to (Linux
 * gives a process signal to the main thread when it can take it).
 * SIGHUP reloads by hand-over (handover.h, module.h): a reload thread
 * starts the successor and, once it has loaded the configuration, stops
 * our listener and lets it listen.  SIGTERM and SIGINT, and the end of a
 * hand-over, drain: the listener is closed, messages in flight get up to
 * [milter] drain_timeout to finish, then the process exits 0.
 *
 * Closing the listener cannot be smfi_stop: Debian's libmilter has the
 * worker pool (_FFR_WORKERS_POOL), whose controller and workers quit as
 * soon as smfi_stop is called, abandoning every session in flight.  Nor
 * shutdown(): the listener's poll would see POLLHUP and abort the milter.
 * So we put a pipe on the listener's descriptor (dup2).  A poll under
 * way still holds the old socket until it returns, so we make the pipe
 * readable once and connect to the old socket to wake the poll: it
 * returns, the listener's accept fails (one
 * "accept() ... try again" line from libmilter, then it sleeps a
 * second), the old socket closes with that last reference, we take the
 * byte back, and from then on the listener waits on a pipe that never
 * becomes readable.  The sessions go on as if nothing happened.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <pthread.h>
#include <time.h>

#include <libmilter/mfapi.h>

#include "pipeline_int.h"
#include "tollgate/buf.h"
#include "tollgate/daemon.h"
#include "tollgate/handover.h"
#include "tollgate/log.h"
#include "tollgate/metrics.h"


/* One MTA connection: our context plus what was negotiated. */
struct tg_conn {
	struct tg_ctx	*tg;
	SMFICTX		*smfi;
	unsigned long	 pflags;	/* protocol flags agreed */
	bool		 in_msg;	/* from MAIL to the message's end */
};

/* The process: what draining waits for, and the reload's progress. */
static struct {
	pthread_mutex_t		 lock;
	unsigned int		 conns;		/* connections */
	unsigned int		 inflight;	/* messages under way */
	bool			 smfi_done;	/* smfi_main returned */
	int			 smfi_rc;
	bool			 reloading;	/* reload thread runs */
	bool			 releasing;	/* it stops listening */
	bool			 stopping;	/* SIGTERM/SIGINT seen */
	bool			 handed;	/* a successor serves */
	bool			 lost;		/* successor failed */
	bool			 released;	/* listener closed */
	int			 listen_fd;	/* libmilter's, or -1 */
	int			 idle_fd;	/* the pipe's write end */
	struct sockaddr_storage	 addr;		/* the listener's, parked */
	socklen_t		 addrlen;
	struct stat		 sock_sb;	/* a unix socket's, parked */
	char *const		*argv;		/* for the successor */
	struct tg_metrics_http	*metrics;
} tg_run = { .lock = PTHREAD_MUTEX_INITIALIZER, .listen_fd = -1,
    .idle_fd = -1 };

/* tg_run_lock, tg_run_unlock - the process state's mutex */
static void
tg_run_lock(void)
{
	if (pthread_mutex_lock(&tg_run.lock) != 0)
		TG_PANIC("milter: run lock");
}

static void
tg_run_unlock(void)
{
	(void)pthread_mutex_unlock(&tg_run.lock);
}

/* tg_milter_msg_mark - the connection enters (on) or leaves a message */
static void
tg_milter_msg_mark(struct tg_conn *c, bool on)
{
	if (c->in_msg == on)
		return;
	c->in_msg = on;
	tg_run_lock();
	if (on)
		tg_run.inflight++;
	else
		tg_run.inflight--;
	tg_run_unlock();
}

/* tg_milter_macro - macro lookup for the pipeline */
static const char *
tg_milter_macro(void *arg, const char *name)
{
	struct tg_conn	*c = arg;

	return smfi_getsymval(c->smfi, (char *)name);
}

/* tg_milter_conn - the connection of a libmilter context */
static struct tg_conn *
tg_milter_conn(SMFICTX *smfi)
{
	struct tg_conn	*c = smfi_getpriv(smfi);

	if (c == NULL) {
		c = tg_calloc(1, sizeof(*c));
		c->tg = tg_ctx_new(tg_milter_macro, c);
		tg_metric_add(TG_M_MILTER_CONNS, NULL, NULL, 1);
		tg_run_lock();
		tg_run.conns++;
		tg_run_unlock();
		(void)smfi_setpriv(smfi, c);
	}
	c->smfi = smfi;
	return c;
}

/* tg_milter_want - protocol flag f if the MTA offered it */
static unsigned long
tg_milter_want(unsigned long offered, unsigned long f, bool cond)
{
	return cond ? (offered & f) : 0;
}

/* tg_milter_negotiate - ask only for the events modules need */
static sfsistat
tg_milter_negotiate(SMFICTX *smfi, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	struct tg_conn	*c = tg_milter_conn(smfi);
	unsigned long	 p = 0;

	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE);
	p |= tg_milter_want(f1, SMFIP_HDR_LEADSPC, true);
	p |= tg_milter_want(f1, SMFIP_NR_HDR, true);
	p |= tg_milter_want(f1, SMFIP_NR_BODY, true);
	p |= tg_milter_want(f1, SMFIP_NOUNKNOWN, true);
	/*
	 * Keep the DATA event, with its reply, although no module wants it.
	 * Postfix sends the DATA macros even under SMFIP_NODATA, on their own
	 * and with no reply to carry our ACK back; Nagle then holds the first
	 * header behind them until our delayed ACK fires, 40 ms per message.
	 */
	p |= tg_milter_want(f1, SMFIP_NOHELO,
	    !tg_pipeline_wants(TG_STAGE_HELO));
	p |= tg_milter_want(f1, SMFIP_NOBODY,
	    !tg_pipeline_wants(TG_STAGE_BODY));
	p |= tg_milter_want(f1, SMFIP_NR_CONN,
	    !tg_pipeline_wants(TG_STAGE_CONNECT));
	p |= tg_milter_want(f1, SMFIP_NR_MAIL,
	    !tg_pipeline_wants(TG_STAGE_ENVFROM));
	p |= tg_milter_want(f1, SMFIP_NR_RCPT,
	    !tg_pipeline_wants(TG_STAGE_ENVRCPT));
	/* the eoh verdict waits for eom (tg_stage_eoh): never a reply */
	p |= tg_milter_want(f1, SMFIP_NR_EOH, true);
	*pf1 = p;
	*pf2 = *pf3 = 0;
	c->pflags = p;
	return SMFIS_CONTINUE;
}

/* tg_milter_status - a stage verdict as libmilter's answer */
static sfsistat
tg_milter_status(struct tg_conn *c, enum tg_verdict v, unsigned long nr)
{
	const char	*rcode, *xcode, *text;
	bool		 rej = v == TG_REJECT;

	if (!tg_verdict_final(v))
		return (c->pflags & nr) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
	if (v == TG_ACCEPT)
		return SMFIS_ACCEPT;
	if (v == TG_DISCARD)
		return SMFIS_DISCARD;
	tg_ctx_get_reply(c->tg, &rcode, &xcode, &text);
	if (rcode == NULL || *rcode != (rej ? '5' : '4'))
		rcode = xcode = text = NULL;
	if (smfi_setreply(c->smfi, (char *)(rcode ? rcode : rej ? "550" : "451"),
	    (char *)(xcode ? xcode : rej ? "5.7.1" : "4.7.1"),
	    (char *)(text ? text : rej ? "message rejected" :
	    "try again later")) != MI_SUCCESS)
		tg_log_warnx(c->tg, "smfi_setreply failed");
	return rej ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

/* tg_milter_end_if_final - release the message if v ended it */
static sfsistat
tg_milter_msg_status(struct tg_conn *c, enum tg_verdict v, unsigned long nr)
{
	sfsistat	s = tg_milter_status(c, v, nr);

	if (tg_verdict_final(v)) {
		tg_stage_done(c->tg);
		tg_milter_msg_mark(c, false);
	}
	return s;
}

/* tg_milter_connect - xxfi_connect */
static sfsistat
tg_milter_connect(SMFICTX *smfi, char *host, _SOCK_ADDR *sa)
{
	struct tg_conn	*c = tg_milter_conn(smfi);
	char		 addr[INET6_ADDRSTRLEN] = "";
	const void	*src = NULL;

	if (sa != NULL && sa->sa_family == AF_INET)
		src = &((struct sockaddr_in *)(void *)sa)->sin_addr;
	else if (sa != NULL && sa->sa_family == AF_INET6)
		src = &((struct sockaddr_in6 *)(void *)sa)->sin6_addr;
	if (src != NULL && inet_ntop(sa->sa_family, src, addr,
	    sizeof(addr)) == NULL)
		src = NULL;
	return tg_milter_status(c, tg_stage_connect(c->tg, host,
	    src != NULL ? addr : NULL), SMFIP_NR_CONN);
}

/* tg_milter_helo - xxfi_helo */
static sfsistat
tg_milter_helo(SMFICTX *smfi, char *name)
{
	struct tg_conn	*c = tg_milter_conn(smfi);

	return tg_milter_status(c, tg_stage_helo(c->tg, name), SMFIP_NR_HELO);
}

/* tg_milter_envfrom - xxfi_envfrom */
static sfsistat
tg_milter_envfrom(SMFICTX *smfi, char **argv)
{
	struct tg_conn	*c = tg_milter_conn(smfi);

	tg_milter_msg_mark(c, true);
	return tg_milter_msg_status(c, tg_stage_envfrom(c->tg, argv[0]),
	    SMFIP_NR_MAIL);
}

/* tg_milter_envrcpt - xxfi_envrcpt; a refusal is for this rcpt only */
static sfsistat
tg_milter_envrcpt(SMFICTX *smfi, char **argv)
{
	struct tg_conn	*c = tg_milter_conn(smfi);
	enum tg_verdict	 v;

	v = tg_stage_envrcpt(c->tg, argv[0]);
	if (v == TG_REJECT || v == TG_TEMPFAIL)
		return tg_milter_status(c, v, SMFIP_NR_RCPT);
	return tg_milter_msg_status(c, v, SMFIP_NR_RCPT);
}

/* tg_milter_header - xxfi_header; keeps the leading space */
static sfsistat
tg_milter_header(SMFICTX *smfi, char *name, char *value)
{
	struct tg_conn	*c = tg_milter_conn(smfi);
	char		*v = NULL;

	if (!(c->pflags & SMFIP_HDR_LEADSPC))
		v = tg_printf_dup(" %s", value);
	(void)tg_stage_header(c->tg, name, v != NULL ? v : value);
	free(v);
	return (c->pflags & SMFIP_NR_HDR) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* tg_milter_eoh - xxfi_eoh */
static sfsistat
tg_milter_eoh(SMFICTX *smfi)
{
	struct tg_conn	*c = tg_milter_conn(smfi);

	return tg_milter_msg_status(c, tg_stage_eoh(c->tg), SMFIP_NR_EOH);
}

/* tg_milter_body - xxfi_body */
static sfsistat
tg_milter_body(SMFICTX *smfi, unsigned char *p, size_t n)
{
	struct tg_conn	*c = tg_milter_conn(smfi);

	(void)tg_stage_body(c->tg, p, n);
	return (c->pflags & SMFIP_NR_BODY) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* tg_milter_value - a header value as the MTA wants it: LF folds only,
 * and a leading space when we agreed to see (and so send) it */
static char *
tg_milter_value(const struct tg_conn *c, const char *value)
{
	struct tg_buf	 b;
	const char	*p;

	tg_buf_init(&b);
	if (c->pflags & SMFIP_HDR_LEADSPC)
		tg_buf_putc(&b, ' ');
	for (p = value; *p != '\0'; p++)
		if (*p != '\r')
			tg_buf_putc(&b, *p);
	return tg_buf_steal(&b);
}

/* tg_milter_apply_one - one header edit through libmilter */
static void
tg_milter_apply_one(struct tg_conn *c, const struct tg_edit *e)
{
	char	*v;
	int	 r = MI_SUCCESS;

	v = e->value != NULL ? tg_milter_value(c, e->value) : NULL;
	switch (e->kind) {
	case TG_EDIT_ADD:
		r = smfi_addheader(c->smfi, (char *)e->name, v);
		break;
	case TG_EDIT_PREPEND:
		r = smfi_insheader(c->smfi, 0, (char *)e->name, v);
		break;
	case TG_EDIT_DELETE:
		r = smfi_chgheader(c->smfi, (char *)e->name, (int)e->index,
		    NULL);
		break;
	}
	free(v);
	if (r != MI_SUCCESS)
		tg_log_warnx(c->tg, "header edit failed: %s", e->name);
}

/*
 * tg_milter_apply - the pipeline's header edits.  Deletions go first and
 * from the highest index down: an index names the n-th header of the
 * received message, and Postfix counts the headers as they stand, so an
 * earlier deletion or a header inserted above would shift the rest.
 */
static void
tg_milter_apply(struct tg_conn *c)
{
	const struct tg_edit	*e;
	size_t			 n, i;

	n = tg_ctx_edits(c->tg, &e);
	for (i = n; i > 0; i--)
		if (e[i - 1].kind == TG_EDIT_DELETE)
			tg_milter_apply_one(c, &e[i - 1]);
	for (i = 0; i < n; i++)
		if (e[i].kind != TG_EDIT_DELETE)
			tg_milter_apply_one(c, &e[i]);
}

/* tg_milter_eom - xxfi_eom: decide, edit, answer */
static sfsistat
tg_milter_eom(SMFICTX *smfi)
{
	struct tg_conn	*c = tg_milter_conn(smfi);
	enum tg_verdict	 v;
	const char	*why;
	sfsistat	 s;

	v = tg_stage_eom(c->tg);
	if (v == TG_ACCEPT || v == TG_QUARANTINE) {
		tg_milter_apply(c);
		if (tg_ctx_quarantined(c->tg, &why) &&
		    smfi_quarantine(smfi, (char *)why) != MI_SUCCESS)
			tg_log_warnx(c->tg, "smfi_quarantine failed");
	}
	s = tg_milter_status(c, v == TG_QUARANTINE ? TG_ACCEPT : v, 0);
	tg_stage_done(c->tg);
	tg_milter_msg_mark(c, false);
	return s;
}

/* tg_milter_abort - xxfi_abort */
static sfsistat
tg_milter_abort(SMFICTX *smfi)
{
	struct tg_conn	*c = tg_milter_conn(smfi);

	tg_stage_abort(c->tg);
	tg_milter_msg_mark(c, false);
	return SMFIS_CONTINUE;
}

/* tg_milter_close - xxfi_close */
static sfsistat
tg_milter_close(SMFICTX *smfi)
{
	struct tg_conn	*c = smfi_getpriv(smfi);

	if (c != NULL) {
		c->tg = tg_ctx_free(c->tg);
		tg_milter_msg_mark(c, false);
		tg_run_lock();
		tg_run.conns--;
		tg_run_unlock();
		tg_metric_add(TG_M_MILTER_CONNS, NULL, NULL, -1);
		free(c);
		(void)smfi_setpriv(smfi, NULL);
	}
	return SMFIS_CONTINUE;
}

static struct smfiDesc tg_milter_desc = {
	.xxfi_name = "tollgate",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE,
	.xxfi_connect = tg_milter_connect,
	.xxfi_helo = tg_milter_helo,
	.xxfi_envfrom = tg_milter_envfrom,
	.xxfi_envrcpt = tg_milter_envrcpt,
	.xxfi_header = tg_milter_header,
	.xxfi_eoh = tg_milter_eoh,
	.xxfi_body = tg_milter_body,
	.xxfi_eom = tg_milter_eom,
	.xxfi_abort = tg_milter_abort,
	.xxfi_close = tg_milter_close,
	.xxfi_negotiate = tg_milter_negotiate,
};

/*
 * tg_milter_nodelay - TCP_NODELAY on libmilter's listening sockets.
 * libmilter does not expose its socket, so find it among our open file
 * descriptors; Linux passes the option on to accepted sockets.  Without
 * it the last of several replies waits ~40 ms for the MTA's delayed ACK.
 */
static void
tg_milter_nodelay(void)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	struct rlimit		rl;
	int			fd, on = 1, listening;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur > 65536)
		rl.rlim_cur = 65536;
	for (fd = 3; fd < (int)rl.rlim_cur; fd++) {
		len = sizeof(listening);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
		    &len) == -1 || !listening)
			continue;
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
		    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on)) == -1)
			tg_log_warn(NULL, "setsockopt TCP_NODELAY");
	}
}

/* tg_milter_find_listener - libmilter's listening socket, found among
 * our descriptors right after smfi_opensocket (no other listens yet) */
static int
tg_milter_find_listener(void)
{
	struct rlimit	rl;
	socklen_t	len;
	int		fd, listening;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur > 65536)
		rl.rlim_cur = 65536;
	for (fd = 3; fd < (int)rl.rlim_cur; fd++) {
		len = sizeof(listening);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
		    &len) == 0 && listening)
			return fd;
	}
	return -1;
}

/* tg_milter_priv - the run user from [core], [milter] and -u */
static void
tg_milter_priv(const struct tg_daemon_args *a, struct tg_daemon_ids *ids,
    struct tg_err *err)
{
	struct tg_daemon_priv	p = {
		.user = a->user != NULL ? a->user : tg_core_conf.user,
		.group = a->user != NULL ? NULL : tg_core_conf.group,
		.umask = tg_core_conf.umask,
		.allow_root = tg_core_conf.allow_root,
		.socket_owner = tg_core_conf.socket_owner,
		.socket_group = tg_core_conf.socket_group,
		.socket_mode = tg_core_conf.socket_mode,
		.section = "milter",
	};

	err->status = tg_daemon_priv_resolve(&p, ids, err);
}

/* tg_milter_metrics - the /metrics endpoint, if [core] metrics_listen */
static struct tg_metrics_http *
tg_milter_metrics(int ready)
{
	struct tg_metrics_http	*h;
	struct tg_err		 err;

	if (*tg_core_conf.metrics_listen == '\0')
		return NULL;
	if ((h = tg_metrics_http_start(tg_core_conf.metrics_listen,
	    TG_METRICS_MILTER, &err)) == NULL)
		tg_daemon_fail(ready, EX_CONFIG, err.text);
	tg_log_notice(NULL, "metrics: listening on %s (GET /metrics)",
	    tg_core_conf.metrics_listen);
	return h;
}

#define TG_LOAD_WAIT_MS	120000	/* successor: its start-up */
#define TG_READY_WAIT_MS 30000	/* successor: listening */
#define TG_TICK_MS	100	/* signal wait between checks */

/* tg_milter_fail - a start-up failure; a successor tells its predecessor,
 * which logs it, instead of logging it itself */
static TG_NORETURN void
tg_milter_fail(const struct tg_handover *h, int ready, int code,
    const char *text)
{
	if (h->fd != -1) {
		(void)tg_handover_send(h->fd, "error %s", text);
		exit(code);
	}
	tg_daemon_fail(ready, code, text);
}

/* tg_milter_await_go - a successor: config is good; wait for the socket */
static void
tg_milter_await_go(const struct tg_handover *h)
{
	char	buf[128];

	if (tg_handover_send(h->fd, "ok") != TG_OK ||
	    tg_handover_recv(h->fd, buf, sizeof(buf), TG_LOAD_WAIT_MS) !=
	    TG_OK || strcmp(buf, "go") != 0) {
		/* The predecessor gave up (it is stopping): so do we. */
		tg_log_notice(NULL, "hand-over cancelled; exiting");
		exit(0);
	}
}

/* tg_milter_sigset - the signals the main thread takes */
static void
tg_milter_sigset(sigset_t *set)
{
	(void)sigemptyset(set);
	(void)sigaddset(set, SIGHUP);
	(void)sigaddset(set, SIGTERM);
	(void)sigaddset(set, SIGINT);
}

/* tg_milter_smfi - the thread that runs libmilter's listener */
static void *
tg_milter_smfi(void *arg)
{
	int	rc;

	(void)arg;
	rc = smfi_main();
	tg_run_lock();
	tg_run.smfi_done = true;
	tg_run.smfi_rc = rc;
	tg_run_unlock();
	return NULL;
}

/* tg_milter_poke - connect to the socket at ss (without waiting), so
 * that a poll on it wakes; returns the connecting socket or -1 */
static int
tg_milter_poke(const struct sockaddr_storage *ss, socklen_t len)
{
	int	fd;

	if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)ss, len) == -1 &&
	    errno != EINPROGRESS) {
		(void)close(fd);
		return -1;
	}
	return fd;
}

/* tg_milter_wait_free - until an inet address can be bound again (the
 * old socket is gone), up to a second; unix: a moment */
static void
tg_milter_wait_free(const struct sockaddr_storage *ss, socklen_t len)
{
	struct timespec	ts = { 0, 5 * 1000 * 1000 };
	int		i, fd, on = 1, r;

	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6) {
		ts.tv_nsec = 20 * 1000 * 1000;
		(void)nanosleep(&ts, NULL);
		return;
	}
	for (i = 0; i < 200; i++) {
		if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC,
		    0)) == -1)
			return;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on));
		r = bind(fd, (const struct sockaddr *)ss, len);
		(void)close(fd);
		if (r == 0)
			return;
		(void)nanosleep(&ts, NULL);
	}
	tg_log_warnx(NULL, "the old listening socket is still open");
}

/* tg_milter_release - stop listening (the metrics endpoint too), see
 * the top of the file; the sessions are left alone */
static void
tg_milter_release(void)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);
	char			c = 0;
	int			p[2], poke;

	tg_run_lock();
	if (tg_run.released) {
		tg_run_unlock();
		return;
	}
	tg_run.released = true;
	tg_run.metrics = tg_metrics_http_stop(tg_run.metrics);
	memset(&ss, 0, sizeof(ss));
	if (tg_run.listen_fd == -1 || getsockname(tg_run.listen_fd,
	    (struct sockaddr *)&ss, &len) == -1 ||
	    pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1) {
		tg_run_unlock();
		tg_log_warnx(NULL, "cannot park libmilter's listener: "
		    "smfi_stop, sessions in flight may be cut");
		(void)smfi_stop();
		return;
	}
	if (dup2(p[0], tg_run.listen_fd) == -1)
		TG_PANIC("dup2 over the listening socket");
	(void)close(p[0]);
	/* A pipe a retake left (tg_milter_retake): long unpolled now. */
	if (tg_run.idle_fd != -1)
		(void)close(tg_run.idle_fd);
	tg_run.idle_fd = p[1];
	tg_run.addr = ss;
	tg_run.addrlen = len;
	memset(&tg_run.sock_sb, 0, sizeof(tg_run.sock_sb));
	if (ss.ss_family == AF_UNIX)
		(void)stat(((struct sockaddr_un *)&ss)->sun_path,
		    &tg_run.sock_sb);
	tg_run_unlock();
	/* Sessions take the lock: wait for the old socket without it. */
	if (write(p[1], &c, 1) != 1 || (poke = tg_milter_poke(&ss, len)) == -1)
		tg_log_warn(NULL, "waking libmilter's listener");
	else {
		tg_milter_wait_free(&ss, len);
		(void)close(poke);
	}
	(void)!read(tg_run.listen_fd, &c, 1);	/* set once at start-up */
}

/*
 * tg_milter_retake - a successor failed after "go": listen again on our
 * address, with the running configuration, rather than leave nothing
 * listening.  The new socket goes on the parked descriptor: libmilter's
 * listener polls that number anew each round (its poll under way still
 * holds the pipe, whose write end must stay open, or the poll would see
 * POLLHUP: the next release closes it).  A unix socket gets the owner,
 * group and mode the old one had, as far as the run user may.
 */
static bool
tg_milter_retake(void)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	*su = (struct sockaddr_un *)&ss;
	struct stat		 sb, nb;
	struct tg_metrics_http	*m;
	struct tg_err		 err;
	socklen_t		 len;
	int			 fd, on = 1;

	tg_run_lock();
	ss = tg_run.addr;
	len = tg_run.addrlen;
	sb = tg_run.sock_sb;
	tg_run_unlock();
	if (len == 0 || (fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC,
	    0)) == -1)
		return false;
	if (ss.ss_family == AF_UNIX)
		(void)unlink(su->sun_path);	/* the successor's, if any */
	else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)) == -1 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
	    &on, sizeof(on)) == -1)
		tg_log_warn(NULL, "reload: setsockopt");
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, SOMAXCONN) == -1) {
		tg_log_warn(NULL, "reload: cannot listen again");
		(void)close(fd);
		return false;
	}
	/* The directory's set-group-ID bit may have given the group. */
	if (ss.ss_family == AF_UNIX && sb.st_mode != 0 &&
	    (stat(su->sun_path, &nb) == -1 || ((nb.st_uid != sb.st_uid ||
	    nb.st_gid != sb.st_gid) && chown(su->sun_path, sb.st_uid,
	    sb.st_gid) == -1 && chown(su->sun_path, (uid_t)-1, sb.st_gid) ==
	    -1) || chmod(su->sun_path, sb.st_mode & 07777) == -1))
		tg_log_warn(NULL, "reload: socket %s: owner or mode",
		    su->sun_path);
	tg_run_lock();
	if (dup2(fd, tg_run.listen_fd) == -1)
		TG_PANIC("dup2 over the parked listener");
	tg_run.released = false;
	tg_run_unlock();
	(void)close(fd);
	if (*tg_core_conf.metrics_listen == '\0')
		return true;
	if ((m = tg_metrics_http_start(tg_core_conf.metrics_listen,
	    TG_METRICS_MILTER, &err)) == NULL)
		tg_log_errx(NULL, "reload: metrics: %s", err.text);
	tg_run_lock();
	tg_run.metrics = m;
	tg_run_unlock();
	return true;
}

/* tg_milter_reload_run - the hand-over; runs on its own thread */
static void *
tg_milter_reload_run(void *arg)
{
	struct tg_err	 err;
	char		 buf[1100], how[128];
	pid_t		 pid;
	int		 fd;
	bool		 stop;

	(void)arg;
	if ((fd = tg_handover_spawn(tg_run.argv, -1, &pid, &err)) == -1) {
		tg_log_errx(NULL, "reload refused: cannot start a new "
		    "process: %s", err.text);
		goto out;
	}
	if (tg_handover_recv(fd, buf, sizeof(buf), TG_LOAD_WAIT_MS) !=
	    TG_OK || strcmp(buf, "ok") != 0) {
		(void)close(fd);
		if (strncmp(buf, "error ", 6) == 0) {
			tg_handover_reap(pid, 5000, how, sizeof(how));
			tg_log_errx(NULL, "reload refused, the running "
			    "configuration stays: %s", buf + 6);
		} else {
			tg_handover_reap(pid, 1000, how, sizeof(how));
			tg_log_errx(NULL, "reload refused, the running "
			    "configuration stays: new process %ld %s (%s)",
			    (long)pid, how, buf);
		}
		goto out;
	}
	tg_run_lock();
	stop = tg_run.stopping || tg_run.smfi_done || tg_run.released;
	tg_run.releasing = !stop;
	tg_run_unlock();
	if (stop) {
		(void)close(fd);
		tg_handover_reap(pid, 5000, how, sizeof(how));
		goto out;
	}
	tg_log_notice(NULL, "reload: process %ld loaded the configuration; "
	    "handing the socket over", (long)pid);
	tg_milter_release();
	if (tg_handover_send(fd, "go") != TG_OK ||
	    tg_handover_recv(fd, buf, sizeof(buf), TG_READY_WAIT_MS) !=
	    TG_OK || strcmp(buf, "ready") != 0) {
		/* It must be gone before its address is ours again. */
		(void)close(fd);
		fd = -1;
		tg_handover_reap(pid, 1000, how, sizeof(how));
		/* It may have written its pid (then timed out or died) or
		 * removed the file: gone now, it cannot race our write. */
		tg_daemon_pidfile_reclaim();
		if (tg_milter_retake()) {
			tg_log_errx(NULL, "reload refused, the running "
			    "configuration stays: process %ld failed to take "
			    "the socket over (%s; %s); listening again",
			    (long)pid, buf, how);
			tg_run_lock();
			tg_run.releasing = false;
			tg_run_unlock();
			goto out;
		}
		tg_log_errx(NULL, "reload: process %ld failed to take the "
		    "socket over (%s; %s); nothing listens now, stopping",
		    (long)pid, buf, how);
		tg_run_lock();
		tg_run.lost = true;
		tg_run_unlock();
	} else {
		tg_log_notice(NULL, "reload: process %ld serves new "
		    "connections; this one drains", (long)pid);
		tg_run_lock();
		tg_run.handed = true;
		tg_run_unlock();
	}
	if (fd != -1)
		(void)close(fd);
out:
	tg_run_lock();
	tg_run.reloading = false;
	tg_run_unlock();
	return NULL;
}

/* tg_milter_reload - SIGHUP: start a hand-over unless one runs */
static void
tg_milter_reload(void)
{
	pthread_attr_t	attr;
	pthread_t	t;
	bool		busy;

	tg_run_lock();
	busy = tg_run.reloading || tg_run.releasing;
	tg_run.reloading = true;
	tg_run_unlock();
	if (busy) {
		tg_log_notice(NULL, "SIGHUP: a reload is under way already");
		return;
	}
	tg_log_notice(NULL, "SIGHUP: reloading the configuration");
	if (pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0 ||
	    pthread_create(&t, &attr, tg_milter_reload_run, NULL) != 0) {
		tg_log_errx(NULL, "reload refused: cannot start a thread");
		tg_run_lock();
		tg_run.reloading = false;
		tg_run_unlock();
	}
	(void)pthread_attr_destroy(&attr);
}

/* tg_milter_unlink - at exit without a successor: remove a unix socket */
static void
tg_milter_unlink(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		(void)unlink(spec + 5);
	else if (strncmp(spec, "local:", 6) == 0)
		(void)unlink(spec + 6);
	else if (spec[0] == '/')
		(void)unlink(spec);
}

/* tg_milter_wait - the main thread: signals, until we should stop */
static void
tg_milter_wait(const sigset_t *set)
{
	struct timespec	ts = { 0, TG_TICK_MS * 1000 * 1000 };
	int		sig;
	bool		end;

	for (;;) {
		sig = sigtimedwait(set, NULL, &ts);
		if (sig == SIGHUP)
			tg_milter_reload();
		else if (sig == SIGTERM || sig == SIGINT) {
			tg_log_notice(NULL, "signal %d: stopping", sig);
			tg_run_lock();
			tg_run.stopping = true;
			tg_run_unlock();
		}
		tg_run_lock();
		/* A hand-over that released the socket runs to its end. */
		end = !tg_run.releasing ? tg_run.stopping || tg_run.smfi_done :
		    tg_run.handed || tg_run.lost;
		tg_run_unlock();
		if (end)
			return;
	}
}

/* tg_milter_drain - open connections finish (their messages, and the
 * SMTP session, whose next message the MTA would otherwise tempfail),
 * up to drain_timeout; true when no message was cut short */
static bool
tg_milter_drain(const sigset_t *set)
{
	struct timespec	ts = { 0, TG_TICK_MS * 1000 * 1000 };
	time_t		end = time(NULL) + tg_core_conf.drain_timeout;
	unsigned int	n, conns;
	int		sig;

	tg_run_lock();
	n = tg_run.inflight;
	conns = tg_run.conns;
	tg_run_unlock();
	if (conns > 0)
		tg_log_notice(NULL, "draining: %u connection(s), %u message(s) "
		    "in flight, waiting up to %lds", conns, n,
		    tg_core_conf.drain_timeout);
	while (conns > 0 && time(NULL) < end) {
		sig = sigtimedwait(set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			tg_log_notice(NULL, "signal %d while draining: "
			    "exiting now", sig);
			break;
		}
		tg_run_lock();
		n = tg_run.inflight;
		conns = tg_run.conns;
		tg_run_unlock();
	}
	if (n > 0)
		tg_log_warnx(NULL, "drain: %u message(s) still in flight; "
		    "exiting (the MTA applies its milter_default_action)", n);
	else if (conns > 0)
		tg_log_notice(NULL, "drain: closing %u idle connection(s)",
		    conns);
	return n == 0;
}

/* main - start up, then let libmilter run the connections */
int
main(int argc, char **argv)
{
	struct tg_daemon_args	 a;
	struct tg_pipeline_opts	 opts;
	struct tg_daemon_ids	 ids;
	struct tg_handover	 h;
	struct tg_err		 err;
	pthread_t		 smfi_thread;
	sigset_t		 sigs;
	const char		*sock;
	char			 buf[600];
	int			 ready = -1, rc;
	bool			 clean;

	/* Before any thread: they all inherit the mask. */
	tg_milter_sigset(&sigs);
	if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0)
		tg_fatalx(EX_OSERR, "pthread_sigmask failed");
	tg_handover_child(&h);
	tg_daemon_args(argc, argv, "tollgate-milter", "socket", &a);
	tg_log_open("tollgate-milter", a.foreground);
	if (!a.foreground && h.fd == -1)
		ready = tg_daemonize("tollgate-milter");
	memset(&opts, 0, sizeof(opts));
	opts.confdir = a.confdir;
	if (tg_pipeline_init(&opts, &err) != TG_OK)
		tg_milter_fail(&h, ready, EX_CONFIG, err.text);
	tg_milter_priv(&a, &ids, &err);
	if (err.status != TG_OK) {
		if (h.fd != -1 && geteuid() != 0)
			(void)snprintf(err.text + strlen(err.text),
			    sizeof(err.text) - strlen(err.text), " (the run "
			    "user changes only with a restart)");
		tg_milter_fail(&h, ready, EX_CONFIG, err.text);
	}
	if (h.fd != -1)
		tg_milter_await_go(&h);
	sock = a.listen != NULL ? a.listen : tg_core_conf.socket;
	if (smfi_setconn((char *)sock) != MI_SUCCESS ||
	    smfi_register(tg_milter_desc) != MI_SUCCESS ||
	    smfi_opensocket(true) != MI_SUCCESS) {
		(void)snprintf(buf, sizeof(buf), "cannot listen on %s", sock);
		tg_milter_fail(&h, ready, EX_UNAVAILABLE, buf);
	}
	tg_run.listen_fd = tg_milter_find_listener();
	tg_run.metrics = tg_milter_metrics(ready);
	tg_daemon_socket_perms(ready, &ids, sock);
	tg_daemon_drop(ready, &ids);
	tg_milter_nodelay();
	tg_daemon_pidfile(ready, a.pidfile != NULL ? a.pidfile :
	    tg_core_conf.pid_file);
	tg_log_notice(NULL, "listening on %s", sock);
	if (h.fd != -1) {
		(void)tg_handover_send(h.fd, "ready");
		(void)close(h.fd);
		tg_log_notice(NULL, "process %ld took over from process %ld",
		    (long)getpid(), (long)getppid());
	}
	tg_daemon_ready(ready, NULL);
	tg_run.argv = argv;
	if (pthread_create(&smfi_thread, NULL, tg_milter_smfi, NULL) != 0)
		tg_fatalx(EX_OSERR, "cannot start the libmilter thread");
	tg_milter_wait(&sigs);
	tg_milter_release();
	tg_log_notice(NULL, "stopped listening");
	clean = tg_milter_drain(&sigs);
	tg_run_lock();
	rc = tg_run.lost || (tg_run.smfi_done && tg_run.smfi_rc !=
	    MI_SUCCESS) ? EX_SOFTWARE : 0;
	/* After a hand-over the pid file names the successor: left. */
	tg_daemon_pidfile_remove();
	/* The successor listens on the same path. */
	if (!tg_run.handed)
		tg_milter_unlink(sock);
	clean = clean && tg_run.conns == 0 && !tg_run.reloading;
	tg_run_unlock();
	tg_log_notice(NULL, "stopping");
	if (!clean)
		_exit(rc);	/* sessions still run: release nothing */
	/* libmilter's threads wait on the parked listener: let them be. */
	(void)pthread_detach(smfi_thread);
	tg_run.metrics = tg_metrics_http_stop(tg_run.metrics);
	tg_pipeline_fini();
	return rc;
}
