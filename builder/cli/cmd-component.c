/* cmd-component.c: `amiforge component validate|run`. */
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>

#include "commands.h"
#include "builder/component/catalog.h"
#include "builder/component/component.h"
#include "buf.h"
#include "error.h"
#include "builder/exec/executor.h"
#include "builder/guest/guest.h"
#include "log.h"
#include "builder/component/s3ops.h"
#include "util.h"

static const char run_usage[] =
	"component run DOC... [--phases build,validate] [--parameters k=v,...]\n"
	"       [--log-dir DIR] [--work-dir DIR] [--allow-local-sources]\n"
	"       (--local | --image IMAGE\n"
	"       [--driver libvirt|qemu] [--accel auto|kvm|tcg] [--no-net])";

static int cmd_validate_docs(int argc, char **argv)
{
	int i, bad = 0;

	if (argc < 2)
		return cmd_usage("component validate DOC...");
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: amiforge component validate DOC...\n\n"
			       "Check AWSTOE component documents: schema, phases, steps, actions and\n"
			       "their inputs, parameters, loops and conditions. Errors are printed as\n"
			       "file:line:col: phase, step: message. Exit status 0 when every document\n"
			       "is valid, 2 otherwise.\n");
			return EXIT_OK;
		}
	}
	for (i = 1; i < argc; i++) {
		if (component_validate_file(argv[i]) < 0) {
			log_err_msg();
			bad++;
		} else {
			printf("%s: valid\n", argv[i]);
		}
	}
	return bad ? EXIT_USAGE : EXIT_OK;
}

/* "a=b,c=d" → strv of "a=b", "c=d". A value may contain '=' but not ','. */
static int split_params(const char *s, struct strv *out)
{
	const char *p = s;

	while (*p) {
		size_t n = strcspn(p, ",");
		char *kv = xstrndup(p, n);
		if (!strchr(kv, '=') || kv[0] == '=') {
			err_set("invalid --parameters entry '%s' (expected name=value)", kv);
			free(kv);
			return -1;
		}
		strv_push(out, kv);
		free(kv);
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int cmd_run_docs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "phases", required_argument, NULL, 'p' },
		{ "parameters", required_argument, NULL, 'P' },
		{ "log-dir", required_argument, NULL, 'l' },
		{ "work-dir", required_argument, NULL, 'w' },
		{ "local", no_argument, NULL, 'L' },
		{ "image", required_argument, NULL, 'i' },
		{ "driver", required_argument, NULL, 'd' },
		{ "accel", required_argument, NULL, 'a' },
		{ "net", no_argument, NULL, 'N' },         /* the default; kept for old scripts */
		{ "no-net", no_argument, NULL, 'O' },
		{ "allow-local-sources", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct component_run_opts o = { .progress = true };
	struct component_doc_spec *docs = NULL;
	struct component_result res = { 0 };
	struct strv params = STRV_INIT;
	struct executor *ex = NULL;
	struct guest_opts go = { .net = VM_NET_USER,
				 .offline_reason = "amiforge component run was given --no-net" };
	struct guest *g = NULL;
	struct s3_ops *s3 = NULL;
	const char *image = NULL;
	bool local = false;
	int c, i, ret = EXIT_FAIL;

	optind = 0;   /* full re-initialisation: main() parsed with "+" */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o.phases = optarg;
			break;
		case 'P':
			if (split_params(optarg, &params) < 0) {
				log_err_msg();
				ret = EXIT_USAGE;
				goto cleanup;
			}
			break;
		case 'l':
			o.log_dir = optarg;
			break;
		case 'w':
			o.work_dir = optarg;
			break;
		case 'L':
			local = true;
			break;
		case 'i':
			image = optarg;
			break;
		case 'd':
			go.driver = optarg;
			break;
		case 'a':
			if (accel_parse(optarg, &go.accel) < 0) {
				log_err_msg();
				ret = EXIT_USAGE;
				goto cleanup;
			}
			break;
		case 'N':
			break;
		case 'O':
			go.net = VM_NET_NONE;
			break;
		case 'S':
			o.allow_local_sources = true;
			break;
		case 'h':
			printf("usage: amiforge %s\n", run_usage);
			ret = EXIT_OK;
			goto cleanup;
		default:
			ret = cmd_usage(run_usage);
			goto cleanup;
		}
	}
	if (optind >= argc || local == !!image) {
		ret = cmd_usage(run_usage);
		goto cleanup;
	}
	if (o.phases) {
		const char *p = o.phases;
		while (*p) {
			size_t n = strcspn(p, ",");
			if (!((n == 5 && strncmp(p, "build", 5) == 0) ||
			      (n == 8 && strncmp(p, "validate", 8) == 0) ||
			      (n == 4 && strncmp(p, "test", 4) == 0))) {
				err_set("--phases: unknown phase '%.*s' (build, validate, test)",
					(int)n, p);
				log_err_msg();
				ret = EXIT_USAGE;
				goto cleanup;
			}
			p += n + (p[n] == ',');
		}
	}
	o.ndocs = (size_t)(argc - optind);
	docs = xcalloc(o.ndocs, sizeof(*docs));
	for (i = optind; i < argc; i++) {
		docs[i - optind].path = argv[i];
		docs[i - optind].params = (const char *const *)params.v;
	}
	o.docs = docs;
	/* validate everything before touching the target */
	for (i = optind; i < argc; i++) {
		if (component_validate_file(argv[i]) < 0) {
			log_err_msg();
			ret = EXIT_USAGE;
			goto cleanup;
		}
	}
	if (image) {
		/* The guest is the target; control flow stays here on the host. */
		go.image = image;
		g = guest_boot(&go);
		if (!g) {
			log_err_msg();
			goto cleanup;
		}
		ex = g->step_ex;
	} else {
		ex = executor_local_new();
	}
	o.s3 = s3 = s3ops_new(NULL);	/* AWS client on first S3 step */
	if (component_run(&o, ex, &res) < 0) {
		log_err_msg();
		goto cleanup;
	}
	if (res.log_path)
		fprintf(stderr, "logs: %s\n", res.log_path);
	if (!res.success) {
		const char *why = res.failure ? res.failure : res.status;
		char *safe = str_escape_ctl(why, strlen(why), true);

		fprintf(stderr, "amiforge: component run failed: %s\n", safe);
		free(safe);
		goto cleanup;
	}
	ret = EXIT_OK;
