/* qemu-img convert with explicit formats, a temporary name, signals. */
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>

#include "convert.h"
#include "vmdk.h"
#include "builder/disk/admit.h"
#include "builder/disk/diskinfo.h"
#include "builder/disk/qemu-img.h"
#include "error.h"
#include "log.h"
#include "progress.h"
#include "util.h"

/* The qemu-img child, for the signal handler to stop it. */
static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
	if (child_pid > 0)
		kill((pid_t)child_pid, SIGTERM);
}

int convert_format_parse(const char *s, enum convert_format *out)
{
	static const char *const names[] = { "raw", "qcow2", "vmdk", "vhd", "vhdx", "ova" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum convert_format)i;
			return 0;
		}
	return err_set("unknown output format '%s' (raw, qcow2, vmdk, vhd, vhdx, ova)", s);
}

const char *convert_qemu_format(enum convert_format f)
{
	switch (f) {
	case CONVERT_RAW:
		return "raw";
	case CONVERT_QCOW2:
		return "qcow2";
	case CONVERT_VHD:
		return "vpc";
	case CONVERT_VHDX:
		return "vhdx";
	case CONVERT_VMDK:
	case CONVERT_OVA:
	default:
		return "vmdk";
	}
}

static int qemu_convert(const char *in, const char *in_fmt, const char *out,
			enum convert_format f, bool vhd_fixed, bool progress)
{
	/* A raw output's layout is the guest's whatever the order of the
	 * writes; a qcow2, VHD or VHDX would get its clusters in the order
	 * they happened to be written (qemu-img recommends -W only for
	 * outputs whose layout is fixed). */
	struct qemu_img_how how = { .progress = progress, .pid = &child_pid,
				    .stop = &got_signal, .parallel = f == CONVERT_RAW };
	const char *options = NULL;

	switch (f) {
	case CONVERT_VHD:
		/* force_size: the VHD's size is exactly the input's, not
		 * rounded to a CHS geometry (AWS and Azure need this). */
		options = vhd_fixed ? "subformat=fixed,force_size=on" : "subformat=dynamic,force_size=on";
		break;
	case CONVERT_VHDX:
		options = "subformat=dynamic";
		break;
	case CONVERT_QCOW2:
	default:
		break;
	}
	return qemu_img_convert(in, in_fmt, out, convert_qemu_format(f), options, &how);
}

static void show_progress(uint64_t done, uint64_t total, void *opaque)
{
	progress_show(opaque, done, total, NULL);
}

/* A streamOptimized VMDK by amiforge's own writer (vmdk.h). */
static int write_vmdk(const char *in, const char *in_fmt, const char *out, const char *name,
		      bool progress)
{
	struct progress p;
	struct vmdk_opts vo = {
		.input = in, .input_format = in_fmt, .name = name, .stop = &got_signal,
		.progress = progress ? show_progress : NULL, .opaque = &p,
	};
	struct vmdk_stats st;

	progress_init(&p, "vmdk");
	if (vmdk_write_file(&vo, out, &st) < 0)
		return got_signal ? err_set("interrupted by signal %d", (int)got_signal)
				  : err_prefix("write '%s'", out);
	log_info("vmdk: %" PRIu64 " grains, %" PRIu64 " bytes (%.1f s)", st.grains_written,
		 st.bytes_out, (double)(now_ms() - p.t0) / 1000);
	return 0;
}

/* qemu-img writes a raw output's first block whatever it holds (to probe
 * alignment): a hole there too when it reads as zeros, so that a raw output
 * holds no block the source does not. Best effort: a file system without
 * hole punching keeps it (the content is the same). */
static void punch_zero_head(const char *path)
{
	uint8_t b[4096];
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return;
	n = pread(fd, b, sizeof(b), 0);
	if (n > 0) {
		ssize_t i = 0;

		while (i < n && !b[i])
			i++;
		if (i == n)
			fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, n);
	}
	close(fd);
}

/* Write-behind for an output qemu-img writes: qemu-img converts with the
 * cache mode "unsafe" (never flushes), so its data sits dirty in the page
 * cache until our fsync before the rename, which then waits for all of it
 * (~1 s for the fixture's 1.5 GiB of raw). A thread asks the kernel to
 * start writing what is dirty every WRITEBEHIND_MS while qemu-img runs
 * (sync_file_range: starts the I/O, waits for none of it), so the writes
 * overlap the conversion and the final fsync finds little left. */
#define WRITEBEHIND_MS 200

