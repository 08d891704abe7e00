/* Generalisation: what a build must not leave in an image that thousands
 * of instances will share (host keys, keys, histories, credentials, a
 * machine-id, cloud-init's record of the build instance), and the
 * --canary search over the whole filesystem tree. */
#include <archive.h>
#include <archive_entry.h>
#include <guestfs.h>
#include <jansson.h>
#include <pthread.h>

#include "internal.h"
#include "builder/guest/inject.h"
#include "builder/guest/seed.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* Longest canary accepted: it is searched in a sliding window. */
#define CANARY_MAX 256
/* Block size for streaming file contents out of the tar stream. */
#define CANARY_BLOCK (256u * 1024)

/* A check's evidence: how many paths, the first (the report's evidence),
 * and the first EVIDENCE_MAX of them as a list, each with its note. */
struct hits {
	unsigned long n;
	char first[1024];
	char list[1024];
};

static void hits_add(struct hits *h, const char *path, const char *note)
{
	size_t used = strlen(h->list);

	if (!h->n++)
		snprintf(h->first, sizeof(h->first), "%s", path);
	if (h->n <= EVIDENCE_MAX)
		snprintf(h->list + used, sizeof(h->list) - used, "%s%s%s", used ? ", " : "", path,
			 note);
}

/* Non-empty regular files matching any pattern; fail/warn with the list. */
static void check_files(struct inspect_ctx *c, enum check_status st, const char *id,
			const char *const *patterns, const char *what, const char *ok)
{
	struct hits h = { 0 };
	size_t i, j;

	for (i = 0; patterns[i]; i++) {
		char **v = guest_glob(c, patterns[i]);

		for (j = 0; v[j]; j++) {
			bool dir = guest_is_dir(c, v[j]);
			int64_t size = dir ? 1 : guestfs_filesize(c->g, v[j]);

			if (size > 0)	/* empty files are harmless */
				hits_add(&h, v[j], "");
		}
		strv_free(v);
	}
	if (h.n)
		report_add(c, st, id, h.first, "%s: %s%s", what, h.list,
			   h.n > EVIDENCE_MAX ? ", ..." : "");
	else
		report_add(c, CHECK_PASS, id, NULL, "%s", ok);
}

static void check_machine_id(struct inspect_ctx *c)
{
	static const char *const files[] = { "/etc/machine-id", "/var/lib/dbus/machine-id" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(files); i++) {
		char *id = guest_read(c, files[i], NULL, NULL);
		char *t = id ? str_trim(id) : NULL;

		if (t && *t && strcmp(t, "uninitialized") != 0) {
			report_add(c, CHECK_WARN, "clean.machine-id", files[i],
				   "machine-id is set: every instance would share it (DHCP DUIDs, "
				   "journald); empty the file");
			free(id);
			return;
		}
		free(id);
	}
	report_add(c, CHECK_PASS, "clean.machine-id", "/etc/machine-id",
		   "machine-id empty or absent: generated at first boot");
}

/* What amiforge itself puts in a guest must not ship: the injected agent
 * and its unit (inject.h), the seeded agent's directory (seed.h: a tmpfs,
 * so on the disk only when something went wrong), the AWSTOE working
 * directories, and cloud-init's record of the build instance, recognised
 * by the seed's user-data. */
static void check_amiforge(struct inspect_ctx *c)
{
	static const char *const paths[] = {
		INJECT_AGENT_PATH, INJECT_UNIT_PATH, INJECT_WANTS_PATH, SEED_AGENT_DIR,
		"/etc/systemd/system/" SEED_AGENT_NAME "*", "/usr/local/sbin/" SEED_AGENT_NAME "*",
		"/tmp/amiforge-*", "/var/tmp/amiforge-*", NULL,
	};
	static const char *const userdata[] = {
		"/var/lib/cloud/instances/*/user-data.txt", "/var/lib/cloud/instances/*/user-data.txt.i",
		"/var/lib/cloud/seed/nocloud*/user-data", NULL,
	};
	struct hits h = { 0 };
	char *text;
	size_t i, j;

	for (i = 0; paths[i]; i++) {
		char **v = guest_glob(c, paths[i]);

		for (j = 0; v[j]; j++)
			hits_add(&h, v[j], "");
		strv_free(v);
	}
	for (i = 0; userdata[i]; i++) {
		char **v = guest_glob(c, userdata[i]);

		for (j = 0; v[j]; j++) {
			text = guest_read(c, v[j], NULL, NULL);
			if (text && strstr(text, SEED_CONSOLE_MARK))
				hits_add(&h, v[j], " (the build's seed)");
			free(text);
		}
		strv_free(v);
	}
	/* cloud-init held off for a checkpoint's boot (inject.h), recognised
	 * by its text: an image may disable cloud-init itself. */
	text = guest_read(c, INJECT_CI_HOLD_PATH, NULL, NULL);
	if (text && strcmp(text, INJECT_CI_HOLD_TEXT) == 0)
		hits_add(&h, INJECT_CI_HOLD_PATH, " (cloud-init held off)");
	free(text);
	if (h.n)
		report_add(c, CHECK_FAIL, "clean.amiforge", h.first,
			   "amiforge's own files left in the image: %s%s", h.list,
			   h.n > EVIDENCE_MAX ? ", ..." : "");
	else
		report_add(c, CHECK_PASS, "clean.amiforge", NULL,
			   "nothing of amiforge's (agent, unit, seed, working files, the build "
			   "instance's cloud-init state)");
}

