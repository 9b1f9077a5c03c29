/*
 * log_test - the records' encodings: logfmt quoting, JSON escaping, 8-bit
 * garbage, empty values, the length bound, and the pairs parser.
 *
 * Besides fixed expectations, every quoted string the encoder writes is
 * decoded again here (a small decoder of the two formats' string syntax)
 * and compared with what the input means: valid UTF-8 as its characters,
 * any other byte as the Latin-1 character of its value.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tollgate/buf.h"
#include "tollgate/log.h"
#include "tollgate/util.h"

/* t_line - one field "v" in fmt, as a line the caller frees */
static char *
t_line(enum tg_log_format fmt, const char *v)
{
	struct tg_log_rec	*r = tg_log_rec_new("t");
	char			*line;

	tg_log_rec_add(r, "v", v);
	line = tg_log_rec_format(r, fmt);
	(void)tg_log_rec_free(r);
	return line;
}

/* t_printable - the whole line is printable ASCII */
static bool
t_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

/* t_hex4 - four hex digits at s */
static unsigned long
t_hex4(const char *s)
{
	char	buf[5];

	memcpy(buf, s, 4);
	buf[4] = '\0';
	assert_int_equal(strspn(buf, "0123456789abcdef"), 4);
	return strtoul(buf, NULL, 16);
}

/*
 * t_unquote - decode the quoted string at *pp into code points (at most
 * max); *pp moves past the closing quote.  Fails the test on bad syntax.
 */
static size_t
t_unquote(const char **pp, unsigned long *cp, size_t max)
{
	const char	*p = *pp;
	unsigned long	 c = 0, lo;
	size_t		 n = 0;

	assert_int_equal(*p, '"');
	for (p++; *p != '"'; p++) {
		assert_true(*p != '\0' && n < max);
		if (*p != '\\') {
			cp[n++] = (unsigned char)*p;
			continue;
		}
		p++;
		switch (*p) {
		case '"': case '\\': c = (unsigned char)*p; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u':
			c = t_hex4(p + 1);
			p += 4;
			if (c >= 0xd800 && c <= 0xdbff) {
				assert_true(p[1] == '\\' && p[2] == 'u');
				lo = t_hex4(p + 3);
				assert_true(lo >= 0xdc00 && lo <= 0xdfff);
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			}
			break;
		default:
			fail_msg("bad escape \\%c", *p);
		}
		cp[n++] = c;
	}
	*pp = p + 1;
	return n;
}

/* t_meaning - what the bytes s stand for: UTF-8, else Latin-1 bytes */
static size_t
t_meaning(const unsigned char *s, size_t len, unsigned long *cp)
{
	size_t	i = 0, n = 0, k, need;
	unsigned long c;

	while (i < len) {
		need = s[i] >= 0xf0 && s[i] <= 0xf4 ? 4 : s[i] >= 0xe0 &&
		    s[i] <= 0xef ? 3 : s[i] >= 0xc2 && s[i] <= 0xdf ? 2 : 1;
		c = need == 1 ? s[i] : s[i] & (0x7f >> need);
		for (k = 1; k < need && i + k < len &&
		    (s[i + k] & 0xc0) == 0x80; k++)
			c = (c << 6) | (s[i + k] & 0x3f);
		if (need > 1 && (k < need || (need == 3 && c < 0x800) ||
		    (need == 4 && (c < 0x10000 || c > 0x10ffff)) ||
		    (c >= 0xd800 && c <= 0xdfff))) {
			need = 1;
			c = s[i];
		}
		cp[n++] = c;
		i += need;
	}
	return n;
}

/* t_roundtrip - v encoded in both formats decodes to what it means */
static void
t_roundtrip(const unsigned char *v, size_t len)
{
	unsigned long	 want[600], got[600];
	size_t		 nwant, ngot;
	const char	*p;
	char		*line, copy[300];

	assert_true(len < sizeof(copy));
	memcpy(copy, v, len);
	copy[len] = '\0';
	nwant = t_meaning(v, len, want);
	line = t_line(TG_LOG_JSON, copy);
	assert_true(t_printable(line));
	assert_int_equal(strncmp(line, "{\"event\":\"t\",\"v\":", 17), 0);
	p = line + 17;
	ngot = t_unquote(&p, got, TG_NITEMS(got));
	assert_string_equal(p, "}");
	assert_int_equal(ngot, nwant);
	assert_memory_equal(got, want, nwant * sizeof(want[0]));
	free(line);
	line = t_line(TG_LOG_LOGFMT, copy);
	assert_true(t_printable(line));
	assert_int_equal(strncmp(line, "t v=", 4), 0);
	p = line + 4;
	if (*p == '"') {
		ngot = t_unquote(&p, got, TG_NITEMS(got));
		assert_string_equal(p, "");
		assert_int_equal(ngot, nwant);
		assert_memory_equal(got, want, nwant * sizeof(want[0]));
	} else
		assert_string_equal(p, copy);
	free(line);
}

