/* SigV4: the 76 checks of the AWS suite in tests/data/sigv4 (each case
 * signed in headers and as a presigned query; canonical request, string to
 * sign, signature and signed request must all match), plus the S3 examples
 * of the S3 documentation in tests/fixtures/aws/sigv4-s3 (signature only).
 *
 * The suite is test data of this repository (tests/data/sigv4/v4, Apache-2.0,
 * see its LICENSE and NOTICE); the tests run from the top of the clone.
 * Missing or incomplete suite: FAIL. */
#include <dirent.h>

#include "test.h"
#include "buf.h"
#include "error.h"
#include "util.h"
#include "drivers/aws/sigv4.h"
#include "drivers/aws/sigv4-case.h"

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *slurp(const char *path)
{
	struct buf b = BUF_INIT(1024 * 1024);

	if (buf_read_file(&b, path) < 0)
		return NULL;
	return buf_detach(&b, NULL);
}

/* Compare got with the file dir/prefix-what.txt; NULL when equal, else a
 * description (static). */
static const char *compare(const char *dir, const char *prefix, const char *what,
			   const char *got, char *detail, size_t dlen)
{
	char *path = xasprintf("%s/%s-%s.txt", dir, prefix, what);
	char *want = slurp(path);
	const char *r = NULL;

	if (!want) {
		snprintf(detail, dlen, "cannot read %s: %s", path, err_msg());
		r = detail;
	} else if (strcmp(want, got) != 0) {
		size_t i = 0;
		while (want[i] && want[i] == got[i])
			i++;
		snprintf(detail, dlen, "%s differs at byte %zu: got '%.40s' want '%.40s'",
			 what, i, got + i, want + i);
		r = detail;
	}
	free(path);
	free(want);
	return r;
}

static void run_case(const char *dir, const char *name, bool presign, bool full)
{
	const char *prefix = presign ? "query" : "header";
	char *req = xasprintf("%s/request.txt", dir), *ctx = xasprintf("%s/context.json", dir);
	struct sigv4_case c;
	struct sigv4_debug dbg = { 0 };
	char detail[300];
	const char *bad = NULL;
	char *signed_req = NULL;
	char *sigfile = xasprintf("%s/%s-signature.txt", dir, prefix);

	if (!full && access(sigfile, F_OK) != 0) {	/* example without this variant */
		free(sigfile);
		free(req);
		free(ctx);
		return;
	}
	free(sigfile);
	if (sigv4_case_load(&c, req, ctx, presign) < 0) {
		CHECK(false, "sigv4 %s %s: %s", prefix, name, err_msg());
		goto out;
	}
	if (sigv4_sign(&c.params, &c.msg, &dbg) < 0) {
		CHECK(false, "sigv4 %s %s: %s", prefix, name, err_msg());
		sigv4_case_release(&c);
		goto out;
	}
	signed_req = sigv4_msg_format(&c.msg);
	if (full) {
		bad = compare(dir, prefix, "canonical-request", dbg.canonical_request,
			      detail, sizeof(detail));
		if (!bad)
			bad = compare(dir, prefix, "string-to-sign", dbg.string_to_sign,
				      detail, sizeof(detail));
	}
	if (!bad)
		bad = compare(dir, prefix, "signature", dbg.signature, detail, sizeof(detail));
	if (!bad && full)
		bad = compare(dir, prefix, "signed-request", signed_req, detail, sizeof(detail));
	CHECK(bad == NULL, "sigv4 %s %s%s%s", prefix, name, bad ? ": " : "", bad ? bad : "");
	free(signed_req);
	sigv4_debug_release(&dbg);
	sigv4_case_release(&c);
out:
	free(req);
	free(ctx);
}

/* Run every case directory under root; returns how many were found. */
static size_t run_suite(const char *root, bool full)
{
	DIR *d = opendir(root);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0, i;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || e->d_type != DT_DIR)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		char *dir = xasprintf("%s/%s", root, names[i]);
		run_case(dir, names[i], false, full);
		run_case(dir, names[i], true, full);
		free(dir);
		free(names[i]);
	}
	free(names);
	return n;
}

static void test_helpers(void)
{
	struct buf b = BUF_INIT(1024);
	struct sigv4_msg m;
	struct sigv4_creds cr = { "AKID", "SECRETKEYSECRET", NULL };
	struct sigv4_params p = { .creds = &cr, .region = "eu-west-1", .service = "s3",
				  .time = 1440938160 };
	const char *auth;

	sigv4_uri_encode(&b, "a b/c~ሴ", strlen("a b/c~ሴ"), true);
	CHECK_STR(b.data, "a%20b/c~%E1%88%B4", "sigv4: uri encode keeps slash and unreserved");
	buf_release(&b);

	/* S3: x-amz-content-sha256 is sent and signed even for an empty body,
	 * and an encoded path is not encoded again. */
	sigv4_msg_init(&m, "GET", "/bucket/my%20key", "");
	sigv4_msg_add(&m, "Host", "s3.eu-west-1.amazonaws.com");
	CHECK(sigv4_sign(&p, &m, NULL) == 0, "sigv4: s3 sign");
	auth = sigv4_msg_get(&m, "authorization");
	CHECK(sigv4_msg_get(&m, "x-amz-content-sha256") &&
	      strcmp(sigv4_msg_get(&m, "x-amz-content-sha256"),
		     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0,
	      "sigv4: s3 always sends x-amz-content-sha256");
	CHECK(auth && strstr(auth, "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"),
	      "sigv4: s3 signs x-amz-content-sha256");
	sigv4_msg_release(&m);
}

int main(void)
{
	const char *root = "tests/data/sigv4/v4";
	size_t n;

	test_helpers();
	n = run_suite(root, true);
	CHECK(n == 38, "sigv4 suite: 38 cases found in %s (found %zu; run from the top "
	      "of the clone)", root, n);
	n = run_suite("tests/fixtures/aws/sigv4-s3", false);
	CHECK(n >= 3, "sigv4 s3 examples found (%zu)", n);
	return TEST_DONE();
}
