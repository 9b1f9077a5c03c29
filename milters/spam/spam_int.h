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

#include "tollgate/buf.h"
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
};

/* One header as received, in order.  name is as written (case kept);
 * raw is the value after "Name:" with folding removed (CRLF + WSP ->
 * the WSP), leading white space dropped, no final CRLF; decoded is raw
 * with RFC 2047 encoded-words decoded to UTF-8 (raw again when there
 * were none or they were broken). */
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
};

void	spam_score_init(struct spam_score *);
void	spam_score_fini(struct spam_score *);
/* spam_score_add - record a hit (name and describe are copied; a rule
 * already recorded is not added twice) */
void	spam_score_add(struct spam_score *, const char *name, double,
	    const char *describe);
bool	spam_score_has(const struct spam_score *, const char *name);

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

#endif
