#include <dirent.h>
#include <sys/file.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "cache.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* The cache is this user's: files 0600, directories 0700, but for the ones
 * QEMU (another user under qemu:///system) must traverse to reach a base
 * image libvirt gives it by ownership: the cache itself and objects/, 0711. */
static const struct {
	const char *name;
	mode_t mode;
} cache_subdirs[] = {
	{ "objects", 0711 },
	{ "refs", 0700 },
	{ "local", 0700 },
	{ "tmp", 0700 },
};

char *cache_dir(void)
{
	const char *env = getenv("AMIFORGE_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char *dir, *sub;
	size_t i;
	int r;

	if (env && *env)
		dir = xstrdup(env);
	else if (geteuid() == 0)
		dir = xstrdup("/var/cache/amiforge");
	else if (xdg && xdg[0] == '/')
		dir = xasprintf("%s/amiforge", xdg);
	else if (home && home[0] == '/')
		dir = xasprintf("%s/.cache/amiforge", home);
	else {
		err_set("no cache directory: set AMIFORGE_CACHE_DIR or HOME");
		return NULL;
	}
	/* Objects, refs and layers in a cache someone else can write are not
	 * ours to trust: refused, as a build directory would be. */
	if (mkdir_p(dir, 0711) < 0 || path_check_private(dir, "cache directory") < 0)
		goto fail;
	for (i = 0; i < ARRAY_SIZE(cache_subdirs); i++) {
		sub = xasprintf("%s/%s", dir, cache_subdirs[i].name);
		r = mkdir(sub, cache_subdirs[i].mode) < 0 && errno != EEXIST
			    ? err_errno("mkdir '%s'", sub)
			    : path_check_private(sub, "cache directory");
		free(sub);
		if (r < 0)
			goto fail;
	}
	return dir;
fail:
	free(dir);
	return NULL;
}

/* ---- hashing ----------------------------------------------------------- */

struct hasher {
	EVP_MD_CTX *sha256, *extra;
	const EVP_MD *extra_md;
};

static const EVP_MD *algo_md(enum checksum_algo a)
{
	return a == CHECKSUM_SHA256 ? EVP_sha256() : a == CHECKSUM_SHA512 ? EVP_sha512() : NULL;
}

void hasher_reset(struct hasher *h)
{
	EVP_DigestInit_ex(h->sha256, EVP_sha256(), NULL);
	if (h->extra)
		EVP_DigestInit_ex(h->extra, h->extra_md, NULL);
}

struct hasher *hasher_new(enum checksum_algo extra)
{
	struct hasher *h = xcalloc(1, sizeof(*h));

	h->sha256 = EVP_MD_CTX_new();
	if (!h->sha256)
		abort();
	if (extra != CHECKSUM_NONE && extra != CHECKSUM_SHA256) {
		h->extra = EVP_MD_CTX_new();
		if (!h->extra)
			abort();
		h->extra_md = algo_md(extra);
	}
	hasher_reset(h);
	return h;
}

void hasher_update(struct hasher *h, const void *p, size_t n)
{
	EVP_DigestUpdate(h->sha256, p, n);
	if (h->extra)
		EVP_DigestUpdate(h->extra, p, n);
}

static char *hex_final(EVP_MD_CTX *ctx)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;
	char *hex;

	EVP_DigestFinal_ex(ctx, md, &n);
	hex = xmalloc(2 * n + 1);
	for (i = 0; i < n; i++) {
		hex[2 * i] = "0123456789abcdef"[md[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
	}
	hex[2 * n] = '\0';
	return hex;
}

void hasher_final(struct hasher *h, char **sha256_hex, char **extra_hex)
{
	*sha256_hex = hex_final(h->sha256);
	if (extra_hex)
		*extra_hex = h->extra ? hex_final(h->extra) : NULL;
	hasher_reset(h);
}

void hasher_free(struct hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->sha256);
	EVP_MD_CTX_free(h->extra);
	free(h);
}

int hash_fd(int fd, const char *what, enum checksum_algo extra, char **sha256_hex,
	    char **extra_hex)
{
	enum { CHUNK = 1 << 20 };
	struct hasher *h;
	char *chunk;
	off_t off = 0;
	ssize_t n;
	int r = -1;

	*sha256_hex = NULL;
	if (extra_hex)
		*extra_hex = NULL;
	h = hasher_new(extra);
	chunk = xmalloc(CHUNK);
	while ((n = pread(fd, chunk, CHUNK, off)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_errno("read '%s'", what);
			goto cleanup;
		}
		hasher_update(h, chunk, (size_t)n);
		off += n;
	}
	hasher_final(h, sha256_hex, extra_hex);
	r = 0;
cleanup:
	free(chunk);
	hasher_free(h);
	return r;
}

int hash_file(const char *path, enum checksum_algo extra, char **sha256_hex,
	      char **extra_hex)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	*sha256_hex = NULL;
	if (extra_hex)
		*extra_hex = NULL;
	if (fd < 0)
		return err_errno("open '%s'", path);
	r = hash_fd(fd, path, extra, sha256_hex, extra_hex);
	close(fd);
	return r;
}

/* ---- records ---------------------------------------------------------- */

void cache_record_release(struct cache_record *rec)
{
	if (!rec)
		return;
	free(rec->object);
	free(rec->format);
	free(rec->source);
	free(rec->member);
	free(rec->sha512);
	free(rec->file_sha256);
	free(rec->arch);
	free(rec->boot_mode);
	memset(rec, 0, sizeof(*rec));
}

static char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? xstrdup(s) : NULL;
}

