/* The agent protocol end to end, without a VM.
 *
 * Part 1 runs the real static agent ($BUILD/amiforge-agent --socket ...
 * --fake-power) on this machine and drives every operation through the
 * executor API. Part 2 puts a FAKE GUEST (a forked process speaking raw
 * frames) on the other end of a socketpair: garbage, oversized frames,
 * stalls, disconnects, wrong ids, stale nonces, lying sizes and digests.
 * The client must fail each with a clear error, within its deadline, without
 * leaking (run under ASan by make check-asan). */
#include <openssl/evp.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "test.h"
#include "builder/guest/agent-client.h"
#include "builder/guest/guest.h"
#include "builder/exec/executor.h"
#include "error.h"
#include "proto.h"
#include "run.h"
#include "util.h"

static char *tmpdir;

static char *path_in(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static int sha256_file(const char *path, char hex[65])
{
	uint8_t buf[65536], d[32];
	unsigned dl;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0) {
		EVP_MD_CTX_free(md);
		return -1;
	}
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(md, buf, (size_t)n);
	EVP_DigestFinal_ex(md, d, &dl);
	EVP_MD_CTX_free(md);
	close(fd);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	return 0;
}

/* --- part 1: the real agent ------------------------------------------------ */

struct outlog {
	int64_t start, first;   /* first: ms to the first chunk, -1 none yet */
	size_t chunks;
};

static void on_output(int stream UNUSED, const char *data UNUSED, size_t len UNUSED, void *opaque)
{
	struct outlog *l = opaque;

	/* The first chunk may well arrive within the first millisecond. */
	if (l->first < 0)
		l->first = now_ms() - l->start;
	l->chunks++;
}

static int run_cmd(struct executor *ex, const char *const *argv, struct exec_result *res,
		   int64_t timeout_ms)
{
	struct exec_req req = { .argv = argv, .timeout_ms = timeout_ms, .capture_max = 1 << 20 };

	return ex->ops->exec(ex, &req, res);
}

static void test_exec(struct executor *ex)
{
	struct exec_result res;
	int64_t t0;

	{
		const char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
		CHECK(run_cmd(ex, argv, &res, 0) == 0 && res.status == 3 &&
		      strcmp(res.out.data, "out\n") == 0 && strcmp(res.err.data, "err\n") == 0,
		      "agent exec: exit status, stdout and stderr");
		exec_result_release(&res);
	}
	{
		const char *argv[] = { "sh", "-c", "echo a; sleep 1; echo b", NULL };
		struct outlog l = { .start = now_ms(), .first = -1 };
		struct exec_req req = { .argv = argv, .on_output = on_output, .opaque = &l,
					.capture_max = 100 };
		int r = ex->ops->exec(ex, &req, &res);
		int64_t total = now_ms() - l.start;

		CHECK(r == 0 && res.status == 0 && l.chunks >= 2 && l.first < total - 500 &&
		      strcmp(res.out.data, "a\nb\n") == 0,
		      "agent exec: output streamed while running (first after %" PRId64
		      " ms of %" PRId64 ")", l.first, total);
		exec_result_release(&res);
	}
	{
		const char *argv[] = { "cat", NULL };
		size_t n = 3u << 20;
		char *in = xmalloc(n);
		struct exec_req req = { .argv = argv, .stdin_data = in, .stdin_len = n,
					.capture_max = n };

		for (size_t i = 0; i < n; i++)
			in[i] = (char)('a' + i % 23);
		CHECK(ex->ops->exec(ex, &req, &res) == 0 && res.status == 0 && res.out.len == n &&
		      memcmp(res.out.data, in, n) == 0, "agent exec: 3 MiB of stdin echoed back");
		exec_result_release(&res);
		free(in);
	}
	{
		const char *argv[] = { "sh", "-c", "yes | head -c 300000", NULL };
		struct exec_req req = { .argv = argv, .capture_max = 1000 };

		CHECK(ex->ops->exec(ex, &req, &res) == 0 && res.out.len == 1000,
		      "agent exec: capture stops at capture_max");
		exec_result_release(&res);
	}
	{
		const char *argv[] = { "sh", "-c", "sleep 30 & echo $!; wait", NULL };
		long bg = 0;
		char *end, proc[64];
		bool gone;

		t0 = now_ms();
		CHECK(run_cmd(ex, argv, &res, 500) == 0 && res.timed_out && res.status != 0 &&
		      now_ms() - t0 < 5000,
		      "agent exec: deadline kills the command (%" PRId64 " ms, status %d)",
		      now_ms() - t0, res.status);
		if (res.out.data)
			bg = strtol(res.out.data, &end, 10);
		usleep(200 * 1000);
		snprintf(proc, sizeof(proc), "/proc/%ld/stat", bg);
		{
			struct buf b = BUF_INIT(4096);
			gone = bg <= 0 ? false : buf_read_file(&b, proc) < 0 ||
				strstr(b.data, ") Z ") != NULL;
			buf_release(&b);
		}
		CHECK(gone, "agent exec: deadline kills the whole process group (pid %ld)", bg);
		exec_result_release(&res);
	}
	{
		const char *argv[] = { "sh", "-c", "echo $FOO; pwd", NULL };
		const char *env[] = { "FOO=bar baz", NULL };
		struct exec_req req = { .argv = argv, .env = env, .cwd = "/tmp", .capture_max = 100 };

		CHECK(ex->ops->exec(ex, &req, &res) == 0 &&
		      strcmp(res.out.data ? res.out.data : "", "bar baz\n/tmp\n") == 0,
		      "agent exec: env and cwd");
		exec_result_release(&res);
	}
	if (geteuid() == 0) {
		const char *argv[] = { "id", "-u", NULL };
		struct exec_req req = { .argv = argv, .user = "nobody", .capture_max = 100 };

		CHECK(ex->ops->exec(ex, &req, &res) == 0 &&
		      strcmp(res.out.data ? res.out.data : "", "65534\n") == 0,
		      "agent exec: runs as another user");
		exec_result_release(&res);
	} else {
		printf("SKIP: agent exec: user switch needs root\n");
	}
	{
		const char *argv[] = { "/nonexistent/cmd", NULL };
		CHECK(run_cmd(ex, argv, &res, 0) < 0 && strstr(err_msg(), "No such file"),
		      "agent exec: missing program is an error (%s)", err_msg());
		exec_result_release(&res);
		const char *ok[] = { "true", NULL };
		CHECK(run_cmd(ex, ok, &res, 0) == 0 && res.status == 0,
		      "agent exec: next command after an error works");
		exec_result_release(&res);
	}
}

/* What a script sees of itself and its shell, one value a line; then its
 * process's age in ms (a shell started ahead is older than the request). */
