/* executor-local.c: the executor for the local machine, as `awstoe run` on an
 * instance. Commands run through common/run.h; files are plain syscalls. It
 * cannot reboot (ops->reboot is NULL). */
#include <dirent.h>
#include <grp.h>
#include <openssl/evp.h>
#include <pwd.h>

#include "executor.h"
#include "buf.h"
#include "error.h"
#include "run.h"
#include "util.h"

extern char **environ;

/* Largest number of entries listed from one directory. */
#define LOCAL_DIR_MAX 1000000

static int local_exec(struct executor *ex, const struct exec_req *req,
		      struct exec_result *res)
{
	struct run r = RUN_INIT;
	struct strv env = STRV_INIT;
	size_t i;
	int ret = -1;

	if (req->script)
		return exec_script_by_file(ex, req, res);
	memset(res, 0, sizeof(*res));
	buf_init(&res->out, req->capture_max ? req->capture_max : RUN_CAPTURE_MAX_DEFAULT);
	buf_init(&res->err, req->capture_max ? req->capture_max : RUN_CAPTURE_MAX_DEFAULT);
	if (req->user) {
		struct passwd *pw = getpwnam(req->user);
		if (!pw || pw->pw_uid != geteuid())
			return err_set("run '%s' as '%s': the local executor runs commands as "
				       "the current user only", req->argv[0], req->user);
	}
	if (req->env) {
		for (i = 0; environ[i]; i++)
			strv_push(&env, environ[i]);
		for (i = 0; req->env[i]; i++)
			strv_push(&env, req->env[i]);
		r.env = (const char *const *)env.v;
	}
	r.argv = req->argv;
	r.cwd = req->cwd;
	r.out = RUN_CAPTURE;
	r.err = RUN_CAPTURE;
	r.new_pgroup = true;
	r.timeout_ms = req->timeout_ms;
	r.capture_max = req->capture_max;
	if (req->stdin_data) {
		r.in = RUN_CAPTURE;
		r.in_data = req->stdin_data;
		r.in_len = req->stdin_len;
	}
	if (run_start(&r) < 0)
		goto cleanup;
	if (run_finish(&r) < 0 && !r.timed_out)
		goto cleanup;
	err_clear();
	res->status = r.status;
	res->timed_out = r.timed_out;
	if (req->on_output) {
		if (r.out_buf.len)
			req->on_output(1, r.out_buf.data, r.out_buf.len, req->opaque);
		if (r.err_buf.len)
			req->on_output(2, r.err_buf.data, r.err_buf.len, req->opaque);
	}
	buf_release(&res->out);
	buf_release(&res->err);
	res->out = r.out_buf;
	res->err = r.err_buf;
	memset(&r.out_buf, 0, sizeof(r.out_buf));
	memset(&r.err_buf, 0, sizeof(r.err_buf));
	ret = 0;
cleanup:
	run_release(&r);
	strv_release(&env);
	return ret;
}

static int copy_fd(int in, int out, const char *from, const char *to)
{
	char b[65536];
	ssize_t n;

	while ((n = read(in, b, sizeof(b))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_errno("read '%s'", from);
		}
		if (write_all(out, b, (size_t)n) < 0)
			return err_errno("write '%s'", to);
	}
	return 0;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	int in, out, r;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return err_errno("open '%s'", from);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 07777);
	if (out < 0) {
		r = err_errno("create '%s'", to);
		close(in);
		return r;
	}
	r = copy_fd(in, out, from, to);
	close(in);
	if (r == 0 && fchmod(out, mode & 07777) < 0)
		r = err_errno("chmod '%s'", to);
	if (close(out) < 0 && r == 0)
		r = err_errno("close '%s'", to);
	return r;
}

static int local_put_file(struct executor *ex UNUSED, const char *host_path, const char *path,
			  mode_t mode)
{
	return copy_file(host_path, path, mode);
}

static int local_get_file(struct executor *ex UNUSED, const char *path, const char *host_path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return err_errno("stat '%s'", path);
	return copy_file(path, host_path, st.st_mode);
}

static int local_write_file(struct executor *ex UNUSED, const char *path, const void *data,
			    size_t len, mode_t mode, bool append)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
		      mode & 07777);
	int r = 0;

	if (fd < 0)
		return err_errno("open '%s'", path);
	if (write_all(fd, data, len) < 0)
		r = err_errno("write '%s'", path);
	if (close(fd) < 0 && r == 0)
		r = err_errno("close '%s'", path);
	return r;
}

