/* creds.c: the credential provider chain of the AWS CLI (botocore):
 *
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *      AWS_SESSION_TOKEN (skipped when --profile is given explicitly);
 *   2. the profile (AWS_PROFILE or "default"):
 *      a. role_arn with source_profile (or credential_source Environment /
 *         Ec2InstanceMetadata): STS AssumeRole with the source's credentials;
 *      b. aws_access_key_id/aws_secret_access_key in ~/.aws/credentials;
 *      c. credential_process;
 *      d. the same keys in ~/.aws/config;
 *   3. IMDSv2 (instance profile), unless AWS_EC2_METADATA_DISABLED=true.
 *
 * credential_process: the CLI splits the command with Python's shlex.split
 * (POSIX rules) and runs it without a shell. We do the same split
 * (aws_split_command: whitespace, '...', "..." with \\ \" \$ \` escapes,
 * backslash outside quotes) and run the argv through common/run.h, so pipes,
 * redirections and variables are NOT interpreted: wrap them in
 * `sh -c '...'` if you need them. Its stderr goes to ours, as in the CLI.
 *
 * Every secret is registered with log_add_secret() as soon as it is parsed. */
#include <jansson.h>
#include <libxml/tree.h>

#include "client.h"
#include "xml.h"
#include "error.h"
#include "log.h"
#include "run.h"
#include "util.h"

/* credential_process output: a small JSON document. */
#define CRED_PROCESS_OUT_MAX (64 * 1024)
#define CRED_PROCESS_TIMEOUT_MS (60 * 1000)
/* Chains of source_profile deeper than this are loops in practice. */
#define ASSUME_ROLE_DEPTH_MAX 5
#define IMDS_BODY_MAX (64 * 1024)

void aws_creds_release(struct aws_creds *c)
{
	if (!c)
		return;
	if (c->secret_access_key)
		explicit_bzero(c->secret_access_key, strlen(c->secret_access_key));
	if (c->session_token)
		explicit_bzero(c->session_token, strlen(c->session_token));
	free(c->access_key_id);
	free(c->secret_access_key);
	free(c->session_token);
	memset(c, 0, sizeof(*c));
}

static void creds_set(struct aws_creds *out, const char *akid, const char *secret,
		      const char *token, const char *source)
{
	log_add_secret(secret);
	if (token && *token)
		log_add_secret(token);
	out->access_key_id = xstrdup(akid);
	out->secret_access_key = xstrdup(secret);
	out->session_token = token && *token ? xstrdup(token) : NULL;
	out->source = source;
}

/* creds_set() for a provider that says when the keys expire (exp: a UTC
 * timestamp, or NULL: never). -1 when exp does not parse (out is filled). */
static int creds_set_expiring(struct aws_creds *out, const char *akid, const char *secret,
			      const char *token, const char *exp, const char *source)
{
	creds_set(out, akid, secret, token, source);
	return exp ? aws_parse_time(exp, &out->expiration) : 0;
}

static bool from_env(struct aws_creds *out)
{
	const char *a = getenv("AWS_ACCESS_KEY_ID"), *s = getenv("AWS_SECRET_ACCESS_KEY");
	const char *t = getenv("AWS_SESSION_TOKEN");

	if (!t || !*t)
		t = getenv("AWS_SECURITY_TOKEN");
	if (!a || !*a || !s || !*s)
		return false;
	creds_set(out, a, s, t, "env");
	return true;
}

