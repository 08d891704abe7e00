/* actions-file.c: the file system modules. Every list action runs its
 * entries in order and stops at the first failure. */
#include <fnmatch.h>
#include <iconv.h>
#include <jansson.h>
#include <libgen.h>

#include "engine.h"
#include "buf.h"
#include "error.h"
#include "util.h"

/* Largest file SetFileEncoding/ReadFile/AppendFile handle in memory. */
#define FILE_EDIT_MAX (64u * 1024 * 1024)

typedef int (*entry_fn)(struct action_ctx *c, json_t *e);

static int each(struct action_ctx *c, entry_fn fn)
{
	json_t *e;
	size_t i;

	json_array_foreach(c->inputs, i, e) {
		if (action_time_left(c) < 0 || fn(c, e) < 0)
			return -1;
	}
	return 0;
}

static int tstat(struct action_ctx *c, const char *path, struct file_stat *st)
{
	return executor_stat(c->ex, path, st);
}

/* 0 missing, 1 file (or symlink), 2 directory, -1 error. */
static int kind(struct action_ctx *c, const char *path)
{
	struct file_stat st;
	int k;

	if (tstat(c, path, &st) < 0)
		return -1;
	k = !st.exists ? 0 : S_ISDIR(st.mode) ? 2 : 1;
	file_stat_release(&st);
	return k;
}

static int parse_mode(const char *s, mode_t *m)
{
	uint64_t v = 0;
	const char *p = s;

	if (!*p)
		return err_set("invalid permissions ''");
	for (; *p; p++) {
		if (*p < '0' || *p > '7' || v > 07777)
			return err_set("invalid permissions '%s' (octal, e.g. 0644)", s);
		v = v * 8 + (uint64_t)(*p - '0');
	}
	if (v > 07777)
		return err_set("invalid permissions '%s' (octal, e.g. 0644)", s);
	*m = (mode_t)v;
	return 0;
}

static char *parent_of(const char *path)
{
	char *t = xstrdup(path), *d = xstrdup(dirname(t));

	free(t);
	return d;
}

