/* parse.c: YAML tree → checked component document (document.h). */
#include <ctype.h>
#include <libgen.h>
#include <regex.h>

#include "document.h"
#include "actions.h"
#include "expr.h"
#include "error.h"
#include "log.h"
#include "util.h"
#include "catalog.h"

/* What a reference may name where it appears. */
enum ref_where {
	REF_PARAMS = 1,        /* {{ Param }} */
	REF_LOOP = 2,          /* {{ loop.index }}, {{ name.value }} */
	REF_CHAIN = 4,         /* {{ phase.step.inputs/outputs... }} */
};

struct parser {
	struct comp_doc *doc;
	const struct doc_chain *chain;
	/* the step being checked, for references */
	const struct comp_step *step;
	size_t phase_i, step_i;
	const char *ctx;        /* "phase 'build', step 'x'" */
	const struct ynode *at; /* node for errors in the visit callback */
	int where;
	int cond_where;         /* what a comparison's operand may refer to */
};

static const char *const phase_names[] = { "build", "validate", "test" };

static int perr(struct parser *p, const struct ynode *n, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int perr(struct parser *p, const struct ynode *n, const char *fmt, ...)
{
	char msg[ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->ctx)
		return yerr(&p->doc->y, n, "%s: %s", p->ctx, msg);
	return yerr(&p->doc->y, n, "%s", msg);
}

bool doc_parse_bool(const char *s, bool *v)
{
	if (strcasecmp(s, "true") == 0) {
		*v = true;
		return true;
	}
	if (strcasecmp(s, "false") == 0) {
		*v = false;
		return true;
	}
	return false;
}

/* A scalar string value for key, or error. */
static int want_scalar(struct parser *p, const struct ynode *n, const char *key, const char **out)
{
	if (!n || n->type != YNODE_SCALAR || ynode_is_null(n))
		return perr(p, n, "'%s' must be a string, not %s", key,
			    n && ynode_is_null(n) ? "empty" : ynode_kind(n));
	*out = n->str;
	return 0;
}

static int no_expr(struct parser *p, const struct ynode *n, const char *key)
{
	if (n && n->type == YNODE_SCALAR && expr_has(n->str))
		return perr(p, n, "'%s': expressions are not allowed here", key);
	return 0;
}

static int want_int(struct parser *p, const struct ynode *n, const char *key, int64_t min,
		    int64_t max, int64_t *out)
{
	const char *s;

	if (want_scalar(p, n, key, &s) < 0 || no_expr(p, n, key) < 0)
		return -1;
	if (parse_i64(s, min, max, out) < 0)
		return perr(p, n, "'%s': '%s' is not an integer in [%" PRId64 ", %" PRId64 "]",
			    key, s, min, max);
	return 0;
}

/* Every key of map must be in allowed (NULL-terminated). */
static int check_keys(struct parser *p, const struct ynode *map, const char *what,
		      const char *const *allowed)
{
	size_t n = 0;
	char *msg;
	const struct ynode *key;
	int r;

	while (allowed[n])
		n++;
	key = ymap_unknown_key(map, what, allowed, n, &msg);
	if (!key)
		return 0;
	r = perr(p, key, "%s", msg);
	free(msg);
	return r;
}

static bool valid_var_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n < DOC_NAME_MIN || n > DOC_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* ---- references ---- */

static bool is_phase_name(const char *s)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(phase_names); i++)
		if (strcmp(s, phase_names[i]) == 0)
			return true;
	return false;
}

static int check_chain_ref(struct parser *p, const struct expr_path *e, const char *name)
{
	const struct comp_doc *d = p->doc;
	size_t pi, si;

	for (pi = 0; pi < d->nphases; pi++) {
		if (strcmp(d->phases[pi].name, e->seg[0]) != 0)
			continue;
		if (pi > p->phase_i)
			return perr(p, p->at, "'{{ %s }}' refers to phase '%s', which runs after "
				    "this step", name, e->seg[0]);
		for (si = 0; si < d->phases[pi].nsteps; si++) {
			if (strcmp(d->phases[pi].steps[si].name, e->seg[1]) != 0)
				continue;
			if (pi > p->phase_i || (pi == p->phase_i && si >= p->step_i))
				return perr(p, p->at, "'{{ %s }}' refers to step '%s' which does "
					    "not run before this one", name, e->seg[1]);
			if (e->n < 3 || e->idx[0] >= 0 || e->idx[1] >= 0)
				return perr(p, p->at, "invalid reference '{{ %s }}'", name);
			return 0;
		}
		return perr(p, p->at, "'{{ %s }}' refers to unknown step '%s' in phase '%s'",
			    name, e->seg[1], e->seg[0]);
	}
	return perr(p, p->at, "'{{ %s }}' refers to phase '%s', which the document does not have",
		    name, e->seg[0]);
}

