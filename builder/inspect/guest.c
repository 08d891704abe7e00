/* Reading guest files through libguestfs, bounded. */
#include <guestfs.h>

#include "internal.h"
#include "util.h"

bool guest_exists(struct inspect_ctx *c, const char *path)
{
	return guestfs_exists(c->g, path) == 1;
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
	int64_t size;
	size_t n = 0;
	char *data, *out;

	if (why)
		*why = "missing";
	if (!guest_is_file(c, path))
		return NULL;
	size = guestfs_filesize(c->g, path);
	if (size < 0)
		return NULL;
	if ((uint64_t)size > GUEST_FILE_MAX) {
		if (why)
			*why = "too large";
		return NULL;
	}
	data = guestfs_read_file(c->g, path, &n);
	if (!data) {
		if (why)
			*why = "unreadable";
		return NULL;
	}
	if (n > GUEST_FILE_MAX) {	/* grew between the two calls */
		free(data);
		if (why)
			*why = "too large";
		return NULL;
	}
	/* read_file's buffer is NUL-terminated by libguestfs, but the file may
	 * hold NULs: callers treat it as text up to the first one. */
	out = xmalloc(n + 1);
	memcpy(out, data, n);
	out[n] = '\0';
	free(data);
	if (len)
		*len = n;
	return out;
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
