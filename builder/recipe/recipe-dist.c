/* recipe-dist.c: parse and validate the recipe's distribution: section. */
#include "recipe.h"
#include "recipe-dist.h"
#include "drivers/aws/distribute.h"
#include "drivers/aws/names.h"
#include "error.h"
#include "util.h"

#define DIST_LIST_MAX 100

static const char *const top_keys[] = { "allow_public", "regions" };
static const char *const region_keys[] = { "region", "name", "description", "tags", "encrypted",
					   "kms_key_id", "launch_permission" };
static const char *const lp_keys[] = { "accounts", "groups", "organization_arns",
				       "organizational_unit_arns" };

struct pctx {
	const struct ydoc *doc;
	recipe_expand_fn expand;
	void *ctx;
};

static int keys(const struct pctx *c, const struct ynode *map, const char *where,
		const char *const *words, size_t n)
{
	return ymap_check_keys(c->doc, map, where, words, n);
}

static int scalar(const struct pctx *c, const struct ynode *n, const char *what, const char **s)
{
	*s = NULL;
	if (!n || ynode_is_null(n))
		return 0;
	if (n->type != YNODE_SCALAR)
		return yerr(c->doc, n, "%s must be a string, not %s", what, ynode_kind(n));
	*s = n->str;
	return 0;
}

static int boolean(const struct pctx *c, const struct ynode *n, const char *what, bool *b)
{
	const char *s;

	if (scalar(c, n, what, &s) < 0)
		return -1;
	if (!s)
		return 0;
	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0)
		*b = true;
	else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0)
		*b = false;
	else
		return yerr(c->doc, n, "%s must be true or false, not '%s'", what, s);
	return 0;
}

static bool digits12(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return i == 12;
}

/* A list of strings, each checked by kind. */
static int list(const struct pctx *c, const struct ynode *n, const char *what, int kind,
		char ***out)
{
	size_t i;

	if (!n || ynode_is_null(n))
		return 0;
	if (n->type != YNODE_SEQ)
		return yerr(c->doc, n, "%s must be a list, not %s", what, ynode_kind(n));
	if (n->nitems > DIST_LIST_MAX)
		return yerr(c->doc, n, "%s has more than %d entries", what, DIST_LIST_MAX);
	*out = xcalloc(n->nitems + 1, sizeof(char *));
	for (i = 0; i < n->nitems; i++) {
		const struct ynode *it = n->items[i];
		const char *s;

		if (scalar(c, it, what, &s) < 0)
			return -1;
		if (!s)
			return yerr(c->doc, it, "%s: empty entry", what);
		if (kind == 0 && !digits12(s))
			return yerr(c->doc, it, "%s: '%s' is not a 12-digit AWS account id", what, s);
		if (kind == 1 && strcmp(s, "all") != 0)
			return yerr(c->doc, it, "%s: '%s': the only group is 'all'", what, s);
		if (kind == 2 && !(str_startswith(s, "arn:aws") && strstr(s, ":organization/o-")))
			return yerr(c->doc, it, "%s: '%s' is not an organization ARN", what, s);
		if (kind == 3 && !(str_startswith(s, "arn:aws") && strstr(s, ":ou/o-")))
			return yerr(c->doc, it, "%s: '%s' is not an organizational unit ARN", what, s);
		(*out)[i] = xstrdup(s);
	}
	return 0;
}

static int parse_region(const struct pctx *c, const struct ynode *n, bool allow_public,
			struct recipe_dist_region *r)
{
	const struct ynode *lp = ymap_get(n, "launch_permission"), *tags = ymap_get(n, "tags");
	const char *s;
	size_t i;

