/*
 * spam_mime - a raw message into the struct spam_msg the rules and
 * Bayes read: headers (unfolded, and RFC 2047 decoded), every text
 * part transfer-decoded and converted to UTF-8, HTML rendered to text,
 * URIs and their host names, attachments' names and types.
 *
 * GMime parses the MIME structure; libxml2's HTML parser (recovering
 * from any markup) renders HTML.  Nothing here fails on bad input: a
 * broken structure sets malformed, a limit sets truncated, and what
 * could be read is kept.  Memory is bounded by struct spam_limits: at
 * most max_scan_bytes are parsed, at most max_body_text bytes of text
 * kept, max_parts parts, max_uris URIs and max_headers headers
 * (within max_body_text bytes) recorded, max_depth levels of nesting
 * entered.
 *
 * Threads: spam_mime_parse may run on many threads at once.  GMime and
 * libxml2 are initialised once (pthread_once); every parser, stream and
 * document is local to the call.  The struct spam_msg returned belongs
 * to the caller; its full points into the caller's bytes.
 */
#include "config.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <iconv.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tollgate/buf.h"
#include "tollgate/util.h"

#include "spam_int.h"

/* defaults for a NULL limits argument (tollgatectl, tests) */
static const struct spam_limits spam_mime_default_limits = {
	.max_scan_bytes = 512 * 1024,
	.max_body_text = 256 * 1024,
	.max_parts = 100,
	.max_depth = 20,
	.max_uris = 500,
	.max_headers = 1000,
};

/* the walk over one message */
struct spam_mime_walk {
	struct spam_msg			*m;
	const struct spam_limits	*lim;
	struct tg_buf			 body;
	struct tg_buf			 raw;
	size_t				 cap_parts;
	size_t				 cap_uris;
	size_t				 cap_doms;
	size_t				 parts_seen;
	bool				 stop;	/* max_parts reached */
};

static pthread_once_t	spam_mime_once = PTHREAD_ONCE_INIT;

static void	spam_mime_init(void);
static void	spam_mime_lower(char *);
static bool	spam_mime_strv_has(char **, size_t, const char *);
static void	spam_mime_add_uri(struct spam_mime_walk *, const char *,
		    size_t);
static void	spam_mime_text_uris(struct spam_mime_walk *, const char *,
		    size_t);
static char	*spam_mime_to_utf8(const char *, size_t, const char *,
		    bool *);
static void	spam_mime_paragraphs(struct tg_buf *, const char *, size_t,
		    size_t);
static void	spam_mime_lines(struct tg_buf *, const char *, size_t,
		    size_t);
static void	spam_mime_html(struct spam_mime_walk *, const char *, size_t);
static void	spam_mime_leaf(struct spam_mime_walk *, GMimeObject *);
static void	spam_mime_object(struct spam_mime_walk *, GMimeObject *,
		    size_t);
static bool	spam_mime_headers(struct spam_msg *,
		    const struct spam_limits *, const char *, size_t, size_t *,
		    size_t *);

/* spam_mime_init - once per process: GMime and libxml2 */
static void
spam_mime_init(void)
{
	g_mime_init();
	xmlInitParser();
}

/* spam_mime_lower - ASCII lowercase in place */
static void
spam_mime_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s + 32);
}

/* spam_mime_strv_has - whether s is among v[0..n) */
static bool
spam_mime_strv_has(char **v, size_t n, const char *s)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* spam_mime_push - append s (owned) to a growing vector */
static void
spam_mime_push(char ***v, size_t *n, size_t *cap, char *s)
{
	if (*n == *cap) {
		*cap = *cap == 0 ? 8 : *cap * 2;
		*v = tg_reallocarray(*v, *cap, sizeof(**v));
	}
	(*v)[(*n)++] = s;
}

/*
 * spam_mime_uri_host - the host of a URI: after "scheme://" (userinfo
 * dropped) or "www." or after the '@' of mailto:, up to a port, path,
 * query or fragment; lowercase, a final dot dropped.  NULL if none.
 */
