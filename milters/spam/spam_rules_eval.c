/*
 * spam_rules_eval - SpamAssassin eval: tests written natively in C.
 *
 * SpamAssassin's eval: rules call Perl functions of its plugins.  We
 * implement those that carry the most points in Debian's rule set and
 * need only the message (bench/rules_eval_rank.pl ranks them), each a
 * port of the Perl function of SpamAssassin 4.0 (HeaderEval, BodyEval,
 * MIMEEval) named in its comment.  DNS lists (check_rbl*, URIBL) are
 * the DNSBL part's, check_bayes the Bayes part's: those evals are
 * refused here with that reason, and their rules' scores still loaded.
 * Every other eval is refused as not implemented; the load report counts
 * them by name.
 *
 * Functions read the message only; they are called concurrently.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tollgate/buf.h"

#include "spam_rules_int.h"

/* ---- helpers ---- */

/* spam_eval_hdr - header text in form into a new buffer; false absent */
static bool
spam_eval_hdr(const struct spam_msg *m, const char *name,
    enum spam_hdr_form form, struct tg_buf *b)
{
	tg_buf_init(b);
	return spam_hdr_get(m, name, form, b) && b->len > 0;
}

/* spam_eval_num - an argument as a number ("undef": none) */
static bool
spam_eval_num(const struct spam_eval_args *a, size_t i, double *v)
{
	char	*end;

	if (i >= a->n || strcmp(a->v[i], "undef") == 0)
		return false;
	*v = strtod(a->v[i], &end);
	return end != a->v[i];
}

/* spam_eval_re - does pattern (PCRE2 syntax) match text */
static bool
spam_eval_re(const char *pattern, uint32_t opts, const char *text)
{
	pcre2_match_data	*md;
	pcre2_code		*re;
	PCRE2_SIZE		 off;
	int			 code, rc;

	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts,
	    &code, &off, NULL);
	if (re == NULL)
		return false;
	md = pcre2_match_data_create(1, NULL);
	if (md == NULL)
		TG_PANIC("pcre2: out of memory");
	rc = pcre2_match(re, (PCRE2_SPTR)text, strlen(text), 0, 0, md, NULL);
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	return rc >= 0;
}

/* ---- HeaderEval ---- */

/* check_for_missing_to_header - no To, and no Apparently-To either */
static int
spam_eval_missing_to(const struct spam_msg *m, const struct spam_eval_args *a)
{
	struct tg_buf	b;
	bool		to;

	(void)a;
	to = spam_eval_hdr(m, "To", SPAM_HDR_DECODED, &b) ||
	    spam_hdr_get(m, "Apparently-To", SPAM_HDR_DECODED, &b);
	to = to && b.len > 0;
	tg_buf_fini(&b);
	return !to;
}

/* check_header_count_range(hdr, min, max) - distinct values of hdr */
static int
spam_eval_count_range(const struct spam_msg *m,
    const struct spam_eval_args *a)
{
	double	min, max;
	size_t	i, j, n = 0;

	if (!spam_eval_num(a, 1, &min) || !spam_eval_num(a, 2, &max))
		return 0;
	for (i = 0; i < m->nheaders; i++) {
		if (tg_strcasecmp(m->headers[i].name, a->v[0]) != 0)
			continue;
		for (j = 0; j < i; j++)
			if (tg_strcasecmp(m->headers[j].name, a->v[0]) == 0 &&
			    strcmp(m->headers[j].raw, m->headers[i].raw) == 0)
				break;
		n += j == i;
	}
	return (double)n >= min && (double)n <= max;
}

/* spam_eval_strip_reply - past "Re: Fwd: ..." prefixes (Bug 6805) */
static const char *
spam_eval_strip_reply(const char *s)
{
	static const char *const pfx[] = { "re", "fwd", "fw", "aw",
	    "antwort", "wg", "sv", "vb", "vs", "vl" };
	size_t	i, n;
	bool	again = true;

	while (again) {
		again = false;
		for (i = 0; i < TG_NITEMS(pfx); i++) {
			n = strlen(pfx[i]);
			if (tg_strncasecmp(s, pfx[i], n) == 0 && s[n] == ':') {
				s += n + 1;
				while (isspace((unsigned char)*s))
					s++;
				again = true;
			}
		}
	}
	return s;
}

