/*
 * registry - the modules this build has, the core's configuration, and
 * start-up: load config, make the resolver, init the enabled modules.
 *
 * Optional modules are chosen by configure; this is the one place where
 * #ifdef may pick them.  Everything here runs before the first message
 * and is read-only afterwards.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline_int.h"
#include "tollgate/dkim.h"
#include "tollgate/dmarc.h"
#include "tollgate/dns.h"
#include "tollgate/log.h"
#include "tollgate/policyd.h"
#include "tollgate/ratelimit.h"
#include "tollgate/spam.h"
#include "tollgate/spf.h"
#include "tollgate/store.h"

/* SPF first: DMARC, later in the list, reads the SPF and DKIM results. */
static const struct tg_module *const tg_registry[] = {
	&tg_module_spf,
	&tg_module_dkim,
	&tg_module_dmarc,
	&tg_module_spam,	/* after dkim, spf, dmarc: it weighs their results */
	&tg_module_ratelimit,	/* last: it charges what the others let by */
};

struct tg_core_conf tg_core_conf;

static struct {
	long	 timeout;
	char	*resolv_conf;
	char	*forwarders;
	char	*local_data;
	bool	 offline;
} tg_dns_conf_store;

static const struct tg_param tg_core_params[] = {
	TG_PARAM_STRING("authserv_id", "",
	    &tg_core_conf.authserv_id,
	    "authserv-id of our Authentication-Results; empty: the host name"),
	TG_PARAM_STRING("internal_networks", "127.0.0.0/8 ::1/128",
	    &tg_core_conf.internal_networks,
	    "clients whose mail is ours to sign, not to judge"),
	TG_PARAM_STRING("modules", "spf dkim dmarc", &tg_core_conf.modules,
	    "enabled modules; they run in the built-in order"),
	TG_PARAM_STRING("metrics_listen", "", &tg_core_conf.metrics_listen,
	    "tollgate-milter's Prometheus /metrics: PORT (loopback), "
	    "ADDR:PORT or [ADDR6]:PORT; empty: none"),
	TG_PARAM_ENUM("log_level", "info", &tg_core_conf.log_level,
	    tg_log_level_names, "lowest level logged"),
	TG_PARAM_ENUM("log_format", "logfmt", &tg_core_conf.log_format,
	    tg_log_format_names, "format of the decision and request lines"),
	TG_PARAM_STRING("user", "", &tg_core_conf.user,
	    "run as this user once the socket is open; empty: stay"),
	TG_PARAM_STRING("group", "", &tg_core_conf.group,
	    "run as this group; empty: the user's login group"),
	TG_PARAM_STRING("umask", "007", &tg_core_conf.umask,
	    "umask once running as the user (octal)"),
	TG_PARAM_BOOL("allow_root", "no", &tg_core_conf.allow_root,
	    "keep running as root when no user is set"),
	TG_PARAM_END
};

static const struct tg_param tg_milter_params[] = {
	TG_PARAM_STRING("socket", "inet:8891@127.0.0.1", &tg_core_conf.socket,
	    "where to listen: inet:PORT@ADDR, inet6:PORT@ADDR, unix:PATH"),
	TG_PARAM_STRING("pid_file", "", &tg_core_conf.pid_file,
	    "write the daemon's pid here; empty: none"),
	TG_PARAM_STRING("socket_owner", "", &tg_core_conf.socket_owner,
	    "owner of a unix socket; empty: the user run as"),
	TG_PARAM_STRING("socket_group", "", &tg_core_conf.socket_group,
	    "group of a unix socket (postfix for Postfix); empty: run group"),
	TG_PARAM_STRING("socket_mode", "0660", &tg_core_conf.socket_mode,
	    "mode of a unix socket (octal)"),
	TG_PARAM_TIME("drain_timeout", "30s", &tg_core_conf.drain_timeout, 0,
	    3600, "on SIGTERM or a reload: longest wait for messages in "
	    "flight"),
	TG_PARAM_END
};

static const struct tg_param tg_dns_params[] = {
	TG_PARAM_TIME("timeout", "5s", &tg_dns_conf_store.timeout, 1, 120,
	    "longest wait for one DNS answer"),
	TG_PARAM_STRING("resolv_conf", "/etc/resolv.conf",
	    &tg_dns_conf_store.resolv_conf,
	    "name servers to forward to, when forwarders is empty"),
	TG_PARAM_STRING("forwarders", "", &tg_dns_conf_store.forwarders,
	    "name servers to forward to (IP addresses); empty: resolv_conf"),
	TG_PARAM_STRING("local_data", "", &tg_dns_conf_store.local_data,
	    "file of records answered locally (zone-file syntax)"),
	TG_PARAM_BOOL("offline", "no", &tg_dns_conf_store.offline,
	    "never use the network; names not in local_data fail at once"),
	TG_PARAM_END
};

/* tollgate-policyd's sections too: both daemons read one conf.d. */
static struct tg_conf_section	 tg_sections[5 + TG_NITEMS(tg_registry) +
				    PD_SECTIONS_MAX];
