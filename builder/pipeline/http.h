/* http.h: the two plain HTTP requests of pipelines (libcurl): HEAD of a base
 * image URL (its ETag, Last-Modified, length) and a webhook POST. http and
 * https only; bounded answers, deadlines. */
#ifndef AMIFORGE_PIPELINE_HTTP_H
#define AMIFORGE_PIPELINE_HTTP_H

#include "compat.h"

/* Largest answer body read (a webhook's reply is only logged). */
#define PIPELINE_HTTP_BODY_MAX (64u * 1024)
/* Longest header value kept (ETag, Last-Modified). */
#define PIPELINE_HTTP_HEADER_MAX 1024

struct http_head {
	long status;
	char *etag, *last_modified, *digest;   /* NULL when absent */
	int64_t length;                         /* -1 when absent */
};

/* HEAD url (redirects followed, http/https only), 30 s. 0 with h filled
 * (status 2xx), or -1. */
int http_head(const char *url, struct http_head *h);
void http_head_release(struct http_head *h);

/* One POST of body (application/json) to url, no redirects. 0 with *status
 * (any HTTP status), -1 on a transport failure (timeout, refused: the
 * message says which). */
int http_post_json(const char *url, const char *body, int64_t timeout_ms, long *status);

#endif
