/*
 * spam_rules_int.h - the rule engine's own parts: the compiled rule,
 * the regex front end (Perl syntax to PCRE2, literal prefilter), the
 * expression trees of meta rules and "if" lines, and the native evals.
 *
 * Only spam_rules*.c include this file; the rest of the module sees
 * struct spam_rules through spam_int.h.
 */
#ifndef TOLLGATE_SPAM_RULES_INT_H
#define TOLLGATE_SPAM_RULES_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "spam_int.h"

/* SpamAssassin's score sets: 0 no net/no Bayes, 1 net, 2 Bayes, 3 both.
 * tollgate's rules score with set 2 (net tests off, Bayes on): the rules
 * it runs here are local.  Rules with tflags net (RCVD_IN_*, URIBL_*)
 * are the DNSBL part's, which does query: their score is set 3, which
 * spam_rules_score gives it, so that a DNSBL hit is not worth 0. */
#define SPAM_RULES_SCORESET	2
#define SPAM_RULES_SCORESET_NET	3

/* What SpamAssassin version "if (version >= ...)" sees: 4.0.0, the
 * syntax level of Debian 12's rule set that we follow. */
#define SPAM_RULES_SA_VERSION	4.000000

enum spam_rule_kind {
	SPAM_RULE_HEADER = 0,
	SPAM_RULE_EXISTS,
	SPAM_RULE_BODY,
	SPAM_RULE_RAWBODY,
	SPAM_RULE_URI,
	SPAM_RULE_FULL,
	SPAM_RULE_META,
	SPAM_RULE_EVAL
};

/* How a header rule reads its header. */
enum spam_hdr_form {
	SPAM_HDR_DECODED = 0,
	SPAM_HDR_RAW,
	SPAM_HDR_ADDR,
	SPAM_HDR_NAME
};

/* What a prefilter literal is searched in (one AC pass each). */
enum spam_target {
	SPAM_TGT_HEADERS = 0,
	SPAM_TGT_BODY,
	SPAM_TGT_RAWBODY,
	SPAM_TGT_URIS,
	SPAM_TGT_FULL,
	SPAM_TGT_COUNT
};

/* Prefilter literals: at most this long, and this many for one regex
 * (one per alternative of (?:a|b|c)). */
#define SPAM_LIT_MAX		64
#define SPAM_LIT_SET_MAX	32

/* A compiled regex with the literals (lowercase) one of which every
 * match contains; none (nlits 0): always run. */
struct spam_re {
	pcre2_code	*code;
	long		*lits;		/* indexes into the literal set */
	size_t		 nlits;
	bool		 too_large;	/* not compiled: PCRE2's size limit */
};

/* ---- expressions (spam_rules_expr.c) ---- */

enum spam_expr_op {
	SPAM_EX_NUM = 0, SPAM_EX_RULE, SPAM_EX_NOT, SPAM_EX_NEG,
	SPAM_EX_AND, SPAM_EX_OR, SPAM_EX_ADD, SPAM_EX_SUB, SPAM_EX_MUL,
	SPAM_EX_DIV, SPAM_EX_GT, SPAM_EX_GE, SPAM_EX_LT, SPAM_EX_LE,
	SPAM_EX_EQ, SPAM_EX_NE
};

struct spam_expr {
	enum spam_expr_op	 op;
	double			 num;
	char			*name;		/* SPAM_EX_RULE, until resolved */
	long			 rule;		/* rule index; -1: not defined */
	struct spam_expr	*a, *b;
};

/*
 * spam_expr_parse - Perl-like expression: || && ! ( ) + - * / > >= < <=
 * == !=, numbers and rule names.  For "if" lines, leaf is called on
 * "version", "plugin(X)" and "can(X)" and gives their value.  NULL and
 * err->text on a syntax error.
 */
typedef bool (*spam_expr_leaf_fn)(const char *name, double *);
struct spam_expr *spam_expr_parse(const char *, spam_expr_leaf_fn,
		    struct tg_err *);
struct spam_expr *spam_expr_free(struct spam_expr *);
/* spam_expr_eval - with vals[rule] the value of each resolved rule */
double		  spam_expr_eval(const struct spam_expr *, const double *vals);

