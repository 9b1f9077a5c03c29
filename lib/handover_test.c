/*
 * handover_test - a successor inherits only the control socket and the
 * listener it is passed (tg_handover_spawn), with close_range and, as on
 * Linux < 5.11, without it (a seccomp filter makes it fail with ENOSYS).
 *
 * The successor is this program again: tg_handover_child finds the
 * control socket, and it answers with the descriptors it holds.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "tollgate/buf.h"
#include "tollgate/handover.h"

static char	**handover_test_argv;

/* handover_test_fds - "fds N M ...": our descriptors from 3, but skip */
static void
handover_test_fds(struct tg_buf *b, int skip)
{
	struct dirent	*de;
	DIR		*d;
	char		*end;
	long		 n;

	tg_buf_printf(b, "fds");
	if ((d = opendir("/proc/self/fd")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		n = strtol(de->d_name, &end, 10);
		if (*end != '\0' || n < 3 || n == dirfd(d) || n == skip)
			continue;
		tg_buf_printf(b, " %ld", n);
	}
	(void)closedir(d);
}

/* handover_test_spawn - open descriptors, start a successor: its list */
static void
handover_test_spawn(void)
{
	struct tg_err	 err;
	char		 buf[1024], want[64];
	pid_t		 pid;
	int		 p[2], q[2], null, fd, status;

	assert_int_equal(pipe(p), 0);		/* no close-on-exec */
	assert_int_equal(pipe(q), 0);
	assert_true((null = open("/dev/null", O_RDONLY)) != -1);
	fd = tg_handover_spawn(handover_test_argv, q[0], &pid, &err);
	if (fd == -1)
		fail_msg("tg_handover_spawn: %s", err.text);
	assert_int_equal(tg_handover_recv(fd, buf, sizeof(buf), 10000), TG_OK);
	/* Only the listener passed on (the control socket is skipped). */
	(void)snprintf(want, sizeof(want), "fds %d", q[0]);
	assert_string_equal(buf, want);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	(void)close(fd);
	(void)close(p[0]);
	(void)close(p[1]);
	(void)close(q[0]);
	(void)close(q[1]);
	(void)close(null);
}

/* test_close_range - the kernel marks them all at once */
static void
test_close_range(void **state)
{
	(void)state;
	handover_test_spawn();
}

/* test_one_by_one - close_range fails (ENOSYS): marked one by one */
static void
test_one_by_one(void **state)
{
	struct sock_filter	 f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close_range, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog	 prog = { TG_NITEMS(f), f };

	(void)state;
	/* For good, in this process and its children: the last test. */
	assert_int_equal(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	assert_int_equal(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog),
	    0);
	errno = 0;
	assert_int_equal(syscall(SYS_close_range, 1000, 1000, 0), -1);
	assert_int_equal(errno, ENOSYS);
	handover_test_spawn();
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_close_range),
		cmocka_unit_test(test_one_by_one),
	};
	struct tg_handover	h;
	struct tg_buf		b;

	(void)argc;
	tg_handover_child(&h);
	if (h.fd != -1) {
		/* The successor: say what we hold, and go. */
		tg_buf_init(&b);
		handover_test_fds(&b, h.fd);
		(void)tg_handover_send(h.fd, "%s", tg_buf_cstr(&b));
		tg_buf_fini(&b);
		return 0;
	}
	handover_test_argv = argv;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
