/* files.c: the files under chosen directories of an image, and how two
 * images differ there (files.h). The appliance's checksums-out writes one
 * sha256sum listing per directory into a host file we create; what it says
 * is the image's and is parsed with bounds like any untrusted text. */
#include <fcntl.h>
#include <guestfs.h>
#include <sys/stat.h>

#include "files.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"

bool files_path_ok(const char *p)
{
	const char *s;

	if (!p || p[0] != '/' || strlen(p) > 4096)
		return false;
	for (s = p; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	for (s = p; (s = strchr(s, '/')); s++)
		if ((s[1] == '.' && (s[2] == '/' || !s[2])) ||
		    (s[1] == '.' && s[2] == '.' && (s[3] == '/' || !s[3])))
			return false;
	return true;
}

static bool hex64(const char *s)
{
	int i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* GNU sha256sum's escaping of a name holding '\\' or a newline. */
static char *unescape(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] != '\\') {
			*o++ = s[i];
			continue;
		}
		if (++i == n) {
			free(out);
			return NULL;
		}
		if (s[i] == 'n')
			*o++ = '\n';
		else if (s[i] == '\\')
			*o++ = '\\';
		else {
			free(out);
			return NULL;
		}
	}
	*o = 0;
	return out;
}

int files_parse_sums(const char *text, size_t len, const char *dir, json_t *files)
{
	/* An empty directory: checksums-out's `find | xargs sha256sum` ran
	 * sha256sum once, on its empty standard input. */
	static const char empty_dir[] =
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  -\n";
	size_t off = 0, line = 0, dl = strlen(dir);

	if (len == sizeof(empty_dir) - 1 && memcmp(text, empty_dir, len) == 0)
		return 0;

	while (off < len) {
		const char *l = text + off, *nl = memchr(l, '\n', len - off);
		size_t n = nl ? (size_t)(nl - l) : len - off;
		bool esc = n && l[0] == '\\';
		const char *h = l + esc;
		char *name, *key;

		off += n + (nl != NULL);
		line++;
		if (!n)
			continue;
		if (n < (size_t)esc + 64 + 2 + 3 || !hex64(h) || h[64] != ' ' ||
		    (h[65] != ' ' && h[65] != '*') || h[66] != '.' || h[67] != '/')
			return err_set("checksum listing of %s, line %zu: not 'SHA256  ./path'", dir,
				       line);
		name = memchr(l, 0, n) ? NULL
		       : esc ? unescape(h + 68, n - 69) : xstrndup(h + 68, n - 68);
		if (!name || !*name) {
			free(name);
			return err_set("checksum listing of %s, line %zu: bad file name", dir, line);
		}
		if (json_object_size(files) >= FILES_MAX) {
			free(name);
			return err_set("more than %d files under the paths asked for", FILES_MAX);
		}
		key = xasprintf("%s%s%s", dir, dl > 1 ? "/" : "", name);
		if (json_object_set_new(files, key, json_stringn(h, 64)) < 0) {
			err_set("checksum listing of %s, line %zu: a file name that is not UTF-8",
				dir, line);
			free(key);
			free(name);
			return -1;
		}
		free(key);
		free(name);
	}
	return 0;
}

int files_of_mounted(guestfs_h *g, const char *disk, const char *const *paths,
		     size_t npaths, json_t **files)
{
	struct buf b = BUF_INIT(FILES_LIST_MAX);
	char *tmp = NULL, *sums = NULL;
	size_t i;
	int ret = -1;

	*files = json_object();
	if (!(tmp = make_temp_dir("amiforge-files.", "/tmp")))
		goto cleanup;
	sums = xasprintf("%s/sums", tmp);
	for (i = 0; i < npaths; i++) {
		if (guestfs_is_dir_opts(g, paths[i], GUESTFS_IS_DIR_OPTS_FOLLOWSYMLINKS, 0, -1) <= 0)
			continue;   /* absent there: nothing listed */
		unlink(sums);
		if (guestfs_checksums_out(g, "sha256", paths[i], sums) < 0) {
			err_set("'%s': cannot list the files under %s: %s", disk, paths[i],
				guestfs_last_error(g) ? guestfs_last_error(g) : "libguestfs error");
			goto cleanup;
		}
		buf_reset(&b);
		if (buf_read_file(&b, sums) < 0 ||
		    files_parse_sums(b.data ? b.data : "", b.len, paths[i], *files) < 0) {
			err_prefix("'%s'", disk);
			goto cleanup;
		}
	}
	ret = 0;
cleanup:
	if (sums)
		unlink(sums);
	if (tmp)
		rmdir_temp(tmp);
	free(tmp);
	free(sums);
	buf_release(&b);
	if (ret < 0) {
		json_decref(*files);
		*files = NULL;
	}
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static json_t *sorted(json_t *arr)
{
	size_t n = json_array_size(arr), i;
	json_t **v = xcalloc(n ? n : 1, sizeof(*v)), *out = json_array();

	for (i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), cmp_str);
	for (i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(arr);
	return out;
}

json_t *files_diff(const json_t *a, const json_t *b)
{
	json_t *added = json_array(), *removed = json_array(), *changed = json_array(), *v, *w;
	const char *k;

	json_object_foreach((json_t *)a, k, v) {
		w = json_object_get(b, k);
		if (!w)
			json_array_append_new(removed, json_string(k));
		else if (!json_equal(v, w))
			json_array_append_new(changed, json_string(k));
	}
	json_object_foreach((json_t *)b, k, w)
		if (!json_object_get(a, k))
			json_array_append_new(added, json_string(k));
	return json_pack("{s:o, s:o, s:o}", "added", sorted(added), "removed", sorted(removed),
			 "changed", sorted(changed));
}
