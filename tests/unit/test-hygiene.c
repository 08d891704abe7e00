/* test-hygiene.c: bounds and hygiene against hostile inputs (issue #13):
 * YAML duplicate-key check cost, named limits, names from the guest,
 * control characters on the terminal, local sources in host-side actions. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test.h"
#include "buf.h"
#include "error.h"
#include "util.h"
#include "builder/recipe/yaml.h"
#include "builder/component/actions.h"
#include "drivers/aws/aws.h"
#include "drivers/aws/ebs.h"
#include "drivers/aws/s3.h"
#include "drivers/hypervisor/hypervisor.h"

/* A mapping of nkeys distinct keys "keyN: N", each line prefixed with indent. */
static void big_mapping(struct buf *b, size_t nkeys, const char *indent)
{
	char line[64];
	size_t i;

	for (i = 0; i < nkeys; i++) {
		snprintf(line, sizeof(line), "%skey%zu: %zu\n", indent, i, i);
		buf_adds(b, line);
	}
}

static void test_yaml_large_mapping(void)
{
	struct ydoc d;
	size_t len;
	unsigned long before;
	char *text;
	char want[128];
	const size_t n = 80000;
	struct buf b;

	/* 80,000 distinct keys: parses, and the duplicate check costs about one
	 * comparison per key (a linear scan needs n*(n-1)/2 = 3.2e9). */
	buf_init(&b, 16u << 20);
	big_mapping(&b, n, "");
	len = b.len;
	text = buf_detach(&b, NULL);
	before = ymap_key_compares;
	CHECK(ydoc_load_string(&d, "big.yaml", text, len) == 0 && d.root &&
	      d.root->npairs == n, "yaml: 80,000-key mapping parses");
	CHECK(ymap_key_compares - before < 4 * n,
	      "yaml: duplicate check on 80,000 keys is not quadratic (%lu comparisons)",
	      ymap_key_compares - before);
	CHECK(ymap_get(d.root, "key0") && ymap_get(d.root, "key79999") &&
	      strcmp(ymap_get(d.root, "key54321")->str, "54321") == 0,
	      "yaml: keys of a large mapping are all found");
	ydoc_release(&d);
	free(text);

	/* The duplicate is still found, at its own file:line:col, at the end of a
	 * large nested mapping (indented, to check the column too). */
	buf_adds(&b, "top:\n");
	big_mapping(&b, n, "  ");
	buf_adds(&b, "  key40000: again\n");
	len = b.len;
	text = buf_detach(&b, NULL);
	CHECK(ydoc_load_string(&d, "big.yaml", text, len) < 0,
	      "yaml: duplicate key in an 80,000-key mapping refused");
	snprintf(want, sizeof(want), "big.yaml:%zu:3: duplicate key 'key40000'", n + 2);
	CHECK_STR(err_msg(), want, "yaml: duplicate key reported at file:line:col");
	ydoc_release(&d);
	free(text);

	/* Same keys in different mappings are not duplicates; hash collisions
	 * (same bucket, different key) are not either. */
	{
		const char *ok = "a: {x: 1, y: 2}\nb: {x: 3, y: 4}\nx: 5\n";
		CHECK(ydoc_load_string(&d, "t.yaml", ok, strlen(ok)) == 0,
		      "yaml: same key in sibling mappings accepted");
		ydoc_release(&d);
	}
}

static void test_names(void)
{
	char longname[NAME_MAX + 2];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(name_is_safe("file.txt") && name_is_safe("..hidden") && name_is_safe("a..b") &&
	      name_is_safe(".x"), "names: ordinary names accepted");
	CHECK(!name_is_safe(".") && !name_is_safe("..") && !name_is_safe("") &&
	      !name_is_safe(NULL), "names: '.', '..' and empty refused");
	CHECK(!name_is_safe("a/b") && !name_is_safe("/") && !name_is_safe("../x"),
	      "names: names containing '/' refused");
	CHECK(!name_is_safe(longname), "names: longer than NAME_MAX refused");
}

