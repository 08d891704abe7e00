/* executor.h: what a component step runs against. Two implementations: the
 * guest agent (executor-agent.c) and the local machine (executor-local.c).
 * The component engine never knows which.
 *
 * All paths are absolute paths on the target. Every operation returns 0 or -1
 * with the error recorded (err_set), except exec, whose non-zero exit status
 * is a result, not an error. */
#ifndef AMIFORGE_EXECUTOR_H
#define AMIFORGE_EXECUTOR_H

#include "compat.h"
#include "buf.h"

struct executor;

/* Largest file get_file copies from a guest to this host (S3Upload stages
 * it in the host's temp directory; a hostile guest could announce any
 * size). The agent executor refuses a larger announced size before
 * receiving anything, and never accepts more bytes than announced. */
#define EXEC_GET_FILE_MAX (16ull * 1024 * 1024 * 1024)

/* Called with output chunks as they arrive (stream 1 = stdout, 2 = stderr). */
typedef void (*exec_output_fn)(int stream, const char *data, size_t len, void *opaque);

struct exec_req {
	const char *const *argv;  /* argv[0] looked up in PATH on the target */
	const char *const *env;   /* extra "K=V" entries, NULL-terminated; may be NULL */
	const char *cwd;          /* NULL: "/" (agent) or the current dir (local) */
	const char *user;         /* NULL: the executor's user (root in a guest) */
	const void *stdin_data;   /* may be NULL */
	size_t stdin_len;
	int64_t timeout_ms;       /* 0: none; on expiry the process group is killed */
	exec_output_fn on_output; /* may be NULL */
	void *opaque;
	size_t capture_max;       /* bytes of stdout/stderr kept in the result each */
	/* A script (may be NULL): the target holds it in a new file in cwd
	 * (mode 0700, a name the executor picks) while the command runs, that
	 * file's path appended to argv; the file is removed after. Needs cwd. */
	const void *script;
	size_t script_len;
};

struct exec_result {
	int status;          /* exit code, or 128 + signal */
	bool timed_out;
	struct buf out;      /* captured stdout (up to capture_max) */
	struct buf err;      /* captured stderr */
};

void exec_result_release(struct exec_result *res);

/* exec_req.script the plain way, for an executor's exec that has no better
 * one: write_file the script into cwd, exec, remove. */
int exec_script_by_file(struct executor *ex, const struct exec_req *req,
			struct exec_result *res);

struct file_stat {
	bool exists;
	mode_t mode;         /* type and permission bits, as st_mode */
	uid_t uid;
	gid_t gid;
	uint64_t size;
	int64_t mtime;
	char *link_target;   /* for symlinks (owned, freed by file_stat_release) */
};

void file_stat_release(struct file_stat *st);

/* One entry of a directory listing. */
struct dir_entry {
	char *name;
	mode_t mode;
};

struct executor_ops {
	const char *name;   /* "agent", "local" */
	int (*exec)(struct executor *ex, const struct exec_req *req, struct exec_result *res);
	/* Copy a host file to the target (mode applied; parents must exist). */
	int (*put_file)(struct executor *ex, const char *host_path, const char *path, mode_t mode);
	/* Copy a target file to the host (at most EXEC_GET_FILE_MAX bytes). */
	int (*get_file)(struct executor *ex, const char *path, const char *host_path);
	/* Write / read small contents directly (read fails past max bytes). */
	int (*write_file)(struct executor *ex, const char *path, const void *data, size_t len,
			  mode_t mode, bool append);
	int (*read_file)(struct executor *ex, const char *path, size_t max, struct buf *out);
	/* lstat; a missing path is not an error: st->exists = false. */
	int (*stat)(struct executor *ex, const char *path, struct file_stat *st);
	int (*mkdir_p)(struct executor *ex, const char *path, mode_t mode);
	/* Create a new private (0700) directory whose name starts with prefix
	 * (mkdtemp(3): never an existing one); *path set (caller frees).
	 * NULL for executors whose target is ours alone (agent: a fresh guest). */
	int (*make_temp_dir)(struct executor *ex, const char *prefix, char **path);
	/* Remove a file, or a tree when recursive. Missing is not an error. */
	int (*remove)(struct executor *ex, const char *path, bool recursive);
	int (*rename)(struct executor *ex, const char *from, const char *to);
	/* Copy a file or, when recursive, a tree (preserving modes). */
	int (*copy)(struct executor *ex, const char *from, const char *to, bool recursive);
	int (*chmod)(struct executor *ex, const char *path, mode_t mode, bool recursive);
	/* owner/group are names or numeric ids; NULL leaves that part. */
	int (*chown)(struct executor *ex, const char *path, const char *owner,
		     const char *group, bool recursive);
	int (*symlink)(struct executor *ex, const char *target, const char *path);
	/* List a directory; *entries is an array of *n (caller frees with dir_entries_free). */
	int (*list_dir)(struct executor *ex, const char *path, struct dir_entry **entries, size_t *n);
	/* Hex digest of a file: algo is "md5", "sha1", "sha256" or "sha512". */
	int (*hash_file)(struct executor *ex, const char *path, const char *algo, char **hex);
	/* Reboot the target and wait until it is back (agent re-synced).
	 * NULL for executors that cannot reboot (local). */
	int (*reboot)(struct executor *ex, int64_t timeout_ms);
	/* Write the target's file systems back (sync(2)) without running a
	 * program, within timeout_ms. NULL: run `sync` instead. */
	int (*flush)(struct executor *ex, int64_t timeout_ms);
	void (*close)(struct executor *ex);
};

