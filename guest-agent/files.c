/* files.c: file transfer and filesystem operations of the agent.
 *
 * put: T_PUT → R_OK (temp file created) or R_ERROR; T_DATA*; T_DATA_END
 *      (A_SIZE, A_DIGEST = sha256) → R_OK (A_SIZE, A_DIGEST) once the temp
 *      file has its mode/owner/mtime and was renamed over the path, or R_ERROR
 *      (short write, size or digest mismatch; nothing is left behind).
 *      With A_APPEND the data is appended to the path directly.
 * get: T_GET → R_OK (A_SIZE, A_MODE, ...) or R_ERROR; T_DATA*; T_DATA_END
 *      (A_SIZE, A_DIGEST = sha256 of what was sent); R_ERROR instead of more
 *      data if reading fails half-way.
 * The rest are one request, one reply. */
#include <dirent.h>
#include <ftw.h>
#include <poll.h>

#include "agent.h"
#include "error.h"
#include "util.h"

/* Copy and tree walks go no deeper (recursion uses the stack). */
#define TREE_DEPTH_MAX 256
/* A listing is sent in R_ENTRIES frames of about this many bytes. */
#define LIST_FRAME_BYTES (64u * 1024)

static int get_bool(const struct proto_frame *f, uint16_t tag, bool *b)
{
	uint32_t v = 0;

	if (proto_get_u32(f, tag, &v) < 0)
		return -1;
	*b = v != 0;
	return 0;
}

/* --- put ------------------------------------------------------------------ */

int put_tmp_create(const char *path, char **tmp)
{
	const char *slash = strrchr(path, '/');
	int fd;

	*tmp = xasprintf("%.*s/.%s.amiforge-XXXXXX", (int)(slash - path), path, slash + 1);
	fd = mkostemp(*tmp, O_CLOEXEC);
	if (fd < 0) {
		err_errno("create '%s'", *tmp);
		free(*tmp);
		*tmp = NULL;
	}
	return fd;
}

int put_set_mtime(int fd, const char *path, uint64_t mtime)
{
	struct timespec ts[2] = { { (time_t)mtime, 0 }, { (time_t)mtime, 0 } };

	if (futimens(fd, ts) < 0)
		return err_errno("set mtime of '%s'", path);
	return 0;
}

int put_commit(int *fd, char **tmp, const char *path, uint64_t size, const uint8_t *digest,
	       size_t dlen, struct proto_msg *ok)
{
	int r = close(*fd);

	*fd = -1;
	if (r < 0)
		return err_errno("write '%s'", path);
	if (*tmp && rename(*tmp, path) < 0)
		return err_errno("rename '%s' to '%s'", *tmp, path);
	free(*tmp);
	*tmp = NULL;
	proto_msg_u64(ok, PROTO_A_SIZE, size);
	proto_msg_bytes(ok, PROTO_A_DIGEST, digest, dlen);
	return 0;
}

