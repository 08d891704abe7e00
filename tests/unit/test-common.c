/* Unit tests for common/: errors, buffers, logging redaction, subprocesses,
 * number parsing, and builder/recipe/yaml.c positions. */
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#include "test.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "run.h"
#include "util.h"
#include "xxh64.h"
#include "builder/recipe/yaml.h"

static void test_buf(void)
{
	struct buf b;

	buf_init(&b, 8);
	CHECK(buf_adds(&b, "1234") == 0 && b.len == 4, "buf: append within ceiling");
	CHECK(buf_printf(&b, "%d", 5678) == 0 && strcmp(b.data, "12345678") == 0,
	      "buf: printf up to the ceiling exactly");
	CHECK(buf_addc(&b, 'x') < 0 && b.data == NULL && b.len == 0,
	      "buf: append past ceiling fails and frees");
	CHECK(strstr(err_msg(), "limit of 8 bytes") != NULL, "buf: ceiling error message");
	buf_release(&b);
}

static void test_words_join(void)
{
	static const char *const three[] = { "vmdk", "vhd", "raw", NULL };
	static const char *const one[] = { "ebs", NULL };
	static const char *const none[] = { NULL };
	char *s;

	s = words_join(three, ", ");
	CHECK_STR(s, "vmdk, vhd, raw", "words_join: separators between, none at the ends");
	free(s);
	s = words_join(one, ", ");
	CHECK_STR(s, "ebs", "words_join: one word, no separator");
	free(s);
	s = words_join(none, ", ");
	CHECK_STR(s, "", "words_join: no words, an empty string");
	free(s);
}

/* XXH64 against xxhsum -H1 (xxHash 0.8.1, Debian 12's xxhash package):
 * "", "a", "abc", 100 bytes of chr(32 + i % 90), 1000 'x' — fed whole and
 * in uneven pieces (the stream's buffering across 32-byte stripes). */
static void test_xxh64(void)
{
	static const struct { const char *name; uint64_t want; } v[] = {
		{ "empty", 0xef46db3751d8e999ULL }, { "a", 0xd24ec4f1a98c6e5bULL },
		{ "abc", 0x44bc2cf5ad770999ULL }, { "100 bytes", 0xc073f906c58dad78ULL },
		{ "1000 x", 0x4cb9a3b69cb700e1ULL },
	};
	uint8_t data[1000], be[8];
	size_t lens[] = { 0, 1, 3, 100, 1000 }, i, off, step;
	struct xxh64 x;

	for (i = 0; i < ARRAY_SIZE(v); i++) {
		size_t k;

		if (i == 1 || i == 2)
			memcpy(data, "abc", 3);
		else if (i == 3)
			for (k = 0; k < 100; k++)
				data[k] = (uint8_t)(32 + k % 90);
		else if (i == 4)
			memset(data, 'x', sizeof(data));
		xxh64_init(&x, 0);
		xxh64_update(&x, data, lens[i]);
		CHECK(xxh64_final(&x) == v[i].want, "xxh64: %s, whole", v[i].name);
		for (step = 1; step <= 37; step += 12) {
			xxh64_init(&x, 0);
			for (off = 0; off < lens[i]; off += step)
				xxh64_update(&x, data + off, lens[i] - off < step ? lens[i] - off : step);
			CHECK(xxh64_final(&x) == v[i].want, "xxh64: %s, in pieces of %zu",
			      v[i].name, step);
		}
	}
	xxh64_bytes(0x0102030405060708ULL, be);
	CHECK(be[0] == 1 && be[7] == 8, "xxh64: canonical bytes are big-endian");
}

