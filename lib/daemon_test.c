/*
 * daemon_test - resolving the run user, groups and socket modes
 * (tg_daemon_priv_resolve).  The switch itself needs root and a real
 * daemon: tests/integration/privileges.test does that.  Cases whose
 * outcome depends on whether we run as root check both ways.
 * The pid file: replaced whole, removed only while it names us, written
 * back by _reclaim; the hand-over itself is in reload.test and
 * policyd_reload.test.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "tollgate/daemon.h"

/* priv - a setting with the usual defaults */
static struct tg_daemon_priv
priv(const char *user, const char *group)
{
	struct tg_daemon_priv	p = {
		.user = user,
		.group = group,
		.umask = "007",
		.socket_mode = "0660",
		.section = "milter",
	};

	return p;
}

/* test_modes - octal, no wider than 0777, "" the default */
static void
test_modes(void **state)
{
	static const struct {
		const char	*mode;
		bool		 ok;
		mode_t		 want;
	} cases[] = {
		{ "0660", true, 0660 }, { "660", true, 0660 }, { "0", true, 0 },
		{ "0777", true, 0777 }, { "", true, 0660 },
		{ "0999", false, 0 }, { "07777", false, 0 }, { "1660", false, 0 },
		{ "rw", false, 0 }, { "0660 ", false, 0 }, { "-1", false, 0 },
	};
	struct tg_daemon_priv	p = priv(NULL, NULL);
	struct tg_daemon_ids	ids;
	struct tg_err		err;
	size_t			i;

	(void)state;
	p.allow_root = true;
	for (i = 0; i < TG_NITEMS(cases); i++) {
		p.socket_mode = cases[i].mode;
		assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err) ==
		    TG_OK, cases[i].ok);
		if (cases[i].ok)
			assert_int_equal(ids.sock_mode, cases[i].want);
		else
			assert_non_null(strstr(err.text,
			    "[milter] socket_mode: bad mode"));
	}
	p.socket_mode = "0660";
	p.umask = "0027";
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_OK);
	assert_int_equal(ids.umask, 027);
	p.umask = "8";
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_PERM);
	assert_non_null(strstr(err.text, "[core] umask: bad mode \"8\""));
}

/* test_names - unknown users and groups are clear errors */
static void
test_names(void **state)
{
	struct tg_daemon_priv	p;
	struct tg_daemon_ids	ids;
	struct tg_err		err;

	(void)state;
	p = priv("tg-no-such-user", NULL);
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_PERM);
	assert_string_equal(err.text, "user \"tg-no-such-user\": no such user");
	p = priv("root:tg-no-such-group", NULL);
	p.allow_root = true;
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_PERM);
	assert_string_equal(err.text,
	    "group \"tg-no-such-group\": no such group");
	p = priv("root", "tg-no-such-group");
	p.allow_root = true;
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_PERM);
	p = priv(NULL, NULL);
	p.allow_root = true;
	p.socket_owner = "tg-no-such-user";
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_PERM);
	assert_non_null(strstr(err.text, "[milter] socket_owner: user"));
	p.socket_owner = NULL;
	p.socket_group = "tg-no-such-group";
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_PERM);
	assert_non_null(strstr(err.text, "[milter] socket_group: group"));
}

/* test_root - root with no user, or user root, needs allow_root */
static void
test_root(void **state)
{
	struct tg_daemon_priv	p;
	struct tg_daemon_ids	ids;
	struct tg_err		err;
	bool			root = geteuid() == 0;

	(void)state;
	p = priv(NULL, NULL);
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err),
	    root ? TG_PERM : TG_OK);
	if (root)
		assert_non_null(strstr(err.text, "refusing to run as root"));
	assert_false(ids.drop);
	p = priv("root", NULL);
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_PERM);
	assert_non_null(strstr(err.text, "refusing to run as root (user root)"));
	p.allow_root = true;
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err),
	    root ? TG_OK : TG_PERM);
	if (!root)
		assert_string_equal(err.text,
		    "cannot switch to user root: not running as root");
}

