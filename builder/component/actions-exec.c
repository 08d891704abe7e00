/* actions-exec.c: the general execution modules: ExecuteBash, ExecuteBinary,
 * ExecuteDocument, Assert, Reboot (UpdateOS: actions-update.c). */
#include <jansson.h>

#include "engine.h"
#include "error.h"
#include "util.h"

/* AWSTOE's exit code for "reboot, then run this step again". */
#define EXIT_REBOOT 194

int64_t action_time_left(struct action_ctx *c)
{
	int64_t left;

	if (!c->deadline_ms)
		return 0;
	left = c->deadline_ms - now_ms();
	if (left <= 0) {
		err_set("timed out after %" PRId64 " s", c->step->timeout_s);
		return -1;
	}
	return left;
}

/* The last non-empty line of s, for messages. */
static const char *last_line(const char *s, size_t len, size_t *n)
{
	const char *e = s + len, *b;

	while (e > s && (e[-1] == '\n' || e[-1] == '\r'))
		e--;
	b = e;
	while (b > s && b[-1] != '\n')
		b--;
	*n = (size_t)(e - b) > 200 ? 200 : (size_t)(e - b);
	return b;
}

int action_exec(struct action_ctx *c, const char *const *argv, const char *const *env,
		struct buf *out)
{
	return action_exec_full(c, argv, env, out, NULL);
}

/* req (argv, env, script) on the target within the step's deadline: as
 * action_exec_full. */
static int action_run(struct action_ctx *c, struct exec_req *req, struct buf *out,
		      struct buf *err)
{
	struct exec_result res;
	int64_t left = action_time_left(c);
	int st;

	if (left < 0)
		return -1;
	req->cwd = c->work_dir;
	req->timeout_ms = left;
	req->capture_max = STEP_OUTPUT_MAX;
	if (executor_exec(c->ex, req, &res) < 0)
		return -1;
	if (res.out.len)
		buf_add(c->console, res.out.data, res.out.len);
	if (res.err.len)
		buf_add(c->console, res.err.data, res.err.len);
	if (res.timed_out) {
		exec_result_release(&res);
		return err_set("timed out after %" PRId64 " s", c->step->timeout_s);
	}
	st = res.status;
	if (st != 0 && st != EXIT_REBOOT) {
		size_t n;
		const char *l = last_line(res.err.data ? res.err.data : "", res.err.len, &n);
		err_set("'%s' exited with status %d%s%.*s", req->argv[0], st, n ? ": " : "",
			(int)n, l);
	}
	if (out) {
		buf_release(out);
		*out = res.out;
		memset(&res.out, 0, sizeof(res.out));
	}
	if (err) {
		buf_release(err);
		*err = res.err;
		memset(&res.err, 0, sizeof(res.err));
	}
	exec_result_release(&res);
	return st;
}

int action_exec_full(struct action_ctx *c, const char *const *argv, const char *const *env,
		     struct buf *out, struct buf *err)
{
	struct exec_req req = { .argv = argv, .env = env };

	return action_run(c, &req, out, err);
}

/* Status → step result: 0 ok, 194 reboot, other: failure (already recorded). */
static int exec_result(struct action_ctx *c, int st, struct buf *out)
{
	json_t *v;

	if (st < 0)
		return -1;
	if (st == EXIT_REBOOT) {
		c->reboot = true;
		return 0;
	}
	if (st != 0)
		return -1;
	/* without the trailing newlines, so that chained values compare as
	 * the guide's examples do ('{{ validate.Version.outputs.stdout }}' == '2.1.1') */
	while (out->len && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == '\r'))
		out->data[--out->len] = '\0';
	v = json_stringn(out->data ? out->data : "", out->len);
	if (!v)
		return err_set("stdout is not valid UTF-8");
	json_object_set_new(c->outputs, "stdout", v);
	return 0;
}

/* AWSTOE runs the commands as one script file, by bash: so here, the file
 * written by the executor in the step's working directory (exec_req.script). */
