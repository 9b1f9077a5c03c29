/*
 * tollgate-milter - the libmilter glue and the daemon's main.
 *
 * This is the only file that includes libmilter's headers.  Each libmilter
 * callback maps to one pipeline stage; the connection's struct tg_ctx is
 * the milter private data.  We negotiate away every event and reply the
 * enabled modules do not need (each costs the MTA a round trip), and set
 * TCP_NODELAY on the listening socket so a reply never waits for the
 * MTA's delayed ACK.  libmilter runs each connection on its own thread.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

#include <libmilter/mfapi.h>

#include "pipeline_int.h"
#include "tollgate/buf.h"
#include "tollgate/daemon.h"
#include "tollgate/log.h"


/* One MTA connection: our context plus what was negotiated. */
struct tg_conn {
	struct tg_ctx	*tg;
	SMFICTX		*smfi;
	unsigned long	 pflags;	/* protocol flags agreed */
};

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
	p |= tg_milter_want(f1, SMFIP_NR_EOH, !tg_pipeline_wants(TG_STAGE_EOH));
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

	if (v == TG_CONTINUE || v == TG_QUARANTINE)
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

	if (v != TG_CONTINUE && v != TG_QUARANTINE)
		tg_stage_done(c->tg);
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
	return s;
}

/* tg_milter_abort - xxfi_abort */
static sfsistat
tg_milter_abort(SMFICTX *smfi)
{
	struct tg_conn	*c = tg_milter_conn(smfi);

	tg_stage_abort(c->tg);
	return SMFIS_CONTINUE;
}

/* tg_milter_close - xxfi_close */
static sfsistat
tg_milter_close(SMFICTX *smfi)
{
	struct tg_conn	*c = smfi_getpriv(smfi);

	if (c != NULL) {
		c->tg = tg_ctx_free(c->tg);
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

/* main - start up, then let libmilter run the connections */
int
main(int argc, char **argv)
{
	struct tg_daemon_args	 a;
	struct tg_pipeline_opts	 opts;
	struct tg_err		 err;
	const char		*sock;
	char			 buf[600];
	int			 ready = -1, rc;

	tg_daemon_args(argc, argv, "tollgate-milter", "socket", &a);
	tg_log_open("tollgate-milter", a.foreground);
	if (!a.foreground)
		ready = tg_daemonize("tollgate-milter");
	memset(&opts, 0, sizeof(opts));
	opts.confdir = a.confdir;
	if (tg_pipeline_init(&opts, &err) != TG_OK)
		tg_daemon_fail(ready, EX_CONFIG, err.text);
	sock = a.listen != NULL ? a.listen : tg_core_conf.socket;
	if (smfi_setconn((char *)sock) != MI_SUCCESS ||
	    smfi_register(tg_milter_desc) != MI_SUCCESS ||
	    smfi_opensocket(true) != MI_SUCCESS) {
		(void)snprintf(buf, sizeof(buf), "cannot listen on %s", sock);
		tg_daemon_fail(ready, EX_UNAVAILABLE, buf);
	}
	tg_milter_nodelay();
	tg_daemon_pidfile(ready, a.pidfile != NULL ? a.pidfile :
	    tg_core_conf.pid_file);
	tg_log_notice(NULL, "listening on %s", sock);
	tg_daemon_ready(ready, NULL);
	rc = smfi_main();
	tg_log_notice(NULL, "stopping");
	tg_pipeline_fini();
	return rc == MI_SUCCESS ? 0 : EX_SOFTWARE;
}
