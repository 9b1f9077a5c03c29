/*
 * tollgate-policyd - the Postfix policy-delegation server and its main.
 *
 * One libevent loop serves every smtpd connection.  Each connection has
 * a bufferevent; bytes are parsed as they come (a request may arrive in
 * pieces, several may arrive at once) and each complete request gets
 * its checks and one "action=" reply, in order.  A malformed request is
 * answered with default_action and the connection is closed after the
 * reply; a client exceeding the codec's limits is closed at once.  At
 * max_clients the listener pauses until a connection ends, so further
 * clients wait in the kernel's queue instead of being refused.
 *
 * The configuration is the shared conf.d (the milter's sections are
 * loaded and checked, their modules are not started).  Checks call the
 * store asynchronously (each call bounded by [store] timeout), so while
 * one request waits for Redis the loop serves the others; a connection
 * may have up to PD_PIPELINE_MAX requests in flight, answered in their
 * order.  Everything runs on the main thread.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
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
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "tollgate/buf.h"
#include "tollgate/daemon.h"
#include "tollgate/handover.h"
#include "tollgate/log.h"
#include "tollgate/metrics.h"
#include "tollgate/pipeline.h"
#include "tollgate/policyd.h"
#include "tollgate/store.h"


/* The input we hold for one client: a whole request plus one line. */
#define PD_INPUT_MAX	(PD_REQUEST_MAX + PD_LINE_MAX + 2)

/* Requests of one connection in flight at once (Postfix sends one). */
#define PD_PIPELINE_MAX	16

struct pd_conn;

/* One request between its parse and its reply. */
struct pd_pending {
	TAILQ_ENTRY(pd_pending)	 entry;
	struct pd_conn		*c;
	struct pd_request	 req;
	struct pd_job		 job;
	struct tg_buf		 out;		/* the reply, once done */
	bool			 done;
	bool			 last;		/* close after its reply */
};

/*
 * A connection.  Its requests wait in pending, in arrival order; a
 * reply is written when its request and every one before it are done,
 * so replies keep the order of the requests.  A client gone with
 * requests in flight leaves the struct (gone, bev NULL) until their
 * checks answer: a store callback never finds it freed.
 */
struct pd_conn {
	struct bufferevent	*bev;
	char			 peer[64];
	unsigned long		 id;
	bool			 closing;	/* after the output drains */
	bool			 gone;		/* bev freed, jobs in flight */
	bool			 last_read;	/* a malformed request came */
	bool			 in_read;	/* pd_read is on the stack */
	size_t			 npending;
	TAILQ_HEAD(, pd_pending) pending;
	LIST_ENTRY(pd_conn)	 entry;
};

static struct {
	struct event_base	*base;
	struct evconnlistener	*listener;
	struct tg_store		*store;
	struct tg_store_async	*astore;	/* the checks' */
	struct event		*sweep;
	struct tg_metrics_http	*metrics;	/* [policyd] metrics_listen */
	LIST_HEAD(, pd_conn)	 conns;		/* freed at exit too */
	long			 nclients;
	unsigned long		 next_id;
	bool			 paused;
} pd;

static void	pd_conn_free(struct pd_conn *);
static void	pd_read(struct bufferevent *, void *);

/* pd_pending_free - a request's memory */
static void
pd_pending_free(struct pd_pending *p)
{
	TAILQ_REMOVE(&p->c->pending, p, entry);
	p->c->npending--;
	pd_request_clear(&p->req);
	pd_job_fini(&p->job);
	tg_buf_fini(&p->out);
	free(p);
}

/*
 * pd_conn_free - a connection ended; resume accepting if paused.  With
 * requests in flight the struct stays, gone, for their callbacks.
 */
static void
pd_conn_free(struct pd_conn *c)
{
	struct pd_pending	*p, *next;

	LIST_REMOVE(c, entry);
	bufferevent_free(c->bev);
	c->bev = NULL;
	for (p = TAILQ_FIRST(&c->pending); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->done)
			pd_pending_free(p);
	}
	if (c->npending == 0) {
		free(c);
	} else {
		/* No answer will reach the client: the quota check gives
		 * its reservations back instead of committing them. */
		c->gone = true;
		TAILQ_FOREACH(p, &c->pending, entry)
			p->job.client_gone = true;
	}
	pd.nclients--;
	tg_metric_set(TG_M_POLICYD_CLIENTS, NULL, NULL, pd.nclients);
	if (pd.paused && pd.nclients < pd_conf.max_clients) {
		if (evconnlistener_enable(pd.listener) == 0)
			pd.paused = false;
	}
}

/* pd_log_attr - an attribute for the log line, "-" when absent */
static const char *
pd_log_attr(const struct pd_request *req, const char *name)
{
	const char	*v = pd_request_get(req, name);

	return v != NULL && *v != '\0' ? v : "-";
}

