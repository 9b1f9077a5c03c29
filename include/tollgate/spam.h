/*
 * spam.h - the spam-scoring module (milters/spam/): its descriptor and
 * what others may read of its result (tollgatectl scan, tests).
 *
 * The module scores inbound mail SpamAssassin's way (rules, Bayes, DNS
 * blocklists, the DKIM/SPF/DMARC results) and, by the total against
 * the [spam] thresholds, tags it (X-Spam-* headers), quarantines,
 * defers or rejects it.
 */
#ifndef TOLLGATE_SPAM_H
#define TOLLGATE_SPAM_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

struct tg_ctx;

extern const struct tg_module tg_module_spam;

/* spam_bayes_params - Bayes' keys, the [bayes] section (spam_bayes.c) */
extern const struct tg_param spam_bayes_params[];

/*
 * spam_msg_result - after the module's eom: whether the message was
 * scanned, its total and the threshold it was tagged against.  False
 * when it was not scanned (module not enabled, outbound mail, an error).
 */
bool	spam_msg_result(struct tg_ctx *, double *score, double *required);

/*
 * spam_msg_hit - the i-th rule that hit (in the order they hit), its
 * points and one-line description (NULL if none); false past the end.
 * Strings are borrowed until the end of the message.
 */
bool	spam_msg_hit(struct tg_ctx *, size_t i, const char **name,
	    double *points, const char **describe);

#endif
