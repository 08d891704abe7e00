/* query.c: the AWS Query protocol (EC2, STS): a form-encoded POST of
 * Action, Version and parameters, answered in XML. */
#include <libxml/tree.h>

#include "client.h"
#include "xml.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* Form bodies we send: a RegisterImage with many tags is a few KiB. */
#define QUERY_BODY_MAX (1024 * 1024)

int aws_query(struct aws_client *cl, enum aws_service svc, const char *region,
	      const char *action, const char *const *params, xmlDoc **doc)
{
	struct buf body = BUF_INIT(QUERY_BODY_MAX);
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs;
	const char *version = svc == AWS_STS ? "2011-06-15" : svc == AWS_SNS ? "2010-03-31"
			      : "2016-11-15";
	const char *hdrs[] = { "Content-Type", "application/x-www-form-urlencoded; charset=utf-8",
			       NULL };
	size_t i;
	int r = -1;

	(void)region;	/* one region per client; kept for CopyImage later */
	*doc = NULL;
	buf_printf(&body, "Action=%s&Version=%s", action, version);
	for (i = 0; params && params[i] && params[i + 1]; i += 2) {
		buf_addc(&body, '&');
		sigv4_uri_encode(&body, params[i], strlen(params[i]), false);
		buf_addc(&body, '=');
		if (sigv4_uri_encode(&body, params[i + 1], strlen(params[i + 1]), false) < 0)
			return err_prefix("%s", action);
	}
	rq.service = svc;
	rq.method = "POST";
	rq.path = "/";
	rq.headers = hdrs;
	rq.body = body.data;
	rq.body_len = body.len;
	rq.what = action;
	if (aws_request(cl, &rq, &rs) < 0)
		goto cleanup;
	*doc = xml_parse(rs.body.data ? rs.body.data : "", rs.body.len);
	if (!*doc) {
		err_prefix("%s: answer", action);
		goto cleanup;
	}
	r = 0;
cleanup:
	aws_resp_release(&rs);
	buf_release(&body);
	return r;
}

int aws_sts_whoami(struct aws_client *cl, struct aws_identity *id)
{
	xmlDoc *doc = NULL;
	xmlNode *res;

	memset(id, 0, sizeof(*id));
	if (aws_query(cl, AWS_STS, NULL, "GetCallerIdentity", NULL, &doc) < 0)
		return -1;
	res = xml_find(xmlDocGetRootElement(doc), "GetCallerIdentityResult");
	id->account = xml_text(res, "Account");
	id->arn = xml_text(res, "Arn");
	id->user_id = xml_text(res, "UserId");
	xmlFreeDoc(doc);
	if (!id->account || !id->arn) {
		aws_identity_release(id);
		return err_set("GetCallerIdentity: no Account/Arn in the answer");
	}
	if (!id->user_id)
		id->user_id = xstrdup("");
	return 0;
}

void aws_identity_release(struct aws_identity *id)
{
	if (!id)
		return;
	free(id->account);
	free(id->arn);
	free(id->user_id);
	memset(id, 0, sizeof(*id));
}
