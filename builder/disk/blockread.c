/* blockread.c: the guest view of a disk image, data extents only (see
 * blockread.h for the design and the measurements behind it). */
#include <jansson.h>

#include "blockread.h"
#include "diskinfo.h"
#include "qemu-img.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* Deepest backing chain followed (qemu's own limit is 1000s, real chains a
 * handful). */
#define CHAIN_MAX 64
/* qemu-img info --backing-chain of a sane chain is a few KiB per layer. */
#define INFO_JSON_MAX (4u * 1024 * 1024)
/* qemu-img map of one window; an answer over this shrinks the window back. */
#define MAP_JSON_MAX (16u * 1024 * 1024)
/* Time allowed to one qemu-img map / convert call. */
#define MAP_TIMEOUT_MS (5 * 60 * 1000)
/* A window with at most this many extents is sparse: the next is longer. */
#define MAP_SPARSE_EXTENTS 256
/* ... with more than this many, dense: back to BLOCKREAD_MAP_WINDOW. */
#define MAP_DENSE_EXTENTS 16384
#define DECODE_TIMEOUT_MS (10 * 60 * 1000)

enum ext_kind { EXT_ZERO, EXT_DIRECT, EXT_DECODE };

struct extent {
	uint64_t start, len;
	enum ext_kind kind;
	int depth;
	uint64_t offset;          /* EXT_DIRECT: offset in layer[depth]'s file */
};

struct layer {
	char *path;
	int fd;                   /* -1: not readable directly */
	int dfd;                  /* O_DIRECT: -1 not opened yet, -2 not to be */
	unsigned dio_mem, dio_off;   /* its alignments (powers of two) */
};

struct blockread {
	char *path;
	char *format;             /* qemu's name */
	uint64_t size;
	struct layer layers[CHAIN_MAX];
	int nlayers;
	/* the current map window [wstart, wend) */
	struct extent *ext;
	size_t next, next_cap;
	uint64_t wstart, wend;
	uint64_t win;             /* length of the next window */
	size_t cursor;            /* extent index of the last lookup */
	/* the decoded chunk [cstart, cend) in tmpdir/chunk.raw */
	char *tmpdir, *chunk;
	int chunk_fd;
	uint64_t cstart, cend;
	bool uncached;            /* blockread_uncached() */
	struct blockread_stats st;
};

/* A layer is read directly when qemu's offsets address its own file: raw or
 * qcow2 without encryption, in a plain file. */
