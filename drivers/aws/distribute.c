/* distribute.c: copies, tags and permissions per region (distribute.h). */
#include <jansson.h>
#include <libxml/tree.h>

#include "distribute.h"
#include "ami.h"
#include "ec2.h"
#include "xml.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* The state file holds a few lines per region. */
#define STATE_MAX (1024u * 1024)

struct image {
	char *state, *name;
	struct strv snaps;
	struct strv tags;        /* key, value pairs */
};

static void image_release(struct image *im)
{
	free(im->state);
	free(im->name);
	strv_release(&im->snaps);
	strv_release(&im->tags);
	memset(im, 0, sizeof(*im));
}

static void texts(xmlNode *list, const char *field, struct strv *out)
{
	xmlNode *it;

	for (it = xml_child(list, "item"); it; it = xml_next(it)) {
		char *v = xml_text(it, field);

		if (v)
			strv_push(out, v);
		free(v);
	}
}

static int describe_image(struct aws_client *cl, const char *id, struct image *im)
{
	const char *p[] = { "ImageId.1", id, NULL };
	xmlDoc *doc = NULL;
	xmlNode *item, *t;
	int r = -1;

	memset(im, 0, sizeof(*im));
	if (ec2_describe_one(cl, "DescribeImages", p, "imagesSet/item", &doc, &item) < 0)
		goto cleanup;
	if (!item) {
		err_set("DescribeImages: %s not found in %s", id, aws_client_region(cl));
		goto cleanup;
	}
	im->state = xml_text(item, "imageState");
	im->name = xml_text(item, "name");
	texts(xml_child(item, "blockDeviceMapping"), "ebs/snapshotId", &im->snaps);
	for (t = xml_find(item, "tagSet/item"); t; t = xml_next(t)) {
		char *k = xml_text(t, "key"), *v = xml_text(t, "value");

		if (k) {
			strv_push(&im->tags, k);
			strv_push(&im->tags, v ? v : "");
		}
		free(k);
		free(v);
	}
	r = 0;
cleanup:
	xmlFreeDoc(doc);
	return r;
}

/* ---- checks ---- */

static bool digits(const char *s, size_t n)
{
	size_t i;

	if (strlen(s) != n)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int dist_check(const struct dist_spec *d)
{
	size_t i, j, k;

	if (d->nregions > DIST_REGIONS_MAX)
		return err_set("distribution: more than %d regions", DIST_REGIONS_MAX);
	for (i = 0; i < d->nregions; i++) {
		const struct dist_region *r = &d->regions[i];

		if (!r->region || !*r->region)
			return err_set("distribution: region %zu has no name", i + 1);
		for (j = 0; j < i; j++)
			if (strcmp(d->regions[j].region, r->region) == 0)
				return err_set("distribution: region '%s' listed twice", r->region);
		if (r->kms_key_id && !r->encrypted)
			return err_set("distribution to %s: a KMS key needs encryption", r->region);
		for (k = 0; r->accounts && r->accounts[k]; k++)
			if (!digits(r->accounts[k], 12))
				return err_set("distribution to %s: account '%s' is not a 12-digit "
					       "AWS account id", r->region, r->accounts[k]);
		for (k = 0; r->groups && r->groups[k]; k++) {
			if (strcmp(r->groups[k], "all") != 0)
				return err_set("distribution to %s: group '%s': the only launch "
					       "permission group is 'all'", r->region, r->groups[k]);
			if (!d->allow_public)
				return err_set("distribution to %s: group 'all' makes the AMI public; "
					       "confirm with --allow-public (recipe: "
					       "allow_public: true)", r->region);
		}
		for (k = 0; r->org_arns && r->org_arns[k]; k++)
			if (!str_startswith(r->org_arns[k], "arn:aws") ||
			    !strstr(r->org_arns[k], ":organization/o-"))
				return err_set("distribution to %s: '%s' is not an organization ARN",
					       r->region, r->org_arns[k]);
		for (k = 0; r->ou_arns && r->ou_arns[k]; k++)
			if (!str_startswith(r->ou_arns[k], "arn:aws") ||
			    !strstr(r->ou_arns[k], ":ou/o-"))
				return err_set("distribution to %s: '%s' is not an organizational "
					       "unit ARN", r->region, r->ou_arns[k]);
	}
	return 0;
}

/* ---- the journal ---- */

static json_t *state_load(const struct dist_spec *d, const char *src_region, const char *src)
{
	json_error_t je;
	json_t *j;

	if (!d->state_file || access(d->state_file, F_OK) < 0)
		goto fresh;
	j = json_load_file(d->state_file, 0, &je);
	if (j && json_is_object(j) && json_is_string(json_object_get(j, "source_ami")) &&
	    strcmp(json_string_value(json_object_get(j, "source_ami")), src) == 0 &&
	    json_is_object(json_object_get(j, "regions"))) {
		log_info("distribution: resuming from %s", d->state_file);
		return j;
	}
	json_decref(j);
fresh:
	return json_pack("{s:s, s:s, s:{}}", "source_ami", src, "source_region", src_region,
			 "regions");
}

static void state_set(const struct dist_spec *d, json_t *st, const char *region,
		      const char *ami, const char *step)
{
	json_t *r = json_pack("{s:s, s:s}", "ami_id", ami, "step", step);
	char *text;

	json_object_set_new(json_object_get(st, "regions"), region, r);
	if (!d->state_file)
		return;
	text = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text && strlen(text) < STATE_MAX &&
	    write_file_atomic(d->state_file, text, strlen(text), 0644) < 0) {
		log_warn("distribution journal: %s", err_msg());
		err_clear();
	}
	free(text);
}

