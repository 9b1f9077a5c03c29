/*
 * spam_int.h - the spam module's parts and what they hand each other.
 *
 * The module (spam.c) collects a message's header and body as the MTA
 * sends them, then at end of message:
 *   1. spam_mime_parse (spam_mime.c, GMime) turns the raw message into a
 *      struct spam_msg: decoded headers, rendered body text, URIs,
 *      attachments' names and types, within configured size limits;
 *   2. the rule engine (spam_rules*.c, PCRE2) runs the compiled
 *      SpamAssassin-syntax rules over it and adds each hit to a
 *      struct spam_score;
 *   3. Bayes (spam_bayes*.c) adds its BAYES_* hit from token counts in
 *      the store;
 *   4. DNS blocklists and the DKIM/SPF/DMARC results add theirs;
 *   5. the verdict and the X-Spam-* headers follow from the total.
 * tollgatectl scan and learn use the same parts on a message from a file.
 */
#ifndef TOLLGATE_SPAM_INT_H
#define TOLLGATE_SPAM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tollgate/buf.h"
#include "tollgate/conf.h"
#include "tollgate/util.h"

struct tg_store;
struct tg_dns;

/* ---- the extracted message (spam_mime.c) ---- */

/* What is scanned at most; beyond these, the rest is not looked at and
 * spam_msg.truncated says so. */
struct spam_limits {
	size_t	max_scan_bytes;		/* raw message bytes parsed */
	size_t	max_body_text;		/* rendered text kept, all parts */
	size_t	max_parts;		/* MIME parts visited */
	size_t	max_depth;		/* multipart / message/rfc822 nesting */
	size_t	max_uris;
	size_t	max_headers;		/* headers of the top-level block kept */
};

/* One header as received, in order.  name is as written (case kept);
 * raw is the value after "Name:" with folding removed (CRLF + WSP ->
 * the WSP), leading white space dropped, no final CRLF; decoded is raw
 * with RFC 2047 encoded-words decoded to UTF-8 (raw again when there
 * were none or they were broken).
 * (rules part, for spam_mime.c: every header of the header block, the
 * top-level Content-Type and Content-Transfer-Encoding too; rules
 * match them, e.g. Content-Type =~ /^text\/html/.  GMime keeps those on
 * the message's MIME part, not in g_mime_object_get_header_list() of
 * the message, and on 2026-12-02 they were missing from headers.) */
struct spam_header {
	char	*name;
	char	*raw;
	char	*decoded;
};

/* One leaf MIME part. */
struct spam_part {
	char	*type;		/* "text/plain", lowercase; "text/plain" if absent */
	char	*charset;	/* as declared, lowercase, or NULL */
	char	*filename;	/* Content-Disposition filename or type name=, or NULL */
	size_t	 decoded_size;	/* after transfer decoding */
	bool	 attachment;	/* Content-Disposition: attachment, or a filename */
	bool	 broken;	/* bad base64/QP, unknown charset, ... */
};

struct spam_msg {
	/* the message as received, headers and body, CRLF line ends,
	 * at most max_scan_bytes (SpamAssassin's "full") */
	const char		*full;
	size_t			 full_len;

	struct spam_header	*headers;
	size_t			 nheaders;

	/*
	 * SpamAssassin's "body": the Subject, then every text part
	 * decoded to UTF-8 with HTML rendered to text, as lines joined
	 * with '\n' (one paragraph per line, as SpamAssassin does).
	 */
	char			*body;
	size_t			 body_len;
	/* SpamAssassin's "rawbody": text parts transfer-decoded and
	 * converted to UTF-8, HTML left as markup, '\n' line ends */
	char			*rawbody;
	size_t			 rawbody_len;

	char			**uris;		/* as found, deduplicated */
	size_t			 nuris;
	char			**uri_domains;	/* lowercase host names, deduplicated */
	size_t			 nuri_domains;

	struct spam_part	*parts;
	size_t			 nparts;

	bool	 has_html;	/* a text/html part */
	bool	 truncated;	/* a limit cut the scan short */
	bool	 malformed;	/* the MIME structure was broken somewhere */
};

/*
 * spam_mime_parse - extract a message (header block, blank line, body;
 * CRLF or LF line ends) into a new struct spam_msg; never fails on bad
 * MIME (it records malformed and keeps what it could read).
 * spam_msg_free accepts NULL and returns NULL.
 */
struct spam_msg	*spam_mime_parse(const char *, size_t,
		    const struct spam_limits *);
struct spam_msg	*spam_msg_free(struct spam_msg *);

