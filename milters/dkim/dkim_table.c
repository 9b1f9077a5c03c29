/*
 * dkim_table - which keys sign which From: addresses.
 *
 * Reads OpenDKIM's two tables and our inline form:
 *
 *   KeyTable       keyname  domain:selector:/path/to/key
 *   SigningTable   pattern  keyname  [identity]
 *   [dkim] keys  = domain:selector:/path/key ...
 *
 * A plain SigningTable is looked up as OpenDKIM does, first match wins:
 * user@host, host, user@.parent and .parent for each parent domain,
 * user@*, then *.  With "refile:" its patterns are "*" wildcards matched
 * against user@host in file order.  Lines repeating the winning pattern
 * (or inline keys of one domain) all apply, which is how a domain is
 * signed with both an RSA and an Ed25519 key.  A KeyTable domain of "%"
 * and a SigningTable keyname of "%" stand for the From: domain, as in
 * OpenDKIM.  Exact lookups go through hash tables and every key file is
 * read once however many entries name it, so 100,000 domains load in
 * seconds.  Built at start-up, read-only afterwards.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim_int.h"

#define DKIM_CAND_MAX	600	/* user@domain: 64 + 1 + 255, and room */

/* A KeyTable entry. */
struct dkim_keyentry {
	char			*domain;	/* or "%" */
	char			*selector;
	const struct dkim_key	*key;		/* owned by files */
};

/* One "pattern keyname [identity]" line. */
struct dkim_sigref {
	const struct dkim_keyentry	*entry;	/* NULL: keyname "%" */
	char				*ident;
};

/* All lines of one pattern. */
struct dkim_rule {
	char			*pattern;
	struct dkim_sigref	*refs;
	size_t			 nrefs;
};

struct dkim_keyring {
	struct dkim_map		*files;		/* path -> struct dkim_key */
	struct dkim_map		*entries;	/* keyname -> dkim_keyentry */
	struct dkim_map		*exact;		/* pattern -> dkim_rule */
	struct dkim_map		*globidx;	/* pattern -> index + 1 */
	struct dkim_rule	*globs;		/* refile rules, file order */
	size_t			 nglobs;
	size_t			 ned25519;	/* Ed25519 key files */
	struct dkim_keyloader	*loader;
};

/* A line being parsed, for file:line errors. */
struct dkim_line {
	const char	*file;
	size_t		 lineno;
	char		*fields[4];
	size_t		 nfields;
};

typedef enum tg_status (*dkim_line_fn)(struct dkim_keyring *,
    struct dkim_line *, long, bool, struct tg_err *);

/* dkim_entry_free - a KeyTable entry */
static void
dkim_entry_free(void *p)
{
	struct dkim_keyentry	*e = p;

	free(e->domain);
	free(e->selector);
	free(e);
}

/* dkim_rule_fini - a rule's contents */
static void
dkim_rule_fini(struct dkim_rule *r)
{
	size_t	i;

	for (i = 0; i < r->nrefs; i++)
		free(r->refs[i].ident);
	free(r->refs);
	free(r->pattern);
}

/* dkim_rule_free - a heap rule */
static void
dkim_rule_free(void *p)
{
	dkim_rule_fini(p);
	free(p);
}

/* dkim_keyring_new - empty tables */
struct dkim_keyring *
dkim_keyring_new(void)
{
	struct dkim_keyring	*r;

	r = tg_calloc(1, sizeof(*r));
	r->files = dkim_map_new();
	r->entries = dkim_map_new();
	r->exact = dkim_map_new();
	r->globidx = dkim_map_new();
	r->loader = dkim_keyloader_new();
	return r;
}

/* dkim_keyring_free - everything, keys wiped; accepts NULL */
void
dkim_keyring_free(struct dkim_keyring *r)
{
	size_t	i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nglobs; i++)
		dkim_rule_fini(&r->globs[i]);
	free(r->globs);
	dkim_map_free(r->globidx, NULL);
	dkim_map_free(r->exact, dkim_rule_free);
	dkim_map_free(r->entries, dkim_entry_free);
	dkim_map_free(r->files, dkim_key_free);
	dkim_keyloader_free(r->loader);
	free(r);
}

/* dkim_keyring_stats - sizes, for the start-up log line */
void
dkim_keyring_stats(const struct dkim_keyring *r,
    struct dkim_keyring_stats *st)
{
	st->entries = dkim_map_count(r->entries);
	st->files = dkim_map_count(r->files);
	st->ed25519 = r->ned25519;
	st->rules = dkim_map_count(r->exact) + r->nglobs;
}

