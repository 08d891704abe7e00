/* s3.h: what amiforge needs from S3: a parallel multipart upload of a disk
 * file (bounded memory: parts are streamed from the file, never read whole)
 * or of a stream made while it uploads (a VMDK written straight into parts),
 * abort, delete, bucket creation for tests and first-time users. */
#ifndef AMIFORGE_AWS_S3_H
#define AMIFORGE_AWS_S3_H

#include "aws.h"
#include "util.h"

/* S3 limits: parts of 5 MiB..5 GiB (the last may be smaller), 10,000 parts. */
#define S3_PART_MIN (5ull * 1024 * 1024)
#define S3_PART_MAX (5ull * 1024 * 1024 * 1024)
#define S3_PARTS_MAX 10000
#define S3_PART_DEFAULT (16ull * 1024 * 1024)
#define S3_PARALLEL_DEFAULT 8
#define S3_PARALLEL_MAX 64
/* A stream's parts: the first S3_STREAM_DOUBLING of S3_STREAM_PART (or
 * --part-size), each S3_STREAM_DOUBLING after that twice the size of the
 * ones before (10,000 parts of 5 MiB upwards hold 4.8 TiB, more than a
 * VMDK's 2 TiB), so that memory follows the bytes actually sent, not the
 * disk's size; at most S3_STREAM_MEMORY bytes of part buffers (never
 * fewer than two buffers): parts in flight = buffers - 1 (5 by default:
 * small parts keep more requests in flight within the bound). */
#define S3_STREAM_PART (5ull * 1024 * 1024)
#define S3_STREAM_DOUBLING 1000
#define S3_STREAM_MEMORY (32ull * 1024 * 1024)

/* Reports a resource the moment it exists (the build journal records it so
 * that `amiforge clean` can undo it after a crash), and again when it is
 * gone or became a product to keep. kind: "s3-upload" (id
 * "s3://bucket/key?uploadId=ID"), "s3-object" (id "s3://bucket/key"),
 * "import-snapshot-task", "import-image-task", "snapshot" (created by EBS
 * direct's StartSnapshot: live until completed), "image". */
enum aws_res_event {
	AWS_RES_CREATED,    /* exists; to release if the run dies */
	AWS_RES_RELEASED,   /* gone (completed, aborted, cancelled, deleted) */
	AWS_RES_KEPT,       /* a product (completed snapshot, AMI, kept object) */
};
typedef void (*aws_resource_fn)(enum aws_res_event ev, const char *kind, const char *id,
				const char *region, void *opaque);

/* `amiforge clean` handlers (drivers/target/target.c's table): abort the
 * multipart upload "s3://bucket/key?uploadId=ID" / delete the staging
 * object "s3://bucket/key" in region. Already gone: 0. 0 or -1. */
int s3_release_upload(const char *kind, const char *id, const char *region);
int s3_release_object(const char *kind, const char *id, const char *region);

struct s3_upload_opts {
	const char *bucket;
	const char *key;
	uint64_t part_size;        /* 0: max(16 MiB, size / 10,000 rounded up to 1 MiB) */
	int parallel;              /* 0: S3_PARALLEL_DEFAULT */
	bool progress;             /* progress bar on stderr when it is a terminal */
	aws_resource_fn on_resource;
	void *opaque;
	const char *expected_owner; /* x-amz-expected-bucket-owner; NULL: none */
};

struct s3_upload_result {
	uint64_t size;
	uint64_t part_size;
	int parts;
	int64_t elapsed_ms;
	char *etag;
};

/* Upload path to s3://bucket/key with SHA-256 checksums per part. On any
 * failure or Ctrl-C the upload is aborted (AbortMultipartUpload). 0 or -1. */
int s3_upload_file(struct aws_client *cl, const char *path, const struct s3_upload_opts *o,
		   struct s3_upload_result *res);
void s3_upload_result_release(struct s3_upload_result *res);

/* Where a streamed upload's bytes go: write(wctx, p, n) appends n bytes;
 * 0, or -1 with an error recorded (a part failed, or Ctrl-C). */
typedef int (*s3_write_fn)(void *wctx, const void *p, size_t n);
/* Makes the stream: calls write as often as it likes, in order. 0 or -1. */
typedef int (*s3_produce_fn)(s3_write_fn write, void *wctx, void *opaque);

/* Upload what produce writes to s3://bucket/key as it is made, with no
 * file in between: the bytes are cut into parts (S3_STREAM_PART and its
 * doubling schedule; size_hint, an upper bound of the stream's size, must
 * fit in 10,000 of them), each hashed (SHA-256 checksum) and sent by a
 * worker as soon as it is full, with the same retries as a file's.
 * Memory: S3_STREAM_MEMORY of parts. A failed part, a failed producer or
 * Ctrl-C aborts the upload. what names the stream in messages. res->size:
 * the bytes of the object, res->part_size: the first part's. 0 or -1. */
int s3_upload_stream(struct aws_client *cl, uint64_t size_hint, s3_produce_fn produce,
		     void *opaque, const char *what, const struct s3_upload_opts *o,
		     struct s3_upload_result *res);

/* Choose a part size for size bytes (0 when the file is too large). */
uint64_t s3_part_size(uint64_t size, uint64_t wanted);
/* A stream's part number n (1-based) from a first part of base bytes:
 * doubled every S3_STREAM_DOUBLING parts, at most S3_PART_MAX; and the
 * bytes S3_PARTS_MAX parts of that schedule hold. */
uint64_t s3_stream_part_size(uint64_t base, int n);
uint64_t s3_stream_capacity(uint64_t base);

int s3_abort_upload(struct aws_client *cl, const char *bucket, const char *key,
		    const char *upload_id);
int s3_delete_object(struct aws_client *cl, const char *bucket, const char *key);
/* Create the bucket in the client's region; an existing one of ours is fine. */
int s3_create_bucket(struct aws_client *cl, const char *bucket);

/* Most keys s3_list_keys() collects: a wildcard matching more is refused. */
#define S3_LIST_MAX 100000

/* Largest object S3Download fetches (staged in the host's temp directory,
 * as WebDownload's 16 GiB). */
#define S3_GET_MAX (16ull * 1024 * 1024 * 1024)

/* GetObject s3://bucket/key into path: streamed to a temporary file beside
 * path (bounded memory), then renamed over it; a body longer than max bytes
 * (or than its Content-Length) fails and leaves nothing. expected_owner (an
 * account id) is sent as x-amz-expected-bucket-owner when not NULL. 0 or -1. */
int s3_get_object(struct aws_client *cl, const char *bucket, const char *key,
		  const char *expected_owner, uint64_t max, const char *path);
/* ListObjectsV2: append to keys every key of bucket starting with prefix,
 * following continuation tokens; more than S3_LIST_MAX keys is an error. */
int s3_list_keys(struct aws_client *cl, const char *bucket, const char *prefix,
		 const char *expected_owner, struct strv *keys);
/* PutObject of a file smaller than S3_PART_MIN (empty files included) in one
 * streamed request with its SHA-256 checksum. 0 or -1. */
int s3_put_object(struct aws_client *cl, const char *path, const char *bucket,
		  const char *key, const char *expected_owner);

#endif
