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
#include <pthread.h>
#include <signal.h>

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

/* One transfer: a reader fills chunks from one side (the bulk disk or the
 * file), a writer drains them to the other. The reader runs in a thread of
 * its own, BULK_BUFS chunks ahead, and hashes what it read; the caller's
 * thread writes. So the two devices' transfers and the hash overlap (under
 * TCG the guest's virtio requests and XXH64 each cost a vCPU: done one
 * after the other, a put took read + hash + write; now the longest of
 * them). Each side keeps its own descriptor, offset and O_DIRECT state. */
#define BULK_BUFS 3

struct bulk_xfer {
	/* Fills buf (PROTO_BULK_CHUNK) with the next bytes of the file, at
	 * done: their count (less than a chunk: the last), or -1 with the
	 * error recorded in the calling thread. */
	ssize_t (*fill)(struct bulk_xfer *x, uint8_t *buf, uint64_t done);
	/* Writes n bytes of buf (room for a chunk) at done: 0 or -1. */
	int (*drain)(struct bulk_xfer *x, uint8_t *buf, size_t n, uint64_t done);
	const char *path;
	int dev, fd;
	uint64_t offset, size;	/* on the bulk disk; put: the size, get: the most */
	uint64_t file_size;	/* get: the file's size when it was opened */
	bool direct;		/* the file's O_DIRECT */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint8_t *buf[BULK_BUFS];
	ssize_t len[BULK_BUFS];
	unsigned filled, drained;	/* chunks, counted from the start */
	bool stop;			/* the writer failed: the reader ends */
	char err[ERR_MAX];		/* the reader's error */
	int err_no;
	struct xxh64 h;
	uint64_t done;			/* bytes written */
};

/* The reader: chunk i into buf[i % BULK_BUFS] once the writer is done with
 * it; ends after a short chunk, an error or stop. */
static void *bulk_reader(void *arg)
{
	struct bulk_xfer *x = arg;
	uint64_t at = 0;

	for (unsigned i = 0;; i++) {
		uint8_t *buf = x->buf[i % BULK_BUFS];
		ssize_t n;
		bool stop;

		pthread_mutex_lock(&x->lock);
		while (!x->stop && i - x->drained >= BULK_BUFS)
			pthread_cond_wait(&x->cond, &x->lock);
		stop = x->stop;
		pthread_mutex_unlock(&x->lock);
		if (stop)
			break;
		n = x->fill(x, buf, at);
		if (n < 0) {
			snprintf(x->err, sizeof(x->err), "%s", err_msg());
			x->err_no = errno;
		} else {
			xxh64_update(&x->h, buf, (size_t)n);
			at += (uint64_t)n;
		}
		pthread_mutex_lock(&x->lock);
		x->len[i % BULK_BUFS] = n;
		x->filled = i + 1;
		pthread_cond_broadcast(&x->cond);
		pthread_mutex_unlock(&x->lock);
		if (n < (ssize_t)PROTO_BULK_CHUNK)
			break;
	}
	return NULL;
}

/* Run x to its end: 0 (x->done bytes, their XXH64 in digest) or -1 with
 * the error recorded (the reader's or the writer's, errno with it). */
