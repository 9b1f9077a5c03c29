/*
 * conf - the INI loader over typed parameter tables.
 *
 * Files of a directory are read in name order ("*.conf" only, so editor
 * backups are ignored); each "key = value" is checked against the table
 * of its section at once, and the first problem stops the load with
 * file:line.  The _all loads (tollgatectl config check) report each
 * problem instead and go on with the next line and file, so that one
 * run shows the operator every mistake.  Strings are owned by the
 * loader and released by tg_conf_free.  Start-up only, not thread-safe.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tollgate/buf.h"
#include "tollgate/conf.h"

const char *const tg_on_error_names[] = { "accept", "tempfail", NULL };

struct tg_conf_pos {
	const char	*file;
	unsigned int	 line;
};

/* Where an _all load reports; fn NULL: stop at the first problem. */
struct tg_conf_rep {
	tg_conf_report_fn	 fn;
	void			*arg;
	bool			 failed;
};

/*
 * The section of the lines after a bad or unknown section line: their
 * keys are skipped, not reported each as unknown, as the one mistake
 * is the section line.
 */
static const struct tg_param tg_conf_no_params[] = { TG_PARAM_END };
static const struct tg_conf_section tg_conf_skip = { "", tg_conf_no_params };

/* tg_conf_set - parse text into one parameter's storage */
static enum tg_status
tg_conf_set(const struct tg_param *p, const char *v,
    const struct tg_conf_pos *pos, struct tg_err *err)
{
	long	l;
	bool	b;
	size_t	i;
	char	**sp;

	switch (p->type) {
	case TG_PT_BOOL:
		if (!tg_parse_bool(v, &b))
			break;
		*(bool *)p->store = b;
		return TG_OK;
	case TG_PT_LONG:
		if (!tg_parse_long(v, p->min, p->max, &l))
			break;
		*(long *)p->store = l;
		return TG_OK;
	case TG_PT_TIME:
		if (!tg_parse_duration(v, p->min, p->max, &l))
			break;
		*(long *)p->store = l;
		return TG_OK;
	case TG_PT_SIZE:
		if (!tg_parse_size(v, p->min, p->max, &l))
			break;
		*(long *)p->store = l;
		return TG_OK;
	case TG_PT_STRING:
		sp = p->store;
		free(*sp);
		*sp = tg_strdup(v);
		return TG_OK;
	case TG_PT_ENUM:
		for (i = 0; p->names[i] != NULL; i++) {
			if (tg_strcasecmp(p->names[i], v) == 0) {
				*(int *)p->store = (int)i;
				return TG_OK;
			}
		}
		break;
	}
	return tg_err_set(err, TG_PERM, "%s:%u: %s: bad value \"%s\"%s",
	    pos->file, pos->line, p->name, v,
	    p->type == TG_PT_ENUM ? " (see the allowed values)" :
	    p->type == TG_PT_BOOL ? " (want yes or no)" :
	    p->min != p->max ? " (out of range or not a number)" : "");
}

/* tg_conf_find - the parameter named key in section, or NULL */
static const struct tg_param *
tg_conf_find(const struct tg_conf_section *sec, const char *key)
{
	const struct tg_param	*p;

	for (p = sec->params; p->name != NULL; p++)
		if (strcmp(p->name, key) == 0)
			return p;
	return NULL;
}

/* tg_conf_section_find - the section called name, or NULL */
static const struct tg_conf_section *
tg_conf_section_find(const struct tg_conf_section *secs, size_t n,
    const char *name)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strcmp(secs[i].name, name) == 0)
			return &secs[i];
	return NULL;
}

/* tg_conf_unquote - strip one pair of double quotes */
static char *
tg_conf_unquote(char *v)
{
	size_t	len = strlen(v);

	if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
		v[len - 1] = '\0';
		return v + 1;
	}
	return v;
}

/* tg_conf_line - handle one line; *cur is the current section */
static enum tg_status
tg_conf_line(char *line, const struct tg_conf_section *secs, size_t n,
    const struct tg_conf_section **cur, const struct tg_conf_pos *pos,
    struct tg_err *err)
{
	const struct tg_param	*p;
	char			*s, *eq, *end;

