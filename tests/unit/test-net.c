/* Unit tests for builder/exec/executor-net.c: the default-route parser, the
 * proxy/forward environment, the bounded boot and network readiness checks
 * before the first command, and the offline note, around the local executor
 * (real processes) whose route files are replaced by fixed texts and whose
 * systemctl is a script answering from files. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test.h"
#include "buf.h"
#include "error.h"
#include "util.h"
#include "builder/exec/executor-net.h"

#define HDR4 "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
#define ETH0_DEFAULT "eth0\t00000000\t0202000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
#define ETH0_LINK "eth0\t0002000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
#define LO6_REJECT "00000000000000000000000000000000 00 00000000000000000000000000000000 00 " \
	"00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
#define ETH06_DEFAULT "00000000000000000000000000000000 00 00000000000000000000000000000000 00 " \
	"fe800000000000000000000000000002 00000400 00000001 00000000 00450003     eth0\n"

static void test_route_parser(void)
{
	CHECK(exec_net_has_default_route(HDR4 ETH0_LINK ETH0_DEFAULT, NULL),
	      "route: IPv4 default via eth0");
	CHECK(!exec_net_has_default_route(HDR4 ETH0_LINK, LO6_REJECT),
	      "route: only a link route and lo's reject route: not ready");
	CHECK(!exec_net_has_default_route(HDR4, ""), "route: header only: not ready");
	CHECK(!exec_net_has_default_route(ETH0_DEFAULT, NULL),
	      "route: the first line is the header, never a route");
	CHECK(!exec_net_has_default_route(HDR4 "lo\t00000000\t00000000\t0001\n", NULL),
	      "route: a default route on lo does not count");
	CHECK(exec_net_has_default_route(HDR4, LO6_REJECT ETH06_DEFAULT),
	      "route: IPv6 default via eth0");
	CHECK(!exec_net_has_default_route(NULL, NULL), "route: nothing read: not ready");
	CHECK(!exec_net_has_default_route(HDR4 "eth0\n\n\t\n", "0000 00\n"),
	      "route: short lines are not routes");
}

/* The local executor, with /proc/net/route answered from route4 and the
 * reads counted. */
static const char *route4 = HDR4;
static int route_reads;
static struct executor_ops fake_ops;
static const struct executor_ops *local_ops;

static int fake_read_file(struct executor *ex, const char *path, size_t max, struct buf *out)
{
	if (strcmp(path, "/proc/net/route") == 0) {
		route_reads++;
		buf_release(out);
		buf_init(out, max);
		return buf_adds(out, route4);
	}
	if (strcmp(path, "/proc/net/ipv6_route") == 0)
		return err_set("open '%s': No such file or directory", path);
	return local_ops->read_file(ex, path, max, out);
}

static struct executor *fake_local(void)
{
	struct executor *ex = executor_local_new();

	local_ops = ex->ops;
	fake_ops = *ex->ops;
	fake_ops.read_file = fake_read_file;
	ex->ops = &fake_ops;
	return ex;
}

static int sh(struct executor *ex, const char *script, const char *const *env,
	      struct exec_result *res, size_t cap)
{
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	struct exec_req req = { .argv = argv, .env = env, .timeout_ms = 10000,
				.capture_max = cap };

	memset(res, 0, sizeof(*res));
	return ex->ops->exec(ex, &req, res);
}

