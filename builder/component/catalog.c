/* catalog.c: components by name and version (see catalog.h). */
#include <dirent.h>
#include <fcntl.h>

#include "catalog.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"

#ifndef AMIFORGE_DATADIR
#define AMIFORGE_DATADIR "/usr/local/share"
#endif

/* ---- versions ---- */

/* One version field: digits (at most 9) or, when wild, "x". */
static const char *field(const char *p, bool wild_ok, long *v, bool *wild)
{
	const char *q = p;

	*wild = false;
	if (wild_ok && *p == 'x') {
		*wild = true;
		return p + 1;
	}
	while (*q >= '0' && *q <= '9')
		q++;
	if (q == p || q - p > 9 || (q - p > 1 && *p == '0'))
		return NULL;
	*v = strtol(p, NULL, 10);
	return q;
}

/* Parse MAJOR.MINOR.PATCH (wildcards allowed when pattern). */
static int parse_version(const char *s, bool pattern, long f[3], bool w[3])
{
	const char *p = s;
	int i;

	for (i = 0; i < 3; i++) {
		f[i] = 0;
		p = field(p, pattern, &f[i], &w[i]);
		if (!p)
			return -1;
		if (i > 0 && w[i - 1] && !w[i])
			return -1;	/* "x.1.x": a number after a wildcard */
		if (i < 2 && *p++ != '.')
			return -1;
	}
	return *p ? -1 : 0;
}

int catalog_pattern_check(const char *pattern)
{
	long f[3];
	bool w[3];

	if (!pattern || parse_version(pattern, true, f, w) < 0)
		return err_set("version '%s' is not a version or pattern (1.2.3, 1.2.x, 1.x.x, "
			       "x.x.x)", pattern ? pattern : "");
	return 0;
}

bool catalog_version_match(const char *pattern, const char *version)
{
	long pf[3], vf[3];
	bool pw[3], vw[3];
	int i;

	if (parse_version(pattern, true, pf, pw) < 0 || parse_version(version, false, vf, vw) < 0)
		return false;
	for (i = 0; i < 3; i++)
		if (!pw[i] && pf[i] != vf[i])
			return false;
	return true;
}

int catalog_version_cmp(const char *a, const char *b)
{
	long af[3], bf[3];
	bool aw[3], bw[3];
	int i;

	if (parse_version(a, false, af, aw) < 0 || parse_version(b, false, bf, bw) < 0)
		return strcmp(a, b);
	for (i = 0; i < 3; i++)
		if (af[i] != bf[i])
			return af[i] < bf[i] ? -1 : 1;
	return 0;
}

static bool valid_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > CATALOG_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

int catalog_parse_arn(const char *arn, char **name, char **version)
{
	const char *p = arn, *n, *v, *e;
	int colons = 0;
	long f[3];
	bool w[3];

	*name = *version = NULL;
	if (!str_startswith(arn, "arn:aws") )
		goto bad;
	/* arn:PARTITION:imagebuilder:REGION:OWNER:component/NAME/VERSION[/BUILD] */
	for (; *p && colons < 5; p++)
		if (*p == ':')
			colons++;
	if (colons != 5 || !strstr(arn, ":imagebuilder:") || !str_startswith(p, "component/"))
		goto bad;
	n = p + strlen("component/");
	v = strchr(n, '/');
	if (!v || !valid_name(n, (size_t)(v - n)))
		goto bad;
	v++;
	e = strchr(v, '/');
	if (e) {	/* a build number: digits only */
		const char *b = e + 1;

		if (!*b || strspn(b, "0123456789") != strlen(b))
			goto bad;
	}
	*name = xstrndup(n, (size_t)(v - 1 - n));
	*version = e ? xstrndup(v, (size_t)(e - v)) : xstrdup(v);
	if (parse_version(*version, true, f, w) < 0)
		goto bad;
	return 0;
bad:
	free(*name);
	free(*version);
	*name = *version = NULL;
	return err_set("'%s' is not an Image Builder component ARN "
		       "(arn:aws:imagebuilder:REGION:OWNER:component/NAME/VERSION[/BUILD])", arn);
}

bool catalog_parse_ref(const char *s, char **name, char **version)
{
	const char *slash = strchr(s, '/');
	long f[3];
	bool w[3];

	*name = *version = NULL;
	if (!slash || strchr(slash + 1, '/') || !valid_name(s, (size_t)(slash - s)) ||
	    parse_version(slash + 1, true, f, w) < 0)
		return false;
	*name = xstrndup(s, (size_t)(slash - s));
	*version = xstrdup(slash + 1);
	return true;
}

/* ---- the search path ---- */

char **catalog_dirs(const char *recipe_dir)
{
	struct strv v = STRV_INIT;
	const char *env = getenv("AMIFORGE_COMPONENT_PATH");
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char exe[4096];
	ssize_t n;

	if (env && *env) {
		char *copy = xstrdup(env), *save = NULL, *tok;

		for (tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save))
			strv_push(&v, tok);
		free(copy);
	}
	if (recipe_dir)
		strv_pushf(&v, "%s/components", recipe_dir);
	if (xdg && *xdg == '/')
		strv_pushf(&v, "%s/amiforge/components", xdg);
	else if (home && *home == '/')
		strv_pushf(&v, "%s/.local/share/amiforge/components", home);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			strv_pushf(&v, "%s/catalog", exe);
		}
	}
	strv_pushf(&v, "%s/amiforge/components", AMIFORGE_DATADIR);
	if (!v.v)
		strv_push(&v, AMIFORGE_DATADIR "/amiforge/components");
	return v.v;
}

