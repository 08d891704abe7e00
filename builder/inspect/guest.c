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
