/* http.c: signed AWS requests over libcurl with the SDKs' "standard" retry
 * mode (AWS-NOTES.md): up to max_attempts (default 3), full-jitter backoff
 * random(0,1) x min(2^(attempt-1), 20) s, a retry quota of 500 tokens (5 per
 * retry, 10 after a timeout, refunded on success), retries on 500/502/503/504,
 * connection errors and the throttling/transient codes below. Every attempt
 * has a deadline and the whole call has one; Ctrl-C stops transfers. */
#include <curl/curl.h>
#include <jansson.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <signal.h>

#include "client.h"
#include "xml.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define MAX_BACKOFF_MS 20000
#define CONNECT_TIMEOUT_MS 10000
/* A streamed upload that moves nothing for this long is dead. */
#define STALL_SECONDS 60
/* A memory body this large (a streamed S3 part) is a transfer, like a
 * file's: no per-attempt timeout, stall detection instead. */
#define TRANSFER_BODY_MIN (1u << 20)
#define RETRY_COST 5
#define RETRY_TIMEOUT_COST 10
/* Idle connections a request may leave in the client's share: libcurl's
 * default (5) closed the oldest whenever more threads than that had
 * finished a request, so EBS direct's 32 workers opened a new connection
 * for nearly every block (a TLS handshake each, against AWS). Above the
 * largest worker pools (EBS_PARALLEL_MAX, S3_PARALLEL_MAX: 64). */
#define CONNECTIONS_KEPT 128
/* Header lines we keep (ETag, request id, error type) are short. */
#define HDR_VALUE_MAX 1024

static volatile sig_atomic_t cancelled;

void aws_cancel_request(void)
{
	cancelled = 1;
}

bool aws_cancelled(void)
{
	return cancelled != 0;
}

static void on_signal(int sig)
{
	(void)sig;
	cancelled = 1;
}

void aws_cancel_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int aws_sleep_ms(int64_t ms)
{
	while (ms > 0) {
		int64_t step = ms > 100 ? 100 : ms;
		struct timespec ts = { step / 1000, (long)(step % 1000) * 1000000L };

		if (cancelled)
			return -1;
		nanosleep(&ts, NULL);
		ms -= step;
	}
	return cancelled ? -1 : 0;
}

bool aws_retryable_code(const char *code)
{
	static const char *const codes[] = {
		/* transient */
		"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
		"InternalError", "ServiceUnavailable",
		/* throttling */
		"Throttling", "ThrottlingException", "ThrottledException",
		"RequestThrottledException", "TooManyRequestsException",
		"ProvisionedThroughputExceededException", "TransactionInProgressException",
		"RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException",
		"RequestThrottled", "SlowDown", "EC2ThrottledException",
	};
	size_t i;

	if (!code)
		return false;
	for (i = 0; i < ARRAY_SIZE(codes); i++)
		if (strcmp(code, codes[i]) == 0)
			return true;
	return false;
}

void aws_resp_release(struct aws_resp *resp)
{
	if (!resp)
		return;
	buf_release(&resp->body);
	free(resp->etag);
	free(resp->request_id);
	free(resp->error_code);
	free(resp->error_message);
	free(resp->checksum);
	memset(resp, 0, sizeof(*resp));
}

struct xfer {
	const struct aws_req *req;
	struct aws_resp *resp;
	uint64_t pos;          /* body bytes handed to curl */
	bool too_big;
	bool read_error;
	char *error_type;      /* x-amzn-ErrorType */
	bool ignore_cancel;
	CURL *h;
	uint64_t sunk;         /* bytes given to req->on_body */
	char *sink_error;      /* on_body failed: its message */
};

static size_t on_write(char *p, size_t sz, size_t n, void *u)
{
	struct xfer *x = u;

	if (x->req->on_body) {
		long st = 0;

		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &st);
		if (st >= 200 && st < 300) {
			if (x->req->on_body(x->req->body_opaque, x->sunk, p, sz * n) < 0) {
				x->sink_error = xstrdup(err_msg());
				return 0;
			}
			x->sunk += sz * n;
			return sz * n;
		}
	}
	if (buf_add(&x->resp->body, p, sz * n) < 0) {
		x->too_big = true;
		return 0;
	}
	return sz * n;
}

