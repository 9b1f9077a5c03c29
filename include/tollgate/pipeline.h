/*
 * pipeline.h - running the enabled modules over SMTP stages.
 *
 * The milter daemon and `tollgatectl scan` both drive messages through
 * this code: the daemon from libmilter callbacks, scan from files.  Start-up
 * loads the configuration of the core and of every registered module,
 * makes the resolver and calls each enabled module's init.
 */
#ifndef TOLLGATE_PIPELINE_H
#define TOLLGATE_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "module.h"
#include "util.h"

/* Settings of the core, from [core] and [milter]. */
struct tg_core_conf {
	char	*authserv_id;		/* empty: the host name */
	char	*internal_networks;
	char	*modules;		/* enabled modules, in registry order */
	char	*metrics_listen;	/* Prometheus endpoint; empty: none */
	char	*socket;		/* milter socket */
	char	*pid_file;
	char	*user;			/* run as; both daemons */
	char	*group;
	char	*umask;			/* octal */
	bool	 allow_root;
	char	*socket_owner;		/* unix milter socket */
	char	*socket_group;
	char	*socket_mode;		/* octal */
	long	 max_header_bytes;	/* per message; more is a bad message */
	long	 drain_timeout;		/* seconds: stop, or hand-over */
	int	 log_level;
	int	 log_format;		/* enum tg_log_format */
};
extern struct tg_core_conf tg_core_conf;

struct tg_pipeline_opts {
	const char	*confdir;	/* directory or file; NULL: defaults */
	const char	*conf_text;	/* instead of confdir (tests) */
	const char *const *zone_files;	/* extra local DNS data */
	size_t		 nzone_files;
	bool		 force_offline;	/* scan: never use the network */
	/*
	 * tollgatectl config check: each problem goes to report(report_arg,
	 * text), and start-up goes on where it can: the other keys and
	 * files, the other modules' inits (not when the resolver failed,
	 * which they all use).  The call then fails at the end.  NULL: the
	 * first problem stops start-up, in err.
	 */
	tg_conf_report_fn report;
	void		*report_arg;
};

/* tg_pipeline_init - load config, make the resolver, init the modules */
enum tg_status	tg_pipeline_init(const struct tg_pipeline_opts *,
		    struct tg_err *);
/* tg_pipeline_load - config and resolver only, no module init: for
 * tollgate-policyd, which reads the same conf.d; fini undoes it */
enum tg_status	tg_pipeline_load(const struct tg_pipeline_opts *,
		    struct tg_err *);
void		tg_pipeline_fini(void);
/* tg_pipeline_sections - every config section, for `config` commands */
const struct tg_conf_section *tg_pipeline_sections(size_t *);
struct tg_dns	*tg_pipeline_dns(void);
/* tg_pipeline_wants - whether any enabled module has that stage hook */
enum tg_stage {
	TG_STAGE_CONNECT, TG_STAGE_HELO, TG_STAGE_ENVFROM, TG_STAGE_ENVRCPT,
	TG_STAGE_HEADER, TG_STAGE_EOH, TG_STAGE_BODY, TG_STAGE_EOM
};
bool		tg_pipeline_wants(enum tg_stage);

/*
 * A connection's context.  The driver (milter glue or scan) makes one per
 * SMTP connection and feeds the stages in order; the stage calls return
 * the verdict for that stage.  Macros come from a callback so the driver
 * need not copy them.
 */
typedef const char *(*tg_macro_fn)(void *, const char *);
struct tg_ctx	*tg_ctx_new(tg_macro_fn, void *);
struct tg_ctx	*tg_ctx_free(struct tg_ctx *);	/* accepts NULL */

enum tg_verdict	tg_stage_connect(struct tg_ctx *, const char *hostname,
		    const char *addr);
enum tg_verdict	tg_stage_helo(struct tg_ctx *, const char *);
enum tg_verdict	tg_stage_envfrom(struct tg_ctx *, const char *);
enum tg_verdict	tg_stage_envrcpt(struct tg_ctx *, const char *);
enum tg_verdict	tg_stage_header(struct tg_ctx *, const char *, const char *);
enum tg_verdict	tg_stage_eoh(struct tg_ctx *);
enum tg_verdict	tg_stage_body(struct tg_ctx *, const unsigned char *, size_t);
/* tg_stage_eom - runs eom hooks and logs the decision line */
enum tg_verdict	tg_stage_eom(struct tg_ctx *);
/* tg_stage_abort - the message is abandoned; state is released */
void		tg_stage_abort(struct tg_ctx *);
/* tg_stage_done - after the driver applied the result: done hooks, release */
void		tg_stage_done(struct tg_ctx *);

/* After tg_stage_eom (or a rejecting stage), before tg_stage_done: */
enum tg_edit_kind { TG_EDIT_ADD, TG_EDIT_PREPEND, TG_EDIT_DELETE };
struct tg_edit {
	enum tg_edit_kind	 kind;
	const char		*name;
	const char		*value;	/* NULL for DELETE */
	size_t			 index;	/* DELETE: 1-based occurrence */
};
size_t		 tg_ctx_edits(const struct tg_ctx *, const struct tg_edit **);
/* the reply set with tg_ctx_reply, or NULL parts for the default */
void		 tg_ctx_get_reply(const struct tg_ctx *, const char **rcode,
		    const char **xcode, const char **text);
const char	*tg_ctx_decision(const struct tg_ctx *); /* the logged line */
bool		 tg_ctx_quarantined(const struct tg_ctx *, const char **);

/*
 * tg_scan_message - run one message (raw RFC 5322 text, LF or CRLF) through
 * every stage, as tollgatectl scan and tests do.  Fills the connection
 * from the given envelope.  Returns the final verdict; the ctx keeps the
 * edits and decision until tg_ctx_free.  *ctxp receives the ctx.
 */
struct tg_scan_env {
	const char		*client_addr;	/* NULL: local submission */
	const char		*client_name;
	const char		*helo;
	const char		*mail_from;	/* "<a@b>" or "a@b" */
	const char *const	*rcpts;
	size_t			 nrcpts;
	const char		*auth_user;	/* NULL: not authenticated */
	const char		*queue_id;
};
enum tg_verdict	tg_scan_message(const struct tg_scan_env *, const char *,
		    size_t, struct tg_ctx **);
/* tg_apply_edits - the message with the ctx's header edits applied */
char		*tg_apply_edits(const struct tg_ctx *, const char *, size_t,
		    size_t *);

/*
 * The daemons' common command line (tollgate-milter, tollgate-policyd):
 * -f foreground, -c confdir (default $sysconfdir/tollgate/conf.d), -p
 * where to listen, -P pid file, -u user[:group] to run as (overrides
 * the configuration's user and group), --print-defaults (every section the
 * pipeline knows, then exit 0).  A bad command line prints usage, with
 * listen_word naming -p's argument, and exits EX_USAGE.  Strings point
 * into argv.
 */
struct tg_daemon_args {
	const char	*confdir;
	const char	*listen;	/* NULL: from the configuration */
	const char	*pidfile;	/* NULL: from the configuration */
	const char	*user;		/* "user[:group]"; NULL: config */
	bool		 foreground;
};
void		tg_daemon_args(int, char **, const char *progname,
		    const char *listen_word, struct tg_daemon_args *);

#endif
