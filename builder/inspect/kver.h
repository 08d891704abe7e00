/* kver.h: the release of a Linux kernel read from the kernel image itself,
 * for kernels whose file name does not carry it (/boot/bzImage, a UKI, a
 * renamed vmlinuz). The image comes from the disk being inspected: every
 * offset is checked against its length, every string is bounded and must
 * look like a release ("6.1.0-28-cloud-amd64").
 *
 *	char v[KVER_MAX];
 *	if (kver_from_bzimage(data, len, v, sizeof(v)) == 0) ...  // x86 header
 *	const char *src;
 *	if (kver_from_image(data, len, want, v, sizeof(v), &src) == 0) ...
 */
#ifndef AMIFORGE_INSPECT_KVER_H
#define AMIFORGE_INSPECT_KVER_H

#include "compat.h"

/* Longest release string accepted (uname -r is at most 64 bytes). */
#define KVER_MAX 65
/* Bytes of an image the x86 header needs: its setup sectors hold the
 * version string (the setup code is at most 64 sectors of 512 bytes). */
#define KVER_HEADER_BYTES (64u * 1024)
/* Most bytes decompressed from one compressed kernel while looking for its
 * banner (arm64 Images are 30-60 MiB). */
#define KVER_INFLATE_MAX (256u * 1024 * 1024)

/* x86 boot protocol: "HdrS" at 0x202, the kernel_version pointer at 0x20E,
 * its string at that value + 0x200. 0 with the release (its first word) in
 * out, -1 when there is no header or no plausible release. Records no error. */
int kver_from_bzimage(const unsigned char *data, size_t len, char *out, size_t cap);

/* The "Linux version RELEASE " banner in uncompressed bytes. When want is
 * given (a predicate on candidate releases, e.g. "/lib/modules/R exists"),
 * the first candidate it accepts wins, else the first candidate. */
int kver_from_banner(const unsigned char *data, size_t len,
		     bool (*want)(void *opaque, const char *release), void *opaque,
		     char *out, size_t cap);

/* Any of: the bzImage header; the banner in the bytes as they are (arm64
 * Image); the banner inside a compressed image (gzip, xz, zstd... the whole
 * file, or an EFI zboot payload), decompressing at most KVER_INFLATE_MAX.
 * *source says which ("bzImage header", "banner", "compressed banner",
 * "EFI zboot banner"). */
int kver_from_image(const unsigned char *data, size_t len,
		    bool (*want)(void *opaque, const char *release), void *opaque,
		    char *out, size_t cap, const char **source);

#endif
