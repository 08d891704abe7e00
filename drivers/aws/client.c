/* client.c: an AWS client: configuration, region, endpoints, credentials
 * (refreshed before they expire) and the libcurl share that keeps
 * connections alive across requests and threads. */
#include <curl/curl.h>

#include "client.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* Refresh credentials this long before they expire (botocore: 15 min
 * advisory, 10 min mandatory; imports can outlive a 1 h role session). */
#define CREDS_REFRESH_MARGIN_S (10 * 60)
/* The standard mode's retry quota (botocore: 500 tokens). */
#define RETRY_QUOTA 500

static const char *const svc_env[AWS_SERVICE_COUNT] = {
	[AWS_S3] = "AWS_ENDPOINT_URL_S3",
	[AWS_EC2] = "AWS_ENDPOINT_URL_EC2",
	[AWS_EBS] = "AWS_ENDPOINT_URL_EBS",
	[AWS_STS] = "AWS_ENDPOINT_URL_STS",
	[AWS_SNS] = "AWS_ENDPOINT_URL_SNS",
	[AWS_SSM] = "AWS_ENDPOINT_URL_SSM",
	[AWS_LICENSE_MANAGER] = "AWS_ENDPOINT_URL_LICENSE_MANAGER",
};
static const char *const svc_host[AWS_SERVICE_COUNT] = {
	[AWS_S3] = "s3", [AWS_EC2] = "ec2", [AWS_EBS] = "ebs", [AWS_STS] = "sts",
	[AWS_SNS] = "sns", [AWS_SSM] = "ssm", [AWS_LICENSE_MANAGER] = "license-manager",
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void aws_curl_init(void)
{
	pthread_once(&curl_once, curl_init_once);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *u)
{
	struct aws_client *cl = u;

	(void)h;
	(void)a;
	pthread_mutex_lock(&cl->share_lock[(unsigned)data % 8]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *u)
{
	struct aws_client *cl = u;

	(void)h;
	pthread_mutex_unlock(&cl->share_lock[(unsigned)data % 8]);
}

static char *strip_slash(const char *s)
{
	char *r = xstrdup(s);
	size_t n = strlen(r);

	while (n && r[n - 1] == '/')
		r[--n] = '\0';
	return r;
}

static int resolve_endpoints(struct aws_client *cl)
{
	const char *ign = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	bool ignore = ign && strcasecmp(ign, "true") == 0;
	const char *all = ignore ? NULL : getenv("AWS_ENDPOINT_URL");
	const char *prof = ignore ? NULL : aws_profile_get(&cl->cfg, cl->cfg.profile, "endpoint_url");
	const char *region = cl->region ? cl->region : "us-east-1";
	bool china = str_startswith(region, "cn-");
	int i;

	for (i = 0; i < AWS_SERVICE_COUNT; i++) {
		const char *v = ignore ? NULL : getenv(svc_env[i]);

		if (!v || !*v)
			v = all && *all ? all : prof;
		if (v && *v) {
			if (!str_startswith(v, "http://") && !str_startswith(v, "https://"))
				return err_set("endpoint URL '%s' must start with http:// or https://", v);
			cl->endpoint[i] = strip_slash(v);
			cl->custom[i] = true;
		} else {
			cl->endpoint[i] = xasprintf("https://%s.%s.amazonaws.com%s", svc_host[i],
						    region, china ? ".cn" : "");
		}
	}
	return 0;
}

static struct aws_client *client_base(const struct aws_client_opts *o)
{
	struct aws_client *cl = xcalloc(1, sizeof(*cl));
	const char *v;
	int64_t n;
	int i;

	pthread_once(&curl_once, curl_init_once);
	if (o)
		cl->opts = *o;
	pthread_mutex_init(&cl->lock, NULL);
	for (i = 0; i < 8; i++)
		pthread_mutex_init(&cl->share_lock[i], NULL);
	cl->retry_tokens = RETRY_QUOTA;
	cl->max_attempts = cl->opts.max_attempts;
	v = getenv("AWS_MAX_ATTEMPTS");
	if (!cl->max_attempts && v && parse_i64(v, 1, 100, &n) == 0)
		cl->max_attempts = (int)n;
	if (!cl->max_attempts)
		cl->max_attempts = 3;
	cl->req_timeout_ms = cl->opts.request_timeout_ms ? cl->opts.request_timeout_ms : 60000;
	cl->op_timeout_ms = cl->opts.operation_timeout_ms ? cl->opts.operation_timeout_ms
							  : 15 * 60 * 1000;
	cl->share = curl_share_init();
	curl_share_setopt(cl->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(cl->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(cl->share, CURLSHOPT_USERDATA, cl);
	curl_share_setopt(cl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(cl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	if (aws_config_load(&cl->cfg, cl->opts.profile) < 0)
		goto fail;
	v = cl->opts.region;
	if (!v || !*v)
		v = getenv("AWS_REGION");
	if (!v || !*v)
		v = getenv("AWS_DEFAULT_REGION");
	if (!v || !*v)
		v = aws_profile_get(&cl->cfg, cl->cfg.profile, "region");
	cl->region = v && *v ? xstrdup(v) : NULL;
	if (resolve_endpoints(cl) < 0)
		goto fail;
	return cl;
fail:
	aws_client_free(cl);
	return NULL;
}

struct aws_client *aws_client_new(const struct aws_client_opts *o)
{
	struct aws_client *cl = client_base(o);

	if (!cl)
		return NULL;
	if (aws_creds_resolve(cl, &cl->creds) < 0) {
		aws_client_free(cl);
		return NULL;
	}
	if (o->need_region && !cl->region) {
		err_set("no AWS region: use --region, AWS_REGION or 'region' in the profile");
		aws_client_free(cl);
		return NULL;
	}
	log_debug("aws: credentials from %s (%s), region %s", cl->creds.source,
		  cl->creds.access_key_id, cl->region ? cl->region : "(none)");
	return cl;
}

struct aws_client *aws_client_with_creds(const struct aws_client_opts *o, const struct aws_creds *c)
{
	struct aws_client *cl = client_base(o);

	if (!cl)
		return NULL;
	cl->creds.access_key_id = xstrdup(c->access_key_id);
	cl->creds.secret_access_key = xstrdup(c->secret_access_key);
	cl->creds.session_token = c->session_token ? xstrdup(c->session_token) : NULL;
	cl->creds.source = c->source;
	cl->creds.expiration = c->expiration;
	cl->fixed_creds = true;
	return cl;
}

void aws_client_free(struct aws_client *cl)
{
	int i;

	if (!cl)
		return;
	aws_creds_release(&cl->creds);
	aws_config_release(&cl->cfg);
	for (i = 0; i < AWS_SERVICE_COUNT; i++)
		free(cl->endpoint[i]);
	free(cl->region);
	aws_http_thread_release();	/* it may still name the share */
	if (cl->share)
		curl_share_cleanup(cl->share);
	for (i = 0; i < 8; i++)
		pthread_mutex_destroy(&cl->share_lock[i]);
	pthread_mutex_destroy(&cl->lock);
	free(cl);
}

/* Caller holds cl->lock. */
static void refresh_locked(struct aws_client *cl)
{
	struct aws_creds fresh;

	if (cl->fixed_creds || !cl->creds.expiration ||
	    (int64_t)time(NULL) < cl->creds.expiration - CREDS_REFRESH_MARGIN_S)
		return;
	if (aws_creds_resolve(cl, &fresh) < 0) {
		log_warn("refresh AWS credentials: %s", err_msg());
		err_clear();
		return;
	}
	aws_creds_release(&cl->creds);
	cl->creds = fresh;
	log_debug("aws: credentials refreshed from %s", cl->creds.source);
}

const struct aws_creds *aws_client_creds(struct aws_client *cl)
{
	pthread_mutex_lock(&cl->lock);
	refresh_locked(cl);
	pthread_mutex_unlock(&cl->lock);
	return &cl->creds;
}

int aws_client_sign(struct aws_client *cl, struct sigv4_params *p, struct sigv4_msg *m)
{
	struct sigv4_creds sc;
	int r;

	pthread_mutex_lock(&cl->lock);
	refresh_locked(cl);
	sc.access_key_id = cl->creds.access_key_id;
	sc.secret_access_key = cl->creds.secret_access_key;
	sc.session_token = cl->creds.session_token;
	p->creds = &sc;
	r = sigv4_sign(p, m, NULL);
	p->creds = NULL;
	pthread_mutex_unlock(&cl->lock);
	return r;
}

const char *aws_client_region(const struct aws_client *cl)
{
	return cl->region;
}

const char *aws_client_endpoint(const struct aws_client *cl, enum aws_service svc)
{
	return cl->endpoint[svc];
}

bool aws_client_custom_endpoint(const struct aws_client *cl, enum aws_service svc)
{
	return cl->custom[svc];
}

void aws_client_set_cleanup(struct aws_client *cl, bool on)
{
	cl->cleanup = on;
}
