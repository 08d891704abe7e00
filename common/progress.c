/* progress.c: see progress.h. */
#include <stdio.h>
#include <unistd.h>

#include "progress.h"
#include "util.h"

void progress_init(struct progress *p, const char *what)
{
	p->what = what;
	p->t0 = now_ms();
	p->last = 0;
	p->tty = isatty(STDERR_FILENO) == 1;
}

static void fmt_left(char *out, size_t n, double s)
{
	if (s < 0 || s > 359999)
		snprintf(out, n, "--:--");
	else if (s >= 3600)
		snprintf(out, n, "%d:%02d:%02d", (int)s / 3600, ((int)s / 60) % 60, (int)s % 60);
	else
		snprintf(out, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

void progress_show(struct progress *p, uint64_t done, uint64_t total, const char *extra)
{
	int64_t now = now_ms(), el = now - p->t0;
	double rate = el > 0 ? (double)done / 1048576.0 / ((double)el / 1000) : 0;
	bool end = total && done >= total;
	char left[16];

	if (!end && now - p->last < (p->tty ? PROGRESS_TTY_MS : PROGRESS_PLAIN_MS))
		return;
	p->last = now;
	fmt_left(left, sizeof(left), rate > 0 && total ? (double)(total - done) / 1048576.0 / rate
							: -1);
	fprintf(stderr, "%s%s: %" PRIu64 " of %" PRIu64 " MiB (%.0f%%), %.1f MiB/s, ETA %s%s%s%s",
		p->tty ? "\r" : "", p->what, done >> 20, total >> 20,
		total ? 100.0 * (double)done / (double)total : 0.0, rate, left,
		extra ? ", " : "", extra ? extra : "",
		p->tty ? (end ? "\n" : " \033[K") : "\n");
	fflush(stderr);
}
