#include <archive.h>
#include <archive_entry.h>

#include "unpack.h"
#include "cache.h"
#include "error.h"
#include "util.h"

static bool is_disk_name(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return strcmp(base, "disk.raw") == 0 || str_endswith(base, ".qcow2") ||
	       str_endswith(base, ".raw") || str_endswith(base, ".img") ||
	       str_endswith(base, ".vmdk");
}

static bool unsafe_name(const char *p)
{
	const char *s = p;

	if (p[0] == '/')
		return true;
	while ((s = strstr(s, "..")) != NULL) {
		if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
			return true;
		s += 2;
	}
	return false;
}

static const char *strip_dot(const char *p)
{
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	return p;
}

static int hash_zeros(struct hasher *h, uint64_t n)
{
	static const char zeros[65536];

	while (n) {
		size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);

		hasher_update(h, zeros, k);
		n -= k;
	}
	return 0;
}

/* Copy the current entry's data to fd, keeping holes. */
static int copy_entry(struct archive *a, int fd, const char *out, struct hasher *h,
		      uint64_t declared)
{
	uint64_t pos = 0;

	for (;;) {
		const void *blk;
		size_t len;
		la_int64_t off;
		int rc = archive_read_data_block(a, &blk, &len, &off);

		if (rc == ARCHIVE_EOF)
			break;
		if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
			return err_set("read archive: %s", archive_error_string(a));
		if (off < 0 || (uint64_t)off < pos || (uint64_t)off + len > BASE_IMAGE_MAX)
			return err_set("archive entry larger than %llu bytes or out of order",
				       (unsigned long long)BASE_IMAGE_MAX);
		if ((uint64_t)off > pos) {
			hash_zeros(h, (uint64_t)off - pos);
			if (lseek(fd, off, SEEK_SET) < 0)
				return err_errno("seek '%s'", out);
		}
		if (write_all(fd, blk, len) < 0)
			return err_errno("write '%s'", out);
		hasher_update(h, blk, len);
		pos = (uint64_t)off + len;
	}
	if (declared > pos) {
		hash_zeros(h, declared - pos);
		pos = declared;
	}
	if (ftruncate(fd, (off_t)pos) < 0 || fsync(fd) < 0)
		return err_errno("write '%s'", out);
	return 0;
}

int unpack_disk(const char *archive, const char *member, const char *out,
		char **sha256_hex, char **member_out)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct hasher *h = hasher_new(CHECKSUM_NONE);
	char *found = NULL;
	size_t entries = 0;
	int fd = -1, r = -1, rc;

	*sha256_hex = NULL;
	*member_out = NULL;
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	archive_read_support_format_zip(a);
	if (archive_read_open_filename(a, archive, 1 << 16) != ARCHIVE_OK) {
		err_set("open archive '%s': %s", archive, archive_error_string(a));
		goto cleanup;
	}
	while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(e);
		bool want;

		if (++entries > UNPACK_ENTRIES_MAX) {
			err_set("archive '%s' has more than %d entries", archive, UNPACK_ENTRIES_MAX);
			goto cleanup;
		}
		if (!name)
			continue;
		want = member ? strcmp(strip_dot(name), strip_dot(member)) == 0
			      : is_disk_name(name);
		if (!want || archive_entry_filetype(e) != AE_IFREG)
			continue;
		if (unsafe_name(name)) {
			err_set("archive '%s': refusing entry '%s' (absolute or '..' path)",
				archive, name);
			goto cleanup;
		}
		if (found) {
			err_set("archive '%s' has several disk images ('%s', '%s'): set "
				"parent.member", archive, found, name);
			goto cleanup;
		}
		if (archive_entry_size_is_set(e) &&
		    (uint64_t)archive_entry_size(e) > BASE_IMAGE_MAX) {
			err_set("archive entry '%s' is larger than %llu bytes", name,
				(unsigned long long)BASE_IMAGE_MAX);
			goto cleanup;
		}
		found = xstrdup(name);
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			err_errno("create '%s'", out);
			goto cleanup;
		}
		if (copy_entry(a, fd, out, h, archive_entry_size_is_set(e)
			       ? (uint64_t)archive_entry_size(e) : 0) < 0)
			goto cleanup;
		if (close(fd) < 0) {
			fd = -1;
			err_errno("close '%s'", out);
			goto cleanup;
		}
		fd = -1;
		if (member)
			break;   /* named: no need to look for ambiguity */
	}
	if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN && rc != ARCHIVE_EOF) {
		err_set("read archive '%s': %s", archive, archive_error_string(a));
		goto cleanup;
	}
	if (!found) {
		if (member)
			err_set("archive '%s' has no file '%s'", archive, member);
		else
			err_set("archive '%s' has no disk image (disk.raw, *.qcow2, *.raw, *.img, "
				"*.vmdk)", archive);
		goto cleanup;
	}
	hasher_final(h, sha256_hex, NULL);
	*member_out = found;
	found = NULL;
	r = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (r < 0)
		unlink(out);
	free(found);
	hasher_free(h);
	archive_read_free(a);
	return r;
}
