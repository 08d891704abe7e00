/* bulk.c: file data through the bulk disk (common/proto.h PROTO_BULK_*).
 *
 * put-bulk: the host wrote the file's bytes on the bulk disk at A_OFFSET;
 *           the agent reads A_SIZE bytes from there (O_DIRECT: never a stale
 *           page of its own cache) into a temp file beside the path, checks
 *           their XXH64 against A_DIGEST, applies mode and mtime and renames
 *           it over the path → R_OK (A_SIZE, A_DIGEST); nothing is left on
 *           failure.
 * get-bulk: the agent writes the file's bytes on the bulk disk at A_OFFSET
 *           (O_DIRECT, then fdatasync: the host reads the disk's file once
 *           the reply is there), at most A_SIZE bytes → R_OK (A_SIZE,
 *           A_MODE, A_DIGEST).
 * Both move the data by DMA only: the file too is read or written with
 * O_DIRECT where its file system allows it (set_direct), so that the
 * guest's CPU, emulated under TCG, copies none of it (a buffered copy of
 * 256 MiB costs such a guest seconds); the digest is XXH64 for the same
 * reason.
 * The disk is the virtio disk whose first block starts with
 * PROTO_BULK_MAGIC and the nonce the request names (the host makes a new
 * one per guest); ENODEV when there is none: the host then uses the
 * channel. */
#include <dirent.h>

#include "agent.h"
#include "error.h"
#include "util.h"
#include "xxh64.h"

/* The device found for a nonce, kept for the next request. */
static char bulk_dev[64];
static uint64_t bulk_nonce;

/* Is /dev/NAME the bulk disk of nonce? */
static bool bulk_match(const char *name, uint64_t nonce, uint8_t *blk)
{
	char path[64], want[64];
	int fd;
	bool ok;

	snprintf(path, sizeof(path), "/dev/%s", name);
	fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return false;
	snprintf(want, sizeof(want), "%s%016" PRIx64 "\n", PROTO_BULK_MAGIC, nonce);
	ok = pread(fd, blk, PROTO_BULK_ALIGN, 0) == (ssize_t)PROTO_BULK_ALIGN &&
	     memcmp(blk, want, strlen(want)) == 0;
	close(fd);
	return ok;
}

/* Open the bulk disk of nonce (flags: O_RDONLY or O_WRONLY). */
static int bulk_open(uint64_t nonce, int flags, uint8_t *blk)
{
	DIR *d;
	struct dirent *de;
	char path[80];

	if (!bulk_dev[0] || bulk_nonce != nonce || !bulk_match(bulk_dev, nonce, blk)) {
		bulk_dev[0] = '\0';
		d = opendir("/sys/block");
		while (d && (de = readdir(d))) {
			if (strncmp(de->d_name, "vd", 2) != 0 || strlen(de->d_name) >= 32 ||
			    !bulk_match(de->d_name, nonce, blk))
				continue;
			snprintf(bulk_dev, sizeof(bulk_dev), "%s", de->d_name);
			bulk_nonce = nonce;
			break;
		}
		if (d)
			closedir(d);
	}
	if (!bulk_dev[0]) {
		err_set("no bulk data disk");
		errno = ENODEV;
		return -1;
	}
	snprintf(path, sizeof(path), "/dev/%s", bulk_dev);
	return open(path, flags | O_DIRECT | O_CLOEXEC | O_NOCTTY);
}

