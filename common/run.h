/* run.h: the one way amiforge and its guest agent run programs (after git's
 * run-command and libvirt's virCommand). An argv vector and an optional env
 * vector, explicit rules for each standard fd, a deadline, the exit status and
 * captured output with a ceiling. Never a shell string. What the child could
 * not do before exec (a directory, a user, exec itself) comes back through a
 * pipe as run_start()'s error.
 *
 *	struct run r = RUN_INIT;
 *	const char *argv[] = { "qemu-img", "info", "--output=json", path, NULL };
 *	r.argv = argv;
 *	r.out = RUN_CAPTURE;
 *	if (run_sync(&r) < 0 || run_check(&r) < 0) ...   // error recorded
 *	use(r.out_buf.data);
 *	run_release(&r);
 *
 * A caller that streams (the guest agent's exec) asks for RUN_PIPE, serves
 * pipe_in/pipe_out/pipe_err in its own poll loop and uses run_reap() and
 * run_kill() instead of run_finish().
 */
#ifndef AMIFORGE_RUN_H
#define AMIFORGE_RUN_H

#include "compat.h"
#include "buf.h"

enum run_fd_mode {
	RUN_NULL = 0,   /* /dev/null (the default for every fd) */
	RUN_INHERIT,    /* the parent's fd */
	RUN_CAPTURE,    /* stdout/stderr: into out_buf/err_buf; stdin: fed from in_data */
	RUN_FD,         /* the fd given in in_fd/out_fd/err_fd */
	RUN_PIPE,       /* a pipe whose end (pipe_in/pipe_out/pipe_err, non-blocking)
			   the caller serves itself; not with run_finish() */
};

/* Whom the child runs as (the caller must be root). */
struct run_user {
	const char *name;          /* for messages */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;       /* supplementary groups (setgroups) */
	size_t ngroups;
};

/* Default ceiling for captured stdout and stderr, each. */
#define RUN_CAPTURE_MAX_DEFAULT (16u * 1024 * 1024)

struct run {
	/* inputs */
	const char *const *argv;   /* argv[0] is looked up in PATH */
	const char *const *env;    /* NULL: inherit the environment; else the
				      whole environment, PATH for argv[0] too */
	const char *cwd;           /* NULL: inherit */
	const char *cwd_else;      /* when cwd cannot be entered: this one (NULL:
				      an error) */
	const struct run_user *user; /* NULL: as we are */
	bool set_umask;            /* the child's umask is `umask` */
	mode_t umask;
	enum run_fd_mode in, out, err;
	int in_fd, out_fd, err_fd; /* with RUN_FD */
	const void *in_data;       /* with in == RUN_CAPTURE */
	size_t in_len;
	size_t capture_max;        /* 0: RUN_CAPTURE_MAX_DEFAULT */
	int64_t timeout_ms;        /* 0: none; then SIGTERM, 2 s later SIGKILL */
	bool new_pgroup;           /* child leads its own process group */
	bool new_session;          /* child leads its own session (setsid), so
				      its process group too */
	bool die_with_parent;      /* SIGKILL when the parent dies (PR_SET_PDEATHSIG),
				      for children that must never outlive us */
	int nice;                  /* > 0: the child runs that much nicer
				      (setpriority; work beside a critical path) */

	/* results, valid after run_finish() */
	pid_t pid;
	int status;                /* exit code, or 128 + signal number */
	bool signaled;
	bool timed_out;
	bool truncated;            /* captured output hit capture_max (rest dropped) */
	struct buf out_buf, err_buf;

	/* private */
	int pipe_in, pipe_out, pipe_err;
	int64_t deadline;
};

#define RUN_INIT { .in_fd = -1, .out_fd = -1, .err_fd = -1, \
		   .pipe_in = -1, .pipe_out = -1, .pipe_err = -1 }

/* Start the program. 0 or -1 (error recorded; nothing left running). */
int run_start(struct run *r);

/* Feed stdin, collect output, wait for exit or deadline. Returns 0 when the
 * program ran to an exit status (which may be non-zero), -1 on failure to
 * wait or on timeout (error recorded, process group killed). */
int run_finish(struct run *r);

/* run_start() then run_finish(). */
int run_sync(struct run *r);

/* For RUN_PIPE callers. Without blocking (wait false) or until it exits:
 * 1 when the child exited (status and signaled set, pid -1), 0 when it still
 * runs, -1 on failure to wait (error recorded). */
int run_reap(struct run *r, bool wait);

/* Signal the child, and its process group with new_pgroup/new_session. */
void run_kill(struct run *r, int sig);

/* -1 with "'argv0' exited with status N: <last stderr line>" unless the
 * status is 0. */
int run_check(const struct run *r);

/* Free captured output; the struct can be reused after RUN_INIT again. */
void run_release(struct run *r);

/* Dry-run mode (for tests, as libvirt's virCommandSetDryRun): while a hook is
 * set, run_start() calls it with the argv instead of running anything and the
 * program "exits" 0 with empty output. NULL turns it off. */
typedef void (*run_dry_hook)(const char *const *argv, void *opaque);
void run_set_dry_run(run_dry_hook hook, void *opaque);

/* Render argv as one line for logs: words quoted where needed. Caller frees. */
char *run_argv_str(const char *const *argv);

#endif
