/* sigv4.h: AWS Signature Version 4 (header and presigned-query variants).
 *
 * A request to sign is a struct sigv4_msg: method, the path as it goes on
 * the wire (percent-encoded), the raw query, headers in order, and the body
 * or its precomputed SHA-256. sigv4_sign() adds X-Amz-Date (and
 * X-Amz-Security-Token, x-amz-content-sha256, Authorization) to the headers,
 * or the X-Amz-* parameters to the query when presigning.
 *
 * Generic services: the path is normalised (RFC 3986 dot segments, repeated
 * slashes) when asked and URI-encoded once more ("double encoding").
 * S3 ("service": "s3"): the path is used as sent, never normalised, never
 * re-encoded (bytes that are not legal in a URI are encoded, '%' escapes are
 * kept), and x-amz-content-sha256 is always sent and signed.
 *
 * Crypto is OpenSSL's (EVP SHA-256, HMAC); nothing here is hand-rolled. */
#ifndef AMIFORGE_SIGV4_H
#define AMIFORGE_SIGV4_H

#include "compat.h"
#include "buf.h"

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

struct http_hdr {
	char *name;
	char *value;  /* as sent (the canonical form trims and folds it) */
};

struct sigv4_msg {
	char *method;
	char *path;           /* wire form, percent-encoded; "" means "/" */
	char *query;          /* without '?'; "" when none */
	struct http_hdr *hdrs;
	size_t nhdrs, cap;
	const void *body;     /* not owned; may be NULL with body_len 0 */
	size_t body_len;
	char payload_hash[65];/* hex SHA-256 of a streamed body, or "" to hash body */
	bool unsigned_payload;/* sign "UNSIGNED-PAYLOAD" */
};

struct sigv4_creds {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;    /* NULL or "" when none */
};

struct sigv4_params {
	const struct sigv4_creds *creds;
	const char *region;
	const char *service;          /* "s3" selects the S3 rules */
	time_t time;                  /* signing time (UTC seconds) */
	bool normalize;               /* normalise the path (not for S3) */
	bool sign_body;               /* send and sign x-amz-content-sha256 */
	bool omit_session_token;      /* add the token after signing, unsigned */
	bool presign;                 /* query variant */
	int64_t expires;              /* X-Amz-Expires for presign (1..604800) */
};

/* What was computed, for `amiforge aws sigv4` and the tests. */
struct sigv4_debug {
	char *canonical_request;
	char *string_to_sign;
	char *signature;
};

/* Init/release a message: method, path and query are copied. */
void sigv4_msg_init(struct sigv4_msg *m, const char *method, const char *path,
		    const char *query);
void sigv4_msg_release(struct sigv4_msg *m);
/* Append a header (both copied). */
void sigv4_msg_add(struct sigv4_msg *m, const char *name, const char *value);
/* Value of the first header named name (case-insensitive), or NULL. */
const char *sigv4_msg_get(const struct sigv4_msg *m, const char *name);
/* Remove every header named name. */
void sigv4_msg_del(struct sigv4_msg *m, const char *name);

/* Sign m in place. 0 or -1 (error recorded). dbg may be NULL; when not, its
 * strings are set (caller releases with sigv4_debug_release). */
int sigv4_sign(const struct sigv4_params *p, struct sigv4_msg *m, struct sigv4_debug *dbg);
void sigv4_debug_release(struct sigv4_debug *dbg);

/* Parse a raw HTTP request as in the suite's request.txt (path not encoded,
 * continuation lines, body after the blank line). 0 or -1 ("request: ..."). */
int sigv4_msg_parse(struct sigv4_msg *m, const char *text, size_t len);
/* Render m as a raw HTTP/1.1 request (caller frees). */
char *sigv4_msg_format(const struct sigv4_msg *m);

/* Helpers shared with the AWS client. */
/* Append s URI-encoded: everything but A-Z a-z 0-9 - _ . ~ is %XX (upper
 * case); '/' is kept when keep_slash. */
int sigv4_uri_encode(struct buf *b, const char *s, size_t n, bool keep_slash);
/* Lower-case hex SHA-256 of data into out[65]. */
void sigv4_sha256_hex(const void *data, size_t n, char out[65]);
/* SHA-256 through a digest fetched once (EVP_sha256() is looked up again at
 * every use in OpenSSL 3). */
void sigv4_sha256(const void *data, size_t n, unsigned char md[32]);
/* Hex of a binary digest of n bytes into out[2n+1]. */
void sigv4_hex(const unsigned char *d, size_t n, char *out);
/* "YYYYMMDDTHHMMSSZ" of t into out[17]. */
void sigv4_amz_date(time_t t, char out[17]);

#endif