/* pd_log_request - the request's one record (docs/decision-log.md) */
static void
pd_log_request(const struct pd_conn *c, const struct pd_request *req,
    const char *note, const char *act)
{
	struct tg_log_rec	*rec = tg_log_rec_new("policy");
	const char		*v;

	tg_log_rec_add_num(rec, "conn", (long long)c->id);
	tg_log_rec_add(rec, "state", pd_log_attr(req, "protocol_state"));
	tg_log_rec_add(rec, "client", pd_log_attr(req, "client_address"));
	tg_log_rec_add(rec, "helo", pd_log_attr(req, "helo_name"));
	v = pd_request_get(req, "sender");
	tg_log_rec_addf(rec, "sender", "<%s>", v != NULL ? v : "");
	v = pd_request_get(req, "recipient");
	tg_log_rec_addf(rec, "rcpt", "<%s>", v != NULL ? v : "");
	tg_log_rec_add(rec, "sasl", pd_log_attr(req, "sasl_username"));
	tg_log_rec_add_pairs(rec, note);
	tg_log_rec_add(rec, "action", act);
	tg_log_rec_add(rec, "qid", pd_log_attr(req, "queue_id"));
	free(tg_log_rec_emit(rec, TG_LOG_INFO));
	(void)tg_log_rec_free(rec);
}

/* pd_conn_idle - nothing pending, nothing to write: it may close */
static bool
pd_conn_idle(struct pd_conn *c)
{
	return c->npending == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
}

/*
 * pd_send - one reply: straight to the socket while nothing waits in
 * the output buffer, the rest (if the socket is full) through it.
 * bufferevent_write alone would turn write interest on and, once
 * written, off again: two epoll_ctl per request, in different loop
 * turns.  False when the connection is broken.
 */
static bool
pd_send(struct pd_conn *c, const char *data, size_t len)
{
	ssize_t	n = 0;

	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		n = send(bufferevent_getfd(c->bev), data, len,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR)
			return false;
		if (n < 0)
			n = 0;
	}
	return (size_t)n == len ||
	    bufferevent_write(c->bev, data + n, len - (size_t)n) == 0;
}

/*
 * pd_flush - write the replies that are next in order; free a closing
 * connection once all is written, unless pd_read is running (it does)
 */
static void
pd_flush(struct pd_conn *c)
{
	struct pd_pending	*p;

	while ((p = TAILQ_FIRST(&c->pending)) != NULL && p->done) {
		if (!c->closing && !pd_send(c, p->out.data, p->out.len))
			c->closing = true;
		if (p->last)
			c->closing = true;
		pd_pending_free(p);
	}
	if (c->in_read)
		return;
	if (c->closing) {
		if (pd_conn_idle(c))
			pd_conn_free(c);
		return;
	}
	/* Room again: what waited in the input buffer goes on. */
	if (!c->last_read && c->npending < PD_PIPELINE_MAX &&
	    !(bufferevent_get_enabled(c->bev) & EV_READ)) {
		(void)bufferevent_enable(c->bev, EV_READ);
		pd_read(c->bev, c);
	}
}

/* pd_job_done - the checks answered: log, then the reply in order */
static void
pd_job_done(struct pd_job *job)
{
	struct pd_pending	*p = job->arg;
	struct pd_conn		*c = p->c;
	const char		*act;

	if (job->st != TG_OK) {
		act = pd_conf.default_action;
		tg_log_warn_limited(NULL, "check", 60, "check failed: %s",
		    job->err.text);
		tg_buf_printf(&job->note, " error=%s",
		    tg_status_name(job->st));
	} else
		act = tg_buf_cstr(&job->action);
	pd_log_request(c, &p->req, tg_buf_cstr(&job->note), act);
	pd_proto_reply(&p->out, act);
	p->done = true;
	if (!c->gone) {
		pd_flush(c);
		return;
	}
	/* The client left meanwhile: nobody to answer. */
	pd_pending_free(p);
	if (c->npending == 0)
		free(c);
}

/* pd_answer - queue one request (taking req) and start its checks */
static void
pd_answer(struct pd_conn *c, struct pd_request *req)
{
	struct pd_pending	*p;
	struct tg_buf		 note;

	p = tg_calloc(1, sizeof(*p));
	p->c = c;
	p->req = *req;
	memset(req, 0, sizeof(*req));
	tg_buf_init(&p->out);
	TAILQ_INSERT_TAIL(&c->pending, p, entry);
	c->npending++;
	if (!p->req.malformed) {
		p->job.req = &p->req;
		p->job.done = pd_job_done;
		p->job.arg = p;
		pd_checks_start(&p->job);
		return;
	}
	tg_log_warn_limited(NULL, "malformed", 60, "client=%s: malformed "
	    "request: %s", c->peer, p->req.why);
	tg_buf_init(&note);
	pd_note_add(&note, "error", p->req.why);
	tg_metric_inc(TG_M_POLICYD_REQUESTS, "malformed",
	    pd_conf.default_action);
	pd_log_request(c, &p->req, tg_buf_cstr(&note), pd_conf.default_action);
	tg_buf_fini(&note);
	pd_proto_reply(&p->out, pd_conf.default_action);
	p->done = p->last = true;
	c->last_read = true;
	pd_flush(c);
}

