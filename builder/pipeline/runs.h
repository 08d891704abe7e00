/* runs.h: running a pipeline once, and its history.
 *
 * `amiforge pipeline run FILE` evaluates the pipeline once:
 *   1. due? With a schedule, the latest time it fired (cron_prev) must be
 *      later than the last evaluation recorded in the state; --now makes it
 *      due. Without a schedule a run is always due. Not due: nothing is
 *      recorded, the next time is printed.
 *   2. changed? The inputs' fingerprints: the recipe file's sha256, every
 *      component and test document's sha256, and the base image's: a local
 *      file's sha256 (re-hashed only when its size or mtime changed), a URL's
 *      stated checksum, the digest its checksum_url lists for it, else its
 *      ETag (or Digest, else Last-Modified and length) from a HEAD. With
 *      condition onlyIfUpdated a run whose fingerprints equal the last
 *      successful run's builds nothing (recorded as "skipped"); --force builds.
 *   3. the build (build_run(), build directories under the pipeline's
 *      builds:), then delivery: the AMIs of manifest.json are tagged
 *      amiforge:pipeline / amiforge:recipe / amiforge:build, the distribution
 *      extras are applied (launch template versions, SSM parameters, license
 *      configurations), then the notifications are sent.
 *
 * The state directory (0700) holds state.json — every run (id, times,
 * status, reason, build directory, fingerprints, AMIs, failed step, error,
 * distribution and notification outcomes), the last evaluation — rewritten
 * atomically, and a lock file (one evaluation at a time). */
#ifndef AMIFORGE_PIPELINE_RUNS_H
#define AMIFORGE_PIPELINE_RUNS_H

#include "compat.h"
#include "pipeline.h"

/* Largest state.json read; runs beyond PIPELINE_RUNS_KEPT are dropped, oldest first. */
#define PIPELINE_STATE_MAX (16u * 1024 * 1024)
#define PIPELINE_RUNS_KEPT 500
/* Largest manifest.json read back from a build directory. */
#define PIPELINE_MANIFEST_MAX (16u * 1024 * 1024)

struct pipeline_run_opts {
	bool now;        /* due regardless of the schedule */
	bool force;      /* build even when nothing changed */
};

/* Evaluate once. 0 when nothing failed (built and delivered, skipped, not
 * due), -1 with an error recorded otherwise. */
int pipeline_run(const struct pipeline *p, const struct pipeline_run_opts *o);

/* Deliver a finished build again (tags, distribution extras,
 * notifications), recorded as a run. 0 or -1. */
int pipeline_deliver(const struct pipeline *p, const char *build_dir);

/* Print the history: a table, or the state as JSON. 0 or -1. */
int pipeline_status(const struct pipeline *p, bool json);

#endif
