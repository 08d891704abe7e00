/* unpack.h: find the disk image inside an archive and copy it out
 * (libarchive: tar, tar.gz, tar.xz, tar.zst, zip). */
#ifndef AMIFORGE_UNPACK_H
#define AMIFORGE_UNPACK_H

#include "compat.h"

/* Largest disk image accepted from an archive or a download: 1 TiB, well
 * above any cloud base image (EC2 imports take up to 16 TiB volumes, but a
 * *base* image that large is a mistake or an attack on the host's disk). */
#define BASE_IMAGE_MAX (1ull << 40)
/* Most archive entries looked at before giving up on finding a disk. */
#define UNPACK_ENTRIES_MAX 100000

/* Copy the disk image inside archive to out (created, sparse where the
 * archive says so). member: the entry's path, or NULL to pick the one entry
 * named disk.raw or *.qcow2, *.raw, *.img, *.vmdk (several: an error asking
 * for member). Entries are never extracted by their own names, so a path
 * like ../../etc/passwd cannot escape; such names are refused anyway.
 * On success *sha256_hex (caller frees) is the digest of what was written and
 * *member_out (caller frees) the entry's name. 0, or -1 with out removed. */
int unpack_disk(const char *archive, const char *member, const char *out,
		char **sha256_hex, char **member_out);

#endif