/*
 * pd_read - parse every complete request buffered and start its checks;
 * at PD_PIPELINE_MAX in flight, reading pauses until replies go out
 */
static void
pd_read(struct bufferevent *bev, void *arg)
{
	struct pd_conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct pd_request	 req;
	enum pd_parse		 r;
	const char		*data;
	size_t			 len, used;

	c->in_read = true;
	while (!c->closing && !c->last_read &&
	    c->npending < PD_PIPELINE_MAX &&
	    (len = evbuffer_get_length(in)) > 0) {
		if ((data = (const char *)evbuffer_pullup(in, -1)) == NULL)
			break;
		r = pd_proto_parse(data, len, &used, &req);
		if (r == PD_PARSE_MORE && len < PD_INPUT_MAX)
			break;
		if (r != PD_PARSE_DONE) {
			tg_log_warn_limited(NULL, "too much", 60, "client=%s: "
			    "request over the limits: disconnected", c->peer);
			c->in_read = false;
			pd_conn_free(c);
			return;
		}
		(void)evbuffer_drain(in, used);
		pd_answer(c, &req);
	}
	c->in_read = false;
	if (c->closing || c->last_read || c->npending >= PD_PIPELINE_MAX)
		(void)bufferevent_disable(bev, EV_READ);
	pd_flush(c);	/* last: it may free c */
}

/* pd_write - the output drained: a closing connection may go now */
static void
pd_write(struct bufferevent *bev, void *arg)
{
	struct pd_conn	*c = arg;

	(void)bev;
	if (c->closing && pd_conn_idle(c))
		pd_conn_free(c);
}

/* pd_event - EOF, error or idle timeout */
static void
pd_event(struct bufferevent *bev, short what, void *arg)
{
	struct pd_conn	*c = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		tg_log_debug(NULL, "conn=%lu client=%s: idle timeout", c->id,
		    c->peer);
	else if ((what & BEV_EVENT_ERROR) && errno != ECONNRESET)
		tg_log_debug(NULL, "conn=%lu client=%s: %s", c->id, c->peer,
		    strerror(errno));
	else if (c->npending > 0)
		tg_log_debug(NULL, "conn=%lu client=%s: gone with %zu "
		    "request(s) in flight", c->id, c->peer, c->npending);
	pd_conn_free(c);
}

/* pd_peer - the peer's address as text, for logs */
static void
pd_peer(const struct sockaddr *sa, char *buf, size_t len)
{
	const void	*src = NULL;

	if (sa->sa_family == AF_INET)
		src = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		src = &((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr;
	if (src == NULL || inet_ntop(sa->sa_family, src, buf,
	    (socklen_t)len) == NULL)
		(void)snprintf(buf, len, "local");
}

/* pd_accept - a new smtpd connection */
static void
pd_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct timeval	 tv = { pd_conf.idle_timeout, 0 };
	struct pd_conn	*c;
	int		 on = 1;

	(void)salen;
	(void)arg;
	c = tg_calloc(1, sizeof(*c));
	c->id = ++pd.next_id;
	TAILQ_INIT(&c->pending);
	pd_peer(sa, c->peer, sizeof(c->peer));
	if (sa->sa_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	c->bev = bufferevent_socket_new(pd.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		tg_log_warnx(NULL, "client=%s: no bufferevent", c->peer);
		(void)close(fd);
		free(c);
		return;
	}
	pd.nclients++;
	tg_metric_set(TG_M_POLICYD_CLIENTS, NULL, NULL, pd.nclients);
	LIST_INSERT_HEAD(&pd.conns, c, entry);
	bufferevent_setcb(c->bev, pd_read, pd_write, pd_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, PD_INPUT_MAX);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
		pd_conn_free(c);
		return;
	}
	if (pd.nclients >= pd_conf.max_clients && !pd.paused) {
		tg_log_warn_limited(NULL, "max_clients", 60, "max_clients "
		    "(%ld) reached: new clients wait", pd_conf.max_clients);
		if (evconnlistener_disable(l) == 0)
			pd.paused = true;
	}
}

/* pd_accept_error - accept failed (out of descriptors): keep going */
static void
pd_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	tg_log_warn_limited(NULL, "accept", 60, "accept");
}

/* pd_sweep - the embedded store keeps expired records until swept */
static void
pd_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct tg_err	err;
	size_t		removed = 0;

	(void)fd;
	(void)what;
	(void)arg;
	if (tg_store_sweep(pd.store, &removed, &err) != TG_OK)
		tg_log_warn_limited(NULL, "sweep", 600, "store sweep: %s",
		    err.text);
	else if (removed > 0)
		tg_log_debug(NULL, "store sweep: removed=%zu", removed);
}

