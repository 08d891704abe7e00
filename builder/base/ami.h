/* ami.h: a base image from an AMI. DescribeImages names the AMI's root
 * volume snapshot; EBS direct (ListSnapshotBlocks, GetSnapshotBlock) reads
 * its blocks in parallel, each checked against the checksum EBS sends, into
 * a sparse raw file: a block the snapshot does not hold stays a hole. A
 * download that stops (error, Ctrl-C) resumes: a bitmap of the blocks
 * already on disk sits beside the file, written only after the data it
 * marks is synced. fetch.c turns the result into a cached qcow2. */
#ifndef AMIFORGE_BASE_AMI_H
#define AMIFORGE_BASE_AMI_H

#include "compat.h"
#include "drivers/aws/aws.h"

/* Parallel GetSnapshotBlock requests. */
#define AMI_FETCH_THREADS 8
/* Largest root volume read: EBS's limit (64 TiB). */
#define AMI_VOLUME_GIB_MAX 65536

/* What DescribeImages says of an AMI (every field checked). */
struct ami_info {
	char *image_id;
	char *name;          /* may be NULL */
	char *arch;          /* i386 | x86_64 | arm64 (…_mac refused) */
	char *boot_mode;     /* legacy-bios | uefi | uefi-preferred, or NULL */
	char *root_device;   /* e.g. /dev/xvda */
	char *snapshot_id;   /* the root volume's snapshot */
	int size_gib;        /* its volume size */
};
void ami_info_release(struct ami_info *a);

/* Syntax checks (recipes, the command line). */
bool ami_id_ok(const char *s);
bool snapshot_id_ok(const char *s);
/* An SSM parameter name (AWS's characters, at most 2048 bytes). */
bool ssm_name_ok(const char *s);

/* DescribeImages of one AMI; it must be available and have an EBS root
 * volume with a snapshot. 0, or -1 with an error recorded. */
int ami_describe(struct aws_client *cl, const char *ami, struct ami_info *out);

/* Read snapshot snap (size_gib GiB) into the raw file raw (created, or
 * resumed with the bitmap at done). On success the file holds the whole
 * volume; the bitmap is removed. *fetched: blocks read from EBS this time.
 * 0, or -1 with an error recorded (the file and the bitmap stay for a
 * resume). */
int ami_fetch_snapshot(struct aws_client *cl, const char *snap, int size_gib, const char *raw,
		       const char *done, uint64_t *fetched);

#endif
