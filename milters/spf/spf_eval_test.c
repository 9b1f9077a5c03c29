/*
 * spf_eval_test - the SPF engine's parts: macro expansion (with the
 * examples of RFC 7208 7.4), domain-spec and name rules, record parsing,
 * and spf_check's own edges (bad requests, identities, explanations,
 * many threads on one resolver).  The conformance suites run in
 * spf_suite_test; this file holds the cases they do not spell out, and
 * the inputs that must be refused.
 */
#include "config.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tollgate/dns.h"
#include "tollgate/log.h"
#include "tollgate/spf.h"
#include "tollgate/util.h"

#include "spf_int.h"

#define SPF_TEST_THREADS	8
#define SPF_TEST_ROUNDS		50

/* The zone for the spf_check cases. */
static const char *const spf_test_zone[] = {
	". 300 IN SOA ns.invalid. host.invalid. 1 3600 600 86400 300",
	"example.org. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"",
	"example.org. 300 IN A 192.0.2.10",
	"exp.example.org. 300 IN TXT \"v=spf1 -all exp=why.example.org\"",
	"why.example.org. 300 IN TXT \"%{l} may not send from %{i}\"",
	"helo.example.org. 300 IN TXT \"v=spf1 a -all\"",
	"helo.example.org. 300 IN A 198.51.100.5",
	"inc.example.org. 300 IN TXT \"v=spf1 include:example.org ~all\"",
	"deep.example.org. 300 IN TXT \"v=spf1 include:deep.example.org\"",
};

/* test_vars - the values of RFC 7208 7.4's examples */
static void
test_vars(struct spf_macro_vars *v, bool ip6)
{
	memset(v, 0, sizeof(*v));
	v->sender = "strong-bad@email.example.com";
	v->local = "strong-bad";
	v->sender_domain = "email.example.com";
	v->domain = "email.example.com";
	v->ip = ip6 ? "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.C.B.0.1" : "192.0.2.3";
	v->client = ip6 ? "2001:db8::cb01" : "192.0.2.3";
	v->helo = "mx.example.net";
	v->receiver = "mx.example.org";
	v->version = ip6 ? "ip6" : "in-addr";
	v->now = 1400000000;
}

/* test_expand - expand s for use and compare with want (NULL: refused) */
static void
test_expand(const struct spf_macro_vars *v, enum spf_macro_use use,
    const char *s, const char *want)
{
	struct spf_text	out;
	bool		ok;

	ok = spf_macro_expand(s, strlen(s), use, v, &out);
	if (want == NULL) {
		if (ok)
			fail_msg("\"%s\" expanded to \"%s\", want refusal", s,
			    out.s);
		assert_false(spf_macro_valid(s, strlen(s), use, NULL));
		return;
	}
	if (!ok)
		fail_msg("\"%s\" refused, want \"%s\"", s, want);
	assert_true(spf_macro_valid(s, strlen(s), use, NULL));
	assert_string_equal(out.s, want);
	assert_int_equal(out.len, strlen(want));
}

/* test_macro_rfc - RFC 7208 7.4, every example */
static void
test_macro_rfc(void **state)
{
	static const struct {
		const char	*in;
		const char	*want;
	} cases[] = {
		{ "%{s}", "strong-bad@email.example.com" },
		{ "%{o}", "email.example.com" },
		{ "%{d}", "email.example.com" },
		{ "%{d4}", "email.example.com" },
		{ "%{d3}", "email.example.com" },
		{ "%{d2}", "example.com" },
		{ "%{d1}", "com" },
		{ "%{dr}", "com.example.email" },
		{ "%{d2r}", "example.email" },
		{ "%{l}", "strong-bad" },
		{ "%{l-}", "strong.bad" },
		{ "%{lr}", "strong-bad" },
		{ "%{lr-}", "bad.strong" },
		{ "%{l1r-}", "strong" },
		{ "%{ir}.%{v}._spf.%{d2}",
		  "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		  "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
		  "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net",
		  "example.com.trusted-domains.example.net" },
	};
	struct spf_macro_vars	v;
	size_t			i;

	(void)state;
	test_vars(&v, false);
	for (i = 0; i < TG_NITEMS(cases); i++)
		test_expand(&v, SPF_MACRO_DOMAIN, cases[i].in, cases[i].want);
	test_vars(&v, true);
	test_expand(&v, SPF_MACRO_DOMAIN, "%{ir}.%{v}._spf.%{d2}",
	    "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2."
	    "ip6._spf.example.com");
}

