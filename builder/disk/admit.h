/* admit.h: the one door an untrusted disk image comes in by.
 *
 * A disk from outside (a recipe's parent, the DISK of convert, inspect,
 * publish, run) is looked at once, here; its format is decided here and
 * passed explicitly (qemu-img -f/-F, libvirt <driver type>, guestfs format=,
 * the block reader) everywhere after. amiforge's own files (overlays,
 * checkpoint layers, flattened outputs) are never admitted again: their
 * format is known.
 *
 * The format is the one the user stated (recipe parent.format, --format /
 * --input-format) or, when none was stated, the one the file's first bytes
 * name; a detection that is not clear-cut is refused, never guessed.
 * Before qemu opens the file at all, its header is read here and refused
 * when it would make qemu read another file of this host:
 *   - qcow2 with a backing file or an external data file (data_file=),
 *   - a VMDK descriptor (text: its data is in the files it names) or a
 *     sparse VMDK whose header defers to such a descriptor (capacity 0),
 *   - a differencing VHD (a parent disk);
 * then `qemu-img info -f FORMAT` (without --backing-chain: it opens no
 * backing file) confirms and refuses any backing file, qcow2 data file,
 * VMDK extent in another file, encryption. A file whose content is not the
 * format stated is refused, except when raw was stated: reading any file as
 * raw reads that file only, so it is a warning (a qcow2 read as raw is its
 * container, not the disk inside). Each refusal is one line:
 *	disk 'PATH' refused: WHY
 */
#ifndef AMIFORGE_DISK_ADMIT_H
#define AMIFORGE_DISK_ADMIT_H

#include "compat.h"
#include "diskinfo.h"

/* Bytes of the file's start examined (qemu's own probe looks at 2 KiB). */
#define DISK_ADMIT_HEAD 4096
/* The VHD footer at the end of a fixed VHD. */
#define DISK_ADMIT_TAIL 512

/* Admit path as format (qemu's name or "vhd"; NULL: detect). Fills di
 * (di->path: the absolute path to use from now on, di->format: the format
 * to pass explicitly). 0, or -1 with "disk 'PATH' refused: ..." or the
 * failure recorded. Release di with disk_info_release(). */
int disk_admit(const char *path, const char *format, struct disk_info *di);

/* The qemu name of a format the user may state ("vhd" is "vpc"), or NULL
 * when amiforge does not read it: raw, qcow2, vmdk, vpc, vhdx. */
const char *disk_admit_format(const char *stated);

/* The pure halves of disk_admit, for tests. */

/* What the first bytes (head, n) and the last sector (tail, tn: 0 when the
 * file is smaller than two sectors) say the file is: "raw", "qcow2", "vmdk",
 * "vpc", "vhdx", or a format amiforge does not read ("qcow", "qed", "vdi",
 * "luks", "vmdk-descriptor"). */
const char *disk_sniff(const unsigned char *head, size_t n, const unsigned char *tail,
		       size_t tn);

/* The header check: stated (qemu's name, or NULL) against the content.
 * 0 with *format (static) the format to read it as; -1 refused. */
int disk_admit_header(const char *path, const char *stated, const unsigned char *head,
		      size_t n, const unsigned char *tail, size_t tn, const char **format);

/* The qemu-img info check: json is `qemu-img info --output=json -f format`
 * of the disk called path in messages. 0 with di filled, or -1. */
int disk_admit_info(const char *json, size_t len, const char *path, const char *format,
		    struct disk_info *di);

#endif