static void test_online(void)
{
	static const char *const env[] = { "http_proxy=http://p:3128", "HTTP_PROXY=http://p:3128",
					   "AMIFORGE_HOST_PORT_8000=34567", NULL };
	static const char *const mine[] = { "HTTP_PROXY=http://mine:1", NULL };
	struct exec_net_opts o = { .online = true, .env = env, .ready_timeout_ms = 1200 };
	struct executor *in = fake_local(), *ex;
	struct exec_result res;
	int64_t t0;
	int r;

	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	ex = executor_net_new(in, &o);
	CHECK(ex->ops->reboot == NULL && strcmp(ex->ops->name, in->ops->name) == 0,
	      "online: same name and reboot ability as the executor it wraps");
	/* No default route: the first command fails after the deadline. */
	route4 = HDR4 ETH0_LINK;
	route_reads = 0;
	t0 = now_ms();
	r = sh(ex, "true", NULL, &res, 4096);
	CHECK(r < 0 && strstr(err_msg(), "no default route after 1 s") &&
	      strstr(err_msg(), "DHCP"), "online: DHCP never answers: a clear error (%s)",
	      err_msg());
	CHECK(now_ms() - t0 >= 1100 && now_ms() - t0 < 5000 && route_reads >= 2,
	      "online: bounded wait, polled (%d reads)", route_reads);
	exec_result_release(&res);

	/* The route appears: the command runs, with the environment. */
	route4 = HDR4 ETH0_LINK ETH0_DEFAULT;
	route_reads = 0;
	r = sh(ex, "printf '%s|%s|%s' \"$http_proxy\" \"$HTTP_PROXY\" \"$AMIFORGE_HOST_PORT_8000\"",
	       NULL, &res, 4096);
	CHECK(r == 0 && res.status == 0 && route_reads == 1, "online: ready at once, runs");
	CHECK_STR(res.out.data, "http://p:3128|http://p:3128|34567",
		  "online: proxy and forward environment given to the command");
	exec_result_release(&res);
	r = sh(ex, "printf %s \"$HTTP_PROXY\"", mine, &res, 4096);
	CHECK(r == 0 && route_reads == 1, "online: later commands do not wait again");
	CHECK_STR(res.out.data, "http://mine:1", "online: the request's own entry wins");
	exec_result_release(&res);
	r = sh(ex, "echo boom >&2; exit 3", NULL, &res, 4096);
	CHECK(r == 0 && res.status == 3 && res.err.data && !strstr(res.err.data, "offline"),
	      "online: a failure gets no offline note");
	exec_result_release(&res);
	executor_close(ex);
	executor_close(in);
}

static void test_offline(void)
{
	struct exec_net_opts o = { .online = false,
				   .offline_reason = "the recipe sets vm.network: none" };
	struct executor *in = fake_local(), *ex = executor_net_new(in, &o);
	struct exec_result res;
	int r;

	route_reads = 0;
	r = sh(ex, "echo 'E: Unable to locate package hello' >&2; exit 100", NULL, &res, 4096);
	CHECK(r == 0 && res.status == 100 && route_reads == 0,
	      "offline: no readiness wait, the status is the command's");
	CHECK(res.err.data && strcmp(res.err.data, "E: Unable to locate package hello\nE: Unable to locate package hello "
					   "[the guest is offline: the recipe sets vm.network: none]\n") == 0,
	      "offline: the last stderr line says why (%s)", res.err.data ? res.err.data : "");
	exec_result_release(&res);
	r = sh(ex, "echo fine >&2", NULL, &res, 4096);
	CHECK(r == 0 && res.status == 0 && strcmp(res.err.data ? res.err.data : "", "fine\n") == 0,
	      "offline: a command that succeeds is left alone");
	exec_result_release(&res);
	/* A full capture still ends with the note. */
	r = sh(ex, "yes x | head -c 3000 >&2; exit 1", NULL, &res, 256);
	CHECK(r == 0 && res.err.len <= 256 && res.err.data &&
	      str_endswith(res.err.data, "[the guest is offline: the recipe sets vm.network: none]\n"),
	      "offline: the note fits in a full capture (%zu bytes)", res.err.len);
	exec_result_release(&res);
	executor_close(ex);
	executor_close(in);
}

/* A systemctl on PATH that answers is-system-running from DIR/state and
 * is-active from DIR/target, logging each call to DIR/calls. */
static char fake_dir[] = "/tmp/amiforge-test-net-XXXXXX";

static void put(const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", fake_dir, name);
	FILE *f = fopen(p, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
	free(p);
}

static int calls(void)
{
	char *p = xasprintf("%s/calls", fake_dir);
	FILE *f = fopen(p, "r");
	int n = 0, c;

	while (f && (c = fgetc(f)) != EOF)
		n += c == '\n';
	if (f)
		fclose(f);
	free(p);
	return n;
}

static void fake_systemctl(const char *state, const char *target)
{
	put("state", state);
	put("target", target);
	put("calls", "");
}

/* Flip DIR/target to "active" after ms, from a child process. */
static pid_t flip_later(int ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		usleep((useconds_t)ms * 1000);
		put("target", "active\n");
		_exit(0);
	}
	return pid;
}