	s = tg_trim(line);
	if (*s == '\0' || *s == '#' || *s == ';')
		return TG_OK;
	if (*s == '[') {
		*cur = &tg_conf_skip;
		if ((end = strchr(s, ']')) == NULL || end[1] != '\0')
			return tg_err_set(err, TG_PERM,
			    "%s:%u: bad section line", pos->file, pos->line);
		*end = '\0';
		s = tg_trim(s + 1);
		if ((*cur = tg_conf_section_find(secs, n, s)) == NULL) {
			*cur = &tg_conf_skip;
			return tg_err_set(err, TG_PERM,
			    "%s:%u: unknown section [%s]", pos->file, pos->line,
			    s);
		}
		return TG_OK;
	}
	if ((eq = strchr(s, '=')) == NULL)
		return tg_err_set(err, TG_PERM, "%s:%u: expected key = value",
		    pos->file, pos->line);
	if (*cur == NULL)
		return tg_err_set(err, TG_PERM, "%s:%u: key outside a section",
		    pos->file, pos->line);
	if (*cur == &tg_conf_skip)
		return TG_OK;
	*eq = '\0';
	s = tg_trim(s);
	if ((p = tg_conf_find(*cur, s)) == NULL)
		return tg_err_set(err, TG_PERM, "%s:%u: unknown key \"%s\" in [%s]",
		    pos->file, pos->line, s, (*cur)->name);
	return tg_conf_set(p, tg_conf_unquote(tg_trim(eq + 1)), pos, err);
}

/* tg_conf_problem - err's problem: stop (st), or report it and go on */
static enum tg_status
tg_conf_problem(struct tg_conf_rep *rep, enum tg_status st,
    const struct tg_err *err)
{
	if (rep->fn == NULL)
		return st;
	rep->fn(rep->arg, err->text);
	rep->failed = true;
	return TG_OK;
}

/* tg_conf_parse - parse a whole text (modified in place) */
static enum tg_status
tg_conf_parse(char *text, const char *label,
    const struct tg_conf_section *secs, size_t n, struct tg_conf_rep *rep,
    struct tg_err *err)
{
	const struct tg_conf_section	*cur = NULL;
	struct tg_conf_pos		 pos = { label, 0 };
	char				*line, *next;
	enum tg_status			 st;

	for (line = text; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		pos.line++;
		if ((st = tg_conf_line(line, secs, n, &cur, &pos, err)) !=
		    TG_OK && (st = tg_conf_problem(rep, st, err)) != TG_OK)
			return st;
	}
	return TG_OK;
}

/* tg_conf_load_text_all - see conf.h */
enum tg_status
tg_conf_load_text_all(const char *text, const char *label,
    const struct tg_conf_section *secs, size_t n, tg_conf_report_fn fn,
    void *arg, struct tg_err *err)
{
	struct tg_conf_rep	 rep = { fn, arg, false };
	enum tg_status		 st;
	char			*copy;

	copy = tg_strdup(text);
	st = tg_conf_parse(copy, label, secs, n, &rep, err);
	free(copy);
	return st == TG_OK && rep.failed ? TG_PERM : st;
}

/* tg_conf_load_text - load from a string */
enum tg_status
tg_conf_load_text(const char *text, const char *label,
    const struct tg_conf_section *secs, size_t n, struct tg_err *err)
{
	return tg_conf_load_text_all(text, label, secs, n, NULL, NULL, err);
}

/* tg_conf_load_file - load one file */
static enum tg_status
tg_conf_load_file(const char *path, const struct tg_conf_section *secs,
    size_t n, struct tg_conf_rep *rep, struct tg_err *err)
{
	enum tg_status	 st;
	char		*text;
	size_t		 len;

	if ((st = tg_read_file(path, &text, &len, err)) != TG_OK)
		return tg_conf_problem(rep, st == TG_NOTFOUND ? TG_PERM : st,
		    err);
	if (strlen(text) != len) {
		st = tg_err_set(err, TG_PERM, "%s: contains a NUL byte", path);
		st = tg_conf_problem(rep, st, err);
	} else
		st = tg_conf_parse(text, path, secs, n, rep, err);
	free(text);
	return st;
}

