/* extras.c: SNS, SSM, License Manager and launch template calls (extras.h). */
#include <jansson.h>
#include <libxml/tree.h>

#include "extras.h"
#include "ec2.h"
#include "xml.h"
#include "error.h"
#include "log.h"
#include "util.h"

int aws_json_call(struct aws_client *cl, enum aws_service svc, const char *target_prefix,
		  const char *action, json_t *body, json_t **out)
{
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs;
	char *text = json_dumps(body, JSON_COMPACT), *target = NULL;
	const char *hdrs[] = { "Content-Type", "application/x-amz-json-1.1",
			       "X-Amz-Target", NULL, NULL };
	json_error_t je;
	json_t *j = NULL;
	int r = -1;

	if (out)
		*out = NULL;
	memset(&rs, 0, sizeof(rs));
	if (!text)
		return err_set("%s: cannot serialise the request", action);
	target = xasprintf("%s.%s", target_prefix, action);
	hdrs[3] = target;
	rq.service = svc;
	rq.method = "POST";
	rq.path = "/";
	rq.headers = hdrs;
	rq.body = text;
	rq.body_len = strlen(text);
	rq.resp_max = AWS_JSON_MAX;
	rq.what = action;
	if (aws_request(cl, &rq, &rs) < 0)
		goto cleanup;
	j = json_loadb(rs.body.data ? rs.body.data : "{}", rs.body.data ? rs.body.len : 2, 0, &je);
	if (!j || !json_is_object(j)) {
		err_set("%s: answer is not a JSON object", action);
		goto cleanup;
	}
	if (out) {
		*out = j;
		j = NULL;
	}
	r = 0;
cleanup:
	json_decref(j);
	aws_resp_release(&rs);
	free(target);
	free(text);
	return r;
}

int sns_publish(struct aws_client *cl, const char *topic_arn, const char *subject,
		const char *message, char **message_id)
{
	const char *params[] = { "TopicArn", topic_arn, "Message", message,
				 subject ? "Subject" : NULL, subject, NULL };
	xmlDoc *doc = NULL;

	if (message_id)
		*message_id = NULL;
	if (strlen(message) > SNS_MESSAGE_MAX)
		return err_set("Publish: the message is larger than %u bytes", SNS_MESSAGE_MAX);
	if (aws_query(cl, AWS_SNS, NULL, "Publish", params, &doc) < 0)
		return -1;
	if (message_id)
		*message_id = xml_text(xmlDocGetRootElement(doc), "PublishResult/MessageId");
	xmlFreeDoc(doc);
	if (message_id && !*message_id)
		return err_set("Publish: no MessageId in the answer");
	return 0;
}

int ssm_put_parameter(struct aws_client *cl, const char *name, const char *value,
		      const char *data_type, int64_t *version)
{
	json_t *in = json_pack("{s:s, s:s, s:s, s:s, s:b}", "Name", name, "Value", value,
			       "Type", "String", "DataType", data_type ? data_type : "text",
			       "Overwrite", 1), *out = NULL;
	int r;

	r = aws_json_call(cl, AWS_SSM, "AmazonSSM", "PutParameter", in, &out);
	json_decref(in);
	if (r == 0 && version) {
		json_t *v = json_object_get(out, "Version");

		if (!json_is_integer(v))
			r = err_set("PutParameter: no Version in the answer");
		else
			*version = json_integer_value(v);
	}
	json_decref(out);
	return r;
}

int ssm_get_parameter(struct aws_client *cl, const char *name, char **value,
		      char **data_type)
{
	json_t *in = json_pack("{s:s}", "Name", name), *out = NULL, *p;
	const char *v, *t;
	int r;

	*value = NULL;
	if (data_type)
		*data_type = NULL;
	r = aws_json_call(cl, AWS_SSM, "AmazonSSM", "GetParameter", in, &out);
	json_decref(in);
	if (r < 0)
		goto cleanup;
	p = json_object_get(out, "Parameter");
	v = json_string_value(json_object_get(p, "Value"));
	t = json_string_value(json_object_get(p, "DataType"));
	if (!v) {
		r = err_set("GetParameter %s: no Parameter.Value in the answer", name);
		goto cleanup;
	}
	*value = xstrdup(v);
	if (data_type && t)
		*data_type = xstrdup(t);
cleanup:
	json_decref(out);
	return r;
}

int ec2_launch_template_new_version(struct aws_client *cl, const char *lt_id,
				    const char *lt_name, const char *image_id,
				    const char *description, bool set_default, int64_t *version)
{
	struct strv p = STRV_INIT;
	xmlDoc *doc = NULL;
	char *num = NULL;
	int64_t v = 0;
	int r = -1;

	if (lt_id)
		ec2_param(&p, "LaunchTemplateId", lt_id);
	else
		ec2_param(&p, "LaunchTemplateName", lt_name);
	ec2_param(&p, "SourceVersion", "$Latest");
	ec2_param(&p, "LaunchTemplateData.ImageId", image_id);
	if (description)
		ec2_param(&p, "VersionDescription", description);
	if (ec2_call(cl, "CreateLaunchTemplateVersion", (const char *const *)p.v, &doc) < 0)
		goto cleanup;
	num = xml_text(xmlDocGetRootElement(doc), "launchTemplateVersion/versionNumber");
	if (!num || parse_i64(num, 1, INT64_MAX, &v) < 0) {
		err_set("CreateLaunchTemplateVersion: no version number in the answer");
		goto cleanup;
	}
	if (set_default) {
		strv_release(&p);
		if (lt_id)
			ec2_param(&p, "LaunchTemplateId", lt_id);
		else
			ec2_param(&p, "LaunchTemplateName", lt_name);
		ec2_param(&p, "SetDefaultVersion", num);
		if (ec2_call(cl, "ModifyLaunchTemplate", (const char *const *)p.v, NULL) < 0)
			goto cleanup;
	}
	if (version)
		*version = v;
	r = 0;
cleanup:
	free(num);
	xmlFreeDoc(doc);
	strv_release(&p);
	return r;
}

int lm_add_license_specifications(struct aws_client *cl, const char *resource_arn,
				  const char *const *config_arns)
{
	json_t *in = json_object(), *add = json_array();
	size_t i;
	int r;

	for (i = 0; config_arns && config_arns[i]; i++)
		json_array_append_new(add, json_pack("{s:s}", "LicenseConfigurationArn",
						     config_arns[i]));
	json_object_set_new(in, "ResourceArn", json_string(resource_arn));
	json_object_set_new(in, "AddLicenseSpecifications", add);
	r = aws_json_call(cl, AWS_LICENSE_MANAGER, "AWSLicenseManager",
			  "UpdateLicenseSpecificationsForResource", in, NULL);
	json_decref(in);
	return r;
}
