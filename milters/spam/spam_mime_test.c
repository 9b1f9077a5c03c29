/*
 * spam_mime_test - the MIME extraction alone: nested multiparts and
 * message/rfc822, broken base64, mislabelled charsets, a 1 MB line,
 * RFC 2047 headers, HTML rendering, URI extraction, every limit
 * (50 MB message, 10,000 parts, 131,072 headers, deep nesting),
 * malformed structure.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <cmocka.h>
#include <glib.h>
#include <pthread.h>

#include "tollgate/buf.h"
#include "tollgate/util.h"

#include "spam_int.h"

static const struct spam_limits test_lim = {
	.max_scan_bytes = 1024 * 1024,
	.max_body_text = 256 * 1024,
	.max_parts = 100,
	.max_depth = 10,
	.max_uris = 50,
	.max_headers = 1000,
};

/* test_parse - parse a '\n'-line-ended literal as CRLF */
static struct spam_msg *
test_parse(const char *lf, const struct spam_limits *lim, char **keep)
{
	struct tg_buf	b;

	tg_buf_init(&b);
	for (; *lf != '\0'; lf++) {
		if (*lf == '\n')
			tg_buf_putc(&b, '\r');
		tg_buf_putc(&b, *lf);
	}
	*keep = tg_buf_steal(&b);
	return spam_mime_parse(*keep, strlen(*keep), lim);
}

static bool
test_has_uri(const struct spam_msg *m, const char *u)
{
	size_t	i;

	for (i = 0; i < m->nuris; i++)
		if (strcmp(m->uris[i], u) == 0)
			return true;
	return false;
}

static bool
test_has_domain(const struct spam_msg *m, const char *d)
{
	size_t	i;

	for (i = 0; i < m->nuri_domains; i++)
		if (strcmp(m->uri_domains[i], d) == 0)
			return true;
	return false;
}

static void
test_headers(void **state)
{
	struct spam_msg			*m;
	const struct spam_header	*h;
	char				*keep;

	(void)state;
	m = test_parse("From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.org>\n"
	    "Subject: =?iso-8859-1?q?Gr=FC=DFe?= and\n"
	    " =?utf-8?q?more?=\n"
	    "X-Broken: =?utf-8?b?###?=\n"
	    "Received: from a\n\tby b\n"
	    "\n"
	    "hello\n", &test_lim, &keep);
	assert_int_equal(m->nheaders, 4);
	h = spam_msg_header(m, "subject", 0);
	assert_non_null(h);
	assert_string_equal(h->raw,
	    "=?iso-8859-1?q?Gr=FC=DFe?= and =?utf-8?q?more?=");
	assert_string_equal(h->decoded, "Grüße and more");
	h = spam_msg_header(m, "From", 0);
	assert_non_null(strstr(h->decoded, "Jürgen"));
	h = spam_msg_header(m, "Received", 0);
	assert_string_equal(h->raw, "from a\tby b");
	assert_null(spam_msg_header(m, "Received", 1));
	h = spam_msg_header(m, "X-Broken", 0);
	assert_non_null(h->decoded);
	/* body: the Subject first, then the text */
	assert_non_null(strstr(m->body, "Grüße and more\nhello\n"));
	assert_ptr_equal(m->full, keep);
	spam_msg_free(m);
	free(keep);
}

static void
test_nested(void **state)
{
	struct spam_msg	*m;
	char		*keep;
	size_t		 i;
	bool		 zip = false;

	(void)state;
	m = test_parse("Subject: nest\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"A\"\n"
	    "\n"
	    "--A\n"
	    "Content-Type: multipart/alternative; boundary=\"B\"\n"
	    "\n"
	    "--B\n"
	    "Content-Type: text/plain; charset=us-ascii\n"
	    "\n"
	    "plain words\n"
	    "--B\n"
	    "Content-Type: text/html; charset=utf-8\n"
	    "Content-Transfer-Encoding: quoted-printable\n"
	    "\n"
	    "<p>html=20words</p>\n"
	    "--B--\n"
	    "--A\n"
	    "Content-Type: message/rfc822\n"
	    "\n"
	    "Subject: inner\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "inner body\n"
	    "--A\n"
	    "Content-Type: application/zip; name=\"x.zip\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "Content-Disposition: attachment; filename=\"x.zip\"\n"
	    "\n"
	    "UEsDBAo=\n"
	    "--A--\n", &test_lim, &keep);
	assert_int_equal(m->nparts, 4);
	/* every top-level header, Content-Type too, in order */
	assert_int_equal(m->nheaders, 3);
	assert_string_equal(m->headers[2].name, "Content-Type");
	assert_string_equal(m->headers[2].raw, "multipart/mixed; boundary=\"A\"");
	assert_null(spam_msg_header(m, "Content-Disposition", 0));
	assert_non_null(strstr(m->body, "plain words"));
	assert_non_null(strstr(m->body, "html words"));
	assert_non_null(strstr(m->body, "inner body"));
	assert_null(strstr(m->body, "<p>"));
	assert_non_null(strstr(m->rawbody, "<p>html words</p>"));
	assert_true(m->has_html);
	for (i = 0; i < m->nparts; i++) {
		if (strcmp(m->parts[i].type, "application/zip") == 0) {
			assert_string_equal(m->parts[i].filename, "x.zip");
			assert_true(m->parts[i].attachment);
			assert_int_equal(m->parts[i].decoded_size, 5);
			zip = true;
		}
	}
	assert_true(zip);
	assert_false(m->truncated);
	assert_false(m->malformed);
	spam_msg_free(m);
	free(keep);
}