static int open_layer(struct blockread *br, json_t *img)
{
	struct layer *l = &br->layers[br->nlayers];
	const char *fn = json_string_value(json_object_get(img, "filename"));
	const char *fmt = json_string_value(json_object_get(img, "format"));
	json_t *fs = json_object_get(json_object_get(img, "format-specific"), "data");
	struct stat st;

	if (!fn || !fmt)
		return err_set("disk '%s': qemu-img info: layer %d lacks filename or format",
			       br->path, br->nlayers);
	l->path = xstrdup(fn);
	l->fd = -1;
	l->dfd = -1;
	br->nlayers++;
	/* The disk was admitted (admit.h) or is amiforge's own: a layer whose
	 * data lives in another file is refused here too, not read. */
	if (json_object_get(fs, "data-file"))
		return err_set("disk '%s' refused: a qcow2 layer with an external data file",
			       br->path);
	if (strcmp(fmt, "vmdk") == 0) {
		json_t *ext = json_object_get(fs, "extents");
		const char *efn = json_string_value(json_object_get(json_array_get(ext, 0),
								    "filename"));

		if (json_array_size(ext) != 1 || !efn || strcmp(efn, fn) != 0)
			return err_set("disk '%s' refused: a VMDK whose data is in other files",
				       br->path);
	}
	if ((strcmp(fmt, "raw") != 0 && strcmp(fmt, "qcow2") != 0) ||
	    json_is_true(json_object_get(img, "encrypted")))
		return 0;
	l->fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (l->fd < 0 || fstat(l->fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		/* Not a plain file (json:, nbd:...): qemu decodes it. */
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
	}
	return 0;
}

struct blockread *blockread_open(const char *path, const char *format)
{
	struct blockread *br = xcalloc(1, sizeof(*br));
	const char *fmt = disk_format_name(format, false);
	struct qemu_img_read rd = { .max = INFO_JSON_MAX, .timeout_ms = MAP_TIMEOUT_MS };
	json_t *info = NULL, *vs;
	size_t i;

	br->path = xstrdup(path);
	br->chunk_fd = -1;
	if (!fmt) {
		err_set("disk '%s': format '%s' is not supported (raw, qcow2, vmdk, vhd, vhdx)",
			path, format);
		goto fail;
	}
	br->format = xstrdup(fmt);
	info = qemu_img_info(path, fmt, QEMU_IMG_CHAIN, &rd);
	if (!info) {
		err_prefix("disk '%s'", path);
		goto fail;
	}
	if (!json_is_array(info) || json_array_size(info) == 0) {
		err_set("disk '%s': qemu-img info: expected a list of layers", path);
		goto fail;
	}
	if (json_array_size(info) > CHAIN_MAX) {
		err_set("disk '%s': backing chain deeper than %d", path, CHAIN_MAX);
		goto fail;
	}
	vs = json_object_get(json_array_get(info, 0), "virtual-size");
	if (!json_is_integer(vs) || json_integer_value(vs) <= 0) {
		err_set("disk '%s': qemu-img info gives no virtual size", path);
		goto fail;
	}
	br->size = (uint64_t)json_integer_value(vs);
	for (i = 0; i < json_array_size(info); i++)
		if (open_layer(br, json_array_get(info, i)) < 0)
			goto fail;
	json_decref(info);
	return br;
fail:
	json_decref(info);
	blockread_close(br);
	return NULL;
}

void blockread_close(struct blockread *br)
{
	int i;

	if (!br)
		return;
	for (i = 0; i < br->nlayers; i++) {
		if (br->layers[i].fd >= 0)
			close(br->layers[i].fd);
		if (br->layers[i].dfd >= 0)
			close(br->layers[i].dfd);
		free(br->layers[i].path);
	}
	if (br->chunk_fd >= 0)
		close(br->chunk_fd);
	if (br->tmpdir)
		remove_tree(br->tmpdir);
	free(br->tmpdir);
	free(br->chunk);
	free(br->ext);
	free(br->path);
	free(br->format);
	free(br);
}

uint64_t blockread_size(const struct blockread *br)
{
	return br->size;
}

const struct blockread_stats *blockread_stats(const struct blockread *br)
{
	return &br->st;
}

static int get_u64(json_t *o, const char *k, uint64_t *v)
{
	json_t *j = json_object_get(o, k);

	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -1;
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

/* Load the map of the window starting at start (a multiple of
 * BLOCKREAD_MAP_WINDOW), br->win bytes long. A sparse window makes the next
 * one longer (x4, up to BLOCKREAD_MAP_WINDOW_MAX), so a large sparse disk
 * costs a few qemu-img runs, not one per 256 MiB; a dense one, or an answer
 * over the capture limit, brings it back to BLOCKREAD_MAP_WINDOW. */
static int load_window(struct blockread *br, uint64_t start)
{
	char s[32], l[32];
	uint64_t len;
	const char *argv[] = { "qemu-img", "map", "--output=json", "-f", br->format,
			       "--start-offset", s, "--max-length", l, "--", br->path, NULL };
	json_t *map, *e;
	uint64_t pos = start;
	size_t i;
	int r = -1;

	for (;;) {
		struct qemu_img_read rd = { .max = MAP_JSON_MAX,
					    .timeout_ms = MAP_TIMEOUT_MS };

		if (br->win < BLOCKREAD_MAP_WINDOW)
			br->win = BLOCKREAD_MAP_WINDOW;
		len = br->size - start < br->win ? br->size - start : br->win;
		snprintf(s, sizeof(s), "%" PRIu64, start);
		snprintf(l, sizeof(l), "%" PRIu64, len);
		br->st.map_runs++;
		map = qemu_img_json(argv, "qemu-img map", &rd);
		if (map)
			break;
		if (!rd.too_big || br->win == BLOCKREAD_MAP_WINDOW) {
			err_prefix("disk '%s'", br->path);
			return -1;
		}
		br->win = BLOCKREAD_MAP_WINDOW;
		err_clear();
	}
	br->next = 0;
	br->cursor = 0;
	if (!json_is_array(map))
		goto bad;
	json_array_foreach(map, i, e) {
		struct extent x = { 0 };
		json_t *depth = json_object_get(e, "depth");

		if (get_u64(e, "start", &x.start) < 0 || get_u64(e, "length", &x.len) < 0 ||
		    x.start != pos || x.len == 0 || x.len > start + len - pos ||
		    !json_is_integer(depth) || json_integer_value(depth) < 0 ||
		    json_integer_value(depth) >= br->nlayers)
			goto bad;
		x.depth = (int)json_integer_value(depth);
		if (json_is_true(json_object_get(e, "zero")))
			x.kind = EXT_ZERO;
		else if (get_u64(e, "offset", &x.offset) == 0 && br->layers[x.depth].fd >= 0)
			x.kind = EXT_DIRECT;
		else
			x.kind = EXT_DECODE;
		if (x.kind != EXT_ZERO)
			br->st.data_bytes += x.len;
		/* Extents are merged by qemu; a window has at most one per 4 KiB. */
		if (br->next == br->next_cap) {
			br->next_cap = br->next_cap ? br->next_cap * 2 : 64;
			br->ext = xrealloc(br->ext, br->next_cap * sizeof(*br->ext));
		}
		br->ext[br->next++] = x;
		pos += x.len;
	}
	if (pos != start + len)
		goto bad;
	if (br->next <= MAP_SPARSE_EXTENTS)
		br->win = br->win * 4 > BLOCKREAD_MAP_WINDOW_MAX ? BLOCKREAD_MAP_WINDOW_MAX
								: br->win * 4;
	else if (br->next > MAP_DENSE_EXTENTS)
		br->win = BLOCKREAD_MAP_WINDOW;
	br->wstart = start;
	br->wend = start + len;
	r = 0;
	goto cleanup;
bad:
	err_set("disk '%s': qemu-img map: unexpected output for [%" PRIu64 ", +%" PRIu64 ")",
		br->path, start, len);
	br->wstart = br->wend = 0;
cleanup:
	json_decref(map);
	return r;
}

/* The extent holding off (< size). NULL on error. */
static const struct extent *extent_at(struct blockread *br, uint64_t off)
{
	if (off < br->wstart || off >= br->wend || br->wend == 0) {
		/* Windows are aligned so that re-reads land in the same one. */
		if (load_window(br, off - off % BLOCKREAD_MAP_WINDOW) < 0)
			return NULL;
	}
	if (br->cursor >= br->next || br->ext[br->cursor].start > off)
		br->cursor = 0;
	while (br->cursor < br->next &&
	       br->ext[br->cursor].start + br->ext[br->cursor].len <= off)
		br->cursor++;
	if (br->cursor >= br->next) {
		err_set("disk '%s': no map entry for offset %" PRIu64, br->path, off);
		return NULL;
	}
	return &br->ext[br->cursor];
}

int blockread_next_data_below(struct blockread *br, uint64_t from, uint64_t end,
			      uint64_t *data)
{
	if (end > br->size)
		end = br->size;
	while (from < end) {
		const struct extent *x = extent_at(br, from);
		size_t i;

		if (!x)
			return -1;
		for (i = br->cursor; i < br->next && br->ext[i].start < end; i++) {
			if (br->ext[i].kind != EXT_ZERO) {
				*data = br->ext[i].start > from ? br->ext[i].start : from;
				return 1;
			}
		}
		from = br->wend;
	}
	return 0;
}

int blockread_next_data(struct blockread *br, uint64_t from, uint64_t *data)
{
	return blockread_next_data_below(br, from, br->size, data);
}

static char *image_opts(const struct blockread *br, uint64_t off, uint64_t len)
{
	struct buf b = BUF_INIT(64 * 1024);
	const char *p;

	buf_printf(&b, "driver=raw,offset=%" PRIu64 ",size=%" PRIu64 ",file.driver=%s,"
		   "file.file.driver=file,file.file.filename=", off, len, br->format);
	/* QemuOpts escapes a comma by doubling it. */
	for (p = br->path; *p; p++) {
		buf_addc(&b, *p);
		if (*p == ',')
			buf_addc(&b, ',');
	}
	return buf_detach(&b, NULL);
}

/* Decode [start, start + CHUNK) (clipped to the disk) into the chunk file. */
static int decode_chunk(struct blockread *br, uint64_t start)
{
	uint64_t len = br->size - start < BLOCKREAD_DECODE_CHUNK ? br->size - start
								 : BLOCKREAD_DECODE_CHUNK;
	char *opts = image_opts(br, start, len);
	const char *argv[] = { "qemu-img", "convert", "-q", "--image-opts", opts, "-O", "raw",
			       NULL, NULL };
	struct qemu_img_how how = { .timeout_ms = DECODE_TIMEOUT_MS };
	int64_t t0 = now_ms();
	int ret = -1;

	if (!br->tmpdir) {
		if (!(br->tmpdir = make_temp_dir("amiforge-blockread.", "/var/tmp")))
			goto cleanup;
		br->chunk = xasprintf("%s/chunk.raw", br->tmpdir);
	}
	if (br->chunk_fd >= 0)
		close(br->chunk_fd);
	br->chunk_fd = -1;
	br->cend = br->cstart = 0;
	unlink(br->chunk);
	argv[7] = br->chunk;
	if (qemu_img_run(argv, &how) < 0) {
		err_prefix("disk '%s': decode [%" PRIu64 ", +%" PRIu64 ")", br->path, start, len);
		goto cleanup;
	}
	br->chunk_fd = open(br->chunk, O_RDONLY | O_CLOEXEC);
	if (br->chunk_fd < 0) {
		err_errno("open '%s'", br->chunk);
		goto cleanup;
	}
	/* The file is only needed open: space is freed when it is closed. */
	unlink(br->chunk);
	br->cstart = start;
	br->cend = start + len;
	br->st.decode_runs++;
	br->st.decode_ms += now_ms() - t0;
	ret = 0;
cleanup:
	free(opts);
	return ret;
}

static int pread_full(int fd, void *buf, size_t n, uint64_t off, const char *what)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return err_errno("read '%s' at %" PRIu64, what, off + got);
		if (k == 0)
			return err_set("read '%s' at %" PRIu64 ": file ends early", what, off + got);
		got += (size_t)k;
	}
	return 0;
}