static char *
spam_mime_uri_host(const char *u)
{
	const char	*p, *at;
	size_t		 len;
	char		*h;

	if (tg_strncasecmp(u, "mailto:", 7) == 0) {
		if ((at = strchr(u + 7, '@')) == NULL)
			return NULL;
		p = at + 1;
		len = strcspn(p, "?>&;,/ ");
	} else {
		if ((p = strstr(u, "://")) != NULL)
			p += 3;
		else
			p = u;
		len = strcspn(p, "/?#");
		/* userinfo: the host follows the last '@' in the authority */
		for (at = p + len; at > p; at--)
			if (at[-1] == '@')
				break;
		if (at > p) {
			len -= (size_t)(at - p);
			p = at;
		}
		len = strcspn(p, ":/?#") < len ? strcspn(p, ":/?#") : len;
	}
	while (len > 0 && p[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return NULL;
	h = tg_strndup(p, len);
	spam_mime_lower(h);
	return h;
}

/* spam_mime_add_uri - record one URI and its host, within max_uris */
static void
spam_mime_add_uri(struct spam_mime_walk *w, const char *u, size_t len)
{
	struct spam_msg	*m = w->m;
	char		*s, *h;

	while (len > 0 && strchr(".,;:!?)]}'\"", u[len - 1]) != NULL)
		len--;
	if (len == 0 || len > 2048)
		return;
	s = tg_strndup(u, len);
	if (spam_mime_strv_has(m->uris, m->nuris, s)) {
		free(s);
		return;
	}
	if (m->nuris >= w->lim->max_uris) {
		m->truncated = true;
		free(s);
		return;
	}
	spam_mime_push(&m->uris, &m->nuris, &w->cap_uris, s);
	if ((h = spam_mime_uri_host(s)) == NULL)
		return;
	if (spam_mime_strv_has(m->uri_domains, m->nuri_domains, h))
		free(h);
	else
		spam_mime_push(&m->uri_domains, &m->nuri_domains,
		    &w->cap_doms, h);
}

/* spam_mime_uri_char - whether c may be part of a URI found in text */
static bool
spam_mime_uri_char(unsigned char c)
{
	return c > ' ' && c != 0x7f && strchr("<>\"'`{}|\\^", c) == NULL;
}

/*
 * spam_mime_text_uris - URIs written out in text: scheme:// for http,
 * https and ftp, "www." at a word start, mailto:.
 */
static void
spam_mime_text_uris(struct spam_mime_walk *w, const char *t, size_t len)
{
	static const char *const starts[] = { "http://", "https://",
	    "ftp://", "mailto:", "www." };
	size_t	i, j, k, n;
	bool	word;

	for (i = 0; i < len; i++) {
		word = i == 0 || !spam_mime_uri_char((unsigned char)t[i - 1]) ||
		    strchr("(=[", t[i - 1]) != NULL;
		if (!word)
			continue;
		for (k = 0; k < TG_NITEMS(starts); k++) {
			n = strlen(starts[k]);
			if (len - i > n && tg_strncasecmp(t + i, starts[k],
			    n) == 0)
				break;
		}
		if (k == TG_NITEMS(starts))
			continue;
		for (j = i; j < len && spam_mime_uri_char((unsigned char)t[j]);
		    j++)
			;
		if (j - i > strlen(starts[k]))
			spam_mime_add_uri(w, t + i, j - i);
		i = j;
	}
}

/* spam_mime_iconv - the whole of in converted strictly, or NULL */
static char *
spam_mime_iconv(const char *in, size_t len, const char *from)
{
	iconv_t		 cd;
	struct tg_buf	 out;
	char		 chunk[4096], *ip = (char *)in, *op;
	size_t		 il = len, ol;
	bool		 ok = true;

	if ((cd = g_mime_iconv_open("UTF-8", from)) == (iconv_t)-1)
		return NULL;
	tg_buf_init(&out);
	while (il > 0 && ok) {
		op = chunk;
		ol = sizeof(chunk);
		if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 &&
		    errno != E2BIG)
			ok = false;
		tg_buf_append(&out, chunk, sizeof(chunk) - ol);
	}
	g_mime_iconv_close(cd);
	if (!ok || memchr(tg_buf_cstr(&out), '\0', out.len) != NULL) {
		tg_buf_fini(&out);
		return NULL;
	}
	return tg_buf_steal(&out);
}

/*
 * spam_mime_to_utf8 - text in its declared charset to UTF-8.  Labels
 * lie: try the declared charset, then UTF-8, then windows-1252 (which
 * maps nearly every byte; the few it does not become '?'); broken says
 * the declared one did not fit.
 */
static char *
spam_mime_to_utf8(const char *in, size_t len, const char *charset,
    bool *broken)
{
	char	*s, *p;
	size_t	 i;

	if (charset != NULL && (s = spam_mime_iconv(in, len, charset)) !=
	    NULL)
		return s;
	if (charset != NULL)
		*broken = true;
	/* a copy without NULs (text with them is never valid anywhere) */
	p = tg_malloc(len + 1);
	memcpy(p, in, len);
	p[len] = '\0';
	for (i = 0; i < len; i++)
		if (p[i] == '\0')
			p[i] = '?';
	if (g_utf8_validate(p, (gssize)len, NULL))
		return p;
	/* the five bytes windows-1252 leaves unassigned */
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] == 0x81 || (unsigned char)p[i] == 0x8d ||
		    (unsigned char)p[i] == 0x8f || (unsigned char)p[i] == 0x90 ||
		    (unsigned char)p[i] == 0x9d)
			p[i] = '?';
	if ((s = spam_mime_iconv(p, len, "windows-1252")) == NULL) {
		for (i = 0; i < len; i++)
			if ((unsigned char)p[i] >= 0x80)
				p[i] = '?';
		return p;
	}
	free(p);
	return s;
}

