#include <jansson.h>

#include "sigv4-case.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* A request or context file of the suite is a few hundred bytes. */
#define SIGV4_CASE_FILE_MAX (1024 * 1024)

static char *opt_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

int sigv4_case_load(struct sigv4_case *c, const char *request_path,
		    const char *context_path, bool presign)
{
	struct buf b = BUF_INIT(SIGV4_CASE_FILE_MAX);
	json_error_t jerr;
	json_t *root = NULL, *creds, *v;
	struct tm tm;
	const char *ts, *end;
	int r = -1;

	memset(c, 0, sizeof(*c));
	if (buf_read_file(&b, context_path) < 0)
		goto cleanup;
	root = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
	if (!root) {
		err_set("%s:%d:%d: %s", context_path, jerr.line, jerr.column, jerr.text);
		goto cleanup;
	}
	creds = json_object_get(root, "credentials");
	c->creds.access_key_id = opt_str(creds, "access_key_id");
	c->creds.secret_access_key = opt_str(creds, "secret_access_key");
	c->creds.session_token = opt_str(creds, "token");
	c->params.region = opt_str(root, "region");
	c->params.service = opt_str(root, "service");
	if (!json_is_object(creds) || !c->creds.access_key_id || !c->creds.secret_access_key ||
	    !c->params.region || !c->params.service) {
		err_set("%s: needs credentials.access_key_id, credentials.secret_access_key, "
			"region and service", context_path);
		goto cleanup;
	}
	log_add_secret(c->creds.secret_access_key);
	if (c->creds.session_token)
		log_add_secret(c->creds.session_token);
	ts = json_string_value(json_object_get(root, "timestamp"));
	memset(&tm, 0, sizeof(tm));
	end = ts ? strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
	if (!end || *end) {
		err_set("%s: timestamp must look like 2015-08-30T12:36:00Z", context_path);
		goto cleanup;
	}
	c->params.time = timegm(&tm);
	c->params.normalize = json_is_true(json_object_get(root, "normalize"));
	c->params.sign_body = json_is_true(json_object_get(root, "sign_body"));
	c->params.omit_session_token = json_is_true(json_object_get(root, "omit_session_token"));
	v = json_object_get(root, "expiration_in_seconds");
	c->params.expires = json_is_integer(v) ? json_integer_value(v) : 3600;
	c->params.presign = presign;
	c->params.creds = &c->creds;

	buf_reset(&b);
	if (buf_read_file(&b, request_path) < 0)
		goto cleanup;
	c->request_len = b.len;
	c->request_text = buf_detach(&b, NULL);
	if (sigv4_msg_parse(&c->msg, c->request_text, c->request_len) < 0) {
		err_prefix("%s", request_path);
		goto cleanup;
	}
	r = 0;
cleanup:
	json_decref(root);
	buf_release(&b);
	if (r < 0)
		sigv4_case_release(c);
	return r;
}

void sigv4_case_release(struct sigv4_case *c)
{
	if (!c)
		return;
	free((char *)c->creds.access_key_id);
	if (c->creds.secret_access_key)
		explicit_bzero((char *)c->creds.secret_access_key,
			       strlen(c->creds.secret_access_key));
	free((char *)c->creds.secret_access_key);
	free((char *)c->creds.session_token);
	free((char *)c->params.region);
	free((char *)c->params.service);
	sigv4_msg_release(&c->msg);
	free(c->request_text);
	memset(c, 0, sizeof(*c));
}