static size_t on_read(char *p, size_t sz, size_t n, void *u)
{
	struct xfer *x = u;
	const struct aws_req *rq = x->req;
	uint64_t total = rq->body_fd >= 0 ? rq->body_size : rq->body_len;
	size_t want = sz * n;
	ssize_t got;

	if (x->pos >= total)
		return 0;
	if (want > total - x->pos)
		want = (size_t)(total - x->pos);
	if (rq->body_fd >= 0) {
		got = pread(rq->body_fd, p, want, (off_t)(rq->body_off + x->pos));
		if (got <= 0) {
			x->read_error = true;
			return CURL_READFUNC_ABORT;
		}
	} else {
		memcpy(p, (const char *)rq->body + x->pos, want);
		got = (ssize_t)want;
	}
	x->pos += (uint64_t)got;
	return (size_t)got;
}

static int on_seek(void *u, curl_off_t off, int origin)
{
	struct xfer *x = u;

	if (origin != SEEK_SET || off < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	x->pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static int on_progress(void *u, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct xfer *x = u;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	if (x->req->progress)
		x->req->progress(x->req->progress_opaque, (uint64_t)ulnow);
	return cancelled && !x->ignore_cancel ? 1 : 0;
}

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name), vl;
	const char *v;

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	v = line + nl + 1;
	vl = len - nl - 1;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (vl > HDR_VALUE_MAX)
		vl = HDR_VALUE_MAX;
	return xstrndup(v, vl);
}

static size_t on_header(char *p, size_t sz, size_t n, void *u)
{
	struct xfer *x = u;
	size_t len = sz * n;
	char *v;

	if ((v = header_value(p, len, "ETag"))) {
		free(x->resp->etag);
		x->resp->etag = v;
	} else if ((v = header_value(p, len, "x-amz-request-id")) ||
		   (v = header_value(p, len, "x-amzn-RequestId"))) {
		free(x->resp->request_id);
		x->resp->request_id = v;
	} else if ((v = header_value(p, len, "x-amz-Checksum"))) {
		free(x->resp->checksum);
		x->resp->checksum = v;
	} else if ((v = header_value(p, len, "x-amzn-ErrorType"))) {
		free(x->error_type);
		x->error_type = v;
	}
	return len;
}

/* Fill resp->error_code/message from the body (XML or JSON) or status. */
static void parse_error(struct aws_resp *resp, const char *error_type)
{
	const char *b = resp->body.data ? resp->body.data : "";
	size_t skip = strspn(b, " \t\r\n");

	free(resp->error_code);
	free(resp->error_message);
	resp->error_code = resp->error_message = NULL;
	if (b[skip] == '<') {
		xmlDoc *doc = xml_parse(b, resp->body.len);
		xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL, *e = NULL;

		if (root && strcmp((const char *)root->name, "Error") == 0)
			e = root;                                   /* S3 */
		else if (root && strcmp((const char *)root->name, "Response") == 0)
			e = xml_find(root, "Errors/Error");         /* EC2 */
		else if (root && strcmp((const char *)root->name, "ErrorResponse") == 0)
			e = xml_child(root, "Error");               /* STS, IAM */
		if (e) {
			resp->error_code = xml_text(e, "Code");
			resp->error_message = xml_text(e, "Message");
			if (!resp->request_id) {
				resp->request_id = xml_text(root, "RequestId");
				if (!resp->request_id)
					resp->request_id = xml_text(root, "RequestID");
			}
		}
		if (doc)
			xmlFreeDoc(doc);
		err_clear();
	} else if (b[skip] == '{' || error_type) {
		json_t *j = json_loadb(b, resp->body.len, 0, NULL);
		const char *t = error_type, *m = NULL;

		if (j) {
			if (!t)
				t = json_string_value(json_object_get(j, "__type"));
			if (!t)
				t = json_string_value(json_object_get(j, "code"));
			m = json_string_value(json_object_get(j, "message"));
			if (!m)
				m = json_string_value(json_object_get(j, "Message"));
		}
		if (t) {
			const char *hash = strrchr(t, '#');
			t = hash ? hash + 1 : t;
			resp->error_code = xstrndup(t, strcspn(t, ":"));
		}
		if (m)
			resp->error_message = xstrdup(m);
		json_decref(j);
	}
	if (!resp->error_code)
		resp->error_code = xasprintf("HTTP%ld", resp->status);
}

static const char *svc_name(enum aws_service s)
{
	static const char *const n[AWS_SERVICE_COUNT] = {
		[AWS_S3] = "s3", [AWS_EC2] = "ec2", [AWS_EBS] = "ebs", [AWS_STS] = "sts",
		[AWS_SNS] = "sns", [AWS_SSM] = "ssm", [AWS_LICENSE_MANAGER] = "license-manager",
	};
	return n[s];
}

