/* recipe-inspect.h: the recipe's inspect: section, which tunes the build's
 * offline inspection of its output (builder/inspect/inspect.h):
 *
 *	inspect:
 *	  skip: [clean.credentials]        # check ids, reported as skipped
 *	  canaries: ["do-not-ship-4f2a"]   # strings no file of the output may hold
 */
#ifndef AMIFORGE_RECIPE_INSPECT_H
#define AMIFORGE_RECIPE_INSPECT_H

#include "compat.h"
#include "yaml.h"

/* Most skips and canaries in one recipe; a canary's length bound is the
 * inspection's (1 to 256 bytes). */
#define RECIPE_INSPECT_ITEMS_MAX 32
#define RECIPE_CANARY_MAX 256

struct recipe_inspect {
	char **skip;               /* check ids, NULL-terminated (or NULL) */
	char **skip_at;            /* "file:line:col" of each, for the manifest */
	size_t nskip;
	char **canaries;           /* NULL-terminated (or NULL) */
	size_t ncanaries;
};

/* Parse the inspect: mapping n (NULL or null: nothing). Unknown keys and
 * unknown check ids are file:line:col errors. 0, or -1 (error recorded). */
int recipe_inspect_parse(const struct ydoc *doc, const struct ynode *n, struct recipe_inspect *out);
void recipe_inspect_release(struct recipe_inspect *ri);

#endif
