/* Unit tests for builder/recipe/recipe.c and builder/recipe/template.c: the malformed
 * corpus in tests/recipes/invalid (each file ends with "# expect:
 * LINE:COL: message"), resolution of a full recipe, --var overrides,
 * templates, semver, the document hook. Run from the top of the tree. */
#include <dirent.h>

#include "test.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"
#include "builder/recipe/recipe.h"
#include "builder/recipe/template.h"

#define CORPUS "tests/recipes/invalid"
#define BUILD_TIME ((time_t)1700000000)  /* 2023-11-14 22:13:20 UTC */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_invalid_corpus(void)
{
	DIR *d = opendir(CORPUS);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, i;

	CHECK(d != NULL, "corpus: %s exists", CORPUS);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!str_endswith(de->d_name, ".yaml"))
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	CHECK(n >= 20, "corpus: at least 20 malformed recipes (%zu)", n);
	for (i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", CORPUS, names[i]), *want = NULL, *line;
		struct buf b = BUF_INIT(1 << 20);
		struct recipe *r;

		if (buf_read_file(&b, path) == 0 && b.data && (line = strstr(b.data, "# expect: "))) {
			line += strlen("# expect: ");
			line[strcspn(line, "\n")] = '\0';
			want = xasprintf("%s:%s", path, line);
		}
		CHECK(want != NULL, "corpus %s: has an '# expect:' line", names[i]);
		err_clear();
		r = recipe_parse(path, NULL);
		CHECK(r == NULL, "corpus %s: rejected", names[i]);
		if (want)
			CHECK_STR(err_msg(), want, "corpus %s: error with file:line:col", names[i]);
		recipe_free(r);
		buf_release(&b);
		free(want);
		free(path);
		free(names[i]);
	}
	free(names);
}

static void test_full(void)
{
	static const char *const vars[] = { "Port=9090", "Extra=x", NULL };
	struct recipe_opts o = { .vars = vars, .build_time = BUILD_TIME };
	struct recipe *r = recipe_parse("tests/recipes/valid/full.yaml", &o);
	char *want;

	CHECK(r != NULL, "full: parses (%s)", r ? "ok" : err_msg());
	if (!r)
		return;
	CHECK_STR(r->name, "web", "full: name");
	CHECK_STR(r->version, "1.2.3-rc.1", "full: version");
	CHECK_STR(r->build_date, "20231114221320", "full: buildDate from build_time (UTC)");
	CHECK_STR(r->description, "web image built 20231114221320 (web 1.2.3-rc.1)",
		  "full: description templates expanded");
	CHECK(r->path[0] == '/' && str_endswith(r->path, "tests/recipes/valid/full.yaml"),
	      "full: recipe path absolute");
	CHECK(r->parent.path && r->parent.path[0] == '/' &&
	      str_endswith(r->parent.path, "tests/recipes/images/empty.raw") && !r->parent.url,
	      "full: parent path resolved against the recipe's directory");
	CHECK_STR(r->parent.format, "raw", "full: parent format");
	CHECK(r->ncomponents == 2 && r->ntests == 1, "full: 2 components, 1 test");
	if (r->ncomponents == 2) {
		CHECK(str_endswith(r->components[0].path, "tests/recipes/components/hello.yaml") &&
		      r->components[0].path[0] == '/', "full: component path absolute");
		CHECK_STR(r->components[0].given, "../components/hello.yaml", "full: given path kept");
		CHECK_STR(recipe_doc_param(&r->components[0], "Greeting"), "hi from web",
			  "full: parameter template expanded");
		CHECK_STR(recipe_doc_param(&r->components[0], "Port"), "9090",
			  "full: --var overrides a component parameter");
		CHECK(r->components[0].params[1].from_var && !r->components[0].params[0].from_var,
		      "full: overridden parameter marked from_var");
		CHECK(r->components[1].nparams == 0, "full: short form '- path' has no parameters");
	}
	CHECK(r->nvars == 2, "full: parameter vars kept for document defaults");
	CHECK(r->vm.cpus == 4 && r->vm.memory_mib == 2048 && r->vm.disk_size == 8ull << 30,
	      "full: vm cpus, memory 2G = 2048 MiB, disk 8G");
	CHECK_STR(r->vm.accel, "tcg", "full: vm accel");
	CHECK_STR(r->vm.driver, "libvirt", "full: vm driver");
	CHECK_STR(r->vm.connect, "qemu:///system", "full: vm connect");
	CHECK(r->vm.wait_for_cloud_init, "full: vm.wait_for_cloud_init");
	CHECK(!r->cleanup.ssh && !r->cleanup.history && r->cleanup.cloudinit &&
	      r->cleanup.logs && r->cleanup.machine_id && r->cleanup.agent,
	      "full: cleanup flags default on, two turned off");
	CHECK(r->output.formats == (OUTPUT_QCOW2 | OUTPUT_RAW | OUTPUT_VMDK),
	      "full: output formats");
	want = xasprintf("%s/out-1.2.3-rc.1", r->dir);
	CHECK_STR(r->output.directory, want, "full: output directory templated and absolute");
	free(want);
	CHECK(r->publish.set, "full: publish set");
	CHECK_STR(r->publish.o.spec.via, "import-snapshot", "full: publish via");
	CHECK_STR(r->publish.o.spec.name, "web-1.2.3-rc.1-20231114221320", "full: AMI name templated");
	CHECK(r->publish.o.spec.ntags == 2, "full: two tags");
	if (r->publish.o.spec.ntags == 2)
		CHECK_STR(r->publish.o.spec.tags[0].value, "web 1.2.3-rc.1", "full: tag templated");
	/* Every option of `amiforge publish` with a recipe key (publish-opts.h). */
	CHECK(r->publish.o.spec.volume_size_gib == 16 && r->publish.o.spec.tpm &&
	      !r->publish.o.spec.ena && r->publish.o.spec.sriov && !r->publish.o.spec.imds_v2 &&
	      r->publish.o.spec.part_size == 64ull << 20 && r->publish.o.spec.parallel == 4 &&
	      r->publish.o.spec.keep_object, "full: publish options of the command's table");
	CHECK_STR(r->publish.o.spec.volume_type, "io2", "full: publish volume type");
	CHECK_STR(r->publish.o.spec.kms_key_id, "alias/images", "full: publish KMS key");
	CHECK(r->distribution && r->distribution->type == YNODE_SEQ,
	      "full: distribution kept as a node");
	CHECK(r->inspect.nskip == 2 && r->inspect.ncanaries == 1, "full: inspect skip and canaries");
	if (r->inspect.nskip == 2 && r->inspect.ncanaries == 1) {
		CHECK_STR(r->inspect.skip[1], "kernel.xen-netfront", "full: inspect.skip id");
		CHECK(str_endswith(r->inspect.skip_at[0], "tests/recipes/valid/full.yaml:36:10"),
		      "full: inspect.skip position kept (%s)", r->inspect.skip_at[0]);
		CHECK_STR(r->inspect.canaries[0], "do-not-ship-4f2a", "full: inspect canary");
	}
	recipe_free(r);
}