/* test_macro_forms - escapes, transformers, case, context letters */
static void
test_macro_forms(void **state)
{
	static const struct {
		enum spf_macro_use	 use;
		const char		*in;
		const char		*want;
	} cases[] = {
		{ SPF_MACRO_DOMAIN, "a%%b%_c%-d", "a%b c%20d" },
		{ SPF_MACRO_DOMAIN, "", "" },
		{ SPF_MACRO_DOMAIN, "%{D}", "email.example.com" },
		{ SPF_MACRO_DOMAIN, "%{d2R}", "example.email" },
		{ SPF_MACRO_DOMAIN, "%{d300}", "email.example.com" },
		{ SPF_MACRO_DOMAIN, "%{d99999999999999999999}",
		  "email.example.com" },
		{ SPF_MACRO_DOMAIN, "%{s=+-.,/_}",
		  "strong.bad@email.example.com" },
		{ SPF_MACRO_DOMAIN, "%{l1-}", "bad" },
		{ SPF_MACRO_DOMAIN, "%{S}", "strong-bad%40email.example.com" },
		{ SPF_MACRO_DOMAIN, "%{h}", "mx.example.net" },
		{ SPF_MACRO_DOMAIN, "%{p}", "unknown" },
		{ SPF_MACRO_DOMAIN, "x.%{o}.", "x.email.example.com." },
		{ SPF_MACRO_EXPLAIN, "%{c} at %{r}, %{t}",
		  "192.0.2.3 at mx.example.org, 1400000000" },
		{ SPF_MACRO_EXPLAIN, "%{C}%{R}", "192.0.2.3mx.example.org" },
		{ SPF_MACRO_EXPLAIN, "  spaces  ok  ", "  spaces  ok  " },
		{ SPF_MACRO_MODIFIER, "%{c}%{t}", "192.0.2.31400000000" },
	};
	struct spf_macro_vars	v;
	size_t			i;

	(void)state;
	test_vars(&v, false);
	for (i = 0; i < TG_NITEMS(cases); i++)
		test_expand(&v, cases[i].use, cases[i].in, cases[i].want);
	/* Upper case escapes all but RFC 3986 unreserved characters. */
	v.local = "~jack&jill=up-a_b3.c";
	test_expand(&v, SPF_MACRO_EXPLAIN, "%{L}", "~jack%26jill%3Dup-a_b3.c");
	v.helo = "JUMPIN' JUPITER";
	test_expand(&v, SPF_MACRO_DOMAIN, "%{H}", "JUMPIN%27%20JUPITER");
	/* Empty parts survive the split and join. */
	v.domain = "a..b.";
	test_expand(&v, SPF_MACRO_DOMAIN, "%{d}", "a..b.");
	test_expand(&v, SPF_MACRO_DOMAIN, "%{dr}", ".b..a");
}

