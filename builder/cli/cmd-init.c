/* amiforge init [DIR] [answers as flags] [--yes]: write a starter recipe,
 * a component and its test into DIR, asking for each answer on a terminal
 * (recipe: name, version, parent, catalog components; infrastructure;
 * distribution: publish route, region, bucket, AMI name, tags, copies,
 * shares; review). What it writes is checked by the same
 * parser `validate` uses before init says it is done. */
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>

#include "builder/build/build.h"
#include "builder/component/catalog.h"
#include "builder/recipe/recipe.h"
#include "commands.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define INIT_USAGE "init [DIR] [--name NAME] [--version V] [--parent PATH|URL|ami-ID|ssm:NAME]\n" \
		   "       [--sha256 HEX | --checksum-url URL] [--components LIST] [--cpus N]\n" \
		   "       [--memory MiB] [--disk-size SIZE] [--driver auto|libvirt|qemu] [--formats LIST]\n" \
		   "        [--publish no|ebs|import-snapshot|import-image]\n" \
		   "       [--region R] [--bucket B] [--ami-name TEMPLATE] [--tags K=V,...]\n" \
		   "       [--copy-to REGIONS] [--share ACCOUNTS] [--yes]"

/* Debian 12's generic cloud image, checked against Debian's published sums. */
#define INIT_PARENT_URL "https://cloud.debian.org/images/cloud/bookworm/latest/" \
			"debian-12-genericcloud-amd64.qcow2"
#define INIT_PARENT_SUMS "https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS"
/* One answer typed at the prompt. */
#define INIT_ANSWER_MAX 1024

enum {
	A_NAME, A_VERSION, A_PARENT, A_SHA256, A_SUMS, A_CATALOG,      /* the recipe */
	A_CPUS, A_MEMORY, A_DISK, A_DRIVER, A_FORMATS,                   /* infrastructure */
	A_PUBLISH, A_REGION, A_BUCKET, A_AMI_NAME, A_TAGS, A_COPY, A_SHARE,   /* distribution */
	A_N
};

struct answer {
	const char *flag;
	const char *question;   /* NULL: not asked (follows from another answer) */
	const char *def;
	char *value;            /* owned */
};

/* The value as a YAML scalar: double-quoted (a JSON string is one). */
static char *yq(const char *s)
{
	json_t *j = json_string(s);
	char *out = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

	json_decref(j);
	return out ? out : xstrdup("\"\"");
}

/* Ask one question on the terminal: the default in brackets, an empty line
 * keeps it. 0, or -1 at end of input. */
static int ask(struct answer *a, FILE *in)
{
	char line[INIT_ANSWER_MAX];
	size_t n;

	printf("%s [%s]: ", a->question, a->value ? a->value : "");
	fflush(stdout);
	if (!fgets(line, sizeof(line), in))
		return err_set("init: no answer to '%s' (end of input)", a->question);
	n = strcspn(line, "\r\n");
	if (line[n] == '\0' && n == sizeof(line) - 1)
		return err_set("init: answer to '%s' longer than %d characters", a->question,
			       INIT_ANSWER_MAX - 2);
	line[n] = '\0';
	if (n) {
		free(a->value);
		a->value = xstrdup(line);
	}
	return 0;
}

static int write_new(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0)
		return err_errno("init: create '%s'", path);
	if (write_all(fd, text, strlen(text)) < 0 || close(fd) < 0) {
		err_errno("init: write '%s'", path);
		unlink(path);
		return -1;
	}
	return 0;
}

static const char component_text[] =
	"# A starter component (AWSTOE document): the build phase changes the\n"
	"# image, validate checks it in the same boot. Add steps here, or more\n"
	"# documents under components: in the recipe.\n"
	"name: hello\n"
	"description: Leaves a note in the image saying who built it.\n"
	"schemaVersion: 1.0\n"
	"parameters:\n"
	"  - Note:\n"
	"      type: string\n"
	"      default: \"built with amiforge\"\n"
	"phases:\n"
	"  - name: build\n"
	"    steps:\n"
	"      - name: WriteNote\n"
	"        action: CreateFile\n"
	"        inputs:\n"
	"          - path: /etc/amiforge-note\n"
	"            content: \"{{ Note }}\"\n"
	"            overwrite: true\n"
	"  - name: validate\n"
	"    steps:\n"
	"      - name: NoteThere\n"
	"        action: ExecuteBash\n"
	"        inputs:\n"
	"          commands:\n"
	"            - grep -qxF '{{ Note }}' /etc/amiforge-note\n";

