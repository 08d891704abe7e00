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
#include <sys/stat.h>
#include <sys/utsname.h>

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
/* A shell started ahead (below) older than this is not used: what it read
 * at its start (the host name, say) may have changed since. */
#define WARM_MAX_AGE_MS 10000
/* A claim waits this long for the shell started ahead to reach its FIFO. */
#define WARM_OPEN_MS 5000
/* Names tried for a script file before giving up. */
#define SCRIPT_NAME_TRIES 100

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
	const void *script;         /* A_SCRIPT: held in a file in cwd for the run */
	size_t script_len;
	bool has_script;
};

static int parse_exec(const struct proto_frame *f, struct exec_args *a)
{
	struct proto_tlv t;
	size_t off = 0, bytes = 0;
	uint32_t b = 0;
	const char *s;
	int r;

	while ((r = proto_tlv_next(f, &off, &t)) > 0) {
		if (t.tag == PROTO_A_SCRIPT) {
			bytes += t.len;
			a->script = t.val;
			a->script_len = t.len;
			a->has_script = true;
			if (bytes > PROTO_EXEC_STRINGS_MAX)
				return err_set("exec: script, argv and environment too large");
			continue;
		}
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
	if (a->has_script && (!a->cwd || a->cwd[0] != '/'))
		return err_set("exec: a script needs an absolute directory");
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
	size_t argc;                  /* the request's argv (a.argv may get the script) */
	struct agent_user user, *u;   /* u: &user, or NULL (as the agent) */
	struct strv env;
};

#define EXEC_REQUEST_INIT { .a = { .argv = STRV_INIT, .env = STRV_INIT }, .env = STRV_INIT }

static int exec_prepare(const struct proto_frame *f, struct exec_request *q)
{
	if (parse_exec(f, &q->a) < 0)
		return -1;
	q->argc = q->a.argv.n;
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

/* --- scripts, and the shell started ahead of the next one ---------------
 *
 * A request with A_SCRIPT runs argv plus a new file in cwd holding the
 * script ("step-N.sh", 0700), removed once the command has exited.
 * ExecuteBash sends one per step, and under emulation bash's own start
 * (exec, the dynamic loader, its init) is most of a trivial step. So when
 * a script starts under bash, the agent starts bash for the next scripts
 * beside it (WARM_POOL of them): same argv, environment, directory and
 * user, each with a next script's path as its argument before that file
 * exists. bash reads
 * $BASH_ENV before its script, and $BASH_ENV names a FIFO: it blocks there.
 * The next request that matches claims it (warm_claim): once bash is known
 * to hold the FIFO, the script is written at that path and "unset BASH_ENV;
 * SECONDS=0; : ARGV0" goes through the FIFO. That leaves bash as a fresh
 * one finds itself when it opens its script (environment, $SECONDS, $_),
 * and the script is read as any script file ($0, $LINENO, `return` at top
 * level). What else bash took at its start is checked at the claim (warm_
 * stale): the host name, the files it mapped (bash, its libraries, the
 * locale: an upgrade replaces them), /etc/ld.so.preload. Any other exec
 * or a power-off stops it; so does an age past WARM_MAX_AGE_MS. */
struct warm {
	struct run r;
	struct strv argv, env;      /* r.argv points into argv */
	struct buf key;             /* warm_key() of the request it fits */
	char *cwd, *dir, *fifo;     /* dir: private, holds the FIFO */
	char *path;                 /* the script path bash will open */
	dev_t cwd_dev;
	ino_t cwd_ino;
	int64_t born;
	char node[65];              /* uname's host name at its start */
	struct stat preload;        /* /etc/ld.so.preload then (st_ino 0: none) */
};

/* Shells started ahead, oldest first: two, so that back-to-back steps find
 * one started while the one before it ran. */
#define WARM_POOL 2
static struct warm pool[WARM_POOL];
static size_t npool;
static bool warm_off;               /* one died unasked: bash is not what we think */
static unsigned script_seq;

static char *script_next_path(const char *cwd)
{
	return xasprintf("%s/step-%u.sh", cwd, ++script_seq);
}

/* A new file at path (never an existing one) holding the script. 0, or -1
 * with errno set and nothing left behind. */
static int script_write(const char *path, const struct exec_args *a)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700), e;

	if (fd < 0)
		return -1;
	if (write_all(fd, a->script, a->script_len) == 0 && fchmod(fd, 0700) == 0 &&
	    close(fd) == 0)
		return 0;
	e = errno;
	close(fd);
	unlink(path);
	errno = e;
	return -1;
}

