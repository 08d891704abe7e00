/* progress.h: the progress of a long copy (convert, upload) on stderr:
 * bytes done, rate and time left, rewritten in place on a terminal; a
 * plain line every PROGRESS_PLAIN_MS otherwise (logs, CI). */
#ifndef AMIFORGE_PROGRESS_H
#define AMIFORGE_PROGRESS_H

#include "compat.h"

#define PROGRESS_PLAIN_MS 10000
#define PROGRESS_TTY_MS 250

struct progress {
	const char *what;       /* "vmdk", "upload"... */
	int64_t t0, last;
	bool tty;               /* stderr is a terminal */
};

void progress_init(struct progress *p, const char *what);
/* done of total bytes (total 0: unknown); extra: appended (NULL: none).
 * Drawn at most every PROGRESS_TTY_MS on a terminal, PROGRESS_PLAIN_MS
 * otherwise, and always when done == total. */
void progress_show(struct progress *p, uint64_t done, uint64_t total, const char *extra);

#endif
