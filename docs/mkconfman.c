/*
 * mkconfman - write tollgate.conf(5): the template named on the command
 * line with every section's keys filled in from the parameter tables
 * that the daemons load (tg_pipeline_sections), to standard output.
 * Run by the build; a key without help text fails it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include "confman.h"
#include "tollgate/buf.h"
#include "tollgate/pipeline.h"

int
main(int argc, char **argv)
{
	const struct tg_conf_section	*secs;
	struct tg_buf			 tmpl;
	struct tg_err			 err;
	char				 chunk[4096];
	size_t				 n, got;
	FILE				*fp;
	int				 rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: mkconfman TEMPLATE > tollgate.conf.5\n");
		return EX_USAGE;
	}
	if ((fp = fopen(argv[1], "r")) == NULL) {
		perror(argv[1]);
		return EX_NOINPUT;
	}
	tg_buf_init(&tmpl);
	while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		tg_buf_append(&tmpl, chunk, got);
	if (ferror(fp)) {
		perror(argv[1]);
		rc = EX_IOERR;
	}
	(void)fclose(fp);
	secs = tg_pipeline_sections(&n);
	if (rc == 0 && tg_confman_write(stdout, tg_buf_cstr(&tmpl), secs, n,
	    &err) != TG_OK) {
		fprintf(stderr, "mkconfman: %s: %s\n", argv[1], err.text);
		rc = EX_DATAERR;
	}
	if (rc == 0 && fflush(stdout) != 0) {
		perror("mkconfman: stdout");
		rc = EX_IOERR;
	}
	tg_buf_fini(&tmpl);
	return rc;
}
