/* libFuzzer target: recipes (recipe_parse), including `distribution:` and
 * the {{ }} variables. The input is written to a file (recipe_parse takes a
 * path); the components it names resolve in the same private folder, where
 * comp.yaml is a valid document. Nothing may crash, hang or leak. */
#include "fuzz.h"
#include "builder/recipe/recipe.h"

static const char comp[] =
	"name: c\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n"
	"      - name: s\n        action: ExecuteBash\n        inputs:\n"
	"          commands: [\"true\"]\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	static const char *const vars[] = { "version=1.2.3", "parent=/dev/null", NULL };
	struct recipe_opts o = { .vars = vars, .build_time = 1700000000 };
	struct recipe *r;

	if (!init) {
		fuzz_file("comp.yaml", comp, sizeof(comp) - 1);
		init = true;
	}
	r = recipe_parse(fuzz_file("recipe.yaml", data, size), &o);
	recipe_free(r);
	err_clear();
	return 0;
}
