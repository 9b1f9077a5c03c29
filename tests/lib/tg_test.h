/*
 * tg_test.h - helpers shared by the modules' unit tests: log capture,
 * zone-file lines for the resolver's local data, scratch files and a
 * private redis-server on loopback.  Test code only.
 */
#ifndef TG_TEST_H
#define TG_TEST_H

#include <stdbool.h>
#include <sys/types.h>

#include "tollgate/store.h"

/*
 * Log capture: from tg_test_log_init on, every log line goes to a
 * buffer instead of stderr; tg_test_log is what was logged since the
 * last tg_test_log_reset (valid until the next log line or reset).
 */
void		 tg_test_log_init(void);
void		 tg_test_log_fini(void);
void		 tg_test_log_reset(void);
const char	*tg_test_log(void);

/*
 * tg_test_zone_txt - one zone line, "name. 300 IN TXT "..." "..."", the
 * value cut into 255-byte strings with '"' and '\' escaped; the caller
 * owns the result
 */
char		*tg_test_zone_txt(const char *name, const char *value);

/*
 * Scratch files: tg_test_write puts text into dir/name (mode 0600) and
 * returns false when it cannot; tg_test_rmtree removes a scratch
 * directory and everything in it, false when that fails.
 */
bool		 tg_test_write(const char *dir, const char *name,
		    const char *text);
bool		 tg_test_rmtree(const char *dir);

/*
 * A private redis-server on 127.0.0.1 (no persistence, its files in a
 * scratch directory).  tg_test_redis_start starts one on port, or on a
 * free loopback port when port is 0, waits until it answers PING (5 s
 * at most), and returns the port; -1 (nothing left running) when it
 * cannot.  Start again with the old port to restart one after _stop.
 * tg_test_redis_stop kills it with SIGKILL and reaps it; it does
 * nothing when none runs.  pid is there for tests that stop the server
 * for a while (SIGSTOP/SIGCONT).  tg_test_redis_cmd sends one inline
 * command ("SCRIPT FLUSH") on a new connection: 0 when the reply is not
 * an error, -1 otherwise or when the server does not answer in 1 s.
 */
struct tg_test_redis {
	pid_t	pid;		/* -1 when none runs */
	int	port;
};
#define TG_TEST_REDIS_INIT	{ -1, 0 }

int		 tg_test_redis_start(struct tg_test_redis *r, const char *dir,
		    int port);
void		 tg_test_redis_stop(struct tg_test_redis *r);
int		 tg_test_redis_cmd(const struct tg_test_redis *r,
		    const char *cmd);
/* tg_test_redis_start_url - tg_test_redis_start on a free port, its
 * "redis://127.0.0.1:PORT/0" written to url; -1 when it did not start */
int		 tg_test_redis_start_url(struct tg_test_redis *r,
		    const char *dir, char *url, size_t urlsz);

/*
 * tg_test_store_open - a store of backend on path (embedded) or url
 * (Redis) with the limits the batch tests use: 1 s timeout, a breaker
 * that all but never opens, a 64 MiB map; NULL with err filled when it
 * cannot be opened.
 */
struct tg_store	*tg_test_store_open(enum tg_store_backend backend,
		    const char *path, const char *url, struct tg_err *err);

#endif