/*
 * spam_mime_append_capped - append at most what keeps out within max,
 * cut on a UTF-8 character boundary (a torn character would make the
 * whole text invalid UTF-8 to the rule engine)
 */
static void
spam_mime_append_capped(struct tg_buf *out, const char *s, size_t n,
    size_t max)
{
	size_t	room = max > out->len ? max - out->len : 0;

	if (n > room)
		for (n = room; n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80;
		    n--)
			;
	tg_buf_append(out, s, n);
}

/*
 * spam_mime_paragraphs - text into body form: line ends out, the lines
 * of a paragraph joined by one space, one paragraph per '\n'-ended
 * line (SpamAssassin's body), at most max bytes in out.
 */
static void
spam_mime_paragraphs(struct tg_buf *out, const char *t, size_t len,
    size_t max)
{
	size_t	i, start, end;
	bool	inpara = false;

	for (i = 0; i < len && out->len < max; i = end + 1) {
		start = i;
		end = start;
		while (end < len && t[end] != '\n')
			end++;
		/* the line [start, end) without CR and trailing blanks */
		while (end > start && (t[end - 1] == '\r' ||
		    t[end - 1] == ' ' || t[end - 1] == '\t'))
			end--;
		if (end == start) {
			if (inpara)
				tg_buf_putc(out, '\n');
			inpara = false;
		} else {
			if (inpara)
				tg_buf_putc(out, ' ');
			spam_mime_append_capped(out, t + start, end - start,
			    max);
			inpara = true;
		}
		while (end < len && t[end] != '\n')
			end++;
	}
	if (inpara)
		tg_buf_putc(out, '\n');
}

/*
 * spam_mime_lines - rendered HTML into body form: each non-empty line
 * (a block element ended it) is one paragraph, edges trimmed.
 */
static void
spam_mime_lines(struct tg_buf *out, const char *t, size_t len, size_t max)
{
	size_t	i, start, end;

	for (i = 0; i < len && out->len < max; i = end + 1) {
		for (end = i; end < len && t[end] != '\n'; end++)
			;
		for (start = i; start < end && t[start] == ' '; start++)
			;
		while (end > start && t[end - 1] == ' ')
			end--;
		if (start < end) {
			spam_mime_append_capped(out, t + start, end - start,
			    max);
			tg_buf_putc(out, '\n');
		}
		while (end < len && t[end] != '\n')
			end++;
	}
}

/* HTML rendering: a tree walk over libxml2's document */

struct spam_mime_html {
	struct spam_mime_walk	*w;
	struct tg_buf		 text;
	bool			 space;	/* last output was white space */
};

/* spam_mime_html_block - whether an element breaks the line */
static bool
spam_mime_html_block(const char *n)
{
	static const char *const blocks[] = { "p", "div", "br", "li", "tr",
	    "table", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4",
	    "h5", "h6", "blockquote", "pre", "hr", "title", "address",
	    "center", "form", "section", "article", "header", "footer",
	    "td", "th", "body", "html" };
	size_t	i;

	for (i = 0; i < TG_NITEMS(blocks); i++)
		if (strcmp(n, blocks[i]) == 0)
			return true;
	return false;
}