static int bulk_run(struct bulk_xfer *x, uint8_t digest[PROTO_BULK_DIGEST_LEN])
{
	pthread_t reader;
	sigset_t all, old;
	int ret = -1, e;

	for (unsigned i = 0; i < BULK_BUFS; i++)
		if (posix_memalign((void **)&x->buf[i], PROTO_BULK_ALIGN, PROTO_BULK_CHUNK) != 0) {
			err_set("bulk transfer: out of memory");
			errno = ENOMEM;
			goto cleanup;
		}
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->cond, NULL);
	xxh64_init(&x->h, 0);
	/* Signals (SIGCHLD of the exec requests) stay the main thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = pthread_create(&reader, NULL, bulk_reader, x);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		errno = e;
		err_errno("bulk transfer: start a thread");
		goto destroy;
	}
	for (unsigned i = 0;; i++) {
		ssize_t n;

		pthread_mutex_lock(&x->lock);
		while (x->filled <= i)
			pthread_cond_wait(&x->cond, &x->lock);
		n = x->len[i % BULK_BUFS];
		pthread_mutex_unlock(&x->lock);
		if (n < 0) {
			err_set("%s", x->err);
			errno = x->err_no;
			break;
		}
		if (n > 0 && x->drain(x, x->buf[i % BULK_BUFS], (size_t)n, x->done) < 0)
			break;
		x->done += (uint64_t)n;
		pthread_mutex_lock(&x->lock);
		x->drained = i + 1;
		pthread_cond_broadcast(&x->cond);
		pthread_mutex_unlock(&x->lock);
		if (n < (ssize_t)PROTO_BULK_CHUNK) {
			xxh64_bytes(xxh64_final(&x->h), digest);
			ret = 0;
			break;
		}
	}
	e = errno;
	pthread_mutex_lock(&x->lock);
	x->stop = true;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
	pthread_join(reader, NULL);
	errno = e;
destroy:
	pthread_cond_destroy(&x->cond);
	pthread_mutex_destroy(&x->lock);
cleanup:
	for (unsigned i = 0; i < BULK_BUFS; i++)
		free(x->buf[i]);
	return ret;
}

/* put-bulk's reader: the bulk disk, up to x->size bytes. */
static ssize_t put_fill(struct bulk_xfer *x, uint8_t *buf, uint64_t done)
{
	uint64_t left = x->size - done;
	size_t n = left < PROTO_BULK_CHUNK ? (size_t)left : PROTO_BULK_CHUNK;
	size_t rd = (n + PROTO_BULK_ALIGN - 1) / PROTO_BULK_ALIGN * PROTO_BULK_ALIGN;
	ssize_t got;

	if (n == 0)
		return 0;
	got = pread(x->dev, buf, rd, (off_t)(x->offset + done));
	if (got < (ssize_t)n) {
		if (got >= 0)
			return err_set("read the bulk disk at %" PRIu64 ": short read",
				       x->offset + done);
		return err_errno("read the bulk disk at %" PRIu64, x->offset + done);
	}
	return (ssize_t)n;
}

/* put-bulk's writer: the temp file. */
static int put_drain(struct bulk_xfer *x, uint8_t *buf, size_t n, uint64_t done)
{
	/* O_DIRECT writes whole blocks: the last piece goes buffered. */
	if (x->direct && n % PROTO_BULK_ALIGN)
		x->direct = !set_direct(x->fd, false);
	if (file_io(x->fd, true, buf, n, done, &x->direct) < 0)
		return err_errno("write '%s'", x->path);
	return 0;
}