/*
 * Stopping and reload.  SIGTERM and SIGINT drain: stop accepting, close
 * each connection once it is between requests (nothing half read, no
 * request waiting on the store, no reply unwritten), leave the loop when
 * none is left or after drain_timeout.
 * SIGHUP hands over (handover.h): the successor gets the listening
 * socket, loads the configuration, says "ok"; we stop accepting and say
 * "go"; it serves and says "ready"; we drain.  Had it failed, we tell
 * it to stop (it may serve already) and accept again.  A stop during a
 * reload cancels it: the successor stops too.  Every wait is an event
 * on the loop (the control socket with a timeout, a timer collecting a
 * failed successor), so clients are served meanwhile.  libevent runs
 * the signal callbacks from the loop, not from a signal handler.
 */
#define PD_LOAD_WAIT_MS	120000	/* successor: config and checks */
#define PD_READY_WAIT_MS 30000	/* successor: its listener */
#define PD_REAP_TICK_MS	50	/* how often a failed successor is looked at */

/* A successor that will not serve, collected from a timer. */
struct pd_reaper {
	struct event		*ev;
	pid_t			 pid;
	int			 waited;	/* ms */
	int			 grace_ms;	/* then SIGKILL */
	bool			 killed;
	bool			 reclaim;	/* failed past "go" */
	LIST_ENTRY(pd_reaper)	 entry;
};

static struct {
	struct tg_handover	 h;		/* we are a successor */
	char *const		*argv;
	struct event		*tick;		/* while draining */
	struct event		*ctl;		/* reload control */
	int			 ctl_fd;
	pid_t			 child;
	time_t			 drain_end;
	bool			 draining;
	bool			 handed;	/* a successor serves */
	bool			 sent_go;	/* ctl now waits for "ready" */
	LIST_HEAD(, pd_reaper)	 reapers;
} pd_run = { .ctl_fd = -1 };

static void	pd_reload_not_ready(const char *);

/* pd_fail - a start-up failure; a successor tells its predecessor, which
 * logs it, instead */
static TG_NORETURN void
pd_fail(int ready, int code, const char *text)
{
	if (pd_run.h.fd != -1) {
		(void)tg_handover_send(pd_run.h.fd, "error %s", text);
		exit(code);
	}
	tg_daemon_fail(ready, code, text);
}

/* pd_drain_tick - close the idle connections; leave when all are gone */
static void
pd_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pd_conn	*c, *next;

	(void)fd;
	(void)what;
	(void)arg;
	for (c = LIST_FIRST(&pd.conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
		    pd_conn_idle(c))
			pd_conn_free(c);
	}
	if (pd.nclients == 0) {
		(void)event_base_loopbreak(pd.base);
		return;
	}
	if (time(NULL) >= pd_run.drain_end) {
		tg_log_warnx(NULL, "drain: %ld connection(s) still in a "
		    "request after %lds; closing them", pd.nclients,
		    pd_conf.drain_timeout);
		(void)event_base_loopbreak(pd.base);
	}
}

/* pd_drain - stop accepting; connections go as they become idle */
static void
pd_drain(void)
{
	struct timeval	tv = { 0, 100 * 1000 };

	if (pd_run.draining)
		return;
	pd_run.draining = true;
	pd_run.drain_end = time(NULL) + pd_conf.drain_timeout;
	(void)evconnlistener_disable(pd.listener);
	pd.paused = false;	/* so that pd_conn_free does not resume */
	pd.metrics = tg_metrics_http_stop(pd.metrics);
	tg_log_notice(NULL, "draining: %ld connection(s), up to %lds",
	    pd.nclients, pd_conf.drain_timeout);
	if ((pd_run.tick = event_new(pd.base, -1, EV_PERSIST, pd_drain_tick,
	    NULL)) == NULL || event_add(pd_run.tick, &tv) != 0)
		(void)event_base_loopbreak(pd.base);
	else
		pd_drain_tick(-1, 0, NULL);
}

/* pd_stop - SIGTERM, SIGINT: drain; a second one stops at once */
static void
pd_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (pd_run.draining) {
		tg_log_notice(NULL, "signal %d while draining: stopping now",
		    (int)sig);
		(void)event_base_loopbreak(pd.base);
		return;
	}
	tg_log_notice(NULL, "signal %d: stopping", (int)sig);
	pd_drain();
}

/* pd_reload_end - the control socket is done with */
static void
pd_reload_end(void)
{
	if (pd_run.ctl != NULL)
		event_free(pd_run.ctl);
	pd_run.ctl = NULL;
	(void)close(pd_run.ctl_fd);
	pd_run.ctl_fd = -1;
	pd_run.sent_go = false;
}

/* pd_reap_free - a reaper is done */
static void
pd_reap_free(struct pd_reaper *r)
{
	LIST_REMOVE(r, entry);
	event_free(r->ev);
	free(r);
}

/* pd_reap_tick - collect the successor without blocking; SIGKILL it
 * once its grace is over */
