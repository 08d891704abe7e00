/* cmd-build.c: `amiforge build RECIPE`. */
#include <getopt.h>
#include <jansson.h>

#include "builder/build/build.h"
#include "builder/build/checkpoint.h"
#include "builder/build/builddir.h"
#include "builder/recipe/recipe.h"
#include "build-jobs.h"
#include "commands.h"
#include "error.h"
#include "log.h"
#include "util.h"

static const char usage[] =
	"build RECIPE [--output DIR] [--var k=v ...] [--json] [--on-error=cleanup|abort|ask] "
	"[--no-cache] [--no-inspect]\n"
	"       [--allow-local-sources] [--checkpoint-every-step]\n"
	"       build RECIPE RECIPE... [--jobs N] [--output DIR] [--var k=v ...] [--json] ...\n"
	"       build [RECIPE] --resume BUILD_DIR [--var k=v ...] [--json] [--no-cache] [--no-inspect]";

static const char help[] =
	"\n"
	"Build the image a recipe describes: boot its parent with the agent, run the\n"
	"build and validate phases of its components, generalise, flatten to the\n"
	"output disk, boot that on a fresh overlay for the test phases, then the\n"
	"outputs, inspects the output offline (libguestfs, read-only: a failed\n"
	"check stops the build before anything is published) and runs the publish:\n"
	"section. Prints the finished disk's path. Every build, failed or not,\n"
	"writes BUILD_DIR/report.html (see amiforge report).\n"
	"\n"
	"  --output DIR         build directories go under DIR (default ./builds)\n"
	"  --var k=v            override a recipe variable / component parameter\n"
	"  --json               JSON events on stdout instead of progress lines\n"
	"  --no-cache           reuse no checkpoint (still record new ones)\n"
	"  --checkpoint-every-step  a checkpoint after every step that may change the\n"
	"                       disk (default: when the work since the last one took\n"
	"                       longer than a checkpoint costs, and always at the end\n"
	"                       of a component and before a reboot or external step)\n"
	"  --allow-local-sources  WebDownload (run on this host) may read file:// URLs\n"
	"                       and connect to loopback and link-local addresses\n"
	"  --no-inspect         do not inspect the output (recorded in manifest.json)\n"
	"  --resume BUILD_DIR   continue a failed build at its failed step\n"
	"  --jobs N             with several recipes: run up to N builds at once (default\n"
	"                       1), fewer when the host's CPUs or memory are short (a\n"
	"                       build that must wait says so). Each build is its own\n"
	"                       process with its own log (DIR/jobs-*/); one summary at the\n"
	"                       end (--json: one JSON object). Exit status 0 when all\n"
	"                       succeeded\n"
	"  --result-file FILE   write where the build went (directory, disk, success) as\n"
	"                       JSON to FILE when it ends (what --jobs reads of each build)\n"
	"  --on-error=MODE      what a failure does:\n"
	"      cleanup  (default) release everything the build created\n"
	"      abort    leave the guest running for inspection and print how to\n"
	"               reach it: its console log, `amiforge attach BUILD_DIR --\n"
	"               COMMAND` to run a command in it, `amiforge clean BUILD_DIR`\n"
	"               to destroy it and remove its files\n"
	"      ask      when a step fails, ask on the terminal: retry the step,\n"
	"               continue as if it had passed (recorded in manifest.json\n"
	"               \"decisions\" and as IgnoredFailure, \"continued\" in the TOE\n"
	"               log; no checkpoint is saved after it), or abort as above;\n"
	"               `amiforge attach` works while the question waits. Any other\n"
	"               failure aborts. Needs a terminal on stdin and stderr.\n"
	"  SIGINT/SIGTERM destroy the guest and release everything in every mode.\n";

