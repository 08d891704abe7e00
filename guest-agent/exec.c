/* exec.c: run a command for the host, streaming its output.
 *
 * Exchange: T_EXEC → R_OK (started) or R_ERROR; then T_STDIN frames from the
 * host (when A_STDIN), R_OUTPUT frames from the agent while the command runs,
 * and R_EXIT at the end. T_CANCEL kills the process group; T_PING is answered;
 * any other frame (a sync after a host timeout) kills the group and is
 * handled as a new request. The command leads its own session, so its whole
 * process group is killed on deadline, cancel or host disconnect. */
#include <poll.h>
#include <signal.h>

#include "agent.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "run.h"
#include "util.h"

/* Stdin the host sent that the command has not read yet. Beyond this the
 * agent stops reading the channel until the command catches up. */
#define STDIN_PENDING_MAX (16u * 1024 * 1024)
/* Between SIGTERM on deadline and SIGKILL (as run_finish()). */
#define KILL_GRACE_MS 2000
/* After the command exits, output still in flight is read for this long;
 * past it, a daemon the command started (and that kept our pipes) is not
 * waited for. */
#define EXIT_DRAIN_MS 1000
/* One read of the command's output; one R_OUTPUT frame at most. */
#define OUTPUT_READ 65536

static int sigchld_pipe[2] = { -1, -1 };

static void on_sigchld(int sig UNUSED)
{
	int saved = errno;
	char c = 0;

	if (write(sigchld_pipe[1], &c, 1) < 0) {
		/* full: a wakeup is already pending */
	}
	errno = saved;
}

static int setup_sigchld(void)
{
	struct sigaction sa;

	if (sigchld_pipe[0] >= 0)
		return 0;
	if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return err_errno("pipe");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGCHLD, &sa, NULL) < 0 ? err_errno("sigaction") : 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Is KEY (up to '=') of entry set in env? */
static bool env_has(char *const *env, size_t n, const char *entry)
{
	size_t klen = strcspn(entry, "=");

	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], entry, klen) == 0 && env[i][klen] == '=')
			return true;
	return false;
}

struct exec_args {
	struct strv argv;
	struct strv env;
	const char *cwd;
	const char *user;
	uint64_t timeout_ms;
	bool has_stdin;
};

static int parse_exec(const struct proto_frame *f, struct exec_args *a)
{
	struct proto_tlv t;
	size_t off = 0, bytes = 0;
	uint32_t b = 0;
	const char *s;
	int r;

	while ((r = proto_tlv_next(f, &off, &t)) > 0) {
		if (t.tag != PROTO_A_ARG && t.tag != PROTO_A_ENV)
			continue;
		if (proto_tlv_str(&t, &s) < 0)
			return -1;
		bytes += t.len;
		if (bytes > PROTO_EXEC_STRINGS_MAX ||
		    a->argv.n + a->env.n >= PROTO_EXEC_ITEMS_MAX)
			return err_set("exec: argv and environment too large");
		if (t.tag == PROTO_A_ENV && !strchr(s, '='))
			return err_set("exec: environment entry '%s' has no '='", s);
		strv_push(t.tag == PROTO_A_ARG ? &a->argv : &a->env, s);
	}
	if (r < 0)
		return -1;
	if (a->argv.n == 0 || a->argv.v[0][0] == '\0')
		return err_set("exec: empty argv");
	if (proto_get_str(f, PROTO_A_CWD, &a->cwd) < 0 ||
	    proto_get_str(f, PROTO_A_USER, &a->user) < 0 ||
	    proto_get_u64(f, PROTO_A_TIMEOUT, &a->timeout_ms) < 0 ||
	    proto_get_u32(f, PROTO_A_STDIN, &b) < 0)
		return -1;
	if (a->timeout_ms > INT64_MAX / 4)
		return err_set("exec: timeout out of range");
	a->has_stdin = b != 0;
	return 0;
}

/* The environment of the command: the request's entries, then defaults for
 * what they leave out. */