struct executor {
	const struct executor_ops *ops;
	void *priv;          /* the implementation's state */
};

/* Calls into an executor go through these (one place to trace or check them);
 * reboot and make_temp_dir are NULL for executors that cannot (test the op). */
static inline int executor_exec(struct executor *ex, const struct exec_req *req,
					struct exec_result *res)
{
	return ex->ops->exec(ex, req, res);
}

static inline int executor_put_file(struct executor *ex, const char *host_path, const char *path,
					mode_t mode)
{
	return ex->ops->put_file(ex, host_path, path, mode);
}

static inline int executor_get_file(struct executor *ex, const char *path, const char *host_path)
{
	return ex->ops->get_file(ex, path, host_path);
}

static inline int executor_write_file(struct executor *ex, const char *path, const void *data,
					size_t len, mode_t mode, bool append)
{
	return ex->ops->write_file(ex, path, data, len, mode, append);
}

static inline int executor_read_file(struct executor *ex, const char *path, size_t max,
					struct buf *out)
{
	return ex->ops->read_file(ex, path, max, out);
}

static inline int executor_stat(struct executor *ex, const char *path, struct file_stat *st)
{
	return ex->ops->stat(ex, path, st);
}

static inline int executor_mkdir_p(struct executor *ex, const char *path, mode_t mode)
{
	return ex->ops->mkdir_p(ex, path, mode);
}

static inline int executor_make_temp_dir(struct executor *ex, const char *prefix, char **path)
{
	return ex->ops->make_temp_dir(ex, prefix, path);
}

static inline int executor_remove(struct executor *ex, const char *path, bool recursive)
{
	return ex->ops->remove(ex, path, recursive);
}

static inline int executor_rename(struct executor *ex, const char *from, const char *to)
{
	return ex->ops->rename(ex, from, to);
}

static inline int executor_copy(struct executor *ex, const char *from, const char *to,
					bool recursive)
{
	return ex->ops->copy(ex, from, to, recursive);
}

static inline int executor_chmod(struct executor *ex, const char *path, mode_t mode, bool recursive)
{
	return ex->ops->chmod(ex, path, mode, recursive);
}

static inline int executor_chown(struct executor *ex, const char *path, const char *owner,
					const char *group, bool recursive)
{
	return ex->ops->chown(ex, path, owner, group, recursive);
}

static inline int executor_symlink(struct executor *ex, const char *target, const char *path)
{
	return ex->ops->symlink(ex, target, path);
}

static inline int executor_list_dir(struct executor *ex, const char *path,
					struct dir_entry **entries, size_t *n)
{
	return ex->ops->list_dir(ex, path, entries, n);
}

static inline int executor_hash_file(struct executor *ex, const char *path, const char *algo,
					char **hex)
{
	return ex->ops->hash_file(ex, path, algo, hex);
}

static inline int executor_reboot(struct executor *ex, int64_t timeout_ms)
{
	return ex->ops->reboot(ex, timeout_ms);
}

/* The target's sync(2): its flush op, else `sync` run there within timeout_ms. */
int executor_flush(struct executor *ex, int64_t timeout_ms);

void dir_entries_free(struct dir_entry *entries, size_t n);

/* The local machine (like `awstoe run` on an instance). Caller frees with
 * executor_close(). */
struct executor *executor_local_new(void);

/* Close and free; accepts NULL. */
void executor_close(struct executor *ex);

#endif
