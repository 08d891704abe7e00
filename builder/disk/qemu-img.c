/* qemu-img.c: qemu-img invocations, through one runner for those that
 * write images and one for those that read what qemu-img says. */
#include <jansson.h>

#include "qemu-img.h"
#include "error.h"
#include "log.h"
#include "run.h"
#include "util.h"

/* Start argv (kept by the caller until the job is waited for). 0, or -1
 * with the error recorded and nothing running. */
static int job_start(struct qemu_img_job *job, const char *const *argv,
		     const struct qemu_img_how *how)
{
	static const struct qemu_img_how none;
	struct run r = RUN_INIT;
	char *line = run_argv_str(argv);

	job->how = how ? how : &none;
	log_debug("run: %s", line);
	free(line);
	job->r = r;
	job->r.argv = argv;
	job->r.out = job->how->progress ? RUN_INHERIT : RUN_CAPTURE;
	job->r.err = RUN_CAPTURE;
	job->r.timeout_ms = job->how->timeout_ms;
	job->r.nice = job->how->background ? 19 : 0;
	if (run_start(&job->r) < 0) {
		run_release(&job->r);
		return -1;
	}
	if (job->how->pid)
		*job->how->pid = job->r.pid;
	return 0;
}

int qemu_img_wait(struct qemu_img_job *job)
{
	const struct qemu_img_how *how = job->how;
	int ret = -1;

	if (run_finish(&job->r) < 0) {
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
	if (run_check(&job->r) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	run_release(&job->r);
	return ret;
}

int qemu_img_run(const char *const *argv, const struct qemu_img_how *how)
{
	struct qemu_img_job job;

	return job_start(&job, argv, how) < 0 ? -1 : qemu_img_wait(&job);
}

/* argv (QEMU_IMG_ARGV_MAX) for qemu-img convert. */
static void convert_argv(const char **argv, const char *in, const char *in_fmt,
			 const char *out, const char *out_fmt, const char *options,
			 const struct qemu_img_how *how)
{
	size_t n = 0;

	argv[n++] = "qemu-img";
	argv[n++] = "convert";
	argv[n++] = how && how->progress ? "-p" : "-q";
	if (how && how->parallel) {
		argv[n++] = "-W";
		argv[n++] = "-m";
		argv[n++] = "16";
	}
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
}

int qemu_img_convert(const char *in, const char *in_fmt, const char *out,
		     const char *out_fmt, const char *options, const struct qemu_img_how *how)
{
	const char *argv[QEMU_IMG_ARGV_MAX];

	convert_argv(argv, in, in_fmt, out, out_fmt, options, how);
	return qemu_img_run(argv, how);
}

int qemu_img_convert_start(const char *in, const char *in_fmt, const char *out,
			   const char *out_fmt, const char *options,
			   const struct qemu_img_how *how, struct qemu_img_job *job)
{
	convert_argv(job->argv, in, in_fmt, out, out_fmt, options, how);
	return job_start(job, job->argv, how);
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

int qemu_img_rebase_unsafe(const char *path, const char *backing, const char *backing_fmt,
			   const struct qemu_img_how *how)
{
	const char *argv[] = { "qemu-img", "rebase", "-q", "-u", "-f", "qcow2", "-F", backing_fmt,
			       "-b", backing, "--", path, NULL };

	return qemu_img_run(argv, how);
}

/* ---- reading ---- */

#define READ_MAX_DEFAULT (1u * 1024 * 1024)
#define READ_TIMEOUT_DEFAULT_MS 60000

char *qemu_img_capture(const char *const *argv, const char *what,
		       struct qemu_img_read *rd, size_t *len)
{
	struct run r = RUN_INIT;
	char *out = NULL;

	rd->too_big = false;
	r.argv = argv;
	r.out = RUN_CAPTURE;
	r.err = RUN_CAPTURE;
	r.capture_max = rd->max ? rd->max : READ_MAX_DEFAULT;
	r.timeout_ms = rd->timeout_ms ? rd->timeout_ms : READ_TIMEOUT_DEFAULT_MS;
	if (run_sync(&r) < 0 || run_check(&r) < 0) {
		err_prefix("%s", what);
		goto cleanup;
	}
	if (r.truncated) {
		rd->too_big = true;
		err_set("%s: output over %zu bytes", what, r.capture_max);
		goto cleanup;
	}
	out = xstrndup(r.out_buf.data ? r.out_buf.data : "", r.out_buf.len);
	if (len)
		*len = strlen(out);
cleanup:
	run_release(&r);
	return out;
}

json_t *qemu_img_json(const char *const *argv, const char *what, struct qemu_img_read *rd)
{
	json_error_t je;
	json_t *j;
	size_t len;
	char *out = qemu_img_capture(argv, what, rd, &len);

	if (!out)
		return NULL;
	j = json_loadb(out, len, 0, &je);
	if (!j)
		err_set("%s: invalid JSON at %d:%d: %s", what, je.line, je.column, je.text);
	free(out);
	return j;
}

json_t *qemu_img_info(const char *path, const char *format, unsigned flags,
		      struct qemu_img_read *rd)
{
	const char *argv[10];
	size_t n = 0;

	argv[n++] = "qemu-img";
	argv[n++] = "info";
	if (flags & QEMU_IMG_SHARED)
		argv[n++] = "-U";
	if (flags & QEMU_IMG_CHAIN)
		argv[n++] = "--backing-chain";
	argv[n++] = "--output=json";
	argv[n++] = "-f";
	argv[n++] = format;
	argv[n++] = "--";
	argv[n++] = path;
	argv[n] = NULL;
	return qemu_img_json(argv, "qemu-img info", rd);
}