int inspect_generalised(struct inspect_ctx *c)
{
	static const char *const hostkeys[] = { "/etc/ssh/ssh_host_*", NULL };
	static const char *const authkeys[] = {
		"/root/.ssh/authorized_keys*", "/home/*/.ssh/authorized_keys*", NULL };
	static const char *const hist[] = {
		"/root/.*_history", "/home/*/.*_history", "/root/.lesshst", "/home/*/.lesshst", NULL };
	static const char *const creds[] = {
		"/root/.aws", "/home/*/.aws", "/root/.ssh/id_*", "/home/*/.ssh/id_*",
		"/root/.docker/config.json", "/home/*/.docker/config.json",
		"/root/.netrc", "/home/*/.netrc", "/root/.git-credentials", "/home/*/.git-credentials",
		"/root/.config/gcloud", "/home/*/.config/gcloud", "/root/.azure", "/home/*/.azure",
		"/root/.kube/config", "/home/*/.kube/config", "/root/.pgpass", "/home/*/.pgpass",
		NULL };
	static const char *const state[] = {
		"/var/lib/cloud/instance", "/var/lib/cloud/instances/*", NULL };

	check_files(c, CHECK_FAIL, "clean.ssh-host-keys", hostkeys,
		    "SSH host keys left in the image (every instance would share them)",
		    "no SSH host keys: generated at first boot");
	check_files(c, CHECK_FAIL, "clean.authorized-keys", authkeys,
		    "authorized_keys left in the image", "no authorized_keys");
	check_machine_id(c);
	check_files(c, CHECK_FAIL, "clean.history", hist, "shell histories left in the image",
		    "no shell histories");
	check_files(c, CHECK_FAIL, "clean.credentials", creds,
		    "credentials or private keys left in the image", "no credentials found");
	check_files(c, CHECK_FAIL, "clean.cloud-init-state", state,
		    "cloud-init state of the build instance (first boot on EC2 would skip "
		    "per-instance setup)", "no cloud-init instance state");
	check_amiforge(c);
	return 0;
}

/* Needles of the whole-tree search: group 0 are canaries (clean.canary),
 * group 1 secrets (clean.host-credentials), never printed. */
#define NEEDLES_MAX 64

struct needle {
	const char *s;
	size_t n;
	int group;
};

struct canary_scan {
	int fd;                   /* read end of the tar stream */
	struct needle nd[NEEDLES_MAX];
	size_t nn, maxlen;
	unsigned long files;
	struct hits hit[2];
	char err[512];
};

/* The groups (bit 0, bit 1) whose needles occur in the n bytes at p. */
static unsigned match(const struct canary_scan *s, const void *p, size_t n, unsigned have)
{
	for (size_t i = 0; i < s->nn; i++)
		if (!(have & (1u << s->nd[i].group)) && memmem(p, n, s->nd[i].s, s->nd[i].n))
			have |= 1u << s->nd[i].group;
	return have;
}

/* Search one entry's data, keeping maxlen-1 bytes of overlap between blocks
 * so that a needle split across two reads is still found. */
static unsigned scan_data(struct archive *a, struct canary_scan *s, unsigned char *buf,
			  unsigned have)
{
	size_t keep = 0;

	for (;;) {
		la_ssize_t n = archive_read_data(a, buf + keep, CANARY_BLOCK);
		size_t sz;

		if (n <= 0)
			return have;
		sz = keep + (size_t)n;
		have = match(s, buf, sz, have);
		keep = sz < s->maxlen - 1 ? sz : s->maxlen - 1;
		memmove(buf, buf + sz - keep, keep);
	}
}

