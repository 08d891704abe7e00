/* Unit tests for the generalisation script's cloudinit section
 * (builder/build/build.c): run by the real /bin/sh, find, grep and rm over a
 * scratch tree that stands in for /etc/cloud, /var/lib/cloud, /var/log and
 * /run (the script's absolute paths replaced by the tree's, everywhere,
 * before it runs), with a fake systemctl (says what the boot's state is)
 * and a fake cloud-init (records how it was called). Where the image
 * configures only cloud-init's defaults, the script removes what `cloud-init
 * clean --logs --seed` would itself; anything else is left to cloud-init. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "buf.h"
#include "error.h"
#include "run.h"
#include "util.h"
#include "builder/build/build.h"
#include "builder/guest/inject.h"

static char *root;

static char *at(const char *rel)
{
	return xasprintf("%s%s", root, rel);
}

static char *replace(const char *s, const char *from, const char *to);

/* The image's paths in text as the script sees them once its own are
 * replaced (caller frees). */
static char *paths(const char *text)
{
	static const char *const abs[] = {
		"/etc/cloud", "/var/lib/cloud", "/var/log", "/run/", "/etc/ssh", "/etc/machine-id",
		"/etc/systemd", "/etc/udev", "/etc/network", "/etc/resolv.conf", "/var/lib/dbus",
		"/var/lib/dhcp", "/var/tmp/amiforge-", "/tmp/amiforge-toe-", "/root", "/home",
		"/usr/local/sbin",
	};
	char *t = xstrdup(text);

	for (size_t i = 0; i < sizeof(abs) / sizeof(abs[0]); i++) {
		char *to = at(abs[i]), *n = replace(t, abs[i], to);

		free(to);
		free(t);
		t = n;
	}
	return t;
}

static void put(const char *rel, const char *text_as_in_image, mode_t mode)
{
	char *p = at(rel), *dir = xstrdup(p), *text = paths(text_as_in_image);

	*strrchr(dir, '/') = '\0';
	mkdir_p(dir, 0755);
	if (write_file_atomic(p, text, strlen(text), mode) < 0)
		CHECK(0, "write %s: %s", p, err_msg());
	free(text);
	free(dir);
	free(p);
}

static bool exists(const char *rel)
{
	char *p = at(rel);
	bool e = access(p, F_OK) == 0;

	free(p);
	return e;
}

static char *slurp(const char *rel)
{
	char *p = at(rel);
	struct buf b = BUF_INIT(1 << 20);
	char *s = buf_read_file(&b, p) == 0 ? xstrndup(b.data ? b.data : "", b.len) : xstrdup("");

	buf_release(&b);
	free(p);
	return s;
}

/* s with every from replaced by to (caller frees). */
static char *replace(const char *s, const char *from, const char *to)
{
	struct buf b = BUF_INIT(1 << 22);
	const char *p;
	char *out;

	while ((p = strstr(s, from))) {
		buf_add(&b, s, (size_t)(p - s));
		buf_add(&b, to, strlen(to));
		s = p + strlen(from);
	}
	buf_add(&b, s, strlen(s));
	out = xstrndup(b.data, b.len);
	buf_release(&b);
	return out;
}

/* A fresh image tree: cloud-init's state and logs as a boot leaves them,
 * Debian's configuration, the fakes; state is what systemctl says. */
static void image(const char *state)
{
	char *sys = xasprintf("#!/bin/sh\n[ \"$1\" = is-system-running ] && echo %s\nexit 0\n", state);
	char *ci = xasprintf("#!/bin/sh\necho \"$*\" >>%s/ci-calls\n", root);

	remove_tree(root);
	err_clear();
	mkdir_p(root, 0700);
	put("/bin/systemctl", sys, 0755);
	put("/bin/cloud-init", ci, 0755);
	put("/etc/cloud/cloud.cfg", "system_info:\n   paths:\n      cloud_dir: /var/lib/cloud/\n"
	    "      templates_dir: /etc/cloud/templates/\n", 0644);
	put("/etc/cloud/cloud.cfg.d/05_logging.cfg",
	    "# 'tee -a /var/log/cloud-init-output.log' so the user can see output\n"
	    "output: {all: '| tee -a /var/log/cloud-init-output.log'}\n", 0644);
	put("/etc/cloud/clean.d/README", "scripts here run at clean\n", 0644);
	put("/var/lib/cloud/instances/i-1/boot-finished", "x\n", 0644);
	put("/var/lib/cloud/seed/nocloud/user-data", "#cloud-config\n", 0644);
	put("/var/lib/cloud/data/status.json", "{}\n", 0644);
	put("/var/lib/cloud/scripts/per-boot/keep.sh", "true\n", 0755);
	put("/var/log/cloud-init.log", "log\n", 0644);
	put("/var/log/cloud-init.log.1", "old log\n", 0644);
	put("/var/log/cloud-init-output.log", "out\n", 0644);
	put("/var/log/syslog", "other\n", 0644);
	put("/run/keep", "", 0644);
	free(sys);
	free(ci);
}

