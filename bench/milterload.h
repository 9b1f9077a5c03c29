/*
 * milterload.h - the load driver's corpus (milterload_corpus.c), shared
 * with the protocol side (milterload.c).
 */
#ifndef MILTERLOAD_H
#define MILTERLOAD_H

#include <stddef.h>

/* One corpus message, parsed once. */
struct ml_msg {
	char		*sender;	/* envelope sender, without <> */
	size_t		 nhdr;
	char		**hname;
	char		**hval;		/* folded lines joined by "\n" */
	unsigned char	*body;		/* CRLF line ends */
	size_t		 bodylen;
};

/*
 * ml_corpus_load - the message in file path, or every regular file of
 * directory path in name order; exits with a message when none can be
 * read.  The array and its contents live until the process exits.
 */
struct ml_msg	*ml_corpus_load(const char *path, size_t *n);

#endif
