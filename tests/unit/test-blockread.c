/* Unit tests for builder/disk/blockread.c's reads around the page cache
 * (blockread_uncached): the same bytes as through the cache, for aligned
 * reads (which go around it where the file system allows O_DIRECT) and for
 * every kind it must take through the cache instead: a buffer, an offset or
 * a length off the alignment, the file's unaligned end, holes. A raw file
 * and the qcow2 qemu-img makes of it. */
#include <sys/mman.h>

#include "test.h"
#include "error.h"
#include "log.h"
#include "util.h"
#include "builder/disk/blockread.h"
#include "builder/disk/qemu-img.h"

#define MIB (1u << 20)
/* 4 MiB of data, a 1 MiB hole, then 1000 bytes: the raw file ends off
 * any alignment. */
#define SIZE (6u * MIB + 1000)

static unsigned char byte_at(uint64_t off)
{
	if (off >= 4u * MIB && off < 5u * MIB)
		return 0;
	return (unsigned char)((off * 2654435761u) >> 13) | 1;
}

static bool same(const unsigned char *p, uint64_t off, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != (off + i < SIZE ? byte_at(off + i) : 0))
			return false;
	return true;
}

static int make_raw(const char *path)
{
	unsigned char *b = xmalloc(SIZE);
	uint64_t i;
	int fd, r = -1;

	for (i = 0; i < SIZE; i++)
		b[i] = byte_at(i);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0 && write_all(fd, b, 4u * MIB) == 0 &&
	    pwrite(fd, b + 5u * MIB, SIZE - 5u * MIB, 5u * MIB) == (ssize_t)(SIZE - 5u * MIB))
		r = 0;
	if (fd >= 0)
		close(fd);
	free(b);
	return r;
}

/* Whether this file system reads files around its cache at all. */
static bool direct_io_works(const char *path)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	bool ok = fd >= 0 && p != MAP_FAILED && pread(fd, p, 4096, 0) == 4096;

	if (fd >= 0)
		close(fd);
	if (p != MAP_FAILED)
		munmap(p, 4096);
	return ok;
}

/* around: 1 the read must go around the cache, 0 through it, -1 either. */
static void read_check(struct blockread *br, const char *what, unsigned char *buf,
		       uint64_t off, size_t n, int around)
{
	uint64_t before = blockread_stats(br)->uncached_bytes;
	int r;

	memset(buf, 0xee, n);
	r = blockread_read(br, off, buf, n);
	CHECK(r == 0 && same(buf, off, n), "%s: %zu bytes at %" PRIu64 " read right (%s)", what,
	      n, off, r == 0 ? "" : err_msg());
	if (around == 1)
		CHECK(blockread_stats(br)->uncached_bytes > before,
		      "%s: the aligned read at %" PRIu64 " went around the cache", what, off);
	else if (around == 0)
		CHECK(blockread_stats(br)->uncached_bytes == before,
		      "%s: the read at %" PRIu64 " went through the cache", what, off);
}

static void test_file(const char *path, const char *format, bool direct)
{
	unsigned char *mem = mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct blockread *cached = blockread_open(path, format), *br = blockread_open(path, format);
	char *what = xasprintf("%s (%s)", format, direct ? "O_DIRECT works here" : "no O_DIRECT");

	CHECK(cached && br && mem != MAP_FAILED, "%s: opened", what);
	if (!cached || !br || mem == MAP_FAILED)
		goto cleanup;
	blockread_uncached(br);
	/* Aligned: around the cache where it can be. */
	read_check(br, what, mem, 0, 512 * 1024, direct);
	read_check(br, what, mem, 3u * MIB, MIB, direct);
	/* Off the alignment: through it, the same bytes. */
	read_check(br, what, mem + 1, 512 * 1024, 64 * 1024, false);
	read_check(br, what, mem, MIB + 512 + 1, 4096, false);
	read_check(br, what, mem, 2u * MIB, 4096 + 100, false);
	/* The hole, and the unaligned end and past it (zeros). */
	read_check(br, what, mem, 4u * MIB, MIB, false);
	read_check(br, what, mem, 5u * MIB, MIB, direct);
	/* The raw file's last 1000 bytes are off any alignment; qemu
	 * rounds the qcow2's size up to 512, which may be aligned enough. */
	read_check(br, what, mem, 6u * MIB, MIB, strcmp(format, "raw") == 0 ? 0 : -1);
	/* Reading through the cache never goes around it. */
	read_check(cached, "without blockread_uncached", mem, 0, 512 * 1024, false);
cleanup:
	blockread_close(cached);
	blockread_close(br);
	if (mem != MAP_FAILED)
		munmap(mem, 2 * MIB);
	free(what);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *dir = xasprintf("%s/amiforge-test-blockread.XXXXXX", tmp);
	char *raw = NULL, *qcow2 = NULL;
	bool direct;

	log_set_level(LOG_ERROR);
	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp %s", dir);
		return TEST_DONE();
	}
	raw = xasprintf("%s/disk.raw", dir);
	qcow2 = xasprintf("%s/disk.qcow2", dir);
	CHECK(make_raw(raw) == 0 && qemu_img_convert(raw, "raw", qcow2, "qcow2", NULL, NULL) == 0, "test disks made");
	direct = direct_io_works(raw);
	test_file(raw, "raw", direct);
	test_file(qcow2, "qcow2", direct);
	remove_tree(dir);
	free(raw);
	free(qcow2);
	free(dir);
	return TEST_DONE();
}
