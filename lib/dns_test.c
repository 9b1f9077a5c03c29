/*
 * dns_test - the resolver against local data, offline.
 *
 * Most tests share one offline resolver loaded from a temporary zone
 * file.  The forwarder tests run a tiny DNS responder on a loopback port
 * of their own, which answers "answer.*" names and ignores the rest, so
 * a real timeout can be seen; nothing leaves the host.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tollgate/dns.h"
#include "tollgate/log.h"
#include "tollgate/util.h"

#define DNS_TEST_THREADS	8
#define DNS_TEST_ROUNDS		100

static const char dns_test_zone[] =
    "; test zone\n"
    "# another comment\n"
    "\n"
    "example.com. 300 IN SOA ns.example.com. host.example.com. "
    "1 3600 600 86400 120\n"
    "sel._domainkey.example.com. 300 IN TXT \"v=DKIM1; k=rsa; \" "
    "\"p=ABC\"\n"
    "example.com. 60 IN A 192.0.2.1\n"
    "example.com. 300 IN AAAA 2001:db8::1\n"
    "  www.example.com. 300 IN A 192.0.2.2  \n"
    "www.example.com. 200 IN A 192.0.2.3\n"
    "alias.example.com. 100 IN CNAME www.example.com.\n"
    "host.example.org. 300 IN A 198.51.100.7\n"
    "odd\\032name%.example.com. 300 IN A 192.0.2.9\n"
    "$TIMEOUT slow.example.net.\n"
    "$servfail Broken.Example.Net\n";

static struct tg_dns	*dns_test_dns;
static char		 dns_test_path[] = "/tmp/dns_test.XXXXXX";
static int		 dns_test_loud;	/* lines above debug */

/* dns_test_sink - count log lines that are not debug */
static void
dns_test_sink(enum tg_log_level level, const char *line, void *arg)
{
	int	*debug = arg;

	if (level < TG_LOG_DEBUG)
		__atomic_add_fetch(&dns_test_loud, 1, __ATOMIC_RELAXED);
	else if (debug != NULL && strstr(line, "name=") != NULL)
		__atomic_add_fetch(debug, 1, __ATOMIC_RELAXED);
}