/* The script's file for a command started now: *path set (caller frees). */
static int script_create(const struct exec_args *a, char **path)
{
	for (int i = 0; i < SCRIPT_NAME_TRIES; i++) {
		*path = script_next_path(a->cwd);
		if (script_write(*path, a) == 0)
			return 0;
		if (errno != EEXIST)
			break;
		free(*path);
		*path = NULL;
	}
	if (!*path)
		return err_set("exec: no free script name in '%s'", a->cwd);
	err_errno("exec: write the script '%s'", *path);
	free(*path);
	*path = NULL;
	return -1;
}

/* Can a shell started ahead stand in for this request? bash alone before
 * the script, named in plain characters (they go into ": ARGV0"), no
 * stdin, and nothing in the environment that changes how bash starts or
 * what $_ is at the start. */
static bool warm_eligible(const struct exec_request *q)
{
	static const char *const keys[] = { "BASH_ENV=", "ENV=", "SHELLOPTS=", "BASHOPTS=",
					    "POSIXLY_CORRECT=", "_=" };
	const char *a0, *base;

	if (warm_off || !q->a.has_script || q->a.has_stdin || q->argc != 1)
		return false;
	a0 = q->a.argv.v[0];
	base = strrchr(a0, '/') ? strrchr(a0, '/') + 1 : a0;
	if (strcmp(base, "bash") != 0 || strspn(a0, "/abcdefghijklmnopqrstuvwxyz") != strlen(a0))
		return false;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (env_has(q->env.v, q->env.n, keys[i]))
			return false;
	return true;
}

/* What a request must match to claim the shell: argv (without the script),
 * environment, directory, user. */
static void warm_key(const struct exec_request *q, struct buf *k)
{
	buf_init(k, 2 * PROTO_MAX_PAYLOAD);
	for (size_t i = 0; i < q->argc; i++)
		buf_add(k, q->a.argv.v[i], strlen(q->a.argv.v[i]) + 1);
	buf_addc(k, '\n');
	for (size_t i = 0; i < q->env.n; i++)
		buf_add(k, q->env.v[i], strlen(q->env.v[i]) + 1);
	buf_addc(k, '\n');
	buf_add(k, q->a.cwd, strlen(q->a.cwd) + 1);
	if (q->u) {
		buf_printf(k, "%u:%u:", (unsigned)q->u->uid, (unsigned)q->u->gid);
		for (size_t i = 0; i < q->u->ngroups; i++)
			buf_printf(k, "%u,", (unsigned)q->u->groups[i]);
	}
}

static void warm_free(struct warm *w)
{
	run_kill(&w->r, SIGKILL);
	run_reap(&w->r, true);
	run_release(&w->r);
	if (w->fifo)
		unlink(w->fifo);
	if (w->dir)
		rmdir(w->dir);
	strv_release(&w->argv);
	strv_release(&w->env);
	buf_release(&w->key);
	free(w->cwd);
	free(w->dir);
	free(w->fifo);
	free(w->path);
	memset(w, 0, sizeof(*w));
}

void exec_warm_stop(void)
{
	while (npool)
		warm_free(&pool[--npool]);
}

static void preload_stat(struct stat *st)
{
	if (stat("/etc/ld.so.preload", st) < 0)
		memset(st, 0, sizeof(*st));
}

