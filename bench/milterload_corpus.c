/*
 * milterload_corpus - milterload's messages: files read once at start-up
 * and parsed into what the milter protocol sends (envelope sender,
 * header fields, body).
 *
 * An mbox "From " line is dropped and gives the envelope sender, else
 * the From: header's address does; header fields keep their folding
 * (lines joined by a bare LF, as libmilter passes them) and the body's
 * line ends become CRLF, as an MTA sends it.  Start-up only, one thread:
 * an unreadable corpus exits.  The messages are read-only afterwards.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "tollgate/buf.h"
#include "tollgate/util.h"

#include "milterload.h"

/* The messages read so far. */
static struct {
	struct ml_msg	*msgs;
	size_t		 n;
} ml_corpus;

/* ml_sender_of - the address in an mbox "From addr date" line */
static char *
ml_sender_of(const char *line, size_t len)
{
	const char	*p = line + 5, *e = line + len;
	const char	*q;

	while (p < e && *p == ' ')
		p++;
	for (q = p; q < e && *q != ' ' && *q != '\n' && *q != '\r'; q++)
		;
	if (q == p || (q - p == 14 && memcmp(p, "MAILER-DAEMON", 13) == 0))
		return tg_strdup("");
	return tg_strndup(p, (size_t)(q - p));
}

/* ml_from_header - the address of a From: header value, or "" */
static char *
ml_from_header(const char *v)
{
	const char	*lt = strrchr(v, '<'), *gt, *p, *s;

	if (lt != NULL && (gt = strchr(lt, '>')) != NULL)
		return tg_strndup(lt + 1, (size_t)(gt - lt - 1));
	if ((p = strchr(v, '@')) == NULL)
		return tg_strdup("");
	for (s = p; s > v && s[-1] != ' ' && s[-1] != '\t' && s[-1] != '\n';)
		s--;
	for (; *p != '\0' && *p != ' ' && *p != '\n' && *p != '\r'; p++)
		;
	return tg_strndup(s, (size_t)(p - s));
}

/* ml_add_header - one header field "name: value" (folded lines kept) */
static void
ml_add_header(struct ml_msg *m, const char *f, size_t len)
{
	const char	*colon = memchr(f, ':', len);
	struct tg_buf	 v;
	size_t		 i;

	if (colon == NULL)
		return;		/* not a header field; an MTA would refuse */
	m->hname = tg_reallocarray(m->hname, m->nhdr + 1, sizeof(char *));
	m->hval = tg_reallocarray(m->hval, m->nhdr + 1, sizeof(char *));
	m->hname[m->nhdr] = tg_strndup(f, (size_t)(colon - f));
	tg_buf_init(&v);
	/* libmilter style: lines joined by a bare LF, CRs dropped */
	for (i = (size_t)(colon - f) + 1; i < len; i++)
		if (f[i] != '\r')
			tg_buf_putc(&v, f[i]);
	m->hval[m->nhdr++] = tg_buf_steal(&v);
	tg_buf_fini(&v);
}

/* ml_parse - split one message file into envelope, headers and body */
static void
ml_parse(struct ml_msg *m, const char *data, size_t len)
{
	const char	*p = data, *e = data + len, *nl, *f = NULL;
	struct tg_buf	 body;
	size_t		 i;

	if (len >= 5 && memcmp(p, "From ", 5) == 0) {
		nl = memchr(p, '\n', len);
		m->sender = ml_sender_of(p, nl ? (size_t)(nl - p) : len);
		p = nl ? nl + 1 : e;
	}
	/* headers: a field runs until a line that does not start with WSP */
	while (p < e) {
		nl = memchr(p, '\n', (size_t)(e - p));
		nl = nl ? nl + 1 : e;
		if (*p == '\n' || (*p == '\r' && p + 1 < e && p[1] == '\n')) {
			if (f != NULL)
				ml_add_header(m, f, (size_t)(p - f) - 1);
			f = NULL;
			p = nl;
			break;
		}
		if (*p != ' ' && *p != '\t') {
			if (f != NULL)
				ml_add_header(m, f, (size_t)(p - f) - 1);
			f = p;
		}
		p = nl;
	}
	if (f != NULL)
		ml_add_header(m, f, (size_t)(p - f) - (p[-1] == '\n'));
	tg_buf_init(&body);
	for (; p < e; p++) {
		if (*p == '\n' && (p == data || p[-1] != '\r'))
			tg_buf_putc(&body, '\r');
		tg_buf_putc(&body, *p);
	}
	m->bodylen = body.len;
	m->body = (unsigned char *)tg_buf_steal(&body);
	tg_buf_fini(&body);
	for (i = 0; m->sender == NULL && i < m->nhdr; i++)
		if (tg_strcasecmp(m->hname[i], "From") == 0)
			m->sender = ml_from_header(m->hval[i]);
	if (m->sender == NULL)
		m->sender = tg_strdup("bench@example.com");
}

/* ml_load_file - append one corpus file */
static void
ml_load_file(const char *path)
{
	struct tg_err	 err;
	char		*data;
	size_t		 len;

	if (tg_read_file(path, &data, &len, &err) != TG_OK) {
		fprintf(stderr, "milterload: %s\n", err.text);
		exit(EX_NOINPUT);
	}
	ml_corpus.msgs = tg_reallocarray(ml_corpus.msgs, ml_corpus.n + 1,
	    sizeof(*ml_corpus.msgs));
	memset(&ml_corpus.msgs[ml_corpus.n], 0, sizeof(*ml_corpus.msgs));
	ml_parse(&ml_corpus.msgs[ml_corpus.n++], data, len);
	free(data);
}

/* ml_namecmp - qsort order of file names */
static int
ml_namecmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ml_corpus_load - a file, or every regular file of a directory in
 * name order */
struct ml_msg *
ml_corpus_load(const char *path, size_t *n_out)
{
	struct stat	 st;
	struct dirent	*de;
	DIR		*d;
	char		**names = NULL, *full;
	size_t		 n = 0, i;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "milterload: %s: %s\n", path, strerror(errno));
		exit(EX_NOINPUT);
	}
	if (!S_ISDIR(st.st_mode)) {
		ml_load_file(path);
		*n_out = ml_corpus.n;
		return ml_corpus.msgs;
	}
	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "milterload: %s: %s\n", path, strerror(errno));
		exit(EX_NOINPUT);
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		full = tg_printf_dup("%s/%s", path, de->d_name);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
			names = tg_reallocarray(names, n + 1, sizeof(char *));
			names[n++] = full;
		} else
			free(full);
	}
	(void)closedir(d);
	qsort(names, n, sizeof(char *), ml_namecmp);
	for (i = 0; i < n; i++) {
		ml_load_file(names[i]);
		free(names[i]);
	}
	free(names);
	if (ml_corpus.n == 0) {
		fprintf(stderr, "milterload: %s: no message files\n", path);
		exit(EX_NOINPUT);
	}
	*n_out = ml_corpus.n;
	return ml_corpus.msgs;
}

