/* actions-net.c: WebDownload, S3Download, S3Upload. They run on the host (the
 * guest needs neither network nor credentials) and move files to and from
 * the target with the executor's put_file/get_file. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "engine.h"
#include "error.h"
#include "util.h"

/* Largest file WebDownload fetches (the host's temp dir holds it). */
#define WEB_DOWNLOAD_MAX (16ull * 1024 * 1024 * 1024)
/* Tries per download, as AWSTOE. */
#define WEB_TRIES 5

struct dl {
	FILE *f;
	EVP_MD_CTX *md;
};

static size_t dl_write(char *p, size_t size, size_t n, void *o)
{
	struct dl *d = o;
	size_t len = size * n;

	if (d->md)
		EVP_DigestUpdate(d->md, p, len);
	return fwrite(p, 1, len, d->f);
}

static const char *algo_name(const char *a)
{
	if (strcasecmp(a, "MD5") == 0)
		return "md5";
	if (strcasecmp(a, "SHA1") == 0)
		return "sha1";
	if (strcasecmp(a, "SHA256") == 0)
		return "sha256";
	if (strcasecmp(a, "SHA512") == 0)
		return "sha512";
	return NULL;
}

/* True for an address of this host or its link: loopback, unspecified,
 * link-local (169.254.0.0/16 holds the instance metadata service; IPv6's
 * is fd00:ec2::254), IPv4-mapped forms included. */
bool net_addr_is_local(const char *ip)
{
	struct in6_addr a6;
	struct in_addr a4;
	uint32_t v;

	if (inet_pton(AF_INET6, ip, &a6) == 1) {
		static const uint8_t imds6[16] = { 0xfd, 0, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54 };

		if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6) ||
		    IN6_IS_ADDR_LINKLOCAL(&a6) || memcmp(a6.s6_addr, imds6, 16) == 0)
			return true;
		if (!IN6_IS_ADDR_V4MAPPED(&a6) && !IN6_IS_ADDR_V4COMPAT(&a6))
			return false;
		memcpy(&a4, a6.s6_addr + 12, 4);
	} else if (inet_pton(AF_INET, ip, &a4) != 1) {
		return true;   /* not an address we understand: refuse */
	}
	v = ntohl(a4.s_addr);
	return (v >> 24) == 127 || (v >> 24) == 0 || (v >> 16) == 0xa9fe;
}

/* Called by curl once connected, before each request (every redirect too). */
static int check_peer(void *opaque, char *conn_primary_ip, char *conn_local_ip UNUSED,
		      int conn_primary_port UNUSED, int conn_local_port UNUSED)
{
	char *bad = opaque;

	if (!net_addr_is_local(conn_primary_ip))
		return CURL_PREREQFUNC_OK;
	snprintf(bad, INET6_ADDRSTRLEN + 1, "%s", conn_primary_ip);
	return CURL_PREREQFUNC_ABORT;
}

/* One try: 0, -1 (retry), or -2 (give up). */
static int fetch(struct action_ctx *c, const char *url, const char *host_path, const char *algo,
		 bool insecure, char *hex, size_t hexlen)
{
	struct dl d = { 0 };
	char bad_peer[INET6_ADDRSTRLEN + 1] = "";
	bool local_ok = c->opts->allow_local_sources;
	CURL *h = curl_easy_init();
	CURLcode cc;
	long code = 0;
	int64_t left = action_time_left(c);
	int r = -1;

	if (left < 0 || !h) {
		curl_easy_cleanup(h);
		return left < 0 ? -2 : err_set("curl init failed");
	}
	if (!(d.f = fopen(host_path, "wb"))) {
		curl_easy_cleanup(h);
		return err_errno("create '%s'", host_path) - 1;
	}
	if (algo) {
		d.md = EVP_MD_CTX_new();
		EVP_DigestInit_ex(d.md, EVP_get_digestbyname(algo), NULL);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, local_ok ? "http,https,file" : "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	if (!local_ok) {
		curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, check_peer);
		curl_easy_setopt(h, CURLOPT_PREREQDATA, (void *)bad_peer);
	}
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, dl_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &d);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)WEB_DOWNLOAD_MAX);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "amiforge-toe");
	if (left)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
	if (insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (fclose(d.f) != 0 && cc == CURLE_OK) {
		err_errno("write '%s'", host_path);
		goto cleanup;
	}
	if (cc != CURLE_OK && bad_peer[0]) {
		err_set("download '%s': %s is an address of this host or its link "
			"(--allow-local-sources allows it)", url, bad_peer);
		r = -2;
		goto cleanup;
	}
	if (cc != CURLE_OK) {
		err_set("download '%s': %s", url, curl_easy_strerror(cc));
		if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT ||
		    cc == CURLE_FILESIZE_EXCEEDED)
			r = -2;
		goto cleanup;
	}
	if (code != 200 && !(local_ok && str_startswith(url, "file://"))) {
		err_set("download '%s': HTTP status %ld", url, code);
		if (code >= 400 && code < 500 && code != 408 && code != 429)
			r = -2;
		goto cleanup;
	}
	if (d.md) {
		unsigned char dig[EVP_MAX_MD_SIZE];
		unsigned int n = 0, i;
		EVP_DigestFinal_ex(d.md, dig, &n);
		for (i = 0; i < n && 2 * i + 2 < hexlen; i++)
			snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	}
	r = 0;