static int visit_ref(const char *name, void *opaque)
{
	struct parser *p = opaque;
	struct expr_path e;
	int r = 0;

	if (expr_path_parse(name, &e) < 0)
		return perr(p, p->at, "%s", err_msg());
	if (e.n == 1) {
		if (e.idx[0] >= 0)
			r = perr(p, p->at, "invalid reference '{{ %s }}'", name);
		else if (!(p->where & REF_PARAMS))
			r = perr(p, p->at, "'{{ %s }}': expressions are not allowed here", name);
		else if (!doc_param(p->doc, name))
			r = perr(p, p->at, "'{{ %s }}': unknown parameter or constant '%s'", name,
				 name);
		goto out;
	}
	if (e.n == 2 && (strcmp(e.seg[1], "index") == 0 || strcmp(e.seg[1], "value") == 0)) {
		bool named = p->step && p->step->loop && p->step->loop->name &&
			     strcmp(p->step->loop->name, e.seg[0]) == 0;
		if (strcmp(e.seg[0], "loop") == 0 || named) {
			if (!(p->where & REF_LOOP))
				r = perr(p, p->at, "'{{ %s }}': loop variables are only allowed in "
					 "the inputs of a step with a loop", name);
			/* In a step without a loop AWSTOE leaves the reference as is. */
			goto out;
		}
	}
	if (e.n >= 3 && is_phase_name(e.seg[0]) &&
	    (strcmp(e.seg[2], "inputs") == 0 || strcmp(e.seg[2], "outputs") == 0)) {
		if (!(p->where & REF_CHAIN))
			r = perr(p, p->at, "'{{ %s }}': step inputs and outputs can only be used "
				 "in step inputs and in the value of a comparison", name);
		else
			r = check_chain_ref(p, &e, name);
		goto out;
	}
	r = perr(p, p->at, "unknown reference '{{ %s }}'", name);
out:
	expr_path_release(&e);
	return r;
}

/* Check every reference in the scalars under n. */
static int check_refs(struct parser *p, const struct ynode *n, int where)
{
	size_t i;

	if (!n)
		return 0;
	switch (n->type) {
	case YNODE_SCALAR:
		p->at = n;
		p->where = where;
		if (expr_scan(n->str, visit_ref, p) < 0) {
			/* malformed references come back without a position */
			if (!str_startswith(err_msg(), p->doc->y.path))
				return perr(p, n, "%s", err_msg());
			return -1;
		}
		return 0;
	case YNODE_SEQ:
		for (i = 0; i < n->nitems; i++)
			if (check_refs(p, n->items[i], where) < 0)
				return -1;
		return 0;
	case YNODE_MAP:
		for (i = 0; i < n->npairs; i++) {
			if (no_expr(p, n->pairs[i].key, n->pairs[i].key->str) < 0 ||
			    check_refs(p, n->pairs[i].value, where) < 0)
				return -1;
		}
		return 0;
	}
	return 0;
}

/* ---- conditions ---- */

struct cond_def {
	const char *name;
	enum cond_op op;
	const char *second;     /* "value", "path" or NULL */
	bool numeric;
};

static const struct cond_def cond_defs[] = {
	{ "and", C_AND, NULL, false }, { "or", C_OR, NULL, false }, { "not", C_NOT, NULL, false },
	{ "stringIsEmpty", C_STR_EMPTY, NULL, false },
	{ "stringIsWhitespace", C_STR_WS, NULL, false },
	{ "stringEquals", C_STR_EQ, "value", false },
	{ "stringLessThan", C_STR_LT, "value", false },
	{ "stringLessThanEquals", C_STR_LE, "value", false },
	{ "stringGreaterThan", C_STR_GT, "value", false },
	{ "stringGreaterThanEquals", C_STR_GE, "value", false },
	{ "patternMatches", C_PATTERN, "value", false },
	{ "numberEquals", C_NUM_EQ, "value", true },
	{ "numberLessThan", C_NUM_LT, "value", true },
	{ "numberLessThanEquals", C_NUM_LE, "value", true },
	{ "numberGreaterThan", C_NUM_GT, "value", true },
	{ "numberGreaterThanEquals", C_NUM_GE, "value", true },
	{ "fileMD5Equals", C_MD5, "path", false },
	{ "fileSHA1Equals", C_SHA1, "path", false },
	{ "fileSHA256Equals", C_SHA256, "path", false },
	{ "fileSHA512Equals", C_SHA512, "path", false },
	{ "binaryExists", C_BIN_EXISTS, NULL, false },
	{ "fileExists", C_FILE_EXISTS, NULL, false },
	{ "folderExists", C_FOLDER_EXISTS, NULL, false },
};

void cond_free(struct cond *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nkids; i++)
		cond_free(c->kids[i]);
	free(c->kids);
	free(c);
}

/* ^[-+]?([0-9]+[.])?[0-9]+$, as the guide defines numbers */
static bool is_number(const char *s)
{
	size_t digits = 0, dots = 0;

	if (*s == '-' || *s == '+')
		s++;
	for (; *s; s++) {
		if (isdigit((unsigned char)*s))
			digits++;
		else if (*s == '.' && digits && !dots && isdigit((unsigned char)s[1]))
			dots++;
		else
			return false;
	}
	return digits > 0;
}

