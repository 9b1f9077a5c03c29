/*
 * dmarc_report_send - an aggregate report as a mail message, handed to
 * the configured sendmail program (RFC 9990 3.2.1).
 *
 * The message is multipart/mixed: a short text part, then the .xml.gz
 * as a base64 application/gzip attachment named as RFC 9990 requires,
 * under the Subject "Report Domain: <policy domain> Submitter: <our
 * domain> Report-ID: <id>".  Every value put into a header was checked
 * earlier to be a host name, a mailbox or alphanumeric, so nothing a
 * domain owner publishes can add a header line.
 *
 * The program runs with an argument vector, never through a shell:
 * `<report_sendmail words> -i -f <from> -- <rcpt>`, one at a time, and
 * its exit status decides.  The words of report_sendmail are split at
 * white space, so "sendmail -C /etc/postfix-out" works.
 *
 * Not thread-safe: SIGPIPE is ignored while the message is written (a
 * program that exits early must not kill tollgatectl) and then restored.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tollgate/buf.h"
#include "tollgate/dmarc_report.h"
#include "tollgate/util.h"

#include "dmarc_report_int.h"

#define DMARC_REPORT_B64_LINE	57	/* input bytes per 76-column line */
#define DMARC_REPORT_MAX_ARGS	16	/* words of report_sendmail */


static void	dmarc_report_base64(struct tg_buf *, const unsigned char *,
		    size_t);
static void	dmarc_report_date(struct tg_buf *, time_t);
static int		dmarc_report_ms_left(time_t);
static time_t		dmarc_report_now(void);
static enum tg_status	dmarc_report_write_all(int, const char *, size_t,
			    time_t, struct tg_err *);
static bool		dmarc_report_reap(pid_t, time_t, int *);