cleanup:
	component_result_release(&res);
	if (g) {
		if (guest_shutdown(g) < 0)
			log_warn("shutdown: %s", err_msg());
		guest_free(g);	/* owns the executor */
	} else {
		executor_close(ex);
	}
	s3ops_free(s3);
	strv_release(&params);
	free(docs);
	return ret;
}

/* amiforge component list [--json] [--recipe RECIPE]: the catalog. */
static int cmd_list(int argc, char **argv)
{
	struct catalog_entry *v = NULL;
	const char *recipe = NULL;
	char *rdir = NULL;
	bool json = false;
	size_t n = 0, i;
	int a, rc = EXIT_OK;

	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[a], "--recipe") == 0 && a + 1 < argc) {
			recipe = argv[++a];
		} else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
			printf("usage: amiforge component list [--json] [--recipe RECIPE]\n\n"
			       "The components a recipe can name ({name: N, version: 1.0.x}) and\n"
			       "ExecuteDocument can run (NAME/VERSION or an Image Builder ARN):\n"
			       "NAME/VERSION/document.yaml in each directory of the search path\n"
			       "($AMIFORGE_COMPONENT_PATH, the recipe's components/ folder,\n"
			       "~/.local/share/amiforge/components, catalog/ beside the binary,\n"
			       "the system's share/amiforge/components), highest versions last.\n");
			return EXIT_OK;
		} else {
			return cmd_usage("component list [--json] [--recipe RECIPE]");
		}
	}
	if (recipe) {
		char *copy = xstrdup(recipe), *real;

		real = realpath(dirname(copy), NULL);
		free(copy);
		if (!real) {
			log_error("recipe '%s': %s", recipe, strerror(errno));
			return EXIT_USAGE;
		}
		rdir = real;
	}
	catalog_list(rdir, &v, &n);
	if (json) {
		json_t *arr = json_array();

		for (i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s?, s:s}",
				"name", v[i].name, "version", v[i].version, "path", v[i].path,
				"test", v[i].test_path, "catalog", v[i].dir));
		rc = cmd_print_json(arr, JSON_INDENT(2));
		json_decref(arr);
	} else {
		for (i = 0; i < n; i++)
			printf("%-28s %-10s %s\n", v[i].name, v[i].version, v[i].path);
	}
	catalog_entries_free(v, n);
	free(rdir);
	return rc;
}

/* amiforge component show NAME[@VERSION]: where it resolves, its document. */
static int cmd_show(int argc, char **argv)
{
	struct catalog_entry e;
	struct buf b = BUF_INIT(1u << 20);
	char *name, *at;
	int rc = EXIT_FAIL;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: amiforge component show NAME[@VERSION]\n\n"
		       "Resolve NAME at VERSION (1.2.3, 1.2.x, 1.x.x, x.x.x; default x.x.x)\n"
		       "in the catalog as a build would, and print where it is and its\n"
		       "document.\n");
		return EXIT_OK;
	}
	if (argc != 2)
		return cmd_usage("component show NAME[@VERSION]");
	name = xstrdup(argv[1]);
	at = strchr(name, '@');
	if (at)
		*at++ = '\0';
	if (catalog_resolve(NULL, name, at ? at : "x.x.x", &e) < 0) {
		log_err_msg();
		free(name);
		return EXIT_USAGE;
	}
	printf("# %s %s: %s\n", e.name, e.version, e.path);
	if (e.test_path)
		printf("# test document: %s\n", e.test_path);
	if (buf_read_file(&b, e.path) < 0) {
		log_err_msg();
		goto cleanup;
	}
	fwrite(b.data, 1, b.len, stdout);
	rc = EXIT_OK;
cleanup:
	buf_release(&b);
	catalog_entry_release(&e);
	free(name);
	return rc;
}

int cmd_component(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: amiforge component validate DOC...\n"
			"       amiforge %s\n"
			"       amiforge component list [--json] [--recipe RECIPE]\n"
			"       amiforge component show NAME[@VERSION]\n", run_usage);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (strcmp(argv[1], "validate") == 0)
		return cmd_validate_docs(argc - 1, argv + 1);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run_docs(argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return cmd_list(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return cmd_show(argc - 1, argv + 1);
	{
		static const char *const subs[] = { "validate", "run", "list", "show" };
		const char *hint = closest_word(argv[1], subs, ARRAY_SIZE(subs));

		if (hint)
			err_set("unknown subcommand 'component %s'; did you mean '%s'?", argv[1], hint);
		else
			err_set("unknown subcommand 'component %s' (validate, run, list, show)",
				argv[1]);
	}
	log_err_msg();
	return EXIT_USAGE;
}
