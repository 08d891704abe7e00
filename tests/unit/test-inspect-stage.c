/* The build's inspect stage, the parts that need no appliance: credential
 * fragments (builder/build/inspect-stage.c), the check id table recipes
 * name, and the manifest's inspect summary. */
#include <jansson.h>

#include "test.h"
#include "builder/build/inspect-stage.h"
#include "builder/build/manifest.h"
#include "util.h"

int main(void)
{
	char f[4][CRED_FRAGMENT_BUF];
	const char *secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";	/* 40 bytes */
	char tmpl[] = "/tmp/amiforge-test-manifest.XXXXXX", *path, *text;
	struct manifest *m;
	struct buf b = BUF_INIT(1 << 20);
	json_t *j;
	size_t n;

	n = cred_fragments(secret, false, f, 4);
	CHECK(n == 3, "fragments: three of a 40-byte secret (%zu)", n);
	CHECK_STR(f[0], "wJalrXUtnFEMI/K7", "fragments: its start");
	CHECK_STR(f[1], "I/K7MDENG/bPxRfi", "fragments: its middle (bytes 12-27)");
	CHECK_STR(f[2], "xRfiCYEXAMPLEKEY", "fragments: its end");
	n = cred_fragments(secret, true, f, 4);
	CHECK(n == 2 && strcmp(f[1] + CRED_FRAGMENT_LEN - 4, "EKEY") == 0,
	      "fragments: token without its shared start, end last");
	n = cred_fragments("AKIDAMIFORGETEST", false, f, 4);
	CHECK(n == 1 && strcmp(f[0], "AKIDAMIFORGETEST") == 0, "fragments: a short key whole");
	CHECK(cred_fragments("testing", false, f, 4) == 0, "fragments: too short to search");
	CHECK(cred_fragments(NULL, false, f, 4) == 0, "fragments: no session token");
	CHECK(cred_fragments(secret, false, f, 1) == 1, "fragments: bounded by max");

	CHECK(inspect_check_known("clean.credentials") && inspect_check_known("clean.amiforge") &&
	      inspect_check_known("clean.host-credentials") && inspect_check_known("kernel.nvme"),
	      "check ids: the build's checks are known");
	CHECK(!inspect_check_known("clean.credential") && !inspect_check_known(""),
	      "check ids: others are not");

	CHECK(mkdtemp(tmpl) != NULL, "manifest: temporary directory");
	path = xasprintf("%s/manifest.json", tmpl);
	m = manifest_new(path);
	CHECK(manifest_set_inspect(m, "[1]") < 0, "manifest: inspect summary must be an object");
	CHECK(manifest_set_inspect(m, "{\"status\": \"disabled\", \"reason\": \"--no-inspect\"}") == 0,
	      "manifest: inspect summary set");
	CHECK(manifest_write(m) == 0, "manifest: written");
	CHECK(buf_read_file(&b, path) == 0, "manifest: read back");
	text = b.data ? b.data : "";
	j = json_loads(text, 0, NULL);
	CHECK(j && json_is_string(json_object_get(json_object_get(j, "inspect"), "status")) &&
	      strcmp(json_string_value(json_object_get(json_object_get(j, "inspect"), "status")),
		     "disabled") == 0, "manifest: inspect.status recorded");
	json_decref(j);
	manifest_free(m);
	buf_release(&b);
	unlink(path);
	rmdir(tmpl);
	free(path);
	return TEST_DONE();
}
