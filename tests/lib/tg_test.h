/*
 * tg_test.h - helpers shared by the modules' unit tests: log capture and
 * zone-file lines for the resolver's local data.  Test code only.
 */
#ifndef TG_TEST_H
#define TG_TEST_H

#include <stdbool.h>

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

#endif
