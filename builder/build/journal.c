#include <pthread.h>
#include <sys/file.h>

#include "journal.h"
#include "builder/base/cache.h"
#include "drivers/hypervisor/hypervisor.h"
#include "drivers/target/target.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#define JOURNAL_HEADER "# amiforge journal v1\n"

struct journal {
	char *path;
	int fd;
	unsigned next_id;
	struct strv roots;   /* real paths file and dir entries may lie under */
	pthread_mutex_t lock;  /* one line written at a time; the seal */
	pthread_cond_t never;  /* what a thread appending to a sealed journal waits on */
	bool sealed;
	pthread_t sealer;      /* the only thread that appends once sealed */
};

/* The journal whose entries are being released (journal_cleanup): the
 * file and dir handlers check their paths against its roots. */
static const struct journal *releasing;

/* ---- handlers ------------------------------------------------------------ */

struct handler {
	char *kind;
	journal_release_fn fn;
	void *opaque;
};

static struct handler handlers[JOURNAL_KINDS_MAX];
static size_t nhandlers;
static bool builtins_done;

static void register_builtins(void);

int journal_register(const char *kind, journal_release_fn fn, void *opaque)
{
	size_t i;

	register_builtins();
	for (i = 0; i < nhandlers; i++) {
		if (strcmp(handlers[i].kind, kind) == 0) {
			handlers[i].fn = fn;
			handlers[i].opaque = opaque;
			return 0;
		}
	}
	if (nhandlers == JOURNAL_KINDS_MAX)
		return err_set("journal: more than %d resource kinds", JOURNAL_KINDS_MAX);
	handlers[nhandlers].kind = xstrdup(kind);
	handlers[nhandlers].fn = fn;
	handlers[nhandlers].opaque = opaque;
	nhandlers++;
	return 0;
}

static const struct handler *find_handler(const char *kind)
{
	size_t i;

	register_builtins();
	for (i = 0; i < nhandlers; i++)
		if (strcmp(handlers[i].kind, kind) == 0)
			return &handlers[i];
	return NULL;
}

static int need_fields(const struct journal_entry *e, size_t n)
{
	if (e->nfields < n)
		return err_set("journal: '%s' resource %u needs %zu fields, has %zu", e->kind,
			       e->id, n, e->nfields);
	return 0;
}

/* ---- where file and dir entries may point ---------------------------------- */

/* A path as amiforge writes it: absolute, no empty, "." or ".." component,
 * no trailing slash. */
static bool path_plain(const char *p)
{
	const char *c = p;

	if (p[0] != '/' || !p[1])
		return false;
	while (*c == '/') {
		const char *e = strchr(c + 1, '/');
		size_t n = e ? (size_t)(e - c - 1) : strlen(c + 1);

		if (n == 0 || (n == 1 && c[1] == '.') || (n == 2 && c[1] == '.' && c[2] == '.'))
			return false;
		if (!e)
			break;
		c = e;
	}
	return true;
}

/* The staging parents: $TMPDIR, /var/tmp (the build's default) and /tmp,
 * as real paths: a build run with another TMPDIR than clean's is found. */
static void staging_parents(struct strv *out)
{
	const char *tmp = getenv("TMPDIR");
	const char *const fixed[] = { "/var/tmp", "/tmp" };
	char *r;
	size_t i;

	if (tmp && tmp[0] == '/' && (r = realpath(tmp, NULL))) {
		strv_push(out, r);
		free(r);
	}
	for (i = 0; i < ARRAY_SIZE(fixed); i++)
		if ((r = realpath(fixed[i], NULL))) {
			strv_push(out, r);
			free(r);
		}
}

/* Is p (plain) directly or below root? *rest gets what follows "root/"
 * ("" when p is root itself). */
static bool under(const char *p, const char *root, const char **rest)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		n = 0;
	if (strncmp(p, root, n) != 0 || (p[n] != '/' && p[n] != '\0'))
		return false;
	*rest = p[n] ? p + n + 1 : p + n;
	return true;
}

/* Walk rel below the directory open at fd without following a symlink:
 * on 1, *parent is the directory holding the last component and *leaf that
 * component; 0: a component is already gone; -1: refused. fd is consumed. */