void blockread_uncached(struct blockread *br)
{
	br->uncached = true;
}

/* The layer's O_DIRECT descriptor, opened on first use from the one it
 * reads through the cache (the same file, whatever its name is now); -1
 * where the file system refuses it. */
static int direct_fd(struct layer *l)
{
	char proc[64];
	struct statx sx;
	struct stat a, b;
	int fd;

	if (l->dfd != -1)
		return l->dfd >= 0 ? l->dfd : -1;
	l->dfd = -2;
	l->dio_mem = l->dio_off = 4096;
	if (statx(l->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN)) {
		if (!sx.stx_dio_offset_align)
			return -1;          /* no direct I/O on this file */
		l->dio_mem = sx.stx_dio_mem_align;
		l->dio_off = sx.stx_dio_offset_align;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", l->fd);
	fd = open(proc, O_RDONLY | O_CLOEXEC | O_DIRECT);
	if (fd < 0)
		return -1;
	/* /proc/self/fd reopens the very file: checked, not assumed. */
	if (fstat(fd, &a) < 0 || fstat(l->fd, &b) < 0 || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino) {
		close(fd);
		return -1;
	}
	l->dfd = fd;
	return fd;
}

/* Read n bytes of layer l at off into dst: around the cache when allowed
 * and aligned; a refusal (EINVAL) or a short read finishes through it. */
static int layer_read(struct blockread *br, struct layer *l, char *dst, size_t n, uint64_t off)
{
	int dfd = br->uncached ? direct_fd(l) : -1;

	if (dfd >= 0 && ((uintptr_t)dst & (l->dio_mem - 1)) == 0 &&
	    ((off | n) & (l->dio_off - 1)) == 0) {
		size_t got = 0;

		while (got < n) {
			ssize_t k = pread(dfd, dst + got, n - got, (off_t)(off + got));

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0 || ((size_t)k & (l->dio_off - 1)) != 0) {
				if (k < 0 && errno == EINVAL) {
					close(l->dfd);
					l->dfd = -2;
				}
				if (k > 0)
					got += (size_t)k;
				break;
			}
			got += (size_t)k;
		}
		br->st.uncached_bytes += got;
		dst += got;
		off += got;
		n -= got;
		if (!n)
			return 0;
	}
	return pread_full(l->fd, dst, n, off, l->path);
}

