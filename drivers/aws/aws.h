/* aws.h: the AWS client: configuration and credentials resolved like the
 * AWS CLI, signed HTTP requests over libcurl with the SDKs' "standard"
 * retry mode, deadlines, cancellation, and error parsing (libxml2/jansson).
 *
 *	struct aws_client_opts o = { .region = "eu-west-1" };
 *	struct aws_client *cl = aws_client_new(&o);      // NULL + error
 *	struct aws_req rq = { .service = AWS_EC2, .method = "POST", ... };
 *	struct aws_resp rs;
 *	if (aws_request(cl, &rq, &rs) < 0) ...           // error recorded
 *	aws_resp_release(&rs);
 *
 * Every secret (secret key, session token) is registered with
 * log_add_secret() the moment it is read, before anything can log it.
 * A client is safe to use from several threads at once. */
#ifndef AMIFORGE_AWS_H
#define AMIFORGE_AWS_H

#include "compat.h"
#include "buf.h"
#include "sigv4.h"

enum aws_service {
	AWS_S3,
	AWS_EC2,
	AWS_EBS,
	AWS_STS,
	AWS_SNS,              /* Query protocol (pipeline notifications) */
	AWS_SSM,              /* JSON 1.1 (pipeline distribution) */
	AWS_LICENSE_MANAGER,  /* JSON 1.1 (pipeline distribution) */
	AWS_SERVICE_COUNT
};

/* Largest response body kept by default (EC2 describe calls, S3 listings). */
#define AWS_RESP_MAX_DEFAULT (16u * 1024 * 1024)

struct aws_creds {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;     /* NULL when none */
	const char *source;      /* static: "env", "shared-credentials-file", ... */
	int64_t expiration;      /* UTC seconds; 0: does not expire */
};

struct aws_client_opts {
	const char *profile;            /* --profile: explicit, so env keys are ignored */
	const char *region;             /* overrides AWS_REGION and the profile */
	bool need_region;               /* aws_client_new() fails when none resolves */
	int max_attempts;               /* 0: $AWS_MAX_ATTEMPTS or 3 */
	int64_t request_timeout_ms;     /* per attempt, small calls; 0: 60 s */
	int64_t operation_timeout_ms;   /* per call including retries; 0: 15 min */
};

struct aws_client;

/* Resolve region, endpoints and credentials. NULL with an error recorded. */
struct aws_client *aws_client_new(const struct aws_client_opts *o);
void aws_client_free(struct aws_client *cl);

/* Current credentials (refreshed when they are about to expire). Never NULL
 * for a client that was created. Owned by the client. */
const struct aws_creds *aws_client_creds(struct aws_client *cl);
const char *aws_client_region(const struct aws_client *cl);
/* "https://ec2.eu-west-1.amazonaws.com" or the configured endpoint URL
 * (no trailing slash). Owned by the client. */
const char *aws_client_endpoint(const struct aws_client *cl, enum aws_service svc);
/* True when the S3 endpoint was configured (path-style addressing). */
bool aws_client_custom_endpoint(const struct aws_client *cl, enum aws_service svc);

/* Where a request body comes from: memory, or a range of a file (streamed,
 * never read whole). */
struct aws_req {
	enum aws_service service;
	const char *method;
	const char *path;             /* wire form (encoded); NULL: "/" */
	const char *query;            /* raw, without '?'; NULL: none */
	const char *const *headers;   /* "Name", "value", ..., NULL */
	const void *body;             /* memory body */
	size_t body_len;
	int body_fd;                  /* >= 0: stream body_size bytes from body_off */
	uint64_t body_off, body_size;
	const char *body_sha256;      /* hex SHA-256 of the body (signed); NULL: computed */
	size_t resp_max;              /* 0: AWS_RESP_MAX_DEFAULT */
	int64_t timeout_ms;           /* per attempt; 0: client default (none for streamed bodies and
				       * memory bodies of 1 MiB or more: stall detection instead) */
	bool error_in_200;            /* S3: a 200 carrying <Error> is an error */
	const char *what;             /* for messages, e.g. "UploadPart 3" */
	const char *endpoint;         /* NULL: the client's for service (S3 virtual host) */
	bool ignore_cancel;           /* clean-up calls (abort) run after Ctrl-C */
	/* curl's upload buffer for this request's body (0: curl's 64 KiB):
	 * larger, the body goes in fewer sends, each a turn of curl's loop
	 * with two polls. Each thread's handle keeps it (memory per thread). */
	size_t send_buffer;
	/* Download sink: when set, the body of a 2xx answer goes here instead
	 * of resp->body, in order; off restarts at 0 on each attempt (overwrite).
	 * Error answers are still buffered and parsed. The request then has no
	 * per-attempt timeout by default (stall detection instead), like a
	 * streamed upload. Return 0, or -1 with an error recorded to stop. */
	int (*on_body)(void *opaque, uint64_t off, const void *data, size_t len);
	void *body_opaque;
	/* Upload progress: bytes of this attempt sent so far (reset on retry). */
	void (*progress)(void *opaque, uint64_t sent);
	void *progress_opaque;
};

#define AWS_REQ_INIT { .body_fd = -1 }

struct aws_resp {
	long status;
	struct buf body;
	char *etag;          /* ETag header, quotes kept */
	char *request_id;
	char *error_code;    /* parsed AWS error code, when status >= 300 */
	char *error_message;
	char *checksum;      /* x-amz-Checksum header (EBS direct) */
	int64_t content_length;   /* Content-Length of the answer, -1 if none */
	int attempts;
};

/* Send req with retries. 0 on success (2xx and no error body), -1 with
 * "<what>: <Code>: <Message> (HTTP n)" recorded; resp holds the last answer
 * either way and must be released. */
int aws_request(struct aws_client *cl, const struct aws_req *req, struct aws_resp *resp);
void aws_resp_release(struct aws_resp *resp);

/* Query API (EC2, STS): POST Action=...&Version=... with params as
 * "Name", "value" pairs (NULL-terminated vector). On success *doc is the
 * parsed response (caller frees with xmlFreeDoc). */
struct _xmlDoc;
int aws_query(struct aws_client *cl, enum aws_service svc, const char *region,
	      const char *action, const char *const *params, struct _xmlDoc **doc);

/* Cancellation: the handler sets a flag that every transfer and wait checks
 * (requests fail with "interrupted"). */
void aws_cancel_install(void);
bool aws_cancelled(void);
void aws_cancel_request(void);   /* what the signal handler does */

/* While set, the client's requests run despite a cancellation (clean-up
 * calls such as CancelImportTask after Ctrl-C). */
void aws_client_set_cleanup(struct aws_client *cl, bool on);

/* Sleep up to ms, waking early on cancellation. -1 when cancelled. */
int aws_sleep_ms(int64_t ms);

/* STS GetCallerIdentity. */
struct aws_identity {
	char *account, *arn, *user_id;
};
int aws_sts_whoami(struct aws_client *cl, struct aws_identity *id);
void aws_identity_release(struct aws_identity *id);

/* Retry classification (exported for tests): true for the codes of the SDK
 * standard mode (throttling and transient). */
bool aws_retryable_code(const char *code);

/* Client internals shared by creds.c and http.c. */
void aws_creds_release(struct aws_creds *c);
struct aws_client *aws_client_with_creds(const struct aws_client_opts *o, const struct aws_creds *c);

#endif