/* dns_test_now - seconds on the monotonic clock */
static double
dns_test_now(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* dns_test_write - a temporary file holding text */
static void
dns_test_write(char *path, const char *text)
{
	int	fd;

	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

/* dns_test_setup - the shared offline resolver */
static int
dns_test_setup(void **state)
{
	struct tg_dns_conf	conf = { .timeout = 5, .offline = true };
	struct tg_err		err;

	tg_log_set_sink(dns_test_sink, NULL);
	tg_log_set_level(TG_LOG_INFO);
	dns_test_write(dns_test_path, dns_test_zone);
	conf.local_data = dns_test_path;
	dns_test_dns = tg_dns_new(&conf, &err);
	if (dns_test_dns == NULL) {
		fprintf(stderr, "tg_dns_new: %s\n", err.text);
		return -1;
	}
	return 0;
}

/* dns_test_teardown - free it, and no line above debug was logged */
static int
dns_test_teardown(void **state)
{
	dns_test_dns = tg_dns_free(dns_test_dns);
	(void)unlink(dns_test_path);
	tg_log_set_sink(NULL, NULL);
	return dns_test_loud == 0 ? 0 : -1;
}

/* dns_test_offline - a fresh offline resolver without local data */
static struct tg_dns *
dns_test_offline(void)
{
	struct tg_dns_conf	 conf = { .timeout = 5, .offline = true };
	struct tg_dns		*dns;

	dns = tg_dns_new(&conf, NULL);
	assert_non_null(dns);
	return dns;
}

/* test_txt - TXT with two strings, joined; names ignore case and dot */
static void
test_txt(void **state)
{
	static const char *const names[] = {
		"sel._domainkey.example.com", "SEL._DomainKey.EXAMPLE.com.",
	};
	struct tg_dns_answer	*ans;
	char			*txt;
	size_t			 i;

	for (i = 0; i < TG_NITEMS(names); i++) {
		assert_int_equal(tg_dns_resolve(dns_test_dns, names[i],
		    TG_DNS_TXT, &ans, NULL), TG_OK);
		assert_int_equal(ans->count, 1);
		assert_int_equal(ans->rcode, 0);
		assert_int_equal(ans->qtype, TG_DNS_TXT);
		assert_int_equal(ans->ttl, 300);
		assert_non_null(ans->packet);
		assert_true(ans->packet_len > 12);
		txt = tg_dns_txt_join(ans, 0);
		assert_string_equal(txt, "v=DKIM1; k=rsa; p=ABC");
		free(txt);
		assert_null(tg_dns_txt_join(ans, 1));
		ans = tg_dns_answer_free(ans);
	}
}

/* test_txt_malformed - a length byte past the end, empty, NUL inside */
static void
test_txt_malformed(void **state)
{
	unsigned char		 bad[] = { 3, 'a', 'b', 'c', 5, 'x' };
	unsigned char		 nul[] = { 3, 'a', '\0', 'c' };
	unsigned char		 ok[] = { 1, 'a', 0, 2, 'b', 'c' };
	unsigned char		*rd[1];
	size_t			 len[1];
	struct tg_dns_answer	 ans = {
		.count = 1, .rdata = rd, .rdlen = len
	};
	char			*s;

	rd[0] = bad;
	len[0] = sizeof(bad);
	assert_null(tg_dns_txt_join(&ans, 0));
	len[0] = 0;
	assert_null(tg_dns_txt_join(&ans, 0));
	rd[0] = nul;
	len[0] = sizeof(nul);
	assert_null(tg_dns_txt_join(&ans, 0));
	rd[0] = ok;
	len[0] = sizeof(ok);
	s = tg_dns_txt_join(&ans, 0);
	assert_string_equal(s, "abc");
	free(s);
	assert_null(tg_dns_txt_join(NULL, 0));
}

/* test_a_aaaa - addresses, several records, the smallest TTL */
static void
test_a_aaaa(void **state)
{
	struct tg_dns_answer	*ans;
	unsigned char		 want[16];

	assert_int_equal(tg_dns_resolve(dns_test_dns, "example.com", TG_DNS_A,
	    &ans, NULL), TG_OK);
	assert_int_equal(ans->count, 1);
	assert_int_equal(ans->rdlen[0], 4);
	assert_int_equal(inet_pton(AF_INET, "192.0.2.1", want), 1);
	assert_memory_equal(ans->rdata[0], want, 4);
	assert_int_equal(ans->ttl, 60);
	ans = tg_dns_answer_free(ans);

	assert_int_equal(tg_dns_resolve(dns_test_dns, "example.com.",
	    TG_DNS_AAAA, &ans, NULL), TG_OK);
	assert_int_equal(ans->count, 1);
	assert_int_equal(ans->rdlen[0], 16);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", want), 1);
	assert_memory_equal(ans->rdata[0], want, 16);
	ans = tg_dns_answer_free(ans);

	assert_int_equal(tg_dns_resolve(dns_test_dns, "www.example.com",
	    TG_DNS_A, &ans, NULL), TG_OK);
	assert_int_equal(ans->count, 2);
	assert_int_equal(ans->ttl, 200);
	ans = tg_dns_answer_free(ans);
}

/* test_cname - a local CNAME is followed to the target's records */
static void
test_cname(void **state)
{
	struct tg_dns_answer	*ans;

	assert_int_equal(tg_dns_resolve(dns_test_dns, "alias.example.com",
	    TG_DNS_A, &ans, NULL), TG_OK);
	assert_int_equal(ans->count, 2);
	assert_int_equal(ans->ttl, 100);
	ans = tg_dns_answer_free(ans);
	assert_int_equal(tg_dns_resolve(dns_test_dns, "alias.example.com",
	    TG_DNS_CNAME, &ans, NULL), TG_OK);
	assert_int_equal(ans->count, 1);
	ans = tg_dns_answer_free(ans);
}

/* test_negative - NXDOMAIN under a SOA, NODATA for a listed name */
static void
test_negative(void **state)
{
	static const struct {
		const char	*name;
		int		 type;
		int		 rcode;
		uint32_t	 ttl;
	} cases[] = {
		{ "nope.example.com", TG_DNS_A, 3, 120 },
		{ "x.www.example.com", TG_DNS_TXT, 3, 120 },
		{ "www.example.com", TG_DNS_TXT, 0, 120 },
		{ "example.com", TG_DNS_MX, 0, 120 },
		/* no SOA: NODATA without a negative TTL */
		{ "host.example.org", TG_DNS_TXT, 0, 0 },
		{ "HOST.example.org.", TG_DNS_AAAA, 0, 0 },
	};
	struct tg_dns_answer	*ans;
	struct tg_err		 err;
	size_t			 i;

	for (i = 0; i < TG_NITEMS(cases); i++) {
		ans = NULL;
		assert_int_equal(tg_dns_resolve(dns_test_dns, cases[i].name,
		    cases[i].type, &ans, &err), TG_NOTFOUND);
		assert_non_null(ans);
		assert_int_equal(ans->count, 0);
		assert_int_equal(ans->rcode, cases[i].rcode);
		assert_int_equal(ans->ttl, cases[i].ttl);
		assert_non_null(ans->packet);
		assert_int_equal(err.status, TG_NOTFOUND);
		ans = tg_dns_answer_free(ans);
	}
}

/* test_offline_miss - what the data does not cover fails at once */
static void
test_offline_miss(void **state)
{
	static const char *const names[] = {
		"unknown.example.org", "x.host.example.org", "example.net",
		"www.google.com",
	};
	struct tg_dns_answer	*ans;
	struct tg_err		 err;
	double			 t0;
	size_t			 i;

	for (i = 0; i < TG_NITEMS(names); i++) {
		ans = (struct tg_dns_answer *)&ans;
		t0 = dns_test_now();
		assert_int_equal(tg_dns_resolve(dns_test_dns, names[i],
		    TG_DNS_A, &ans, &err), TG_TEMP);
		assert_true(dns_test_now() - t0 < 2.0);
		assert_null(ans);
		assert_int_equal(err.status, TG_TEMP);
		assert_non_null(strstr(err.text,
		    "offline: name not in local data"));
	}
}

/* test_fail_lines - $TIMEOUT and $SERVFAIL, any type, any case */
static void
test_fail_lines(void **state)
{
	static const struct {
		const char	*name;
		int		 type;
		const char	*want;
	} cases[] = {
		{ "slow.example.net", TG_DNS_TXT, "timeout" },
		{ "SLOW.example.NET.", TG_DNS_A, "timeout" },
		{ "broken.example.net", TG_DNS_A, "servfail" },
		{ "broken.example.net.", TG_DNS_MX, "servfail" },
	};
	struct tg_dns_answer	*ans;
	struct tg_err		 err;
	double			 t0;
	size_t			 i;

	for (i = 0; i < TG_NITEMS(cases); i++) {
		t0 = dns_test_now();
		assert_int_equal(tg_dns_resolve(dns_test_dns, cases[i].name,
		    cases[i].type, &ans, &err), TG_TEMP);
		assert_true(dns_test_now() - t0 < 2.0);
		assert_null(ans);
		assert_non_null(strstr(err.text, cases[i].want));
	}
}

/* test_bad_data - syntax errors name the line; no data after a query */
static void
test_bad_data(void **state)
{
	static const char *const bad[] = {
		"bad.example. 300 IN A not-an-address",
		"bad.example. 300 IN TXT",
		"bad.example. 300 IN TXT \"open",
		"bad.example. 300 IN",
		"bad..example. 300 IN A 192.0.2.1",
		"$TIMEOUT",
		"$TIMEOUT a.example. b.example.",
		"$ORIGIN example.com.",
	};
	char			 path[] = "/tmp/dns_test.XXXXXX";
	struct tg_dns_conf	 conf = { .timeout = 5, .offline = true };
	struct tg_dns		*dns;
	struct tg_err		 err;
	size_t			 i;

	dns = dns_test_offline();
	for (i = 0; i < TG_NITEMS(bad); i++) {
		assert_int_equal(tg_dns_load_line(dns, bad[i], &err), TG_PERM);
		assert_int_equal(err.status, TG_PERM);
	}
	assert_non_null(strstr(err.text, "$ORIGIN"));
	assert_int_equal(tg_dns_load_line(dns,
	    "ok.example. 300 IN A 192.0.2.9", &err), TG_OK);
	assert_int_equal(tg_dns_load_line(dns, "  ; comment", &err), TG_OK);
	assert_int_equal(tg_dns_resolve(dns, "ok.example", TG_DNS_A, NULL,
	    NULL), TG_OK);
	assert_int_equal(tg_dns_load_line(dns,
	    "late.example. 300 IN A 192.0.2.9", &err), TG_PERM);
	assert_non_null(strstr(err.text, "before the first query"));
	dns = tg_dns_free(dns);

	dns_test_write(path, "; ok\nok.example. 300 IN A 192.0.2.9\n"
	    "bad.example. 300 IN A 192.0.2.999\n");
	conf.local_data = path;
	assert_null(tg_dns_new(&conf, &err));
	assert_int_equal(err.status, TG_PERM);
	assert_non_null(strstr(err.text, path));
	assert_non_null(strstr(err.text, ":3:"));
	assert_non_null(strstr(err.text, "192.0.2.999"));
	(void)unlink(path);

	conf.local_data = "/nonexistent/zone.txt";
	assert_null(tg_dns_new(&conf, &err));
	assert_int_equal(err.status, TG_PERM);
	conf.local_data = NULL;
	conf.timeout = 0;
	assert_null(tg_dns_new(&conf, &err));
}

/*
 * test_odd_bytes - a label may hold any byte but the dot (RFC 2181 11):
 * SPF macros build names with spaces and '%'.  The query takes raw
 * bytes; local data writes them as zone files do ("\\032").
 */
static void
test_odd_bytes(void **state)
{
	static const unsigned char	 want[4] = { 192, 0, 2, 9 };
	struct tg_dns_answer		*ans;

	assert_int_equal(tg_dns_resolve(dns_test_dns, "ODD name%.example.com",
	    TG_DNS_A, &ans, NULL), TG_OK);
	assert_int_equal(ans->count, 1);
	assert_memory_equal(ans->rdata[0], want, 4);
	ans = tg_dns_answer_free(ans);
	/* authoritative: the same bytes but one are NXDOMAIN, not an error */
	assert_int_equal(tg_dns_resolve(dns_test_dns, "odd name.example.com",
	    TG_DNS_A, &ans, NULL), TG_NOTFOUND);
	ans = tg_dns_answer_free(ans);
}

/* test_bad_name - malformed names are TG_PERM without a query */
static void
test_bad_name(void **state)
{
	static const char *const bad[] = {
		"", ".example.com", "a..example.com", "example.com..",
	};
	char			 label[70], name[300];
	struct tg_dns_answer	*ans;
	struct tg_err		 err;
	size_t			 i;

	for (i = 0; i < TG_NITEMS(bad); i++) {
		ans = (struct tg_dns_answer *)&ans;
		assert_int_equal(tg_dns_resolve(dns_test_dns, bad[i], TG_DNS_A,
		    &ans, &err), TG_PERM);
		assert_null(ans);
		assert_non_null(strstr(err.text, "malformed"));
	}
	memset(label, 'a', 64);
	label[64] = '\0';
	/* a 64-octet label; then 63 octets, which is fine */
	assert_int_equal(tg_dns_resolve(dns_test_dns, label, TG_DNS_A, &ans,
	    NULL), TG_PERM);
	label[63] = '\0';
	assert_int_equal(tg_dns_resolve(dns_test_dns, label, TG_DNS_A, &ans,
	    NULL), TG_TEMP);
	/* 253 octets is the longest name, with or without the dot */
	for (i = 0; i < 253; i++)
		name[i] = i % 2 == 0 ? 'c' : '.';
	name[253] = '\0';
	assert_int_equal(tg_dns_resolve(dns_test_dns, name, TG_DNS_A, &ans,
	    NULL), TG_TEMP);
	name[253] = '.';
	name[254] = '\0';
	assert_int_equal(tg_dns_resolve(dns_test_dns, name, TG_DNS_A, &ans,
	    NULL), TG_TEMP);
	name[253] = 'c';
	name[254] = '\0';
	assert_int_equal(tg_dns_resolve(dns_test_dns, name, TG_DNS_A, &ans,
	    NULL), TG_PERM);
	assert_int_equal(tg_dns_resolve(dns_test_dns, "example.com", 0, &ans,
	    NULL), TG_PERM);
}

/* test_async - start several, collect them in another order */
static void
test_async(void **state)
{
	static const struct {
		const char	*name;
		int		 type;
		enum tg_status	 want;
	} cases[] = {
		{ "example.com", TG_DNS_A, TG_OK },
		{ "nope.example.com", TG_DNS_A, TG_NOTFOUND },
		{ "unknown.example.org", TG_DNS_TXT, TG_TEMP },
		{ "sel._domainkey.example.com", TG_DNS_TXT, TG_OK },
		{ "", TG_DNS_TXT, TG_PERM },
	};
	struct tg_dns_query	*q[TG_NITEMS(cases)];
	struct tg_dns_answer	*ans;
	size_t			 i;

	for (i = 0; i < TG_NITEMS(cases); i++) {
		q[i] = tg_dns_start(dns_test_dns, cases[i].name, cases[i].type);
		assert_non_null(q[i]);
	}
	for (i = TG_NITEMS(cases); i-- > 0;) {
		assert_int_equal(tg_dns_wait(q[i], &ans, NULL), cases[i].want);
		assert_true((ans != NULL) == (cases[i].want == TG_OK ||
		    cases[i].want == TG_NOTFOUND));
		ans = tg_dns_answer_free(ans);
	}
}

/* dns_test_worker - resolve a mix over and over; count surprises */
static void *
dns_test_worker(void *arg)
{
	static const struct {
		const char	*name;
		int		 type;
		enum tg_status	 want;
		size_t		 count;
	} cases[] = {
		{ "www.example.com", TG_DNS_A, TG_OK, 2 },
		{ "sel._domainkey.example.com", TG_DNS_TXT, TG_OK, 1 },
		{ "alias.example.com", TG_DNS_A, TG_OK, 2 },
		{ "nope.example.com", TG_DNS_A, TG_NOTFOUND, 0 },
		{ "host.example.org", TG_DNS_MX, TG_NOTFOUND, 0 },
		{ "other.example.org", TG_DNS_A, TG_TEMP, 0 },
		{ "slow.example.net", TG_DNS_A, TG_TEMP, 0 },
		{ "bad..name", TG_DNS_A, TG_PERM, 0 },
	};
	struct tg_dns_answer	*ans;
	struct tg_dns_query	*q;
	int			*bad = arg;
	size_t			 i, r;

	for (r = 0; r < DNS_TEST_ROUNDS; r++) {
		for (i = 0; i < TG_NITEMS(cases); i++) {
			if (tg_dns_resolve(dns_test_dns, cases[i].name,
			    cases[i].type, &ans, NULL) != cases[i].want ||
			    (ans != NULL && ans->count != cases[i].count))
				(*bad)++;
			ans = tg_dns_answer_free(ans);
		}
		/* and one left to cancel */
		q = tg_dns_start(dns_test_dns, cases[r % TG_NITEMS(cases)].name,
		    TG_DNS_A);
		tg_dns_cancel(q);
	}
	return NULL;
}

/* test_threads - eight threads at once on the shared resolver */
static void
test_threads(void **state)
{
	pthread_t	t[DNS_TEST_THREADS];
	int		bad[DNS_TEST_THREADS];
	size_t		i;

	for (i = 0; i < DNS_TEST_THREADS; i++) {
		bad[i] = 0;
		assert_int_equal(pthread_create(&t[i], NULL, dns_test_worker,
		    &bad[i]), 0);
	}
	for (i = 0; i < DNS_TEST_THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(bad[i], 0);
	}
}

/* test_cancel - queries never waited on, done or not, leak nothing */
static void
test_cancel(void **state)
{
	struct tg_dns_query	*q[50];
	struct tg_dns		*dns;
	size_t			 i;
	char			 name[64];
	int			 n;

	tg_dns_cancel(NULL);
	tg_dns_cancel(tg_dns_start(dns_test_dns, "", TG_DNS_A));
	tg_dns_cancel(tg_dns_start(dns_test_dns, "fresh1.example.com",
	    TG_DNS_A));
	q[0] = tg_dns_start(dns_test_dns, "fresh2.example.com", TG_DNS_A);
	(void)usleep(100000);
	tg_dns_cancel(q[0]);

	/* a resolver freed with cancelled queries still in flight */
	dns = dns_test_offline();
	for (i = 0; i < TG_NITEMS(q); i++) {
		n = snprintf(name, sizeof(name), "n%zu.example.org", i);
		assert_true(n > 0 && (size_t)n < sizeof(name));
		q[i] = tg_dns_start(dns, name, TG_DNS_TXT);
	}
	for (i = 0; i < TG_NITEMS(q); i++)
		tg_dns_cancel(q[i]);
	dns = tg_dns_free(dns);
}

/* test_log - one debug line per result, nothing louder */
static void
test_log(void **state)
{
	int	debug = 0;

	tg_log_set_sink(dns_test_sink, &debug);
	tg_log_set_level(TG_LOG_DEBUG);
	assert_int_equal(tg_dns_resolve(dns_test_dns, "example.com", TG_DNS_A,
	    NULL, NULL), TG_OK);
	assert_int_equal(tg_dns_resolve(dns_test_dns, "nope.example.com",
	    TG_DNS_A, NULL, NULL), TG_NOTFOUND);
	tg_log_set_level(TG_LOG_INFO);
	tg_log_set_sink(dns_test_sink, NULL);
	assert_int_equal(debug, 2);
}

/* A loopback responder: "answer.*" gets A 192.0.2.55, the rest nothing. */
struct dns_test_server {
	int		 fd;
	int		 port;
	int		 stop;
	int		 queries;
	pthread_t	 thread;
};

/* dns_test_reply - answer one query in buf (n bytes) if it asks "answer" */
static void
dns_test_reply(struct dns_test_server *s, unsigned char *buf, size_t n,
    const struct sockaddr_in *from)
{
	static const unsigned char rr[] = {
		0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 77, 0, 4, 192, 0, 2, 55,
	};
	unsigned char	out[600];
	size_t		qend = 12;

	if (n < 17 || buf[12] != 6 || memcmp(buf + 13, "answer", 6) != 0)
		return;
	while (qend < n && buf[qend] != 0)
		qend += 1 + buf[qend];
	qend += 5;
	if (qend > n || qend + sizeof(rr) > sizeof(out))
		return;
	memcpy(out, buf, qend);
	out[2] = 0x81;
	out[3] = 0x80;
	out[7] = 1;			/* ANCOUNT */
	out[8] = out[9] = out[10] = out[11] = 0;
	memcpy(out + qend, rr, sizeof(rr));
	(void)sendto(s->fd, out, qend + sizeof(rr), 0,
	    (const struct sockaddr *)from, sizeof(*from));
}

/* dns_test_serve - the responder's loop */
static void *
dns_test_serve(void *arg)
{
	struct dns_test_server	*s = arg;
	struct sockaddr_in	 from;
	struct pollfd		 pfd = { .fd = s->fd, .events = POLLIN };
	unsigned char		 buf[512];
	socklen_t		 flen;
	ssize_t			 n;

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		flen = sizeof(from);
		n = recvfrom(s->fd, buf, sizeof(buf), 0,
		    (struct sockaddr *)&from, &flen);
		if (n <= 0)
			continue;
		__atomic_add_fetch(&s->queries, 1, __ATOMIC_RELAXED);
		dns_test_reply(s, buf, (size_t)n, &from);
	}
	return NULL;
}

/* dns_test_server_start - bind 127.0.0.1 on a free port and serve */
static void
dns_test_server_start(struct dns_test_server *s)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	socklen_t		len = sizeof(sin);

	memset(s, 0, sizeof(*s));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(s->fd != -1);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sin, &len), 0);
	s->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, dns_test_serve, s),
	    0);
}