/* Run the sections named (NULL-terminated); its stdout (caller frees). */
static char *run_sections(const char *const *sections)
{
	char *s = paths(build_generalise_script());
	char *path = xasprintf("PATH=%s/bin:/usr/bin:/bin", root), *out;
	const char *env[] = { path, NULL };
	const char *argv[16] = { "/bin/sh", "-c", s, "amiforge-generalise" };
	struct run r = RUN_INIT;

	for (size_t i = 0; sections[i] && i < 11; i++)
		argv[4 + i] = sections[i];
	r.argv = argv;
	r.env = env;
	r.out = RUN_CAPTURE;
	r.err = RUN_CAPTURE;
	r.timeout_ms = 60000;
	if (run_sync(&r) < 0 || run_check(&r) < 0)
		CHECK(0, "the script ran: %s", err_msg());
	out = xstrndup(r.out_buf.data ? r.out_buf.data : "", r.out_buf.len);
	run_release(&r);
	free(s);
	free(path);
	return out;
}

/* The cloudinit section alone. */
static char *run_section(void)
{
	static const char *const ci[] = { "cloudinit", NULL };

	return run_sections(ci);
}

static bool dir_empty(const char *rel)
{
	char *p = at(rel);
	struct run r = RUN_INIT;
	const char *argv[] = { "find", p, "-mindepth", "1", NULL };
	bool empty;

	r.argv = argv;
	r.out = RUN_CAPTURE;
	empty = run_sync(&r) == 0 && r.status == 0 && r.out_buf.len == 0;
	run_release(&r);
	free(p);
	return empty;
}