cleanup:
	EVP_MD_CTX_free(d.md);
	curl_easy_cleanup(h);
	return r;
}

static int web_download(struct action_ctx *c, json_t *e, json_t *dests)
{
	const char *src = in_str(e, "source", ""), *dst = in_str(e, "destination", "");
	const char *checksum = in_str(e, "checksum", NULL), *alg = in_str(e, "algorithm", NULL);
	const char *algo = NULL;
	char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
	char *host = NULL, *target = NULL, *parent = NULL;
	struct file_stat st = { 0 };
	int tries, r = -1;

	if (!str_startswith(src, "http://") && !str_startswith(src, "https://") &&
	    !(c->opts->allow_local_sources && str_startswith(src, "file://")))
		return err_set("WebDownload: source '%s' is not an http(s) URL%s", src,
			       str_startswith(src, "file:") ? " (file:// needs --allow-local-sources)"
							    : "");
	if (dst[0] != '/')
		return err_set("WebDownload: destination '%s' is not an absolute path", dst);
	if (checksum && checksum[0]) {
		if (!alg || !(algo = algo_name(alg)))
			return err_set("WebDownload: 'checksum' needs 'algorithm' MD5, SHA1, "
				       "SHA256 or SHA512");
	}
	/* destination folder (trailing '/' or existing): the URL's file name */
	if (executor_stat(c->ex, dst, &st) < 0)
		return -1;
	if (str_endswith(dst, "/") || (st.exists && S_ISDIR(st.mode))) {
		const char *u = src + strcspn(src, "?#"), *b = u;
		while (b > src && b[-1] != '/')
			b--;
		if (b == u)
			return err_set("WebDownload: cannot name a file after '%s'", src);
		target = xasprintf("%s%s%.*s", dst, str_endswith(dst, "/") ? "" : "/",
				   (int)(u - b), b);
		file_stat_release(&st);
		if (executor_stat(c->ex, target, &st) < 0)
			goto cleanup;
	} else {
		target = xstrdup(dst);
	}
	if (st.exists && !in_bool(e, "overwrite", true)) {
		err_set("WebDownload: '%s' already exists and overwrite is false", target);
		goto cleanup;
	}
	host = xasprintf("%s/web-download", c->host_tmp);
	for (tries = 1; tries <= WEB_TRIES; tries++) {
		int f = fetch(c, src, host, algo, in_bool(e, "ignoreCertificateErrors", false), hex,
			      sizeof(hex));
		if (f == 0)
			break;
		if (f == -2 || tries == WEB_TRIES)
			goto cleanup;
		buf_printf(c->console, "WebDownload: try %d failed: %s\n", tries, err_msg());
		sleep((unsigned)tries);
	}
	if (algo && strcasecmp(hex, checksum) != 0) {
		err_set("WebDownload '%s': %s checksum mismatch (got %s, want %s)", src, alg, hex,
			checksum);
		goto cleanup;
	}
	parent = xstrdup(target);
	*strrchr(parent, '/') = '\0';
	if ((parent[0] && executor_mkdir_p(c->ex, parent, 0755) < 0) ||
	    executor_put_file(c->ex, host, target, 0644) < 0)
		goto cleanup;
	json_array_append_new(dests, json_string(target));
	r = 0;
cleanup:
	if (host)
		unlink(host);
	file_stat_release(&st);
	free(host);
	free(target);
	free(parent);
	return r;
}