/* subject_is_all_caps - a subject of words, letters all upper case */
static int
spam_eval_subj_caps(const struct spam_msg *m, const struct spam_eval_args *a)
{
	struct tg_buf	 b, raw;
	const char	*s, *p;
	size_t		 len, letters = 0;
	bool		 lower = false, ok;

	(void)a;
	if (!spam_eval_hdr(m, "Subject", SPAM_HDR_DECODED, &b)) {
		tg_buf_fini(&b);
		return 0;
	}
	s = b.data;
	while (isspace((unsigned char)*s))
		s++;
	s = spam_eval_strip_reply(s);
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	for (p = s; p < s + len && !isspace((unsigned char)*p); p++)
		;
	ok = p < s + len && len >= 10;
	for (p = s; ok && p < s + len; p++) {
		letters += isalpha((unsigned char)*p) != 0;
		lower |= islower((unsigned char)*p) != 0;
	}
	ok = ok && letters > 0 && !lower;
	tg_buf_fini(&b);
	tg_buf_init(&raw);
	if (ok && spam_eval_hdr(m, "Subject", SPAM_HDR_RAW, &raw))
		/* CHARSETS_LIKELY_TO_FP_AS_CAPS */
		ok = !spam_eval_re("=\\?[-_a-z0-9]*(?:koi|jp|jis|euc|gb|big5|"
		    "isoir|cp1251|windows-1251|georgianps|pt154|tis)"
		    "[-_a-z0-9]*\\?", PCRE2_CASELESS, raw.data);
	tg_buf_fini(&raw);
	return ok;
}

/* spam_eval_illegal_count - bytes RFC 2045 does not allow raw: 8-bit
 * and C0 controls other than TAB, LF, CR */
static size_t
spam_eval_illegal_count(const char *s, size_t *exempt)
{
	const unsigned char	*p;
	size_t			 n = 0;

	*exempt = 0;
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x80 || (*p < 0x20 && *p != '\t' && *p != '\n' &&
		    *p != '\r'))
			n++;
		if (*p == 0xa2 || *p == 0xa3 || *p == 0xae)
			(*exempt)++;
	}
	return n;
}

/* check_illegal_chars(header, ratio, count) - raw 8-bit in headers;
 * for ALL, Subject and From are left out (their own tests) */
static int
spam_eval_illegal(const struct spam_msg *m, const struct spam_eval_args *a)
{
	struct tg_buf	 b;
	double		 ratio, count;
	size_t		 n, exempt, i, len;
	bool		 all = strcmp(a->v[0], "ALL") == 0;

	if (!spam_eval_num(a, 1, &ratio) || !spam_eval_num(a, 2, &count))
		return 0;
	tg_buf_init(&b);
	if (all) {
		for (i = 0; i < m->nheaders; i++)
			if (tg_strcasecmp(m->headers[i].name, "Subject") != 0 &&
			    tg_strcasecmp(m->headers[i].name, "From") != 0)
				tg_buf_printf(&b, "%s: %s\n",
				    m->headers[i].name, m->headers[i].raw);
	} else
		(void)spam_hdr_get(m, a->v[0], SPAM_HDR_RAW, &b);
	if (b.len == 0) {
		tg_buf_fini(&b);
		return 0;
	}
	n = spam_eval_illegal_count(b.data, &exempt);
	/* one cent, pound or registered sign in a Subject is fine */
	if (n > 0 && exempt == 1 && tg_strcasecmp(a->v[0], "Subject") == 0)
		n--;
	len = b.len;
	tg_buf_fini(&b);
	return (double)n / (double)len >= ratio && (double)n >= count;
}

/* spam_eval_quote - text as a PCRE2 literal: \Q...\E, with \E itself
 * split so that it cannot end the quote */
static void
spam_eval_quote(struct tg_buf *b, const char *s)
{
	tg_buf_puts(b, "\\Q");
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] == 'E') {
			tg_buf_puts(b, "\\E\\\\\\Q");
			continue;
		}
		tg_buf_putc(b, *s);
	}
	tg_buf_puts(b, "\\E");
}