/* dkim_keyring_key - the key at path, read on first use */
static enum tg_status
dkim_keyring_key(struct dkim_keyring *r, const char *path, long min_bits,
    const struct dkim_key **out, struct tg_err *err)
{
	struct dkim_key	*k;
	enum tg_status	 st;

	if ((k = dkim_map_get(r->files, path)) == NULL) {
		if ((st = dkim_key_load(r->loader, path, min_bits, &k,
		    err)) != TG_OK)
			return st;
		(void)dkim_map_put(r->files, path, k);
		if (k->alg == DKIM_SIGN_ED25519SHA256)
			r->ned25519++;
	}
	*out = k;
	return TG_OK;
}

/*
 * dkim_keyring_entry - a new KeyTable entry from "domain:selector:path";
 * on error err says what, without the file position.
 */
static enum tg_status
dkim_keyring_entry(struct dkim_keyring *r, const char *name, char *spec,
    long min_bits, struct tg_err *err)
{
	struct dkim_keyentry	*e;
	const struct dkim_key	*k;
	char			*sel, *path;
	enum tg_status		 st;

	if ((sel = strchr(spec, ':')) == NULL ||
	    (path = strchr(sel + 1, ':')) == NULL || path[1] == '\0')
		return tg_err_set(err, TG_PERM, "\"%s\": want "
		    "domain:selector:/path/to/key", spec);
	*sel++ = '\0';
	*path++ = '\0';
	if (strcmp(spec, "%") != 0 && !dkim_domain_ok(spec))
		return tg_err_set(err, TG_PERM, "bad domain \"%s\"", spec);
	if (!dkim_labels_ok(sel, 1))
		return tg_err_set(err, TG_PERM, "bad selector \"%s\"", sel);
	if (dkim_map_get(r->entries, name) != NULL)
		return tg_err_set(err, TG_PERM, "key name \"%s\" defined twice",
		    name);
	if ((st = dkim_keyring_key(r, path, min_bits, &k, err)) != TG_OK)
		return st;
	e = tg_calloc(1, sizeof(*e));
	e->domain = tg_strdup(spec);
	e->selector = tg_strdup(sel);
	e->key = k;
	(void)dkim_map_put(r->entries, name, e);
	return TG_OK;
}

/* dkim_rule_add - append a reference to the rule for pattern */
static void
dkim_rule_add(struct dkim_keyring *r, const char *pattern, bool glob,
    const struct dkim_keyentry *e, const char *ident)
{
	struct dkim_rule	*rule;
	uintptr_t		 idx;

	if (!glob) {
		if ((rule = dkim_map_get(r->exact, pattern)) == NULL) {
			rule = tg_calloc(1, sizeof(*rule));
			rule->pattern = tg_strdup(pattern);
			(void)dkim_map_put(r->exact, pattern, rule);
		}
	} else if ((idx = (uintptr_t)dkim_map_get(r->globidx, pattern)) != 0)
		rule = &r->globs[idx - 1];
	else {
		r->globs = tg_reallocarray(r->globs, r->nglobs + 1,
		    sizeof(*r->globs));
		rule = &r->globs[r->nglobs++];
		memset(rule, 0, sizeof(*rule));
		rule->pattern = tg_strdup(pattern);
		(void)dkim_map_put(r->globidx, pattern,
		    (void *)(uintptr_t)r->nglobs);
	}
	rule->refs = tg_reallocarray(rule->refs, rule->nrefs + 1,
	    sizeof(*rule->refs));
	rule->refs[rule->nrefs].entry = e;
	rule->refs[rule->nrefs++].ident = ident != NULL ? tg_strdup(ident) :
	    NULL;
}

/* dkim_ident_ok - i= is @domain or user@domain, under the key's d= */
static bool
dkim_ident_ok(const char *ident, const struct dkim_keyentry *e)
{
	const char	*at = strrchr(ident, '@');
	size_t		 il, dl;

	if (at == NULL || !dkim_domain_ok(at + 1))
		return false;
	if (e == NULL || strcmp(e->domain, "%") == 0)
		return true;
	il = strlen(at + 1);
	dl = strlen(e->domain);
	/* RFC 6376 3.5: the i= domain is d= or a subdomain of it. */
	return tg_strcasecmp(at + 1, e->domain) == 0 || (il > dl &&
	    at[il - dl] == '.' && tg_strcasecmp(at + 1 + il - dl,
	    e->domain) == 0);
}

