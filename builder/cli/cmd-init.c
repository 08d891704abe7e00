/* amiforge init [DIR] [answers as flags] [--yes]: write a starter recipe,
 * a component and its test into DIR, asking for each answer on a terminal
 * (recipe, infrastructure, review). What it writes is checked by the same
 * parser `validate` uses before init says it is done. */
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>

#include "builder/build/build.h"
#include "builder/recipe/recipe.h"
#include "commands.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define INIT_USAGE "init [DIR] [--name NAME] [--version V] [--parent PATH|URL]\n" \
		   "       [--sha256 HEX | --checksum-url URL] [--cpus N] [--memory MiB]\n" \
		   "       [--formats LIST] [--yes]"

/* Debian 12's generic cloud image, checked against Debian's published sums. */
#define INIT_PARENT_URL "https://cloud.debian.org/images/cloud/bookworm/latest/" \
			"debian-12-genericcloud-amd64.qcow2"
#define INIT_PARENT_SUMS "https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS"
/* One answer typed at the prompt. */
#define INIT_ANSWER_MAX 1024

enum { A_NAME, A_VERSION, A_PARENT, A_SHA256, A_SUMS, A_CPUS, A_MEMORY, A_FORMATS, A_N };

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

static char *recipe_text(struct answer *a)
{
	char *name = yq(a[A_NAME].value), *ver = yq(a[A_VERSION].value);
	char *parent = yq(a[A_PARENT].value), *sum = NULL, *formats, *text;
	bool url = strstr(a[A_PARENT].value, "://") != NULL;
	struct strv f = STRV_INIT;
	struct buf fl = BUF_INIT(INIT_ANSWER_MAX * 2);
	const char *p = a[A_FORMATS].value;
	size_t i;

	/* formats: a comma- or space-separated list, each quoted */
	while (*p) {
		size_t n = strcspn(p, ", ");

		if (n)
			strv_pushf(&f, "%.*s", (int)n, p);
		p += n;
		p += strspn(p, ", ");
	}
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
		"# The base image: a path (relative to this file), or a URL with its\n"
		"# checksum (sha256:, sha512: or checksum_url:). Downloads are cached.\n"
		"%s%s%s%s"
		"\n"
		"# AWSTOE component documents run in the guest, in order; tests run on a\n"
		"# fresh boot of the finished image.\n"
		"components:\n"
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
		"\n"
		"# What the build writes (qcow2, raw, vmdk, vhd, vhdx, ova).\n"
		"output:\n"
		"  formats: [%s]\n"
		"\n"
		"# To make an AMI of it, add for example:\n"
		"# publish:\n"
		"#   via: ebs\n"
		"#   region: eu-west-1\n",
		name, ver, url ? "parent:\n  url: " : "parent: ", parent, url ? "\n" : "\n",
		url && sum ? sum : "", a[A_CPUS].value, a[A_MEMORY].value, formats);
	free(name);
	free(ver);
	free(parent);
	free(sum);
	free(formats);
	strv_release(&f);
	return text;
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
		{ "formats", required_argument, NULL, A_FORMATS },
		{ "yes", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct answer a[A_N] = {
		[A_NAME] = { "name", "Recipe name (letters, digits, . _ -)", "my-image", NULL },
		[A_VERSION] = { "version", "Version", "1.0.0", NULL },
		[A_PARENT] = { "parent", "Base image (a path, or a URL)", INIT_PARENT_URL, NULL },
		[A_SHA256] = { "sha256", NULL, NULL, NULL },
		[A_SUMS] = { "checksum-url", "URL of the file of checksums for it", NULL, NULL },
		[A_CPUS] = { "cpus", "Build guest vCPUs", "2", NULL },
		[A_MEMORY] = { "memory", "Build guest memory (MiB)", "2048", NULL },
		[A_FORMATS] = { "formats", "Output formats (qcow2, raw, vmdk, vhd, vhdx, ova)",
				"qcow2", NULL },
	};
	struct recipe_opts ro = { .check_doc = build_check_doc };
	struct recipe *r = NULL;
	const char *dir = ".";
	char *recipe = NULL, *comps = NULL, *comp = NULL, *test = NULL, *text = NULL;
	bool yes = false, made_recipe = false, made_comp = false, made_test = false;
	int c, i, rc = EXIT_USAGE;

	while ((c = getopt_long(argc, argv, "yh", opts, NULL)) != -1) {
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
			       "  --parent PATH|URL        the base image\n"
			       "  --sha256 HEX, --checksum-url URL   a URL parent's checksum\n"
			       "  --cpus N, --memory MiB   the build guest\n"
			       "  --formats LIST           output formats, e.g. qcow2,vmdk\n"
			       "  --yes                    ask nothing\n\n"
			       "Exit status: 0 written, 1 failure (a file exists...), 2 usage or\n"
			       "answers the recipe does not accept (file:line:col: message).\n",
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
		if (yes || !a[i].question)
			continue;
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
	text = recipe_text(a);
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
