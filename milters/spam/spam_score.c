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

void
spam_score_set_deadline(struct spam_score *s, double seconds)
{
	struct timespec	now;
	long		ns;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	ns = now.tv_nsec + (long)((seconds - (double)(time_t)seconds) * 1e9);
	s->deadline.tv_sec = now.tv_sec + (time_t)seconds + ns / 1000000000L;
	s->deadline.tv_nsec = ns % 1000000000L;
}

bool
spam_score_late(const struct spam_score *s)
{
	struct timespec	now;

	if (s->deadline.tv_sec == 0)
		return false;
	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > s->deadline.tv_sec ||
	    (now.tv_sec == s->deadline.tv_sec &&
	    now.tv_nsec >= s->deadline.tv_nsec);
}
