/* pipeline.c: read and check a pipeline file (pipeline.h). */
#include <ctype.h>
#include <libgen.h>

#include "pipeline.h"
#include "builder/build/build.h"
#include "builder/recipe/recipe.h"
#include "buf.h"
#include "error.h"
#include "util.h"

static const char *const top_keys[] = { "pipeline", "recipe", "vars", "schedule", "state",
					"builds", "profile", "notifications", "distribution",
					"lifecycle" };
static const char *const schedule_keys[] = { "expression", "timezone", "condition" };
static const char *const notify_keys[] = { "sns", "webhooks", "commands" };
static const char *const webhook_keys[] = { "url", "retries", "timeout" };
static const char *const dist_keys[] = { "launch_templates", "ssm_parameters",
					 "license_configurations" };
static const char *const lt_keys[] = { "region", "id", "name", "default" };
static const char *const ssm_keys[] = { "region", "name" };
static const char *const lic_keys[] = { "region", "arns" };
static const char *const lc_keys[] = { "regions", "exclude_tags", "rules" };
static const char *const rule_keys[] = { "action", "keep_last", "older_than",
					 "retain_at_least" };
static const char *const conditions[] = { "always", "onlyIfUpdated" };
static const char *const actions[] = { "deprecate", "disable", "delete" };

struct pctx {
	struct pipeline *p;
	const struct ydoc *doc;
};

const char *lc_action_name(enum lc_action a)
{
	return a >= LC_DEPRECATE && a <= LC_DELETE ? actions[a - 1] : "none";
}

bool pipeline_doc_is_pipeline(const struct ydoc *doc)
{
	return doc->root && doc->root->type == YNODE_MAP && ymap_get(doc->root, "pipeline");
}

char *arn_region(const char *arn)
{
	const char *p = arn;
	int i;

	if (!str_startswith(arn, "arn:"))
		return NULL;
	for (i = 0; i < 3; i++) {
		p = strchr(p, ':');
		if (!p)
			return NULL;
		p++;
	}
	return xstrndup(p, strcspn(p, ":"));
}

/* ---- small checks ----------------------------------------------------- */

static int want(const struct pctx *c, const struct ynode *n, enum ynode_type t,
		const char *what)
{
	static const char *const kind[] = { "a string", "a list", "a mapping" };

	if (!n || n->type != t)
		return yerr(c->doc, n, "%s must be %s, not %s", what, kind[t], ynode_kind(n));
	return 0;
}

static int str(const struct pctx *c, const struct ynode *n, const char *what, char **out)
{
	if (want(c, n, YNODE_SCALAR, what) < 0)
		return -1;
	if (n->len != strlen(n->str) || str_has_ctl(n->str, n->len, false))
		return yerr(c->doc, n, "%s holds control characters", what);
	if (!*n->str)
		return yerr(c->doc, n, "%s is empty", what);
	*out = xstrdup(n->str);
	return 0;
}

static int boolean(const struct pctx *c, const struct ynode *n, const char *what, bool *b)
{
	const char *s = yscalar(n);

	if (s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0))
		*b = true;
	else if (s && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0))
		*b = false;
	else
		return yerr(c->doc, n, "%s must be true or false", what);
	return 0;
}

static int integer(const struct pctx *c, const struct ynode *n, const char *what, int64_t lo,
		   int64_t hi, int64_t *v)
{
	const char *s = yscalar(n);

	if (!s || parse_i64(s, lo, hi, v) < 0)
		return yerr(c->doc, n, "%s must be a whole number %" PRId64 "-%" PRId64, what, lo,
			    hi);
	return 0;
}