/* ---- regexes (spam_rules_re.c) ---- */

/* A set of literals searched all at once (Aho-Corasick). */
struct spam_litset;

struct spam_litset *spam_litset_new(void);
struct spam_litset *spam_litset_free(struct spam_litset *);
/* spam_litset_add - index of the literal (lowercase), added once */
long		 spam_litset_add(struct spam_litset *, const char *, size_t);
void		 spam_litset_build(struct spam_litset *);
size_t		 spam_litset_count(const struct spam_litset *);
const char	*spam_litset_get(const struct spam_litset *, long);
/* spam_litset_scan - set found[i] |= bit for each literal in text,
 * compared case-insensitively (ASCII) */
void		 spam_litset_scan(const struct spam_litset *, const char *,
		    size_t, unsigned char *found, unsigned char bit);
/* spam_litset_mark_nl - found[i] |= bit for each literal holding '\n' */
void		 spam_litset_mark_nl(const struct spam_litset *,
		    unsigned char *found, unsigned char bit);

/*
 * spam_re_compile - a Perl regex as SpamAssassin writes it ("/re/flags",
 * "m{re}flags", "m!re!flags"), at *sp; advances *sp past it.  Compiles
 * with PCRE2 (JIT when available) and adds its required literal to lits.
 * TG_PERM with err->text saying why on a bad or unsupported regex.
 */
enum tg_status	spam_re_compile(const char **sp, struct spam_litset *,
		    struct spam_re *, struct tg_err *);
void		spam_re_fini(struct spam_re *);

/* spam_re_literals - literals one of which every match of pattern must
 * contain, lowercase, the set that filters best (longest shortest
 * member); their number, 0 when none is certain or more than max */
size_t		spam_re_literals(const char *pattern, size_t, bool extended,
		    char out[][SPAM_LIT_MAX + 1], size_t max);

/* ---- native evals (spam_rules_eval.c) ---- */

#define SPAM_EVAL_MAXARGS	4

struct spam_eval_args {
	char	*v[SPAM_EVAL_MAXARGS];
	size_t	 n;
};

typedef int (*spam_eval_fn)(const struct spam_msg *,
    const struct spam_eval_args *);

/*
 * spam_eval_lookup - the native function for "eval:name(args)", or
 * NULL.  *why says why it is refused: another part of tollgate does it
 * (DNSBL, Bayes), or it is not implemented.
 */
spam_eval_fn	spam_eval_lookup(const char *name, const char **why);
/* spam_eval_check_args - false, with err, when args do not fit fn */
bool		spam_eval_check_args(const char *name,
		    const struct spam_eval_args *, struct tg_err *);

/* Header access shared by the run and the evals (spam_rules_run.c). */

/* spam_hdr_get - text of header name (all instances, '\n'-joined) in
 * form, or of the pseudo-headers ALL, ToCc, MESSAGEID, EnvelopeFrom;
 * false when absent.  The text is appended to out. */
bool		spam_hdr_get(const struct spam_msg *, const char *name,
		    enum spam_hdr_form, struct tg_buf *out);
/* spam_addr_first, spam_addr_name - the first address or display name
 * of an address-list header value (SpamAssassin's :addr and :name) */
void		spam_addr_first(const char *, struct tg_buf *);
void		spam_addr_name(const char *, struct tg_buf *);

/* ---- ReplaceTags (spam_rules_tags.c) ---- */

enum spam_tag_kind {
	SPAM_TAG_TAG = 0,	/* replace_tag */
	SPAM_TAG_PRE,		/* replace_pre */
	SPAM_TAG_INTER,		/* replace_inter */
	SPAM_TAG_POST		/* replace_post */
};

struct spam_tag {
	enum spam_tag_kind	 kind;
	char			*name;
	char			*value;
};

struct spam_tags {
	struct spam_tag	*v;
	size_t		 n;
};

void	spam_tags_set(struct spam_tags *, enum spam_tag_kind, const char *name,
	    const char *value);
