/* actions-update.c: UpdateOS, with the target's package manager (found by
 * its binary): apt, dnf, yum or zypper.
 *
 * 1. Refresh the package index, strictly: a refresh that did not fully
 *    succeed fails the step with the package manager's own message (and a
 *    hint when the target has no default route), instead of "upgrading"
 *    against a stale index and reporting success.
 *    apt: `apt-get -o APT::Update::Error-Mode=any update` (apt >= 2.1.16
 *    fails on any fetch error; older apt ignores the option and is caught by
 *    its "W: Failed to fetch" / "Err:" lines); dnf: `makecache --refresh`,
 *    yum: `makecache`, both with skip_if_unavailable off; zypper: `refresh`.
 * 2. List what the upgrade will do (apt-get -s; dnf/yum check-update with
 *    rpm -qa for the installed versions; zypper list-updates), parsed here
 *    on the host (pkgparse.c).
 * 3. Upgrade, as before (include/exclude).
 * Outputs: `upgraded`, a JSON array of {package, arch, oldVersion,
 * newVersion} (pkgparse.h), and `upgradedCount`. */
#include <jansson.h>

#include "engine.h"
#include "pkgparse.h"
#include "error.h"
#include "run.h"
#include "util.h"

/* Most bytes read of /proc/net/route or ipv6_route for the offline hint. */
#define ROUTE_MAX (256u * 1024)
#define OFFLINE_HINT " (the target has no network: no default route, so no package " \
		     "mirror can be reached)"

struct pkgmgr {
	const char *bin;
	const char *name;
};

static const struct pkgmgr pkgmgrs[] = {
	{ "/usr/bin/apt-get", "apt" }, { "/usr/bin/dnf", "dnf" }, { "/usr/bin/yum", "yum" },
	{ "/usr/bin/zypper", "zypper" },
};

/* Untranslated output: the parsers read English. */
static const char *const apt_env[] = { "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C", NULL };
static const char *const c_env[] = { "LC_ALL=C", NULL };

static int list_into(json_t *arr, struct strv *sv, const char *prefix)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);
		if (!s[0] || s[0] == '-')
			return err_set("UpdateOS: invalid package name '%s'", s);
		if (prefix)
			strv_pushf(sv, "%s%s", prefix, s);
		else
			strv_push(sv, s);
	}
	return 0;
}

static int run_argv(struct action_ctx *c, struct strv *sv, const char *const *env)
{
	int st = action_exec(c, (const char *const *)sv->v, env, NULL);

	strv_release(sv);
	return st == 0 ? 0 : -1;
}

/* True when the target can be seen to have no default route (no network);
 * false when it has one or cannot be told. */
static bool target_offline(struct action_ctx *c)
{
	struct buf r4 = BUF_INIT(ROUTE_MAX), r6 = BUF_INIT(ROUTE_MAX);
	bool ok4, ok6, off;

	ok4 = executor_read_file(c->ex, "/proc/net/route", ROUTE_MAX, &r4) == 0;
	ok6 = executor_read_file(c->ex, "/proc/net/ipv6_route", ROUTE_MAX, &r6) == 0;
	off = (ok4 || ok6) && !pkg_net_has_default_route(r4.data, r4.len, r6.data, r6.len);
	buf_release(&r4);
	buf_release(&r6);
	return off;
}

/* Why the target is offline, for the failure message: the note the guest's
 * network executor left on the failed command's stderr (executor-net.h: it
 * knows the reason, e.g. the recipe's vm.network: none), else the route
 * check; "" when it is online or cannot be told. */
static char *offline_hint(struct action_ctx *c, const struct buf *err)
{
	static const char mark[] = "[the guest is offline: ";
	const char *n = err->data ? strstr(err->data, mark) : NULL;

	if (n) {
		const char *e = strchr(n, ']');

		if (e)
			return xasprintf(" %.*s", (int)(e + 1 - n), n);
	}
	return xstrdup(target_offline(c) ? OFFLINE_HINT : "");
}

