/* ebs.h: the EBS direct APIs (REST/JSON, service "ebs"): StartSnapshot,
 * PutSnapshotBlock, CompleteSnapshot, and ListSnapshotBlocks /
 * GetSnapshotBlock to read a snapshot back, ListChangedBlocks for what
 * changed between two of one lineage. Errors carry x-amzn-ErrorType
 * (throttling, RequestThrottledException, comes as HTTP 400); the client's
 * retry logic (http.c) decides by that type, not by the status. */
#ifndef AMIFORGE_AWS_EBS_H
#define AMIFORGE_AWS_EBS_H

#include "aws.h"

/* EBS direct's block size. moto answers BlockSize 512: always use this. */
#define EBS_BLOCK_SIZE (512u * 1024)
/* Answers of StartSnapshot/CompleteSnapshot are a few hundred bytes; a
 * ListSnapshotBlocks page (at most 10,000 blocks of ~100 bytes) ~1 MiB. */
#define EBS_JSON_MAX (8u * 1024 * 1024)

struct ebs_start {
	uint64_t volume_size_gib;
	const char *client_token;     /* idempotency: same token, same snapshot */
	int timeout_min;              /* 10..4320; 0: 60 */
	bool encrypted;
	const char *kms_key_arn;
	const char *parent_snapshot_id;
	const char *description;
	const char *const *tags;      /* "Key", "Value", ..., NULL; or NULL */
};

/* StartSnapshot: *snapshot_id set (caller frees). */
int ebs_start_snapshot(struct aws_client *cl, const struct ebs_start *in, char **snapshot_id);

/* PutSnapshotBlock of EBS_BLOCK_SIZE bytes at data; sha256_b64 is the
 * base64 SHA-256 of the data, sha256_hex its hex form (the signed payload
 * hash, so the block is hashed once). */
int ebs_put_block(struct aws_client *cl, const char *snapshot_id, uint64_t index,
		  const void *data, const char *sha256_b64, const char *sha256_hex);

/* CompleteSnapshot with the number of blocks written and the LINEAR
 * aggregate (base64 SHA-256 over their raw digests in index order). */
int ebs_complete_snapshot(struct aws_client *cl, const char *snapshot_id, uint64_t changed,
			  const char *aggregate_b64);

/* One page of ListSnapshotBlocks from block index start (pass the
 * previous page's *next_token, NULL at first). Calls fn for each block.
 * *next_token is NULL after the last page (caller frees). */
typedef int (*ebs_block_fn)(uint64_t index, const char *token, void *opaque);
int ebs_list_blocks(struct aws_client *cl, const char *snapshot_id, char **next_token,
		    ebs_block_fn fn, void *opaque);

/* Most pages ebs_list_all_blocks() asks for: a 64 TiB snapshot (EBS's
 * largest) has 134,217,728 blocks, 13,422 full pages of 10,000. */
#define EBS_LIST_PAGES_MAX 16384
/* Pages in a row that bring no block but a NextToken before giving up. */
#define EBS_LIST_EMPTY_PAGES_MAX 8

/* Every block of the snapshot, page after page, for a volume of max_blocks
 * blocks: an index at or past max_blocks, more than max_blocks blocks, more
 * than EBS_LIST_PAGES_MAX pages, EBS_LIST_EMPTY_PAGES_MAX empty pages in a
 * row or a NextToken equal to the previous one is an error: the loop always
 * ends. */
int ebs_list_all_blocks(struct aws_client *cl, const char *snapshot_id, uint64_t max_blocks,
			ebs_block_fn fn, void *opaque);

/* ListChangedBlocks, every page, with the same bounds: the blocks that differ
 * between first and second, two snapshots of one lineage (second made from
 * first through ParentSnapshotId, directly or not). fn gets each block's
 * index and its token in first and in second; a token is NULL where that
 * snapshot lacks the block (in second: it reads as zeros). EBS refuses
 * snapshots of different lineages (ValidationException,
 * UNRELATED_SNAPSHOTS): an error like any other. */
typedef int (*ebs_change_fn)(uint64_t index, const char *first_token,
			     const char *second_token, void *opaque);
int ebs_list_changed_blocks(struct aws_client *cl, const char *first, const char *second,
			    uint64_t max_blocks, ebs_change_fn fn, void *opaque);

/* GetSnapshotBlock into buf (EBS_BLOCK_SIZE bytes); the answer's checksum
 * is verified. */
int ebs_get_block(struct aws_client *cl, const char *snapshot_id, uint64_t index,
		  const char *token, void *buf);

/* base64 SHA-256 (45 bytes with NUL) and hex (65) of data. */
void ebs_sha256(const void *data, size_t n, unsigned char md[32], char b64[45], char hex[65]);
/* The same two texts of a digest already computed (either may be NULL). */
void ebs_digest_text(const unsigned char md[32], char b64[45], char hex[65]);

#endif
