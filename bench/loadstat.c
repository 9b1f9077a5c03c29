/*
 * loadstat - the load drivers' shared clock, run control and latency
 * statistics (see loadstat.h).  Each thread keeps its own ls_lat, so
 * nothing here is locked; the report merges them after the join.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/time.h>
#include <sys/un.h>

#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "loadstat.h"
#include "tollgate/log.h"
#include "tollgate/util.h"

/* ls_parse_socket - see loadstat.h */
void
ls_parse_socket(const char *s, struct sockaddr_storage *sa,
    socklen_t *salen)
{
	struct addrinfo	 hints = { .ai_socktype = SOCK_STREAM }, *res;
	struct sockaddr_un *un = (struct sockaddr_un *)sa;
	const char	*at, *p;
	char		 port[16];
	int		 rc;

	if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0) {
		p = strchr(s, ':') + 1;
		un->sun_family = AF_UNIX;
		if (snprintf(un->sun_path, sizeof(un->sun_path), "%s", p) >=
		    (int)sizeof(un->sun_path))
			tg_fatalx(EX_USAGE, "socket path too long: %s", p);
		*salen = sizeof(*un);
		return;
	}
	if (strncmp(s, "inet:", 5) == 0)
		hints.ai_family = AF_INET;
	else if (strncmp(s, "inet6:", 6) == 0)
		hints.ai_family = AF_INET6;
	else
		tg_fatalx(EX_USAGE, "socket %s: want inet:PORT@HOST or unix:PATH",
		    s);
	p = strchr(s, ':') + 1;
	if ((at = strchr(p, '@')) == NULL || at == p ||
	    (size_t)(at - p) >= sizeof(port))
		tg_fatalx(EX_USAGE, "socket %s: want inet:PORT@HOST", s);
	memcpy(port, p, (size_t)(at - p));
	port[at - p] = '\0';
	if ((rc = getaddrinfo(at + 1, port, &hints, &res)) != 0)
		tg_fatalx(EX_USAGE, "socket %s: %s", s, gai_strerror(rc));
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*salen = res->ai_addrlen;
	freeaddrinfo(res);
}

/* ls_now - see loadstat.h */
double
ls_now(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ls_claim - see loadstat.h */
long
ls_claim(struct ls_run *r, long count)
{
	long	 i;

	if (atomic_load(&r->stop))
		return -1;
	i = atomic_fetch_add(&r->claimed, 1);
	if (count > 0 && i >= count)
		return -1;
	return i;
}

/* ls_run_workers - see loadstat.h; the clock is looked at every 50 ms */
double
ls_run_workers(struct ls_run *r, void *ws, size_t n, size_t size,
    void *(*fn)(void *), long count, long seconds)
{
	struct timespec	 nap = { .tv_nsec = 50000000 };
	pthread_t	*t;
	double		 t0, end;
	size_t		 i;

	t = tg_calloc(n, sizeof(*t));
	t0 = ls_now();
	end = t0 + (double)seconds;
	for (i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, fn, (char *)ws + i * size) !=
		    0)
			tg_fatalx(EX_OSERR, "cannot start thread %zu", i);
	if (count == 0) {
		while (ls_now() < end)
			(void)nanosleep(&nap, NULL);
		atomic_store(&r->stop, true);
	}
	for (i = 0; i < n; i++)
		(void)pthread_join(t[i], NULL);
	free(t);
	return ls_now() - t0;
}

/* ls_lat_add - see loadstat.h */
void
ls_lat_add(struct ls_lat *l, double seconds)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->v = tg_reallocarray(l->v, l->cap, sizeof(double));
	}
	l->v[l->n++] = seconds;
}

/* ls_lat_merge - see loadstat.h */
void
ls_lat_merge(struct ls_lat *all, const struct ls_lat *one)
{
	if (one->n == 0)
		return;
	if (all->n + one->n > all->cap) {
		all->cap = all->n + one->n;
		all->v = tg_reallocarray(all->v, all->cap, sizeof(double));
	}
	memcpy(all->v + all->n, one->v, one->n * sizeof(double));
	all->n += one->n;
}

static int
ls_dblcmp(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ls_lat_sort - see loadstat.h */
void
ls_lat_sort(struct ls_lat *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(double), ls_dblcmp);
}

/* ls_lat_ms - see loadstat.h; the nearest rank */
double
ls_lat_ms(const struct ls_lat *l, double p)
{
	if (l->n == 0)
		return 0;
	return l->v[(size_t)(p * (double)(l->n - 1) + 0.5)] * 1000;
}

/* ls_lat_fini - see loadstat.h */
void
ls_lat_fini(struct ls_lat *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* ls_cpu - see loadstat.h */
double
ls_cpu(void)
{
	struct rusage	 ru;

	(void)getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ls_long - see loadstat.h */
long
ls_long(const char *s, long min, long max, int opt)
{
	long	 v;

	if (!tg_parse_long(s, min, max, &v))
		tg_fatalx(EX_USAGE, "-%c %s: want a number in [%ld, %ld]", opt,
		    s, min, max);
	return v;
}
