/* convert-diskinfo.h: what a disk image is, asked once of qemu-img.
 *
 * A disk's format is never probed behind the user's back (CVE-2010-3851: a
 * raw disk can carry a qcow2 header pointing at a host file). With an
 * explicit format, `qemu-img info -f FORMAT` reads the image as that format
 * and nothing else. Without one, the format is probed once with
 * `qemu-img info` (which does not open backing files) and an image with a
 * backing file is refused: the user must name the format to follow it. */
#ifndef AMIFORGE_CONVERT_DISKINFO_H
#define AMIFORGE_CONVERT_DISKINFO_H

#include "compat.h"

/* Formats amiforge reads and writes, as qemu-img names them. */
bool disk_format_known(const char *qemu_format);

struct disk_info {
	char *format;          /* qemu-img's name: raw, qcow2, vmdk, vpc, vhdx */
	uint64_t virtual_size; /* bytes the guest sees */
	uint64_t actual_size;  /* bytes the file takes on the host (0: unknown) */
	char *backing;         /* backing file, or NULL */
	bool probed;           /* format came from probing */
};

/* Fill di for path. format NULL: probe (see above). 0, or -1 with the error
 * recorded. Release with disk_info_release(). */
int disk_info_get(const char *path, const char *format, struct disk_info *di);
void disk_info_release(struct disk_info *di);

/* The parsing half of disk_info_get(): json is qemu-img info's output for
 * path (used in messages), format as given to qemu-img (NULL: probed). */
int disk_info_parse(const char *json, size_t len, const char *path, const char *format,
		    struct disk_info *di);

#endif