/* spam_msg_header - the n-th (0-based) header of that name
 * (case-insensitive), or NULL */
const struct spam_header *spam_msg_header(const struct spam_msg *,
		    const char *name, size_t n);

/* ---- the score (spam_score.c) ---- */

struct spam_hit {
	char	*name;		/* rule name: "SUBJ_ALL_CAPS", "BAYES_99" */
	double	 points;
	char	*describe;	/* one line, or NULL */
};

struct spam_score {
	struct spam_hit	*hits;
	size_t		 nhits;
	double		 total;
	bool		 partial;	/* a time or size limit cut checks short */
	/* CLOCK_MONOTONIC time after which checks stop (tv_sec 0: none);
	 * spam_rules_run looks at it every few rules */
	struct timespec	 deadline;
};

void	spam_score_init(struct spam_score *);
void	spam_score_fini(struct spam_score *);
/* spam_score_add - record a hit (name and describe are copied; a rule
 * already recorded is not added twice) */
void	spam_score_add(struct spam_score *, const char *name, double,
	    const char *describe);
bool	spam_score_has(const struct spam_score *, const char *name);
/* spam_score_set_deadline - stop checks seconds from now;
 * spam_score_late - whether that time has passed */
void	spam_score_set_deadline(struct spam_score *, double seconds);
bool	spam_score_late(const struct spam_score *);

/* ---- the rules (spam_rules*.c) ---- */

/*
 * A compiled rule set.  spam_rules_load reads SpamAssassin-syntax files
 * (a file, or every *.cf in a directory in name order) and compiles
 * every rule once; what it refused is counted, and each refusal logged
 * with file:line and why (a rule kind we do not run, a Perl-only eval,
 * a bad regex).  A rule set is read-only after load, shared by threads.
 */
struct spam_rules;

struct spam_rules_report {
	size_t	loaded;		/* rules that will run */
	size_t	skipped;	/* refused: unsupported kind, eval, plugin */
	size_t	errors;		/* refused: malformed line or regex */
};

enum tg_status	 spam_rules_load(struct spam_rules **, const char *paths,
		    struct spam_rules_report *, struct tg_err *);
struct spam_rules *spam_rules_free(struct spam_rules *);
/* spam_rules_run - every rule over msg; meta rules last; adds hits */
void		 spam_rules_run(const struct spam_rules *,
		    const struct spam_msg *, struct spam_score *);
/* spam_rules_score - a rule's points ("score" lines apply to rules run
 * elsewhere too: BAYES_99, RCVD_IN_*, DKIM_VALID...), false if none */
bool		 spam_rules_score(const struct spam_rules *, const char *name,
		    double *points);
/*
 * The load report's detail (rules part, for tollgatectl config check):
 * spam_rules_skip_reason gives the i-th group of skipped rules, e.g.
 * ("eval:check_rbl done by the DNSBL part", 14), false past the end;
 * spam_rules_error the i-th error "file:line: NAME: why", NULL past the
 * end; spam_rules_ignored how many non-rule settings (welcomelists,
 * plugin options) were read and not used.  Strings live as long as the
 * rule set.  Each refusal is also logged (skips at debug).
 */
bool		 spam_rules_skip_reason(const struct spam_rules *, size_t i,
		    const char **text, size_t *count);
const char	*spam_rules_error(const struct spam_rules *, size_t i);
size_t		 spam_rules_ignored(const struct spam_rules *);

/* ---- Bayes (spam_bayes*.c) ---- */

/*
 * Token counts live in the store under "bayes:<scope>:..." keys; scope
 * is "global" or a recipient domain.  spam_bayes_classify gives the
 * probability that msg is spam (0..1) or TG_NOTFOUND while too few
 * messages were learned.  spam_bayes_learn counts a message once:
 * learning it again with the same class does nothing, with the other
 * class moves it; forget takes it out.
 */
enum spam_class {
	SPAM_CLASS_HAM = 0,
	SPAM_CLASS_SPAM
};

enum tg_status	spam_bayes_classify(struct tg_store *, const char *scope,
		    const struct spam_msg *, double *prob, struct tg_err *);
enum tg_status	spam_bayes_learn(struct tg_store *, const char *scope,
		    const struct spam_msg *, enum spam_class, struct tg_err *);
enum tg_status	spam_bayes_forget(struct tg_store *, const char *scope,
		    const struct spam_msg *, struct tg_err *);
/* spam_bayes_rule - the BAYES_xx rule name for a probability */
const char	*spam_bayes_rule(double prob);

