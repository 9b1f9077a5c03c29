/*
 * nullmilter - the cheapest filter libmilter allows, for measuring the
 * load driver (milterload) and libmilter itself rather than any filter.
 *
 * It negotiates every SMFIP_NR_* flag the MTA offers, so no stage but
 * end of message gets a reply, and wants no event it does not need
 * (no HELO, no unknown commands).  Every callback returns SMFIS_NOREPLY;
 * end of message answers with the action given by -a (continue by
 * default), after adding one header per message with -H.  Those two
 * options let a test check that the driver counts actions and edits.
 * -N sets TCP_NODELAY on the listening socket (inherited by accepted
 * ones), as tollgate-milter does, so that a reply in several packets
 * (-H) does not wait for the MTA's delayed ACK.
 * -P FLAGS negotiates exactly those protocol flags (of the ones the MTA
 * offers; milterload -k prints a filter's as pflags=), replying
 * SMFIS_CONTINUE wherever they ask for a reply: the cost of a real
 * filter's dialogue with none of its work (bench/run raw).  -P implies
 * -N, as the filter copied sets TCP_NODELAY.
 * It keeps no state; libmilter runs one thread per connection.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "tollgate/util.h"

static struct {
	sfsistat	 eom;		/* end-of-message answer */
	bool		 quarantine;	/* SMFIR_QUARANTINE before it */
	bool		 addhdr;	/* SMFIR_ADDHEADER before it */
	bool		 pflags_set;	/* -P: exactly these flags */
	unsigned long	 pflags;
} nm_conf = { .eom = SMFIS_CONTINUE };

/* nm_reply - no reply where the flag negotiated says so */
static sfsistat
nm_reply(unsigned long nr)
{
	return !nm_conf.pflags_set || (nm_conf.pflags & nr) ? SMFIS_NOREPLY :
	    SMFIS_CONTINUE;
}

/* nm_negotiate - every no-reply flag offered, and no HELO or unknown */
static sfsistat
nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	unsigned long	 want = SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL |
	    SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH |
	    SMFIP_NR_BODY | SMFIP_NR_HDR | SMFIP_NOHELO | SMFIP_NOUNKNOWN;

	(void)ctx;
	(void)f2;
	(void)f3;
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_QUARANTINE);
	*pf1 = f1 & (nm_conf.pflags_set ? nm_conf.pflags : want);
	*pf2 = *pf3 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	(void)ctx;
	(void)host;
	(void)sa;
	return nm_reply(SMFIP_NR_CONN);
}

static sfsistat
nm_helo(SMFICTX *ctx, char *name)
{
	(void)ctx;
	(void)name;
	return nm_reply(SMFIP_NR_HELO);
}

static sfsistat
nm_mail(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return nm_reply(SMFIP_NR_MAIL);
}

static sfsistat
nm_rcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return nm_reply(SMFIP_NR_RCPT);
}

static sfsistat
nm_header(SMFICTX *ctx, char *name, char *value)
{
	(void)ctx;
	(void)name;
	(void)value;
	return nm_reply(SMFIP_NR_HDR);
}

static sfsistat
nm_data(SMFICTX *ctx)
{
	(void)ctx;
	return nm_reply(SMFIP_NR_DATA);
}

static sfsistat
nm_eoh(SMFICTX *ctx)
{
	(void)ctx;
	return nm_reply(SMFIP_NR_EOH);
}

static sfsistat
nm_body(SMFICTX *ctx, unsigned char *p, size_t len)
{
	(void)ctx;
	(void)p;
	(void)len;
	return nm_reply(SMFIP_NR_BODY);
}

/* nm_eom - the configured edits and answer */
static sfsistat
nm_eom(SMFICTX *ctx)
{
	if (nm_conf.addhdr &&
	    smfi_addheader(ctx, "X-Null-Milter", "seen") != MI_SUCCESS)
		return SMFIS_TEMPFAIL;
	if (nm_conf.quarantine &&
	    smfi_quarantine(ctx, "nullmilter -a quarantine") != MI_SUCCESS)
		return SMFIS_TEMPFAIL;
	if (nm_conf.eom == SMFIS_REJECT || nm_conf.eom == SMFIS_TEMPFAIL)
		(void)smfi_setreply(ctx,
		    nm_conf.eom == SMFIS_REJECT ? "550" : "451",
		    nm_conf.eom == SMFIS_REJECT ? "5.7.1" : "4.7.1",
		    "nullmilter says so");
	return nm_conf.eom;
}

