#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "run.h"
#include "error.h"
#include "util.h"

extern char **environ;

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
	case RUN_PIPE:
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

/* What the child could not do, sent back before it exits 127. */
enum child_step { STEP_SETUP, STEP_USER, STEP_CWD, STEP_EXEC };
struct child_report {
	int step;
	int err;
};

static bool piped(enum run_fd_mode m)
{
	return m == RUN_CAPTURE || m == RUN_PIPE;
}

/* In the child, after fork: only async-signal-safe calls. Returns only on
 * failure, with the step that failed. */
static enum child_step child_exec(const struct run *r, pid_t parent, const int in[2],
				  const int out[2], const int err[2])
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	if (r->new_session)
		setsid();
	else if (r->new_pgroup)
		setpgid(0, 0);
	if (r->die_with_parent &&
	    (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent))
		return STEP_SETUP;
	if (r->nice > 0)
		(void)setpriority(PRIO_PROCESS, 0, r->nice);	/* best effort */
	if (r->set_umask)
		umask(r->umask);
	if (child_fd(r->in, r->in_fd, in[0], 0, O_RDONLY) < 0 ||
	    child_fd(r->out, r->out_fd, out[1], 1, O_WRONLY) < 0 ||
	    child_fd(r->err, r->err_fd, err[1], 2, O_WRONLY) < 0)
		return STEP_SETUP;
	if (r->user && (setgroups(r->user->ngroups, r->user->groups) < 0 ||
			setgid(r->user->gid) < 0 || setuid(r->user->uid) < 0))
		return STEP_USER;
	if (r->cwd && chdir(r->cwd) < 0 && (!r->cwd_else || chdir(r->cwd_else) < 0))
		return STEP_CWD;
	/* environ, not execvpe: argv[0] is found in the command's own PATH */
	if (r->env)
		environ = (char **)r->env;
	execvp(r->argv[0], (char *const *)r->argv);
	return STEP_EXEC;
}

static int child_error(const struct run *r, const struct child_report *rep)
{
	const char *as = r->user ? " as '" : "", *name = r->user ? r->user->name : "";
	const char *q = r->user ? "'" : "";

	errno = rep->err;
	switch (rep->step) {
	case STEP_USER:
		return err_errno("run '%s'%s%s%s: switch user", r->argv[0], as, name, q);
	case STEP_CWD:
		return err_errno("run '%s'%s%s%s: enter directory '%s'", r->argv[0], as,
				 name, q, r->cwd);
	case STEP_SETUP:
		return err_errno("run '%s': set up the child", r->argv[0]);
	default:
		return err_errno("run '%s'%s%s%s", r->argv[0], as, name, q);
	}
}

int run_start(struct run *r)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int report[2] = { -1, -1 };
	size_t max = r->capture_max ? r->capture_max : RUN_CAPTURE_MAX_DEFAULT;
	pid_t pid, parent = getpid();
	struct child_report rep = { 0, 0 };
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

	if ((piped(r->in) && pipe2(in, O_CLOEXEC) < 0) ||
	    (piped(r->out) && pipe2(out, O_CLOEXEC) < 0) ||
	    (piped(r->err) && pipe2(err, O_CLOEXEC) < 0) ||
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
		rep.step = child_exec(r, parent, in, out, err);
		rep.err = errno;
		if (write(report[1], &rep, sizeof(rep)) < 0)
			_exit(127);
		_exit(127);
	}

	r->pid = pid;
	close_fd(&report[1]);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	do {
		n = read(report[0], &rep, sizeof(rep));
	} while (n < 0 && errno == EINTR);
	close_fd(&report[0]);
	if (n == sizeof(rep)) {
		int st;

		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		r->pid = -1;
		child_error(r, &rep);
		goto fail;
	}
	r->pipe_in = in[1];
	r->pipe_out = out[0];
	r->pipe_err = err[0];
	if (r->pipe_in >= 0)
		fcntl(r->pipe_in, F_SETFL, O_NONBLOCK);
	if (r->out == RUN_PIPE)
		fcntl(r->pipe_out, F_SETFL, O_NONBLOCK);
	if (r->err == RUN_PIPE)
		fcntl(r->pipe_err, F_SETFL, O_NONBLOCK);
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

void run_kill(struct run *r, int sig)
{
	if (r->pid <= 0)
		return;
	if (r->new_pgroup || r->new_session)
		kill(-r->pid, sig);
	kill(r->pid, sig);
}

/* Record how the child ended. */
static void set_status(struct run *r, int st)
{
	if (WIFEXITED(st)) {
		r->status = WEXITSTATUS(st);
	} else {
		r->signaled = true;
		r->status = 128 + WTERMSIG(st);
	}
	r->pid = -1;
}

int run_reap(struct run *r, bool wait)
{
	pid_t w;
	int st;

	if (r->pid <= 0)
		return 1;
	do {
		w = waitpid(r->pid, &st, wait ? 0 : WNOHANG);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return err_errno("wait for '%s'", r->argv[0]);
	if (w == 0)
		return 0;
	set_status(r, st);
	return 1;
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
				run_kill(r, SIGTERM);
				kill_at = now + 2000;
			}
			if (r->timed_out && kill_at && now >= kill_at) {
				run_kill(r, SIGKILL);
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
			run_kill(r, SIGKILL);
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
			set_status(r, st);
			break;
		}
		/* still running with a deadline */
		if (!r->timed_out && now_ms() >= r->deadline) {
			r->timed_out = true;
			run_kill(r, SIGTERM);
			kill_at = now_ms() + 2000;
		} else if (r->timed_out && (!kill_at || now_ms() >= kill_at)) {
			run_kill(r, SIGKILL);
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

		run_kill(r, SIGKILL);
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