static size_t			 tg_nsections;
static bool			 tg_enabled[TG_NITEMS(tg_registry)];
static bool			 tg_initialized[TG_NITEMS(tg_registry)];
static struct tg_netlist	*tg_internal;
static struct tg_dns		*tg_dns;
static char			 tg_hostname[256];

_Static_assert(TG_NITEMS(tg_registry) <= TG_MAX_MODULES, "too many modules");

/* tg_registry_count - modules built in */
size_t
tg_registry_count(void)
{
	return TG_NITEMS(tg_registry);
}

/* tg_registry_module - the i-th module */
const struct tg_module *
tg_registry_module(size_t i)
{
	return tg_registry[i];
}

/* tg_registry_enabled - whether [core] modules lists the i-th module */
bool
tg_registry_enabled(size_t i)
{
	return tg_enabled[i];
}

/* tg_pipeline_internal_nets - parsed internal_networks */
const struct tg_netlist *
tg_pipeline_internal_nets(void)
{
	return tg_internal;
}

/* tg_pipeline_dns - the shared resolver */
struct tg_dns *
tg_pipeline_dns(void)
{
	return tg_dns;
}

/* tg_pipeline_sections - core sections, then one per module */
const struct tg_conf_section *
tg_pipeline_sections(size_t *n)
{
	const struct tg_conf_section	*pd;
	size_t				 i, npd;

	if (tg_nsections == 0) {
		tg_sections[0] = (struct tg_conf_section){ "core",
		    tg_core_params };
		tg_sections[1] = (struct tg_conf_section){ "milter",
		    tg_milter_params };
		tg_sections[2] = (struct tg_conf_section){ "dns",
		    tg_dns_params };
		tg_sections[3] = (struct tg_conf_section){ "store",
		    tg_store_params() };
		for (i = 0; i < TG_NITEMS(tg_registry); i++) {
			if (tg_registry[i]->abi != TG_MODULE_ABI)
				TG_PANIC("module %s: abi %u", tg_registry[i]->name,
				    tg_registry[i]->abi);
			tg_sections[4 + i] = (struct tg_conf_section){
			    tg_registry[i]->name, tg_registry[i]->params };
		}
		tg_nsections = 4 + TG_NITEMS(tg_registry);
		/* Bayes' keys: their own section, read by the spam module
		 * and tollgatectl learn */
		tg_sections[tg_nsections++] = (struct tg_conf_section){
		    "bayes", spam_bayes_params };
		pd = pd_sections(&npd);
		if (npd > PD_SECTIONS_MAX)
			TG_PANIC("policyd: %zu sections", npd);
		for (i = 0; i < npd; i++)
			tg_sections[tg_nsections++] = pd[i];
	}
	*n = tg_nsections;
	return tg_sections;
}

/* tg_pipeline_enable - parse [core] modules into tg_enabled */
static enum tg_status
tg_pipeline_enable(struct tg_err *err)
{
	const char	*p = tg_core_conf.modules;
	size_t		 i, len;
	bool		 found;

	memset(tg_enabled, 0, sizeof(tg_enabled));
	for (;;) {
		p += strspn(p, " \t,");
		if (*p == '\0')
			return TG_OK;
		len = strcspn(p, " \t,");
		found = false;
		for (i = 0; i < TG_NITEMS(tg_registry); i++) {
			if (strlen(tg_registry[i]->name) == len &&
			    strncmp(tg_registry[i]->name, p, len) == 0)
				found = tg_enabled[i] = true;
		}
		if (!found)
			return tg_err_set(err, TG_PERM,
			    "[core] modules: unknown module \"%.*s\"", (int)len,
			    p);
		p += len;
	}
}

/* tg_pipeline_dns_init - the resolver with its local data */
static enum tg_status
tg_pipeline_dns_init(const struct tg_pipeline_opts *opts, struct tg_err *err)
{
	struct tg_dns_conf	dc;
	enum tg_status		st;
	size_t			i;

	memset(&dc, 0, sizeof(dc));
	dc.timeout = tg_dns_conf_store.timeout;
	dc.resolv_conf = tg_dns_conf_store.resolv_conf;
	dc.forwarders = tg_dns_conf_store.forwarders;
	dc.local_data = tg_dns_conf_store.local_data;
	dc.offline = tg_dns_conf_store.offline || opts->force_offline;
	if ((tg_dns = tg_dns_new(&dc, err)) == NULL)
		return TG_PERM;
	for (i = 0; i < opts->nzone_files; i++)
		if ((st = tg_dns_load(tg_dns, opts->zone_files[i], err)) !=
		    TG_OK)
			return st;
	return TG_OK;
}

/*
 * tg_pipeline_stop - a problem (status st, text in err): whether start-up
 * stops here.  Under config check (opts->report) it is reported and
 * start-up goes on, *failed remembering it.
 */
static bool
tg_pipeline_stop(const struct tg_pipeline_opts *opts, enum tg_status st,
    const struct tg_err *err, bool *failed)
{
	if (st == TG_OK)
		return false;
	*failed = true;
	if (opts->report == NULL)
		return true;
	opts->report(opts->report_arg, err->text);
	return false;
}

