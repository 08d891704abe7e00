/* executor-net.c: proxy and forward environment, boot and network readiness
 * and the offline note around a guest's executor (see executor-net.h). */
#include "executor-net.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* /proc/net/route and ipv6_route of a guest: a few lines per interface. */
#define ROUTE_FILE_MAX (256u * 1024)
#define READY_POLL_MS 500
/* The part of the failing command's last stderr line repeated in the note. */
#define NOTE_LINE_MAX 160

struct net_ex {
	struct executor ex;
	struct executor *inner;
	struct executor_ops ops;
	bool online, checked;
	char *reason;
	struct strv env;
	int64_t ready_ms, boot_ms;
};

#define N(e) ((struct net_ex *)(e)->priv)
#define IN(e) (N(e)->inner)

/* The next line of s (NUL-terminated), its bounds in *b / *n. */
static const char *next_line(const char *s, const char **b, size_t *n)
{
	const char *e;

	if (!s || !*s)
		return NULL;
	e = strchr(s, '\n');
	*b = s;
	*n = e ? (size_t)(e - s) : strlen(s);
	return e ? e + 1 : s + *n;
}

/* Whitespace-separated field k (from 0) of the line [b, b+n): 0 or -1. */
static int field(const char *b, size_t n, unsigned k, const char **f, size_t *fn)
{
	size_t i = 0;

	for (unsigned cur = 0;; cur++) {
		while (i < n && (b[i] == ' ' || b[i] == '\t'))
			i++;
		if (i == n)
			return -1;
		*f = b + i;
		while (i < n && b[i] != ' ' && b[i] != '\t')
			i++;
		*fn = (size_t)(b + i - *f);
		if (cur == k)
			return 0;
	}
}

static bool field_is(const char *f, size_t fn, const char *want)
{
	return fn == strlen(want) && memcmp(f, want, fn) == 0;
}

bool exec_net_has_default_route(const char *route, const char *ipv6_route)
{
	static const char zero32[] = "00000000000000000000000000000000";
	const char *p = route, *b, *f, *ifc;
	size_t n, fn, ifn;
	bool first = true;

	/* Iface Destination Gateway Flags RefCnt Use Metric Mask ... (header first) */
	while ((p = next_line(p, &b, &n))) {
		if (first) {
			first = false;
			continue;
		}
		if (field(b, n, 0, &ifc, &ifn) == 0 && !field_is(ifc, ifn, "lo") &&
		    field(b, n, 1, &f, &fn) == 0 && field_is(f, fn, "00000000"))
			return true;
	}
	/* dest prefixlen src srcprefixlen nexthop metric refcnt use flags iface */
	p = ipv6_route;
	while ((p = next_line(p, &b, &n))) {
		if (field(b, n, 0, &f, &fn) == 0 && field_is(f, fn, zero32) &&
		    field(b, n, 1, &f, &fn) == 0 && field_is(f, fn, "00") &&
		    field(b, n, 9, &ifc, &ifn) == 0 && !field_is(ifc, ifn, "lo"))
			return true;
	}
	return false;
}

/* The guest's boot as far as its services: while systemd says the system is
 * starting, wait until multi-user.target is reached (every service enabled
 * for it has started: a target is ordered after what it wants). cloud-init's
 * final stage comes after that target and is not waited for. Read-only:
 * nothing is started. No systemd (or another init): nothing to wait for. */
static const char boot_ready_sh[] =
	"command -v systemctl >/dev/null 2>&1 || exit 0\n"
	"while :; do\n"
	"  case $(systemctl is-system-running 2>/dev/null) in\n"
	"  initializing|starting) ;;\n"
	"  *) exit 0 ;;\n"
	"  esac\n"
	"  systemctl is-active --quiet multi-user.target && exit 0\n"
	"  sleep 0.2 2>/dev/null || sleep 1\n"
	"done\n";

/* Before the first command after a boot: the boot's services, bounded. A
 * boot that does not get there in time is said once; the command runs. */
static int wait_boot(struct net_ex *x)
{
	static const char *const argv[] = { "/bin/sh", "-c", boot_ready_sh, NULL };
	struct exec_req req = { .argv = argv, .timeout_ms = x->boot_ms, .capture_max = 1024 };
	struct exec_result res;
	int64_t t0 = now_ms();
	int ret = -1;

	memset(&res, 0, sizeof(res));
	if (executor_exec(x->inner, &req, &res) < 0) {
		err_prefix("boot readiness");
		goto cleanup;
	}
	if (res.timed_out)
		log_warn("the guest's boot has not reached multi-user.target after %" PRId64
			 " s; the next command runs anyway", x->boot_ms / 1000);
	else if (res.status != 0)
		log_debug("boot readiness: not checked (status %d)", res.status);
	else
		log_debug("boot: services up after %" PRId64 " ms", now_ms() - t0);
	ret = 0;
cleanup:
	exec_result_release(&res);
	return ret;
}

