/*
 * quota - the rules file and the tenant table: parsing into one
 * immutable policy.
 *
 * Rules file, one statement a line, "#" comments:
 *   limit NAME count=messages|recipients key=KEY [window=1h] max=N
 *         [action=defer|reject] [on_error=accept|tempfail|local]
 *         [shadow=no|yes] [mail=outbound|inbound|any]
 *         [prefix=24] [prefix6=64]
 *   table PATH            (tenant overrides, see below)
 *   exempt ENTRY...       (addresses, domains, SASL users, networks)
 * Table file, one entry a line:
 *   DOMAIN|ADDRESS  NAME=MAX...  |  DOMAIN|ADDRESS exempt
 * Every error names file:line.  Nothing here does I/O after loading,
 * and a loaded policy is never changed: threads share it read-only.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "quota_int.h"
#include "tollgate/buf.h"

static const char *const tg_quota_count_names[] = { "messages", "recipients",
    NULL };
static const char *const tg_quota_key_names[] = { "sasl_username", "sender",
    "sender_domain", "client_ip", "rcpt_domain", "message", NULL };
static const char *const tg_quota_action_names[] = { "defer", "reject", NULL };
static const char *const tg_quota_on_error_names[] = { "accept", "tempfail",
    "local", NULL };
static const char *const tg_quota_dir_names[] = { "outbound", "inbound", "any",
    NULL };

/* tg_quota_lower - ASCII lower case in place */
void
tg_quota_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* tg_quota_word - the next blank-separated word of *pp, NUL-ended */
static char *
tg_quota_word(char **pp)
{
	char	*p = *pp, *w;

	p += strspn(p, " \t\r");
	if (*p == '\0')
		return NULL;
	w = p;
	p += strcspn(p, " \t\r");
	if (*p != '\0')
		*p++ = '\0';
	*pp = p;
	return w;
}

