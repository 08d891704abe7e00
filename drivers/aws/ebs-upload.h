/* ebs-upload.h: write a disk into a started EBS snapshot, block by block, in
 * parallel, sending only what the snapshot would not otherwise hold:
 *
 *  - blocks that read as zeros are skipped (a fresh snapshot reads zeros);
 *  - with a parent, a block whose SHA-256 equals the parent's (from the
 *    parent's block-hash manifest) is skipped, and a block the parent holds
 *    that is now zero is written as zeros (the child inherits the parent's
 *    blocks, so skipping it would leave the old data).
 *
 * Memory: parallel + 16 buffers of 512 KiB (2 x parallel without the
 * 16-lane SHA-256, sha256-mb.h), a 256 KiB send buffer per worker
 * (ebs.c), plus 40 bytes per data block (the digests for the LINEAR
 * checksum and the next manifest) — 80 KiB per GiB of data, whatever the
 * disk's size.
 *
 * A block-hash manifest ("ebs-blocks-<snapshot>.json", jansson) records the
 * digest of every block a snapshot holds, so the next upload can be
 * incremental without reading the parent back. */
#ifndef AMIFORGE_AWS_EBS_UPLOAD_H
#define AMIFORGE_AWS_EBS_UPLOAD_H

#include "aws.h"
#include "builder/disk/blockread.h"

#define EBS_PARALLEL_DEFAULT 32
#define EBS_PARALLEL_MAX 64
/* A block-hash manifest lists at most one entry per block of a 64 TiB
 * volume; ~60 bytes of JSON each. */
#define EBS_MANIFEST_MAX (8ull << 30)

struct ebs_block {
	uint64_t index;
	unsigned char md[32];
	bool known;              /* md is valid (false: the parent holds the block, content unknown) */
	bool sent;               /* written in this upload */
};

/* The blocks a snapshot holds, sorted by index. */
struct ebs_blockmap {
	char *snapshot_id;
	char *region;
	char *lineage;
	char *created;           /* UTC ISO 8601 */
	uint64_t volume_size_gib;
	struct ebs_block *b;
	size_t n, cap;
};

void ebs_blockmap_release(struct ebs_blockmap *m);
/* Load dir/ebs-blocks-<snap>.json. 0, 1 when there is none, -1 on error. */
int ebs_blockmap_load(struct ebs_blockmap *m, const char *dir, const char *snapshot_id);
/* Write m as dir/ebs-blocks-<snap>.json (atomically); *path set (caller frees). */
int ebs_blockmap_save(const struct ebs_blockmap *m, const char *dir, char **path);
/* The newest manifest under dirs (NULL-terminated) for region and lineage
 * (NULL: any): *snapshot_id and *dir set (caller frees), or NULL if none. */
int ebs_blockmap_find_newest(const char *const *dirs, const char *region, const char *lineage,
			     char **snapshot_id, char **dir);

struct ebs_upload_opts {
	const char *snapshot_id;
	int parallel;                    /* 0: EBS_PARALLEL_DEFAULT */
	const struct ebs_blockmap *parent;  /* NULL: a fresh snapshot */
	bool progress;
};

struct ebs_upload_result {
	uint64_t sent;                   /* blocks written */
	uint64_t data;                   /* blocks holding data */
	uint64_t unchanged;              /* data blocks equal to the parent's */
	uint64_t zeroed;                 /* parent blocks overwritten with zeros */
	char aggregate_b64[45];          /* LINEAR checksum of the written blocks */
	int64_t elapsed_ms;
	struct ebs_blockmap map;         /* what the snapshot holds now (blocks only) */
};

/* Upload br into o->snapshot_id (started, not completed). 0 or -1. */
int ebs_upload(struct aws_client *cl, struct blockread *br, const struct ebs_upload_opts *o,
	       struct ebs_upload_result *res);
void ebs_upload_result_release(struct ebs_upload_result *res);

#endif
