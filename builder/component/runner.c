/* runner.c: runs checked documents: phases in document order, steps with
 * their `if`, loop, attempts, timeout and onFailure, chaining and the
 * detailed output. The control flow and all its state live here, on the
 * host; actions reach the target through the executor. */
#include <jansson.h>
#include <sys/random.h>
#include <sys/time.h>

#include "engine.h"
#include "expr.h"
#include "error.h"
#include "log.h"
#include "util.h"

const char *status_name(enum run_status s)
{
	switch (s) {
	case ST_SUCCESS:
		return "Success";
	case ST_FAILED:
		return "Failed";
	case ST_IGNORED:
		return "IgnoredFailure";
	case ST_SKIPPED:
		return "Skipped";
	}
	return "?";
}

int64_t wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

json_t *json_time(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char b[64];

	gmtime_r(&t, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
	return json_sprintf("%s.%03dZ", b, (int)(ms % 1000));
}

/* ---- references ---- */

static int lookup_path(json_t *j, const struct expr_path *e, size_t from, const char *name,
		       char **val)
{
	size_t i;

	for (i = from; i < e->n; i++) {
		if (!json_is_object(j) || !(j = json_object_get(j, e->seg[i])))
			return err_set("'{{ %s }}': no '%s'", name, e->seg[i]);
		if (e->idx[i] >= 0) {
			if (!json_is_array(j) || (size_t)e->idx[i] >= json_array_size(j))
				return err_set("'{{ %s }}': index %ld out of range", name,
					       e->idx[i]);
			j = json_array_get(j, (size_t)e->idx[i]);
		}
	}
	if (!json_is_string(j))
		return err_set("'{{ %s }}' is not a string", name);
	*val = xstrdup(json_string_value(j));
	return 1;
}

static int resolve(const char *name, char **val, void *opaque)
{
	struct doc_run *dr = opaque;
	struct expr_path e;
	json_t *j;
	int r = 0;

	if (expr_path_parse(name, &e) < 0)
		return -1;
	if (e.n == 1) {
		j = json_object_get(dr->params, name);
		if (!json_is_string(j))
			r = err_set("parameter '%s' has no value (give it with --parameters)", name);
		else
			*val = xstrdup(json_string_value(j)), r = 1;
		goto out;
	}
	if (e.n == 2 && (strcmp(e.seg[1], "index") == 0 || strcmp(e.seg[1], "value") == 0) &&
	    (strcmp(e.seg[0], "loop") == 0 ||
	     (dr->step && dr->step->loop && dr->step->loop->name &&
	      strcmp(dr->step->loop->name, e.seg[0]) == 0))) {
		if (!dr->iter)
			goto out;   /* not in a loop: AWSTOE leaves it as is */
		if (strcmp(e.seg[1], "index") == 0)
			*val = xasprintf("%" PRId64, dr->iter->index);
		else
			*val = xstrdup(dr->iter->value);
		r = 1;
		goto out;
	}
	if (e.n >= 3) {
		j = json_object_get(dr->steps, e.seg[0]);
		j = j ? json_object_get(j, e.seg[1]) : NULL;
		if (!j) {
			r = err_set("'{{ %s }}': step '%s.%s' has not run", name, e.seg[0],
				    e.seg[1]);
			goto out;
		}
		r = lookup_path(j, &e, 2, name, val);
		goto out;
	}
	r = err_set("unknown reference '{{ %s }}'", name);
out:
	expr_path_release(&e);
	return r;
}

int runner_expand(struct doc_run *dr, const char *s, char **out)
{
	return expr_expand(s, resolve, dr, out);
}

/* YAML inputs → JSON with every scalar expanded. */
static json_t *resolve_inputs(struct doc_run *dr, const struct ynode *n)
{
	json_t *j = NULL, *c;
	char *s;
	size_t i;

	if (!n)
		return json_object();
	switch (n->type) {
	case YNODE_SCALAR:
		if (ynode_is_null(n))
			return json_string("");
		if (runner_expand(dr, n->str, &s) < 0)
			return NULL;
		j = json_stringn(s, strlen(s));
		free(s);
		if (!j)
			err_set("input is not valid UTF-8");
		return j;
	case YNODE_SEQ:
		j = json_array();
		for (i = 0; i < n->nitems; i++) {
			if (!(c = resolve_inputs(dr, n->items[i]))) {
				json_decref(j);
				return NULL;
			}
			json_array_append_new(j, c);
		}
		return j;
	case YNODE_MAP:
		j = json_object();
		for (i = 0; i < n->npairs; i++) {
			if (!(c = resolve_inputs(dr, n->pairs[i].value))) {
				json_decref(j);
				return NULL;
			}
			json_object_set_new(j, n->pairs[i].key->str, c);
		}
		return j;
	}
	return NULL;
}

/* ---- loops ---- */

/* The values a loop iterates over. */
static int loop_values(struct doc_run *dr, const struct step_loop *l, struct strv *out)
{
	size_t i;
	char *s;

	switch (l->kind) {
	case LOOP_FOR: {
		int64_t v;
		for (v = l->start; l->update > 0 ? v <= l->end : v >= l->end; v += l->update)
			strv_pushf(out, "%" PRId64, v);
		return 0;
	}
	case LOOP_LIST:
		for (i = 0; i < l->list->nitems; i++) {
			if (runner_expand(dr, l->list->items[i]->str, &s) < 0)
				return -1;
			strv_push(out, s);
			free(s);
		}
		return 0;
	case LOOP_DELIMITED: {
		const char *p, *q;
		if (runner_expand(dr, l->joined, &s) < 0)
			return -1;
		for (p = s;; p = q + 1) {
			q = strchr(p, l->delim);
			if (!q) {
				if (*p)
					strv_push(out, p);
				break;
			}
			if (q > p) {
				char *item = xstrndup(p, (size_t)(q - p));
				strv_push(out, item);
				free(item);
			}
			if (out->n > LOOP_ITER_MAX)
				break;
		}
		free(s);
		if (out->n > LOOP_ITER_MAX)
			return err_set("loop list longer than %d items", LOOP_ITER_MAX);
		return 0;
	}
	}
	return 0;
}

/* ---- steps ---- */

static void progress(struct run_state *rs, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void progress(struct run_state *rs, const char *fmt, ...)
{
	va_list ap;
	char line[ERR_MAX * 2];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (rs->opts->progress) {
		/* step names, failures and outputs come from the document and the
		 * target: escaped for the terminal, kept as they are in the log */
		char *safe = str_escape_ctl(line, strlen(line), true);

		fprintf(stderr, "%s\n", safe);
		fflush(stderr);
		free(safe);
	}
	if (rs->log)
		toelog_app(rs->log, "%s", line);
}

/* Merge an iteration's outputs into the step's: values joined with '\n'. */
static void merge_outputs(json_t *all, json_t *one)
{
	const char *k;
	json_t *v, *old;

	json_object_foreach(one, k, v) {
		old = json_object_get(all, k);
		if (json_is_string(old) && json_is_string(v))
			json_object_set_new(all, k, json_sprintf("%s\n%s", json_string_value(old),
								 json_string_value(v)));
		else
			json_object_set(all, k, v);
	}
}

struct step_run {
	struct run_state *rs;
	struct doc_run *dr;
	const struct comp_step *st;
	const char *phase;
	json_t *jstep;
	json_t *inputs;       /* last resolved inputs */
	json_t *outputs;
	json_t *iterations;   /* loop: [{index, value, status}] */
	int64_t deadline;
	int reboots;
	int retries;          /* on_step_failed said COMPONENT_RETRY */
	bool continued;       /* on_step_failed said COMPONENT_CONTINUE */
};

/* Run the action once with the current iteration. 0 success, -1 failure. */
static int run_action(struct step_run *sr, const struct loop_iter *it)
{
	struct action_ctx c = { 0 };
	struct buf console = BUF_INIT(STEP_OUTPUT_MAX);
	json_t *in, *out;
	int r;

	sr->dr->iter = it;
	in = resolve_inputs(sr->dr, sr->st->inputs);
	if (!in)
		return -1;
	json_decref(sr->inputs);
	sr->inputs = in;
	/* a single mapping given to a list action is a list of one */
	if (sr->st->action->shape == SHAPE_LIST && json_is_object(in)) {
		json_t *a = json_array();
		json_array_append(a, in);
		c.inputs = a;
	} else {
		c.inputs = json_incref(in);
	}
	out = json_object();
	c.ex = sr->rs->ex;
	c.opts = sr->rs->opts;
	c.step = sr->st;
	c.rs = sr->rs;
	c.doc_run = sr->dr;
	c.outputs = out;
	c.deadline_ms = sr->deadline;
	c.console = &console;
	c.work_dir = sr->rs->work_dir;
	c.host_tmp = sr->rs->host_tmp;
	for (;;) {
		c.reboot = false;
		r = sr->st->action->run(&c);
		if (console.len && sr->rs->log)
			toelog_console(sr->rs->log, console.data, console.len);
		buf_reset(&console);
		if (r < 0 || !c.reboot)
			break;
		/* exit code 194 or Reboot: reboot the target, then re-run the step
		 * (the Reboot action is complete once the target is back) */
		if (!sr->rs->ex->ops->reboot) {
			r = err_set("reboot requested (%s), but the %s executor cannot reboot",
				    sr->st->action->flags & ACT_REBOOTS ? "Reboot action"
				    : "exit code 194", sr->rs->ex->ops->name);
			break;
		}
		if (++sr->reboots > STEP_REBOOTS_MAX) {
			r = err_set("step asked for more than %d reboots", STEP_REBOOTS_MAX);
			break;
		}
		progress(sr->rs, "    rebooting the target (%d)", sr->reboots);
		if (c.reboot_delay_s > 0)
			sleep((unsigned)c.reboot_delay_s);
		if (executor_reboot(sr->rs->ex, 15 * 60 * 1000) < 0) {
			err_prefix("reboot");
			r = -1;
			break;
		}
		/* The boot may have emptied /tmp (systemd-tmpfiles, tmpfs):
		 * the scratch directory must be there again. */
		if (executor_mkdir_p(sr->rs->ex, sr->rs->work_dir, 0700) < 0) {
			err_prefix("after reboot");
			r = -1;
			break;
		}
		if (sr->st->action->flags & ACT_REBOOTS)
			break;
		json_object_clear(out);
	}
	if (r == 0)
		merge_outputs(sr->outputs, out);
	if (c.detail) {
		json_decref(sr->jstep);
		sr->jstep = c.detail;
	}
	json_decref(out);
	json_decref(c.inputs);
	buf_release(&console);
	sr->dr->iter = NULL;
	return r;
}

/* One attempt: every iteration. 0 or -1. */
static int run_attempt(struct step_run *sr)
{
	const struct step_loop *l = sr->st->loop;
	struct strv vals = STRV_INIT;
	size_t i;
	int r = 0;

	json_object_clear(sr->outputs);
	if (!l)
		return run_action(sr, NULL);
	if (loop_values(sr->dr, l, &vals) < 0) {
		strv_release(&vals);
		return -1;
	}
	json_array_clear(sr->iterations);
	for (i = 0; i < vals.n && r == 0; i++) {
		struct loop_iter it = { l, (int64_t)i, vals.v[i] };
		int64_t t0 = wall_ms();
		if (sr->deadline && now_ms() >= sr->deadline) {
			r = err_set("timed out after %" PRId64 " s (loop stopped at iteration %zu)",
				    sr->st->timeout_s, i);
			break;
		}
		r = run_action(sr, &it);
		json_array_append_new(sr->iterations,
				      json_pack("{s:I, s:s, s:s, s:o, s:o}", "index", (json_int_t)i,
						"value", vals.v[i], "status",
						r == 0 ? "Success" : "Failed",
						"startTime", json_time(t0), "endTime",
						json_time(wall_ms())));
	}
	strv_release(&vals);
	return r;
}

static void count(struct run_state *rs, enum run_status s, const char *failure)
{
	if (s != ST_SKIPPED)
		rs->executed++;
	if (s == ST_FAILED)
		rs->failed++;
	if (s == ST_IGNORED)
		rs->ignored++;
	if (s == ST_FAILED && !rs->failure && failure)
		rs->failure = xstrdup(failure);
}

static void step_info(struct run_state *rs, const struct step_run *sr, size_t index,
		      const char *status, const char *failure, int attempts, int64_t t0,
		      int64_t t1, struct component_step_info *info)
{
	*info = (struct component_step_info){
		.document = doc_display_name(sr->dr->doc), .phase = sr->phase,
		.step = sr->st->name, .action = sr->st->action->name,
		.depth = sr->dr->doc->depth, .index = index,
		.status = status, .failure = failure,
		.attempts = attempts, .retries = sr->retries, .continued = sr->continued,
		.start_ms = t0, .end_ms = t1,
		.doc_index = rs->doc_index, .run = sr->dr,
	};
}

static void notify(struct run_state *rs, bool done, const struct step_run *sr, size_t index,
		   enum run_status s, const char *failure, int attempts, int64_t t0, int64_t t1)
{
	const struct component_run_opts *o = rs->opts;
	struct component_step_info info;
	component_step_fn fn = done ? o->on_step_done : o->on_step_start;

	step_info(rs, sr, index, done ? status_name(s) : NULL, failure, attempts, t0, t1, &info);
	if (fn)
		fn(&info, done && s != ST_SKIPPED && (sr->st->action->flags & ACT_CHANGES_DISK), o->opaque);
}

/* A failed step whose failure would count: ask the caller what to do. */
static enum component_on_fail ask_caller(struct run_state *rs, const struct step_run *sr,
					 size_t index, const char *failure, int attempts,
					 int64_t t0)
{
	const struct component_run_opts *o = rs->opts;
	struct component_step_info info;
	enum component_on_fail d;

	if (!o->on_step_failed || rs->aborted || sr->st->onfail == ONFAIL_IGNORE)
		return COMPONENT_FAIL;
	step_info(rs, sr, index, status_name(ST_FAILED), failure, attempts, t0, wall_ms(), &info);
	d = o->on_step_failed(&info, o->opaque);
	return d >= COMPONENT_FAIL && d <= COMPONENT_ABORT ? d : COMPONENT_FAIL;
}

char *component_step_outputs(const struct component_step_info *info)
{
	const struct doc_run *dr = info->run;

	if (!dr || dr->doc->depth)
		return NULL;
	return json_dumps(dr->steps, JSON_COMPACT);
}

/* A step done before the checkpoint this run resumed from: in the log as
 * Skipped, not run, not counted, no callbacks. */
static void resumed_step(struct run_state *rs, const char *phase, const struct comp_step *st,
			 json_t *jsteps)
{
	json_array_append_new(jsteps, json_pack("{s:s, s:s, s:s, s:s}", "name", st->name,
						"action", st->action->name, "status", "Skipped",
						"skippedReason", "done before the resumed checkpoint"));
	progress(rs, "  %s/%s: done before the checkpoint", phase, st->name);
}

/* Run one step; returns its status. */
static enum run_status run_step(struct run_state *rs, struct doc_run *dr, const char *phase,
				const struct comp_step *st, size_t index, json_t *jsteps)
{
	struct step_run sr = { .rs = rs, .dr = dr, .st = st, .phase = phase };
	enum run_status s = ST_SUCCESS;
	char *failure = NULL;
	int64_t t0 = wall_ms(), m0 = now_ms();
	int attempt = 0;
	json_t *jphase;
	const char *indent = dr->doc->depth ? "      " : "  ";

	sr.outputs = json_object();
	sr.iterations = json_array();
	dr->step = st;
	sr.deadline = st->timeout_s > 0 && !(st->action->flags & ACT_OWN_TIMEOUT)
		? m0 + st->timeout_s * 1000 : 0;
	notify(rs, false, &sr, index, s, NULL, 0, t0, 0);
	progress(rs, "%s%s/%s (%s): running", indent, phase, st->name, st->action->name);
again:
	if (st->cond) {
		bool v;
		enum branch b;
		if (cond_eval(st->cond->expr, dr, rs->ex, &v) < 0) {
			err_prefix("if");
			failure = xstrdup(err_msg());
			s = ST_FAILED;
			goto done;
		}
		b = v ? st->cond->then_ : st->cond->else_;
		if (b == BR_SKIP) {
			s = ST_SKIPPED;
			goto done;
		}
		if (b == BR_ABORT) {
			failure = xasprintf("aborted: the 'if' condition is %s and its '%s' is Abort",
					    v ? "true" : "false", v ? "then" : "else");
			s = ST_FAILED;
			goto done;
		}
	}
	for (attempt = 1; attempt <= st->max_attempts; attempt++) {
		err_clear();
		if (run_attempt(&sr) == 0) {
			free(failure);
			failure = NULL;
			s = ST_SUCCESS;
			break;
		}
		free(failure);
		failure = xstrdup(err_msg());
		s = ST_FAILED;
		if (attempt < st->max_attempts)
			progress(rs, "%s  attempt %d/%d failed: %s", indent, attempt,
				 st->max_attempts, failure);
	}
	if (attempt > st->max_attempts)
		attempt = st->max_attempts;
done:
	if (s == ST_FAILED) {
		switch (ask_caller(rs, &sr, index, failure, attempt, t0)) {
		case COMPONENT_RETRY:
			sr.retries++;
			progress(rs, "%s%s/%s: retrying (%d)", indent, phase, st->name, sr.retries);
			sr.deadline = st->timeout_s > 0 && !(st->action->flags & ACT_OWN_TIMEOUT)
				? now_ms() + st->timeout_s * 1000 : 0;
			s = ST_SUCCESS;
			goto again;
		case COMPONENT_CONTINUE:
			sr.continued = true;
			rs->continued++;
			s = ST_IGNORED;
			break;
		case COMPONENT_ABORT:
			rs->aborted = true;
			break;
		case COMPONENT_FAIL:
			break;
		}
	}
	if (s == ST_FAILED && st->onfail == ONFAIL_IGNORE)
		s = ST_IGNORED;
	if (s == ST_FAILED && !rs->failure && failure)   /* say where it failed */
		rs->failure = xasprintf("%s/%s/%s: %s", doc_display_name(sr.dr->doc), sr.phase,
					st->name, failure);
	count(rs, s, failure);
	{
		int64_t t1 = wall_ms();
		json_t *js = json_pack("{s:s, s:s, s:s, s:o, s:o, s:i, s:O, s:O}",
				       "name", st->name, "action", st->action->name,
				       "status", status_name(s), "startTime", json_time(t0),
				       "endTime", json_time(t1), "attempts", attempt,
				       "inputs", sr.inputs ? sr.inputs : json_null(),
				       "outputs", sr.outputs);
		if (failure)
			json_object_set_new(js, "failureMessage", json_string(failure));
		if (sr.retries)
			json_object_set_new(js, "retries", json_integer(sr.retries));
		if (sr.continued)
			json_object_set_new(js, "continued", json_true());
		if (st->loop) {
			json_t *jl = json_pack("{s:O}", "iterations", sr.iterations);
			if (st->loop->name)
				json_object_set_new(jl, "name", json_string(st->loop->name));
			json_object_set_new(js, "loop", jl);
		}
		if (sr.jstep)
			json_object_update(js, sr.jstep);
		json_array_append_new(jsteps, js);
		/* chaining: what later steps may refer to */
		if (s != ST_SKIPPED) {
			jphase = json_object_get(dr->steps, phase);
			if (!jphase) {
				jphase = json_object();
				json_object_set_new(dr->steps, phase, jphase);
			}
			json_object_set_new(jphase, st->name,
					    json_pack("{s:O, s:O}", "inputs",
						      sr.inputs ? sr.inputs : json_object(),
						      "outputs", sr.outputs));
		}
		notify(rs, true, &sr, index, s, failure, attempt, t0, t1);
		progress(rs, "%s%s/%s: %s (%.1f s)%s%s", indent, phase, st->name, status_name(s),
			 (double)(now_ms() - m0) / 1000.0, failure ? ": " : "",
			 failure ? failure : "");
	}
	dr->step = NULL;
	json_decref(sr.inputs);
	json_decref(sr.outputs);
	json_decref(sr.iterations);
	json_decref(sr.jstep);
	free(failure);
	return s;
}

bool runner_phase_selected(const char *phases, const char *name)
{
	const char *p = phases;
	size_t n = strlen(name);

	if (!phases)
		return true;
	while (*p) {
		while (*p == ',' || *p == ' ')
			p++;
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == ' ' || !p[n]))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

int runner_run_document(struct run_state *rs, const struct comp_doc *doc,
			const struct doc_chain *chain, const char *phases, json_t *params,
			json_t *jdoc, enum run_status *status, char **failure)
{
	struct doc_run dr = { .doc = doc, .chain = chain };
	json_t *jphases = json_array();
	bool aborted = false, any_failed = false, any_ignored = false;
	size_t i, j;
	int64_t t0 = wall_ms();

	*failure = NULL;
	dr.params = json_object();
	dr.steps = NULL;
	if (doc->depth == 0 && rs->opts->resume && rs->opts->resume->outputs &&
	    rs->opts->resume->outputs_doc == rs->doc_index &&
	    rs->top_steps < rs->opts->resume->skip) {
		json_error_t je;

		dr.steps = json_loads(rs->opts->resume->outputs, 0, &je);
		if (!json_is_object(dr.steps)) {
			json_decref(dr.steps);
			dr.steps = NULL;
			*failure = xasprintf("resume: saved step outputs are not a JSON object: %s",
					     je.text);
			aborted = any_failed = true;
			rs->failed++;
			if (!rs->failure)
				rs->failure = xstrdup(*failure);
		}
	}
	if (!dr.steps)
		dr.steps = json_object();
	for (i = 0; i < doc->nparams; i++) {
		const struct comp_param *p = &doc->params[i];
		json_t *ov = p->constant ? NULL : json_object_get(params, p->name);
		if (ov)
			json_object_set(dr.params, p->name, ov);
		else if (p->value)
			json_object_set_new(dr.params, p->name, json_string(p->value));
	}
	for (i = 0; i < doc->nparams; i++) {
		if (!json_object_get(dr.params, doc->params[i].name)) {
			*failure = xasprintf("parameter '%s' has no default: give it a value",
					     doc->params[i].name);
			any_failed = aborted = true;
			rs->failed++;
			if (!rs->failure)
				rs->failure = xstrdup(*failure);
			break;
		}
	}
	progress(rs, "%sdocument %s", doc->depth ? "    " : "", doc_display_name(doc));
	for (i = 0; i < doc->nphases && !aborted; i++) {
		const struct comp_phase *ph = &doc->phases[i];
		json_t *jsteps = json_array();
		bool pf = false, pi = false;
		int64_t p0 = wall_ms();
		if (!runner_phase_selected(phases, ph->name)) {
			json_decref(jsteps);
			continue;
		}
		for (j = 0; j < ph->nsteps; j++) {
			const struct comp_step *st = &ph->steps[j];
			enum run_status s;
			json_t *last;

			if (doc->depth == 0 && rs->opts->resume &&
			    rs->top_steps < rs->opts->resume->skip) {
				rs->top_steps++;
				resumed_step(rs, ph->name, st, jsteps);
				continue;
			}
			if (doc->depth == 0)
				rs->top_steps++;
			s = run_step(rs, &dr, ph->name, st, j, jsteps);
			last = json_array_get(jsteps, json_array_size(jsteps) - 1);
			if (s == ST_FAILED) {
				pf = true;
				if (!*failure)
					*failure = xasprintf("%s/%s: %s", ph->name, st->name,
							     json_string_value(json_object_get(
								     last, "failureMessage")));
				if (st->onfail == ONFAIL_ABORT || rs->aborted) {
					aborted = true;
					break;
				}
			}
			if (s == ST_IGNORED)
				pi = true;
		}
		any_failed |= pf;
		any_ignored |= pi;
		json_array_append_new(jphases, json_pack("{s:s, s:s, s:o, s:o, s:o}",
			"name", ph->name,
			"status", pf ? "Failed" : pi ? "SuccessWithIgnoredFailure" : "Success",
			"startTime", json_time(p0), "endTime", json_time(wall_ms()),
			"steps", jsteps));
	}
	*status = any_failed ? ST_FAILED : any_ignored ? ST_IGNORED : ST_SUCCESS;
	json_object_set_new(jdoc, "name", json_string(doc_display_name(doc)));
	json_object_set_new(jdoc, "path", json_string(doc->y.path));
	json_object_set_new(jdoc, "status", json_string(any_failed ? "Failed" : any_ignored
							? "SuccessWithIgnoredFailure" : "Success"));
	json_object_set_new(jdoc, "startTime", json_time(t0));
	json_object_set_new(jdoc, "endTime", json_time(wall_ms()));
	if (*failure)
		json_object_set_new(jdoc, "failureMessage", json_string(*failure));
	json_object_set(jdoc, "parameters", dr.params);
	json_object_set_new(jdoc, "phases", jphases);
	if (doc->depth == 0)
		json_object_set(rs->chaining, doc_display_name(doc), dr.steps);
	json_decref(dr.params);
	json_decref(dr.steps);
	return 0;
}

/* ---- the run ---- */

static char *new_exec_id(void)
{
	unsigned char r[16];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* not fatal: ids only need to be unique per host */
			uint64_t t = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32);
			memcpy(r, &t, sizeof(t));
			memcpy(r + 8, &t, sizeof(t));
			break;
		}
		got += (size_t)n;
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	return xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
			 r[12], r[13], r[14], r[15]);
}

