/*
 * confman_test - tollgate.conf(5) documents every key of every section,
 * and a key without help text fails the build.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "confman.h"
#include "tollgate/buf.h"
#include "tollgate/pipeline.h"

/* t_read - a whole file; the caller frees */
static char *
t_read(const char *path)
{
	struct tg_buf	 b;
	char		 chunk[4096];
	size_t		 n;
	FILE		*fp;

	fp = fopen(path, "r");
	if (fp == NULL)
		fail_msg("%s: cannot open", path);
	tg_buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		tg_buf_append(&b, chunk, n);
	(void)fclose(fp);
	return tg_buf_steal(&b);
}

/* t_write - the page for tmpl and secs, or NULL with err filled */
static char *
t_write(const char *tmpl, const struct tg_conf_section *secs, size_t n,
    struct tg_err *err)
{
	char	*out = NULL;
	size_t	 len = 0;
	FILE	*fp = open_memstream(&out, &len);

	assert_non_null(fp);
	if (tg_confman_write(fp, tmpl, secs, n, err) != TG_OK) {
		(void)fclose(fp);
		free(out);
		return NULL;
	}
	assert_int_equal(fclose(fp), 0);
	return out;
}

/* t_count - occurrences of needle in s */
static size_t
t_count(const char *s, const char *needle)
{
	size_t	n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

/*
 * test_every_key_documented - every parameter the daemons load has help
 * text and is in the page built from the shipped template, once, under
 * its section's heading.
 */
static void
test_every_key_documented(void **state)
{
	const struct tg_conf_section	*secs;
	const struct tg_param		*p;
	struct tg_err			 err;
	struct tg_buf			 want;
	const char			*sec, *next, *end, *hit;
	char				*tmpl, *page;
	size_t				 n, i;

	(void)state;
	secs = tg_pipeline_sections(&n);
	assert_true(n > 0);
	for (i = 0; i < n; i++)
		for (p = secs[i].params; p->name != NULL; p++)
			if (p->help == NULL || *p->help == '\0')
				fail_msg("[%s] %s has no help text: document it"
				    " in its parameter table", secs[i].name,
				    p->name);
	assert_int_equal(tg_confman_check(secs, n, &err), TG_OK);
	tmpl = t_read(TG_SRCDIR "/docs/tollgate.conf.5.in");
	page = t_write(tmpl, secs, n, &err);
	if (page == NULL)
		fail_msg("%s", err.text);
	tg_buf_init(&want);
	for (i = 0; i < n; i++) {
		tg_buf_reset(&want);
		tg_buf_printf(&want, ".Ss \\&[%s]\n", secs[i].name);
		assert_int_equal(t_count(page, tg_buf_cstr(&want)), 1);
		sec = strstr(page, tg_buf_cstr(&want));
		next = strstr(sec + 1, ".Ss ");
		end = strstr(sec, ".Sh ");
		if (next == NULL || (end != NULL && end < next))
			next = end;
		assert_non_null(next);
		for (p = secs[i].params; p->name != NULL; p++) {
			tg_buf_reset(&want);
			tg_buf_printf(&want, ".It Cm %s No = ", p->name);
			hit = strstr(sec, tg_buf_cstr(&want));
			if (hit == NULL || hit > next)
				fail_msg("[%s] %s is not in tollgate.conf(5)",
				    secs[i].name, p->name);
		}
	}
	assert_null(strstr(page, "@KEYS"));
	assert_null(strstr(page, "@OTHER_SECTIONS@"));
	tg_buf_fini(&want);
	free(page);
	free(tmpl);
}

static struct { long n; long t; bool b; char *s; int e; } t_store;
static const char *const t_names[] = { "one", "two", NULL };

/* test_generated_text - types, defaults, ranges and escaping */
static void
test_generated_text(void **state)
{
	static const struct tg_param	params[] = {
		TG_PARAM_LONG("count", "5", &t_store.n, 1, 100,
		    "how many. Second sentence"),
		TG_PARAM_TIME("wait", "5m", &t_store.t, 1, 86400,
		    "a wait"),
		TG_PARAM_BOOL("flag", "no", &t_store.b, ".dot \\back"),
		TG_PARAM_STRING("text", "", &t_store.s, "a text"),
		TG_PARAM_STRING("quoted", "say \"hi\"", &t_store.s, "q"),
		TG_PARAM_ENUM("mode", "two", &t_store.e, t_names, "a mode"),
		TG_PARAM_END
	};
	const struct tg_conf_section	secs[] = { { "t", params },
					    { "u", params } };
	struct tg_err			err;
	char				*page;

	(void)state;
	page = t_write(".Sh X\n@KEYS t@\n@OTHER_SECTIONS@\n", secs, 2, &err);
	assert_non_null(page);
	assert_non_null(strstr(page, ".Sh X\n.Bl -tag -width Ds\n"
	    ".It Cm count No = Ar integer\nhow many.\nSecond sentence.\n"
	    "Default:\n.Ql \"5\" .\nFrom\n.Ql 1\nto\n.Ql 100 .\n"
	    ".It Cm wait No = Ar duration\na wait.\nDefault:\n.Ql \"5m\" .\n"
	    "From\n.Ql 1s\nto\n.Ql 1d .\n"
	    ".It Cm flag No = Ar yes | no\n\\&.dot \\eback.\n"
	    "Default:\n.Ql \"no\" .\n"
	    ".It Cm text No = Ar text\na text.\nEmpty by default.\n"
	    ".It Cm quoted No = Ar text\nq.\nDefault:\n"
	    ".Ql \"say \\(dqhi\\(dq\" .\n"
	    ".It Cm mode No = Cm one | two\na mode.\n"));
	/* the section the template does not name gets its own heading */
	assert_non_null(strstr(page, ".El\n.Ss \\&[u]\n"));
	assert_int_equal(t_count(page, ".It Cm count "), 2);
	free(page);
}

/* test_template_errors - bad templates and undocumented keys fail */
static void
test_template_errors(void **state)
{
	static const struct tg_param	params[] = {
		TG_PARAM_LONG("count", "5", &t_store.n, 1, 100, "n"),
		TG_PARAM_END
	};
	static const struct tg_param	undocumented[] = {
		TG_PARAM_LONG("count", "5", &t_store.n, 1, 100, "n"),
		TG_PARAM_LONG("secret", "5", &t_store.n, 1, 100, ""),
		TG_PARAM_END
	};
	static const struct tg_param	nohelp[] = {
		TG_PARAM_LONG("other", "5", &t_store.n, 1, 100, NULL),
		TG_PARAM_END
	};
	const struct tg_conf_section	secs[] = { { "t", params } };
	const struct tg_conf_section	bad[] = { { "t", params },
					    { "x", undocumented } };
	const struct tg_conf_section	bad2[] = { { "y", nohelp } };
	struct tg_err			err;

	(void)state;
	assert_null(t_write("@KEYS nosuch@\n@OTHER_SECTIONS@\n", secs, 1,
	    &err));
	assert_string_equal(err.text, "template: no section nosuch");
	assert_null(t_write("@KEYS t@\n@KEYS t@\n@OTHER_SECTIONS@\n", secs, 1,
	    &err));
	assert_string_equal(err.text, "template: twice the section t");
	assert_null(t_write("@KEYS t@\n", secs, 1, &err));
	assert_string_equal(err.text, "template: no @OTHER_SECTIONS@");
	assert_null(t_write("@OTHER_SECTIONS@\n", bad, 2, &err));
	assert_string_equal(err.text, "[x] secret: no help text to document "
	    "it");
	assert_int_equal(tg_confman_check(bad2, 1, &err), TG_PERM);
	assert_string_equal(err.text, "[y] other: no help text to document "
	    "it");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_documented),
		cmocka_unit_test(test_generated_text),
		cmocka_unit_test(test_template_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
