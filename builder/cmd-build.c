/* cmd-build.c: `amiforge build RECIPE`. */
#include <getopt.h>

#include "build.h"
#include "checkpoint.h"
#include "commands.h"
#include "error.h"
#include "log.h"
#include "util.h"

static const char usage[] =
	"build RECIPE [--output DIR] [--var k=v ...] [--json] [--on-error=cleanup|abort] "
	"[--no-cache]\n"
	"       build [RECIPE] --resume BUILD_DIR [--var k=v ...] [--json] [--no-cache]";

int cmd_build(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "var", required_argument, NULL, 'V' },
		{ "json", no_argument, NULL, 'j' },
		{ "on-error", required_argument, NULL, 'e' },
		{ "no-cache", no_argument, NULL, 'N' },
		{ "resume", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct build_opts o = { 0 };
	struct build_result res;
	struct strv vars = STRV_INIT, saved_vars = STRV_INIT;
	char *saved_recipe = NULL;
	int c, ret = EXIT_USAGE;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
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
		case 'R':
			o.resume_dir = optarg;
			break;
		case 'e':
			if (strcmp(optarg, "cleanup") == 0) {
				o.keep_on_error = false;
			} else if (strcmp(optarg, "abort") == 0) {
				o.keep_on_error = true;
			} else {
				err_set("--on-error '%s': expected cleanup or abort", optarg);
				log_err_msg();
				goto cleanup;
			}
			break;
		case 'h':
			printf("usage: amiforge %s\n", usage);
			ret = EXIT_OK;
			goto cleanup;
		default:
			ret = cmd_usage(usage);
			goto cleanup;
		}
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
	if (build_run(&o, &res) < 0) {
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
	strv_release(&saved_vars);
	free(saved_recipe);
	return ret;
}