/* extra: keys allowed besides the operator (then/else at the top of `if`). */
static struct cond *parse_cond(struct parser *p, const struct ynode *n, int depth,
			       const char *const *extra)
{
	const struct cond_def *def = NULL;
	const struct ypair *op = NULL;
	struct cond *c = NULL;
	size_t i, j;

	if (depth > COND_DEPTH_MAX) {
		perr(p, n, "conditional expression nested deeper than %d levels", COND_DEPTH_MAX);
		return NULL;
	}
	/* `if: [ {expr} ]`: a one-item list, as the guide's syntax shows */
	if (n && n->type == YNODE_SEQ && n->nitems == 1)
		n = n->items[0];
	if (!n || n->type != YNODE_MAP) {
		perr(p, n, "a conditional expression must be a mapping, not %s", ynode_kind(n));
		return NULL;
	}
	for (i = 0; i < n->npairs; i++) {
		const char *k = n->pairs[i].key->str;
		bool is_extra = strcmp(k, "value") == 0 || strcmp(k, "path") == 0;
		for (j = 0; extra && extra[j] && !is_extra; j++)
			is_extra = strcmp(k, extra[j]) == 0;
		if (is_extra)
			continue;
		for (j = 0; j < ARRAY_SIZE(cond_defs); j++)
			if (strcmp(cond_defs[j].name, k) == 0)
				break;
		if (j == ARRAY_SIZE(cond_defs)) {
			perr(p, n->pairs[i].key, "unknown operator '%s'", k);
			return NULL;
		}
		if (op) {
			perr(p, n->pairs[i].key, "more than one operator ('%s' and '%s') in one "
			     "expression: combine them with 'and' or 'or'", op->key->str, k);
			return NULL;
		}
		op = &n->pairs[i];
		def = &cond_defs[j];
	}
	if (!op) {
		perr(p, n, "conditional expression without an operator");
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->op = def->op;
	c->opname = def->name;
	c->node = op->key;
	/* `value`/`path` only where the operator takes them */
	for (i = 0; i < n->npairs; i++) {
		const char *k = n->pairs[i].key->str;
		if ((strcmp(k, "value") == 0 || strcmp(k, "path") == 0) &&
		    (!def->second || strcmp(def->second, k) != 0)) {
			perr(p, n->pairs[i].key, "'%s' does not take '%s'", def->name, k);
			goto fail;
		}
	}
	if (def->op == C_AND || def->op == C_OR) {
		const struct ynode *l = op->value;
		if (!l || l->type != YNODE_SEQ || l->nitems == 0) {
			perr(p, l ? l : op->key, "'%s' needs a non-empty list of expressions",
			     def->name);
			goto fail;
		}
		c->kids = xcalloc(l->nitems, sizeof(*c->kids));
		for (i = 0; i < l->nitems; i++) {
			if (!(c->kids[c->nkids] = parse_cond(p, l->items[i], depth + 1, NULL)))
				goto fail;
			c->nkids++;
		}
		return c;
	}
	if (def->op == C_NOT) {
		c->kids = xcalloc(1, sizeof(*c->kids));
		if (!op->value || op->value->type != YNODE_MAP) {
			perr(p, op->value ? op->value : op->key,
			     "'not' needs one expression (a mapping), not %s", ynode_kind(op->value));
			goto fail;
		}
		if (!(c->kids[0] = parse_cond(p, op->value, depth + 1, NULL)))
			goto fail;
		c->nkids = 1;
		return c;
	}
	if (!op->value || op->value->type != YNODE_SCALAR) {
		perr(p, op->value ? op->value : op->key, "'%s' needs a string, not %s", def->name,
		     ynode_kind(op->value));
		goto fail;
	}
	c->arg = op->value->str;
	if (check_refs(p, op->value, p->cond_where) < 0)
		goto fail;
	if (def->numeric && !expr_has(c->arg) && !is_number(c->arg)) {
		perr(p, op->value, "'%s': '%s' is not a number", def->name, c->arg);
		goto fail;
	}
	if (def->op == C_PATTERN && !expr_has(c->arg)) {
		regex_t re;
		if (regcomp(&re, c->arg, REG_EXTENDED | REG_NOSUB) != 0) {
			perr(p, op->value, "'patternMatches': invalid regular expression '%s'",
			     c->arg);
			goto fail;
		}
		regfree(&re);
	}
	if (def->second) {
		const struct ynode *v = ymap_get(n, def->second);
		if (!v) {
			perr(p, op->key, "'%s' needs '%s'", def->name, def->second);
			goto fail;
		}
		if (v->type != YNODE_SCALAR) {
			perr(p, v, "'%s' must be a string, not %s", def->second, ynode_kind(v));
			goto fail;
		}
		c->value = v->str;
		if (check_refs(p, v, p->cond_where | REF_CHAIN) < 0)
			goto fail;
	}
	return c;
fail:
	cond_free(c);
	return NULL;
}

static int parse_branch(struct parser *p, const struct ynode *n, const char *key,
			enum branch *out)
{
	const char *s;

	if (want_scalar(p, n, key, &s) < 0)
		return -1;
	if (strcmp(s, "Execute") == 0)
		*out = BR_EXECUTE;
	else if (strcmp(s, "Skip") == 0)
		*out = BR_SKIP;
	else if (strcmp(s, "Abort") == 0)
		*out = BR_ABORT;
	else
		return perr(p, n, "'%s' must be Execute, Skip or Abort, not '%s'", key, s);
	return 0;
}

static int parse_if(struct parser *p, struct comp_step *st, const struct ynode *n)
{
	static const char *const extra[] = { "then", "else", NULL };
	const struct ynode *m = n && n->type == YNODE_SEQ && n->nitems == 1 ? n->items[0] : n;
	const struct ynode *t, *e;

	st->cond = xcalloc(1, sizeof(*st->cond));
	st->cond->then_ = BR_EXECUTE;
	st->cond->else_ = BR_SKIP;
	if (!(st->cond->expr = parse_cond(p, n, 1, extra)))
		return -1;
	if ((t = ymap_get(m, "then")) && parse_branch(p, t, "then", &st->cond->then_) < 0)
		return -1;
	if ((e = ymap_get(m, "else")) && parse_branch(p, e, "else", &st->cond->else_) < 0)
		return -1;
	return 0;
}

/* ---- loops ---- */

static int parse_loop(struct parser *p, struct comp_step *st, const struct ynode *n)
{
	static const char *const keys[] = { "name", "for", "forEach", NULL };
	const struct ynode *f, *fe, *nm;
	struct step_loop *l;

	if (!n || n->type != YNODE_MAP)
		return perr(p, n, "'loop' must be a mapping, not %s", ynode_kind(n));
	if (check_keys(p, n, "loop", keys) < 0)
		return -1;
	l = st->loop = xcalloc(1, sizeof(*l));
	if ((nm = ymap_get(n, "name"))) {
		size_t i;
		if (want_scalar(p, nm, "name", &l->name) < 0 || no_expr(p, nm, "name") < 0)
			return -1;
		for (i = 0; l->name[i]; i++)
			if (!isalnum((unsigned char)l->name[i]) && l->name[i] != '_' &&
			    l->name[i] != '-')
				return perr(p, nm, "loop name '%s' may only contain letters, "
					    "digits, '_' and '-'", l->name);
		if (strcmp(l->name, "loop") == 0)
			return perr(p, nm, "'loop' is reserved and cannot name a loop");
	}
	f = ymap_get(n, "for");
	fe = ymap_get(n, "forEach");
	if (!!f == !!fe)
		return perr(p, n, "'loop' needs exactly one of 'for' and 'forEach'");
	if (f) {
		static const char *const fkeys[] = { "start", "end", "updateBy", NULL };
		const struct ynode *u;
		int64_t count;
		if (f->type != YNODE_MAP)
			return perr(p, f, "'for' must be a mapping, not %s", ynode_kind(f));
		if (check_keys(p, f, "for", fkeys) < 0)
			return -1;
		l->kind = LOOP_FOR;
		if (!ymap_get(f, "start"))
			return perr(p, f, "'for' needs 'start'");
		if (!ymap_get(f, "end"))
			return perr(p, f, "'for' needs 'end'");
		if (want_int(p, ymap_get(f, "start"), "start", INT32_MIN, INT32_MAX, &l->start) < 0 ||
		    want_int(p, ymap_get(f, "end"), "end", INT32_MIN, INT32_MAX, &l->end) < 0)
			return -1;
		l->update = 1;
		if ((u = ymap_get(f, "updateBy")) &&
		    want_int(p, u, "updateBy", INT32_MIN, INT32_MAX, &l->update) < 0)
			return -1;
		if (l->update == 0)
			return perr(p, u, "'updateBy' must not be 0 (the loop would never end)");
		if ((l->end - l->start) * l->update < 0)
			return perr(p, u ? u : f, "'updateBy' %" PRId64 " never reaches 'end' %"
				    PRId64 " from 'start' %" PRId64, l->update, l->end, l->start);
		count = (l->end - l->start) / l->update + 1;
		if (count > LOOP_ITER_MAX)
			return perr(p, f, "loop of %" PRId64 " iterations (at most %d)", count,
				    LOOP_ITER_MAX);
		return 0;
	}
	if (fe->type == YNODE_SEQ) {
		size_t i;
		if (fe->nitems == 0)
			return perr(p, fe, "'forEach' list is empty");
		if (fe->nitems > LOOP_ITER_MAX)
			return perr(p, fe, "'forEach' list longer than %d", LOOP_ITER_MAX);
		for (i = 0; i < fe->nitems; i++)
			if (fe->items[i]->type != YNODE_SCALAR)
				return perr(p, fe->items[i], "'forEach' items must be strings, "
					    "not %s", ynode_kind(fe->items[i]));
		l->kind = LOOP_LIST;
		l->list = fe;
		return check_refs(p, fe, REF_PARAMS);
	}
	if (fe->type == YNODE_MAP) {
		static const char *const dkeys[] = { "list", "delimiter", NULL };
		static const char delims[] = ".,;:\n\t -_";
		const struct ynode *li = ymap_get(fe, "list"), *de = ymap_get(fe, "delimiter");
		const char *d;
		if (check_keys(p, fe, "forEach", dkeys) < 0)
			return -1;
		if (!li)
			return perr(p, fe, "'forEach' needs 'list'");
		if (!de)
			return perr(p, fe, "'forEach' needs 'delimiter'");
		if (want_scalar(p, li, "list", &l->joined) < 0 ||
		    want_scalar(p, de, "delimiter", &d) < 0)
			return -1;
		if (strlen(d) != 1 || !strchr(delims, d[0]))
			return perr(p, de, "'delimiter' must be one character of . , ; : - _ "
				    "space, newline or tab, not '%s'", d);
		l->kind = LOOP_DELIMITED;
		l->delim = d[0];
		return check_refs(p, li, REF_PARAMS);
	}
	return perr(p, fe, "'forEach' must be a list or a mapping with 'list' and 'delimiter', "
		    "not %s", ynode_kind(fe));
}

/* ---- action inputs ---- */

static int check_input_value(struct parser *p, const struct input_def *d, const struct ynode *v)
{
	size_t i;
	bool b;
	int64_t x;

	switch (d->type) {
	case IN_STR:
		if (v->type != YNODE_SCALAR)
			return perr(p, v, "input '%s' must be a string, not %s", d->key,
				    ynode_kind(v));
		return 0;
	case IN_BOOL:
		if (v->type != YNODE_SCALAR ||
		    (!expr_has(v->str) && !doc_parse_bool(v->str, &b)))
			return perr(p, v, "input '%s' must be true or false", d->key);
		return 0;
	case IN_INT:
		if (v->type != YNODE_SCALAR ||
		    (!expr_has(v->str) && parse_i64(v->str, INT32_MIN, INT32_MAX, &x) < 0))
			return perr(p, v, "input '%s' must be an integer", d->key);
		return 0;
	case IN_STRLIST:
		if (v->type != YNODE_SEQ)
			return perr(p, v, "input '%s' must be a list of strings, not %s", d->key,
				    ynode_kind(v));
		for (i = 0; i < v->nitems; i++)
			if (v->items[i]->type != YNODE_SCALAR)
				return perr(p, v->items[i], "input '%s': items must be strings, "
					    "not %s", d->key, ynode_kind(v->items[i]));
		return 0;
	case IN_PARAMLIST:
		if (v->type != YNODE_SEQ)
			return perr(p, v, "input '%s' must be a list of {name, value}", d->key);
		for (i = 0; i < v->nitems; i++) {
			static const char *const pk[] = { "name", "value", NULL };
			const struct ynode *it = v->items[i];
			if (it->type != YNODE_MAP || !ymap_get(it, "name"))
				return perr(p, it, "input '%s': items must be {name, value}", d->key);
			if (check_keys(p, it, "parameters", pk) < 0)
				return -1;
		}
		return 0;
	}
	return 0;
}

static int check_input_map(struct parser *p, const struct action_def *a, const struct ynode *m)
{
	const struct input_def *d;
	size_t i;

	if (m->type != YNODE_MAP)
		return perr(p, m, "%s inputs must be a mapping, not %s", a->name, ynode_kind(m));
	for (i = 0; i < m->npairs; i++) {
		for (d = a->inputs; d->key; d++)
			if (strcmp(d->key, m->pairs[i].key->str) == 0)
				break;
		if (!d->key) {
			const char *words[64], *hint;
			size_t n = 0;

			for (d = a->inputs; d->key && n < ARRAY_SIZE(words); d++)
				words[n++] = d->key;
			/* A near miss of a known input is a typo: refused. An input
			 * unlike any this action takes (documents written for other
			 * AWSTOE versions, e.g. DeleteFile's 'force' in AWS's own
			 * samples) is ignored, with a warning at its position. */
			hint = closest_word(m->pairs[i].key->str, words, n);
			if (hint)
				return perr(p, m->pairs[i].key, "unknown input '%s' for %s; did you mean '%s'?",
					    m->pairs[i].key->str, a->name, hint);
			log_warn("%s:%d:%d: %s%sunknown input '%s' for %s: ignored",
				 p->doc->y.path ? p->doc->y.path : "<input>", m->pairs[i].key->line,
				 m->pairs[i].key->col, p->ctx ? p->ctx : "", p->ctx ? ": " : "",
				 m->pairs[i].key->str, a->name);
			continue;
		}
		if (check_input_value(p, d, m->pairs[i].value) < 0)
			return -1;
	}
	for (d = a->inputs; d->key; d++)
		if (d->required && !ymap_get(m, d->key))
			return perr(p, m, "%s needs input '%s'", a->name, d->key);
	return 0;
}

static int check_execute_document(struct parser *p, struct comp_step *st)
{
	const struct ynode *dn = ymap_get(st->inputs, "document");
	const struct ynode *ph = ymap_get(st->inputs, "phases");
	const struct ynode *pa = ymap_get(st->inputs, "parameters");
	size_t i;

	if (ph && !expr_has(ph->str)) {
		char *s = xstrdup(ph->str), *save = NULL, *tok;
		int r = 0;
		for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			while (isspace((unsigned char)*tok))
				tok++;
			if (!is_phase_name(tok)) {
				r = perr(p, ph, "ExecuteDocument: unknown phase '%s' in 'phases'", tok);
				break;
			}
		}
		free(s);
		if (r < 0)
			return -1;
	}
	if (expr_has(dn->str) || str_startswith(dn->str, "s3://"))
		return 0;    /* resolved at run time */
	{
		struct doc_chain here = { p->doc->realpath, p->chain };
		st->child = doc_load_child(dn->str, p->doc, &here);
		if (!st->child)
			return perr(p, dn, "ExecuteDocument '%s': %s", dn->str, err_msg());
	}
	for (i = 0; pa && i < pa->nitems; i++) {
		const struct ynode *nm = ymap_get(pa->items[i], "name");
		if (nm->type != YNODE_SCALAR || !doc_param(st->child, nm->str))
			return perr(p, nm, "ExecuteDocument: '%s' has no parameter '%s'",
				    dn->str, yscalar(nm) ? nm->str : "?");
		if (doc_param(st->child, nm->str)->constant)
			return perr(p, nm, "ExecuteDocument: '%s' is a constant of '%s'",
				    nm->str, dn->str);
	}
	return 0;
}