static const char test_text[] =
	"# Runs on a fresh boot of the finished image (the recipe's tests:).\n"
	"name: hello-test\n"
	"description: The note is still there after the image was generalised.\n"
	"schemaVersion: 1.0\n"
	"phases:\n"
	"  - name: test\n"
	"    steps:\n"
	"      - name: NoteKept\n"
	"        action: ExecuteBash\n"
	"        inputs:\n"
	"          commands:\n"
	"            - test -s /etc/amiforge-note\n";

/* A comma- or space-separated answer, split. */
static void split(const char *p, struct strv *out)
{
	while (p && *p) {
		size_t n = strcspn(p, ", ");

		if (n)
			strv_pushf(out, "%.*s", (int)n, p);
		p += n;
		p += strspn(p, ", ");
	}
}

static bool publishes(const struct answer *a)
{
	return strcmp(a[A_PUBLISH].value, "no") != 0;
}

/* The route stages the disk in S3 (VM Import): the bucket is asked for. */
static bool needs_bucket(const struct answer *a)
{
	const struct target_via *v = publishes(a) ? target_via_find(a[A_PUBLISH].value) : NULL;

	return v && v->s3_staged;
}

/* The catalog components asked for, each resolved now (an unknown name is
 * refused with the versions there are), written with the major version
 * found: "    - {name: N, version: 1.x.x}\n" each. 0 or -1. */
static int catalog_text(const struct answer *a, struct buf *out)
{
	struct strv names = STRV_INIT;
	size_t i;
	int r = 0;

	split(a[A_CATALOG].value, &names);
	for (i = 0; i < names.n && r == 0; i++) {
		struct catalog_entry e = { 0 };
		char *q;

		if (catalog_resolve(NULL, names.v[i], "x.x.x", &e) < 0) {
			r = err_prefix("init: --components");
			break;
		}
		q = yq(e.name);
		buf_printf(out, "  - {name: %s, version: \"%.*s.x.x\"}   # the catalog's\n", q,
			   (int)strcspn(e.version, "."), e.version);
		free(q);
		catalog_entry_release(&e);
	}
	strv_release(&names);
	return r;
}

/* publish: and distribution: from the distribution answers. */
static void publish_text(const struct answer *a, struct buf *out)
{
	struct strv tags = STRV_INIT, copies = STRV_INIT, shares = STRV_INIT;
	char *region = yq(a[A_REGION].value), *ami = yq(a[A_AMI_NAME].value);
	size_t i, j;

	if (!publishes(a)) {
		buf_adds(out, "# To make an AMI of it ('amiforge help publish': every key):\n"
			      "# publish:\n"
			      "#   via: ebs\n"
			      "#   region: eu-west-1\n");
		goto cleanup;
	}
	buf_printf(out, "# Where the image goes ('amiforge help publish': every key).\n"
			"publish:\n"
			"  via: %s\n"
			"  region: %s\n", a[A_PUBLISH].value, region);
	if (a[A_BUCKET].value && *a[A_BUCKET].value) {
		char *q = yq(a[A_BUCKET].value);

		buf_printf(out, "  bucket: %s   # VM Import's staging bucket\n", q);
		free(q);
	}
	buf_printf(out, "  name: %s\n", ami);
	split(a[A_TAGS].value, &tags);
	if (tags.n) {
		buf_adds(out, "  tags:\n");
		for (i = 0; i < tags.n; i++) {
			char *eq = strchr(tags.v[i], '='), *k, *v;

			if (eq)
				*eq = '\0';
			k = yq(tags.v[i]);
			v = yq(eq ? eq + 1 : "");
			buf_printf(out, "    %s: %s\n", k, v);
			free(k);
			free(v);
		}
	}
	split(a[A_COPY].value, &copies);
	split(a[A_SHARE].value, &shares);
	if (!copies.n && !shares.n)
		goto cleanup;
	buf_adds(out, "\n# Copies in other regions and who may launch the AMI (the first\n"
		      "# region is the one it is published in).\n"
		      "distribution:\n"
		      "  regions:\n");
	for (i = 0; i <= copies.n; i++) {
		char *q = i ? yq(copies.v[i - 1]) : xstrdup(region);

		buf_printf(out, "    - region: %s\n", q);
		free(q);
		if (shares.n) {
			buf_adds(out, "      launch_permission:\n        accounts: [");
			for (j = 0; j < shares.n; j++) {
				q = yq(shares.v[j]);
				buf_printf(out, "%s%s", j ? ", " : "", q);
				free(q);
			}
			buf_adds(out, "]\n");
		}
	}
cleanup:
	strv_release(&tags);
	strv_release(&copies);
	strv_release(&shares);
	free(region);
	free(ami);
}