/* "k=v" strings → object; later wins. */
static int params_object(const char *const *kv, json_t **out)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; kv && kv[i]; i++) {
		const char *eq = strchr(kv[i], '=');
		char *k;
		if (!eq || eq == kv[i]) {
			json_decref(o);
			return err_set("invalid parameter '%s' (expected name=value)", kv[i]);
		}
		k = xstrndup(kv[i], (size_t)(eq - kv[i]));
		json_object_set_new(o, k, json_string(eq + 1));
		free(k);
	}
	*out = o;
	return 0;
}

void component_result_release(struct component_result *res)
{
	if (!res)
		return;
	free(res->status);
	free(res->execution_id);
	free(res->log_path);
	free(res->failure);
	memset(res, 0, sizeof(*res));
}

int component_validate_file(const char *path)
{
	struct comp_doc *d = doc_load(path);

	if (!d)
		return -1;
	doc_free(d);
	return 0;
}

int component_doc_params(const char *path, struct strv *names, struct strv *required)
{
	struct comp_doc *d = doc_load(path);
	size_t i;

	if (!d)
		return -1;
	for (i = 0; i < d->nparams; i++) {
		if (d->params[i].constant)
			continue;
		strv_push(names, d->params[i].name);
		if (!d->params[i].value)
			strv_push(required, d->params[i].name);
	}
	doc_free(d);
	return 0;
}