static int check_inputs(struct parser *p, struct comp_step *st, const struct ynode *key)
{
	const struct action_def *a = st->action;
	const struct ynode *in = st->inputs;
	int where = REF_PARAMS | REF_CHAIN | (st->loop ? REF_LOOP : 0);
	size_t i;

	if (!in || ynode_is_null(in)) {
		if (a->shape == SHAPE_NONE) {
			st->inputs = NULL;
			return 0;
		}
		return perr(p, key, "%s needs 'inputs'", a->name);
	}
	if (check_refs(p, in, where) < 0)
		return -1;
	switch (a->shape) {
	case SHAPE_COND:
		/* Assert: its expression is the step's inputs, where chaining and
		 * loop variables are allowed */
		p->cond_where = where;
		st->assert_expr = parse_cond(p, in, 1, NULL);
		p->cond_where = REF_PARAMS;
		return st->assert_expr ? 0 : -1;
	case SHAPE_NONE:
	case SHAPE_MAP:
		if (check_input_map(p, a, in) < 0)
			return -1;
		if (a->flags & ACT_RUNS_DOCUMENT)
			return check_execute_document(p, st);
		return 0;
	case SHAPE_LIST:
		if (in->type == YNODE_MAP)
			return check_input_map(p, a, in);
		if (in->type != YNODE_SEQ || in->nitems == 0)
			return perr(p, in, "%s inputs must be a list of mappings, not %s",
				    a->name, in->type == YNODE_SEQ ? "an empty list" : ynode_kind(in));
		for (i = 0; i < in->nitems; i++)
			if (check_input_map(p, a, in->items[i]) < 0)
				return -1;
		return 0;
	}
	return 0;
}