/* Before the first command: a default route within the deadline. */
static int wait_ready(struct net_ex *x)
{
	int64_t t0 = now_ms(), deadline = t0 + x->ready_ms;
	struct buf r4 = BUF_INIT(ROUTE_FILE_MAX), r6 = BUF_INIT(ROUTE_FILE_MAX);
	int ret = -1;

	for (;;) {
		bool ok4 = executor_read_file(x->inner, "/proc/net/route", ROUTE_FILE_MAX,
						    &r4) == 0;
		bool ok6 = executor_read_file(x->inner, "/proc/net/ipv6_route",
						    ROUTE_FILE_MAX, &r6) == 0;

		if (!ok4 && !ok6) {
			err_prefix("network readiness: read the guest's routes");
			break;
		}
		if (exec_net_has_default_route(ok4 ? r4.data : NULL, ok6 ? r6.data : NULL)) {
			log_debug("network: default route after %" PRId64 " ms", now_ms() - t0);
			ret = 0;
			break;
		}
		if (now_ms() >= deadline) {
			err_set("the guest's network is not up: no default route after %" PRId64
				" s (did DHCP answer? see the console log)", x->ready_ms / 1000);
			break;
		}
		usleep(READY_POLL_MS * 1000);
	}
	buf_release(&r4);
	buf_release(&r6);
	return ret;
}

/* The last non-empty line of a buffer, at most NOTE_LINE_MAX bytes. */
static void last_line(const struct buf *b, const char **s, size_t *n)
{
	const char *e = b->data ? b->data + b->len : NULL, *p;

	*s = "";
	*n = 0;
	if (!e)
		return;
	while (e > b->data && (e[-1] == '\n' || e[-1] == '\r'))
		e--;
	p = e;
	while (p > b->data && p[-1] != '\n')
		p--;
	*s = p;
	*n = (size_t)(e - p) > NOTE_LINE_MAX ? NOTE_LINE_MAX : (size_t)(e - p);
}

/* An offline guest's failed command: its last stderr line names why. */
static void offline_note(struct net_ex *x, struct exec_result *res)
{
	const char *l;
	size_t n;
	char *note;

	last_line(&res->err, &l, &n);
	note = xasprintf("%s%.*s%s[the guest is offline: %s]\n",
			 res->err.len && res->err.data[res->err.len - 1] != '\n' ? "\n" : "",
			 (int)n, l, n ? " " : "", x->reason);
	/* The note must land even in a full capture: make room at the end. */
	if (res->err.max && res->err.len + strlen(note) > res->err.max) {
		size_t keep = res->err.max > strlen(note) ? res->err.max - strlen(note) : 0;

		if (res->err.len > keep) {
			res->err.len = keep;
			res->err.data[keep] = '\0';
		}
	}
	if (buf_adds(&res->err, note) < 0)
		log_debug("offline note: %s", err_msg());
	free(note);
}

/* Does env (NULL-terminated, may be NULL) set the variable kv names? */
static bool env_named(const char *const *env, const char *kv)
{
	size_t n = strcspn(kv, "=");

	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], kv, n) == 0 && env[i][n] == '=')
			return true;
	return false;
}

static int nx_exec(struct executor *ex, const struct exec_req *req, struct exec_result *res)
{
	struct net_ex *x = N(ex);
	struct exec_req r = *req;
	struct strv env = STRV_INIT;
	size_t i;
	int ret;

	if (!x->checked) {
		if ((x->boot_ms > 0 && wait_boot(x) < 0) || (x->online && wait_ready(x) < 0)) {
			memset(res, 0, sizeof(*res));
			return -1;
		}
		x->checked = true;
	}
	if (x->env.n) {
		/* The request's own entries win: ours of the same name go. */
		for (i = 0; i < x->env.n; i++)
			if (!env_named(req->env, x->env.v[i]))
				strv_push(&env, x->env.v[i]);
		for (i = 0; req->env && req->env[i]; i++)
			strv_push(&env, req->env[i]);
		r.env = (const char *const *)env.v;
	}
	ret = executor_exec(x->inner, &r, res);
	strv_release(&env);
	if (ret == 0 && !x->online && !res->timed_out && res->status != 0)
		offline_note(x, res);
	return ret;
}