static int word(const struct pctx *c, const struct ynode *n, const char *what,
		const char *const *words, size_t nwords, size_t *idx)
{
	const char *s = yscalar(n), *hint;
	size_t i;

	if (!s)
		return yerr(c->doc, n, "%s must be a string, not %s", what, ynode_kind(n));
	for (i = 0; i < nwords; i++)
		if (strcmp(s, words[i]) == 0) {
			*idx = i;
			return 0;
		}
	{
		struct buf list = BUF_INIT(1024);
		int r;

		for (i = 0; i < nwords; i++)
			buf_printf(&list, "%s%s", i ? ", " : "", words[i]);
		hint = closest_word(s, words, nwords);
		r = yerr(c->doc, n, "%s '%s' is not one of %s%s%s%s", what, s, list.data,
			 hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
		buf_release(&list);
		return r;
	}
}

static bool region_ok(const char *s)
{
	size_t i, dashes = 0;

	if (strlen(s) < 6 || strlen(s) > 32 || !islower((unsigned char)s[0]))
		return false;
	for (i = 0; s[i]; i++) {
		if (s[i] == '-')
			dashes++;
		else if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]))
			return false;
	}
	return dashes >= 2 && isdigit((unsigned char)s[i - 1]) && s[i - 2] == '-';
}