/* dkim_keys_line - one KeyTable line */
static enum tg_status
dkim_keys_line(struct dkim_keyring *r, struct dkim_line *l, long min_bits,
    bool glob, struct tg_err *err)
{
	struct tg_err	e;

	(void)glob;
	if (l->nfields != 2)
		return tg_err_set(err, TG_PERM, "%s:%zu: want \"keyname "
		    "domain:selector:/path/to/key\"", l->file, l->lineno);
	if (dkim_keyring_entry(r, l->fields[0], l->fields[1], min_bits, &e) !=
	    TG_OK)
		return tg_err_set(err, TG_PERM, "%s:%zu: %s", l->file,
		    l->lineno, e.text);
	return TG_OK;
}

/* dkim_signing_line - one SigningTable line */
static enum tg_status
dkim_signing_line(struct dkim_keyring *r, struct dkim_line *l, long min_bits,
    bool glob, struct tg_err *err)
{
	const struct dkim_keyentry	*e = NULL;

	(void)min_bits;
	if (l->nfields < 2 || l->nfields > 3)
		return tg_err_set(err, TG_PERM, "%s:%zu: want \"pattern "
		    "keyname [identity]\"", l->file, l->lineno);
	if (strcmp(l->fields[1], "%") != 0 &&
	    (e = dkim_map_get(r->entries, l->fields[1])) == NULL)
		return tg_err_set(err, TG_PERM, "%s:%zu: key name \"%s\" is "
		    "not in the key table", l->file, l->lineno, l->fields[1]);
	if (l->nfields == 3 && !dkim_ident_ok(l->fields[2], e))
		return tg_err_set(err, TG_PERM, "%s:%zu: identity \"%s\" is "
		    "not @domain under the key's domain", l->file, l->lineno,
		    l->fields[2]);
	dkim_rule_add(r, l->fields[0], glob, e,
	    l->nfields == 3 ? l->fields[2] : NULL);
	return TG_OK;
}

/* dkim_line_split - fields of a line; false for blanks and comments */
static bool
dkim_line_split(char *line, struct dkim_line *l)
{
	char	*p = line;

	l->nfields = 0;
	for (;;) {
		p += strspn(p, " \t\r");
		if (*p == '\0' || (*p == '#' && l->nfields == 0))
			return l->nfields > 0;
		if (l->nfields == TG_NITEMS(l->fields))
			return true;	/* too many: the caller says so */
		l->fields[l->nfields++] = p;
		p += strcspn(p, " \t\r");
		if (*p != '\0')
			*p++ = '\0';
	}
}

/* dkim_table_read - run fn over every line of a table file */
static enum tg_status
dkim_table_read(struct dkim_keyring *r, const char *path, dkim_line_fn fn,
    long min_bits, bool glob, struct tg_err *err)
{
	struct dkim_line	 l;
	enum tg_status		 st = TG_OK;
	char			*text, *line, *next;

	if (tg_read_file(path, &text, NULL, err) != TG_OK)
		return TG_PERM;
	memset(&l, 0, sizeof(l));
	l.file = path;
	for (line = text; line != NULL && st == TG_OK; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		l.lineno++;
		if (dkim_line_split(line, &l))
			st = fn(r, &l, min_bits, glob, err);
	}
	free(text);
	return st;
}

/* dkim_table_path - the path of "file:/p", "refile:/p" or "/p" */
static const char *
dkim_table_path(const char *spec, bool *glob)
{
	*glob = false;
	if (strncmp(spec, "file:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "refile:", 7) == 0) {
		*glob = true;
		return spec + 7;
	}
	return spec;
}

/* dkim_keyring_load_keys - a KeyTable file */
enum tg_status
dkim_keyring_load_keys(struct dkim_keyring *r, const char *spec,
    long min_bits, struct tg_err *err)
{
	const char	*path;
	bool		 glob;

	path = dkim_table_path(spec, &glob);
	if (glob)
		return tg_err_set(err, TG_PERM, "key_table: refile: is for the "
		    "signing table only");
	return dkim_table_read(r, path, dkim_keys_line, min_bits, false, err);
}

/* dkim_keyring_load_signing - a SigningTable file, plain or refile */
enum tg_status
dkim_keyring_load_signing(struct dkim_keyring *r, const char *spec,
    struct tg_err *err)
{
	const char	*path;
	bool		 glob;

	path = dkim_table_path(spec, &glob);
	return dkim_table_read(r, path, dkim_signing_line, 0, glob, err);
}

/* dkim_keyring_add_inline - "domain:selector:/path" words */
enum tg_status
dkim_keyring_add_inline(struct dkim_keyring *r, const char *text,
    long min_bits, struct tg_err *err)
{
	const struct dkim_keyentry	*e;
	struct tg_err			 e2;
	char				*copy, *p, *w, *name;
	enum tg_status			 st = TG_OK;

	copy = p = tg_strdup(text);
	while (st == TG_OK && *(p += strspn(p, " \t,")) != '\0') {
		w = p;
		p += strcspn(p, " \t,");
		if (*p != '\0')
			*p++ = '\0';
		name = tg_printf_dup("keys:%s", w);
		if (dkim_keyring_entry(r, name, w, min_bits, &e2) != TG_OK)
			st = tg_err_set(err, TG_PERM, "keys: %s", e2.text);
		else if (strcmp((e = dkim_map_get(r->entries, name))->domain,
		    "%") == 0)
			st = tg_err_set(err, TG_PERM, "keys: \"%%\" is for the "
			    "key table only");
		else
			dkim_rule_add(r, e->domain, false, e, NULL);
		free(name);
	}
	free(copy);
	return st;
}

/* dkim_glob_match - "*" matches any run, other bytes match caselessly */
bool
dkim_glob_match(const char *pat, const char *s)
{
	const char	*star = NULL, *resume = NULL;

	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat != '\0' && tg_strncasecmp(pat, s, 1) == 0) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++resume;
		} else
			return false;
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