/* "host[:port]" of an endpoint URL. */
static char *url_host(const char *url)
{
	const char *p = strstr(url, "://"), *e;

	p = p ? p + 3 : url;
	e = p + strcspn(p, "/?#");
	return xstrndup(p, (size_t)(e - p));
}

/* One curl handle per thread, kept between requests and reset for each:
 * a handle made and freed per request also made and closed a wake-up
 * socket pair, a multi handle and its buffers every time (EBS direct sends
 * one request per 512 KiB block: ~10% of its CPU). Connections live in the
 * client's share, which a handle is detached from after each request. */
static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void handle_free(void *h)
{
	curl_easy_cleanup(h);
}

static void handle_key_init(void)
{
	if (pthread_key_create(&handle_key, handle_free) != 0)
		abort();
}

static CURL *handle_get(void)
{
	CURL *h;

	pthread_once(&handle_once, handle_key_init);
	h = pthread_getspecific(handle_key);
	if (h) {
		curl_easy_reset(h);
		return h;
	}
	h = curl_easy_init();
	if (h && pthread_setspecific(handle_key, h) != 0) {
		curl_easy_cleanup(h);
		h = NULL;
	}
	return h;
}

void aws_http_thread_release(void)
{
	CURL *h;

	pthread_once(&handle_once, handle_key_init);
	h = pthread_getspecific(handle_key);
	if (h) {
		pthread_setspecific(handle_key, NULL);
		curl_easy_cleanup(h);
	}
}

enum outcome { OK, FAIL, RETRY, RETRY_TIMEOUT };

/* Sign: the request as SigV4 sees it (host, headers, the body or its
 * hash), signed with the client's credentials. 0 or -1 with *why. */
static int sign(struct aws_client *cl, const struct aws_req *rq, const char *host,
		struct sigv4_msg *m, char **why)
{
	struct sigv4_params sp = { 0 };
	bool streamed = rq->body_fd >= 0;
	size_t i;

	sigv4_msg_init(m, rq->method, rq->path ? rq->path : "/", rq->query);
	sigv4_msg_add(m, "Host", host);
	for (i = 0; rq->headers && rq->headers[i] && rq->headers[i + 1]; i += 2)
		sigv4_msg_add(m, rq->headers[i], rq->headers[i + 1]);
	if (!streamed) {
		m->body = rq->body;
		m->body_len = rq->body_len;
		/* A caller that hashed the body already (EBS blocks) saves a pass. */
		if (rq->body_sha256)
			snprintf(m->payload_hash, sizeof(m->payload_hash), "%s", rq->body_sha256);
	} else if (rq->body_sha256) {
		snprintf(m->payload_hash, sizeof(m->payload_hash), "%s", rq->body_sha256);
	} else {
		m->unsigned_payload = true;
	}
	sp.region = cl->region ? cl->region : "us-east-1";
	sp.service = svc_name(rq->service);
	sp.time = time(NULL);
	sp.normalize = rq->service != AWS_S3;
	sp.sign_body = rq->service == AWS_S3;
	if (aws_client_sign(cl, &sp, m) < 0) {
		*why = xstrdup(err_msg());
		return -1;
	}
	return 0;
}

/* Send: a curl handle for the signed message (callbacks on x, limits,
 * the method and its body), performed. The handle is the caller's. */
static CURLcode send_signed(struct aws_client *cl, const struct aws_req *rq,
			    const char *url, struct curl_slist *hl, int64_t timeout_ms,
			    struct xfer *x, CURL *h)
{
	uint64_t body_len = rq->body_fd >= 0 ? rq->body_size : rq->body_len;

	x->h = h;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SHARE, cl->share);
	curl_easy_setopt(h, CURLOPT_MAXCONNECTS, (long)CONNECTIONS_KEPT);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "amiforge/0.1");
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)STALL_SECONDS);
	if (timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	if (strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0) {
		/* The body comes from on_read; on_seek rewinds it for a retry. */
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
	}
	if (rq->send_buffer)
		curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, (long)rq->send_buffer);
	if (strcmp(rq->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
	} else if (strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	} else if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	}
	return curl_easy_perform(h);
}

/* Classify a transfer that did not complete: cancelled, over a limit, a
 * body that could not be read or written, a malformed URL (final), or a
 * network error (retried). */
