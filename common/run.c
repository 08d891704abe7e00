#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "run.h"
#include "error.h"
#include "util.h"

static run_dry_hook dry_hook;
static void *dry_opaque;

void run_set_dry_run(run_dry_hook hook, void *opaque)
{
	dry_hook = hook;
	dry_opaque = opaque;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* In the child: make fd target refer to the configured source. */
static int child_fd(enum run_fd_mode mode, int given, int pipe_end, int target,
		    int flags)
{
	int fd;

	switch (mode) {
	case RUN_INHERIT:
		return 0;
	case RUN_CAPTURE:
		fd = pipe_end;
		break;
	case RUN_FD:
		fd = given;
		break;
	case RUN_NULL:
	default:
		fd = open("/dev/null", flags);
		if (fd < 0)
			return -1;
		break;
	}
	if (fd == target) {
		int fl = fcntl(fd, F_GETFD);
		return fl < 0 ? -1 : fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
	}
	return dup2(fd, target) < 0 ? -1 : 0;
}

int run_start(struct run *r)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int report[2] = { -1, -1 };
	size_t max = r->capture_max ? r->capture_max : RUN_CAPTURE_MAX_DEFAULT;
	pid_t pid, parent = getpid();
	int child_errno = 0;
	ssize_t n;

	if (!r->argv || !r->argv[0])
		return err_set("run: empty argv");
	buf_init(&r->out_buf, max);
	buf_init(&r->err_buf, max);
	r->status = -1;
	r->signaled = r->timed_out = r->truncated = false;
	r->pid = -1;
	r->pipe_in = r->pipe_out = r->pipe_err = -1;
	r->deadline = r->timeout_ms > 0 ? now_ms() + r->timeout_ms : 0;

	if (dry_hook) {
		dry_hook(r->argv, dry_opaque);
		r->status = 0;
		return 0;
	}

	if ((r->in == RUN_CAPTURE && pipe2(in, O_CLOEXEC) < 0) ||
	    (r->out == RUN_CAPTURE && pipe2(out, O_CLOEXEC) < 0) ||
	    (r->err == RUN_CAPTURE && pipe2(err, O_CLOEXEC) < 0) ||
	    pipe2(report, O_CLOEXEC) < 0) {
		err_errno("pipe");
		goto fail;
	}

	pid = fork();
	if (pid < 0) {
		err_errno("fork for '%s'", r->argv[0]);
		goto fail;
	}
	if (pid == 0) {
		sigset_t all;

		/* Child: only async-signal-safe calls from here on. */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (r->new_pgroup)
			setpgid(0, 0);
		if (r->die_with_parent &&
		    (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent))
			goto child_fail;
		if (child_fd(r->in, r->in_fd, in[0], 0, O_RDONLY) < 0 ||
		    child_fd(r->out, r->out_fd, out[1], 1, O_WRONLY) < 0 ||
		    child_fd(r->err, r->err_fd, err[1], 2, O_WRONLY) < 0)
			goto child_fail;
		if (r->cwd && chdir(r->cwd) < 0)
			goto child_fail;
		if (r->env)
			execvpe(r->argv[0], (char *const *)r->argv, (char *const *)r->env);
		else
			execvp(r->argv[0], (char *const *)r->argv);
child_fail:
		child_errno = errno;
		if (write(report[1], &child_errno, sizeof(child_errno)) < 0)
			_exit(127);
		_exit(127);
	}

	r->pid = pid;
	close_fd(&report[1]);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	do {
		n = read(report[0], &child_errno, sizeof(child_errno));
	} while (n < 0 && errno == EINTR);
	close_fd(&report[0]);
	if (n == sizeof(child_errno)) {
		int st;

		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		r->pid = -1;
		errno = child_errno;
		err_errno("run '%s'", r->argv[0]);
		goto fail;
	}
	r->pipe_in = in[1];
	r->pipe_out = out[0];
	r->pipe_err = err[0];
	if (r->pipe_in >= 0)
		fcntl(r->pipe_in, F_SETFL, O_NONBLOCK);
	return 0;

fail:
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&err[0]);
	close_fd(&err[1]);
	close_fd(&report[0]);
	close_fd(&report[1]);
	return -1;
}

static void kill_child(struct run *r, int sig)
{
	if (r->pid <= 0)
		return;
	if (r->new_pgroup)
		kill(-r->pid, sig);
	kill(r->pid, sig);
}

/* Read what is available into b; on overflow keep draining but drop. */
static int drain(struct run *r, int *fd, struct buf *b)
{
	char tmp[65536];
	ssize_t n = read(*fd, tmp, sizeof(tmp));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close_fd(fd);
		return 0;
	}
	if (!r->truncated) {
		size_t room = b->max - b->len;
		size_t take = (size_t)n < room ? (size_t)n : room;

		if (take && buf_add(b, tmp, take) < 0)
			return -1;
		if (take < (size_t)n)
			r->truncated = true;
	}
	return 0;
}

