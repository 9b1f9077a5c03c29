/*
 * store_kv - the page of records both backends' kv_list fill and
 * deliver (store_int.h).
 *
 * A backend collects at most TG_STORE_LIST_PAGE records in its read
 * transaction (LMDB) or from one reply (Redis), copied here, and hands
 * them to the caller's callback only after the transaction or the
 * connection is given back: the callback may then use the store.
 * Threading: a page belongs to the one call listing.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tollgate/store.h"
#include "tollgate/util.h"

#include "store_int.h"

/* tg_store_kv_page_add - copy one record into the page */
void
tg_store_kv_page_add(struct tg_store_kv_page *p, const char *key,
    size_t keylen, const void *value, size_t len, uint64_t ttl_ms)
{
	struct tg_store_kv_rec	*r;
	char			*v;

	if (p->n == p->cap) {
		p->cap = p->cap == 0 ? 64 : p->cap * 2;
		p->v = tg_reallocarray(p->v, p->cap, sizeof(*p->v));
	}
	r = &p->v[p->n++];
	r->key = tg_strndup(key, keylen);
	v = tg_malloc(len + 1);
	memcpy(v, value, len);
	v[len] = '\0';
	r->value = v;
	r->len = len;
	r->ttl_ms = ttl_ms;
}

/* tg_store_kv_page_clear - free the records, keep the array */
static void
tg_store_kv_page_clear(struct tg_store_kv_page *p)
{
	size_t	i;

	for (i = 0; i < p->n; i++) {
		free((char *)p->v[i].key);
		free((char *)p->v[i].value);
	}
	p->n = 0;
}

/* tg_store_kv_page_deliver - each record to cb until it says stop */
bool
tg_store_kv_page_deliver(struct tg_store_kv_page *p, tg_store_kv_list_cb cb,
    void *arg)
{
	size_t	i;
	bool	go = true;

	for (i = 0; go && i < p->n; i++)
		go = cb(&p->v[i], arg);
	tg_store_kv_page_clear(p);
	return go;
}

/* tg_store_kv_page_fini - the records and the array */
void
tg_store_kv_page_fini(struct tg_store_kv_page *p)
{
	tg_store_kv_page_clear(p);
	free(p->v);
	p->v = NULL;
	p->cap = 0;
}
