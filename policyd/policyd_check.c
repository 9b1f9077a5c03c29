/*
 * policyd_check - the check registry and the [policyd] section.
 *
 * Checks are listed here in their built-in order; [policyd] checks
 * enables some of them and says in which order they run.  A new check
 * adds its descriptor to pd_registry and nothing else: its
 * config section follows from the table.  Everything here is set up at
 * start-up and read-only afterwards; the event loop's thread calls
 * pd_checks_start.  A job runs its checks one after another: each
 * check's pd_check_done starts the next (from inside the previous
 * check's start when it needed no store: the depth is bounded by the
 * number of checks), and the job's own state says which is running, so
 * any number of jobs are in flight at once.
 */
#include "config.h"

#include <string.h>

#include "tollgate/log.h"
#include "tollgate/metrics.h"
#include "tollgate/policyd.h"

static const struct pd_check *const pd_registry[] = {
	&pd_check_greylist,
	&pd_check_quota,
};

struct pd_conf pd_conf;

static const struct tg_param pd_params[] = {
	TG_PARAM_STRING("listen", "inet:10031@127.0.0.1", &pd_conf.listen,
	    "where to listen: inet:PORT@ADDR, inet6:PORT@ADDR, unix:PATH"),
	TG_PARAM_STRING("pid_file", "", &pd_conf.pid_file,
	    "write the daemon's pid here; empty: none"),
	TG_PARAM_STRING("user", "", &pd_conf.user,
	    "run as this user; empty: [core] user"),
	TG_PARAM_STRING("group", "", &pd_conf.group,
	    "run as this group; empty: [core] group"),
	TG_PARAM_STRING("socket_owner", "", &pd_conf.socket_owner,
	    "owner of a unix socket; empty: the user run as"),
	TG_PARAM_STRING("socket_group", "", &pd_conf.socket_group,
	    "group of a unix socket (postfix for Postfix); empty: run group"),
	TG_PARAM_STRING("socket_mode", "0660", &pd_conf.socket_mode,
	    "mode of a unix socket (octal)"),
	TG_PARAM_LONG("max_clients", "1000", &pd_conf.max_clients, 1, 100000,
	    "connections served at once; more wait in the listen queue"),
	TG_PARAM_TIME("idle_timeout", "10m", &pd_conf.idle_timeout, 1, 86400,
	    "close a connection idle this long (Postfix reconnects)"),
	TG_PARAM_STRING("default_action", "DUNNO", &pd_conf.default_action,
	    "answer to a malformed request or when a check cannot decide"),
	TG_PARAM_STRING("checks", "greylist", &pd_conf.checks,
	    "checks to run, in this order; the first objection decides"),
	TG_PARAM_STRING("metrics_listen", "", &pd_conf.metrics_listen,
	    "Prometheus /metrics: PORT (loopback), ADDR:PORT or "
	    "[ADDR6]:PORT; empty: none"),
	TG_PARAM_TIME("sweep_interval", "1m", &pd_conf.sweep_interval, 1,
	    86400, "how often expired records leave the embedded store"),
	TG_PARAM_TIME("drain_timeout", "30s", &pd_conf.drain_timeout, 0, 3600,
	    "on SIGTERM or a reload: longest wait for requests in flight"),
	TG_PARAM_END
};

_Static_assert(1 + TG_NITEMS(pd_registry) <= PD_SECTIONS_MAX,
    "raise PD_SECTIONS_MAX");

static struct tg_conf_section	 pd_secs[1 + TG_NITEMS(pd_registry)];
static const struct pd_check	*pd_enabled[TG_NITEMS(pd_registry)];
static size_t			 pd_nenabled;

/* pd_sections - [policyd], then one section per check */
const struct tg_conf_section *
pd_sections(size_t *n)
{
	size_t	i;

	pd_secs[0] = (struct tg_conf_section){ "policyd", pd_params };
	for (i = 0; i < TG_NITEMS(pd_registry); i++)
		pd_secs[1 + i] = (struct tg_conf_section){ pd_registry[i]->name,
		    pd_registry[i]->params };
	*n = TG_NITEMS(pd_secs);
	return pd_secs;
}

/* pd_checks_find - the check called name (len bytes), or NULL */
static const struct pd_check *
pd_checks_find(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < TG_NITEMS(pd_registry); i++)
		if (strlen(pd_registry[i]->name) == len &&
		    strncmp(pd_registry[i]->name, name, len) == 0)
			return pd_registry[i];
	return NULL;
}

/* pd_checks_enable - parse [policyd] checks into pd_enabled */
static enum tg_status
pd_checks_enable(struct tg_err *err)
{
	const struct pd_check	*c;
	const char		*p = pd_conf.checks;
	size_t			 len, i;

	pd_nenabled = 0;
	for (;;) {
		p += strspn(p, " \t,");
		if (*p == '\0')
			return TG_OK;
		len = strcspn(p, " \t,");
		if ((c = pd_checks_find(p, len)) == NULL)
			return tg_err_set(err, TG_PERM,
			    "[policyd] checks: unknown check \"%.*s\"",
			    (int)len, p);
		for (i = 0; i < pd_nenabled; i++)
			if (pd_enabled[i] == c)
				return tg_err_set(err, TG_PERM,
				    "[policyd] checks: \"%s\" listed twice",
				    c->name);
		pd_enabled[pd_nenabled++] = c;
		p += len;
	}
}

