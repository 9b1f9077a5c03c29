/*
 * daemon_test - resolving the run user, groups and socket modes
 * (tg_daemon_priv_resolve).  The switch itself needs root and a real
 * daemon: tests/integration/privileges.test does that.  Cases whose
 * outcome depends on whether we run as root check both ways.
 */
#include "config.h"

#include <sys/stat.h>

#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_user),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
