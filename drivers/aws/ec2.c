/* ec2.c: EC2 Query API calls for VM Import and registration. */
#include <libxml/tree.h>

#include "ec2.h"
#include "xml.h"
#include "error.h"
#include "log.h"
#include "util.h"

void ec2_param(struct strv *p, const char *name, const char *value)
{
	strv_push(p, name);
	strv_push(p, value);
}

void ec2_paramf(struct strv *p, const char *name, const char *fmt, ...)
{
	va_list ap;
	struct buf b = BUF_INIT(64 * 1024);

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	ec2_param(p, name, b.data ? b.data : "");
	buf_release(&b);
}

void ec2_import_status_release(struct ec2_import_status *s)
{
	if (!s)
		return;
	free(s->status);
	free(s->status_message);
	free(s->progress);
	free(s->snapshot_id);
	free(s->image_id);
	memset(s, 0, sizeof(*s));
}

static int call(struct aws_client *cl, const char *action, const struct strv *p, xmlDoc **doc)
{
	return aws_query(cl, AWS_EC2, NULL, action, p ? (const char *const *)p->v : NULL, doc);
}

static int task_call(struct aws_client *cl, const char *action, const struct strv *p,
		     char **task_id)
{
	xmlDoc *doc;

	*task_id = NULL;
	if (call(cl, action, p, &doc) < 0)
		return -1;
	*task_id = xml_text(xmlDocGetRootElement(doc), "importTaskId");
	xmlFreeDoc(doc);
	if (!*task_id || !**task_id) {
		free(*task_id);
		*task_id = NULL;
		return err_set("%s: no importTaskId in the answer", action);
	}
	return 0;
}

int ec2_import_snapshot(struct aws_client *cl, const struct strv *params, char **task_id)
{
	return task_call(cl, "ImportSnapshot", params, task_id);
}

int ec2_import_image(struct aws_client *cl, const struct strv *params, char **task_id)
{
	return task_call(cl, "ImportImage", params, task_id);
}

/* Call a Describe*Tasks action for one task and return the node holding its
 * status (set_path's item, or its detail child). *doc is the caller's to free. */
static int describe_task(struct aws_client *cl, const char *action, const char *set_path,
			 const char *detail, const char *task_id, xmlDoc **doc, xmlNode **node)
{
	struct strv p = STRV_INIT;
	int r = -1;

	*doc = NULL;
	ec2_param(&p, "ImportTaskId.1", task_id);
	if (call(cl, action, &p, doc) < 0)
		goto cleanup;
	*node = xml_find(xmlDocGetRootElement(*doc), set_path);
	if (detail)
		*node = xml_child(*node, detail);
	if (!*node) {
		err_set("%s: task '%s' not found", action, task_id);
		goto cleanup;
	}
	r = 0;
cleanup:
	strv_release(&p);
	return r;
}

/* Common fields of both task kinds; fails when the status is missing. */
static int task_status(const char *action, const char *task_id, xmlNode *n,
		       struct ec2_import_status *st)
{
	st->status = xml_text(n, "status");
	st->status_message = xml_text(n, "statusMessage");
	st->progress = xml_text(n, "progress");
	if (!st->status)
		return err_set("%s: task '%s' has no status", action, task_id);
	return 0;
}

int ec2_describe_import_snapshot(struct aws_client *cl, const char *task_id,
				 struct ec2_import_status *st)
{
	static const char action[] = "DescribeImportSnapshotTasks";
	xmlDoc *doc = NULL;
	xmlNode *d;
	int r = -1;

	memset(st, 0, sizeof(*st));
	if (describe_task(cl, action, "importSnapshotTaskSet/item", "snapshotTaskDetail",
			  task_id, &doc, &d) < 0)
		goto cleanup;
	st->snapshot_id = xml_text(d, "snapshotId");
	r = task_status(action, task_id, d, st);
cleanup:
	if (doc)
		xmlFreeDoc(doc);
	return r;
}

int ec2_describe_import_image(struct aws_client *cl, const char *task_id,
			      struct ec2_import_status *st)
{
	static const char action[] = "DescribeImportImageTasks";
	xmlDoc *doc = NULL;
	xmlNode *item;
	int r = -1;

	memset(st, 0, sizeof(*st));
	if (describe_task(cl, action, "importImageTaskSet/item", NULL, task_id, &doc,
			  &item) < 0)
		goto cleanup;
	st->image_id = xml_text(item, "imageId");
	st->snapshot_id = xml_text(item, "snapshotDetailSet/item/snapshotId");
	r = task_status(action, task_id, item, st);
cleanup:
	if (doc)
		xmlFreeDoc(doc);
	return r;
}

