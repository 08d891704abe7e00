/* recipe-dist.h: the recipe's distribution: section (issue 8), read from
 * the YAML node recipe.c keeps:
 *
 *	distribution:
 *	  allow_public: false          # required true for groups: [all]
 *	  regions:                     # or the list directly under distribution:
 *	    - region: eu-west-1        # the publish region: the AMI itself
 *	      name: "{{ name }}-{{ version }}-{{ buildDate }}"
 *	      description: "..."
 *	      tags: {team: web}
 *	      encrypted: true
 *	      kms_key_id: arn:aws:kms:...
 *	      launch_permission:
 *	        accounts: ["123456789012"]
 *	        groups: [all]
 *	        organization_arns: [arn:aws:organizations::1:organization/o-abc]
 *	        organizational_unit_arns: [arn:aws:organizations::1:ou/o-abc/ou-x]
 *
 * Templates expand in name, description and tag values. Every error says
 * file:line:col. */
#ifndef AMIFORGE_RECIPE_DIST_H
#define AMIFORGE_RECIPE_DIST_H

#include "compat.h"
#include "yaml.h"

struct recipe_param;

struct recipe_dist_region {
	char *region, *name, *description, *kms_key_id;
	bool encrypted;
	struct recipe_param *tags;
	size_t ntags;
	char **accounts, **groups, **org_arns, **ou_arns;   /* NULL-terminated or NULL */
	int line, col;
};

struct recipe_distribution {
	bool set;
	bool allow_public;
	struct recipe_dist_region *regions;
	size_t nregions;
};

/* Expand templates of s found at node n into *out (recipe.c's expand). */
typedef int (*recipe_expand_fn)(void *ctx, const struct ynode *n, const char *s, char **out);

int recipe_dist_parse(const struct ydoc *doc, const struct ynode *n, recipe_expand_fn expand,
		      void *ctx, struct recipe_distribution *out);
void recipe_dist_release(struct recipe_distribution *d);

#endif
