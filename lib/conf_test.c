/*
 * conf_test - the INI loader: defaults, name order, errors with
 * file:line, every parameter type.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "tollgate/conf.h"

static struct {
	bool	 flag;
	long	 count;
	long	 timeout;
	long	 size;
	char	*name;
	int	 on_error;
} t;

static const struct tg_param t_params[] = {
	TG_PARAM_BOOL("flag", "no", &t.flag, "a flag"),
	TG_PARAM_LONG("count", "3", &t.count, 1, 10, "a count"),
	TG_PARAM_TIME("timeout", "10s", &t.timeout, 1, 3600, "a time"),
	TG_PARAM_SIZE("size", "1m", &t.size, 1, 1L << 30, "a size"),
	TG_PARAM_STRING("name", "dflt", &t.name, "a string"),
	TG_PARAM_ENUM("on_error", "accept", &t.on_error, tg_on_error_names,
	    "what to do"),
	TG_PARAM_END
};

static const struct tg_param t_empty[] = { TG_PARAM_END };

static const struct tg_conf_section t_secs[] = {
	{ "test", t_params },
	{ "other", t_empty },
};

/* load - text into the test tables; returns status, err filled */
static enum tg_status
load(const char *text, struct tg_err *err)
{
	tg_conf_defaults(t_secs, 2);
	return tg_conf_load_text(text, "t.conf", t_secs, 2, err);
}

/* test_defaults - every default applies */
static void
test_defaults(void **state)
{
	struct tg_err	err;

	assert_int_equal(load("", &err), TG_OK);
	assert_false(t.flag);
	assert_int_equal(t.count, 3);
	assert_int_equal(t.timeout, 10);
	assert_int_equal(t.size, 1024 * 1024);
	assert_string_equal(t.name, "dflt");
	assert_int_equal(t.on_error, TG_ON_ERROR_ACCEPT);
	tg_conf_free(t_secs, 2);
}

/* test_values - every type, comments, quotes */
static void
test_values(void **state)
{
	struct tg_err	err;

	assert_int_equal(load("# comment\n; also\n\n[test]\nflag = yes\n"
	    "count=7\n  timeout = 2m \nsize = 64k\nname = \" padded \"\n"
	    "on_error = TEMPFAIL\n[other]\n", &err), TG_OK);
	assert_true(t.flag);
	assert_int_equal(t.count, 7);
	assert_int_equal(t.timeout, 120);
	assert_int_equal(t.size, 65536);
	assert_string_equal(t.name, " padded ");
	assert_int_equal(t.on_error, TG_ON_ERROR_TEMPFAIL);
	tg_conf_free(t_secs, 2);
}

/* test_errors - each problem names file:line */
static void
test_errors(void **state)
{
	static const struct {
		const char	*text;
		const char	*want;
	} cases[] = {
		{ "[test]\nnope = 1\n", "t.conf:2: unknown key \"nope\"" },
		{ "[bogus]\n", "t.conf:1: unknown section [bogus]" },
		{ "flag = yes\n", "t.conf:1: key outside a section" },
		{ "[test]\n\ncount = 11\n", "t.conf:3: count: bad value" },
		{ "[test]\ncount = x\n", "t.conf:2: count: bad value" },
		{ "[test]\nflag = maybe\n", "t.conf:2: flag: bad value" },
		{ "[test]\ntimeout = 0\n", "t.conf:2: timeout: bad value" },
		{ "[test]\non_error = explode\n", "t.conf:2: on_error: bad" },
		{ "[test]\njust words\n", "t.conf:2: expected key = value" },
		{ "[test\n", "t.conf:1: bad section line" },
	};
	struct tg_err	err;
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load(cases[i].text, &err), TG_PERM);
		if (strstr(err.text, cases[i].want) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i,
			    err.text, cases[i].want);
		tg_conf_free(t_secs, 2);
	}
}

/* write_file - a file in dir */
static void
write_file(const char *dir, const char *name, const char *text)
{
	char	 path[512];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
}

