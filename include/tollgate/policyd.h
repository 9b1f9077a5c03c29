/*
 * policyd.h - tollgate-policyd: the Postfix policy-delegation protocol,
 * the check registry and its configuration.
 *
 * A request is "name=value" lines ended by an empty line (Postfix
 * SMTPD_POLICY_README); the answer is "action=...\n\n".  The codec here
 * is pure: it parses bytes already read and formats replies, with no
 * I/O, so the event loop and the tests share it.
 *
 * A check has the shape of a milter module: a name (also its config
 * section), a params table and one start hook that answers an action
 * through pd_check_done.
 * The daemon runs the checks listed in [policyd] checks in that order;
 * the first that returns an action other than DUNNO decides.
 *
 * Threading: the daemon runs one event loop on one thread; checks are
 * called from it and answer through the store's asynchronous calls, so
 * many requests are checked at once on one thread.
 */
#ifndef TOLLGATE_POLICYD_H
#define TOLLGATE_POLICYD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "conf.h"
#include "dns.h"
#include "store.h"
#include "util.h"

/* Postfix sends about 30 attributes of a few hundred bytes at most. */
#define PD_LINE_MAX	8192	/* one "name=value" line, without LF */
#define PD_ATTRS_MAX	128	/* attributes in one request */
#define PD_REQUEST_MAX	65536	/* one request, all its lines */
#define PD_ACTION_MAX	512	/* an action sent back, without "action=" */

struct pd_attr {
	char	*name;
	char	*value;
};

/*
 * One parsed request.  malformed is set (with why) when the request
 * was complete but cannot be trusted: a line without '=', a bad or
 * duplicate name, a NUL byte.  Unknown names are kept and ignored.
 */
struct pd_request {
	struct pd_attr	 attrs[PD_ATTRS_MAX];
	size_t		 nattrs;
	bool		 malformed;
	char		 why[128];
};

enum pd_parse {
	PD_PARSE_MORE = 0,	/* no complete request yet */
	PD_PARSE_DONE,		/* *req filled, *used bytes consumed */
	PD_PARSE_TOO_MUCH	/* a limit above is exceeded: disconnect */
};

/*
 * pd_proto_parse - the first request in buf[0..len).  DONE fills req
 * (which pd_request_clear must release) and *used; MORE and TOO_MUCH
 * leave req empty.  Bytes are anything: NUL and 8-bit bytes make a
 * request malformed, never a crash.
 */
enum pd_parse	 pd_proto_parse(const char *buf, size_t len, size_t *used,
		    struct pd_request *req);
void		 pd_request_clear(struct pd_request *);
/* pd_request_get - the value of name, or NULL when absent (borrowed) */
const char	*pd_request_get(const struct pd_request *, const char *name);
/* pd_proto_reply - append "action=ACTION\n\n", ACTION made printable
 * and cut to PD_ACTION_MAX bytes */
void		 pd_proto_reply(struct tg_buf *, const char *action);
/* pd_action_ok - whether text is a Postfix access(5) action we send */
bool		 pd_action_ok(const char *text);

/* What a check sees at start-up. */
struct pd_env {
	struct tg_store		*store;
	struct tg_store_async	*astore;	/* on the daemon's loop */
	struct tg_dns		*dns;
};

/*
 * One request's run through the checks.  The daemon fills req, done
 * and arg, and calls pd_checks_start; action, note and err belong to
 * the job (pd_checks_start initialises them, pd_job_fini frees them).
 * done runs exactly once, maybe from inside pd_checks_start (a check
 * that needs no store), else from the loop; the job and req must stay
 * until then.  st is TG_OK with the deciding action in action ("DUNNO"
 * when no check objects) and key=value fields in note; another status
 * means a check could not decide (the store failed, err says why) and
 * the daemon answers default_action.
 */
struct pd_job {
	const struct pd_request	*req;
	void			(*done)(struct pd_job *);
	void			*arg;		/* the daemon's */
	struct tg_buf		 action;
	struct tg_buf		 note;
	struct tg_err		 err;
	enum tg_status		 st;
	size_t			 next;		/* pd_checks_start's */
	bool			 client_gone;	/* the daemon's: no answer
						 * will reach the client */
};

/*
 * A check.  start begins the check of job->req: it may add key=value
 * fields to job->note and, to object, put an action in job->action
 * ("" or "DUNNO": no objection, the next check runs), then calls
 * pd_check_done exactly once, from inside start or from a store
 * callback; any status but TG_OK with job->err filled means it could
 * not decide.  Between start and pd_check_done the loop serves other
 * connections: a check keeps its state in memory of its own, never in
 * globals.  The job outlives the check's call to pd_check_done.
 */
struct pd_check {
	const char		*name;		/* also its config section */
	const struct tg_param	*params;	/* ends with TG_PARAM_END */
	enum tg_status	(*init)(const struct pd_env *, struct tg_err *);
	void		(*fini)(void);
	void		(*start)(struct pd_job *);
};

/* pd_check_done - a check's answer for job; the next check may start */
void	pd_check_done(struct pd_job *, enum tg_status);

/* pd_note_add - append ' key="value"' to a note, value escaped: text
 * from the request can never make a field of its own */
void	pd_note_add(struct tg_buf *, const char *, const char *);

extern const struct pd_check pd_check_greylist;
extern const struct pd_check pd_check_quota;
/* pd_greylist_set_clock - tests only: greylisting's idea of now */
void	pd_greylist_set_clock(time_t (*)(void));
/* pd_greylist_delay - [greylist] delay as loaded, in seconds (for
 * tollgatectl greylist show: when a waiting triplet passes) */
long	pd_greylist_delay(void);

/* [policyd] settings. */
struct pd_conf {
	char	*listen;		/* inet:PORT@ADDR, inet6:..., unix:PATH */
	char	*pid_file;
	char	*user;			/* empty: [core] user */
	char	*group;			/* empty: [core] group */
	char	*socket_owner;		/* unix socket */
	char	*socket_group;
	char	*socket_mode;		/* octal */
	long	 max_clients;
	long	 idle_timeout;		/* seconds */
	char	*default_action;
	char	*checks;
	char	*metrics_listen;	/* Prometheus endpoint; empty: none */
	long	 sweep_interval;	/* seconds */
	long	 drain_timeout;		/* seconds: stop, or hand-over */
};
extern struct pd_conf pd_conf;

#define PD_SECTIONS_MAX	8

/* pd_sections - [policyd] and one section per built-in check, for the
 * loader (the milter's registry lists them too: one shared conf.d) */
const struct tg_conf_section *pd_sections(size_t *n);

/*
 * pd_checks_init - validate [policyd] and init the checks it enables,
 * in order; pd_checks_fini undoes it.  pd_checks_start runs them over
 * job->req, one after another, the first objection deciding (struct
 * pd_job above); pd_job_fini releases what a job holds.
 */
enum tg_status	 pd_checks_init(const struct pd_env *, struct tg_err *);
/*
 * pd_checks_check - tollgatectl config check: what pd_checks_init
 * validates, each problem to fn(arg, text), every enabled check's init
 * tried and undone; how many problems.  Init only keeps env's store
 * handles for later requests, so they may be NULL here.
 */
size_t		 pd_checks_check(const struct pd_env *, tg_conf_report_fn,
		    void *);
void		 pd_checks_fini(void);
void		 pd_checks_start(struct pd_job *);
void		 pd_job_fini(struct pd_job *);

#endif
