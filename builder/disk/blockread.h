/* blockread.h: read a disk image's guest view (raw bytes at guest offsets)
 * without converting it first, visiting only what holds data.
 *
 *	struct blockread *br = blockread_open("disk.qcow2", "qcow2");
 *	uint64_t off = 0, data;
 *	while (blockread_next_data(br, off, &data) == 1) {
 *		blockread_read(br, data & ~(bs - 1), buf, bs);   // holes read as zeros
 *		off = (data & ~(bs - 1)) + bs;
 *	}
 *	blockread_close(br);
 *
 * Allocation comes from `qemu-img map --output=json -f FMT` in windows of
 * BLOCKREAD_MAP_WINDOW bytes (longer over sparse stretches), each answer
 * under the capture limit, so memory is bounded whatever the disk size.
 * Data extents for which qemu reports a host offset in a plain file (raw
 * files, uncompressed unencrypted qcow2 clusters, at any depth of a backing
 * chain) are read with pread(2) straight from that file. Everything else
 * (compressed clusters, encrypted images, external data files, VMDK grains)
 * is decoded by qemu itself: `qemu-img convert` of just that guest range
 * (a raw driver with offset/size over the image) into a private temporary
 * file of at most BLOCKREAD_DECODE_CHUNK bytes, then pread from there.
 *
 * Why not something else (measured on the 4 GiB Debian fixture, 747 MiB of
 * data of which 652 MiB zlib-compressed, 2 shared cores):
 *   - qemu-img convert of the whole disk to a sparse temporary raw: 5.3 s,
 *     but needs the data size in temporary disk space;
 *   - qemu-img dd: cannot skip into a qcow2 (7.2: "cannot skip to specified
 *     offset");
 *   - qemu-storage-daemon FUSE export: works, but needs /dev/fuse and a
 *     mount (not available in many containers/CI), 24 s to read it whole;
 *   - NBD (qemu-nbd): would need an NBD client (no libnbd here; hand-rolling
 *     the protocol is out);
 *   - qemu-io 'read -v': hex dumps, far too slow.
 * Chunked decoding costs about the same CPU as the whole convert (32 MiB
 * chunks: ~6.7 s per GiB of guest range including process start-up) with
 * bounded temporary space, and uncompressed images cost nothing extra.
 *
 * Every format is passed explicitly to qemu (CVE-2010-3851). A reader is
 * used by one thread at a time; reads must move forward (offsets below the
 * current map window re-read the map, which is correct but slower). */
#ifndef AMIFORGE_BLOCKREAD_H
#define AMIFORGE_BLOCKREAD_H

#include "compat.h"

/* Guest range of one `qemu-img map` call: at 4 KiB granularity a window
 * has at most 65,536 extents, ~6.5 MiB of JSON (under RUN_CAPTURE_MAX). */
#define BLOCKREAD_MAP_WINDOW (256ull << 20)
/* Sparse stretches are mapped in longer windows, up to this (blockread.c
 * load_window); an answer over the capture limit falls back to the above. */
#define BLOCKREAD_MAP_WINDOW_MAX (64ull << 30)
/* Largest guest range decoded by one qemu-img convert (temporary space). */
#define BLOCKREAD_DECODE_CHUNK (32ull << 20)

struct blockread_stats {
	uint64_t direct_bytes;    /* data bytes read straight from image files */
	uint64_t uncached_bytes;  /* of which around the page cache (O_DIRECT) */
	uint64_t decoded_bytes;   /* data bytes read through qemu-img convert */
	uint64_t data_bytes;      /* bytes of extents that may hold data */
	int decode_runs;
	int64_t decode_ms;
	int map_runs;
};

struct blockread;

/* Open path as format ("raw", "qcow2", "vmdk", "vhd"/"vpc", "vhdx"). NULL
 * with an error recorded. */
struct blockread *blockread_open(const char *path, const char *format);
void blockread_close(struct blockread *br);

/* Data read once and sent away (an upload): reads from the image files go
 * around the page cache (O_DIRECT) wherever the file system takes it and
 * the read is aligned as it asks (statx's DIO alignment, else 4 KiB), and
 * through the cache otherwise. The kernel then moves the bytes straight
 * into buf, without its copy out of the cache (at 1 GiB of data, ~15 % of
 * an EBS direct upload's CPU), and the cache keeps what others use. Not
 * for readers that make several passes or race qemu-img (convert): a
 * file hot in the cache reads faster through it. */
void blockread_uncached(struct blockread *br);

/* Virtual size in bytes. */
uint64_t blockread_size(const struct blockread *br);

/* First offset >= from that may hold non-zero data: 1 with *data set, 0 when
 * the rest of the disk reads as zeros, -1 on error. */
int blockread_next_data(struct blockread *br, uint64_t from, uint64_t *data);
/* The same, looking no further than end: 0 when [from, end) reads as zeros
 * (the map is not read past the window holding end - 1). */
int blockread_next_data_below(struct blockread *br, uint64_t from, uint64_t end,
			      uint64_t *data);

/* Read len bytes of the guest view at off into buf; what lies past the end
 * of the disk reads as zeros. 0 or -1. */
int blockread_read(struct blockread *br, uint64_t off, void *buf, size_t len);

const struct blockread_stats *blockread_stats(const struct blockread *br);

#endif