/* ---- steps, phases, document ---- */

static void step_release(struct comp_step *st)
{
	if (st->cond)
		cond_free(st->cond->expr);
	free(st->cond);
	free(st->loop);
	cond_free(st->assert_expr);
	doc_free(st->child);
}

static int parse_step(struct parser *p, struct comp_phase *ph, size_t si, const struct ynode *n)
{
	static const char *const keys[] = { "name", "action", "inputs", "timeoutSeconds",
		"onFailure", "maxAttempts", "loop", "if", NULL };
	struct comp_step *st = &ph->steps[si];
	const struct ynode *v;
	const char *s;
	size_t i;
	char ctx[256];

	st->node = n;
	st->timeout_s = STEP_TIMEOUT_DEFAULT;
	st->onfail = ONFAIL_ABORT;
	st->max_attempts = 1;
	snprintf(ctx, sizeof(ctx), "phase '%s', step %zu", ph->name, si + 1);
	p->ctx = ctx;
	if (!n || n->type != YNODE_MAP)
		return perr(p, n, "a step must be a mapping, not %s", ynode_kind(n));
	if (!(v = ymap_get(n, "name")))
		return perr(p, n, "step without 'name'");
	if (want_scalar(p, v, "name", &st->name) < 0 || no_expr(p, v, "name") < 0)
		return -1;
	if (strpbrk(st->name, ".{}[]"))
		return perr(p, v, "step name '%s' must not contain '.', '{', '}', '[' or ']'",
			    st->name);
	for (i = 0; i < si; i++)
		if (strcmp(ph->steps[i].name, st->name) == 0)
			return perr(p, v, "duplicate step name '%s' in phase '%s'", st->name,
				    ph->name);
	snprintf(ctx, sizeof(ctx), "phase '%s', step '%s'", ph->name, st->name);
	if (check_keys(p, n, "a step", keys) < 0)
		return -1;
	p->step = st;
	p->step_i = si;
	if (!(v = ymap_get(n, "action")))
		return perr(p, n, "step without 'action'");
	if (want_scalar(p, v, "action", &s) < 0 || no_expr(p, v, "action") < 0)
		return -1;
	if (action_windows_only(s))
		return perr(p, v, "action '%s' is not supported on Linux", s);
	if (!(st->action = action_find(s))) {
		const char *hint = action_closest(s);

		if (hint)
			return perr(p, v, "unknown action '%s'; did you mean '%s'?", s, hint);
		return perr(p, v, "unknown action '%s'", s);
	}
	if ((v = ymap_get(n, "timeoutSeconds"))) {
		if (want_int(p, v, "timeoutSeconds", INT32_MIN, INT32_MAX, &st->timeout_s) < 0)
			return -1;
		if (st->timeout_s == 0 || st->timeout_s < -1)
			return perr(p, v, "'timeoutSeconds': %" PRId64 " is invalid (a positive "
				    "number of seconds, or -1 for none)", st->timeout_s);
	}
	if ((v = ymap_get(n, "onFailure"))) {
		if (want_scalar(p, v, "onFailure", &s) < 0 || no_expr(p, v, "onFailure") < 0)
			return -1;
		if (strcmp(s, "Abort") == 0)
			st->onfail = ONFAIL_ABORT;
		else if (strcmp(s, "Continue") == 0)
			st->onfail = ONFAIL_CONTINUE;
		else if (strcmp(s, "Ignore") == 0)
			st->onfail = ONFAIL_IGNORE;
		else
			return perr(p, v, "'onFailure' must be Abort, Continue or Ignore, not '%s'",
				    s);
	}
	if ((v = ymap_get(n, "maxAttempts"))) {
		int64_t m;
		if (want_int(p, v, "maxAttempts", 1, STEP_ATTEMPTS_MAX, &m) < 0)
			return -1;
		st->max_attempts = (int)m;
	}
	if ((v = ymap_get(n, "loop")) && parse_loop(p, st, v) < 0)
		return -1;
	if ((v = ymap_get(n, "if")) && parse_if(p, st, v) < 0)
		return -1;
	st->inputs = ymap_get(n, "inputs");
	return check_inputs(p, st, ymap_pair(n, "action")->key);
}

