/*
 * util_test - checked parsers, buffers and network lists.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tollgate/buf.h"
#include "tollgate/conf.h"
#include "tollgate/util.h"

/* test_parse_long - whole strings within bounds only */
static void
test_parse_long(void **state)
{
	static const struct {
		const char	*in;
		bool		 ok;
		long		 want;
	} cases[] = {
		{ "0", true, 0 }, { "42", true, 42 }, { "-5", true, -5 },
		{ "", false, 0 }, { " 1", false, 0 }, { "1 ", false, 0 },
		{ "12a", false, 0 }, { "101", false, 0 },
		{ "99999999999999999999", false, 0 },
	};
	size_t	i;
	long	v;

	for (i = 0; i < TG_NITEMS(cases); i++) {
		v = -1;
		assert_int_equal(tg_parse_long(cases[i].in, -10, 100, &v),
		    cases[i].ok);
		if (cases[i].ok)
			assert_int_equal(v, cases[i].want);
	}
}

/* test_parse_units - durations and sizes */
static void
test_parse_units(void **state)
{
	long	v;

	assert_true(tg_parse_duration("30", 0, 1000000, &v));
	assert_int_equal(v, 30);
	assert_true(tg_parse_duration("5m", 0, 1000000, &v));
	assert_int_equal(v, 300);
	assert_true(tg_parse_duration("2H", 0, 1000000, &v));
	assert_int_equal(v, 7200);
	assert_true(tg_parse_duration("1w", 0, 1000000, &v));
	assert_int_equal(v, 604800);
	assert_false(tg_parse_duration("5x", 0, 1000000, &v));
	assert_false(tg_parse_duration("m", 0, 1000000, &v));
	assert_false(tg_parse_duration("20d", 0, 1000000, &v));
	assert_true(tg_parse_size("512k", 0, 1L << 40, &v));
	assert_int_equal(v, 512 * 1024);
	assert_true(tg_parse_size("1g", 0, 1L << 40, &v));
	assert_int_equal(v, 1L << 30);
	assert_false(tg_parse_size("99999999999999g", 0, 1L << 40, &v));
}

/* test_bool_case - booleans and ASCII case folding */
static void
test_bool_case(void **state)
{
	bool	b = false;

	assert_true(tg_parse_bool("Yes", &b));
	assert_true(b);
	assert_true(tg_parse_bool("off", &b));
	assert_false(b);
	assert_false(tg_parse_bool("maybe", &b));
	assert_int_equal(tg_strcasecmp("DKIM-Signature", "dkim-signature"), 0);
	assert_true(tg_strcasecmp("a", "b") < 0);
	assert_int_equal(tg_strncasecmp("FromX", "fromY", 4), 0);
}

/* test_buf - appends, printf, steal */
static void
test_buf(void **state)
{
	struct tg_buf	 b;
	char		*s;
	int		 i;

	tg_buf_init(&b);
	assert_string_equal(tg_buf_cstr(&b), "");
	for (i = 0; i < 1000; i++)
		tg_buf_printf(&b, "%d,", i);
	assert_int_equal(b.len, strlen(b.data));
	assert_memory_equal(b.data, "0,1,2,", 6);
	s = tg_buf_steal(&b);
	assert_null(b.data);
	free(s);
	tg_buf_puts(&b, "x");
	tg_buf_putc(&b, 'y');
	assert_string_equal(tg_buf_cstr(&b), "xy");
	tg_buf_fini(&b);
}

/* test_netlist - IPv4, IPv6, mapped addresses, bad input */
static void
test_netlist(void **state)
{
	struct tg_netlist	*l;
	struct tg_err		 err;

	l = tg_netlist_parse("127.0.0.0/8, 10.1.2.0/23 ::1 2001:db8::/32", &err);
	assert_non_null(l);
	assert_true(tg_netlist_match(l, "127.1.2.3"));
	assert_true(tg_netlist_match(l, "10.1.3.255"));
	assert_false(tg_netlist_match(l, "10.1.4.0"));
	assert_true(tg_netlist_match(l, "::1"));
	assert_true(tg_netlist_match(l, "::ffff:127.0.0.1"));
	assert_true(tg_netlist_match(l, "2001:db8:1::5"));
	assert_false(tg_netlist_match(l, "2001:db9::1"));
	assert_false(tg_netlist_match(l, "not-an-ip"));
	assert_false(tg_netlist_match(l, NULL));
	l = tg_netlist_free(l);
	assert_null(tg_netlist_parse("10.0.0.0/33", &err));
	assert_non_null(strstr(err.text, "10.0.0.0/33"));
	assert_null(tg_netlist_parse("300.1.1.1", &err));
	l = tg_netlist_parse("", &err);
	assert_false(tg_netlist_match(l, "127.0.0.1"));
	tg_netlist_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_long),
		cmocka_unit_test(test_parse_units),
		cmocka_unit_test(test_bool_case),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_netlist),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
