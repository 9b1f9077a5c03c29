/*
 * confman - tollgate.conf(5) from the parameter tables (see confman.h).
 *
 * Text from the tables becomes mdoc: backslashes are escaped, a line never
 * starts with a control character, a sentence ends its line (mandoc's
 * style rule), and macro arguments are quoted.  Ranges are written in the
 * units the loader accepts, so a reader can copy them into a file.
 */
#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "confman.h"
#include "tollgate/buf.h"

/* confman_text - help text as mdoc lines: one sentence a line */
static void
confman_text(FILE *fp, const char *s)
{
	bool	bol = true;

	if (*s == '\0')
		return;
	for (; *s != '\0'; s++) {
		if (bol && (*s == '.' || *s == '\''))
			fputs("\\&", fp);
		bol = false;
		if (*s == '\\')
			fputs("\\e", fp);
		else if (*s == '.' && s[1] == ' ') {
			fputs(".\n", fp);
			s++;
			bol = true;
		} else
			fputc(*s, fp);
	}
	/* Help text has no final period; the page's sentences do. */
	if (!bol)
		fputs(s[-1] == '.' ? "\n" : ".\n", fp);
}

/* confman_arg - s as one quoted macro argument */
static void
confman_arg(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputs("\\(dq", fp);
		else if (*s == '\\')
			fputs("\\e", fp);
		else
			fputc(*s, fp);
	}
	fputc('"', fp);
}

/* confman_unit - n in the largest unit that divides it */
static void
confman_unit(struct tg_buf *b, long n, const char *units, const long *mult)
{
	size_t	i;

	for (i = strlen(units); i > 1; i--)
		if (n != 0 && n % mult[i - 1] == 0)
			break;
	tg_buf_printf(b, "%ld%c", n / mult[i - 1], units[i - 1]);
}

/* confman_bound - one end of a range, in the parameter's units */
static void
confman_bound(struct tg_buf *b, const struct tg_param *p, long v)
{
	static const long	time_mult[] = { 1, 60, 3600, 86400, 604800 };
	static const long	size_mult[] = { 1, 1024, 1048576, 1073741824 };

	if (p->type == TG_PT_TIME)
		confman_unit(b, v, "smhdw", time_mult);
	else if (p->type == TG_PT_SIZE && v != 0 && v % 1024 == 0)
		confman_unit(b, v, " kmg", size_mult);
	else
		tg_buf_printf(b, "%ld", v);
}

/* confman_range - "From X to Y." for numbers with bounds */
static void
confman_range(FILE *fp, const struct tg_param *p)
{
	struct tg_buf	b;

	if ((p->type != TG_PT_LONG && p->type != TG_PT_TIME &&
	    p->type != TG_PT_SIZE) || (p->min == 0 && p->max == 0))
		return;
	tg_buf_init(&b);
	tg_buf_puts(&b, "From\n.Ql ");
	confman_bound(&b, p, p->min);
	tg_buf_puts(&b, "\nto\n.Ql ");
	confman_bound(&b, p, p->max);
	tg_buf_puts(&b, " .\n");
	fputs(tg_buf_cstr(&b), fp);
	tg_buf_fini(&b);
}

/* confman_value_word - what the value is, after "key =" */
static void
confman_value_word(FILE *fp, const struct tg_param *p)
{
	static const char *const	words[] = {
		[TG_PT_BOOL] = "yes | no", [TG_PT_LONG] = "integer",
		[TG_PT_TIME] = "duration", [TG_PT_SIZE] = "size",
		[TG_PT_STRING] = "text"
	};
	size_t				i;

	if (p->type != TG_PT_ENUM) {
		fprintf(fp, " No = Ar %s\n", words[p->type]);
		return;
	}
	fputs(" No = Cm", fp);
	for (i = 0; p->names[i] != NULL; i++)
		fprintf(fp, "%s %s", i > 0 ? " |" : "", p->names[i]);
	fputc('\n', fp);
}

