/*
 * pd_test.h - what the policyd checks' unit tests share: an event loop
 * and an async store handle for pd_env, and pd_test_checks, which runs
 * the enabled checks over one request on that loop until they answer.
 * Included by one test file each (static definitions).
 */
#ifndef TOLLGATE_PD_TEST_H
#define TOLLGATE_PD_TEST_H

#include <event2/event.h>
#include <stdbool.h>
#include <string.h>

#include "tollgate/policyd.h"
#include "tollgate/store.h"

static struct event_base	*pd_test_base;

/* pd_test_async - an async handle on the test loop (made on first use) */
static struct tg_store_async *
pd_test_async(struct tg_store *s)
{
	if (pd_test_base == NULL && (pd_test_base = event_base_new()) == NULL)
		fail_msg("event_base_new failed");
	return tg_store_async_new(s, pd_test_base);
}

/* pd_test_done - a job's completion: note it */
static void
pd_test_done(struct pd_job *job)
{
	*(int *)job->arg += 1;
}

/*
 * pd_test_checks - pd_checks_start over req, the loop until done (a
 * lost callback leaves the loop with nothing to wait for: the test
 * fails, not hangs); action and note get the job's, err its error;
 * the job's status
 */
static enum tg_status
pd_test_checks(const struct pd_request *req, struct tg_buf *action,
    struct tg_buf *note, struct tg_err *err)
{
	struct pd_job	job;
	enum tg_status	st;
	int		done = 0;

	memset(&job, 0, sizeof(job));
	job.req = req;
	job.done = pd_test_done;
	job.arg = &done;
	pd_checks_start(&job);
	while (done == 0 && event_base_loop(pd_test_base, EVLOOP_ONCE) == 0)
		;
	if (done != 1)
		fail_msg("the checks answered %d times, want once", done);
	tg_buf_reset(action);
	tg_buf_puts(action, tg_buf_cstr(&job.action));
	tg_buf_reset(note);
	tg_buf_puts(note, tg_buf_cstr(&job.note));
	*err = job.err;
	st = job.st;
	pd_job_fini(&job);
	return st;
}

#endif