static void
test_base64(void **state)
{
	struct spam_msg	*m;
	char		*keep;

	(void)state;
	m = test_parse("Content-Type: text/plain\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "aGVsbG8gd29ybGQ=\n", &test_lim, &keep);
	assert_non_null(strstr(m->body, "hello world"));
	assert_false(m->parts[0].broken);
	spam_msg_free(m);
	free(keep);
	m = test_parse("Content-Type: text/plain\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "aGVsbG8g!!d29y*bGQ\n"
	    "%%%\n", &test_lim, &keep);
	assert_int_equal(m->nparts, 1);
	assert_true(m->parts[0].broken);
	spam_msg_free(m);
	free(keep);
}

static void
test_charsets(void **state)
{
	struct spam_msg	*m;
	char		*keep;

	(void)state;
	/* declared correctly */
	m = test_parse("Content-Type: text/plain; charset=ISO-8859-1\n"
	    "Content-Transfer-Encoding: quoted-printable\n"
	    "\n"
	    "caf=E9\n", &test_lim, &keep);
	assert_non_null(strstr(m->body, "café"));
	assert_string_equal(m->parts[0].charset, "iso-8859-1");
	spam_msg_free(m);
	free(keep);
	/* labelled us-ascii, really UTF-8 */
	m = test_parse("Content-Type: text/plain; charset=us-ascii\n"
	    "Content-Transfer-Encoding: 8bit\n"
	    "\n"
	    "na\xc3\xafve\n", &test_lim, &keep);
	assert_non_null(strstr(m->body, "naïve"));
	assert_true(m->parts[0].broken);
	spam_msg_free(m);
	free(keep);
	/* labelled utf-8, really windows-1252 (curly quotes) */
	m = test_parse("Content-Type: text/plain; charset=utf-8\n"
	    "Content-Transfer-Encoding: 8bit\n"
	    "\n"
	    "\x93quoted\x94 caf\xe9\n", &test_lim, &keep);
	assert_non_null(strstr(m->body, "\xe2\x80\x9cquoted\xe2\x80\x9d café"));
	spam_msg_free(m);
	free(keep);
	/* an unknown charset: UTF-8 then windows-1252 */
	m = test_parse("Content-Type: text/plain; charset=x-no-such\n"
	    "\n"
	    "caf\xe9\n", &test_lim, &keep);
	assert_non_null(strstr(m->body, "café"));
	assert_true(m->parts[0].broken);
	spam_msg_free(m);
	free(keep);
	/* NUL bytes in a mislabelled part (found by mutation fuzzing: the
	 * fallback once copied up to the NUL and read past the copy) */
	{
		static const char nul[] = "Content-Type: text/plain; "
		    "charset=us-ascii\r\n\r\nab\0cd\xff\xfe\0\r\n";

		m = spam_mime_parse(nul, sizeof(nul) - 1, &test_lim);
		assert_int_equal(strlen(m->body), m->body_len);
		assert_non_null(strstr(m->body, "ab?cd"));
		spam_msg_free(m);
	}
}

static void
test_huge_line(void **state)
{
	struct tg_buf	 b;
	struct spam_msg	*m;
	char		*keep;
	size_t		 i;

	(void)state;
	tg_buf_init(&b);
	tg_buf_puts(&b, "Subject: long\n"
	    "Content-Type: text/plain; charset=utf-8\n\n");
	/* two-byte characters, so the cut must fall between them */
	tg_buf_puts(&b, "xy");
	for (i = 0; i < 512 * 1024; i++)
		tg_buf_puts(&b, "\xc3\xa9");
	tg_buf_puts(&b, "\nend\n");
	m = test_parse(tg_buf_cstr(&b), &test_lim, &keep);
	/* the text is capped at max_body_text and says so */
	assert_true(m->body_len <= test_lim.max_body_text + 2);
	assert_true(m->rawbody_len <= test_lim.max_body_text + 2);
	assert_true(m->truncated);
	assert_true(g_utf8_validate(m->body, (gssize)m->body_len, NULL));
	assert_true(g_utf8_validate(m->rawbody, (gssize)m->rawbody_len, NULL));
	spam_msg_free(m);
	free(keep);
	tg_buf_fini(&b);
}

/* test_html_deep - 100 levels of nesting are rendered; 6,000 stop
 * libxml2 at its depth limit (256; XML_PARSE_HUGE is not used): the
 * text before is kept, the message is truncated */
static void
test_html_deep(void **state)
{
	struct tg_buf	 b;
	struct spam_msg	*m;
	char		*keep;
	size_t		 i;

	(void)state;
	tg_buf_init(&b);
	tg_buf_puts(&b, "Content-Type: text/html\n\n");
	for (i = 0; i < 50; i++)
		tg_buf_puts(&b, "<div><b>");
	tg_buf_puts(&b, "hidden deep <a href=\"http://deep.example/\">x</a>\n");
	m = test_parse(tg_buf_cstr(&b), &test_lim, &keep);
	assert_non_null(strstr(m->body, "hidden deep x"));
	assert_true(test_has_domain(m, "deep.example"));
	assert_false(m->truncated);
	spam_msg_free(m);
	free(keep);

	tg_buf_reset(&b);
	tg_buf_puts(&b, "Content-Type: text/html\n\n<p>shallow words</p>");
	for (i = 0; i < 3000; i++)
		tg_buf_puts(&b, "<div><b>");
	tg_buf_puts(&b, "hidden deep <a href=\"http://deep.example/\">x</a>\n");
	m = test_parse(tg_buf_cstr(&b), &test_lim, &keep);
	assert_non_null(strstr(m->body, "shallow words"));
	assert_null(strstr(m->body, "hidden deep"));
	assert_true(m->truncated);
	spam_msg_free(m);
	free(keep);
	tg_buf_fini(&b);
}

static void
test_html(void **state)
{
	struct spam_msg	*m;
	char		*keep;

	(void)state;
	m = test_parse("Content-Type: text/html; charset=utf-8\n"
	    "\n"
	    "<html><head><title>t</title><style>p {color:red}</style>\n"
	    "<script>var spam = 'hidden';</script></head>\n"
	    "<body><p>Buy &amp; save &euro;5&nbsp;now</p>\n"
	    "<div>Click <a href=\"HTTP://Shop.Example.COM/x?y=1\">here</a>"
	    "<br>or <b>there</b></div><img src=\"http://img.example.net/a.gif\">"
	    "<p>unclosed <i>tags <table><tr><td>cell1<td>cell2"
	    "</body></html>\n", &test_lim, &keep);
	assert_true(m->has_html);
	assert_null(strstr(m->body, "hidden"));
	assert_null(strstr(m->body, "color"));
	assert_non_null(strstr(m->body, "Buy & save €5 now\n"));
	assert_non_null(strstr(m->body, "Click here\n"));
	assert_non_null(strstr(m->body, "or there\n"));
	assert_non_null(strstr(m->body, "cell1"));
	assert_non_null(strstr(m->body, "cell2"));
	assert_true(test_has_uri(m, "HTTP://Shop.Example.COM/x?y=1"));
	assert_true(test_has_domain(m, "shop.example.com"));
	assert_true(test_has_domain(m, "img.example.net"));
	spam_msg_free(m);
	free(keep);
	/* garbage markup: no crash, some text */
	m = test_parse("Content-Type: text/html\n"
	    "\n"
	    "<<<>>><a href=><p <p <p>text&#xZZ;&#99999999;<//>\n",
	    &test_lim, &keep);
	assert_non_null(strstr(m->body, "text"));
	spam_msg_free(m);
	free(keep);
}

static void
test_uris(void **state)
{
	struct spam_msg	*m;
	char		*keep;

	(void)state;
	m = test_parse("Content-Type: text/plain\n"
	    "\n"
	    "see http://user:pw@Evil.Example.ORG:8080/p, or\n"
	    "(www.Example.com/page). Mail mailto:Bob@Mail.Example.net.\n"
	    "again http://evil.example.org/q and https://evil.example.org.\n"
	    "not a uri: xwww.nope.test or http:// alone\n", &test_lim, &keep);
	assert_true(test_has_uri(m, "http://user:pw@Evil.Example.ORG:8080/p"));
	assert_true(test_has_uri(m, "www.Example.com/page"));
	assert_true(test_has_uri(m, "mailto:Bob@Mail.Example.net"));
	assert_true(test_has_uri(m, "https://evil.example.org"));
	assert_true(test_has_domain(m, "evil.example.org"));
	assert_true(test_has_domain(m, "www.example.com"));
	assert_true(test_has_domain(m, "mail.example.net"));
	assert_false(test_has_domain(m, "nope.test"));
	assert_false(test_has_domain(m, "xwww.nope.test"));
	/* evil.example.org once, though three URIs name it */
	assert_int_equal(m->nuri_domains, 3);
	assert_int_equal(m->nuris, 5);
	spam_msg_free(m);
	free(keep);
}

/* test_many_parts - 10,000 parts: max_parts recorded, truncated */
static void
test_many_parts(void **state)
{
	struct tg_buf	 b;
	struct spam_msg	*m;
	struct spam_limits lim = test_lim;
	char		*keep;
	size_t		 i;

	(void)state;
	lim.max_scan_bytes = 8 * 1024 * 1024;
	tg_buf_init(&b);
	tg_buf_puts(&b, "Content-Type: multipart/mixed; boundary=X\n\n");
	for (i = 0; i < 10000; i++)
		tg_buf_printf(&b, "--X\nContent-Type: text/plain\n\n"
		    "part %zu http://h%zu.example/\n", i, i);
	tg_buf_puts(&b, "--X--\n");
	m = test_parse(tg_buf_cstr(&b), &lim, &keep);
	assert_int_equal(m->nparts, lim.max_parts);
	assert_true(m->nuris <= lim.max_uris);
	assert_true(m->truncated);
	spam_msg_free(m);
	free(keep);
	tg_buf_fini(&b);
}

/* test_many_headers - 512 KiB of "a:" lines (131,072 headers): at most
 * max_headers kept, truncated, the body still read; what the message
 * holds stays small (before the limit: ~17 MB of header records) */
static void
test_many_headers(void **state)
{
	struct tg_buf	 b;
	struct spam_msg	*m;
	struct mallinfo2 mi0, mi1;
	char		*keep;
	size_t		 i, held;

	(void)state;
	tg_buf_init(&b);
	for (i = 0; i < 131072; i++)
		tg_buf_puts(&b, "a:\n");
	tg_buf_puts(&b, "\nthe body after them\n");
	mi0 = mallinfo2();
	m = test_parse(tg_buf_cstr(&b), &test_lim, &keep);
	mi1 = mallinfo2();
	held = mi1.uordblks > mi0.uordblks ? mi1.uordblks - mi0.uordblks : 0;
	/* keep (the CRLF copy, 655,384 bytes) is counted too */
	assert_true(held < 2 * 1024 * 1024);
	assert_int_equal(m->nheaders, test_lim.max_headers);
	assert_true(m->truncated);
	assert_non_null(strstr(m->body, "the body after them"));
	spam_msg_free(m);
	free(keep);
	tg_buf_fini(&b);
}

/* test_header_bytes - big headers: at most max_body_text bytes kept */
static void
test_header_bytes(void **state)
{
	struct tg_buf	 b;
	struct spam_msg	*m;
	struct spam_limits lim = test_lim;
	char		*keep;
	size_t		 i, kept = 0;

	(void)state;
	lim.max_body_text = 64 * 1024;
	tg_buf_init(&b);
	tg_buf_puts(&b, "Subject: first\n");
	for (i = 0; i < 300; i++) {
		tg_buf_printf(&b, "X-Big-%zu: ", i);
		for (size_t j = 0; j < 1000; j++)
			tg_buf_putc(&b, 'x');
		tg_buf_putc(&b, '\n');
	}
	tg_buf_puts(&b, "\nbody\n");
	m = test_parse(tg_buf_cstr(&b), &lim, &keep);
	assert_true(m->truncated);
	assert_true(m->nheaders > 1 && m->nheaders < 300);
	assert_non_null(spam_msg_header(m, "Subject", 0));
	for (i = 0; i < m->nheaders; i++)
		kept += strlen(m->headers[i].name) + strlen(m->headers[i].raw);
	assert_true(kept <= lim.max_body_text);
	spam_msg_free(m);
	free(keep);
	tg_buf_fini(&b);
}

/* test_deep - nesting past max_depth is not entered */
static void
test_deep(void **state)
{
	struct tg_buf	 b;
	struct spam_msg	*m;
	char		*keep;
	size_t		 i;

	(void)state;
	tg_buf_init(&b);
	for (i = 0; i < 40; i++)
		tg_buf_printf(&b, "Content-Type: multipart/mixed; "
		    "boundary=b%zu\n\n--b%zu\n", i, i);
	tg_buf_puts(&b, "Content-Type: text/plain\n\ndeepest\n");
	for (i = 40; i-- > 0;)
		tg_buf_printf(&b, "--b%zu--\n", i);
	m = test_parse(tg_buf_cstr(&b), &test_lim, &keep);
	assert_true(m->truncated);
	assert_null(strstr(m->body, "deepest"));
	spam_msg_free(m);
	free(keep);
	tg_buf_fini(&b);
}

/* test_big - 50 MB: only max_scan_bytes are parsed */
static void
test_big(void **state)
{
	struct spam_msg	*m;
	size_t		 len = 50 * 1024 * 1024, hl;
	char		*data = tg_malloc(len);
	const char	*hdr = "Subject: big\r\nContent-Type: text/plain\r\n\r\n";

	(void)state;
	hl = strlen(hdr);
	memcpy(data, hdr, hl);
	memset(data + hl, 'x', len - hl);
	for (size_t i = hl + 76; i < len; i += 78) {
		data[i] = '\r';
		data[i + 1] = '\n';
	}
	m = spam_mime_parse(data, len, &test_lim);
	assert_int_equal(m->full_len, test_lim.max_scan_bytes);
	assert_true(m->truncated);
	assert_true(m->body_len <= test_lim.max_body_text + 2);
	spam_msg_free(m);
	free(data);
}

static void
test_malformed(void **state)
{
	struct spam_msg	*m;
	char		*keep;

	(void)state;
	/* a multipart without a boundary */
	m = test_parse("Content-Type: multipart/mixed\n"
	    "\n"
	    "just text\n", &test_lim, &keep);
	assert_true(m->malformed);
	spam_msg_free(m);
	free(keep);
	/* an end boundary never seen */
	m = test_parse("Content-Type: multipart/mixed; boundary=Q\n"
	    "\n"
	    "--Q\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "cut off", &test_lim, &keep);
	assert_non_null(strstr(m->body, "cut off"));
	spam_msg_free(m);
	free(keep);
	/* nothing at all */
	m = spam_mime_parse("", 0, &test_lim);
	assert_non_null(m->body);
	spam_msg_free(m);
	/* no header block: LF only, binary junk */
	m = spam_mime_parse("\x01\x02\xff\n\n\x00zz", 8, NULL);
	assert_non_null(m->body);
	spam_msg_free(m);
	assert_null(spam_msg_free(NULL));
}

/* test_threads_one - one thread's parses; the count of good ones */
static void *
test_threads_one(void *arg)
{
	static const char msg[] =
	    "Subject: =?utf-8?q?caf=C3=A9?=\r\n"
	    "Content-Type: multipart/alternative; boundary=b\r\n\r\n"
	    "--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "caf=E9 http://a.example/\r\n"
	    "--b\r\nContent-Type: text/html\r\n\r\n"
	    "<p>x<a href=http://b.example/>y</a></p>\r\n--b--\r\n";
	struct spam_msg	*m;
	size_t		*good = arg, i;

	for (i = 0; i < 200; i++) {
		m = spam_mime_parse(msg, sizeof(msg) - 1, &test_lim);
		if (m->nparts == 2 && m->nuri_domains == 2 &&
		    strstr(m->body, "café") != NULL &&
		    strstr(m->body, "\nxy\n") != NULL)
			(*good)++;
		spam_msg_free(m);
	}
	return NULL;
}

/* test_threads - parses on four threads at once (the milter's case) */
static void
test_threads(void **state)
{
	pthread_t	th[4];
	size_t		good[4] = { 0, 0, 0, 0 }, i;

	(void)state;
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, test_threads_one,
		    &good[i]), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(good[i], 200);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_charsets),
		cmocka_unit_test(test_huge_line),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_html_deep),
		cmocka_unit_test(test_uris),
		cmocka_unit_test(test_many_parts),
		cmocka_unit_test(test_many_headers),
		cmocka_unit_test(test_header_bytes),
		cmocka_unit_test(test_deep),
		cmocka_unit_test(test_big),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
