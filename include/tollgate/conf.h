/*
 * conf.h - configuration: typed parameter tables and the INI loader.
 *
 * Every section (a module, or a core concern such as [dns]) declares one
 * NULL-terminated struct tg_param table.  The loader sets every default,
 * then reads the *.conf files of a directory in name order; a later file
 * overrides an earlier one.  An unknown section or key, a bad value or an
 * out-of-range one is an error reported with file:line.  Nothing else
 * reads raw configuration.
 *
 * File syntax: "[section]" lines, "key = value" lines, "#" or ";"
 * comments on their own line, blank lines.  A value may be quoted with
 * double quotes to keep leading or trailing blanks.
 */
#ifndef TOLLGATE_CONF_H
#define TOLLGATE_CONF_H

#include <stdbool.h>
#include <stdio.h>

#include "util.h"

enum tg_param_type {
	TG_PT_BOOL,	/* bool *: yes/no */
	TG_PT_LONG,	/* long *: integer in [min, max] */
	TG_PT_TIME,	/* long *: seconds, with unit s m h d w */
	TG_PT_SIZE,	/* long *: bytes, with unit k m g */
	TG_PT_STRING,	/* char **: owned by the config, "" for empty */
	TG_PT_ENUM	/* int *: index into names[] */
};

struct tg_param {
	const char		*name;
	enum tg_param_type	 type;
	const char		*def;	/* default, as text */
	long			 min, max;
	void			*store;
	const char *const	*names;	/* TG_PT_ENUM: NULL-terminated */
	const char		*help;	/* one line, for --print-defaults */
};

#define TG_PARAM_BOOL(n, d, p, h) \
	{ .name = (n), .type = TG_PT_BOOL, .def = (d), .store = (p), .help = (h) }
#define TG_PARAM_LONG(n, d, p, lo, hi, h) \
	{ .name = (n), .type = TG_PT_LONG, .def = (d), .store = (p), \
	  .min = (lo), .max = (hi), .help = (h) }
#define TG_PARAM_TIME(n, d, p, lo, hi, h) \
	{ .name = (n), .type = TG_PT_TIME, .def = (d), .store = (p), \
	  .min = (lo), .max = (hi), .help = (h) }
#define TG_PARAM_SIZE(n, d, p, lo, hi, h) \
	{ .name = (n), .type = TG_PT_SIZE, .def = (d), .store = (p), \
	  .min = (lo), .max = (hi), .help = (h) }
#define TG_PARAM_STRING(n, d, p, h) \
	{ .name = (n), .type = TG_PT_STRING, .def = (d), .store = (p), \
	  .help = (h) }
#define TG_PARAM_ENUM(n, d, p, names_, h) \
	{ .name = (n), .type = TG_PT_ENUM, .def = (d), .store = (p), \
	  .names = (names_), .help = (h) }
#define TG_PARAM_END	{ .name = NULL }

/* The usual on_error choices, for TG_PARAM_ENUM. */
enum tg_on_error { TG_ON_ERROR_ACCEPT = 0, TG_ON_ERROR_TEMPFAIL };
extern const char *const tg_on_error_names[];

struct tg_conf_section {
	const char		*name;
	const struct tg_param	*params;
};

/*
 * tg_conf_load - set defaults, then read dir/ *.conf in name order.  dir
 * may also name a single file.  NULL dir: defaults only.  On error, err
 * says file:line and what is wrong.  Not thread-safe; call at start-up.
 */
enum tg_status	tg_conf_load(const char *dir, const struct tg_conf_section *,
		    size_t, struct tg_err *);
/* tg_conf_load_text - the same from a string, named label (for tests) */
enum tg_status	tg_conf_load_text(const char *text, const char *label,
		    const struct tg_conf_section *, size_t, struct tg_err *);
/*
 * tg_conf_load_all, tg_conf_load_text_all - the same for tollgatectl
 * config check: each problem (file:line: what) goes to fn(arg, text) and
 * the load goes on with the next line and the next file, so one run
 * shows every mistake; TG_PERM at the end if there was one.  A bad value
 * leaves the key as it was; the keys after an unknown section are
 * skipped.  NULL fn: stop at the first problem, as tg_conf_load does.
 */
typedef void	(*tg_conf_report_fn)(void *, const char *);
enum tg_status	tg_conf_load_all(const char *dir,
		    const struct tg_conf_section *, size_t, tg_conf_report_fn,
		    void *, struct tg_err *);
enum tg_status	tg_conf_load_text_all(const char *text, const char *label,
		    const struct tg_conf_section *, size_t, tg_conf_report_fn,
		    void *, struct tg_err *);
/* tg_conf_defaults - set every parameter to its default */
void		tg_conf_defaults(const struct tg_conf_section *, size_t);
/* tg_conf_free - release strings the loader allocated */
void		tg_conf_free(const struct tg_conf_section *, size_t);
/* tg_conf_print_defaults - every section and key with its default */
void		tg_conf_print_defaults(FILE *, const struct tg_conf_section *,
		    size_t);

/*
 * Networks (internal_networks and the like): "127.0.0.0/8 ::1 10.0.0.0/8".
 */
struct tg_netlist;
struct tg_netlist *tg_netlist_parse(const char *, struct tg_err *);
struct tg_netlist *tg_netlist_free(struct tg_netlist *);
/* tg_netlist_match - addr is text (IPv4 or IPv6); false if unparsable */
bool		 tg_netlist_match(const struct tg_netlist *, const char *);

#endif