int ec2_cancel_import_task(struct aws_client *cl, const char *task_id)
{
	struct strv p = STRV_INIT;
	xmlDoc *doc = NULL;
	int r;

	ec2_param(&p, "ImportTaskId", task_id);
	r = call(cl, "CancelImportTask", &p, &doc);
	if (doc)
		xmlFreeDoc(doc);
	strv_release(&p);
	return r;
}

int ec2_register_image(struct aws_client *cl, const struct strv *params, char **image_id)
{
	xmlDoc *doc;

	*image_id = NULL;
	if (call(cl, "RegisterImage", params, &doc) < 0)
		return -1;
	*image_id = xml_text(xmlDocGetRootElement(doc), "imageId");
	xmlFreeDoc(doc);
	if (!*image_id || !**image_id) {
		free(*image_id);
		*image_id = NULL;
		return err_set("RegisterImage: no imageId in the answer");
	}
	return 0;
}

int ec2_create_tags(struct aws_client *cl, const char *const *ids, const char *const *kv)
{
	struct strv p = STRV_INIT;
	xmlDoc *doc = NULL;
	size_t i;
	int r;

	for (i = 0; ids[i]; i++) {
		char *k = xasprintf("ResourceId.%zu", i + 1);
		ec2_param(&p, k, ids[i]);
		free(k);
	}
	for (i = 0; kv[i] && kv[i + 1]; i += 2) {
		char *k = xasprintf("Tag.%zu.Key", i / 2 + 1), *v = xasprintf("Tag.%zu.Value", i / 2 + 1);
		ec2_param(&p, k, kv[i]);
		ec2_param(&p, v, kv[i + 1]);
		free(k);
		free(v);
	}
	r = call(cl, "CreateTags", &p, &doc);
	if (doc)
		xmlFreeDoc(doc);
	strv_release(&p);
	return r;
}

int ec2_image_state(struct aws_client *cl, const char *image_id, char **state, char **reason)
{
	struct strv p = STRV_INIT;
	xmlDoc *doc = NULL;
	xmlNode *item;
	int r = -1;

	*state = *reason = NULL;
	ec2_param(&p, "ImageId.1", image_id);
	if (call(cl, "DescribeImages", &p, &doc) < 0)
		goto cleanup;
	item = xml_find(xmlDocGetRootElement(doc), "imagesSet/item");
	*state = xml_text(item, "imageState");
	*reason = xml_text(item, "stateReason/message");
	r = 0;
cleanup:
	if (doc)
		xmlFreeDoc(doc);
	strv_release(&p);
	return r;
}

int ec2_find_image_by_name(struct aws_client *cl, const char *name, char **image_id)
{
	struct strv p = STRV_INIT;
	xmlDoc *doc = NULL;
	int r = -1;

	*image_id = NULL;
	ec2_param(&p, "Owner.1", "self");
	ec2_param(&p, "Filter.1.Name", "name");
	ec2_param(&p, "Filter.1.Value.1", name);
	if (call(cl, "DescribeImages", &p, &doc) < 0)
		goto cleanup;
	*image_id = xml_text(xmlDocGetRootElement(doc), "imagesSet/item/imageId");
	r = 0;
cleanup:
	if (doc)
		xmlFreeDoc(doc);
	strv_release(&p);
	return r;
}

int ec2_snapshot_info(struct aws_client *cl, const char *snap_id, int *size_gib, char **state)
{
	struct strv p = STRV_INIT;
	xmlDoc *doc = NULL;
	xmlNode *item;
	char *size = NULL;
	int64_t v;
	int r = -1;

	*state = NULL;
	*size_gib = 0;
	ec2_param(&p, "SnapshotId.1", snap_id);
	if (call(cl, "DescribeSnapshots", &p, &doc) < 0)
		goto cleanup;
	item = xml_find(xmlDocGetRootElement(doc), "snapshotSet/item");
	if (!item) {
		err_set("DescribeSnapshots: snapshot '%s' not found", snap_id);
		goto cleanup;
	}
	*state = xml_text(item, "status");
	size = xml_text(item, "volumeSize");
	if (!size || parse_i64(size, 1, 65536, &v) < 0) {
		err_set("DescribeSnapshots: snapshot '%s' has no valid volumeSize", snap_id);
		goto cleanup;
	}
	*size_gib = (int)v;
	r = 0;
cleanup:
	free(size);
	if (doc)
		xmlFreeDoc(doc);
	strv_release(&p);
	return r;
}
