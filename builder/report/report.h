/* report.h: one build's report — report.html, a single self-contained page
 * (no external resources, no JavaScript), and the same content as JSON — made
 * from what the build wrote in its directory:
 *
 *	manifest.json          build, stages, inputs, outputs, AMIs, decisions
 *	toe/ * /detailedoutput.json   every step (status, times, failure, reuse)
 *	inspect.json           the offline inspection, when the build ran one
 *	console.log            the guest console (its last lines on a failure)
 *
 * It works for a failed or interrupted build too (whatever is there is
 * shown). A build directory may come from someone else: every file is read
 * without following symlinks, up to a named size, and every string from it
 * is escaped in the page (step output and guest text are untrusted).
 *
 *	json_t *data = report_data(dir);            // NULL: error recorded
 *	report_write_html(dir, data, "report.html");
 */
#ifndef AMIFORGE_REPORT_H
#define AMIFORGE_REPORT_H

#include <jansson.h>

#include "compat.h"

/* Largest file read from a build directory (JSON or log). */
#define REPORT_FILE_MAX (32u * 1024 * 1024)
/* Most TOE executions and steps read (a build has a handful / hundreds). */
#define REPORT_TOE_MAX 256
#define REPORT_STEPS_MAX 20000
/* Lines of a log shown on a failure. */
#define REPORT_TAIL_LINES 30

/* The report's content as JSON (see report.c for its members), or NULL with
 * an error recorded when dir has no readable manifest.json. */
json_t *report_data(const char *dir);

/* Write the page for data to out (atomically, 0600). 0 or -1. */
int report_write_html(const json_t *data, const char *out);

/* Both, for a build directory: data from dir, page at dir/report.html. */
int report_write_for_build(const char *dir);

#endif
