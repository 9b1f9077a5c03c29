/*
 * dmarc_fuzz - libFuzzer target over the RFC5322.From parser.
 *
 * The input, cut at its first NUL, is read as a From: value: a domain
 * found must be non-empty, at most DMARC_DOMAIN_MAX bytes, lower case
 * and free of white space and of the characters that delimit addresses;
 * a refusal must leave the output empty and say why.  The same holds
 * for every domain of the multi-domain and lenient readers.  Nothing
 * here touches DNS or libopendmarc.
 *
 * Build (clang): see milters/dmarc/local.mk, target dmarc-fuzz.  Not run
 * in CI; run by hand, e.g. ./dmarc_fuzz -max_total_time=60 corpus/
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../dmarc_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* dmarc_fuzz_check - the invariants of one parse */
static void
dmarc_fuzz_check(enum tg_status st, const char *out, const char *why)
{
	size_t	len = strlen(out);

	if (st != TG_OK) {
		if (len != 0 || why == NULL)
			abort();
		return;
	}
	if (why != NULL || len == 0 || len > DMARC_DOMAIN_MAX ||
	    strpbrk(out, " \t\r\n<>()\",;:@[]\\") != NULL ||
	    out[len - 1] == '.' || out[0] == '.')
		abort();
	for (; *out != '\0'; out++)
		if (*out >= 'A' && *out <= 'Z')
			abort();
}

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_authors	 a;
	char			 out[DMARC_DOMAIN_MAX + 1];
	const char		*why;
	char			*s;
	size_t			 i;
	enum tg_status		 st;

	s = tg_strndup((const char *)data, size);
	dmarc_fuzz_check(dmarc_from_domain(s, out, &why), out, why);
	memset(&a, 0, sizeof(a));
	if (dmarc_from_domains(s, &a, &why) == TG_PERM) {
		if (a.n != 0)
			abort();	/* a refusal adds nothing */
		st = dmarc_from_lenient(s, &a);
		if ((st == TG_OK) != (a.n > 0) || a.lenient != (a.n > 0))
			abort();
	}
	if (a.n > DMARC_AUTHORS_MAX)
		abort();
	for (i = 0; i < a.n; i++)
		dmarc_fuzz_check(TG_OK, a.domain[i], NULL);
	free(s);
	return 0;
}
