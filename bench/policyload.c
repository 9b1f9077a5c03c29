/*
 * policyload - a load driver for Postfix's policy-delegation protocol
 * (https://www.postfix.org/SMTPD_POLICY_README.html): the smtpd side.
 *
 * N threads each hold one connection and send a stream of
 * request=smtpd_access_policy requests, as Postfix's smtpd does: name=value
 * lines and an empty line, one request at a time, each answer (action=...
 * and an empty line) read before the next request.  A "message" is a
 * request at protocol_state RCPT, at END-OF-MESSAGE, or both in turn
 * (-S); its sender is one of -u distinct senders spread over -d tenant
 * domains (sender k is userK@tK%d.example), sent as sasl_username too
 * with -a, so a quota keyed on the sender, the domain or the SASL user
 * sees that many distinct keys.  It runs for a fixed time or number of
 * requests and reports requests per second, latency p50/p99 and how
 * many answers had each action (the action= word up to the first
 * space).
 *
 * Threads share only the stop flag and the request counter (atomics,
 * bench/loadstat.c).
 * A test tool: bad options exit, connection or protocol errors are
 * counted and make the exit status 1.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

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

#define PL_MAXACTS	16		/* distinct action words counted */
#define PL_MAXREPLY	8192		/* longest answer accepted */

enum pl_states { PL_RCPT, PL_EOM, PL_BOTH };

static struct {
	const char	*socket;
	long		 conns;
	long		 seconds;
	long		 count;		/* requests; 0: run for seconds */
	long		 senders;
	long		 tenants;
	long		 timeout;
	long		 rcpts;		/* recipient_count at END-OF-MESSAGE */
	enum pl_states	 states;
	bool		 sasl;
	bool		 keyval;
	const char	*client_addr;
	struct sockaddr_storage sa;
	socklen_t	 salen;
} pl_opt = {
	.socket = "inet:10031@127.0.0.1", .conns = 16, .seconds = 10,
	.senders = 100, .tenants = 10, .timeout = 30, .rcpts = 1,
	.states = PL_BOTH, .client_addr = "127.0.0.1",
};

static struct ls_run	pl_run;

struct pl_worker {
	unsigned int	 id;
	int		 fd;
	struct tg_buf	 req;
	char		 in[PL_MAXREPLY];
	size_t		 inlen;		/* bytes of in[] in use */
	char		*act[PL_MAXACTS];
	unsigned long	 nact[PL_MAXACTS];
	size_t		 nacts;
	unsigned long	 other;		/* answers past PL_MAXACTS words */
	unsigned long	 errors;
	unsigned long	 done;
	struct ls_lat	 lat;
	char		 err[256];
};

static void	pl_usage(void) TG_NORETURN;

/* pl_fail - the worker's first error; returns false */
static bool
pl_fail(struct pl_worker *w, const char *what)
{
	if (w->err[0] == '\0')
		(void)snprintf(w->err, sizeof(w->err), "%s%s%s", what,
		    errno ? ": " : "", errno ? strerror(errno) : "");
	return false;
}

