/* Unit tests for builder/build/manifest.c: the JSON written for a build of
 * tests/recipes/valid/full.yaml, read back with jansson. */
#include <dirent.h>
#include <jansson.h>

#include "test.h"
#include "error.h"
#include "log.h"
#include "util.h"
#include "builder/base/cache.h"
#include "builder/build/manifest.h"
#include "builder/recipe/recipe.h"

static const char *get_s(json_t *o, const char *path)
{
	char *copy = xstrdup(path), *seg, *save = NULL;
	const char *r;

	for (seg = strtok_r(copy, ".", &save); seg && o; seg = strtok_r(NULL, ".", &save)) {
		uint64_t idx;

		o = json_is_array(o) && parse_u64(seg, 1000, &idx) == 0 ? json_array_get(o, idx)
									: json_object_get(o, seg);
	}
	free(copy);
	r = json_string_value(o);
	return r ? r : "(missing)";
}

static size_t count_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

int main(void)
{
	char tmpl[] = "/tmp/amiforge-manifest.XXXXXX", *dir = mkdtemp(tmpl);
	static const char *const vars[] = { "Greeting=token-SUPERSECRET42", NULL };
	struct recipe_opts o = { .vars = vars, .build_time = 1700000000 };
	struct recipe *r = recipe_parse("tests/recipes/valid/full.yaml", &o);
	struct base_image img = { 0 };
	struct manifest *m;
	char *mpath, *out, *sha, *recipe_sha;
	json_error_t je;
	json_t *doc;

	if (!dir || !r) {
		printf("FAIL: setup: %s\n", err_msg());
		return 1;
	}
	mpath = xasprintf("%s/manifest.json", dir);
	out = xasprintf("%s/disk.qcow2", dir);
	write_file_atomic(out, "not really a disk", 17, 0644);
	img.path = xstrdup("/cache/objects/abc");
	img.source = xstrdup("https://example.com/debian.qcow2");
	img.sha256 = xstrdup("abc");
	img.format = xstrdup("qcow2");
	img.size = 123;
	img.virtual_size = 2ull << 30;
	log_add_secret("SUPERSECRET42");

	m = manifest_new(mpath);
	CHECK(manifest_set_recipe(m, r) == 0, "manifest: recipe recorded");
	manifest_set_base(m, &img);
	manifest_stage_begin(m, "fetch");
	manifest_stage_end(m, "fetch", "ok");
	manifest_stage_begin(m, "components");
	CHECK(manifest_write(m) == 0, "manifest: written mid-build");
	manifest_stage_end(m, "components", "failed");
	CHECK(manifest_add_output(m, "qcow2", out) == 0, "manifest: output recorded");
	CHECK(manifest_add_output(m, "raw", "/nonexistent") < 0, "manifest: missing output refused");
	manifest_add_ami(m, "eu-west-1", "ami-0123", "snap-0456");
	manifest_set_status(m, "failed", "component 'hello' step 'Say' failed");
	CHECK(manifest_write(m) == 0, "manifest: written");
	CHECK(count_dir(dir) == 2, "manifest: atomic write leaves no temporary file");

	doc = json_load_file(mpath, 0, &je);
	CHECK(doc != NULL, "manifest: valid JSON (%s)", doc ? "ok" : je.text);
	hash_file(out, CHECKSUM_NONE, &sha, NULL);
	hash_file(r->path, CHECKSUM_NONE, &recipe_sha, NULL);
	CHECK_STR(get_s(doc, "build.name"), "web", "manifest: build name");
	CHECK_STR(get_s(doc, "build.build_date"), "20231114221320", "manifest: build date");
	CHECK_STR(get_s(doc, "build.status"), "failed", "manifest: status");
	CHECK_STR(get_s(doc, "build.error"), "component 'hello' step 'Say' failed",
		  "manifest: error");
	CHECK(strcmp(get_s(doc, "build.finished"), "(missing)") != 0, "manifest: finished time");
	CHECK_STR(get_s(doc, "recipe.sha256"), recipe_sha, "manifest: recipe digest");
	CHECK_STR(get_s(doc, "inputs.0.kind"), "base", "manifest: base image first");
	CHECK_STR(get_s(doc, "inputs.0.source"), "https://example.com/debian.qcow2",
		  "manifest: base source");
	CHECK(json_integer_value(json_object_get(json_array_get(json_object_get(doc, "inputs"), 0),
						 "virtual_size")) == 2ll << 30,
	      "manifest: base virtual size");
	CHECK_STR(get_s(doc, "inputs.1.kind"), "component", "manifest: component input");
	CHECK(strlen(get_s(doc, "inputs.1.sha256")) == 64, "manifest: component digest");
	CHECK_STR(get_s(doc, "inputs.1.parameters.Greeting"), "token-[REDACTED]",
		  "manifest: secret in a parameter redacted");
	CHECK_STR(get_s(doc, "inputs.3.kind"), "test", "manifest: test input");
	CHECK_STR(get_s(doc, "stages.0.name"), "fetch", "manifest: stage order");
	CHECK_STR(get_s(doc, "stages.1.status"), "failed", "manifest: stage status");
	CHECK(json_is_real(json_object_get(json_array_get(json_object_get(doc, "stages"), 0),
					   "seconds")), "manifest: stage seconds");
	CHECK_STR(get_s(doc, "outputs.0.sha256"), sha, "manifest: output digest");
	CHECK(json_array_size(json_object_get(doc, "outputs")) == 1, "manifest: one output");
	CHECK_STR(get_s(doc, "amis.0.image_id"), "ami-0123", "manifest: AMI id");
	CHECK_STR(get_s(doc, "variables.Greeting"), "token-[REDACTED]",
		  "manifest: variables redacted");

	json_decref(doc);
	free(sha);
	free(recipe_sha);
	manifest_free(m);
	base_image_release(&img);
	recipe_free(r);
	log_clear_secrets();
	remove_tree(dir);
	free(mpath);
	free(out);
	return TEST_DONE();
}
