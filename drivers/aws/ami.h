/* ami.h: what every AWS target (VM Import, EBS direct) shares around its
 * upload: the client in the spec's region, the check that the AMI name is
 * free, RegisterImage from a snapshot, CreateTags on the AMI and the
 * snapshot, wait until the AMI is available. */
#ifndef AMIFORGE_AWS_AMI_H
#define AMIFORGE_AWS_AMI_H

#include "aws.h"
#include "drivers/target/target.h"
#include "util.h"

/* Build the RegisterImage parameters for snapshot_id from spec (volume size:
 * spec's or size_gib). Exposed for tests. */
void ami_register_params(const struct publish_spec *spec, const char *snapshot_id,
			 int size_gib, struct strv *params);

/* The client of an AWS target: spec's profile and region (one must
 * resolve); result->region set. NULL with an error recorded. */
struct aws_client *ami_client_new(const struct publish_spec *spec, struct target_result *result);

/* Fail when an AMI of ours in cl's region is named name already (names are
 * unique per region): checked before anything is uploaded. 0 or -1. */
int ami_check_name(struct aws_client *cl, const char *name);

/* Register, report ("image"), tag AMI and snapshot, wait for "available".
 * result->ami_id/ami_name are set as soon as they are known. 0 or -1. */
int ami_register(struct aws_client *cl, const struct publish_spec *spec,
		 const char *snapshot_id, struct target_result *result);

/* What follows registration (ami_register(), or ImportImage's own): set
 * result->ami_id/ami_name, report image_id ("image"), tag it and
 * snapshot_id, wait for "available". 0 or -1. */
int ami_finish(struct aws_client *cl, const struct publish_spec *spec, const char *image_id,
	       const char *snapshot_id, struct target_result *result);

/* Tag ids with spec's tags (nothing to do without tags). */
int ami_tag(struct aws_client *cl, const struct publish_spec *spec, const char *const *ids);

/* Poll DescribeImages until available (or failed). */
int ami_wait_available(struct aws_client *cl, const struct publish_spec *spec,
		       const char *image_id);

/* Poll interval for imports and waits: spec, $AMIFORGE_AWS_POLL_MS, 15 s. */
int64_t ami_poll_ms(const struct publish_spec *spec);

#endif
