/* Unit tests for builder/component/catalog.c: version patterns, ARNs,
 * NAME/VERSION references, resolution over a search path. */
#include "test.h"
#include "builder/component/catalog.h"
#include "error.h"
#include "util.h"

static void test_patterns(void)
{
	static const char *const good[] = { "1.2.3", "1.2.x", "1.x.x", "x.x.x", "0.0.0",
					    "10.20.30" };
	static const char *const bad[] = { "1.2", "x.1.x", "x.x.1", "1.x.2", "01.2.3", "1.2.3.4",
					   "", "a.b.c", "1.2.3-beta", "1.2.X", "1..3",
					   "1234567890.0.0" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(good); i++)
		CHECK(catalog_pattern_check(good[i]) == 0, "pattern '%s' is valid", good[i]);
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(catalog_pattern_check(bad[i]) < 0, "pattern '%s' is refused", bad[i]);
	CHECK(catalog_version_match("1.2.x", "1.2.9"), "1.2.x matches 1.2.9");
	CHECK(!catalog_version_match("1.2.x", "1.3.0"), "1.2.x does not match 1.3.0");
	CHECK(catalog_version_match("1.x.x", "1.99.0"), "1.x.x matches 1.99.0");
	CHECK(!catalog_version_match("1.x.x", "2.0.0"), "1.x.x does not match 2.0.0");
	CHECK(catalog_version_match("x.x.x", "0.0.1"), "x.x.x matches anything");
	CHECK(catalog_version_match("1.2.3", "1.2.3") && !catalog_version_match("1.2.3", "1.2.4"),
	      "an exact version matches itself only");
	CHECK(!catalog_version_match("x.x.x", "1.2"), "a malformed version matches nothing");
	CHECK(catalog_version_cmp("1.10.0", "1.9.9") > 0, "versions compare numerically (1.10 > 1.9)");
	CHECK(catalog_version_cmp("2.0.0", "10.0.0") < 0, "2.0.0 < 10.0.0");
	CHECK(catalog_version_cmp("1.0.0", "1.0.0") == 0, "equal versions");
}

static void test_arns(void)
{
	char *n = NULL, *v = NULL;

	CHECK(catalog_parse_arn("arn:aws:imagebuilder:us-east-1:aws:component/update-linux/1.0.2/1",
				&n, &v) == 0 && n && v && strcmp(n, "update-linux") == 0 &&
	      strcmp(v, "1.0.2") == 0, "ARN with a build number");
	free(n);
	free(v);
	CHECK(catalog_parse_arn("arn:aws:imagebuilder:eu-west-1:123456789012:component/my-comp/1.x.x",
				&n, &v) == 0 && strcmp(n, "my-comp") == 0 && strcmp(v, "1.x.x") == 0,
	      "account-owned ARN with a wildcard");
	free(n);
	free(v);
	CHECK(catalog_parse_arn("arn:aws-us-gov:imagebuilder:us-gov-west-1:aws:component/x/1.0.0",
				&n, &v) == 0, "ARN in another partition");
	free(n);
	free(v);
	CHECK(catalog_parse_arn("arn:aws:imagebuilder:us-east-1:aws:image/x/1.0.0", &n, &v) < 0 &&
	      !n && strstr(err_msg(), "not an Image Builder component ARN"),
	      "an image ARN is not a component ARN");
	CHECK(catalog_parse_arn("arn:aws:s3:::bucket/component/x/1.0.0", &n, &v) < 0,
	      "an S3 ARN is refused");
	CHECK(catalog_parse_arn("arn:aws:imagebuilder:us-east-1:aws:component/x/1.0.0/b", &n, &v) < 0,
	      "a build number must be digits");
	CHECK(catalog_parse_arn("arn:aws:imagebuilder:us-east-1:aws:component/../1.0.0", &n, &v) < 0,
	      "a name of '..' is refused");
	CHECK(catalog_parse_ref("update-linux/1.0.x", &n, &v) && strcmp(n, "update-linux") == 0 &&
	      strcmp(v, "1.0.x") == 0, "NAME/VERSION is a catalog reference");
	free(n);
	free(v);
	CHECK(!catalog_parse_ref("components/hello.yaml", &n, &v) && !n,
	      "a file path is not a catalog reference");
	CHECK(!catalog_parse_ref("a/b/1.0.0", &n, &v), "a deeper path is not a reference");
}

