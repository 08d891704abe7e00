#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "util.h"
#include "error.h"

static void oom(size_t n)
{
	fprintf(stderr, "amiforge: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *xmalloc_nofork(size_t n)
{
	void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		oom(n);
	madvise(p, n ? n : 1, MADV_DONTFORK);	/* advice: still correct without */
	return p;
}

void xfree_nofork(void *p, size_t n)
{
	if (p)
		munmap(p, n ? n : 1);
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		oom(nmemb * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	return p;
}

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
		return err_set("invalid number '%s'", s ? s : "");
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return err_set("invalid number '%s'", s);
	if (errno == ERANGE || v < min || v > max)
		return err_set("number '%s' out of range [%" PRId64 ", %" PRId64 "]",
			       s, min, max);
	*out = v;
	return 0;
}

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return err_set("invalid number '%s'", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return err_set("invalid number '%s'", s);
	if (errno == ERANGE || v > max)
		return err_set("number '%s' out of range [0, %" PRIu64 "]", s, max);
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	static const struct { const char *suffix; unsigned shift; } units[] = {
		{ "", 0 }, { "B", 0 },
		{ "K", 10 }, { "KiB", 10 }, { "k", 10 },
		{ "M", 20 }, { "MiB", 20 },
		{ "G", 30 }, { "GiB", 30 },
		{ "T", 40 }, { "TiB", 40 },
	};
	char *end;
	unsigned long long v;
	size_t i;

	if (!s || *s < '0' || *s > '9')
		return err_set("invalid size '%s'", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return err_set("size '%s' out of range", s);
	for (i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
				return err_set("size '%s' out of range", s);
			*out = (uint64_t)v << units[i].shift;
			return 0;
		}
	}
	return err_set("invalid size '%s' (use a number with K, M, G or T)", s);
}

bool str_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Length of the control sequence at s (0: none): 1 for C0/DEL, 2 for a
 * UTF-8 encoded C1 control. */
static size_t ctl_len(const unsigned char *s, size_t left, bool keep_newlines)
{
	if (s[0] == 0x7f || (s[0] < 0x20 && s[0] != '\t' && !(keep_newlines && s[0] == '\n')))
		return 1;
	if (s[0] == 0xc2 && left > 1 && s[1] >= 0x80 && s[1] <= 0x9f)
		return 2;
	return 0;
}

bool str_has_ctl(const char *s, size_t len, bool keep_newlines)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (ctl_len((const unsigned char *)s + i, len - i, keep_newlines))
			return true;
	return false;
}

char *str_escape_ctl(const char *s, size_t len, bool keep_newlines)
{
	const unsigned char *u = (const unsigned char *)s;
	char *out, *o;
	size_t i;

	if (len > (SIZE_MAX - 1) / 4)
		abort();
	out = o = xmalloc(4 * len + 1);   /* each byte becomes at most 4 */
	for (i = 0; i < len; i++) {
		size_t n = ctl_len(u + i, len - i, keep_newlines), k;

		for (k = 0; k < n; k++) {
			snprintf(o, 5, "\\x%02x", u[i + k]);
			o += 4;
		}
		if (n) {
			i += n - 1;
			continue;
		}
		*o++ = (char)u[i];
	}
	*o = '\0';
	return out;
}

bool name_is_safe(const char *name)
{
	return name && *name && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
	       !strchr(name, '/') && strlen(name) <= NAME_MAX;
}

bool str_endswith(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

void strv_push(struct strv *sv, const char *s)
{
	if (sv->n + 2 > sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 8;
		sv->v = xrealloc(sv->v, sv->cap * sizeof(*sv->v));
	}
	sv->v[sv->n++] = xstrdup(s);
	sv->v[sv->n] = NULL;
}

void strv_pushf(struct strv *sv, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		oom(0);
	va_end(ap);
	strv_push(sv, p);
	free(p);
}

bool strv_has(const struct strv *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

void strv_release(struct strv *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
	sv->cap = 0;
}

void strv_free(char **v)
{
	char **p;

	if (!v)
		return;
	for (p = v; *p; p++)
		free(*p);
	free(v);
}

char *words_join(const char *const *words, const char *sep)
{
	size_t len = 1, i;
	char *s, *p;

	for (i = 0; words[i]; i++)
		len += strlen(words[i]) + (i ? strlen(sep) : 0);
	p = s = xmalloc(len);
	*p = '\0';
	for (i = 0; words[i]; i++)
		p = stpcpy(i ? stpcpy(p, sep) : p, words[i]);
	return s;
}

int writev_all(int fd, struct iovec *iov, int cnt, int (*wait)(void *opaque), void *opaque)
{
	int idx = 0, r;

	while (idx < cnt) {
		ssize_t w = writev(fd, iov + idx, cnt - idx);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			if ((r = wait(opaque)) != 0)
				return r;
			continue;
		}
		if (w < 0)
			return -1;
		while (idx < cnt && (size_t)w >= iov[idx].iov_len) {
			w -= (ssize_t)iov[idx].iov_len;
			idx++;
		}
		if (idx < cnt) {
			iov[idx].iov_base = (char *)iov[idx].iov_base + w;
			iov[idx].iov_len -= (size_t)w;
		}
	}
	return 0;
}

int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t read_all(int fd, void *p, size_t n)
{
	char *c = p;
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, c + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd, r = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		err_errno("create '%s'", tmp);
		goto cleanup;
	}
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		err_errno("write '%s'", tmp);
		close(fd);
		unlink(tmp);
		goto cleanup;
	}
	if (close(fd) < 0) {
		err_errno("close '%s'", tmp);
		unlink(tmp);
		goto cleanup;
	}
	if (rename(tmp, path) < 0) {
		err_errno("rename '%s' to '%s'", tmp, path);
		unlink(tmp);
		goto cleanup;
	}
	r = 0;
cleanup:
	free(tmp);
	return r;
}