static char *recipe_text(struct answer *a)
{
	char *name = yq(a[A_NAME].value), *ver = yq(a[A_VERSION].value);
	/* A path, a URL, an AMI (ami-...) or the AMI an SSM parameter names
	 * (ssm:NAME), read through EBS direct. */
	bool url = strstr(a[A_PARENT].value, "://") != NULL;
	bool ami = str_startswith(a[A_PARENT].value, "ami-");
	bool ssm = str_startswith(a[A_PARENT].value, "ssm:");
	char *parent = yq(a[A_PARENT].value + (ssm ? 4 : 0)), *sum = NULL, *formats, *text;
	struct strv f = STRV_INIT;
	struct buf fl = BUF_INIT(INIT_ANSWER_MAX * 2), cat = BUF_INIT(1u << 16),
		   pub = BUF_INIT(1u << 16);
	size_t i;

	if (catalog_text(a, &cat) < 0) {
		buf_release(&cat);
		free(name);
		free(ver);
		free(parent);
		return NULL;
	}
	publish_text(a, &pub);
	/* formats: a comma- or space-separated list, each quoted */
	split(a[A_FORMATS].value, &f);
	for (i = 0; i < f.n; i++) {
		char *q = yq(f.v[i]);

		buf_printf(&fl, "%s%s", i ? ", " : "", q);
		free(q);
	}
	formats = buf_detach(&fl, NULL);
	if (a[A_SHA256].value && *a[A_SHA256].value)
		sum = xasprintf("  sha256: %s\n", a[A_SHA256].value);
	else if (a[A_SUMS].value && *a[A_SUMS].value) {
		char *q = yq(a[A_SUMS].value);

		sum = xasprintf("  checksum_url: %s   # the file of sums the image is checked "
				"against\n", q);
		free(q);
	}
	text = xasprintf(
		"# A recipe for amiforge (written by amiforge init). Check it with\n"
		"#   amiforge validate recipe.yaml\n"
		"# and build it with\n"
		"#   amiforge build recipe.yaml\n"
		"# Every key: builder/recipe/recipe.h in amiforge's sources, and README.md.\n"
		"name: %s\n"
		"version: %s\n"
		"description: \"{{ name }} {{ version }}, built {{ buildDate }}\"\n"
		"\n"
		"# The base image: a path (relative to this file), a URL with its\n"
		"# checksum (sha256:, sha512: or checksum_url:), an AMI (ami: ami-...) or the\n"
		"# AMI an SSM parameter names (ssm: /param). Downloads are cached.\n"
		"%s%s%s%s"
		"\n"
		"# AWSTOE component documents run in the guest, in order; tests run on a\n"
		"# fresh boot of the finished image.\n"
		"components:\n"
		"%s"
		"  - path: components/hello.yaml\n"
		"    parameters:\n"
		"      Note: \"built by amiforge init\"\n"
		"tests:\n"
		"  - path: components/hello-test.yaml\n"
		"\n"
		"# The build guest.\n"
		"vm:\n"
		"  cpus: %s\n"
		"  memory: %s   # MiB\n"
		"%s%s%s"
		"  driver: %s   # auto: libvirt, else QEMU itself\n"
		"\n"
		"# What the build writes (qcow2, raw, vmdk, vhd, vhdx, ova).\n"
		"output:\n"
		"  formats: [%s]\n"
		"\n"
		"%s",
		name, ver, url ? "parent:\n  url: " : ami ? "parent:\n  ami: " : ssm ? "parent:\n  ssm: "
		: "parent: ", parent, "\n",
		url && sum ? sum : "", cat.data ? cat.data : "", a[A_CPUS].value,
		a[A_MEMORY].value, a[A_DISK].value[0] ? "  disk_size: " : "",
		a[A_DISK].value[0] ? a[A_DISK].value : "  # disk_size: 8G   (default: the base image's size)",
		"\n", a[A_DRIVER].value, formats, pub.data ? pub.data : "");
	buf_release(&cat);
	buf_release(&pub);
	free(name);
	free(ver);
	free(parent);
	free(sum);
	free(formats);
	strv_release(&f);
	return text;
}