static void test_defaults_and_url(void)
{
	struct recipe *r = recipe_parse("tests/recipes/valid/minimal.yaml", NULL);

	CHECK(r != NULL, "minimal: parses");
	if (r) {
		CHECK(r->vm.cpus == 2 && r->vm.memory_mib == 1024 && r->vm.disk_size == 0,
		      "minimal: vm defaults");
		CHECK_STR(r->vm.accel, "auto", "minimal: accel auto");
		CHECK(!r->vm.wait_for_cloud_init, "minimal: steps do not wait for cloud-init");
		CHECK(r->cleanup.cloudinit && r->cleanup.ssh && r->cleanup.history,
		      "minimal: cleanup on by default");
		CHECK(r->output.formats == OUTPUT_QCOW2 && !r->output.directory,
		      "minimal: qcow2 in the build directory by default");
		CHECK(!r->publish.set && !r->distribution, "minimal: no publish");
	}
	recipe_free(r);

	r = recipe_parse("tests/recipes/valid/url.yaml", NULL);
	CHECK(r != NULL, "url: parses");
	if (r) {
		CHECK(r->parent.url && !r->parent.path && r->parent.archive == ARCHIVE_TAR_XZ,
		      "url: archive kind from the URL suffix");
		CHECK(r->parent.checksum_url && r->parent.algo == CHECKSUM_NONE,
		      "url: checksum file URL");
		CHECK_STR(r->parent.member, "disk.raw", "url: member");
		CHECK(!r->cleanup.cloudinit && !r->cleanup.agent, "url: cleanup: false");
	}
	recipe_free(r);
}