/* test_logfmt_quoting - quotes only where logfmt needs them */
static void
test_logfmt_quoting(void **state)
{
	static const struct {
		const char	*in, *want;
	} cases[] = {
		{ "pass", "t v=pass" },
		{ "<a@example.com>", "t v=<a@example.com>" },
		{ "", "t v=\"\"" },
		{ "fail p=reject dis=reject", "t v=\"fail p=reject dis=reject\"" },
		{ "a=b", "t v=\"a=b\"" },
		{ "say \"hi\"", "t v=\"say \\\"hi\\\"\"" },
		{ "back\\slash", "t v=\"back\\\\slash\"" },
		{ "tab\there", "t v=\"tab\\there\"" },
		{ "cr\r\nlf", "t v=\"cr\\r\\nlf\"" },
		{ "\x01\x1f\x7f", "t v=\"\\u0001\\u001f\\u007f\"" },
		{ "caf\xc3\xa9", "t v=\"caf\\u00e9\"" },
		{ "\xff\xfe garbage", "t v=\"\\u00ff\\u00fe garbage\"" },
		{ "\xc0\xaf", "t v=\"\\u00c0\\u00af\"" },	/* overlong '/' */
		{ "\xed\xa0\x80", "t v=\"\\u00ed\\u00a0\\u0080\"" }, /* surrogate */
		{ "\xe2\x82", "t v=\"\\u00e2\\u0082\"" },	/* cut short */
		{ "\xf0\x9f\x93\xa7", "t v=\"\\ud83d\\udce7\"" },	/* U+1F4E7 */
		{ "\xf4\x90\x80\x80", "t v=\"\\u00f4\\u0090\\u0080\\u0080\"" },
	};
	size_t	 i;
	char	*line;

	(void)state;
	for (i = 0; i < TG_NITEMS(cases); i++) {
		line = t_line(TG_LOG_LOGFMT, cases[i].in);
		assert_string_equal(line, cases[i].want);
		free(line);
		t_roundtrip((const unsigned char *)cases[i].in,
		    strlen(cases[i].in));
	}
}

/* test_json - one object; strings escaped, numbers bare, "-" for NULL */
static void
test_json(void **state)
{
	struct tg_log_rec	*r = tg_log_rec_new("decision");
	char			*line;

	(void)state;
	tg_log_rec_add(r, "stage", "eom");
	tg_log_rec_add(r, "helo", NULL);
	tg_log_rec_add(r, "empty", "");
	tg_log_rec_add_num(r, "rcpts", 2);
	tg_log_rec_add_num(r, "neg", -7);
	tg_log_rec_add(r, "dmarc", "fail p=reject");
	tg_log_rec_add(r, "reply", "550 5.7.1 \"no\"\\\n\xe9");
	tg_log_rec_add(r, "dmarc", "again");	/* a name used twice */
	tg_log_rec_add(r, "event", "x");	/* the event's own name */
	tg_log_rec_add(r, "we\"ird key\xff", "k");
	line = tg_log_rec_format(r, TG_LOG_JSON);
	assert_string_equal(line, "{\"event\":\"decision\",\"stage\":\"eom\","
	    "\"helo\":\"-\",\"empty\":\"\",\"rcpts\":2,\"neg\":-7,"
	    "\"dmarc\":\"fail p=reject\","
	    "\"reply\":\"550 5.7.1 \\\"no\\\"\\\\\\n\\u00e9\","
	    "\"dmarc_2\":\"again\",\"event_2\":\"x\",\"we_ird_key_\":\"k\"}");
	free(line);
	line = tg_log_rec_format(r, TG_LOG_LOGFMT);
	assert_string_equal(line, "decision stage=eom helo=- empty=\"\" "
	    "rcpts=2 neg=-7 dmarc=\"fail p=reject\" "
	    "reply=\"550 5.7.1 \\\"no\\\"\\\\\\n\\u00e9\" dmarc_2=again "
	    "event_2=x we_ird_key_=k");
	free(line);
	(void)tg_log_rec_free(r);
	assert_null(tg_log_rec_free(NULL));
}

/* test_garbage - every byte value, random strings: still parses */
static void
test_garbage(void **state)
{
	unsigned char	 v[256];
	unsigned int	 seed = 12345;
	size_t		 i, k, len;

	(void)state;
	for (i = 0; i < 255; i++)
		v[i] = (unsigned char)(i + 1);
	t_roundtrip(v, 200);
	t_roundtrip(v + 100, 155);
	for (k = 0; k < 2000; k++) {
		len = (size_t)(rand_r(&seed) % 40);
		for (i = 0; i < len; i++) {
			/* mostly 8-bit, some ASCII, no NUL */
			v[i] = (unsigned char)(rand_r(&seed) % 3 == 0 ?
			    0x20 + rand_r(&seed) % 0x60 :
			    0x80 + rand_r(&seed) % 0x80);
			if (rand_r(&seed) % 7 == 0)
				v[i] = (unsigned char)(1 + rand_r(&seed) % 0x1f);
		}
		t_roundtrip(v, len);
	}
}