/* The catalog's component names, one line, before the question. */
static void catalog_names(void)
{
	struct catalog_entry *v = NULL;
	size_t n = 0, i;

	catalog_list(NULL, &v, &n);
	printf("The catalog has:");
	for (i = 0; i < n; i++)
		if (i == 0 || strcmp(v[i].name, v[i - 1].name) != 0)
			printf(" %s", v[i].name);
	printf("%s\n", n ? "" : " nothing");
	catalog_entries_free(v, n);
}

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, A_NAME },
		{ "version", required_argument, NULL, A_VERSION },
		{ "parent", required_argument, NULL, A_PARENT },
		{ "sha256", required_argument, NULL, A_SHA256 },
		{ "checksum-url", required_argument, NULL, A_SUMS },
		{ "cpus", required_argument, NULL, A_CPUS },
		{ "memory", required_argument, NULL, A_MEMORY },
		{ "disk-size", required_argument, NULL, A_DISK },
		{ "driver", required_argument, NULL, A_DRIVER },
		{ "formats", required_argument, NULL, A_FORMATS },
		{ "components", required_argument, NULL, A_CATALOG },
		{ "publish", required_argument, NULL, A_PUBLISH },
		{ "region", required_argument, NULL, A_REGION },
		{ "bucket", required_argument, NULL, A_BUCKET },
		{ "ami-name", required_argument, NULL, A_AMI_NAME },
		{ "tags", required_argument, NULL, A_TAGS },
		{ "copy-to", required_argument, NULL, A_COPY },
		{ "share", required_argument, NULL, A_SHARE },
		{ "yes", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct answer a[A_N] = {
		[A_NAME] = { "name", "Recipe name (letters, digits, . _ -)", "my-image", NULL },
		[A_VERSION] = { "version", "Version", "1.0.0", NULL },
		[A_PARENT] = { "parent", "Base image (a path, a URL, an AMI id or ssm:PARAMETER)",
			       INIT_PARENT_URL, NULL },
		[A_SHA256] = { "sha256", NULL, NULL, NULL },
		[A_SUMS] = { "checksum-url", "URL of the file of checksums for it", NULL, NULL },
		[A_CPUS] = { "cpus", "Build guest vCPUs", "2", NULL },
		[A_MEMORY] = { "memory", "Build guest memory (MiB)", "2048", NULL },
		[A_DISK] = { "disk-size", "Build guest disk size (e.g. 8G; empty: the base image's)",
			     "", NULL },
		[A_DRIVER] = { "driver", "Hypervisor driver (auto, libvirt, qemu)", "auto", NULL },
		[A_CATALOG] = { "components", "Catalog components to run before hello.yaml "
				"(comma-separated names; empty: none)", "", NULL },
		[A_FORMATS] = { "formats", "Output formats (qcow2, raw, vmdk, vhd, vhdx, ova)",
				"qcow2", NULL },
		[A_PUBLISH] = { "publish", "Publish an AMI? (no, ebs, import-snapshot, import-image)",
				"no", NULL },
		[A_REGION] = { "region", "Region to publish in", NULL, NULL },
		[A_BUCKET] = { "bucket", "S3 bucket for VM Import's upload", "", NULL },
		[A_AMI_NAME] = { "ami-name", "AMI name", "{{ name }}-{{ version }}-{{ buildDate }}",
				 NULL },
		[A_TAGS] = { "tags", "Tags on the AMI (KEY=VALUE, comma-separated)", "", NULL },
		[A_COPY] = { "copy-to", "Copy the AMI to regions (comma-separated; empty: none)", "",
			     NULL },
		[A_SHARE] = { "share", "Accounts that may launch it (12-digit ids, comma-separated)",
			      "", NULL },
	};
	const char *env_region = getenv("AWS_REGION");
	struct recipe_opts ro = { .check_doc = build_check_doc };
	struct recipe *r = NULL;
	const char *dir = ".";
	char *recipe = NULL, *comps = NULL, *comp = NULL, *test = NULL, *text = NULL;
	bool yes = false, made_recipe = false, made_comp = false, made_test = false;
	int c, i, rc = EXIT_USAGE;

	while ((c = cmd_getopt(argc, argv, "yh", opts)) != -1) {
		if (c >= 0 && c < A_N) {
			free(a[c].value);
			a[c].value = xstrdup(optarg);
		} else if (c == 'y') {
			yes = true;
		} else if (c == 'h') {
			printf("usage: amiforge %s\n\n"
			       "Start a project: write DIR/recipe.yaml (commented), a component\n"
			       "DIR/components/hello.yaml and its test hello-test.yaml, which\n"
			       "`amiforge validate` accepts and `amiforge build` builds. On a\n"
			       "terminal it asks for each answer (Enter keeps the default in\n"
			       "brackets); --yes takes the flags and the defaults without asking.\n"
			       "The default base image is Debian 12's generic cloud image, checked\n"
			       "against Debian's SHA512SUMS. Nothing is overwritten: an existing\n"
			       "file is an error. DIR (default .) is created if missing.\n\n"
			       "  --name, --version        the recipe's name and version\n"
			       "  --parent PATH|URL|ami-ID|ssm:NAME   the base image\n"
			       "  --sha256 HEX, --checksum-url URL   a URL parent's checksum\n"
			       "  --components LIST        catalog components, e.g. update-linux,\n"
			       "                           python-3-linux ('amiforge component list')\n"
			       "  --cpus N, --memory MiB   the build guest\n"
			       "  --disk-size SIZE         its disk, e.g. 8G (default: the base's size)\n"
			       "  --driver D               auto (default), libvirt or qemu\n"
			       "  --formats LIST           output formats, e.g. qcow2,vmdk\n"
			       "  --publish ROUTE          no (default), ebs, import-snapshot or\n"
			       "                           import-image; then:\n"
			       "  --region R               where (default: $AWS_REGION, else us-east-1)\n"
			       "  --bucket B               VM Import's S3 bucket (import-*)\n"
			       "  --ami-name TEMPLATE      default '{{ name }}-{{ version }}-{{ buildDate }}'\n"
			       "  --tags K=V,...           tags on the AMI\n"
			       "  --copy-to REGIONS        copies in other regions (comma-separated)\n"
			       "  --share ACCOUNTS         accounts that may launch it (comma-separated)\n"
			       "  --yes                    ask nothing\n",
			       INIT_USAGE);
			rc = EXIT_OK;
			goto cleanup;
		} else {
			goto cleanup;
		}
	}
	if (optind + 1 < argc) {
		cmd_usage(INIT_USAGE);
		goto cleanup;
	}
	if (optind < argc)
		dir = argv[optind];
	if (!yes && !isatty(STDIN_FILENO)) {
		log_error("init: standard input is not a terminal: give the answers as flags "
			  "and --yes");
		goto cleanup;
	}
	a[A_REGION].def = env_region && *env_region ? env_region : "us-east-1";
	for (i = 0; i < A_N; i++)
		if (!a[i].value && a[i].def)
			a[i].value = xstrdup(a[i].def);
	if (!yes)
		printf("amiforge init: a recipe in %s (Enter keeps the answer in brackets)\n", dir);
	for (i = 0; i < A_N; i++) {
		if (i == A_SUMS) {
			/* The default parent comes with its checksum file; a path
			 * or a sha256 needs none. */
			if (!a[A_SUMS].value && !a[A_SHA256].value &&
			    strcmp(a[A_PARENT].value, INIT_PARENT_URL) == 0)
				a[A_SUMS].value = xstrdup(INIT_PARENT_SUMS);
			if (!strstr(a[A_PARENT].value, "://") || a[A_SHA256].value)
				continue;
		}
		/* Distribution questions only when publishing; the bucket only
		 * for VM Import. */
		if (i > A_PUBLISH && !publishes(a))
			continue;
		if (i == A_BUCKET && !needs_bucket(a))
			continue;
		if (yes || !a[i].question)
			continue;
		if (i == A_CATALOG)
			catalog_names();
		if (ask(&a[i], stdin) < 0) {
			log_err_msg();
			rc = EXIT_FAIL;
			goto cleanup;
		}
	}
	for (i = A_CPUS; i <= A_MEMORY; i++) {
		uint64_t v;

		if (parse_u64(a[i].value, 1u << 20, &v) < 0 || v == 0) {
			log_error("init: --%s '%s': expected a whole number", a[i].flag, a[i].value);
			goto cleanup;
		}
	}
	if (a[A_DISK].value[0]) {
		uint64_t v;

		if (parse_size(a[A_DISK].value, &v) < 0 || v < (1u << 20) || v > RECIPE_DISK_MAX) {
			log_error("init: --disk-size '%s': expected a size like 8G", a[A_DISK].value);
			goto cleanup;
		}
	}
	if (strcmp(a[A_DRIVER].value, "auto") != 0 && !hv_driver_find(a[A_DRIVER].value)) {
		log_error("init: --driver '%s': expected auto, libvirt or qemu", a[A_DRIVER].value);
		goto cleanup;
	}
	{
		static const char *const routes[] = { "no", "ebs", "import-snapshot", "import-image" };
		size_t k;

		for (k = 0; k < ARRAY_SIZE(routes); k++)
			if (strcmp(a[A_PUBLISH].value, routes[k]) == 0)
				break;
		if (k == ARRAY_SIZE(routes)) {
			const char *hint = closest_word(a[A_PUBLISH].value, routes, ARRAY_SIZE(routes));

			log_error("init: --publish '%s': expected no, ebs, import-snapshot or "
				  "import-image%s%s%s", a[A_PUBLISH].value,
				  hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
			goto cleanup;
		}
	}
	if (str_startswith(a[A_PUBLISH].value, "import-") && !*a[A_BUCKET].value) {
		log_error("init: --publish %s needs --bucket B (VM Import's staging bucket)",
			  a[A_PUBLISH].value);
		goto cleanup;
	}
	text = recipe_text(a);
	if (!text) {
		log_err_msg();
		goto cleanup;
	}
	if (!yes) {
		printf("\n--- %s/recipe.yaml\n%s---\nWrite it? [Y/n]: ", dir, text);
		fflush(stdout);
		{
			char line[16];

			if (!fgets(line, sizeof(line), stdin) || (line[0] != '\n' &&
			    line[0] != 'y' && line[0] != 'Y')) {
				log_error("init: nothing written");
				rc = EXIT_FAIL;
				goto cleanup;
			}
		}
	}
	rc = EXIT_FAIL;
	recipe = xasprintf("%s/recipe.yaml", dir);
	comps = xasprintf("%s/components", dir);
	comp = xasprintf("%s/hello.yaml", comps);
	test = xasprintf("%s/hello-test.yaml", comps);
	if (mkdir_p(comps, 0755) < 0) {
		log_err_msg();
		goto cleanup;
	}
	if (!(made_recipe = write_new(recipe, text) == 0) ||
	    !(made_comp = write_new(comp, component_text) == 0) ||
	    !(made_test = write_new(test, test_text) == 0)) {
		log_err_msg();
		goto cleanup;
	}
	/* The same check validate makes: init never leaves a recipe it refuses. */
	r = recipe_parse(recipe, &ro);
	if (!r) {
		log_err_msg();
		rc = EXIT_USAGE;
		goto cleanup;
	}
	printf("wrote %s, %s, %s\nnext: amiforge validate %s && amiforge build %s\n", recipe,
	       comp, test, recipe, recipe);
	rc = EXIT_OK;
cleanup:
	if (rc != EXIT_OK) {	/* what this run wrote, and only that */
		if (made_test)
			unlink(test);
		if (made_comp)
			unlink(comp);
		if (made_recipe)
			unlink(recipe);
	}
	recipe_free(r);
	for (i = 0; i < A_N; i++)
		free(a[i].value);
	free(text);
	free(recipe);
	free(comps);
	free(comp);
	free(test);
	return rc;
}
