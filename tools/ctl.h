/*
 * ctl.h - tollgatectl's commands, one file each.
 */
#ifndef TOLLGATE_CTL_H
#define TOLLGATE_CTL_H

/* Each command gets argv from its own name on and returns an exit code. */
int	ctl_scan(int, char **);
int	ctl_config(int, char **);
int	ctl_dmarc(int, char **);
int	ctl_spf(int, char **);
int	ctl_quota(int, char **);

#endif