static void test_boot(void)
{
	struct exec_net_opts o = { .online = false, .boot_timeout_ms = 1500 };
	struct executor *in = fake_local(), *ex;
	struct exec_result res;
	char *script, *path;
	const char *old = getenv("PATH");
	int64_t t0;
	pid_t pid;
	int r, n;

	if (!mkdtemp(fake_dir)) {
		CHECK(0, "boot: mkdtemp: %s", strerror(errno));
		return;
	}
	script = xasprintf("#!/bin/sh\nd=%s\necho \"$*\" >>$d/calls\n"
			   "case $1 in\nis-system-running) cat $d/state ;;\n"
			   "is-active) [ \"$(cat $d/target)\" = active ] ;;\n"
			   "*) exit 1 ;;\nesac\n", fake_dir);
	put("systemctl", script);
	free(script);
	path = xasprintf("%s/systemctl", fake_dir);
	chmod(path, 0755);
	free(path);
	path = xasprintf("%s:%s", fake_dir, old ? old : "/usr/bin:/bin");
	setenv("PATH", path, 1);
	free(path);

	/* Starting; the target comes up a second later: the command waits. */
	fake_systemctl("starting\n", "inactive\n");
	ex = executor_net_new(in, &o);
	pid = flip_later(800);
	t0 = now_ms();
	r = sh(ex, "echo ran", NULL, &res, 4096);
	waitpid(pid, NULL, 0);
	CHECK(r == 0 && res.status == 0 && res.out.data && strcmp(res.out.data, "ran\n") == 0,
	      "boot: the command runs once the boot's services are up");
	CHECK(now_ms() - t0 >= 700, "boot: it waited for multi-user.target (%" PRId64 " ms)",
	      now_ms() - t0);
	exec_result_release(&res);
	n = calls();
	CHECK(n >= 2, "boot: systemd asked (%d calls)", n);
	r = sh(ex, "true", NULL, &res, 4096);
	CHECK(r == 0 && calls() == n, "boot: later commands do not wait");
	exec_result_release(&res);
	executor_close(ex);

	/* Never gets there: a warning after the bound, and the command runs. */
	fake_systemctl("starting\n", "inactive\n");
	ex = executor_net_new(in, &o);
	t0 = now_ms();
	r = sh(ex, "echo ran", NULL, &res, 4096);
	CHECK(r == 0 && res.status == 0 && now_ms() - t0 >= 1400 && now_ms() - t0 < 6000,
	      "boot: bounded; the command still runs (%" PRId64 " ms)", now_ms() - t0);
	exec_result_release(&res);
	executor_close(ex);

	/* Booted (or degraded, or no systemd): no wait, no target asked. */
	fake_systemctl("degraded\n", "inactive\n");
	ex = executor_net_new(in, &o);
	r = sh(ex, "true", NULL, &res, 4096);
	CHECK(r == 0 && calls() == 1, "boot: a booted system is not waited for (%d calls)",
	      calls());
	exec_result_release(&res);
	executor_close(ex);

	/* boot_timeout_ms < 0: no boot wait at all. */
	fake_systemctl("starting\n", "inactive\n");
	o.boot_timeout_ms = -1;
	ex = executor_net_new(in, &o);
	r = sh(ex, "true", NULL, &res, 4096);
	CHECK(r == 0 && calls() == 0, "boot: switched off, systemd is not asked");
	exec_result_release(&res);
	executor_close(ex);

	setenv("PATH", old ? old : "/usr/bin:/bin", 1);
	executor_close(in);
	{
		const char *names[] = { "systemctl", "state", "target", "calls" };

		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			path = xasprintf("%s/%s", fake_dir, names[i]);
			unlink(path);
			free(path);
		}
		rmdir(fake_dir);
	}
}

int main(void)
{
	test_route_parser();
	test_boot();
	test_online();
	test_offline();
	return TEST_DONE();
}
