/*
 * spam_bayes_int.h - what the Bayes files share with each other and
 * with spam_bayes_test: the tokenizer, the token hashes and the
 * arithmetic.  Only milters/spam/spam_bayes*.c include it.
 */
#ifndef TOLLGATE_SPAM_BAYES_INT_H
#define TOLLGATE_SPAM_BAYES_INT_H

#include <stdint.h>

#include "spam_int.h"

#define SPAM_BAYES_TOKEN_MIN	3	/* bytes; shorter body words skipped */
#define SPAM_BAYES_TOKEN_MAX	15	/* longer ones become "sk:" + 7 */
#define SPAM_BAYES_MSG_TOKENS	4000	/* distinct tokens used a message */

/*
 * The classifier's constants: SpamBayes' defaults (unknown_word_strength
 * s, unknown_word_prob x, minimum_prob_strength: the distance from 0.5
 * below which a token is ignored, max_discriminators: how many of the
 * most significant tokens are combined).  SpamAssassin's CombineChi.pm
 * uses s = 0.030, x = 0.538, 0.346 and 150; on the SpamAssassin corpus
 * (bench/RESULTS.md) SpamBayes' values put 89 of 100 test spam at
 * BAYES_99 instead of 67, with no ham above 0.5 either way, and did so
 * on the 1-in-3 and 1-in-4 splits too (153 vs 117 of 166, 111 vs 91 of
 * 125).  A weak minimum strength lets many mildly spammy words add up,
 * which the chi-square combining rewards.
 */
#define SPAM_BAYES_S		0.45
#define SPAM_BAYES_X		0.5
#define SPAM_BAYES_MIN_STRENGTH	0.1
#define SPAM_BAYES_MAX_USED	150

/* spam_bayes_tokens - every token of msg (duplicates included) */
typedef void	(*spam_bayes_emit_fn)(const char *, size_t, void *);
void		 spam_bayes_tokens(const struct spam_msg *,
		    spam_bayes_emit_fn, void *);

/* A message's distinct token hashes, sorted. */
struct spam_bayes_toks {
	uint64_t	*h;
	size_t		 n, cap;
};

/* spam_bayes_hash - the first 8 bytes of the token's SHA-1, as
 * SpamAssassin keeps the last 5 */
uint64_t	 spam_bayes_hash(const char *, size_t);
void		 spam_bayes_toks_make(const struct spam_msg *,
		    struct spam_bayes_toks *);
void		 spam_bayes_toks_fini(struct spam_bayes_toks *);

/* spam_bayes_chi2q - P(chi-square with v (even) degrees of freedom
 * >= x2) */
double		 spam_bayes_chi2q(double x2, unsigned int v);
/* spam_bayes_fw - Robinson's f(w) from a token's counts s, h and the
 * learned totals ns, nh */
double		 spam_bayes_fw(double s, double h, double ns, double nh);
/* spam_bayes_combine - Fisher's combining of n f(w) values (they are
 * reordered): the probability of spam, 0.5 when none is significant */
double		 spam_bayes_combine(double *fw, size_t n);

/*
 * spam_bayes_file_limits - what tollgatectl learn and the accuracy test
 * extract of a message file with spam_mime_parse: the [spam] limits'
 * defaults (conf.d/spam.conf), so a file is learned as the milter
 * would see it.
 */
const struct spam_limits *spam_bayes_file_limits(void);

#endif
