/*
 * spam_score.c - the hits a message collects and their total.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "spam_int.h"

void
spam_score_init(struct spam_score *s)
{
	memset(s, 0, sizeof(*s));
}

void
spam_score_fini(struct spam_score *s)
{
	for (size_t i = 0; i < s->nhits; i++) {
		free(s->hits[i].name);
		free(s->hits[i].describe);
	}
	free(s->hits);
	memset(s, 0, sizeof(*s));
}

bool
spam_score_has(const struct spam_score *s, const char *name)
{
	for (size_t i = 0; i < s->nhits; i++)
		if (strcmp(s->hits[i].name, name) == 0)
			return true;
	return false;
}

void
spam_score_add(struct spam_score *s, const char *name, double points,
    const char *describe)
{
	struct spam_hit *h;

	if (spam_score_has(s, name))
		return;
	s->hits = tg_reallocarray(s->hits, s->nhits + 1, sizeof(*s->hits));
	h = &s->hits[s->nhits++];
	h->name = tg_strdup(name);
	h->points = points;
	h->describe = describe != NULL ? tg_strdup(describe) : NULL;
	s->total += points;
}
