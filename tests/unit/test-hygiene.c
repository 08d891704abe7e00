/* test-hygiene.c: bounds and hygiene against hostile inputs (issue #13):
 * YAML duplicate-key check cost, named limits, names from the guest,
 * control characters on the terminal, local sources in host-side actions. */
#include "test.h"
#include "buf.h"
#include "error.h"
#include "util.h"
#include "builder/recipe/yaml.h"
#include "builder/component/actions.h"

/* A mapping of nkeys distinct keys "keyN: N", each line prefixed with indent. */
static void big_mapping(struct buf *b, size_t nkeys, const char *indent)
{
	char line[64];
	size_t i;

	for (i = 0; i < nkeys; i++) {
		snprintf(line, sizeof(line), "%skey%zu: %zu\n", indent, i, i);
		buf_adds(b, line);
	}
}

static void test_yaml_large_mapping(void)
{
	struct ydoc d;
	size_t len;
	unsigned long before;
	char *text;
	char want[128];
	const size_t n = 80000;
	struct buf b;

	/* 80,000 distinct keys: parses, and the duplicate check costs about one
	 * comparison per key (a linear scan needs n*(n-1)/2 = 3.2e9). */
	buf_init(&b, 16u << 20);
	big_mapping(&b, n, "");
	len = b.len;
	text = buf_detach(&b, NULL);
	before = ymap_key_compares;
	CHECK(ydoc_load_string(&d, "big.yaml", text, len) == 0 && d.root &&
	      d.root->npairs == n, "yaml: 80,000-key mapping parses");
	CHECK(ymap_key_compares - before < 4 * n,
	      "yaml: duplicate check on 80,000 keys is not quadratic (%lu comparisons)",
	      ymap_key_compares - before);
	CHECK(ymap_get(d.root, "key0") && ymap_get(d.root, "key79999") &&
	      strcmp(ymap_get(d.root, "key54321")->str, "54321") == 0,
	      "yaml: keys of a large mapping are all found");
	ydoc_release(&d);
	free(text);

	/* The duplicate is still found, at its own file:line:col, at the end of a
	 * large nested mapping (indented, to check the column too). */
	buf_adds(&b, "top:\n");
	big_mapping(&b, n, "  ");
	buf_adds(&b, "  key40000: again\n");
	len = b.len;
	text = buf_detach(&b, NULL);
	CHECK(ydoc_load_string(&d, "big.yaml", text, len) < 0,
	      "yaml: duplicate key in an 80,000-key mapping refused");
	snprintf(want, sizeof(want), "big.yaml:%zu:3: duplicate key 'key40000'", n + 2);
	CHECK_STR(err_msg(), want, "yaml: duplicate key reported at file:line:col");
	ydoc_release(&d);
	free(text);

	/* Same keys in different mappings are not duplicates; hash collisions
	 * (same bucket, different key) are not either. */
	{
		const char *ok = "a: {x: 1, y: 2}\nb: {x: 3, y: 4}\nx: 5\n";
		CHECK(ydoc_load_string(&d, "t.yaml", ok, strlen(ok)) == 0,
		      "yaml: same key in sibling mappings accepted");
		ydoc_release(&d);
	}
}

static void test_names(void)
{
	char longname[NAME_MAX + 2];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(name_is_safe("file.txt") && name_is_safe("..hidden") && name_is_safe("a..b") &&
	      name_is_safe(".x"), "names: ordinary names accepted");
	CHECK(!name_is_safe(".") && !name_is_safe("..") && !name_is_safe("") &&
	      !name_is_safe(NULL), "names: '.', '..' and empty refused");
	CHECK(!name_is_safe("a/b") && !name_is_safe("/") && !name_is_safe("../x"),
	      "names: names containing '/' refused");
	CHECK(!name_is_safe(longname), "names: longer than NAME_MAX refused");
}

static void test_local_addresses(void)
{
	static const char *const local[] = {
		"127.0.0.1", "127.1.2.3", "0.0.0.0", "169.254.169.254", "169.254.0.1", "::1", "::",
		"fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "bogus",
	};
	static const char *const remote[] = {
		"93.184.216.34", "10.0.0.1", "192.168.1.1", "172.16.0.1", "2606:4700::1111",
		"::ffff:8.8.8.8", "fd00:ec2::253", "169.253.255.255", "128.0.0.1",
	};
	size_t i;
	bool ok = true;

	for (i = 0; i < sizeof(local) / sizeof(*local); i++)
		if (!net_addr_is_local(local[i])) {
			printf("  not seen as local: %s\n", local[i]);
			ok = false;
		}
	CHECK(ok, "local sources: loopback, link-local, IMDS and mapped forms are local");
	ok = true;
	for (i = 0; i < sizeof(remote) / sizeof(*remote); i++)
		if (net_addr_is_local(remote[i])) {
			printf("  seen as local: %s\n", remote[i]);
			ok = false;
		}
	CHECK(ok, "local sources: public and private-network addresses are not local");
}

int main(void)
{
	test_yaml_large_mapping();
	test_names();
	test_local_addresses();
	return TEST_DONE();
}