/* dns_test_server_stop - stop serving */
static void
dns_test_server_stop(struct dns_test_server *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	(void)close(s->fd);
}

/* test_forwarder - answers through a forwarder; a silent one times out */
static void
test_forwarder(void **state)
{
	struct dns_test_server	 srv;
	struct tg_dns_conf	 conf = { .timeout = 1 };
	struct tg_dns_answer	*ans;
	struct tg_dns_query	*q;
	struct tg_dns		*dns;
	struct tg_err		 err;
	char			 fwd[64];
	double			 t0, dt;
	int			 n;
	size_t			 i;

	dns_test_server_start(&srv);
	n = snprintf(fwd, sizeof(fwd), "127.0.0.1@%d", srv.port);
	assert_true(n > 0 && (size_t)n < sizeof(fwd));
	conf.forwarders = fwd;
	dns = tg_dns_new(&conf, &err);
	assert_non_null(dns);
	assert_int_equal(tg_dns_load_line(dns, "$SERVFAIL answer.fail.example.",
	    &err), TG_OK);

	assert_int_equal(tg_dns_resolve(dns, "answer.example.net", TG_DNS_A,
	    &ans, &err), TG_OK);
	assert_int_equal(ans->count, 1);
	assert_int_equal(ans->ttl, 77);
	ans = tg_dns_answer_free(ans);
	assert_int_equal(tg_dns_resolve(dns, "answer.fail.example", TG_DNS_A,
	    &ans, &err), TG_TEMP);

	t0 = dns_test_now();
	assert_int_equal(tg_dns_resolve(dns, "silent.example.net", TG_DNS_A,
	    &ans, &err), TG_TEMP);
	dt = dns_test_now() - t0;
	assert_true(dt > 0.9 && dt < 3.0);
	assert_null(ans);
	assert_non_null(strstr(err.text, "timeout"));

	/* cancels racing the answers: some land after ub_process took it */
	for (i = 0; i < 300; i++) {
		n = snprintf(fwd, sizeof(fwd), "answer.r%zu.example", i);
		assert_true(n > 0 && (size_t)n < sizeof(fwd));
		q = tg_dns_start(dns, fwd, TG_DNS_A);
		(void)usleep((useconds_t)(rand() % 400));
		tg_dns_cancel(q);
	}
	dns = tg_dns_free(dns);
	assert_true(__atomic_load_n(&srv.queries, __ATOMIC_RELAXED) >= 2);
	dns_test_server_stop(&srv);

	conf.forwarders = "not-an-address";
	assert_null(tg_dns_new(&conf, &err));
	assert_non_null(strstr(err.text, "not-an-address"));
}

