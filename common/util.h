/* util.h: allocation that cannot fail quietly, strict number parsing, small
 * string and file helpers. libc only: the guest agent links this too. */
#ifndef AMIFORGE_UTIL_H
#define AMIFORGE_UTIL_H

#include "compat.h"

/* Allocation: on failure print one line and abort(). Only for sizes the
 * program chose or checked against a named limit first. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* A large transfer buffer (a whole number of pages, zeroed) that a child
 * made by fork() does not share (MADV_DONTFORK): the helpers started while
 * a transfer runs (qemu-img) then cost no copy-on-write fault on it. The
 * child execs at once and never touches it. Freed with xfree_nofork(). */
void *xmalloc_nofork(size_t n);
void xfree_nofork(void *p, size_t n);

/* Parse the whole of s as a base-10 integer within [min, max].
 * 0 or -1 with "invalid number 'x'" / "number 'x' out of range". */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
int parse_u64(const char *s, uint64_t max, uint64_t *out);

/* Parse a size such as "512", "64K", "8M", "2G", "1T" (binary units;
 * "MiB"/"GiB" accepted too) into bytes. 0 or -1. */
int parse_size(const char *s, uint64_t *out);

bool str_startswith(const char *s, const char *prefix);
bool str_endswith(const char *s, const char *suffix);
/* True for a single file name that is safe to join to a directory: not
 * empty, not "." or "..", no '/', at most NAME_MAX bytes. For names that
 * come from a guest or an archive. */
bool name_is_safe(const char *name);
/* The value of KEY= in os-release(5) TEXT, quotes and trailing blanks
 * removed; NULL when absent. Caller frees. */
char *os_release_value(const char *text, const char *key);

/* A copy of s[0..len) safe to print on a terminal: control characters
 * (C0 other than '\t' and, when keep_newlines, '\n'; DEL; the C1 controls
 * U+0080..U+009F in UTF-8) become "\xNN" (C1: "\xc2\xNN"), so text from a
 * guest, a YAML file or an HTTP answer cannot move the cursor, retitle the
 * window or hide what came before. Files keep the original text. Caller frees. */
char *str_escape_ctl(const char *s, size_t len, bool keep_newlines);
/* True when s[0..len) has something str_escape_ctl() would change. */
bool str_has_ctl(const char *s, size_t len, bool keep_newlines);

/* NULL-terminated string vectors (argv, env). */
struct strv {
	char **v;   /* always NULL-terminated once anything was pushed */
	size_t n;
	size_t cap;
};
#define STRV_INIT { NULL, 0, 0 }
void strv_push(struct strv *sv, const char *s);              /* copies s */
void strv_pushf(struct strv *sv, const char *fmt, ...) PRINTF_LIKE(2, 3);
void strv_release(struct strv *sv);
bool strv_has(const struct strv *sv, const char *s);             /* s is one of them */
/* Free a NULL-terminated vector and its strings; accepts NULL. */
void strv_free(char **v);
/* The NULL-terminated words joined with sep between them ("a, b, c" for a
 * message). Caller frees. */
char *words_join(const char *const *words, const char *sep);

/* write(2)/read(2) the whole length, retrying on EINTR and short counts.
 * write_all: 0 or -1 (errno set). read_all: bytes read (< n only at EOF) or -1. */
int write_all(int fd, const void *p, size_t n);

/* writev(2) all of iov[0..cnt) to a non-blocking fd (iov is advanced in
 * place). When the fd is full, wait(opaque) is called: 0 to try again,
 * anything else to stop (its value is returned). 0, or -1 with errno set
 * when writev fails (nothing recorded: the caller knows what the fd is). */
struct iovec;
int writev_all(int fd, struct iovec *iov, int cnt, int (*wait)(void *opaque), void *opaque);
ssize_t read_all(int fd, void *p, size_t n);

/* Write data to path atomically: a temporary file beside it, fsync, rename.
 * 0 or -1 with an error recorded. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Open path read-only if it is a regular file and not a symlink
 * (O_NOFOLLOW, O_NONBLOCK: a FIFO does not block). The descriptor, or -1
 * with "open 'path': ..." recorded (errno kept: ENOENT when missing). */
int open_regular(const char *path);

/* Little-endian integers at p, read and written, any alignment, whatever
 * the host's order (disk headers, the agent protocol, hashes, VMDK). */
static inline uint16_t get_le16(const void *p)
{
	const uint8_t *b = p;

	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t get_le32(const void *p)
{
	const uint8_t *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t get_le64(const void *p)
{
	const uint8_t *b = p;

	return (uint64_t)get_le32(b) | (uint64_t)get_le32(b + 4) << 32;
}

static inline void put_le16(void *p, uint16_t v)
{
	uint8_t *b = p;

	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(void *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16((uint8_t *)p + 2, (uint16_t)(v >> 16));
}

static inline void put_le64(void *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* mkdir -p with mode for created directories. 0 or -1. */
int mkdir_p(const char *path, mode_t mode);

/* A file or directory amiforge may act on as written by this user: not a
 * symlink, owned by the effective uid, not writable by group or others.
 * what names it in the error ("build directory", "journal"). 0 or -1. */
int path_check_private(const char *path, const char *what);
/* The same on an open descriptor. */
int fd_check_private(int fd, const char *path, const char *what);

/* Remove a file or a whole tree (no symlink following). 0 or -1. */
int remove_tree(const char *path);

/* Where temporary files go: $TMPDIR when it is an absolute path, else dflt
 * ("/tmp" for small files, "/var/tmp" for disks: /tmp is often a tmpfs). */
const char *tmp_dir(const char *dflt);
/* A new private directory <tmp_dir(dflt)>/<prefix>XXXXXX (mkdtemp(3): never
 * an existing one, mode 0700): its path (caller frees), or NULL with
 * "create a temporary directory '...'" recorded. */
char *make_temp_dir(const char *prefix, const char *dflt);
/* The same in parent, whatever $TMPDIR says. */
char *make_temp_dir_in(const char *parent, const char *prefix);
/* The directories these made are remembered until removed (remove_tree or
 * rmdir_temp): temp_dirs_remove_all() removes what is left, for a process
 * that ends on a signal (guest.c's watcher); temp_dir_forget() keeps one (a
 * console log the user is told about). */
int rmdir_temp(const char *path);
void temp_dir_forget(const char *path);
void temp_dirs_remove_all(void);

/* The closest of words[0..n) to s by edit distance, when close enough to be
 * a likely typo; otherwise NULL. For "did you mean" hints. */
const char *closest_word(const char *s, const char *const *words, size_t n);

/* Monotonic clock in milliseconds. */
int64_t now_ms(void);

/* UTC seconds t as "YYYY-MM-DDTHH:MM:SSZ" (caller frees). */
char *utc_iso8601(int64_t t);

#endif