/* test_user - user, user:group, the login group, socket defaults */
static void
test_user(void **state)
{
	struct tg_daemon_priv	p;
	struct tg_daemon_ids	ids;
	struct tg_err		err;
	struct passwd		*pw = getpwnam("nobody");
	bool			root = geteuid() == 0;

	(void)state;
	if (pw == NULL || !root) {
		/* as nobody's peer: we can only "switch" to ourselves */
		assert_non_null(pw = getpwuid(geteuid()));
	}
	p = priv(pw->pw_name, NULL);
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_OK);
	assert_int_equal(ids.uid, pw->pw_uid);
	assert_int_equal(ids.gid, pw->pw_gid);
	assert_string_equal(ids.user, pw->pw_name);
	assert_int_equal(ids.drop, root);
	/* the socket defaults to the run user and group, mode 0660 */
	assert_int_equal(ids.sock_uid, pw->pw_uid);
	assert_int_equal(ids.sock_gid, pw->pw_gid);
	assert_int_equal(ids.sock_mode, 0660);
	if (!root)
		return;
	p = priv("nobody:root", NULL);
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_OK);
	assert_int_equal(ids.gid, 0);
	assert_string_equal(ids.user, "nobody");
	p = priv("nobody", "root");
	p.socket_owner = "root";
	p.socket_group = "root";
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_OK);
	assert_int_equal(ids.gid, 0);
	assert_int_equal(ids.sock_uid, 0);
	assert_int_equal(ids.sock_gid, 0);
	p = priv(":root", NULL);
	assert_int_equal(tg_daemon_priv_resolve(&p, &ids, &err), TG_PERM);
	assert_non_null(strstr(err.text, "bad name"));
}

/* pid_read - the pid file's text, "" when there is none */
static const char *
pid_read(const char *path)
{
	static char	buf[64];
	ssize_t		n;
	int		fd;

	buf[0] = '\0';
	if ((fd = open(path, O_RDONLY)) == -1)
		return buf;
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	(void)close(fd);
	return buf;
}

/* pid_plant - what a successor does: its pid in the file, by rename */
static void
pid_plant(const char *dir, const char *path, const char *text)
{
	char	tmp[600];
	FILE	*fp;

	assert_true(snprintf(tmp, sizeof(tmp), "%s/planted", dir) <
	    (int)sizeof(tmp));
	assert_non_null(fp = fopen(tmp, "w"));
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* pid_entries - files in dir: no temporary file may stay behind */
static int
pid_entries(const char *dir)
{
	struct dirent	*de;
	DIR		*d;
	int		 n = 0;

	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0;
	(void)closedir(d);
	return n;
}

/* test_pidfile - write, reclaim, remove only our own */
static void
test_pidfile(void **state)
{
	char		 dir[] = "/tmp/tg_daemon_test.XXXXXX", path[600];
	char		 mine[32], old[64];
	struct stat	 sb;
	mode_t		 mask;
	ssize_t		 n;
	int		 fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_true(snprintf(path, sizeof(path), "%s/d.pid", dir) <
	    (int)sizeof(path));
	(void)snprintf(mine, sizeof(mine), "%ld\n", (long)getpid());
	mask = umask(027);
	tg_daemon_pidfile(-1, path);
	assert_string_equal(pid_read(path), mine);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0640);
	assert_int_equal(pid_entries(dir), 1);

	/* A successor's pid: left at exit, replaced (a new file) on reclaim. */
	pid_plant(dir, path, "1\n");
	assert_int_not_equal(fd = open(path, O_RDONLY), -1);
	tg_daemon_pidfile_reclaim();
	assert_string_equal(pid_read(path), mine);
	n = read(fd, old, sizeof(old) - 1);
	old[n > 0 ? n : 0] = '\0';
	assert_string_equal(old, "1\n");	/* not rewritten in place */
	(void)close(fd);
	assert_int_equal(pid_entries(dir), 1);
	assert_int_equal(unlink(path), 0);
	tg_daemon_pidfile_reclaim();		/* removed: written again */
	assert_string_equal(pid_read(path), mine);
	pid_plant(dir, path, "1\n");
	tg_daemon_pidfile_remove();
	assert_string_equal(pid_read(path), "1\n");

	/* Our own: removed. */
	tg_daemon_pidfile(-1, path);
	tg_daemon_pidfile_remove();
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(pid_entries(dir), 0);
	tg_daemon_pidfile_reclaim();		/* no pid file any more */
	assert_int_equal(access(path, F_OK), -1);
	(void)umask(mask);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_user),
		cmocka_unit_test(test_pidfile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