static int walk(int fd, const char *path, const char *rel, int *parent, const char **leaf)
{
	char comp[NAME_MAX + 1];
	const char *c = rel, *e;

	while ((e = strchr(c, '/'))) {
		int nfd;

		if ((size_t)(e - c) > NAME_MAX) {
			close(fd);
			return err_set("journal path '%s': component too long", path);
		}
		memcpy(comp, c, (size_t)(e - c));
		comp[e - c] = '\0';
		nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (nfd < 0) {
			if (errno == ENOENT)
				return 0;
			if (errno == ELOOP || errno == ENOTDIR)
				return err_set("journal path '%s': '%s' is a symbolic link or not a "
					       "directory: refused", path, comp);
			return err_errno("journal path '%s'", path);
		}
		fd = nfd;
		c = e + 1;
	}
	*parent = fd;
	*leaf = c;
	return 1;
}

/* Resolve a file/dir entry's path inside the build directory, the cache or
 * a staging directory (<$TMPDIR or /var/tmp>/amiforge-build-*, owned by this
 * user) or a guest's or an early appliance's socket directory
 * (/tmp/amiforge-sock-*, guest.c and appliance.c; libguestfs's own
 * /tmp/libguestfs*, which an early appliance's build journals),
 * following no symlink. 1 with *parent and *leaf (see walk), 0 when
 * it is already gone, -1 refused. */
static int resolve_entry(const char *path, int *parent, const char **leaf)
{
	struct strv tmp = STRV_INIT;
	const char *rest = NULL;
	size_t i;
	int fd = -1, r = -1;

	if (!releasing)
		return err_set("journal path '%s': no journal being released", path);
	if (!path_plain(path))
		return err_set("journal path '%s': not an absolute path without '.', '..' or "
			       "'//': refused", path);
	for (i = 0; i < releasing->roots.n; i++) {
		if (under(path, releasing->roots.v[i], &rest) && *rest) {
			fd = open(releasing->roots.v[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				return err_errno("journal root '%s'", releasing->roots.v[i]);
			return walk(fd, path, rest, parent, leaf);
		}
	}
	staging_parents(&tmp);
	for (i = 0; i < tmp.n; i++) {
		struct stat st;
		const char *slash;
		int dfd;

		if (!under(path, tmp.v[i], &rest) || (!str_startswith(rest, "amiforge-build-") &&
							  !str_startswith(rest, "amiforge-sock-") &&
							  !str_startswith(rest, "libguestfs")))
			continue;
		/* The staging directory itself: a directory of ours, in a
		 * sticky world-writable parent nobody else can rename it in. */
		fd = open(tmp.v[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			err_errno("staging parent '%s'", tmp.v[i]);
			goto done;
		}
		slash = strchr(rest, '/');
		if (!slash) {
			*parent = fd;
			*leaf = rest;
			fd = -1;
			r = 1;
			goto done;
		}
		{
			char *sd = xstrndup(rest, (size_t)(slash - rest));

			dfd = openat(fd, sd, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			free(sd);
		}
		if (dfd < 0) {
			r = errno == ENOENT ? 0 : err_set("journal path '%s': staging directory "
							  "is not a directory: refused", path);
			goto done;
		}
		if (fstat(dfd, &st) < 0 || st.st_uid != geteuid()) {
			close(dfd);
			err_set("journal path '%s': staging directory not owned by this user: "
				"refused", path);
			goto done;
		}
		r = walk(dfd, path, slash + 1, parent, leaf);
		goto done;
	}
	err_set("journal path '%s': outside the build directory, its staging directory and "
		"the cache: refused", path);
done:
	if (fd >= 0)
		close(fd);
	strv_release(&tmp);
	return r;
}

static int release_file(const struct journal_entry *e, void *opaque UNUSED)
{
	const char *leaf;
	int pfd, r;

	if (need_fields(e, 1) < 0)
		return -1;
	r = resolve_entry(e->fields[0], &pfd, &leaf);
	if (r <= 0)
		return r;
	r = 0;
	if (unlinkat(pfd, leaf, 0) < 0 && errno != ENOENT)
		r = err_errno("remove '%s'", e->fields[0]);
	close(pfd);
	return r;
}

static int release_dir(const struct journal_entry *e, void *opaque UNUSED)
{
	const char *leaf;
	struct stat st;
	int pfd, r;

	if (need_fields(e, 1) < 0)
		return -1;
	r = resolve_entry(e->fields[0], &pfd, &leaf);
	if (r <= 0)
		return r;
	r = 0;
	if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			r = err_errno("stat '%s'", e->fields[0]);
	} else if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(pfd, leaf, 0) < 0 && errno != ENOENT)
			r = err_errno("remove '%s'", e->fields[0]);
	} else if (st.st_uid != geteuid()) {
		r = err_set("remove '%s': not owned by this user: refused", e->fields[0]);
	} else {
		/* Its parents were walked without symlinks; nftw does not
		 * follow the ones inside. */
		r = remove_tree(e->fields[0]);
	}
	close(pfd);
	return r;
}

/* A process journal_add_pid() recorded: proc.h. */
static int release_pid(const struct journal_entry *e, void *opaque UNUSED)
{
	if (need_fields(e, 3) < 0)
		return -1;
	return proc_release((const char *const *)e->fields, e->nfields);
}

/* A guest a hypervisor driver started (hypervisor.h's release op). */
static int release_guest(const struct journal_entry *e, void *opaque)
{
	const struct hv_driver *drv = opaque;

	return drv->release((const char *const *)e->fields, e->nfields);
}

/* A resource a target driver created (target.h's table): its handler. */
static int release_target(const struct journal_entry *e, void *opaque)
{
	const struct target_release *t = opaque;

	if (need_fields(e, 1) < 0)
		return -1;
	return t->release(e->kind, e->fields[0], e->nfields > 1 ? e->fields[1] : "");
}

static void register_builtins(void)
{
	static const struct { const char *kind; journal_release_fn fn; } b[] = {
		{ "file", release_file }, { "dir", release_dir }, { "pid", release_pid },
	};
	size_t i;

	if (builtins_done)
		return;
	builtins_done = true;
	for (i = 0; i < ARRAY_SIZE(b); i++)
		journal_register(b[i].kind, b[i].fn, NULL);
	for (i = 0; hv_drivers[i]; i++)
		if (hv_drivers[i]->release_kind)
			journal_register(hv_drivers[i]->release_kind, release_guest,
					 (void *)hv_drivers[i]);
	for (i = 0; target_releases[i].kind; i++)
		journal_register(target_releases[i].kind, release_target,
				 (void *)&target_releases[i]);
}

/* ---- encoding ------------------------------------------------------------- */

static bool plain_byte(unsigned char c)
{
	return c > ' ' && c < 0x7f && c != '%';
}

static int encode(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!*p)
		return buf_adds(b, "%-");
	for (; *p; p++) {
		if (plain_byte(*p)) {
			if (buf_addc(b, (char)*p) < 0)
				return -1;
		} else if (buf_printf(b, "%%%02X", *p) < 0) {
			return -1;
		}
	}
	return 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode a token in place. 0 or -1. */
static int decode(char *s)
{
	char *w = s;

	if (strcmp(s, "%-") == 0) {
		*s = '\0';
		return 0;
	}
	for (; *s; s++) {
		if (*s == '%') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);

			if (lo < 0 || (hi == 0 && lo == 0))
				return -1;
			*w++ = (char)(hi * 16 + lo);
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return 0;
}

/* ---- file ------------------------------------------------------------------ */

void journal_entries_free(struct journal_entry *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(e[i].kind);
		strv_free(e[i].fields);
	}
	free(e);
}