/* test_macro_refused - syntax errors of 7.1 and letters out of place */
static void
test_macro_refused(void **state)
{
	static const struct {
		enum spf_macro_use	 use;
		const char		*in;
	} cases[] = {
		{ SPF_MACRO_DOMAIN, "%" },
		{ SPF_MACRO_DOMAIN, "foo%" },
		{ SPF_MACRO_DOMAIN, "%x" },
		{ SPF_MACRO_DOMAIN, "%(ir)" },
		{ SPF_MACRO_DOMAIN, "%20" },
		{ SPF_MACRO_DOMAIN, "%{" },
		{ SPF_MACRO_DOMAIN, "%{}" },
		{ SPF_MACRO_DOMAIN, "%{d" },
		{ SPF_MACRO_DOMAIN, "%{x}" },
		{ SPF_MACRO_DOMAIN, "%{a}" },
		{ SPF_MACRO_DOMAIN, "%{d0}" },
		{ SPF_MACRO_DOMAIN, "%{d00}" },
		{ SPF_MACRO_DOMAIN, "%{dr2}" },
		{ SPF_MACRO_DOMAIN, "%{d2rr}" },
		{ SPF_MACRO_DOMAIN, "%{d:}" },
		{ SPF_MACRO_DOMAIN, "%{d }" },
		{ SPF_MACRO_DOMAIN, "%{c}" },
		{ SPF_MACRO_DOMAIN, "%{r}" },
		{ SPF_MACRO_DOMAIN, "%{T}" },
		{ SPF_MACRO_DOMAIN, "a b" },
		{ SPF_MACRO_DOMAIN, "a\tb" },
		{ SPF_MACRO_DOMAIN, "caf\xc3\xa9" },
		{ SPF_MACRO_MODIFIER, "a b" },
		{ SPF_MACRO_MODIFIER, "%abc" },
		{ SPF_MACRO_EXPLAIN, "The %{x}-files." },
		{ SPF_MACRO_EXPLAIN, "\xef\xbb\xbf" "Explanation" },
		{ SPF_MACRO_EXPLAIN, "tab\there" },
	};
	struct spf_macro_vars	v;
	size_t			i;

	(void)state;
	test_vars(&v, false);
	for (i = 0; i < TG_NITEMS(cases); i++)
		test_expand(&v, cases[i].use, cases[i].in, NULL);
	/* A NUL inside the given length is no literal either. */
	assert_false(spf_macro_valid("a\0b", 3, SPF_MACRO_EXPLAIN, NULL));
}

/* test_macro_bounds - expansion stops at SPF_EXPAND_MAX, never past */
static void
test_macro_bounds(void **state)
{
	struct spf_macro_vars	 v;
	struct spf_text		 out;
	char			*spec, *big;
	size_t			 i, n = 400;

	(void)state;
	test_vars(&v, false);
	spec = tg_malloc(n * 4 + 1);
	for (i = 0; i < n; i++)
		memcpy(spec + i * 4, "%{S}", 4);
	spec[n * 4] = '\0';
	assert_true(spf_macro_valid(spec, strlen(spec), SPF_MACRO_DOMAIN,
	    NULL));
	assert_false(spf_macro_expand(spec, strlen(spec), SPF_MACRO_DOMAIN,
	    &v, &out));
	assert_true(out.len <= SPF_EXPAND_MAX);
	/* A long value with many parts, reversed: linear, and bounded. */
	big = tg_malloc(SPF_EXPAND_MAX * 2 + 1);
	for (i = 0; i < SPF_EXPAND_MAX; i++)
		memcpy(big + i * 2, "a.", 2);
	big[SPF_EXPAND_MAX * 2] = '\0';
	v.local = big;
	assert_false(spf_macro_expand("%{lr}", 5, SPF_MACRO_DOMAIN, &v,
	    &out));
	assert_true(spf_macro_expand("%{l3r}", 6, SPF_MACRO_DOMAIN, &v,
	    &out));
	assert_string_equal(out.s, "a.a.a");
	assert_true(spf_macro_expand("%{l2}", 5, SPF_MACRO_DOMAIN, &v, &out));
	assert_string_equal(out.s, "a.");
	free(big);
	free(spec);
}

/* test_domain_spec - domain-end: a toplabel or a macro-expand (7.1) */
static void
test_domain_spec(void **state)
{
	static const struct {
		const char	*in;
		bool		 ok;
	} cases[] = {
		{ "example.com", true }, { "example.com.", true },
		{ "%{d}", true }, { "foo.%{d2}", true }, { "%{d}%%", true },
		{ "_spf.%{d}.example.net", true },
		{ "foo:bar/baz.example.com", true },
		{ "foo.example.xn--zckzah", true }, { "a.1-2", true },
		{ "a.b-c", true }, { "%{H}.bar", true },
		{ "", false }, { "museum", false }, { "museum.", false },
		{ "foo-bar", false }, { "example.-com", false },
		{ "example.com-", false }, { "abc.123", false },
		{ "111.222.33.44", false }, { "example.com:8080", false },
		{ "example.com/24", false }, { "-all", false },
		{ "ex ample.com", false }, { "example.c_m", false },
		{ "%{c}.example.com", false }, { "example.com..", false },
		{ "%{d}.", false },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < TG_NITEMS(cases); i++)
		if (spf_domain_spec_valid(cases[i].in, strlen(cases[i].in)) !=
		    cases[i].ok)
			fail_msg("domain-spec \"%s\": want %s", cases[i].in,
			    cases[i].ok ? "valid" : "invalid");
}

