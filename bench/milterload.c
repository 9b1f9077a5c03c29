/*
 * milterload - a milter load driver: the MTA side of the milter protocol.
 *
 * It speaks the protocol itself (libmilter is the filter's half and has
 * no client): option negotiation offering what Postfix offers (protocol
 * 6, every action, every SMFIP_NO and SMFIP_NR flag), then for each
 * connection CONNECT and HELO, and for each message MAIL, RCPT, DATA,
 * the headers, EOH, the body in chunks and end of message, with the
 * macros an MTA sends before each of them ({client_addr}, {daemon_name},
 * j, _, {i}, {auth_authen}, ...).  It honours what the filter negotiated:
 * events it asked not to get are not sent, and for the SMFIP_NR ones no
 * reply is awaited.  Every reply is read and counted: the final action of
 * each message, and the header edits, quarantines and other requests.
 *
 * N threads each hold one connection at a time and send several messages
 * over it before reconnecting.  Messages come from a corpus (a file or a
 * directory of files; an mbox "From " line is dropped and gives the
 * envelope sender; LF becomes CRLF), cycled through in order across all
 * threads.  It runs for a fixed time or a fixed number of messages and
 * reports messages per second, latency p50/p99 (from MAIL to the final
 * reply) and its own CPU time per message, so its cost can be compared
 * with the filter's.
 *
 * TCP: packets are written, as Postfix writes them, only when a reply is
 * awaited.  By default the socket has TCP_NODELAY and TCP_QUICKACK,
 * re-armed after every read, so the filter's replies are acknowledged
 * at once.  "-T plain" is a plain socket as an MTA has it: Nagle on and
 * the kernel's delayed ACKs, which shows the 40 ms stalls of a filter
 * that writes a reply in several pieces without TCP_NODELAY (libmilter
 * writes each reply packet on its own), and of Nagle on the MTA's own
 * socket; "-T nodelay" sets TCP_NODELAY only, to tell the two apart.
 *
 * Several -s make a chain, run as Postfix runs smtpd_milters: each
 * envelope stage to every filter in turn, then the whole content to each
 * in turn, with the headers the ones before it added.
 *
 * The corpus is read by milterload_corpus.c.  The rest stays in one
 * file of some 1,100 lines: the stages, the chain and the replies are one
 * state machine and read best side by side.  Threads share only the
 * corpus (read-only), the stop flag and the message counter (atomics);
 * each has its own statistics, merged at the end.  This is a test tool:
 * it exits on bad options or an unreadable corpus, and counts protocol
 * or connection errors, which make the exit status 1.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "tollgate/buf.h"
#include "tollgate/log.h"
#include "tollgate/util.h"

#include "loadstat.h"
#include "milterload.h"

/* Protocol constants (libmilter's mfdef.h; the numbers are the protocol). */
#define ML_VERSION	6
#define ML_CHUNK	65535		/* MILTER_CHUNK_SIZE */
#define ML_MAXPKT	(1024 * 1024 + 1)	/* largest reply accepted */
#define ML_MAXHDRS	16		/* distinct added header names counted */
#define ML_MAXFILTERS	8		/* milters in a chain (-s ... -s) */
#define ML_ACTIONS_ALL	0x1ffUL		/* SMFIF_ADDHDRS .. SMFIF_SETSYMLIST */
/* What Postfix offers: every SMFIP_NO*, SMFIP_NR_*, SKIP, RCPT_REJ and
 * HDR_LEADSPC, 0x1fffff. */
#define ML_PROTO_ALL	0x1fffffUL

#define P_NOCONNECT	0x1UL
#define P_NOHELO	0x2UL
#define P_NOMAIL	0x4UL
#define P_NORCPT	0x8UL
#define P_NOBODY	0x10UL
#define P_NOHDRS	0x20UL
#define P_NOEOH		0x40UL
#define P_NR_HDR	0x80UL
#define P_NODATA	0x200UL
#define P_NR_CONN	0x1000UL
#define P_NR_HELO	0x2000UL
#define P_NR_MAIL	0x4000UL
#define P_NR_RCPT	0x8000UL
#define P_NR_DATA	0x10000UL
#define P_NR_EOH	0x40000UL
#define P_NR_BODY	0x80000UL
#define P_HDR_LEADSPC	0x100000UL

/* Final actions of a message. */
enum ml_act {
	ML_ACT_CONTINUE = 0,	/* 'c' (at end of message: deliver) */
	ML_ACT_ACCEPT,		/* 'a' */
	ML_ACT_REJECT,		/* 'r', or 'y' with a 5xx code */
	ML_ACT_TEMPFAIL,	/* 't', or 'y' with a 4xx code */
	ML_ACT_DISCARD,		/* 'd' */
	ML_ACT_ERROR,		/* connection or protocol error, timeout */
	ML_ACT_N
};
static const char *const ml_act_names[ML_ACT_N] = {
	"continue", "accept", "reject", "tempfail", "discard", "error"
};