static int local_read_file(struct executor *ex UNUSED, const char *path, size_t max,
			   struct buf *out)
{
	buf_release(out);
	buf_init(out, max);
	if (buf_read_file(out, path) < 0)
		return -1;
	if (!out->data)
		buf_adds(out, "");
	return 0;
}

static int local_stat(struct executor *ex UNUSED, const char *path, struct file_stat *fs)
{
	struct stat st;

	memset(fs, 0, sizeof(*fs));
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return err_errno("stat '%s'", path);
	}
	fs->exists = true;
	fs->mode = st.st_mode;
	fs->uid = st.st_uid;
	fs->gid = st.st_gid;
	fs->size = (uint64_t)st.st_size;
	fs->mtime = st.st_mtime;
	if (S_ISLNK(st.st_mode)) {
		char b[PATH_MAX];
		ssize_t n = readlink(path, b, sizeof(b) - 1);
		if (n >= 0)
			fs->link_target = xstrndup(b, (size_t)n);
	}
	return 0;
}

static int local_mkdir_p(struct executor *ex UNUSED, const char *path, mode_t mode)
{
	return mkdir_p(path, mode);
}

/* On this host other users share /tmp: a predictable name could be planted
 * (a symlink, a directory of theirs) before we create it. */
static int local_make_temp_dir(struct executor *ex UNUSED, const char *prefix, char **path)
{
	char *p = xasprintf("%s-", prefix);

	*path = make_temp_dir(p, "/tmp");
	free(p);
	return *path ? 0 : -1;
}

static int local_remove(struct executor *ex UNUSED, const char *path, bool recursive)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_errno("stat '%s'", path);
	if (S_ISDIR(st.st_mode)) {
		if (recursive)
			return remove_tree(path);
		if (rmdir(path) < 0)
			return err_errno("remove '%s'", path);
		return 0;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return err_errno("remove '%s'", path);
	return 0;
}

static int local_rename(struct executor *ex, const char *from, const char *to)
{
	if (rename(from, to) == 0)
		return 0;
	if (errno != EXDEV)
		return err_errno("move '%s' to '%s'", from, to);
	/* another filesystem: copy, then remove */
	if (executor_copy(ex, from, to, true) < 0)
		return -1;
	return local_remove(ex, from, true);
}

static int copy_tree(const char *from, const char *to)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (lstat(from, &st) < 0)
		return err_errno("stat '%s'", from);
	if (S_ISLNK(st.st_mode)) {
		char b[PATH_MAX];
		ssize_t n = readlink(from, b, sizeof(b) - 1);
		if (n < 0)
			return err_errno("readlink '%s'", from);
		b[n] = '\0';
		unlink(to);
		if (symlink(b, to) < 0)
			return err_errno("symlink '%s'", to);
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return copy_file(from, to, st.st_mode);
	if (mkdir(to, st.st_mode & 07777) < 0 && errno != EEXIST)
		return err_errno("mkdir '%s'", to);
	if (!(d = opendir(from)))
		return err_errno("open '%s'", from);
	while (r == 0 && (e = readdir(d))) {
		char *a, *b;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		a = xasprintf("%s/%s", from, e->d_name);
		b = xasprintf("%s/%s", to, e->d_name);
		r = copy_tree(a, b);
		free(a);
		free(b);
	}
	closedir(d);
	if (r == 0 && chmod(to, st.st_mode & 07777) < 0)
		r = err_errno("chmod '%s'", to);
	return r;
}

static int local_copy(struct executor *ex UNUSED, const char *from, const char *to,
		      bool recursive)
{
	struct stat st;

	if (stat(from, &st) < 0)
		return err_errno("stat '%s'", from);
	if (S_ISDIR(st.st_mode) && !recursive)
		return err_set("copy '%s': is a directory", from);
	return copy_tree(from, to);
}

static int walk(const char *path, int (*fn)(const char *p, void *o), void *o)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int r;

	if ((r = fn(path, o)) < 0)
		return -1;
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	if (!(d = opendir(path)))
		return err_errno("open '%s'", path);
	while (r == 0 && (e = readdir(d))) {
		char *c;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		c = xasprintf("%s/%s", path, e->d_name);
		r = walk(c, fn, o);
		free(c);
	}
	closedir(d);
	return r;
}

static int chmod_one(const char *p, void *o)
{
	struct stat st;

	if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode))
		return 0;
	if (chmod(p, *(mode_t *)o) < 0)
		return err_errno("chmod '%s'", p);
	return 0;
}

static int local_chmod(struct executor *ex UNUSED, const char *path, mode_t mode, bool recursive)
{
	if (!recursive)
		return chmod_one(path, &mode);
	return walk(path, chmod_one, &mode);
}

