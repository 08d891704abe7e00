/* console.c: the direct QEMU driver's serial console log, with a ceiling.
 * QEMU writes the console into a FIFO that the driver opened for reading
 * before QEMU starts; a small logger process (forked, no exec) copies the
 * first HV_CONSOLE_LOG_MAX bytes of it to console.log, then writes one line
 * saying the log was truncated and reads on, discarding, so that the guest
 * never blocks on its serial port. (libvirt's virtlogd bounds the log the same
 * way by rotating.) The logger ends when QEMU closes the FIFO. */
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "hypervisor.h"
#include "error.h"
#include "util.h"

int hv_console_copy(int in, int out, uint64_t max)
{
	char buf[65536];
	struct stat st;
	uint64_t kept;
	bool noted = false;

	/* console.log is appended to (a guest that is started again): the
	 * ceiling is on the file, not on one run. */
	kept = fstat(out, &st) == 0 && st.st_size > 0 ? (uint64_t)st.st_size : 0;
	for (;;) {
		/* Poll first: a FIFO opened O_NONBLOCK before its writer reads
		 * as EOF until the writer comes, but poll() only reports POLLHUP
		 * once a writer has come and gone. */
		struct pollfd p = { .fd = in, .events = POLLIN };
		ssize_t n;
		size_t take;

		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return err_errno("wait for the console");
		}
		n = read(in, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return err_errno("read the console");
		if (n == 0)
			return 0;
		take = kept >= max ? 0 : (uint64_t)n < max - kept ? (size_t)n : (size_t)(max - kept);
		if (take && write_all(out, buf, take) < 0)
			return err_errno("write the console log");
		kept += take;
		if (take < (size_t)n && !noted) {
			char note[160];
			int len = snprintf(note, sizeof(note),
					   "\n[amiforge: console log truncated at %" PRIu64
					   " bytes; the rest of the console output is discarded]\n",
					   max);

			if (write_all(out, note, (size_t)len) < 0)
				return err_errno("write the console log");
			noted = true;
		}
	}
}

pid_t hv_console_logger_start(int fifo_fd, const char *log_path, uint64_t max)
{
	pid_t pid = fork();

	if (pid < 0) {
		err_errno("fork the console logger");
		return -1;
	}
	if (pid == 0) {
		int out, nul;

		/* Nothing of amiforge's: no terminal signals, none of its fds
		 * (a pipe held open here would outlive the command). */
		setpgid(0, 0);
		signal(SIGINT, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		if (dup2(fifo_fd, 3) < 0)
			_exit(1);
		closefrom(4);
		nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			if (nul > 3)
				close(nul);
		}
		out = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (out < 0)
			_exit(1);
		_exit(hv_console_copy(3, out, max) < 0 ? 1 : 0);
	}
	return pid;
}

int hv_console_logger_stop(pid_t pid, int64_t wait_ms)
{
	int64_t deadline = now_ms() + wait_ms;
	int st;

	if (pid <= 0)
		return 0;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid || (w < 0 && errno == ECHILD))
			return w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
		if (w < 0 && errno != EINTR)
			return -1;
		if (now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(20 * 1000);
	}
}