int op_put(struct conn *c, const struct proto_frame *f, struct proto_msg *ok)
{
	const char *path;
	char *tmp = NULL;
	uint32_t mode = 0644, uid = UINT32_MAX, gid = UINT32_MAX;
	uint64_t mtime = 0, size = 0, want_size = 0;
	bool append = false, have_mtime = false, created = true, failed = false;
	struct agent_hash h;
	uint8_t digest[PROTO_DIGEST_MAX];
	const uint8_t *want_digest;
	size_t dlen, want_dlen;
	uint32_t id = f->id;
	int fd = -1, ret = -1, r;
	struct proto_frame g;

	if (need_path(f, PROTO_A_PATH, &path) < 0 ||
	    proto_get_u32(f, PROTO_A_MODE, &mode) < 0 ||
	    proto_get_u32(f, PROTO_A_UID, &uid) < 0 ||
	    proto_get_u32(f, PROTO_A_GID, &gid) < 0 ||
	    (r = proto_get_u64(f, PROTO_A_MTIME, &mtime)) < 0 ||
	    get_bool(f, PROTO_A_APPEND, &append) < 0)
		return -1;
	have_mtime = r == 1;
	/* Copy the path: the request's payload is gone once data frames arrive. */
	path = xstrdup(path);
	if (append) {
		struct stat st;

		created = lstat(path, &st) < 0;
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, mode & 07777);
		if (fd < 0) {
			err_errno("open '%s'", path);
			goto cleanup;
		}
	} else {
		fd = put_tmp_create(path, &tmp);
		if (fd < 0)
			goto cleanup;
	}
	hash_init(&h, "sha256");
	ret = 1;
	if (conn_send(c, PROTO_R_OK, 0, id, NULL, 0) < 0)
		goto cleanup;
	for (;;) {
		r = conn_recv(c, &g, -1);
		if (r <= 0)
			goto cleanup;
		if (g.type == PROTO_T_DATA && g.id == id) {
			if (!failed && write_all(fd, g.payload, g.len) < 0) {
				err_errno("write '%s'", path);
				failed = true;
			}
			hash_update(&h, g.payload, g.len);
			size += g.len;
			continue;
		}
		if (g.type == PROTO_T_DATA_END && g.id == id)
			break;
		/* The host moved on (sync after a timeout): drop this put. */
		conn_push_back(c, &g);
		goto cleanup;
	}
	ret = -1;
	if (failed)
		goto cleanup;
	dlen = hash_final(&h, digest);
	if (proto_tlv_check(&g) < 0 || proto_get_u64(&g, PROTO_A_SIZE, &want_size) != 1 ||
	    proto_get_bytes(&g, PROTO_A_DIGEST, &want_digest, &want_dlen) != 1) {
		err_set("put '%s': data-end without size and digest", path);
		goto cleanup;
	}
	if (want_size != size) {
		err_set("put '%s': received %" PRIu64 " bytes, host sent %" PRIu64, path, size,
			want_size);
		goto cleanup;
	}
	if (want_dlen != dlen || memcmp(want_digest, digest, dlen) != 0) {
		err_set("put '%s': sha256 mismatch", path);
		goto cleanup;
	}
	if (created && fchmod(fd, mode & 07777) < 0) {
		err_errno("chmod '%s'", path);
		goto cleanup;
	}
	if ((uid != UINT32_MAX || gid != UINT32_MAX) && fchown(fd, uid, gid) < 0) {
		err_errno("chown '%s'", path);
		goto cleanup;
	}
	if ((have_mtime && put_set_mtime(fd, path, mtime) < 0) ||
	    put_commit(&fd, &tmp, path, size, digest, dlen, ok) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	free((char *)path);
	return ret;
}

/* --- get ------------------------------------------------------------------ */

/* Between chunks: a frame from the host (other than a ping) aborts the get. */
static bool host_interrupts(struct conn *c)
{
	struct proto_frame g;
	int r;

	while ((r = conn_recv(c, &g, 0)) == 1) {
		if (g.type == PROTO_T_PING) {
			conn_send(c, PROTO_R_PONG, 0, g.id, NULL, 0);
			continue;
		}
		conn_push_back(c, &g);
		return true;
	}
	return r < 0;
}

int op_get(struct conn *c, const struct proto_frame *f)
{
	const char *path;
	struct stat st;
	struct proto_msg m;
	struct agent_hash h;
	uint8_t digest[PROTO_DIGEST_MAX];
	uint8_t *chunk = NULL;
	uint64_t size = 0;
	uint32_t id = f->id;
	int fd, ret = -1;

	if (need_path(f, PROTO_A_PATH, &path) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return err_errno("open '%s'", path);
	if (fstat(fd, &st) < 0) {
		err_errno("stat '%s'", path);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set("get '%s': not a regular file", path);
		goto cleanup;
	}
	proto_msg_init(&m, PROTO_R_OK, 0, id);
	proto_msg_u64(&m, PROTO_A_SIZE, (uint64_t)st.st_size);
	proto_msg_u32(&m, PROTO_A_MODE, st.st_mode);
	proto_msg_u32(&m, PROTO_A_UID, st.st_uid);
	proto_msg_u32(&m, PROTO_A_GID, st.st_gid);
	proto_msg_u64(&m, PROTO_A_MTIME, (uint64_t)st.st_mtim.tv_sec);
	ret = 1;
	if (conn_send_msg(c, &m) < 0) {
		proto_msg_release(&m);
		goto cleanup;
	}
	proto_msg_release(&m);
	hash_init(&h, "sha256");
	chunk = xmalloc(PROTO_CHUNK);
	for (;;) {
		ssize_t n = read_all(fd, chunk, PROTO_CHUNK);

		if (n < 0) {
			err_errno("read '%s'", path);
			conn_send_error(c, id, errno);
			goto cleanup;
		}
		if (n > 0) {
			hash_update(&h, chunk, (size_t)n);
			size += (uint64_t)n;
			if (conn_send(c, PROTO_T_DATA, 0, id, chunk, (size_t)n) < 0)
				goto cleanup;
			if (host_interrupts(c))
				goto cleanup;
		}
		if ((size_t)n < PROTO_CHUNK)
			break;
	}
	proto_msg_init(&m, PROTO_T_DATA_END, 0, id);
	proto_msg_u64(&m, PROTO_A_SIZE, size);
	proto_msg_bytes(&m, PROTO_A_DIGEST, digest, hash_final(&h, digest));
	conn_send_msg(c, &m);
	proto_msg_release(&m);
cleanup:
	free(chunk);
	close(fd);
	return ret;
}

/* --- metadata ------------------------------------------------------------- */

int op_stat(struct conn *c UNUSED, const struct proto_frame *f, struct proto_msg *ok)
{
	const char *path;
	struct stat st;

	if (need_path(f, PROTO_A_PATH, &path) < 0)
		return -1;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			proto_msg_u32(ok, PROTO_A_EXISTS, 0);
			return 0;
		}
		return err_errno("stat '%s'", path);
	}
	proto_msg_u32(ok, PROTO_A_EXISTS, 1);
	proto_msg_u32(ok, PROTO_A_MODE, st.st_mode);
	proto_msg_u32(ok, PROTO_A_UID, st.st_uid);
	proto_msg_u32(ok, PROTO_A_GID, st.st_gid);
	proto_msg_u64(ok, PROTO_A_SIZE, (uint64_t)st.st_size);
	proto_msg_u64(ok, PROTO_A_MTIME, (uint64_t)st.st_mtim.tv_sec);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(path, target, sizeof(target) - 1);

		if (n < 0)
			return err_errno("readlink '%s'", path);
		target[n] = '\0';
		proto_msg_str(ok, PROTO_A_LINK, target, PATH_MAX);
	}
	return 0;
}

