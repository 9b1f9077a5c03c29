/*
 * dkim_map - a hash table from strings to pointers, for the KeyTable,
 * the SigningTable and the key-file cache.
 *
 * Open addressing with linear probing, FNV-1a over the lowercased key,
 * doubling at 3/4 load: a table of 100,000 domains loads in linear time
 * and answers a lookup in a few probes.  Keys compare ASCII
 * case-insensitively, as domain names do.  Built at start-up, then only
 * read, so lookups need no lock.  Deletion shifts the probe run back
 * (no tombstones), for the key cache (dkim_keycache.c).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim_int.h"

struct dkim_map_slot {
	char	*key;		/* NULL: empty */
	void	*val;
};

struct dkim_map {
	struct dkim_map_slot	*slots;
	size_t			 cap;	/* a power of two */
	size_t			 count;
};

/* dkim_map_hash - FNV-1a of the key, lowercased */
static uint64_t
dkim_map_hash(const char *s)
{
	uint64_t	h = 14695981039346656037ULL;
	unsigned char	c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * 1099511628211ULL;
	}
	return h;
}

/* dkim_map_new - an empty map */
struct dkim_map *
dkim_map_new(void)
{
	struct dkim_map	*m;

	m = tg_calloc(1, sizeof(*m));
	m->cap = 16;
	m->slots = tg_calloc(m->cap, sizeof(*m->slots));
	return m;
}

/* dkim_map_free - the map, its keys, and each value through fn */
void
dkim_map_free(struct dkim_map *m, void (*fn)(void *))
{
	size_t	i;

	if (m == NULL)
		return;
	for (i = 0; i < m->cap; i++) {
		if (m->slots[i].key == NULL)
			continue;
		free(m->slots[i].key);
		if (fn != NULL)
			fn(m->slots[i].val);
	}
	free(m->slots);
	free(m);
}

/* dkim_map_find - the slot holding key, or the empty slot it would take */
static struct dkim_map_slot *
dkim_map_find(const struct dkim_map *m, const char *key)
{
	size_t	i = (size_t)dkim_map_hash(key) & (m->cap - 1);

	while (m->slots[i].key != NULL &&
	    tg_strcasecmp(m->slots[i].key, key) != 0)
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

/* dkim_map_grow - double the table and rehash every key */
static void
dkim_map_grow(struct dkim_map *m)
{
	struct dkim_map_slot	*old = m->slots, *s;
	size_t			 oldcap = m->cap, i;

	m->cap *= 2;
	m->slots = tg_calloc(m->cap, sizeof(*m->slots));
	for (i = 0; i < oldcap; i++) {
		if (old[i].key == NULL)
			continue;
		s = dkim_map_find(m, old[i].key);
		*s = old[i];
	}
	free(old);
}

/* dkim_map_get - the value for key, or NULL */
void *
dkim_map_get(const struct dkim_map *m, const char *key)
{
	return dkim_map_find(m, key)->val;
}

/* dkim_map_put - add a key that is not there yet */
bool
dkim_map_put(struct dkim_map *m, const char *key, void *val)
{
	struct dkim_map_slot	*s;

	if ((m->count + 1) * 4 > m->cap * 3)
		dkim_map_grow(m);
	s = dkim_map_find(m, key);
	if (s->key != NULL)
		return false;
	s->key = tg_strdup(key);
	s->val = val;
	m->count++;
	return true;
}

/* dkim_map_del - remove key and return its value, or NULL */
void *
dkim_map_del(struct dkim_map *m, const char *key)
{
	struct dkim_map_slot	*s = dkim_map_find(m, key);
	size_t			 hole, i, home;
	void			*val = s->val;

	if (s->key == NULL)
		return NULL;
	free(s->key);
	s->key = NULL;
	s->val = NULL;
	m->count--;
	/* move back each later key of the run that may sit in the hole */
	hole = (size_t)(s - m->slots);
	for (i = (hole + 1) & (m->cap - 1); m->slots[i].key != NULL;
	    i = (i + 1) & (m->cap - 1)) {
		home = (size_t)dkim_map_hash(m->slots[i].key) & (m->cap - 1);
		/* i's key stays if its home lies in (hole, i], cyclically */
		if (((i - home) & (m->cap - 1)) < ((i - hole) & (m->cap - 1)))
			continue;
		m->slots[hole] = m->slots[i];
		m->slots[i].key = NULL;
		m->slots[i].val = NULL;
		hole = i;
	}
	return val;
}

/* dkim_map_count - number of keys */
size_t
dkim_map_count(const struct dkim_map *m)
{
	return m->count;
}