static void put(const char *root, const char *name, const char *ver)
{
	char *d = xasprintf("%s/%s/%s", root, name, ver), *f = xasprintf("%s/document.yaml", d);
	FILE *fp;

	mkdir_p(d, 0755);
	fp = fopen(f, "w");
	if (fp) {
		fprintf(fp, "name: %s\nschemaVersion: 1.0\n", ver);
		fclose(fp);
	}
	free(f);
	free(d);
}

static void test_resolve(void)
{
	char a[] = "/tmp/amiforge-catalog-a.XXXXXX", b[] = "/tmp/amiforge-catalog-b.XXXXXX";
	struct catalog_entry e;
	struct catalog_entry *v = NULL;
	size_t n = 0;
	char *path;

	if (!mkdtemp(a) || !mkdtemp(b)) {
		CHECK(0, "catalog: temporary directories");
		return;
	}
	put(a, "tool", "1.2.0");
	put(a, "tool", "1.10.1");
	put(a, "tool", "2.0.0");
	put(b, "tool", "1.10.1");   /* the same version later in the path: shadowed */
	put(b, "tool", "1.11.0");
	put(b, "other", "0.1.0");
	mkdir_p(a, 0755);
	{	/* not components: a version dir without document.yaml, a bad name */
		char *x = xasprintf("%s/tool/3.0.0", a), *y = xasprintf("%s/.hidden/1.0.0", a);
		mkdir_p(x, 0755);
		mkdir_p(y, 0755);
		free(x);
		free(y);
	}
	path = xasprintf("%s:%s", a, b);
	setenv("AMIFORGE_COMPONENT_PATH", path, 1);
	setenv("HOME", "/nonexistent", 1);
	unsetenv("XDG_DATA_HOME");

	CHECK(catalog_resolve(NULL, "tool", "1.x.x", &e) == 0 && strcmp(e.version, "1.11.0") == 0,
	      "1.x.x resolves to the highest 1.* across the path (1.11.0)");
	catalog_entry_release(&e);
	CHECK(catalog_resolve(NULL, "tool", "1.10.x", &e) == 0 && strcmp(e.version, "1.10.1") == 0 &&
	      str_startswith(e.path, a), "a version in two directories comes from the first");
	catalog_entry_release(&e);
	CHECK(catalog_resolve(NULL, "tool", "x.x.x", &e) == 0 && strcmp(e.version, "2.0.0") == 0,
	      "x.x.x: the highest (2.0.0; 3.0.0 has no document)");
	catalog_entry_release(&e);
	CHECK(catalog_resolve(NULL, "tool", "1.2.0", &e) == 0 && strcmp(e.version, "1.2.0") == 0,
	      "an exact version");
	catalog_entry_release(&e);
	CHECK(catalog_resolve(NULL, "tool", "4.x.x", &e) < 0 &&
	      strstr(err_msg(), "component 'tool' version '4.x.x' not found") &&
	      strstr(err_msg(), a) && strstr(err_msg(), "versions there: 1.2.0 1.10.1 1.11.0 2.0.0"),
	      "no match: says what was looked for, where, and what is there (%s)", err_msg());
	CHECK(catalog_resolve(NULL, "nothing", "1.0.0", &e) < 0 && strstr(err_msg(), "'nothing'"),
	      "an unknown name");
	CHECK(catalog_resolve(NULL, "../etc", "1.0.0", &e) < 0, "a name with '/' is refused");
	CHECK(catalog_resolve(NULL, "tool", "1.x", &e) < 0, "a malformed pattern is refused");
	catalog_list(NULL, &v, &n);
	CHECK(n == 5, "list: 5 components, the duplicate once (got %zu)", n);
	CHECK(n == 5 && strcmp(v[0].name, "other") == 0 && strcmp(v[1].version, "1.2.0") == 0 &&
	      strcmp(v[2].version, "1.10.1") == 0 && strcmp(v[3].version, "1.11.0") == 0 && strcmp(v[4].version, "2.0.0") == 0,
	      "list: by name, then version, numerically");
	catalog_entries_free(v, n);
	unsetenv("AMIFORGE_COMPONENT_PATH");
	free(path);
	remove_tree(a);
	remove_tree(b);
}

int main(void)
{
	test_patterns();
	test_arns();
	test_resolve();
	return TEST_DONE();
}