static bool hex_ok(const char *s, size_t len)
{
	size_t i;

	if (!s || strlen(s) != len)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int cache_record_load(const char *path, struct cache_record *rec)
{
	struct buf b = BUF_INIT(CACHE_RECORD_MAX);
	json_error_t je;
	json_t *o = NULL;
	int r = -1;

	memset(rec, 0, sizeof(*rec));
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (buf_read_file(&b, path) < 0)
		return -1;
	o = json_loadb(b.data ? b.data : "", b.len, 0, &je);
	if (!o || !json_is_object(o)) {
		err_set("%s:%d:%d: %s", path, je.line, je.column,
			o ? "not a JSON object" : je.text);
		goto cleanup;
	}
	rec->object = jstr(o, "object");
	rec->format = jstr(o, "format");
	rec->source = jstr(o, "source");
	rec->member = jstr(o, "member");
	rec->sha512 = jstr(o, "sha512");
	rec->file_sha256 = jstr(o, "file_sha256");
	rec->arch = jstr(o, "arch");
	rec->boot_mode = jstr(o, "boot_mode");
	rec->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
	rec->virtual_size = (uint64_t)json_integer_value(json_object_get(o, "virtual_size"));
	/* The object name becomes a path: only 64 hex digits may get there. */
	if (!hex_ok(rec->object, 64) || !rec->format) {
		err_set("%s: cache record without a valid object digest or format", path);
		cache_record_release(rec);
		goto cleanup;
	}
	r = 1;
cleanup:
	json_decref(o);
	buf_release(&b);
	return r;
}

int cache_record_save(const char *path, const struct cache_record *rec)
{
	json_t *o = json_object();
	char *text;
	int r;

	json_object_set_new(o, "object", json_string(rec->object));
	json_object_set_new(o, "format", json_string(rec->format));
	json_object_set_new(o, "size", json_integer((json_int_t)rec->size));
	json_object_set_new(o, "virtual_size", json_integer((json_int_t)rec->virtual_size));
	if (rec->source) {
		char *red = log_redact_str(rec->source);

		json_object_set_new(o, "source", json_string(red));
		free(red);
	}
	if (rec->member)
		json_object_set_new(o, "member", json_string(rec->member));
	if (rec->sha512)
		json_object_set_new(o, "sha512", json_string(rec->sha512));
	if (rec->file_sha256)
		json_object_set_new(o, "file_sha256", json_string(rec->file_sha256));
	if (rec->arch)
		json_object_set_new(o, "arch", json_string(rec->arch));
	if (rec->boot_mode)
		json_object_set_new(o, "boot_mode", json_string(rec->boot_mode));
	text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return err_set("encode cache record '%s'", path);
	r = write_file_atomic(path, text, strlen(text), 0600);
	free(text);
	return r;
}

char *cache_object_path(const char *cache, const char *sha256_hex)
{
	return xasprintf("%s/objects/%s", cache, sha256_hex);
}

void cache_touch(const char *path)
{
	utimensat(AT_FDCWD, path, NULL, 0);
}

/* ---- list and prune ---------------------------------------------------- */

struct entry {
	char *path;     /* the record file */
	char *name;
	struct cache_record rec;
	time_t used;
};

struct entries {
	struct entry *v;
	size_t n;
};

static void entries_release(struct entries *e)
{
	size_t i;

	for (i = 0; i < e->n; i++) {
		free(e->v[i].path);
		free(e->v[i].name);
		cache_record_release(&e->v[i].rec);
	}
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/* Records in cache/sub; unreadable ones are reported and skipped. */
static int load_entries(const char *cache, const char *sub, struct entries *e)
{
	char *dir = xasprintf("%s/%s", cache, sub);
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		err_errno("open '%s'", dir);
		free(dir);
		return -1;
	}
	while ((de = readdir(d))) {
		struct entry en = { 0 };
		struct stat st;

		if (!str_endswith(de->d_name, ".json"))
			continue;
		en.path = xasprintf("%s/%s", dir, de->d_name);
		if (stat(en.path, &st) < 0 || cache_record_load(en.path, &en.rec) != 1) {
			log_warn("cache: skipping '%s': %s", en.path, err_msg());
			free(en.path);
			continue;
		}
		en.name = xstrndup(de->d_name, strlen(de->d_name) - 5);
		en.used = st.st_mtime;
		e->v = xrealloc(e->v, (e->n + 1) * sizeof(*e->v));
		e->v[e->n++] = en;
	}
	closedir(d);
	free(dir);
	return 0;
}

static void human(uint64_t n, char *out, size_t len)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t i = 0;

	while (v >= 1024 && i + 1 < ARRAY_SIZE(u)) {
		v /= 1024;
		i++;
	}
	snprintf(out, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

int cache_list(FILE *f, bool json)
{
	char *cache = cache_dir();
	struct entries e = { 0 };
	json_t *arr = json ? json_array() : NULL;
	size_t i;
	int r = -1;

	if (!cache)
		goto cleanup;
	if (load_entries(cache, "refs", &e) < 0 || load_entries(cache, "local", &e) < 0)
		goto cleanup;
	if (!json)
		fprintf(f, "%-12s %-6s %10s %-10s %s\n", "OBJECT", "FORMAT", "SIZE", "LAST USED",
			"SOURCE");
	for (i = 0; i < e.n; i++) {
		char *obj = cache_object_path(cache, e.v[i].rec.object), size[32], when[32];
		struct stat st;
		struct tm tm;
		bool have = stat(obj, &st) == 0;
		bool local = strstr(e.v[i].path, "/local/") != NULL;
		const char *state = local ? (have ? "local, unpacked" : "local, in place")
					  : (have ? "cached" : "object missing");

		localtime_r(&e.v[i].used, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d", &tm);
		if (json) {
			json_array_append_new(arr, json_pack(
				"{s:s, s:s?, s:I, s:I, s:s, s:s?, s:s?, s:s, s:s?}",
				"object", e.v[i].rec.object, "format", e.v[i].rec.format,
				"size", (json_int_t)(have ? (uint64_t)st.st_size : e.v[i].rec.size),
				"virtual_size", (json_int_t)e.v[i].rec.virtual_size,
				"last_used", when, "source", e.v[i].rec.source,
				"member", e.v[i].rec.member, "state", state,
				"path", have ? obj : NULL));
			free(obj);
			continue;
		}
		human(have ? (uint64_t)st.st_size : e.v[i].rec.size, size, sizeof(size));
		fprintf(f, "%.12s %-6s %10s %-10s %s%s%s%s\n", e.v[i].rec.object, e.v[i].rec.format,
			size, when, e.v[i].rec.source ? e.v[i].rec.source : "?",
			e.v[i].rec.member ? " :: " : "", e.v[i].rec.member ? e.v[i].rec.member : "",
			local ? (have ? " (local, unpacked)" : " (local, in place)")
			      : (have ? "" : " (object missing)"));
		free(obj);
	}
	if (json && (json_dumpf(arr, f, JSON_INDENT(2)) < 0 || fputc('\n', f) == EOF)) {
		err_errno("write the cache list");
		goto cleanup;
	}
	r = 0;
cleanup:
	json_decref(arr);
	entries_release(&e);
	free(cache);
	return r;
}

int cache_remove_file(const char *path, bool dry_run, FILE *f, size_t *files, uint64_t *bytes)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return 0;
	if (f)
		fprintf(f, "%s %s\n", dry_run ? "would remove" : "removed", path);
	if (!dry_run && unlink(path) < 0 && errno != ENOENT)
		return err_errno("remove '%s'", path);
	(*files)++;
	*bytes += (uint64_t)st.st_blocks * 512;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **cache_files_in_use(void)
{
	struct strv v = STRV_INIT;
	DIR *proc = opendir("/proc");
	struct dirent *de;

	while (proc && (de = readdir(proc))) {
		char *fddir;
		DIR *fds;
		struct dirent *fe;

		if (strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		fddir = xasprintf("/proc/%s/fd", de->d_name);
		fds = opendir(fddir);	/* gone, or not ours to read: skipped */
		while (fds && (fe = readdir(fds))) {
			char *link = xasprintf("%s/%s", fddir, fe->d_name), target[PATH_MAX];
			ssize_t n = readlink(link, target, sizeof(target) - 1);

			free(link);
			if (n <= 0 || target[0] != '/')
				continue;
			target[n] = '\0';
			strv_push(&v, target);
		}
		if (fds)
			closedir(fds);
		free(fddir);
	}
	if (proc)
		closedir(proc);
	if (!v.v)
		v.v = xcalloc(1, sizeof(char *));
	qsort(v.v, v.n, sizeof(char *), cmp_str);
	return v.v;
}

bool cache_in_use(char *const *in_use, const char *path)
{
	char real[PATH_MAX];
	const char *key = real;
	size_t n = 0;

	if (!realpath(path, real))
		return false;
	while (in_use[n])
		n++;
	return bsearch(&key, in_use, n, sizeof(char *), cmp_str) != NULL;
}

/* A partial download nobody holds the lock of (locks are per download key). */
static bool partial_idle(const char *tmpdir, const char *name)
{
	size_t n = strcspn(name, ".");
	char *lock = xasprintf("%s/%.*s.lock", tmpdir, (int)n, name);
	int fd = open(lock, O_RDONLY | O_CLOEXEC);
	bool idle = true;

	if (fd >= 0) {
		idle = flock(fd, LOCK_EX | LOCK_NB) == 0;
		close(fd);
	}
	free(lock);
	return idle;
}

int cache_prune(unsigned older_than_days, bool dry_run, FILE *f)
{
	char *cache = cache_dir(), *dir = NULL, **in_use = NULL;
	struct entries e = { 0 };
	time_t cutoff = time(NULL) - (time_t)older_than_days * 86400;
	size_t i, files = 0, k;
	uint64_t bytes = 0;
	struct dirent *de;
	DIR *d = NULL;
	int r = -1;
	char size[32];

	if (!cache)
		return -1;
	if (load_entries(cache, "refs", &e) < 0 || load_entries(cache, "local", &e) < 0)
		goto cleanup;
	in_use = cache_files_in_use();
	for (i = 0; i < e.n; i++) {
		char *obj;
		bool busy;

		if (older_than_days && e.v[i].used >= cutoff)
			continue;
		obj = cache_object_path(cache, e.v[i].rec.object);
		busy = cache_in_use(in_use, obj);
		free(obj);
		if (busy) {	/* a running guest's base: its object stays, so does its ref */
			fprintf(f, "kept %s: a running guest uses its image\n", e.v[i].path);
			continue;
		}
		if (cache_remove_file(e.v[i].path, dry_run, f, &files, &bytes) < 0)
			goto cleanup;
		free(e.v[i].name);
		e.v[i].name = NULL;   /* dropped: its object is no longer referenced */
	}
	dir = xasprintf("%s/objects", cache);
	d = opendir(dir);
	if (!d) {
		err_errno("open '%s'", dir);
		goto cleanup;
	}
	while ((de = readdir(d))) {
		char *p;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		for (k = 0; k < e.n; k++)
			if (e.v[k].name && strcmp(e.v[k].rec.object, de->d_name) == 0)
				break;
		if (k < e.n)
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		/* An object young enough may belong to a fetch that is about to
		 * write its ref: keep objects modified in the last minute. */
		if ((stat(p, &st) == 0 && st.st_mtime > time(NULL) - 60) || cache_in_use(in_use, p)) {
			free(p);
			continue;
		}
		if (cache_remove_file(p, dry_run, f, &files, &bytes) < 0) {
			free(p);
			goto cleanup;
		}
		free(p);
	}
	closedir(d);
	free(dir);
	dir = xasprintf("%s/tmp", cache);
	d = opendir(dir);
	if (!d) {
		err_errno("open '%s'", dir);
		goto cleanup;
	}
	while ((de = readdir(d))) {
		char *p;
		struct stat st;

		if (de->d_name[0] == '.' || str_endswith(de->d_name, ".lock"))
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		if (stat(p, &st) == 0 && (!older_than_days || st.st_mtime < cutoff) &&
		    partial_idle(dir, de->d_name) &&
		    cache_remove_file(p, dry_run, f, &files, &bytes) < 0) {
			free(p);
			goto cleanup;
		}
		free(p);
	}
	human(bytes, size, sizeof(size));
	fprintf(f, "%s %zu file%s, %s\n", dry_run ? "would free" : "freed", files,
		files == 1 ? "" : "s", size);
	r = 0;
cleanup:
	if (d)
		closedir(d);
	free(dir);
	entries_release(&e);
	strv_free(in_use);
	free(cache);
	return r;
}