static void *scan_thread(void *opaque)
{
	struct canary_scan *s = opaque;
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	unsigned char *buf = xmalloc(CANARY_BLOCK + CANARY_MAX);
	char drain[65536];
	int r;

	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (archive_read_open_fd(a, s->fd, 65536) != ARCHIVE_OK) {
		snprintf(s->err, sizeof(s->err), "%s", archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e), *l = archive_entry_symlink(e);
		const char *path = p ? p : "?";
		unsigned have = 0;

		if (str_startswith(path, "./"))
			path++;
		s->files++;
		if (p)
			have = match(s, p, strlen(p), have);
		if (l)
			have = match(s, l, strlen(l), have);
		if (archive_entry_filetype(e) == AE_IFREG)
			have = scan_data(a, s, buf, have);
		for (int g = 0; g < 2; g++)
			if (have & (1u << g))
				hits_add(&s->hit[g], path, "");
	}
	if (r != ARCHIVE_EOF)
		snprintf(s->err, sizeof(s->err), "%s", archive_error_string(a));
out:
	/* Keep the writer from blocking on a full pipe whatever happened. */
	while (read(s->fd, drain, sizeof(drain)) > 0)
		;
	archive_read_free(a);
	free(buf);
	return NULL;
}

static const char *const group_id[] = { "clean.canary", "clean.host-credentials" };

static bool add_needle(struct inspect_ctx *c, struct canary_scan *s, const char *text, int group)
{
	size_t n = strlen(text);

	if (n == 0 || n > CANARY_MAX || s->nn == NEEDLES_MAX) {
		report_add(c, CHECK_FAIL, group_id[group], NULL,
			   "%s must be 1 to %d bytes, at most %d in all",
			   group ? "a secret" : "a canary", CANARY_MAX, NEEDLES_MAX);
		return false;
	}
	s->nd[s->nn++] = (struct needle){ text, n, group };
	if (n > s->maxlen)
		s->maxlen = n;
	return true;
}

int inspect_canary(struct inspect_ctx *c)
{
	const struct inspect_opts *o = c->opts;
	struct canary_scan *s;
	pthread_t th;
	int pfd[2], ret = -1;
	char out[64];
	bool used[2] = { false, false };
	int rc, g;
	size_t i;

	s = xcalloc(1, sizeof(*s));
	if (o->canary && !(used[0] = add_needle(c, s, o->canary, 0)))
		goto done;
	for (i = 0; i < o->ncanaries; i++)
		if (!(used[0] = add_needle(c, s, o->canaries[i], 0)))
			goto done;
	for (i = 0; i < o->nsecrets; i++)
		if (!(used[1] = add_needle(c, s, o->secrets[i], 1)))
			goto done;
	if (!s->nn) {
		ret = 0;
		goto done;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		err_errno("pipe");
		goto done;
	}
	s->fd = pfd[0];
	if (pthread_create(&th, NULL, scan_thread, s) != 0) {
		close(pfd[0]);
		close(pfd[1]);
		err_set("canary: cannot start a thread");
		goto done;
	}
	log_info("searching every file for %zu canar%s", s->nn, s->nn == 1 ? "y" : "ies");
	snprintf(out, sizeof(out), "/dev/fd/%d", pfd[1]);
	rc = guestfs_tar_out_opts(c->g, "/", out, GUESTFS_TAR_OUT_OPTS_NUMERICOWNER, 1, -1);
	close(pfd[1]);
	pthread_join(th, NULL);
	close(pfd[0]);
	ret = 0;
	for (g = 0; g < 2; g++) {
		struct hits *h = &s->hit[g];

		if (!used[g])
			continue;
		if (rc < 0 || s->err[0])
			report_add(c, CHECK_FAIL, group_id[g], NULL, "the filesystem could not be "
				   "searched: %s", rc < 0 ? guestfs_last_error(c->g) : s->err);
		else if (h->n)
			report_add(c, CHECK_FAIL, group_id[g], h->first, "%s in %lu file%s: %s%s",
				   g ? "fragments of the AWS credentials this build used appear" :
				   "a canary appears", h->n, h->n == 1 ? "" : "s", h->list,
				   h->n > EVIDENCE_MAX ? ", ..." : "");
		else
			report_add(c, CHECK_PASS, group_id[g], NULL, "%s in none of %lu files",
				   g ? "no fragment of the AWS credentials this build used" :
				   "no canary", s->files);
	}
	if (rc >= 0 && !s->err[0])
		json_object_set_new(c->rep->facts, "files_searched", json_integer((json_int_t)s->files));

done:	/* s holds pointers to the needles, never copies */
	free(s);
	return ret;
}