int main(void)
{
	char *out, *calls;

	root = make_temp_dir("amiforge-gen-", "/tmp");
	CHECK(strstr(build_generalise_script(), "cloudinit)") != NULL, "the script has its section");

	/* 1. Debian's defaults, a booted system: no Python at all. */
	image("running");
	out = run_section();
	calls = slurp("/ci-calls");
	CHECK(strstr(out, "cloud-init clean: the default paths") != NULL,
	      "defaults: removed by the script (%s)", out);
	CHECK_STR(calls, "", "defaults: cloud-init never called (no status --wait: the boot's "
		  "jobs are done)");
	CHECK(dir_empty("/var/lib/cloud"), "defaults: cloud_dir emptied, seed included (--seed)");
	CHECK(!exists("/var/log/cloud-init.log") && !exists("/var/log/cloud-init.log.1") &&
	      !exists("/var/log/cloud-init-output.log"), "defaults: the logs and a rotated one gone");
	CHECK(exists("/var/log/syslog") && exists("/etc/cloud/clean.d/README") && exists("/run/keep"),
	      "defaults: nothing else touched");
	free(out);
	free(calls);

	/* 2. A script in clean.d: cloud-init runs it, so cloud-init cleans. */
	image("running");
	put("/etc/cloud/clean.d/10-vendor", "#!/bin/sh\n", 0755);
	out = run_section();
	calls = slurp("/ci-calls");
	CHECK(strstr(out, "cloud-init clean: cloud-init's own") != NULL,
	      "clean.d script: left to cloud-init (%s)", out);
	CHECK_STR(calls, "clean --logs --seed\n", "clean.d script: `cloud-init clean --logs --seed`");
	free(out);
	free(calls);

	/* 3. Another cloud_dir, another log file, another output: cloud-init's. */
	{
		static const char *const cfgs[] = {
			"system_info:\n  paths:\n    cloud_dir: /srv/cloud/\n",
			"def_log_file: /var/log/ci.log\n",
			"output: {all: '| tee -a /var/log/elsewhere.log'}\n",
			"output:\n  init: '> /var/log/init.log'\n",
		};

		for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
			image("running");
			put("/etc/cloud/cloud.cfg.d/99-custom.cfg", cfgs[i], 0644);
			out = run_section();
			calls = slurp("/ci-calls");
			CHECK(strstr(calls, "clean --logs --seed") != NULL,
			      "custom configuration %zu: left to cloud-init (%s)", i + 1, out);
			free(out);
			free(calls);
		}
	}

	/* 4. The boot not done (systemd still starting, or past the bound):
	 *    cloud-init is asked to wait; a checkpoint's boot that held it
	 *    off ran no stage: nothing to wait for. */
	image("starting");
	out = run_section();
	calls = slurp("/ci-calls");
	CHECK(strstr(calls, "status --wait") != NULL, "boot not done: cloud-init status --wait");
	free(out);
	free(calls);
	image("starting");
	put(INJECT_CI_HELD_RUN, "", 0644);
	out = run_section();
	calls = slurp("/ci-calls");
	CHECK_STR(calls, "", "held by a checkpoint: no wait, no cloud-init");
	free(out);
	free(calls);

	/* 5. Every section at once: what each removes goes, one rm for all,
	 *    and nothing else is touched. */
	{
		static const char *const all[] = { "cloudinit", "ssh", "logs", "machine-id",
						   "history", "agent", "network", NULL };
		static const char *const gone[] = {
			"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub",
			"/root/.ssh/authorized_keys", "/home/a b/.ssh/authorized_keys2",
			"/var/log/syslog.1", "/var/log/apt/history.log.2.gz", "/var/log/x.old",
			"/var/log/journal/0123/system.journal", "/var/lib/dhcp/dhclient.eth0.leases",
			"/tmp/amiforge-toe-1/log", "/var/tmp/amiforge-x/y", "/var/lib/dbus/machine-id",
			"/root/.bash_history", "/home/a b/.viminfo", INJECT_UNIT_PATH,
			INJECT_WANTS_PATH, INJECT_AGENT_PATH, INJECT_CI_HOLD_PATH,
			"/etc/udev/rules.d/70-persistent-net.rules",
			"/etc/network/interfaces.d/50-cloud-init", "/etc/resolv.conf",
			"/var/lib/cloud/instances/i-1/boot-finished", "/var/log/cloud-init.log",
		};
		static const char *const kept[] = {
			"/etc/ssh/sshd_config", "/root/.ssh/config", "/root/.profile",
			"/etc/network/interfaces.d/eth1", "/etc/systemd/system/other.service",
			"/etc/cloud/cloud.cfg", "/run/keep",
		};
		char *syslog;

		image("running");
		for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
			put(gone[i], strcmp(gone[i], INJECT_CI_HOLD_PATH) == 0 ?
			    INJECT_CI_HOLD_TEXT : "x\n", 0600);
		put("/etc/network/interfaces.d/50-cloud-init",
		    "# generated from information provided by the datasource\n", 0644);
		for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
			if (!exists(kept[i]))
				put(kept[i], "keep\n", 0644);
		put("/etc/machine-id", "0123456789abcdef\n", 0444);
		out = run_sections(all);
		for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
			CHECK(!exists(gone[i]), "every section: %s removed", gone[i]);
		for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
			CHECK(exists(kept[i]), "every section: %s kept", kept[i]);
		syslog = slurp("/var/log/syslog");
		CHECK_STR(syslog, "", "every section: a current log emptied, not removed");
		free(syslog);
		syslog = slurp("/etc/machine-id");
		CHECK_STR(syslog, "", "every section: machine-id emptied");
		free(syslog);
		free(out);
		/* Nothing in any section's list: no rm at all, no error. */
		image("running");
		out = run_sections((const char *const[]){ "ssh", NULL });
		CHECK(exists("/etc/cloud/cloud.cfg") && exists("/var/log/syslog"),
		      "ssh alone: nothing else touched");
		free(out);
	}

	remove_tree(root);
	free(root);
	return TEST_DONE();
}