static void test_parse(void)
{
	int64_t v;
	uint64_t u;

	CHECK(parse_i64("42", 0, 100, &v) == 0 && v == 42, "parse_i64: plain");
	CHECK(parse_i64("-1", -1, 100, &v) == 0 && v == -1, "parse_i64: negative");
	CHECK(parse_i64("4x", 0, 100, &v) < 0, "parse_i64: trailing garbage rejected");
	CHECK(parse_i64("", 0, 100, &v) < 0, "parse_i64: empty rejected");
	CHECK(parse_i64(" 4", 0, 100, &v) < 0, "parse_i64: leading space rejected");
	CHECK(parse_i64("101", 0, 100, &v) < 0 && strstr(err_msg(), "out of range"),
	      "parse_i64: range checked");
	CHECK(parse_i64("99999999999999999999", INT64_MIN, INT64_MAX, &v) < 0,
	      "parse_i64: overflow rejected");
	CHECK(parse_u64("-1", UINT64_MAX, &u) < 0, "parse_u64: sign rejected");
	CHECK(parse_size("8G", &u) == 0 && u == 8ull << 30, "parse_size: 8G");
	CHECK(parse_size("512MiB", &u) == 0 && u == 512ull << 20, "parse_size: 512MiB");
	CHECK(parse_size("3Q", &u) < 0, "parse_size: bad unit rejected");
	CHECK(parse_size("20000000000T", &u) < 0, "parse_size: overflow rejected");
	{
		static const char osr[] = "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\" \r\n"
					  "ID=debian\nIDX=no\nPRETTY_NAME='Debian 12'";
		char *id = os_release_value(osr, "ID"), *ver = os_release_value(osr, "VERSION_ID");
		char *pretty = os_release_value(osr, "PRETTY_NAME"), *none = os_release_value(osr, "ID_LIKE");

		CHECK(id && strcmp(id, "debian") == 0, "os_release_value: plain value, not IDX");
		CHECK(ver && strcmp(ver, "12") == 0, "os_release_value: quotes and trailing blanks removed");
		CHECK(pretty && strcmp(pretty, "Debian 12") == 0,
		      "os_release_value: single quotes, last line without newline");
		CHECK(!none, "os_release_value: absent key is NULL");
		free(id);
		free(ver);
		free(pretty);
	}
}

static void test_redact(void)
{
	char *s;

	log_add_secret("AKIDSECRETVALUE");
	log_add_secret("ab"); /* too short: ignored */
	s = log_redact_str("key=AKIDSECRETVALUE and AKIDSECRETVALUE, ab");
	CHECK_STR(s, "key=[REDACTED] and [REDACTED], ab", "log: secrets redacted");
	free(s);
	log_clear_secrets();
	s = log_redact_str("AKIDSECRETVALUE");
	CHECK_STR(s, "AKIDSECRETVALUE", "log: cleared secrets no longer redacted");
	free(s);
}

/* No limit on secrets; credentials known by their shape never get through. */
static void test_redact_shapes(void)
{
	static const struct { const char *in, *want; } urls[] = {
		{ "https://user:pass@host.example/a.qcow2", "https://host.example/a.qcow2" },
		{ "https://tok@host/x", "https://host/x" },
		{ "https://h/x.img?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F2026"
		  "&X-Amz-Signature=abc123&X-Amz-Security-Token=FwoG&X-Amz-Expires=60",
		  "https://h/x.img?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=60" },
		{ "https://h/x?x-amz-signature=1", "https://h/x" },
		{ "https://h/x?AWSAccessKeyId=A&Signature=S&Expires=1#frag", "https://h/x?Expires=1#frag" },
		{ "qemu+ssh://root@host/system", "qemu+ssh://root@host/system" },
		{ "s3://bucket/key?uploadId=U1", "s3://bucket/key?uploadId=U1" },
	};
	char *s;
	size_t i;
	int all = 1;

	for (i = 0; i < ARRAY_SIZE(urls); i++) {
		s = url_redact(urls[i].in);
		CHECK_STR(s, urls[i].want, "url_redact: case %zu", i);
		free(s);
	}
	for (i = 0; i < 200; i++) {
		char sec[64];

		snprintf(sec, sizeof(sec), "profile-secret-%03zu-xyzzy", i);
		if (log_add_secret(sec) < 0)
			all = 0;
	}
	CHECK(all, "log: 200 secrets registered (no fixed limit)");
	s = log_redact_str("first profile-secret-000-xyzzy last profile-secret-199-xyzzy");
	CHECK_STR(s, "first [REDACTED] last [REDACTED]", "log: 200 secrets, all redacted");
	free(s);
	log_clear_secrets();
	s = log_redact_str("aws: > Authorization: AWS4-HMAC-SHA256 Credential=AKIDX/2026, "
			   "Signature=deadbeef");
	CHECK_STR(s, "aws: > Authorization: [REDACTED]", "log: Authorization header dropped");
	free(s);
	s = log_redact_str("aws: > X-Amz-Security-Token: FwoGZXIvYXdzEJr\nnext line");
	CHECK_STR(s, "aws: > X-Amz-Security-Token: [REDACTED]\nnext line",
		  "log: security token header dropped, next line kept");
	free(s);
	s = log_redact_str("GET /b/k?X-Amz-Credential=AKID&X-Amz-Signature=abc&partNumber=1 -> 200");
	CHECK_STR(s, "GET /b/k?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]&partNumber=1 -> 200",
		  "log: presigned query values dropped outside a URL");
	free(s);
	s = log_redact_str("download 'https://u:p@h/f?X-Amz-Signature=zz': HTTP 403");
	CHECK_STR(s, "download 'https://h/f': HTTP 403", "log: URL in a message redacted");
	free(s);
}