/* tg_conf_is_conf - a "*.conf" name not starting with a dot */
static int
tg_conf_is_conf(const struct dirent *d)
{
	size_t	len = strlen(d->d_name);

	return d->d_name[0] != '.' && len > 5 &&
	    strcmp(d->d_name + len - 5, ".conf") == 0;
}

/* tg_conf_load_dir - every *.conf of dir in name order, or dir a file */
static enum tg_status
tg_conf_load_dir(const char *dir, const struct tg_conf_section *secs,
    size_t n, struct tg_conf_rep *rep, struct tg_err *err)
{
	struct dirent	**list;
	struct stat	  st;
	enum tg_status	  status = TG_OK;
	char		 *path;
	int		  i, count;

	if (stat(dir, &st) == -1)
		return tg_err_set(err, TG_PERM, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return tg_conf_load_file(dir, secs, n, rep, err);
	if ((count = scandir(dir, &list, tg_conf_is_conf, alphasort)) == -1)
		return tg_err_set(err, TG_PERM, "%s: %s", dir, strerror(errno));
	for (i = 0; i < count; i++) {
		if (status == TG_OK) {
			path = tg_printf_dup("%s/%s", dir, list[i]->d_name);
			status = tg_conf_load_file(path, secs, n, rep, err);
			free(path);
		}
		free(list[i]);
	}
	free(list);
	return status;
}

/* tg_conf_load_all - see conf.h */
enum tg_status
tg_conf_load_all(const char *dir, const struct tg_conf_section *secs,
    size_t n, tg_conf_report_fn fn, void *arg, struct tg_err *err)
{
	struct tg_conf_rep	rep = { fn, arg, false };
	enum tg_status		st;

	tg_conf_defaults(secs, n);
	if (dir == NULL)
		return TG_OK;
	/* a directory that cannot be read is one problem, and the last */
	if ((st = tg_conf_load_dir(dir, secs, n, &rep, err)) != TG_OK)
		return tg_conf_problem(&rep, st, err) == TG_OK ? TG_PERM : st;
	return rep.failed ? TG_PERM : TG_OK;
}

/* tg_conf_load - defaults, then every *.conf of dir in name order */
enum tg_status
tg_conf_load(const char *dir, const struct tg_conf_section *secs, size_t n,
    struct tg_err *err)
{
	return tg_conf_load_all(dir, secs, n, NULL, NULL, err);
}

/* tg_conf_defaults - every parameter to its default */
void
tg_conf_defaults(const struct tg_conf_section *secs, size_t n)
{
	const struct tg_param	*p;
	struct tg_conf_pos	 pos = { "(default)", 0 };
	struct tg_err		 err;
	size_t			 i;

	for (i = 0; i < n; i++) {
		for (p = secs[i].params; p->name != NULL; p++) {
			if (tg_conf_set(p, p->def, &pos, &err) != TG_OK)
				TG_PANIC("bad default for [%s] %s: %s",
				    secs[i].name, p->name, err.text);
		}
	}
}

/* tg_conf_free - release every string the loader set */
void
tg_conf_free(const struct tg_conf_section *secs, size_t n)
{
	const struct tg_param	*p;
	size_t			 i;
	char			**sp;

	for (i = 0; i < n; i++) {
		for (p = secs[i].params; p->name != NULL; p++) {
			if (p->type != TG_PT_STRING)
				continue;
			sp = p->store;
			free(*sp);
			*sp = NULL;
		}
	}
}

/* tg_conf_print_defaults - the whole configuration with its defaults */
void
tg_conf_print_defaults(FILE *fp, const struct tg_conf_section *secs,
    size_t n)
{
	const struct tg_param	*p;
	size_t			 i, j;

	for (i = 0; i < n; i++) {
		fprintf(fp, "%s[%s]\n", i > 0 ? "\n" : "", secs[i].name);
		for (p = secs[i].params; p->name != NULL; p++) {
			if (p->help != NULL)
				fprintf(fp, "# %s\n", p->help);
			if (p->type == TG_PT_ENUM) {
				fprintf(fp, "# one of:");
				for (j = 0; p->names[j] != NULL; j++)
					fprintf(fp, " %s", p->names[j]);
				fprintf(fp, "\n");
			}
			fprintf(fp, "#%s = %s\n", p->name, p->def);
		}
	}
}
