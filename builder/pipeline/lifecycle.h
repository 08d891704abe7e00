/* lifecycle.h: a pipeline's lifecycle policy (Image Builder's lifecycle
 * policies, for AMIs): in each region of lifecycle.regions, the AMIs this
 * account owns tagged amiforge:pipeline=NAME (DescribeImages, deprecated and
 * disabled ones included), minus those carrying an exclusion tag, newest
 * first; each rule marks the AMIs beyond its keep_last, or older than its
 * older_than beyond its retain_at_least; an AMI gets the most severe action
 * any rule gives it:
 *
 *	deprecate   EnableImageDeprecation (DeprecateAt: the next whole minute)
 *	disable     DisableImage
 *	delete      DeregisterImage, then DeleteSnapshot of each EBS snapshot
 *
 * An action already in effect (deprecation time set, image disabled) is not
 * repeated, so apply is idempotent. Apply journals each action in
 * STATE/lifecycle.journal (JSON lines: begin with the snapshots, then done or
 * failed) before it acts; a deletion interrupted after the deregistration is
 * finished (its snapshots deleted) by the next apply. */
#ifndef AMIFORGE_PIPELINE_LIFECYCLE_H
#define AMIFORGE_PIPELINE_LIFECYCLE_H

#include "compat.h"
#include "pipeline.h"

/* AMIs considered per region, at most (the DescribeImages answer is refused
 * beyond it). */
#define LC_IMAGES_MAX 1000
#define LC_SNAPSHOTS_MAX 64
#define LC_JOURNAL_MAX (16u * 1024 * 1024)

/* Plan (apply false: change nothing) or apply the policy, printing the plan
 * (or JSON). 0, or -1 with an error recorded (apply: any action failed). */
int lifecycle_run(const struct pipeline *p, bool apply, bool json);

#endif