static struct journal_entry *find_entry(struct journal_entry *e, size_t n, unsigned id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (e[i].id == id)
			return &e[i];
	return NULL;
}

/* Parse one complete line (without its newline). */
static int parse_line(const char *path, size_t lineno, char *line, struct journal_entry **e,
		      size_t *n)
{
	char *tok[JOURNAL_FIELDS_MAX + 3], *save = NULL, *t;
	size_t nt = 0, i;
	uint64_t id;
	struct journal_entry *en;

	if (!line[0] || line[0] == '#')
		return 0;
	for (t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (nt == ARRAY_SIZE(tok))
			return err_set("%s:%zu: too many fields", path, lineno);
		tok[nt++] = t;
	}
	if (nt < 2 || strlen(tok[0]) != 1 || parse_u64(tok[1], UINT_MAX, &id) < 0 || id == 0)
		return err_set("%s:%zu: malformed journal line", path, lineno);
	if (tok[0][0] == '-' || tok[0][0] == '=' || tok[0][0] == '~') {
		en = find_entry(*e, *n, (unsigned)id);
		if (!en || nt != 2)
			return err_set("%s:%zu: release of unknown resource %llu", path, lineno,
				       (unsigned long long)id);
		en->state = tok[0][0] == '-' ? JOURNAL_RELEASED
			    : tok[0][0] == '=' ? JOURNAL_KEPT : JOURNAL_HELD;
		return 0;
	}
	if (tok[0][0] != '+' || nt < 3 || find_entry(*e, *n, (unsigned)id))
		return err_set("%s:%zu: malformed journal line", path, lineno);
	*e = xrealloc(*e, (*n + 1) * sizeof(**e));
	en = &(*e)[*n];
	memset(en, 0, sizeof(*en));
	en->id = (unsigned)id;
	en->fields = xcalloc(nt - 2, sizeof(char *));
	for (i = 2; i < nt; i++) {
		if (decode(tok[i]) < 0) {
			strv_free(en->fields);
			free(en->kind);
			return err_set("%s:%zu: bad escape in journal field", path, lineno);
		}
		if (i == 2)
			en->kind = xstrdup(tok[i]);
		else
			en->fields[en->nfields++] = xstrdup(tok[i]);
	}
	(*n)++;
	return 0;
}

