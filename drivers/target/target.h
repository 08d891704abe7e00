/* target.h: where a finished disk goes. A target driver turns a disk and a
 * publish spec into artifacts (snapshot, AMI) and reports them, as libvirt's
 * driver tables do: one struct of operations per target, filled with
 * designated initializers in its own file (aws-import.c: VM Import through
 * ImportSnapshot or ImportImage; aws-ebs.c later: EBS direct APIs). The
 * drivers share registration and tagging (drivers/aws/ami.h).
 *
 * Every resource a driver creates is reported through spec->on_resource the
 * moment its id is known and before anything waits on it, so the build
 * journal can record it and `amiforge clean` can undo it after a crash. */
#ifndef AMIFORGE_TARGET_H
#define AMIFORGE_TARGET_H

#include "compat.h"
#include "drivers/aws/s3.h"

struct target_tag {
	const char *key;
	const char *value;
};

/* kind: "s3-upload", "s3-object", "import-snapshot-task", "import-image-task",
 * "snapshot", "image"; id: the AWS id (or s3:// URL); region: where it is;
 * ev: created, released or kept (drivers/aws/s3.h). */
typedef aws_resource_fn target_resource_fn;

/* What `amiforge clean` calls to release a journaled resource of kind
 * (fields: id, region), each in the driver it belongs to; one table,
 * NULL-terminated, looked up by kind (the journal registers them all).
 * Already gone: 0. A completed snapshot is never deleted. 0 or -1. */
struct target_release {
	const char *kind;
	int (*release)(const char *kind, const char *id, const char *region);
};
extern const struct target_release target_releases[];

/* The handlers of aws-import.c and aws-ebs.c. */
int aws_import_release_task(const char *kind, const char *id, const char *region);
int aws_ebs_release_snapshot(const char *kind, const char *id, const char *region);

struct publish_spec {
	const char *via;              /* "import-snapshot" (default), "import-image" */
	const char *region;           /* NULL: AWS_REGION / profile */
	const char *profile;          /* NULL: AWS_PROFILE / default */
	/* S3 staging (VM Import) */
	const char *bucket;
	const char *key_prefix;       /* NULL: "amiforge/" */
	bool keep_object;             /* keep the S3 object after the import */
	uint64_t part_size;           /* 0: automatic */
	int parallel;                 /* 0: 8 parts in flight */
	/* VM Import */
	const char *role_name;        /* NULL: "vmimport" */
	bool encrypted;
	const char *kms_key_id;
	const char *platform;         /* import-image: Linux | Windows */
	const char *license_type;     /* import-image: AWS | BYOL */
	/* EBS direct (via "ebs"; spec->parallel: blocks in flight, 0: 32) */
	const char *parent_snapshot;  /* "snap-...", "auto" (newest recorded), NULL: none */
	const char *block_dir;        /* block-hash manifests; NULL: the disk's directory */
	const char *lineage;          /* what "auto" parents must match (recipe name); NULL: any */
	bool no_register;             /* make the snapshot only */
	/* registration */
	const char *name;             /* AMI name, 3..128 chars, already expanded */
	const char *description;
	const char *arch;             /* x86_64 (default) | arm64 */
	const char *boot_mode;        /* legacy-bios | uefi | uefi-preferred | NULL */
	const char *root_device;      /* NULL: /dev/xvda */
	int volume_size_gib;          /* 0: the snapshot's size */
	const char *volume_type;      /* NULL: gp3 */
	bool ena;                     /* EnaSupport */
	bool sriov;                   /* SriovNetSupport=simple */
	bool imds_v2;                 /* ImdsSupport=v2.0 */
	bool tpm;                     /* TpmSupport=v2.0 (UEFI only) */
	const struct target_tag *tags;/* on the AMI and its snapshot */
	size_t ntags;
	/* behaviour */
	int64_t poll_ms;              /* 0: $AMIFORGE_AWS_POLL_MS or 15 s */
	int64_t import_timeout_ms;    /* 0: 4 h */
	bool progress;                /* progress bar on a terminal */
	target_resource_fn on_resource;
	void *opaque;
};

/* The disk to publish. format: "raw", "vmdk" (streamOptimized), "vhd";
 * "qcow2" too for EBS direct. */
struct target_disk {
	const char *path;
	const char *format;
};

struct target_result {
	char *via;
	char *region;
	char *ami_id;
	char *ami_name;
	char *snapshot_id;
	char *import_task_id;
	char *s3_url;                 /* staging object (deleted unless kept) */
	bool s3_deleted;
	char *parent_snapshot_id;     /* EBS direct: incremental from this snapshot */
	char *block_manifest;         /* EBS direct: block-hash manifest written */
	uint64_t blocks_sent;         /* EBS direct: PutSnapshotBlock calls that succeeded */
	uint64_t blocks_data;         /* EBS direct: blocks of the disk holding data */
	uint64_t blocks_unchanged;    /* EBS direct: data blocks equal to the parent's */
	uint64_t bytes_uploaded;
	int64_t upload_ms, import_ms, register_ms;
};

struct target_driver {
	const char *name;
	/* Check the spec before anything is uploaded. 0 or -1. NULL: nothing to check. */
	int (*check)(const struct publish_spec *spec);
	/* Publish: 0 with result filled, -1 with an error recorded (result may
	 * hold what was created so far). */
	int (*publish)(const struct target_disk *disk, const struct publish_spec *spec,
		       struct target_result *result);
};

/* The publish routes (a publish's via), one row each: the rest of amiforge
 * asks this table what a route needs, never compares its name. */
struct target_via {
	const char *name;
	const struct target_driver *driver;
	bool s3_staged;     /* the disk is staged in an S3 bucket (VM Import): a
			     * bucket is needed */
	bool block_level;   /* the driver reads the disk's blocks itself (EBS
			     * direct): any VMDK; incremental against a parent
			     * snapshot, block manifests kept */
	/* The disk formats it takes, the fastest to upload first: a build
	 * directory's disk is chosen in this order. NULL-terminated. (qcow2
	 * through VM Import is streamed as a VMDK; a VMDK given to it must be
	 * streamOptimized.) */
	const char *const *formats;
};
/* NULL-terminated (name); the first row is the default route. */
extern const struct target_via target_vias[];
/* The same names in the same order, NULL-terminated (an option's words). */
extern const char *const target_via_names[];

/* The row named via (NULL: the default), or NULL with "unknown --via 'x'"
 * recorded. */
const struct target_via *target_via_find(const char *via);
/* The driver for spec->via, or NULL with "unknown --via 'x'" recorded. */
const struct target_driver *target_find(const struct publish_spec *spec);
void target_result_release(struct target_result *r);

/* Check what every driver checks: name, boot mode vs arch and TPM, tags. */
int target_check_common(const struct publish_spec *spec);

#endif