/* The attributes both requests have. */
static int bulk_args(const struct proto_frame *f, const char **path, uint64_t *nonce,
		     uint64_t *offset, uint64_t *size)
{
	if (need_path(f, PROTO_A_PATH, path) < 0)
		return -1;
	if (proto_get_u64(f, PROTO_A_NONCE, nonce) != 1 ||
	    proto_get_u64(f, PROTO_A_OFFSET, offset) != 1 ||
	    proto_get_u64(f, PROTO_A_SIZE, size) != 1) {
		err_set("bulk request without nonce, offset or size");
		errno = EINVAL;
		return -1;
	}
	if (*offset % PROTO_BULK_ALIGN || *offset < PROTO_BULK_HDR || *size > INT64_MAX / 2) {
		err_set("bulk request: offset %" PRIu64 " or size %" PRIu64 " unusable",
			*offset, *size);
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* O_DIRECT on fd, on or off; false where the file system refuses it. */
static bool set_direct(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && fcntl(fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) == 0;
}

/* One chunk of the file's data read or written at offset at (fd's own
 * offset), O_DIRECT while *direct: where the file system turns a direct
 * transfer down (EINVAL: before anything moved, or after a short read
 * left the offset unaligned) it is redone from at through the cache, and
 * the rest of the file goes that way too. */
static ssize_t io_all(int fd, bool write, uint8_t *buf, size_t n)
{
	if (write)
		return write_all(fd, buf, n) < 0 ? -1 : (ssize_t)n;
	return read_all(fd, buf, n);
}

static ssize_t file_io(int fd, bool write, uint8_t *buf, size_t n, uint64_t at, bool *direct)
{
	ssize_t r = io_all(fd, write, buf, n);

	if (r < 0 && errno == EINVAL && *direct) {
		*direct = false;
		if (set_direct(fd, false) && lseek(fd, (off_t)at, SEEK_SET) >= 0)
			r = io_all(fd, write, buf, n);
	}
	return r;
}

int op_put_bulk(const struct proto_frame *f, struct proto_msg *ok)
{
	const char *path;
	const uint8_t *want;
	size_t want_len, dlen;
	uint8_t digest[PROTO_BULK_DIGEST_LEN];
	uint64_t nonce, offset, size, done = 0, mtime = 0;
	uint32_t mode = 0644;
	struct xxh64 h;
	uint8_t *chunk = NULL;
	char *tmp = NULL;
	bool direct;
	int dev = -1, fd = -1, ret = -1, r;

	if (bulk_args(f, &path, &nonce, &offset, &size) < 0 ||
	    proto_get_u32(f, PROTO_A_MODE, &mode) < 0 ||
	    (r = proto_get_u64(f, PROTO_A_MTIME, &mtime)) < 0)
		return -1;
	if (proto_get_bytes(f, PROTO_A_DIGEST, &want, &want_len) != 1) {
		err_set("put-bulk '%s': no digest", path);
		errno = EINVAL;
		return -1;
	}
	if (posix_memalign((void **)&chunk, PROTO_BULK_ALIGN, PROTO_BULK_CHUNK) != 0)
		return err_set("put-bulk: out of memory");
	dev = bulk_open(nonce, O_RDONLY, chunk);
	if (dev < 0) {
		if (errno != ENODEV)
			err_errno("open the bulk disk");
		goto cleanup;
	}
	fd = put_tmp_create(path, &tmp);
	if (fd < 0)
		goto cleanup;
	direct = set_direct(fd, true);
	xxh64_init(&h, 0);
	while (done < size) {
		uint64_t left = size - done;
		size_t n = left < PROTO_BULK_CHUNK ? (size_t)left : PROTO_BULK_CHUNK;
		size_t rd = (n + PROTO_BULK_ALIGN - 1) / PROTO_BULK_ALIGN * PROTO_BULK_ALIGN;
		ssize_t got = pread(dev, chunk, rd, (off_t)(offset + done));

		if (got < (ssize_t)n) {
			err_errno("read the bulk disk at %" PRIu64, offset + done);
			if (got >= 0)
				err_set("read the bulk disk at %" PRIu64 ": short read",
					offset + done);
			goto cleanup;
		}
		/* O_DIRECT writes whole blocks: the last piece goes buffered. */
		if (direct && n % PROTO_BULK_ALIGN)
			direct = !set_direct(fd, false);
		if (file_io(fd, true, chunk, n, done, &direct) < 0) {
			err_errno("write '%s'", path);
			goto cleanup;
		}
		xxh64_update(&h, chunk, n);
		done += n;
	}
	xxh64_bytes(xxh64_final(&h), digest);
	dlen = sizeof(digest);
	if (want_len != dlen || memcmp(want, digest, dlen) != 0) {
		err_set("put-bulk '%s': XXH64 mismatch", path);
		errno = EIO;
		goto cleanup;
	}
	if (fchmod(fd, mode & 07777) < 0) {
		err_errno("chmod '%s'", path);
		goto cleanup;
	}
	if ((r == 1 && put_set_mtime(fd, path, mtime) < 0) ||
	    put_commit(&fd, &tmp, path, size, digest, dlen, ok) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	if (dev >= 0)
		close(dev);
	free(chunk);
	return ret;
}

int op_get_bulk(const struct proto_frame *f, struct proto_msg *ok)
{
	const char *path;
	struct stat st;
	uint8_t digest[PROTO_BULK_DIGEST_LEN];
	uint64_t nonce, offset, max, done = 0;
	struct xxh64 h;
	uint8_t *chunk = NULL;
	bool direct;
	int dev = -1, fd, ret = -1;

	if (bulk_args(f, &path, &nonce, &offset, &max) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return err_errno("open '%s'", path);
	if (fstat(fd, &st) < 0) {
		err_errno("stat '%s'", path);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set("get '%s': not a regular file", path);
		errno = EINVAL;
		goto cleanup;
	}
	direct = set_direct(fd, true);
	if ((uint64_t)st.st_size > max) {
		err_set("get '%s': %" PRIu64 " bytes, more than the bulk disk's %" PRIu64, path,
			(uint64_t)st.st_size, max);
		errno = EFBIG;
		goto cleanup;
	}
	if (posix_memalign((void **)&chunk, PROTO_BULK_ALIGN, PROTO_BULK_CHUNK) != 0) {
		err_set("get-bulk: out of memory");
		goto cleanup;
	}
	dev = bulk_open(nonce, O_RDWR, chunk);
	if (dev < 0) {
		if (errno != ENODEV)
			err_errno("open the bulk disk");
		goto cleanup;
	}
	xxh64_init(&h, 0);
	for (;;) {
		ssize_t n;
		size_t wr;

		/* O_DIRECT reads whole blocks at aligned offsets: the file's
		 * tail goes through the cache. */
		if (direct && (uint64_t)st.st_size < done + PROTO_BULK_CHUNK)
			direct = !set_direct(fd, false);
		n = file_io(fd, false, chunk, PROTO_BULK_CHUNK, done, &direct);
		if (n < 0) {
			err_errno("read '%s'", path);
			goto cleanup;
		}
		if (n == 0)
			break;
		/* A file that grew since fstat is cut where the host's room ends. */
		if ((uint64_t)n > max - done) {
			err_set("get '%s': grew past %" PRIu64 " bytes", path, max);
			errno = EFBIG;
			goto cleanup;
		}
		wr = ((size_t)n + PROTO_BULK_ALIGN - 1) / PROTO_BULK_ALIGN * PROTO_BULK_ALIGN;
		memset(chunk + n, 0, wr - (size_t)n);
		if (pwrite(dev, chunk, wr, (off_t)(offset + done)) != (ssize_t)wr) {
			err_errno("write the bulk disk at %" PRIu64, offset + done);
			goto cleanup;
		}
		xxh64_update(&h, chunk, (size_t)n);
		done += (uint64_t)n;
		if ((size_t)n < PROTO_BULK_CHUNK)
			break;
	}
	if (fdatasync(dev) < 0) {
		err_errno("flush the bulk disk");
		goto cleanup;
	}
	proto_msg_u64(ok, PROTO_A_SIZE, done);
	proto_msg_u32(ok, PROTO_A_MODE, st.st_mode);
	xxh64_bytes(xxh64_final(&h), digest);
	proto_msg_bytes(ok, PROTO_A_DIGEST, digest, sizeof(digest));
	ret = 0;
cleanup:
	if (dev >= 0)
		close(dev);
	free(chunk);
	close(fd);
	return ret;
}
