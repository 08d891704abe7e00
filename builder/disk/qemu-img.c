/* qemu-img.c: qemu-img invocations that write images, through one runner. */
#include "qemu-img.h"
#include "error.h"
#include "log.h"
#include "run.h"
#include "util.h"

int qemu_img_run(const char *const *argv, const struct qemu_img_how *how)
{
	static const struct qemu_img_how none;
	struct run r = RUN_INIT;
	char *line = run_argv_str(argv);
	int ret = -1;

	if (!how)
		how = &none;
	log_debug("run: %s", line);
	free(line);
	r.argv = argv;
	r.out = how->progress ? RUN_INHERIT : RUN_CAPTURE;
	r.err = RUN_CAPTURE;
	r.timeout_ms = how->timeout_ms;
	if (run_start(&r) < 0)
		goto cleanup;
	if (how->pid)
		*how->pid = r.pid;
	if (run_finish(&r) < 0) {
		if (how->pid)
			*how->pid = 0;
		goto cleanup;
	}
	if (how->pid)
		*how->pid = 0;
	if (how->stop && *how->stop) {
		err_set("interrupted by signal %d", (int)*how->stop);
		goto cleanup;
	}
	if (run_check(&r) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	run_release(&r);
	return ret;
}

int qemu_img_convert(const char *in, const char *in_fmt, const char *out,
		     const char *out_fmt, const char *options, const struct qemu_img_how *how)
{
	const char *argv[14];
	size_t n = 0;

	argv[n++] = "qemu-img";
	argv[n++] = "convert";
	argv[n++] = how && how->progress ? "-p" : "-q";
	argv[n++] = "-f";
	argv[n++] = in_fmt;
	argv[n++] = "-O";
	argv[n++] = out_fmt;
	if (options) {
		argv[n++] = "-o";
		argv[n++] = options;
	}
	argv[n++] = "--";
	argv[n++] = in;
	argv[n++] = out;
	argv[n] = NULL;
	return qemu_img_run(argv, how);
}

int qemu_img_compare(const char *a, const char *a_fmt, const char *b, const char *b_fmt,
		     const struct qemu_img_how *how)
{
	const char *argv[] = { "qemu-img", "compare", "-f", a_fmt, "-F", b_fmt, "--",
			       a, b, NULL };

	return qemu_img_run(argv, how);
}

int qemu_img_create_overlay(const char *base, const char *base_fmt, const char *path,
			    uint64_t size, const struct qemu_img_how *how)
{
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", base_fmt,
			       "-b", base, "--", path, NULL, NULL };
	char sizestr[32];

	if (size) {
		snprintf(sizestr, sizeof(sizestr), "%" PRIu64, size);
		argv[11] = sizestr;
	}
	return qemu_img_run(argv, how);
}
