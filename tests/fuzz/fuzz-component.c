/* libFuzzer target: AWSTOE component documents, parsed and validated
 * (doc_load_string), then planned (component_plan: parameters, phases,
 * steps, the material each step depends on). A document is untrusted: it
 * comes from a recipe, a URL or S3. Nothing may crash, hang or leak. */
#include "fuzz.h"
#include "builder/component/component.h"
#include "builder/component/document.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct comp_doc *d = doc_load_string("fuzz.yaml", (const char *)data, size);
	const char *path;
	struct component_doc_spec spec;
	struct component_run_opts o = { 0 };
	struct component_plan plan = { 0 };
	static const char *const params[] = { "P=1", NULL };

	if (!d) {
		err_clear();
		return 0;
	}
	doc_free(d);
	/* Valid: plan it from a file, the way a build does. */
	path = fuzz_file("doc.yaml", data, size);
	spec.path = path;
	spec.params = params;
	o.docs = &spec;
	o.ndocs = 1;
	if (component_plan(&o, &plan) == 0)
		component_plan_release(&plan);
	err_clear();
	return 0;
}