int component_run(const struct component_run_opts *opts, struct executor *ex,
		  struct component_result *res)
{
	struct run_state rs = { .opts = opts, .ex = ex };
	struct comp_doc **docs = xcalloc(opts->ndocs ? opts->ndocs : 1, sizeof(*docs));
	json_t *jdocs = json_array(), *detailed = NULL;
	bool failed = false, ignored = false;
	int64_t t0 = wall_ms();
	size_t i;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	rs.chaining = json_object();
	for (i = 0; i < opts->ndocs; i++)
		if (!(docs[i] = doc_load(opts->docs[i].path)))
			goto cleanup;
	rs.exec_id = new_exec_id();
	res->execution_id = xstrdup(rs.exec_id);
	if (opts->log_dir && !(rs.log = toelog_open(opts->log_dir, rs.exec_id, &res->log_path)))
		goto cleanup;
	for (i = 0; rs.log && i < opts->ndocs; i++)
		if (toelog_add_document(rs.log, docs[i], i) < 0)
			goto cleanup;
	rs.host_tmp = opts->host_dir ? make_temp_dir_in(opts->host_dir, "toe-host.")
				     : make_temp_dir("amiforge-toe-host.", "/tmp");
	if (!rs.host_tmp)
		goto cleanup;
	if (!opts->work_dir && ex->ops->make_temp_dir) {
		char *prefix = xasprintf("amiforge-toe-%s", rs.exec_id);
		int q = executor_make_temp_dir(ex, prefix, &rs.work_dir);

		free(prefix);
		if (q < 0) {
			err_prefix("work directory on the target");
			goto cleanup;
		}
	} else {
		rs.work_dir = opts->work_dir ? xstrdup(opts->work_dir)
					     : xasprintf("/tmp/amiforge-toe-%s", rs.exec_id);
		if (executor_mkdir_p(ex, rs.work_dir, 0700) < 0) {
			err_prefix("work directory on the target");
			goto cleanup;
		}
	}
	progress(&rs, "execution %s on %s", rs.exec_id, ex->ops->name);
	for (i = 0; i < opts->ndocs; i++) {
		json_t *params = NULL, *jdoc = json_object();
		enum run_status s;
		char *failure = NULL;
		if (params_object(opts->docs[i].params, &params) < 0) {
			json_decref(jdoc);
			goto cleanup;
		}
		rs.doc_index = i;
		runner_run_document(&rs, docs[i], NULL, opts->phases, params, jdoc, &s, &failure);
		json_decref(params);
		json_array_append_new(jdocs, jdoc);
		free(failure);
		if (s == ST_FAILED) {
			failed = true;
			break;   /* later documents do not run after a failed one */
		}
		if (s == ST_IGNORED)
			ignored = true;
	}
	res->status = xstrdup(failed ? "Failed" : ignored ? "SuccessWithIgnoredFailure"
					       : "Success");
	res->success = !failed;
	res->executed = rs.executed;
	res->failed = rs.failed;
	res->ignored = rs.ignored;
	res->continued = rs.continued;
	res->aborted = rs.aborted;
	if (rs.failure)
		res->failure = xstrdup(rs.failure);
	detailed = json_pack("{s:s, s:s, s:o, s:o, s:i, s:i, s:i, s:s, s:O}",
			     "executionId", rs.exec_id, "status", res->status,
			     "startTime", json_time(t0), "endTime", json_time(wall_ms()),
			     "executedStepCount", rs.executed, "failedStepCount", rs.failed,
			     "ignoredFailedStepCount", rs.ignored,
			     "failureMessage", rs.failure ? rs.failure : "",
			     "documents", jdocs);
	progress(&rs, "execution %s: %s (%d steps run, %d failed, %d failures ignored)",
		 rs.exec_id, res->status, rs.executed, rs.failed, rs.ignored);
	if (rs.log && (toelog_write_json(rs.log, "detailedoutput.json", detailed) < 0 ||
		       toelog_write_json(rs.log, "chaining.json", rs.chaining) < 0))
		goto cleanup;
	ret = 0;
cleanup:
	if (rs.work_dir && !opts->work_dir)
		executor_remove(ex, rs.work_dir, true);
	if (rs.host_tmp)
		remove_tree(rs.host_tmp);
	toelog_close(rs.log);
	for (i = 0; i < opts->ndocs; i++)
		doc_free(docs[i]);
	free(docs);
	json_decref(jdocs);
	json_decref(detailed);
	json_decref(rs.chaining);
	free(rs.exec_id);
	free(rs.work_dir);
	free(rs.host_tmp);
	free(rs.failure);
	return ret;
}
