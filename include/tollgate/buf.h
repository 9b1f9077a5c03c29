/*
 * buf.h - growable byte buffers, always NUL-terminated for convenience.
 *
 * A struct tg_buf may live on the stack or inside another struct: zero it
 * (or tg_buf_init) before use and tg_buf_fini it after.  tg_buf_new and
 * tg_buf_free are the heap forms.
 */
#ifndef TOLLGATE_BUF_H
#define TOLLGATE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "util.h"

struct tg_buf {
	char	*data;		/* NUL-terminated; NULL until first append */
	size_t	 len;		/* bytes in use, not counting the NUL */
	size_t	 cap;
};

void		 tg_buf_init(struct tg_buf *);
void		 tg_buf_fini(struct tg_buf *);
struct tg_buf	*tg_buf_new(void);
struct tg_buf	*tg_buf_free(struct tg_buf *);	/* accepts NULL, returns NULL */
void		 tg_buf_reset(struct tg_buf *);
void		 tg_buf_append(struct tg_buf *, const void *, size_t);
void		 tg_buf_puts(struct tg_buf *, const char *);
void		 tg_buf_putc(struct tg_buf *, char);
void		 tg_buf_printf(struct tg_buf *, const char *, ...)
		    TG_PRINTF(2, 3);
void		 tg_buf_vprintf(struct tg_buf *, const char *, va_list)
		    TG_PRINTF(2, 0);
/* tg_buf_cstr - the contents, "" when empty; valid until the next change */
const char	*tg_buf_cstr(const struct tg_buf *);
/* tg_buf_steal - the contents as a string the caller owns; buf is reset */
char		*tg_buf_steal(struct tg_buf *);

#endif