int act_execute_bash(struct action_ctx *c)
{
	static const char *const argv[] = { "bash", NULL };
	json_t *cmds = json_object_get(c->inputs, "commands"), *v;
	struct buf script = BUF_INIT(STEP_OUTPUT_MAX), out = BUF_INIT(STEP_OUTPUT_MAX);
	struct exec_req req = { .argv = argv };
	size_t i;
	int st = -1;

	json_array_foreach(cmds, i, v)
		if (buf_adds(&script, json_string_value(v)) < 0 || buf_addc(&script, '\n') < 0)
			goto cleanup;
	req.script = script.data ? script.data : "";
	req.script_len = script.len;
	st = exec_result(c, action_run(c, &req, &out, NULL), &out);
cleanup:
	buf_release(&script);
	buf_release(&out);
	return st < 0 ? -1 : 0;
}

int act_execute_binary(struct action_ctx *c)
{
	json_t *args = json_object_get(c->inputs, "arguments"), *v;
	struct buf out = BUF_INIT(STEP_OUTPUT_MAX);
	struct strv argv = STRV_INIT;
	size_t i;
	int st;

	strv_push(&argv, in_str(c->inputs, "path", ""));
	json_array_foreach(args, i, v)
		strv_push(&argv, json_string_value(v));
	st = exec_result(c, action_exec(c, (const char *const *)argv.v, NULL, &out), &out);
	strv_release(&argv);
	buf_release(&out);
	return st;
}

int act_execute_document(struct action_ctx *c)
{
	struct doc_run *dr = c->doc_run;
	struct doc_chain here = { dr->doc->realpath, dr->chain };
	const char *path = in_str(c->inputs, "document", "");
	const char *phases = in_str(c->inputs, "phases", NULL);
	json_t *plist = json_object_get(c->inputs, "parameters"), *params = json_object(), *v;
	json_t *jdoc = json_object();
	struct comp_doc *loaded = NULL;
	const struct comp_doc *child = c->step->child;
	enum run_status s;
	char *failure = NULL;
	size_t i;
	int r = -1;

	if (str_startswith(path, "s3://")) {
		err_set("ExecuteDocument '%s': documents in S3 are not supported; give a local "
			"path", path);
		goto cleanup;
	}
	if (!child) {
		if (!(loaded = doc_load_child(path, dr->doc, &here)))
			goto cleanup;
		child = loaded;
	}
	json_array_foreach(plist, i, v) {
		const char *name = in_str(v, "name", NULL);
		if (!name || !doc_param(child, name)) {
			err_set("ExecuteDocument '%s': no parameter '%s'", path, name ? name : "");
			goto cleanup;
		}
		json_object_set_new(params, name, json_string(in_str(v, "value", "")));
	}
	if (runner_run_document(c->rs, child, &here, phases, params, jdoc, &s, &failure) < 0)
		goto cleanup;
	c->detail = json_pack("{s:O}", "document", jdoc);
	if (s == ST_FAILED) {
		err_set("document '%s' failed: %s", doc_display_name(child),
			failure ? failure : "?");
		goto cleanup;
	}
	r = 0;
cleanup:
	free(failure);
	doc_free(loaded);
	json_decref(params);
	json_decref(jdoc);
	return r;
}

int act_assert(struct action_ctx *c)
{
	bool v;

	if (cond_eval(c->step->assert_expr, c->doc_run, c->ex, &v) < 0)
		return -1;
	if (!v) {
		char *in = json_dumps(c->inputs, JSON_COMPACT | JSON_PRESERVE_ORDER);
		err_set("assertion is false: %.400s", in ? in : c->step->assert_expr->opname);
		free(in);
		return -1;
	}
	return 0;
}

int act_reboot(struct action_ctx *c)
{
	const char *d = in_str(c->inputs, "delaySeconds", NULL);
	int64_t v = 0;

	if (d && parse_i64(d, 0, 3600, &v) < 0)
		return err_prefix("Reboot: delaySeconds");
	c->reboot = true;
	c->reboot_delay_s = v;
	return 0;
}