static int nx_put_file(struct executor *ex, const char *h, const char *p, mode_t m)
{
	return executor_put_file(IN(ex), h, p, m);
}
static int nx_get_file(struct executor *ex, const char *p, const char *h)
{
	return executor_get_file(IN(ex), p, h);
}
static int nx_write_file(struct executor *ex, const char *p, const void *d, size_t n, mode_t m,
			 bool append)
{
	return executor_write_file(IN(ex), p, d, n, m, append);
}
static int nx_read_file(struct executor *ex, const char *p, size_t max, struct buf *out)
{
	return executor_read_file(IN(ex), p, max, out);
}
static int nx_stat(struct executor *ex, const char *p, struct file_stat *st)
{
	return executor_stat(IN(ex), p, st);
}
static int nx_mkdir_p(struct executor *ex, const char *p, mode_t m)
{
	return executor_mkdir_p(IN(ex), p, m);
}
static int nx_remove(struct executor *ex, const char *p, bool rec)
{
	return executor_remove(IN(ex), p, rec);
}
static int nx_rename(struct executor *ex, const char *a, const char *b)
{
	return executor_rename(IN(ex), a, b);
}
static int nx_copy(struct executor *ex, const char *a, const char *b, bool rec)
{
	return executor_copy(IN(ex), a, b, rec);
}
static int nx_chmod(struct executor *ex, const char *p, mode_t m, bool rec)
{
	return executor_chmod(IN(ex), p, m, rec);
}
static int nx_chown(struct executor *ex, const char *p, const char *o, const char *g, bool rec)
{
	return executor_chown(IN(ex), p, o, g, rec);
}
static int nx_symlink(struct executor *ex, const char *t, const char *p)
{
	return executor_symlink(IN(ex), t, p);
}
static int nx_list_dir(struct executor *ex, const char *p, struct dir_entry **e, size_t *n)
{
	return executor_list_dir(IN(ex), p, e, n);
}
static int nx_hash_file(struct executor *ex, const char *p, const char *algo, char **hex)
{
	return executor_hash_file(IN(ex), p, algo, hex);
}
static int nx_reboot(struct executor *ex, int64_t timeout_ms)
{
	/* After a reboot the services and DHCP start over: check again before
	 * the next command. */
	N(ex)->checked = false;
	return executor_reboot(IN(ex), timeout_ms);
}

static void nx_close(struct executor *ex)
{
	struct net_ex *x = N(ex);

	strv_release(&x->env);
	free(x->reason);
	free(x);
}

static const struct executor_ops net_ops = {
	.exec = nx_exec,
	.put_file = nx_put_file,
	.get_file = nx_get_file,
	.write_file = nx_write_file,
	.read_file = nx_read_file,
	.stat = nx_stat,
	.mkdir_p = nx_mkdir_p,
	.remove = nx_remove,
	.rename = nx_rename,
	.copy = nx_copy,
	.chmod = nx_chmod,
	.chown = nx_chown,
	.symlink = nx_symlink,
	.list_dir = nx_list_dir,
	.hash_file = nx_hash_file,
	.reboot = nx_reboot,
	.close = nx_close,
};

struct executor *executor_net_new(struct executor *inner, const struct exec_net_opts *o)
{
	struct net_ex *x = xcalloc(1, sizeof(*x));
	size_t i;

	x->inner = inner;
	x->online = o->online;
	x->reason = xstrdup(o->offline_reason ? o->offline_reason : "it has no network");
	x->ready_ms = o->ready_timeout_ms > 0 ? o->ready_timeout_ms : EXEC_NET_READY_MS;
	x->boot_ms = o->boot_timeout_ms > 0 ? o->boot_timeout_ms : o->boot_timeout_ms < 0 ? 0 :
		     EXEC_BOOT_READY_MS;
	for (i = 0; o->env && o->env[i] && i < EXEC_NET_ENV_MAX; i++)
		strv_push(&x->env, o->env[i]);
	/* Same name and reboot ability as the executor it wraps: the engine
	 * looks at both. */
	x->ops = net_ops;
	x->ops.name = inner->ops->name;
	if (!inner->ops->reboot)
		x->ops.reboot = NULL;
	x->ex.ops = &x->ops;
	x->ex.priv = x;
	return &x->ex;
}
