/*
 * spf_fuzz - libFuzzer target over SPF record text and macro expansion.
 *
 * The input is split at its first newline: the part before it is parsed
 * as an SPF record (and, prefixed with "v=spf1 ", once more, so the
 * fuzzer need not find the version tag first) and expanded as a
 * macro-string in each of the three contexts; the part after it becomes
 * the value of %{l} and %{h}, so that the transformers see hostile
 * values too.  Every domain-spec of a parsed record is expanded and cut
 * to a target name.  Nothing here touches DNS (%{p} reads "unknown").
 *
 * Build (clang): see milters/spf/local.mk, target spf-fuzz.  Not run in
 * CI; run by hand, e.g. ./spf_fuzz -max_total_time=60 corpus/
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/util.h"

#include "../spf_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	spf_fuzz_expand(const char *, size_t,
		    const struct spf_macro_vars *);
static void	spf_fuzz_record(const char *, size_t,
		    const struct spf_macro_vars *);

/* spf_fuzz_expand - expand s in every context; cut domains to names */
static void
spf_fuzz_expand(const char *s, size_t n, const struct spf_macro_vars *v)
{
	static const enum spf_macro_use	uses[] = {
		SPF_MACRO_DOMAIN, SPF_MACRO_MODIFIER, SPF_MACRO_EXPLAIN
	};
	struct spf_text			out;
	char				name[SPF_DOMAIN_MAX + 1];
	size_t				i;
	bool				valid, expanded;

	for (i = 0; i < TG_NITEMS(uses); i++) {
		valid = spf_macro_valid(s, n, uses[i], NULL);
		expanded = spf_macro_expand(s, n, uses[i], v, &out);
		/* Expanding bad syntax must fail; good syntax may too. */
		if (expanded && !valid)
			abort();
		if (out.len > SPF_EXPAND_MAX || out.s[out.len] != '\0')
			abort();
		if (expanded && spf_target_name(&out, name, sizeof(name)) &&
		    strlen(name) > SPF_DOMAIN_MAX)
			abort();
	}
	(void)spf_domain_spec_valid(s, n);
}

/* spf_fuzz_record - parse; expand what the terms would expand */
static void
spf_fuzz_record(const char *s, size_t n, const struct spf_macro_vars *v)
{
	struct spf_record	rec;
	char			why[128];
	size_t			i;

	if (!spf_record_parse(&rec, s, n, why, sizeof(why)))
		return;
	for (i = 0; i < rec.nterms; i++) {
		if (rec.terms[i].cidr4 > 32 || rec.terms[i].cidr6 > 128)
			abort();
		if (rec.terms[i].spec != NULL)
			spf_fuzz_expand(rec.terms[i].spec,
			    rec.terms[i].spec_len, v);
	}
	if (rec.redirect != NULL)
		spf_fuzz_expand(rec.redirect, rec.redirect_len, v);
	if (rec.exp != NULL)
		spf_fuzz_expand(rec.exp, rec.exp_len, v);
	spf_record_fini(&rec);
}

/* LLVMFuzzerTestOneInput - one input; see the header */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spf_macro_vars	 v;
	const char		*in = (const char *)data, *nl;
	char			*value, *rec;
	size_t			 n;

	nl = memchr(in, '\n', size);
	n = nl != NULL ? (size_t)(nl - in) : size;
	value = tg_strndup(nl != NULL ? nl + 1 : "", nl != NULL ?
	    size - n - 1 : 0);
	memset(&v, 0, sizeof(v));
	v.sender = "strong-bad@email.example.com";
	v.local = value;
	v.sender_domain = "email.example.com";
	v.domain = "email.example.com";
	v.ip = "192.0.2.3";
	v.client = "192.0.2.3";
	v.helo = value;
	v.receiver = "mx.example.org";
	v.version = "in-addr";
	v.now = 1400000000;
	spf_fuzz_expand(in, n, &v);
	spf_fuzz_record(in, n, &v);
	rec = tg_malloc(n + 8);
	memcpy(rec, "v=spf1 ", 7);
	memcpy(rec + 7, in, n);
	spf_fuzz_record(rec, n + 7, &v);
	(void)spf_domain_valid(value);
	free(rec);
	free(value);
	return 0;
}