static const char *base_of(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static int need_abs(const char *path)
{
	if (path[0] != '/')
		return err_set("'%s' is not an absolute path", path);
	return 0;
}

static int mkparent(struct action_ctx *c, const char *path)
{
	char *p = parent_of(path);
	int r = executor_mkdir_p(c->ex, p, 0755);

	free(p);
	return r;
}

/* owner/group/permissions of an entry. */
static int apply_attrs(struct action_ctx *c, json_t *e, const char *path, bool recursive)
{
	const char *owner = in_str(e, "owner", NULL), *group = in_str(e, "group", NULL);
	const char *perms = in_str(e, "permissions", NULL);
	mode_t m;

	if (perms && (parse_mode(perms, &m) < 0 || executor_chmod(c->ex, path, m, recursive) < 0))
		return -1;
	if ((owner && owner[0]) || (group && group[0]))
		return executor_chown(c->ex, path, owner && owner[0] ? owner : NULL,
					 group && group[0] ? group : NULL, recursive);
	return 0;
}

/* ---- encodings ---- */

/* AWSTOE's names → iconv's; NULL for an unknown name. */
static const char *iconv_name(const char *enc)
{
	static const char *const map[][2] = {
		{ "utf8", "UTF-8" }, { "utf-8", "UTF-8" }, { "utf16", "UTF-16" },
		{ "utf-16", "UTF-16" }, { "utf16-le", "UTF-16LE" }, { "utf16-be", "UTF-16BE" },
		{ "utf-16le", "UTF-16LE" }, { "utf-16be", "UTF-16BE" }, { "utf32", "UTF-32" },
		{ "utf-32", "UTF-32" }, { "utf32-le", "UTF-32LE" }, { "utf32-be", "UTF-32BE" },
		{ "utf-32le", "UTF-32LE" }, { "utf-32be", "UTF-32BE" }, { "ascii", "ASCII" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(map); i++)
		if (strcasecmp(map[i][0], enc) == 0)
			return map[i][1];
	return NULL;
}

static int convert(const char *from, const char *to, const char *in, size_t len, struct buf *out)
{
	iconv_t cd;
	char *ip = (char *)in;
	size_t il = len;
	int r = 0;

	buf_release(out);
	buf_init(out, FILE_EDIT_MAX);
	if ((cd = iconv_open(to, from)) == (iconv_t)-1)
		return err_errno("convert %s to %s", from, to);
	if (buf_reserve(out, len * 4 + 8) < 0) {
		iconv_close(cd);
		return -1;
	}
	while (il > 0) {
		char *op = out->data + out->len;
		size_t ol = out->cap - out->len - 1, before = ol;
		size_t n = iconv(cd, &ip, &il, &op, &ol);
		out->len += before - ol;
		if (n == (size_t)-1) {
			if (errno == E2BIG && buf_reserve(out, out->cap) == 0)
				continue;
			r = err_set("convert %s to %s: invalid input at byte %zu", from, to,
				    len - il);
			break;
		}
	}
	if (out->data)
		out->data[out->len] = '\0';
	iconv_close(cd);
	return r;
}

static int encode_content(const char *enc, const char *content, struct buf *out)
{
	const char *to = enc ? iconv_name(enc) : "UTF-8";

	if (!to)
		return err_set("unknown encoding '%s'", enc);
	if (strcmp(to, "UTF-8") == 0) {
		buf_release(out);
		buf_init(out, FILE_EDIT_MAX);
		return buf_adds(out, content);
	}
	return convert("UTF-8", to, content, strlen(content), out);
}

/* ---- actions ---- */

static int create_file(struct action_ctx *c, json_t *e)
{
	const char *path = in_str(e, "path", "");
	struct buf data = BUF_INIT(FILE_EDIT_MAX);
	int k, r = -1;

	if (need_abs(path) < 0 || (k = kind(c, path)) < 0)
		return -1;
	if (k == 2)
		return err_set("'%s' is a directory", path);
	if (k == 1 && !in_bool(e, "overwrite", true))
		return err_set("'%s' already exists and overwrite is false", path);
	if (encode_content(in_str(e, "encoding", NULL), in_str(e, "content", ""), &data) < 0)
		goto cleanup;
	if (mkparent(c, path) < 0 ||
	    executor_write_file(c->ex, path, data.data ? data.data : "", data.len, 0644,
				   false) < 0 ||
	    apply_attrs(c, e, path, false) < 0)
		goto cleanup;
	r = 0;
cleanup:
	buf_release(&data);
	return r;
}

int act_create_file(struct action_ctx *c)
{
	return each(c, create_file);
}

static int append_file(struct action_ctx *c, json_t *e)
{
	const char *path = in_str(e, "path", "");
	struct buf data = BUF_INIT(FILE_EDIT_MAX);
	int k, r;

	if (need_abs(path) < 0 || (k = kind(c, path)) < 0)
		return -1;
	if (k != 1)
		return err_set("'%s' %s", path, k ? "is a directory" : "does not exist");
	if (encode_content(in_str(e, "encoding", NULL), in_str(e, "content", ""), &data) < 0)
		return -1;
	r = executor_write_file(c->ex, path, data.data ? data.data : "", data.len, 0644, true);
	buf_release(&data);
	return r;
}

int act_append_file(struct action_ctx *c)
{
	return each(c, append_file);
}

static int create_folder(struct action_ctx *c, json_t *e)
{
	const char *path = in_str(e, "path", "");
	int k;

	if (need_abs(path) < 0 || (k = kind(c, path)) < 0)
		return -1;
	if (k == 1)
		return err_set("'%s' exists and is not a folder", path);
	if (k == 2 && !in_bool(e, "overwrite", true))
		return err_set("'%s' already exists and overwrite is false", path);
	if (executor_mkdir_p(c->ex, path, 0755) < 0)
		return -1;
	return apply_attrs(c, e, path, false);
}

int act_create_folder(struct action_ctx *c)
{
	return each(c, create_folder);
}

static int create_symlink(struct action_ctx *c, json_t *e)
{
	const char *path = in_str(e, "path", ""), *target = in_str(e, "target", "");
	struct file_stat st;
	int k;

	if (need_abs(path) < 0 || need_abs(target) < 0 || (k = kind(c, target)) < 0)
		return -1;
	if (k == 0)
		return err_set("symlink target '%s' does not exist", target);
	if (tstat(c, path, &st) < 0)
		return -1;
	k = st.exists;
	file_stat_release(&st);
	if (k) {
		if (!in_bool(e, "force", false))
			return err_set("'%s' already exists and force is false", path);
		if (executor_remove(c->ex, path, false) < 0)
			return -1;
	}
	if (mkparent(c, path) < 0)
		return -1;
	return executor_symlink(c->ex, target, path);
}

int act_create_symlink(struct action_ctx *c)
{
	return each(c, create_symlink);
}

/* Expand a source with a wildcard in its last segment into paths on the
 * target; a plain path is returned as is. want: 1 files, 2 folders. */
static int expand_source(struct action_ctx *c, const char *src, int want, struct strv *out)
{
	const char *pat = base_of(src);
	struct dir_entry *ents = NULL;
	char *dir;
	size_t n = 0, i;

	if (!strpbrk(pat, "*?[")) {
		strv_push(out, src);
		return 0;
	}
	dir = parent_of(src);
	if (strpbrk(dir, "*?[")) {
		free(dir);
		return err_set("'%s': wildcards are only allowed in the last path segment", src);
	}
	if (executor_list_dir(c->ex, dir, &ents, &n) < 0) {
		free(dir);
		return -1;
	}
	for (i = 0; i < n; i++) {
		bool is_dir = S_ISDIR(ents[i].mode);
		if (fnmatch(pat, ents[i].name, FNM_PERIOD) != 0 || (want == 2) != is_dir)
			continue;
		strv_pushf(out, "%s/%s", strcmp(dir, "/") ? dir : "", ents[i].name);
	}
	dir_entries_free(ents, n);
	free(dir);
	return 0;
}

enum xfer { COPY, MOVE };

/* Copy or move one file or folder (folder: want == 2). */
static int transfer_one(struct action_ctx *c, const char *src, const char *dst_in, bool into,
			bool overwrite, int want, enum xfer how)
{
	char *dst = into ? xasprintf("%s/%s", dst_in, base_of(src)) : xstrdup(dst_in);
	int k, sk, r = -1;

	if ((sk = kind(c, src)) < 0)
		goto cleanup;
	if (sk != want) {
		err_set("'%s' %s", src, sk == 0 ? "does not exist"
			: want == 1 ? "is a folder (use CopyFolder/MoveFolder)" : "is not a folder");
		goto cleanup;
	}
	if ((k = kind(c, dst)) < 0)
		goto cleanup;
	if (k) {
		if (!overwrite) {
			err_set("'%s' already exists and overwrite is false", dst);
			goto cleanup;
		}
		if (executor_remove(c->ex, dst, true) < 0)
			goto cleanup;
	}
	if (mkparent(c, dst) < 0)
		goto cleanup;
	if (how == MOVE)
		r = executor_rename(c->ex, src, dst);
	else
		r = executor_copy(c->ex, src, dst, want == 2);
cleanup:
	free(dst);
	return r;
}

static int transfer(struct action_ctx *c, json_t *e, int want, enum xfer how)
{
	const char *src = in_str(e, "source", ""), *dst = in_str(e, "destination", "");
	bool overwrite = in_bool(e, "overwrite", true), wild = strpbrk(base_of(src), "*?[") != NULL;
	struct strv srcs = STRV_INIT;
	size_t i;
	int k, r = -1;

	if (need_abs(src) < 0 || need_abs(dst) < 0 || expand_source(c, src, want, &srcs) < 0)
		goto cleanup;
	if (srcs.n == 0) {
		err_set("'%s' matches nothing", src);
		goto cleanup;
	}
	if ((k = kind(c, dst)) < 0)
		goto cleanup;
	/* into a folder: a trailing '/', a wildcard source, or an existing
	 * destination folder when copying a file */
	for (i = 0; i < srcs.n; i++) {
		bool into = str_endswith(dst, "/") || wild || (k == 2 && want == 1);
		if (into && executor_mkdir_p(c->ex, dst, 0755) < 0)
			goto cleanup;
		if (transfer_one(c, srcs.v[i], dst, into, overwrite, want, how) < 0)
			goto cleanup;
	}
	r = 0;
cleanup:
	strv_release(&srcs);
	return r;
}

static int copy_file_e(struct action_ctx *c, json_t *e) { return transfer(c, e, 1, COPY); }
static int copy_folder_e(struct action_ctx *c, json_t *e) { return transfer(c, e, 2, COPY); }
static int move_file_e(struct action_ctx *c, json_t *e) { return transfer(c, e, 1, MOVE); }
static int move_folder_e(struct action_ctx *c, json_t *e) { return transfer(c, e, 2, MOVE); }

int act_copy_file(struct action_ctx *c) { return each(c, copy_file_e); }
int act_copy_folder(struct action_ctx *c) { return each(c, copy_folder_e); }
int act_move_file(struct action_ctx *c) { return each(c, move_file_e); }
int act_move_folder(struct action_ctx *c) { return each(c, move_folder_e); }

static int delete_file(struct action_ctx *c, json_t *e)
{
	const char *path = in_str(e, "path", "");
	struct strv paths = STRV_INIT;
	size_t i;
	int r = -1, k;

	if (need_abs(path) < 0 || expand_source(c, path, 1, &paths) < 0)
		goto cleanup;
	for (i = 0; i < paths.n; i++) {
		if ((k = kind(c, paths.v[i])) < 0)
			goto cleanup;
		if (k != 1) {
			err_set("'%s' %s", paths.v[i], k ? "is a folder (use DeleteFolder)"
			       : "does not exist");
			goto cleanup;
		}
		if (executor_remove(c->ex, paths.v[i], false) < 0)
			goto cleanup;
	}
	r = 0;
cleanup:
	strv_release(&paths);
	return r;
}

int act_delete_file(struct action_ctx *c)
{
	return each(c, delete_file);
}

static int delete_folder(struct action_ctx *c, json_t *e)
{
	const char *path = in_str(e, "path", "");
	struct dir_entry *ents = NULL;
	size_t n = 0;
	int k;

	if (need_abs(path) < 0 || (k = kind(c, path)) < 0)
		return -1;
	if (k != 2)
		return err_set("'%s' %s", path, k ? "is not a folder" : "does not exist");
	if (strcmp(path, "/") == 0)
		return err_set("refusing to delete '/'");
	if (executor_list_dir(c->ex, path, &ents, &n) < 0)
		return -1;
	dir_entries_free(ents, n);
	if (n && !in_bool(e, "force", false))
		return err_set("'%s' is not empty and force is false", path);
	return executor_remove(c->ex, path, true);
}

int act_delete_folder(struct action_ctx *c)
{
	return each(c, delete_folder);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct dir_entry *)a)->name, ((const struct dir_entry *)b)->name);
}

