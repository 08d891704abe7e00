/* Unit tests for builder/build/journal.c and builder/build/builddir.c: encoding, states,
 * locking, torn lines, redaction, handlers, and a real crash: a child that
 * journals a file, a directory and a process is SIGKILLed, then cleanup
 * removes all three.
 *
 * `test-journal --crash-helper` is also a fixture for
 * tests/integration/clean.sh: it creates a build directory under ./builds,
 * journals resources, prints the build directory and "ready", and waits to
 * be killed. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "test.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "proc.h"
#include "run.h"
#include "util.h"
#include "builder/build/builddir.h"
#include "builder/build/journal.h"

static char *tmpdir;

static bool exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static bool alive(pid_t pid)
{
	uint64_t st;

	waitpid(pid, NULL, WNOHANG);
	return proc_starttime(pid, &st) == 0;
}

static pid_t spawn_sleep(void)
{
	static const char *const argv[] = { "sleep", "1000", NULL };
	struct run r = RUN_INIT;

	r.argv = argv;
	r.new_pgroup = true;
	if (run_start(&r) < 0)
		return -1;
	return r.pid;
}

/* A journal of its own in tmpdir/name (NULL when it cannot be opened). */
static struct journal *fresh_journal(const char *name)
{
	char *sdir = xasprintf("%s/%s", tmpdir, name), *sj = xasprintf("%s/journal", sdir);
	struct journal *j;

	mkdir(sdir, 0700);
	j = journal_open(sj);
	free(sdir);
	free(sj);
	return j;
}

static char *file_text(const char *path)
{
	struct buf b = BUF_INIT(1 << 20);

	if (buf_read_file(&b, path) < 0)
		return xstrdup("");
	return buf_detach(&b, NULL);
}

static void test_basics(void)
{
	char *jp = xasprintf("%s/j1", tmpdir), *text;
	struct journal *j = journal_open(jp), *j2;
	struct journal_entry *e = NULL;
	unsigned a = 0, b = 0, c = 0;
	size_t n = 0;

	CHECK(j != NULL, "journal: open creates");
	if (!j)
		goto out;
	CHECK(journal_add(j, &a, "file", "/tmp/with space/100%\nnewline", NULL) == 0 && a == 1,
	      "journal: add gives id 1");
	CHECK(journal_add(j, &b, "dir", "/tmp/d", NULL) == 0 && b == 2, "journal: ids increase");
	CHECK(journal_add(j, &c, "s3-upload", "eu-west-1", "bucket", "key", "", NULL) == 0,
	      "journal: empty field accepted");
	CHECK(journal_add(j, NULL, "bad kind", NULL) < 0, "journal: kind with a space refused");
	CHECK(journal_release(j, b) == 0 && journal_keep(j, c) == 0,
	      "journal: release and keep");
	CHECK(journal_release(j, 99) < 0, "journal: releasing an unknown id fails");
	j2 = journal_open(jp);
	CHECK(!j2 && strstr(err_msg(), "in use by a running build"),
	      "journal: second open refused while locked");
	journal_close(j2);
	text = file_text(jp);
	CHECK(strstr(text, "+ 1 file /tmp/with%20space/100%25%0Anewline\n") != NULL,
	      "journal: fields percent-encoded on one line");
	free(text);
	CHECK(journal_load(jp, &e, &n) == 0 && n == 3, "journal: load reads 3 resources");
	if (n == 3) {
		CHECK_STR(e[0].fields[0], "/tmp/with space/100%\nnewline", "journal: field round trip");
		CHECK(e[0].state == JOURNAL_LIVE && e[1].state == JOURNAL_RELEASED &&
		      e[2].state == JOURNAL_KEPT, "journal: states live/released/kept");
		CHECK(e[2].nfields == 4 && e[2].fields[3][0] == '\0', "journal: empty field kept");
	}
	journal_entries_free(e, n);
	CHECK(journal_live_count(jp) == 1, "journal: one live resource");
	journal_close(j);

	/* A torn last line (crash mid-write) is ignored, and the next open
	 * continues on a fresh line with the next id. */
	{
		int fd = open(jp, O_WRONLY | O_APPEND);

		CHECK(fd >= 0 && write_all(fd, "+ 4 file /tor", 13) == 0, "journal: torn line written");
		if (fd >= 0)
			close(fd);
	}
	CHECK(journal_live_count(jp) == 1, "journal: torn line ignored");
	j = journal_open(jp);
	CHECK(j && journal_add(j, &a, "file", "/x", NULL) == 0 && a == 4,
	      "journal: reopen continues ids after the torn line");
	journal_close(j);
	CHECK(journal_live_count(jp) == 2, "journal: line after a torn one is read");
out:
	free(jp);
}

