/*
 * quota_int.h - the policy's layout, shared by lib/quota.c (parsing)
 * and lib/quota_charge.c (charging).  Not a public header.
 */
#ifndef TG_QUOTA_INT_H
#define TG_QUOTA_INT_H

#include <stdatomic.h>

#include "tollgate/buf.h"
#include "tollgate/conf.h"
#include "tollgate/quota.h"

/* One line of the tenant table. */
struct tg_quota_entry {
	char		*who;		/* domain or address, lower case */
	bool		 mailbox;	/* who is an address */
	bool		 exempt;
	uint64_t	 set;		/* bit i: max[i] is set */
	uint64_t	*max;		/* per rule index; NULL: none set */
};

struct tg_quota_policy {
	atomic_size_t		 refs;
	struct tg_quota_rule	*rules;
	size_t			 nrules;
	struct tg_quota_entry	*entries;	/* sorted by who once loaded */
	size_t			 nentries;
	bool			 sorted;
	char			**exempt;	/* names, lower case */
	size_t			 nexempt;
	struct tg_buf		 exempt_nets;	/* text, while parsing */
	struct tg_netlist	*nets;
	char			*table_path;
};

void	tg_quota_lower(char *);
const struct tg_quota_entry *tg_quota_find(const struct tg_quota_policy *,
	    const char *);
bool	tg_quota_refund_one(struct tg_store *, struct tg_quota_charge *);

#endif