static const char script_probe[] =
	"echo \"start: $_ $SECONDS ${BASH_ENV-unset} $LINENO $# ${FUNCNAME[*]-none} $(umask)\"\n"
	"echo \"source: $([ \"${BASH_SOURCE[0]}\" = \"$0\" ] && echo same)\"\n"
	"echo \"file: $(wc -c < \"$0\")\"\n"
	"echo \"pwd: $PWD\"\n"
	"echo \"env: $(env | grep -v '^_=' | sort | md5sum)\"\n"
	"return 7 2>/dev/null; echo \"return: $?\"\n"
	"echo \"path: $0\"\n"
	"awk -v s=\"$(cut -d' ' -f22 /proc/$$/stat)\" -v t=\"$(getconf CLK_TCK)\" "
	"'{ printf \"age: %d\\n\", ($1 - s / t) * 1000 }' /proc/uptime\n";

static int run_script(struct executor *ex, const char *cwd, const char *const *env,
		      const char *script, struct exec_result *res)
{
	static const char *const argv[] = { "bash", NULL };
	struct exec_req req = { .argv = argv, .env = env, .cwd = cwd, .capture_max = 1 << 20,
				.script = script, .script_len = strlen(script) };

	return ex->ops->exec(ex, &req, res);
}

/* The value after "key: " in out, up to the line's end ("" if none). */
static char *line_of(const struct exec_result *res, const char *key)
{
	const char *p = res->out.data ? strstr(res->out.data, key) : NULL;

	if (!p)
		return xstrdup("");
	p += strlen(key);
	return xstrndup(p, strcspn(p, "\n"));
}

/* Run the probe: its bash's age in ms, or -1 when it failed. */
static int script_age(struct executor *ex, const char *cwd, const char *const *env)
{
	struct exec_result res;
	int age = -1;

	if (run_script(ex, cwd, env, script_probe, &res) == 0 && res.status == 0) {
		char *a = line_of(&res, "age: ");

		age = (int)strtol(a, NULL, 10);
		free(a);
	}
	exec_result_release(&res);
	return age;
}

/* bash processes whose parent is pid. */
static int bash_children(pid_t pid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d))) {
		char *path = xasprintf("/proc/%s/stat", e->d_name), buf[512];
		int fd = open(path, O_RDONLY), ppid = 0;
		ssize_t got = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		char *rp;

		if (got > 0) {
			buf[got] = '\0';
			rp = strrchr(buf, ')');
			if (rp && strlen(rp) > 4)
				ppid = (int)strtol(rp + 4, NULL, 10);   /* ") S ppid" */
			if (ppid == pid &&
			    strstr(buf, "(bash)"))
				n++;
		}
		if (fd >= 0)
			close(fd);
		free(path);
	}
	if (d)
		closedir(d);
	return n;
}

/* exec_req.script: a script file in cwd, removed after; after a script under
 * bash the agent starts the next one's bash ahead, which must look to the
 * script exactly as a bash started for it (guest-agent/exec.c). */
static void test_scripts(struct executor *ex, pid_t agent)
{
	char *cwd = path_in("scripts");
	const char *env1[] = { "PROBE=1", NULL }, *env2[] = { "PROBE=2", NULL };
	struct exec_result cold, warm, other;
	char *k1, *k2, *p1, *p2;
	struct file_stat st = { 0 };
	static const char *const keys[] = { "start: ", "source: ", "file: ", "pwd: ", "env: ",
					    "return: " };
	bool same = true;
	int age;

	mkdir(cwd, 0700);
	memset(&warm, 0, sizeof(warm));
	CHECK(run_script(ex, cwd, env1, script_probe, &cold) == 0 && cold.status == 0,
	      "agent script: runs (status %d: %s)", cold.status, cold.err.data ? cold.err.data : "");
	p1 = line_of(&cold, "path: ");
	CHECK(strncmp(p1, cwd, strlen(cwd)) == 0 && strstr(p1, "/step-") && ex->ops->stat(ex, p1, &st) == 0 &&
	      !st.exists, "agent script: a file in cwd (%s), gone after the run", p1);
	k1 = line_of(&cold, "start: ");
	CHECK(strcmp(k1, "bash 0 unset 1 0 none 0022") == 0,
	      "agent script: $_ $SECONDS $BASH_ENV $LINENO $# FUNCNAME umask as bash's own: '%s'", k1);
	free(k1);
	poll(NULL, 0, 1000);
	CHECK(run_script(ex, cwd, env1, script_probe, &warm) == 0 && warm.status == 0,
	      "agent script: the next one runs");
	age = (int)strtol((k1 = line_of(&warm, "age: ")), NULL, 10);
	free(k1);
	CHECK(age >= 800, "agent script: the next one's bash was started ahead (%d ms old)", age);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		k1 = line_of(&cold, keys[i]);
		k2 = line_of(&warm, keys[i]);
		if (strcmp(k1, k2) != 0 || !*k1) {
			same = false;
			printf("# %s'%s' started for it, '%s' started ahead\n", keys[i], k1, k2);
		}
		free(k1);
		free(k2);
	}
	CHECK(same, "agent script: started ahead, it sees what one started for it sees "
	      "($_, SECONDS, BASH_ENV, LINENO, BASH_SOURCE, its file, cwd, environment, return)");
	p2 = line_of(&warm, "path: ");
	CHECK(strcmp(p1, p2) != 0 && ex->ops->stat(ex, p2, &st) == 0 && !st.exists,
	      "agent script: its own file (%s), gone after", p2);
	free(p1);
	free(p2);
	exec_result_release(&cold);
	exec_result_release(&warm);

	/* another environment: started cold, same answers otherwise */
	age = script_age(ex, cwd, env2);
	CHECK(age >= 0 && age < 800, "agent script: another environment starts its own bash "
	      "(%d ms old)", age);
	{
		/* bash started ahead would read its own $BASH_ENV: never for these */
		const char *env3[] = { "BASH_ENV=/dev/null", NULL };

		script_age(ex, cwd, env3);
		poll(NULL, 0, 1000);
		age = script_age(ex, cwd, env3);
		CHECK(age >= 0 && age < 800, "agent script: with BASH_ENV in its environment "
		      "a script's bash starts for it (%d ms old)", age);
	}
	CHECK(run_script(ex, cwd, env2, "exit 3\n", &other) == 0 && other.status == 3,
	      "agent script: exit status from the script (%d)", other.status);
	exec_result_release(&other);
	/* the agent starts it after its answer: give it a moment */
	for (int i = 0; i < 100 && bash_children(agent) != 2; i++)
		poll(NULL, 0, 20);
	CHECK(bash_children(agent) == 2, "agent script: two bash wait for the next scripts");
	{
		const char *t[] = { "true", NULL };
		CHECK(run_cmd(ex, t, &other, 0) == 0 && other.status == 0 &&
		      bash_children(agent) == 0,
		      "agent script: another command stops the bash started ahead");
		exec_result_release(&other);
	}
	{
		size_t n = 700 * 1024;
		char *big = xcalloc(1, n + 32);

		memset(big, '#', n);
		memcpy(big + n, "\necho big\n", sizeof("\necho big\n"));
		CHECK(run_script(ex, cwd, env2, big, &other) == 0 && other.status == 0 &&
		      strcmp(other.out.data ? other.out.data : "", "big\n") == 0,
		      "agent script: one of 700 KiB (written first, not in the request)");
		exec_result_release(&other);
		free(big);
	}
	CHECK(run_script(ex, "/nonexistent-dir", env2, "true\n", &other) < 0,
	      "agent script: a missing directory is an error (%s)", err_msg());
	exec_result_release(&other);
	free(cwd);
}