/* A signal's cleanup seals the journal: another thread that journals a
 * resource afterwards waits (for ever: the process is ending), so nothing
 * is journaled, or made, behind the walk; the sealing thread goes on. */
struct sealed_add {
	struct journal *j;
	volatile bool done;
};

static void *add_after_seal(void *arg)
{
	struct sealed_add *a = arg;

	journal_add(a->j, NULL, "file", "/made-after-the-walk", NULL);
	a->done = true;
	return NULL;
}

static void test_seal(void)
{
	char *jp = xasprintf("%s/jseal", tmpdir), *text;
	static struct sealed_add a;	/* the blocked thread keeps it */
	unsigned id = 0;
	pthread_t t;

	a.j = journal_open(jp);
	CHECK(a.j && journal_add(a.j, &id, "file", "/before", NULL) == 0, "journal seal: an add");
	if (!a.j)
		goto out;
	journal_seal(a.j);
	CHECK(pthread_create(&t, NULL, add_after_seal, &a) == 0, "journal seal: thread started");
	usleep(300 * 1000);
	CHECK(!a.done, "journal seal: another thread's add waits");
	CHECK(journal_release(a.j, id) == 0 && journal_add(a.j, NULL, "dir", "/mine", NULL) == 0,
	      "journal seal: the sealing thread still writes");
	text = file_text(jp);
	CHECK(!strstr(text, "made-after-the-walk") && strstr(text, "- 1\n") &&
	      strstr(text, "/mine"), "journal seal: only the sealing thread's lines");
	free(text);
	pthread_detach(t);	/* never returns; the journal stays open for it */
out:
	free(jp);
}

/* --on-error=abort: the live resources are held for inspection; clean
 * still releases them and its dry run says so. */
static void test_hold(void)
{
	char *jp = xasprintf("%s/jh", tmpdir), *f1 = xasprintf("%s/held-file", tmpdir);
	char *f2 = xasprintf("%s/product", tmpdir), *rep = NULL, *text;
	struct journal *j = journal_open(jp);
	struct journal_entry *e = NULL;
	unsigned a = 0, b = 0, ok = 0, bad = 0;
	size_t n = 0, len = 0;
	FILE *mem;
	int fd;

	if (!j) {
		CHECK(false, "hold: open (%s)", err_msg());
		goto out;
	}
	fd = open(f1, O_CREAT | O_WRONLY, 0600);
	if (fd >= 0)
		close(fd);
	CHECK(journal_add(j, &a, "file", f1, NULL) == 0 && journal_add(j, &b, "file", f2, NULL) == 0 &&
	      journal_keep(j, b) == 0 && journal_hold_live(j) == 0, "hold: hold the live resources");
	text = file_text(jp);
	CHECK(strstr(text, "~ 1\n") && !strstr(text, "~ 2\n"), "hold: '~ ID' for the live one only");
	free(text);
	CHECK(journal_load(jp, &e, &n) == 0 && n == 2 && e[0].state == JOURNAL_HELD &&
	      e[1].state == JOURNAL_KEPT, "hold: loads as held");
	journal_entries_free(e, n);
	CHECK(journal_live_count(jp) == 1, "hold: a held resource counts as live for clean");
	mem = open_memstream(&rep, &len);
	CHECK(journal_cleanup(j, true, mem, &ok, &bad) == 0, "hold: dry run");
	fclose(mem);
	CHECK(rep && strstr(rep, "would release file") && strstr(rep, "(kept for inspection)"),
	      "hold: dry run says kept for inspection");
	free(rep);
	CHECK(exists(f1), "hold: dry run removes nothing");
	CHECK(journal_cleanup(j, false, NULL, &ok, &bad) == 0 && ok == 1 && !exists(f1),
	      "hold: cleanup releases a held resource");
	CHECK(journal_live_count(jp) == 0, "hold: nothing live after cleanup");
	journal_close(j);
out:
	free(jp);
	free(f1);
	free(f2);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"+ x file /a\n", "* 1 file /a\n", "- 7\n", "+ 1 file /a%zz\n", "+ 1\n",
		"+ 1 file /a\n+ 1 file /b\n", "+ 1 file /a%00\n",
	};
	char *jp = xasprintf("%s/bad", tmpdir);
	size_t i, n;
	struct journal_entry *e;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		write_file_atomic(jp, bad[i], strlen(bad[i]), 0600);
		CHECK(journal_load(jp, &e, &n) < 0 && strstr(err_msg(), jp) != NULL,
		      "journal: malformed %zu rejected with its line", i);
	}
	free(jp);
}

