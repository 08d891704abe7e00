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
#include "error.h"
#include "log.h"
#include "util.h"

/* Longest canary accepted: it is searched in a sliding window. */
#define CANARY_MAX 256
/* Block size for streaming file contents out of the tar stream. */
#define CANARY_BLOCK (256u * 1024)

/* Non-empty regular files matching any pattern; fail/warn with the list. */
static void check_files(struct inspect_ctx *c, enum check_status st, const char *id,
			const char *const *patterns, const char *what, const char *ok)
{
	char list[1024] = "", first[512] = "";
	size_t i, j;
	int hits = 0;

	for (i = 0; patterns[i]; i++) {
		char **v = guest_glob(c, patterns[i]);

		for (j = 0; v[j]; j++) {
			bool dir = guest_is_dir(c, v[j]);
			int64_t size = dir ? 1 : guestfs_filesize(c->g, v[j]);
			size_t used = strlen(list);

			if (size <= 0)	/* empty files are harmless */
				continue;
			if (!hits++)
				snprintf(first, sizeof(first), "%s", v[j]);
			if (hits <= EVIDENCE_MAX)
				snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "", v[j]);
		}
		strv_free(v);
	}
	if (hits)
		report_add(c, st, id, first, "%s: %s%s", what, list,
			   hits > EVIDENCE_MAX ? ", ..." : "");
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
	return 0;
}

struct canary_scan {
	int fd;                   /* read end of the tar stream */
	const char *needle;
	size_t nlen;
	unsigned long files, hits;
	char first[1024];
	char list[1024];
	char err[512];
};

static void scan_hit(struct canary_scan *s, const char *path)
{
	size_t used = strlen(s->list);

	if (!s->hits++)
		snprintf(s->first, sizeof(s->first), "%s", path);
	if (s->hits <= EVIDENCE_MAX)
		snprintf(s->list + used, sizeof(s->list) - used, "%s%s", used ? ", " : "", path);
}

/* Search one entry's data, keeping nlen-1 bytes of overlap between blocks
 * so that a canary split across two reads is still found. */
static bool scan_data(struct archive *a, struct canary_scan *s, unsigned char *buf)
{
	size_t keep = 0;

	for (;;) {
		la_ssize_t n = archive_read_data(a, buf + keep, CANARY_BLOCK);
		size_t have;

		if (n <= 0)
			return false;
		have = keep + (size_t)n;
		if (memmem(buf, have, s->needle, s->nlen))
			return true;
		keep = have < s->nlen - 1 ? have : s->nlen - 1;
		memmove(buf, buf + have - keep, keep);
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

		if (str_startswith(path, "./"))
			path++;
		s->files++;
		if ((p && strstr(p, s->needle)) || (l && strstr(l, s->needle)) ||
		    (archive_entry_filetype(e) == AE_IFREG && scan_data(a, s, buf)))
			scan_hit(s, path);
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

int inspect_canary(struct inspect_ctx *c)
{
	struct canary_scan s;
	pthread_t th;
	int pfd[2];
	char out[64];
	int rc;

	if (!c->opts->canary)
		return 0;
	memset(&s, 0, sizeof(s));
	s.needle = c->opts->canary;
	s.nlen = strlen(s.needle);
	if (s.nlen == 0 || s.nlen > CANARY_MAX) {
		report_add(c, CHECK_FAIL, "clean.canary", NULL, "canary must be 1 to %d bytes",
			   CANARY_MAX);
		return 0;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_errno("pipe");
	s.fd = pfd[0];
	if (pthread_create(&th, NULL, scan_thread, &s) != 0) {
		close(pfd[0]);
		close(pfd[1]);
		return err_set("canary: cannot start a thread");
	}
	log_info("searching the filesystem for the canary");
	snprintf(out, sizeof(out), "/dev/fd/%d", pfd[1]);
	rc = guestfs_tar_out_opts(c->g, "/", out, GUESTFS_TAR_OUT_OPTS_NUMERICOWNER, 1, -1);
	close(pfd[1]);
	pthread_join(th, NULL);
	close(pfd[0]);
	if (rc < 0 || s.err[0]) {
		report_add(c, CHECK_FAIL, "clean.canary", NULL, "the filesystem could not be "
			   "searched: %s", rc < 0 ? guestfs_last_error(c->g) : s.err);
		return 0;
	}
	json_object_set_new(c->rep->facts, "files_searched", json_integer((json_int_t)s.files));
	if (s.hits)
		report_add(c, CHECK_FAIL, "clean.canary", s.first,
			   "the canary appears in %lu file%s: %s%s", s.hits, s.hits == 1 ? "" : "s",
			   s.list, s.hits > EVIDENCE_MAX ? ", ..." : "");
	else
		report_add(c, CHECK_PASS, "clean.canary", NULL,
			   "the canary appears in none of %lu files", s.files);
	return 0;
}
