/* qemu-img.h: the one place amiforge runs qemu-img to write an image
 * (convert, compare, create an overlay). Formats are always explicit (-f,
 * -F, -O): nothing is probed. Reading images: diskinfo.h (info) and
 * blockread.h (map, decoding), both over the same runner. */
#ifndef AMIFORGE_QEMU_IMG_H
#define AMIFORGE_QEMU_IMG_H

#include <signal.h>

#include "compat.h"

/* How one qemu-img runs. Zero: stdout captured, no deadline. */
struct qemu_img_how {
	bool progress;                  /* -p where it applies, stdout to ours */
	int64_t timeout_ms;             /* 0: none */
	volatile sig_atomic_t *pid;     /* the child's pid while it runs (for a
					   signal handler that stops it) */
	volatile sig_atomic_t *stop;    /* a signal number set by that handler:
					   "interrupted by signal N" */
};

/* Run qemu-img with argv (argv[0] "qemu-img"): 0, or -1 with "'qemu-img'
 * exited with status N: <its last stderr line>" recorded. how may be NULL. */
int qemu_img_run(const char *const *argv, const struct qemu_img_how *how);

/* qemu-img convert in (in_fmt) to out (out_fmt, -o options or NULL). */
int qemu_img_convert(const char *in, const char *in_fmt, const char *out,
		     const char *out_fmt, const char *options, const struct qemu_img_how *how);

/* qemu-img compare: 0 when both hold the same content. */
int qemu_img_compare(const char *a, const char *a_fmt, const char *b, const char *b_fmt,
		     const struct qemu_img_how *how);

/* A qcow2 overlay at path backed by base (format base_fmt, never probed);
 * size 0: the base's virtual size. */
int qemu_img_create_overlay(const char *base, const char *base_fmt, const char *path,
			    uint64_t size, const struct qemu_img_how *how);

#endif