static void
pd_reap_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pd_reaper	*r = arg;
	int			 status;
	pid_t			 p;

	(void)fd;
	(void)what;
	if ((p = waitpid(r->pid, &status, WNOHANG)) == 0) {
		r->waited += PD_REAP_TICK_MS;
		if (r->waited >= r->grace_ms && !r->killed) {
			(void)kill(r->pid, SIGKILL);
			r->killed = true;
			tg_log_warnx(NULL, "reload: process %ld still there "
			    "after %d ms: killed", (long)r->pid, r->grace_ms);
		}
		return;
	}
	if (p == -1)
		tg_log_debug(NULL, "reload: waitpid %ld: %s", (long)r->pid,
		    strerror(errno));
	else if (WIFEXITED(status))
		tg_log_notice(NULL, "reload: process %ld exited with status "
		    "%d", (long)r->pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		tg_log_notice(NULL, "reload: process %ld killed by signal %d",
		    (long)r->pid, WTERMSIG(status));
	/*
	 * It may have removed the pid file as it left, after ours was
	 * written back (pd_reload_not_ready): write it again, unless a
	 * newer successor past "go" may be writing its own, or serves.
	 */
	if (r->reclaim && !pd_run.handed && !pd_run.sent_go)
		tg_daemon_pidfile_reclaim();
	pd_reap_free(r);
}

/*
 * pd_reap - a successor that will not serve ends on its own or after
 * its SIGTERM; collected from a timer, the loop never waits for it.
 * Returns the reaper, or NULL when it could not be watched.
 */
static struct pd_reaper *
pd_reap(pid_t pid, int grace_ms)
{
	struct timeval		 tv = { 0, PD_REAP_TICK_MS * 1000 };
	struct pd_reaper	*r = tg_calloc(1, sizeof(*r));

	r->pid = pid;
	r->grace_ms = grace_ms;
	if ((r->ev = event_new(pd.base, -1, EV_PERSIST, pd_reap_tick,
	    r)) == NULL || event_add(r->ev, &tv) != 0) {
		/* Cannot watch it: it goes at once, a zombie until exit. */
		(void)kill(pid, SIGKILL);
		if (r->ev != NULL)
			event_free(r->ev);
		free(r);
		return NULL;
	}
	LIST_INSERT_HEAD(&pd_run.reapers, r, entry);
	return r;
}

/* pd_reload_refused - the successor will not serve; it is reaped */
static void
pd_reload_refused(const char *buf)
{
	pid_t	child = pd_run.child;
	bool	answered = strncmp(buf, "error ", 6) == 0;

	pd_reload_end();
	if (answered)
		tg_log_errx(NULL, "reload refused, the running configuration "
		    "stays: %s", buf + 6);
	else {
		tg_log_errx(NULL, "reload refused, the running configuration "
		    "stays: new process %ld: %s", (long)child, buf);
		(void)kill(child, SIGTERM);
	}
	(void)pd_reap(child, answered ? 5000 : 1000);
}

/*
 * pd_reload_stopped - a stop came during the reload: the successor must
 * not serve after it.  Closing the control socket makes one still
 * waiting for "go" exit; one past "go" may serve already and drains on
 * its SIGTERM like us.
 */
static void
pd_reload_stopped(void)
{
	pid_t	child = pd_run.child;

	tg_log_notice(NULL, "reload: cancelled by the stop; process %ld "
	    "stops too", (long)child);
	pd_reload_end();
	(void)kill(child, SIGTERM);
	(void)pd_reap(child, (int)pd_conf.drain_timeout * 1000 + 5000);
}

/* pd_reload_go - the successor loaded: stop accepting, say "go", and
 * wait for its "ready" on the loop */
static void
pd_reload_go(void)
{
	struct timeval	tv = { PD_READY_WAIT_MS / 1000, 0 };

	(void)evconnlistener_disable(pd.listener);
	pd.metrics = tg_metrics_http_stop(pd.metrics);
	if (tg_handover_send(pd_run.ctl_fd, "go") != TG_OK ||
	    event_add(pd_run.ctl, &tv) != 0) {
		pd_run.sent_go = true;
		pd_reload_not_ready("cannot say go");
		return;
	}
	pd_run.sent_go = true;
}

/*
 * pd_reload_not_ready - the successor failed after "go".  It may serve
 * the socket already (a "ready" just too late): it is told to stop
 * (SIGTERM, it drains) before this process accepts again, so the two
 * never both serve and no connection it took is cut.  It may have
 * written its pid file too: ours goes back now, and again once it is
 * gone (it removes the file at exit only while it names it, but may
 * have looked just before our write).
 */
static void
pd_reload_not_ready(const char *buf)
{
	struct pd_reaper	*r;
	pid_t			 child = pd_run.child;

	pd_reload_end();
	(void)kill(child, SIGTERM);
	r = pd_reap(child, (int)pd_conf.drain_timeout * 1000 + 5000);
	if (r != NULL)
		r->reclaim = true;
	tg_daemon_pidfile_reclaim();
	if (pd_run.draining)
		return;
	if (!pd.paused)
		(void)evconnlistener_enable(pd.listener);
	tg_log_errx(NULL, "reload: process %ld failed to start serving "
	    "(%s); this one goes on (without its metrics endpoint)",
	    (long)child, buf);
}