static int region(const struct pctx *c, const struct ynode *n, const char *what, char **out)
{
	if (str(c, n, what, out) < 0)
		return -1;
	if (!region_ok(*out)) {
		yerr(c->doc, n, "%s '%s' is not an AWS region name (like eu-west-1)", what, *out);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static bool all_hex(const char *s, size_t min, size_t max)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return i >= min && i <= max;
}

/* The list at n, or an error; a missing node is an empty list. */
static int list(const struct pctx *c, const struct ynode *n, const char *what, size_t max)
{
	if (!n)
		return 0;
	if (want(c, n, YNODE_SEQ, what) < 0)
		return -1;
	if (n->nitems > max)
		return yerr(c->doc, n, "%s has %zu entries; at most %zu", what, n->nitems, max);
	return 0;
}

static char *abs_path(const struct pctx *c, const char *s)
{
	return s[0] == '/' ? xstrdup(s) : xasprintf("%s/%s", c->p->dir, s);
}

/* "30d", "2 weeks", "12h", "6 months" (30 days), "1y" (365 days). */
static int age(const struct pctx *c, const struct ynode *n, int64_t *secs)
{
	static const struct { const char *u; int64_t s; } units[] = {
		{ "h", 3600 }, { "hour", 3600 }, { "hours", 3600 },
		{ "d", 86400 }, { "day", 86400 }, { "days", 86400 },
		{ "w", 7 * 86400 }, { "week", 7 * 86400 }, { "weeks", 7 * 86400 },
		{ "month", 30 * 86400 }, { "months", 30 * 86400 },
		{ "y", 365 * 86400 }, { "year", 365 * 86400 }, { "years", 365 * 86400 },
	};
	const char *s = yscalar(n), *u;
	char num[16];
	int64_t v;
	size_t i, k;

	if (!s)
		goto bad;
	for (k = 0; isdigit((unsigned char)s[k]) && k < sizeof(num) - 1; k++)
		num[k] = s[k];
	num[k] = '\0';
	u = s + k;
	while (*u == ' ')
		u++;
	if (!k || parse_i64(num, 1, 100000, &v) < 0)
		goto bad;
	for (i = 0; i < ARRAY_SIZE(units); i++)
		if (strcmp(u, units[i].u) == 0) {
			*secs = v * units[i].s;
			return 0;
		}
bad:
	return yerr(c->doc, n, "older_than must be a number and a unit (h, d, w, months, y), "
		    "like 30d");
}

/* ---- sections ----------------------------------------------------------- */

static int parse_schedule(struct pctx *c, const struct ynode *n)
{
	struct pipeline *p = c->p;
	const struct ynode *e, *tz, *cond;
	char *tzs = NULL;
	size_t idx;
	int r = -1;

	if (want(c, n, YNODE_MAP, "schedule") < 0 ||
	    ymap_check_keys(c->doc, n, "schedule", schedule_keys, ARRAY_SIZE(schedule_keys)) < 0)
		return -1;
	e = ymap_get(n, "expression");
	tz = ymap_get(n, "timezone");
	cond = ymap_get(n, "condition");
	if (cond) {
		if (word(c, cond, "schedule.condition", conditions, ARRAY_SIZE(conditions), &idx) < 0)
			return -1;
		p->condition = idx ? PIPELINE_ONLY_IF_UPDATED : PIPELINE_ALWAYS;
	}
	if (tz && str(c, tz, "schedule.timezone", &tzs) < 0)
		goto cleanup;
	if (!e) {
		if (tz) {
			yerr(c->doc, tz, "schedule.timezone without schedule.expression");
			goto cleanup;
		}
		r = 0;
		goto cleanup;
	}
	if (str(c, e, "schedule.expression", &p->expression) < 0)
		goto cleanup;
	if (cron_parse(p->expression, tzs, &p->cron) < 0) {
		char *m = xstrdup(err_msg());

		yerr(c->doc, strstr(m, "timezone") == m ? tz : e, "%s", m);
		free(m);
		goto cleanup;
	}
	p->scheduled = true;
	r = 0;
cleanup:
	free(tzs);
	return r;
}

static int parse_notifications(struct pctx *c, const struct ynode *n)
{
	struct pipeline *p = c->p;
	const struct ynode *sns, *wh, *cmd;
	struct strv v = STRV_INIT;
	size_t i, k;
	int r = -1;

	if (want(c, n, YNODE_MAP, "notifications") < 0 ||
	    ymap_check_keys(c->doc, n, "notifications", notify_keys, ARRAY_SIZE(notify_keys)) < 0)
		return -1;
	sns = ymap_get(n, "sns");
	wh = ymap_get(n, "webhooks");
	cmd = ymap_get(n, "commands");
	if (list(c, sns, "notifications.sns", PIPELINE_LIST_MAX) < 0 ||
	    list(c, wh, "notifications.webhooks", PIPELINE_LIST_MAX) < 0 ||
	    list(c, cmd, "notifications.commands", PIPELINE_LIST_MAX) < 0)
		return -1;
	for (i = 0; sns && i < sns->nitems; i++) {
		char *arn = NULL, *reg;

		if (str(c, sns->items[i], "an SNS topic ARN", &arn) < 0)
			goto cleanup;
		strv_push(&v, arn);
		reg = arn_region(arn);
		if (!str_startswith(arn, "arn:aws") || !strstr(arn, ":sns:") || !reg ||
		    !region_ok(reg)) {
			free(reg);
			free(arn);
			yerr(c->doc, sns->items[i], "'%s' is not an SNS topic ARN "
			     "(arn:aws:sns:REGION:ACCOUNT:NAME)", sns->items[i]->str);
			goto cleanup;
		}
		free(reg);
		free(arn);
	}
	p->sns = v.v ? v.v : NULL;
	memset(&v, 0, sizeof(v));
	p->webhooks = xcalloc(wh ? wh->nitems + 1 : 1, sizeof(*p->webhooks));
	for (i = 0; wh && i < wh->nitems; i++) {
		const struct ynode *it = wh->items[i], *u = it;
		struct pipeline_webhook *w = &p->webhooks[p->nwebhooks++];
		int64_t x;

		w->retries = 3;
		w->timeout_ms = 10000;
		if (it->type == YNODE_MAP) {
			if (ymap_check_keys(c->doc, it, "a webhook", webhook_keys,
					    ARRAY_SIZE(webhook_keys)) < 0)
				goto cleanup;
			u = ymap_get(it, "url");
			if (!u) {
				yerr(c->doc, it, "a webhook needs url");
				goto cleanup;
			}
			if (ymap_get(it, "retries")) {
				if (integer(c, ymap_get(it, "retries"), "retries", 0,
					    PIPELINE_WEBHOOK_RETRIES_MAX, &x) < 0)
					goto cleanup;
				w->retries = (int)x;
			}
			if (ymap_get(it, "timeout")) {
				if (integer(c, ymap_get(it, "timeout"), "timeout (seconds)", 1, 300,
					    &x) < 0)
					goto cleanup;
				w->timeout_ms = x * 1000;
			}
		}
		if (str(c, u, "a webhook URL", &w->url) < 0)
			goto cleanup;
		if (!str_startswith(w->url, "https://") && !str_startswith(w->url, "http://")) {
			yerr(c->doc, u, "a webhook URL must start with https:// or http://");
			goto cleanup;
		}
	}
	p->commands = xcalloc(cmd ? cmd->nitems + 1 : 1, sizeof(*p->commands));
	for (i = 0; cmd && i < cmd->nitems; i++) {
		const struct ynode *it = cmd->items[i];

		if (want(c, it, YNODE_SEQ, "a notification command (a list: program and "
			 "arguments)") < 0)
			goto cleanup;
		if (it->nitems == 0 || it->nitems > PIPELINE_ARGV_MAX) {
			yerr(c->doc, it, "a notification command needs 1-%d words",
			     PIPELINE_ARGV_MAX);
			goto cleanup;
		}
		for (k = 0; k < it->nitems; k++) {
			char *w = NULL;

			if (str(c, it->items[k], "a command word", &w) < 0)
				goto cleanup;
			strv_push(&v, w);
			free(w);
		}
		p->commands[p->ncommands++] = v.v;
		memset(&v, 0, sizeof(v));
	}
	r = 0;
cleanup:
	strv_release(&v);
	return r;
}

static int parse_distribution(struct pctx *c, const struct ynode *n)
{
	struct pipeline *p = c->p;
	const struct ynode *lt, *ssm, *lic;
	size_t i, k;

	if (want(c, n, YNODE_MAP, "distribution") < 0 ||
	    ymap_check_keys(c->doc, n, "distribution", dist_keys, ARRAY_SIZE(dist_keys)) < 0)
		return -1;
	lt = ymap_get(n, "launch_templates");
	ssm = ymap_get(n, "ssm_parameters");
	lic = ymap_get(n, "license_configurations");
	if (list(c, lt, "distribution.launch_templates", PIPELINE_LIST_MAX) < 0 ||
	    list(c, ssm, "distribution.ssm_parameters", PIPELINE_LIST_MAX) < 0 ||
	    list(c, lic, "distribution.license_configurations", PIPELINE_LIST_MAX) < 0)
		return -1;
	p->lts = xcalloc(lt ? lt->nitems + 1 : 1, sizeof(*p->lts));
	for (i = 0; lt && i < lt->nitems; i++) {
		const struct ynode *it = lt->items[i];
		struct pipeline_lt *t = &p->lts[p->nlts++];

		if (want(c, it, YNODE_MAP, "a launch template") < 0 ||
		    ymap_check_keys(c->doc, it, "a launch template", lt_keys,
				    ARRAY_SIZE(lt_keys)) < 0 ||
		    region(c, ymap_get(it, "region"), "region", &t->region) < 0)
			return -1;
		if (!!ymap_get(it, "id") == !!ymap_get(it, "name"))
			return yerr(c->doc, it, "a launch template needs id or name (one of them)");
		if (ymap_get(it, "id")) {
			if (str(c, ymap_get(it, "id"), "id", &t->id) < 0)
				return -1;
			if (!str_startswith(t->id, "lt-") || !all_hex(t->id + 3, 8, 17))
				return yerr(c->doc, ymap_get(it, "id"), "'%s' is not a launch "
					    "template id (lt-HEX)", t->id);
		} else {
			if (str(c, ymap_get(it, "name"), "name", &t->name) < 0)
				return -1;
			if (strlen(t->name) < 3 || strlen(t->name) > 128)
				return yerr(c->doc, ymap_get(it, "name"), "a launch template name "
					    "has 3-128 characters");
		}
		if (ymap_get(it, "default") &&
		    boolean(c, ymap_get(it, "default"), "default", &t->set_default) < 0)
			return -1;
	}
	p->ssms = xcalloc(ssm ? ssm->nitems + 1 : 1, sizeof(*p->ssms));
	for (i = 0; ssm && i < ssm->nitems; i++) {
		const struct ynode *it = ssm->items[i], *nm;
		struct pipeline_ssm *s = &p->ssms[p->nssms++];

		if (want(c, it, YNODE_MAP, "an SSM parameter") < 0 ||
		    ymap_check_keys(c->doc, it, "an SSM parameter", ssm_keys,
				    ARRAY_SIZE(ssm_keys)) < 0 ||
		    region(c, ymap_get(it, "region"), "region", &s->region) < 0)
			return -1;
		nm = ymap_get(it, "name");
		if (str(c, nm, "name", &s->name) < 0)
			return -1;
		/* SSM: 1-2048 characters of a-zA-Z0-9_.-/ ; no "aws"/"ssm" prefix. */
		for (k = 0; s->name[k]; k++)
			if (!isalnum((unsigned char)s->name[k]) && !strchr("_.-/", s->name[k]))
				break;
		if (s->name[k] || k > 2048 || strncasecmp(s->name + (s->name[0] == '/'), "aws", 3) == 0 ||
		    strncasecmp(s->name + (s->name[0] == '/'), "ssm", 3) == 0)
			return yerr(c->doc, nm, "'%s' is not a valid SSM parameter name (a-z A-Z "
				    "0-9 _ . - /, not starting with aws or ssm)", s->name);
	}
	p->licenses = xcalloc(lic ? lic->nitems + 1 : 1, sizeof(*p->licenses));
	for (i = 0; lic && i < lic->nitems; i++) {
		const struct ynode *it = lic->items[i], *arns;
		struct pipeline_license *l = &p->licenses[p->nlicenses++];
		struct strv v = STRV_INIT;

		if (want(c, it, YNODE_MAP, "a license configuration entry") < 0 ||
		    ymap_check_keys(c->doc, it, "a license configuration entry", lic_keys,
				    ARRAY_SIZE(lic_keys)) < 0 ||
		    region(c, ymap_get(it, "region"), "region", &l->region) < 0)
			return -1;
		arns = ymap_get(it, "arns");
		if (!arns)
			return yerr(c->doc, it, "a license configuration entry needs arns");
		if (list(c, arns, "arns", 10) < 0)
			return -1;
		for (k = 0; k < arns->nitems; k++) {
			char *a = NULL, *reg;
			bool ok;

			if (str(c, arns->items[k], "a license configuration ARN", &a) < 0) {
				strv_release(&v);
				return -1;
			}
			reg = arn_region(a);
			ok = str_startswith(a, "arn:aws") && strstr(a, ":license-manager:") &&
			     strstr(a, ":license-configuration:lic-") && reg &&
			     strcmp(reg, l->region) == 0;
			free(reg);
			strv_push(&v, a);
			free(a);
			if (!ok) {
				strv_release(&v);
				return yerr(c->doc, arns->items[k], "'%s' is not a license "
					    "configuration ARN of %s (arn:aws:license-manager:%s:"
					    "ACCOUNT:license-configuration:lic-...)",
					    arns->items[k]->str, l->region, l->region);
			}
		}
		l->arns = v.v ? v.v : xcalloc(1, sizeof(char *));
	}
	return 0;
}

static int parse_lifecycle(struct pctx *c, const struct ynode *n)
{
	struct pipeline *p = c->p;
	const struct ynode *regs, *ex, *rules;
	struct strv v = STRV_INIT;
	size_t i, k;

	if (want(c, n, YNODE_MAP, "lifecycle") < 0 ||
	    ymap_check_keys(c->doc, n, "lifecycle", lc_keys, ARRAY_SIZE(lc_keys)) < 0)
		return -1;
	regs = ymap_get(n, "regions");
	ex = ymap_get(n, "exclude_tags");
	rules = ymap_get(n, "rules");
	if (!regs || !rules)
		return yerr(c->doc, n, "lifecycle needs regions and rules");
	if (list(c, regs, "lifecycle.regions", 32) < 0 ||
	    list(c, rules, "lifecycle.rules", PIPELINE_LC_RULES_MAX) < 0)
		return -1;
	if (regs->nitems == 0 || rules->nitems == 0)
		return yerr(c->doc, regs->nitems ? rules : regs, "lifecycle.%s is empty",
			    regs->nitems ? "rules" : "regions");
	for (i = 0; i < regs->nitems; i++) {
		char *r = NULL;

		if (region(c, regs->items[i], "a lifecycle region", &r) < 0) {
			strv_release(&v);
			return -1;
		}
		for (k = 0; k < v.n; k++)
			if (strcmp(v.v[k], r) == 0) {
				free(r);
				strv_release(&v);
				return yerr(c->doc, regs->items[i], "region listed twice");
			}
		strv_push(&v, r);
		free(r);
	}
	p->lc_regions = v.v;
	if (ex) {
		if (want(c, ex, YNODE_MAP, "lifecycle.exclude_tags") < 0)
			return -1;
		if (ex->npairs > 50)
			return yerr(c->doc, ex, "at most 50 exclusion tags");
		p->lc_exclude = xcalloc(ex->npairs + 1, sizeof(*p->lc_exclude));
		for (i = 0; i < ex->npairs; i++) {
			struct pipeline_kv *kv = &p->lc_exclude[p->nlc_exclude++];

			kv->key = xstrdup(ex->pairs[i].key->str);
			if (str(c, ex->pairs[i].value, "an exclusion tag value", &kv->value) < 0)
				return -1;
		}
	}
	for (i = 0; i < rules->nitems; i++) {
		const struct ynode *it = rules->items[i], *a, *kl, *ot, *ra;
		struct pipeline_lc_rule *rl = &p->lc_rules[p->nlc_rules++];
		size_t idx;
		int64_t x;

		rl->line = it->line;
		rl->col = it->col;
		if (want(c, it, YNODE_MAP, "a lifecycle rule") < 0 ||
		    ymap_check_keys(c->doc, it, "a lifecycle rule", rule_keys,
				    ARRAY_SIZE(rule_keys)) < 0)
			return -1;
		a = ymap_get(it, "action");
		kl = ymap_get(it, "keep_last");
		ot = ymap_get(it, "older_than");
		ra = ymap_get(it, "retain_at_least");
		if (!a)
			return yerr(c->doc, it, "a lifecycle rule needs action (deprecate, "
				    "disable or delete)");
		if (word(c, a, "action", actions, ARRAY_SIZE(actions), &idx) < 0)
			return -1;
		rl->action = (enum lc_action)(idx + 1);
		if (!!kl == !!ot)
			return yerr(c->doc, it, "a lifecycle rule needs keep_last or older_than "
				    "(one of them)");
		if (kl) {
			if (integer(c, kl, "keep_last", 1, 1000, &x) < 0)
				return -1;
			rl->keep_last = (int)x;
			if (ra)
				return yerr(c->doc, ra, "retain_at_least goes with older_than; "
					    "keep_last already keeps the newest");
		} else {
			if (age(c, ot, &rl->older_than_s) < 0)
				return -1;
			if (ra) {
				if (integer(c, ra, "retain_at_least", 0, 1000, &x) < 0)
					return -1;
				rl->retain_at_least = (int)x;
			}
		}
	}
	return 0;
}

struct pipeline *pipeline_load(const char *path)
{
	struct pipeline *p = xcalloc(1, sizeof(*p));
	struct pctx c = { .p = p, .doc = &p->doc };
	const struct ynode *root, *n;
	char *rp = NULL, *tmp;
	struct strv vars = STRV_INIT;
	size_t i, k;

	if (ydoc_load_file(&p->doc, path) < 0)
		goto fail;
	rp = realpath(path, NULL);
	if (!rp) {
		err_errno("pipeline '%s'", path);
		goto fail;
	}
	p->path = rp;
	tmp = xstrdup(rp);
	p->dir = xstrdup(dirname(tmp));
	free(tmp);
	root = p->doc.root;
	if (!root || root->type != YNODE_MAP) {
		yerr(&p->doc, root, "a pipeline file must be a mapping");
		goto fail;
	}
	if (ymap_check_keys(&p->doc, root, "the pipeline", top_keys, ARRAY_SIZE(top_keys)) < 0)
		goto fail;
	n = ymap_get(root, "pipeline");
	if (str(&c, n, "pipeline (its name)", &p->name) < 0)
		goto fail;
	if (strlen(p->name) > PIPELINE_NAME_MAX || !name_is_safe(p->name)) {
		yerr(&p->doc, n, "pipeline name '%s' must be 1-%d characters of A-Z a-z 0-9 . _ -",
		     p->name, PIPELINE_NAME_MAX);
		goto fail;
	}
	n = ymap_get(root, "recipe");
	if (!n) {
		yerr(&p->doc, root, "a pipeline needs recipe (the path of a recipe file)");
		goto fail;
	}
	if (str(&c, n, "recipe", &tmp) < 0)
		goto fail;
	p->recipe = abs_path(&c, tmp);
	free(tmp);
	if (access(p->recipe, R_OK) < 0) {
		yerr(&p->doc, n, "recipe '%s': %s", p->recipe, strerror(errno));
		goto fail;
	}
	n = ymap_get(root, "vars");
	if (n) {
		if (want(&c, n, YNODE_MAP, "vars") < 0)
			goto fail;
		for (i = 0; i < n->npairs; i++) {
			if (want(&c, n->pairs[i].value, YNODE_SCALAR, "a var's value") < 0)
				goto fail;
			strv_pushf(&vars, "%s=%s", n->pairs[i].key->str, n->pairs[i].value->str);
		}
	}
	p->vars = vars.v ? vars.v : xcalloc(1, sizeof(char *));
	memset(&vars, 0, sizeof(vars));
	n = ymap_get(root, "schedule");
	if (n && parse_schedule(&c, n) < 0)
		goto fail;
	n = ymap_get(root, "state");
	if (n) {
		if (str(&c, n, "state", &tmp) < 0)
			goto fail;
		p->state_dir = abs_path(&c, tmp);
		free(tmp);
	} else {
		p->state_dir = xasprintf("%s/.amiforge-pipeline/%s", p->dir, p->name);
	}
	n = ymap_get(root, "builds");
	if (n) {
		if (str(&c, n, "builds", &tmp) < 0)
			goto fail;
		p->builds_dir = abs_path(&c, tmp);
		free(tmp);
	} else {
		p->builds_dir = xasprintf("%s/builds", p->dir);
	}
	n = ymap_get(root, "profile");
	if (n && str(&c, n, "profile", &p->profile) < 0)
		goto fail;
	n = ymap_get(root, "notifications");
	if (n && parse_notifications(&c, n) < 0)
		goto fail;
	n = ymap_get(root, "distribution");
	if (n && parse_distribution(&c, n) < 0)
		goto fail;
	n = ymap_get(root, "lifecycle");
	if (n && parse_lifecycle(&c, n) < 0)
		goto fail;
	if (!p->webhooks)
		p->webhooks = xcalloc(1, sizeof(*p->webhooks));
	if (!p->commands)
		p->commands = xcalloc(1, sizeof(*p->commands));
	(void)k;
	return p;
fail:
	strv_release(&vars);
	pipeline_free(p);
	return NULL;
}

int pipeline_check_recipe(const struct pipeline *p)
{
	struct recipe_opts ro = { 0 };
	struct recipe *r;

	ro.vars = (const char *const *)p->vars;
	ro.check_doc = build_check_doc;
	r = recipe_parse(p->recipe, &ro);
	if (!r)
		return -1;
	recipe_free(r);
	return 0;
}

void pipeline_free(struct pipeline *p)
{
	size_t i;

	if (!p)
		return;
	free(p->path);
	free(p->dir);
	free(p->name);
	free(p->recipe);
	strv_free(p->vars);
	free(p->expression);
	free(p->state_dir);
	free(p->builds_dir);
	free(p->profile);
	strv_free(p->sns);
	for (i = 0; i < p->nwebhooks; i++)
		free(p->webhooks[i].url);
	free(p->webhooks);
	for (i = 0; i < p->ncommands; i++)
		strv_free(p->commands[i]);
	free(p->commands);
	for (i = 0; i < p->nlts; i++) {
		free(p->lts[i].region);
		free(p->lts[i].id);
		free(p->lts[i].name);
	}
	free(p->lts);
	for (i = 0; i < p->nssms; i++) {
		free(p->ssms[i].region);
		free(p->ssms[i].name);
	}
	free(p->ssms);
	for (i = 0; i < p->nlicenses; i++) {
		free(p->licenses[i].region);
		strv_free(p->licenses[i].arns);
	}
	free(p->licenses);
	strv_free(p->lc_regions);
	for (i = 0; i < p->nlc_exclude; i++) {
		free(p->lc_exclude[i].key);
		free(p->lc_exclude[i].value);
	}
	free(p->lc_exclude);
	ydoc_release(&p->doc);
	free(p);
}
