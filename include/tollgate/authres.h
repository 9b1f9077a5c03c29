/*
 * authres.h - building and reading Authentication-Results (RFC 8601).
 */
#ifndef TOLLGATE_AUTHRES_H
#define TOLLGATE_AUTHRES_H

#include <stddef.h>

#include "util.h"

/*
 * tg_authres_build - the header value (without the "Name:" and leading
 * space) for authserv_id and n resinfo strings, folded one resinfo per
 * line with CRLF TAB; "authserv-id; none" when n is 0 (RFC 8601 2.2).
 * The caller owns the result.
 */
char	*tg_authres_build(const char *, const char *const *, size_t);

/*
 * tg_authres_authserv_id - the authserv-id of a received header value,
 * skipping comments and white space, into out (size n).  False if the
 * value does not start with one.
 */
bool	 tg_authres_authserv_id(const char *, char *, size_t);

/*
 * tg_authres_value_ok - whether s may appear as a result value or a
 * property value without quoting (an RFC 2045 token or dot-atom); used
 * to decide whether to quote untrusted text such as a d= domain.
 */
bool	 tg_authres_value_ok(const char *);

#endif