/* confman_keys - the key list of one section */
static void
confman_keys(FILE *fp, const struct tg_conf_section *sec)
{
	const struct tg_param	*p;

	fputs(".Bl -tag -width Ds\n", fp);
	for (p = sec->params; p->name != NULL; p++) {
		fprintf(fp, ".It Cm %s", p->name);
		confman_value_word(fp, p);
		confman_text(fp, p->help);
		if (p->def == NULL || *p->def == '\0')
			fputs("Empty by default.\n", fp);
		else {
			fputs("Default:\n.Ql ", fp);
			confman_arg(fp, p->def);
			fputs(" .\n", fp);
		}
		confman_range(fp, p);
	}
	fputs(".El\n", fp);
}

/* confman_find - the section named name (len bytes), or -1 */
static long
confman_find(const struct tg_conf_section *secs, size_t n, const char *name,
    size_t len)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strlen(secs[i].name) == len &&
		    memcmp(secs[i].name, name, len) == 0)
			return (long)i;
	return -1;
}

/* tg_confman_check - see confman.h */
enum tg_status
tg_confman_check(const struct tg_conf_section *secs, size_t n,
    struct tg_err *err)
{
	const struct tg_param	*p;
	size_t			 i;

	for (i = 0; i < n; i++)
		for (p = secs[i].params; p->name != NULL; p++)
			if (p->help == NULL || *p->help == '\0')
				return tg_err_set(err, TG_PERM, "[%s] %s: no "
				    "help text to document it", secs[i].name,
				    p->name);
	return TG_OK;
}

/* tg_confman_write - see confman.h */
enum tg_status
tg_confman_write(FILE *fp, const char *tmpl,
    const struct tg_conf_section *secs, size_t n, struct tg_err *err)
{
	bool		*named;
	const char	*line, *end;
	size_t		 i, len;
	long		 k;
	bool		 other = false;
	enum tg_status	 st = TG_OK;

	if ((st = tg_confman_check(secs, n, err)) != TG_OK)
		return st;
	named = tg_calloc(n > 0 ? n : 1, sizeof(*named));
	/* First pass: which sections the template writes itself. */
	for (line = tmpl; *line != '\0'; line = *end != '\0' ? end + 1 : end) {
		end = strchr(line, '\n');
		if (end == NULL)
			end = line + strlen(line);
		len = (size_t)(end - line);
		if (len > 7 && memcmp(line, "@KEYS ", 6) == 0 &&
		    line[len - 1] == '@') {
			k = confman_find(secs, n, line + 6, len - 7);
			if (k < 0 || named[k]) {
				st = tg_err_set(err, TG_PERM, "template: %s "
				    "section %.*s", k < 0 ? "no" : "twice the",
				    (int)(len - 7), line + 6);
				goto out;
			}
			named[k] = true;
		} else if (len == 16 && memcmp(line, "@OTHER_SECTIONS@", 16) == 0)
			other = true;
	}
	if (!other) {
		st = tg_err_set(err, TG_PERM, "template: no @OTHER_SECTIONS@");
		goto out;
	}
	for (line = tmpl; *line != '\0'; line = *end != '\0' ? end + 1 : end) {
		end = strchr(line, '\n');
		if (end == NULL)
			end = line + strlen(line);
		len = (size_t)(end - line);
		if (len > 7 && memcmp(line, "@KEYS ", 6) == 0) {
			confman_keys(fp, &secs[confman_find(secs, n, line + 6,
			    len - 7)]);
			continue;
		}
		if (len == 16 && memcmp(line, "@OTHER_SECTIONS@", 16) == 0) {
			for (i = 0; i < n; i++) {
				if (named[i])
					continue;
				fprintf(fp, ".Ss \\&[%s]\n", secs[i].name);
				fprintf(fp, "The keys of the\n.Ic %s\n"
				    "section.\n", secs[i].name);
				confman_keys(fp, &secs[i]);
			}
			continue;
		}
		fprintf(fp, "%.*s\n", (int)len, line);
	}
	if (ferror(fp))
		st = tg_err_set(err, TG_TEMP, "write error");
out:
	free(named);
	return st;
}