/* spam_mime_html_newline - end the current line, once */
static void
spam_mime_html_newline(struct spam_mime_html *h)
{
	if (h->text.len > 0 && tg_buf_cstr(&h->text)[h->text.len - 1] != '\n')
		tg_buf_putc(&h->text, '\n');
	h->space = true;
}

/* spam_mime_html_chars - text content, white space collapsed */
static void
spam_mime_html_chars(struct spam_mime_html *h, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			if (!h->space)
				tg_buf_putc(&h->text, ' ');
			h->space = true;
		} else if ((unsigned char)s[0] == 0xc2 &&
		    (unsigned char)s[1] == 0xa0) {
			/* &nbsp; is a space to a reader */
			if (!h->space)
				tg_buf_putc(&h->text, ' ');
			h->space = true;
			s++;
		} else {
			tg_buf_putc(&h->text, *s);
			h->space = false;
		}
	}
}

/* spam_mime_html_attr_uri - an element's URI attribute, recorded */
static void
spam_mime_html_attr_uri(struct spam_mime_html *h, xmlNode *n,
    const char *attr)
{
	xmlChar	*v;
	char	*p;
	size_t	 len;

	if ((v = xmlGetProp(n, (const xmlChar *)attr)) == NULL)
		return;
	p = (char *)v;
	p += strspn(p, " \t\r\n");
	len = strlen(p);
	while (len > 0 && strchr(" \t\r\n", p[len - 1]) != NULL)
		len--;
	if (len > 0 && (tg_strncasecmp(p, "http", 4) == 0 ||
	    tg_strncasecmp(p, "ftp:", 4) == 0 ||
	    tg_strncasecmp(p, "www.", 4) == 0 ||
	    tg_strncasecmp(p, "mailto:", 7) == 0))
		spam_mime_add_uri(h->w, p, len);
	xmlFree(v);
}

/*
 * spam_mime_html_enter - a node met going down: text out, an element's
 * URIs and line break; false when its children are not rendered
 */
static bool
spam_mime_html_enter(struct spam_mime_html *h, xmlNode *n)
{
	const char	*name;

	if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
		if (n->content != NULL)
			spam_mime_html_chars(h, (const char *)n->content);
		return false;
	}
	if (n->type != XML_ELEMENT_NODE || n->name == NULL)
		return false;
	name = (const char *)n->name;
	if (strcmp(name, "script") == 0 || strcmp(name, "style") == 0 ||
	    strcmp(name, "head") == 0 || strcmp(name, "noscript") == 0)
		return false;
	if (strcmp(name, "a") == 0 || strcmp(name, "area") == 0)
		spam_mime_html_attr_uri(h, n, "href");
	else if (strcmp(name, "img") == 0 || strcmp(name, "iframe") == 0 ||
	    strcmp(name, "frame") == 0)
		spam_mime_html_attr_uri(h, n, "src");
	else if (strcmp(name, "form") == 0)
		spam_mime_html_attr_uri(h, n, "action");
	if (spam_mime_html_block(name))
		spam_mime_html_newline(h);
	return true;
}

/* spam_mime_html_leave - an element left going up: its line break */
static void
spam_mime_html_leave(struct spam_mime_html *h, xmlNode *n)
{
	if (n->type == XML_ELEMENT_NODE && n->name != NULL &&
	    spam_mime_html_block((const char *)n->name))
		spam_mime_html_newline(h);
}

/*
 * spam_mime_html_walk - the document's nodes in order without recursion
 * (parent links), so nesting depth costs no stack; stops at
 * max_body_text
 */
static void
spam_mime_html_walk(struct spam_mime_html *h, xmlDocPtr doc)
{
	xmlNode	*n = doc->children;

	while (n != NULL && h->text.len < h->w->lim->max_body_text) {
		if (spam_mime_html_enter(h, n) && n->children != NULL) {
			n = n->children;
			continue;
		}
		spam_mime_html_leave(h, n);
		/* climb until a node has a next sibling; the top is the doc */
		while (n->next == NULL) {
			n = n->parent;
			if (n == NULL || n == (xmlNode *)doc)
				return;
			spam_mime_html_leave(h, n);
		}
		n = n->next;
	}
}

