/*
 * ratelimit.h - the sending-quota module of tollgate-milter.  The rules
 * themselves are in quota.h, shared with tollgate-policyd.
 */
#ifndef TOLLGATE_RATELIMIT_H
#define TOLLGATE_RATELIMIT_H

#include "module.h"

extern const struct tg_module tg_module_ratelimit;

/* tg_ratelimit_rules - [ratelimit] rules_file and exempt as the config
 * loaded them (borrowed until the config is freed; "" when unset) */
void	tg_ratelimit_rules(const char **rules_file, const char **exempt);

#endif