/* dkim_rule_exact - the rule of the first OpenDKIM lookup key that exists */
static const struct dkim_rule *
dkim_rule_exact(const struct dkim_keyring *r, const char *user,
    const char *domain)
{
	const struct dkim_rule	*rule;
	const char		*d;
	char			 c[DKIM_CAND_MAX];
	int			 n;

	if ((n = snprintf(c, sizeof(c), "%s@%s", user, domain)) > 0 &&
	    (size_t)n < sizeof(c) && (rule = dkim_map_get(r->exact, c)) != NULL)
		return rule;
	if ((rule = dkim_map_get(r->exact, domain)) != NULL)
		return rule;
	for (d = strchr(domain, '.'); d != NULL; d = strchr(d + 1, '.'))
		if ((n = snprintf(c, sizeof(c), "%s@%s", user, d)) > 0 &&
		    (size_t)n < sizeof(c) &&
		    (rule = dkim_map_get(r->exact, c)) != NULL)
			return rule;
	for (d = strchr(domain, '.'); d != NULL; d = strchr(d + 1, '.'))
		if ((rule = dkim_map_get(r->exact, d)) != NULL)
			return rule;
	if ((n = snprintf(c, sizeof(c), "%s@*", user)) > 0 &&
	    (size_t)n < sizeof(c) && (rule = dkim_map_get(r->exact, c)) != NULL)
		return rule;
	return dkim_map_get(r->exact, "*");
}

/* dkim_rule_glob - the first refile pattern matching user@domain */
static const struct dkim_rule *
dkim_rule_glob(const struct dkim_keyring *r, const char *user,
    const char *domain)
{
	char	c[DKIM_CAND_MAX];
	int	n;
	size_t	i;

	if (r->nglobs == 0 || (n = snprintf(c, sizeof(c), "%s@%s", user,
	    domain)) < 0 || (size_t)n >= sizeof(c))
		return NULL;
	for (i = 0; i < r->nglobs; i++)
		if (dkim_glob_match(r->globs[i].pattern, c))
			return &r->globs[i];
	return NULL;
}

/* dkim_signreq_fill - one reference made concrete; false if unusable */
static bool
dkim_signreq_fill(const struct dkim_keyring *r, const struct dkim_sigref *ref,
    const char *domain, struct dkim_signreq *q)
{
	const struct dkim_keyentry	*e = ref->entry;

	if (e == NULL && (e = dkim_map_get(r->entries, domain)) == NULL)
		return false;
	q->domain = strcmp(e->domain, "%") == 0 ? domain : e->domain;
	q->selector = e->selector;
	q->key = e->key;
	q->ident = ref->ident;
	return true;
}

/* dkim_keyring_lookup - the signatures a From: address gets */
size_t
dkim_keyring_lookup(const struct dkim_keyring *r, const char *user,
    const char *domain, struct dkim_signreq *out, size_t max)
{
	const struct dkim_rule	*rule;
	size_t			 i, j, n = 0;
	bool			 dup;

	if ((rule = dkim_rule_exact(r, user, domain)) == NULL &&
	    (rule = dkim_rule_glob(r, user, domain)) == NULL)
		return 0;
	for (i = 0; i < rule->nrefs && n < max; i++) {
		if (!dkim_signreq_fill(r, &rule->refs[i], domain, &out[n]))
			continue;
		dup = false;
		for (j = 0; j < n; j++)
			dup = dup || (out[j].key == out[n].key &&
			    strcmp(out[j].selector, out[n].selector) == 0 &&
			    tg_strcasecmp(out[j].domain, out[n].domain) == 0);
		if (!dup)
			n++;
	}
	return n;
}