static void test_files(struct executor *ex)
{
	char *big = path_in("big.host"), *back = path_in("big.back");
	char *g = path_in("guest"), *gbig = path_in("guest/sub/big");
	char h1[65], h2[65], h3[65];
	char *hex = NULL;
	struct file_stat st;
	struct buf b = BUF_INIT(1 << 20);
	int64_t t0;
	size_t size = 64u << 20;

	/* 64 MiB of random data. */
	{
		uint8_t *data = xmalloc(size);
		int fd;

		for (size_t off = 0; off < size; ) {
			ssize_t n = getrandom(data + off, size - off, 0);
			if (n > 0)
				off += (size_t)n;
		}
		fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0 && write_all(fd, data, size) == 0 && close(fd) == 0,
		      "agent files: 64 MiB random host file");
		free(data);
	}
	CHECK(ex->ops->mkdir_p(ex, g, 0755) == 0 && ex->ops->mkdir_p(ex, gbig, 0700) == 0 &&
	      ex->ops->remove(ex, gbig, false) == 0, "agent files: mkdir -p and remove empty dir");
	t0 = now_ms();
	CHECK(ex->ops->put_file(ex, big, gbig, 0640) == 0,
	      "agent files: put 64 MiB (%" PRId64 " ms)", now_ms() - t0);
	sha256_file(big, h1);
	sha256_file(gbig, h2);
	CHECK(strcmp(h1, h2) == 0, "agent files: sha256 equal after put");
	CHECK(ex->ops->stat(ex, gbig, &st) == 0 && st.exists && S_ISREG(st.mode) &&
	      (st.mode & 07777) == 0640 && st.size == size, "agent files: stat after put (mode %o)",
	      (unsigned)st.mode);
	file_stat_release(&st);
	t0 = now_ms();
	CHECK(ex->ops->get_file(ex, gbig, back) == 0, "agent files: get 64 MiB (%" PRId64 " ms)",
	      now_ms() - t0);
	sha256_file(back, h3);
	CHECK(strcmp(h1, h3) == 0, "agent files: sha256 equal after get");
	CHECK(ex->ops->hash_file(ex, gbig, "sha256", &hex) == 0 && hex && strcmp(hex, h1) == 0,
	      "agent files: hash sha256 of 64 MiB");
	free(hex);
	/* A checkpoint's sync(2) is a request of its own, not a `sync` run. */
	CHECK(ex->ops->flush && executor_flush(ex, 60000) == 0,
	      "agent: flush (the guest's sync(2)) answers ok");
	hex = NULL;

	{
		char *f = path_in("guest/small");
		static const struct { const char *algo, *hex; } known[] = {
			{ "md5", "900150983cd24fb0d6963f7d28e17f72" },
			{ "sha1", "a9993e364706816aba3e25717850c26c9cd0d89d" },
			{ "sha256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
			{ "sha512", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
				    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f" },
		};

		CHECK(ex->ops->write_file(ex, f, "ab", 2, 0600, false) == 0 &&
		      ex->ops->write_file(ex, f, "c", 1, 0600, true) == 0 &&
		      ex->ops->read_file(ex, f, 100, &b) == 0 && b.len == 3 &&
		      memcmp(b.data, "abc", 3) == 0, "agent files: write, append, read");
		for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
			CHECK(ex->ops->hash_file(ex, f, known[i].algo, &hex) == 0 && hex &&
			      strcmp(hex, known[i].hex) == 0, "agent files: %s digest", known[i].algo);
			free(hex);
			hex = NULL;
		}
		CHECK(ex->ops->hash_file(ex, f, "crc32", &hex) < 0, "agent files: unknown digest rejected");
		CHECK(ex->ops->read_file(ex, gbig, 1000, &b) < 0 && strstr(err_msg(), "limit"),
		      "agent files: read_file past max fails (%s)", err_msg());
		CHECK(ex->ops->stat(ex, f, &st) == 0 && st.exists && st.size == 3,
		      "agent files: session usable after an abandoned stream");
		buf_reset(&b);
		CHECK(ex->ops->read_file(ex, "/proc/self/status", 64 * 1024, &b) == 0 && b.len > 0 &&
		      strstr(b.data, "Name:"), "agent files: read_file of a procfs file (size 0) works");
		file_stat_release(&st);
		free(f);
	}
	{
		char *t = path_in("guest/tree"), *t2 = path_in("guest/tree2"), *x;
		char *lnk = path_in("guest/tree/link"), *miss = path_in("guest/missing");
		struct dir_entry *e = NULL;
		size_t n = 0;
		bool names = false;

		x = path_in("guest/tree/d/x");
		CHECK(ex->ops->mkdir_p(ex, t, 0755) == 0 && ex->ops->mkdir_p(ex, x, 0755) == 0 &&
		      ex->ops->remove(ex, x, false) == 0, "agent tree: mkdirs");
		free(x);
		x = path_in("guest/tree/d/script");
		CHECK(ex->ops->write_file(ex, x, "#!/bin/sh\n", 10, 0750, false) == 0 &&
		      ex->ops->symlink(ex, "d/script", lnk) == 0, "agent tree: file and symlink");
		CHECK(ex->ops->stat(ex, lnk, &st) == 0 && S_ISLNK(st.mode) && st.link_target &&
		      strcmp(st.link_target, "d/script") == 0, "agent tree: stat symlink (lstat)");
		file_stat_release(&st);
		CHECK(ex->ops->stat(ex, miss, &st) == 0 && !st.exists, "agent tree: stat missing");
		CHECK(ex->ops->copy(ex, t, t2, false) < 0, "agent tree: copy of a dir needs recursive");
		CHECK(ex->ops->copy(ex, t, t2, true) == 0, "agent tree: recursive copy");
		free(x);
		x = path_in("guest/tree2/d/script");
		CHECK(ex->ops->stat(ex, x, &st) == 0 && st.exists && (st.mode & 0777) == 0750,
		      "agent tree: copy preserves mode");
		file_stat_release(&st);
		CHECK(ex->ops->list_dir(ex, t2, &e, &n) == 0, "agent tree: list");
		for (size_t i = 0; i < n; i++)
			names |= strcmp(e[i].name, "link") == 0 && S_ISLNK(e[i].mode);
		CHECK(n == 2 && names, "agent tree: list has 2 entries incl. the symlink");
		dir_entries_free(e, n);
		CHECK(ex->ops->chmod(ex, t2, 0700, true) == 0 && ex->ops->stat(ex, x, &st) == 0 &&
		      (st.mode & 0777) == 0700, "agent tree: recursive chmod");
		file_stat_release(&st);
		if (geteuid() == 0) {
			CHECK(ex->ops->chown(ex, t2, "nobody", "65534", true) == 0 &&
			      ex->ops->stat(ex, x, &st) == 0 && st.uid == 65534 && st.gid == 65534,
			      "agent tree: recursive chown by name and id");
			file_stat_release(&st);
			CHECK(ex->ops->chown(ex, t2, "no-such-user-x", NULL, false) < 0 &&
			      strstr(err_msg(), "unknown user"), "agent tree: unknown user rejected");
		}
		free(x);
		x = path_in("guest/tree3");
		CHECK(ex->ops->rename(ex, t2, x) == 0 && ex->ops->stat(ex, t2, &st) == 0 &&
		      !st.exists, "agent tree: rename");
		file_stat_release(&st);
		CHECK(ex->ops->remove(ex, x, true) == 0 && ex->ops->stat(ex, x, &st) == 0 &&
		      !st.exists, "agent tree: recursive remove");
		file_stat_release(&st);
		CHECK(ex->ops->remove(ex, miss, false) == 0, "agent tree: removing missing is fine");
		CHECK(ex->ops->copy(ex, t, lnk, true) < 0 && strstr(err_msg(), "inside"),
		      "agent tree: copy into itself refused");
		CHECK(ex->ops->stat(ex, "relative", &st) < 0, "agent tree: relative path rejected");
		free(x);
		free(t);
		free(t2);
		free(lnk);
		free(miss);
	}
	buf_release(&b);
	unlink(big);
	unlink(back);
	free(big);
	free(back);
	free(g);
	free(gbig);
}