static void build_env(struct strv *out, const struct exec_args *a, const struct agent_user *u)
{
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char *defaults[6];
	size_t nd = 0;

	for (size_t i = 0; i < a->env.n; i++)
		strv_push(out, a->env.v[i]);
	defaults[nd++] = xasprintf("PATH=%s", path);
	defaults[nd++] = xasprintf("HOME=%s", u ? u->home : "/root");
	defaults[nd++] = xasprintf("USER=%s", u ? u->name : "root");
	defaults[nd++] = xasprintf("LOGNAME=%s", u ? u->name : "root");
	defaults[nd++] = xasprintf("SHELL=%s", u ? u->shell : "/bin/sh");
	defaults[nd++] = xstrdup("LANG=C.UTF-8");
	for (size_t i = 0; i < nd; i++) {
		if (!env_has(out->v, out->n, defaults[i]))
			strv_push(out, defaults[i]);
		free(defaults[i]);
	}
}

/* Start the command through common/run.c: its own session, the user's ids
 * and umask 022, pipes served by op_exec's loop. */
static int spawn(struct run *r, struct run_user *ru, const struct exec_args *a,
		 const struct agent_user *u, char **env)
{
	r->argv = (const char *const *)a->argv.v;
	r->env = (const char *const *)env;
	r->cwd = a->cwd ? a->cwd : u ? u->home : "/";
	r->cwd_else = a->cwd ? NULL : "/";
	if (u) {
		*ru = (struct run_user){ .name = u->name, .uid = u->uid, .gid = u->gid,
					 .groups = u->groups, .ngroups = u->ngroups };
		r->user = ru;
	}
	r->set_umask = true;
	r->umask = 022;
	r->new_session = true;
	r->in = a->has_stdin ? RUN_PIPE : RUN_NULL;
	r->out = RUN_PIPE;
	r->err = RUN_PIPE;
	return run_start(r);
}

/* Forward what the command wrote; closes the fd at EOF. */
static void forward(struct conn *c, uint32_t id, int *fd, uint8_t flags)
{
	char data[OUTPUT_READ];
	ssize_t n = read(*fd, data, sizeof(data));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close_fd(fd);
		return;
	}
	conn_send(c, PROTO_R_OUTPUT, flags, id, data, (size_t)n);
}

/* A request made ready to spawn: parsed, its user looked up, its
 * environment built. */
struct exec_request {
	struct exec_args a;
	struct agent_user user, *u;   /* u: &user, or NULL (as the agent) */
	struct strv env;
};

#define EXEC_REQUEST_INIT { .a = { .argv = STRV_INIT, .env = STRV_INIT }, .env = STRV_INIT }

static int exec_prepare(const struct proto_frame *f, struct exec_request *q)
{
	if (parse_exec(f, &q->a) < 0)
		return -1;
	if (q->a.user) {
		if (user_lookup(q->a.user, &q->user) < 0)
			return -1;
		q->u = &q->user;
	}
	build_env(&q->env, &q->a, q->u);
	return 0;
}

static void exec_request_release(struct exec_request *q)
{
	if (q->u)
		user_release(q->u);
	strv_release(&q->env);
	strv_release(&q->a.argv);
	strv_release(&q->a.env);
}

int exec_check_request(const struct proto_frame *f)
{
	struct exec_request q = EXEC_REQUEST_INIT;
	int ret = exec_prepare(f, &q);

	exec_request_release(&q);
	return ret;
}

/* A running command and what op_exec's loop knows of it. */
struct exec_run {
	struct conn *c;
	uint32_t id;
	struct run r;
	struct buf pending;         /* stdin from the host not yet written */
	size_t fed;                 /* of pending, written */
	bool stdin_eof, exited, timed_out;
	int64_t deadline, kill_at, drain_until;
};

/* How the loop ended. */
enum exec_end { EXEC_EXITED, EXEC_HOST_GONE, EXEC_INTERRUPTED };

/* Deadline: SIGTERM, then SIGKILL after the grace. True when it signalled
 * (the loop looks again); else *timeout is the wait until the next event. */