/* Other replies, counted as they come. */
enum ml_rep {
	ML_REP_ADDHEADER = 0, ML_REP_INSHEADER, ML_REP_CHGHEADER,
	ML_REP_QUARANTINE, ML_REP_REPLYCODE, ML_REP_REPLBODY, ML_REP_ADDRCPT,
	ML_REP_DELRCPT, ML_REP_CHGFROM, ML_REP_PROGRESS, ML_REP_SKIP,
	ML_REP_N
};
static const char *const ml_rep_names[ML_REP_N] = {
	"addheader", "insheader", "chgheader", "quarantine", "replycode",
	"replbody", "addrcpt", "delrcpt", "chgfrom", "progress", "skip"
};

/* Options; read-only once the threads start. */
/* One filter of the chain: where it listens. */
struct ml_sock {
	const char		*name;
	struct sockaddr_storage	 sa;
	socklen_t		 salen;
};

static struct {
	struct ml_sock	 socks[ML_MAXFILTERS];
	size_t		 nsocks;
	long		 conns;
	long		 per_conn;
	long		 seconds;
	long		 count;		/* 0: run for seconds */
	long		 timeout;
	bool		 nodelay;	/* TCP_NODELAY on our socket */
	bool		 quickack;	/* TCP_QUICKACK after each read */
	const char	*tcp_mode;
	bool		 keyval;
	const char	*auth;		/* {auth_authen}, NULL: none */
	const char	*client_addr;
	const char	*client_name;
	const char	*daemon_name;
	const char	*j;
	const char	*helo;
	const char	*sender;	/* NULL: from the corpus */
	const char	*rcpt;
	struct ml_msg	*msgs;
	size_t		 nmsgs;
} ml_opt = {
	.conns = 16, .nodelay = true, .quickack = true, .tcp_mode = "prompt", .per_conn = 10,
	.seconds = 10, .timeout = 30, .client_addr = "127.0.0.1",
	.j = "mta.test.example", .helo = "client.test.example",
	.rcpt = "rcpt@example.org",
};

static struct ls_run	ml_run;		/* messages started, all threads */

/* One thread: its connection and its statistics. */
struct ml_worker {
	unsigned int	 id;
	int		 fds[ML_MAXFILTERS];	/* one connection per filter */
	unsigned long	 pfs[ML_MAXFILTERS];
	size_t		 cur;		/* the filter talked to now: */
	int		 fd;		/* fds[cur] */
	unsigned long	 pflags;	/* protocol flags the filter chose */
	bool		 fwd;		/* keep its header edits for the next */
	char		**hname;	/* the headers the next filter gets */
	char		**hval;
	bool		*hown;		/* added by a filter: ours to free */
	size_t		 nh, hcap;
	unsigned long	 qid;		/* for {i} */
	struct tg_buf	 out;		/* packets not yet written */
	unsigned char	*in;		/* last reply's data */
	size_t		 insize;
	size_t		 inlen;
	char		 incmd;
	unsigned long	 acts[ML_ACT_N];
	unsigned long	 reps[ML_REP_N];
	unsigned long	 conns;
	char		*hdr[ML_MAXHDRS];	/* names of headers added */
	unsigned long	 nhdrs[ML_MAXHDRS];
	size_t		 hdrs;
	struct ls_lat	 lat;		/* one per message */
	char		 err[256];	/* first error seen */
};

static void	ml_usage(void) TG_NORETURN;

/* ---------------------------------------------------------- protocol */

/* ml_fail - record the worker's first error; returns false */
static bool
ml_fail(struct ml_worker *w, const char *what)
{
	if (w->err[0] == '\0')
		(void)snprintf(w->err, sizeof(w->err), "%s%s%s", what,
		    errno ? ": " : "", errno ? strerror(errno) : "");
	return false;
}

/* ml_put_u32 - a 32-bit number in network order */
static void
ml_put_u32(struct tg_buf *b, unsigned long v)
{
	unsigned char	c[4] = { (unsigned char)(v >> 24),
	    (unsigned char)(v >> 16), (unsigned char)(v >> 8),
	    (unsigned char)v };

	tg_buf_append(b, c, 4);
}

static unsigned long
ml_get_u32(const unsigned char *p)
{
	return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
	    (unsigned long)p[2] << 8 | p[3];
}