static int parse_phases(struct parser *p, const struct ynode *n)
{
	struct comp_doc *d = p->doc;
	size_t i, j;

	if (!n)
		return perr(p, d->y.root, "the document needs 'phases'");
	if (n->type != YNODE_SEQ || n->nitems == 0)
		return perr(p, n, "'phases' must be a non-empty list, not %s",
			    n->type == YNODE_SEQ ? "an empty list" : ynode_kind(n));
	d->phases = xcalloc(n->nitems, sizeof(*d->phases));
	/* names first: references may point to any earlier phase */
	for (i = 0; i < n->nitems; i++) {
		static const char *const keys[] = { "name", "steps", NULL };
		const struct ynode *ph = n->items[i], *nm, *steps;
		struct comp_phase *cp = &d->phases[i];
		if (ph->type != YNODE_MAP)
			return perr(p, ph, "a phase must be a mapping, not %s", ynode_kind(ph));
		if (check_keys(p, ph, "a phase", keys) < 0)
			return -1;
		if (!(nm = ymap_get(ph, "name")))
			return perr(p, ph, "phase without 'name'");
		if (want_scalar(p, nm, "name", &cp->name) < 0 || no_expr(p, nm, "name") < 0)
			return -1;
		if (!is_phase_name(cp->name))
			return perr(p, nm, "unknown phase '%s' (build, validate or test)", cp->name);
		for (j = 0; j < i; j++)
			if (strcmp(d->phases[j].name, cp->name) == 0)
				return perr(p, nm, "duplicate phase '%s'", cp->name);
		steps = ymap_get(ph, "steps");
		if (!steps)
			return perr(p, ph, "phase '%s' without 'steps'", cp->name);
		if (steps->type != YNODE_SEQ || steps->nitems == 0)
			return perr(p, steps, "phase '%s': 'steps' must be a non-empty list",
				    cp->name);
		cp->node = ph;
		d->nphases++;
	}
	for (i = 0; i < d->nphases; i++) {
		struct comp_phase *cp = &d->phases[i];
		const struct ynode *steps = ymap_get(n->items[i], "steps");
		cp->steps = xcalloc(steps->nitems, sizeof(*cp->steps));
		cp->nsteps = steps->nitems;
		/* step names first (chaining checks look at them) */
		for (j = 0; j < steps->nitems; j++) {
			const struct ynode *sn = ymap_get(steps->items[j], "name");
			cp->steps[j].name = yscalar(sn) ? sn->str : "";
		}
		p->phase_i = i;
		for (j = 0; j < steps->nitems; j++) {
			if (parse_step(p, cp, j, steps->items[j]) < 0)
				return -1;
		}
		p->ctx = NULL;
		p->step = NULL;
	}
	return 0;
}

