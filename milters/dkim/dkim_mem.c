/*
 * dkim_mem - what libopendkim allocates for a signing handle, kept per
 * message so that what it loses is freed at the message's end.
 *
 * libopendkim 2.11 loses the signature buffer of every Ed25519
 * signature: dkim_privkey_load allocates crypto_out, and dkim_free
 * releases the key data for RSA only (tests/integration/lsan.supp).  At
 * thousands of messages a second that is megabytes a minute.  The
 * library sends every allocation it makes for a handle through the
 * hooks given to dkim_init, with the closure given to dkim_sign; the
 * module passes its message's arena there, each block is linked into
 * it, and dkim_arena_release frees the blocks still linked once every
 * handle of the message is freed.  Verify handles and the library's own
 * allocations pass a NULL closure and get plain malloc and free.
 *
 * A message's handles run on one thread at a time (libmilter's thread
 * for the connection), so an arena takes no lock.
 */
#include "config.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dkim_int.h"

/* A block's header: the arena's list, kept aligned for any type. */
union dkim_mem_hdr {
	struct {
		union dkim_mem_hdr	*prev, *next;
	} l;
	max_align_t	 align;
};

#define DKIM_MEM_HDR(p)	((union dkim_mem_hdr *)(p) - 1)

static atomic_ulong	dkim_mem_nreclaimed;

/* dkim_mem_alloc - dkim_init's malloc hook */
void *
dkim_mem_alloc(void *closure, size_t n)
{
	struct dkim_arena	*a = closure;
	union dkim_mem_hdr	*h;

	if (a == NULL)
		return malloc(n);
	if (n > SIZE_MAX - sizeof(*h) || (h = malloc(sizeof(*h) + n)) == NULL)
		return NULL;
	h->l.prev = NULL;
	h->l.next = a->head;
	if (a->head != NULL)
		a->head->l.prev = h;
	a->head = h;
	return h + 1;
}

/* dkim_mem_free - dkim_init's free hook */
void
dkim_mem_free(void *closure, void *p)
{
	struct dkim_arena	*a = closure;
	union dkim_mem_hdr	*h;

	if (a == NULL || p == NULL) {
		free(p);
		return;
	}
	h = DKIM_MEM_HDR(p);
	if (h->l.prev != NULL)
		h->l.prev->l.next = h->l.next;
	else
		a->head = h->l.next;
	if (h->l.next != NULL)
		h->l.next->l.prev = h->l.prev;
	free(h);
}

/* dkim_arena_release - free what is left; how many blocks that was */
size_t
dkim_arena_release(struct dkim_arena *a)
{
	union dkim_mem_hdr	*h, *next;
	size_t			 n = 0;

	for (h = a->head; h != NULL; h = next) {
		next = h->l.next;
		free(h);
		n++;
	}
	a->head = NULL;
	if (n > 0)
		atomic_fetch_add_explicit(&dkim_mem_nreclaimed, n,
		    memory_order_relaxed);
	return n;
}

/* dkim_mem_reclaimed - blocks freed by dkim_arena_release so far */
unsigned long
dkim_mem_reclaimed(void)
{
	return atomic_load_explicit(&dkim_mem_nreclaimed, memory_order_relaxed);
}