/* check_for_to_in_subject(test) - the recipient's address ("address")
 * or local part ("user") in the Subject */
static int
spam_eval_to_in_subj(const struct spam_msg *m, const struct spam_eval_args *a)
{
	struct tg_buf	 to, subj, re, q;
	char		*at;
	bool		 hit = false;

	tg_buf_init(&subj);
	if (!spam_eval_hdr(m, "To", SPAM_HDR_ADDR, &to) ||
	    !spam_eval_hdr(m, "Subject", SPAM_HDR_DECODED, &subj)) {
		tg_buf_fini(&to);
		tg_buf_fini(&subj);
		return 0;
	}
	tg_buf_init(&re);
	tg_buf_init(&q);
	if (strcmp(a->v[0], "address") == 0) {
		tg_buf_puts(&re, "\\b");
		spam_eval_quote(&re, to.data);
		tg_buf_puts(&re, "\\b");
	} else {
		if ((at = strchr(to.data, '@')) != NULL)
			*at = '\0';
		spam_eval_quote(&q, to.data);
		tg_buf_printf(&re, "^(?:(?:re|fw):\\s*(?:\\w+\\s+)?%s$|(?-i:%s)"
		    "\\s*[,:;!?-](?:$|\\s)|%s$|,\\s*%s[,:;!?-]$)", q.data,
		    q.data, q.data, q.data);
	}
	hit = to.data[0] != '\0' && spam_eval_re(re.data, PCRE2_CASELESS,
	    subj.data);
	tg_buf_fini(&to);
	tg_buf_fini(&subj);
	tg_buf_fini(&re);
	tg_buf_fini(&q);
	return hit;
}

/* spam_eval_has_template - %[A-Z][A-Z_-] somewhere in s */
static bool
spam_eval_has_template(const char *s)
{
	for (; (s = strchr(s, '%')) != NULL; s++)
		if (s[1] >= 'A' && s[1] <= 'Z' && ((s[2] >= 'A' && s[2] <= 'Z')
		    || s[2] == '_' || s[2] == '-'))
			return true;
	return false;
}

/* check_unresolved_template - a mailer's %FIELD left in a header
 * (other than those where % is ordinary) */
static int
spam_eval_template(const struct spam_msg *m, const struct spam_eval_args *a)
{
	static const char *const skip[] = { "X-VMS-To", "X-UIDL", "X-Face",
	    "To", "Cc", "From", "Subject", "References", "In-Reply-To",
	    "Message-Id", "X-Message-Id", "Resent-Message-Id",
	    "X-Original-Message-Id" };
	const struct spam_header *h;
	size_t	i, j;

	(void)a;
	for (i = 0; i < m->nheaders; i++) {
		h = &m->headers[i];
		if (!spam_eval_has_template(h->decoded ? h->decoded : h->raw))
			continue;
		for (j = 0; j < TG_NITEMS(skip); j++)
			if (tg_strcasecmp(h->name, skip[j]) == 0)
				break;
		if (j == TG_NITEMS(skip))
			return 1;
	}
	return 0;
}

/* spam_eval_month - "Jan".."Dec" to 0..11, -1 */
static int
spam_eval_month(const char *s)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	char	m[4];
	int	i;

	for (i = 0; i < 3; i++)
		m[i] = (char)tolower((unsigned char)s[i]);
	m[3] = '\0';
	for (i = 0; i < 12; i++)
		if (strncmp(months + 3 * i, m, 3) == 0)
			return i;
	return -1;
}

/* spam_eval_date - an RFC 5322 date ("[Day,] 1 Jan 2002 10:00:00
 * +0100", obsolete zones as UTC) to a time; false if unreadable */
