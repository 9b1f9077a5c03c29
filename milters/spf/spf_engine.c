/*
 * spf_engine - the one interface in front of the two SPF engines.
 *
 * The module, tollgatectl spf and the conformance suite choose an
 * engine by name ([spf] engine, --engine) and call spf_engine_check;
 * this file only dispatches, so that the engines stay free of each
 * other and of the module.
 *
 * Threading: no state.
 */
#include "config.h"

#include "spf_int.h"
#include "tollgate/spf.h"

const char *const spf_engine_names[] = { "native", "libspf2", NULL };

/* spf_engine_check - see spf.h */
enum tg_status
spf_engine_check(enum spf_engine engine, struct tg_dns *dns,
    const struct spf_request *req, struct spf_answer *ans)
{
	switch (engine) {
	case SPF_ENGINE_NATIVE:
		return spf_check(dns, req, ans);
	case SPF_ENGINE_LIBSPF2:
		return spf_libspf2_check(dns, req, ans);
	}
	TG_PANIC("spf: engine %d", (int)engine);
}