/* ---- steps ---- */

static char *copy_token(const char *src, const char *region, const char *name)
{
	char *in = xasprintf("%s\n%s\n%s", src, region, name), hex[65];

	sigv4_sha256_hex(in, strlen(in), hex);
	free(in);
	hex[48] = '\0';
	return xstrdup(hex);
}

static int copy_image(struct aws_client *cl, const struct dist_region *r, const char *src_region,
		      const char *src, const char *name, const char *desc, char **ami)
{
	struct strv p = STRV_INIT;
	char *token = copy_token(src, r->region, name);
	xmlDoc *doc = NULL;
	int ret = -1;

	*ami = NULL;
	ec2_param(&p, "SourceImageId", src);
	ec2_param(&p, "SourceRegion", src_region);
	ec2_param(&p, "Name", name);
	if (desc)
		ec2_param(&p, "Description", desc);
	ec2_param(&p, "ClientToken", token);
	if (r->encrypted) {
		ec2_param(&p, "Encrypted", "true");
		if (r->kms_key_id)
			ec2_param(&p, "KmsKeyId", r->kms_key_id);
	}
	if (ec2_call(cl, "CopyImage", (const char *const *)p.v, &doc) < 0)
		goto cleanup;
	*ami = xml_text(xmlDocGetRootElement(doc), "imageId");
	if (!*ami || !str_startswith(*ami, "ami-")) {
		free(*ami);
		*ami = NULL;
		err_set("CopyImage to %s: no imageId in the answer", r->region);
		goto cleanup;
	}
	ret = 0;
cleanup:
	xmlFreeDoc(doc);
	strv_release(&p);
	free(token);
	return ret;
}

static bool has_tag(const struct image *im, const char *k, const char *v)
{
	size_t i;

	for (i = 0; i + 1 < im->tags.n; i += 2)
		if (strcmp(im->tags.v[i], k) == 0 && strcmp(im->tags.v[i + 1], v) == 0)
			return true;
	return false;
}

static int tag(struct aws_client *cl, const struct dist_region *r, const char *ami,
	       const struct image *im)
{
	struct strv ids = STRV_INIT, kv = STRV_INIT;
	size_t i;
	int ret = 0;

	for (i = 0; i < r->ntags; i++) {
		if (has_tag(im, r->tags[i].key, r->tags[i].value))
			continue;
		strv_push(&kv, r->tags[i].key);
		strv_push(&kv, r->tags[i].value);
	}
	if (kv.n) {
		strv_push(&ids, ami);
		for (i = 0; i < im->snaps.n; i++)
			strv_push(&ids, im->snaps.v[i]);
		ret = ec2_create_tags(cl, (const char *const *)ids.v, (const char *const *)kv.v);
	}
	strv_release(&ids);
	strv_release(&kv);
	return ret;
}