static bool
spam_eval_date(const char *s, time_t *t)
{
	struct tm	tm;
	char		mon[4], zone[8];
	int		d, y, hh, mm, ss = 0, z;

	memset(&tm, 0, sizeof(tm));
	while (*s != '\0' && !isdigit((unsigned char)*s))
		s++;
	zone[0] = '\0';
	if (sscanf(s, "%d %3s %d %d:%d:%d %7s", &d, mon, &y, &hh, &mm,
	    &ss, zone) < 6 && sscanf(s, "%d %3s %d %d:%d %7s", &d, mon, &y,
	    &hh, &mm, zone) < 5)
		return false;
	if ((tm.tm_mon = spam_eval_month(mon)) < 0 || d < 1 || d > 31 ||
	    hh > 23 || mm > 59 || ss > 60)
		return false;
	y += y < 50 ? 2000 : y < 1000 ? 1900 : 0;
	tm.tm_year = y - 1900;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*t = timegm(&tm);
	if ((zone[0] == '+' || zone[0] == '-') && strlen(zone) >= 5 &&
	    strspn(zone + 1, "0123456789") >= 4) {
		z = (zone[1] - '0') * 1000 + (zone[2] - '0') * 100 +
		    (zone[3] - '0') * 10 + (zone[4] - '0');
		*t -= (zone[0] == '-' ? -1 : 1) * ((z / 100) * 3600 +
		    (z % 100) * 60);
	}
	return true;
}

/* spam_eval_abs - |x| */
static double
spam_eval_abs(double x)
{
	return x < 0 ? -x : x;
}

/* check_for_shifted_date(min, max) - Date: against the Received: times:
 * the difference of smallest size, in hours, within [min, max); the
 * oldest Received: is left out when it equals Date: (its own clock).
 * No Date: or no dated Received:: a difference of 0. */
static int
spam_eval_shifted_date(const struct spam_msg *m,
    const struct spam_eval_args *a)
{
	const char	*semi;
	time_t		 date, rt;
	double		*diffs, best = 0, min, max;
	size_t		 i, n = 0;
	bool		 have = false;

	for (i = 0; i < m->nheaders && !have; i++)
		if (tg_strcasecmp(m->headers[i].name, "Resent-Date") == 0)
			have = spam_eval_date(m->headers[i].raw, &date);
	for (i = 0; i < m->nheaders && !have; i++)
		if (tg_strcasecmp(m->headers[i].name, "Date") == 0)
			have = spam_eval_date(m->headers[i].raw, &date);
	diffs = tg_calloc(m->nheaders + 1, sizeof(double));
	for (i = 0; have && i < m->nheaders; i++) {
		if (tg_strcasecmp(m->headers[i].name, "Received") != 0 ||
		    (semi = strrchr(m->headers[i].raw, ';')) == NULL ||
		    !spam_eval_date(semi + 1, &rt))
			continue;
		diffs[n++] = difftime(date, rt);
	}
	if (n > 1 && diffs[n - 1] == 0)
		n--;
	for (i = 0; i < n; i++)
		if (i == 0 || spam_eval_abs(diffs[i]) < spam_eval_abs(best))
			best = diffs[i];
	free(diffs);
	if (spam_eval_num(a, 0, &min) && best < 3600 * min)
		return 0;
	if (spam_eval_num(a, 1, &max) && best >= 3600 * max)
		return 0;
	return 1;
}

/* check_ratware_name_id - Message-Id <28 capitals.X> with From
 * "Name" <X>: one bulk mailer's mark */
static int
spam_eval_ratware_name_id(const struct spam_msg *m,
    const struct spam_eval_args *a)
{
	struct tg_buf	 mid, from, re;
	const char	*p, *q;
	bool		 hit = false;

	(void)a;
	tg_buf_init(&re);
	if (spam_eval_hdr(m, "MESSAGEID", SPAM_HDR_DECODED, &mid) &&
	    spam_eval_hdr(m, "From", SPAM_HDR_DECODED, &from)) {
		for (p = mid.data; (p = strchr(p, '<')) != NULL && !hit; p++) {
			for (q = p + 1; *q >= 'A' && *q <= 'Z'; q++)
				;
			if (q - p - 1 != 28 || *q != '.' || q[1] == '>' ||
			    strchr(q, '>') == NULL)
				continue;
			tg_buf_reset(&re);
			tg_buf_puts(&re, "\"[^\"]+\"\\s*<");
			{
				char *x = tg_strndup(q + 1,
				    (size_t)(strchr(q, '>') - q - 1));

				spam_eval_quote(&re, x);
				free(x);
			}
			tg_buf_puts(&re, ">");
			hit = spam_eval_re(re.data, 0, from.data);
		}
	} else
		tg_buf_init(&from);
	tg_buf_fini(&mid);
	tg_buf_fini(&from);
	tg_buf_fini(&re);
	return hit;
}