int open_regular(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;

	if (fd < 0)
		return err_errno("open '%s'", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err_set("open '%s': not a regular file", path);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

int mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path), *s;
	int r = -1;

	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				err_errno("mkdir '%s'", p);
				goto cleanup;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	r = 0;
cleanup:
	free(p);
	return r;
}

static int remove_one(const char *path, const struct stat *st UNUSED, int type,
		      struct FTW *ftw UNUSED)
{
	int r = type == FTW_DP ? rmdir(path) : unlink(path);

	if (r < 0 && errno != ENOENT)
		return err_errno("remove '%s'", path);
	return 0;
}

/* The temporary directories alive (make_temp_dir_in): a few per process. */
#define TEMP_DIRS_MAX 32
static pthread_mutex_t temp_lock = PTHREAD_MUTEX_INITIALIZER;
static char *temp_dirs[TEMP_DIRS_MAX];

static void temp_dir_remember(const char *path)
{
	size_t i;

	pthread_mutex_lock(&temp_lock);
	for (i = 0; i < TEMP_DIRS_MAX; i++)
		if (!temp_dirs[i]) {
			temp_dirs[i] = xstrdup(path);
			break;
		}
	pthread_mutex_unlock(&temp_lock);	/* full: not removed on a signal */
}

void temp_dir_forget(const char *path)
{
	size_t i;

	pthread_mutex_lock(&temp_lock);
	for (i = 0; i < TEMP_DIRS_MAX; i++)
		if (temp_dirs[i] && strcmp(temp_dirs[i], path) == 0) {
			free(temp_dirs[i]);
			temp_dirs[i] = NULL;
		}
	pthread_mutex_unlock(&temp_lock);
}

void temp_dirs_remove_all(void)
{
	char *left[TEMP_DIRS_MAX];
	size_t i;

	pthread_mutex_lock(&temp_lock);	/* taken out, then removed unlocked */
	memcpy(left, temp_dirs, sizeof(left));
	memset(temp_dirs, 0, sizeof(temp_dirs));
	pthread_mutex_unlock(&temp_lock);
	for (i = 0; i < TEMP_DIRS_MAX; i++)
		if (left[i]) {
			remove_tree(left[i]);
			free(left[i]);
		}
}

int rmdir_temp(const char *path)
{
	temp_dir_forget(path);
	if (rmdir(path) < 0 && errno != ENOENT)
		return err_errno("remove '%s'", path);
	return 0;
}

int remove_tree(const char *path)
{
	struct stat st;

	temp_dir_forget(path);
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_errno("stat '%s'", path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return err_errno("remove '%s'", path);
		return 0;
	}
	return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

const char *tmp_dir(const char *dflt)
{
	const char *t = getenv("TMPDIR");

	return t && t[0] == '/' ? t : dflt;
}

char *make_temp_dir(const char *prefix, const char *dflt)
{
	return make_temp_dir_in(tmp_dir(dflt), prefix);
}

char *make_temp_dir_in(const char *parent, const char *prefix)
{
	char *tmpl = xasprintf("%s/%sXXXXXX", parent, prefix);

	if (!mkdtemp(tmpl)) {
		err_errno("create a temporary directory '%s'", tmpl);
		free(tmpl);
		return NULL;
	}
	temp_dir_remember(tmpl);
	return tmpl;
}

static int st_check_private(const struct stat *st, const char *path, const char *what)
{
	if (S_ISLNK(st->st_mode))
		return err_set("%s '%s': a symbolic link: refused", what, path);
	if (st->st_uid != geteuid())
		return err_set("%s '%s': owned by uid %lu, not by this user (uid %lu): refused",
			       what, path, (unsigned long)st->st_uid, (unsigned long)geteuid());
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return err_set("%s '%s': writable by group or others (mode %04o): refused", what,
			       path, (unsigned)(st->st_mode & 07777));
	return 0;
}

int path_check_private(const char *path, const char *what)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return err_errno("%s '%s'", what, path);
	return st_check_private(&st, path, what);
}

int fd_check_private(int fd, const char *path, const char *what)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return err_errno("%s '%s'", what, path);
	return st_check_private(&st, path, what);
}

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *os_release_value(const char *text, const char *key)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (p && *p) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			const char *v = p + kl + 1;
			size_t vl = len - kl - 1;

			while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
				v++;
				vl -= 2;
			}
			return xstrndup(v, vl);
		}
		p = e ? e + 1 : NULL;
	}
	return NULL;
}

/* Edit distance counting an adjacent transposition as one edit ("Prot" is
 * one from "Port"): the optimal string alignment distance. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, r;
	size_t (*d)[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	d = xcalloc(la + 1, sizeof(*d));
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;

			r = sub < del ? sub : del;
			r = r < ins ? r : ins;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < r)
				r = d[i - 2][j - 2] + 1;
			d[i][j] = r;
		}
	}
	r = d[la][lb];
	free(d);
	return r;
}

const char *closest_word(const char *s, const char *const *words, size_t n)
{
	const char *best = NULL;
	size_t i, bd = SIZE_MAX, limit = strlen(s) <= 4 ? 1 : strlen(s) <= 8 ? 2 : 3;

	for (i = 0; i < n; i++) {
		size_t d = edit_distance(s, words[i]);

		if (strcasecmp(s, words[i]) == 0)
			d = 0;
		if (d < bd) {
			bd = d;
			best = words[i];
		}
	}
	return bd <= limit ? best : NULL;
}

char *utc_iso8601(int64_t t)
{
	char s[32];
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return xstrdup(s);
}
