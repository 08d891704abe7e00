/* onerror.h: `amiforge build --on-error=cleanup|abort|ask`.
 *
 *	cleanup  (default) a failed build releases everything it created
 *	abort    a failed build leaves its guest running for inspection, held in
 *	         the journal: `amiforge attach BUILD_DIR -- CMD` runs a command in
 *	         it, `amiforge clean BUILD_DIR` destroys it
 *	ask      a failed step asks on the terminal: retry it, continue as if it
 *	         had passed, or abort (as above); any other failure aborts
 *
 * This file holds the parsing and the prompt; build.c wires them into the
 * component engine's on_step_failed hook (component/component.h). */
#ifndef AMIFORGE_ONERROR_H
#define AMIFORGE_ONERROR_H

#include "compat.h"
#include "builder/component/component.h"

enum build_on_error {
	BUILD_ON_ERROR_CLEANUP = 0,
	BUILD_ON_ERROR_ABORT,
	BUILD_ON_ERROR_ASK,
};

/* "cleanup", "abort" or "ask". 0, or -1 with an error recorded. */
int onerror_parse_mode(const char *s, enum build_on_error *out);

/* One answer to the prompt: "r"/"retry", "c"/"continue", "a"/"abort", in
 * any case, surrounding blanks ignored. 0, or -1 (not an answer). */
int onerror_parse_answer(const char *line, enum component_on_fail *out);

/* "retry", "continue", "abort" ("fail" for COMPONENT_FAIL). */
const char *onerror_decision_name(enum component_on_fail d);

/* Longest answer line read; the rest of a longer line is discarded. */
#define ONERROR_LINE_MAX 256
/* Unrecognised answers before the prompt gives up and aborts. */
#define ONERROR_TRIES_MAX 20

/* Ask on out, read the answer from in, until it is one (see
 * onerror_parse_answer). End of input, a read error or too many bad
 * answers: COMPONENT_ABORT. step names the failed step, failure says why
 * (may be NULL); hint (may be NULL) is printed before the question (how to
 * reach the guest meanwhile). */
enum component_on_fail onerror_prompt(FILE *in, FILE *out, const char *step,
				      const char *failure, const char *hint);

#endif