int op_mkdir(struct conn *c UNUSED, const struct proto_frame *f, struct proto_msg *ok UNUSED)
{
	const char *path;
	uint32_t mode = 0755;
	struct stat st;

	if (need_path(f, PROTO_A_PATH, &path) < 0 || proto_get_u32(f, PROTO_A_MODE, &mode) < 0)
		return -1;
	if (mkdir_p(path, mode & 07777) < 0)
		return -1;
	if (stat(path, &st) < 0)
		return err_errno("stat '%s'", path);
	if (!S_ISDIR(st.st_mode))
		return err_set("mkdir '%s': exists and is not a directory", path);
	return 0;
}

int op_remove(struct conn *c UNUSED, const struct proto_frame *f, struct proto_msg *ok UNUSED)
{
	const char *path;
	bool recursive = false;
	struct stat st;

	if (need_path(f, PROTO_A_PATH, &path) < 0 || get_bool(f, PROTO_A_RECURSIVE, &recursive) < 0)
		return -1;
	if (strcmp(path, "/") == 0)
		return err_set("remove '/': refusing");
	if (recursive)
		return remove_tree(path);
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_errno("stat '%s'", path);
	if (S_ISDIR(st.st_mode) ? rmdir(path) < 0 : unlink(path) < 0)
		return err_errno("remove '%s'", path);
	return 0;
}

static int copy_file(const char *from, const char *to, const struct stat *st)
{
	char *chunk = xmalloc(PROTO_CHUNK);
	int in, out = -1, ret = -1;

	in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (in < 0) {
		err_errno("open '%s'", from);
		goto cleanup;
	}
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
	if (out < 0) {
		err_errno("create '%s'", to);
		goto cleanup;
	}
	for (;;) {
		ssize_t n = read_all(in, chunk, PROTO_CHUNK);

		if (n < 0) {
			err_errno("read '%s'", from);
			goto cleanup;
		}
		if (n > 0 && write_all(out, chunk, (size_t)n) < 0) {
			err_errno("write '%s'", to);
			goto cleanup;
		}
		if ((size_t)n < PROTO_CHUNK)
			break;
	}
	/* Owner first: chown clears setuid bits that fchmod then restores. */
	if (fchown(out, st->st_uid, st->st_gid) < 0 && errno != EPERM) {
		err_errno("chown '%s'", to);
		goto cleanup;
	}
	if (fchmod(out, st->st_mode & 07777) < 0) {
		err_errno("chmod '%s'", to);
		goto cleanup;
	}
	{
		struct timespec ts[2] = { st->st_atim, st->st_mtim };

		futimens(out, ts);
	}
	if (close(out) < 0) {
		out = -1;
		err_errno("write '%s'", to);
		goto cleanup;
	}
	out = -1;
	ret = 0;
cleanup:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	free(chunk);
	return ret;
}