/* Add the launch permissions the AMI lacks. */
static int launch_permissions(struct aws_client *cl, const struct dist_region *r, const char *ami)
{
	static const struct { const char *field, *param; } kinds[] = {
		{ "userId", "UserId" }, { "group", "Group" },
		{ "organizationArn", "OrganizationArn" },
		{ "organizationalUnitArn", "OrganizationalUnitArn" },
	};
	const char *const *want[] = { r->accounts, r->groups, r->org_arns, r->ou_arns };
	const char *p[] = { "ImageId", ami, "Attribute", "launchPermission", NULL };
	struct strv have = STRV_INIT, add = STRV_INIT;
	xmlDoc *doc = NULL;
	xmlNode *lp;
	size_t k, i;
	int n = 0, ret = -1;

	if (!r->accounts && !r->groups && !r->org_arns && !r->ou_arns)
		return 0;
	if (ec2_describe_one(cl, "DescribeImageAttribute", p, "launchPermission", &doc, &lp) < 0)
		goto cleanup;
	for (k = 0; k < ARRAY_SIZE(kinds); k++) {
		struct strv cur = STRV_INIT;

		texts(lp, kinds[k].field, &cur);
		for (i = 0; i < cur.n; i++)
			strv_pushf(&have, "%s=%s", kinds[k].param, cur.v[i]);
		strv_release(&cur);
	}
	for (k = 0; k < ARRAY_SIZE(kinds); k++) {
		for (i = 0; want[k] && want[k][i]; i++) {
			char *pair = xasprintf("%s=%s", kinds[k].param, want[k][i]);

			if (!strv_has(&have, pair)) {
				char *key = xasprintf("LaunchPermission.Add.%d.%s", ++n, kinds[k].param);
				ec2_param(&add, key, want[k][i]);
				free(key);
			}
			free(pair);
		}
	}
	if (add.n) {
		ec2_param(&add, "ImageId", ami);
		if (ec2_call(cl, "ModifyImageAttribute", (const char *const *)add.v, NULL) < 0)
			goto cleanup;
		log_info("%s (%s): %d launch permission(s) added", ami, r->region, n);
	}
	ret = 0;
cleanup:
	xmlFreeDoc(doc);
	strv_release(&have);
	strv_release(&add);
	return ret;
}

/* createVolumePermission on the snapshots for the same accounts. */
static int volume_permissions(struct aws_client *cl, const struct dist_region *r,
			      const struct image *im)
{
	size_t s, i;
	int ret = 0;

	for (s = 0; r->accounts && s < im->snaps.n && ret == 0; s++) {
		const char *p[] = { "SnapshotId", im->snaps.v[s], "Attribute",
				    "createVolumePermission", NULL };
		struct strv have = STRV_INIT, add = STRV_INIT;
		xmlDoc *doc = NULL;
		xmlNode *cvp;
		int n = 0;

		ret = ec2_describe_one(cl, "DescribeSnapshotAttribute", p, "createVolumePermission",
				       &doc, &cvp);
		if (ret == 0) {
			texts(cvp, "userId", &have);
			for (i = 0; r->accounts[i]; i++) {
				if (strv_has(&have, r->accounts[i]))
					continue;
				char *key = xasprintf("UserId.%d", ++n);
				ec2_param(&add, key, r->accounts[i]);
				free(key);
			}
			if (add.n) {
				/* The OperationType form (AWS takes both; moto only this). */
				ec2_param(&add, "SnapshotId", im->snaps.v[s]);
				ec2_param(&add, "Attribute", "createVolumePermission");
				ec2_param(&add, "OperationType", "add");
				ret = ec2_call(cl, "ModifySnapshotAttribute", (const char *const *)add.v,
					       NULL);
			}
		}
		xmlFreeDoc(doc);
		strv_release(&have);
		strv_release(&add);
	}
	return ret;
}

static void out_add(struct dist_result *res, const char *region, const char *ami,
		    const struct image *im, const char *how)
{
	struct dist_out *o;
	size_t i;

	res->o = xrealloc(res->o, (res->n + 1) * sizeof(*res->o));
	o = &res->o[res->n++];
	o->region = xstrdup(region);
	o->ami_id = xstrdup(ami);
	o->name = xstrdup(im->name ? im->name : "");
	o->how = xstrdup(how);
	o->snapshot_ids = xcalloc(im->snaps.n + 1, sizeof(char *));
	for (i = 0; i < im->snaps.n; i++)
		o->snapshot_ids[i] = xstrdup(im->snaps.v[i]);
}

/* The AMI of region r: the source, one recorded in the journal, one that
 * exists by name, or a new copy. */