/* The bulk disk an executor gets from bulk_ex(): 16 MiB of room. */
#define FAKE_BULK_CAP (16u << 20)

/* A bulk disk for ex: a sparse file with the header of nonce 42. */
static void bulk_ex(struct executor *ex)
{
	char *p = path_in("fake-bulk.raw");
	char hdr[PROTO_BULK_HDR] = { 0 };
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);

	snprintf(hdr, sizeof(hdr), "%s%016x\n", PROTO_BULK_MAGIC, 42);
	if (fd < 0 || ftruncate(fd, PROTO_BULK_HDR + FAKE_BULK_CAP) < 0 ||
	    write_all(fd, hdr, sizeof(hdr)) < 0 || close(fd) < 0 ||
	    executor_agent_set_bulk(ex, p, 42, FAKE_BULK_CAP) < 0)
		CHECK(0, "fake guest: bulk disk '%s': %s", p, err_msg());
	free(p);
}

static void test_real_agent(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char *bin = xasprintf("%s/amiforge-agent", build);
	char *sock = path_in("agent.sock");
	const char *argv[] = { bin, "--socket", sock, "--fake-power", NULL };
	struct run r = RUN_INIT;
	struct agent *a;
	struct agent_info info;
	struct executor *ex;
	struct utsname u;
	char *boot1;

	r.argv = argv;
	r.err = RUN_INHERIT;
	if (run_start(&r) < 0) {
		CHECK(0, "agent: start %s: %s", bin, err_msg());
		goto out;
	}
	a = agent_open_unix(sock, 5000);
	CHECK(a != NULL, "agent: connect to the socket");
	if (!a)
		goto out;
	CHECK(agent_sync(a, 5000) == 0 && agent_boot_id(a) != NULL, "agent: sync handshake");
	uname(&u);
	CHECK(agent_get_info(a, &info, 5000) == 0 && info.kernel && info.arch &&
	      strcmp(info.arch, u.machine) == 0 && info.proto_version == PROTO_VERSION_MAX && info.uptime > 0,
	      "agent: info (kernel %s, os %s)", info.kernel ? info.kernel : "?",
	      info.os_id ? info.os_id : "?");
	agent_info_release(&info);
	ex = executor_agent_new(a);
	test_exec(ex);
	test_scripts(ex, r.pid);
	test_files(ex);
	{
		/* An agent that finds no bulk disk (this host has no such virtio
		 * disk): the same transfers fall back to the channel. */
		struct executor *bex = executor_agent_new(a);
		char *big = path_in("bulk.host"), *gb = path_in("bulk-fallback");
		char *back = path_in("bulk-fallback.back"), h1[65], h2[65];
		size_t n = 4u << 20;
		uint8_t *data = xcalloc(1, n);
		bool ok;
		int fd;

		getrandom(data, 4096, 0);
		fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0 && write_all(fd, data, n) == 0 && close(fd) == 0,
		      "agent files: 4 MiB host file (bulk size)");
		free(data);
		bulk_ex(bex);
		ok = bex->ops->put_file(bex, big, gb, 0600) == 0 &&
		     bex->ops->get_file(bex, gb, back) == 0;
		CHECK(ok, "agent files: no bulk disk in the guest: put and get fall back to the "
		      "channel (%s)", ok ? "ok" : err_msg());
		sha256_file(big, h1);
		sha256_file(back, h2);
		CHECK(ok && strcmp(h1, h2) == 0,
		      "agent files: sha256 equal after the fallback round trip");
		executor_close(bex);
		free(big);
		free(gb);
		free(back);
	}
	/* After a restore: the host's bytes into the kernel's pool, credited,
	 * and the CRNG reseeded (root's: CAP_SYS_ADMIN). */
	if (geteuid() == 0)
		CHECK(agent_reseed(a, 5000) == 0, "agent: reseed the kernel's CRNG");
	else
		CHECK(agent_reseed(a, 5000) < 0 && strstr(err_msg(), "RNDADDENTROPY"),
		      "agent: reseed refused without CAP_SYS_ADMIN (%s)", err_msg());
	err_clear();
	{
		uint8_t few[PROTO_RESEED_MIN - 1] = { 0 };
		struct proto_msg m;
		struct proto_frame f;
		uint32_t id = agent_begin(a);

		proto_msg_init(&m, PROTO_T_RESEED, 0, id);
		proto_msg_bytes(&m, PROTO_A_DIGEST, few, sizeof(few));
		CHECK(id && agent_send_msg(a, &m) == 0 && agent_expect_ok(a, id, &f, 5000) < 0 &&
		      strstr(err_msg(), "32 to 64 bytes expected"),
		      "agent: reseed with %zu bytes refused (%s)", sizeof(few), err_msg());
		proto_msg_release(&m);
		err_clear();
	}
	boot1 = xstrdup(agent_boot_id(a));
	{
		/* The reboot first waits for the boot's end (guest.h
		 * GUEST_BOOT_DONE_SH): here on this host, whose systemd (if
		 * any) is not the init: "offline" marks nothing in its /run. */
		bool marked = access(GUEST_BOOT_UNFINISHED, F_OK) == 0;

		CHECK(ex->ops->reboot(ex, 20000) == 0 && strcmp(boot1, agent_boot_id(a)) != 0,
		      "agent: reboot, agent back with a new boot id");
		CHECK(marked || access(GUEST_BOOT_UNFINISHED, F_OK) != 0,
		      "agent: the reboot's wait for the boot's end left no %s", GUEST_BOOT_UNFINISHED);
	}
	free(boot1);
	{
		struct exec_result res;
		const char *t[] = { "true", NULL };
		CHECK(run_cmd(ex, t, &res, 0) == 0 && res.status == 0, "agent: exec after reboot");
		exec_result_release(&res);
	}
	CHECK(agent_poweroff(a, 5000) == 0, "agent: poweroff acknowledged");
	executor_close(ex);
	agent_close(a);
	CHECK(run_finish(&r) == 0 && r.status == 0, "agent: process exited after poweroff");
