/*
 * policyd_proto_test - the policy codec: a table of requests as bytes,
 * what the parser must make of them, and the reply encoder.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tollgate/policyd.h"

#define GOOD "request=smtpd_access_policy\nprotocol_state=RCPT\n" \
	"client_address=192.0.2.7\nsender=a@example.org\n" \
	"recipient=b@example.com\n\n"

static const struct proto_case {
	const char	*label;
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	enum pd_parse	 want;
	bool		 malformed;
	size_t		 nattrs;
	const char	*name, *value;	/* one attribute to look up */
} cases[] = {
	{ "good request", GOOD, 0, PD_PARSE_DONE, false, 5,
	  "recipient", "b@example.com" },
	{ "missing attributes", "request=smtpd_access_policy\n\n", 0,
	  PD_PARSE_DONE, false, 1, "client_address", NULL },
	{ "unknown attribute kept", "x_future=1\nsender=\n\n", 0,
	  PD_PARSE_DONE, false, 2, "x_future", "1" },
	{ "empty value", "sender=\n\n", 0, PD_PARSE_DONE, false, 1,
	  "sender", "" },
	{ "value with =", "ccert_subject=CN=a=b\n\n", 0, PD_PARSE_DONE, false,
	  1, "ccert_subject", "CN=a=b" },
	{ "CRLF line ends", "sender=a@b\r\nrecipient=c@d\r\n\r\n", 0,
	  PD_PARSE_DONE, false, 2, "sender", "a@b" },
	{ "empty request", "\n", 0, PD_PARSE_DONE, false, 0, NULL, NULL },
	{ "duplicate attribute", "sender=a@b\nsender=c@d\n\n", 0,
	  PD_PARSE_DONE, true, 1, "sender", "a@b" },
	{ "line without =", "sender=a@b\ngarbage\n\n", 0, PD_PARSE_DONE, true,
	  1, NULL, NULL },
	{ "empty name", "=x\n\n", 0, PD_PARSE_DONE, true, 0, NULL, NULL },
	{ "upper-case name", "Sender=x\n\n", 0, PD_PARSE_DONE, true, 0,
	  NULL, NULL },
	{ "embedded NUL", "sender=a\0b\nrecipient=c\n\n", 24, PD_PARSE_DONE,
	  true, 1, "recipient", "c" },
	{ "8-bit value (UTF-8 address)", "sender=j\xc3\xb6rg@example.de\n\n",
	  0, PD_PARSE_DONE, false, 1, "sender", "j\xc3\xb6rg@example.de" },
	{ "8-bit garbage name", "\xff\xfe\x80=1\n\n", 0, PD_PARSE_DONE, true,
	  0, NULL, NULL },
	{ "no end yet", "sender=a@b\n", 0, PD_PARSE_MORE, false, 0, NULL,
	  NULL },
	{ "half a line", "send", 0, PD_PARSE_MORE, false, 0, NULL, NULL },
	{ "nothing", "", 0, PD_PARSE_MORE, false, 0, NULL, NULL },
};

/* test_table - every case parses as the table says */
static void
test_table(void **state)
{
	const struct proto_case	*c;
	struct pd_request	 req;
	size_t			 i, len, used;
	enum pd_parse		 r;

	(void)state;
	for (i = 0; i < TG_NITEMS(cases); i++) {
		c = &cases[i];
		len = c->len != 0 ? c->len : strlen(c->in);
		used = 0;
		r = pd_proto_parse(c->in, len, &used, &req);
		if (r != c->want)
			fail_msg("%s: parse %d, want %d", c->label, r, c->want);
		if (r == PD_PARSE_DONE) {
			if (used != len)
				fail_msg("%s: used %zu of %zu", c->label, used,
				    len);
			if (req.malformed != c->malformed)
				fail_msg("%s: malformed %d", c->label,
				    req.malformed);
			if (req.nattrs != c->nattrs)
				fail_msg("%s: %zu attributes", c->label,
				    req.nattrs);
		}
		if (c->name != NULL && (c->value == NULL ?
		    pd_request_get(&req, c->name) != NULL :
		    pd_request_get(&req, c->name) == NULL ||
		    strcmp(pd_request_get(&req, c->name), c->value) != 0))
			fail_msg("%s: %s wrong", c->label, c->name);
		pd_request_clear(&req);
	}
}

/* proto_line - "name=" plus n bytes of 'x' plus "\n\n" */
static char *
proto_line(size_t n, size_t *len)
{
	char	*s = malloc(n + 8);

	assert_non_null(s);
	memcpy(s, "xname=", 6);
	memset(s + 6, 'x', n - 6);
	memcpy(s + n, "\n\n", 2);
	*len = n + 2;
	return s;
}

