/*
 * metrics_test - the Prometheus text format (escaping, labels, "other",
 * cumulative buckets, _sum and _count), updates from many threads, and
 * the HTTP endpoint over a real socket.
 */
#include "config.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tollgate/buf.h"
#include "tollgate/metrics.h"
#include "tollgate/util.h"

#define NTHREADS	8
#define NPER		50000

/* render - the text of scope, as a string the caller frees */
static char *
render(unsigned int scope)
{
	struct tg_buf	b;

	tg_buf_init(&b);
	tg_metrics_render(&b, scope);
	return tg_buf_steal(&b);
}

/* has_line - text contains exactly this line */
static bool
has_line(const char *text, const char *line)
{
	const char	*p = text;
	size_t		 n = strlen(line);

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
		p += n;
	}
	return false;
}

/* expect_line - fail with the text when the line is missing */
static void
expect_line(const char *text, const char *line)
{
	if (!has_line(text, line))
		fail_msg("missing line \"%s\" in:\n%s", line, text);
}

/* test_escape - label values and HELP text */
static void
test_escape(void **state)
{
	static const struct {
		const char	*in, *label, *help;
	} cases[] = {
		{ "plain", "plain", "plain" },
		{ "a\"b", "a\\\"b", "a\"b" },
		{ "back\\slash", "back\\\\slash", "back\\\\slash" },
		{ "two\nlines", "two\\nlines", "two\\nlines" },
		{ "\\\"\n", "\\\\\\\"\\n", "\\\\\"\\n" },
		{ "", "", "" },
	};
	struct tg_buf	b;
	size_t		i;

	(void)state;
	tg_buf_init(&b);
	for (i = 0; i < TG_NITEMS(cases); i++) {
		tg_buf_reset(&b);
		tg_metrics_escape_label(&b, cases[i].in);
		assert_string_equal(tg_buf_cstr(&b), cases[i].label);
		tg_buf_reset(&b);
		tg_metrics_escape_help(&b, cases[i].in);
		assert_string_equal(tg_buf_cstr(&b), cases[i].help);
	}
	tg_buf_fini(&b);
}

/* test_counters - labels, first words, case, "other", scope */
static void
test_counters(void **state)
{
	char	*t;

	(void)state;
	tg_metrics_reset();
	tg_metric_inc(TG_M_MESSAGES, "accept", NULL);
	tg_metric_inc(TG_M_MESSAGES, "accept", NULL);
	tg_metric_inc(TG_M_MESSAGES, "REJECT", NULL);
	tg_metric_inc(TG_M_MESSAGES, "bogus\"value\n", NULL);
	tg_metric_inc(TG_M_MODULE_RESULTS, "dmarc", "pass p=reject dis=none");
	tg_metric_inc(TG_M_MODULE_RESULTS, "dkim", "signed:example.com");
	tg_metric_inc(TG_M_MODULE_RESULTS, "nosuch", NULL);
	tg_metric_inc(TG_M_POLICYD_REQUESTS, "greylist",
	    "DEFER_IF_PERMIT 4.7.1 Greylisted, try again");
	tg_metric_add(TG_M_MILTER_CONNS, NULL, NULL, 3);
	tg_metric_add(TG_M_MILTER_CONNS, NULL, NULL, -1);
	tg_metric_set(TG_M_POLICYD_CLIENTS, NULL, NULL, 7);
	assert_int_equal(tg_metric_get(TG_M_MESSAGES, "accept", NULL), 2);
	assert_int_equal(tg_metric_get(TG_M_MESSAGES, "other", NULL), 1);

	t = render(TG_METRICS_MILTER);
	expect_line(t, "# HELP tollgate_messages_total Messages by final "
	    "action.");
	expect_line(t, "# TYPE tollgate_messages_total counter");
	expect_line(t, "tollgate_messages_total{action=\"accept\"} 2");
	expect_line(t, "tollgate_messages_total{action=\"reject\"} 1");
	expect_line(t, "tollgate_messages_total{action=\"discard\"} 0");
	expect_line(t, "tollgate_messages_total{action=\"other\"} 1");
	expect_line(t, "tollgate_module_results_total{module=\"dmarc\","
	    "result=\"pass\"} 1");
	expect_line(t, "tollgate_module_results_total{module=\"dkim\","
	    "result=\"signed\"} 1");
	expect_line(t, "tollgate_module_results_total{module=\"other\","
	    "result=\"other\"} 1");
	expect_line(t, "# TYPE tollgate_milter_connections gauge");
	expect_line(t, "tollgate_milter_connections 2");
	expect_line(t, "# TYPE process_start_time_seconds gauge");
	/* scope: the milter shows no policyd series, and the reverse */
	assert_null(strstr(t, "tollgate_policyd_"));
	assert_non_null(strstr(t, "tollgate_dns_queries_total{"));
	free(t);
	t = render(TG_METRICS_POLICYD);
	expect_line(t, "tollgate_policyd_requests_total{check=\"greylist\","
	    "action=\"defer_if_permit\"} 1");
	expect_line(t, "tollgate_policyd_clients 7");
	assert_null(strstr(t, "tollgate_messages_total"));
	assert_non_null(strstr(t, "tollgate_store_operations_total{"));
	free(t);
}

