/* plan.c: the top-level steps a run would execute, in order, with what each
 * one's outcome depends on — computed on the host from the documents alone,
 * before anything runs (the build's checkpoint keys, component.h). */
#include <jansson.h>

#include "engine.h"
#include "error.h"
#include "util.h"

/* A YAML node as JSON: scalars stay strings (their type is the runner's
 * business), mappings keep their order. */
static json_t *node_json(const struct ynode *n)
{
	json_t *j;
	size_t i;

	if (!n)
		return json_null();
	switch (n->type) {
	case YNODE_SCALAR:
		return ynode_is_null(n) ? json_null() : json_stringn_nocheck(n->str, n->len);
	case YNODE_SEQ:
		j = json_array();
		for (i = 0; i < n->nitems; i++)
			json_array_append_new(j, node_json(n->items[i]));
		return j;
	case YNODE_MAP:
		j = json_array();
		for (i = 0; i < n->npairs; i++)
			json_array_append_new(j, json_pack("[s, o]", n->pairs[i].key->str,
							   node_json(n->pairs[i].value)));
		return j;
	}
	return json_null();
}

/* Does the outcome of st depend on the outside world? WebDownload without a
 * checksum on every source, UpdateOS, S3Download, and ExecuteDocument of a
 * document not known before the run. */
static bool external(const struct comp_step *st)
{
	size_t i, k;

	switch (st->action->outside) {
	case OUTSIDE_NEVER:
		return false;
	case OUTSIDE_ALWAYS:
		return true;
	case OUTSIDE_UNLESS_KNOWN:
		return st->child == NULL;
	case OUTSIDE_UNLESS_CHECKSUMS:
		break;
	}
	if (!st->inputs || st->inputs->type != YNODE_SEQ)
		return true;
	for (i = 0; i < st->inputs->nitems; i++) {
		const struct ynode *e = st->inputs->items[i];
		bool has = false;

		for (k = 0; e->type == YNODE_MAP && k < e->npairs; k++)
			if (strcmp(e->pairs[k].key->str, "checksum") == 0 &&
			    e->pairs[k].value->type == YNODE_SCALAR && e->pairs[k].value->len)
				has = true;
		if (!has)
			return true;
	}
	return false;
}

/* The document's parameters and constants st may refer to: every one whose
 * name occurs in the step's text (a superset of its references). */
static json_t *step_params(const struct comp_doc *doc, const char *text, json_t *values)
{
	json_t *j = json_object();
	size_t i;

	for (i = 0; i < doc->nparams; i++) {
		const struct comp_param *p = &doc->params[i];
		json_t *v = p->constant ? NULL : json_object_get(values, p->name);

		if (!strstr(text, p->name))
			continue;
		if (v)
			json_object_set(j, p->name, v);
		else
			json_object_set_new(j, p->name, p->value ? json_string(p->value) : json_null());
	}
	return j;
}

/* An included document, whole, with what it includes in turn. */
static json_t *doc_json(const struct comp_doc *d, bool *ext)
{
	json_t *j = json_object();
	json_t *kids = json_array();
	size_t i, k;

	for (i = 0; i < d->nphases; i++)
		for (k = 0; k < d->phases[i].nsteps; k++) {
			const struct comp_step *st = &d->phases[i].steps[k];

			if (external(st))
				*ext = true;
			if (st->child)
				json_array_append_new(kids, doc_json(st->child, ext));
		}
	json_object_set_new(j, "text", json_stringn_nocheck(d->y.text, d->y.text_len));
	json_object_set_new(j, "includes", kids);
	return j;
}

static json_t *params_json(const char *const *kv)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; kv && kv[i]; i++) {
		const char *eq = strchr(kv[i], '=');
		char *k;

		if (!eq)
			continue;
		k = xstrndup(kv[i], (size_t)(eq - kv[i]));
		json_object_set_new(o, k, json_string(eq + 1));
		free(k);
	}
	return o;
}

static void add_step(struct component_plan *plan, size_t di, const struct comp_doc *doc,
		     const char *phase, size_t index, const struct comp_step *st, json_t *values)
{
	struct component_plan_step *ps;
	json_t *m, *sj = node_json(st->node);
	char *text = json_dumps(sj, JSON_COMPACT | JSON_ENCODE_ANY);
	bool ext = external(st);

	m = json_pack("{s:s, s:s, s:I, s:o, s:o}", "document", doc_display_name(doc),
		      "phase", phase, "index", (json_int_t)index, "step", sj,
		      "parameters", step_params(doc, text ? text : "", values));
	if (st->child)
		json_object_set_new(m, "includes", doc_json(st->child, &ext));
	free(text);
	plan->steps = xrealloc(plan->steps, (plan->n + 1) * sizeof(*plan->steps));
	ps = &plan->steps[plan->n++];
	memset(ps, 0, sizeof(*ps));
	ps->doc = di;
	ps->document = xstrdup(doc_display_name(doc));
	ps->phase = xstrdup(phase);
	ps->step = xstrdup(st->name);
	ps->action = xstrdup(st->action->name);
	ps->changes_disk = (st->action->flags & ACT_CHANGES_DISK) != 0;
	ps->reboots = (st->action->flags & ACT_REBOOTS) != 0;
	ps->material = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	/* Without a description of the step it cannot be keyed: treat it as
	 * depending on the outside world. */
	ps->external = ext || !ps->material;
	json_decref(m);
}

int component_plan(const struct component_run_opts *opts, struct component_plan *plan)
{
	size_t i, p, k;

	memset(plan, 0, sizeof(*plan));
	for (i = 0; i < opts->ndocs; i++) {
		struct comp_doc *doc = doc_load(opts->docs[i].path);
		json_t *values;

		if (!doc) {
			component_plan_release(plan);
			return -1;
		}
		values = params_json(opts->docs[i].params);
		for (p = 0; p < doc->nphases; p++) {
			const struct comp_phase *ph = &doc->phases[p];

			if (!runner_phase_selected(opts->phases, ph->name))
				continue;
			for (k = 0; k < ph->nsteps; k++)
				add_step(plan, i, doc, ph->name, k, &ph->steps[k], values);
		}
		json_decref(values);
		doc_free(doc);
	}
	return 0;
}

void component_plan_release(struct component_plan *plan)
{
	size_t i;

	if (!plan)
		return;
	for (i = 0; i < plan->n; i++) {
		free(plan->steps[i].document);
		free(plan->steps[i].phase);
		free(plan->steps[i].step);
		free(plan->steps[i].action);
		free(plan->steps[i].material);
	}
	free(plan->steps);
	memset(plan, 0, sizeof(*plan));
}