static void test_redaction(void)
{
	char *jp = xasprintf("%s/secret", tmpdir), *text;
	struct journal *j;

	log_add_secret("AKIAVERYSECRETKEY");
	j = journal_open(jp);
	CHECK(j && journal_add(j, NULL, "s3-upload", "eu-west-1", "b",
			       "k?X-Amz-Credential=AKIAVERYSECRETKEY", "id", NULL) == 0,
	      "redact: journaled");
	journal_close(j);
	text = file_text(jp);
	CHECK(!strstr(text, "AKIAVERYSECRETKEY") && strstr(text, "[REDACTED]"),
	      "redact: the secret never reaches the journal");
	free(text);
	log_clear_secrets();
	free(jp);
}

static int fake_calls;
static int fake_release(const struct journal_entry *e, void *opaque)
{
	fake_calls++;
	if (opaque)
		return err_set("fake: %s refused", e->fields[0]);
	return 0;
}

static void test_handlers(void)
{
	char *jp = xasprintf("%s/h", tmpdir), *f = xasprintf("%s/h-file", tmpdir);
	char *gone = xasprintf("%s/already-gone", tmpdir);
	struct journal *j = journal_open(jp);
	unsigned ok, bad;
	pid_t p;
	char spid[32];

	write_file_atomic(f, "x", 1, 0600);
	journal_add(j, NULL, "file", f, NULL);
	journal_add(j, NULL, "widget", "w-1", NULL);
	journal_add(j, NULL, "file", gone, NULL);
	p = spawn_sleep();
	snprintf(spid, sizeof(spid), "%ld", (long)p);
	/* A pid whose start time does not match is someone else's process. */
	journal_add(j, NULL, "pid", spid, "1", "/usr/bin/sleep", NULL);
	CHECK(journal_cleanup(j, true, NULL, &ok, &bad) == 0 && exists(f),
	      "cleanup: dry run touches nothing");
	CHECK(journal_cleanup(j, false, NULL, &ok, &bad) < 0 && ok == 3 && bad == 1 &&
	      strstr(err_msg(), "no cleanup handler for 'widget'"),
	      "cleanup: kind without a handler reported, others released");
	CHECK(!exists(f), "cleanup: file removed");
	CHECK(alive(p), "cleanup: pid with another start time not killed");
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	CHECK(journal_register("widget", fake_release, &fake_calls) == 0,
	      "cleanup: handler registered");
	CHECK(journal_cleanup(j, false, NULL, &ok, &bad) < 0 && fake_calls == 1 &&
	      strstr(err_msg(), "fake: w-1 refused"), "cleanup: handler failure reported");
	journal_register("widget", fake_release, NULL);
	CHECK(journal_cleanup(j, false, NULL, &ok, &bad) == 0 && ok == 1 && fake_calls == 2,
	      "cleanup: registered handler releases the widget");
	CHECK(journal_cleanup(j, false, NULL, &ok, &bad) == 0 && ok == 0,
	      "cleanup: second run has nothing left");
	journal_close(j);
	CHECK(journal_live_count(jp) == 0, "cleanup: journal has no live resources");
	free(jp);
	free(f);
	free(gone);
}

/* A journal someone else could have written is not obeyed: foreign owner,
 * group-writable, paths outside or through a symlink, dot-dot, a foreign
 * domain name, an ext URI, a pid now running another program. */
