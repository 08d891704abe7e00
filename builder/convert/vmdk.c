/* vmdk.c: the streamOptimized VMDK writer (see vmdk.h). */
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <sys/random.h>

#include "vmdk.h"
#include "builder/disk/blockread.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define SECTOR 512u
#define GRAIN_SECTORS (VMDK_GRAIN / SECTOR)
#define GTES_PER_GT 512u
#define GT_BYTES (GTES_PER_GT * 4u)
#define OVERHEAD_SECTORS GRAIN_SECTORS   /* header + descriptor, then grains */
#define GD_AT_END 0xffffffffffffffffull
#define FLAG_NL_DETECT (1u << 0)
#define FLAG_COMPRESSED (1u << 16)
#define FLAG_MARKERS (1u << 17)
#define MARKER_EOS 0u
#define MARKER_GT 1u
#define MARKER_GD 2u
#define MARKER_FOOTER 3u
#define OUTBUF (1u << 20)
#define PROBE_BYTES 4096u         /* each of a grain's two compressibility samples */

/* The sparse extent header (header and footer differ in gdOffset only). */
static void header(uint8_t h[SECTOR], uint64_t cap_sectors, uint64_t desc_sectors, uint64_t gd)
{
	memset(h, 0, SECTOR);
	memcpy(h, "KDMV", 4);
	put_le32(h + 4, 3);                                   /* version */
	put_le32(h + 8, FLAG_NL_DETECT | FLAG_COMPRESSED | FLAG_MARKERS);
	put_le64(h + 12, cap_sectors);                        /* capacity */
	put_le64(h + 20, GRAIN_SECTORS);                      /* grainSize */
	put_le64(h + 28, 1);                                  /* descriptorOffset */
	put_le64(h + 36, desc_sectors);                       /* descriptorSize */
	put_le32(h + 44, GTES_PER_GT);                        /* numGTEsPerGT */
	put_le64(h + 48, 0);                                  /* rgdOffset */
	put_le64(h + 56, gd);                                 /* gdOffset */
	put_le64(h + 64, OVERHEAD_SECTORS);                   /* overHead */
	h[72] = 0;                                        /* uncleanShutdown */
	h[73] = '\n';                                     /* the newline check */
	h[74] = ' ';
	h[75] = '\r';
	h[76] = '\n';
	put_le16(h + 77, 1);                                  /* compressAlgorithm: deflate */
}

static void marker(uint8_t m[SECTOR], uint64_t sectors, uint32_t type)
{
	memset(m, 0, SECTOR);
	put_le64(m, sectors);
	put_le32(m + 8, 0);
	put_le32(m + 12, type);
}

/* The text descriptor, as VMware and qemu write it for one stream-optimized
 * extent. Geometry: the usual 16 heads, 63 sectors, cylinders capped. */
static char *descriptor(uint64_t cap_sectors, const char *name, uint32_t cid)
{
	uint64_t cyl = cap_sectors / (16 * 63);

	if (cyl > 16383)
		cyl = 16383;
	return xasprintf("# Disk DescriptorFile\n"
			 "version=1\n"
			 "CID=%08" PRIx32 "\n"
			 "parentCID=ffffffff\n"
			 "createType=\"streamOptimized\"\n"
			 "\n"
			 "# Extent description\n"
			 "RW %" PRIu64 " SPARSE \"%s\"\n"
			 "\n"
			 "# The Disk Data Base\n"
			 "#DDB\n"
			 "\n"
			 "ddb.virtualHWVersion = \"4\"\n"
			 "ddb.geometry.cylinders = \"%" PRIu64 "\"\n"
			 "ddb.geometry.heads = \"16\"\n"
			 "ddb.geometry.sectors = \"63\"\n"
			 "ddb.adapterType = \"ide\"\n"
			 "ddb.toolsVersion = \"2147483647\"\n",
			 cid, cap_sectors, name, cyl);
}

/* ---- output: sequential, buffered, every write a whole number of sectors ---- */

struct out {
	const struct vmdk_sink *sink;
	uint8_t *buf;
	size_t len;
	uint64_t pos;      /* bytes written so far (sink + buffer) */
};

static int out_flush(struct out *o)
{
	if (o->len && o->sink->write(o->sink->ctx, o->buf, o->len) < 0)
		return -1;
	o->len = 0;
	return 0;
}

static int out_add(struct out *o, const void *p, size_t n)
{
	const uint8_t *s = p;

	while (n) {
		size_t k = OUTBUF - o->len < n ? OUTBUF - o->len : n;

		memcpy(o->buf + o->len, s, k);
		o->len += k;
		o->pos += k;
		s += k;
		n -= k;
		if (o->len == OUTBUF && out_flush(o) < 0)
			return -1;
	}
	return 0;
}