int op_put_bulk(const struct proto_frame *f, struct proto_msg *ok)
{
	struct bulk_xfer x = { .fill = put_fill, .drain = put_drain, .dev = -1, .fd = -1 };
	const uint8_t *want;
	size_t want_len, dlen;
	uint8_t digest[PROTO_BULK_DIGEST_LEN];
	uint8_t blk[PROTO_BULK_ALIGN] __attribute__((aligned(PROTO_BULK_ALIGN)));
	uint64_t nonce, mtime = 0;
	uint32_t mode = 0644;
	char *tmp = NULL;
	int ret = -1, r;

	if (bulk_args(f, &x.path, &nonce, &x.offset, &x.size) < 0 ||
	    proto_get_u32(f, PROTO_A_MODE, &mode) < 0 ||
	    (r = proto_get_u64(f, PROTO_A_MTIME, &mtime)) < 0)
		return -1;
	if (proto_get_bytes(f, PROTO_A_DIGEST, &want, &want_len) != 1) {
		err_set("put-bulk '%s': no digest", x.path);
		errno = EINVAL;
		return -1;
	}
	x.dev = bulk_open(nonce, O_RDONLY, blk);
	if (x.dev < 0) {
		if (errno != ENODEV)
			err_errno("open the bulk disk");
		goto cleanup;
	}
	x.fd = put_tmp_create(x.path, &tmp);
	if (x.fd < 0)
		goto cleanup;
	x.direct = set_direct(x.fd, true);
	if (bulk_run(&x, digest) < 0)
		goto cleanup;
	dlen = sizeof(digest);
	if (want_len != dlen || memcmp(want, digest, dlen) != 0) {
		err_set("put-bulk '%s': XXH64 mismatch", x.path);
		errno = EIO;
		goto cleanup;
	}
	if (fchmod(x.fd, mode & 07777) < 0) {
		err_errno("chmod '%s'", x.path);
		goto cleanup;
	}
	if ((r == 1 && put_set_mtime(x.fd, x.path, mtime) < 0) ||
	    put_commit(&x.fd, &tmp, x.path, x.size, digest, dlen, ok) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	if (x.fd >= 0)
		close(x.fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	if (x.dev >= 0)
		close(x.dev);
	return ret;
}

/* get-bulk's reader: the file, to its end (at most x->size bytes). */
static ssize_t get_fill(struct bulk_xfer *x, uint8_t *buf, uint64_t done)
{
	ssize_t n;

	/* O_DIRECT reads whole blocks at aligned offsets: the file's tail
	 * goes through the cache. */
	if (x->direct && x->file_size < done + PROTO_BULK_CHUNK)
		x->direct = !set_direct(x->fd, false);
	n = file_io(x->fd, false, buf, PROTO_BULK_CHUNK, done, &x->direct);
	if (n < 0)
		return err_errno("read '%s'", x->path);
	/* A file that grew since fstat is cut where the host's room ends. */
	if ((uint64_t)n > x->size - done) {
		err_set("get '%s': grew past %" PRIu64 " bytes", x->path, x->size);
		errno = EFBIG;
		return -1;
	}
	return n;
}

/* get-bulk's writer: the bulk disk, whole blocks (the tail padded). */
static int get_drain(struct bulk_xfer *x, uint8_t *buf, size_t n, uint64_t done)
{
	size_t wr = (n + PROTO_BULK_ALIGN - 1) / PROTO_BULK_ALIGN * PROTO_BULK_ALIGN;

	memset(buf + n, 0, wr - n);
	if (pwrite(x->dev, buf, wr, (off_t)(x->offset + done)) != (ssize_t)wr)
		return err_errno("write the bulk disk at %" PRIu64, x->offset + done);
	return 0;
}

int op_get_bulk(const struct proto_frame *f, struct proto_msg *ok)
{
	struct bulk_xfer x = { .fill = get_fill, .drain = get_drain, .dev = -1 };
	struct stat st;
	uint8_t digest[PROTO_BULK_DIGEST_LEN];
	uint8_t blk[PROTO_BULK_ALIGN] __attribute__((aligned(PROTO_BULK_ALIGN)));
	uint64_t nonce;
	int ret = -1;

	if (bulk_args(f, &x.path, &nonce, &x.offset, &x.size) < 0)
		return -1;
	x.fd = open(x.path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (x.fd < 0)
		return err_errno("open '%s'", x.path);
	if (fstat(x.fd, &st) < 0) {
		err_errno("stat '%s'", x.path);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set("get '%s': not a regular file", x.path);
		errno = EINVAL;
		goto cleanup;
	}
	x.direct = set_direct(x.fd, true);
	x.file_size = (uint64_t)st.st_size;
	if ((uint64_t)st.st_size > x.size) {
		err_set("get '%s': %" PRIu64 " bytes, more than the bulk disk's %" PRIu64, x.path,
			(uint64_t)st.st_size, x.size);
		errno = EFBIG;
		goto cleanup;
	}
	x.dev = bulk_open(nonce, O_RDWR, blk);
	if (x.dev < 0) {
		if (errno != ENODEV)
			err_errno("open the bulk disk");
		goto cleanup;
	}
	if (bulk_run(&x, digest) < 0)
		goto cleanup;
	if (fdatasync(x.dev) < 0) {
		err_errno("flush the bulk disk");
		goto cleanup;
	}
	proto_msg_u64(ok, PROTO_A_SIZE, x.done);
	proto_msg_u32(ok, PROTO_A_MODE, st.st_mode);
	proto_msg_bytes(ok, PROTO_A_DIGEST, digest, sizeof(digest));
	ret = 0;
cleanup:
	if (x.dev >= 0)
		close(x.dev);
	close(x.fd);
	return ret;
}
