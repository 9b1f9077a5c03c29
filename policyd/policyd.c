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
 * store synchronously, each call bounded by [store] timeout; the loop
 * does nothing else meanwhile.  Everything runs on the main thread.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
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

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "tollgate/buf.h"
#include "tollgate/daemon.h"
#include "tollgate/log.h"
#include "tollgate/pipeline.h"
#include "tollgate/policyd.h"
#include "tollgate/store.h"


/* The input we hold for one client: a whole request plus one line. */
#define PD_INPUT_MAX	(PD_REQUEST_MAX + PD_LINE_MAX + 2)

struct pd_conn {
	struct bufferevent	*bev;
	char			 peer[64];
	unsigned long		 id;
	bool			 closing;	/* after the output drains */
	LIST_ENTRY(pd_conn)	 entry;
};

static struct {
	struct event_base	*base;
	struct evconnlistener	*listener;
	struct tg_store		*store;
	struct event		*sweep;
	LIST_HEAD(, pd_conn)	 conns;		/* freed at exit too */
	long			 nclients;
	unsigned long		 next_id;
	bool			 paused;
} pd;

static void	pd_conn_free(struct pd_conn *);

/* pd_conn_free - a connection ended; resume accepting if paused */
static void
pd_conn_free(struct pd_conn *c)
{
	LIST_REMOVE(c, entry);
	bufferevent_free(c->bev);
	free(c);
	pd.nclients--;
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

/* pd_answer - run the checks over one request and queue the reply */
static void
pd_answer(struct pd_conn *c, const struct pd_request *req)
{
	struct tg_buf	 action, note, out;
	struct tg_err	 err;
	const char	*act;
	enum tg_status	 st;

	tg_buf_init(&action);
	tg_buf_init(&note);
	tg_buf_init(&out);
	if (req->malformed) {
		act = pd_conf.default_action;
		tg_log_warn_limited(NULL, "malformed", 60, "client=%s: "
		    "malformed request: %s", c->peer, req->why);
		tg_buf_printf(&note, " error=\"%s\"", req->why);
		c->closing = true;
	} else if ((st = pd_checks_run(req, &action, &note, &err)) != TG_OK) {
		act = pd_conf.default_action;
		tg_log_warn_limited(NULL, "check", 60, "check failed: %s",
		    err.text);
		tg_buf_printf(&note, " error=%s", tg_status_name(st));
	} else
		act = tg_buf_cstr(&action);
	tg_log_info(NULL, "conn=%lu client=%s helo=%s sender=<%s> rcpt=<%s> "
	    "sasl=%s%s action=\"%s\"", c->id,
	    pd_log_attr(req, "client_address"), pd_log_attr(req, "helo_name"),
	    pd_request_get(req, "sender") != NULL ?
	    pd_request_get(req, "sender") : "",
	    pd_request_get(req, "recipient") != NULL ?
	    pd_request_get(req, "recipient") : "",
	    pd_log_attr(req, "sasl_username"), tg_buf_cstr(&note), act);
	pd_proto_reply(&out, act);
	if (bufferevent_write(c->bev, out.data, out.len) != 0)
		c->closing = true;
	tg_buf_fini(&action);
	tg_buf_fini(&note);
	tg_buf_fini(&out);
}

/* pd_read - parse and answer every complete request buffered */
static void
pd_read(struct bufferevent *bev, void *arg)
{
	struct pd_conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct pd_request	 req;
	enum pd_parse		 r;
	const char		*data;
	size_t			 len, used;

	while (!c->closing && (len = evbuffer_get_length(in)) > 0) {
		if ((data = (const char *)evbuffer_pullup(in, -1)) == NULL)
			break;
		r = pd_proto_parse(data, len, &used, &req);
		if (r == PD_PARSE_MORE && len < PD_INPUT_MAX)
			return;
		if (r != PD_PARSE_DONE) {
			tg_log_warn_limited(NULL, "too much", 60, "client=%s: "
			    "request over the limits: disconnected", c->peer);
			pd_conn_free(c);
			return;
		}
		pd_answer(c, &req);
		pd_request_clear(&req);
		(void)evbuffer_drain(in, used);
	}
	if (c->closing) {
		bufferevent_disable(bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			pd_conn_free(c);
	}
}

/* pd_write - the output drained: a closing connection may go now */
static void
pd_write(struct bufferevent *bev, void *arg)
{
	struct pd_conn	*c = arg;

	(void)bev;
	if (c->closing)
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

/* pd_stop - SIGTERM, SIGINT: leave the loop */
static void
pd_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	tg_log_notice(NULL, "signal %d: stopping", (int)sig);
	(void)event_base_loopbreak(pd.base);
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

/* pd_open_listener - bind and listen on spec */
static void
pd_open_listener(int ready, const char *spec)
{
	struct sockaddr_storage	ss;
	socklen_t		sslen;
	char			buf[600];

	if (!pd_listen_addr(spec, &ss, &sslen)) {
		(void)snprintf(buf, sizeof(buf), "[policyd] listen: bad "
		    "address \"%s\"", spec);
		tg_daemon_fail(ready, EX_CONFIG, buf);
	}
	if (ss.ss_family == AF_UNIX)
		(void)unlink(((struct sockaddr_un *)&ss)->sun_path);
	pd.listener = evconnlistener_new_bind(pd.base, pd_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, (struct sockaddr *)&ss, (int)sslen);
	if (pd.listener == NULL) {
		(void)snprintf(buf, sizeof(buf), "cannot listen on %s: %s",
		    spec, strerror(errno));
		tg_daemon_fail(ready, EX_UNAVAILABLE, buf);
	}
	evconnlistener_set_error_cb(pd.listener, pd_accept_error);
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
		tg_daemon_fail(ready, EX_CONFIG, err.text);
	tg_store_conf_loaded(&sc);
	if ((pd.store = tg_store_open(&sc, &err)) == NULL)
		tg_daemon_fail(ready, EX_UNAVAILABLE, err.text);
	env.store = pd.store;
	env.dns = tg_pipeline_dns();
	if (pd_checks_init(&env, &err) != TG_OK)
		tg_daemon_fail(ready, EX_CONFIG, err.text);
}

/* main - start up, then run the loop until a signal */
int
main(int argc, char **argv)
{
	struct tg_daemon_args	 a;
	struct event	*sigterm, *sigint;
	struct timeval	 tv;
	const char	*spec;
	int		 ready = -1;

	tg_daemon_args(argc, argv, "tollgate-policyd", "listen", &a);
	tg_log_open("tollgate-policyd", a.foreground);
	if (!a.foreground)
		ready = tg_daemonize("tollgate-policyd");
	(void)signal(SIGPIPE, SIG_IGN);
	pd_start(ready, &a);
	if ((pd.base = event_base_new()) == NULL)
		tg_daemon_fail(ready, EX_OSERR, "event_base_new failed");
	spec = a.listen != NULL ? a.listen : pd_conf.listen;
	pd_open_listener(ready, spec);
	sigterm = evsignal_new(pd.base, SIGTERM, pd_stop, NULL);
	sigint = evsignal_new(pd.base, SIGINT, pd_stop, NULL);
	pd.sweep = event_new(pd.base, -1, EV_PERSIST, pd_sweep, NULL);
	tv.tv_sec = pd_conf.sweep_interval;
	tv.tv_usec = 0;
	if (sigterm == NULL || sigint == NULL || pd.sweep == NULL ||
	    evsignal_add(sigterm, NULL) != 0 || evsignal_add(sigint,
	    NULL) != 0 || event_add(pd.sweep, &tv) != 0)
		tg_daemon_fail(ready, EX_OSERR, "cannot set up events");
	tg_daemon_pidfile(ready, a.pidfile != NULL ? a.pidfile : pd_conf.pid_file);
	tg_log_notice(NULL, "listening on %s store=%s checks=%s", spec,
	    tg_store_backend_name(pd.store), pd_conf.checks);
	tg_daemon_ready(ready, NULL);
	if (event_base_dispatch(pd.base) == -1)
		tg_log_errx(NULL, "event loop failed");
	tg_log_notice(NULL, "stopping");
	while (!LIST_EMPTY(&pd.conns))
		pd_conn_free(LIST_FIRST(&pd.conns));
	evconnlistener_free(pd.listener);
	event_free(pd.sweep);
	event_free(sigterm);
	event_free(sigint);
	pd_checks_fini();
	pd.store = tg_store_close(pd.store);
	event_base_free(pd.base);
	tg_pipeline_fini();
	return 0;
}