/* pd_reload_answer - the successor's "ok" or refusal, then its "ready" */
static void
pd_reload_answer(evutil_socket_t fd, short what, void *arg)
{
	char	buf[1100];
	bool	got;

	(void)arg;
	got = (what & EV_READ) && tg_handover_recv(fd, buf, sizeof(buf), 0) ==
	    TG_OK;
	if (!(what & EV_READ))
		(void)snprintf(buf, sizeof(buf), "no answer in %d ms",
		    pd_run.sent_go ? PD_READY_WAIT_MS : PD_LOAD_WAIT_MS);
	if (pd_run.sent_go) {
		if (got && strcmp(buf, "ready") == 0 && !pd_run.draining) {
			tg_log_notice(NULL, "reload: process %ld serves the "
			    "socket now; this one drains", (long)pd_run.child);
			pd_reload_end();
			pd_run.handed = true;
			pd_drain();
		} else if (pd_run.draining)
			pd_reload_stopped();
		else
			pd_reload_not_ready(buf);
		return;
	}
	if (got && strcmp(buf, "ok") == 0) {
		if (pd_run.draining)
			pd_reload_stopped();
		else
			pd_reload_go();
		return;
	}
	pd_reload_refused(buf);
}

/* pd_reload - SIGHUP: start a successor with our listening socket */
static void
pd_reload(evutil_socket_t sig, short what, void *arg)
{
	struct timeval	tv = { PD_LOAD_WAIT_MS / 1000, 0 };
	struct tg_err	err;
	int		fd;

	(void)sig;
	(void)what;
	(void)arg;
	if (pd_run.ctl_fd != -1 || pd_run.draining) {
		tg_log_notice(NULL, "SIGHUP: %s already", pd_run.draining ?
		    "stopping" : "reloading");
		return;
	}
	tg_log_notice(NULL, "SIGHUP: reloading the configuration");
	if ((fd = tg_handover_spawn(pd_run.argv,
	    evconnlistener_get_fd(pd.listener), &pd_run.child, &err)) == -1) {
		tg_log_errx(NULL, "reload refused: cannot start a new "
		    "process: %s", err.text);
		return;
	}
	pd_run.ctl_fd = fd;
	if ((pd_run.ctl = event_new(pd.base, fd, EV_READ, pd_reload_answer,
	    NULL)) == NULL || event_add(pd_run.ctl, &tv) != 0) {
		tg_log_errx(NULL, "reload refused: cannot watch the new "
		    "process");
		pd_reload_end();
		(void)kill(pd_run.child, SIGTERM);
		(void)pd_reap(pd_run.child, 1000);
	}
}

/* pd_listen_addr - parse inet:PORT@ADDR, inet6:PORT@ADDR, unix:PATH */
static bool
pd_listen_addr(const char *spec, struct sockaddr_storage *ss,
    socklen_t *sslen)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)ss;
	const char		*at, *port;
	char			 addr[INET6_ADDRSTRLEN], pbuf[8];
	long			 p;
	bool			 v6;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(spec, "unix:", 5) == 0) {
		if (snprintf(sun->sun_path, sizeof(sun->sun_path), "%s",
		    spec + 5) >= (int)sizeof(sun->sun_path) ||
		    spec[5] == '\0')
			return false;
		sun->sun_family = AF_UNIX;
		*sslen = sizeof(*sun);
		return true;
	}
	v6 = strncmp(spec, "inet6:", 6) == 0;
	if (!v6 && strncmp(spec, "inet:", 5) != 0)
		return false;
	port = spec + (v6 ? 6 : 5);
	at = strchr(port, '@');
	if (snprintf(addr, sizeof(addr), "%s", at != NULL ? at + 1 :
	    v6 ? "::1" : "127.0.0.1") >= (int)sizeof(addr))
		return false;
	if (snprintf(pbuf, sizeof(pbuf), "%.*s", at != NULL ?
	    (int)(at - port) : (int)strlen(port), port) >= (int)sizeof(pbuf) ||
	    !tg_parse_long(pbuf, 1, 65535, &p))
		return false;
	if (v6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		*sslen = sizeof(*sin6);
		return inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)p);
	*sslen = sizeof(*sin);
	return inet_pton(AF_INET, addr, &sin->sin_addr) == 1;
}

/* pd_same_addr - whether the listening socket fd is bound to ss */
static bool
pd_same_addr(int fd, const struct sockaddr_storage *ss)
{
	struct sockaddr_storage		 cur;
	const struct sockaddr_in	*a = (const void *)ss;
	const struct sockaddr_in	*b = (const void *)&cur;
	const struct sockaddr_in6	*a6 = (const void *)ss;
	const struct sockaddr_in6	*b6 = (const void *)&cur;
	const struct sockaddr_un	*au = (const void *)ss;
	const struct sockaddr_un	*bu = (const void *)&cur;
	socklen_t			 len = sizeof(cur);

	memset(&cur, 0, sizeof(cur));
	if (getsockname(fd, (struct sockaddr *)&cur, &len) == -1 ||
	    cur.ss_family != ss->ss_family)
		return false;
	switch (ss->ss_family) {
	case AF_INET:
		return a->sin_port == b->sin_port &&
		    a->sin_addr.s_addr == b->sin_addr.s_addr;
	case AF_INET6:
		return a6->sin6_port == b6->sin6_port &&
		    memcmp(&a6->sin6_addr, &b6->sin6_addr,
		    sizeof(a6->sin6_addr)) == 0;
	case AF_UNIX:
		return strcmp(au->sun_path, bu->sun_path) == 0;
	}
	return false;
}