/* test_names - target names (7.3) and check_host()'s domain (4.3) */
static void
test_names(void **state)
{
	static const struct {
		const char	*in;
		bool		 ok;
	} domains[] = {
		{ "example.com", true }, { "example.com.", true },
		{ "a.b.c.example.museum", true },
		{ "foo_bar.example.com", true },
		{ "com", false }, { "", false }, { ".", false },
		{ "[192.0.2.1]", false }, { "192.0.2.1", false },
		{ "a..example.com", false }, { ".example.com", false },
		{ "exa mple.com", false }, { "example.com..", false },
		{ "caf\xc3\xa9.example", false },
	};
	struct spf_text	t;
	char		out[SPF_DOMAIN_MAX + 1], label[70];
	size_t		i;

	(void)state;
	for (i = 0; i < TG_NITEMS(domains); i++)
		if (spf_domain_valid(domains[i].in) != domains[i].ok)
			fail_msg("domain \"%s\": want %s", domains[i].in,
			    domains[i].ok ? "valid" : "invalid");
	memset(label, 'a', 64);
	label[64] = '\0';
	(void)snprintf(t.s, sizeof(t.s), "%s.example.com", label);
	t.len = strlen(t.s);
	assert_false(spf_target_name(&t, out, sizeof(out)));
	label[63] = '\0';
	(void)snprintf(t.s, sizeof(t.s), "%s.example.com", label);
	t.len = strlen(t.s);
	assert_true(spf_target_name(&t, out, sizeof(out)));
	(void)snprintf(t.s, sizeof(t.s), "mail.example.com.");
	t.len = strlen(t.s);
	assert_true(spf_target_name(&t, out, sizeof(out)));
	assert_string_equal(out, "mail.example.com");
	(void)snprintf(t.s, sizeof(t.s), "a..b.com");
	t.len = strlen(t.s);
	assert_false(spf_target_name(&t, out, sizeof(out)));
	/* 7.3: labels go from the left until 253 bytes remain. */
	t.len = 0;
	for (i = 0; i < 40; i++)
		t.len += (size_t)snprintf(t.s + t.len, sizeof(t.s) - t.len,
		    "label%02zu.", i);
	t.len += (size_t)snprintf(t.s + t.len, sizeof(t.s) - t.len, "com");
	assert_true(spf_target_name(&t, out, sizeof(out)));
	assert_true(strlen(out) <= SPF_DOMAIN_MAX);
	assert_string_equal(out, strstr(t.s, "label09."));
}

/* test_long_label - a 64-byte label is no domain (4.3) */
static void
test_long_label(void **state)
{
	char	name[100];

	(void)state;
	memset(name, 'a', 64);
	memcpy(name + 64, ".com", 5);
	assert_false(spf_domain_valid(name));
	memcpy(name + 63, ".com", 5);
	assert_true(spf_domain_valid(name));
}