static int parse_params(struct parser *p, const struct ynode *n, bool constant)
{
	static const char *const pkeys[] = { "type", "default", "description", NULL };
	static const char *const ckeys[] = { "type", "value", "description", NULL };
	const char *what = constant ? "constants" : "parameters";
	struct comp_doc *d = p->doc;
	size_t i, j;

	if (ynode_is_null(n))
		return 0;
	if (n->type != YNODE_SEQ)
		return perr(p, n, "'%s' must be a list, not %s", what, ynode_kind(n));
	d->params = xrealloc(d->params, (d->nparams + n->nitems) * sizeof(*d->params));
	for (i = 0; i < n->nitems; i++) {
		const struct ynode *it = n->items[i], *body, *t, *v;
		struct comp_param *cp = &d->params[d->nparams];
		if (it->type != YNODE_MAP || it->npairs != 1)
			return perr(p, it, "each of '%s' must be a mapping 'Name: {type: string, "
				    "%s: ...}'", what, constant ? "value" : "default");
		memset(cp, 0, sizeof(*cp));
		cp->name = it->pairs[0].key->str;
		cp->node = it->pairs[0].key;
		cp->constant = constant;
		if (!valid_var_name(cp->name))
			return perr(p, cp->node, "invalid name '%s': %d to %d letters, digits, "
				    "'_' or '-'", cp->name, DOC_NAME_MIN, DOC_NAME_MAX);
		for (j = 0; j < d->nparams; j++)
			if (strcmp(d->params[j].name, cp->name) == 0)
				return perr(p, cp->node, "duplicate parameter or constant '%s'",
					    cp->name);
		body = it->pairs[0].value;
		if (!body || body->type != YNODE_MAP)
			return perr(p, body ? body : cp->node, "'%s' must be a mapping with "
				    "'type'", cp->name);
		if (check_keys(p, body, cp->name, constant ? ckeys : pkeys) < 0)
			return -1;
		if (!(t = ymap_get(body, "type")))
			return perr(p, body, "'%s' needs 'type: string'", cp->name);
		if (t->type != YNODE_SCALAR || strcmp(t->str, "string") != 0)
			return perr(p, t, "'%s': type must be 'string'", cp->name);
		v = ymap_get(body, constant ? "value" : "default");
		if (constant && !v)
			return perr(p, body, "constant '%s' needs 'value'", cp->name);
		if (v) {
			if (v->type != YNODE_SCALAR)
				return perr(p, v, "'%s': %s must be a string, not %s", cp->name,
					    constant ? "value" : "default", ynode_kind(v));
			if (no_expr(p, v, constant ? "value" : "default") < 0)
				return -1;
			cp->value = v->str;
		}
		if ((v = ymap_get(body, "description")))
			cp->description = yscalar(v);
		d->nparams++;
	}
	return 0;
}

