/* publish-dist.h: the distribution step shared by `amiforge publish` and
 * `amiforge build`: turns the recipe's distribution: section (or the
 * publish flags) into a dist_spec (drivers/aws/distribute.h), runs it and
 * reports every AMI and snapshot per region. */
#ifndef AMIFORGE_PUBLISH_DIST_H
#define AMIFORGE_PUBLISH_DIST_H

#include <jansson.h>

#include "builder/recipe/recipe.h"
#include "drivers/aws/distribute.h"

/* A dist_spec and the arrays it points into. */
struct dist_build {
	struct dist_spec spec;
	struct dist_region *regions;
	struct target_tag **tags;     /* per region */
	size_t n;
};

/* From the recipe's section (rd must outlive b). */
void dist_build_from_recipe(struct dist_build *b, const struct recipe_distribution *rd);
void dist_build_release(struct dist_build *b);

/* [{region, ami_id, name, how, snapshot_ids: [...]}, ...] */
json_t *dist_result_json(const struct dist_result *r);

/* The journal of a distribution of ami kept in dir (caller frees). */
char *dist_state_path(const char *dir, const char *ami);

#endif