static int region_ami(struct aws_client *cl, const struct dist_spec *d, json_t *st,
		      const struct dist_region *r, const char *src_region, const char *src,
		      const struct image *src_im, char **ami, const char **how)
{
	const char *name = r->name ? r->name : src_im->name;
	const char *rec = json_string_value(json_object_get(
		json_object_get(json_object_get(st, "regions"), r->region), "ami_id"));
	struct image im;

	*ami = NULL;
	if (strcmp(r->region, src_region) == 0) {
		*ami = xstrdup(src);
		*how = "source";
		return 0;
	}
	if (rec && describe_image(cl, rec, &im) == 0) {
		bool gone = im.state && strcmp(im.state, "deregistered") == 0;

		image_release(&im);
		if (!gone) {
			*ami = xstrdup(rec);
			*how = "existing";
			return 0;
		}
	}
	err_clear();
	if (!name)
		return err_set("distribution to %s: the source AMI has no name", r->region);
	if (ec2_find_image_by_name(cl, name, ami) < 0)
		return -1;
	if (*ami) {
		*how = "existing";
		log_info("%s: AMI '%s' exists already: %s", r->region, name, *ami);
		return 0;
	}
	if (copy_image(cl, r, src_region, src, name, r->description, ami) < 0)
		return -1;
	*how = "copied";
	log_info("CopyImage %s → %s: %s '%s'", src, r->region, *ami, name);
	if (d->on_resource)
		d->on_resource(AWS_RES_KEPT, "image", *ami, r->region, d->opaque);
	state_set(d, st, r->region, *ami, "copying");
	return 0;
}

static int one_region(const struct dist_spec *d, json_t *st, const struct dist_region *r,
		      const char *src_region, const char *src, const struct image *src_im,
		      struct dist_result *res)
{
	struct aws_client_opts co = { .profile = d->profile, .region = r->region };
	struct publish_spec ps = { .poll_ms = d->poll_ms };
	struct aws_client *cl = aws_client_new(&co);
	struct image im = { 0 };
	const char *how = NULL;
	char *ami = NULL;
	int ret = -1;

	if (!cl)
		return -1;
	if (region_ami(cl, d, st, r, src_region, src, src_im, &ami, &how) < 0 ||
	    ami_wait_available(cl, &ps, ami) < 0 || describe_image(cl, ami, &im) < 0)
		goto cleanup;
	state_set(d, st, r->region, ami, "available");
	if (d->on_resource)
		for (size_t i = 0; i < im.snaps.n; i++)
			if (strcmp(how, "copied") == 0)
				d->on_resource(AWS_RES_KEPT, "snapshot", im.snaps.v[i], r->region,
					       d->opaque);
	if (tag(cl, r, ami, &im) < 0 || launch_permissions(cl, r, ami) < 0 ||
	    volume_permissions(cl, r, &im) < 0)
		goto cleanup;
	state_set(d, st, r->region, ami, "done");
	out_add(res, r->region, ami, &im, how);
	log_info("distribution: %s in %s (%s)", ami, r->region, how);
	ret = 0;
cleanup:
	if (ret < 0)
		err_prefix("distribution to %s", r->region);
	image_release(&im);
	free(ami);
	aws_client_free(cl);
	return ret;
}

int distribute(const struct dist_spec *d, const char *source_region, const char *source_ami,
	       struct dist_result *res)
{
	struct aws_client_opts co = { .profile = d->profile, .region = source_region };
	struct aws_client *cl = NULL;
	struct image src = { 0 };
	json_t *st = NULL;
	size_t i;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	if (dist_check(d) < 0)
		return -1;
	if (!d->nregions)
		return 0;
	cl = aws_client_new(&co);
	if (!cl || describe_image(cl, source_ami, &src) < 0)
		goto cleanup;
	st = state_load(d, source_region, source_ami);
	for (i = 0; i < d->nregions; i++) {
		if (aws_cancelled()) {
			err_set("distribution: interrupted (re-run to resume)");
			goto cleanup;
		}
		if (one_region(d, st, &d->regions[i], source_region, source_ami, &src, res) < 0)
			goto cleanup;
	}
	ret = 0;
cleanup:
	json_decref(st);
	image_release(&src);
	aws_client_free(cl);
	return ret;
}

void dist_result_release(struct dist_result *res)
{
	size_t i;

	if (!res)
		return;
	for (i = 0; i < res->n; i++) {
		free(res->o[i].region);
		free(res->o[i].ami_id);
		free(res->o[i].name);
		free(res->o[i].how);
		strv_free(res->o[i].snapshot_ids);
	}
	free(res->o);
	memset(res, 0, sizeof(*res));
}