/* tg_pipeline_core_init - what the core itself needs from config */
static enum tg_status
tg_pipeline_core_init(const struct tg_pipeline_opts *opts, bool *failed,
    struct tg_err *err)
{
	struct tg_err	nerr;
	enum tg_status	st;

	tg_log_set_level((enum tg_log_level)tg_core_conf.log_level);
	tg_log_set_format((enum tg_log_format)tg_core_conf.log_format);
	if (*tg_core_conf.authserv_id == '\0') {
		if (gethostname(tg_hostname, sizeof(tg_hostname) - 1) == -1)
			return tg_err_set(err, TG_PERM, "gethostname failed");
		free(tg_core_conf.authserv_id);
		tg_core_conf.authserv_id = tg_strdup(tg_hostname);
	}
	if ((tg_internal = tg_netlist_parse(tg_core_conf.internal_networks,
	    &nerr)) == NULL) {
		st = tg_err_set(err, TG_PERM, "[core] internal_networks: %s",
		    nerr.text);
		if (tg_pipeline_stop(opts, st, err, failed))
			return st;
	}
	st = tg_pipeline_enable(err);
	return tg_pipeline_stop(opts, st, err, failed) ? st : TG_OK;
}

/* tg_pipeline_load - configuration and resolver, no module started */
enum tg_status
tg_pipeline_load(const struct tg_pipeline_opts *opts, struct tg_err *err)
{
	const struct tg_conf_section	*secs;
	enum tg_status			 st;
	size_t				 n;
	bool				 failed = false;

	secs = tg_pipeline_sections(&n);
	if (opts->conf_text != NULL) {
		tg_conf_defaults(secs, n);
		st = tg_conf_load_text_all(opts->conf_text, "(text)", secs, n,
		    opts->report, opts->report_arg, err);
	} else
		st = tg_conf_load_all(opts->confdir, secs, n, opts->report,
		    opts->report_arg, err);
	/* under config check the loader has reported its problems */
	if (st != TG_OK && opts->report == NULL)
		return st;
	failed = st != TG_OK;
	if ((st = tg_pipeline_core_init(opts, &failed, err)) != TG_OK &&
	    tg_pipeline_stop(opts, st, err, &failed))
		return st;
	st = tg_pipeline_dns_init(opts, err);
	if (tg_pipeline_stop(opts, st, err, &failed))
		return st;
	return failed ? TG_PERM : TG_OK;
}

/* tg_pipeline_init - configuration, resolver, modules */
enum tg_status
tg_pipeline_init(const struct tg_pipeline_opts *opts, struct tg_err *err)
{
	struct tg_env	env;
	enum tg_status	st;
	size_t		i;
	bool		failed;

	if ((st = tg_pipeline_load(opts, err)) != TG_OK && opts->report == NULL)
		return st;
	failed = st != TG_OK;
	/* every module uses the resolver: without it, their errors would
	 * be of its making */
	if (tg_dns == NULL)
		return TG_PERM;
	env.dns = tg_dns;
	env.confdir = opts->confdir;
	for (i = 0; i < TG_NITEMS(tg_registry); i++) {
		if (!tg_enabled[i] || tg_registry[i]->init == NULL)
			continue;
		st = tg_registry[i]->init(&env, err);
		if (tg_pipeline_stop(opts, st, err, &failed))
			return st;
		tg_initialized[i] = st == TG_OK;
	}
	return failed ? TG_PERM : TG_OK;
}

/* tg_pipeline_fini - release everything init made */
void
tg_pipeline_fini(void)
{
	const struct tg_conf_section	*secs;
	size_t				 n, i;

	for (i = 0; i < TG_NITEMS(tg_registry); i++) {
		if (tg_initialized[i] && tg_registry[i]->fini != NULL)
			tg_registry[i]->fini();
		tg_initialized[i] = false;
	}
	tg_dns = tg_dns_free(tg_dns);
	tg_internal = tg_netlist_free(tg_internal);
	secs = tg_pipeline_sections(&n);
	tg_conf_free(secs, n);
}

/* tg_pipeline_wants - whether an enabled module hooks the stage */
bool
tg_pipeline_wants(enum tg_stage stage)
{
	const struct tg_module	*m;
	size_t			 i;
	bool			 has = false;

	for (i = 0; i < TG_NITEMS(tg_registry); i++) {
		if (!tg_enabled[i])
			continue;
		m = tg_registry[i];
		switch (stage) {
		case TG_STAGE_CONNECT:
			has = m->connect != NULL;
			break;
		case TG_STAGE_HELO:
			has = m->helo != NULL;
			break;
		case TG_STAGE_ENVFROM:
			has = m->envfrom != NULL;
			break;
		case TG_STAGE_ENVRCPT:
			has = m->envrcpt != NULL;
			break;
		case TG_STAGE_HEADER:
			has = m->header != NULL;
			break;
		case TG_STAGE_EOH:
			has = m->eoh != NULL;
			break;
		case TG_STAGE_BODY:
			has = m->body != NULL;
			break;
		case TG_STAGE_EOM:
			has = m->eom != NULL;
			break;
		}
		if (has)
			return true;
	}
	return false;
}