struct owner {
	uid_t uid;
	gid_t gid;
};

static int chown_one(const char *p, void *o)
{
	struct owner *ow = o;

	if (lchown(p, ow->uid, ow->gid) < 0)
		return err_errno("chown '%s'", p);
	return 0;
}

static int resolve_ids(const char *owner, const char *group, struct owner *ow)
{
	uint64_t v;

	ow->uid = (uid_t)-1;
	ow->gid = (gid_t)-1;
	if (owner) {
		struct passwd *pw = getpwnam(owner);
		if (pw)
			ow->uid = pw->pw_uid;
		else if (parse_u64(owner, UINT32_MAX - 1, &v) == 0)
			ow->uid = (uid_t)v;
		else
			return err_set("unknown user '%s'", owner);
	}
	if (group) {
		struct group *gr = getgrnam(group);
		if (gr)
			ow->gid = gr->gr_gid;
		else if (parse_u64(group, UINT32_MAX - 1, &v) == 0)
			ow->gid = (gid_t)v;
		else
			return err_set("unknown group '%s'", group);
	}
	err_clear();
	return 0;
}

static int local_chown(struct executor *ex UNUSED, const char *path, const char *owner,
		       const char *group, bool recursive)
{
	struct owner ow;

	if (resolve_ids(owner, group, &ow) < 0)
		return -1;
	if (!recursive)
		return chown_one(path, &ow);
	return walk(path, chown_one, &ow);
}

static int local_symlink(struct executor *ex UNUSED, const char *target, const char *path)
{
	if (symlink(target, path) < 0)
		return err_errno("symlink '%s' -> '%s'", path, target);
	return 0;
}

static int local_list_dir(struct executor *ex UNUSED, const char *path, struct dir_entry **out,
			  size_t *n)
{
	DIR *d = opendir(path);
	struct dirent *e;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return err_errno("list '%s'", path);
	while ((e = readdir(d))) {
		struct stat st;
		char *c;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (*n == LOCAL_DIR_MAX) {
			closedir(d);
			dir_entries_free(*out, *n);
			*out = NULL;
			*n = 0;
			return err_set("list '%s': more than %d entries", path, LOCAL_DIR_MAX);
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		c = xasprintf("%s/%s", path, e->d_name);
		(*out)[*n].name = xstrdup(e->d_name);
		(*out)[*n].mode = lstat(c, &st) == 0 ? st.st_mode : 0;
		free(c);
		(*n)++;
	}
	closedir(d);
	return 0;
}

static int local_hash_file(struct executor *ex UNUSED, const char *path, const char *algo,
			   char **hex)
{
	const EVP_MD *md = EVP_get_digestbyname(algo);
	EVP_MD_CTX *ctx;
	unsigned char b[65536], dig[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0, i;
	ssize_t n;
	int fd, r = -1;

	*hex = NULL;
	if (!md)
		return err_set("unknown digest '%s'", algo);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return err_errno("open '%s'", path);
	ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, md, NULL)) {
		err_set("digest init failed");
		goto cleanup;
	}
	while ((n = read(fd, b, sizeof(b))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_errno("read '%s'", path);
			goto cleanup;
		}
		EVP_DigestUpdate(ctx, b, (size_t)n);
	}
	EVP_DigestFinal_ex(ctx, dig, &dlen);
	*hex = xmalloc(dlen * 2 + 1);
	for (i = 0; i < dlen; i++)
		snprintf(*hex + 2 * i, 3, "%02x", dig[i]);
	r = 0;
cleanup:
	EVP_MD_CTX_free(ctx);
	close(fd);
	return r;
}

static void local_close(struct executor *ex)
{
	free(ex);
}

static const struct executor_ops local_ops = {
	.name = "local",
	.exec = local_exec,
	.put_file = local_put_file,
	.get_file = local_get_file,
	.write_file = local_write_file,
	.read_file = local_read_file,
	.stat = local_stat,
	.mkdir_p = local_mkdir_p,
	.make_temp_dir = local_make_temp_dir,
	.remove = local_remove,
	.rename = local_rename,
	.copy = local_copy,
	.chmod = local_chmod,
	.chown = local_chown,
	.symlink = local_symlink,
	.list_dir = local_list_dir,
	.hash_file = local_hash_file,
	.reboot = NULL,
	.close = local_close,
};

struct executor *executor_local_new(void)
{
	struct executor *ex = xcalloc(1, sizeof(*ex));

	ex->ops = &local_ops;
	return ex;
}
