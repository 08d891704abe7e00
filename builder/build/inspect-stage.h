/* inspect-stage.h: the build's `inspect` stage — the output disk, examined
 * offline and read-only (builder/inspect/inspect.h) from the guest's
 * powered-off disk while it is flattened (build.c's flatten_stage), before
 * the test guest and before anything is published, with the checks for the
 * recipe's publish route (the generic set when nothing is published), the
 * recipe's inspect: section (skips, canaries) and, as secrets, fragments of
 * the AWS credentials the build publishes with (kept in memory only).
 *
 *	struct inspect_stage s = { .r = r, .disk = out, .build_dir = dir };
 *	char *summary = NULL;                  // JSON for manifest.json
 *	if (inspect_stage_run(&s, &summary) < 0) ...  // failed checks named
 */
#ifndef AMIFORGE_INSPECT_STAGE_H
#define AMIFORGE_INSPECT_STAGE_H

#include "compat.h"
#include "builder/inspect/inspect.h"
#include "builder/recipe/recipe.h"

/* Fragments taken from one credential string, and their length. */
#define CRED_FRAGMENTS_MAX 3
#define CRED_FRAGMENT_LEN 16
/* Shorter credential strings are not searched (too common to mean a leak). */
#define CRED_SEARCH_MIN 12

struct inspect_stage {
	const struct recipe *r;
	const char *disk;           /* the flattened output, qcow2 */
	const char *own_chain;      /* or NULL: the guest's powered-off disk, read
				       while it is flattened into disk
				       (inspect_opts.own_chain) */
	const char *build_dir;      /* inspect.json is written there */
	const char *sbom_path;      /* the image's SBOM (CycloneDX) goes there, or NULL */
	struct appliance_early *early; /* an appliance started for it, or NULL
					  (inspect_opts.early) */
	/* Each check as it is reported (for --json events), or NULL. */
	void (*on_check)(void *opaque, const struct inspect_check *k);
	void *opaque;
};

/* Run the inspection; write BUILD_DIR/inspect.json; *summary gets the
 * manifest's "inspect" object as JSON text (caller frees; set whenever a
 * report exists). 0 when no check failed (warnings are logged), -1 when one
 * did (error recorded: each failed check with its evidence) or the disk
 * could not be inspected. */
int inspect_stage_run(const struct inspect_stage *s, char **summary);

#define CRED_FRAGMENT_BUF (2 * CRED_FRAGMENT_LEN + 1)

/* The fragments searched for one credential string s into out[0..max): s
 * whole when it is at most 2 * CRED_FRAGMENT_LEN bytes, else its start,
 * middle and end, CRED_FRAGMENT_LEN bytes each (skip_start: not the start,
 * for values with a shared prefix, like session tokens); none when s is
 * shorter than CRED_SEARCH_MIN. Returns the count. */
size_t cred_fragments(const char *s, bool skip_start, char (*out)[CRED_FRAGMENT_BUF], size_t max);

#endif
