/* amiforge cache list | prune [--older-than DAYS] [--dry-run] | fetch RECIPE|AMI | dir */
#include <getopt.h>

#include "builder/base/ami.h"
#include "builder/base/cache.h"
#include "builder/build/checkpoint.h"
#include "commands.h"
#include "error.h"
#include "builder/base/fetch.h"
#include "log.h"
#include "builder/recipe/recipe.h"
#include "util.h"

#define CACHE_USAGE "cache list [--json] | prune [--older-than DAYS] [--dry-run] | " \
		    "fetch RECIPE [--var NAME=VALUE ...] [--format qcow2|raw] | " \
		    "fetch ami-ID|ssm:NAME [--region R] [--profile P] | dir"

static int cache_fetch(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "var", required_argument, NULL, 'V' },
		{ "format", required_argument, NULL, 'F' },
		{ "region", required_argument, NULL, 'R' },
		{ "profile", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = NULL, *region = NULL, *profile = NULL;
	struct recipe_parent amip = { 0 };
	const struct recipe_parent *parent;
	struct strv vars = STRV_INIT;
	struct recipe_opts ro = { 0 };
	struct recipe *r = NULL;
	struct base_image img;
	int c, rc = EXIT_USAGE;

	memset(&img, 0, sizeof(img));
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'F')
			format = optarg;
		else if (c == 'V')
			strv_push(&vars, optarg);
		else if (c == 'R')
			region = optarg;
		else if (c == 'P')
			profile = optarg;
		else
			goto cleanup;
	}
	if (optind + 1 != argc) {
		cmd_usage(CACHE_USAGE);
		goto cleanup;
	}
	/* An AMI named by an SSM parameter: as a recipe's parent: {ssm: ...}. */
	if (str_startswith(argv[optind], "ssm:")) {
		if (!ssm_name_ok(argv[optind] + 4) || vars.n || format) {
			log_error("cache fetch: '%s' is not an SSM parameter name, or --var/--format "
				  "given with one", argv[optind]);
			goto cleanup;
		}
		amip.ssm = argv[optind] + 4;
		amip.region = (char *)region;
		amip.profile = (char *)profile;
		parent = &amip;
		goto fetch;
	}
	/* An AMI id: its root snapshot, as a recipe's parent: {ami: ...}. */
	if (str_startswith(argv[optind], "ami-")) {
		if (!ami_id_ok(argv[optind]) || vars.n || format) {
			log_error("cache fetch: '%s' is not an AMI id (ami- and 8 or 17 hex "
				  "digits), or --var/--format given with one", argv[optind]);
			goto cleanup;
		}
		amip.ami = argv[optind];
		amip.region = (char *)region;
		amip.profile = (char *)profile;
		parent = &amip;
		goto fetch;
	}
	if (region || profile) {
		log_error("cache fetch: --region and --profile go with an AMI id");
		goto cleanup;
	}
	ro.vars = (const char *const *)vars.v;
	r = recipe_parse(argv[optind], &ro);
	if (!r) {
		log_err_msg();
		goto cleanup;
	}
	/* The format the image is admitted as (admit.h): over parent.format. */
	if (format) {
		free(r->parent.format);
		r->parent.format = xstrdup(format);
	}
	parent = &r->parent;
fetch:
	if (base_image_get(parent, &img) < 0) {
		log_err_msg();
		rc = EXIT_FAIL;
		goto cleanup;
	}
	printf("path %s\nformat %s\nsha256 %s\nsize %llu\nvirtual_size %llu\n%s\n", img.path,
	       img.format, img.sha256, (unsigned long long)img.size,
	       (unsigned long long)img.virtual_size,
	       img.downloaded ? "downloaded" : img.in_place ? "in place" : "cached");
	if (img.arch)
		printf("arch %s\n", img.arch);
	if (img.boot_mode)
		printf("boot_mode %s\n", img.boot_mode);
	rc = EXIT_OK;
cleanup:
	base_image_release(&img);
	recipe_free(r);
	strv_release(&vars);
	return rc;
}

static int cache_prune_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t days = 0;
	bool dry = false;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (parse_u64(optarg, 100000, &days) < 0 || days == 0) {
				log_error("--older-than '%s': expected a number of days (1 or more)",
					  optarg);
				return EXIT_USAGE;
			}
			break;
		case 'n':
			dry = true;
			break;
		default:
			return cmd_usage(CACHE_USAGE);
		}
	}
	if (optind != argc)
		return cmd_usage(CACHE_USAGE);
	if (cache_prune((unsigned)days, dry, stdout) < 0) {
		log_err_msg();
		return EXIT_FAIL;
	}
	{
		char *cache = cache_dir();
		size_t files = 0;
		uint64_t bytes = 0;

		if (!cache || ckpt_prune(cache, (unsigned)days, dry, stdout, &files, &bytes) < 0) {
			free(cache);
			log_err_msg();
			return EXIT_FAIL;
		}
		printf("checkpoints: %s %zu files, %" PRIu64 " MiB\n", dry ? "would remove" : "removed",
		       files, bytes >> 20);
		free(cache);
	}
	return EXIT_OK;
}

int cmd_cache(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (!sub)
		return cmd_usage(CACHE_USAGE);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		printf("usage: amiforge %s\n\n"
		       "The content-addressed base image cache ($AMIFORGE_CACHE_DIR, else\n"
		       "/var/cache/amiforge as root, else $XDG_CACHE_HOME/amiforge).\n"
		       "  list    cached images: digest, format, size, last use, source\n"
		       "          (--json: an array of objects with the same and the state)\n"
		       "  prune   drop images and build checkpoints unused for DAYS (default: all)\n"
		       "          and stale downloads\n"
		       "  fetch   download/verify/unpack a recipe's parent into the cache\n"
		       "  dir     print the cache directory\n", CACHE_USAGE);
		return EXIT_OK;
	}
	if (strcmp(sub, "list") == 0) {
		bool json = argc == 3 && strcmp(argv[2], "--json") == 0;

		if (argc != 2 && !json)
			return cmd_usage(CACHE_USAGE);
		if (cache_list(stdout, json) < 0) {
			log_err_msg();
			return EXIT_FAIL;
		}
		return EXIT_OK;
	}
	if (strcmp(sub, "dir") == 0) {
		char *d = cache_dir();

		if (!d) {
			log_err_msg();
			return EXIT_FAIL;
		}
		printf("%s\n", d);
		free(d);
		return EXIT_OK;
	}
	if (strcmp(sub, "prune") == 0)
		return cache_prune_cmd(argc - 1, argv + 1);
	if (strcmp(sub, "fetch") == 0)
		return cache_fetch(argc - 1, argv + 1);
	log_error("unknown cache command '%s'", sub);
	return cmd_usage(CACHE_USAGE);
}