/* spam_eval_outlook_expected - the Message-Id time token Outlook would
 * write for time t */
static long long
spam_eval_outlook_expected(time_t t)
{
	return (long long)((double)t * 0.0023283064365387 + 27111902.8329849);
}

/* check_outlook_message_id - an Outlook-style Message-Id whose time
 * token matches neither the Date: nor the oldest Received: (a forger's) */
static int
spam_eval_outlook_mid(const struct spam_msg *m, const struct spam_eval_args *a)
{
	static const char mid_re[] = "^<[0-9a-f]{4}[0-9a-f]{8}\\$[0-9a-f]{8}"
	    "\\$[0-9a-f]{8}@";
	struct tg_buf	 mid;
	const char	*rcvd = NULL;
	char		 hex[9], *end;
	long long	 token, diff;
	time_t		 t = 0;
	size_t		 i;
	bool		 outlook;

	(void)a;
	outlook = spam_eval_hdr(m, "MESSAGEID", SPAM_HDR_DECODED, &mid) &&
	    spam_eval_re(mid_re, 0, mid.data);
	if (outlook) {
		memcpy(hex, mid.data + 5, 8);
		hex[8] = '\0';
	}
	tg_buf_fini(&mid);
	if (!outlook)
		return 0;
	token = strtoll(hex, &end, 16);
	for (i = 0; i < m->nheaders && t == 0; i++)
		if (tg_strcasecmp(m->headers[i].name, "Date") == 0 &&
		    !spam_eval_date(m->headers[i].raw, &t))
			t = 0;
	diff = token - spam_eval_outlook_expected(t);
	if (diff > -250 && diff < 250)
		return 0;
	for (i = 0; i < m->nheaders; i++)
		if (tg_strcasecmp(m->headers[i].name, "Received") == 0)
			rcvd = m->headers[i].raw;
	t = 0;
	if (rcvd != NULL && strrchr(rcvd, ';') != NULL &&
	    !spam_eval_date(strrchr(rcvd, ';') + 1, &t))
		t = 0;
	diff = token - spam_eval_outlook_expected(t);
	return diff <= -250 || diff >= 250;
}

/* ---- BodyEval, MIMEEval ---- */

/* spam_eval_body_size - bytes after the header block of full */
static size_t
spam_eval_body_size(const struct spam_msg *m, bool *sep)
{
	const char	*p = m->full, *end = m->full + m->full_len;

	*sep = false;
	for (; p != NULL && p < end; p++) {
		if (*p != '\n')
			continue;
		if (p + 1 < end && p[1] == '\n') {
			*sep = true;
			return (size_t)(end - p - 2);
		}
		if (p + 2 < end && p[1] == '\r' && p[2] == '\n') {
			*sep = true;
			return (size_t)(end - p - 3);
		}
	}
	return 0;
}

/* check_body_length(max) - the body, as received, at most max bytes */
static int
spam_eval_body_length(const struct spam_msg *m,
    const struct spam_eval_args *a)
{
	double	max;
	bool	sep;

	if (!spam_eval_num(a, 0, &max))
		return 0;
	return (double)spam_eval_body_size(m, &sep) <= max;
}

/* check_msg_parse_flags(flag) - what the parser noticed; we know
 * truncated (a scan limit), missing_head_body_separator and, from the
 * MIME part's malformed, missing_mime_head_body_separator; others never
 * fire */
static int
spam_eval_parse_flags(const struct spam_msg *m,
    const struct spam_eval_args *a)
{
	bool	sep;

	if (strcmp(a->v[0], "truncated") == 0)
		return m->truncated;
	if (strcmp(a->v[0], "missing_head_body_separator") == 0) {
		(void)spam_eval_body_size(m, &sep);
		return m->full != NULL && !sep;
	}
	if (strcmp(a->v[0], "missing_mime_head_body_separator") == 0)
		return m->malformed;
	return 0;
}