struct writebehind {
	int fd;
	bool stop;
	bool started;
	pthread_t t;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void *writebehind_loop(void *arg)
{
	struct writebehind *wb = arg;

	pthread_mutex_lock(&wb->lock);
	while (!wb->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += WRITEBEHIND_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&wb->cond, &wb->lock, &ts);
		if (wb->stop)
			break;
		pthread_mutex_unlock(&wb->lock);
		sync_file_range(wb->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		pthread_mutex_lock(&wb->lock);
	}
	pthread_mutex_unlock(&wb->lock);
	return NULL;
}

/* Best effort: without the thread the final fsync does all the work. */
static void writebehind_start(struct writebehind *wb, const char *path)
{
	memset(wb, 0, sizeof(*wb));
	wb->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (wb->fd < 0)
		return;
	pthread_mutex_init(&wb->lock, NULL);
	pthread_cond_init(&wb->cond, NULL);
	wb->started = pthread_create(&wb->t, NULL, writebehind_loop, wb) == 0;
	if (!wb->started) {
		pthread_mutex_destroy(&wb->lock);
		pthread_cond_destroy(&wb->cond);
		close(wb->fd);
		wb->fd = -1;
	}
}

static void writebehind_stop(struct writebehind *wb)
{
	if (!wb->started)
		return;
	pthread_mutex_lock(&wb->lock);
	wb->stop = true;
	pthread_cond_signal(&wb->cond);
	pthread_mutex_unlock(&wb->lock);
	pthread_join(wb->t, NULL);
	pthread_mutex_destroy(&wb->lock);
	pthread_cond_destroy(&wb->cond);
	close(wb->fd);
	wb->started = false;
}

/* Content comparison: qemu-img compare, both formats explicit. */
static int verify(const char *in, const char *in_fmt, const char *out, const char *out_fmt)
{
	struct qemu_img_how how = { .pid = &child_pid, .stop = &got_signal };

	log_info("verifying '%s' against '%s'", out, in);
	if (qemu_img_compare(in, in_fmt, out, out_fmt, &how) < 0)
		return err_prefix("verify '%s'", out);
	return 0;
}

int convert_run(const struct convert_opts *o)
{
	struct disk_info di;
	struct sigaction sa, old_int, old_term, old_hup;
	char *dir = NULL, *base = NULL, *tmp = NULL, *work = NULL, *vmdk = NULL, *name = NULL;
	const char *in;
	int fd, ret = -1;

	/* A disk from outside comes in through the one door (admit.h). */
	if ((o->input_own ? disk_info_get(o->input, o->input_format, &di) :
	     disk_admit(o->input, o->input_format, &di)) < 0)
		return -1;
	in = di.path ? di.path : o->input;
	{
		char *d1 = xstrdup(o->output), *d2 = xstrdup(o->output);

		dir = xstrdup(dirname(d1));
		base = xstrdup(basename(d2));
		free(d1);
		free(d2);
	}
	tmp = xasprintf("%s/.%s.amiforge-XXXXXX", dir, base);
	fd = mkstemp(tmp);
	if (fd < 0) {
		err_errno("create a temporary file beside '%s'", o->output);
		free(tmp);
		tmp = NULL;
		goto cleanup;
	}
	{	/* mkstemp makes 0600; the result gets the usual umask mode */
		mode_t um = umask(0);

		umask(um);
		fchmod(fd, 0666 & ~um);
	}
	close(fd);
	if (o->on_temp && o->on_temp("file", tmp, o->opaque) != 0)
		goto cleanup;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	got_signal = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);

	log_info("converting '%s' (%s, %" PRIu64 " bytes) to %s", o->input, di.format,
		 di.virtual_size, o->format == CONVERT_OVA ? "ova" : convert_qemu_format(o->format));
	if (o->format == CONVERT_OVA) {
		size_t bl = strlen(base);

		work = xasprintf("%s/.%s.amiforge-work-XXXXXX", dir, base);
		if (!mkdtemp(work)) {
			err_errno("mkdtemp beside '%s'", o->output);
			free(work);
			work = NULL;
			goto restore;
		}
		if (o->on_temp && o->on_temp("dir", work, o->opaque) != 0)
			goto restore;
		name = xstrndup(base, bl > 4 && str_endswith(base, ".ova") ? bl - 4 : bl);
		vmdk = xasprintf("%s/%s-disk1.vmdk", work, name);
		{
			char *vname = xasprintf("%s-disk1.vmdk", name);
			int r = write_vmdk(in, di.format, vmdk, vname, o->progress);

			free(vname);
			if (r < 0)
				goto restore;
		}
		if (o->verify && verify(in, di.format, vmdk, "vmdk") < 0)
			goto restore;
		if (ova_write(tmp, vmdk, name, di.virtual_size) < 0)
			goto restore;
	} else if (o->format == CONVERT_VMDK) {
		if (write_vmdk(in, di.format, tmp, base, o->progress) < 0)
			goto restore;
		if (o->verify && verify(in, di.format, tmp, "vmdk") < 0)
			goto restore;
	} else {
		struct writebehind wb;
		int r;

		/* qemu-img -p draws on stdout, for a terminal only. */
		writebehind_start(&wb, tmp);
		r = qemu_convert(in, di.format, tmp, o->format, o->vhd_fixed,
				 o->progress && isatty(STDOUT_FILENO));
		writebehind_stop(&wb);
		if (r < 0)
			goto restore;
		if (o->format == CONVERT_RAW)
			punch_zero_head(tmp);
		if (o->verify && verify(in, di.format, tmp, convert_qemu_format(o->format)) < 0)
			goto restore;
	}
	if (got_signal) {
		err_set("interrupted by signal %d", (int)got_signal);
		goto restore;
	}
	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	if (rename(tmp, o->output) < 0) {
		err_errno("rename '%s' to '%s'", tmp, o->output);
		goto restore;
	}
	free(tmp);
	tmp = NULL;
	ret = 0;

restore:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
cleanup:
	if (tmp)
		unlink(tmp);
	if (vmdk)
		unlink(vmdk);
	if (work)
		rmdir(work);
	free(tmp);
	free(vmdk);
	free(work);
	free(name);
	free(dir);
	free(base);
	disk_info_release(&di);
	if (ret == 0 && got_signal) {	/* a signal after the rename: still done */
		got_signal = 0;
	}
	return ret;
}
