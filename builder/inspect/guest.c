/* Reading guest files through libguestfs, bounded. */
#include <guestfs.h>
#include <sys/mman.h>

#include "internal.h"
#include "error.h"
#include "util.h"

bool guest_exists(struct inspect_ctx *c, const char *path)
{
	return guestfs_exists(c->g, path) == 1;
}

bool guest_lexists(struct inspect_ctx *c, const char *path)
{
	struct guestfs_statns *st = guestfs_lstatns(c->g, path);

	if (!st)
		return false;
	guestfs_free_statns(st);
	return true;
}

bool guest_is_file(struct inspect_ctx *c, const char *path)
{
	return guestfs_is_file_opts(c->g, path, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) == 1;
}

bool guest_is_dir(struct inspect_ctx *c, const char *path)
{
	return guestfs_is_dir_opts(c->g, path, GUESTFS_IS_DIR_OPTS_FOLLOWSYMLINKS, 1, -1) == 1;
}

char *guest_read(struct inspect_ctx *c, const char *path, size_t *len, const char **why)
{
	return appliance_read_file(c->g, path, GUEST_FILE_MAX, len, why);
}

char **guest_glob(struct inspect_ctx *c, const char *pattern)
{
	char **v = guestfs_glob_expand(c->g, pattern);

	if (!v) {
		v = xcalloc(1, sizeof(*v));
	}
	return v;
}

bool next_line(const char **p, char *line, size_t cap)
{
	const char *s = *p, *e;
	size_t n;

	if (!*s)
		return false;
	e = strchr(s, '\n');
	n = e ? (size_t)(e - s) : strlen(s);
	*p = e ? e + 1 : s + n;
	if (n >= cap)
		n = cap - 1;
	memcpy(line, s, n);
	line[n] = '\0';
	if (n && line[n - 1] == '\r')
		line[n - 1] = '\0';
	return true;
}

char *str_trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

/* --- paths through symlinks, resolved here ---------------------------------
 * libguestfs's daemon would follow an absolute symlink from the appliance's
 * own root, not the guest's: every component is looked at with lstat and
 * every link read with readlink, "/" and ".." staying inside the guest. */

/* Append "/comp" (n bytes) to the resolved prefix cur. */
static char *path_join(const char *cur, const char *comp, size_t n)
{
	return xasprintf("%s/%.*s", cur, (int)n, comp);
}

char *guest_resolve(struct inspect_ctx *c, const char *path, char *why, size_t cap)
{
	char *cur = xstrdup(""), *rest = xstrdup(path), *link_from = NULL, *link_to = NULL;
	char *out = NULL;
	const char *p;
	int links = 0;

	why[0] = '\0';
	if (strlen(path) >= GUEST_PATH_MAX) {
		snprintf(why, cap, "path longer than %d bytes", GUEST_PATH_MAX);
		goto cleanup;
	}
	p = rest;
	for (;;) {
		struct guestfs_statns *st;
		const char *comp;
		size_t n;
		char *cand, *tgt, *nrest;
		int64_t fmt;

		p += strspn(p, "/");
		if (!*p)
			break;
		comp = p;
		n = strcspn(p, "/");
		p += n;
		if ((n == 1 && comp[0] == '.'))
			continue;
		if (n == 2 && comp[0] == '.' && comp[1] == '.') {
			char *slash = strrchr(cur, '/');

			if (slash)	/* at the root, ".." is the root */
				*slash = '\0';
			continue;
		}
		cand = path_join(cur, comp, n);
		st = guestfs_lstatns(c->g, cand);
		if (!st) {
			if (link_from)
				snprintf(why, cap, "dangling symlink: %s -> %s, and %s does not exist",
					 link_from, link_to, cand);
			else
				snprintf(why, cap, "%s does not exist", cand);
			free(cand);
			goto cleanup;
		}
		fmt = st->st_mode & S_IFMT;
		guestfs_free_statns(st);
		if (fmt == S_IFLNK) {
			if (++links > GUEST_SYMLINKS_MAX) {
				snprintf(why, cap, "more than %d symlinks from %s (a loop?)",
					 GUEST_SYMLINKS_MAX, path);
				free(cand);
				goto cleanup;
			}
			tgt = guestfs_readlink(c->g, cand);
			if (!tgt || !tgt[0] || strlen(tgt) >= GUEST_PATH_MAX) {
				snprintf(why, cap, "symlink %s cannot be read or is too long", cand);
				free(tgt);
				free(cand);
				goto cleanup;
			}
			free(link_from);
			free(link_to);
			link_from = cand;
			link_to = tgt;
			nrest = xasprintf("%s/%s", tgt, p);
			if (strlen(nrest) >= 2 * GUEST_PATH_MAX) {
				snprintf(why, cap, "path through %s longer than %d bytes", cand,
					 2 * GUEST_PATH_MAX);
				free(nrest);
				goto cleanup;
			}
			if (tgt[0] == '/')
				cur[0] = '\0';
			free(rest);
			rest = nrest;
			p = rest;
			continue;
		}
		if (fmt != S_IFDIR && p[strspn(p, "/")]) {
			snprintf(why, cap, "%s is not a directory", cand);
			free(cand);
			goto cleanup;
		}
		free(cur);
		cur = cand;
	}
	out = cur[0] ? cur : xstrdup("/");
	if (out != cur)
		free(cur);
	cur = NULL;

cleanup:
	free(cur);
	free(rest);
	free(link_from);
	free(link_to);
	return out;
}

/* --- whole files too large for one libguestfs reply ----------------------- */

int guest_map(struct inspect_ctx *c, const char *path, uint64_t max, struct guest_map *m)
{
	char *dir = NULL, *local = NULL;
	int64_t size = guestfs_filesize(c->g, path);
	struct stat st;
	int fd = -1, ret = -1;

	m->data = MAP_FAILED;
	m->len = 0;
	if (size < 0)
		return err_set("'%s': %s", path, guestfs_last_error(c->g));
	if ((uint64_t)size > max)
		return err_set("'%s' is larger than %" PRIu64 " MiB", path, max >> 20);
	if (!(dir = make_temp_dir("amiforge-inspect-file.", "/tmp")))
		return -1;
	local = xasprintf("%s/file", dir);
	if (guestfs_download(c->g, path, local) < 0) {
		err_set("'%s': %s", path, guestfs_last_error(c->g));
		goto cleanup;
	}
	fd = open(local, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0) {
		err_errno("open '%s'", local);
		goto cleanup;
	}
	if ((uint64_t)st.st_size > max || st.st_size == 0) {
		err_set("'%s': %s", path, st.st_size ? "too large" : "empty");
		goto cleanup;
	}
	m->data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m->data == MAP_FAILED) {
		err_errno("mmap '%s'", local);
		goto cleanup;
	}
	m->len = (size_t)st.st_size;
	ret = 0;

cleanup:	/* the mapping outlives the file */
	if (fd >= 0)
		close(fd);
	unlink(local);
	rmdir_temp(dir);
	free(local);
	free(dir);
	return ret;
}

void guest_unmap(struct guest_map *m)
{
	if (m->data != MAP_FAILED && m->data)
		munmap(m->data, m->len);
	m->data = MAP_FAILED;
	m->len = 0;
}