int journal_load(const char *path, struct journal_entry **entries, size_t *n)
{
	struct buf b = BUF_INIT(JOURNAL_SIZE_MAX);
	char *p, *nl;
	size_t lineno = 0;
	int r = -1;

	*entries = NULL;
	*n = 0;
	if (buf_read_file(&b, path) < 0)
		return -1;
	for (p = b.data; p && *p; p = nl + 1) {
		nl = strchr(p, '\n');
		lineno++;
		if (!nl)
			break;   /* torn last line (crash mid-write): ignored */
		*nl = '\0';
		if (nl - p >= JOURNAL_LINE_MAX) {
			err_set("%s:%zu: line longer than %d bytes", path, lineno, JOURNAL_LINE_MAX);
			goto cleanup;
		}
		if (parse_line(path, lineno, p, entries, n) < 0)
			goto cleanup;
	}
	r = 0;
cleanup:
	if (r < 0) {
		journal_entries_free(*entries, *n);
		*entries = NULL;
		*n = 0;
	}
	buf_release(&b);
	return r;
}

int journal_live_count(const char *path)
{
	struct journal_entry *e;
	size_t n, i;
	int live = 0;

	if (journal_load(path, &e, &n) < 0)
		return -1;
	for (i = 0; i < n; i++)
		live += e[i].state == JOURNAL_LIVE || e[i].state == JOURNAL_HELD;
	journal_entries_free(e, n);
	return live;
}

/* A crash mid-write left a line without its newline: its fields may be cut
 * short (a path prefix!), so it is dropped, never completed. */
static int drop_torn_tail(int fd, off_t size)
{
	char chunk[4096];
	off_t pos = size;

	while (pos > 0) {
		size_t n = pos < (off_t)sizeof(chunk) ? (size_t)pos : sizeof(chunk);
		ssize_t got = pread(fd, chunk, n, pos - (off_t)n);

		if (got != (ssize_t)n)
			return -1;
		while (n > 0 && chunk[n - 1] != '\n')
			n--, pos--;
		if (n > 0)
			break;
	}
	return ftruncate(fd, pos) < 0 || fsync(fd) < 0 ? -1 : 0;
}

/* The build directory (the journal's, which must be private too) and the
 * cache, as real paths. */
static int journal_roots(struct journal *j)
{
	char *dir = xstrdup(j->path), *slash = strrchr(dir, '/'), *real, *cache;
	int r = -1;

	if (slash)
		*slash = '\0';
	real = realpath(slash ? (dir[0] ? dir : "/") : ".", NULL);
	if (!real) {
		err_errno("journal '%s': its directory", j->path);
		goto cleanup;
	}
	if (path_check_private(real, "build directory") < 0)
		goto cleanup;
	strv_push(&j->roots, real);
	cache = cache_dir();
	if (cache) {
		char *rc = realpath(cache, NULL);

		if (rc)
			strv_push(&j->roots, rc);
		free(rc);
		free(cache);
	} else {
		err_clear();
	}
	r = 0;
cleanup:
	free(real);
	free(dir);
	return r;
}

int journal_allow_root(struct journal *j, const char *dir)
{
	char *real = realpath(dir, NULL);

	if (!real)
		return err_errno("journal: directory '%s'", dir);
	strv_push(&j->roots, real);
	free(real);
	return 0;
}