/*
 * spam_mime_html - render UTF-8 HTML into body text; hrefs and srcs
 * become URIs.  libxml2 recovers from any markup, decodes entities;
 * no network, no external entities.  Its safety limits stay on (no
 * XML_PARSE_HUGE: this is a stranger's markup): past 256 levels of
 * nesting, or a text node or name beyond its bounds, it stops with a
 * fatal error; what came before is kept and the message is truncated.
 */
static void
spam_mime_html(struct spam_mime_walk *w, const char *html, size_t len)
{
	struct spam_mime_html	 h;
	htmlParserCtxtPtr	 ctxt;
	htmlDocPtr		 doc = NULL;
	xmlErrorPtr		 e;
	size_t			 max = w->lim->max_body_text;

	if (len > INT32_MAX)
		len = INT32_MAX;
	memset(&h, 0, sizeof(h));
	h.w = w;
	h.space = true;
	tg_buf_init(&h.text);
	if ((ctxt = htmlNewParserCtxt()) != NULL) {
		doc = htmlCtxtReadMemory(ctxt, html, (int)len, NULL, "UTF-8",
		    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
		    HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
		    HTML_PARSE_NOIMPLIED);
		e = xmlCtxtGetLastError(ctxt);
		if (e != NULL && e->level == XML_ERR_FATAL)
			w->m->truncated = true;
		htmlFreeParserCtxt(ctxt);
	}
	if (doc != NULL) {
		spam_mime_html_walk(&h, doc);
		xmlFreeDoc(doc);
	}
	spam_mime_text_uris(w, tg_buf_cstr(&h.text), h.text.len);
	if (w->body.len < max)
		spam_mime_lines(&w->body, tg_buf_cstr(&h.text), h.text.len,
		    max);
	tg_buf_fini(&h.text);
}

/* spam_mime_b64_broken - characters outside base64 in encoded content */
static bool
spam_mime_b64_broken(GMimeDataWrapper *dw)
{
	GMimeStream	*st;
	char		 buf[4096];
	ssize_t		 n, i;
	bool		 pad = false;

	if ((st = g_mime_data_wrapper_get_stream(dw)) == NULL)
		return false;
	if (g_mime_stream_reset(st) == -1)
		return false;
	while ((n = g_mime_stream_read(st, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)buf[i];

			if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
				continue;
			if (c == '=') {
				pad = true;
				continue;
			}
			if (pad || !(g_ascii_isalnum(c) || c == '+' || c == '/'))
				return true;
		}
	}
	(void)g_mime_stream_reset(st);
	return false;
}

/* spam_mime_new_part - the next part record, or NULL past max_parts */
static struct spam_part *
spam_mime_new_part(struct spam_mime_walk *w)
{
	struct spam_msg		*m = w->m;
	struct spam_part	*p;

	if (m->nparts >= w->lim->max_parts) {
		m->truncated = w->stop = true;
		return NULL;
	}
	if (m->nparts == w->cap_parts) {
		w->cap_parts = w->cap_parts == 0 ? 4 : w->cap_parts * 2;
		m->parts = tg_reallocarray(m->parts, w->cap_parts,
		    sizeof(*m->parts));
	}
	p = &m->parts[m->nparts++];
	memset(p, 0, sizeof(*p));
	return p;
}

/* spam_mime_describe - a part's type, charset, name, disposition */
static void
spam_mime_describe(struct spam_part *p, GMimeObject *obj)
{
	GMimeContentType	*ct = g_mime_object_get_content_type(obj);
	const char		*cs, *fn, *disp;
	char			*type;

	type = ct != NULL ? g_mime_content_type_get_mime_type(ct) : NULL;
	p->type = tg_strdup(type != NULL ? type : "text/plain");
	g_free(type);
	spam_mime_lower(p->type);
	if ((cs = g_mime_object_get_content_type_parameter(obj, "charset")) !=
	    NULL && *cs != '\0') {
		p->charset = tg_strdup(cs);
		spam_mime_lower(p->charset);
	}
	if ((fn = g_mime_part_get_filename(GMIME_PART(obj))) != NULL &&
	    *fn != '\0')
		p->filename = tg_strdup(fn);
	disp = g_mime_object_get_disposition(obj);
	p->attachment = p->filename != NULL || (disp != NULL &&
	    tg_strcasecmp(disp, "attachment") == 0);
}

