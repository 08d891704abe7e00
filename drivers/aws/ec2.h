/* ec2.h: the EC2 calls of the VM Import and registration paths. Each takes
 * parameters as a strv of "Name", "value" pairs built by the caller or
 * typed arguments, and records "Action: Code: Message" on failure. */
#ifndef AMIFORGE_AWS_EC2_H
#define AMIFORGE_AWS_EC2_H

#include "aws.h"
#include "util.h"

/* One import task as DescribeImport{Snapshot,Image}Tasks reports it. */
struct ec2_import_status {
	char *status;          /* active, completed, deleting, deleted */
	char *status_message;  /* e.g. "converting", "ClientError: ..." */
	char *progress;        /* "0".."100" or NULL */
	char *snapshot_id;
	char *image_id;        /* ImportImage */
};
void ec2_import_status_release(struct ec2_import_status *s);

struct _xmlDoc;
struct _xmlNode;

/* Call an EC2 action with params ("Name", "value" pairs, NULL-terminated;
 * NULL: none). doc NULL: the answer is dropped; otherwise *doc is the
 * caller's to free (xmlFreeDoc), NULL on failure. 0 or -1. */
int ec2_call(struct aws_client *cl, const char *action, const char *const *params,
	     struct _xmlDoc **doc);
/* Describe one resource: call action with params and find the node at path
 * in the answer ("imagesSet/item": the first image listed). 0 with *item
 * (NULL when the answer has none) and *doc the caller's to free, or -1 with
 * *doc NULL. */
int ec2_describe_one(struct aws_client *cl, const char *action, const char *const *params,
		     const char *path, struct _xmlDoc **doc, struct _xmlNode **item);

/* Append a pair to a parameter vector. */
void ec2_param(struct strv *p, const char *name, const char *value);
void ec2_paramf(struct strv *p, const char *name, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* ImportSnapshot / ImportImage with the given parameters: *task_id set. */
int ec2_import_snapshot(struct aws_client *cl, const struct strv *params, char **task_id);
int ec2_import_image(struct aws_client *cl, const struct strv *params, char **task_id);
/* Describe one task. */
int ec2_describe_import_snapshot(struct aws_client *cl, const char *task_id,
				 struct ec2_import_status *st);
int ec2_describe_import_image(struct aws_client *cl, const char *task_id,
			      struct ec2_import_status *st);
int ec2_cancel_import_task(struct aws_client *cl, const char *task_id);

int ec2_register_image(struct aws_client *cl, const struct strv *params, char **image_id);
/* CreateTags on ids (NULL-terminated) with keys/values (pairs, NULL-terminated). */
int ec2_create_tags(struct aws_client *cl, const char *const *ids, const char *const *kv);
/* imageState (and stateReason message) of an AMI; *state NULL if not found. */
int ec2_image_state(struct aws_client *cl, const char *image_id, char **state, char **reason);
/* An AMI of ours with this name, or *image_id NULL. */
int ec2_find_image_by_name(struct aws_client *cl, const char *name, char **image_id);
/* Size in GiB and state of a snapshot. */
int ec2_snapshot_info(struct aws_client *cl, const char *snap_id, int *size_gib, char **state);

#endif
