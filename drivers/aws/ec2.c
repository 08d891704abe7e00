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

int ec2_call(struct aws_client *cl, const char *action, const char *const *params, xmlDoc **doc)
{
	xmlDoc *dropped = NULL;
	int r = aws_query(cl, AWS_EC2, NULL, action, params, doc ? doc : &dropped);

	xmlFreeDoc(dropped);
	return r;
}

int ec2_describe_one(struct aws_client *cl, const char *action, const char *const *params,
		     const char *path, xmlDoc **doc, xmlNode **item)
{
	*item = NULL;
	if (ec2_call(cl, action, params, doc) < 0)
		return -1;
	*item = xml_find(xmlDocGetRootElement(*doc), path);
	return 0;
}

/* A parameter vector as ec2_call() takes it. */
static const char *const *pv(const struct strv *p)
{
	return p ? (const char *const *)p->v : NULL;
}

/* Call action and return the text of field in its answer (*id, the
 * caller's); an answer without it is an error. */
static int call_for_id(struct aws_client *cl, const char *action, const struct strv *p,
		       const char *field, char **id)
{
	xmlDoc *doc;

	*id = NULL;
	if (ec2_call(cl, action, pv(p), &doc) < 0)
		return -1;
	*id = xml_text(xmlDocGetRootElement(doc), field);
	xmlFreeDoc(doc);
	if (!*id || !**id) {
		free(*id);
		*id = NULL;
		return err_set("%s: no %s in the answer", action, field);
	}
	return 0;
}

int ec2_import_snapshot(struct aws_client *cl, const struct strv *params, char **task_id)
{
	return call_for_id(cl, "ImportSnapshot", params, "importTaskId", task_id);
}

int ec2_import_image(struct aws_client *cl, const struct strv *params, char **task_id)
{
	return call_for_id(cl, "ImportImage", params, "importTaskId", task_id);
}

/* Where DescribeImport{Snapshot,Image}Tasks put a task's fields. */
struct task_kind {
	const char *action;
	const char *item;          /* the task in the answer */
	const char *detail;        /* its child holding the status, or NULL: the item */
	const char *snapshot_id;   /* below the status node */
	const char *image_id;      /* below the status node, or NULL: none */
};

static const struct task_kind snapshot_task = {
	.action = "DescribeImportSnapshotTasks",
	.item = "importSnapshotTaskSet/item",
	.detail = "snapshotTaskDetail",
	.snapshot_id = "snapshotId",
};

static const struct task_kind image_task = {
	.action = "DescribeImportImageTasks",
	.item = "importImageTaskSet/item",
	.snapshot_id = "snapshotDetailSet/item/snapshotId",
	.image_id = "imageId",
};

static int describe_task(struct aws_client *cl, const struct task_kind *k, const char *task_id,
			 struct ec2_import_status *st)
{
	const char *p[] = { "ImportTaskId.1", task_id, NULL };
	xmlDoc *doc = NULL;
	xmlNode *n;
	int r = -1;

	memset(st, 0, sizeof(*st));
	if (ec2_describe_one(cl, k->action, p, k->item, &doc, &n) < 0)
		goto cleanup;
	if (k->detail)
		n = xml_child(n, k->detail);
	if (!n) {
		err_set("%s: task '%s' not found", k->action, task_id);
		goto cleanup;
	}
	st->snapshot_id = xml_text(n, k->snapshot_id);
	st->image_id = k->image_id ? xml_text(n, k->image_id) : NULL;
	st->status = xml_text(n, "status");
	st->status_message = xml_text(n, "statusMessage");
	st->progress = xml_text(n, "progress");
	if (!st->status) {
		err_set("%s: task '%s' has no status", k->action, task_id);
		goto cleanup;
	}
	r = 0;
cleanup:
	if (r < 0)
		ec2_import_status_release(st);
	xmlFreeDoc(doc);
	return r;
}

int ec2_describe_import_snapshot(struct aws_client *cl, const char *task_id,
				 struct ec2_import_status *st)
{
	return describe_task(cl, &snapshot_task, task_id, st);
}

int ec2_describe_import_image(struct aws_client *cl, const char *task_id,
			      struct ec2_import_status *st)
{
	return describe_task(cl, &image_task, task_id, st);
}

int ec2_cancel_import_task(struct aws_client *cl, const char *task_id)
{
	const char *p[] = { "ImportTaskId", task_id, NULL };

	return ec2_call(cl, "CancelImportTask", p, NULL);
}

int ec2_register_image(struct aws_client *cl, const struct strv *params, char **image_id)
{
	return call_for_id(cl, "RegisterImage", params, "imageId", image_id);
}

int ec2_create_tags(struct aws_client *cl, const char *const *ids, const char *const *kv)
{
	struct strv p = STRV_INIT;
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
	r = ec2_call(cl, "CreateTags", pv(&p), NULL);
	strv_release(&p);
	return r;
}

/* DescribeImages with params: imageId, imageState and the stateReason
 * message of the first image listed (each NULL when absent; an out pointer
 * NULL: not read). */
static int first_image(struct aws_client *cl, const char *const *p, char **id, char **state,
		       char **reason)
{
	xmlDoc *doc;
	xmlNode *item;

	if (ec2_describe_one(cl, "DescribeImages", p, "imagesSet/item", &doc, &item) < 0)
		return -1;
	if (id)
		*id = xml_text(item, "imageId");
	if (state)
		*state = xml_text(item, "imageState");
	if (reason)
		*reason = xml_text(item, "stateReason/message");
	xmlFreeDoc(doc);
	return 0;
}

int ec2_image_state(struct aws_client *cl, const char *image_id, char **state, char **reason)
{
	const char *p[] = { "ImageId.1", image_id, NULL };

	*state = *reason = NULL;
	return first_image(cl, p, NULL, state, reason);
}

int ec2_find_image_by_name(struct aws_client *cl, const char *name, char **image_id)
{
	const char *p[] = { "Owner.1", "self", "Filter.1.Name", "name", "Filter.1.Value.1", name,
			    NULL };

	*image_id = NULL;
	return first_image(cl, p, image_id, NULL, NULL);
}

int ec2_snapshot_info(struct aws_client *cl, const char *snap_id, int *size_gib, char **state)
{
	const char *p[] = { "SnapshotId.1", snap_id, NULL };
	xmlDoc *doc = NULL;
	xmlNode *item;
	char *size = NULL;
	int64_t v;
	int r = -1;

	*state = NULL;
	*size_gib = 0;
	if (ec2_describe_one(cl, "DescribeSnapshots", p, "snapshotSet/item", &doc, &item) < 0)
		goto cleanup;
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
	xmlFreeDoc(doc);
	return r;
}
