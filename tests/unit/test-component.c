/* Unit tests for builder/component/: reference expressions, the document
 * parser's API, the library entry point with its step callbacks, and the
 * UpdateOS command lines (through run.h's dry-run hook). */
#include "test.h"
#include "error.h"
#include "run.h"
#include "util.h"
#include "builder/executor.h"
#include "builder/component/component.h"
#include "builder/component/document.h"
#include "builder/component/expr.h"

static int resolve_fixed(const char *name, char **val, void *opaque UNUSED)
{
	if (strcmp(name, "A") == 0) {
		*val = xstrdup("alpha");
		return 1;
	}
	if (strcmp(name, "bad") == 0)
		return err_set("bad reference");
	return 0;
}

static void test_expr(void)
{
	struct expr_path p;
	char *out = NULL;

	CHECK(expr_expand("x{{A}}y{{  A  }}", resolve_fixed, NULL, &out) == 0, "expr: expands");
	CHECK_STR(out, "xalphayalpha", "expr: spaces inside braces trimmed");
	free(out);
	CHECK(expr_expand("{{ loop.value }}", resolve_fixed, NULL, &out) == 0, "expr: unknown ok");
	CHECK_STR(out, "{{ loop.value }}", "expr: unresolved reference left as is");
	free(out);
	CHECK(expr_expand("{{ bad }}", resolve_fixed, NULL, &out) < 0 && !out,
	      "expr: resolver error propagates");
	CHECK(expr_expand("a {{ A", resolve_fixed, NULL, &out) < 0 &&
	      strstr(err_msg(), "unterminated"), "expr: unterminated reference rejected");
	CHECK(expr_expand("{{ }}", resolve_fixed, NULL, &out) < 0, "expr: empty reference rejected");
	CHECK(expr_path_parse("build.step.inputs[2].path", &p) == 0 && p.n == 4 &&
	      p.idx[2] == 2 && strcmp(p.seg[3], "path") == 0, "expr: path with index");
	expr_path_release(&p);
	CHECK(expr_path_parse("a..b", &p) < 0, "expr: empty segment rejected");
	CHECK(expr_path_parse("a[x].b", &p) < 0, "expr: non-numeric index rejected");
	CHECK(expr_path_parse("a[1", &p) < 0, "expr: unclosed index rejected");
}

static void test_parse(void)
{
	static const char good[] =
		"schemaVersion: 1.0\n"
		"parameters:\n  - Name: {type: string, default: x}\n"
		"phases:\n  - name: build\n    steps:\n"
		"      - name: s\n        action: ExecuteBash\n        timeoutSeconds: -1\n"
		"        onFailure: Continue\n        maxAttempts: 4\n"
		"        loop: {name: l, for: {start: 0, end: 9, updateBy: 3}}\n"
		"        inputs: {commands: [\"echo {{ l.value }} {{ Name }}\"]}\n";
	static const char bad[] = "schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n"
				  "      - {name: s, action: InstallMSI, inputs: {path: x}}\n";
	struct comp_doc *d = doc_load_string("good.yaml", good, sizeof(good) - 1);
	const struct comp_step *st;

	CHECK(d != NULL, "parse: valid document loads (%s)", d ? "ok" : err_msg());
	if (!d)
		return;
	st = &d->phases[0].steps[0];
	CHECK(st->timeout_s == -1 && st->onfail == ONFAIL_CONTINUE && st->max_attempts == 4,
	      "parse: timeout, onFailure, maxAttempts");
	CHECK(st->loop && st->loop->kind == LOOP_FOR && st->loop->update == 3 &&
	      strcmp(st->loop->name, "l") == 0, "parse: named for loop");
	CHECK(doc_param(d, "Name") && strcmp(doc_param(d, "Name")->value, "x") == 0,
	      "parse: parameter default");
	doc_free(d);
	d = doc_load_string("bad.yaml", bad, sizeof(bad) - 1);
	CHECK(!d && strstr(err_msg(), "bad.yaml:5:27: ") &&
	      strstr(err_msg(), "'InstallMSI' is not supported on Linux"),
	      "parse: Windows action rejected with position (%s)", err_msg());
}

struct seen {
	int starts, dones, changed;
	char order[256];
};

static void on_start(const struct component_step_info *i UNUSED, bool changed UNUSED, void *o)
{
	((struct seen *)o)->starts++;
}

static void on_done(const struct component_step_info *i, bool changed, void *o)
{
	struct seen *s = o;

	s->dones++;
	s->changed += changed;
	snprintf(s->order + strlen(s->order), sizeof(s->order) - strlen(s->order), "%s:%s ",
		 i->step, i->status);
}