/* spam_mime_leaf - one leaf part: its record; text parts' text */
static void
spam_mime_leaf(struct spam_mime_walk *w, GMimeObject *obj)
{
	struct spam_msg		*m = w->m;
	struct spam_part	*p;
	GMimeDataWrapper	*dw;
	GMimeStream		*mem;
	GByteArray		*ba;
	char			*text;
	bool			 html;
	size_t			 room, n, max = w->lim->max_body_text;

	if ((p = spam_mime_new_part(w)) == NULL)
		return;
	spam_mime_describe(p, obj);
	if ((dw = g_mime_part_get_content(GMIME_PART(obj))) == NULL)
		return;
	if (g_mime_part_get_content_encoding(GMIME_PART(obj)) ==
	    GMIME_CONTENT_ENCODING_BASE64 && spam_mime_b64_broken(dw))
		p->broken = true;
	mem = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(dw, mem) == -1)
		p->broken = true;
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	p->decoded_size = ba->len;
	html = strcmp(p->type, "text/html") == 0;
	if (html)
		m->has_html = true;
	if (p->attachment || (!html && strcmp(p->type, "text/plain") != 0) ||
	    ba->len == 0) {
		g_object_unref(mem);
		return;
	}
	if (w->raw.len >= max && w->body.len >= max) {
		m->truncated = true;
		g_object_unref(mem);
		return;
	}
	/* HTML whole (markup is not text: the rendering is what max
	 * bounds); plain text up to what body can keep */
	n = html || ba->len < max ? ba->len : max;
	if (n < ba->len)
		m->truncated = true;
	text = spam_mime_to_utf8((const char *)ba->data, n, p->charset,
	    &p->broken);
	g_object_unref(mem);
	room = max > w->raw.len ? max - w->raw.len : 0;
	n = strlen(text);
	if (n > room) {
		m->truncated = true;
		/* cut on a character boundary */
		for (n = room; n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80;
		    n--)
			;
	}
	tg_buf_append(&w->raw, text, n);
	if (w->raw.len > 0 && tg_buf_cstr(&w->raw)[w->raw.len - 1] != '\n')
		tg_buf_putc(&w->raw, '\n');
	if (html)
		spam_mime_html(w, text, strlen(text));
	else {
		spam_mime_text_uris(w, text, strlen(text));
		spam_mime_paragraphs(&w->body, text, strlen(text),
		    w->lim->max_body_text);
	}
	free(text);
}

/* spam_mime_object - a part of any kind, nested within max_depth */
static void
spam_mime_object(struct spam_mime_walk *w, GMimeObject *obj, size_t depth)
{
	GMimeMultipart	*mp;
	GMimeMessage	*inner;
	int		 i, n;

	if (obj == NULL)
		return;
	if (++w->parts_seen > w->lim->max_parts * 2 + 16) {
		/* containers count too: 10,000 empty multiparts stop here */
		w->m->truncated = w->stop = true;
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		if (depth >= w->lim->max_depth) {
			w->m->truncated = true;
			return;
		}
		mp = GMIME_MULTIPART(obj);
		n = g_mime_multipart_get_count(mp);
		for (i = 0; i < n && !w->stop; i++)
			spam_mime_object(w, g_mime_multipart_get_part(mp, i),
			    depth + 1);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		if (depth >= w->lim->max_depth) {
			w->m->truncated = true;
			return;
		}
		inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		if (inner != NULL)
			spam_mime_object(w, g_mime_message_get_mime_part(inner),
			    depth + 1);
	} else if (GMIME_IS_PART(obj))
		spam_mime_leaf(w, obj);
}

/*
 * spam_mime_unfold - a header value as received into raw form: CRLF
 * before white space out, CR and LF out, leading white space dropped,
 * trailing line end dropped.
 */
static char *
spam_mime_unfold(const char *v)
{
	char	*r = tg_strdup(v != NULL ? v : "");
	size_t	 j, k;

	for (j = k = 0; r[j] != '\0'; j++) {
		if (r[j] == '\r' || r[j] == '\n')
			continue;
		if (k == 0 && (r[j] == ' ' || r[j] == '\t'))
			continue;
		r[k++] = r[j];
	}
	while (k > 0 && (r[k - 1] == ' ' || r[k - 1] == '\t'))
		k--;
	r[k] = '\0';
	return r;
}

