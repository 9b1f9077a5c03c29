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
 * section), a params table and one check hook that returns an action.
 * The daemon runs the checks listed in [policyd] checks in that order;
 * the first that returns an action other than DUNNO decides.
 *
 * Threading: the daemon runs one event loop on one thread; checks are
 * called from it and may block on the store for at most its timeout.
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
	struct tg_store	*store;
	struct tg_dns	*dns;
};

/*
 * A check.  check returns TG_OK with the action in *action ("" or
 * "DUNNO": no objection, the next check runs) and may add key=value
 * fields to *note for the request's log line.  Any other status means
 * it could not decide (the store failed): the daemon answers the
 * default action, and the check has filled err.
 */
struct pd_check {
	const char		*name;		/* also its config section */
	const struct tg_param	*params;	/* ends with TG_PARAM_END */
	enum tg_status	(*init)(const struct pd_env *, struct tg_err *);
	void		(*fini)(void);
	enum tg_status	(*check)(const struct pd_request *, struct tg_buf *action,
			    struct tg_buf *note, struct tg_err *);
};

extern const struct pd_check pd_check_greylist;
extern const struct pd_check pd_check_quota;
/* pd_greylist_set_clock - tests only: greylisting's idea of now */
void	pd_greylist_set_clock(time_t (*)(void));

/* [policyd] settings. */
struct pd_conf {
	char	*listen;		/* inet:PORT@ADDR, inet6:..., unix:PATH */
	char	*pid_file;
	long	 max_clients;
	long	 idle_timeout;		/* seconds */
	char	*default_action;
	char	*checks;
	long	 sweep_interval;	/* seconds */
};
extern struct pd_conf pd_conf;

#define PD_SECTIONS_MAX	8

/* pd_sections - [policyd] and one section per built-in check, for the
 * loader (the milter's registry lists them too: one shared conf.d) */
const struct tg_conf_section *pd_sections(size_t *n);

/*
 * pd_checks_init - validate [policyd] and init the checks it enables,
 * in order; pd_checks_fini undoes it.  pd_checks_run runs them over a
 * request: TG_OK with the deciding action in *action ("DUNNO" when no
 * check objects), other statuses as for a check.
 */
enum tg_status	 pd_checks_init(const struct pd_env *, struct tg_err *);
void		 pd_checks_fini(void);
enum tg_status	 pd_checks_run(const struct pd_request *,
		    struct tg_buf *action, struct tg_buf *note,
		    struct tg_err *);

#endif