static int list_rec(struct action_ctx *c, const char *dir, const char *pat, bool rec,
		    struct buf *files)
{
	struct dir_entry *ents = NULL;
	size_t n = 0, i;
	int r = 0;

	if (executor_list_dir(c->ex, dir, &ents, &n) < 0)
		return -1;
	if (n)
		qsort(ents, n, sizeof(*ents), by_name);   /* stable output, whatever the target */
	for (i = 0; i < n && r == 0; i++) {
		char *p = xasprintf("%s/%s", strcmp(dir, "/") ? dir : "", ents[i].name);
		if (S_ISDIR(ents[i].mode)) {
			if (rec)
				r = list_rec(c, p, pat, rec, files);
		} else if (!pat || fnmatch(pat, ents[i].name, 0) == 0) {
			if (files->len)
				r = buf_addc(files, ',');
			if (r == 0)
				r = buf_adds(files, p);
		}
		free(p);
	}
	dir_entries_free(ents, n);
	return r;
}

static int list_files(struct action_ctx *c, json_t *e)
{
	const char *path = in_str(e, "path", ""), *pat = in_str(e, "fileNamePattern", NULL);
	json_t *old = json_object_get(c->outputs, "files");
	struct buf files = BUF_INIT(STEP_OUTPUT_MAX);
	int k;

	if (need_abs(path) < 0 || (k = kind(c, path)) < 0)
		return -1;
	if (k != 2)
		return err_set("'%s' %s", path, k ? "is not a folder" : "does not exist");
	if (json_is_string(old) && buf_adds(&files, json_string_value(old)) < 0)
		return -1;
	if (list_rec(c, path, pat && pat[0] ? pat : NULL, in_bool(e, "recursive", false),
		     &files) < 0) {
		buf_release(&files);
		return -1;
	}
	json_object_set_new(c->outputs, "files", json_stringn(files.data ? files.data : "",
							      files.len));
	buf_release(&files);
	return 0;
}