static int copy_tree(const char *from, const char *to, bool recursive, int depth)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int ret = 0;

	if (depth > TREE_DEPTH_MAX)
		return err_set("copy '%s': deeper than %d levels", from, TREE_DEPTH_MAX);
	if (lstat(from, &st) < 0)
		return err_errno("stat '%s'", from);
	if (S_ISREG(st.st_mode))
		return copy_file(from, to, &st);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(from, target, sizeof(target) - 1);

		if (n < 0)
			return err_errno("readlink '%s'", from);
		target[n] = '\0';
		if (symlink(target, to) < 0)
			return err_errno("symlink '%s'", to);
		if (lchown(to, st.st_uid, st.st_gid) < 0 && errno != EPERM)
			return err_errno("chown '%s'", to);
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return err_set("copy '%s': not a regular file, directory or symlink", from);
	if (!recursive)
		return err_set("copy '%s': is a directory (recursive copy not requested)", from);
	if (mkdir(to, 0700) < 0 && errno != EEXIST)
		return err_errno("mkdir '%s'", to);
	d = opendir(from);
	if (!d)
		return err_errno("open directory '%s'", from);
	while (ret == 0 && (e = readdir(d)) != NULL) {
		char *a, *b;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		a = xasprintf("%s/%s", from, e->d_name);
		b = xasprintf("%s/%s", to, e->d_name);
		ret = copy_tree(a, b, true, depth + 1);
		free(a);
		free(b);
	}
	closedir(d);
	if (ret < 0)
		return -1;
	if (lchown(to, st.st_uid, st.st_gid) < 0 && errno != EPERM)
		return err_errno("chown '%s'", to);
	if (chmod(to, st.st_mode & 07777) < 0)
		return err_errno("chmod '%s'", to);
	return 0;
}

/* Refuse to copy a tree into itself. */
static int check_not_inside(const char *from, const char *to)
{
	size_t n = strlen(from);

	while (n > 1 && from[n - 1] == '/')
		n--;
	if (strncmp(from, to, n) == 0 && (to[n] == '\0' || to[n] == '/'))
		return err_set("copy '%s' to '%s': destination is inside the source", from, to);
	return 0;
}

int op_copy(struct conn *c UNUSED, const struct proto_frame *f, struct proto_msg *ok UNUSED)
{
	const char *from, *to;
	bool recursive = false;

	if (need_path(f, PROTO_A_PATH, &from) < 0 || need_path(f, PROTO_A_PATH2, &to) < 0 ||
	    get_bool(f, PROTO_A_RECURSIVE, &recursive) < 0 || check_not_inside(from, to) < 0)
		return -1;
	return copy_tree(from, to, recursive, 0);
}

int op_rename(struct conn *c UNUSED, const struct proto_frame *f, struct proto_msg *ok UNUSED)
{
	const char *from, *to;

	if (need_path(f, PROTO_A_PATH, &from) < 0 || need_path(f, PROTO_A_PATH2, &to) < 0)
		return -1;
	if (rename(from, to) == 0)
		return 0;
	if (errno != EXDEV)
		return err_errno("rename '%s' to '%s'", from, to);
	/* Across filesystems: copy, then remove the source. */
	if (check_not_inside(from, to) < 0 || copy_tree(from, to, true, 0) < 0)
		return -1;
	return remove_tree(from);
}

/* nftw() callbacks take no context: the agent is single-threaded. */
static mode_t walk_mode;
static uid_t walk_uid;
static gid_t walk_gid;

static int walk_chmod(const char *path, const struct stat *st, int type, struct FTW *ftw UNUSED)
{
	if (type == FTW_SL || S_ISLNK(st->st_mode))
		return 0;
	if (type == FTW_NS || type == FTW_DNR)
		return err_set("chmod '%s': cannot read", path);
	return chmod(path, walk_mode) < 0 ? err_errno("chmod '%s'", path) : 0;
}

static int walk_chown(const char *path, const struct stat *st UNUSED, int type,
		      struct FTW *ftw UNUSED)
{
	if (type == FTW_NS || type == FTW_DNR)
		return err_set("chown '%s': cannot read", path);
	return lchown(path, walk_uid, walk_gid) < 0 ? err_errno("chown '%s'", path) : 0;
}