static void test_hostile(void)
{
	char *bdir = xasprintf("%s/hostile", tmpdir), *jp = xasprintf("%s/journal", bdir);
	char *canary = xasprintf("%s/canary", tmpdir), *outdir = xasprintf("%s/outside", tmpdir);
	char *link = xasprintf("%s/link", bdir), *via = xasprintf("%s/link/canary", bdir);
	char *dotdot = xasprintf("%s/../canary", bdir), *inside = xasprintf("%s/inside", bdir);
	char *oc = xasprintf("%s/outside/canary", tmpdir);
	char spid[32], sst[32];
	struct journal *j;
	struct build_dir bd;
	unsigned ok, bad;
	uint64_t st;
	pid_t p;

	mkdir(bdir, 0700);
	mkdir(outdir, 0700);
	write_file_atomic(canary, "c", 1, 0600);
	write_file_atomic(oc, "c", 1, 0600);
	CHECK(symlink(outdir, link) == 0, "hostile: symlink to a directory outside");
	j = journal_open(jp);
	CHECK(j != NULL, "hostile: own journal opens");
	journal_close(j);

	/* Ownership and modes. */
	CHECK(chmod(jp, 0660) == 0 && !journal_open(jp) &&
	      strstr(err_msg(), "writable by group or others"),
	      "hostile: group-writable journal refused (%s)", err_msg());
	chmod(jp, 0600);
	CHECK(chmod(bdir, 0777) == 0 && !journal_open(jp) && build_dir_open(bdir, &bd) < 0 &&
	      strstr(err_msg(), "writable by group or others"),
	      "hostile: world-writable build directory refused (%s)", err_msg());
	chmod(bdir, 0700);
	if (geteuid() == 0) {
		CHECK(chown(jp, 65534, 65534) == 0 && !journal_open(jp) &&
		      strstr(err_msg(), "owned by uid 65534"),
		      "hostile: journal owned by another user refused (%s)", err_msg());
		chown(jp, 0, 0);
		CHECK(chown(bdir, 65534, 65534) == 0 && build_dir_open(bdir, &bd) < 0 &&
		      !journal_open(jp) && strstr(err_msg(), "owned by uid 65534"),
		      "hostile: build directory owned by another user refused (%s)", err_msg());
		chown(bdir, 0, 0);
	} else {
		printf("SKIP: hostile: foreign owner: needs root to chown\n");
	}
	{
		char *lj = xasprintf("%s/ljournal", bdir);

		CHECK(symlink(jp, lj) == 0 && !journal_open(lj), "hostile: symlinked journal refused");
		free(lj);
	}

	/* Entries. */
	j = journal_open(jp);
	p = spawn_sleep();
	proc_starttime(p, &st);
	snprintf(spid, sizeof(spid), "%ld", (long)p);
	snprintf(sst, sizeof(sst), "%llu", (unsigned long long)st);
	/* Released last (newest first): a symlink entry removes the link only. */
	journal_add(j, NULL, "dir", link, NULL);
	journal_add(j, NULL, "file", canary, NULL);
	journal_add(j, NULL, "file", via, NULL);
	journal_add(j, NULL, "file", dotdot, NULL);
	journal_add(j, NULL, "dir", "/etc", NULL);
	journal_add(j, NULL, "domain", "amiforge-x", "qemu+ext:///system?command=/bin/true", NULL);
	journal_add(j, NULL, "domain", "webserver", "qemu:///system", NULL);
	/* The pid's start time is right, its program is not what was journaled. */
	journal_add(j, NULL, "qemu-pid", spid, sst, "/usr/bin/qemu-system-x86_64", NULL);
	write_file_atomic(inside, "i", 1, 0600);
	journal_add(j, NULL, "file", inside, NULL);
	CHECK(journal_cleanup(j, false, NULL, &ok, &bad) < 0 && bad == 6 && ok == 3,
	      "hostile: 6 entries refused, the pid left alone, the inside file released "
	      "(ok %u bad %u)", ok, bad);
	CHECK(exists(canary), "hostile: file outside the build directory kept");
	CHECK(exists(outdir) && !exists(link), "hostile: a symlink entry removes the link, not "
	      "its target");
	CHECK(exists(oc), "hostile: nothing removed through the symlink");
	CHECK(exists("/etc/passwd"), "hostile: /etc untouched");
	CHECK(alive(p), "hostile: process running another program not killed");
	CHECK(!exists(inside), "hostile: the file inside the build directory released");
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);

	/* Staging directories: ours are released, another user's are not. */
	journal_close(j);
	j = fresh_journal("staging-test");
	if (j) {
		char ours[] = "/tmp/amiforge-build-unit-XXXXXX";
		char theirs[] = "/tmp/amiforge-build-unit-XXXXXX";
		char *inner;

		if (mkdtemp(ours) && mkdtemp(theirs)) {
			inner = xasprintf("%s/disk.qcow2", ours);
			write_file_atomic(inner, "d", 1, 0600);
			journal_add(j, NULL, "dir", ours, NULL);
			if (geteuid() == 0 && chown(theirs, 65534, 65534) == 0) {
				char *tf = xasprintf("%s/f", theirs);

				journal_add(j, NULL, "file", tf, NULL);
				journal_add(j, NULL, "dir", theirs, NULL);
				CHECK(journal_cleanup(j, false, NULL, &ok, &bad) < 0 && bad == 2 &&
				      exists(theirs), "hostile: another user's staging directory refused "
				      "(ok %u bad %u)", ok, bad);
				free(tf);
			} else {
				journal_cleanup(j, false, NULL, &ok, &bad);
			}
			CHECK(!exists(ours) && !exists(inner), "hostile: our staging directory in /tmp "
			      "released");
			remove_tree(theirs);
			free(inner);
		}
	}
	/* An early appliance's socket directories (appliance.h): ours, by the
	 * names guest.c and libguestfs give them, and nothing else in /tmp. */
	journal_close(j);
	j = fresh_journal("sockdirs-test");
	if (j) {
		char sock[] = "/tmp/amiforge-sock-XXXXXX", gfs[] = "/tmp/libguestfsXXXXXX";
		char other[] = "/tmp/amiforge-unit-other-XXXXXX";

		if (mkdtemp(sock) && mkdtemp(gfs) && mkdtemp(other)) {
			char *s = xasprintf("%s/guestfsd.sock", gfs);

			write_file_atomic(s, "", 0, 0600);
			journal_add(j, NULL, "dir", sock, NULL);
			journal_add(j, NULL, "dir", gfs, NULL);
			journal_add(j, NULL, "dir", other, NULL);
			CHECK(journal_cleanup(j, false, NULL, &ok, &bad) < 0 && ok == 2 && bad == 1 &&
			      !exists(sock) && !exists(gfs) && exists(other),
			      "socket directories: amiforge-sock-* and libguestfs* released, another "
			      "name in /tmp refused (ok %u bad %u)", ok, bad);
			free(s);
		}
		remove_tree(sock);
		remove_tree(gfs);
		remove_tree(other);
	}
	journal_close(j);
	free(bdir);
	free(jp);
	free(canary);
	free(outdir);
	free(link);
	free(via);
	free(dotdot);
	free(inside);
	free(oc);
}

