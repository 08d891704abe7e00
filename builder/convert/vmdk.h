/* vmdk.h: amiforge's own streamOptimized VMDK writer — the format VM Import
 * reads — from any disk the block reader takes (builder/disk/blockread.h).
 *
 * Layout (VMware's "Virtual Disk Format 5.0", stream-optimized sparse
 * extent; the same shape VMware's own exports have):
 *
 *	sector 0        sparse header: KDMV, version 3, flags NL_DETECT |
 *	                COMPRESSED | MARKERS, capacity, grain 128 sectors,
 *	                descriptor at sector 1, 512 GTEs per GT,
 *	                gdOffset = GD_AT_END (the footer holds the real one)
 *	sector 1..      the text descriptor (createType="streamOptimized")
 *	sector 128..    per grain holding data: a grain marker {lba, size}
 *	                and the zlib (RFC 1950) stream of the 64 KiB grain,
 *	                padded to a sector; after each grain table's 512
 *	                grains: a GT marker and the table (only tables with
 *	                a grain are written; the others are 0 in the GD)
 *	end             GD marker + grain directory, footer marker + footer
 *	                (the header again, with gdOffset), end-of-stream marker
 *
 * Only the ranges the reader reports as data are read; grains that read
 * as all zeros are left out (holes). Grains are deflated (libdeflate) on
 * every CPU while the next batch is read: reading, compressing and
 * writing overlap. A grain whose two 4 KiB samples do not shrink at level
 * 1 (random or already compressed data) is stored instead (deflate's
 * stored blocks: still a zlib stream, at memcpy speed). The last grain of a disk whose size is not a multiple
 * of 64 KiB is padded with zeros, as readers expect whole grains.
 *
 * The output goes to a sink, a file or anything else (an S3 multipart
 * upload), strictly sequentially: nothing is ever sought back to. */
#ifndef AMIFORGE_VMDK_H
#define AMIFORGE_VMDK_H

#include <signal.h>

#include "compat.h"

#define VMDK_GRAIN (64u * 1024)
/* Grains read, then compressed in parallel, per batch (×2 in memory). */
#define VMDK_BATCH_GRAINS 32
/* Largest disk written: VMDK's 32-bit grain table entries (sectors) bound
 * the file at 2 TiB; capacity is bounded the same way. */
#define VMDK_MAX_CAPACITY (2ull << 40)

struct vmdk_sink {
	/* Write all of p; 0 or -1 with an error recorded. */
	int (*write)(void *ctx, const void *p, size_t n);
	void *ctx;
};

struct vmdk_opts {
	const char *input;
	const char *input_format;         /* stated, never probed */
	const char *name;                 /* the extent's file name in the descriptor */
	int threads;                      /* 0: every online CPU */
	int level;                        /* deflate level 1-12; 0: 6 */
	const volatile sig_atomic_t *stop; /* nonzero: stop (interrupted) */
	/* Progress, called after each batch (may be NULL). */
	void (*progress)(uint64_t done, uint64_t total, void *opaque);
	void *opaque;
};

struct vmdk_stats {
	uint64_t capacity;       /* bytes */
	uint64_t grains_written;
	uint64_t bytes_out;      /* size of the VMDK */
	uint64_t data_read;      /* guest bytes read */
};

/* Write the VMDK for o->input to sink. 0, or -1 with an error recorded. */
int vmdk_write_stream(const struct vmdk_opts *o, const struct vmdk_sink *sink,
		      struct vmdk_stats *st);

/* The same to the file at path (created or truncated, 0600). */
int vmdk_write_file(const struct vmdk_opts *o, const char *path, struct vmdk_stats *st);

#endif