/* ml_flush - write what is buffered */
static bool
ml_flush(struct ml_worker *w)
{
	size_t	 off = 0;
	ssize_t	 n;

	while (off < w->out.len) {
		n = send(w->fd, w->out.data + off, w->out.len - off,
		    MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return ml_fail(w, "write");
		off += (size_t)n;
	}
	tg_buf_reset(&w->out);
	return true;
}

/*
 * ml_packet - queue one packet.  Packets are written when a reply is
 * awaited, as Postfix's milter client does (milter8.c: macros, events
 * and no-reply headers go out "in one VSTREAM transaction", the stream
 * flushing before it reads).
 */
static bool
ml_packet(struct ml_worker *w, char cmd, const void *data, size_t len)
{
	ml_put_u32(&w->out, len + 1);
	tg_buf_putc(&w->out, cmd);
	if (len > 0)
		tg_buf_append(&w->out, data, len);
	return true;
}

/* ml_macros - a SMFIC_MACRO packet for command cmd: name/value pairs,
 * NULL-terminated; a NULL value leaves the macro out */
static bool
ml_macros(struct ml_worker *w, char cmd, const char *const *kv)
{
	struct tg_buf	 b;
	bool		 ok;

	tg_buf_init(&b);
	tg_buf_putc(&b, cmd);
	for (; kv[0] != NULL; kv += 2) {
		if (kv[1] == NULL)
			continue;
		tg_buf_append(&b, kv[0], strlen(kv[0]) + 1);
		tg_buf_append(&b, kv[1], strlen(kv[1]) + 1);
	}
	ok = ml_packet(w, 'D', b.data, b.len);
	tg_buf_fini(&b);
	return ok;
}

/* ml_read_full - exactly len bytes */
static bool
ml_read_full(struct ml_worker *w, unsigned char *p, size_t len)
{
	ssize_t	 n;
	int	 one = 1;

	while (len > 0) {
		n = recv(w->fd, p, len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			errno = 0;
		if (n <= 0)
			return ml_fail(w, n == 0 ? "filter closed the connection"
			    : errno == EAGAIN ? "reply timeout" : "read");
		p += n;
		len -= (size_t)n;
	}
	/* Linux clears quick-ACK mode on its own: re-arm it each read */
	if (ml_opt.quickack && ml_opt.socks[w->cur].sa.ss_family != AF_UNIX)
		(void)setsockopt(w->fd, IPPROTO_TCP, TCP_QUICKACK, &one,
		    sizeof(one));
	return true;
}

/* ml_read_packet - one reply into w->incmd, w->in, w->inlen */
static bool
ml_read_packet(struct ml_worker *w)
{
	unsigned char	 hdr[5];
	unsigned long	 len;

	if (!ml_flush(w) || !ml_read_full(w, hdr, 5))
		return false;
	len = ml_get_u32(hdr);
	errno = 0;
	if (len == 0 || len > ML_MAXPKT)
		return ml_fail(w, "reply with a bad length");
	w->incmd = (char)hdr[4];
	w->inlen = len - 1;
	if (w->inlen + 1 > w->insize) {
		w->insize = w->inlen + 1;
		w->in = tg_realloc(w->in, w->insize);
	}
	if (!ml_read_full(w, w->in, w->inlen))
		return false;
	w->in[w->inlen] = '\0';
	return true;
}

/* ml_count_header - count an added or changed header by name; the name
 * follows a 4-byte index in SMFIR_INSHEADER and SMFIR_CHGHEADER */
static void
ml_count_header(struct ml_worker *w)
{
	const char	*name = (const char *)w->in;
	size_t		 i;

	if (w->incmd != 'h') {
		if (w->inlen < 5)
			return;
		name += 4;
	}
	for (i = 0; i < w->hdrs; i++)
		if (tg_strcasecmp(w->hdr[i], name) == 0) {
			w->nhdrs[i]++;
			return;
		}
	if (w->hdrs < ML_MAXHDRS) {
		w->hdr[w->hdrs] = tg_strdup(name);
		w->nhdrs[w->hdrs++] = 1;
	}
}

/* ml_hdr_insert - header pos of the view the next filter gets; takes
 * ownership of name and value when own */
static void
ml_hdr_insert(struct ml_worker *w, size_t pos, char *name, char *val,
    bool own)
{
	if (w->nh == w->hcap) {
		w->hcap = w->hcap ? w->hcap * 2 : 32;
		w->hname = tg_reallocarray(w->hname, w->hcap, sizeof(char *));
		w->hval = tg_reallocarray(w->hval, w->hcap, sizeof(char *));
		w->hown = tg_reallocarray(w->hown, w->hcap, sizeof(bool));
	}
	if (pos > w->nh)
		pos = w->nh;
	memmove(w->hname + pos + 1, w->hname + pos,
	    (w->nh - pos) * sizeof(char *));
	memmove(w->hval + pos + 1, w->hval + pos,
	    (w->nh - pos) * sizeof(char *));
	memmove(w->hown + pos + 1, w->hown + pos, (w->nh - pos) * sizeof(bool));
	w->hname[pos] = name;
	w->hval[pos] = val;
	w->hown[pos] = own;
	w->nh++;
}

/* ml_hdr_reset - the view is message m's own headers again */
static void
ml_hdr_reset(struct ml_worker *w, const struct ml_msg *m)
{
	size_t	 i;

	for (i = 0; i < w->nh; i++)
		if (w->hown[i]) {
			free(w->hname[i]);
			free(w->hval[i]);
		}
	w->nh = 0;
	for (i = 0; i < m->nhdr; i++)
		ml_hdr_insert(w, i, m->hname[i], m->hval[i], false);
}

/*
 * ml_forward_header - an added header, as the next filter of a chain
 * sees it: Postfix applies one milter's edits before the next milter
 * gets the message.  SMFIR_ADDHEADER appends, SMFIR_INSHEADER inserts
 * at its index.  (SMFIR_CHGHEADER is counted but not forwarded.)
 */
static void
ml_forward_header(struct ml_worker *w)
{
	const char	*p = (const char *)w->in, *end = p + w->inlen;
	size_t		 pos = w->nh, nlen;

	if (!w->fwd)
		return;
	if (w->incmd == 'i') {
		if (w->inlen < 4)
			return;
		pos = ml_get_u32(w->in);
		p += 4;
	}
	nlen = strnlen(p, (size_t)(end - p));
	if (p + nlen >= end)
		return;
	ml_hdr_insert(w, pos, tg_strndup(p, nlen),
	    tg_strndup(p + nlen + 1, strnlen(p + nlen + 1,
	    (size_t)(end - p - nlen - 1))), true);
}

/*
 * ml_reply - read replies up to the final one of a command.  Returns the
 * action (ML_ACT_CONTINUE for 'c'), *skip set on SMFIR_SKIP.  Edits are
 * counted; they are legal only at end of message, which eom says.
 */
static enum ml_act
ml_reply(struct ml_worker *w, bool eom, bool *skip)
{
	for (;;) {
		if (!ml_read_packet(w))
			return ML_ACT_ERROR;
		errno = 0;
		switch (w->incmd) {
		case 'c':
			return ML_ACT_CONTINUE;
		case 'a':
			return ML_ACT_ACCEPT;
		case 'r':
			return ML_ACT_REJECT;
		case 't':
			return ML_ACT_TEMPFAIL;
		case 'd':
			return ML_ACT_DISCARD;
		case 'y':
			w->reps[ML_REP_REPLYCODE]++;
			if (w->inlen >= 3 && w->in[0] == '5')
				return ML_ACT_REJECT;
			if (w->inlen >= 3 && w->in[0] == '4')
				return ML_ACT_TEMPFAIL;
			ml_fail(w, "SMFIR_REPLYCODE without a 4xx/5xx code");
			return ML_ACT_ERROR;
		case 's':
			w->reps[ML_REP_SKIP]++;
			if (skip != NULL) {
				*skip = true;
				return ML_ACT_CONTINUE;
			}
			ml_fail(w, "SMFIR_SKIP outside the body");
			return ML_ACT_ERROR;
		case 'p':
			w->reps[ML_REP_PROGRESS]++;
			continue;
		case 'f':
		case '4':
			ml_fail(w, "filter asked to fail the connection");
			return ML_ACT_ERROR;
		default:
			break;
		}
		if (!eom) {
			ml_fail(w, "message edit before end of message");
			return ML_ACT_ERROR;
		}
		switch (w->incmd) {
		case 'h': w->reps[ML_REP_ADDHEADER]++; ml_count_header(w);
			ml_forward_header(w); break;
		case 'i': w->reps[ML_REP_INSHEADER]++; ml_count_header(w);
			ml_forward_header(w); break;
		case 'm': w->reps[ML_REP_CHGHEADER]++; ml_count_header(w); break;
		case 'q': w->reps[ML_REP_QUARANTINE]++; break;
		case 'b': w->reps[ML_REP_REPLBODY]++; break;
		case '+': case '2': w->reps[ML_REP_ADDRCPT]++; break;
		case '-': w->reps[ML_REP_DELRCPT]++; break;
		case 'e': w->reps[ML_REP_CHGFROM]++; break;
		default:
			ml_fail(w, "unknown reply");
			return ML_ACT_ERROR;
		}
	}
}

/* ml_step - send a stage's macros and command; await its reply unless
 * the filter chose no reply (nr) */
static enum ml_act
ml_step(struct ml_worker *w, char cmd, const char *const *kv,
    const void *data, size_t len, unsigned long nr)
{
	if (kv != NULL && !ml_macros(w, cmd, kv))
		return ML_ACT_ERROR;
	if (!ml_packet(w, cmd, data, len))
		return ML_ACT_ERROR;
	if (w->pflags & nr)
		return ML_ACT_CONTINUE;
	return ml_reply(w, false, NULL);
}

/* ml_connect_socket - a connected socket with the mode's options */
static bool
ml_connect_socket(struct ml_worker *w)
{
	struct timeval		 tv = { .tv_sec = ml_opt.timeout };
	int			 one = 1;

	const struct ml_sock	*so = &ml_opt.socks[w->cur];

	w->fd = socket(so->sa.ss_family, SOCK_STREAM, 0);
	if (w->fd == -1)
		return ml_fail(w, "socket");
	(void)setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(w->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (so->sa.ss_family != AF_UNIX && ml_opt.nodelay &&
	    setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		return ml_fail(w, "TCP_NODELAY");
	if (connect(w->fd, (struct sockaddr *)&so->sa, so->salen) == -1)
		return ml_fail(w, "connect");
	return true;
}

/* ml_negotiate - SMFIC_OPTNEG; keeps the filter's protocol flags */
static bool
ml_negotiate(struct ml_worker *w)
{
	struct tg_buf	 b;
	unsigned long	 ver, pf;
	bool		 ok;

	tg_buf_init(&b);
	ml_put_u32(&b, ML_VERSION);
	ml_put_u32(&b, ML_ACTIONS_ALL);
	ml_put_u32(&b, ML_PROTO_ALL);
	ok = ml_packet(w, 'O', b.data, b.len) && ml_read_packet(w);
	tg_buf_fini(&b);
	if (!ok)
		return false;
	errno = 0;
	if (w->incmd != 'O' || w->inlen < 12)
		return ml_fail(w, "bad option negotiation reply");
	ver = ml_get_u32(w->in);
	pf = ml_get_u32(w->in + 8);
	if (ver < 2 || ver > ML_VERSION)
		return ml_fail(w, "filter's protocol version not 2..6");
	if ((pf & ~ML_PROTO_ALL) != 0)
		return ml_fail(w, "filter asked for protocol flags not offered");
	/* any SMFIR_SETSYMLIST lists after the flags are ignored: we send
	 * the same macros whatever it asks */
	w->pflags = pf;
	return true;
}

/* ml_use - talk to filter k of the chain from now on */
static bool
ml_use(struct ml_worker *w, size_t k)
{
	if (!ml_flush(w))
		return false;
	w->fds[w->cur] = w->fd;
	w->pfs[w->cur] = w->pflags;
	w->cur = k;
	w->fd = w->fds[k];
	w->pflags = w->pfs[k];
	return true;
}

/* ml_conn_start_one - connect to the current filter, negotiate, CONNECT
 * and HELO */
static enum ml_act
ml_conn_start_one(struct ml_worker *w)
{
	const char *const ckv[] = {
		"j", ml_opt.j, "_", ml_opt.client_name,
		"{daemon_name}", ml_opt.daemon_name,
		"{client_addr}", ml_opt.client_addr, "{client_name}",
		ml_opt.client_name, "v", "milterload", NULL, NULL
	};
	const char *const hkv[] = { NULL, NULL };
	struct tg_buf	 b;
	enum ml_act	 a = ML_ACT_CONTINUE;
	bool		 v6 = strchr(ml_opt.client_addr, ':') != NULL;

	if (!ml_connect_socket(w) || !ml_negotiate(w))
		return ML_ACT_ERROR;
	w->conns++;
	tg_buf_init(&b);
	if (!(w->pflags & P_NOCONNECT)) {
		tg_buf_append(&b, ml_opt.client_name,
		    strlen(ml_opt.client_name) + 1);
		tg_buf_putc(&b, v6 ? '6' : '4');
		tg_buf_putc(&b, (char)(40000 >> 8 & 0xff));
		tg_buf_putc(&b, (char)(40000 & 0xff));
		tg_buf_append(&b, ml_opt.client_addr,
		    strlen(ml_opt.client_addr) + 1);
		a = ml_step(w, 'C', ckv, b.data, b.len, P_NR_CONN);
	}
	tg_buf_fini(&b);
	if (a == ML_ACT_CONTINUE && !(w->pflags & P_NOHELO))
		a = ml_step(w, 'H', hkv, ml_opt.helo, strlen(ml_opt.helo) + 1,
		    P_NR_HELO);
	return a;
}

/* ml_conn_start - a connection to every filter; the first refusal ends */
static enum ml_act
ml_conn_start(struct ml_worker *w)
{
	enum ml_act	 a = ML_ACT_CONTINUE;
	size_t		 k;

	for (k = 0; k < ml_opt.nsocks; k++)
		w->fds[k] = -1;
	w->fd = -1;
	w->cur = 0;
	for (k = 0; k < ml_opt.nsocks && a == ML_ACT_CONTINUE; k++) {
		if (!ml_use(w, k))
			return ML_ACT_ERROR;
		a = ml_conn_start_one(w);
	}
	(void)ml_use(w, 0);
	return a;
}

/* ml_conn_end - QUIT (unless broken) and close every connection */
static void
ml_conn_end(struct ml_worker *w, bool broken)
{
	size_t	 k;

	w->fds[w->cur] = w->fd;
	for (k = 0; k < ml_opt.nsocks; k++) {
		if (w->fds[k] == -1)
			continue;
		w->cur = k;
		w->fd = w->fds[k];
		if (!broken)
			(void)(ml_packet(w, 'Q', NULL, 0) && ml_flush(w));
		tg_buf_reset(&w->out);
		(void)close(w->fd);
		w->fds[k] = -1;
	}
	w->fd = -1;
	w->cur = 0;
}

/* ml_envelope - MAIL and RCPT with their macros */
static enum ml_act
ml_envelope(struct ml_worker *w, const struct ml_msg *m, const char *qid)
{
	const char *const mkv[] = {
		"{mail_addr}", m->sender, "{auth_type}",
		ml_opt.auth ? "PLAIN" : NULL, "{auth_authen}", ml_opt.auth,
		"i", qid, NULL, NULL
	};
	const char *const rkv[] = { "{rcpt_addr}", ml_opt.rcpt, "i", qid,
	    NULL, NULL };
	char		 arg[1024];
	enum ml_act	 a = ML_ACT_CONTINUE;
	int		 n;

	if (!(w->pflags & P_NOMAIL)) {
		n = snprintf(arg, sizeof(arg), "<%s>", m->sender);
		if (n < 0 || (size_t)n >= sizeof(arg))
			return ML_ACT_ERROR;
		a = ml_step(w, 'M', mkv, arg, (size_t)n + 1, P_NR_MAIL);
	}
	if (a != ML_ACT_CONTINUE || (w->pflags & P_NORCPT))
		return a;
	n = snprintf(arg, sizeof(arg), "<%s>", ml_opt.rcpt);
	if (n < 0 || (size_t)n >= sizeof(arg))
		return ML_ACT_ERROR;
	return ml_step(w, 'R', rkv, arg, (size_t)n + 1, P_NR_RCPT);
}

/* ml_headers - DATA, the header fields and EOH */
static enum ml_act
ml_headers(struct ml_worker *w, const struct ml_msg *m, const char *qid)
{
	const char *const kv[] = { "i", qid, NULL, NULL };
	struct tg_buf	 b;
	enum ml_act	 a = ML_ACT_CONTINUE;
	const char	*v;
	size_t		 i;

	if (!(w->pflags & P_NODATA))
		a = ml_step(w, 'T', kv, NULL, 0, P_NR_DATA);
	tg_buf_init(&b);
	(void)m;
	for (i = 0; a == ML_ACT_CONTINUE && !(w->pflags & P_NOHDRS) &&
	    i < w->nh; i++) {
		v = w->hval[i];
		/* RFC 5322 2.2: the space after the colon is the MTA's to
		 * strip unless the filter asked to see it */
		if (!(w->pflags & P_HDR_LEADSPC) && *v == ' ')
			v++;
		tg_buf_reset(&b);
		tg_buf_append(&b, w->hname[i], strlen(w->hname[i]) + 1);
		tg_buf_append(&b, v, strlen(v) + 1);
		a = ml_step(w, 'L', NULL, b.data, b.len, P_NR_HDR);
	}
	tg_buf_fini(&b);
	if (a == ML_ACT_CONTINUE && !(w->pflags & P_NOEOH))
		a = ml_step(w, 'N', kv, NULL, 0, P_NR_EOH);
	return a;
}

/* ml_body_eom - the body in chunks, then end of message */
static enum ml_act
ml_body_eom(struct ml_worker *w, const struct ml_msg *m, const char *qid)
{
	const char *const kv[] = { "i", qid, NULL, NULL };
	enum ml_act	 a = ML_ACT_CONTINUE;
	bool		 skip = false;
	size_t		 off, n;

	for (off = 0; !(w->pflags & P_NOBODY) && !skip && off < m->bodylen;
	    off += n) {
		n = m->bodylen - off < ML_CHUNK ? m->bodylen - off : ML_CHUNK;
		if (!ml_packet(w, 'B', m->body + off, n))
			return ML_ACT_ERROR;
		if (w->pflags & P_NR_BODY)
			continue;
		if ((a = ml_reply(w, false, &skip)) != ML_ACT_CONTINUE)
			return a;
	}
	if (!ml_macros(w, 'E', kv) || !ml_packet(w, 'E', NULL, 0))
		return ML_ACT_ERROR;
	return ml_reply(w, true, NULL);
}

/* ml_record - one message's outcome */
static void
ml_record(struct ml_worker *w, enum ml_act a, double t0)
{
	w->acts[a]++;
	if (a == ML_ACT_ERROR)
		return;
	ls_lat_add(&w->lat, ls_now() - t0);
}

/*
 * ml_message - one message through the chain, as Postfix runs milters:
 * each envelope stage goes to every filter in turn; then each filter in
 * turn gets the whole content, with the headers the ones before it
 * added.  A reject, tempfail or discard ends the message; an accept
 * takes only that filter out of the rest of it.
 */
static enum ml_act
ml_message(struct ml_worker *w, const struct ml_msg *m)
{
	bool		 done[ML_MAXFILTERS] = { false }, acc = false;
	char		 qid[32];
	enum ml_act	 a = ML_ACT_CONTINUE;
	size_t		 k;

	(void)snprintf(qid, sizeof(qid), "ML%02X%08lX", w->id & 0xff,
	    w->qid++);
	ml_hdr_reset(w, m);
	for (k = 0; k < ml_opt.nsocks && a == ML_ACT_CONTINUE; k++) {
		if (!ml_use(w, k))
			return ML_ACT_ERROR;
		if ((a = ml_envelope(w, m, qid)) == ML_ACT_ACCEPT) {
			done[k] = acc = true;
			a = ML_ACT_CONTINUE;
		}
	}
	for (k = 0; k < ml_opt.nsocks && a == ML_ACT_CONTINUE; k++) {
		if (done[k])
			continue;
		if (!ml_use(w, k))
			return ML_ACT_ERROR;
		w->fwd = k + 1 < ml_opt.nsocks;
		if ((a = ml_headers(w, m, qid)) == ML_ACT_CONTINUE) {
			a = ml_body_eom(w, m, qid);
			done[k] = true;		/* its part is over */
		}
		if (a == ML_ACT_ACCEPT) {
			acc = true;
			a = ML_ACT_CONTINUE;
		}
	}
	if (a != ML_ACT_CONTINUE && a != ML_ACT_ERROR) {
		/* the transaction ended early: an MTA tells the filters */
		for (k = 0; k < ml_opt.nsocks; k++)
			if (!done[k] && (!ml_use(w, k) ||
			    !ml_packet(w, 'A', NULL, 0)))
				return ML_ACT_ERROR;
	}
	if (!ml_use(w, 0))
		return ML_ACT_ERROR;
	return a == ML_ACT_CONTINUE && acc ? ML_ACT_ACCEPT : a;
}

/* ml_worker_run - connections until the run is over */
static void *
ml_worker_run(void *arg)
{
	struct ml_worker	*w = arg;
	enum ml_act		 a;
	long			 i, k;
	double			 t0;

	while ((i = ls_claim(&ml_run, ml_opt.count)) >= 0) {
		t0 = ls_now();
		if ((a = ml_conn_start(w)) != ML_ACT_CONTINUE) {
			/* refused (or failed) at connect or HELO: the
			 * message claimed gets that answer */
			ml_record(w, a, t0);
		}
		for (k = 0; a == ML_ACT_CONTINUE; k++) {
			t0 = ls_now();
			a = ml_message(w, &ml_opt.msgs[(size_t)i % ml_opt.nmsgs]);
			ml_record(w, a, t0);
			if (a == ML_ACT_ERROR || k + 1 >= ml_opt.per_conn ||
			    (i = ls_claim(&ml_run, ml_opt.count)) < 0)
				break;
			a = ML_ACT_CONTINUE;	/* next message, same session */
		}
		ml_conn_end(w, a == ML_ACT_ERROR);
		if (a == ML_ACT_ERROR)
			(void)usleep(10000);	/* do not spin on a dead filter */
	}
	return NULL;
}

/* ------------------------------------------------------------- setup */

/* ml_parse_socket - one more filter of the chain (ls_parse_socket) */
static void
ml_parse_socket(const char *s)
{
	struct ml_sock	*so;

	if (ml_opt.nsocks == ML_MAXFILTERS)
		tg_fatalx(EX_USAGE, "at most %d filters", ML_MAXFILTERS);
	so = &ml_opt.socks[ml_opt.nsocks++];
	so->name = s;
	ls_parse_socket(s, &so->sa, &so->salen);
}

static void
ml_usage(void)
{
	fprintf(stderr,
	    "usage: milterload [-k] [-s socket [-s socket...]] [-c conns]\n"
	    "                  [-m msgs_per_conn]\n"
	    "                  [-t seconds | -n count] [-T prompt|nodelay|plain]\n"
	    "                  [-a auth_authen] [-A client_addr] [-N client_name]\n"
	    "                  [-D daemon_name] [-j hostname] [-e helo]\n"
	    "                  [-f sender] [-r rcpt] [-o reply_timeout] corpus\n");
	exit(EX_USAGE);
}

/* ml_tcp_mode - -T: prompt (TCP_NODELAY and TCP_QUICKACK), nodelay
 * (TCP_NODELAY only) or plain (neither) */
static void
ml_tcp_mode(const char *m)
{
	if (strcmp(m, "prompt") == 0)
		ml_opt.nodelay = ml_opt.quickack = true;
	else if (strcmp(m, "nodelay") == 0) {
		ml_opt.nodelay = true;
		ml_opt.quickack = false;
	} else if (strcmp(m, "plain") == 0)
		ml_opt.nodelay = ml_opt.quickack = false;
	else
		ml_usage();
	ml_opt.tcp_mode = m;
}

static void
ml_options(int argc, char **argv)
{
	int	 ch;

	while ((ch = getopt(argc, argv, "a:A:c:D:e:f:j:km:n:N:o:r:s:t:T:")) != -1) {
		switch (ch) {
		case 'a': ml_opt.auth = optarg; break;
		case 'A': ml_opt.client_addr = optarg; break;
		case 'c': ml_opt.conns = ls_long(optarg, 1, 4096, ch); break;
		case 'D': ml_opt.daemon_name = optarg; break;
		case 'e': ml_opt.helo = optarg; break;
		case 'f': ml_opt.sender = optarg; break;
		case 'j': ml_opt.j = optarg; break;
		case 'k': ml_opt.keyval = true; break;
		case 'm': ml_opt.per_conn = ls_long(optarg, 1, 1000000, ch); break;
		case 'n': ml_opt.count = ls_long(optarg, 1, 1000000000, ch); break;
		case 'N': ml_opt.client_name = optarg; break;
		case 'o': ml_opt.timeout = ls_long(optarg, 1, 3600, ch); break;
		case 'r': ml_opt.rcpt = optarg; break;
		case 's': ml_parse_socket(optarg); break;
		case 't': ml_opt.seconds = ls_long(optarg, 1, 86400, ch); break;
		case 'T':
			ml_tcp_mode(optarg);
			break;
		default:
			ml_usage();
		}
	}
	if (argc - optind != 1)
		ml_usage();
	if (ml_opt.client_name == NULL)
		ml_opt.client_name = tg_printf_dup("[%s]", ml_opt.client_addr);
	if (ml_opt.daemon_name == NULL)
		ml_opt.daemon_name = ml_opt.auth ? "ORIGINATING" : "MTA";
}

/* ------------------------------------------------------------ report */

/* ml_report - merge the workers' statistics and print them; returns
 * the exit status */
static int
ml_report(struct ml_worker *ws, double elapsed)
{
	unsigned long	 acts[ML_ACT_N] = { 0 }, reps[ML_REP_N] = { 0 };
	unsigned long	 done = 0, conns = 0;
	struct ls_lat	 lat = { 0 };
	double		 cpu, rate;
	size_t		 i, k;
	const char	*err = NULL;
	char		*hn[ML_MAXHDRS];
	unsigned long	 hc[ML_MAXHDRS] = { 0 };
	size_t		 nh = 0, j;

	for (i = 0; i < (size_t)ml_opt.conns; i++) {
		for (k = 0; k < ws[i].hdrs; k++) {
			for (j = 0; j < nh && tg_strcasecmp(hn[j],
			    ws[i].hdr[k]) != 0; j++)
				;
			if (j == nh && nh == ML_MAXHDRS)
				continue;
			if (j == nh)
				hn[nh++] = ws[i].hdr[k];
			hc[j] += ws[i].nhdrs[k];
		}
		for (k = 0; k < ML_ACT_N; k++)
			acts[k] += ws[i].acts[k];
		for (k = 0; k < ML_REP_N; k++)
			reps[k] += ws[i].reps[k];
		conns += ws[i].conns;
		ls_lat_merge(&lat, &ws[i].lat);
		if (err == NULL && ws[i].err[0] != '\0')
			err = ws[i].err;
	}
	ls_lat_sort(&lat);
	for (k = 0; k < ML_ACT_ERROR; k++)
		done += acts[k];
	cpu = ls_cpu();
	rate = elapsed > 0 ? (double)done / elapsed : 0;
	if (ml_opt.keyval) {
		printf("messages=%lu seconds=%.3f rate=%.1f p50_ms=%.3f "
		    "p99_ms=%.3f max_ms=%.3f connections=%lu driver_cpu_us=%.1f",
		    done, elapsed, rate, ls_lat_ms(&lat, .5),
		    ls_lat_ms(&lat, .99), ls_lat_ms(&lat, 1), conns,
		    done ? cpu * 1e6 / (double)done : 0);
		for (k = 0; k < ML_ACT_N; k++)
			printf(" %s=%lu", ml_act_names[k], acts[k]);
		for (k = 0; k < ML_REP_N; k++)
			printf(" %s=%lu", ml_rep_names[k], reps[k]);
		for (j = 0; j < nh; j++)
			printf(" header.%s=%lu", hn[j], hc[j]);
		/* the first filter's protocol flags, for nullmilter -P */
		printf(" pflags=0x%lx\n", ws[0].pfs[0] != 0 ? ws[0].pfs[0] :
		    ws[0].pflags);
	} else {
		printf("milterload: %s%s, %ld connection(s), %s TCP\n",
		    ml_opt.socks[0].name, ml_opt.nsocks > 1 ? " (chain)" : "",
		    ml_opt.conns,
		    ml_opt.tcp_mode);
		printf("  %lu messages in %.2f s: %.1f msgs/s over %lu "
		    "connection(s)\n", done, elapsed, rate, conns);
		printf("  latency ms: p50 %.3f  p99 %.3f  max %.3f\n",
		    ls_lat_ms(&lat, .5), ls_lat_ms(&lat, .99),
		    ls_lat_ms(&lat, 1));
		printf("  driver CPU: %.1f us/message\n",
		    done ? cpu * 1e6 / (double)done : 0);
		printf("  final:");
		for (k = 0; k < ML_ACT_N; k++)
			printf(" %s=%lu", ml_act_names[k], acts[k]);
		printf("\n  replies:");
		for (k = 0; k < ML_REP_N; k++)
			if (reps[k] > 0)
				printf(" %s=%lu", ml_rep_names[k], reps[k]);
		printf("\n  headers:");
		for (j = 0; j < nh; j++)
			printf(" %s=%lu", hn[j], hc[j]);
		printf("\n");
	}
	if (err != NULL)
		fprintf(stderr, "milterload: first error: %s\n", err);
	ls_lat_fini(&lat);
	return acts[ML_ACT_ERROR] > 0 || done == 0;
}

int
main(int argc, char **argv)
{
	struct ml_worker	*ws;
	size_t			 i, k;
	int			 rc;

	ml_options(argc, argv);
	if (ml_opt.nsocks == 0)
		ml_parse_socket("inet:8891@127.0.0.1");
	ml_opt.msgs = ml_corpus_load(argv[optind], &ml_opt.nmsgs);
	if (ml_opt.sender != NULL)
		for (i = 0; i < ml_opt.nmsgs; i++) {
			free(ml_opt.msgs[i].sender);
			ml_opt.msgs[i].sender = tg_strdup(ml_opt.sender);
		}
	ws = tg_calloc((size_t)ml_opt.conns, sizeof(*ws));
	for (i = 0; i < (size_t)ml_opt.conns; i++) {
		ws[i].id = (unsigned int)i;
		tg_buf_init(&ws[i].out);
	}
	rc = ml_report(ws, ls_run_workers(&ml_run, ws, (size_t)ml_opt.conns,
	    sizeof(*ws), ml_worker_run, ml_opt.count, ml_opt.seconds));
	for (i = 0; i < (size_t)ml_opt.conns; i++) {
		tg_buf_fini(&ws[i].out);
		free(ws[i].in);
		ls_lat_fini(&ws[i].lat);
		for (k = 0; k < ws[i].nh; k++)
			if (ws[i].hown[k]) {
				free(ws[i].hname[k]);
				free(ws[i].hval[k]);
			}
		free(ws[i].hname);
		free(ws[i].hval);
		free(ws[i].hown);
		for (k = 0; k < ws[i].hdrs; k++)
			free(ws[i].hdr[k]);
	}
	free(ws);
	return rc;
}