/* test_limits - the line, attribute and request limits */
static void
test_limits(void **state)
{
	struct pd_request	 req;
	struct tg_buf		 b;
	size_t			 len, used, i;
	char			*s;

	(void)state;
	s = proto_line(PD_LINE_MAX, &len);
	assert_int_equal(pd_proto_parse(s, len, &used, &req), PD_PARSE_DONE);
	assert_int_equal(used, len);
	pd_request_clear(&req);
	free(s);
	s = proto_line(PD_LINE_MAX + 1, &len);
	assert_int_equal(pd_proto_parse(s, len, &used, &req),
	    PD_PARSE_TOO_MUCH);
	free(s);
	/* A 100 KB line, whole or still coming, is too much. */
	s = proto_line(100 * 1024, &len);
	assert_int_equal(pd_proto_parse(s, len, &used, &req),
	    PD_PARSE_TOO_MUCH);
	assert_int_equal(pd_proto_parse(s, PD_LINE_MAX + 2, &used, &req),
	    PD_PARSE_TOO_MUCH);
	assert_int_equal(pd_proto_parse(s, PD_LINE_MAX, &used, &req),
	    PD_PARSE_MORE);
	free(s);
	tg_buf_init(&b);
	for (i = 0; i <= PD_ATTRS_MAX; i++)
		tg_buf_printf(&b, "a%zu=1\n", i);
	tg_buf_puts(&b, "\n");
	assert_int_equal(pd_proto_parse(b.data, b.len, &used, &req),
	    PD_PARSE_TOO_MUCH);
	/* Many long lines: the request limit. */
	tg_buf_reset(&b);
	for (i = 0; i < 20; i++) {
		tg_buf_printf(&b, "a%zu=", i);
		while (b.len % 4096 != 4000)
			tg_buf_putc(&b, 'v');
		tg_buf_putc(&b, '\n');
	}
	assert_int_equal(pd_proto_parse(b.data, b.len, &used, &req),
	    PD_PARSE_TOO_MUCH);
	tg_buf_fini(&b);
}

/* test_pipelined - two requests in one read come out one by one */
static void
test_pipelined(void **state)
{
	const char		 two[] = GOOD "sender=x@y\n\n";
	struct pd_request	 req;
	size_t			 used, len = strlen(two);

	(void)state;
	assert_int_equal(pd_proto_parse(two, len, &used, &req), PD_PARSE_DONE);
	assert_int_equal(used, strlen(GOOD));
	assert_string_equal(pd_request_get(&req, "sender"), "a@example.org");
	pd_request_clear(&req);
	assert_int_equal(pd_proto_parse(two + used, len - used, &used, &req),
	    PD_PARSE_DONE);
	assert_string_equal(pd_request_get(&req, "sender"), "x@y");
	assert_int_equal(req.nattrs, 1);
	pd_request_clear(&req);
}

/* test_split - every prefix of a request is "more", the whole is done */
static void
test_split(void **state)
{
	struct pd_request	 req;
	size_t			 used, i, len = strlen(GOOD);

	(void)state;
	for (i = 0; i < len; i++) {
		if (pd_proto_parse(GOOD, i, &used, &req) != PD_PARSE_MORE)
			fail_msg("prefix of %zu bytes is not more", i);
		assert_int_equal(req.nattrs, 0);
	}
	assert_int_equal(pd_proto_parse(GOOD, len, &used, &req),
	    PD_PARSE_DONE);
	assert_int_equal(req.nattrs, 5);
	pd_request_clear(&req);
}

/* test_reply - the encoder and the action check */
static void
test_reply(void **state)
{
	static const struct {
		const char	*text;
		bool		 ok;
	} actions[] = {
		{ "DUNNO", true }, { "DEFER_IF_PERMIT 4.7.1 wait", true },
		{ "450 4.7.1 later", true }, { "REJECT", true },
		{ "OK", true }, { "dunno", false }, { "", false },
		{ "DUNNOX", false }, { "DUNNO\nx", false },
		{ "MAYBE", false }, { "550 5.7.1 no", true },
		{ "450 5.7.1 mixed", false }, { "250 ok", false },
		{ "45x no", false }, { "451", true },
	};
	struct tg_buf	b;
	size_t		i;

	(void)state;
	tg_buf_init(&b);
	pd_proto_reply(&b, "DUNNO");
	assert_string_equal(tg_buf_cstr(&b), "action=DUNNO\n\n");
	tg_buf_reset(&b);
	pd_proto_reply(&b, "DEFER\n\nx\xff");
	assert_string_equal(tg_buf_cstr(&b), "action=DEFER??x?\n\n");
	tg_buf_fini(&b);
	for (i = 0; i < TG_NITEMS(actions); i++)
		if (pd_action_ok(actions[i].text) != actions[i].ok)
			fail_msg("action \"%s\"", actions[i].text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
