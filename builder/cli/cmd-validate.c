/* amiforge validate RECIPE [--var k=v ...] [--json]: check a recipe without
 * booting. */
#include <getopt.h>
#include <jansson.h>

#include "builder/build/build.h"
#include "builder/pipeline/pipeline.h"
#include "commands.h"
#include "error.h"
#include "log.h"
#include "builder/recipe/recipe.h"
#include "util.h"

#define VALIDATE_USAGE "validate RECIPE|PIPELINE [--var NAME=VALUE ...] [--json]"

/* validate --json when the recipe is refused: the message, and its line
 * and column when it starts with "path:LINE:COL: ". */
static json_t *invalid_json(const char *path, const char *msg)
{
	json_t *j = json_pack("{s:s, s:b, s:s}", "recipe", path, "valid", 0, "error", msg);
	size_t n = strlen(path);
	uint64_t line, col;
	const char *p = msg + n + 1, *q;

	if (strncmp(msg, path, n) == 0 && msg[n] == ':' && (q = strchr(p, ':'))) {
		char *l = xstrndup(p, (size_t)(q - p)), *cc;
		const char *e = strchr(q + 1, ':');

		cc = e ? xstrndup(q + 1, (size_t)(e - q - 1)) : NULL;
		if (cc && parse_u64(l, UINT32_MAX, &line) == 0 &&
		    parse_u64(cc, UINT32_MAX, &col) == 0) {
			json_object_set_new(j, "line", json_integer((json_int_t)line));
			json_object_set_new(j, "col", json_integer((json_int_t)col));
		}
		free(l);
		free(cc);
	}
	return j;
}

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
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct strv vars = STRV_INIT;
	struct recipe_opts ro = { 0 };
	struct recipe *r = NULL;
	json_t *out = NULL, *notes = NULL;
	char *parent = NULL;
	bool json = false;
	int c, rc = EXIT_USAGE;
	size_t i;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'V':
			strv_push(&vars, optarg);
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: amiforge %s\n\n"
			       "Check a recipe: keys, parent (path or URL and checksum syntax),\n"
			       "component and test documents, parameters, vm, cleanup, output and\n"
			       "publish settings. Nothing is booted or downloaded.\n"
			       "  --json   print the result as one JSON object: valid, name,\n"
			       "           version, parent, components, tests, notes; or valid\n"
			       "           false, error, line, col\n"
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
		if (json) {
			out = invalid_json(argv[optind], err_msg());
			if (cmd_print_json(out, JSON_INDENT(2)) != EXIT_OK)
				rc = EXIT_FAIL;
		}
		goto cleanup;
	}
	parent = url_redact(r->parent.ssm ? r->parent.ssm : r->parent.ami ? r->parent.ami
				  : r->parent.url ? r->parent.url : r->parent.path);
	if (!json)
		printf("%s: valid recipe %s %s: parent %s, %zu component%s, %zu test%s\n",
		       argv[optind], r->name, r->version, parent, r->ncomponents,
		       r->ncomponents == 1 ? "" : "s", r->ntests, r->ntests == 1 ? "" : "s");
	notes = json_array();
	for (i = 0; i < r->nvars; i++) {
		size_t k, used = 0;
		char *note;

		for (k = 0; k < r->ncomponents; k++)
			used += recipe_doc_param(&r->components[k], r->vars[i].name) != NULL;
		for (k = 0; k < r->ntests; k++)
			used += recipe_doc_param(&r->tests[k], r->vars[i].name) != NULL;
		if (used)
			continue;
		note = xasprintf("--var %s: not a recipe key and no document sets this "
				 "parameter in the recipe (it applies to document defaults)",
				 r->vars[i].name);
		log_info("%s", note);
		json_array_append_new(notes, json_string(note));
		free(note);
	}
	rc = EXIT_OK;
	if (json) {
		out = json_pack("{s:s, s:b, s:s, s:s, s:s, s:I, s:I, s:O}", "recipe", argv[optind],
				"valid", 1, "name", r->name, "version", r->version, "parent",
				parent, "components", (json_int_t)r->ncomponents, "tests",
				(json_int_t)r->ntests, "notes", notes);
		rc = cmd_print_json(out, JSON_INDENT(2));
	}
cleanup:
	json_decref(out);
	json_decref(notes);
	free(parent);
	recipe_free(r);
	strv_release(&vars);
	return rc;
}
