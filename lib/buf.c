/*
 * buf - growable byte buffers.
 *
 * Every dynamic string goes through struct tg_buf; the data is always
 * NUL-terminated so it can be handed to C string functions.  A buffer has
 * one owner and is not locked.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/buf.h"

/* tg_buf_grow - make room for n more bytes plus the NUL */
static void
tg_buf_grow(struct tg_buf *b, size_t n)
{
	size_t	need;

	if (n > SIZE_MAX - b->len - 1)
		TG_PANIC("buffer overflow: %zu + %zu", b->len, n);
	need = b->len + n + 1;
	if (need <= b->cap)
		return;
	if (b->cap < 64)
		b->cap = 64;
	while (b->cap < need)
		b->cap = b->cap > SIZE_MAX / 2 ? need : b->cap * 2;
	b->data = tg_realloc(b->data, b->cap);
}

/* tg_buf_init - an empty buffer */
void
tg_buf_init(struct tg_buf *b)
{
	memset(b, 0, sizeof(*b));
}

/* tg_buf_fini - release the contents; the buffer is empty again */
void
tg_buf_fini(struct tg_buf *b)
{
	free(b->data);
	tg_buf_init(b);
}

/* tg_buf_new - an empty buffer on the heap */
struct tg_buf *
tg_buf_new(void)
{
	return tg_calloc(1, sizeof(struct tg_buf));
}

/* tg_buf_free - release a heap buffer; accepts NULL */
struct tg_buf *
tg_buf_free(struct tg_buf *b)
{
	if (b != NULL) {
		free(b->data);
		free(b);
	}
	return NULL;
}

/* tg_buf_reset - empty the buffer, keeping its memory */
void
tg_buf_reset(struct tg_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* tg_buf_append - add n bytes */
void
tg_buf_append(struct tg_buf *b, const void *p, size_t n)
{
	tg_buf_grow(b, n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* tg_buf_puts - add a string */
void
tg_buf_puts(struct tg_buf *b, const char *s)
{
	tg_buf_append(b, s, strlen(s));
}

/* tg_buf_putc - add one byte */
void
tg_buf_putc(struct tg_buf *b, char c)
{
	tg_buf_append(b, &c, 1);
}

/* tg_buf_printf - add formatted text */
void
tg_buf_printf(struct tg_buf *b, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	tg_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

/* tg_buf_vprintf - add formatted text from a va_list */
void
tg_buf_vprintf(struct tg_buf *b, const char *fmt, va_list ap)
{
	va_list	ap2;
	int	n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		TG_PANIC("vsnprintf failed for \"%s\"", fmt);
	tg_buf_grow(b, (size_t)n);
	(void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

/* tg_buf_cstr - the contents as a string, "" when empty */
const char *
tg_buf_cstr(const struct tg_buf *b)
{
	return b->data == NULL ? "" : b->data;
}

/* tg_buf_steal - hand the contents to the caller */
char *
tg_buf_steal(struct tg_buf *b)
{
	char	*p;

	p = b->data == NULL ? tg_strdup("") : b->data;
	tg_buf_init(b);
	return p;
}