static int parse_doc(struct parser *p)
{
	static const char *const keys[] = { "name", "description", "schemaVersion",
		"parameters", "constants", "phases", NULL };
	struct comp_doc *d = p->doc;
	const struct ynode *r = d->y.root, *v;

	if (!r || ynode_is_null(r))
		return perr(p, r, "empty document");
	if (r->type != YNODE_MAP)
		return perr(p, r, "a component document must be a mapping, not %s", ynode_kind(r));
	if (!ymap_get(r, "phases") && (v = ymap_get(r, "components")) && ymap_get(r, "parent"))
		return perr(p, v, "this is an amiforge recipe, not a component document: check it "
			    "with 'amiforge validate'");
	if (check_keys(p, r, "the document", keys) < 0)
		return -1;
	if ((v = ymap_get(r, "name")) && (want_scalar(p, v, "name", &d->name) < 0 ||
					  no_expr(p, v, "name") < 0))
		return -1;
	if ((v = ymap_get(r, "description")))
		d->description = yscalar(v);
	if (!(v = ymap_get(r, "schemaVersion")))
		return perr(p, r, "the document needs 'schemaVersion: 1.0'");
	if (v->type != YNODE_SCALAR || (strcmp(v->str, "1.0") != 0 && strcmp(v->str, "1") != 0))
		return perr(p, v, "unsupported schemaVersion '%s' (expected 1.0)",
			    yscalar(v) ? v->str : ynode_kind(v));
	if ((v = ymap_get(r, "parameters")) && parse_params(p, v, false) < 0)
		return -1;
	if ((v = ymap_get(r, "constants")) && parse_params(p, v, true) < 0)
		return -1;
	return parse_phases(p, ymap_get(r, "phases"));
}

static struct comp_doc *finish_load(struct comp_doc *d, const struct doc_chain *chain)
{
	struct parser p = { .doc = d, .chain = chain, .cond_where = REF_PARAMS };

	if (parse_doc(&p) < 0) {
		doc_free(d);
		return NULL;
	}
	return d;
}

static struct comp_doc *load_path(const char *path, int depth, const struct doc_chain *chain)
{
	struct comp_doc *d = xcalloc(1, sizeof(*d));
	char *tmp, *rp;
	const struct doc_chain *c;

	d->depth = depth;
	if (ydoc_load_file(&d->y, path) < 0) {
		doc_free(d);
		return NULL;
	}
	rp = realpath(path, NULL);
	d->realpath = rp ? rp : xstrdup(path);
	tmp = xstrdup(path);
	d->dir = xstrdup(dirname(tmp));
	free(tmp);
	for (c = chain; c; c = c->up) {
		if (strcmp(c->realpath, d->realpath) == 0) {
			err_set("document includes itself (cycle through '%s')", path);
			doc_free(d);
			return NULL;
		}
	}
	return finish_load(d, chain);
}

struct comp_doc *doc_load(const char *path)
{
	return load_path(path, 0, NULL);
}

struct comp_doc *doc_load_child(const char *path, const struct comp_doc *parent,
				const struct doc_chain *chain)
{
	struct comp_doc *d;
	char *full;

	if (parent->depth + 1 > DOC_NEST_MAX) {
		err_set("documents nested deeper than %d levels", DOC_NEST_MAX);
		return NULL;
	}
	{	/* an Image Builder ARN or NAME/VERSION: from the catalog */
		char *name = NULL, *version = NULL;
		struct catalog_entry e;

		if (str_startswith(path, "arn:")) {
			if (catalog_parse_arn(path, &name, &version) < 0)
				return NULL;
		} else if (!catalog_parse_ref(path, &name, &version)) {
			name = NULL;
		}
		if (name) {
			int r = catalog_resolve(NULL, name, version, &e);

			free(name);
			free(version);
			if (r < 0)
				return NULL;
			d = load_path(e.path, parent->depth + 1, chain);
			catalog_entry_release(&e);
			return d;
		}
	}
	full = path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", parent->dir, path);
	d = load_path(full, parent->depth + 1, chain);
	free(full);
	return d;
}

struct comp_doc *doc_load_string(const char *name, const char *data, size_t len)
{
	struct comp_doc *d = xcalloc(1, sizeof(*d));

	d->dir = xstrdup(".");
	d->realpath = xstrdup(name);
	if (ydoc_load_string(&d->y, name, data, len) < 0) {
		doc_free(d);
		return NULL;
	}
	return finish_load(d, NULL);
}

void doc_free(struct comp_doc *d)
{
	size_t i, j;

	if (!d)
		return;
	for (i = 0; i < d->nphases; i++) {
		for (j = 0; j < d->phases[i].nsteps; j++)
			step_release(&d->phases[i].steps[j]);
		free(d->phases[i].steps);
	}
	free(d->phases);
	free(d->params);
	free(d->dir);
	free(d->realpath);
	ydoc_release(&d->y);
	free(d);
}

const struct comp_param *doc_param(const struct comp_doc *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->nparams; i++)
		if (strcmp(d->params[i].name, name) == 0)
			return &d->params[i];
	return NULL;
}

const struct comp_phase *doc_phase(const struct comp_doc *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->nphases; i++)
		if (strcmp(d->phases[i].name, name) == 0)
			return &d->phases[i];
	return NULL;
}

const char *doc_display_name(const struct comp_doc *d)
{
	const char *s;

	if (d->name)
		return d->name;
	s = strrchr(d->y.path, '/');
	return s ? s + 1 : d->y.path;
}