int act_web_download(struct action_ctx *c)
{
	json_t *e, *dests = json_array();
	size_t i;
	int r = 0;

	json_array_foreach(c->inputs, i, e)
		if ((r = web_download(c, e, dests)) < 0)
			break;
	if (r == 0) {
		json_t *d;
		struct buf b = BUF_INIT(STEP_OUTPUT_MAX);
		json_array_foreach(dests, i, d) {
			if (i)
				buf_addc(&b, ',');
			buf_adds(&b, json_string_value(d));
		}
		json_object_set_new(c->outputs, "destination", json_string(b.data ? b.data : ""));
		buf_release(&b);
	}
	json_decref(dests);
	return r;
}

/* ---- S3 ---- */

static int s3_split(const char *uri, char **bucket, char **key)
{
	const char *b = uri + 5, *s;

	if (!str_startswith(uri, "s3://") || !(s = strchr(b, '/')) || s == b)
		return err_set("'%s' is not an s3://bucket/key URI", uri);
	*bucket = xstrndup(b, (size_t)(s - b));
	*key = xstrdup(s + 1);
	return 0;
}

static int s3_available(struct action_ctx *c)
{
	if (!c->opts->s3)
		return err_set("%s: S3 support not available (this run has no AWS client)",
			       c->step->action->name);
	return 0;
}

static int s3_get_one(struct action_ctx *c, const char *bucket, const char *key,
		      const char *owner, const char *target, bool overwrite)
{
	const struct s3_ops *s3 = c->opts->s3;
	char *host = xasprintf("%s/s3-download", c->host_tmp), *parent = xstrdup(target);
	struct file_stat st;
	int r = -1;

	if (executor_stat(c->ex, target, &st) < 0)
		goto cleanup;
	if (st.exists && !overwrite) {
		file_stat_release(&st);
		err_set("'%s' already exists and overwrite is false", target);
		goto cleanup;
	}
	file_stat_release(&st);
	*strrchr(parent, '/') = '\0';
	if (s3->get(s3->opaque, bucket, key, owner, host) < 0 ||
	    (parent[0] && executor_mkdir_p(c->ex, parent, 0755) < 0) ||
	    executor_put_file(c->ex, host, target, 0644) < 0)
		goto cleanup;
	r = 0;
cleanup:
	unlink(host);
	free(host);
	free(parent);
	return r;
}

static int s3_download(struct action_ctx *c, json_t *e)
{
	const char *src = in_str(e, "source", ""), *dst = in_str(e, "destination", "");
	const char *owner = in_str(e, "expectedBucketOwner", NULL);
	bool overwrite = in_bool(e, "overwrite", true);
	char *bucket = NULL, *key = NULL;
	struct strv keys = STRV_INIT;
	size_t i;
	int r = -1;

	if (dst[0] != '/')
		return err_set("S3Download: destination '%s' is not an absolute path", dst);
	if (s3_split(src, &bucket, &key) < 0)
		return -1;
	if (str_endswith(key, "*")) {
		key[strlen(key) - 1] = '\0';
		if (c->opts->s3->list(c->opts->s3->opaque, bucket, key, owner, &keys) < 0)
			goto cleanup;
		for (i = 0; i < keys.n; i++) {
			char *t;
			if (str_endswith(keys.v[i], "/") || strstr(keys.v[i], ".."))
				continue;
			t = xasprintf("%s%s%s", dst, str_endswith(dst, "/") ? "" : "/",
				      keys.v[i] + strlen(key));
			r = s3_get_one(c, bucket, keys.v[i], owner, t, overwrite);
			free(t);
			if (r < 0)
				goto cleanup;
		}
	} else {
		char *t = str_endswith(dst, "/")
			? xasprintf("%s%s", dst, strrchr(key, '/') ? strrchr(key, '/') + 1 : key)
			: xstrdup(dst);
		r = s3_get_one(c, bucket, key, owner, t, overwrite);
		free(t);
		if (r < 0)
			goto cleanup;
	}
	r = 0;
cleanup:
	strv_release(&keys);
	free(bucket);
	free(key);
	return r;
}