/* test_resolv_conf - servers from a resolv.conf; a missing one fails */
static void
test_resolv_conf(void **state)
{
	char			 path[] = "/tmp/dns_test.XXXXXX";
	struct tg_dns_conf	 conf = { .timeout = 1 };
	struct tg_dns		*dns;
	struct tg_err		 err;

	conf.resolv_conf = "/nonexistent/resolv.conf";
	assert_null(tg_dns_new(&conf, &err));
	assert_int_equal(err.status, TG_PERM);
	assert_non_null(strstr(err.text, conf.resolv_conf));
	dns_test_write(path, "search example.com\nnameserver 127.0.0.1\n");
	conf.resolv_conf = path;
	dns = tg_dns_new(&conf, &err);
	assert_non_null(dns);
	dns = tg_dns_free(dns);
	(void)unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_txt_malformed),
		cmocka_unit_test(test_a_aaaa),
		cmocka_unit_test(test_cname),
		cmocka_unit_test(test_negative),
		cmocka_unit_test(test_offline_miss),
		cmocka_unit_test(test_fail_lines),
		cmocka_unit_test(test_bad_data),
		cmocka_unit_test(test_odd_bytes),
		cmocka_unit_test(test_bad_name),
		cmocka_unit_test(test_async),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_log),
		cmocka_unit_test(test_forwarder),
		cmocka_unit_test(test_resolv_conf),
	};

	return cmocka_run_group_tests(tests, dns_test_setup,
	    dns_test_teardown);
}
