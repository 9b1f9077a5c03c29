/*
 * loadstat.h - what the load drivers (milterload, policyload) share:
 * the address to drive, the run's clock and stop flag, the per-thread
 * latency lists and the numbers their reports print (bench/loadstat.c).
 */
#ifndef LOADSTAT_H
#define LOADSTAT_H

#include <sys/socket.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* One thread's latencies, in seconds; zeroed is empty. */
struct ls_lat {
	double	*v;
	size_t	 n, cap;
};

/* A run shared by the threads: the stop flag and units started. */
struct ls_run {
	atomic_bool	stop;
	atomic_long	claimed;
};

/* ls_parse_socket - inet:PORT@HOST, inet6:PORT@HOST, unix:PATH or
 * local:PATH (Postfix's spellings) into sa; exits EX_USAGE with a
 * message when s is none of them or HOST does not resolve */
void	ls_parse_socket(const char *s, struct sockaddr_storage *sa,
	    socklen_t *salen);

/* ls_now - monotonic seconds */
double	ls_now(void);

/* ls_claim - the next unit's index, or -1 when the run is over: r is
 * stopped, or count (0: no limit) units have been claimed */
long	ls_claim(struct ls_run *r, long count);

/*
 * ls_run_workers - fn on each of the n workers (the array ws, of
 * elements size bytes each) in a thread of its own; with count > 0 the
 * workers end on their own (ls_claim), otherwise r is stopped after
 * seconds.  Returns once every thread is joined: the seconds the run
 * took.  Exits EX_OSERR when a thread cannot start.
 */
double	ls_run_workers(struct ls_run *r, void *ws, size_t n, size_t size,
	    void *(*fn)(void *), long count, long seconds);

/* ls_lat_add - one latency, seconds */
void	ls_lat_add(struct ls_lat *l, double seconds);

/* ls_lat_merge - append one's latencies to all */
void	ls_lat_merge(struct ls_lat *all, const struct ls_lat *one);

/* ls_lat_sort - sort, for ls_lat_ms */
void	ls_lat_sort(struct ls_lat *l);

/* ls_lat_ms - the p-th percentile (0..1) of sorted l, in ms; 0 when
 * empty (p = 1 is the maximum) */
double	ls_lat_ms(const struct ls_lat *l, double p);

/* ls_lat_fini - free the list; it is empty again */
void	ls_lat_fini(struct ls_lat *l);

/* ls_cpu - user and system CPU seconds of the process so far */
double	ls_cpu(void);

/* ls_long - a checked numeric option -opt s; exits EX_USAGE with a
 * message when it is not a number in [min, max] */
long	ls_long(const char *s, long min, long max, int opt);

#endif
