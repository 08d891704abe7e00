/* convert.h: `amiforge convert`: a disk to the formats AWS and other
 * hypervisors take, with qemu-img (formats explicit on both sides) and, for
 * OVA, an OVF descriptor (libxml2), a tar (libarchive) and a SHA256
 * manifest (OpenSSL). The output appears under its name only when complete:
 * it is written to a temporary name beside it and renamed on success; on
 * failure or a signal the temporary file is removed. */
#ifndef AMIFORGE_CONVERT_H
#define AMIFORGE_CONVERT_H

#include <signal.h>

#include "compat.h"

enum convert_format {
	CONVERT_RAW,     /* sparse raw (qemu-img, the first block a hole too) */
	CONVERT_QCOW2,
	CONVERT_VMDK,    /* streamOptimized (what VM Import takes) */
	CONVERT_VHD,     /* qemu's 'vpc', fixed or dynamic */
	CONVERT_VHDX,
	CONVERT_OVA,     /* OVF 1.0 + streamOptimized VMDK + SHA256 manifest */
};

struct convert_opts {
	const char *input;
	const char *input_format;   /* as stated, or NULL: detected (admit.h) */
	bool input_own;             /* input is amiforge's own output of
				     * input_format: not admitted again */
	const char *output;
	enum convert_format format;
	bool vhd_fixed;             /* VHD subformat fixed (default dynamic) */
	bool verify;                /* compare the result with the input */
	bool progress;              /* show progress (common/progress.h; qemu-img -p on a terminal) */
	/* Told each temporary file ("file") or directory ("dir") the moment
	 * it exists, before anything is written to it, so that a caller with
	 * a journal can clean it up after a crash; nonzero fails the
	 * conversion. NULL: not told. */
	int (*on_temp)(const char *kind, const char *path, void *opaque);
	void *opaque;
};

/* Parse "raw", "qcow2", "vmdk", "vhd", "vhdx", "ova". 0 or -1. */
int convert_format_parse(const char *s, enum convert_format *out);

/* Convert. 0, or -1 with the error recorded (and no output file left). */
int convert_run(const struct convert_opts *o);

/* qemu-img's name for a format ("vpc" for VHD; "vmdk" for OVA's disk). */
const char *convert_qemu_format(enum convert_format f);

/* Internal to convert/: write the OVA at tmp_path from a finished
 * streamOptimized VMDK. name is the base name for the files inside. */
int ova_write(const char *tmp_path, const char *vmdk_path, const char *name,
	      uint64_t virtual_size);


#endif