/* Zeros up to the next sector boundary. */
static int out_pad(struct out *o)
{
	static const uint8_t zero[SECTOR];
	size_t r = (size_t)(o->pos % SECTOR);

	return r ? out_add(o, zero, SECTOR - r) : 0;
}

/* ---- batches: read on this thread, deflated on the workers ---- */

struct batch {
	uint64_t grain[VMDK_BATCH_GRAINS];   /* grain numbers, ascending */
	uint8_t *raw;                        /* n × VMDK_GRAIN */
	uint8_t *z[VMDK_BATCH_GRAINS];       /* compressed, bound-sized each */
	size_t zlen[VMDK_BATCH_GRAINS];
	size_t zcap;
	unsigned n;
};

struct worker {
	pthread_t t;
	struct batch *b;
	struct libdeflate_compressor *c;
	struct libdeflate_compressor *probe;  /* level 1, on samples */
	struct libdeflate_compressor *store;  /* level 0: stored blocks */
	uint8_t sample[PROBE_BYTES + 512];
	unsigned first, step;
	int failed;
};

/* A grain whose two samples (its start and its middle) do not shrink at
 * level 1 is taken as incompressible (random or already compressed data)
 * and stored: a valid zlib stream of stored blocks, at memcpy speed,
 * instead of a deflate pass that would gain nothing. */
static bool incompressible(struct worker *w, const uint8_t *g)
{
	size_t k;

	for (k = 0; k < 2; k++) {
		size_t z = libdeflate_deflate_compress(w->probe, g + k * (VMDK_GRAIN / 2), PROBE_BYTES,
						       w->sample, sizeof(w->sample));

		if (z && z < PROBE_BYTES - PROBE_BYTES / 64)
			return false;
	}
	return true;
}

static void *deflate_grains(void *arg)
{
	struct worker *w = arg;
	unsigned i;

	for (i = w->first; i < w->b->n; i += w->step) {
		const uint8_t *g = w->b->raw + (size_t)i * VMDK_GRAIN;
		size_t z = libdeflate_zlib_compress(incompressible(w, g) ? w->store : w->c, g,
						    VMDK_GRAIN, w->b->z[i], w->b->zcap);
		if (!z) {
			w->failed = 1;
			break;
		}
		w->b->zlen[i] = z;
	}
	return NULL;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	const uint64_t *q = (const uint64_t *)(const void *)p;
	size_t i;

	for (i = 0; i < n / 8; i++)
		if (q[i])
			return false;
	return true;
}

/* Fill b with the next grains holding data, from *next on. 0 (b->n may be
 * 0 at the end) or -1. */
static int read_batch(struct blockread *br, uint64_t ngrains, uint64_t *next,
		      struct batch *b, uint64_t *data_read)
{
	b->n = 0;
	while (b->n < VMDK_BATCH_GRAINS && *next < ngrains) {
		uint64_t data, g;
		int r = blockread_next_data(br, *next * VMDK_GRAIN, &data);
		uint8_t *dst = b->raw + (size_t)b->n * VMDK_GRAIN;

		if (r < 0)
			return -1;
		if (r == 0) {
			*next = ngrains;
			break;
		}
		g = data / VMDK_GRAIN;
		if (g >= ngrains) {
			*next = ngrains;
			break;
		}
		if (blockread_read(br, g * VMDK_GRAIN, dst, VMDK_GRAIN) < 0)
			return -1;
		*data_read += VMDK_GRAIN;
		*next = g + 1;
		if (all_zero(dst, VMDK_GRAIN))
			continue;
		b->grain[b->n++] = g;
	}
	return 0;
}

struct gtstate {
	uint32_t *gd;         /* sector of each grain table, 0: none */
	uint64_t ngts;
	uint32_t gt[GTES_PER_GT];
	uint64_t cur;         /* grain table being filled */
	bool used;
};

static int sector32(uint64_t pos, uint32_t *out)
{
	if (pos / SECTOR > UINT32_MAX)
		return err_set("the VMDK would pass 2 TiB (32-bit sector offsets)");
	*out = (uint32_t)(pos / SECTOR);
	return 0;
}

