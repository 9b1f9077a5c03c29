/*
 * spf_cache - the SPF module's result cache.
 *
 * A burst of mail from one sender through one client asks the same
 * question again and again; the resolver caches the DNS answers, but a
 * check still costs up to 10 lookups of it and a record parse each time.
 * This cache keeps whole answers, keyed by everything a result depends
 * on (the module builds the key: engine, client, HELO name, sender), for
 * as long as the DNS data it came from: the answer's own ttl, capped by
 * the caller.  It is bounded: past max entries the least recently used
 * goes; an expired entry goes when it is next looked up.
 *
 * What it does not do: decide what may be cached (the module does not
 * cache temperror) or log.
 *
 * Threading: every call takes the cache's one mutex; the work under it
 * is a hash lookup and a copy, so contention stays small next to the
 * DNS waits it saves.  Ownership: the cache owns its entries; get copies
 * out, put copies in.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tollgate/util.h"

#include "spf_int.h"

/* One cached answer, on its hash chain and on the LRU list. */
struct spf_cache_entry {
	struct spf_cache_entry	*chain;
	struct spf_cache_entry	*prev, *next;	/* LRU list */
	char			*key;
	uint32_t		 hash;
	time_t			 expires;	/* monotonic seconds */
	struct spf_answer	 ans;
};

struct spf_cache {
	pthread_mutex_t		  lock;
	struct spf_cache_entry	**buckets;
	size_t			  nbuckets;	/* a power of two */
	size_t			  count;
	size_t			  max;
	struct spf_cache_entry	 *head, *tail;
};

static uint32_t	spf_cache_hash(const char *);
static time_t	spf_cache_now(void);
static struct spf_cache_entry *spf_cache_find(struct spf_cache *,
		    const char *, uint32_t);
static void	spf_cache_unlink(struct spf_cache *,
		    struct spf_cache_entry *);
static void	spf_cache_push(struct spf_cache *, struct spf_cache_entry *);
static void	spf_cache_drop(struct spf_cache *, struct spf_cache_entry *);

/*
 * spf_cache_hash - FNV-1a.  Senders could make keys collide on purpose,
 * but no chain is longer than max entries: the worst case is a scan of
 * the whole (small) cache under the lock, not unbounded work.
 */
static uint32_t
spf_cache_hash(const char *s)
{
	uint32_t	h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* spf_cache_now - monotonic seconds: wall-clock steps must not matter */
static time_t
spf_cache_now(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		TG_PANIC("spf: no monotonic clock");
	return ts.tv_sec;
}

/* spf_cache_new - see spf_int.h */
struct spf_cache *
spf_cache_new(size_t max)
{
	struct spf_cache	*c;

	if (max == 0)
		return NULL;
	c = tg_calloc(1, sizeof(*c));
	if (pthread_mutex_init(&c->lock, NULL) != 0)
		TG_PANIC("spf: cache mutex");
	/* About two entries per chain when full. */
	for (c->nbuckets = 16; c->nbuckets < max / 2; c->nbuckets *= 2)
		;
	c->buckets = tg_calloc(c->nbuckets, sizeof(*c->buckets));
	c->max = max;
	return c;
}

/* spf_cache_free - see spf_int.h */
struct spf_cache *
spf_cache_free(struct spf_cache *c)
{
	struct spf_cache_entry	*e, *next;

	if (c == NULL)
		return NULL;
	for (e = c->head; e != NULL; e = next) {
		next = e->next;
		free(e->key);
		free(e);
	}
	free(c->buckets);
	(void)pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

/* spf_cache_find - the entry for key, live or not; lock held */
static struct spf_cache_entry *
spf_cache_find(struct spf_cache *c, const char *key, uint32_t h)
{
	struct spf_cache_entry	*e;

	for (e = c->buckets[h & (c->nbuckets - 1)]; e != NULL; e = e->chain)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* spf_cache_unlink - off the LRU list; lock held */
static void
spf_cache_unlink(struct spf_cache *c, struct spf_cache_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

/* spf_cache_push - to the head of the LRU list; lock held */
static void
spf_cache_push(struct spf_cache *c, struct spf_cache_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

/* spf_cache_drop - remove and free an entry; lock held */
static void
spf_cache_drop(struct spf_cache *c, struct spf_cache_entry *e)
{
	struct spf_cache_entry	**pp;

	for (pp = &c->buckets[e->hash & (c->nbuckets - 1)]; *pp != e;
	    pp = &(*pp)->chain)
		if (*pp == NULL)
			TG_PANIC("spf: cache entry not on its chain");
	*pp = e->chain;
	spf_cache_unlink(c, e);
	c->count--;
	free(e->key);
	free(e);
}

/* spf_cache_get - see spf_int.h */
bool
spf_cache_get(struct spf_cache *c, const char *key, struct spf_answer *ans)
{
	struct spf_cache_entry	*e;
	uint32_t		 h;
	bool			 hit = false;

	if (c == NULL)
		return false;
	h = spf_cache_hash(key);
	if (pthread_mutex_lock(&c->lock) != 0)
		TG_PANIC("spf: cache lock");
	if ((e = spf_cache_find(c, key, h)) != NULL &&
	    e->expires <= spf_cache_now())
		spf_cache_drop(c, e);
	else if (e != NULL) {
		*ans = e->ans;
		spf_cache_unlink(c, e);
		spf_cache_push(c, e);
		hit = true;
	}
	(void)pthread_mutex_unlock(&c->lock);
	return hit;
}

/* spf_cache_put - see spf_int.h */
void
spf_cache_put(struct spf_cache *c, const char *key,
    const struct spf_answer *ans, long ttl)
{
	struct spf_cache_entry	*e;
	uint32_t		 h;

	if (c == NULL || ttl <= 0)
		return;
	h = spf_cache_hash(key);
	if (pthread_mutex_lock(&c->lock) != 0)
		TG_PANIC("spf: cache lock");
	if ((e = spf_cache_find(c, key, h)) != NULL)
		spf_cache_drop(c, e);
	while (c->count >= c->max)
		spf_cache_drop(c, c->tail);
	e = tg_calloc(1, sizeof(*e));
	e->key = tg_strdup(key);
	e->hash = h;
	e->expires = spf_cache_now() + ttl;
	e->ans = *ans;
	e->chain = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	spf_cache_push(c, e);
	c->count++;
	(void)pthread_mutex_unlock(&c->lock);
}

/* spf_cache_count - see spf_int.h */
size_t
spf_cache_count(struct spf_cache *c)
{
	size_t	n;

	if (c == NULL)
		return 0;
	if (pthread_mutex_lock(&c->lock) != 0)
		TG_PANIC("spf: cache lock");
	n = c->count;
	(void)pthread_mutex_unlock(&c->lock);
	return n;
}