/* Has anything bash took at its start changed since (see above)? */
static bool warm_stale(const struct warm *w)
{
	char *maps = xasprintf("/proc/%d/maps", (int)w->r.pid);
	struct buf b = BUF_INIT(1024 * 1024);
	struct utsname u;
	struct stat st;
	bool stale;

	preload_stat(&st);
	stale = uname(&u) < 0 || strcmp(u.nodename, w->node) != 0 ||
		st.st_ino != w->preload.st_ino || st.st_dev != w->preload.st_dev ||
		st.st_size != w->preload.st_size ||
		st.st_mtim.tv_sec != w->preload.st_mtim.tv_sec ||
		st.st_mtim.tv_nsec != w->preload.st_mtim.tv_nsec ||
		buf_read_file(&b, maps) < 0 || !b.data || strstr(b.data, " (deleted)\n");
	if (stale)
		log_debug("shell ahead: stale (%s)", b.data ? "changed since its start" : err_msg());
	buf_release(&b);
	free(maps);
	return stale;
}

/* One bash for a next script like q's, waiting on its FIFO. 0 or -1. */
static int warm_spawn(struct warm *w, const struct exec_request *q)
{
	const char *tmp = access("/run", W_OK) == 0 ? "/run" : "/tmp";
	struct run_user ru;
	struct stat st;

	if (stat(q->a.cwd, &st) < 0)
		return -1;
	w->r = (struct run)RUN_INIT;
	w->cwd = xstrdup(q->a.cwd);
	w->dir = xasprintf("%s/amiforge-warm-XXXXXX", tmp);
	if (!mkdtemp(w->dir)) {
		log_debug("shell ahead: %s: %s", w->dir, strerror(errno));
		goto fail;
	}
	w->fifo = xasprintf("%s/env", w->dir);
	if (mkfifo(w->fifo, 0600) < 0) {
		log_debug("shell ahead: mkfifo: %s", strerror(errno));
		goto fail;
	}
	w->path = script_next_path(q->a.cwd);
	strv_push(&w->argv, q->a.argv.v[0]);
	strv_push(&w->argv, w->path);
	for (size_t i = 0; i < q->env.n; i++)
		strv_push(&w->env, q->env.v[i]);
	strv_pushf(&w->env, "BASH_ENV=%s", w->fifo);
	warm_key(q, &w->key);
	w->cwd_dev = st.st_dev;
	w->cwd_ino = st.st_ino;
	{
		struct utsname u;

		if (uname(&u) < 0)
			goto fail;
		snprintf(w->node, sizeof(w->node), "%s", u.nodename);
	}
	preload_stat(&w->preload);
	w->r.argv = (const char *const *)w->argv.v;
	w->r.env = (const char *const *)w->env.v;
	w->r.cwd = w->cwd;
	if (q->u) {
		ru = (struct run_user){ .name = q->u->name, .uid = q->u->uid, .gid = q->u->gid,
					.groups = q->u->groups, .ngroups = q->u->ngroups };
		w->r.user = &ru;
	}
	w->r.set_umask = true;
	w->r.umask = 022;
	w->r.new_session = true;
	w->r.die_with_parent = true;
	w->r.in = RUN_NULL;
	w->r.out = RUN_PIPE;
	w->r.err = RUN_PIPE;
	if (run_start(&w->r) < 0) {
		log_debug("shell ahead: %s", err_msg());
		goto fail;
	}
	w->r.user = NULL;
	w->born = now_ms();
	return 0;
fail:
	warm_free(w);
	return -1;
}

/* Beside q's script: the pool filled for the scripts after it. Best
 * effort: what fails here only means a script starts cold. */
static void warm_start(const struct exec_request *q)
{
	if (!warm_eligible(q))
		return;
	while (npool < WARM_POOL && warm_spawn(&pool[npool], q) == 0)
		npool++;
}

/* Claim the shell started ahead for q: 0 with *r its run and *path its
 * script (written; caller frees), or 1 when it does not fit (stopped:
 * start one cold). */