/* test_histogram - cumulative buckets, +Inf = _count, _sum, NaN */
static void
test_histogram(void **state)
{
	static const double obs[] = { 0.00005, 0.0001, 0.003, 0.003, 0.7,
	    20 };
	char	*t, *p, *end;
	double	 prev = -1, v;
	size_t	 i, nb = 0;

	(void)state;
	tg_metrics_reset();
	for (i = 0; i < TG_NITEMS(obs); i++)
		tg_metric_observe(TG_M_STAGE_SECONDS, "eom", obs[i]);
	tg_metric_observe(TG_M_STAGE_SECONDS, "eom", NAN);
	tg_metric_observe(TG_M_STAGE_SECONDS, "eom", INFINITY);
	tg_metrics_spam_score(-3.5);
	tg_metrics_spam_score(4);
	t = render(TG_METRICS_MILTER);
	expect_line(t, "# TYPE tollgate_stage_duration_seconds histogram");
	/* le is an upper bound: 0.0001 falls in the 0.0001 bucket */
	expect_line(t, "tollgate_stage_duration_seconds_bucket{stage=\"eom\","
	    "le=\"0.0001\"} 2");
	expect_line(t, "tollgate_stage_duration_seconds_bucket{stage=\"eom\","
	    "le=\"0.0025\"} 2");
	expect_line(t, "tollgate_stage_duration_seconds_bucket{stage=\"eom\","
	    "le=\"0.005\"} 4");
	expect_line(t, "tollgate_stage_duration_seconds_bucket{stage=\"eom\","
	    "le=\"1\"} 5");
	expect_line(t, "tollgate_stage_duration_seconds_bucket{stage=\"eom\","
	    "le=\"10\"} 5");
	expect_line(t, "tollgate_stage_duration_seconds_bucket{stage=\"eom\","
	    "le=\"+Inf\"} 6");
	expect_line(t, "tollgate_stage_duration_seconds_count{stage=\"eom\"} "
	    "6");
	expect_line(t, "tollgate_stage_duration_seconds_count{stage=\"rcpt\"} "
	    "0");
	expect_line(t, "tollgate_spam_score_bucket{le=\"-2\"} 1");
	expect_line(t, "tollgate_spam_score_bucket{le=\"4\"} 2");
	expect_line(t, "tollgate_spam_score_sum 0.5");
	expect_line(t, "tollgate_spam_score_count 2");
	p = strstr(t, "tollgate_stage_duration_seconds_sum{stage=\"eom\"} ");
	assert_non_null(p);
	v = strtod(strchr(p, '}') + 2, NULL);
	assert_true(fabs(v - 20.70615) < 1e-9);
	/* every eom bucket line is at least the one before */
	for (p = t; (p = strstr(p, "_bucket{stage=\"eom\",le=")) != NULL;
	    p = end) {
		end = strchr(p, '}') + 2;
		v = strtod(end, NULL);
		assert_true(v >= prev);
		prev = v;
		nb++;
	}
	assert_int_equal(nb, 16);
	free(t);
}

/* hammer - one thread's share of the concurrent updates */
static void *
hammer(void *arg)
{
	int	i;

	(void)arg;
	for (i = 0; i < NPER; i++) {
		tg_metric_inc(TG_M_DNS_QUERIES, "TXT", "ok");
		tg_metric_add(TG_M_MILTER_CONNS, NULL, NULL, 1);
		tg_metric_observe(TG_M_STORE_SECONDS, "reserve",
		    (double)(i % 4) * 0.25);
		tg_metric_add(TG_M_MILTER_CONNS, NULL, NULL, -1);
	}
	return NULL;
}

/* test_threads - no update is lost when many threads race */
static void
test_threads(void **state)
{
	pthread_t	 th[NTHREADS];
	char		*t, line[200];
	size_t		 i;

	(void)state;
	tg_metrics_reset();
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(tg_metric_get(TG_M_DNS_QUERIES, "txt", "ok"),
	    NTHREADS * NPER);
	assert_int_equal(tg_metric_get(TG_M_MILTER_CONNS, NULL, NULL), 0);
	t = render(TG_METRICS_MILTER);
	(void)snprintf(line, sizeof(line), "tollgate_store_operation_duration_"
	    "seconds_count{op=\"reserve\"} %d", NTHREADS * NPER);
	expect_line(t, line);
	/* quarters add up exactly in binary: 0 + .25 + .5 + .75 per 4 */
	(void)snprintf(line, sizeof(line), "tollgate_store_operation_duration_"
	    "seconds_sum{op=\"reserve\"} %d", NTHREADS * NPER / 4 * 3 / 2);
	expect_line(t, line);
	(void)snprintf(line, sizeof(line), "tollgate_store_operation_duration_"
	    "seconds_bucket{op=\"reserve\",le=\"0.25\"} %d",
	    NTHREADS * NPER / 2);
	expect_line(t, line);
	free(t);
}