/* pl_connect - a connected socket, TCP_NODELAY as Postfix sets it */
static bool
pl_connect(struct pl_worker *w)
{
	struct timeval	 tv = { .tv_sec = pl_opt.timeout };
	int		 one = 1;

	w->inlen = 0;
	if ((w->fd = socket(pl_opt.sa.ss_family, SOCK_STREAM, 0)) == -1)
		return pl_fail(w, "socket");
	(void)setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(w->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (pl_opt.sa.ss_family != AF_UNIX)
		(void)setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	if (connect(w->fd, (struct sockaddr *)&pl_opt.sa, pl_opt.salen) == -1) {
		pl_fail(w, "connect");
		(void)close(w->fd);
		w->fd = -1;
		return false;
	}
	return true;
}

/* pl_build - request number n (its message is n / 2 with -S both) */
static void
pl_build(struct pl_worker *w, long n)
{
	long		 msg = pl_opt.states == PL_BOTH ? n / 2 : n;
	long		 k = msg % pl_opt.senders;
	bool		 eom = pl_opt.states == PL_EOM ||
	    (pl_opt.states == PL_BOTH && n % 2 == 1);
	char		 sender[128];

	(void)snprintf(sender, sizeof(sender), "user%ld@t%ld.example", k,
	    k % pl_opt.tenants);
	tg_buf_reset(&w->req);
	tg_buf_printf(&w->req,
	    "request=smtpd_access_policy\n"
	    "protocol_state=%s\n"
	    "protocol_name=ESMTP\n"
	    "client_address=%s\n"
	    "client_name=client.test.example\n"
	    "reverse_client_name=client.test.example\n"
	    "helo_name=client.test.example\n"
	    "sender=%s\n"
	    "recipient=%s\n"
	    "recipient_count=%ld\n"
	    "queue_id=%s\n"
	    "instance=%x.%lx\n"
	    "size=2048\n"
	    "sasl_method=%s\n"
	    "sasl_username=%s\n"
	    "sasl_sender=\n"
	    "encryption_protocol=\n"
	    "server_address=127.0.0.1\n"
	    "server_port=25\n"
	    "\n",
	    eom ? "END-OF-MESSAGE" : "RCPT", pl_opt.client_addr, sender,
	    eom ? "" : "rcpt@example.org", eom ? pl_opt.rcpts : 0L,
	    eom ? "PL1234" : "", w->id, (unsigned long)msg,
	    pl_opt.sasl ? "PLAIN" : "", pl_opt.sasl ? sender : "");
}

/* pl_count - one answer's action word */
static void
pl_count(struct pl_worker *w, const char *act, size_t len)
{
	size_t	 i;

	for (i = 0; i < w->nacts; i++)
		if (strlen(w->act[i]) == len && memcmp(w->act[i], act, len) == 0) {
			w->nact[i]++;
			return;
		}
	if (w->nacts == PL_MAXACTS) {
		w->other++;
		return;
	}
	w->act[w->nacts] = tg_strndup(act, len);
	w->nact[w->nacts++] = 1;
}

/* pl_answer - read up to the empty line; count the action */
static bool
pl_answer(struct pl_worker *w)
{
	char	*end, *a;
	ssize_t	 n;
	size_t	 used;

	while ((end = memmem(w->in, w->inlen, "\n\n", 2)) == NULL) {
		if (w->inlen == sizeof(w->in))
			return pl_fail(w, "answer too long");
		n = recv(w->fd, w->in + w->inlen, sizeof(w->in) - w->inlen, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			errno = 0;
		if (n <= 0)
			return pl_fail(w, n == 0 ? "server closed the connection"
			    : errno == EAGAIN ? "answer timeout" : "read");
		w->inlen += (size_t)n;
	}
	*end = '\0';
	errno = 0;
	if (strncmp(w->in, "action=", 7) != 0)
		return pl_fail(w, "answer without action=");
	a = w->in + 7;
	pl_count(w, a, strcspn(a, " \n"));
	used = (size_t)(end - w->in) + 2;
	memmove(w->in, w->in + used, w->inlen - used);
	w->inlen -= used;
	return true;
}

/* pl_request - send one request and read its answer */
static bool
pl_request(struct pl_worker *w, long n)
{
	size_t	 off = 0;
	ssize_t	 k;

	pl_build(w, n);
	while (off < w->req.len) {
		k = send(w->fd, w->req.data + off, w->req.len - off,
		    MSG_NOSIGNAL);
		if (k == -1 && errno == EINTR)
			continue;
		if (k <= 0)
			return pl_fail(w, "write");
		off += (size_t)k;
	}
	return pl_answer(w);
}

/* pl_worker_run - requests over one connection, reconnecting on errors */
static void *
pl_worker_run(void *arg)
{
	struct pl_worker	*w = arg;
	double			 t0;
	long			 n;

	w->fd = -1;
	while ((n = ls_claim(&pl_run, pl_opt.count)) >= 0) {
		if (w->fd == -1 && !pl_connect(w)) {
			w->errors++;
			(void)usleep(10000);
			continue;
		}
		t0 = ls_now();
		if (!pl_request(w, n)) {
			w->errors++;
			(void)close(w->fd);
			w->fd = -1;
			continue;
		}
		w->done++;
		ls_lat_add(&w->lat, ls_now() - t0);
	}
	if (w->fd != -1)
		(void)close(w->fd);
	return NULL;
}

static void
pl_usage(void)
{
	fprintf(stderr,
	    "usage: policyload [-ak] [-s socket] [-c conns] [-t seconds | -n count]\n"
	    "                  [-u senders] [-d tenants] [-S rcpt|eom|both]\n"
	    "                  [-A client_addr] [-R recipient_count] [-o timeout]\n");
	exit(EX_USAGE);
}

static void
pl_options(int argc, char **argv)
{
	int	 ch;

	while ((ch = getopt(argc, argv, "aA:c:d:kn:o:R:s:S:t:u:")) != -1) {
		switch (ch) {
		case 'a': pl_opt.sasl = true; break;
		case 'A': pl_opt.client_addr = optarg; break;
		case 'c': pl_opt.conns = ls_long(optarg, 1, 4096, ch); break;
		case 'd': pl_opt.tenants = ls_long(optarg, 1, 100000000, ch); break;
		case 'k': pl_opt.keyval = true; break;
		case 'n': pl_opt.count = ls_long(optarg, 1, 1000000000, ch); break;
		case 'o': pl_opt.timeout = ls_long(optarg, 1, 3600, ch); break;
		case 'R': pl_opt.rcpts = ls_long(optarg, 1, 100000, ch); break;
		case 's': pl_opt.socket = optarg; break;
		case 't': pl_opt.seconds = ls_long(optarg, 1, 86400, ch); break;
		case 'u': pl_opt.senders = ls_long(optarg, 1, 100000000, ch); break;
		case 'S':
			if (strcmp(optarg, "rcpt") == 0)
				pl_opt.states = PL_RCPT;
			else if (strcmp(optarg, "eom") == 0)
				pl_opt.states = PL_EOM;
			else if (strcmp(optarg, "both") == 0)
				pl_opt.states = PL_BOTH;
			else
				pl_usage();
			break;
		default:
			pl_usage();
		}
	}
	if (optind != argc)
		pl_usage();
}

/* pl_merge_acts - add worker w's action counts to the totals */
static void
pl_merge_acts(const struct pl_worker *w, char **names, unsigned long *cnt,
    size_t *n, unsigned long *other)
{
	size_t	 i, k;

	*other += w->other;
	for (i = 0; i < w->nacts; i++) {
		for (k = 0; k < *n && strcmp(names[k], w->act[i]) != 0; k++)
			;
		if (k == *n && *n == PL_MAXACTS) {
			*other += w->nact[i];
			continue;
		}
		if (k == *n)
			names[(*n)++] = w->act[i];
		cnt[k] += w->nact[i];
	}
}

/* pl_report - totals; returns the exit status */
static int
pl_report(struct pl_worker *ws, double elapsed)
{
	char		*names[PL_MAXACTS];
	unsigned long	 cnt[PL_MAXACTS] = { 0 }, other = 0, done = 0, errs = 0;
	struct ls_lat	 lat = { 0 };
	double		 cpu, rate;
	size_t		 n = 0, i;
	const char	*err = NULL;

	for (i = 0; i < (size_t)pl_opt.conns; i++) {
		pl_merge_acts(&ws[i], names, cnt, &n, &other);
		done += ws[i].done;
		errs += ws[i].errors;
		ls_lat_merge(&lat, &ws[i].lat);
		if (err == NULL && ws[i].err[0] != '\0')
			err = ws[i].err;
	}
	ls_lat_sort(&lat);
	cpu = ls_cpu();
	rate = elapsed > 0 ? (double)done / elapsed : 0;
	if (pl_opt.keyval)
		printf("requests=%lu seconds=%.3f rate=%.1f p50_ms=%.3f "
		    "p99_ms=%.3f max_ms=%.3f driver_cpu_us=%.1f errors=%lu",
		    done, elapsed, rate, ls_lat_ms(&lat, .5),
		    ls_lat_ms(&lat, .99), ls_lat_ms(&lat, 1),
		    done ? cpu * 1e6 / (double)done : 0, errs);
	else
		printf("policyload: %s, %ld connection(s)\n"
		    "  %lu requests in %.2f s: %.1f requests/s, %lu error(s)\n"
		    "  latency ms: p50 %.3f  p99 %.3f  max %.3f\n"
		    "  driver CPU: %.1f us/request\n  actions:",
		    pl_opt.socket, pl_opt.conns, done, elapsed, rate, errs,
		    ls_lat_ms(&lat, .5), ls_lat_ms(&lat, .99),
		    ls_lat_ms(&lat, 1), done ? cpu * 1e6 / (double)done : 0);
	for (i = 0; i < n; i++)
		printf(" %s=%lu", names[i], cnt[i]);
	if (other > 0)
		printf(" other=%lu", other);
	printf("\n");
	if (err != NULL)
		fprintf(stderr, "policyload: first error: %s\n", err);
	ls_lat_fini(&lat);
	return errs > 0 || done == 0;
}

int
main(int argc, char **argv)
{
	struct pl_worker	*ws;
	size_t			 i, k;
	int			 rc;

	pl_options(argc, argv);
	ls_parse_socket(pl_opt.socket, &pl_opt.sa, &pl_opt.salen);
	ws = tg_calloc((size_t)pl_opt.conns, sizeof(*ws));
	for (i = 0; i < (size_t)pl_opt.conns; i++) {
		ws[i].id = (unsigned int)i;
		tg_buf_init(&ws[i].req);
	}
	rc = pl_report(ws, ls_run_workers(&pl_run, ws, (size_t)pl_opt.conns,
	    sizeof(*ws), pl_worker_run, pl_opt.count, pl_opt.seconds));
	for (i = 0; i < (size_t)pl_opt.conns; i++) {
		tg_buf_fini(&ws[i].req);
		ls_lat_fini(&ws[i].lat);
		for (k = 0; k < ws[i].nacts; k++)
			free(ws[i].act[k]);
	}
	free(ws);
	return rc;
}
