/*
 * ratelimit.h - the sending-quota module of tollgate-milter.  The rules
 * themselves are in quota.h, shared with tollgate-policyd.
 */
#ifndef TOLLGATE_RATELIMIT_H
#define TOLLGATE_RATELIMIT_H

#include "module.h"

extern const struct tg_module tg_module_ratelimit;

#endif