static int gt_flush(struct out *o, struct gtstate *s)
{
	uint8_t m[SECTOR], t[GT_BYTES];
	uint32_t sec = 0;
	size_t i;

	if (!s->used)
		return 0;
	marker(m, GT_BYTES / SECTOR, MARKER_GT);
	if (out_add(o, m, SECTOR) < 0 || sector32(o->pos, &sec) < 0)
		return -1;
	for (i = 0; i < GTES_PER_GT; i++)
		put_le32(t + i * 4, s->gt[i]);
	if (out_add(o, t, sizeof(t)) < 0)
		return -1;
	s->gd[s->cur] = sec;
	memset(s->gt, 0, sizeof(s->gt));
	s->used = false;
	return 0;
}

static int write_batch(struct out *o, struct gtstate *s, const struct batch *b,
		       uint64_t *grains_written)
{
	unsigned i;

	for (i = 0; i < b->n; i++) {
		uint64_t g = b->grain[i];
		uint8_t m[12];
		uint32_t sec = 0;

		if (g / GTES_PER_GT != s->cur) {
			if (gt_flush(o, s) < 0)
				return -1;
			s->cur = g / GTES_PER_GT;
		}
		if (sector32(o->pos, &sec) < 0)
			return -1;
		put_le64(m, g * GRAIN_SECTORS);
		put_le32(m + 8, (uint32_t)b->zlen[i]);
		if (out_add(o, m, sizeof(m)) < 0 || out_add(o, b->z[i], b->zlen[i]) < 0 ||
		    out_pad(o) < 0)
			return -1;
		s->gt[g % GTES_PER_GT] = sec;
		s->used = true;
		(*grains_written)++;
	}
	return 0;
}

static void batch_init(struct batch *b, size_t zcap)
{
	unsigned i;

	memset(b, 0, sizeof(*b));
	b->raw = xmalloc_nofork((size_t)VMDK_BATCH_GRAINS * VMDK_GRAIN);
	b->zcap = zcap;
	for (i = 0; i < VMDK_BATCH_GRAINS; i++)
		b->z[i] = xmalloc(zcap);
}

static void batch_release(struct batch *b)
{
	unsigned i;

	xfree_nofork(b->raw, (size_t)VMDK_BATCH_GRAINS * VMDK_GRAIN);
	for (i = 0; i < VMDK_BATCH_GRAINS; i++)
		free(b->z[i]);
}

int vmdk_write_stream(const struct vmdk_opts *o, const struct vmdk_sink *sink,
		      struct vmdk_stats *st)
{
	struct blockread *br = NULL;
	struct out out = { .sink = sink };
	struct gtstate gs = { 0 };
	struct batch bt[2];
	struct worker *w = NULL;
	uint64_t cap, cap_sectors, ngrains, next = 0, desc_sectors, gd_sec;
	uint8_t h[SECTOR];
	char *desc = NULL;
	int nw, i, cur = 0, level = o->level ? o->level : 6, ret = -1;
	uint32_t cid;
	size_t zcap;

