/* publish-dist.c: recipe → distribution spec, results → JSON. */
#include "publish-dist.h"
#include "util.h"

void dist_build_from_recipe(struct dist_build *b, const struct recipe_distribution *rd)
{
	size_t i, k;

	memset(b, 0, sizeof(*b));
	b->n = rd->nregions;
	b->regions = xcalloc(b->n + 1, sizeof(*b->regions));
	b->tags = xcalloc(b->n + 1, sizeof(*b->tags));
	for (i = 0; i < b->n; i++) {
		const struct recipe_dist_region *s = &rd->regions[i];
		struct dist_region *d = &b->regions[i];

		b->tags[i] = xcalloc(s->ntags + 1, sizeof(**b->tags));
		for (k = 0; k < s->ntags; k++) {
			b->tags[i][k].key = s->tags[k].name;
			b->tags[i][k].value = s->tags[k].value;
		}
		d->region = s->region;
		d->name = s->name;
		d->description = s->description;
		d->encrypted = s->encrypted;
		d->kms_key_id = s->kms_key_id;
		d->tags = b->tags[i];
		d->ntags = s->ntags;
		d->accounts = (const char *const *)s->accounts;
		d->groups = (const char *const *)s->groups;
		d->org_arns = (const char *const *)s->org_arns;
		d->ou_arns = (const char *const *)s->ou_arns;
	}
	b->spec.regions = b->regions;
	b->spec.nregions = b->n;
	b->spec.allow_public = rd->allow_public;
}

void dist_build_release(struct dist_build *b)
{
	size_t i;

	if (!b)
		return;
	for (i = 0; i < b->n; i++)
		free(b->tags[i]);
	free(b->tags);
	free(b->regions);
	memset(b, 0, sizeof(*b));
}

json_t *dist_result_json(const struct dist_result *r)
{
	json_t *a = json_array();
	size_t i, k;

	for (i = 0; i < r->n; i++) {
		json_t *snaps = json_array();

		for (k = 0; r->o[i].snapshot_ids[k]; k++)
			json_array_append_new(snaps, json_string(r->o[i].snapshot_ids[k]));
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:o}",
			"region", r->o[i].region, "ami_id", r->o[i].ami_id, "name", r->o[i].name,
			"how", r->o[i].how, "snapshot_ids", snaps));
	}
	return a;
}

char *dist_state_path(const char *dir, const char *ami)
{
	return xasprintf("%s/distribution-%s.json", dir, ami);
}