	if (n->type != YNODE_MAP)
		return yerr(c->doc, n, "a distribution region must be a mapping, not %s",
			    ynode_kind(n));
	r->line = n->line;
	r->col = n->col;
	if (keys(c, n, "the distribution region", region_keys, ARRAY_SIZE(region_keys)) < 0 ||
	    scalar(c, ymap_get(n, "region"), "region", &s) < 0)
		return -1;
	if (!s)
		return yerr(c->doc, n, "a distribution region needs 'region'");
	if (!aws_region_ok(s))
		return yerr(c->doc, ymap_get(n, "region"), "'%s' is not an AWS region name "
			    "(e.g. " AWS_REGION_EXAMPLE ")", s);
	r->region = xstrdup(s);
	if (scalar(c, ymap_get(n, "name"), "name", &s) < 0 ||
	    (s && c->expand(c->ctx, ymap_get(n, "name"), s, &r->name) < 0))
		return -1;
	if (r->name && !aws_ami_name_ok(r->name))
		return yerr(c->doc, ymap_get(n, "name"), "'%s' is not a valid AMI name (3-128 "
			    "of " AWS_AMI_NAME_CHARS ")", r->name);
	if (scalar(c, ymap_get(n, "description"), "description", &s) < 0 ||
	    (s && c->expand(c->ctx, ymap_get(n, "description"), s, &r->description) < 0))
		return -1;
	if (r->description && strlen(r->description) > AWS_DESCRIPTION_MAX)
		return yerr(c->doc, ymap_get(n, "description"), "description is longer than %d "
			    "characters", AWS_DESCRIPTION_MAX);
	if (boolean(c, ymap_get(n, "encrypted"), "encrypted", &r->encrypted) < 0 ||
	    scalar(c, ymap_get(n, "kms_key_id"), "kms_key_id", &s) < 0)
		return -1;
	if (s) {
		r->kms_key_id = xstrdup(s);
		r->encrypted = true;
	}
	if (tags && !ynode_is_null(tags)) {
		if (tags->type != YNODE_MAP)
			return yerr(c->doc, tags, "tags must be a mapping, not %s", ynode_kind(tags));
		if (tags->npairs > AWS_TAGS_MAX)
			return yerr(c->doc, tags, "more than %d tags", AWS_TAGS_MAX);
		r->tags = xcalloc(tags->npairs + 1, sizeof(*r->tags));
		for (i = 0; i < tags->npairs; i++) {
			const struct ynode *k = tags->pairs[i].key, *v = tags->pairs[i].value;

			if (!aws_tag_key_ok(k->str))
				return yerr(c->doc, k, "tag key '%s' must be 1-%d characters and not "
					    "start with 'aws:'", k->str, AWS_TAG_KEY_MAX);
			if (scalar(c, v, "a tag value", &s) < 0)
				return -1;
			r->tags[r->ntags].name = xstrdup(k->str);
			r->ntags++;
			if (c->expand(c->ctx, v, s ? s : "", &r->tags[r->ntags - 1].value) < 0)
				return -1;
			if (strlen(r->tags[r->ntags - 1].value) > AWS_TAG_VALUE_MAX)
				return yerr(c->doc, v, "tag '%s' value is longer than %d characters",
					    k->str, AWS_TAG_VALUE_MAX);
		}
	}
	if (lp && !ynode_is_null(lp)) {
		if (lp->type != YNODE_MAP)
			return yerr(c->doc, lp, "launch_permission must be a mapping, not %s",
				    ynode_kind(lp));
		if (keys(c, lp, "launch_permission", lp_keys, ARRAY_SIZE(lp_keys)) < 0 ||
		    list(c, ymap_get(lp, "accounts"), "accounts", 0, &r->accounts) < 0 ||
		    list(c, ymap_get(lp, "groups"), "groups", 1, &r->groups) < 0 ||
		    list(c, ymap_get(lp, "organization_arns"), "organization_arns", 2,
			 &r->org_arns) < 0 ||
		    list(c, ymap_get(lp, "organizational_unit_arns"), "organizational_unit_arns",
			 3, &r->ou_arns) < 0)
			return -1;
		if (r->groups && r->groups[0] && !allow_public)
			return yerr(c->doc, ymap_get(lp, "groups"), "groups: [all] makes the AMI "
				    "public: confirm with 'allow_public: true' under distribution");
	}
	return 0;
}

int recipe_dist_parse(const struct ydoc *doc, const struct ynode *n, recipe_expand_fn expand,
		      void *ctx, struct recipe_distribution *out)
{
	struct pctx c = { doc, expand, ctx };
	const struct ynode *regions = n;
	size_t i, j;

	memset(out, 0, sizeof(*out));
	if (!n || ynode_is_null(n))
		return 0;
	if (n->type == YNODE_MAP) {
		if (keys(&c, n, "distribution", top_keys, ARRAY_SIZE(top_keys)) < 0 ||
		    boolean(&c, ymap_get(n, "allow_public"), "allow_public", &out->allow_public) < 0)
			return -1;
		regions = ymap_get(n, "regions");
		if (!regions || ynode_is_null(regions))
			return yerr(doc, n, "distribution needs 'regions'");
	}
	if (regions->type != YNODE_SEQ)
		return yerr(doc, regions, "distribution regions must be a list, not %s",
			    ynode_kind(regions));
	if (regions->nitems > DIST_REGIONS_MAX)
		return yerr(doc, regions, "more than %d distribution regions", DIST_REGIONS_MAX);
	out->set = true;
	out->regions = xcalloc(regions->nitems + 1, sizeof(*out->regions));
	for (i = 0; i < regions->nitems; i++) {
		out->nregions++;
		if (parse_region(&c, regions->items[i], out->allow_public, &out->regions[i]) < 0)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(out->regions[j].region, out->regions[i].region) == 0)
				return yerr(doc, ymap_get(regions->items[i], "region"), "region '%s' "
					    "is listed twice (first at line %d)",
					    out->regions[i].region, out->regions[j].line);
	}
	return 0;
}

void recipe_dist_release(struct recipe_distribution *d)
{
	size_t i, k;

	if (!d)
		return;
	for (i = 0; i < d->nregions; i++) {
		struct recipe_dist_region *r = &d->regions[i];

		free(r->region);
		free(r->name);
		free(r->description);
		free(r->kms_key_id);
		for (k = 0; k < r->ntags; k++) {
			free(r->tags[k].name);
			free(r->tags[k].value);
		}
		free(r->tags);
		strv_free(r->accounts);
		strv_free(r->groups);
		strv_free(r->org_arns);
		strv_free(r->ou_arns);
	}
	free(d->regions);
	memset(d, 0, sizeof(*d));
}