static sfsistat
nm_abort(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_close(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

/* nm_nodelay - TCP_NODELAY on libmilter's listening sockets, found
 * among our descriptors (libmilter does not expose them) */
static void
nm_nodelay(void)
{
	struct sockaddr_storage	 ss;
	struct rlimit		 rl;
	socklen_t		 len;
	int			 fd, on = 1, lis;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur > 65536)
		rl.rlim_cur = 65536;
	for (fd = 3; fd < (int)rl.rlim_cur; fd++) {
		len = sizeof(lis);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &lis, &len) == -1 ||
		    !lis)
			continue;
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
		    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on)) == -1)
			perror("nullmilter: TCP_NODELAY");
	}
}

static void
nm_usage(void)
{
	fprintf(stderr, "usage: nullmilter [-HN] [-P flags] [-a continue|accept|reject|"
	    "tempfail|discard|quarantine] -p socket\n");
	exit(EX_USAGE);
}

/* nm_action - -a's argument */
static void
nm_action(const char *s)
{
	static const struct {
		const char	*name;
		sfsistat	 st;
	} acts[] = {
		{ "continue", SMFIS_CONTINUE }, { "accept", SMFIS_ACCEPT },
		{ "reject", SMFIS_REJECT }, { "tempfail", SMFIS_TEMPFAIL },
		{ "discard", SMFIS_DISCARD }, { "quarantine", SMFIS_CONTINUE },
	};
	size_t	 i;

	for (i = 0; i < TG_NITEMS(acts); i++)
		if (strcmp(s, acts[i].name) == 0) {
			nm_conf.eom = acts[i].st;
			nm_conf.quarantine = strcmp(s, "quarantine") == 0;
			return;
		}
	nm_usage();
}

int
main(int argc, char **argv)
{
	struct smfiDesc	 desc = {
		.xxfi_name = "nullmilter",
		.xxfi_version = SMFI_VERSION,
		.xxfi_flags = SMFIF_ADDHDRS | SMFIF_QUARANTINE,
		.xxfi_connect = nm_connect,
		.xxfi_helo = nm_helo,
		.xxfi_envfrom = nm_mail,
		.xxfi_envrcpt = nm_rcpt,
		.xxfi_header = nm_header,
		.xxfi_eoh = nm_eoh,
		.xxfi_body = nm_body,
		.xxfi_eom = nm_eom,
		.xxfi_abort = nm_abort,
		.xxfi_close = nm_close,
		.xxfi_data = nm_data,
		.xxfi_negotiate = nm_negotiate,
	};
	const char	*sock = NULL;
	bool		 nodelay = false;
	int		 ch;

	while ((ch = getopt(argc, argv, "a:HNp:P:")) != -1) {
		switch (ch) {
		case 'a': nm_action(optarg); break;
		case 'H': nm_conf.addhdr = true; break;
		case 'N': nodelay = true; break;
		case 'P':
			nm_conf.pflags = strtoul(optarg, NULL, 0);
			nm_conf.pflags_set = nodelay = true;
			break;
		case 'p': sock = optarg; break;
		default: nm_usage();
		}
	}
	if (sock == NULL || optind != argc)
		nm_usage();
	/* a unix socket left by an earlier run would make smfi_main fail */
	if (strncmp(sock, "unix:", 5) == 0)
		(void)unlink(sock + 5);
	if (smfi_setconn((char *)sock) != MI_SUCCESS ||
	    smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "nullmilter: cannot set up %s\n", sock);
		return EX_SOFTWARE;
	}
	/* a long backlog: the driver opens many connections at once */
	(void)smfi_setbacklog(1024);
	if (smfi_opensocket(true) != MI_SUCCESS) {
		fprintf(stderr, "nullmilter: cannot listen on %s\n", sock);
		return EX_UNAVAILABLE;
	}
	if (nodelay)
		nm_nodelay();
	return smfi_main() == MI_SUCCESS ? 0 : EX_SOFTWARE;
}
