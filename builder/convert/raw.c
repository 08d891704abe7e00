/* raw.c: amiforge's own sparse raw writer (convert.h raw_write_file).
 *
 * The output is created at the disk's size (all hole), then only blocks
 * holding non-zero bytes are written: a hole wherever the source holds no
 * data, or holds zeros, RAW_BLOCK at a time (qemu-img allocates the first
 * block whatever it holds). The disk is cut into slices of RAW_SLICE bytes
 * dealt round-robin to one worker per CPU, each with its own block reader
 * (builder/disk/blockread.h), so that compressed clusters are decoded on
 * every core; slices are visited in ascending order by each worker, as
 * the reader wants, and written with pwrite at their own offsets. */
#include <fcntl.h>
#include <pthread.h>

#include "convert.h"
#include "builder/disk/blockread.h"
#include "error.h"
#include "util.h"

#define RAW_BLOCK 4096u
#define RAW_SLICE BLOCKREAD_MAP_WINDOW   /* one map window per slice */
#define RAW_BUF (4u << 20)
#define RAW_WORKERS_MAX 16

struct raw_job {
	const char *in, *fmt, *out;
	int fd;
	uint64_t size, nslices;
	unsigned nw;
	const volatile sig_atomic_t *stop;
	uint64_t done;           /* bytes of slices finished (atomic) */
	int failed;              /* atomic: a worker failed, the others stop */
};

struct raw_worker {
	pthread_t t;
	struct raw_job *j;
	unsigned first;
	char err[ERR_MAX];
	int rc;
};

static bool block_zero(const uint8_t *p, size_t n)
{
	const uint64_t *q = (const uint64_t *)(const void *)p;
	size_t i;

	for (i = 0; i < n / 8; i++)
		if (q[i])
			return false;
	for (i = n / 8 * 8; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, off_t off)
{
	while (n) {
		ssize_t k = pwrite(fd, p, n, off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		off += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Write the non-zero blocks of buf (len bytes at off) as runs. 0 or -1. */
static int write_runs(int fd, const uint8_t *buf, size_t len, uint64_t off, const char *path)
{
	size_t i = 0;

	while (i < len) {
		size_t s, n;

		while (i < len && block_zero(buf + i, len - i < RAW_BLOCK ? len - i : RAW_BLOCK))
			i += RAW_BLOCK;
		if (i >= len)
			break;
		s = i;
		while (i < len && !block_zero(buf + i, len - i < RAW_BLOCK ? len - i : RAW_BLOCK))
			i += RAW_BLOCK;
		n = (i < len ? i : len) - s;
		if (pwrite_all(fd, buf + s, n, (off_t)(off + s)) < 0)
			return err_errno("write '%s'", path);
	}
	return 0;
}

static int copy_slice(struct raw_job *j, struct blockread *br, uint8_t *buf, uint64_t slice)
{
	uint64_t pos = slice * RAW_SLICE, end = pos + RAW_SLICE;

	if (end > j->size)
		end = j->size;
	while (pos < end) {
		uint64_t data, start;
		size_t len;
		int r;

		if (__atomic_load_n(&j->failed, __ATOMIC_RELAXED) || (j->stop && *j->stop))
			return err_set("interrupted");
		r = blockread_next_data_below(br, pos, end, &data);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		start = data - data % RAW_BLOCK;
		len = end - start < RAW_BUF ? (size_t)(end - start) : RAW_BUF;
		if (blockread_read(br, start, buf, len) < 0 ||
		    write_runs(j->fd, buf, len, start, j->out) < 0)
			return -1;
		pos = start + len;
	}
	__atomic_add_fetch(&j->done, (slice + 1) * RAW_SLICE > j->size ? j->size - slice * RAW_SLICE
								      : RAW_SLICE, __ATOMIC_RELAXED);
	return 0;
}

static void *raw_worker(void *arg)
{
	struct raw_worker *w = arg;
	struct raw_job *j = w->j;
	struct blockread *br = blockread_open(j->in, j->fmt);
	uint8_t *buf = NULL;
	uint64_t s;

	w->rc = -1;
	if (!br)
		goto cleanup;
	buf = xmalloc(RAW_BUF);
	for (s = w->first; s < j->nslices; s += j->nw)
		if (copy_slice(j, br, buf, s) < 0)
			goto cleanup;
	w->rc = 0;
cleanup:
	if (w->rc < 0) {
		snprintf(w->err, sizeof(w->err), "%s", err_msg());
		__atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
	}
	free(buf);
	blockread_close(br);
	return NULL;
}

int raw_write_file(const char *in, const char *in_fmt, const char *path, uint64_t size,
		   const volatile sig_atomic_t *stop,
		   void (*progress)(uint64_t done, uint64_t total, void *opaque), void *opaque)
{
	struct raw_job j = { .in = in, .fmt = in_fmt, .out = path, .size = size, .stop = stop };
	struct raw_worker *w = NULL;
	unsigned i, started = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int ret = -1;

	j.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (j.fd < 0)
		return err_errno("create '%s'", path);
	if (ftruncate(j.fd, (off_t)size) < 0) {
		err_errno("size '%s'", path);
		goto cleanup;
	}
	j.nslices = (size + RAW_SLICE - 1) / RAW_SLICE;
	j.nw = ncpu < 1 ? 1 : ncpu > RAW_WORKERS_MAX ? RAW_WORKERS_MAX : (unsigned)ncpu;
	if (j.nw > j.nslices)
		j.nw = j.nslices ? (unsigned)j.nslices : 1;
	w = xcalloc(j.nw, sizeof(*w));
	for (i = 0; i < j.nw; i++) {
		w[i].j = &j;
		w[i].first = i;
		if (pthread_create(&w[i].t, NULL, raw_worker, &w[i]) != 0) {
			err_set("cannot start a conversion thread");
			__atomic_store_n(&j.failed, 1, __ATOMIC_RELAXED);
			break;
		}
		started++;
	}
	if (progress) {
		struct timespec ts = { 0, 250 * 1000000L };
		uint64_t d;

		while ((d = __atomic_load_n(&j.done, __ATOMIC_RELAXED)) < size &&
		       !__atomic_load_n(&j.failed, __ATOMIC_RELAXED) && !(stop && *stop)) {
			progress(d, size, opaque);
			nanosleep(&ts, NULL);
		}
	}
	for (i = 0; i < started; i++)
		pthread_join(w[i].t, NULL);
	if (started < j.nw)
		goto cleanup;
	{	/* the worker that failed first; the others said "interrupted" */
		struct raw_worker *bad = NULL;

		for (i = 0; i < j.nw; i++)
			if (w[i].rc < 0 && (!bad || strcmp(bad->err, "interrupted") == 0))
				bad = &w[i];
		if (bad) {
			err_set("%s", bad->err);
			goto cleanup;
		}
	}
	if (progress)
		progress(size, size, opaque);
	ret = 0;
cleanup:
	if (close(j.fd) < 0 && ret == 0)
		ret = err_errno("close '%s'", path);
	free(w);
	return ret;
}