/* spam_eval_caps_charset - a declared charset whose text looks like
 * capitals to a byte count (CHARSETS_LIKELY_TO_FP_AS_CAPS) */
static bool
spam_eval_caps_charset(const struct spam_msg *m)
{
	static const char re[] = "^[-_a-z0-9]*(?:koi|jp|jis|euc|gb|big5|"
	    "isoir|cp1251|windows-1251|georgianps|pt154|tis)[-_a-z0-9]*$";
	size_t	i;

	for (i = 0; i < m->nparts; i++)
		if (m->parts[i].charset != NULL &&
		    spam_eval_re(re, PCRE2_CASELESS, m->parts[i].charset))
			return true;
	return false;
}

/* check_for_uppercase(min, max) - the share of capitals among letters
 * and digits of the body's lines with a space inside, in (min, max]
 * percent; bodies under 200 bytes of such lines count as 0 */
static int
spam_eval_uppercase(const struct spam_msg *m, const struct spam_eval_args *a)
{
	const char	*p, *e, *q, *end;
	size_t		 len = 0, upper = 0, lower = 0;
	double		 min, max, pct = 0;

	if (!spam_eval_num(a, 0, &min) || !spam_eval_num(a, 1, &max) ||
	    m->body == NULL || spam_eval_caps_charset(m))
		return 0;
	end = m->body + m->body_len;
	for (p = m->body; p < end; p = e + 1) {
		if ((e = memchr(p, '\n', (size_t)(end - p))) == NULL)
			e = end;
		for (q = p; q < e && !isspace((unsigned char)*q); q++)
			;
		for (; q < e && isspace((unsigned char)*q); q++)
			;
		if (q == p || q >= e)
			continue;	/* no \S\s+\S */
		len += (size_t)(e - p);
		for (q = p; q < e; q++) {
			lower += islower((unsigned char)*q) ||
			    isdigit((unsigned char)*q);
			upper += isupper((unsigned char)*q) != 0;
		}
	}
	if (len >= 200 && upper + lower > 0)
		pct = 100.0 * (double)upper / (double)(upper + lower);
	return pct > min && pct <= max;
}

/* check_blank_line_ratio(min, max, minlines) - blank lines of the
 * decoded text in percent, in (min, max] (or [0, max] for min 0); -1,
 * never in range, below minlines lines */
static int
spam_eval_blank_ratio(const struct spam_msg *m,
    const struct spam_eval_args *a)
{
	const char	*p, *e, *q, *end;
	double		 min, max, minlines = 1, ratio;
	size_t		 n = 0, blank = 0;

	if (!spam_eval_num(a, 0, &min) || !spam_eval_num(a, 1, &max))
		return 0;
	if (!spam_eval_num(a, 2, &minlines) || minlines < 1)
		minlines = 1;
	end = m->rawbody != NULL ? m->rawbody + m->rawbody_len : NULL;
	for (p = m->rawbody; p != NULL && p < end; p = e + 1) {
		if ((e = memchr(p, '\n', (size_t)(end - p))) == NULL)
			e = end;
		for (q = p; q < e && isspace((unsigned char)*q); q++)
			;
		n++;
		blank += q == e;
	}
	ratio = (double)n < minlines ? -1 : 100.0 * (double)blank / (double)n;
	return (min == 0 && ratio <= max) || (ratio > min && ratio <= max);
}

/* spam_eval_mime_counts - leaf parts of type text/html and of other
 * text types; true when the top Content-Type is text/html */
static bool
spam_eval_mime_counts(const struct spam_msg *m, size_t *html, size_t *text)
{
	struct tg_buf	ct;
	size_t		i;
	bool		top;

	*html = *text = 0;
	for (i = 0; i < m->nparts; i++) {
		if (m->parts[i].type == NULL)
			continue;
		if (strcmp(m->parts[i].type, "text/html") == 0)
			(*html)++;
		else if (tg_strncasecmp(m->parts[i].type, "text", 4) == 0)
			(*text)++;
	}
	top = spam_eval_hdr(m, "Content-Type", SPAM_HDR_DECODED, &ct) &&
	    tg_strncasecmp(ct.data, "text/html", 9) == 0;
	tg_buf_fini(&ct);
	return top;
}