static int from_process(const char *cmd, struct aws_creds *out)
{
	struct strv argv = STRV_INIT;
	struct run r = RUN_INIT;
	json_error_t jerr;
	json_t *root = NULL, *v;
	const char *akid, *secret, *token, *exp;
	int rc = -1;

	if (aws_split_command(cmd, &argv) < 0)
		return -1;
	r.argv = (const char *const *)argv.v;
	r.out = RUN_CAPTURE;
	r.err = RUN_INHERIT;
	r.capture_max = CRED_PROCESS_OUT_MAX;
	r.timeout_ms = CRED_PROCESS_TIMEOUT_MS;
	if (run_sync(&r) < 0 || run_check(&r) < 0) {
		err_prefix("credential_process");
		goto cleanup;
	}
	if (r.truncated) {
		err_set("credential_process: output larger than %d bytes", CRED_PROCESS_OUT_MAX);
		goto cleanup;
	}
	root = json_loadb(r.out_buf.data ? r.out_buf.data : "", r.out_buf.len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		err_set("credential_process: output is not a JSON object (line %d: %s)",
			jerr.line, root ? "not an object" : jerr.text);
		goto cleanup;
	}
	v = json_object_get(root, "Version");
	akid = json_string_value(json_object_get(root, "AccessKeyId"));
	secret = json_string_value(json_object_get(root, "SecretAccessKey"));
	token = json_string_value(json_object_get(root, "SessionToken"));
	exp = json_string_value(json_object_get(root, "Expiration"));
	if (secret)
		log_add_secret(secret);
	if (token)
		log_add_secret(token);
	if (!json_is_integer(v) || json_integer_value(v) != 1) {
		err_set("credential_process: unsupported Version (expected 1)");
		goto cleanup;
	}
	if (!akid || !secret) {
		err_set("credential_process: AccessKeyId and SecretAccessKey are required");
		goto cleanup;
	}
	if (creds_set_expiring(out, akid, secret, token, exp, "credential-process") < 0) {
		err_prefix("credential_process: Expiration");
		aws_creds_release(out);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (r.out_buf.data)
		explicit_bzero(r.out_buf.data, r.out_buf.len);
	json_decref(root);	/* jansson keeps copies; they are freed here */
	run_release(&r);
	strv_release(&argv);
	return rc;
}

static int from_imds(struct aws_creds *out)
{
	const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *tmo = getenv("AWS_METADATA_SERVICE_TIMEOUT");
	struct buf b = BUF_INIT(IMDS_BODY_MAX);
	char *base, *url = NULL, *role = NULL, *hdr = NULL;
	int64_t timeout_ms = 1000, secs;
	json_t *root = NULL;
	json_error_t jerr;
	long status = 0;
	int rc = -1;

	if (tmo && parse_i64(tmo, 1, 3600, &secs) == 0)
		timeout_ms = secs * 1000;
	base = xstrdup(ep && *ep ? ep : "http://169.254.169.254");
	if (str_endswith(base, "/"))
		base[strlen(base) - 1] = '\0';

	url = xasprintf("%s/latest/api/token", base);
	{
		const char *h[] = { "X-aws-ec2-metadata-token-ttl-seconds", "21600", NULL };
		if (aws_http_plain("PUT", url, h, timeout_ms, &status, &b) < 0 || status != 200) {
			err_set("IMDS: no token from %s (status %ld)", base, status);
			goto cleanup;
		}
	}
	log_add_secret(b.data);
	hdr = xstrdup(b.data ? b.data : "");
	buf_reset(&b);
	free(url);
	url = xasprintf("%s/latest/meta-data/iam/security-credentials/", base);
	{
		const char *h[] = { "X-aws-ec2-metadata-token", hdr, NULL };
		if (aws_http_plain("GET", url, h, timeout_ms, &status, &b) < 0 || status != 200 ||
		    !b.data || !*b.data) {
			err_set("IMDS: no instance profile role at %s (status %ld)", base, status);
			goto cleanup;
		}
		role = xstrndup(b.data, strcspn(b.data, "\r\n"));
		buf_reset(&b);
		free(url);
		url = xasprintf("%s/latest/meta-data/iam/security-credentials/%s", base, role);
		if (aws_http_plain("GET", url, h, timeout_ms, &status, &b) < 0 || status != 200) {
			err_set("IMDS: no credentials for role '%s' (status %ld)", role, status);
			goto cleanup;
		}
	}
	root = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
	if (!root) {
		err_set("IMDS: credentials are not JSON: %s", jerr.text);
		goto cleanup;
	}
	{
		const char *akid = json_string_value(json_object_get(root, "AccessKeyId"));
		const char *secret = json_string_value(json_object_get(root, "SecretAccessKey"));
		const char *token = json_string_value(json_object_get(root, "Token"));
		const char *exp = json_string_value(json_object_get(root, "Expiration"));

		if (secret)
			log_add_secret(secret);
		if (!akid || !secret) {
			err_set("IMDS: credentials for role '%s' lack AccessKeyId/SecretAccessKey", role);
			goto cleanup;
		}
		/* An Expiration that does not parse: keys without one. */
		creds_set_expiring(out, akid, secret, token, exp, "imds");
	}
	rc = 0;
cleanup:
	if (b.data)
		explicit_bzero(b.data, b.len);
	json_decref(root);
	buf_release(&b);
	free(base);
	free(url);
	free(role);
	free(hdr);
	return rc;
}

static int assume_role(struct aws_client *cl, const char *profile,
		       const struct aws_creds *src, struct aws_creds *out)
{
	const struct aws_config *cfg = &cl->cfg;
	const char *arn = aws_profile_get(cfg, profile, "role_arn");
	const char *sess = aws_profile_get(cfg, profile, "role_session_name");
	const char *ext = aws_profile_get(cfg, profile, "external_id");
	const char *dur = aws_profile_get(cfg, profile, "duration_seconds");
	struct aws_client *sts = NULL;
	struct strv params = STRV_INIT;
	xmlDoc *doc = NULL;
	xmlNode *c;
	char *akid = NULL, *secret = NULL, *token = NULL, *exp = NULL, *defsess = NULL;
	int rc = -1;

	if (aws_profile_get(cfg, profile, "mfa_serial"))
		return err_set("profile '%s': mfa_serial is not supported (no terminal prompt)",
			       profile);
	sts = aws_client_with_creds(&cl->opts, src);
	if (!sts)
		return -1;
	if (!sess)
		sess = defsess = xasprintf("amiforge-%lld", (long long)time(NULL));
	strv_push(&params, "RoleArn");
	strv_push(&params, arn);
	strv_push(&params, "RoleSessionName");
	strv_push(&params, sess);
	if (ext) {
		strv_push(&params, "ExternalId");
		strv_push(&params, ext);
	}
	if (dur) {
		strv_push(&params, "DurationSeconds");
		strv_push(&params, dur);
	}
	if (aws_query(sts, AWS_STS, NULL, "AssumeRole", (const char *const *)params.v, &doc) < 0) {
		err_prefix("assume role '%s' (profile '%s')", arn, profile);
		goto cleanup;
	}
	c = xml_find(xmlDocGetRootElement(doc), "AssumeRoleResult/Credentials");
	akid = xml_text(c, "AccessKeyId");
	secret = xml_text(c, "SecretAccessKey");
	token = xml_text(c, "SessionToken");
	exp = xml_text(c, "Expiration");
	if (secret)
		log_add_secret(secret);
	if (token)
		log_add_secret(token);
	if (!akid || !secret || !token) {
		err_set("assume role '%s': no credentials in the STS answer", arn);
		goto cleanup;
	}
	creds_set_expiring(out, akid, secret, token, exp, "assume-role");
	rc = 0;
cleanup:
	if (secret)
		explicit_bzero(secret, strlen(secret));
	if (token)
		explicit_bzero(token, strlen(token));
	free(akid);
	free(secret);
	free(token);
	free(exp);
	free(defsess);
	if (doc)
		xmlFreeDoc(doc);
	strv_release(&params);
	aws_client_free(sts);
	return rc;
}

/* Credentials of one profile (steps 2a-2d). 1 found, 0 none, -1 error. */
static int from_profile(struct aws_client *cl, const char *profile, int depth,
			struct aws_creds *out)
{
	const struct aws_config *cfg = &cl->cfg;
	const char *role = aws_profile_get(cfg, profile, "role_arn");
	const char *akid, *secret, *token, *proc;

	if (depth > ASSUME_ROLE_DEPTH_MAX)
		return err_set("profile '%s': source_profile chain longer than %d",
			       profile, ASSUME_ROLE_DEPTH_MAX);
	if (role) {
		const char *src = aws_profile_get(cfg, profile, "source_profile");
		const char *csrc = aws_profile_get(cfg, profile, "credential_source");
		struct aws_creds s = { 0 };
		int r;

		if (src && strcmp(src, profile) == 0) {
			/* A profile may hold its own source keys. */
			akid = aws_ini_get(&cfg->credentials, profile, "aws_access_key_id");
			secret = aws_ini_get(&cfg->credentials, profile, "aws_secret_access_key");
			if (!akid || !secret)
				return err_set("profile '%s': source_profile is itself but it has "
					       "no keys", profile);
			creds_set(&s, akid, secret,
				  aws_ini_get(&cfg->credentials, profile, "aws_session_token"),
				  "shared-credentials-file");
			r = 1;
		} else if (src) {
			if (!aws_profile_exists(cfg, src))
				return err_set("profile '%s': source_profile '%s' not found",
					       profile, src);
			r = from_profile(cl, src, depth + 1, &s);
			if (r == 0)
				return err_set("profile '%s': source_profile '%s' has no credentials",
					       profile, src);
		} else if (csrc && strcmp(csrc, "Environment") == 0) {
			r = from_env(&s) ? 1 : err_set("profile '%s': credential_source "
						       "Environment but no AWS_ACCESS_KEY_ID", profile);
		} else if (csrc && strcmp(csrc, "Ec2InstanceMetadata") == 0) {
			r = from_imds(&s) < 0 ? -1 : 1;
		} else {
			return err_set("profile '%s': role_arn needs source_profile or "
				       "credential_source (Environment, Ec2InstanceMetadata)", profile);
		}
		if (r < 0)
			return -1;
		r = assume_role(cl, profile, &s, out);
		aws_creds_release(&s);
		return r < 0 ? -1 : 1;
	}
	akid = aws_ini_get(&cfg->credentials, profile, "aws_access_key_id");
	secret = aws_ini_get(&cfg->credentials, profile, "aws_secret_access_key");
	token = aws_ini_get(&cfg->credentials, profile, "aws_session_token");
	if (akid && secret) {
		creds_set(out, akid, secret, token, "shared-credentials-file");
		return 1;
	}
	proc = aws_profile_get(cfg, profile, "credential_process");
	if (proc)
		return from_process(proc, out) < 0 ? -1 : 1;
	{
		char *sec = xasprintf("profile %s", profile);
		const struct aws_ini *c = &cfg->config;

		akid = aws_ini_get(c, sec, "aws_access_key_id");
		secret = aws_ini_get(c, sec, "aws_secret_access_key");
		token = aws_ini_get(c, sec, "aws_session_token");
		if (!akid && strcmp(profile, "default") == 0) {
			akid = aws_ini_get(c, "default", "aws_access_key_id");
			secret = aws_ini_get(c, "default", "aws_secret_access_key");
			token = aws_ini_get(c, "default", "aws_session_token");
		}
		free(sec);
	}
	if (akid && secret) {
		creds_set(out, akid, secret, token, "config-file");
		return 1;
	}
	return 0;
}

int aws_creds_resolve(struct aws_client *cl, struct aws_creds *out)
{
	const char *dis = getenv("AWS_EC2_METADATA_DISABLED");
	int r;

	memset(out, 0, sizeof(*out));
	if (!cl->cfg.profile_explicit && from_env(out))
		return 0;
	r = from_profile(cl, cl->cfg.profile, 0, out);
	if (r < 0)
		return -1;
	if (r > 0)
		return 0;
	if (dis && strcasecmp(dis, "true") == 0)
		return err_set("no AWS credentials found (environment, profile '%s' in "
			       "~/.aws/credentials or ~/.aws/config; IMDS disabled)", cl->cfg.profile);
	if (from_imds(out) < 0) {
		err_prefix("no AWS credentials found (environment, profile '%s' in "
			   "~/.aws/credentials or ~/.aws/config, instance metadata)", cl->cfg.profile);
		return -1;
	}
	return 0;
}