struct journal *journal_open(const char *path)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	struct journal_entry *e = NULL;
	size_t n = 0, i;
	struct stat st;
	char last;

	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->never, NULL);
	j->path = xstrdup(path);
	j->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (j->fd < 0) {
		err_errno("open journal '%s'", path);
		goto fail;
	}
	/* Its lines name what clean removes, kills and destroys: only a
	 * journal this user wrote, in a directory only this user writes. */
	if (fd_check_private(j->fd, path, "journal") < 0 || journal_roots(j) < 0)
		goto fail;
	if (flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			err_set("journal '%s' is in use by a running build", path);
		else
			err_errno("lock journal '%s'", path);
		goto fail;
	}
	if (fstat(j->fd, &st) < 0) {
		err_errno("stat journal '%s'", path);
		goto fail;
	}
	if (st.st_size == 0) {
		if (write_all(j->fd, JOURNAL_HEADER, strlen(JOURNAL_HEADER)) < 0 || fsync(j->fd) < 0) {
			err_errno("write journal '%s'", path);
			goto fail;
		}
	} else {
		if (pread(j->fd, &last, 1, st.st_size - 1) == 1 && last != '\n' &&
		    drop_torn_tail(j->fd, st.st_size) < 0) {
			err_errno("repair journal '%s'", path);
			goto fail;
		}
		if (journal_load(path, &e, &n) < 0)
			goto fail;
	}
	j->next_id = 1;
	for (i = 0; i < n; i++)
		if (e[i].id >= j->next_id)
			j->next_id = e[i].id + 1;
	journal_entries_free(e, n);
	return j;
fail:
	journal_close(j);
	return NULL;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);   /* releases the flock */
	strv_release(&j->roots);
	pthread_cond_destroy(&j->never);
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j);
}

static int append(struct journal *j, struct buf *line)
{
	int r = 0;

	log_redact(line);
	if (buf_addc(line, '\n') < 0)
		return err_prefix("journal '%s'", j->path);
	pthread_mutex_lock(&j->lock);
	while (j->sealed && !pthread_equal(j->sealer, pthread_self()))
		pthread_cond_wait(&j->never, &j->lock);
	/* O_APPEND and one write: a line is never interleaved or split
	 * (short of a crash mid-write, which the reader tolerates). */
	if (write_all(j->fd, line->data, line->len) < 0 || fdatasync(j->fd) < 0)
		r = err_errno("write journal '%s'", j->path);
	pthread_mutex_unlock(&j->lock);
	return r;
}

void journal_seal(struct journal *j)
{
	pthread_mutex_lock(&j->lock);
	j->sealed = true;
	j->sealer = pthread_self();
	pthread_mutex_unlock(&j->lock);
}

int journal_addv(struct journal *j, unsigned *id, const char *kind,
		 const char *const *fields)
{
	struct buf line = BUF_INIT(JOURNAL_LINE_MAX - 1);
	size_t i;
	int r = -1;

	if (!kind[0] || strchr(kind, ' ') || strchr(kind, '%')) {
		err_set("journal: bad resource kind '%s'", kind);
		return -1;
	}
	if (buf_printf(&line, "+ %u %s", j->next_id, kind) < 0)
		goto cleanup;
	for (i = 0; fields && fields[i]; i++) {
		if (i == JOURNAL_FIELDS_MAX) {
			err_set("journal: more than %d fields", JOURNAL_FIELDS_MAX);
			goto cleanup;
		}
		if (buf_addc(&line, ' ') < 0 || encode(&line, fields[i]) < 0)
			goto cleanup;
	}
	if (append(j, &line) < 0)
		goto cleanup;
	if (id)
		*id = j->next_id;
	j->next_id++;
	r = 0;
cleanup:
	if (r < 0 && !err_isset())
		err_set("journal: line too long");
	buf_release(&line);
	return r;
}

int journal_add(struct journal *j, unsigned *id, const char *kind, ...)
{
	const char *fields[JOURNAL_FIELDS_MAX + 1];
	const char *f;
	size_t n = 0;
	va_list ap;

	va_start(ap, kind);
	while ((f = va_arg(ap, const char *)) != NULL) {
		if (n == JOURNAL_FIELDS_MAX) {
			va_end(ap);
			return err_set("journal: more than %d fields", JOURNAL_FIELDS_MAX);
		}
		fields[n++] = f;
	}
	va_end(ap);
	fields[n] = NULL;
	return journal_addv(j, id, kind, fields);
}

int journal_add_pid(struct journal *j, unsigned *id, const char *kind, pid_t pid)
{
	char spid[32], sst[32], exe[PATH_MAX];
	uint64_t st;

	if (proc_starttime(pid, &st) < 0)
		return err_errno("start time of process %ld", (long)pid);
	if (proc_exe(pid, exe, sizeof(exe)) < 0)
		return err_errno("executable of process %ld", (long)pid);
	snprintf(spid, sizeof(spid), "%ld", (long)pid);
	snprintf(sst, sizeof(sst), "%llu", (unsigned long long)st);
	return journal_add(j, id, kind, spid, sst, exe, NULL);
}