/* check_for_mime_html - an HTML part */
static int
spam_eval_mime_html(const struct spam_msg *m, const struct spam_eval_args *a)
{
	size_t	html, text;

	(void)a;
	return spam_eval_mime_counts(m, &html, &text) || html > 0;
}

/* check_for_mime_html_only - HTML parts and no other text */
static int
spam_eval_mime_html_only(const struct spam_msg *m,
    const struct spam_eval_args *a)
{
	size_t	html, text;

	(void)a;
	return spam_eval_mime_counts(m, &html, &text) ||
	    (html > 0 && text == 0);
}

/* ---- the table ---- */

static const struct spam_eval_def {
	const char	*name;
	spam_eval_fn	 fn;
	size_t		 nargs;		/* at least */
} spam_evals[] = {
	{ "check_for_missing_to_header", spam_eval_missing_to, 0 },
	{ "check_header_count_range", spam_eval_count_range, 3 },
	{ "subject_is_all_caps", spam_eval_subj_caps, 0 },
	{ "check_illegal_chars", spam_eval_illegal, 3 },
	{ "check_for_to_in_subject", spam_eval_to_in_subj, 1 },
	{ "check_unresolved_template", spam_eval_template, 0 },
	{ "check_for_shifted_date", spam_eval_shifted_date, 2 },
	{ "check_body_length", spam_eval_body_length, 1 },
	{ "check_msg_parse_flags", spam_eval_parse_flags, 1 },
	{ "check_ratware_name_id", spam_eval_ratware_name_id, 0 },
	{ "check_outlook_message_id", spam_eval_outlook_mid, 0 },
	{ "check_for_uppercase", spam_eval_uppercase, 2 },
	{ "check_blank_line_ratio", spam_eval_blank_ratio, 2 },
	{ "check_for_mime_html", spam_eval_mime_html, 0 },
	{ "check_for_mime_html_only", spam_eval_mime_html_only, 0 },
};

/* Evals another part of tollgate answers: refused with the reason. */
static const struct {
	const char	*prefix;
	const char	*why;
} spam_eval_elsewhere[] = {
	{ "check_rbl", "done by the DNSBL part" },
	{ "check_dns_sender", "done by the DNSBL part" },
	{ "check_uridnsbl", "done by the DNSBL part (URIBL)" },
	{ "check_bayes", "done by the Bayes part" },
	{ "check_dkim", "done by the DKIM module's results" },
	{ "check_for_spf", "done by the SPF module's results" },
	{ "check_dmarc", "done by the DMARC module's results" },
};

spam_eval_fn
spam_eval_lookup(const char *name, const char **why)
{
	size_t	i;

	for (i = 0; i < TG_NITEMS(spam_evals); i++)
		if (strcmp(name, spam_evals[i].name) == 0)
			return spam_evals[i].fn;
	*why = "not implemented";
	if (strstr(name, "list_from") != NULL)
		return NULL;	/* welcomelists: not implemented */
	for (i = 0; i < TG_NITEMS(spam_eval_elsewhere); i++)
		if (strncmp(name, spam_eval_elsewhere[i].prefix,
		    strlen(spam_eval_elsewhere[i].prefix)) == 0)
			*why = spam_eval_elsewhere[i].why;
	return NULL;
}

bool
spam_eval_check_args(const char *name, const struct spam_eval_args *a,
    struct tg_err *err)
{
	size_t	i;

	for (i = 0; i < TG_NITEMS(spam_evals); i++)
		if (strcmp(name, spam_evals[i].name) == 0 &&
		    a->n < spam_evals[i].nargs) {
			(void)tg_err_set(err, TG_PERM, "eval:%s needs %zu "
			    "arguments", name, spam_evals[i].nargs);
			return false;
		}
	return true;
}