/* test_record_ok - records that parse, and what they hold */
static void
test_record_ok(void **state)
{
	static const struct {
		const char	*in;
		size_t		 nterms;
	} cases[] = {
		{ "v=spf1", 0 }, { "V=SpF1 ", 0 }, { "v=spf1 -all ", 1 },
		{ "v=spf1  a   -all", 2 }, { "v=spf1 ALL", 1 },
		{ "v=spf1 Include:example.com IP4:192.0.2.1 MX PTR Exists:%{i}."
		  "example.com A Ip6:2001:db8::/32", 7 },
		{ "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all", 2 },
		{ "v=spf1 default=+ default=pass", 0 },
		{ "v=spf1 ip4:1.1.1.1/0 ip4:0.0.0.0/32 ip6:::1.1.1.1/0", 3 },
		{ "v=spf1 ip6:::FFFF:1.2.3.4 ip6:Cafe:Babe:8000::/33", 2 },
		{ "v=spf1 a/0 a//0 a/24//64 mx/32 mx//128", 5 },
		{ "v=spf1 ptr ptr:example.com ?ptr:%{d2}", 3 },
		{ "v=spf1 redirect=_spf.example.com exp=why.%{d}", 0 },
		{ "v=spf1 unknown=%{c}%{r}%{t}", 0 },
	};
	struct spf_record	rec;
	char			why[128];
	size_t			i;

	(void)state;
	for (i = 0; i < TG_NITEMS(cases); i++) {
		if (!spf_record_parse(&rec, cases[i].in, strlen(cases[i].in),
		    why, sizeof(why)))
			fail_msg("\"%s\" refused: %s", cases[i].in, why);
		assert_int_equal(rec.nterms, cases[i].nterms);
		spf_record_fini(&rec);
	}
}

/* test_record_terms - qualifiers, specs and CIDR lengths as parsed */
static void
test_record_terms(void **state)
{
	static const char	rec_text[] =
	    "v=spf1 a:foo:bar/baz.example.com "
	    "~mx:foo.example.com/24//64 ?a//33 -ip4:192.0.2.0/24 "
	    "+ip6:2001:db8::/32 exists:%{ir}.x.example.com "
	    "redirect=r.example.com";
	struct spf_record	rec;
	unsigned char		net[16];
	char			why[128];

	(void)state;
	assert_true(spf_record_parse(&rec, rec_text, strlen(rec_text), why,
	    sizeof(why)));
	assert_int_equal(rec.nterms, 6);
	assert_int_equal(rec.terms[0].mech, SPF_MECH_A);
	assert_int_equal(rec.terms[0].qual, SPF_PASS);
	assert_int_equal(rec.terms[0].spec_len, 23);
	assert_memory_equal(rec.terms[0].spec, "foo:bar/baz.example.com", 23);
	assert_int_equal(rec.terms[0].cidr4, 32);
	assert_int_equal(rec.terms[0].cidr6, 128);
	assert_int_equal(rec.terms[1].qual, SPF_SOFTFAIL);
	assert_int_equal(rec.terms[1].spec_len, 15);
	assert_int_equal(rec.terms[1].cidr4, 24);
	assert_int_equal(rec.terms[1].cidr6, 64);
	assert_int_equal(rec.terms[2].qual, SPF_NEUTRAL);
	assert_null(rec.terms[2].spec);
	assert_int_equal(rec.terms[2].cidr6, 33);
	assert_int_equal(rec.terms[3].qual, SPF_FAIL);
	assert_int_equal(rec.terms[3].cidr4, 24);
	assert_memory_equal(rec.terms[3].net, "\xc0\x00\x02\x00", 4);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::", net), 1);
	assert_memory_equal(rec.terms[4].net, net, 16);
	assert_int_equal(rec.terms[4].cidr6, 32);
	assert_int_equal(rec.terms[5].mech, SPF_MECH_EXISTS);
	assert_int_equal(rec.redirect_len, 13);
	assert_null(rec.exp);
	spf_record_fini(&rec);
}