out:
	run_release(&r);
	free(sock);
	free(bin);
}

/* --- part 2: a hostile fake guest ------------------------------------------- */

struct fake_guest {
	int fd;
	struct proto_in in;
};

/* Next frame from the host (1), or 0 at EOF. */
static int g_recv(struct fake_guest *g, struct proto_frame *f)
{
	for (;;) {
		int r = proto_in_next(&g->in, f);

		if (r == 1)
			return 1;
		if (r < 0)
			proto_in_resync(&g->in);
		else if (proto_in_read(&g->in, g->fd) <= 0)
			return 0;
	}
}

static void g_send(struct fake_guest *g, uint16_t type, uint8_t flags, uint32_t id,
		   const void *p, size_t n)
{
	uint8_t hdr[PROTO_HDR_LEN];

	proto_hdr_encode(hdr, type, flags, id, (uint32_t)n);
	if (write_all(g->fd, hdr, sizeof(hdr)) < 0 || (n && write_all(g->fd, p, n) < 0))
		_exit(0);
}

static void g_send_msg(struct fake_guest *g, struct proto_msg *m)
{
	proto_msg_finish(m);
	if (write_all(g->fd, m->data, m->len) < 0)
		_exit(0);
	proto_msg_release(m);
}

/* Answer a sync properly (nonce echoed, or wrong when stale). */
static void g_sync(struct fake_guest *g, const struct proto_frame *f, bool stale, uint32_t version)
{
	struct proto_msg m;
	uint64_t nonce = 0;

	proto_get_u64(f, PROTO_A_NONCE, &nonce);
	proto_msg_init(&m, PROTO_R_SYNC, 0, f->id);
	proto_msg_u64(&m, PROTO_A_NONCE, stale ? nonce + 1 : nonce);
	proto_msg_u32(&m, PROTO_A_VERSION, version);
	proto_msg_str(&m, PROTO_A_BOOT_ID, "fake-boot", 100);
	g_send_msg(g, &m);
}

enum scenario {
	S_GARBAGE_ONLY, S_STALL, S_STALE_THEN_GOOD, S_STALE_ONLY, S_BAD_VERSION,
	S_OVERSIZED, S_DISCONNECT, S_WRONG_ID, S_BAD_TLV, S_GET_TOO_MUCH, S_GET_BAD_DIGEST,
	S_EXIT_BAD, S_LIST_SLASH, S_LIST_DOT, S_LIST_DOTDOT, S_GET_HUGE, S_SILENT, S_GARBAGE_AFTER_SYNC, S_FLOOD_OUTPUT_NO_EXIT,
	S_BULK_GET_HUGE, S_BULK_GET_BAD_DIGEST, S_V1_SCRIPT,
};


/* Sync normally, then misbehave on the first request. */
static void guest_main(int fd, enum scenario s)
{
	struct fake_guest g = { .fd = fd };
	struct proto_frame f;
	struct proto_msg m;

	proto_in_init(&g.in);
	if (!g_recv(&g, &f))
		_exit(0);
	switch (s) {
	case S_GARBAGE_ONLY:
		for (int i = 0; i < 200; i++)
			if (write_all(fd, "AMIF\x07garbage\xff\xff\xff\xff", 16) < 0)
				break;
		pause();
		break;
	case S_STALL:
		pause();
		break;
	case S_STALE_THEN_GOOD:
		g_sync(&g, &f, true, 1);
		g_send(&g, PROTO_R_OK, 0, 12345, NULL, 0);
		g_sync(&g, &f, false, 1);
		break;
	case S_STALE_ONLY:
		for (;;) {
			g_sync(&g, &f, true, 1);
			if (!g_recv(&g, &f))
				_exit(0);
		}
	case S_BAD_VERSION:
		g_sync(&g, &f, false, 99);
		break;
	default:
		g_sync(&g, &f, false, 1);
		break;
	}
	if (!g_recv(&g, &f))
		_exit(0);
	switch (s) {
	case S_OVERSIZED: {
		uint8_t hdr[PROTO_HDR_LEN];

		proto_hdr_encode(hdr, PROTO_R_OK, 0, f.id, PROTO_MAX_PAYLOAD + 1);
		if (write_all(fd, hdr, sizeof(hdr)) < 0)
			_exit(0);
		pause();
		break;
	}
	case S_DISCONNECT:
		_exit(0);
	case S_WRONG_ID:
		g_send(&g, PROTO_R_OK, 0, f.id + 5, NULL, 0);
		break;
	case S_BAD_TLV:
		g_send(&g, PROTO_R_OK, 0, f.id, "\x22\x00\xff\x00\x00\x00zz", 8);
		break;
	case S_GARBAGE_AFTER_SYNC:
		if (write_all(fd, "this is not a frame at all.......", 32) < 0)
			_exit(0);
		break;
	case S_GET_TOO_MUCH:
	case S_GET_BAD_DIGEST: {
		uint8_t data[100] = { 0 };

		proto_msg_init(&m, PROTO_R_OK, 0, f.id);
		proto_msg_u64(&m, PROTO_A_SIZE, 100);
		g_send_msg(&g, &m);
		g_send(&g, PROTO_T_DATA, 0, f.id, data, sizeof(data));
		if (s == S_GET_TOO_MUCH) {
			g_send(&g, PROTO_T_DATA, 0, f.id, data, 1);
		} else {
			proto_msg_init(&m, PROTO_T_DATA_END, 0, f.id);
			proto_msg_u64(&m, PROTO_A_SIZE, 100);
			proto_msg_bytes(&m, PROTO_A_DIGEST, data, 32);
			g_send_msg(&g, &m);
		}
		break;
	}
	case S_GET_HUGE:
		/* announces one byte more than the host takes, then streams */
		proto_msg_init(&m, PROTO_R_OK, 0, f.id);
		proto_msg_u64(&m, PROTO_A_SIZE, EXEC_GET_FILE_MAX + 1);
		g_send_msg(&g, &m);
		for (int i = 0; i < 64; i++) {
			uint8_t junk[4096] = { 0 };

			g_send(&g, PROTO_T_DATA, 0, f.id, junk, sizeof(junk));
		}
		break;
	case S_BULK_GET_HUGE:
	case S_BULK_GET_BAD_DIGEST: {
		uint8_t zero[PROTO_BULK_DIGEST_LEN] = { 0 };

		/* stat: a regular file of 2 MiB; then the get-bulk */
		proto_msg_init(&m, PROTO_R_OK, 0, f.id);
		proto_msg_u32(&m, PROTO_A_EXISTS, 1);
		proto_msg_u32(&m, PROTO_A_MODE, 0100644);
		proto_msg_u32(&m, PROTO_A_UID, 0);
		proto_msg_u32(&m, PROTO_A_GID, 0);
		proto_msg_u64(&m, PROTO_A_SIZE, 2u << 20);
		proto_msg_u64(&m, PROTO_A_MTIME, 0);
		g_send_msg(&g, &m);
		if (!g_recv(&g, &f) || f.type != PROTO_T_GET_BULK)
			_exit(0);
		proto_msg_init(&m, PROTO_R_OK, 0, f.id);
		proto_msg_u64(&m, PROTO_A_SIZE, s == S_BULK_GET_HUGE ? FAKE_BULK_CAP + 1 : 2u << 20);
		proto_msg_u32(&m, PROTO_A_MODE, 0100644);
		proto_msg_bytes(&m, PROTO_A_DIGEST, zero, sizeof(zero));
		g_send_msg(&g, &m);
		break;
	}
	case S_V1_SCRIPT: {
		/* a version-1 agent knows no A_SCRIPT: the host must put the file */
		struct proto_tlv t;
		size_t off = 0;
		bool inline_script = false;

		while (proto_tlv_next(&f, &off, &t) > 0)
			inline_script |= t.tag == PROTO_A_SCRIPT;
		proto_msg_init(&m, PROTO_R_ERROR, 0, f.id);
		proto_msg_u32(&m, PROTO_A_ERRNO, EPERM);
		proto_msg_str(&m, PROTO_A_MSG, f.type == PROTO_T_PUT ? "v1: a put first" :
			      inline_script ? "v1: sent a script inline" : "v1: something else",
			      100);
		g_send_msg(&g, &m);
		break;
	}
	case S_EXIT_BAD:
		g_send(&g, PROTO_R_OK, 0, f.id, NULL, 0);
		proto_msg_init(&m, PROTO_R_EXIT, 0, f.id);
		proto_msg_u32(&m, PROTO_A_STATUS, 100000);
		g_send_msg(&g, &m);
		break;
	case S_FLOOD_OUTPUT_NO_EXIT:
		g_send(&g, PROTO_R_OK, 0, f.id, NULL, 0);
		for (int i = 0; i < 1000; i++)
			g_send(&g, PROTO_R_OUTPUT, 0, f.id, "spam spam spam\n", 15);
		break;
	case S_LIST_SLASH:
	case S_LIST_DOT:
	case S_LIST_DOTDOT:
		proto_msg_init(&m, PROTO_R_ENTRIES, 0, f.id);
		proto_msg_str(&m, PROTO_A_NAME, "ok-name", 100);
		proto_msg_u32(&m, PROTO_A_MODE, 0100644);
		proto_msg_str(&m, PROTO_A_NAME, s == S_LIST_SLASH ? "../../etc" :
				  s == S_LIST_DOT ? "." : "..", 100);
		proto_msg_u32(&m, PROTO_A_MODE, 0);
		g_send_msg(&g, &m);
		g_send(&g, PROTO_R_OK, 0, f.id, NULL, 0);
		break;
	default:
		break;
	}
	/* Stay connected (silent) until the host closes. */
	while (g_recv(&g, &f))
		;
	_exit(0);
}

