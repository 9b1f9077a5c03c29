/*
 * module.h - the milter module interface and the per-message context.
 *
 * A module is a const struct tg_module listed in the pipeline's registry.
 * At each SMTP stage the pipeline calls the enabled modules in registry
 * order.  A module keeps its per-message state in tg_ctx_state(ctx)
 * (zeroed at the start of each message, released after end of message or
 * abort) and acts on the message only through the tg_ctx_* calls below.
 * Callbacks run concurrently on libmilter's connection threads: module
 * globals are read-only after init.
 *
 * Reload (SIGHUP) and restart: module globals stay read-only for the
 * life of the process, because a reload is a hand-over to a fresh
 * process, not a change in place.  On SIGHUP tollgate-milter starts a
 * new copy of itself (same command line); the new process loads the
 * whole configuration directory and inits every enabled module exactly
 * as at start-up (keys, signing and key tables, rules files, tenant
 * tables, exempt lists: all read again).  If that fails the new process
 * exits, the old one logs one line saying why (file:line from the
 * loader, or the module's init error) and goes on serving with its
 * settings.  If it succeeds the old process closes its listening socket,
 * the new one opens it and serves every new connection, and the old one
 * drains: connections already open finish their messages with the
 * settings they started with, bounded by [milter] drain_timeout, then it
 * exits 0.  SIGTERM and SIGINT are the same drain without a successor.
 * So a module needs nothing for reload: read your settings in init,
 * build what you need there, free it in fini, never re-read files
 * later.  A module must not keep state that has to outlive the process
 * other than in the store (counters live in the store, which both
 * processes open).  Settings that cannot change by reload, only by a
 * restart: the run user and group (the new process already runs as the
 * old user; a different one is refused).  tollgate-policyd does the same,
 * and there the listening socket is passed to the new process, so no
 * connection is refused during the hand-over.
 */
#ifndef TOLLGATE_MODULE_H
#define TOLLGATE_MODULE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "util.h"

#define TG_MODULE_ABI	1

enum tg_verdict {
	TG_CONTINUE = 0,	/* no objection; the next module runs */
	TG_ACCEPT,		/* stop filtering this message, deliver it */
	TG_QUARANTINE,		/* deliver into the MTA's hold queue */
	TG_TEMPFAIL,		/* 4xx; text set with tg_ctx_reply() */
	TG_REJECT,		/* 5xx; text set with tg_ctx_reply() */
	TG_DISCARD		/* accept, then drop silently */
};

/* tg_verdict_name - "continue", "accept", "reject"... */
const char	*tg_verdict_name(enum tg_verdict);

struct tg_ctx;
struct tg_dns;

/* The connecting client as the MTA reports it. */
struct tg_peer {
	const char	*hostname;	/* "[192.0.2.1]" if unresolved */
	const char	*addr;		/* text form; NULL if unknown (local) */
};

/* What init gets: shared services, valid for the process lifetime. */
struct tg_env {
	struct tg_dns	*dns;
	const char	*confdir;
};

struct tg_module {
	const char		*name;		/* also the config section */
	unsigned int		 abi;		/* must equal TG_MODULE_ABI */
	const struct tg_param	*params;	/* ends with TG_PARAM_END */
	size_t			 msg_state_size;
	/* After config load; TG_OK or an error in err (start-up fails). */
	enum tg_status	(*init)(const struct tg_env *, struct tg_err *);
	void		(*fini)(void);			/* at exit */
	/* Stage hooks; leave NULL for stages the module ignores. */
	enum tg_verdict	(*connect)(struct tg_ctx *, const struct tg_peer *);
	enum tg_verdict	(*helo)(struct tg_ctx *, const char *);
	enum tg_verdict	(*envfrom)(struct tg_ctx *, const char *);
	enum tg_verdict	(*envrcpt)(struct tg_ctx *, const char *);
	/*
	 * name, value: value keeps its leading space and folding, CRLF.
	 * The MTA gets no reply per header or body chunk (that costs it a
	 * round trip each), so a verdict from header takes effect at eoh
	 * and one from body at eom.
	 */
	enum tg_verdict	(*header)(struct tg_ctx *, const char *, const char *);
	enum tg_verdict	(*eoh)(struct tg_ctx *);
	/* body chunks, CRLF line ends, in order */
	enum tg_verdict	(*body)(struct tg_ctx *, const unsigned char *, size_t);
	enum tg_verdict	(*eom)(struct tg_ctx *);
	void		(*abort)(struct tg_ctx *);	/* message abandoned */
	/*
	 * After the MTA was told the message's final verdict (at end of
	 * message, or at the stage that ended it early): what every
	 * module's reservations should follow.  Not called after abort.
	 */
	void		(*done)(struct tg_ctx *, enum tg_verdict);
};