/* test_record_refused - every syntax error is a permerror (4.6) */
static void
test_record_refused(void **state)
{
	static const char *const cases[] = {
		"v=spf10", "v=spf1mx", "v=spf", " v=spf1", "spf1",
		"v=spf1 -all.", "v=spf1 -all:foobar", "v=spf1 -all/8",
		"v=spf1 all -all moo", "v=spf1 ip4:1.2.3.4 -all moo",
		"v=spf1 moo.cow/far_out=man:dog/cat",
		"v=spf1 moo.cow:far_out=man:dog/cat",
		"v=spf1 redirect:t2.example.com", "v=spf1 1up=foo",
		"v=spf1 =all", "v=spf1 -foo=bar", "v=spf1 foo=%abc",
		"v=spf1 include", "v=spf1 include:", "v=spf1 include: -all",
		"v=spf1 include:ip5.example.com/24", "v=spf1 exists",
		"v=spf1 exists:", "v=spf1 exists:mail.example.com/24",
		"v=spf1 ptr:", "v=spf1 ptr/0", "v=spf1 a:", "v=spf1 mx: -all",
		"v=spf1 a/33", "v=spf1 a//129", "v=spf1 a/24/64", "v=spf1 a/",
		"v=spf1 a//", "v=spf1 a/032", "v=spf1 a//0128", "v=spf1 mx/-1",
		"v=spf1 a:foo-bar", "v=spf1 a:museum", "v=spf1 a:museum.",
		"v=spf1 a:abc.123", "v=spf1 a:example.com:8080",
		"v=spf1 a:example.-com", "v=spf1 a:%{c}.example.com",
		"v=spf1 ip4", "v=spf1 ip4:", "v=spf1 ip4:1.2.3",
		"v=spf1 ip4:1.2.3.4.5", "v=spf1 ip4:1.2.3.4/33",
		"v=spf1 ip4:1.2.3.4/032", "v=spf1 ip4:1.2.3.4//32",
		"v=spf1 ip4:1.2.3.4:8080", "v=spf1 ip4:01.2.3.4",
		"v=spf1 ip4:256.2.3.4", "v=spf1 ip4:1.2.3.4/", "v=spf1 ip6",
		"v=spf1 ip6::CAFE::BABE", "v=spf1 ip6:::1.1.1.1/129",
		"v=spf1 ip6:::1.1.1.1//33", "v=spf1 ip6:1.2.3.4",
		"v=spf1 exp=", "v=spf1 exp=-all", "v=spf1 redirect=",
		"v=spf1 redirect=-all ?all",
		"v=spf1 exp=a.example.com exp=b.example.com",
		"v=spf1 redirect=a.example.com -all redirect=a.example.com",
		"v=spf1 exp=%{r}.example.com", "v=spf1 a:ctrl.example.com\rptr",
		"v=spf1 ip4:192.0.2.5\n include:x.example.com",
		"v=spf1\tall", "v=spf1 \x80" "a:example.net",
		"v=spf1 a:example.net \x96" "all",
	};
	struct spf_record	rec;
	char			why[128];
	size_t			i;

	(void)state;
	for (i = 0; i < TG_NITEMS(cases); i++) {
		if (spf_record_parse(&rec, cases[i], strlen(cases[i]), why,
		    sizeof(why)))
			fail_msg("\"%s\" accepted", cases[i]);
		assert_null(rec.terms);
		assert_null(rec.text);
	}
	/* A NUL inside the record (not the end of a C string) too. */
	assert_false(spf_record_parse(&rec, "v=spf1 a:foo.example.com\0", 25,
	    why, sizeof(why)));
	assert_non_null(strstr(why, "0x00"));
}

/* test_cidr - prefix comparison, including /0 and odd lengths */
static void
test_cidr(void **state)
{
	unsigned char	a[16], b[16];

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:8000::1", a), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:ffff::", b), 1);
	assert_true(spf_cidr_match(a, b, 0));
	assert_true(spf_cidr_match(a, b, 32));
	assert_true(spf_cidr_match(a, b, 33));
	assert_false(spf_cidr_match(a, b, 34));
	assert_true(spf_cidr_match(a, a, 128));
	assert_true(spf_cidr_match((const unsigned char *)"\xc0\x00\x02\x81",
	    (const unsigned char *)"\xc0\x00\x02\x80", 25));
	assert_false(spf_cidr_match((const unsigned char *)"\xc0\x00\x02\x81",
	    (const unsigned char *)"\xc0\x00\x02\x80", 32));
}

/* test_dns_new - an offline resolver holding spf_test_zone */
static struct tg_dns *
test_dns_new(void)
{
	struct tg_dns_conf	 conf;
	struct tg_dns		*dns;
	struct tg_err		 err;
	size_t			 i;

	memset(&conf, 0, sizeof(conf));
	conf.timeout = 5;
	conf.offline = true;
	dns = tg_dns_new(&conf, &err);
	assert_non_null(dns);
	for (i = 0; i < TG_NITEMS(spf_test_zone); i++)
		assert_int_equal(tg_dns_load_line(dns, spf_test_zone[i], &err),
		    TG_OK);
	return dns;
}

