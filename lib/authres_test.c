/*
 * authres_test - building Authentication-Results and reading the
 * authserv-id of received ones (RFC 8601).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <cmocka.h>

#include "tollgate/authres.h"

/* test_build - one resinfo per folded line; "none" when empty */
static void
test_build(void **state)
{
	const char	*ri[] = { "dkim=pass header.d=example.com",
	    "spf=fail smtp.mailfrom=example.net" };
	char		*s;

	s = tg_authres_build("mx.example.org", ri, 2);
	assert_string_equal(s, "mx.example.org;\r\n\tdkim=pass "
	    "header.d=example.com;\r\n\tspf=fail smtp.mailfrom=example.net");
	free(s);
	s = tg_authres_build("mx.example.org", NULL, 0);
	assert_string_equal(s, "mx.example.org; none");
	free(s);
}

/* test_authserv_id - comments, folding, version, garbage */
static void
test_authserv_id(void **state)
{
	static const struct {
		const char	*value;
		const char	*want;	/* NULL: none found */
	} cases[] = {
		{ " mx.example.org; dkim=pass", "mx.example.org" },
		{ "mx.example.org 1; none", "mx.example.org" },
		{ " (comment (nested)) mx.example.org;", "mx.example.org" },
		{ "\r\n\tMX.Example.ORG;spf=pass", "MX.Example.ORG" },
		{ "   ", NULL },
		{ " ; dkim=pass", NULL },
		{ " (unterminated comment mx.example.org", NULL },
	};
	char	id[64];
	size_t	i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].want == NULL) {
			assert_false(tg_authres_authserv_id(cases[i].value, id,
			    sizeof(id)));
			continue;
		}
		assert_true(tg_authres_authserv_id(cases[i].value, id,
		    sizeof(id)));
		assert_string_equal(id, cases[i].want);
	}
}

/* test_value_ok - tokens versus text that needs quoting */
static void
test_value_ok(void **state)
{
	assert_true(tg_authres_value_ok("example.com"));
	assert_true(tg_authres_value_ok("sel-1_x"));
	assert_false(tg_authres_value_ok("a/b"));
	assert_false(tg_authres_value_ok("a b"));
	assert_false(tg_authres_value_ok(""));
	assert_false(tg_authres_value_ok("caf\xc3\xa9"));
	assert_false(tg_authres_value_ok("x;y"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_authserv_id),
		cmocka_unit_test(test_value_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
