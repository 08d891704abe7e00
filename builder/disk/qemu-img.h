/* qemu-img.h: the one place amiforge runs qemu-img — to write an image
 * (convert, compare, create an overlay) and to read what qemu-img says of
 * one (info, map: output bounded, timed out, parsed as JSON). Formats are
 * always explicit (-f, -F, -O): nothing is probed. What the answers mean:
 * diskinfo.h (one image's header), blockread.h (a chain's map, decoding). */
#ifndef AMIFORGE_QEMU_IMG_H
#define AMIFORGE_QEMU_IMG_H

#include <signal.h>

#include "compat.h"
#include "run.h"

struct json_t;

/* How one qemu-img runs. Zero: stdout captured, no deadline. */
struct qemu_img_how {
	bool progress;                  /* -p where it applies, stdout to ours */
	int64_t timeout_ms;             /* 0: none */
	volatile sig_atomic_t *pid;     /* the child's pid while it runs (for a
					   signal handler that stops it) */
	volatile sig_atomic_t *stop;    /* a signal number set by that handler:
					   "interrupted by signal N" */
	bool parallel;                  /* convert: -W -m 16 (writes out of order,
					   16 requests in flight: the decoding of
					   compressed clusters overlaps the writes) */
	bool background;                /* nice 19: work beside something that
					   waits for nothing else (the flatten
					   beside the inspection's appliance) */
};

/* Run qemu-img with argv (argv[0] "qemu-img"): 0, or -1 with "'qemu-img'
 * exited with status N: <its last stderr line>" recorded. how may be NULL. */
int qemu_img_run(const char *const *argv, const struct qemu_img_how *how);

/* qemu-img convert in (in_fmt) to out (out_fmt, -o options or NULL). */
int qemu_img_convert(const char *in, const char *in_fmt, const char *out,
		     const char *out_fmt, const char *options, const struct qemu_img_how *how);

/* The same in the background: started (0, or -1 with nothing running),
 * then qemu_img_wait(). in, out and options must outlive the job; how too
 * (or NULL). The job stays where it is until then (its argv is inside it). */
#define QEMU_IMG_ARGV_MAX 17
struct qemu_img_job {
	const char *argv[QEMU_IMG_ARGV_MAX];
	struct run r;
	const struct qemu_img_how *how;
};
int qemu_img_convert_start(const char *in, const char *in_fmt, const char *out,
			   const char *out_fmt, const char *options,
			   const struct qemu_img_how *how, struct qemu_img_job *job);
/* Wait for a started job: what qemu_img_run() returns. Exactly once. */
int qemu_img_wait(struct qemu_img_job *job);

/* qemu-img compare: 0 when both hold the same content. */
int qemu_img_compare(const char *a, const char *a_fmt, const char *b, const char *b_fmt,
		     const struct qemu_img_how *how);

/* A qcow2 overlay at path backed by base (format base_fmt, never probed);
 * size 0: the base's virtual size. */
int qemu_img_create_overlay(const char *base, const char *base_fmt, const char *path,
			    uint64_t size, const struct qemu_img_how *how);

/* Rewrite the qcow2 at path's header to name backing (format backing_fmt)
 * as its backing file, its data untouched (qemu-img rebase -u): for a
 * layer whose backing file was renamed, never to change what it holds. */
int qemu_img_rebase_unsafe(const char *path, const char *backing, const char *backing_fmt,
			   const struct qemu_img_how *how);

/* ---- reading ---- */

/* How one reading run goes: at most max bytes of output (0: 1 MiB), a
 * deadline (0: 60 s). too_big is set when the output was over max (the run
 * then fails with that said). */
struct qemu_img_read {
	size_t max;
	int64_t timeout_ms;
	bool too_big;
};

/* Run qemu-img with argv and return its stdout, NUL-terminated (*len its
 * length without the NUL), or NULL with the error recorded ("what: ..."). */
char *qemu_img_capture(const char *const *argv, const char *what,
		       struct qemu_img_read *rd, size_t *len);

/* The same, parsed: the JSON value, or NULL with the error recorded. */
struct json_t *qemu_img_json(const char *const *argv, const char *what,
			     struct qemu_img_read *rd);

/* qemu-img info --output=json -f format -- path: an object, or with
 * QEMU_IMG_CHAIN (--backing-chain) an array of them, top first.
 * QEMU_IMG_SHARED (-U) reads while a guest holds the image open. */
enum { QEMU_IMG_CHAIN = 1, QEMU_IMG_SHARED = 2 };
struct json_t *qemu_img_info(const char *path, const char *format, unsigned flags,
			     struct qemu_img_read *rd);

#endif