/* tcp_open - a connected socket to the loopback port */
static int
tcp_open(unsigned int port)
{
	struct sockaddr_in	sin;
	int			fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* http_get - one request over a fresh connection; the whole answer */
static char *
http_get(unsigned int port, const char *req)
{
	struct tg_buf	 b;
	char		 chunk[4096];
	ssize_t		 n;
	int		 fd;

	fd = tcp_open(port);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	tg_buf_init(&b);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		tg_buf_append(&b, chunk, (size_t)n);
	(void)close(fd);
	return tg_buf_steal(&b);
}

/*
 * test_http_limit - 16 idle clients fill the server: a 17th is not
 * served while they stay (it waits in the kernel's queue) and is
 * answered once they leave.
 */
static void
test_http_limit(void **state)
{
	struct tg_metrics_http	*h;
	struct tg_err		 err;
	struct timeval		 tv = { 1, 0 };
	struct tg_buf		 b;
	unsigned int		 port;
	int			 fds[16], extra;
	char			 chunk[4096];
	ssize_t			 n;
	size_t			 i;

	(void)state;
	h = tg_metrics_http_start("127.0.0.1:0", TG_METRICS_POLICYD, &err);
	assert_non_null(h);
	port = tg_metrics_http_port(h);
	for (i = 0; i < TG_NITEMS(fds); i++)
		fds[i] = tcp_open(port);
	(void)usleep(300000);	/* let the server accept them all */
	extra = tcp_open(port);
	assert_int_equal(setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	assert_int_equal(write(extra, "GET /metrics HTTP/1.0\r\n\r\n", 26),
	    26);
	assert_int_equal(read(extra, chunk, sizeof(chunk)), -1);
	for (i = 0; i < TG_NITEMS(fds); i++)
		(void)close(fds[i]);
	tv.tv_sec = 5;
	assert_int_equal(setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	tg_buf_init(&b);
	while ((n = read(extra, chunk, sizeof(chunk))) > 0)
		tg_buf_append(&b, chunk, (size_t)n);
	(void)close(extra);
	assert_non_null(strstr(tg_buf_cstr(&b), " 200 OK"));
	assert_non_null(strstr(tg_buf_cstr(&b), "tollgate_policyd_clients"));
	tg_buf_fini(&b);
	h = tg_metrics_http_stop(h);
}

/* test_http - GET /metrics, 404 otherwise, bad and busy addresses */
static void
test_http(void **state)
{
	struct tg_metrics_http	*h, *h2;
	struct tg_err		 err;
	unsigned int		 port;
	long long		 start;
	char			*r, *p, spec[64];

	(void)state;
	tg_metrics_reset();
	tg_metric_inc(TG_M_MESSAGES, "discard", NULL);
	h = tg_metrics_http_start("127.0.0.1:0", TG_METRICS_MILTER, &err);
	assert_non_null(h);
	port = tg_metrics_http_port(h);
	assert_true(port > 0);
	r = http_get(port, "GET /metrics HTTP/1.0\r\n\r\n");
	if (strncmp(r, "HTTP/1.1 200 OK\r\n", 17) != 0)
		fail_msg("answer: %.200s", r);
	assert_non_null(strstr(r, "text/plain; version=0.0.4"));
	assert_non_null(strstr(r, "\ntollgate_messages_total{action=\"discard\"}"
	    " 1\n"));
	/* this test process started moments ago, not at the epoch */
	p = strstr(r, "\nprocess_start_time_seconds ");
	assert_non_null(p);
	start = strtoll(p + 28, NULL, 10);
	assert_true(start <= (long long)time(NULL) &&
	    start >= (long long)time(NULL) - 120);
	free(r);
	r = http_get(port, "GET /other HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, " 404 "));
	assert_null(strstr(r, "tollgate_"));
	free(r);
	r = http_get(port, "POST /metrics HTTP/1.0\r\nContent-Length: 2"
	    "\r\n\r\nxx");
	assert_non_null(strstr(r, " 404 "));
	free(r);
	r = http_get(port, "GET /metrics/ HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 404 "));
	free(r);
	/* the port is taken now */
	(void)snprintf(spec, sizeof(spec), "%u", port);
	h2 = tg_metrics_http_start(spec, TG_METRICS_MILTER, &err);
	assert_null(h2);
	assert_int_equal(err.status, TG_PERM);
	assert_non_null(strstr(err.text, "cannot listen"));
	h = tg_metrics_http_stop(h);
	assert_null(h);
	assert_null(tg_metrics_http_stop(NULL));
}

/* test_bad_listen - what metrics_listen refuses */
static void
test_bad_listen(void **state)
{
	static const char *const bad[] = {
		"", "localhost:9100", "127.0.0.1:", "127.0.0.1:65536",
		"127.0.0.1:-1", "[::1", "1.2.3:80", "x", "[]:80",
	};
	struct tg_err	err;
	size_t		i;

	(void)state;
	for (i = 0; i < TG_NITEMS(bad); i++) {
		if (tg_metrics_http_start(bad[i], TG_METRICS_MILTER, &err) !=
		    NULL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(strstr(err.text, "metrics_listen"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_http_limit),
		cmocka_unit_test(test_bad_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
