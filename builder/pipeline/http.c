/* http.c: HEAD and webhook POST for pipelines (http.h). */
#include <curl/curl.h>

#include "http.h"
#include "error.h"
#include "log.h"
#include "util.h"

struct sink {
	struct http_head *h;
	size_t body;
};

static void keep(char **dst, const char *v, size_t n)
{
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n && *v == ' ') {
		v++;
		n--;
	}
	if (n > PIPELINE_HTTP_HEADER_MAX || str_has_ctl(v, n, false))
		return;
	free(*dst);
	*dst = xstrndup(v, n);
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
	struct sink *s = ud;
	size_t n = sz * nm;
	static const struct { const char *name; size_t off; } hs[] = {
		{ "etag:", offsetof(struct http_head, etag) },
		{ "last-modified:", offsetof(struct http_head, last_modified) },
		{ "digest:", offsetof(struct http_head, digest) },
	};
	size_t i;

	if (!s->h)
		return n;
	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {     /* a new answer (redirect) */
		free(s->h->etag);
		free(s->h->last_modified);
		free(s->h->digest);
		s->h->etag = s->h->last_modified = s->h->digest = NULL;
	}
	for (i = 0; i < ARRAY_SIZE(hs); i++) {
		size_t l = strlen(hs[i].name);

		if (n > l && strncasecmp(p, hs[i].name, l) == 0)
			keep((char **)((char *)s->h + hs[i].off), p + l, n - l);
	}
	return n;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct sink *s = ud;

	(void)p;
	s->body += sz * nm;
	return s->body > PIPELINE_HTTP_BODY_MAX ? 0 : sz * nm;
}

static CURL *handle(const char *url, struct sink *s, int64_t timeout_ms)
{
	CURL *c;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 10000 ? timeout_ms : 10000));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "amiforge/0.1");
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	return c;
}

int http_head(const char *url, struct http_head *h)
{
	struct sink s = { .h = h };
	char *shown = url_redact(url);
	CURLcode cc;
	CURL *c;
	int r = -1;

	memset(h, 0, sizeof(*h));
	h->length = -1;
	c = handle(url, &s, 30000);
	if (!c) {
		err_set("cannot create a curl handle");
		goto cleanup;
	}
	curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
	if (cc != CURLE_OK) {
		err_set("HEAD '%s': %s", shown, curl_easy_strerror(cc));
		goto cleanup;
	}
	if (h->status < 200 || h->status >= 300) {
		err_set("HEAD '%s': HTTP %ld", shown, h->status);
		goto cleanup;
	}
	{
		curl_off_t len = -1;

		curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
		h->length = len;
	}
	r = 0;
cleanup:
	if (c)
		curl_easy_cleanup(c);
	free(shown);
	return r;
}

void http_head_release(struct http_head *h)
{
	free(h->etag);
	free(h->last_modified);
	free(h->digest);
	memset(h, 0, sizeof(*h));
}

int http_post_json(const char *url, const char *body, int64_t timeout_ms, long *status)
{
	struct sink s = { 0 };
	struct curl_slist *hl = NULL;
	char *shown = url_redact(url);
	CURLcode cc;
	CURL *c;
	int r = -1;

	*status = 0;
	c = handle(url, &s, timeout_ms);
	if (!c) {
		err_set("cannot create a curl handle");
		goto cleanup;
	}
	hl = curl_slist_append(hl, "Content-Type: application/json");
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && *status)) {
		err_set("POST '%s': %s", shown, curl_easy_strerror(cc));
		goto cleanup;
	}
	r = 0;
cleanup:
	curl_slist_free_all(hl);
	if (c)
		curl_easy_cleanup(c);
	free(shown);
	return r;
}