static void test_local_addresses(void)
{
	static const char *const local[] = {
		"127.0.0.1", "127.1.2.3", "0.0.0.0", "169.254.169.254", "169.254.0.1", "::1", "::",
		"fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "bogus",
	};
	static const char *const remote[] = {
		"93.184.216.34", "10.0.0.1", "192.168.1.1", "172.16.0.1", "2606:4700::1111",
		"::ffff:8.8.8.8", "fd00:ec2::253", "169.253.255.255", "128.0.0.1",
	};
	size_t i;
	bool ok = true;

	for (i = 0; i < sizeof(local) / sizeof(*local); i++)
		if (!net_addr_is_local(local[i])) {
			printf("  not seen as local: %s\n", local[i]);
			ok = false;
		}
	CHECK(ok, "local sources: loopback, link-local, IMDS and mapped forms are local");
	ok = true;
	for (i = 0; i < sizeof(remote) / sizeof(*remote); i++)
		if (net_addr_is_local(remote[i])) {
			printf("  seen as local: %s\n", remote[i]);
			ok = false;
		}
	CHECK(ok, "local sources: public and private-network addresses are not local");
}

/* ---- a fake AWS endpoint: one thread, canned answers ---- */

/* Answers request number n (from 0) whose request line is line; fills a
 * complete HTTP response into out. */
typedef void (*fake_answer_fn)(int n, const char *line, struct buf *out);

struct fake_http {
	int lfd, port;
	pthread_t th;
	fake_answer_fn answer;
	int requests;
};

static void *fake_http_main(void *opaque)
{
	struct fake_http *fh = opaque;

	for (;;) {
		char req[16384];
		size_t got = 0;
		struct buf out;
		int fd = accept(fh->lfd, NULL, NULL);

		if (fd < 0)
			return NULL;
		/* Keep-alive: answer every request on this connection. */
		for (;;) {
			char *end, *eol;
			ssize_t k;

			while (!(end = memmem(req, got, "\r\n\r\n", 4)) && got < sizeof(req) - 1 &&
			       (k = read(fd, req + got, sizeof(req) - 1 - got)) > 0)
				got += (size_t)k;
			if (!end)
				break;
			req[got] = '\0';
			eol = strstr(req, "\r\n");
			*eol = '\0';
			buf_init(&out, 64u << 20);
			fh->answer(fh->requests++, req, &out);
			if (write_all(fd, out.data, out.len) < 0) {
				buf_release(&out);
				break;
			}
			buf_release(&out);
			end += 4;
			memmove(req, end, got - (size_t)(end - req));
			got -= (size_t)(end - req);
		}
		close(fd);
	}
}

static int fake_http_start(struct fake_http *fh, fake_answer_fn answer)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	memset(fh, 0, sizeof(*fh));
	fh->answer = answer;
	fh->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fh->lfd < 0 || bind(fh->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fh->lfd, 16) < 0 || getsockname(fh->lfd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	fh->port = ntohs(sa.sin_port);
	return pthread_create(&fh->th, NULL, fake_http_main, fh) == 0 ? 0 : -1;
}

static void fake_http_stop(struct fake_http *fh)
{
	shutdown(fh->lfd, SHUT_RDWR);
	close(fh->lfd);
	pthread_join(fh->th, NULL);
}