/* Run one scenario: fork the guest, call op on the client side. */
typedef int (*client_op)(struct agent *a, struct executor *ex);

static void scenario(const char *name, enum scenario s, client_op op, const char *want_err,
		     int64_t max_ms)
{
	int sv[2];
	pid_t pid;
	struct agent *a;
	struct executor *ex;
	int64_t t0 = now_ms(), took;
	int r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		CHECK(0, "fake guest %s: socketpair", name);
		return;
	}
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		signal(SIGALRM, SIG_DFL);
		alarm(30);
		guest_main(sv[1], s);
		_exit(0);
	}
	close(sv[1]);
	a = agent_open_fds(sv[0], sv[0]);
	agent_set_timeout(a, 700);
	ex = executor_agent_new(a);
	err_clear();
	r = op(a, ex);
	took = now_ms() - t0;
	CHECK(r < 0 && strstr(err_msg(), want_err) && took <= max_ms,
	      "fake guest %s: fails cleanly in %" PRId64 " ms (%s)", name, took, err_msg());
	executor_close(ex);
	agent_close(a);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int op_sync(struct agent *a, struct executor *ex UNUSED)
{
	return agent_sync(a, 1500);
}

static int op_sync_then_stat(struct agent *a, struct executor *ex)
{
	struct file_stat st;
	int r;

	if (agent_sync(a, 1500) < 0)
		return err_prefix("SYNC FAILED");
	r = ex->ops->stat(ex, "/x", &st);
	file_stat_release(&st);
	return r;
}

static int op_stale_then_good(struct agent *a, struct executor *ex UNUSED)
{
	/* Succeeds: report success as a special error to fit scenario(). */
	if (agent_sync(a, 1500) == 0)
		return err_set("synced-ok");
	return -1;
}

static int op_get(struct agent *a, struct executor *ex)
{
	char *dst = path_in("fake-get");
	int r;

	(void)a;
	r = ex->ops->get_file(ex, "/x", dst);
	if (access(dst, F_OK) == 0)
		r = err_set("host file left behind");
	free(dst);
	return r;
}

static int op_bulk_get(struct agent *a, struct executor *ex)
{
	bulk_ex(ex);
	return op_get(a, ex);
}

static int op_exec_true(struct agent *a UNUSED, struct executor *ex)
{
	struct exec_result res;
	const char *argv[] = { "true", NULL };
	int r = run_cmd(ex, argv, &res, 0);

	exec_result_release(&res);
	return r;
}

static int op_exec_script(struct agent *a UNUSED, struct executor *ex)
{
	struct exec_result res;
	int r = run_script(ex, "/tmp", NULL, "true\n", &res);

	exec_result_release(&res);
	return r;
}

static int op_list(struct agent *a UNUSED, struct executor *ex)
{
	struct dir_entry *e;
	size_t n;
	int r = ex->ops->list_dir(ex, "/", &e, &n);

	if (r == 0)
		dir_entries_free(e, n);
	return r;
}