/*
 * spam_mime_add_header - one header, name and value as received;
 * false (and truncated) past max_headers headers or max_body_text
 * bytes of them, so a block of 130,000 "a:" lines costs no more than
 * a normal one (each header is a struct and three strings, and every
 * header rule walks them all)
 */
static bool
spam_mime_add_header(struct spam_msg *m, const struct spam_limits *lim,
    size_t *cap, size_t *kept, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	struct spam_header	*h;
	char			*v, *dec;

	if (m->nheaders >= lim->max_headers ||
	    nlen + vlen > lim->max_body_text - *kept) {
		m->truncated = true;
		return false;
	}
	*kept += nlen + vlen;
	if (m->nheaders == *cap) {
		*cap = *cap == 0 ? 16 : *cap * 2;
		m->headers = tg_reallocarray(m->headers, *cap,
		    sizeof(*m->headers));
	}
	h = &m->headers[m->nheaders++];
	h->name = tg_strndup(name, nlen);
	v = tg_malloc(vlen + 1);
	memcpy(v, value, vlen);
	v[vlen] = '\0';
	h->raw = spam_mime_unfold(v);
	free(v);
	dec = strstr(h->raw, "=?") != NULL ?
	    g_mime_utils_header_decode_text(NULL, h->raw) : NULL;
	h->decoded = tg_strdup(dec != NULL && g_utf8_validate(dec, -1, NULL) ?
	    dec : h->raw);
	g_free(dec);
	return true;
}

/*
 * spam_mime_headers - the top-level header block as received, in order
 * (GMime files Content-* headers under the MIME part; the rules want
 * them all, as SpamAssassin gives them).  A line that is neither a
 * header nor a continuation ends the block, as in Postfix.  Past a
 * limit the rest of the block is skipped: true, and *cut .. *resume is
 * the part left out (GMime is given the bytes without it, so it does
 * not build its own objects for 100,000 headers either).
 */
static bool
spam_mime_headers(struct spam_msg *m, const struct spam_limits *lim,
    const char *data, size_t len, size_t *cut, size_t *resume)
{
	const char	*p = data, *end = data + len, *eol, *colon, *q;
	const char	*name = NULL, *vstart = NULL, *vend = NULL;
	const char	*drop = NULL;
	size_t		 cap = 0, nlen = 0, kept = 0;

	for (; p < end; p = eol) {
		eol = memchr(p, '\n', (size_t)(end - p));
		eol = eol == NULL ? end : eol + 1;
		if (name != NULL && (*p == ' ' || *p == '\t')) {
			vend = eol;
			continue;
		}
		if (name != NULL && drop == NULL && !spam_mime_add_header(m,
		    lim, &cap, &kept, name, nlen, vstart,
		    (size_t)(vend - vstart)))
			drop = name;
		name = NULL;
		if (*p == '\r' || *p == '\n')
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		for (q = p; colon != NULL && q < colon; q++)
			if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
				colon = NULL;
		if (colon == NULL || colon == p) {
			m->malformed = true;
			break;
		}
		name = p;
		nlen = (size_t)(colon - p);
		vstart = colon + 1;
		vend = eol;
	}
	if (name != NULL && drop == NULL && !spam_mime_add_header(m, lim,
	    &cap, &kept, name, nlen, vstart, (size_t)(vend - vstart)))
		drop = name;
	if (drop == NULL)
		return false;
	*cut = (size_t)(drop - data);
	*resume = (size_t)(p - data);
	return true;
}

/* spam_mime_warning - GMime saw something broken: note it */
static void
spam_mime_warning(gint64 offset, GMimeParserWarning code, const gchar *item,
    gpointer arg)
{
	struct spam_msg	*m = arg;

	(void)offset;
	(void)item;
	switch (code) {
	case GMIME_WARN_DUPLICATED_HEADER:
	case GMIME_WARN_DUPLICATED_PARAMETER:
	case GMIME_WARN_UNENCODED_8BIT_HEADER:
	case GMIME_WARN_INVALID_ADDRESS_LIST:
		/* common in ham; not a broken structure */
		break;
	default:
		m->malformed = true;
		break;
	}
}

/* spam_mime_subject - the decoded Subject first in body, as SA does */
static void
spam_mime_subject(struct spam_mime_walk *w)
{
	const struct spam_header	*h;

	if ((h = spam_msg_header(w->m, "Subject", 0)) == NULL)
		return;
	tg_buf_puts(&w->body, h->decoded);
	tg_buf_putc(&w->body, '\n');
}

