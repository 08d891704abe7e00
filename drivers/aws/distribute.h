/* distribute.h: after registration (any upload path), make the AMI
 * available where and to whom the recipe says, as Image Builder's
 * distribution settings do: per region an AMI (the source itself in its own
 * region, a CopyImage elsewhere, Encrypted/KmsKeyId per region), tags on
 * the AMI and its snapshots, launch permissions (accounts, the public group
 * "all" only when explicitly allowed, organization and OU ARNs) and
 * createVolumePermission on the snapshots for the same accounts.
 *
 * Idempotent and resumable: an AMI that already exists by name in a region
 * is used (never copied twice); CopyImage carries a ClientToken derived from
 * the source and the target; every step is recorded in a state file (the
 * journal, JSON, rewritten atomically) so an interrupted run resumes where
 * it stopped; permissions and tags are read first and only what is missing
 * is added, so a re-run changes nothing. */
#ifndef AMIFORGE_AWS_DISTRIBUTE_H
#define AMIFORGE_AWS_DISTRIBUTE_H

#include "aws.h"
#include "drivers/target/target.h"

#define DIST_REGIONS_MAX 32
#define DIST_PRINCIPALS_MAX 100

struct dist_region {
	const char *region;
	const char *name;                 /* NULL: the source AMI's name */
	const char *description;          /* NULL: the source's (copies) */
	bool encrypted;
	const char *kms_key_id;
	const struct target_tag *tags;
	size_t ntags;
	const char *const *accounts;      /* 12-digit ids, NULL-terminated or NULL */
	const char *const *groups;        /* only "all" */
	const char *const *org_arns;
	const char *const *ou_arns;
};

struct dist_spec {
	const struct dist_region *regions;
	size_t nregions;
	bool allow_public;                /* required for groups: [all] */
	const char *profile;
	const char *state_file;           /* the journal; NULL: none */
	int64_t poll_ms;                  /* 0: ami_poll_ms() default */
	target_resource_fn on_resource;
	void *opaque;
};

struct dist_out {
	char *region;
	char *ami_id;
	char *name;
	char **snapshot_ids;              /* NULL-terminated */
	char *how;                        /* "source", "copied", "existing" */
};

struct dist_result {
	struct dist_out *o;
	size_t n;
};

/* Check a spec before anything is created (ids, ARNs, public without
 * allow_public, duplicate regions). 0 or -1. */
int dist_check(const struct dist_spec *d);

/* Distribute source_ami (in source_region). 0 or -1; res lists what exists
 * so far either way (caller releases). */
int distribute(const struct dist_spec *d, const char *source_region, const char *source_ami,
	       struct dist_result *res);
void dist_result_release(struct dist_result *res);

#endif