static enum outcome classify_transport(CURLcode cc, const struct xfer *x,
				       const struct aws_resp *resp, char **why)
{
	if (cc == CURLE_ABORTED_BY_CALLBACK && cancelled && !x->ignore_cancel) {
		*why = xstrdup("interrupted");
		return FAIL;
	}
	if (x->too_big) {
		*why = xasprintf("answer larger than %zu bytes", resp->body.max);
		return FAIL;
	}
	if (x->sink_error) {
		*why = xstrdup(x->sink_error);
		return FAIL;
	}
	if (x->read_error) {
		*why = xasprintf("read the request body: %s", strerror(errno));
		return FAIL;
	}
	*why = xasprintf("%s", curl_easy_strerror(cc));
	if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL)
		return FAIL;
	return cc == CURLE_OPERATION_TIMEDOUT ? RETRY_TIMEOUT : RETRY;
}

/* Classify an answer: 2xx is OK (unless S3 hid an <Error> in a 200, which
 * botocore retries as a 500); else AWS's error, retried when it is a
 * throttle, a server error or a retryable code. */
static enum outcome classify_answer(const struct aws_req *rq, struct aws_resp *resp,
				    const struct xfer *x, char **why)
{
	if (resp->status >= 200 && resp->status < 300) {
		if (rq->error_in_200 && resp->body.data &&
		    strstr(resp->body.data, "<Error>")) {
			xmlDoc *doc = xml_parse(resp->body.data, resp->body.len);
			bool is_err = doc && strcmp(xml_root_name(doc), "Error") == 0;

			if (doc)
				xmlFreeDoc(doc);
			err_clear();
			if (is_err) {
				parse_error(resp, NULL);
				*why = xasprintf("%s: %s (HTTP 200 with an error body)",
						 resp->error_code, resp->error_message ?
						 resp->error_message : "");
				return RETRY;
			}
		}
		return OK;
	}
	parse_error(resp, x->error_type);
	*why = xasprintf("%s: %s (HTTP %ld%s%s)", resp->error_code,
			 resp->error_message ? resp->error_message : "", resp->status,
			 resp->request_id ? ", request id " : "",
			 resp->request_id ? resp->request_id : "");
	if (resp->status == 500 || resp->status == 502 || resp->status == 503 ||
	    resp->status == 504 || resp->status == 429 || aws_retryable_code(resp->error_code))
		return RETRY;
	return FAIL;
}

/* One attempt: sign → send → classify. Sets *why for failures (a message
 * without the "what:" prefix). */
static enum outcome attempt(struct aws_client *cl, const struct aws_req *rq,
			    struct aws_resp *resp, int64_t timeout_ms, char **why)
{
	const char *endpoint = rq->endpoint ? rq->endpoint : cl->endpoint[rq->service];
	struct sigv4_msg m;
	struct curl_slist *hl = NULL;
	struct xfer x = { .req = rq, .resp = resp,
			  .ignore_cancel = rq->ignore_cancel || cl->cleanup };
	char *host = url_host(endpoint), *url = NULL, *hline;
	CURL *h = NULL;
	CURLcode cc;
	enum outcome out = FAIL;
	size_t i;
	int64_t t0 = now_ms();

	if (sign(cl, rq, host, &m, why) < 0)
		goto cleanup;
	url = xasprintf("%s%s%s%s", endpoint, m.path, m.query[0] ? "?" : "", m.query);
	for (i = 0; i < m.nhdrs; i++) {
		hline = xasprintf("%s: %s", m.hdrs[i].name, m.hdrs[i].value);
		hl = curl_slist_append(hl, hline);
		log_debug("aws: > %s", hline);
		free(hline);
	}
	hl = curl_slist_append(hl, "Expect:");

	buf_init(&resp->body, rq->resp_max ? rq->resp_max : AWS_RESP_MAX_DEFAULT);
	h = handle_get();
	if (!h) {
		*why = xstrdup("cannot create a curl handle");
		goto cleanup;
	}
	cc = send_signed(cl, rq, url, hl, timeout_ms, &x, h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	{
		curl_off_t cl_len = -1;
		curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl_len);
		resp->content_length = cl_len;
	}
	log_debug("aws: %s %s %s%s%s -> %ld%s%s (%" PRId64 " ms)", svc_name(rq->service),
		  rq->method, m.path, m.query[0] ? "?" : "", m.query, resp->status,
		  cc ? ", " : "", cc ? curl_easy_strerror(cc) : "", now_ms() - t0);
	out = cc != CURLE_OK ? classify_transport(cc, &x, resp, why)
			     : classify_answer(rq, resp, &x, why);
cleanup:
	if (h) {	/* kept for the thread's next request, detached from all of this one */
		curl_easy_setopt(h, CURLOPT_SHARE, NULL);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	}
	curl_slist_free_all(hl);
	sigv4_msg_release(&m);
	free(url);
	free(host);
	free(x.error_type);
	free(x.sink_error);
	return out;
}