/* dmarc_report_base64 - RFC 2045 6.8, lines of 76 characters */
static void
dmarc_report_base64(struct tg_buf *b, const unsigned char *p, size_t n)
{
	static const char	 tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t			 i, line;
	uint32_t		 v;
	char			 q[4];

	for (line = 0; line < n; line += DMARC_REPORT_B64_LINE) {
		for (i = line; i < n && i < line + DMARC_REPORT_B64_LINE;
		    i += 3) {
			v = (uint32_t)p[i] << 16;
			if (i + 1 < n)
				v |= (uint32_t)p[i + 1] << 8;
			if (i + 2 < n)
				v |= p[i + 2];
			q[0] = tab[(v >> 18) & 63];
			q[1] = tab[(v >> 12) & 63];
			q[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
			q[3] = i + 2 < n ? tab[v & 63] : '=';
			tg_buf_append(b, q, 4);
		}
		tg_buf_putc(b, '\n');
	}
}

/* dmarc_report_date - RFC 5322 3.3 date-time in UTC, locale-free */
static void
dmarc_report_date(struct tg_buf *b, time_t t)
{
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
		"Oct", "Nov", "Dec"
	};
	struct tm	tm;

	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	tg_buf_printf(b, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* dmarc_report_mime - the whole message for one recipient */
void
dmarc_report_mime(const struct dmarc_report_mail *m, const char *rcpt,
    struct tg_buf *b)
{
	tg_buf_printf(b, "From: %s\nTo: %s\nDate: ", m->from, rcpt);
	dmarc_report_date(b, m->now);
	/* RFC 9990 3.2.1 dmarc-subject, folded at its FWS. */
	tg_buf_printf(b, "\nSubject: Report Domain: %s\n Submitter: %s\n"
	    " Report-ID: %s\n", m->policy_domain, m->submitter, m->report_id);
	/* The Report-ID in the Message-ID marks a resent report. */
	tg_buf_printf(b, "Message-ID: <%s@%s>\nMIME-Version: 1.0\n"
	    "Auto-Submitted: auto-generated\n"
	    "Content-Type: multipart/mixed; boundary=\"=_tg_%s\"\n\n"
	    "This is a MIME message.\n\n", m->report_id, m->submitter,
	    m->report_id);
	tg_buf_printf(b, "--=_tg_%s\nContent-Type: text/plain; "
	    "charset=us-ascii\n\nThis is a DMARC aggregate report (RFC 9990) "
	    "for %s\nfrom %s.\n\n", m->report_id, m->policy_domain,
	    m->submitter);
	tg_buf_printf(b, "--=_tg_%s\nContent-Type: application/gzip; "
	    "name=\"%s\"\nContent-Disposition: attachment; filename=\"%s\"\n"
	    "Content-Transfer-Encoding: base64\n\n", m->report_id,
	    m->filename, m->filename);
	dmarc_report_base64(b, m->gz, m->gzlen);
	tg_buf_printf(b, "\n--=_tg_%s--\n", m->report_id);
}

/* dmarc_report_now - monotonic seconds */
static time_t
dmarc_report_now(void)
{
	struct timespec	now;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec;
}

/* dmarc_report_ms_left - milliseconds until the monotonic deadline */
static int
dmarc_report_ms_left(time_t deadline)
{
	time_t	now = dmarc_report_now();

	return now >= deadline ? 0 : (int)(deadline - now) * 1000;
}

/*
 * dmarc_report_write_all - the whole buffer to fd (non-blocking), across
 * EINTR, by the deadline: a sendmail that stops reading must not hold
 * the report run
 */
static enum tg_status
dmarc_report_write_all(int fd, const char *p, size_t n, time_t deadline,
    struct tg_err *err)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLOUT };
	ssize_t		w;
	int		r;

	while (n > 0) {
		if ((r = poll(&pfd, 1, dmarc_report_ms_left(deadline))) == 0)
			return tg_err_set(err, TG_TEMP, "sendmail: not reading "
			    "its input in time");
		if (r == -1 && errno != EINTR)
			return tg_err_set(err, TG_TEMP, "sendmail: poll: %s",
			    strerror(errno));
		if (r == -1 || (w = write(fd, p, n)) == -1) {
			if (r == -1 || errno == EINTR || errno == EAGAIN)
				continue;
			return tg_err_set(err, TG_TEMP, "sendmail: write: %s",
			    strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
	return TG_OK;
}

/*
 * dmarc_report_reap - wait for the child until the deadline, then kill
 * it; false when it had to be killed or could not be waited for
 */
static bool
dmarc_report_reap(pid_t pid, time_t deadline, int *status)
{
	const struct timespec	nap = { 0, 20 * 1000 * 1000 };
	pid_t			r;

	for (;;) {
		if ((r = waitpid(pid, status, WNOHANG)) == pid)
			return true;
		if (r == -1 && errno != EINTR)
			return false;
		if (dmarc_report_ms_left(deadline) == 0)
			break;
		(void)nanosleep(&nap, NULL);
	}
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) == -1 && errno == EINTR)
		continue;
	return false;
}

/* dmarc_report_sendmail - run the program once and wait for it */
enum tg_status
dmarc_report_sendmail(const char *program, const char *from,
    const char *rcpt, const char *msg, size_t len, int secs,
    struct tg_err *err)
{
	char			*argv[DMARC_REPORT_MAX_ARGS + 6], *words, *w;
	struct sigaction	 ign, old;
	enum tg_status		 st;
	size_t			 argc = 0;
	pid_t			 pid;
	time_t			 deadline;
	int			 fds[2], status;

	/* Split at white space ourselves: no shell ever sees the words. */
	words = tg_strdup(program);
	for (w = words; argc < DMARC_REPORT_MAX_ARGS;) {
		while (*w == ' ' || *w == '\t')
			w++;
		if (*w == '\0')
			break;
		argv[argc++] = w;
		while (*w != '\0' && *w != ' ' && *w != '\t')
			w++;
		if (*w != '\0')
			*w++ = '\0';
	}
	if (argc == 0) {
		free(words);
		return tg_err_set(err, TG_PERM, "report_sendmail is empty");
	}
	argv[argc++] = "-i";
	argv[argc++] = "-f";
	argv[argc++] = (char *)from;
	argv[argc++] = "--";
	argv[argc++] = (char *)rcpt;
	argv[argc] = NULL;
	if (pipe(fds) == -1) {
		free(words);
		return tg_err_set(err, TG_TEMP, "pipe: %s", strerror(errno));
	}
	if ((pid = fork()) == -1) {
		st = tg_err_set(err, TG_TEMP, "fork: %s", strerror(errno));
		(void)close(fds[0]);
		(void)close(fds[1]);
		free(words);
		return st;
	}
	if (pid == 0) {
		(void)close(fds[1]);
		if (fds[0] != STDIN_FILENO &&
		    (dup2(fds[0], STDIN_FILENO) == -1 || close(fds[0]) == -1))
			_exit(127);
		(void)execvp(argv[0], argv);
		_exit(127);
	}
	(void)close(fds[0]);
	deadline = dmarc_report_now() + secs;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &ign, &old);
	if (fcntl(fds[1], F_SETFL, O_NONBLOCK) == -1)
		st = tg_err_set(err, TG_TEMP, "fcntl: %s", strerror(errno));
	else
		st = dmarc_report_write_all(fds[1], msg, len, deadline, err);
	(void)close(fds[1]);
	(void)sigaction(SIGPIPE, &old, NULL);
	if (!dmarc_report_reap(pid, deadline, &status)) {
		free(words);
		return tg_err_set(err, TG_TEMP, "%s did not finish in %d s: "
		    "killed", program, secs);
	}
	free(words);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return st;
	if (WIFEXITED(status))
		return tg_err_set(err, TG_TEMP, "%s exited with status %d",
		    program, WEXITSTATUS(status));
	return tg_err_set(err, TG_TEMP, "%s killed by signal %d", program,
	    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
