/* files.h: the regular files under chosen directories of an image, with
 * their SHA-256, read offline and read-only (one libguestfs appliance), and
 * the difference between two such listings — `amiforge diff --paths`. */
#ifndef AMIFORGE_INSPECT_FILES_H
#define AMIFORGE_INSPECT_FILES_H

#include <jansson.h>

#include "compat.h"
#include "builder/disk/appliance.h"

/* Most directories asked for, files listed in all, and bytes of the
 * appliance's checksum listing read back. */
#define FILES_PATHS_MAX 16
#define FILES_MAX 1000000
#define FILES_LIST_MAX (256u << 20)

/* A directory to list: absolute, no "." or ".." component, no control
 * character. */
bool files_path_ok(const char *p);

/* { "/etc/hostname": "sha256 hex", ... } for every regular file under the
 * paths (a path absent from the image lists nothing), of the OS mounted in
 * appliance g (disk names it in messages). 0 or -1. */
int files_of_mounted(guestfs_h *g, const char *disk, const char *const *paths,
		     size_t npaths, json_t **files);

/* { added: [path...], removed: [...], changed: [...] }, each sorted. */
json_t *files_diff(const json_t *a, const json_t *b);

/* Parse one sha256sum-style listing of a directory's files (exported for
 * tests): "HEX  ./rel/path" lines, GNU's "\\HEX  ..." escaped names.
 * Adds "dir/rel/path" → hex to files. 0, or -1 with the line recorded. */
int files_parse_sums(const char *text, size_t len, const char *dir, json_t *files);

#endif