/* pd_checks_default - validate [policyd] default_action */
static enum tg_status
pd_checks_default(struct tg_err *err)
{
	if (!pd_action_ok(pd_conf.default_action))
		return tg_err_set(err, TG_PERM, "[policyd] default_action: "
		    "not a policy action: \"%s\"", pd_conf.default_action);
	return TG_OK;
}

/* pd_checks_init - validate [policyd], init the enabled checks */
enum tg_status
pd_checks_init(const struct pd_env *env, struct tg_err *err)
{
	enum tg_status	st;
	size_t		i;

	if ((st = pd_checks_default(err)) != TG_OK)
		return st;
	if ((st = pd_checks_enable(err)) != TG_OK) {
		pd_nenabled = 0;
		return st;
	}
	for (i = 0; i < pd_nenabled; i++) {
		if (pd_enabled[i]->init == NULL)
			continue;
		if ((st = pd_enabled[i]->init(env, err)) != TG_OK) {
			pd_nenabled = i;
			pd_checks_fini();
			return st;
		}
	}
	return TG_OK;
}

/* pd_checks_check - see policyd.h */
size_t
pd_checks_check(const struct pd_env *env, tg_conf_report_fn fn, void *arg)
{
	struct tg_err	err;
	size_t		i, n = 0;

	if (pd_checks_default(&err) != TG_OK) {
		fn(arg, err.text);
		n++;
	}
	/* on an unknown check, those listed before it are still tried */
	if (pd_checks_enable(&err) != TG_OK) {
		fn(arg, err.text);
		n++;
	}
	for (i = 0; i < pd_nenabled; i++) {
		if (pd_enabled[i]->init == NULL)
			continue;
		if (pd_enabled[i]->init(env, &err) != TG_OK) {
			fn(arg, err.text);
			n++;
		} else if (pd_enabled[i]->fini != NULL)
			pd_enabled[i]->fini();
	}
	pd_nenabled = 0;
	return n;
}

/* pd_checks_fini - undo init, last check first */
void
pd_checks_fini(void)
{
	size_t	i;

	for (i = pd_nenabled; i > 0; i--)
		if (pd_enabled[i - 1]->fini != NULL)
			pd_enabled[i - 1]->fini();
	pd_nenabled = 0;
}

/* pd_checks_next - start the next check, or finish the job */
static void
pd_checks_next(struct pd_job *job)
{
	if (job->next < pd_nenabled) {
		tg_buf_reset(&job->action);
		pd_enabled[job->next]->start(job);
		return;
	}
	tg_buf_reset(&job->action);
	tg_buf_puts(&job->action, "DUNNO");
	tg_metric_inc(TG_M_POLICYD_REQUESTS, "none", "DUNNO");
	job->st = TG_OK;
	job->done(job);
}

/* pd_checks_start - the first check; the rest follow pd_check_done */
void
pd_checks_start(struct pd_job *job)
{
	tg_buf_init(&job->action);
	tg_buf_init(&job->note);
	memset(&job->err, 0, sizeof(job->err));
	job->st = TG_OK;
	job->next = 0;
	pd_checks_next(job);
}

/* pd_check_done - the first objection or failure ends the job */
void
pd_check_done(struct pd_job *job, enum tg_status st)
{
	const struct pd_check	*c;

	if (job->next >= pd_nenabled)
		TG_PANIC("pd_check_done: no check is running");
	c = pd_enabled[job->next++];
	if (st != TG_OK) {
		tg_metric_inc(TG_M_POLICYD_CHECK_ERRORS, c->name, NULL);
		tg_metric_inc(TG_M_POLICYD_REQUESTS, c->name,
		    pd_conf.default_action);
		job->st = st;
		job->next = pd_nenabled;
		job->done(job);
		return;
	}
	if (job->action.len > 0 && strcmp(tg_buf_cstr(&job->action),
	    "DUNNO") != 0) {
		tg_metric_inc(TG_M_POLICYD_REQUESTS, c->name,
		    tg_buf_cstr(&job->action));
		job->st = TG_OK;
		job->next = pd_nenabled;
		job->done(job);
		return;
	}
	pd_checks_next(job);
}

/* pd_job_fini - the job's buffers */
void
pd_job_fini(struct pd_job *job)
{
	tg_buf_fini(&job->action);
	tg_buf_fini(&job->note);
}

/* pd_note_add - see policyd.h; tg_log_rec_add_pairs reads it back */
void
pd_note_add(struct tg_buf *note, const char *key, const char *val)
{
	const char	*p;

	tg_buf_printf(note, " %s=\"", key);
	for (p = val; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			tg_buf_putc(note, '\\');
		tg_buf_putc(note, *p);
	}
	tg_buf_putc(note, '"');
}