int act_s3_download(struct action_ctx *c)
{
	json_t *e;
	size_t i;

	if (s3_available(c) < 0)
		return -1;
	json_array_foreach(c->inputs, i, e)
		if (s3_download(c, e) < 0)
			return -1;
	return 0;
}

static int s3_put_file(struct action_ctx *c, const char *path, const char *bucket,
		       const char *key, const char *owner)
{
	char *host = xasprintf("%s/s3-upload", c->host_tmp);
	int r = -1;

	if (executor_get_file(c->ex, path, host) == 0 &&
	    c->opts->s3->put(c->opts->s3->opaque, host, bucket, key, owner) == 0)
		r = 0;
	unlink(host);
	free(host);
	return r;
}

/* Files of dir under prefix; sub-folders too when recurse. */
static int s3_put_tree(struct action_ctx *c, const char *dir, const char *bucket,
		       const char *prefix, const char *owner, bool recurse)
{
	struct dir_entry *ents = NULL;
	size_t n = 0, i;
	int r = 0;

	if (executor_list_dir(c->ex, dir, &ents, &n) < 0)
		return -1;
	for (i = 0; i < n && r == 0; i++) {
		char *p = xasprintf("%s/%s", dir, ents[i].name);
		char *k = xasprintf("%s%s", prefix, ents[i].name);
		if (S_ISDIR(ents[i].mode) && recurse) {
			char *kp = xasprintf("%s/", k);
			r = s3_put_tree(c, p, bucket, kp, owner, true);
			free(kp);
		} else if (S_ISREG(ents[i].mode)) {
			r = s3_put_file(c, p, bucket, k, owner);
		}
		free(p);
		free(k);
	}
	dir_entries_free(ents, n);
	return r;
}

static int s3_upload(struct action_ctx *c, json_t *e)
{
	const char *src = in_str(e, "source", ""), *dst = in_str(e, "destination", "");
	const char *owner = in_str(e, "expectedBucketOwner", NULL);
	char *bucket = NULL, *key = NULL, *k = NULL;
	struct file_stat st = { 0 };
	int r = -1;

	if (src[0] != '/')
		return err_set("S3Upload: source '%s' is not an absolute path", src);
	if (s3_split(dst, &bucket, &key) < 0)
		return -1;
	k = str_endswith(key, "/") || !key[0] ? xstrdup(key) : xasprintf("%s/", key);
	if (str_endswith(src, "/*")) {
		/* the folder's files (and sub-folders with recurse) under the prefix */
		char *dir = xstrndup(src, strlen(src) - 2);
		r = s3_put_tree(c, dir[0] ? dir : "/", bucket, k, owner,
				in_bool(e, "recurse", false));
		free(dir);
		goto cleanup;
	}
	if (executor_stat(c->ex, src, &st) < 0)
		goto cleanup;
	if (!st.exists) {
		err_set("S3Upload: '%s' does not exist", src);
		goto cleanup;
	}
	if (S_ISDIR(st.mode)) {
		if (!in_bool(e, "recurse", false)) {
			err_set("S3Upload: '%s' is a folder and recurse is false", src);
			goto cleanup;
		}
		r = s3_put_tree(c, src, bucket, k, owner, true);
	} else {
		const char *b = strrchr(src, '/') + 1;
		char *fk = str_endswith(key, "/") || !key[0] ? xasprintf("%s%s", key, b)
							     : xstrdup(key);
		r = s3_put_file(c, src, bucket, fk, owner);
		free(fk);
	}
cleanup:
	file_stat_release(&st);
	free(bucket);
	free(key);
	free(k);
	return r;
}

int act_s3_upload(struct action_ctx *c)
{
	json_t *e;
	size_t i;

	if (s3_available(c) < 0)
		return -1;
	json_array_foreach(c->inputs, i, e)
		if (s3_upload(c, e) < 0)
			return -1;
	return 0;
}
