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

/* One AMI as the rules see it. */
struct lc_decision {
	int64_t created;        /* UTC seconds; < 0 unknown (no age rule applies) */
	bool excluded;          /* carries an exclusion tag: not counted, not acted on */
	enum lc_action action;  /* out: the most severe action of any rule (LC_NONE: keep) */
	size_t rule;            /* out: the 1-based rule that gave it, 0 for none */
};

/* Apply p's rules to d[0..n), sorted newest first, at time now. */
void lifecycle_decide(const struct pipeline *p, struct lc_decision *d, size_t n, int64_t now);

/* Plan (apply false: change nothing) or apply the policy, printing the plan
 * (or JSON). 0, or -1 with an error recorded (apply: any action failed). */
int lifecycle_run(const struct pipeline *p, bool apply, bool json);

#endif