int act_list_files(struct action_ctx *c)
{
	return each(c, list_files);
}

static int read_file(struct action_ctx *c, json_t *e)
{
	const char *path = in_str(e, "path", ""), *enc = in_str(e, "encoding", NULL);
	struct buf data = BUF_INIT(READFILE_MAX), conv = BUF_INIT(READFILE_MAX);
	const char *from = enc ? iconv_name(enc) : "UTF-8";
	struct buf *use = &data;
	json_t *s;
	int r = -1;

	if (need_abs(path) < 0)
		return -1;
	if (!from)
		return err_set("unknown encoding '%s'", enc);
	if (executor_read_file(c->ex, path, READFILE_MAX, &data) < 0)
		goto cleanup;
	if (strcmp(from, "UTF-8") != 0) {
		if (convert(from, "UTF-8", data.data ? data.data : "", data.len, &conv) < 0)
			goto cleanup;
		use = &conv;
	}
	if (!(s = json_stringn(use->data ? use->data : "", use->len))) {
		err_set("'%s' is not valid %s", path, enc ? enc : "utf8");
		goto cleanup;
	}
	json_object_set_new(c->outputs, "content", s);
	if (in_bool(e, "printFileContent", false))
		buf_add(c->console, use->data ? use->data : "", use->len);
	r = 0;
cleanup:
	buf_release(&data);
	buf_release(&conv);
	return r;
}