/* spam_mime_unparsed - GMime found no message: the bytes as text */
static void
spam_mime_unparsed(struct spam_mime_walk *w, const char *data, size_t len)
{
	char	*text;
	bool	 broken = false;

	text = spam_mime_to_utf8(data, len < w->lim->max_body_text ? len :
	    w->lim->max_body_text, NULL, &broken);
	tg_buf_puts(&w->raw, text);
	spam_mime_paragraphs(&w->body, text, strlen(text),
	    w->lim->max_body_text);
	free(text);
}

/* spam_mime_parse - see spam_int.h */
struct spam_msg *
spam_mime_parse(const char *data, size_t len, const struct spam_limits *lim)
{
	struct spam_mime_walk	 w;
	struct spam_msg		*m = tg_calloc(1, sizeof(*m));
	struct tg_buf		 shortened;
	size_t			 cut, resume;
	GMimeParserOptions	*opts;
	GMimeStream		*st;
	GMimeParser		*p;
	GMimeMessage		*msg;

	(void)pthread_once(&spam_mime_once, spam_mime_init);
	if (lim == NULL)
		lim = &spam_mime_default_limits;
	memset(&w, 0, sizeof(w));
	w.m = m;
	w.lim = lim;
	if (len > lim->max_scan_bytes) {
		len = lim->max_scan_bytes;
		m->truncated = true;
	}
	m->full = data;
	m->full_len = len;
	tg_buf_init(&w.body);
	tg_buf_init(&w.raw);
	tg_buf_init(&shortened);
	if (spam_mime_headers(m, lim, data, len, &cut, &resume)) {
		tg_buf_append(&shortened, data, cut);
		tg_buf_append(&shortened, data + resume, len - resume);
		/* the stream copies it */
		st = g_mime_stream_mem_new_with_buffer(tg_buf_cstr(&shortened),
		    shortened.len);
	} else {
		st = g_mime_stream_mem_new_with_buffer(data, len);
	}
	tg_buf_fini(&shortened);
	opts = g_mime_parser_options_new();
	g_mime_parser_options_set_warning_callback(opts, spam_mime_warning, m);
	p = g_mime_parser_new_with_stream(st);
	g_mime_parser_set_format(p, GMIME_FORMAT_MESSAGE);
	msg = g_mime_parser_construct_message(p, opts);
	g_object_unref(p);
	g_object_unref(st);
	if (msg == NULL) {
		m->malformed = true;
		spam_mime_unparsed(&w, data, len);
	} else {
		spam_mime_subject(&w);
		spam_mime_object(&w, g_mime_message_get_mime_part(msg), 0);
		g_object_unref(msg);
	}
	g_mime_parser_options_free(opts);
	if (w.body.len > lim->max_body_text || w.raw.len > lim->max_body_text)
		m->truncated = true;
	m->body_len = w.body.len;
	m->body = tg_buf_steal(&w.body);
	m->rawbody_len = w.raw.len;
	m->rawbody = tg_buf_steal(&w.raw);
	return m;
}

/* spam_msg_free - see spam_int.h */
struct spam_msg *
spam_msg_free(struct spam_msg *m)
{
	size_t	i;

	if (m == NULL)
		return NULL;
	for (i = 0; i < m->nheaders; i++) {
		free(m->headers[i].name);
		free(m->headers[i].raw);
		free(m->headers[i].decoded);
	}
	free(m->headers);
	free(m->body);
	free(m->rawbody);
	for (i = 0; i < m->nuris; i++)
		free(m->uris[i]);
	free(m->uris);
	for (i = 0; i < m->nuri_domains; i++)
		free(m->uri_domains[i]);
	free(m->uri_domains);
	for (i = 0; i < m->nparts; i++) {
		free(m->parts[i].type);
		free(m->parts[i].charset);
		free(m->parts[i].filename);
	}
	free(m->parts);
	free(m);
	return NULL;
}

/* spam_msg_header - see spam_int.h */
const struct spam_header *
spam_msg_header(const struct spam_msg *m, const char *name, size_t n)
{
	size_t	i;

	for (i = 0; i < m->nheaders; i++)
		if (tg_strcasecmp(m->headers[i].name, name) == 0 && n-- == 0)
			return &m->headers[i];
	return NULL;
}