/* test_check - one spf_check with the common defaults */
static enum tg_status
test_check(struct tg_dns *dns, const char *ip, const char *helo,
    const char *sender, struct spf_answer *ans)
{
	struct spf_request	req;

	memset(&req, 0, sizeof(req));
	req.ip = ip;
	req.helo = helo;
	req.sender = sender;
	req.default_exp = "%{d} denies %{c}";
	return spf_check(dns, &req, ans);
}

/* test_check_requests - requests spf_check refuses or answers "none" */
static void
test_check_requests(void **state)
{
	struct tg_dns		*dns = *state;
	struct spf_answer	 ans;
	char			 local[SPF_LOCAL_MAX + 40];

	assert_int_equal(test_check(dns, "not-an-ip", "h", "a@example.org",
	    &ans), TG_PERM);
	assert_int_equal(ans.result, SPF_NONE);
	assert_non_null(strstr(ans.reason, "not an IP address"));
	assert_int_equal(test_check(dns, NULL, "h", "a@example.org", &ans),
	    TG_PERM);
	assert_int_equal(test_check(dns, "192.0.2.1", NULL, NULL, &ans),
	    TG_OK);
	assert_int_equal(ans.result, SPF_NONE);
	assert_true(ans.helo);
	assert_int_equal(ans.dns_lookups, 0);
	assert_int_equal(test_check(dns, "192.0.2.1", "h", "a@b@com", &ans),
	    TG_OK);
	assert_int_equal(ans.result, SPF_NONE);
	memset(local, 'x', sizeof(local) - 1);
	local[sizeof(local) - 1] = '\0';
	memcpy(local + SPF_LOCAL_MAX + 2, "@example.org", 13);
	assert_int_equal(test_check(dns, "192.0.2.1", "h", local, &ans),
	    TG_OK);
	assert_int_equal(ans.result, SPF_NONE);
	assert_non_null(strstr(ans.reason, "longer than"));
	assert_int_equal(test_check(dns, "192.0.2.1", "h",
	    "a@nothing.example.org", &ans), TG_OK);
	assert_int_equal(ans.result, SPF_NONE);
	assert_string_equal(ans.domain, "nothing.example.org");
	assert_string_equal(ans.reason, "nothing.example.org: no SPF record");
}

/* test_check_identities - MAIL FROM forms and the HELO identity */
static void
test_check_identities(void **state)
{
	struct tg_dns		*dns = *state;
	struct spf_answer	 ans;

	assert_int_equal(test_check(dns, "192.0.2.77", "x", "u@example.org",
	    &ans), TG_OK);
	assert_int_equal(ans.result, SPF_PASS);
	assert_false(ans.helo);
	assert_string_equal(ans.mechanism, "ip4:192.0.2.0/24");
	assert_string_equal(ans.explanation, "");
	assert_int_equal(test_check(dns, "::ffff:192.0.2.77", "x",
	    "example.org", &ans), TG_OK);
	assert_int_equal(ans.result, SPF_PASS);
	assert_int_equal(test_check(dns, "2001:db8::1", "x", "u@example.org.",
	    &ans), TG_OK);
	assert_int_equal(ans.result, SPF_FAIL);
	assert_string_equal(ans.mechanism, "-all");
	assert_string_equal(ans.explanation, "example.org denies 2001:db8::1");
	assert_int_equal(test_check(dns, "198.51.100.5", "helo.example.org",
	    "", &ans), TG_OK);
	assert_int_equal(ans.result, SPF_PASS);
	assert_true(ans.helo);
	assert_string_equal(ans.domain, "helo.example.org");
	assert_int_equal(ans.dns_lookups, 1);
	assert_int_equal(test_check(dns, "198.51.100.6", "[198.51.100.6]",
	    NULL, &ans), TG_OK);
	assert_int_equal(ans.result, SPF_NONE);
}