	memset(st, 0, sizeof(*st));
	memset(bt, 0, sizeof(bt));
	if (level < 1 || level > 12)
		return err_set("deflate level %d is not 1-12", level);
	br = blockread_open(o->input, o->input_format);
	if (!br)
		return -1;
	cap = blockread_size(br);
	if (cap > VMDK_MAX_CAPACITY) {
		err_set("'%s': %" PRIu64 " bytes is more than a VMDK holds (2 TiB)", o->input, cap);
		goto cleanup;
	}
	st->capacity = cap;
	cap_sectors = (cap + SECTOR - 1) / SECTOR;
	ngrains = (cap + VMDK_GRAIN - 1) / VMDK_GRAIN;
	gs.ngts = (ngrains + GTES_PER_GT - 1) / GTES_PER_GT;
	gs.gd = xcalloc(gs.ngts ? gs.ngts : 1, sizeof(*gs.gd));
	nw = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nw < 1)
		nw = 1;
	if (nw > 64)
		nw = 64;
	w = xcalloc((size_t)nw, sizeof(*w));
	for (i = 0; i < nw; i++) {
		w[i].c = libdeflate_alloc_compressor(level);
		w[i].probe = libdeflate_alloc_compressor(1);
		w[i].store = libdeflate_alloc_compressor(0);
		if (!w[i].c || !w[i].probe || !w[i].store) {
			err_set("libdeflate: cannot allocate a compressor");
			goto cleanup;
		}
	}
	zcap = libdeflate_zlib_compress_bound(NULL, VMDK_GRAIN);   /* any level */
	batch_init(&bt[0], zcap);
	batch_init(&bt[1], zcap);
	out.buf = xmalloc_nofork(OUTBUF);
	if (getrandom(&cid, sizeof(cid), 0) != sizeof(cid))
		cid = (uint32_t)now_ms();

	desc = descriptor(cap_sectors, o->name ? o->name : "disk.vmdk", cid);
	desc_sectors = (strlen(desc) + SECTOR - 1) / SECTOR;
	if (1 + desc_sectors > OVERHEAD_SECTORS) {
		err_set("VMDK descriptor too long");
		goto cleanup;
	}
	header(h, cap_sectors, desc_sectors, GD_AT_END);
	if (out_add(&out, h, SECTOR) < 0 || out_add(&out, desc, strlen(desc)) < 0)
		goto cleanup;
	while (out.pos < (uint64_t)OVERHEAD_SECTORS * SECTOR) {	/* the first grain's place */
		static const uint8_t zero[SECTOR];
		uint64_t k = (uint64_t)OVERHEAD_SECTORS * SECTOR - out.pos;

		if (out_add(&out, zero, k < SECTOR ? (size_t)k : SECTOR) < 0)
			goto cleanup;
	}

	/* Read batch k+1 while the workers deflate batch k, then write k. */
	if (read_batch(br, ngrains, &next, &bt[cur], &st->data_read) < 0)
		goto cleanup;
	while (bt[cur].n) {
		struct batch *b = &bt[cur], *nb = &bt[cur ^ 1];

		for (i = 0; i < nw; i++) {
			w[i].b = b;
			w[i].first = (unsigned)i;
			w[i].step = (unsigned)nw;
			w[i].failed = 0;
			if (pthread_create(&w[i].t, NULL, deflate_grains, &w[i]) != 0) {
				int k;

				err_set("cannot start a compression thread");
				for (k = 0; k < i; k++)
					pthread_join(w[k].t, NULL);
				goto cleanup;
			}
		}
		nb->n = 0;
		ret = read_batch(br, ngrains, &next, nb, &st->data_read);
		for (i = 0; i < nw; i++)
			pthread_join(w[i].t, NULL);
		if (ret < 0)
			goto cleanup;
		ret = -1;
		for (i = 0; i < nw; i++)
			if (w[i].failed) {
				err_set("deflate failed");
				goto cleanup;
			}
		if (write_batch(&out, &gs, b, &st->grains_written) < 0)
			goto cleanup;
		if (o->stop && *o->stop) {
			err_set("interrupted");
			goto cleanup;
		}
		if (o->progress)
			o->progress(next * VMDK_GRAIN < cap ? next * VMDK_GRAIN : cap, cap, o->opaque);
		cur ^= 1;
	}
	if (gt_flush(&out, &gs) < 0)
		goto cleanup;

	/* The grain directory, the footer and the end-of-stream marker. */
	{
		uint64_t gd_bytes = gs.ngts * 4, k;
		uint8_t m[SECTOR], e[4];

		marker(m, (gd_bytes + SECTOR - 1) / SECTOR, MARKER_GD);
		if (out_add(&out, m, SECTOR) < 0)
			goto cleanup;
		gd_sec = out.pos / SECTOR;
		for (k = 0; k < gs.ngts; k++) {
			put_le32(e, gs.gd[k]);
			if (out_add(&out, e, 4) < 0)
				goto cleanup;
		}
		if (out_pad(&out) < 0)
			goto cleanup;
		marker(m, 1, MARKER_FOOTER);
		header(h, cap_sectors, desc_sectors, gd_sec);
		if (out_add(&out, m, SECTOR) < 0 || out_add(&out, h, SECTOR) < 0)
			goto cleanup;
		marker(m, 0, MARKER_EOS);
		if (out_add(&out, m, SECTOR) < 0 || out_flush(&out) < 0)
			goto cleanup;
	}
	st->bytes_out = out.pos;
	ret = 0;
cleanup:
	if (w) {
		for (i = 0; i < nw; i++) {
			libdeflate_free_compressor(w[i].c);
			libdeflate_free_compressor(w[i].probe);
			libdeflate_free_compressor(w[i].store);
		}
		free(w);
	}
	batch_release(&bt[0]);
	batch_release(&bt[1]);
	xfree_nofork(out.buf, OUTBUF);
	free(gs.gd);
	free(desc);
	blockread_close(br);
	return ret;
}

static int fd_write(void *ctx, const void *p, size_t n)
{
	if (write_all(*(int *)ctx, p, n) < 0)
		return err_errno("write the VMDK");
	return 0;
}

int vmdk_write_file(const struct vmdk_opts *o, const char *path, struct vmdk_stats *st)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	struct vmdk_sink sink = { fd_write, &fd };
	int ret;

	if (fd < 0)
		return err_errno("create '%s'", path);
	ret = vmdk_write_stream(o, &sink, st);
	if (close(fd) < 0 && ret == 0)
		ret = err_errno("close '%s'", path);
	return ret;
}
