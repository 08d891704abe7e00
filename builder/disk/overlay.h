/* overlay.h: the guest's disk is a qcow2 overlay on the base image; the base
 * is opened read-only by QEMU and never written.
 *
 * The base's format is decided once, when it comes in (image_admit, see
 * admit.h), and passed explicitly from then on (qemu-img -F, <driver
 * type=...>, format=): letting QEMU probe is how a raw disk carrying a qcow2
 * header reads host files (CVE-2010-3851). Bases with a backing file of their
 * own are refused for the same reason. */
#ifndef AMIFORGE_OVERLAY_H
#define AMIFORGE_OVERLAY_H

#include "compat.h"

struct image_info {
	char format[16];        /* "qcow2" or "raw" */
	uint64_t virtual_size;  /* bytes */
};

/* Parse `qemu-img info --output=json` for path (used in messages).
 * 0 or -1 with an error such as "image 'x': format 'vmdk' is not supported". */
int image_info_parse(const char *json, const char *path, struct image_info *out);

/* A base from outside: admit path (disk_admit: format as stated, or
 * detected when NULL; refused when it would read other host files), then
 * it must be qcow2 or raw. 0 or -1. */
int image_admit(const char *path, const char *format, struct image_info *out);

/* A base whose format is known already (admitted earlier, recorded in the
 * cache, or amiforge's own output): qemu-img info -f format, no backing
 * file. 0 or -1. */
int image_known(const char *path, const char *format, struct image_info *out);

/* image_known of a qcow2 whose backing chain amiforge wrote itself (a build
 * checkpoint, every layer with an explicit backing format): the format is
 * forced to qcow2 and a backing file is accepted. 0 or -1. */
int image_probe_chain(const char *path, struct image_info *out);

/* Create overlay (qcow2) backed by base (absolute path, format base_fmt).
 * size 0 keeps the base's virtual size; otherwise it must not be smaller.
 * 0 or -1; on failure no overlay file is left. */
int overlay_create(const char *base, const char *base_fmt, const char *overlay,
		   uint64_t size);

#endif
