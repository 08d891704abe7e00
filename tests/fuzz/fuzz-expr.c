/* libFuzzer target: the expression and condition language of component
 * documents. The input's first part is a string scanned, expanded and split
 * as a "{{ reference }}"; the second (after "\n---8<---\n") is a condition
 * (`if:` of a step), parsed inside a fixed document. */
#include "fuzz.h"
#include "buf.h"
#include "builder/component/document.h"
#include "builder/component/expr.h"

static int visit(const char *name, void *opaque)
{
	struct expr_path p;

	(*(size_t *)opaque)++;
	if (expr_path_parse(name, &p) == 0)
		expr_path_release(&p);
	err_clear();
	return 0;
}

/* Known names resolve to a value; "loop.*" to one that holds a reference
 * (not expanded again); "fail" is an error; others stay. */
static int resolve(const char *name, char **val, void *opaque)
{
	(void)opaque;
	if (strcmp(name, "fail") == 0)
		return err_set("resolve failed");
	if (strncmp(name, "loop.", 5) == 0) {
		*val = xstrdup("{{ x }}");
		return 1;
	}
	if (strlen(name) % 2) {
		*val = xasprintf("<%s>", name);
		return 1;
	}
	return 0;
}

static const char head[] =
	"name: f\nschemaVersion: 1.0\nparameters:\n  - P:\n      type: string\n      default: a\n"
	"phases:\n  - name: build\n    steps:\n      - name: s\n        action: ExecuteBash\n"
	"        inputs:\n          commands: [\"true\"]\n        if:\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *a, *b;
	size_t alen, blen, n = 0;
	char *s, *out = NULL;
	struct buf doc = BUF_INIT(1u << 20);
	struct comp_doc *d;

	fuzz_split(data, size, &a, &alen, &b, &blen);
	s = fuzz_str(a, alen);
	expr_has(s);
	expr_scan(s, visit, &n);
	err_clear();
	if (expr_expand(s, resolve, NULL, &out) == 0)
		free(out);
	err_clear();
	free(s);

	/* The condition, indented under `if:`. */
	buf_add(&doc, head, sizeof(head) - 1);
	buf_add(&doc, "          ", 10);
	for (size_t i = 0; i < blen; i++) {
		buf_add(&doc, &b[i], 1);
		if (b[i] == '\n')
			buf_add(&doc, "          ", 10);
	}
	d = doc_load_string("cond.yaml", doc.data ? doc.data : "", doc.len);
	doc_free(d);
	err_clear();
	buf_release(&doc);
	return 0;
}