static bool exec_timers(struct exec_run *x, int *timeout)
{
	int64_t now = now_ms(), next = 0;

	if (x->exited)
		next = x->drain_until;
	else if (x->kill_at)
		next = x->kill_at;
	else if (x->deadline)
		next = x->deadline;
	*timeout = next ? (next > now ? (int)(next - now) : 0) : -1;
	if (!x->exited && x->deadline && !x->timed_out && now >= x->deadline) {
		x->timed_out = true;
		run_kill(&x->r, SIGTERM);
		x->kill_at = now + KILL_GRACE_MS;
		return true;
	}
	if (!x->exited && x->kill_at && now >= x->kill_at) {
		run_kill(&x->r, SIGKILL);
		x->kill_at = 0;
		return true;
	}
	return false;
}

/* SIGCHLD woke us: has the command exited? Its output is read a little
 * longer (EXIT_DRAIN_MS), its stdin closed. */
static void exec_reap(struct exec_run *x)
{
	char drain[64];

	while (read(sigchld_pipe[0], drain, sizeof(drain)) > 0)
		;
	if (!x->exited && run_reap(&x->r, false) == 1) {
		x->exited = true;
		x->drain_until = now_ms() + EXIT_DRAIN_MS;
		close_fd(&x->r.pipe_in);
	}
}

/* Write pending stdin; EOF from the host closes it once all is written. */
static void exec_feed(struct exec_run *x, bool writable)
{
	if (writable) {
		ssize_t w = write(x->r.pipe_in, x->pending.data + x->fed,
				  x->pending.len - x->fed);

		if (w > 0)
			x->fed += (size_t)w;
		else if (w < 0 && errno != EAGAIN && errno != EINTR)
			close_fd(&x->r.pipe_in);   /* the command closed its stdin */
		if (x->fed == x->pending.len) {
			buf_reset(&x->pending);
			x->fed = 0;
		}
	}
	if (x->r.pipe_in >= 0 && x->stdin_eof && x->fed == x->pending.len)
		close_fd(&x->r.pipe_in);
}

/* One frame from the host while the command runs: stdin, cancel, ping;
 * anything else is a new request (kept for the main loop). 0 to go on,
 * else how the loop ends. */
static int exec_host_frame(struct exec_run *x)
{
	struct proto_frame g;
	int got = conn_recv(x->c, &g, 0);

	if (got <= 0)
		return got < 0 ? EXEC_HOST_GONE : 0;
	if (g.type == PROTO_T_STDIN && g.id == x->id) {
		if (x->r.pipe_in >= 0 && buf_add(&x->pending, g.payload, g.len) < 0) {
			buf_init(&x->pending, STDIN_PENDING_MAX);
			x->fed = 0;
			close_fd(&x->r.pipe_in);
		}
		if (g.flags & PROTO_F_EOF)
			x->stdin_eof = true;
	} else if (g.type == PROTO_T_CANCEL && g.id == x->id) {
		run_kill(&x->r, SIGKILL);
	} else if (g.type == PROTO_T_PING) {
		conn_send(x->c, PROTO_R_PONG, 0, g.id, NULL, 0);
	} else if (g.type == PROTO_T_STDIN || g.type == PROTO_T_CANCEL) {
		/* for an earlier request: ignore */
	} else {
		conn_push_back(x->c, &g);
		return EXEC_INTERRUPTED;
	}
	return 0;
}

/* Serve the command until it has exited and its output is forwarded, or
 * the host goes away or moves on. */
static enum exec_end exec_serve(struct exec_run *x)
{
	struct conn *c = x->c;

