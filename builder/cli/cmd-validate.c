/* amiforge validate RECIPE [--var k=v ...]: check a recipe without booting. */
#include <getopt.h>

#include "builder/build/build.h"
#include "builder/pipeline/pipeline.h"
#include "commands.h"
#include "error.h"
#include "log.h"
#include "builder/recipe/recipe.h"
#include "util.h"

#define VALIDATE_USAGE "validate RECIPE|PIPELINE [--var NAME=VALUE ...]"

/* A pipeline file names itself with a top-level "pipeline" key. A file that
 * does not parse goes to the recipe parser, which reports the error. */
static bool is_pipeline_file(const char *path)
{
	struct ydoc d = { 0 };
	bool yes = false;

	if (ydoc_load_file(&d, path) == 0)
		yes = pipeline_doc_is_pipeline(&d);
	err_clear();
	ydoc_release(&d);
	return yes;
}

static int validate_pipeline(const char *path, size_t nvars)
{
	struct pipeline *p;
	int rc = EXIT_USAGE;

	if (nvars) {
		log_error("--var goes with recipes; a pipeline file sets vars: itself");
		return EXIT_USAGE;
	}
	p = pipeline_load(path);
	if (!p || pipeline_check_recipe(p) < 0) {
		log_err_msg();
		goto cleanup;
	}
	{
		size_t nsns = 0;

		while (p->sns && p->sns[nsns])
			nsns++;
		printf("%s: valid pipeline %s: recipe %s, %s%s, condition %s, %zu "
		       "notification%s, %zu distribution extra%s, lifecycle %s\n", path, p->name,
		       p->recipe, p->scheduled ? "schedule " : "no schedule",
		       p->scheduled ? p->expression : "",
		       p->condition == PIPELINE_ONLY_IF_UPDATED ? "onlyIfUpdated" : "always",
		       nsns + p->nwebhooks + p->ncommands,
		       nsns + p->nwebhooks + p->ncommands == 1 ? "" : "s",
		       p->nlts + p->nssms + p->nlicenses,
		       p->nlts + p->nssms + p->nlicenses == 1 ? "" : "s",
		       p->lc_regions ? "yes" : "none");
	}
	rc = EXIT_OK;
cleanup:
	pipeline_free(p);
	return rc;
}

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
	if (is_pipeline_file(argv[optind])) {
		rc = validate_pipeline(argv[optind], vars.n);
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
