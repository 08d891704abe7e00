/* Unit tests for builder/component/: reference expressions, the document
 * parser's API, the library entry point with its step callbacks, and the
 * UpdateOS command lines (through run.h's dry-run hook). */
#include "test.h"
#include "error.h"
#include "run.h"
#include "util.h"
#include "builder/exec/executor.h"
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

/* on_step_failed: step a is fixed then retried, b is continued past, c
 * aborts the run although its onFailure is Continue. */
struct asked {
	const char *dir;
	char order[256];
	int retries_seen;
};

static enum component_on_fail on_failed(const struct component_step_info *i, void *o)
{
	struct asked *a = o;

	snprintf(a->order + strlen(a->order), sizeof(a->order) - strlen(a->order), "%s:%s ",
		 i->step, i->status);
	if (strcmp(i->step, "a") == 0) {
		char *p = xasprintf("%s/fixed", a->dir);

		if (i->retries == 1) {   /* failed once again: fix it now */
			FILE *f = fopen(p, "w");

			if (f)
				fclose(f);
		}
		free(p);
		a->retries_seen = i->retries;
		return COMPONENT_RETRY;
	}
	if (strcmp(i->step, "b") == 0)
		return COMPONENT_CONTINUE;
	return COMPONENT_ABORT;
}

static void on_done_ask(const struct component_step_info *i, bool changed UNUSED, void *o)
{
	struct asked *a = o;

	snprintf(a->order + strlen(a->order), sizeof(a->order) - strlen(a->order), "%s=%s%s%s ",
		 i->step, i->status, i->continued ? "+continued" : "",
		 i->retries ? "+retried" : "");
}

static void test_on_step_failed(void)
{
	char dir[] = "/tmp/amiforge-unit.XXXXXX", *doc, *param, *logs, *cmd;
	struct component_doc_spec spec = { 0 };
	struct component_run_opts o = { 0 };
	struct component_result res;
	struct asked a = { 0 };
	struct executor *ex = executor_local_new();
	struct run r = RUN_INIT;
	const char *params[2];
	FILE *f;

	if (!mkdtemp(dir)) {
		CHECK(false, "on_step_failed: mkdtemp");
		return;
	}
	a.dir = dir;
	doc = xasprintf("%s/doc.yaml", dir);
	logs = xasprintf("%s/logs", dir);
	mkdir(logs, 0700);
	f = fopen(doc, "w");
	fputs("schemaVersion: 1.0\nparameters:\n  - Dir: {type: string}\n"
	      "phases:\n  - name: build\n    steps:\n"
	      "      - {name: a, action: ExecuteBash, inputs: {commands: ['test -e {{ Dir }}/fixed']}}\n"
	      "      - {name: b, action: ExecuteBash, inputs: {commands: ['exit 3']}}\n"
	      "      - {name: ig, action: ExecuteBash, onFailure: Ignore, inputs: {commands: ['exit 5']}}\n"
	      "      - {name: c, action: ExecuteBash, onFailure: Continue,"
	      " inputs: {commands: ['exit 4']}}\n"
	      "      - {name: d, action: ExecuteBash, inputs: {commands: ['touch {{ Dir }}/d']}}\n", f);
	fclose(f);
	param = xasprintf("Dir=%s", dir);
	params[0] = param;
	params[1] = NULL;
	spec.path = doc;
	spec.params = params;
	o.docs = &spec;
	o.ndocs = 1;
	o.log_dir = logs;
	o.on_step_failed = on_failed;
	o.on_step_done = on_done_ask;
	o.opaque = &a;
	CHECK(component_run(&o, ex, &res) == 0, "on_step_failed: component_run returns 0 (%s)",
	      err_msg());
	CHECK_STR(a.order, "a:Failed a:Failed a=Success+retried b:Failed b=IgnoredFailure+continued "
		  "ig=IgnoredFailure c:Failed c=Failed ",
		  "on_step_failed: asked for a twice (retry), b (continue), not for Ignore; c aborts");
	CHECK(a.retries_seen == 1, "on_step_failed: the second failure says one retry");
	CHECK(!res.success && res.aborted && strcmp(res.status, "Failed") == 0,
	      "on_step_failed: abort fails the run (onFailure Continue notwithstanding)");
	CHECK(res.continued == 1 && res.ignored == 2 && res.failed == 1,
	      "on_step_failed: counts (continued %d ignored %d failed %d)", res.continued,
	      res.ignored, res.failed);
	cmd = xasprintf("%s/d", dir);
	CHECK(access(cmd, F_OK) < 0, "on_step_failed: no step runs after an abort");
	free(cmd);
	/* The TOE log records the retry and the continue. */
	cmd = xasprintf("import json,glob,sys\n"
			"d=json.load(open(glob.glob('%s/TOE_*/detailedoutput.json')[0]))\n"
			"st={s['name']:s for p in d['documents'][0]['phases'] for s in p['steps']}\n"
			"sys.exit(not (st['a'].get('retries')==2 and st['a']['status']=='Success' and\n"
			" st['b'].get('continued') is True and st['b']['status']=='IgnoredFailure' and\n"
			" 'failureMessage' in st['b'] and 'continued' not in st['ig'] and 'd' not in st))\n",
			logs);
	{
		const char *argv[] = { "python3", "-c", cmd, NULL };

		r.argv = argv;
		r.err = RUN_CAPTURE;
		CHECK(run_sync(&r) == 0 && r.status == 0,
		      "on_step_failed: detailedoutput.json has retries and continued (%s)",
		      r.err_buf.data ? r.err_buf.data : "");
		run_release(&r);
	}
	component_result_release(&res);
	free(cmd);
	free(param);
	free(doc);
	free(logs);
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
	/* Dry runs print nothing, which is not what apt-get -s prints: the step
	 * fails once the refresh and the hold have run, and still unholds. */
	CHECK(component_run(&o, ex, &res) == 0 && !res.success && res.failure &&
	      strstr(res.failure, "no summary line"),
	      "update-os: empty 'apt-get -s' output fails the step (dry: %s)",
	      res.failure ? res.failure : "?");
	run_set_dry_run(NULL, NULL);
	CHECK_STR(a.text, "apt-get -o APT::Update::Error-Mode=any update;"
		  "apt-mark hold linux-image-amd64;"
		  "apt-get -s install --only-upgrade openssl;"
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
	test_on_step_failed();
	test_update_os();
	return TEST_DONE();
}