static int warm_claim(struct exec_request *q, struct run *r, char **path)
{
	struct buf key = BUF_INIT(2 * PROTO_MAX_PAYLOAD), msg = BUF_INIT(PROTO_STR_MAX);
	int64_t until = now_ms() + WARM_OPEN_MS;
	bool written = false;
	struct stat st;
	struct warm *w = &pool[0];
	int fd = -1, ret = 1;

	if (!npool)
		return 1;
	if (run_reap(&w->r, false) != 0) {
		log_info("the shell started ahead exited by itself (status %d): scripts start "
			 "cold from now on", w->r.status);
		warm_off = true;
		goto cleanup;
	}
	if (!warm_eligible(q))
		goto cleanup;
	warm_key(q, &key);
	if (key.len != w->key.len || memcmp(key.data, w->key.data, key.len) != 0 ||
	    stat(q->a.cwd, &st) < 0 || st.st_dev != w->cwd_dev || st.st_ino != w->cwd_ino ||
	    now_ms() - w->born > WARM_MAX_AGE_MS || warm_stale(w))
		goto cleanup;
	/* bash holds the FIFO once it is blocked reading $BASH_ENV, before it
	 * looks at its script: only then is the script written. */
	while ((fd = open(w->fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0 && errno == ENXIO &&
	       now_ms() < until && run_reap(&w->r, false) == 0)
		poll(NULL, 0, 2);
	if (fd < 0 || script_write(w->path, &q->a) < 0)
		goto cleanup;
	written = true;
	buf_printf(&msg, "unset BASH_ENV; SECONDS=0; : %s\n", w->argv.v[0]);
	if (write(fd, msg.data, msg.len) != (ssize_t)msg.len)
		goto cleanup;
	*r = w->r;
	r->env = NULL;
	r->cwd = NULL;
	strv_push(&q->a.argv, w->path);
	r->argv = (const char *const *)q->a.argv.v;
	*path = xstrdup(w->path);
	w->r = (struct run)RUN_INIT;        /* now the caller's */
	warm_free(w);
	memmove(&pool[0], &pool[1], (npool - 1) * sizeof(pool[0]));
	memset(&pool[--npool], 0, sizeof(pool[0]));
	ret = 0;
cleanup:
	if (ret != 0 && written) {
		/* dead before its FIFO closes: it never reads the script */
		run_kill(&w->r, SIGKILL);
		run_reap(&w->r, true);
		unlink(w->path);
	}
	if (ret != 0)
		exec_warm_stop();
	if (fd >= 0)
		close(fd);
	buf_release(&key);
	buf_release(&msg);
	return ret;
}

/* prepare (parse, user, environment) → spawn (or claim the shell started
 * ahead) → R_OK → serve → R_EXIT, or kill the whole group when the host went
 * away or moved on. */
int op_exec(struct conn *c, const struct proto_frame *f)
{
	struct exec_request q = EXEC_REQUEST_INIT;
	struct run_user ru;
	struct exec_run x = { .c = c, .id = f->id, .r = RUN_INIT,
			      .pending = BUF_INIT(STDIN_PENDING_MAX) };
	enum exec_end end = EXEC_HOST_GONE;
	char *script = NULL;
	int ret = -1;

	if (setup_sigchld() < 0 || exec_prepare(f, &q) < 0) {
		exec_warm_stop();
		goto cleanup;
	}
	if (!q.a.has_script || warm_claim(&q, &x.r, &script) != 0) {
		exec_warm_stop();
		if (q.a.has_script) {
			if (script_create(&q.a, &script) < 0)
				goto cleanup;
			strv_push(&q.a.argv, script);
		}
		if (spawn(&x.r, &ru, &q.a, q.u, q.env.v) < 0)
			goto cleanup;
	}
	ret = 1;
	if (conn_send(c, PROTO_R_OK, 0, x.id, NULL, 0) == 0) {
		if (q.a.timeout_ms)
			x.deadline = now_ms() + (int64_t)q.a.timeout_ms;
		warm_start(&q);
		end = exec_serve(&x);
	}
	if (end == EXEC_EXITED) {
		if (script) {
			unlink(script);
			free(script);
			script = NULL;
		}
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
	if (script)
		unlink(script);
	free(script);
	run_release(&x.r);
	buf_release(&x.pending);
	exec_request_release(&q);
	return ret;
}