int cmd_build(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "var", required_argument, NULL, 'V' },
		{ "json", no_argument, NULL, 'j' },
		{ "on-error", required_argument, NULL, 'e' },
		{ "no-cache", no_argument, NULL, 'N' },
		{ "checkpoint-every-step", no_argument, NULL, 'C' },
		{ "allow-local-sources", no_argument, NULL, 'S' },
		{ "no-inspect", no_argument, NULL, 'I' },
		{ "resume", required_argument, NULL, 'R' },
		{ "jobs", required_argument, NULL, 'J' },
		{ "result-file", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct build_opts o = { 0 };
	struct build_result res;
	struct strv vars = STRV_INIT, saved_vars = STRV_INIT;
	struct strv child = STRV_INIT;
	char *saved_recipe = NULL;
	const char *result_file = NULL;
	uint64_t jobs = 0;
	int c, ret = EXIT_USAGE;

	while ((c = cmd_getopt(argc, argv, "o:", opts)) != -1) {
		switch (c) {
		case 'o':
			o.output_root = optarg;
			break;
		case 'V':
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				err_set("--var '%s': expected name=value", optarg);
				log_err_msg();
				goto cleanup;
			}
			strv_push(&vars, optarg);
			break;
		case 'j':
			o.json = true;
			break;
		case 'N':
			o.no_cache = true;
			break;
		case 'C':
			o.checkpoint_every_step = true;
			break;
		case 'S':
			o.allow_local_sources = true;
			break;
		case 'I':
			o.no_inspect = true;
			break;
		case 'R':
			o.resume_dir = optarg;
			break;
		case 'J':
			if (parse_u64(optarg, BUILD_JOBS_MAX, &jobs) < 0 || jobs < 1) {
				err_set("--jobs '%s': expected 1-%d", optarg, BUILD_JOBS_MAX);
				log_err_msg();
				goto cleanup;
			}
			break;
		case 'F':
			result_file = optarg;
			break;
		case 'e':
			if (onerror_parse_mode(optarg, &o.on_error) < 0) {
				log_err_msg();
				goto cleanup;
			}
			break;
		case 'h':
			printf("usage: amiforge %s\n%s", usage, help);
			ret = EXIT_OK;
			goto cleanup;
		default:
			ret = cmd_usage(usage);
			goto cleanup;
		}
	}
	if (o.on_error == BUILD_ON_ERROR_ASK && (!isatty(0) || !isatty(2))) {
		err_set("--on-error=ask needs a terminal on stdin and stderr to ask on "
			"(use --on-error=abort in scripts)");
		log_err_msg();
		goto cleanup;
	}
	if (argc - optind > 1 || jobs) {
		struct build_jobs_opts bj = {
			.recipes = (const char *const *)argv + optind, .n = (size_t)(argc - optind),
			.jobs = jobs ? (unsigned)jobs : 1, .vars = (const char *const *)vars.v,
			.output_root = o.output_root, .json = o.json,
		};

		if (o.resume_dir || o.on_error == BUILD_ON_ERROR_ASK || result_file || !bj.n ||
		    bj.n > BUILD_JOBS_MAX) {
			err_set("several recipes / --jobs: 1-%d recipes, without --resume, "
				"--result-file or --on-error=ask", BUILD_JOBS_MAX);
			log_err_msg();
			goto cleanup;
		}
		/* Each child gets the options given here, nothing else. */
		if (o.output_root)
			strv_pushf(&child, "--output=%s", o.output_root);
		for (c = 0; vars.v && vars.v[c]; c++)
			strv_pushf(&child, "--var=%s", vars.v[c]);
		if (o.no_cache)
			strv_push(&child, "--no-cache");
		if (o.allow_local_sources)
			strv_push(&child, "--allow-local-sources");
		if (o.no_inspect)
			strv_push(&child, "--no-inspect");
		if (o.on_error == BUILD_ON_ERROR_ABORT)
			strv_push(&child, "--on-error=abort");
		bj.child_args = (const char *const *)child.v;
		ret = build_jobs_run(&bj);
		goto cleanup;
	}
	if (o.resume_dir) {
		/* Its state names the recipe to run: only a directory of ours. */
		struct build_dir rbd;

		if (build_dir_open(o.resume_dir, &rbd) < 0) {
			log_err_msg();
			ret = EXIT_FAIL;
			goto cleanup;
		}
		build_dir_release(&rbd);
	}
	if (o.resume_dir && optind == argc) {
		/* The recipe and vars the build was started with. */
		if (o.output_root) {
			err_set("--output and --resume: the build directory is given");
			log_err_msg();
			goto cleanup;
		}
		if (ckpt_state_load(o.resume_dir, &saved_recipe, &saved_vars) < 0) {
			log_err_msg();
			ret = EXIT_FAIL;
			goto cleanup;
		}
		for (c = 0; vars.v && vars.v[c]; c++)
			strv_push(&saved_vars, vars.v[c]);   /* given ones win */
		o.recipe = saved_recipe;
		o.vars = (const char *const *)saved_vars.v;
	} else if (optind != argc - 1) {
		ret = cmd_usage(usage);
		goto cleanup;
	} else {
		o.recipe = argv[optind];
		o.vars = (const char *const *)vars.v;
	}
	/* A recipe that does not load is bad input (2), as for validate; the
	 * build reads it again itself. */
	{
		struct recipe_opts ro = { .vars = o.vars, .check_doc = build_check_doc };
		struct recipe *r = recipe_parse(o.recipe, &ro);

		if (!r) {
			log_err_msg();
			ret = EXIT_USAGE;
			goto cleanup;
		}
		recipe_free(r);
	}
	ret = build_run(&o, &res);
	if (result_file) {
		/* For a parent `build --jobs` (build-jobs.h): where it all went. */
		json_t *j = json_pack("{s:s?, s:s?, s:b}", "build_dir", res.build_dir, "disk",
				      res.disk, "success", ret == 0);
		char *text = j ? json_dumps(j, 0) : NULL;

		if (!text || write_file_atomic(result_file, text, strlen(text), 0600) < 0)
			log_warn("--result-file '%s': %s", result_file,
				 text ? err_msg() : "cannot encode");
		free(text);
		json_decref(j);
	}
	if (ret < 0) {
		log_err_msg();
		if (res.build_dir)
			log_error("build directory: %s", res.build_dir);
		ret = EXIT_FAIL;
	} else {
		if (!o.json)
			printf("%s\n", res.disk);
		ret = EXIT_OK;
	}
	build_result_release(&res);
cleanup:
	strv_release(&vars);
	strv_release(&child);
	strv_release(&saved_vars);
	free(saved_recipe);
	return ret;
}