	while (!x->exited ||
	       ((x->r.pipe_out >= 0 || x->r.pipe_err >= 0) && now_ms() < x->drain_until)) {
		struct pollfd p[5];
		int np = 0, timeout, i_out = -1, i_err = -1, i_in = -1, i_c = -1, i_s, end;

		if (exec_timers(x, &timeout))
			continue;
		i_s = np;
		p[np++] = (struct pollfd){ .fd = sigchld_pipe[0], .events = POLLIN };
		if (x->r.pipe_out >= 0) {
			i_out = np;
			p[np++] = (struct pollfd){ .fd = x->r.pipe_out, .events = POLLIN };
		}
		if (x->r.pipe_err >= 0) {
			i_err = np;
			p[np++] = (struct pollfd){ .fd = x->r.pipe_err, .events = POLLIN };
		}
		if (x->r.pipe_in >= 0 && x->fed < x->pending.len) {
			i_in = np;
			p[np++] = (struct pollfd){ .fd = x->r.pipe_in, .events = POLLOUT };
		}
		if (!x->exited && x->pending.len - x->fed < STDIN_PENDING_MAX / 2) {
			i_c = np;
			p[np++] = (struct pollfd){ .fd = c->rfd, .events = POLLIN };
		}
		if (proto_in_ready(&c->in) && i_c >= 0)
			timeout = 0;
		if (poll(p, (nfds_t)np, timeout) < 0 && errno != EINTR) {
			err_errno("poll");
			return EXEC_HOST_GONE;
		}
		if (p[i_s].revents)
			exec_reap(x);
		if (i_out >= 0 && p[i_out].revents)
			forward(c, x->id, &x->r.pipe_out, 0);
		if (i_err >= 0 && p[i_err].revents)
			forward(c, x->id, &x->r.pipe_err, PROTO_F_STDERR);
		if (x->r.pipe_in >= 0)
			exec_feed(x, i_in >= 0 && p[i_in].revents);
		if (c->dead)
			return EXEC_HOST_GONE;
		if (i_c >= 0 && (p[i_c].revents || proto_in_ready(&c->in)) &&
		    (end = exec_host_frame(x)) != 0)
			return (enum exec_end)end;
	}
	return EXEC_EXITED;
}

static void exec_send_exit(struct exec_run *x)
{
	struct proto_msg m;

	proto_msg_init(&m, PROTO_R_EXIT, 0, x->id);
	proto_msg_u32(&m, PROTO_A_STATUS, (uint32_t)x->r.status);
	proto_msg_u32(&m, PROTO_A_SIGNALED, x->r.signaled);
	proto_msg_u32(&m, PROTO_A_TIMED_OUT, x->timed_out);
	conn_send_msg(x->c, &m);
	proto_msg_release(&m);
}

/* prepare (parse, user, environment) → spawn → R_OK → serve → R_EXIT, or kill the
 * whole group when the host went away or moved on. */
int op_exec(struct conn *c, const struct proto_frame *f)
{
	struct exec_request q = EXEC_REQUEST_INIT;
	struct run_user ru;
	struct exec_run x = { .c = c, .id = f->id, .r = RUN_INIT,
			      .pending = BUF_INIT(STDIN_PENDING_MAX) };
	enum exec_end end = EXEC_HOST_GONE;
	int ret = -1;

	if (setup_sigchld() < 0 || exec_prepare(f, &q) < 0 ||
	    spawn(&x.r, &ru, &q.a, q.u, q.env.v) < 0)
		goto cleanup;
	ret = 1;
	if (conn_send(c, PROTO_R_OK, 0, x.id, NULL, 0) == 0) {
		if (q.a.timeout_ms)
			x.deadline = now_ms() + (int64_t)q.a.timeout_ms;
		end = exec_serve(&x);
	}
	if (end == EXEC_EXITED) {
		exec_send_exit(&x);
		goto cleanup;
	}
	/* The host went away or moved on: nothing of this command survives. */
	if (!x.exited) {
		run_kill(&x.r, SIGKILL);
		run_reap(&x.r, true);
	}
	log_info("exec '%s' %s", q.a.argv.v[0],
		 end == EXEC_INTERRUPTED ? "interrupted by a new request" : "abandoned: host gone");
cleanup:
	run_release(&x.r);
	buf_release(&x.pending);
	exec_request_release(&q);
	return ret;
}