static void test_fake_guest(void)
{
	scenario("garbage only", S_GARBAGE_ONLY, op_sync, "no answer to sync", 3000);
	scenario("stall", S_STALL, op_sync, "no answer to sync", 3000);
	scenario("stale nonce then good", S_STALE_THEN_GOOD, op_stale_then_good, "synced-ok", 3000);
	scenario("stale nonces only", S_STALE_ONLY, op_sync, "no answer to sync", 3000);
	scenario("bad version", S_BAD_VERSION, op_sync, "unsupported protocol version", 3000);
	scenario("oversized frame", S_OVERSIZED, op_sync_then_stat, "exceeds the limit", 3000);
	scenario("disconnect", S_DISCONNECT, op_sync_then_stat, "channel closed", 3000);
	scenario("wrong request id", S_WRONG_ID, op_sync_then_stat, "while waiting for request", 3000);
	scenario("malformed TLV", S_BAD_TLV, op_sync_then_stat, "runs past the payload", 3000);
	scenario("garbage after sync", S_GARBAGE_AFTER_SYNC, op_sync_then_stat, "bad frame", 3000);
	scenario("silent after sync", S_SILENT, op_sync_then_stat, "no answer within", 3000);
	scenario("get: more data than announced", S_GET_TOO_MUCH, op_get, "more than the", 3000);
	scenario("get: digest mismatch", S_GET_BAD_DIGEST, op_get, "does not match", 3000);
	scenario("get: size over EXEC_GET_FILE_MAX", S_GET_HUGE, op_get, "more than the limit", 3000);
	scenario("get-bulk: size beyond the room given", S_BULK_GET_HUGE, op_bulk_get,
		 "without a size within", 3000);
	scenario("get-bulk: digest mismatch", S_BULK_GET_BAD_DIGEST, op_bulk_get,
		 "does not match", 3000);
	scenario("exec: impossible exit status", S_EXIT_BAD, op_exec_true, "valid status", 3000);
	scenario("exec: output then silence", S_FLOOD_OUTPUT_NO_EXIT, op_exec_true,
		 "stopped responding", 15000);
	scenario("exec: never starts", S_SILENT, op_exec_true, "no answer within", 3000);
	scenario("exec: a script to a version-1 agent goes as a file", S_V1_SCRIPT,
		 op_exec_script, "v1: a put first", 3000);
	scenario("list: entry name with slash", S_LIST_SLASH, op_list, "bad entry name", 3000);
	scenario("list: entry named '.'", S_LIST_DOT, op_list, "bad entry name", 3000);
	scenario("list: entry named '..'", S_LIST_DOTDOT, op_list, "bad entry name", 3000);
}

/* The agent's FIFO directories for shells started ahead (as root: in /run). */
static size_t warm_dirs(void)
{
	DIR *d = opendir("/run");
	struct dirent *e;
	size_t n = 0;

	while (d && (e = readdir(d)))
		n += strncmp(e->d_name, "amiforge-warm-", 14) == 0;
	if (d)
		closedir(d);
	return n;
}

/* The shell started ahead is checked at its claim for what bash took at its
 * start: here the host name, changed by the script it was started beside
 * (the agent in a UTS namespace of its own, so the host's name stays). */
static void test_warm_stale(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char *bin = xasprintf("%s/amiforge-agent", build), *sock = path_in("uts.sock");
	char *cwd = path_in("uts-scripts");
	struct exec_result res;
	struct executor *ex = NULL;
	struct agent *a = NULL;
	size_t dirs;
	pid_t pid;
	int st;

	if (geteuid() != 0) {
		printf("SKIP: agent script: host name check needs root (a UTS namespace)\n");
		goto out;
	}
	mkdir(cwd, 0700);
	dirs = warm_dirs();
	pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWUTS) < 0 || sethostname("before", 6) < 0)
			_exit(126);
		execl(bin, bin, "--socket", sock, "--fake-power", (char *)NULL);
		_exit(127);
	}
	a = agent_open_unix(sock, 5000);
	CHECK(a && agent_sync(a, 5000) == 0, "agent script: agent in its own UTS namespace");
	if (!a)
		goto reap;
	ex = executor_agent_new(a);
	/* the next one's bash starts beside this script, before the rename */
	CHECK(run_script(ex, cwd, NULL, "sleep 0.5; hostname after; echo \"$HOSTNAME\"\n",
			 &res) == 0 && res.status == 0 &&
	      strcmp(res.out.data ? res.out.data : "", "before\n") == 0,
	      "agent script: a script renames the host");
	exec_result_release(&res);
	CHECK(run_script(ex, cwd, NULL, "echo \"$HOSTNAME\"\n", &res) == 0 && res.status == 0 &&
	      strcmp(res.out.data ? res.out.data : "", "after\n") == 0,
	      "agent script: the next one sees the new name, not what the bash started ahead "
	      "read (%s)", res.out.data ? res.out.data : "");
	exec_result_release(&res);
	/* the agent stops what it started ahead when it leaves */
	CHECK(bash_children(pid) == 2 && agent_poweroff(a, 5000) == 0 &&
	      waitpid(pid, &st, 0) == pid && WIFEXITED(st) && warm_dirs() == dirs,
	      "agent script: the agent exits; nothing it started ahead is left (FIFOs: %zu "
	      "before, %zu after)", dirs, warm_dirs());
	executor_close(ex);
	agent_close(a);
reap:
	if (kill(pid, SIGKILL) == 0)
		waitpid(pid, &st, 0);
out:
	free(cwd);
	free(sock);
	free(bin);
}

/* --- part 3: the bulk disk with the real agent ----------------------------
 * The agent looks for its disk among /sys/block/vd* and opens /dev/vdN; here
 * it runs in a mount namespace whose /sys/block and /dev are small tmpfs
 * holding "vdz", a loop device on the host's bulk file (and "vda", with no
 * device node: skipped), and a directory holds a 6 MiB tmpfs (a put that
 * fills its file system). Everything else is real: the agent's O_DIRECT
 * reads and writes of a block device, the protocol, the digests, the host's
 * copy in and out of the file. Needs root (loop devices, mounts). */
static pid_t bulk_agent(const char *sock, dev_t dev, const char *small)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char *bin = xasprintf("%s/amiforge-agent", build);
	pid_t pid = fork();

	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("none", small, "tmpfs", 0, "size=6m") < 0 ||
		    mount("none", "/sys/block", "tmpfs", 0, NULL) < 0 ||
		    mkdir("/sys/block/vda", 0755) < 0 || mkdir("/sys/block/vdz", 0755) < 0 ||
		    mount("none", "/dev", "tmpfs", 0, NULL) < 0 ||
		    mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3)) < 0 ||
		    mknod("/dev/vdz", S_IFBLK | 0600, dev) < 0)
			_exit(126);
		execl(bin, bin, "--socket", sock, (char *)NULL);
		_exit(127);
	}
	free(bin);
	return pid;
}