int run_finish(struct run *r)
{
	size_t fed = 0;
	int64_t kill_at = 0;
	int st;
	int ret = 0;

	if (dry_hook && r->pid < 0)
		return 0;
	if (r->in != RUN_CAPTURE)
		close_fd(&r->pipe_in);
	else if (r->in_len == 0)
		close_fd(&r->pipe_in);

	while (r->pipe_in >= 0 || r->pipe_out >= 0 || r->pipe_err >= 0) {
		struct pollfd pfd[3];
		int nfd = 0, timeout = -1, pr;
		int64_t now = now_ms();

		if (r->deadline) {
			if (now >= r->deadline && !r->timed_out) {
				r->timed_out = true;
				kill_child(r, SIGTERM);
				kill_at = now + 2000;
			}
			if (r->timed_out && kill_at && now >= kill_at) {
				kill_child(r, SIGKILL);
				kill_at = 0;
				/* Grandchildren may hold the pipes: stop reading. */
				break;
			}
			timeout = (int)((r->timed_out ? kill_at : r->deadline) - now);
			if (timeout < 0)
				timeout = 0;
		}
		if (r->pipe_in >= 0)
			pfd[nfd++] = (struct pollfd){ .fd = r->pipe_in, .events = POLLOUT };
		if (r->pipe_out >= 0)
			pfd[nfd++] = (struct pollfd){ .fd = r->pipe_out, .events = POLLIN };
		if (r->pipe_err >= 0)
			pfd[nfd++] = (struct pollfd){ .fd = r->pipe_err, .events = POLLIN };
		pr = poll(pfd, (nfds_t)nfd, timeout);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			ret = err_errno("poll");
			kill_child(r, SIGKILL);
			break;
		}
		for (int i = 0; i < nfd; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == r->pipe_in) {
				ssize_t w = write(r->pipe_in, (const char *)r->in_data + fed,
						  r->in_len - fed);
				if (w > 0)
					fed += (size_t)w;
				if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
				    fed == r->in_len)
					close_fd(&r->pipe_in);
			} else if (pfd[i].fd == r->pipe_out) {
				if (drain(r, &r->pipe_out, &r->out_buf) < 0)
					ret = -1;
			} else if (pfd[i].fd == r->pipe_err) {
				if (drain(r, &r->pipe_err, &r->err_buf) < 0)
					ret = -1;
			}
		}
	}
	close_fd(&r->pipe_in);
	close_fd(&r->pipe_out);
	close_fd(&r->pipe_err);

	for (;;) {
		pid_t w = waitpid(r->pid, &st, r->deadline ? WNOHANG : 0);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			ret = err_errno("wait for '%s'", r->argv[0]);
			break;
		}
		if (w == r->pid) {
			if (WIFEXITED(st)) {
				r->status = WEXITSTATUS(st);
			} else {
				r->signaled = true;
				r->status = 128 + WTERMSIG(st);
			}
			break;
		}
		/* still running with a deadline */
		if (!r->timed_out && now_ms() >= r->deadline) {
			r->timed_out = true;
			kill_child(r, SIGTERM);
			kill_at = now_ms() + 2000;
		} else if (r->timed_out && (!kill_at || now_ms() >= kill_at)) {
			kill_child(r, SIGKILL);
			kill_at = 0;
		}
		usleep(10000);
	}
	r->pid = -1;
	if (r->timed_out && ret == 0)
		ret = err_set("'%s' timed out after %" PRId64 " ms", r->argv[0],
			      r->timeout_ms);
	return ret;
}

int run_sync(struct run *r)
{
	if (run_start(r) < 0)
		return -1;
	return run_finish(r);
}

int run_check(const struct run *r)
{
	const char *e, *line;
	size_t len;

	if (r->status == 0)
		return 0;
	e = r->err_buf.data ? r->err_buf.data : "";
	len = strlen(e);
	while (len && (e[len - 1] == '\n' || e[len - 1] == ' '))
		len--;
	line = e + len;
	while (line > e && line[-1] != '\n')
		line--;
	if (r->signaled)
		return err_set("'%s' killed by signal %d%s%.*s", r->argv[0],
			       r->status - 128, len ? ": " : "",
			       (int)(e + len - line), line);
	return err_set("'%s' exited with status %d%s%.*s", r->argv[0], r->status,
		       len ? ": " : "", (int)(e + len - line), line);
}

void run_release(struct run *r)
{
	buf_release(&r->out_buf);
	buf_release(&r->err_buf);
	close_fd(&r->pipe_in);
	close_fd(&r->pipe_out);
	close_fd(&r->pipe_err);
	if (r->pid > 0) {
		int st;

		kill_child(r, SIGKILL);
		while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
			;
		r->pid = -1;
	}
}

char *run_argv_str(const char *const *argv)
{
	struct buf b;
	size_t i;

	buf_init(&b, SIZE_MAX / 2);
	for (i = 0; argv[i]; i++) {
		const char *a = argv[i];
		bool plain = *a != '\0' && strspn(a, "abcdefghijklmnopqrstuvwxyz"
						  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
						  "-_./=:,+@%") == strlen(a);
		if (i)
			buf_addc(&b, ' ');
		if (plain) {
			buf_adds(&b, a);
			continue;
		}
		buf_addc(&b, '\'');
		for (; *a; a++) {
			if (*a == '\'')
				buf_adds(&b, "'\\''");
			else
				buf_addc(&b, *a);
		}
		buf_addc(&b, '\'');
	}
	return buf_detach(&b, NULL);
}