/*
 * Bayes additions (the bayes part, spam_bayes*.c).
 *
 * spam_bayes_params: Bayes' keys (bayes_min_spam, bayes_min_ham,
 * bayes_scope, bayes_auto_learn, bayes_auto_learn_spam,
 * bayes_auto_learn_ham), a NULL-terminated table the module registers
 * as the [bayes] section (conf.d/spam.conf shows them with their
 * defaults); spam_bayes_conf gives the values loaded.
 * Auto-learn is the module's: when auto_learn is on, learn a message
 * whose total without Bayes' own points is >= auto_learn_spam as spam,
 * <= auto_learn_ham as ham (SpamAssassin: 12.0 and 0.1), in the scope
 * bayes_scope says (SPAM_BAYES_SCOPE_DOMAIN: the recipient's domain).
 * spam_bayes_classify gives TG_NOTFOUND while fewer than min_spam spam
 * or min_ham ham were learned in the scope.
 */
enum spam_bayes_scope_kind {
	SPAM_BAYES_SCOPE_GLOBAL = 0,
	SPAM_BAYES_SCOPE_DOMAIN
};
struct spam_bayes_conf {
	long	min_spam;
	long	min_ham;
	int	scope;			/* enum spam_bayes_scope_kind */
	bool	auto_learn;
	long	auto_learn_spam;	/* points */
	long	auto_learn_ham;
};
extern const struct tg_param	spam_bayes_params[];
const struct spam_bayes_conf	*spam_bayes_conf(void);

/*
 * spam_bayes_train - learn (forget false) or forget a message, saying
 * what happened; spam_bayes_learn and spam_bayes_forget are this
 * without the outcome.  Forgetting a message never learned is
 * TG_NOTFOUND (cls is ignored when forgetting).
 */
enum spam_bayes_outcome {
	SPAM_BAYES_LEARNED = 0,	/* new: counted */
	SPAM_BAYES_MOVED,	/* was learned as the other class */
	SPAM_BAYES_ALREADY,	/* was learned as this class: nothing done */
	SPAM_BAYES_FORGOTTEN
};
enum tg_status	spam_bayes_train(struct tg_store *, const char *scope,
		    const struct spam_msg *, enum spam_class, bool forget,
		    enum spam_bayes_outcome *, struct tg_err *);
/* spam_bayes_counts - spam and ham messages learned in the scope */
enum tg_status	spam_bayes_counts(struct tg_store *, const char *scope,
		    int64_t *nspam, int64_t *nham, struct tg_err *);
/* spam_bayes_rule_extra - "BAYES_999" at 0.999 and above (it hits
 * beside BAYES_99, as in SpamAssassin), else NULL */
const char	*spam_bayes_rule_extra(double prob);

/*
 * DNS blocklists (spam_dnsbl.c, the mime+module part).  spam_dnsbl_parse
 * reads the [spam] dnsbl and uribl settings ("zone:127.0.0.2=3.0,any=1"
 * ...); the set is read-only afterwards.  spam_dnsbl_start_ip starts the
 * address's lookups in every DNSBL zone, spam_dnsbl_start_uri those of
 * at most max host names in every URIBL zone (NULL: nothing to ask).
 * spam_dnsbl_wait collects them (each bounded by the resolver's
 * timeout), adds RCVD_IN_<ZONE> / URIBL_<ZONE> hits (points from the
 * map, or from rules' score line for that name), appends each failed
 * query to failed and returns how many failed; spam_dnsbl_q_free
 * cancels what was not collected.
 */
struct spam_dnsbl;
struct spam_dnsbl_q;
enum tg_status	 spam_dnsbl_parse(struct spam_dnsbl **, const char *dnsbl,
		    const char *uribl, struct tg_err *);
struct spam_dnsbl *spam_dnsbl_free(struct spam_dnsbl *);
size_t		 spam_dnsbl_count(const struct spam_dnsbl *, bool uri);
const char	*spam_dnsbl_rule(const struct spam_dnsbl *, size_t);
struct spam_dnsbl_q *spam_dnsbl_start_ip(const struct spam_dnsbl *,
		    struct tg_dns *, const char *ip);
struct spam_dnsbl_q *spam_dnsbl_start_uri(const struct spam_dnsbl *,
		    struct tg_dns *, char *const *domains, size_t ndomains,
		    size_t max);
size_t		 spam_dnsbl_wait(struct spam_dnsbl_q *,
		    const struct spam_rules *, struct spam_score *,
		    struct tg_buf *failed);
struct spam_dnsbl_q *spam_dnsbl_q_free(struct spam_dnsbl_q *);

#endif