static void test_vars(void)
{
	const char *v1[] = { "vm.cpus=8", "vm.memory=4G", "name=other",
			     "description=by {{ name }}",
			     NULL };
	const char *v2[] = { "vm.cpus=lots", NULL };
	const char *v3[] = { "name.sub=1", NULL };
	const char *v4[] = { "=1", NULL };
	const char *v5[] = { "components.5.path=x", NULL };
	struct recipe_opts o = { .vars = v1 };
	struct recipe *r;

	r = recipe_parse("tests/recipes/valid/minimal.yaml", &o);
	CHECK(r != NULL, "vars: recipe keys overridden (%s)", r ? "ok" : err_msg());
	if (r) {
		CHECK(r->vm.cpus == 8 && r->vm.memory_mib == 4096, "vars: vm section created");
		CHECK_STR(r->name, "other", "vars: name replaced");
		CHECK_STR(r->description, "by other", "vars: added key, templates expanded");
	}
	recipe_free(r);

	/* vm.arch: a name or alias of the architecture table (issue 22). */
	{
		const char *va[] = { "vm.arch=arm64", NULL }, *vb[] = { "vm.arch=arm", NULL };

		o.vars = va;
		r = recipe_parse("tests/recipes/valid/minimal.yaml", &o);
		CHECK(r && r->vm.arch == ARCH_AARCH64, "vm.arch: arm64 is aarch64 (%s)",
		      r ? "ok" : err_msg());
		recipe_free(r);
		o.vars = vb;
		r = recipe_parse("tests/recipes/valid/minimal.yaml", &o);
		CHECK(!r && strstr(err_msg(), "minimal.yaml:") && strstr(err_msg(), "vm.arch") &&
		      strstr(err_msg(), "'arm'") && strstr(err_msg(), "arm64"),
		      "vm.arch: an unknown name is refused at its node, with did-you-mean (%s)",
		      err_msg());
		recipe_free(r);
		r = recipe_parse("tests/recipes/valid/minimal.yaml", &(struct recipe_opts){ 0 });
		CHECK(r && r->vm.arch == ARCH_AUTO, "vm.arch: unset is auto (the base's)");
		recipe_free(r);
	}
	o.vars = v2;
	r = recipe_parse("tests/recipes/valid/full.yaml", &o);
	CHECK(!r && strstr(err_msg(), "full.yaml:13:12: vm.cpus 'lots'") &&
	      strstr(err_msg(), "(value set by --var vm.cpus)"),
	      "vars: bad value reported at the recipe node, naming the --var");
	recipe_free(r);
	o.vars = v3;
	r = recipe_parse("tests/recipes/valid/minimal.yaml", &o);
	CHECK(!r && strstr(err_msg(), "'name' is a string, not a mapping"),
	      "vars: path through a string refused");
	recipe_free(r);
	o.vars = v4;
	r = recipe_parse("tests/recipes/valid/minimal.yaml", &o);
	CHECK(!r && strstr(err_msg(), "expected NAME=VALUE"), "vars: empty name refused");
	recipe_free(r);
	o.vars = v5;
	r = recipe_parse("tests/recipes/valid/full.yaml", &o);
	CHECK(!r && strstr(err_msg(), "no item '5'"), "vars: list index checked");
	recipe_free(r);
}

static int hook_calls;
static int hook(const struct recipe *r UNUSED, const struct recipe_doc *d, bool is_test,
		void *opaque)
{
	hook_calls++;
	if (opaque && is_test)
		return err_set("%s:3:1: test says no", d->path);
	return 0;
}

static void test_hook(void)
{
	struct recipe_opts o = { .check_doc = hook };
	struct recipe *r;

	r = recipe_parse("tests/recipes/valid/full.yaml", &o);
	CHECK(r && hook_calls == 3, "hook: called for each component and test (%d)", hook_calls);
	recipe_free(r);
	o.opaque = &o;
	r = recipe_parse("tests/recipes/valid/full.yaml", &o);
	CHECK(!r && strstr(err_msg(), "hello-test.yaml:3:1: test says no"),
	      "hook: document error propagates");
	recipe_free(r);
}

static void test_semver(void)
{
	static const char *const good[] = { "0.0.0", "1.0.0", "10.20.30", "1.0.0-alpha",
		"1.0.0-alpha.1", "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0+20130313144700",
		"1.0.0-beta+exp.sha.5114f85", "1.0.0-alpha-a.b-c" };
	static const char *const bad[] = { "", "1", "1.0", "1.0.0.0", "01.0.0", "1.01.0",
		"1.0.0-", "1.0.0-01", "1.0.0+", "1.0.0-a..b", "v1.0.0", "1.0.0 ", "1.0.x",
		"1.0.0-a_b" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(good); i++)
		CHECK(semver_valid(good[i]), "semver: '%s' valid", good[i]);
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(!semver_valid(bad[i]), "semver: '%s' invalid", bad[i]);
}