/* test_bounds - long values are cut, on a character, and the line fits */
static void
test_bounds(void **state)
{
	struct tg_log_rec	*r;
	char			 big[5000], *line;
	size_t			 i;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	line = t_line(TG_LOG_LOGFMT, big);
	assert_int_equal(strlen(line), 4 + TG_LOG_REC_VALUE_MAX + 3);
	assert_string_equal(line + strlen(line) - 4, "a...");
	free(line);
	/* é is two bytes: a cut never splits it */
	for (i = 0; i + 2 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[i] = '\0';
	line = t_line(TG_LOG_JSON, big);
	assert_non_null(strstr(line, "\\u00e9...\"}"));
	assert_null(strstr(line, "\\u00c3"));
	free(line);
	/* many long values: cut further, the line stays under the bound */
	r = tg_log_rec_new("t");
	for (i = 0; i < 30; i++)
		tg_log_rec_add(r, "field", big);
	line = tg_log_rec_format(r, TG_LOG_JSON);
	assert_true(strlen(line) <= TG_LOG_REC_MAX);
	assert_string_equal(line + strlen(line) - 2, "\"}");
	free(line);
	line = tg_log_rec_format(r, TG_LOG_LOGFMT);
	assert_true(strlen(line) <= TG_LOG_REC_MAX);
	free(line);
	/* more fields than a record holds: the line says so */
	for (i = 0; i < TG_LOG_REC_FIELDS; i++)
		tg_log_rec_add(r, "more", "x");
	line = tg_log_rec_format(r, TG_LOG_LOGFMT);
	assert_true(strlen(line) <= TG_LOG_REC_MAX);
	assert_non_null(strstr(line, " truncated=yes"));
	free(line);
	(void)tg_log_rec_free(r);
}

/* test_pairs - policyd's check notes become fields */
static void
test_pairs(void **state)
{
	struct tg_log_rec	*r = tg_log_rec_new("policy");
	char			*line;

	(void)state;
	tg_log_rec_add_pairs(r, " greylist=skip(no client_address) "
	    "quota=tempfail limit=l1 error=\"store: \\\"down\\\" now\" "
	    "bare  spf=pass(cached)  ");
	tg_log_rec_add_pairs(r, "");
	tg_log_rec_add_pairs(r, "unterminated=\"abc");
	line = tg_log_rec_format(r, TG_LOG_LOGFMT);
	assert_string_equal(line, "policy greylist=\"skip(no client_address)\""
	    " quota=tempfail limit=l1 error=\"store: \\\"down\\\" now\" "
	    "bare=\"\" spf=pass(cached) unterminated=abc");
	free(line);
	(void)tg_log_rec_free(r);
}

/* t_sink - collects emitted lines */
static void
t_sink(enum tg_log_level level, const char *line, void *arg)
{
	struct tg_buf	*b = arg;

	tg_buf_printf(b, "%d:%s\n", (int)level, line);
}

/* test_emit - the configured format, written whole, level checked */
static void
test_emit(void **state)
{
	struct tg_log_rec	*r = tg_log_rec_new("decision");
	struct tg_buf		 b;
	char			*line;

	(void)state;
	tg_buf_init(&b);
	tg_log_set_sink(t_sink, &b);
	tg_log_rec_add(r, "from", "<\x80@x>");
	assert_int_equal(tg_log_get_format(), TG_LOG_LOGFMT);
	line = tg_log_rec_emit(r, TG_LOG_INFO);
	assert_string_equal(line, "decision from=\"<\\u0080@x>\"");
	free(line);
	tg_log_set_format(TG_LOG_JSON);
	line = tg_log_rec_emit(r, TG_LOG_INFO);
	assert_string_equal(line, "{\"event\":\"decision\","
	    "\"from\":\"<\\u0080@x>\"}");
	free(line);
	tg_log_set_level(TG_LOG_NOTICE);
	line = tg_log_rec_emit(r, TG_LOG_INFO);	/* formatted, not logged */
	assert_non_null(line);
	free(line);
	tg_log_set_level(TG_LOG_INFO);
	tg_log_set_format(TG_LOG_LOGFMT);
	tg_log_set_sink(NULL, NULL);
	assert_string_equal(tg_buf_cstr(&b), "3:decision from=\"<\\u0080@x>\"\n"
	    "3:{\"event\":\"decision\",\"from\":\"<\\u0080@x>\"}\n");
	tg_buf_fini(&b);
	(void)tg_log_rec_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logfmt_quoting),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_emit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