void	spam_tags_fini(struct spam_tags *);
/* spam_tags_apply - re with its tags replaced, a new string */
char	*spam_tags_apply(const struct spam_tags *, const char *re);

/* ---- the rule set (spam_rules.c) ---- */

#define SPAM_TF_MULTIPLE	0x01
#define SPAM_TF_NICE		0x02
#define SPAM_TF_NET		0x04
#define SPAM_TF_LEARN		0x08
#define SPAM_TF_USERCONF	0x10

struct spam_rule {
	char			*name;
	enum spam_rule_kind	 kind;
	char			*where;		/* "file:line" defined */
	/* header and exists rules */
	char			*hdr;
	enum spam_hdr_form	 form;
	bool			 negate;	/* !~ */
	char			*unset;		/* [if-unset: STRING], or NULL */
	struct spam_re		 re;
	struct spam_expr	*meta;
	spam_eval_fn		 eval;
	struct spam_eval_args	 args;
	unsigned int		 tflags;
	long			 maxhits;	/* 0: no limit */
	double			 score;
	bool			 has_score;
	char			*describe;
	bool			 enabled;	/* runs */
	size_t			 order;		/* meta evaluation order */
};

/* A score line for a name no rule of ours defines (BAYES_99...). */
struct spam_score_entry {
	char	*name;
	double	 score;
};

struct spam_reason {
	char	*text;
	size_t	 count;
};

struct spam_rules {
	struct spam_rule	*rules;
	size_t			 nrules;
	struct spam_score_entry	*scores;	/* sorted by name after load */
	size_t			 nscores;
	struct spam_litset	*lits;
	size_t			*metas;		/* rule indexes, dependency order */
	size_t			 nmetas;
	struct spam_reason	*reasons;	/* skipped, grouped */
	size_t			 nreasons;
	char			**errors;	/* "file:line: why" */
	size_t			 nerrors;
	size_t			 ignored;	/* non-rule settings not used */
	/* tests and bench only: run every regex everywhere, to check
	 * that the prefilter changes no result */
	bool			 prefilter_off;
};

/* ---- the loader (spam_rules.c, spam_rules_parse.c) ---- */

#define SPAM_IF_MAXDEPTH	32

/* A name's pieces while files are read. */
struct spam_entry {
	struct spam_rule	 r;
	bool			 defined;
	char			*skip;		/* why refused, grouped */
	char			*error;		/* "file:line: why" */
	char			*src;		/* the regex as written */
	bool			 replace;	/* listed in replace_rules */
	double			 scores[4];
	bool			 scored;
};

struct spam_if {
	bool	 on;		/* this frame's lines are read */
	bool	 taken;		/* the condition held */
	bool	 parent_on;
	char	*why;		/* why off: "ifplugin X not in tollgate" */
};

struct spam_loader {
	struct spam_entry	*ents;
	size_t			 nents;
	size_t			*hash;		/* index + 1; 0: empty */
	size_t			 hashsz;
	struct spam_rules	*rs;
	struct spam_if		 ifs[SPAM_IF_MAXDEPTH];
	size_t			 nifs;
	struct spam_tags	 tags;
	int			 incdepth;
	const char		*file;
	size_t			 line;
};

/* shared by the loader's two files (spam_rules.c) */
struct spam_entry *spam_entry(struct spam_loader *, const char *name);
void		 spam_rule_clear(struct spam_entry *);
void		 spam_line_error(struct spam_loader *, const char *why);
void		 spam_refuse(struct spam_loader *, struct spam_entry *,
		    bool error, const char *why);
char		*spam_word(char **);
bool		 spam_valid_name(const char *);
/* the directives (spam_rules_parse.c): the words after it in rest */
void		 spam_define(struct spam_loader *, const char *kind, char *);
void		 spam_foreign(struct spam_loader *, const char *kind, char *);
void		 spam_score_line(struct spam_loader *, char *);
void		 spam_tflags_line(struct spam_loader *, char *);
void		 spam_describe_line(struct spam_loader *, char *);
void		 spam_replace_line(struct spam_loader *, const char *what,
		    char *);

#endif