int blockread_read(struct blockread *br, uint64_t off, void *buf, size_t len)
{
	uint64_t end = off + len, pos = off;

	/* Only what is not read is zeroed: the holes and past the end. */
	if (end > br->size) {
		uint64_t from = off < br->size ? br->size : off;

		memset((char *)buf + (from - off), 0, (size_t)(end - from));
		end = from;
	}
	while (pos < end) {
		const struct extent *x = extent_at(br, pos);
		uint64_t n, in;
		char *dst = (char *)buf + (pos - off);

		if (!x)
			return -1;
		n = x->start + x->len - pos;
		if (n > end - pos)
			n = end - pos;
		in = pos - x->start;
		if (x->kind == EXT_ZERO) {
			memset(dst, 0, (size_t)n);
		} else if (x->kind == EXT_DIRECT) {
			if (layer_read(br, &br->layers[x->depth], dst, (size_t)n,
				       x->offset + in) < 0)
				return -1;
			br->st.direct_bytes += n;
		} else if (x->kind == EXT_DECODE) {
			if (pos < br->cstart || pos >= br->cend) {
				/* Chunks start on a 1 MiB boundary: a block never needs two. */
				if (decode_chunk(br, pos - pos % (1u << 20)) < 0)
					return -1;
			}
			if (n > br->cend - pos)
				n = br->cend - pos;
			if (pread_full(br->chunk_fd, dst, (size_t)n, pos - br->cstart,
				       "decoded chunk") < 0)
				return -1;
			br->st.decoded_bytes += n;
		}
		pos += n;
	}
	return 0;
}
