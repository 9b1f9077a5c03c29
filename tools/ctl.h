/*
 * ctl.h - tollgatectl's commands, one file each.
 */
#ifndef TOLLGATE_CTL_H
#define TOLLGATE_CTL_H

#include <stdbool.h>

#ifndef TG_SYSCONFDIR
#define TG_SYSCONFDIR "/etc"
#endif
/* where the configuration is when -c DIR does not say */
#define CTL_CONFDIR	TG_SYSCONFDIR "/tollgate/conf.d"

struct tg_store;

/* Each command gets argv from its own name on and returns an exit code. */
int	ctl_scan(int, char **);
int	ctl_config(int, char **);
int	ctl_dmarc(int, char **);
int	ctl_spf(int, char **);
int	ctl_quota(int, char **);
int	ctl_greylist(int, char **);
int	ctl_learn(int, char **);
/* ctl_config_rules - config check's report on the configured [spam]
 * rules paths (NULL: none), then each --rules PATH of argv;
 * ctl_config_spam_rules - the configured [spam] rules, a copy, or NULL
 * (call while the configuration is loaded) */
int	ctl_config_rules(int, char **, const char *configured);
char	*ctl_config_spam_rules(void);

/*
 * What the store commands (quota, greylist, learn) share, in ctl.c.
 * Each reports its error on stderr ("tollgatectl: ...") and returns
 * the exit code, 0 when all went well.
 *
 * ctl_synopsis - prints "usage: " and synopsis (its lines after the
 * first indented by the caller); EX_USAGE.
 * ctl_confdir - the options of a command whose only one is -c DIR,
 * into *confdir (left alone without -c); with verb_first, options end
 * at the first argument (so "--all" after the verb is an argument).
 * Leaves optind at the verb; false on an unknown option or no verb.
 * ctl_load - the configuration of confdir, offline (no DNS); EX_CONFIG.
 * ctl_store_open - the loaded configuration's [store] into *sp;
 * EX_UNAVAILABLE.
 * ctl_close - closes *sp (NULL is fine) and unloads the configuration.
 */
int	ctl_synopsis(const char *synopsis);
bool	ctl_confdir(int argc, char **argv, bool verb_first,
	    const char **confdir);
int	ctl_load(const char *confdir);
int	ctl_store_open(struct tg_store **sp);
void	ctl_close(struct tg_store **sp);

#endif
