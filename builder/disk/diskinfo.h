/* diskinfo.h: what a disk image of a known format is, asked of qemu-img.
 *
 * A disk's format is never probed by qemu (CVE-2010-3851: a raw disk can
 * carry a qcow2 header pointing at a host file): `qemu-img info -f FORMAT`
 * reads the image as that format and nothing else. A disk from outside is
 * admitted first (admit.h), which decides its format once; this is for
 * disks whose format is known (admitted, or amiforge's own). */
#ifndef AMIFORGE_CONVERT_DISKINFO_H
#define AMIFORGE_CONVERT_DISKINFO_H

#include "compat.h"

/* Formats amiforge reads and writes, as qemu-img names them. */
bool disk_format_known(const char *qemu_format);
/* f as qemu-img names it (vhd is vpc) when amiforge reads that format (with
 * admitted_only: one a disk from outside may come in as), else NULL. */
const char *disk_format_name(const char *f, bool admitted_only);

struct disk_info {
	char *path;            /* disk_admit(): the absolute path to use */
	char *format;          /* qemu-img's name: raw, qcow2, vmdk, vpc, vhdx */
	uint64_t virtual_size; /* bytes the guest sees */
	uint64_t actual_size;  /* bytes the file takes on the host (0: unknown) */
	char *backing;         /* backing file, or NULL */
	char *create_type;     /* VMDK: "streamOptimized", "monolithicSparse"...; or NULL */
	bool probed;           /* format came from probing */
};

/* Fill di for path, read as format (required: NULL is refused). 0, or -1
 * with the error recorded. Release with disk_info_release(). */
int disk_info_get(const char *path, const char *format, struct disk_info *di);
void disk_info_release(struct disk_info *di);

/* Run `qemu-img info -U --output=json -f format -- path` (no backing chain:
 * no backing file is opened). 0 with *json (caller frees) and *len, or -1. */
int disk_info_json(const char *path, const char *format, char **json, size_t *len);

/* The parsing half of disk_info_get(): json is qemu-img info's output for
 * path (used in messages), format as given to qemu-img (NULL: probed). */
int disk_info_parse(const char *json, size_t len, const char *path, const char *format,
		    struct disk_info *di);

/* Its two steps: qemu-img info's JSON as an object (NULL with the error
 * recorded), and the disk_info read from it. */
struct json_t *disk_info_load(const char *json, size_t len, const char *path);
int disk_info_from_json(const struct json_t *root, const char *path, const char *format,
			struct disk_info *di);

#endif