static struct aws_client *fake_client(const struct fake_http *fh)
{
	struct aws_client_opts o = { .region = "eu-west-1", .max_attempts = 1 };
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", fh->port);
	setenv("AWS_ENDPOINT_URL", url, 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-for-the-fake-endpoint", 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	return aws_client_new(&o);
}

static void json_answer(struct buf *out, const char *body)
{
	buf_printf(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		   "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
}

/* ListSnapshotBlocks that never ends: the same NextToken every time. */
static void ans_same_token(int n UNUSED, const char *line UNUSED, struct buf *out)
{
	json_answer(out, "{\"Blocks\":[{\"BlockIndex\":1,\"BlockToken\":\"b\"}],"
			 "\"NextToken\":\"again\",\"VolumeSize\":1,\"BlockSize\":524288}");
}

/* A new token every page, one block each (the same index). */
static void ans_new_tokens(int n, const char *line UNUSED, struct buf *out)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"Blocks\":[{\"BlockIndex\":%d,\"BlockToken\":\"b\"}],"
		 "\"NextToken\":\"t%d\"}", n % 3, n);
	json_answer(out, body);
}

/* Empty pages with new tokens. */
static void ans_empty_pages(int n, const char *line UNUSED, struct buf *out)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"Blocks\":[],\"NextToken\":\"e%d\"}", n);
	json_answer(out, body);
}

/* An index past the volume. */
static void ans_far_index(int n UNUSED, const char *line UNUSED, struct buf *out)
{
	json_answer(out, "{\"Blocks\":[{\"BlockIndex\":999999,\"BlockToken\":\"b\"}]}");
}

/* A proper two-page listing. */
static void ans_two_pages(int n, const char *line UNUSED, struct buf *out)
{
	json_answer(out, n == 0 ? "{\"Blocks\":[{\"BlockIndex\":0,\"BlockToken\":\"a\"},"
				  "{\"BlockIndex\":2,\"BlockToken\":\"b\"}],\"NextToken\":\"p2\"}"
				: "{\"Blocks\":[{\"BlockIndex\":5,\"BlockToken\":\"c\"}]}");
}

static int count_block(uint64_t index UNUSED, const char *token UNUSED, void *opaque)
{
	(*(int *)opaque)++;
	return 0;
}

