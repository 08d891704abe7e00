/* extras.h: the AWS calls of image pipelines (builder/pipeline/): SNS
 * Publish (Query), SSM PutParameter and License Manager (JSON 1.1 with
 * X-Amz-Target), EC2 launch template versions. Each records
 * "Action: Code: Message" on failure. */
#ifndef AMIFORGE_AWS_EXTRAS_H
#define AMIFORGE_AWS_EXTRAS_H

#include "aws.h"

/* Largest JSON answer of the JSON 1.1 services we call (small objects). */
#define AWS_JSON_MAX (1024u * 1024)
/* SNS's limit on a message (256 KiB). */
#define SNS_MESSAGE_MAX (256u * 1024)

struct json_t;

/* JSON 1.1 protocol: POST body (an object, serialised compactly) with
 * X-Amz-Target: target_prefix.action. 0 with *out (the answer object, caller
 * decrefs; out may be NULL), or -1. */
int aws_json_call(struct aws_client *cl, enum aws_service svc, const char *target_prefix,
		  const char *action, struct json_t *body, struct json_t **out);

/* SNS Publish of message (subject may be NULL) to topic_arn. *message_id
 * set (caller frees) when not NULL. */
int sns_publish(struct aws_client *cl, const char *topic_arn, const char *subject,
		const char *message, char **message_id);

/* SSM PutParameter name = value, Type String, DataType data_type (NULL:
 * "text"), Overwrite true. *version set when not NULL. */
int ssm_put_parameter(struct aws_client *cl, const char *name, const char *value,
		      const char *data_type, int64_t *version);

/* SSM GetParameter name: *value (caller frees) and *data_type ("text",
 * "aws:ec2:image"; caller frees; NULL when the answer has none). */
int ssm_get_parameter(struct aws_client *cl, const char *name, char **value,
		      char **data_type);

/* CreateLaunchTemplateVersion of the template (by id or name) from its
 * $Latest version with ImageId = image_id; with set_default, ModifyLaunchTemplate
 * makes it the default. *version set (the new version number). */
int ec2_launch_template_new_version(struct aws_client *cl, const char *lt_id,
				    const char *lt_name, const char *image_id,
				    const char *description, bool set_default, int64_t *version);

/* License Manager UpdateLicenseSpecificationsForResource: add each
 * configuration ARN (NULL-terminated) to resource_arn. */
int lm_add_license_specifications(struct aws_client *cl, const char *resource_arn,
				  const char *const *config_arns);

#endif