/* Create resources in bd and journal them; returns the sleep pid. */
static pid_t make_resources(const struct build_dir *bd, struct journal *j)
{
	char *f = xasprintf("%s/overlay.qcow2", bd->output);
	char *d = xasprintf("%s/seed", bd->path);
	char *inner = xasprintf("%s/seed/user-data", bd->path);
	pid_t p;

	/* Journal first, then create: a crash in between leaves a line for
	 * nothing, which cleanup treats as already gone. */
	journal_add(j, NULL, "file", f, NULL);
	write_file_atomic(f, "disk", 4, 0600);
	journal_add(j, NULL, "dir", d, NULL);
	mkdir(d, 0700);
	write_file_atomic(inner, "#cloud-config\n", 14, 0600);
	p = spawn_sleep();
	journal_add_pid(j, NULL, "qemu-pid", p);
	free(f);
	free(d);
	free(inner);
	return p;
}

static void test_crash(void)
{
	struct build_dir bd;
	int pfd[2];
	pid_t child, sleeper = 0;
	char *f, *d;
	struct journal *j;
	unsigned ok = 0, bad = 0;
	char *root = xasprintf("%s/builds", tmpdir);

	CHECK(build_dir_create(root, "crash", "1.0.0", 0, &bd) == 0, "crash: build dir created");
	f = xasprintf("%s/overlay.qcow2", bd.output);
	d = xasprintf("%s/seed", bd.path);
	if (pipe(pfd) < 0)
		return;
	child = fork();
	if (child == 0) {
		struct journal *cj = journal_open(bd.journal);
		pid_t p = cj ? make_resources(&bd, cj) : -1;

		if (write(pfd[1], &p, sizeof(p)) != sizeof(p))
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	CHECK(read_all(pfd[0], &sleeper, sizeof(sleeper)) == sizeof(sleeper) && sleeper > 0,
	      "crash: child journaled its resources");
	close(pfd[0]);
	CHECK(exists(f) && exists(d) && alive(sleeper), "crash: resources exist");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	CHECK(journal_live_count(bd.journal) == 3, "crash: journal shows 3 live resources");
	j = journal_open(bd.journal);
	CHECK(j != NULL, "crash: journal lock released by the kernel after SIGKILL");
	CHECK(j && journal_cleanup(j, false, NULL, &ok, &bad) == 0 && ok == 3 && bad == 0,
	      "crash: cleanup released 3 resources");
	journal_close(j);
	CHECK(!exists(f), "crash: file removed");
	CHECK(!exists(d), "crash: directory tree removed");
	CHECK(!alive(sleeper), "crash: process killed");
	free(f);
	free(d);
	build_dir_release(&bd);
	free(root);
}

static void test_build_dir(void)
{
	struct build_dir a, b;
	char *root = xasprintf("%s/bd", tmpdir);
	time_t t = 1700000000;

	CHECK(build_dir_create(root, "web", "1.0.0", t, &a) == 0, "build dir: created");
	CHECK(build_dir_create(root, "web", "1.0.0", t, &b) == 0, "build dir: same second again");
	CHECK(a.path && b.path && str_endswith(a.path, "/bd/web-1.0.0-20231114-221320") &&
	      str_endswith(b.path, "/bd/web-1.0.0-20231114-221320-2"),
	      "build dir: name-version-timestamp, then -2");
	CHECK(a.path && exists(a.toe) && exists(a.checkpoints) && exists(a.output),
	      "build dir: toe/, checkpoints/, output/ exist");
	CHECK(a.path && str_endswith(a.manifest, "/manifest.json") &&
	      str_endswith(a.console_log, "/console.log") && str_endswith(a.journal, "/journal"),
	      "build dir: file paths");
	CHECK(a.path && !build_dir_is_publish(a.path), "build dir: a build's is not a publish's");
	build_dir_release(&a);
	build_dir_release(&b);
	CHECK(build_dir_create(root, "disk", BUILD_DIR_PUBLISH, t, &a) == 0 &&
	      build_dir_create(root, "disk", BUILD_DIR_PUBLISH, t, &b) == 0 &&
	      build_dir_is_publish(a.path) && build_dir_is_publish(b.path),
	      "build dir: publish's own, and its -2, are a publish's");
	build_dir_release(&a);
	build_dir_release(&b);
	CHECK(build_dir_is_publish("my-publish-disk-publish-20231114-221320") &&
	      build_dir_is_publish("/x/a-publish-20231114-221320-12"),
	      "build dir: a publish's name, \"-publish-\" in the disk's name too");
	CHECK(!build_dir_is_publish("builds/my-publish-1.0.0-20231114-221320") &&
	      !build_dir_is_publish("-publish-20231114-221320") &&
	      !build_dir_is_publish("a-publish-20231114-22132") &&
	      !build_dir_is_publish("a-publish-20231114-221320-") &&
	      !build_dir_is_publish("a-publish-20231114-221320x") &&
	      !build_dir_is_publish("a-publish-2023111a-221320") &&
	      !build_dir_is_publish("a-publish-20231114-221320/"),
	      "build dir: not a publish's (a recipe named so, no name, a bad stamp)");
	CHECK(build_dir_open("/nonexistent-dir", &a) < 0, "build dir: open of a missing dir fails");
	free(root);
}

static int crash_helper(void)
{
	struct build_dir bd;
	struct journal *j;

	if (build_dir_create(NULL, "crash", "1.0.0", 0, &bd) < 0 || !(j = journal_open(bd.journal))) {
		log_err_msg();
		return 1;
	}
	make_resources(&bd, j);
	printf("%s\nready\n", bd.path);
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/amiforge-journal.XXXXXX";

	if (argc == 2 && strcmp(argv[1], "--crash-helper") == 0)
		return crash_helper();
	tmpdir = mkdtemp(tmpl);
	if (!tmpdir) {
		printf("FAIL: mkdtemp\n");
		return 1;
	}
	test_basics();
	test_hold();
	test_malformed();
	test_redaction();
	test_handlers();
	test_hostile();
	test_crash();
	test_build_dir();
	test_seal();
	remove_tree(tmpdir);
	return TEST_DONE();
}