static void test_ebs_list_bounds(void)
{
	static const struct {
		const char *name;
		fake_answer_fn fn;
		const char *want;
		int max_requests;
	} cases[] = {
		{ "the same NextToken again", ans_same_token, "NextToken repeats", 2 },
		{ "new tokens, more blocks than the volume has", ans_new_tokens,
		  "more than the snapshot's 8 blocks", 9 },
		{ "empty pages with tokens", ans_empty_pages, "pages in a row without a block",
		  EBS_LIST_EMPTY_PAGES_MAX },
		{ "a block index past the volume", ans_far_index, "past the snapshot's 8 blocks", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct fake_http fh;
		struct aws_client *cl;
		int blocks = 0, r = 0;

		if (fake_http_start(&fh, cases[i].fn) < 0 || !(cl = fake_client(&fh))) {
			CHECK(false, "ebs list: %s: fake endpoint (%s)", cases[i].name, err_msg());
			continue;
		}
		r = ebs_list_all_blocks(cl, "snap-0123", 8, count_block, &blocks);
		CHECK(r < 0 && strstr(err_msg(), cases[i].want) &&
		      fh.requests <= cases[i].max_requests,
		      "ebs list: %s: stops after %d requests (%s)", cases[i].name, fh.requests,
		      r < 0 ? err_msg() : "succeeded");
		aws_client_free(cl);
		fake_http_stop(&fh);
	}
	{
		struct fake_http fh;
		struct aws_client *cl;
		int blocks = 0;

		if (fake_http_start(&fh, ans_two_pages) < 0 || !(cl = fake_client(&fh))) {
			CHECK(false, "ebs list: fake endpoint (%s)", err_msg());
			return;
		}
		CHECK(ebs_list_all_blocks(cl, "snap-0123", 8, count_block, &blocks) == 0 &&
		      blocks == 3 && fh.requests == 2,
		      "ebs list: a proper two-page listing gives its 3 blocks (%d)", blocks);
		aws_client_free(cl);
		fake_http_stop(&fh);
	}
}

/* ListChangedBlocks in two pages; each request line must name the first
 * snapshot (and, on page 2, the page token), or the answer is a 400. */
static void ans_changed(int n, const char *line, struct buf *out)
{
	const char *want = n == 0 ? "GET /snapshots/snap-0bbb/changedblocks?firstSnapshotId=snap-0aaa"
				    "&maxResults=10000 "
				  : "GET /snapshots/snap-0bbb/changedblocks?firstSnapshotId=snap-0aaa"
				    "&maxResults=10000&pageToken=p%2B2 ";

	if (!str_startswith(line, want)) {
		buf_adds(out, "HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}");
		return;
	}
	json_answer(out, n == 0 ? "{\"ChangedBlocks\":[{\"BlockIndex\":0,\"FirstBlockToken\":\"a\","
				  "\"SecondBlockToken\":\"b\"},{\"BlockIndex\":3,"
				  "\"FirstBlockToken\":\"c\"}],\"NextToken\":\"p+2\","
				  "\"BlockSize\":524288,\"ExpiryTime\":1.7e9}"
				: "{\"ChangedBlocks\":[{\"BlockIndex\":7,\"SecondBlockToken\":\"d\"}]}");
}

/* A changed block with neither token. */
static void ans_changed_tokenless(int n UNUSED, const char *line UNUSED, struct buf *out)
{
	json_answer(out, "{\"ChangedBlocks\":[{\"BlockIndex\":1}]}");
}

/* A changed block past the volume. */
static void ans_changed_far(int n UNUSED, const char *line UNUSED, struct buf *out)
{
	json_answer(out, "{\"ChangedBlocks\":[{\"BlockIndex\":8,\"SecondBlockToken\":\"x\"}]}");
}

struct changes {
	int n, first_only, second_only, both;
};

static int count_change(uint64_t index UNUSED, const char *first, const char *second,
			void *opaque)
{
	struct changes *c = opaque;

	c->n++;
	c->first_only += first && !second;
	c->second_only += !first && second;
	c->both += first && second;
	return 0;
}

static void test_ebs_changed(void)
{
	static const struct {
		const char *name;
		fake_answer_fn fn;
		int ok;
	} cases[] = {
		{ "two pages", ans_changed, 1 },
		{ "a block with neither token", ans_changed_tokenless, 0 },
		{ "an index past the volume", ans_changed_far, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct fake_http fh;
		struct aws_client *cl;
		struct changes c = { 0 };
		int r;

		if (fake_http_start(&fh, cases[i].fn) < 0 || !(cl = fake_client(&fh))) {
			CHECK(false, "ebs changed: fake endpoint (%s)", err_msg());
			continue;
		}
		r = ebs_list_changed_blocks(cl, "snap-0aaa", "snap-0bbb", 8, count_change, &c);
		if (cases[i].ok)
			CHECK(r == 0 && c.n == 3 && c.both == 1 && c.first_only == 1 &&
			      c.second_only == 1 && fh.requests == 2,
			      "ebs changed: %s: 3 blocks, tokens as sent (%s)", cases[i].name,
			      r < 0 ? err_msg() : "ok");
		else
			CHECK(r < 0 && strstr(err_msg(), "ListChangedBlocks snap-0bbb"),
			      "ebs changed: %s refused (%s)", cases[i].name,
			      r < 0 ? err_msg() : "accepted");
		aws_client_free(cl);
		fake_http_stop(&fh);
	}
}

/* GetObject whose body is chunked (no Content-Length) and 1 MiB long. */
static void ans_chunked_mib(int n UNUSED, const char *line UNUSED, struct buf *out)
{
	static char chunk[65536];
	int i;

	memset(chunk, 'x', sizeof(chunk));
	buf_adds(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (i = 0; i < 16; i++) {
		buf_printf(out, "%zx\r\n", sizeof(chunk));
		buf_add(out, chunk, sizeof(chunk));
		buf_adds(out, "\r\n");
	}
	buf_adds(out, "0\r\n\r\n");
}

static void test_s3_get_bound(void)
{
	struct fake_http fh;
	struct aws_client *cl;
	char dir[] = "/tmp/amiforge-hygiene-XXXXXX", *path;
	struct stat st;

	if (!mkdtemp(dir) || fake_http_start(&fh, ans_chunked_mib) < 0 || !(cl = fake_client(&fh))) {
		CHECK(false, "s3 get: fake endpoint (%s)", err_msg());
		return;
	}
	path = xasprintf("%s/obj", dir);
	CHECK(s3_get_object(cl, "bucket", "key", NULL, 100 * 1024, path) < 0 &&
	      strstr(err_msg(), "larger than the limit of 102400 bytes"),
	      "s3 get: a 1 MiB chunked body over a 100 KiB limit fails (%s)", err_msg());
	CHECK(stat(path, &st) < 0, "s3 get: nothing left at the destination");
	CHECK(s3_get_object(cl, "bucket", "key", NULL, 1024 * 1024, path) == 0 &&
	      stat(path, &st) == 0 && st.st_size == 1024 * 1024,
	      "s3 get: the same body within the limit is written whole");
	aws_client_free(cl);
	fake_http_stop(&fh);
	remove_tree(dir);
	free(path);
}

static void test_escape(void)
{
	static const struct {
		const char *in, *want;
		bool keep_nl;
	} cases[] = {
		{ "plain text", "plain text", true },
		{ "a\033[2Jb", "a\\x1b[2Jb", true },
		{ "title\033]0;x\007", "title\\x1b]0;x\\x07", true },
		{ "cr\rover", "cr\\x0dover", true },
		{ "del\177", "del\\x7f", true },
		{ "csi\302\233m", "csi\\xc2\\x9bm", true },
		{ "utf-8 \303\251t\303\251 \342\202\254", "utf-8 \303\251t\303\251 \342\202\254", true },
		{ "line1\nline2\ttab", "line1\nline2\ttab", true },
		{ "line1\nline2", "line1\\x0aline2", false },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *got = str_escape_ctl(cases[i].in, strlen(cases[i].in), cases[i].keep_nl);

		CHECK_STR(got, cases[i].want, "escape: case %zu", i);
		CHECK(str_has_ctl(cases[i].in, strlen(cases[i].in), cases[i].keep_nl) ==
		      (strcmp(cases[i].in, cases[i].want) != 0), "escape: str_has_ctl agrees, case %zu", i);
		free(got);
	}
	{
		/* NUL bytes inside the length are escaped too */
		char *got = str_escape_ctl("a\0b", 3, true);
		CHECK_STR(got, "a\\x00b", "escape: NUL inside the text");
		free(got);
	}
}

/* ---- the direct QEMU driver's console log ceiling ---- */

static void test_console_copy(void)
{
	char dir[] = "/tmp/amiforge-console-XXXXXX", *log = NULL, *fifo = NULL;
	char note[160];
	struct buf b = BUF_INIT(64u << 20);
	int p[2], out, i, rfd, wfd, st;
	pid_t pid, w;
	char chunk[1000];

	if (!mkdtemp(dir) || pipe(p) < 0) {
		CHECK(false, "console: setup");
		return;
	}
	log = xasprintf("%s/console.log", dir);
	fifo = xasprintf("%s/console.fifo", dir);
	snprintf(note, sizeof(note), "\n[amiforge: console log truncated at %u bytes; the rest "
		 "of the console output is discarded]\n", 1000u);

	/* hv_console_copy: 3000 bytes into a ceiling of 1000 */
	memset(chunk, 'a', sizeof(chunk));
	for (i = 0; i < 3; i++)
		write_all(p[1], chunk, sizeof(chunk));
	close(p[1]);
	out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	CHECK(hv_console_copy(p[0], out, 1000) == 0, "console: copy to EOF");
	close(out);
	close(p[0]);
	CHECK(buf_read_file(&b, log) == 0 && b.len == 1000 + strlen(note) &&
	      memcmp(b.data, chunk, 1000) == 0 && strcmp(b.data + 1000, note) == 0,
	      "console: first 1000 bytes kept, then one truncation note (%zu bytes)", b.len);
	buf_release(&b);

	/* a second run appends to a file already at the ceiling: nothing but
	 * the note (the ceiling is on the file) */
	if (pipe(p) == 0) {
		write_all(p[1], "more", 4);
		close(p[1]);
		out = open(log, O_WRONLY | O_APPEND);
		hv_console_copy(p[0], out, 1000);
		close(out);
		close(p[0]);
		CHECK(buf_read_file(&b, log) == 0 && b.len == 1000 + 2 * strlen(note) &&
		      !memmem(b.data, b.len, "more", 4),
		      "console: a restarted guest cannot grow a full log");
		buf_release(&b);
	}
	unlink(log);

	/* The logger process on a FIFO, as qemu.c runs it: it waits for a
	 * writer, keeps HV_CONSOLE_LOG_MAX bytes, drains the rest, ends on EOF. */
	if (mkfifo(fifo, 0600) < 0 || (rfd = open(fifo, O_RDONLY | O_NONBLOCK)) < 0) {
		CHECK(false, "console: fifo");
		goto cleanup;
	}
	pid = hv_console_logger_start(rfd, log, HV_CONSOLE_LOG_MAX);
	close(rfd);
	usleep(300 * 1000);
	w = waitpid(pid, &st, WNOHANG);
	CHECK(pid > 0 && w == 0, "console logger: waits for its writer");
	wfd = open(fifo, O_WRONLY);
	{
		static char big[1 << 20];

		for (i = 0; i < (int)sizeof(big); i++)
			big[i] = (char)('a' + i % 26);
		for (i = 0; i < 10; i++)       /* 10 MiB through a 4 MiB ceiling */
			write_all(wfd, big, sizeof(big));
	}
	close(wfd);
	CHECK(hv_console_logger_stop(pid, 10000) == 0, "console logger: ends by itself at EOF");
	snprintf(note, sizeof(note), "\n[amiforge: console log truncated at %u bytes; the rest "
		 "of the console output is discarded]\n", HV_CONSOLE_LOG_MAX);
	CHECK(buf_read_file(&b, log) == 0 && b.len == HV_CONSOLE_LOG_MAX + strlen(note) &&
	      strcmp(b.data + HV_CONSOLE_LOG_MAX, note) == 0 && b.data[0] == 'a' &&
	      b.data[HV_CONSOLE_LOG_MAX - 1] ==
	      (char)('a' + ((HV_CONSOLE_LOG_MAX - 1) % (1u << 20)) % 26),
	      "console logger: 10 MiB of output leave HV_CONSOLE_LOG_MAX bytes and the note (%zu)",
	      b.len);
	buf_release(&b);
	{
		struct stat sb;
		CHECK(stat(log, &sb) == 0 && (sb.st_mode & 0777) == 0600, "console logger: log is 0600");
	}
cleanup:
	remove_tree(dir);
	free(log);
	free(fifo);
}

/* The direct QEMU driver end to end, without a guest OS: a 512-byte boot
 * sector writes 128 KiB of 'x' to COM1 and halts; with a 64 KiB ceiling the
 * console log must hold 64 KiB and the note, and the logger must be gone
 * with QEMU. */
static void test_qemu_console_cap(void)
{
	static const unsigned char code[] = {
		0xFA,                   /* cli */
		0xBA, 0xF8, 0x03,       /* mov dx, 0x3f8 */
		0xBB, 0x02, 0x00,       /* mov bx, 2 (x 65536 bytes) */
		0x31, 0xC9,             /* outer: xor cx, cx */
		0xB0, 0x78,             /* inner: mov al, 'x' */
		0xEE,                   /* out dx, al */
		0xE2, 0xFB,             /* loop inner */
		0x4B,                   /* dec bx */
		0x75, 0xF6,             /* jnz outer */
		0xF4,                   /* halt: hlt */
		0xEB, 0xFD,             /* jmp halt */
	};
	char dir[] = "/tmp/amiforge-qemucon-XXXXXX", note[160];
	unsigned char sector[512] = { 0 };
	char *disk = NULL, *log = NULL, *fifo = NULL;
	struct vm_spec s = { .name = "amiforge-hygiene-console", .n_disks = 1, .cpus = 1,
			     .memory_mib = 128, .accel = ACCEL_TCG,
			     .console_log_max = 64 * 1024 };
	struct buf b = BUF_INIT(1u << 20);
	struct hv *hv = NULL;
	struct hv_vm *vm = NULL;
	int64_t deadline;
	int fd;

	if (access("/usr/bin/qemu-system-x86_64", X_OK) != 0) {
		printf("SKIP: qemu console: qemu-system-x86_64 not installed\n");
		return;
	}
	if (!mkdtemp(dir)) {
		CHECK(false, "qemu console: temp dir");
		return;
	}
	disk = xasprintf("%s/boot.raw", dir);
	log = xasprintf("%s/console.log", dir);
	fifo = xasprintf("%s/console.fifo", dir);
	memcpy(sector, code, sizeof(code));
	sector[510] = 0x55;
	sector[511] = 0xaa;
	fd = open(disk, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write_all(fd, sector, sizeof(sector)) < 0 || ftruncate(fd, 1 << 20) < 0) {
		CHECK(false, "qemu console: boot disk");
		goto cleanup;
	}
	close(fd);
	s.disks[0].path = disk;
	s.disks[0].format = "raw";
	s.console_log = log;
	s.run_dir = dir;
	hv = hv_open("qemu", NULL);
	vm = hv ? hv_start(hv, &s) : NULL;
	CHECK(vm != NULL, "qemu console: QEMU starts with its console on a FIFO (%s)",
	      vm ? "" : err_msg());
	if (!vm)
		goto cleanup;
	snprintf(note, sizeof(note), "\n[amiforge: console log truncated at %u bytes; the rest "
		 "of the console output is discarded]\n", 64 * 1024);
	/* 128 KiB at TCG's serial speed (~150 KiB/s here): well within 60 s */
	deadline = now_ms() + 60000;
	do {
		usleep(200 * 1000);
		buf_release(&b);
		if (buf_read_file(&b, log) < 0)
			err_clear();
	} while (b.len < 64 * 1024 + strlen(note) && now_ms() < deadline);
	CHECK(b.len == 64 * 1024 + strlen(note) && b.data[0] == 'x' &&
	      b.data[64 * 1024 - 1] == 'x' && strcmp(b.data + 64 * 1024, note) == 0,
	      "qemu console: 128 KiB of serial output leave the 64 KiB ceiling and the note (%zu)",
	      b.len);
	CHECK(hv_destroy(vm) == 0, "qemu console: destroyed");
	hv_vm_free(vm);
	vm = NULL;
	CHECK(access(fifo, F_OK) != 0, "qemu console: FIFO removed with the guest");
	buf_release(&b);
	CHECK(buf_read_file(&b, log) == 0 && b.len == 64 * 1024 + strlen(note),
	      "qemu console: nothing more written after the note (%zu)", b.len);
cleanup:
	if (vm) {
		hv_destroy(vm);
		hv_vm_free(vm);
	}
	hv_close(hv);
	buf_release(&b);
	remove_tree(dir);
	free(disk);
	free(log);
	free(fifo);
}

int main(void)
{
	test_yaml_large_mapping();
	test_names();
	test_local_addresses();
	test_escape();
	test_ebs_list_bounds();
	test_ebs_changed();
	test_s3_get_bound();
	test_console_copy();
	test_qemu_console_cap();
	return TEST_DONE();
}