/* pd_open_listener - bind and listen on spec (or serve the socket handed
 * over, if it is bound there) */
static void
pd_open_listener(int ready, const char *spec)
{
	struct sockaddr_storage	ss;
	socklen_t		sslen;
	char			buf[600];

	if (!pd_listen_addr(spec, &ss, &sslen)) {
		(void)snprintf(buf, sizeof(buf), "[policyd] listen: bad "
		    "address \"%s\"", spec);
		pd_fail(ready, EX_CONFIG, buf);
	}
	if (pd_run.h.listen_fd != -1 && pd_same_addr(pd_run.h.listen_fd, &ss)) {
		pd.listener = evconnlistener_new(pd.base, pd_accept, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
		    pd_run.h.listen_fd);
		pd_run.h.listen_fd = -1;
		if (pd.listener == NULL)
			pd_fail(ready, EX_OSERR, "cannot serve the socket "
			    "handed over");
		evconnlistener_set_error_cb(pd.listener, pd_accept_error);
		return;
	}
	if (pd_run.h.listen_fd != -1) {
		/* listen changed: the predecessor keeps the old socket */
		tg_log_notice(NULL, "reload: listen is now %s; the old socket "
		    "closes with the old process", spec);
		(void)close(pd_run.h.listen_fd);
		pd_run.h.listen_fd = -1;
	}
	if (ss.ss_family == AF_UNIX)
		(void)unlink(((struct sockaddr_un *)&ss)->sun_path);
	pd.listener = evconnlistener_new_bind(pd.base, pd_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, (struct sockaddr *)&ss, (int)sslen);
	if (pd.listener == NULL) {
		(void)snprintf(buf, sizeof(buf), "cannot listen on %s: %s",
		    spec, strerror(errno));
		pd_fail(ready, EX_UNAVAILABLE, buf);
	}
	evconnlistener_set_error_cb(pd.listener, pd_accept_error);
}

/*
 * pd_event_base - libevent's loop with epoll's changelist: interest
 * turned on and off again within one loop turn (hiredis's write
 * interest on the Redis socket, a bufferevent's) costs no epoll_ctl.
 * The replies' own on-and-off, in different turns, is what pd_send
 * avoids.
 */