int op_chmod(struct conn *c UNUSED, const struct proto_frame *f, struct proto_msg *ok UNUSED)
{
	const char *path;
	uint32_t mode;
	bool recursive = false;

	if (need_path(f, PROTO_A_PATH, &path) < 0 || get_bool(f, PROTO_A_RECURSIVE, &recursive) < 0)
		return -1;
	if (proto_get_u32(f, PROTO_A_MODE, &mode) != 1)
		return err_set("chmod '%s': missing mode", path);
	walk_mode = mode & 07777;
	if (recursive)
		return nftw(path, walk_chmod, 16, FTW_PHYS) == 0 ? 0 :
			(err_isset() ? -1 : err_errno("chmod '%s'", path));
	return chmod(path, walk_mode) < 0 ? err_errno("chmod '%s'", path) : 0;
}

int op_chown(struct conn *c UNUSED, const struct proto_frame *f, struct proto_msg *ok UNUSED)
{
	const char *path, *owner = NULL, *group = NULL;
	bool recursive = false;

	if (need_path(f, PROTO_A_PATH, &path) < 0 || get_bool(f, PROTO_A_RECURSIVE, &recursive) < 0 ||
	    proto_get_str(f, PROTO_A_OWNER, &owner) < 0 || proto_get_str(f, PROTO_A_GROUP, &group) < 0)
		return -1;
	walk_uid = (uid_t)-1;
	walk_gid = (gid_t)-1;
	if (owner) {
		struct agent_user u;

		if (user_lookup(owner, &u) < 0)
			return -1;
		walk_uid = u.uid;
		user_release(&u);
	}
	if (group && group_lookup(group, &walk_gid) < 0)
		return -1;
	if (recursive)
		return nftw(path, walk_chown, 16, FTW_PHYS) == 0 ? 0 :
			(err_isset() ? -1 : err_errno("chown '%s'", path));
	return chown(path, walk_uid, walk_gid) < 0 ? err_errno("chown '%s'", path) : 0;
}

int op_symlink(struct conn *c UNUSED, const struct proto_frame *f, struct proto_msg *ok UNUSED)
{
	const char *path, *target;

	if (need_path(f, PROTO_A_PATH, &path) < 0)
		return -1;
	if (proto_get_str(f, PROTO_A_TARGET, &target) != 1 || !*target)
		return err_set("symlink '%s': missing target", path);
	return symlink(target, path) < 0 ? err_errno("symlink '%s' -> '%s'", path, target) : 0;
}

int op_list(struct conn *c, const struct proto_frame *f)
{
	const char *path;
	struct proto_msg m;
	struct dirent *e;
	uint32_t id = f->id;
	DIR *d;

	if (need_path(f, PROTO_A_PATH, &path) < 0)
		return -1;
	d = opendir(path);
	if (!d)
		return err_errno("list '%s'", path);
	proto_msg_init(&m, PROTO_R_ENTRIES, 0, id);
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			st.st_mode = 0;
		proto_msg_str(&m, PROTO_A_NAME, e->d_name, NAME_MAX);
		proto_msg_u32(&m, PROTO_A_MODE, st.st_mode);
		if (m.len >= LIST_FRAME_BYTES) {
			conn_send_msg(c, &m);
			proto_msg_release(&m);
			proto_msg_init(&m, PROTO_R_ENTRIES, 0, id);
		}
	}
	closedir(d);
	if (m.len > PROTO_HDR_LEN)
		conn_send_msg(c, &m);
	proto_msg_release(&m);
	conn_send(c, PROTO_R_OK, 0, id, NULL, 0);
	return 1;
}

int op_hash(struct conn *c UNUSED, const struct proto_frame *f, struct proto_msg *ok)
{
	const char *path, *algo;
	struct agent_hash h;
	uint8_t digest[PROTO_DIGEST_MAX];
	char hex[2 * PROTO_DIGEST_MAX + 1];
	char *chunk;
	int fd, ret = -1;

	if (need_path(f, PROTO_A_PATH, &path) < 0)
		return -1;
	if (proto_get_str(f, PROTO_A_ALGO, &algo) != 1)
		return err_set("hash '%s': missing algorithm", path);
	if (hash_init(&h, algo) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_errno("open '%s'", path);
	chunk = xmalloc(PROTO_CHUNK);
	for (;;) {
		ssize_t n = read_all(fd, chunk, PROTO_CHUNK);

		if (n < 0) {
			err_errno("read '%s'", path);
			goto cleanup;
		}
		hash_update(&h, chunk, (size_t)n);
		if ((size_t)n < PROTO_CHUNK)
			break;
	}
	hex_encode(digest, hash_final(&h, digest), hex);
	proto_msg_str(ok, PROTO_A_HEX, hex, sizeof(hex));
	ret = 0;
cleanup:
	free(chunk);
	close(fd);
	return ret;
}
