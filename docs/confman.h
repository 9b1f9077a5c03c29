/*
 * confman.h - tollgate.conf(5) from the parameter tables.
 *
 * The page is a hand-written mdoc template (docs/tollgate.conf.5.in) in
 * which a line "@KEYS section@" stands for the key list of that section,
 * generated from its struct tg_param table (name, type, default, range,
 * choices and help text), and the line "@OTHER_SECTIONS@" for every
 * section the template does not name, heading and key list.  So a key
 * added to any table is in the page at the next build, and a key without
 * help text is an error.
 */
#ifndef TOLLGATE_CONFMAN_H
#define TOLLGATE_CONFMAN_H

#include <stdio.h>

#include "tollgate/conf.h"
#include "tollgate/util.h"

/*
 * tg_confman_write - the page from tmpl (NUL-terminated) to fp.  Fails
 * (err says why) when a parameter has no help text, when the template
 * names a section that does not exist or names one twice, or when it
 * lacks the @OTHER_SECTIONS@ line.
 */
enum tg_status	tg_confman_write(FILE *, const char *tmpl,
		    const struct tg_conf_section *, size_t, struct tg_err *);

/* tg_confman_check - only the checks: every parameter has help text */
enum tg_status	tg_confman_check(const struct tg_conf_section *, size_t,
		    struct tg_err *);

#endif