static struct event_base *
pd_event_base(void)
{
	struct event_config	*cfg;
	struct event_base	*base;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	(void)event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

/* pd_start - configuration, store, checks */
static void
pd_start(int ready, const struct tg_daemon_args *a)
{
	struct tg_pipeline_opts	 opts;
	struct tg_store_conf	 sc;
	struct pd_env		 env;
	struct tg_err		 err;

	memset(&opts, 0, sizeof(opts));
	opts.confdir = a->confdir;
	if (tg_pipeline_load(&opts, &err) != TG_OK)
		pd_fail(ready, EX_CONFIG, err.text);
	tg_store_conf_loaded(&sc);
	if ((pd.store = tg_store_open(&sc, &err)) == NULL)
		pd_fail(ready, EX_UNAVAILABLE, err.text);
	if ((pd.base = pd_event_base()) == NULL)
		pd_fail(ready, EX_OSERR, "event_base_new failed");
	pd.astore = tg_store_async_new(pd.store, pd.base);
	env.store = pd.store;
	env.astore = pd.astore;
	env.dns = tg_pipeline_dns();
	if (pd_checks_init(&env, &err) != TG_OK)
		pd_fail(ready, EX_CONFIG, err.text);
}

/* pd_priv - the run user: -u, else [policyd], else [core] */
static void
pd_priv(int ready, const struct tg_daemon_args *a, struct tg_daemon_ids *ids)
{
	struct tg_daemon_priv	p = {
		.umask = tg_core_conf.umask,
		.allow_root = tg_core_conf.allow_root,
		.socket_owner = pd_conf.socket_owner,
		.socket_group = pd_conf.socket_group,
		.socket_mode = pd_conf.socket_mode,
		.section = "policyd",
	};
	struct tg_err		err;

	if (a->user != NULL)
		p.user = a->user;
	else {
		p.user = *pd_conf.user != '\0' ? pd_conf.user :
		    tg_core_conf.user;
		p.group = *pd_conf.group != '\0' ? pd_conf.group :
		    tg_core_conf.group;
	}
	if (tg_daemon_priv_resolve(&p, ids, &err) != TG_OK) {
		if (pd_run.h.fd != -1 && geteuid() != 0)
			(void)snprintf(err.text + strlen(err.text),
			    sizeof(err.text) - strlen(err.text), " (the run "
			    "user changes only with a restart)");
		pd_fail(ready, EX_CONFIG, err.text);
	}
}

/* pd_open_metrics - the /metrics endpoint, if [policyd] metrics_listen */
static void
pd_open_metrics(int ready)
{
	struct tg_err	err;

	if (*pd_conf.metrics_listen == '\0')
		return;
	if ((pd.metrics = tg_metrics_http_start(pd_conf.metrics_listen,
	    TG_METRICS_POLICYD, &err)) == NULL)
		pd_fail(ready, EX_CONFIG, err.text);
	tg_log_notice(NULL, "metrics: listening on %s (GET /metrics)",
	    pd_conf.metrics_listen);
}

/* main - start up, then run the loop until a signal */
int
main(int argc, char **argv)
{
	struct tg_daemon_args	 a;
	struct tg_daemon_ids	 ids;
	struct event	*sigterm, *sigint, *sighup;
	struct timeval	 tv;
	const char	*spec;
	char		 buf[128];
	int		 ready = -1;

	tg_handover_child(&pd_run.h);
	pd_run.argv = argv;
	tg_daemon_args(argc, argv, "tollgate-policyd", "listen", &a);
	tg_log_open("tollgate-policyd", a.foreground);
	if (!a.foreground && pd_run.h.fd == -1)
		ready = tg_daemonize("tollgate-policyd");
	(void)signal(SIGPIPE, SIG_IGN);
	pd_start(ready, &a);
	spec = a.listen != NULL ? a.listen : pd_conf.listen;
	pd_priv(ready, &a, &ids);
	if (pd_run.h.fd != -1 && (tg_handover_send(pd_run.h.fd, "ok") !=
	    TG_OK || tg_handover_recv(pd_run.h.fd, buf, sizeof(buf),
	    PD_LOAD_WAIT_MS) != TG_OK || strcmp(buf, "go") != 0)) {
		tg_log_notice(NULL, "hand-over cancelled; exiting");
		exit(0);
	}
	pd_open_listener(ready, spec);
	pd_open_metrics(ready);
	tg_daemon_socket_perms(ready, &ids, spec);
	tg_daemon_drop(ready, &ids);
	sigterm = evsignal_new(pd.base, SIGTERM, pd_stop, NULL);
	sigint = evsignal_new(pd.base, SIGINT, pd_stop, NULL);
	sighup = evsignal_new(pd.base, SIGHUP, pd_reload, NULL);
	pd.sweep = event_new(pd.base, -1, EV_PERSIST, pd_sweep, NULL);
	tv.tv_sec = pd_conf.sweep_interval;
	tv.tv_usec = 0;
	if (sigterm == NULL || sigint == NULL || sighup == NULL ||
	    pd.sweep == NULL || evsignal_add(sigterm, NULL) != 0 ||
	    evsignal_add(sigint, NULL) != 0 || evsignal_add(sighup,
	    NULL) != 0 || event_add(pd.sweep, &tv) != 0)
		pd_fail(ready, EX_OSERR, "cannot set up events");
	tg_daemon_pidfile(ready, a.pidfile != NULL ? a.pidfile : pd_conf.pid_file);
	tg_log_notice(NULL, "listening on %s store=%s checks=%s", spec,
	    tg_store_backend_name(pd.store), pd_conf.checks);
	if (pd_run.h.fd != -1) {
		(void)tg_handover_send(pd_run.h.fd, "ready");
		(void)close(pd_run.h.fd);
		pd_run.h.fd = -1;
		tg_log_notice(NULL, "process %ld took over from process %ld",
		    (long)getpid(), (long)getppid());
	}
	tg_daemon_ready(ready, NULL);
	if (event_base_dispatch(pd.base) == -1)
		tg_log_errx(NULL, "event loop failed");
	tg_log_notice(NULL, "stopping");
	/* After a hand-over the pid file names the successor: left. */
	tg_daemon_pidfile_remove();
	if (pd_run.ctl_fd != -1) {
		pd_reload_end();
		(void)kill(pd_run.child, SIGTERM);
	}
	if (pd_run.tick != NULL)
		event_free(pd_run.tick);
	/* Successors not yet collected end on their own (init reaps). */
	while (!LIST_EMPTY(&pd_run.reapers))
		pd_reap_free(LIST_FIRST(&pd_run.reapers));
	while (!LIST_EMPTY(&pd.conns))
		pd_conn_free(LIST_FIRST(&pd.conns));
	evconnlistener_free(pd.listener);
	event_free(pd.sweep);
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	/* The requests still in flight fail now, freeing their connections. */
	pd.astore = tg_store_async_free(pd.astore);
	pd_checks_fini();
	pd.store = tg_store_close(pd.store);
	event_base_free(pd.base);
	pd.metrics = tg_metrics_http_stop(pd.metrics);
	tg_pipeline_fini();
	return 0;
}