/* test_directory - *.conf in name order, others ignored */
static void
test_directory(void **state)
{
	char		dir[] = "/tmp/tg_conf_test.XXXXXX";
	char		cmd[600];
	struct tg_err	err;

	assert_non_null(mkdtemp(dir));
	write_file(dir, "20-b.conf", "[test]\ncount = 5\n");
	write_file(dir, "10-a.conf", "[test]\ncount = 4\nname = a\n");
	write_file(dir, "30-c.conf.bak", "[test]\ncount = 9\n");
	write_file(dir, ".hidden.conf", "[test]\ncount = 8\n");
	assert_int_equal(tg_conf_load(dir, t_secs, 2, &err), TG_OK);
	assert_int_equal(t.count, 5);
	assert_string_equal(t.name, "a");
	tg_conf_free(t_secs, 2);
	write_file(dir, "40-bad.conf", "[test]\n\n\nsize = 5q\n");
	assert_int_equal(tg_conf_load(dir, t_secs, 2, &err), TG_PERM);
	assert_non_null(strstr(err.text, "40-bad.conf:4: size: bad value"));
	tg_conf_free(t_secs, 2);
	snprintf(cmd, sizeof(cmd), "%s/missing", dir);
	assert_int_equal(tg_conf_load(cmd, t_secs, 2, &err), TG_PERM);
	assert_non_null(strstr(err.text, "missing"));
	tg_conf_free(t_secs, 2);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* t_report - collect what an _all load reports, one line each */
static void
t_report(void *arg, const char *text)
{
	char	*all = arg;
	size_t	 len = strlen(all);

	snprintf(all + len, 1024 - len, "%s\n", text);
}

/* test_all - an _all load reports every problem and keeps the rest */
static void
test_all(void **state)
{
	char		dir[] = "/tmp/tg_conf_test.XXXXXX";
	char		got[1024] = "", cmd[600];
	struct tg_err	err;

	tg_conf_defaults(t_secs, 2);
	assert_int_equal(tg_conf_load_text_all("[test]\ncount = 11\n"
	    "flag = yes\n[bogus]\nnope = 1\nalso = 2\n[test]\nnope = 1\n"
	    "size = 2k\n", "t.conf", t_secs, 2, t_report, got, &err),
	    TG_PERM);
	/* the keys under [bogus] are not reported again */
	assert_string_equal(got, "t.conf:2: count: bad value \"11\" (out of "
	    "range or not a number)\nt.conf:4: unknown section [bogus]\n"
	    "t.conf:8: unknown key \"nope\" in [test]\n");
	assert_true(t.flag);
	assert_int_equal(t.count, 3);
	assert_int_equal(t.size, 2048);
	tg_conf_free(t_secs, 2);

	/* over files, in name order, past one that cannot be read */
	assert_non_null(mkdtemp(dir));
	write_file(dir, "10-a.conf", "[test]\nflag = maybe\n");
	write_file(dir, "20-b.conf", "[test]\n\ntimeout = 0\n");
	snprintf(cmd, sizeof(cmd), "mkdir '%s/15-dir.conf'", dir);
	assert_int_equal(system(cmd), 0);
	got[0] = '\0';
	assert_int_equal(tg_conf_load_all(dir, t_secs, 2, t_report, got,
	    &err), TG_PERM);
	snprintf(cmd, sizeof(cmd), "%s/10-a.conf:2: flag: bad value \"maybe\" "
	    "(want yes or no)\n%s/15-dir.conf: not a regular file\n"
	    "%s/20-b.conf:3: timeout: bad value \"0\" (out of range or not a "
	    "number)\n", dir, dir, dir);
	assert_string_equal(got, cmd);
	tg_conf_free(t_secs, 2);
	/* without a reporter: the first problem only, as tg_conf_load */
	assert_int_equal(tg_conf_load_all(dir, t_secs, 2, NULL, NULL, &err),
	    TG_PERM);
	assert_non_null(strstr(err.text, "10-a.conf:2: flag"));
	tg_conf_free(t_secs, 2);
	got[0] = '\0';
	write_file(dir, "10-a.conf", "[test]\nflag = yes\n");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/15-dir.conf' '%s/20-b.conf'",
	    dir, dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(tg_conf_load_all(dir, t_secs, 2, t_report, got,
	    &err), TG_OK);
	assert_string_equal(got, "");
	assert_true(t.flag);
	tg_conf_free(t_secs, 2);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
