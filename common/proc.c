/* proc.c: a process known by its identity (pid, start time, executable),
 * so that a later run can stop it without hitting a reused pid. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* How long a recorded process gets after SIGTERM, then after SIGKILL. */
#define PID_TERM_MS 5000
#define PID_KILL_MS 5000

int proc_starttime(pid_t pid, uint64_t *out)
{
	char path[64], buf[1024], *p, *tok, *save = NULL;
	int fd, i;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			errno = ESRCH;
		return -1;
	}
	n = read_all(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		errno = ESRCH;
		return -1;
	}
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and ')'. */
	p = strrchr(buf, ')');
	if (!p) {
		errno = EINVAL;
		return -1;
	}
	p++;
	/* After ')': field 3 (state) is the first token; starttime is field 22. */
	for (i = 3, tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), i++) {
		if (i == 3 && (tok[0] == 'Z' || tok[0] == 'X')) {
			errno = ESRCH;   /* a zombie is as good as gone */
			return -1;
		}
		if (i == 22)
			return parse_u64(tok, UINT64_MAX, out) < 0 ? (errno = EINVAL, -1) : 0;
	}
	errno = EINVAL;
	return -1;
}

/* Wait up to ms for pid (with start time st) to disappear. */
static bool pid_gone(pid_t pid, uint64_t st, int64_t ms)
{
	int64_t deadline = now_ms() + ms;

	for (;;) {
		uint64_t cur;

		waitpid(pid, NULL, WNOHANG);   /* reap it if it is our child */
		if (proc_starttime(pid, &cur) < 0 || cur != st)
			return true;
		if (now_ms() >= deadline)
			return false;
		usleep(20000);
	}
}

int proc_exe(pid_t pid, char *out, size_t n)
{
	char path[64];
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)pid);
	len = readlink(path, out, n - 1);
	if (len < 0)
		return -1;
	if ((size_t)len >= n - 1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	out[len] = '\0';
	return 0;
}

int proc_release(const char *const *fields, size_t nfields)
{
	uint64_t pid, st, cur;
	char exe[PATH_MAX];

	if (nfields < 3 || parse_u64(fields[0], INT_MAX, &pid) < 0 || pid < 2 ||
	    parse_u64(fields[1], UINT64_MAX, &st) < 0 || fields[2][0] != '/')
		return err_set("bad process record (want: pid, start time, executable path)");
	if (proc_starttime((pid_t)pid, &cur) < 0 || cur != st)
		return 0;   /* gone, or the pid now belongs to someone else */
	if (proc_exe((pid_t)pid, exe, sizeof(exe)) < 0 || strcmp(exe, fields[2]) != 0) {
		log_warn("process %llu is not the journaled '%s' any more: left alone",
			 (unsigned long long)pid, fields[2]);
		return 0;
	}
	if (kill((pid_t)pid, SIGTERM) < 0 && errno != ESRCH)
		return err_errno("kill %llu", (unsigned long long)pid);
	if (pid_gone((pid_t)pid, st, PID_TERM_MS))
		return 0;
	kill((pid_t)pid, SIGKILL);
	if (pid_gone((pid_t)pid, st, PID_KILL_MS))
		return 0;
	return err_set("process %llu survived SIGKILL", (unsigned long long)pid);
}