static int mark(struct journal *j, unsigned id, char c)
{
	struct buf line = BUF_INIT(64);
	int r;

	if (id == 0 || id >= j->next_id)
		return err_set("journal: no resource %u", id);
	buf_printf(&line, "%c %u", c, id);
	r = append(j, &line);
	buf_release(&line);
	return r;
}

int journal_release(struct journal *j, unsigned id)
{
	return mark(j, id, '-');
}

int journal_keep(struct journal *j, unsigned id)
{
	return mark(j, id, '=');
}

int journal_hold_live(struct journal *j)
{
	struct journal_entry *e;
	size_t n, i;
	int r = 0;

	if (journal_load(j->path, &e, &n) < 0)
		return -1;
	for (i = 0; i < n && r == 0; i++)
		if (e[i].state == JOURNAL_LIVE)
			r = mark(j, e[i].id, '~');
	journal_entries_free(e, n);
	return r;
}

int journal_resource(struct journal *j, enum journal_event ev, const char *kind,
		     const char *id, const char *region)
{
	struct journal_entry *e;
	size_t n, i;
	unsigned found = 0;
	int r;

	if (ev == JOURNAL_EV_CREATED)
		return journal_add(j, NULL, kind, id, region ? region : "", NULL);
	if (journal_load(j->path, &e, &n) < 0)
		return -1;
	for (i = n; i-- > 0 && !found;)
		if ((e[i].state == JOURNAL_LIVE || e[i].state == JOURNAL_HELD) &&
		    strcmp(e[i].kind, kind) == 0 && e[i].nfields > 0 &&
		    strcmp(e[i].fields[0], id) == 0)
			found = e[i].id;
	journal_entries_free(e, n);
	if (ev == JOURNAL_EV_RELEASED)
		return found ? journal_release(j, found) : 0;
	if (found)
		return journal_keep(j, found);
	if (journal_add(j, &found, kind, id, region ? region : "", NULL) < 0)
		return -1;
	r = journal_keep(j, found);
	return r < 0 ? -1 : 1;
}

static void describe(const struct journal_entry *e, struct buf *b)
{
	size_t i;

	buf_printf(b, "%s", e->kind);
	for (i = 0; i < e->nfields; i++)
		buf_printf(b, " %s", e->fields[i]);
}

int journal_cleanup(struct journal *j, bool dry_run, FILE *report, unsigned *released,
		    unsigned *failed)
{
	struct journal_entry *e;
	char *first = NULL;
	unsigned ok = 0, bad = 0;
	size_t n, i;

	if (released)
		*released = 0;
	if (failed)
		*failed = 0;
	if (journal_load(j->path, &e, &n) < 0)
		return -1;
	releasing = j;
	for (i = n; i-- > 0;) {
		const struct handler *h;
		struct buf what = BUF_INIT(JOURNAL_LINE_MAX * 4);
		int r;

		if (e[i].state != JOURNAL_LIVE && e[i].state != JOURNAL_HELD)
			continue;
		describe(&e[i], &what);
		h = find_handler(e[i].kind);
		if (dry_run) {
			if (report)
				fprintf(report, "would release %s%s%s\n", what.data ? what.data : "",
					e[i].state == JOURNAL_HELD ? " (kept for inspection)" : "",
					h ? "" : " (no handler for this kind)");
			buf_release(&what);
			continue;
		}
		if (!h || !h->fn)
			r = err_set("no cleanup handler for '%s' resources (%s)", e[i].kind,
				    what.data ? what.data : "");
		else
			r = h->fn(&e[i], h->opaque);
		if (r == 0 && journal_release(j, e[i].id) < 0)
			r = -1;
		if (r == 0) {
			ok++;
			if (report)
				fprintf(report, "released %s\n", what.data ? what.data : "");
		} else {
			bad++;
			if (!first)
				first = xstrdup(err_msg());
			if (report)
				fprintf(report, "FAILED to release %s: %s\n",
					what.data ? what.data : "", err_msg());
		}
		buf_release(&what);
	}
	releasing = NULL;
	journal_entries_free(e, n);
	if (released)
		*released = ok;
	if (failed)
		*failed = bad;
	if (bad) {
		err_set("%u resource%s not released: %s", bad, bad == 1 ? "" : "s", first);
		free(first);
		return -1;
	}
	return 0;
}