/*
 * Reading the message.  Strings are borrowed and stay valid until the end
 * of the message (envelope, auth) or of the connection (peer, helo).
 */
const char		*tg_ctx_queue_id(const struct tg_ctx *);   /* or "-" */
const struct tg_peer	*tg_ctx_peer(const struct tg_ctx *);
const char		*tg_ctx_helo(const struct tg_ctx *);	/* or NULL */
/* tg_ctx_auth_user - the SASL login name, or NULL if not authenticated */
const char		*tg_ctx_auth_user(const struct tg_ctx *);
/* tg_ctx_internal - client address is in [core] internal_networks */
bool			 tg_ctx_internal(const struct tg_ctx *);
/* tg_ctx_outbound - authenticated or internal: mail we sign, not judge */
bool			 tg_ctx_outbound(const struct tg_ctx *);
const char		*tg_ctx_mail_from(const struct tg_ctx *); /* "<...>" */
size_t			 tg_ctx_rcpt_count(const struct tg_ctx *);
const char		*tg_ctx_rcpt(const struct tg_ctx *, size_t);
/* tg_ctx_macro - an MTA macro such as "{daemon_name}", or NULL */
const char		*tg_ctx_macro(const struct tg_ctx *, const char *);
/* tg_ctx_authserv_id - the authserv-id of our Authentication-Results */
const char		*tg_ctx_authserv_id(const struct tg_ctx *);

/* This module's zeroed per-message state (msg_state_size bytes). */
void	*tg_ctx_state(struct tg_ctx *);
/* Another module's state, for its public accessors; NULL if not enabled. */
void	*tg_ctx_state_of(struct tg_ctx *, const struct tg_module *);

/* Per-message memory, released with the message. */
void	*tg_ctx_alloc(struct tg_ctx *, size_t);	/* zeroed */
char	*tg_ctx_strdup(struct tg_ctx *, const char *);
/* tg_ctx_defer - call fn(p) when the message's memory is released */
void	 tg_ctx_defer(struct tg_ctx *, void (*)(void *), void *);

/*
 * Acting on the message.  Edits are collected and applied by the pipeline
 * at end of message, in the order made.
 */
/* tg_ctx_reply - SMTP reply for a TEMPFAIL/REJECT verdict: "550", "5.7.1" */
void	tg_ctx_reply(struct tg_ctx *, const char *rcode, const char *xcode,
	    const char *, ...) TG_PRINTF(4, 5);
/* tg_ctx_add_header - append a header at the end of the header block */
void	tg_ctx_add_header(struct tg_ctx *, const char *, const char *);
/* tg_ctx_prepend_header - insert a header at the top (trace headers) */
void	tg_ctx_prepend_header(struct tg_ctx *, const char *, const char *);
/* tg_ctx_delete_header - remove the n-th (1-based) header of that name */
void	tg_ctx_delete_header(struct tg_ctx *, const char *, size_t);
/*
 * tg_ctx_authres - one resinfo for the single Authentication-Results
 * header the pipeline adds: "dkim=pass header.d=example.com ...".
 */
void	tg_ctx_authres(struct tg_ctx *, const char *, ...) TG_PRINTF(2, 3);
/*
 * tg_ctx_result - this module's fields in the decision line, key=value
 * text without the module name ("pass", or "pass d=example.com").
 */
void	tg_ctx_result(struct tg_ctx *, const char *, ...) TG_PRINTF(2, 3);

#endif