/* ---- reading catalog directories ---- */

static bool is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_entries(const void *a, const void *b)
{
	const struct catalog_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : catalog_version_cmp(x->version, y->version);
}

/* Append the entries of one catalog directory (NAME/VERSION/document.yaml). */
static void read_dir(const char *dir, const char *only, struct catalog_entry **v, size_t *n,
		     size_t *cap)
{
	DIR *d = opendir(dir), *dv;
	struct dirent *e, *f;
	size_t count = 0;

	if (!d)
		return;
	while ((e = readdir(d)) && count < CATALOG_ENTRIES_MAX) {
		char *sub;

		if (!valid_name(e->d_name, strlen(e->d_name)) || (only && strcmp(only, e->d_name)))
			continue;
		sub = xasprintf("%s/%s", dir, e->d_name);
		dv = opendir(sub);
		while (dv && (f = readdir(dv)) && count < CATALOG_ENTRIES_MAX) {
			long fl[3];
			bool w[3];
			char *doc;

			if (parse_version(f->d_name, false, fl, w) < 0)
				continue;
			doc = xasprintf("%s/%s/document.yaml", sub, f->d_name);
			if (!is_file(doc)) {
				free(doc);
				continue;
			}
			if (*n == *cap) {
				*cap = *cap ? *cap * 2 : 16;
				*v = xrealloc(*v, *cap * sizeof(**v));
			}
			(*v)[*n] = (struct catalog_entry){
				.name = xstrdup(e->d_name), .version = xstrdup(f->d_name),
				.path = doc, .dir = xstrdup(dir),
				.test_path = xasprintf("%s/%s/test.yaml", sub, f->d_name),
			};
			if (!is_file((*v)[*n].test_path)) {
				free((*v)[*n].test_path);
				(*v)[*n].test_path = NULL;
			}
			(*n)++;
			count++;
		}
		if (dv)
			closedir(dv);
		free(sub);
	}
	closedir(d);
}

/* Entries of the whole search path, sorted, the first of duplicates kept. */
static int gather(const char *recipe_dir, const char *only, struct catalog_entry **out,
		  size_t *nout)
{
	char **dirs = catalog_dirs(recipe_dir);
	struct catalog_entry *v = NULL;
	size_t n = 0, cap = 0, i, k = 0;

	for (i = 0; dirs[i]; i++)
		read_dir(dirs[i], only, &v, &n, &cap);
	strv_free(dirs);
	/* Stable order of directories within equal name/version: merge sort
	 * is not needed; mark later duplicates by scanning in read order. */
	for (i = 0; i < n; i++) {
		size_t j;
		bool dup = false;

		for (j = 0; j < k && !dup; j++)
			dup = strcmp(v[j].name, v[i].name) == 0 &&
			      strcmp(v[j].version, v[i].version) == 0;
		if (dup)
			catalog_entry_release(&v[i]);
		else
			v[k++] = v[i];
	}
	if (k)
		qsort(v, k, sizeof(*v), cmp_entries);
	*out = v;
	*nout = k;
	return 0;
}

int catalog_list(const char *recipe_dir, struct catalog_entry **out, size_t *n)
{
	return gather(recipe_dir, NULL, out, n);
}

int catalog_resolve(const char *recipe_dir, const char *name, const char *pattern,
		    struct catalog_entry *out)
{
	struct catalog_entry *v = NULL;
	size_t n = 0, i, best = SIZE_MAX;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!valid_name(name, strlen(name)))
		return err_set("'%s' is not a component name", name);
	if (catalog_pattern_check(pattern) < 0)
		return -1;
	gather(recipe_dir, name, &v, &n);
	for (i = 0; i < n; i++)
		if (catalog_version_match(pattern, v[i].version) &&
		    (best == SIZE_MAX || catalog_version_cmp(v[i].version, v[best].version) > 0))
			best = i;
	if (best == SIZE_MAX) {
		char **dirs = catalog_dirs(recipe_dir);
		struct buf b = BUF_INIT(8192);
		size_t d;

		for (d = 0; dirs[d]; d++)
			buf_printf(&b, "%s%s", d ? ", " : "", dirs[d]);
		if (n) {
			buf_adds(&b, "; versions there:");
			for (i = 0; i < n; i++)
				buf_printf(&b, " %s", v[i].version);
		}
		err_set("component '%s' version '%s' not found (looked in %s)", name, pattern,
			b.data ? b.data : "");
		buf_release(&b);
		strv_free(dirs);
		goto cleanup;
	}
	*out = v[best];
	memset(&v[best], 0, sizeof(v[best]));
	ret = 0;
cleanup:
	catalog_entries_free(v, n);
	return ret;
}

void catalog_entry_release(struct catalog_entry *e)
{
	if (!e)
		return;
	free(e->name);
	free(e->version);
	free(e->path);
	free(e->test_path);
	free(e->dir);
	memset(e, 0, sizeof(*e));
}

void catalog_entries_free(struct catalog_entry *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		catalog_entry_release(&v[i]);
	free(v);
}