int aws_request(struct aws_client *cl, const struct aws_req *rq, struct aws_resp *resp)
{
	bool streamed = rq->body_fd >= 0 || rq->on_body || rq->body_len >= TRANSFER_BODY_MIN;
	int64_t start = now_ms(), deadline;
	const char *what = rq->what ? rq->what : rq->method;
	char *why = NULL;
	int n, cost = 0;
	bool ignore_cancel = rq->ignore_cancel || cl->cleanup;

	memset(resp, 0, sizeof(*resp));
	deadline = streamed && !cl->opts.operation_timeout_ms ? 0 : start + cl->op_timeout_ms;
	for (n = 1;; n++) {
		int64_t tmo = rq->timeout_ms ? rq->timeout_ms : (streamed ? 0 : cl->req_timeout_ms);
		int64_t delay, cap;
		enum outcome o;

		if (deadline) {
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				err_set("%s: no answer within the operation deadline of %" PRId64
					" s after %d attempts%s%s", what, cl->op_timeout_ms / 1000,
					n - 1, why ? ": " : "", why ? why : "");
				goto fail;
			}
			if (!tmo || tmo > left)
				tmo = left;
		}
		if (cancelled && !ignore_cancel) {
			err_set("%s: interrupted", what);
			goto fail;
		}
		if (n > 1) {
			buf_release(&resp->body);
			free(resp->etag);
			free(resp->error_code);
			free(resp->error_message);
			free(resp->request_id);
			free(resp->checksum);
			resp->etag = resp->error_code = resp->error_message = resp->request_id = NULL;
			resp->checksum = NULL;
			resp->status = 0;
		}
		free(why);
		why = NULL;
		resp->attempts = n;
		o = attempt(cl, rq, resp, tmo, &why);
		if (o == OK) {
			pthread_mutex_lock(&cl->lock);
			cl->retry_tokens += cost ? cost : 1;
			if (cl->retry_tokens > 500)
				cl->retry_tokens = 500;
			pthread_mutex_unlock(&cl->lock);
			free(why);
			return 0;
		}
		if (o == FAIL || n >= cl->max_attempts) {
			err_set("%s: %s%s", what, why ? why : "failed",
				o == FAIL ? "" : " (retries exhausted)");
			if (o != FAIL)
				err_prefix("after %d attempts", n);
			goto fail;
		}
		cost = o == RETRY_TIMEOUT ? RETRY_TIMEOUT_COST : RETRY_COST;
		pthread_mutex_lock(&cl->lock);
		if (cl->retry_tokens < cost) {
			pthread_mutex_unlock(&cl->lock);
			err_set("%s: %s (retry quota exhausted)", what, why);
			goto fail;
		}
		cl->retry_tokens -= cost;
		pthread_mutex_unlock(&cl->lock);
		cap = (int64_t)1000 << (n - 1 > 5 ? 5 : n - 1);
		if (cap > MAX_BACKOFF_MS)
			cap = MAX_BACKOFF_MS;
		delay = (int64_t)((double)arc4random() / 4294967296.0 * (double)cap);
		log_debug("aws: %s: %s; retry %d in %" PRId64 " ms", what, why, n, delay);
		if (ignore_cancel) {
			struct timespec ts = { delay / 1000, (long)(delay % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		} else if (aws_sleep_ms(delay) < 0) {
			err_set("%s: interrupted", what);
			goto fail;
		}
	}
fail:
	free(why);
	return -1;
}

/* ---- unsigned HTTP (IMDS) ---- */

static size_t plain_write(char *p, size_t sz, size_t n, void *u)
{
	return buf_add(u, p, sz * n) < 0 ? 0 : sz * n;
}

int aws_http_plain(const char *method, const char *url, const char *const *headers,
		   int64_t timeout_ms, long *status, struct buf *body)
{
	struct curl_slist *hl = NULL;
	CURL *h;
	CURLcode cc;
	size_t i;

	aws_curl_init();
	h = curl_easy_init();
	if (!h)
		return err_set("cannot create a curl handle");
	for (i = 0; headers && headers[i] && headers[i + 1]; i += 2) {
		char *l = xasprintf("%s: %s", headers[i], headers[i + 1]);
		hl = curl_slist_append(hl, l);
		free(l);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, plain_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hl);
	if (cc != CURLE_OK)
		return err_set("%s %s: %s", method, url, curl_easy_strerror(cc));
	return 0;
}