static int refresh(struct action_ctx *c, const struct pkgmgr *pm)
{
	struct buf out = BUF_INIT(STEP_OUTPUT_MAX), err = BUF_INIT(STEP_OUTPUT_MAX);
	const char *const *env = c_env;
	struct strv sv = STRV_INIT;
	bool apt = strcmp(pm->name, "apt") == 0;
	char *cmd = NULL, *line = NULL, *hint = NULL;
	int st, r = -1;

	if (apt) {
		strv_push(&sv, "apt-get");
		strv_push(&sv, "-o");
		strv_push(&sv, "APT::Update::Error-Mode=any");
		strv_push(&sv, "update");
		env = apt_env;
	} else if (strcmp(pm->name, "zypper") == 0) {
		strv_push(&sv, "zypper");
		strv_push(&sv, "--non-interactive");
		strv_push(&sv, "refresh");
	} else {
		strv_push(&sv, pm->name);
		strv_push(&sv, "-y");
		strv_push(&sv, "--setopt=skip_if_unavailable=False");
		strv_push(&sv, "makecache");
		if (strcmp(pm->name, "dnf") == 0)
			strv_push(&sv, "--refresh");
	}
	st = action_exec_full(c, (const char *const *)sv.v, env, &out, &err);
	if (st < 0)
		goto cleanup;       /* timed out, or the executor failed */
	if (st == 0 && !(apt && pkg_apt_refresh_failed(out.data, out.len, err.data, err.len))) {
		r = 0;
		goto cleanup;
	}
	cmd = run_argv_str((const char *const *)sv.v);
	line = pkg_failure_line(out.data, out.len, err.data, err.len);
	hint = offline_hint(c, &err);
	if (st)
		err_set("UpdateOS: the package index could not be refreshed: '%s' exited with "
			"status %d%s%s%s", cmd, st, line[0] ? ": " : "", line, hint);
	else
		err_set("UpdateOS: the package index could not be refreshed: '%s' reported: %s%s",
			cmd, line, hint);
cleanup:
	free(cmd);
	free(line);
	free(hint);
	strv_release(&sv);
	buf_release(&out);
	buf_release(&err);
	return r;
}

/* Run sv (released) capturing stdout into out; the exit status must be 0
 * (or alt, when alt >= 0). Returns the status, or -1 (recorded). */
static int capture(struct action_ctx *c, struct strv *sv, const char *const *env, int alt,
		   struct buf *out)
{
	int st = action_exec(c, (const char *const *)sv->v, env, out);

	if (st > 0 && st == alt)
		err_clear();
	else if (st != 0)
		st = -1;
	if (st < 0)
		err_prefix("UpdateOS: listing the upgrades");
	strv_release(sv);
	return st;
}

static int update_apt(struct action_ctx *c, json_t *inc, json_t *exc, json_t *list)
{
	struct buf out = BUF_INIT(STEP_OUTPUT_MAX);
	struct strv sv = STRV_INIT;
	int r = -1, pass;

	if (json_array_size(exc)) {
		strv_push(&sv, "apt-mark");
		strv_push(&sv, "hold");
		if (list_into(exc, &sv, NULL) < 0 || run_argv(c, &sv, apt_env) < 0)
			goto unhold;
	}
	/* pass 0: simulate and list; pass 1: upgrade */
	for (pass = 0; pass < 2; pass++) {
		strv_release(&sv);
		strv_push(&sv, "apt-get");
		if (pass == 0) {
			strv_push(&sv, "-s");
		} else {
			strv_push(&sv, "-y");
			strv_push(&sv, "-o");
			strv_push(&sv, "Dpkg::Options::=--force-confold");
		}
		if (json_array_size(inc)) {
			strv_push(&sv, "install");
			strv_push(&sv, "--only-upgrade");
			if (list_into(inc, &sv, NULL) < 0)
				goto unhold;
		} else {
			strv_push(&sv, "upgrade");
		}
		if (pass == 1) {
			if (run_argv(c, &sv, apt_env) < 0)
				goto unhold;
			break;
		}
		if (capture(c, &sv, apt_env, -1, &out) < 0 ||
		    pkg_parse_apt(out.data, out.len, list) < 0)
			goto unhold;
		if (json_array_size(list) == 0)
			break;      /* nothing to do, and apt's summary says so */
	}
	r = 0;
unhold:
	strv_release(&sv);
	if (json_array_size(exc)) {
		/* the failure, not the unhold's outcome, is the step's message */
		char *why = r < 0 ? xstrdup(err_msg()) : NULL;
		strv_push(&sv, "apt-mark");
		strv_push(&sv, "unhold");
		if (list_into(exc, &sv, NULL) == 0 && run_argv(c, &sv, apt_env) < 0 && r == 0)
			r = -1;     /* a package left on hold: the step failed */
		strv_release(&sv);
		if (why)
			err_set("%s", why);
		free(why);
	}
	buf_release(&out);
	return r;
}