/* test_check_explain - exp= text, and untrusted bytes made printable */
static void
test_check_explain(void **state)
{
	struct tg_dns		*dns = *state;
	struct spf_answer	 ans;

	assert_int_equal(test_check(dns, "192.0.2.1", "x",
	    "bad\x01guy@exp.example.org", &ans), TG_OK);
	assert_int_equal(ans.result, SPF_FAIL);
	assert_string_equal(ans.explanation,
	    "bad?guy may not send from 192.0.2.1");
	/* Softfail through include: no explanation at all. */
	assert_int_equal(test_check(dns, "203.0.113.1", "x",
	    "u@inc.example.org", &ans), TG_OK);
	assert_int_equal(ans.result, SPF_SOFTFAIL);
	assert_string_equal(ans.explanation, "");
	assert_string_equal(ans.mechanism, "~all");
	assert_int_equal(test_check(dns, "192.0.2.1", "x",
	    "u@inc.example.org", &ans), TG_OK);
	assert_int_equal(ans.result, SPF_PASS);
	assert_string_equal(ans.mechanism, "include:example.org");
}

/* test_check_loop - a self-include ends at the lookup limit */
static void
test_check_loop(void **state)
{
	struct tg_dns		*dns = *state;
	struct spf_answer	 ans;

	assert_int_equal(test_check(dns, "192.0.2.1", "x",
	    "u@deep.example.org", &ans), TG_OK);
	assert_int_equal(ans.result, SPF_PERMERROR);
	assert_int_equal(ans.dns_lookups, SPF_MAX_LOOKUPS + 1);
	assert_non_null(strstr(ans.reason, "more than 10 DNS lookups"));
	assert_string_equal(ans.mechanism, "");
}

/* test_thread - many checks on the shared resolver */
static void *
test_thread(void *arg)
{
	struct tg_dns		*dns = arg;
	struct spf_answer	 ans;
	int			 i, bad = 0;

	for (i = 0; i < SPF_TEST_ROUNDS; i++) {
		if (test_check(dns, i % 2 ? "192.0.2.9" : "203.0.113.9", "x",
		    "u@example.org", &ans) != TG_OK ||
		    ans.result != (i % 2 ? SPF_PASS : SPF_FAIL))
			bad++;
		if (test_check(dns, "192.0.2.1", "x", "u@deep.example.org",
		    &ans) != TG_OK || ans.result != SPF_PERMERROR)
			bad++;
	}
	return bad == 0 ? NULL : arg;
}

/* test_check_threads - spf_check is reentrant */
static void
test_check_threads(void **state)
{
	pthread_t	t[SPF_TEST_THREADS];
	void		*ret;
	size_t		 i;

	for (i = 0; i < SPF_TEST_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, test_thread,
		    *state), 0);
	for (i = 0; i < SPF_TEST_THREADS; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
	}
}

/* test_result_names - names round-trip; out of range reads permerror */
static void
test_result_names(void **state)
{
	enum spf_result	r;
	int		i;

	(void)state;
	for (i = SPF_NONE; i <= SPF_PERMERROR; i++) {
		assert_true(spf_result_parse(spf_result_name(
		    (enum spf_result)i), &r));
		assert_int_equal(r, i);
	}
	assert_string_equal(spf_result_name(SPF_SOFTFAIL), "softfail");
	assert_string_equal(spf_result_name((enum spf_result)42),
	    "permerror");
	assert_false(spf_result_parse("ambiguous", &r));
}

/* test_setup - the shared resolver of the spf_check cases */
static int
test_setup(void **state)
{
	*state = test_dns_new();
	return 0;
}

/* test_teardown - free it */
static int
test_teardown(void **state)
{
	*state = tg_dns_free(*state);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_macro_rfc),
		cmocka_unit_test(test_macro_forms),
		cmocka_unit_test(test_macro_refused),
		cmocka_unit_test(test_macro_bounds),
		cmocka_unit_test(test_domain_spec),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_long_label),
		cmocka_unit_test(test_record_ok),
		cmocka_unit_test(test_record_terms),
		cmocka_unit_test(test_record_refused),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_result_names),
		cmocka_unit_test_setup_teardown(test_check_requests,
		    test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_check_identities,
		    test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_check_explain,
		    test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_check_loop,
		    test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_check_threads,
		    test_setup, test_teardown),
	};

	tg_log_open("spf_eval_test", true);
	tg_log_set_level(TG_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