/* tg_quota_enum - index of name in names, or -1 */
static int
tg_quota_enum(const char *const *names, const char *name)
{
	int	i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/* tg_quota_name_ok - a rule name: letters, digits, _ and - */
static bool
tg_quota_name_ok(const char *s)
{
	size_t	n = strlen(s);

	return n > 0 && n < TG_QUOTA_NAME_MAX && strspn(s,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
	    == n;
}

/* tg_quota_rule_opt - one key=value of a limit line */
static bool
tg_quota_rule_opt(struct tg_quota_rule *r, const char *k, const char *v,
    unsigned int *seen)
{
	long	l;
	int	e;

	if (strcmp(k, "count") == 0 && (e = tg_quota_enum(tg_quota_count_names,
	    v)) >= 0)
		r->count = (enum tg_quota_count)e;
	else if (strcmp(k, "key") == 0 && (e = tg_quota_enum(tg_quota_key_names,
	    v)) >= 0) {
		r->key = (enum tg_quota_key)e;
		*seen |= 1;
	} else if (strcmp(k, "window") == 0 && tg_parse_duration(v, 1,
	    366L * 86400, &l)) {
		r->window_ms = (uint64_t)l * 1000;
		*seen |= 2;
	} else if (strcmp(k, "max") == 0 && tg_parse_long(v, 0, 1000000000L,
	    &l)) {
		r->max = (uint64_t)l;
		*seen |= 4;
	} else if (strcmp(k, "action") == 0 && (e = tg_quota_enum(
	    tg_quota_action_names, v)) >= 0)
		r->action = (enum tg_quota_action)e;
	else if (strcmp(k, "on_error") == 0 && (e = tg_quota_enum(
	    tg_quota_on_error_names, v)) >= 0)
		r->on_error = (enum tg_quota_on_error)e;
	else if (strcmp(k, "mail") == 0 && (e = tg_quota_enum(
	    tg_quota_dir_names, v)) >= 0)
		r->dir = (enum tg_quota_dir)e;
	else if (strcmp(k, "shadow") == 0)
		return tg_parse_bool(v, &r->shadow);
	else if (strcmp(k, "prefix") == 0 && tg_parse_long(v, 1, 32, &l))
		r->prefix4 = (int)l;
	else if (strcmp(k, "prefix6") == 0 && tg_parse_long(v, 1, 128, &l))
		r->prefix6 = (int)l;
	else
		return false;
	return true;
}

/* tg_quota_parse_limit - "limit NAME k=v..." into a new rule */
static enum tg_status
tg_quota_parse_limit(struct tg_quota_policy *pol, char *rest,
    const char *where, struct tg_err *err)
{
	struct tg_quota_rule	 r;
	unsigned int		 seen = 0;
	char			*w, *eq;
	size_t			 i;

	memset(&r, 0, sizeof(r));
	r.prefix4 = 32;
	r.prefix6 = 128;
	if ((w = tg_quota_word(&rest)) == NULL || !tg_quota_name_ok(w))
		return tg_err_set(err, TG_PERM, "%s: limit needs a name of up "
		    "to %d letters, digits, _ or -", where,
		    TG_QUOTA_NAME_MAX - 1);
	for (i = 0; i < pol->nrules; i++)
		if (strcmp(pol->rules[i].name, w) == 0)
			return tg_err_set(err, TG_PERM, "%s: limit %s defined "
			    "twice", where, w);
	memcpy(r.name, w, strlen(w) + 1);
	while ((w = tg_quota_word(&rest)) != NULL) {
		if ((eq = strchr(w, '=')) == NULL)
			return tg_err_set(err, TG_PERM, "%s: limit %s: "
			    "expected key=value, got \"%s\"", where, r.name, w);
		*eq++ = '\0';
		if (!tg_quota_rule_opt(&r, w, eq, &seen))
			return tg_err_set(err, TG_PERM, "%s: limit %s: bad %s "
			    "\"%s\"", where, r.name, w, eq);
	}
	if ((seen & 1) == 0 || (seen & 4) == 0)
		return tg_err_set(err, TG_PERM, "%s: limit %s: key= and max= "
		    "are required", where, r.name);
	if ((r.key == TG_QUOTA_KEY_MESSAGE) != ((seen & 2) == 0))
		return tg_err_set(err, TG_PERM, "%s: limit %s: window= is "
		    "required, except with key=message", where, r.name);
	pol->rules = tg_reallocarray(pol->rules, pol->nrules + 1,
	    sizeof(*pol->rules));
	pol->rules[pol->nrules++] = r;
	return TG_OK;
}

/* tg_quota_add_exempt - exempt words: networks apart, names lowered */
static void
tg_quota_add_exempt(struct tg_quota_policy *pol, char *rest)
{
	char	*w;

	while ((w = tg_quota_word(&rest)) != NULL) {
		if (strspn(w, "0123456789abcdefABCDEF.:/") == strlen(w) &&
		    strpbrk(w, ".:") != NULL && strchr(w, '@') == NULL &&
		    (strchr(w, ':') != NULL || strspn(w, "0123456789./") ==
		    strlen(w))) {
			tg_buf_printf(&pol->exempt_nets, "%s ", w);
			continue;
		}
		tg_quota_lower(w);
		pol->exempt = tg_reallocarray(pol->exempt, pol->nexempt + 1,
		    sizeof(*pol->exempt));
		pol->exempt[pol->nexempt++] = tg_strdup(w);
	}
}

/* tg_quota_path - path relative to the directory of base */
static char *
tg_quota_path(const char *base, const char *path)
{
	const char	*slash;

	if (path[0] == '/' || (slash = strrchr(base, '/')) == NULL)
		return tg_strdup(path);
	return tg_printf_dup("%.*s/%s", (int)(slash - base), base, path);
}

/* tg_quota_parse_line - one statement of the rules file */
static enum tg_status
tg_quota_parse_line(struct tg_quota_policy *pol, char *line,
    const char *label, const char *where, struct tg_err *err)
{
	char	*w, *path;

	if ((w = tg_quota_word(&line)) == NULL || w[0] == '#')
		return TG_OK;
	if (strcmp(w, "limit") == 0)
		return tg_quota_parse_limit(pol, line, where, err);
	if (strcmp(w, "exempt") == 0) {
		tg_quota_add_exempt(pol, line);
		return TG_OK;
	}
	if (strcmp(w, "table") == 0) {
		if ((w = tg_quota_word(&line)) == NULL ||
		    tg_quota_word(&line) != NULL)
			return tg_err_set(err, TG_PERM, "%s: table needs one "
			    "path", where);
		if (pol->table_path != NULL)
			return tg_err_set(err, TG_PERM, "%s: one table only",
			    where);
		path = tg_quota_path(label, w);
		pol->table_path = path;
		return TG_OK;
	}
	return tg_err_set(err, TG_PERM, "%s: unknown statement \"%s\" "
	    "(limit, table, exempt)", where, w);
}

/* tg_quota_each_line - call fn on each line of text, with "label:n" */
static enum tg_status
tg_quota_each_line(struct tg_quota_policy *pol, char *text, const char *label,
    enum tg_status (*fn)(struct tg_quota_policy *, char *, const char *,
    const char *, struct tg_err *), struct tg_err *err)
{
	char		 where[512], *line, *nl;
	unsigned int	 n = 0;
	enum tg_status	 st;

	for (line = text; line != NULL; line = nl) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		n++;
		(void)snprintf(where, sizeof(where), "%s:%u", label, n);
		if ((st = fn(pol, line, label, where, err)) != TG_OK)
			return st;
	}
	return TG_OK;
}

/* tg_quota_rule_index - the rule called name, or -1 */
static int
tg_quota_rule_index(const struct tg_quota_policy *pol, const char *name)
{
	size_t	i;

	for (i = 0; i < pol->nrules; i++)
		if (strcmp(pol->rules[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* tg_quota_table_line - "who name=max... | who exempt" */
static enum tg_status
tg_quota_table_line(struct tg_quota_policy *pol, char *line,
    const char *label, const char *where, struct tg_err *err)
{
	struct tg_quota_entry	 e;
	char			*w, *eq;
	long			 l;
	int			 ri;

	(void)label;
	if ((w = tg_quota_word(&line)) == NULL || w[0] == '#')
		return TG_OK;
	memset(&e, 0, sizeof(e));
	tg_quota_lower(w);
	if (tg_quota_find(pol, w) != NULL)
		return tg_err_set(err, TG_PERM, "%s: %s listed twice", where,
		    w);
	e.who = tg_strdup(w);
	e.mailbox = strchr(w, '@') != NULL;
	while ((w = tg_quota_word(&line)) != NULL) {
		if (strcmp(w, "exempt") == 0) {
			e.exempt = true;
			continue;
		}
		if ((eq = strchr(w, '=')) == NULL)
			goto bad;
		*eq++ = '\0';
		if ((ri = tg_quota_rule_index(pol, w)) < 0) {
			free(e.who);
			free(e.max);
			return tg_err_set(err, TG_PERM, "%s: no limit called "
			    "\"%s\"", where, w);
		}
		if (!tg_parse_long(eq, 0, 1000000000L, &l))
			goto bad;
		if (e.max == NULL) {
			e.max = tg_calloc(pol->nrules, sizeof(*e.max));
			e.set = 0;
		}
		e.max[ri] = (uint64_t)l;
		e.set |= 1ULL << ri;
	}
	pol->entries = tg_reallocarray(pol->entries, pol->nentries + 1,
	    sizeof(*pol->entries));
	pol->entries[pol->nentries++] = e;
	return TG_OK;
bad:
	free(e.who);
	free(e.max);
	return tg_err_set(err, TG_PERM, "%s: expected NAME=MAX or exempt, got "
	    "\"%s\"", where, w);
}

/* tg_quota_entry_cmp - qsort order of entries */
static int
tg_quota_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tg_quota_entry *)a)->who,
	    ((const struct tg_quota_entry *)b)->who);
}

/* tg_quota_load_table - the tenant table named by the rules */
static enum tg_status
tg_quota_load_table(struct tg_quota_policy *pol, struct tg_err *err)
{
	char		*text;
	size_t		 len;
	enum tg_status	 st;

	if (pol->table_path == NULL)
		return TG_OK;
	if (tg_read_file(pol->table_path, &text, &len, err) != TG_OK)
		return TG_PERM;
	pol->sorted = false;
	st = tg_quota_each_line(pol, text, pol->table_path,
	    tg_quota_table_line, err);
	free(text);
	return st;
}

/* tg_quota_policy_finish - table, exempt networks, ready to share */
static enum tg_status
tg_quota_policy_finish(struct tg_quota_policy *pol, const char *extra,
    struct tg_err *err)
{
	struct tg_err	 nerr;
	char		*x;

	if (pol->nrules > 64)
		return tg_err_set(err, TG_PERM, "at most 64 limits");
	if (extra != NULL) {
		x = tg_strdup(extra);
		tg_quota_add_exempt(pol, x);
		free(x);
	}
	if (tg_quota_load_table(pol, err) != TG_OK)
		return TG_PERM;
	if (pol->nentries > 0)
		qsort(pol->entries, pol->nentries, sizeof(*pol->entries),
		    tg_quota_entry_cmp);
	pol->sorted = true;
	if ((pol->nets = tg_netlist_parse(tg_buf_cstr(&pol->exempt_nets),
	    &nerr)) == NULL)
		return tg_err_set(err, TG_PERM, "exempt: %s", nerr.text);
	atomic_init(&pol->refs, 1);
	return TG_OK;
}

/* tg_quota_policy_parse - a policy from rules text */
struct tg_quota_policy *
tg_quota_policy_parse(const char *text, const char *label, const char *extra,
    struct tg_err *err)
{
	struct tg_quota_policy	*pol = tg_calloc(1, sizeof(*pol));
	char			*copy = tg_strdup(text);
	enum tg_status		 st;

	tg_buf_init(&pol->exempt_nets);
	st = tg_quota_each_line(pol, copy, label, tg_quota_parse_line, err);
	free(copy);
	if (st == TG_OK && tg_quota_policy_finish(pol, extra, err) == TG_OK)
		return pol;
	atomic_init(&pol->refs, 1);
	return tg_quota_policy_unref(pol);
}

/* tg_quota_policy_load - a policy from the rules file */
struct tg_quota_policy *
tg_quota_policy_load(const char *path, const char *extra, struct tg_err *err)
{
	struct tg_quota_policy	*pol;
	char			*text;
	size_t			 len;

	if (tg_read_file(path, &text, &len, err) != TG_OK)
		return NULL;
	pol = tg_quota_policy_parse(text, path, extra, err);
	free(text);
	return pol;
}

/* tg_quota_policy_ref - one more user */
struct tg_quota_policy *
tg_quota_policy_ref(struct tg_quota_policy *pol)
{
	atomic_fetch_add(&pol->refs, 1);
	return pol;
}

/* tg_quota_policy_unref - one user less; the last frees */
struct tg_quota_policy *
tg_quota_policy_unref(struct tg_quota_policy *pol)
{
	size_t	i;

	if (pol == NULL || atomic_fetch_sub(&pol->refs, 1) != 1)
		return NULL;
	for (i = 0; i < pol->nentries; i++) {
		free(pol->entries[i].who);
		free(pol->entries[i].max);
	}
	for (i = 0; i < pol->nexempt; i++)
		free(pol->exempt[i]);
	free(pol->entries);
	free(pol->exempt);
	free(pol->rules);
	free(pol->table_path);
	tg_buf_fini(&pol->exempt_nets);
	(void)tg_netlist_free(pol->nets);
	free(pol);
	return NULL;
}

/* tg_quota_policy_nrules - how many limits */
size_t
tg_quota_policy_nrules(const struct tg_quota_policy *pol)
{
	return pol->nrules;
}

/* tg_quota_policy_rule - the i-th limit */
const struct tg_quota_rule *
tg_quota_policy_rule(const struct tg_quota_policy *pol, size_t i)
{
	return &pol->rules[i];
}

/* tg_quota_find - the table entry for who (lower case), or NULL */
const struct tg_quota_entry *
tg_quota_find(const struct tg_quota_policy *pol, const char *who)
{
	struct tg_quota_entry	key;
	size_t			i;

	if (pol->nentries == 0)
		return NULL;
	if (!pol->sorted) {
		for (i = 0; i < pol->nentries; i++)
			if (strcmp(pol->entries[i].who, who) == 0)
				return &pol->entries[i];
		return NULL;
	}
	key.who = (char *)who;
	return bsearch(&key, pol->entries, pol->nentries,
	    sizeof(*pol->entries), tg_quota_entry_cmp);
}