static void test_template(void)
{
	struct tvar v[] = { { "name", "web" }, { "version", "1.0.0" } };
	char *out;
	size_t off;

	CHECK(template_expand("{{name}}-{{ version }}", v, 2, &out, &off) == 0 &&
	      strcmp(out, "web-1.0.0") == 0, "template: with and without spaces");
	free(out);
	CHECK(template_expand("plain } { text", v, 2, &out, &off) == 0 &&
	      strcmp(out, "plain } { text") == 0, "template: single braces untouched");
	free(out);
	CHECK(template_expand("ab {{ nope }}", v, 2, &out, &off) < 0 && off == 3 && !out,
	      "template: unknown variable with its offset");
	CHECK(template_expand("{{ a b }}", v, 2, &out, &off) < 0 &&
	      strstr(err_msg(), "invalid template"), "template: malformed name");
	CHECK(closest_word("parnet", (const char *const[]){ "parent", "tests" }, 2) != NULL,
	      "did-you-mean: transposition found");
	CHECK(closest_word("zzzzzz", (const char *const[]){ "parent", "tests" }, 2) == NULL,
	      "did-you-mean: unrelated word gives no hint");
}

static void test_network(void)
{
	static const char *const off[] = { "vm.network=none", "vm.forward.0=9999", NULL };
	struct recipe_opts o = { .build_time = BUILD_TIME };
	struct recipe *r = recipe_parse("tests/recipes/valid/network.yaml", &o);
	char *red;

	CHECK(r != NULL, "network: parses (%s)", r ? "ok" : err_msg());
	if (r) {
		CHECK(r->vm.network == VM_NET_USER && !r->vm.network_source, "network: user");
		CHECK_STR(r->vm.proxy.http, "http://builder:pr0xy-passw0rd@proxy.example:3128",
			  "network: proxy http");
		CHECK_STR(r->vm.proxy.https, "https://proxy.example:3129", "network: proxy https");
		CHECK_STR(r->vm.proxy.no_proxy, "localhost,169.254.169.254", "network: no_proxy");
		CHECK(r->vm.nforwards == 2 && r->vm.forwards[0].host_port == 0 &&
		      r->vm.forwards[0].guest_port == 8080 && r->vm.forwards[1].host_port == 2222 &&
		      r->vm.forwards[1].guest_port == 22,
		      "network: forwards (a bare port gets its host port at boot)");
		red = log_redact_str("proxy http://builder:pr0xy-passw0rd@proxy.example:3128 "
				     "and builder:pr0xy-passw0rd");
		CHECK(red && !strstr(red, "pr0xy-passw0rd"),
		      "network: proxy URL and credentials registered with the redactor (%s)", red);
		free(red);
	}
	recipe_free(r);

	r = recipe_parse("tests/recipes/valid/minimal.yaml", &o);
	CHECK(r && r->vm.network == VM_NET_USER && r->vm.nforwards == 0 && !r->vm.proxy.http &&
	      r->cleanup.network, "network: default is the user network, no proxy, cleanup on");
	recipe_free(r);

	/* network none with a forward: refused (--var replaces the nodes). */
	o.vars = off;
	r = recipe_parse("tests/recipes/valid/network.yaml", &o);
	CHECK(!r && strstr(err_msg(), "vm.forward needs vm.network: user"),
	      "network: none refuses forwards (%s)", err_msg());
	recipe_free(r);


	setenv("http_proxy", "http://env-user:env-passw0rd@envproxy:8080", 1);
	unsetenv("HTTPS_PROXY");
	unsetenv("https_proxy");
	setenv("NO_PROXY", "internal.example", 1);
	unsetenv("no_proxy");
	{
		static const char *const inherit[] = { "vm.proxy=inherit", NULL };

		o.vars = inherit;
		r = recipe_parse("tests/recipes/valid/network.yaml", &o);
		CHECK(r && r->vm.proxy.inherit &&
		      strcmp(r->vm.proxy.http ? r->vm.proxy.http : "",
			     "http://env-user:env-passw0rd@envproxy:8080") == 0 &&
		      !r->vm.proxy.https &&
		      strcmp(r->vm.proxy.no_proxy ? r->vm.proxy.no_proxy : "",
			     "internal.example") == 0,
		      "network: proxy inherit takes http_proxy / NO_PROXY from the environment");
		red = log_redact_str("env-user:env-passw0rd");
		CHECK(red && !strstr(red, "env-passw0rd"), "network: inherited proxy redacted");
		free(red);
		recipe_free(r);
	}
	unsetenv("http_proxy");
	unsetenv("NO_PROXY");
}

int main(void)
{
	test_invalid_corpus();
	test_full();
	test_defaults_and_url();
	test_vars();
	test_hook();
	test_network();
	test_semver();
	test_template();
	return TEST_DONE();
}
