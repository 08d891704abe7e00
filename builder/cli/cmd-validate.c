/* amiforge validate RECIPE [--var k=v ...]: check a recipe without booting. */
#include <getopt.h>

#include "builder/build/build.h"
#include "commands.h"
#include "error.h"
#include "log.h"
#include "builder/recipe/recipe.h"
#include "util.h"

#define VALIDATE_USAGE "validate RECIPE [--var NAME=VALUE ...]"

int cmd_validate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "var", required_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct strv vars = STRV_INIT;
	struct recipe_opts ro = { 0 };
	struct recipe *r = NULL;
	int c, rc = EXIT_USAGE;
	size_t i;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'V':
			strv_push(&vars, optarg);
			break;
		case 'h':
			printf("usage: amiforge %s\n\n"
			       "Check a recipe: keys, parent (path or URL and checksum syntax),\n"
			       "component and test documents, parameters, vm, cleanup, output and\n"
			       "publish settings. Nothing is booted or downloaded.\n"
			       "Exit status: 0 valid, 2 invalid (file:line:col: message).\n",
			       VALIDATE_USAGE);
			strv_release(&vars);
			return EXIT_OK;
		default:
			goto cleanup;
		}
	}
	if (optind + 1 != argc) {
		cmd_usage(VALIDATE_USAGE);
		goto cleanup;
	}
	ro.vars = (const char *const *)vars.v;
	ro.check_doc = build_check_doc;
	r = recipe_parse(argv[optind], &ro);
	if (!r) {
		log_err_msg();
		goto cleanup;
	}
	{
		char *parent = url_redact(r->parent.ami ? r->parent.ami
					  : r->parent.url ? r->parent.url : r->parent.path);

		printf("%s: valid recipe %s %s: parent %s, %zu component%s, %zu test%s\n",
		       argv[optind], r->name, r->version, parent, r->ncomponents,
		       r->ncomponents == 1 ? "" : "s", r->ntests, r->ntests == 1 ? "" : "s");
		free(parent);
	}
	for (i = 0; i < r->nvars; i++) {
		size_t k, used = 0;

		for (k = 0; k < r->ncomponents; k++)
			used += recipe_doc_param(&r->components[k], r->vars[i].name) != NULL;
		for (k = 0; k < r->ntests; k++)
			used += recipe_doc_param(&r->tests[k], r->vars[i].name) != NULL;
		if (!used)
			log_info("--var %s: not a recipe key and no document sets this "
				 "parameter in the recipe (it applies to document defaults)",
				 r->vars[i].name);
	}
	rc = EXIT_OK;
cleanup:
	recipe_free(r);
	strv_release(&vars);
	return rc;
}
