/* builddir.h: the directory of one build (ARCHITECTURE.md):
 *
 *	<root>/<name>-<version>-<YYYYMMDD-HHMMSS>[-N]/
 *	  journal        resources created, in order (journal.h)
 *	  console.log    guest serial console
 *	  toe/           TOE-style logs per component run
 *	  checkpoints/   qcow2 snapshots by key
 *	  output/        finished disk(s)
 *	  manifest.json  inputs, digests, timings, outputs (manifest.h)
 */
#ifndef AMIFORGE_BUILDDIR_H
#define AMIFORGE_BUILDDIR_H

#include "compat.h"

/* Where builds go when --output is not given (relative to the cwd). */
#define BUILD_ROOT_DEFAULT "builds"

/* The "version" of the directory `publish` makes for a disk outside any
 * build (<disk>-publish-<time>): no recipe version (semver) reads so. */
#define BUILD_DIR_PUBLISH "publish"

struct build_dir {
	char *path;            /* absolute */
	char *journal;
	char *console_log;
	char *toe;
	char *checkpoints;
	char *output;
	char *manifest;
};

/* Create a fresh build directory under root (NULL: BUILD_ROOT_DEFAULT) for
 * name and version at time t (UTC; 0: now), with its subdirectories. A
 * second build in the same second gets a "-2" suffix, and so on: an
 * existing directory is never reused. The journal file is not created (open
 * it with journal_open(bd->journal)). Directories are created 0700.
 * 0, or -1 with an error recorded. */
int build_dir_create(const char *root, const char *name, const char *version, time_t t,
		     struct build_dir *bd);

/* Is path's last component a directory `publish` made
 * (<name>-publish-<YYYYMMDD-HHMMSS>[-N])? */
bool build_dir_is_publish(const char *path);

/* Fill bd for an existing build directory (for clean, --resume, attach).
 * 0, or -1 when path is not a directory, or is not owned by this user, or
 * is writable by group or others (someone else could have written it). */
int build_dir_open(const char *path, struct build_dir *bd);

void build_dir_release(struct build_dir *bd);

#endif