static void test_run_api(void)
{
	char dir[] = "/tmp/amiforge-unit.XXXXXX", *doc, *param;
	struct component_doc_spec spec = { 0 };
	struct component_run_opts o = { 0 };
	struct component_result res;
	struct seen seen = { 0 };
	struct executor *ex = executor_local_new();
	const char *params[2];
	FILE *f;

	if (!mkdtemp(dir)) {
		CHECK(false, "run: mkdtemp");
		return;
	}
	doc = xasprintf("%s/doc.yaml", dir);
	f = fopen(doc, "w");
	fputs("schemaVersion: 1.0\nparameters:\n  - Dir: {type: string}\n"
	      "phases:\n  - name: build\n    steps:\n"
	      "      - {name: w, action: CreateFile, inputs: [{path: '{{ Dir }}/f', content: hi}]}\n"
	      "      - {name: r, action: ReadFile, inputs: [{path: '{{ Dir }}/f'}]}\n"
	      "      - {name: sk, action: ExecuteBash, if: {fileExists: /nonexistent},"
	      " inputs: {commands: ['exit 1']}}\n"
	      "      - {name: bad, action: ExecuteBash, onFailure: Ignore,"
	      " inputs: {commands: ['exit 3']}}\n", f);
	fclose(f);
	param = xasprintf("Dir=%s", dir);
	params[0] = param;
	params[1] = NULL;
	spec.path = doc;
	spec.params = params;
	o.docs = &spec;
	o.ndocs = 1;
	o.on_step_start = on_start;
	o.on_step_done = on_done;
	o.opaque = &seen;
	CHECK(component_run(&o, ex, &res) == 0, "run: component_run returns 0 (%s)", err_msg());
	CHECK(res.success && strcmp(res.status, "SuccessWithIgnoredFailure") == 0,
	      "run: status SuccessWithIgnoredFailure (%s)", res.status ? res.status : "?");
	CHECK(res.executed == 3 && res.failed == 0 && res.ignored == 1, "run: counts");
	CHECK(seen.starts == 4 && seen.dones == 4, "run: start/done callbacks for every step");
	CHECK_STR(seen.order, "w:Success r:Success sk:Skipped bad:IgnoredFailure ",
		  "run: callbacks in order with statuses");
	CHECK(seen.changed == 2, "run: changed_disk for CreateFile and ExecuteBash (even failed), not ReadFile or skipped");
	CHECK(res.log_path == NULL, "run: no log folder unless asked");
	component_result_release(&res);
	free(param);
	free(doc);
	remove_tree(dir);
	executor_close(ex);
}

struct argvs {
	char text[1024];
};

static void record(const char *const *argv, void *o)
{
	struct argvs *a = o;
	char *s = run_argv_str(argv);

	snprintf(a->text + strlen(a->text), sizeof(a->text) - strlen(a->text), "%s;", s);
	free(s);
}

static void test_update_os(void)
{
	char dir[] = "/tmp/amiforge-unit.XXXXXX", *doc;
	struct component_doc_spec spec = { 0 };
	struct component_run_opts o = { 0 };
	struct component_result res;
	struct executor *ex;
	struct argvs a = { "" };
	struct stat st;
	FILE *f;

	if (stat("/usr/bin/apt-get", &st) < 0) {
		printf("SKIP: update-os: no apt-get on this host\n");
		return;
	}
	if (!mkdtemp(dir))
		return;
	doc = xasprintf("%s/u.yaml", dir);
	f = fopen(doc, "w");
	fputs("schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n"
	      "      - {name: u, action: UpdateOS, inputs: {include: [openssl], exclude: [linux-image-amd64]}}\n",
	      f);
	fclose(f);
	spec.path = doc;
	o.docs = &spec;
	o.ndocs = 1;
	o.work_dir = dir;
	ex = executor_local_new();
	run_set_dry_run(record, &a);
	CHECK(component_run(&o, ex, &res) == 0 && res.success, "update-os: runs (dry)");
	run_set_dry_run(NULL, NULL);
	CHECK_STR(a.text, "apt-get update;apt-mark hold linux-image-amd64;"
		  "apt-get -y -o Dpkg::Options::=--force-confold install --only-upgrade openssl;"
		  "apt-mark unhold linux-image-amd64;", "update-os: apt command lines");
	component_result_release(&res);
	executor_close(ex);
	free(doc);
	remove_tree(dir);
}

int main(void)
{
	test_expr();
	test_parse();
	test_run_api();
	test_update_os();
	return TEST_DONE();
}
