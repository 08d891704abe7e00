/* build-jobs.h: `amiforge build A.yaml B.yaml ... --jobs N` (issue 21).
 *
 * Each recipe is built by its own `amiforge build RECIPE` process (this
 * executable, /proc/self/exe), exactly as if started by hand side by side:
 * builds never share a process, a guest, a journal or a build directory, and
 * the shared caches are taken under their own locks. At most `jobs` run at
 * once, and fewer when the host is smaller: a build is started only while
 * the guests running leave room for its own vm.cpus (up to 2 vCPUs per host
 * CPU: TCG guests are CPU-bound) and vm.memory plus BUILD_JOB_MEM_OVERHEAD_MIB
 * (of MemAvailable when the run starts); the others say they are waiting.
 * Each build's output goes to BUILD_JOBS_DIR/<n>-<recipe>.log; the parent
 * prints a line when one starts, waits or ends and one summary at the end
 * (status, wall time, build directory, output disk; --json: one JSON object).
 * SIGINT/SIGTERM/SIGHUP reach every running build (each releases what its
 * journal holds); no more are started. */
#ifndef AMIFORGE_BUILD_JOBS_H
#define AMIFORGE_BUILD_JOBS_H

#include "compat.h"

/* Memory a build costs beyond its guest's (QEMU, libguestfs, qemu-img). */
#define BUILD_JOB_MEM_OVERHEAD_MIB 512u
/* vCPUs allowed per host CPU across the running builds. */
#define BUILD_JOB_VCPU_PER_CPU 2u
/* Most recipes in one run. */
#define BUILD_JOBS_MAX 256

struct build_jobs_opts {
	const char *const *recipes;
	size_t n;
	unsigned jobs;                 /* --jobs: at most this many at once (>= 1) */
	const char *const *child_args; /* options every child gets (--output, --var ...) */
	const char *const *vars;       /* "k=v" for reading the recipes' vm sections */
	const char *output_root;       /* NULL: ./builds */
	bool json;
};

/* Run the builds; the exit status for the command: 0 when all succeeded. */
int build_jobs_run(const struct build_jobs_opts *o);

#endif