static void test_run(void)
{
	struct run r = RUN_INIT;
	const char *echo[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	const char *cat[] = { "cat", NULL };
	const char *sleep_[] = { "sleep", "10", NULL };
	const char *missing[] = { "/nonexistent/amiforge-no-such-program", NULL };
	int64_t t0;

	r.argv = echo;
	r.out = RUN_CAPTURE;
	r.err = RUN_CAPTURE;
	CHECK(run_sync(&r) == 0 && r.status == 3, "run: exit status reported");
	CHECK_STR(r.out_buf.data, "out\n", "run: stdout captured");
	CHECK_STR(r.err_buf.data, "err\n", "run: stderr captured");
	CHECK(run_check(&r) < 0 && strstr(err_msg(), "exited with status 3: err"),
	      "run: run_check message carries status and stderr");
	run_release(&r);

	r = (struct run)RUN_INIT;
	r.argv = cat;
	r.in = RUN_CAPTURE;
	r.in_data = "hello stdin";
	r.in_len = 11;
	r.out = RUN_CAPTURE;
	CHECK(run_sync(&r) == 0 && r.status == 0 && r.out_buf.data &&
	      strcmp(r.out_buf.data, "hello stdin") == 0, "run: stdin fed");
	run_release(&r);

	r = (struct run)RUN_INIT;
	r.argv = sleep_;
	r.timeout_ms = 200;
	r.new_pgroup = true;
	t0 = now_ms();
	CHECK(run_sync(&r) < 0 && r.timed_out && now_ms() - t0 < 5000,
	      "run: deadline kills the child");
	run_release(&r);

	r = (struct run)RUN_INIT;
	r.argv = missing;
	CHECK(run_sync(&r) < 0 && strstr(err_msg(), "No such file"),
	      "run: exec failure reported to the parent");
	run_release(&r);

	r = (struct run)RUN_INIT;
	r.argv = (const char *[]){ "head", "-c", "100000", "/dev/zero", NULL };
	r.out = RUN_CAPTURE;
	r.capture_max = 1000;
	CHECK(run_sync(&r) == 0 && r.out_buf.len == 1000 && r.truncated,
	      "run: capture ceiling enforced");
	run_release(&r);
}

/* Read what a non-blocking pipe has into b (size bytes, NUL-terminated);
 * close it at EOF or on an error. */
static void read_some(int *fd, char *b, size_t size, size_t *len)
{
	ssize_t n = read(*fd, b + *len, size - 1 - *len);

	if (n > 0) {
		*len += (size_t)n;
	} else if (n == 0 || errno != EAGAIN) {
		close(*fd);
		*fd = -1;
	}
}

/* The spec the guest agent uses: its own session, a user, a umask, a
 * directory with a fallback, the environment's PATH, pipes served by the
 * caller (RUN_PIPE) with run_reap() and run_kill(). */
static void test_run_agent_spec(void)
{
	struct run r = RUN_INIT;
	struct run_user nobody = { .name = "nobody", .uid = 65534, .gid = 65534 };
	const char *env[] = { "PATH=/nonexistent:/usr/bin:/bin", "X=1", NULL };
	const char *argv[] = { "sh", "-c", "umask; pwd; id -u; echo $X; "
			       "cut -d' ' -f6 /proc/$$/stat; echo $$; echo e >&2", NULL };
	char out[512] = "", err[64] = "";
	size_t no = 0, ne = 0;
	int reaped = 0;
	int64_t until = now_ms() + 10000;
	char want[256];

	r.argv = argv;
	r.env = env;
	r.cwd = "/nonexistent-amiforge-dir";
	r.cwd_else = "/tmp";
	r.set_umask = true;
	r.umask = 027;
	r.new_session = true;
	if (geteuid() == 0)
		r.user = &nobody;
	r.out = RUN_PIPE;
	r.err = RUN_PIPE;
	CHECK(run_start(&r) == 0 && (fcntl(r.pipe_out, F_GETFL) & O_NONBLOCK),
	      "run: RUN_PIPE gives the caller non-blocking pipes");
	while ((r.pipe_out >= 0 || r.pipe_err >= 0) && now_ms() < until) {
		struct pollfd p[2] = { { .fd = r.pipe_out, .events = POLLIN },
				       { .fd = r.pipe_err, .events = POLLIN } };

		if (poll(p, 2, 1000) < 0)
			break;
		if (p[0].revents)
			read_some(&r.pipe_out, out, sizeof(out), &no);
		if (p[1].revents)
			read_some(&r.pipe_err, err, sizeof(err), &ne);
	}
	while ((reaped = run_reap(&r, false)) == 0 && now_ms() < until)
		usleep(10000);
	CHECK(reaped == 1 && r.status == 0 && !r.signaled && r.pid == -1,
	      "run: run_reap reports the exit (%d, status %d)", reaped, r.status);
	snprintf(want, sizeof(want), "0027\n/tmp\n%u\n1\n", geteuid() == 0 ? 65534u : (unsigned)geteuid());
	CHECK(strncmp(out, want, strlen(want)) == 0,
	      "run: umask, cwd_else, user and environment applied");
	{
		const char *sid = out + strlen(want), *pid = strchr(sid, '\n');

		CHECK(pid && strncmp(sid, pid + 1, (size_t)(pid - sid)) == 0 &&
		      pid[1 + (pid - sid)] == '\n', "run: new_session makes the child lead a session");
	}
	CHECK_STR(err, "e\n", "run: RUN_PIPE stderr");
	run_release(&r);

	/* argv[0] is found in the child's own PATH */
	r = (struct run)RUN_INIT;
	r.argv = (const char *[]){ "true", NULL };
	r.env = (const char *[]){ "PATH=/nonexistent-amiforge-dir", NULL };
	CHECK(run_sync(&r) < 0 && strstr(err_msg(), "run 'true': No such file"),
	      "run: PATH comes from env (%s)", err_msg());
	run_release(&r);

	/* a directory that cannot be entered, with no fallback: one message */
	r = (struct run)RUN_INIT;
	r.argv = (const char *[]){ "true", NULL };
	r.cwd = "/nonexistent-amiforge-dir";
	CHECK(run_sync(&r) < 0 &&
	      strcmp(err_msg(), "run 'true': enter directory '/nonexistent-amiforge-dir': "
		     "No such file or directory") == 0, "run: cwd failure named (%s)", err_msg());
	run_release(&r);

	/* run_kill reaches the session's process group */
	r = (struct run)RUN_INIT;
	r.argv = (const char *[]){ "sh", "-c", "sleep 30 & wait", NULL };
	r.new_session = true;
	CHECK(run_start(&r) == 0, "run: start a session");
	usleep(100000);
	run_kill(&r, SIGKILL);
	CHECK(run_reap(&r, true) == 1 && r.signaled && r.status == 128 + SIGKILL,
	      "run: run_kill then run_reap (status %d)", r.status);
	run_release(&r);
}

static const char *dry_seen;
static void dry(const char *const *argv, void *opaque)
{
	(void)opaque;
	dry_seen = run_argv_str(argv);
}

static void test_dry_run(void)
{
	struct run r = RUN_INIT;
	const char *argv[] = { "qemu-img", "create", "-f", "qcow2", "a b", NULL };

	run_set_dry_run(dry, NULL);
	r.argv = argv;
	CHECK(run_sync(&r) == 0 && r.status == 0, "run: dry-run succeeds");
	run_set_dry_run(NULL, NULL);
	CHECK_STR(dry_seen, "qemu-img create -f qcow2 'a b'", "run: dry-run records argv");
	free((char *)dry_seen);
	run_release(&r);
}

static void test_yaml(void)
{
	struct ydoc d;
	const char *ok = "a: 1\nb:\n  - x\n  - 'y'\n";
	const char *dup = "a: 1\nb: 2\na: 3\n";
	const char *bad = "a: [1, 2\n";
	const char *alias = "a: &x 1\nb: *x\n";

	CHECK(ydoc_load_string(&d, "t.yaml", ok, strlen(ok)) == 0, "yaml: parses");
	CHECK(ymap_get(d.root, "b") && ymap_get(d.root, "b")->nitems == 2 &&
	      ymap_get(d.root, "b")->items[1]->line == 4 &&
	      ymap_get(d.root, "b")->items[1]->col == 5 &&
	      !ymap_get(d.root, "b")->items[1]->plain, "yaml: positions and quoting kept");
	ydoc_release(&d);
	CHECK(ydoc_load_string(&d, "t.yaml", dup, strlen(dup)) < 0 &&
	      strcmp(err_msg(), "t.yaml:3:1: duplicate key 'a'") == 0,
	      "yaml: duplicate key with position (%s)", err_msg());
	ydoc_release(&d);
	CHECK(ydoc_load_string(&d, "t.yaml", bad, strlen(bad)) < 0 &&
	      str_startswith(err_msg(), "t.yaml:2:1:"), "yaml: syntax error position (%s)",
	      err_msg());
	ydoc_release(&d);
	CHECK(ydoc_load_string(&d, "t.yaml", alias, strlen(alias)) < 0 &&
	      strstr(err_msg(), "anchors are not supported"), "yaml: anchors refused");
	ydoc_release(&d);
}

/* make_temp_dir honours TMPDIR (absolute only); what a process still has
 * when a signal ends it is removed, unless forgotten (a kept console log). */
static void test_temp_dirs(void)
{
	char parent[] = "/tmp/amiforge-unit-temp.XXXXXX", *a, *b, *c, *f;
	struct stat st;

	if (!mkdtemp(parent)) {
		CHECK(0, "temp: mkdtemp");
		return;
	}
	setenv("TMPDIR", parent, 1);
	CHECK_STR(tmp_dir("/var/tmp"), parent, "temp: TMPDIR is where they go");
	setenv("TMPDIR", "relative/dir", 1);
	CHECK_STR(tmp_dir("/var/tmp"), "/var/tmp", "temp: a relative TMPDIR is not used");
	setenv("TMPDIR", parent, 1);
	a = make_temp_dir("one.", "/nonexistent");
	b = make_temp_dir("two.", "/nonexistent");
	c = make_temp_dir("three.", "/nonexistent");
	CHECK(a && b && c && str_startswith(a, parent) && stat(a, &st) == 0 &&
	      (st.st_mode & 07777) == 0700, "temp: made in TMPDIR, private");
	f = a ? xasprintf("%s/file", a) : NULL;
	if (f)
		write_file_atomic(f, "x", 1, 0600);
	temp_dir_forget(b);
	CHECK(c && rmdir_temp(c) == 0 && stat(c, &st) < 0, "temp: rmdir_temp removes it");
	temp_dirs_remove_all();
	CHECK(a && stat(a, &st) < 0, "temp: removed with what it holds at the end");
	CHECK(b && stat(b, &st) == 0, "temp: a forgotten one is kept");
	setenv("TMPDIR", "/nonexistent/amiforge", 1);
	CHECK(!make_temp_dir("x.", "/tmp") && strstr(err_msg(), "/nonexistent/amiforge/x."),
	      "temp: a TMPDIR that is not there: the error names it");
	unsetenv("TMPDIR");
	remove_tree(parent);
	free(a);
	free(b);
	free(c);
	free(f);
}

int main(void)
{
	test_buf();
	test_words_join();
	test_xxh64();
	test_parse();
	test_redact();
	test_redact_shapes();
	test_run();
	test_run_agent_spec();
	test_dry_run();
	test_yaml();
	test_temp_dirs();
	return TEST_DONE();
}