static int update_zypper(struct action_ctx *c, json_t *inc, json_t *exc, json_t *list)
{
	struct buf out = BUF_INIT(STEP_OUTPUT_MAX);
	struct strv sv = STRV_INIT;
	int r = -1;

	if (json_array_size(exc))
		return err_set("UpdateOS: 'exclude' is not supported with zypper");
	strv_push(&sv, "zypper");
	strv_push(&sv, "-q");
	strv_push(&sv, "--non-interactive");
	strv_push(&sv, "list-updates");
	if (capture(c, &sv, c_env, -1, &out) < 0 ||
	    pkg_parse_zypper(out.data, out.len, inc, list) < 0)
		goto cleanup;
	strv_push(&sv, "zypper");
	strv_push(&sv, "--non-interactive");
	strv_push(&sv, "update");
	if (list_into(inc, &sv, NULL) < 0 || run_argv(c, &sv, c_env) < 0)
		goto cleanup;
	r = 0;
cleanup:
	strv_release(&sv);
	buf_release(&out);
	return r;
}

/* dnf, yum */
static int update_rpm(struct action_ctx *c, const char *pm, json_t *inc, json_t *exc,
		      json_t *list)
{
	struct buf check = BUF_INIT(STEP_OUTPUT_MAX), qa = BUF_INIT(STEP_OUTPUT_MAX);
	struct strv sv = STRV_INIT;
	int r = -1, st;

	/* check-update: 100 when there are updates, 0 when none */
	strv_push(&sv, pm);
	strv_push(&sv, "-q");
	strv_push(&sv, "check-update");
	if (list_into(exc, &sv, "--exclude=") < 0 || list_into(inc, &sv, NULL) < 0)
		goto cleanup;
	if ((st = capture(c, &sv, c_env, 100, &check)) < 0)
		goto cleanup;
	strv_push(&sv, "rpm");
	strv_push(&sv, "-qa");
	strv_push(&sv, "--qf");
	strv_push(&sv, "%{NAME}.%{ARCH}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n");
	if (capture(c, &sv, c_env, -1, &qa) < 0 ||
	    pkg_parse_dnf(check.data, check.len, st == 100, qa.data, qa.len, list) < 0)
		goto cleanup;
	strv_push(&sv, pm);
	strv_push(&sv, "-y");
	strv_push(&sv, "update");
	if (list_into(exc, &sv, "--exclude=") < 0 || list_into(inc, &sv, NULL) < 0 ||
	    run_argv(c, &sv, c_env) < 0)
		goto cleanup;
	r = 0;
cleanup:
	strv_release(&sv);
	buf_release(&check);
	buf_release(&qa);
	return r;
}

int act_update_os(struct action_ctx *c)
{
	json_t *inc = json_object_get(c->inputs, "include");
	json_t *exc = json_object_get(c->inputs, "exclude");
	const struct pkgmgr *pm = NULL;
	json_t *list;
	size_t i;
	int r;

	for (i = 0; i < ARRAY_SIZE(pkgmgrs) && !pm; i++) {
		struct file_stat st;
		if (executor_stat(c->ex, pkgmgrs[i].bin, &st) < 0)
			return -1;
		if (st.exists)
			pm = &pkgmgrs[i];
		file_stat_release(&st);
	}
	if (!pm)
		return err_set("UpdateOS: no supported package manager (apt-get, dnf, yum, "
			       "zypper) on the target");
	if (refresh(c, pm) < 0)
		return -1;
	list = json_array();
	if (strcmp(pm->name, "apt") == 0)
		r = update_apt(c, inc, exc, list);
	else if (strcmp(pm->name, "zypper") == 0)
		r = update_zypper(c, inc, exc, list);
	else
		r = update_rpm(c, pm->name, inc, exc, list);
	if (r == 0) {
		char *s = json_dumps(list, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_object_set_new(c->outputs, "upgraded", json_string(s ? s : "[]"));
		json_object_set_new(c->outputs, "upgradedCount",
				    json_sprintf("%zu", json_array_size(list)));
		free(s);
	}
	json_decref(list);
	return r;
}