static void test_bulk_disk(void)
{
	char *bulk = path_in("bulk-ns.raw"), *sock = path_in("bulk-ns.sock");
	char *up = path_in("bulk-ns.up"), *dst = path_in("bulk-ns.guest"), *back = path_in("bulk-ns.back");
	char *odd = path_in("bulk-ns.odd"), *small = path_in("small"), *full = path_in("small/full");
	const char *lo_argv[] = { "losetup", "-f", "--show", bulk, NULL };
	char hdr[PROTO_BULK_HDR] = { 0 }, h1[65], h2[65], h3[65], *nl;
	struct run r = RUN_INIT;
	struct agent *a = NULL;
	struct executor *ex = NULL;
	struct stat st;
	uint8_t *data = xcalloc(1, 8u << 20);
	struct dir_entry *e;
	size_t n;
	pid_t pid = -1;
	bool ok;
	int fd;

	if (geteuid() != 0) {
		CHECK(0, "bulk disk: needs root (a loop device, a mount namespace)");
		goto out;
	}
	getrandom(data, 8u << 20, 0);
	fd = open(up, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write_all(fd, data, 8u << 20) == 0 && close(fd) == 0,
	      "bulk disk: 8 MiB host file");
	/* 8 chunks, 1 MiB and 1234 bytes: the agent's ring of chunks goes
	 * round three times and the tail is not whole blocks. */
	fd = open(odd, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ok = fd >= 0;
	for (int i = 0; ok && i < 4; i++)
		ok = write_all(fd, data, 8u << 20) == 0;
	CHECK(ok && write_all(fd, data + 77, (1u << 20) + 1234) == 0 && close(fd) == 0 &&
	      mkdir(small, 0755) == 0, "bulk disk: 33 MiB + 1234 bytes host file");
	snprintf(hdr, sizeof(hdr), "%s%016x\n", PROTO_BULK_MAGIC, 0x5eed);
	fd = open(bulk, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, PROTO_BULK_HDR + (64u << 20)) < 0 ||
	    write_all(fd, hdr, sizeof(hdr)) < 0 || close(fd) < 0) {
		CHECK(0, "bulk disk: make the file");
		goto out;
	}
	r.argv = lo_argv;
	r.out = RUN_CAPTURE;
	r.err = RUN_CAPTURE;
	if (run_sync(&r) < 0 || run_check(&r) < 0 || !r.out_buf.data) {
		CHECK(0, "bulk disk: losetup: %s", err_msg());
		goto out;
	}
	if ((nl = strchr(r.out_buf.data, '\n')))
		*nl = '\0';
	if (stat(r.out_buf.data, &st) < 0 || !S_ISBLK(st.st_mode)) {
		CHECK(0, "bulk disk: loop device '%s'", r.out_buf.data);
		goto out;
	}
	pid = bulk_agent(sock, st.st_rdev, small);
	a = agent_open_unix(sock, 5000);
	CHECK(a && agent_sync(a, 5000) == 0, "bulk disk: agent in its namespace answers");
	if (!a)
		goto out;
	ex = executor_agent_new(a);
	CHECK(executor_agent_set_bulk(ex, bulk, 0x5eed, 64u << 20) == 0, "bulk disk: set");
	ok = ex->ops->put_file(ex, up, dst, 0640) == 0;
	CHECK(ok, "bulk disk: put 8 MiB (%s)", ok ? "ok" : err_msg());
	ok = ex->ops->get_file(ex, dst, back) == 0;
	CHECK(ok, "bulk disk: get 8 MiB (%s)", ok ? "ok" : err_msg());
	CHECK(executor_agent_bulk_done(ex) == 2, "bulk disk: both went through the disk (%zu)",
	      executor_agent_bulk_done(ex));
	sha256_file(up, h1);
	sha256_file(dst, h2);
	sha256_file(back, h3);
	CHECK(strcmp(h1, h2) == 0 && strcmp(h1, h3) == 0 && stat(dst, &st) == 0 &&
	      (st.st_mode & 0777) == 0640, "bulk disk: the same bytes both ways, mode applied");
	CHECK(stat(bulk, &st) == 0 && st.st_blocks * 512 < (1u << 20),
	      "bulk disk: the payload punched out of the file afterwards (%lld KiB left)",
	      (long long)st.st_blocks / 2);
	/* Many chunks, an odd tail, both ways. */
	ok = ex->ops->put_file(ex, odd, dst, 0600) == 0 && ex->ops->get_file(ex, dst, back) == 0;
	CHECK(ok, "bulk disk: put and get 33 MiB + 1234 bytes (%s)", ok ? "ok" : err_msg());
	sha256_file(odd, h1);
	sha256_file(dst, h2);
	sha256_file(back, h3);
	CHECK(strcmp(h1, h2) == 0 && strcmp(h1, h3) == 0 && executor_agent_bulk_done(ex) == 4,
	      "bulk disk: 33 MiB + 1234 bytes: the same bytes both ways, through the disk (%zu)",
	      executor_agent_bulk_done(ex));
	/* The writer fails (a full file system) while the reader is ahead:
	 * one error, nothing left, the agent goes on. */
	ok = ex->ops->put_file(ex, odd, full, 0600) == 0;
	CHECK(!ok && strstr(err_msg(), "No space left"),
	      "bulk disk: put into a full file system fails (%s)", ok ? "ok" : err_msg());
	ok = ex->ops->list_dir(ex, small, &e, &n) == 0;
	CHECK(ok && n == 0, "bulk disk: nothing left in the full file system (%zu entries)",
	      ok ? n : 0);
	if (ok)
		dir_entries_free(e, n);
	sha256_file(up, h1);
	ok = ex->ops->put_file(ex, up, dst, 0600) == 0 && sha256_file(dst, h2) == 0 &&
	     strcmp(h1, h2) == 0 && executor_agent_bulk_done(ex) == 5;
	CHECK(ok, "bulk disk: after the failure the next put goes through the disk (%s)",
	      ok ? "ok" : err_msg());
	/* A disk whose header names another nonce is not ours: channel. */
	executor_close(ex);
	ex = executor_agent_new(a);
	CHECK(executor_agent_set_bulk(ex, bulk, 0x5eee, 64u << 20) == 0 &&
	      ex->ops->put_file(ex, up, dst, 0600) == 0 && sha256_file(dst, h2) == 0 &&
	      strcmp(h1, h2) == 0 && executor_agent_bulk_done(ex) == 0,
	      "bulk disk: another guest's nonce: not used, channel instead");
out:
	executor_close(ex);
	agent_close(a);
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	if (r.out_buf.data && r.out_buf.data[0] == '/') {
		const char *d_argv[] = { "losetup", "-d", r.out_buf.data, NULL };
		struct run d = RUN_INIT;

		d.argv = d_argv;
		if (run_sync(&d) < 0 || run_check(&d) < 0)
			CHECK(0, "bulk disk: losetup -d: %s", err_msg());
		run_release(&d);
	}
	run_release(&r);
	free(data);
	free(bulk);
	free(sock);
	free(up);
	free(dst);
	free(back);
	free(odd);
	free(small);
	free(full);
}

int main(void)
{
	char tmpl[] = "/tmp/amiforge-agent-test.XXXXXX";

	signal(SIGPIPE, SIG_IGN);
	tmpdir = mkdtemp(tmpl);
	if (!tmpdir) {
		perror("mkdtemp");
		return 1;
	}
	test_real_agent();
	test_warm_stale();
	test_bulk_disk();
	test_fake_guest();
	remove_tree(tmpdir);
	return TEST_DONE();
}