int act_read_file(struct action_ctx *c)
{
	return each(c, read_file);
}

/* SetFileEncoding: the file is read as UTF-8 (or with a BOM, as that
 * encoding) and rewritten in the requested one. */
static int set_encoding(struct action_ctx *c, json_t *e)
{
	const char *path = in_str(e, "path", ""), *enc = in_str(e, "encoding", "");
	const char *to = iconv_name(enc), *from = "UTF-8";
	struct buf data = BUF_INIT(FILE_EDIT_MAX), conv = BUF_INIT(FILE_EDIT_MAX);
	const unsigned char *d;
	struct file_stat st;
	int r = -1;

	if (need_abs(path) < 0)
		return -1;
	if (!to)
		return err_set("unknown encoding '%s'", enc);
	if (tstat(c, path, &st) < 0)
		return -1;
	if (executor_read_file(c->ex, path, FILE_EDIT_MAX, &data) < 0)
		goto cleanup;
	d = (const unsigned char *)(data.data ? data.data : "");
	if (data.len >= 2 && ((d[0] == 0xff && d[1] == 0xfe) || (d[0] == 0xfe && d[1] == 0xff)))
		from = "UTF-16";
	if (convert(from, to, (const char *)d, data.len, &conv) < 0 ||
	    executor_write_file(c->ex, path, conv.data ? conv.data : "", conv.len,
				   st.mode & 07777, false) < 0)
		goto cleanup;
	r = 0;
cleanup:
	file_stat_release(&st);
	buf_release(&data);
	buf_release(&conv);
	return r;
}

int act_set_file_encoding(struct action_ctx *c)
{
	return each(c, set_encoding);
}

static bool folder_action(struct action_ctx *c)
{
	return strstr(c->step->action->name, "Folder") != NULL;
}

static int set_owner(struct action_ctx *c, json_t *e)
{
	const char *path = in_str(e, "path", "");
	const char *owner = in_str(e, "owner", NULL), *group = in_str(e, "group", NULL);
	bool folder = folder_action(c);
	int k;

	if (need_abs(path) < 0 || (k = kind(c, path)) < 0)
		return -1;
	if (k != (folder ? 2 : 1))
		return err_set("'%s' %s", path, k == 0 ? "does not exist"
			       : folder ? "is not a folder" : "is a folder");
	return executor_chown(c->ex, path, owner && owner[0] ? owner : NULL,
				 group && group[0] ? group : NULL,
				 folder && in_bool(e, "recursive", true));
}

int act_set_owner(struct action_ctx *c)
{
	return each(c, set_owner);
}

static int set_permissions(struct action_ctx *c, json_t *e)
{
	const char *path = in_str(e, "path", "");
	bool folder = folder_action(c);
	mode_t m;
	int k;

	if (need_abs(path) < 0 || parse_mode(in_str(e, "permissions", ""), &m) < 0 ||
	    (k = kind(c, path)) < 0)
		return -1;
	if (k != (folder ? 2 : 1))
		return err_set("'%s' %s", path, k == 0 ? "does not exist"
			       : folder ? "is not a folder" : "is a folder");
	return executor_chmod(c->ex, path, m, folder && in_bool(e, "recursive", true));
}

int act_set_permissions(struct action_ctx *c)
{
	return each(c, set_permissions);
}
