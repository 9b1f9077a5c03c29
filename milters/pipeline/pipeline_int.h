/*
 * pipeline_int.h - the context's insides, shared by the pipeline's files
 * only.  Modules see struct tg_ctx through module.h's accessors.
 */
#ifndef TOLLGATE_PIPELINE_INT_H
#define TOLLGATE_PIPELINE_INT_H

#include "tollgate/buf.h"
#include "tollgate/conf.h"
#include "tollgate/module.h"
#include "tollgate/pipeline.h"

#define TG_MAX_MODULES	16

struct tg_ctx_block;

/* Everything about one message; made at MAIL FROM, freed at its end. */
struct tg_ctx_msg {
	struct tg_ctx_block	*blocks;	/* tg_ctx_alloc memory */
	struct tg_ctx_block	*defers;	/* tg_ctx_defer entries */
	void			*states[TG_MAX_MODULES];
	char			*queue_id;
	char			*auth_user;
	char			*mail_from;
	char			**rcpts;
	size_t			 nrcpts;
	struct tg_edit		*edits;
	size_t			 nedits;
	char			**authres;
	size_t			 nauthres;
	char			*results[TG_MAX_MODULES];
	char			*reply_rcode, *reply_xcode, *reply_text;
	char			*quarantine;
	enum tg_verdict		 verdict;	/* strongest so far */
	enum tg_verdict		 pending;	/* header/eoh/body hooks: for eom */
	size_t			 ar_seen;	/* Authentication-Results */
	size_t			 nheaders;
	unsigned long long	 body_bytes;
	char			*decision;
};

struct tg_ctx {
	tg_macro_fn		 macro;
	void			*macro_arg;
	char			*hostname;
	char			*addr;
	struct tg_peer		 peer;
	char			*helo;
	bool			 internal;
	int			 module;	/* running now, or -1 */
	struct tg_ctx_msg	*msg;
	char			*last_decision;
};

/* The registry, the enabled modules and the shared services. */
size_t			 tg_registry_count(void);
const struct tg_module	*tg_registry_module(size_t);
bool			 tg_registry_enabled(size_t);
const struct tg_netlist	*tg_pipeline_internal_nets(void);

/* ctx.c */
void	tg_ctx_msg_begin(struct tg_ctx *);
void	tg_ctx_msg_end(struct tg_ctx *);
char	*tg_ctx_msg_dup(struct tg_ctx *, const char *);

/* tg_verdict_final - whether a verdict ends the message (all but
 * continue and quarantine) */
bool		tg_verdict_final(enum tg_verdict);
/* tg_verdict_stronger - the verdict that wins when two modules differ */
enum tg_verdict tg_verdict_stronger(enum tg_verdict, enum tg_verdict);

#endif
