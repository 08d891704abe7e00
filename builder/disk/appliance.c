/* appliance.c: a libguestfs appliance on one disk, and the Linux system on
 * it (see appliance.h for why not guestfs_inspect_os). */
#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "appliance.h"
#include "appliance-pvh.h"
#include "drivers/hypervisor/accel.h"
#include "drivers/hypervisor/qmp.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* Largest os-release, release file or fstab read (they are a few hundred
 * bytes; a hostile disk may hold anything). */
#define SMALL_FILE_MAX (64u * 1024)

/* The early appliance's placeholder drive (appliance_early_start): a
 * scratch disk of this size, which no disk it is swapped for has. */
#define PLACEHOLDER_SIZE (1u << 20)
/* Its QMP socket, in the handle's temporary directory. */
#define EARLY_QMP_SOCK "/qmp.sock"
/* The swap: each QMP command, and the appliance's kernel seeing the
 * placeholder go and the disk come (TCG: a second or two). */
#define EARLY_QMP_MS 10000
#define EARLY_SEE_MS 30000
#define EARLY_POLL_MS 20

/* The handle's private key for its temporary directory (below). */
#define TMPDIR_KEY "amiforge_tmpdir"
/* Its key when it counts among the live handles (launch, below). */
#define LIVE_KEY "amiforge_live"

/* The handles from the start of their launch to their close: each has a
 * socket directory for all of that time but two windows without a socket
 * naming it (its launch before the bind, its shutdown before the close), in
 * which the signal watcher cannot find it (appliance_remove_sockdirs). Once
 * the watcher began, no launch starts. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned live;
static bool sealed;

/* Record the handle's last error, naming NAME (or IFNONE when libguestfs
 * kept none). -1. */
static int handle_err(guestfs_h *g, const char *name, const char *ifnone)
{
	return err_set("libguestfs '%s': %s", name,
		       guestfs_last_error(g) ? guestfs_last_error(g) : ifnone);
}

/* The appliance kernel's command line: what it had, then more. */
static int set_append(guestfs_h *g, const char *more)
{
	const char *had = guestfs_get_append(g);
	char *a = had && *had ? xasprintf("%s %s", had, more) : xstrdup(more);
	int r = guestfs_set_append(g, a);

	free(a);
	return r;
}

/* An appliance started before its disk exists (appliance_early_start). */
struct appliance_early {
	pthread_t thread;
	bool joined;
	char *parent;
	void (*made)(const char *dir, void *opaque);
	void *opaque;
	guestfs_h *g;            /* launched, with the placeholder; or NULL */
	char why[ERR_MAX];       /* when not: why */
};

/* Say dir to the early appliance's owner (its made callback): one call at a
 * time, from the launching thread or the one watching it (watch_main). */
static void early_made(const struct appliance_early *e, const char *dir)
{
	static pthread_mutex_t made_lock = PTHREAD_MUTEX_INITIALIZER;

	pthread_mutex_lock(&made_lock);
	e->made(dir, e->opaque);
	pthread_mutex_unlock(&made_lock);
}

/* A handle configured for disk, not launched; disk NULL: for an early
 * appliance, with the placeholder drive and a QMP socket (QEMU's monitor,
 * which libguestfs does not use) to swap it for the disk later: that needs
 * libguestfs's direct backend (it runs QEMU with what guestfs_config adds).
 * libguestfs's temporary directory (its libguestfsXXXXXX, with overlays and
 * the like) goes in one of amiforge's (make_temp_dir), so the removal a
 * signal does (temp_dirs_remove_all) takes it too: the handle is never
 * closed then. */
static guestfs_h *handle(const char *disk, const char *format, bool readonly, const char *name,
			 const struct appliance_early *early)
{
	guestfs_h *g = guestfs_create();
	const char *why;
	struct sockaddr_un sa;
	char *tmp, *backend, *qmp;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int r;

	if (!g) {
		err_set("libguestfs: cannot create a handle for '%s'", name);
		return NULL;
	}
	/* Errors are collected with guestfs_last_error(), not printed. */
	guestfs_set_error_handler(g, NULL, NULL);
	/* An early one's in its parent when its QMP socket's path fits, else
	 * where guest.c puts a guest's sockets (and said to its owner). */
	if (!early || !early->parent)
		tmp = make_temp_dir("amiforge-appliance.", "/tmp");
	else if (strlen(early->parent) + sizeof("/appliance.XXXXXX" EARLY_QMP_SOCK) <=
		 sizeof(sa.sun_path))
		tmp = make_temp_dir_in(early->parent, "appliance.");
	else if ((tmp = make_temp_dir_in("/tmp", "amiforge-sock-")) && early->made)
		early_made(early, tmp);
	if (!tmp) {
		guestfs_close(g);
		return NULL;
	}
	guestfs_set_private(g, TMPDIR_KEY, tmp);
	if (guestfs_set_tmpdir(g, tmp) < 0)
		goto fail;
	if (!accel_kvm_usable(&why)) {
		log_debug("libguestfs under TCG: %s", why);
		if (guestfs_set_backend_setting(g, "force_tcg", "1") < 0)
			goto fail;
	}
	/* Two vCPUs: the appliance boots ~25% faster under TCG (multi-threaded). */
	if (cpus >= 2 && guestfs_set_smp(g, 2) < 0)
		goto fail;
	/* Its machine has a PIIX IDE controller and nothing on it (libguestfs
	 * puts every drive on virtio-scsi): ata_piix's probe of the empty
	 * ports is skipped (0.13 s of the boot under TCG), after whatever
	 * LIBGUESTFS_APPEND asked for. */
	if (set_append(g, "initcall_blacklist=piix_init") < 0)
		goto fail;
	if (disk) {
		if (guestfs_add_drive_opts(g, disk, GUESTFS_ADD_DRIVE_OPTS_READONLY, readonly,
					   GUESTFS_ADD_DRIVE_OPTS_FORMAT, format, -1) < 0)
			goto fail;
		return g;
	}
	backend = guestfs_get_backend(g);
	if (!backend || strcmp(backend, "direct") != 0) {
		err_set("libguestfs '%s': an appliance started early needs the direct backend, "
			"not '%s'", name, backend ? backend : "?");
		free(backend);
		appliance_abandon(g);
		return NULL;
	}
	free(backend);
	if (strchr(tmp, ',') || strlen(tmp) + sizeof(EARLY_QMP_SOCK) > sizeof(sa.sun_path)) {
		/* QEMU's option string would split it; a socket cannot have it */
		err_set("libguestfs '%s': no QMP socket in '%s' (a comma, or too long)", name, tmp);
		appliance_abandon(g);
		return NULL;
	}
	qmp = xasprintf("unix:%s" EARLY_QMP_SOCK ",server=on,wait=off", tmp);
	r = guestfs_config(g, "-qmp", qmp);
	free(qmp);
	if (r < 0 || guestfs_add_drive_scratch(g, PLACEHOLDER_SIZE, -1) < 0)
		goto fail;
	return g;

fail:
	handle_err(g, name, "failed");
	appliance_abandon(g);
	return NULL;
}

static bool interrupted(void)
{
	bool r;

	pthread_mutex_lock(&live_lock);
	r = sealed;
	pthread_mutex_unlock(&live_lock);
	return r;
}

/* guestfs_launch, the handle counted live first; refused once the signal
 * watcher began. -1 with the error recorded. */
static int launch(guestfs_h *g, const char *name)
{
	static char counted;

	pthread_mutex_lock(&live_lock);
	if (sealed) {
		pthread_mutex_unlock(&live_lock);
		return err_set("libguestfs '%s': not started: amiforge is being interrupted", name);
	}
	live++;
	guestfs_set_private(g, LIVE_KEY, &counted);
	pthread_mutex_unlock(&live_lock);
	if (guestfs_launch(g) < 0)
		return handle_err(g, name, "failed");
	return 0;
}

/* A handle for disk (NULL: the early appliance's placeholder) launched:
 * appliance_open(). early: the early appliance it is for, or NULL. */
static guestfs_h *open_launched(const char *disk, const char *format, bool readonly,
				const char *name, const struct appliance_early *early)
{
	guestfs_h *g;
	char *fixed = NULL;

	if (!(g = handle(disk, format, readonly, name, early)))
		return NULL;
	/* The same appliance with a kernel that does not decompress itself
	 * (appliance-pvh.h); where it cannot be had, libguestfs's own. */
	if ((fixed = appliance_pvh_dir(g)) && guestfs_set_path(g, fixed) < 0) {
		handle_err(g, name, "failed");
		goto fail;
	}
	/* An early one starts beside a running step's output: said with --verbose. */
	log_msg(disk ? LOG_INFO : LOG_DEBUG, "starting the libguestfs appliance for '%s' (%s)",
		name, accel_kvm_usable(NULL) ? "KVM" : fixed ? "TCG, about 15 s" : "TCG, about 20 s");
	if (launch(g, name) == 0)
		goto done;
	if (!fixed || interrupted())
		goto fail;	/* interrupted: the disk may be what went */
	/* Not booted from the fixed directory (removed meanwhile by another
	 * amiforge making a newer one, a kernel QEMU would not start):
	 * once more, as libguestfs would. */
	log_debug("appliance: %s did not launch (%s); libguestfs's own", fixed, err_msg());
	err_clear();
	appliance_abandon(g);
	appliance_pvh_forget(fixed);
	if (!(g = handle(disk, format, readonly, name, early)))
		goto done;
	if (launch(g, name) < 0)
		goto fail;
done:
	free(fixed);
	return g;

fail:
	appliance_abandon(g);
	free(fixed);
	return NULL;
}

guestfs_h *appliance_open(const char *disk, const char *format, bool readonly, const char *name)
{
	return open_launched(disk, format, readonly, name ? name : disk, NULL);
}

/* --- an appliance started before its disk exists ---------------------------- */

static char *sockdir_of(const char *path);
static unsigned own_sockdirs(void (*fn)(const char *dir, void *arg), void *arg);

/* The socket directory of g's appliance: the path of the chardev socket on
 * its QEMU's command line (libguestfs's own, under /tmp for root; no call
 * names it). NULL when not found. */
static char *qemu_sockdir(guestfs_h *g)
{
	struct buf b = BUF_INIT(64 * 1024);
	char *path, *dir = NULL;
	int pid = guestfs_get_pid(g);
	size_t i;

	if (pid <= 0) {
		err_clear();
		return NULL;
	}
	path = xasprintf("/proc/%d/cmdline", pid);
	if (buf_read_file(&b, path) == 0) {
		for (i = 0; i < b.len && !dir; i += strlen(b.data + i) + 1) {
			char *p = strstr(b.data + i, "path="), *end;

			if (!p)
				continue;
			p += 5;
			end = p + strcspn(p, ",");
			*end = '\0';
			dir = sockdir_of(p);
		}
	}
	err_clear();
	buf_release(&b);
	free(path);
	return dir;
}

/* The early appliance's socket directory is said to its owner (made) as
 * soon as it exists, not when the launch ends seconds later: a SIGKILL
 * during the launch leaves it to the owner's journal, not in /tmp. libguestfs
 * names it to no one before guestfs_launch() returns, but it binds a socket
 * there milliseconds after making it: a thread beside the launch looks
 * through this process's sockets (own_sockdirs) for a directory that was
 * not there before, every EARLY_POLL_MS until one is or the launch ends. */
#define WATCH_KNOWN_MAX 8
struct sock_watch {
	struct appliance_early *e;
	pthread_mutex_t lock;
	bool done;                      /* the launch returned */
	char known[WATCH_KNOWN_MAX][sizeof(((struct sockaddr_un *)0)->sun_path)];
					/* socket directories before it */
	unsigned nknown;
	char *found;                    /* the new one, said to made */
};

static void watch_known(const char *dir, void *arg)
{
	struct sock_watch *w = arg;

	if (w->nknown < WATCH_KNOWN_MAX)
		snprintf(w->known[w->nknown++], sizeof(w->known[0]), "%s", dir);
}

static void watch_new(const char *dir, void *arg)
{
	struct sock_watch *w = arg;
	unsigned i;

	for (i = 0; i < w->nknown && strcmp(w->known[i], dir) != 0; i++)
		;
	if (i == w->nknown && !w->found) {
		w->found = xstrdup(dir);
		early_made(w->e, dir);
	}
}

static void *watch_main(void *arg)
{
	struct sock_watch *w = arg;

	for (;;) {
		bool done;

		pthread_mutex_lock(&w->lock);
		done = w->done;
		pthread_mutex_unlock(&w->lock);
		if (done)
			break;
		own_sockdirs(watch_new, w);
		if (w->found)
			break;
		usleep(EARLY_POLL_MS * 1000);
	}
	return NULL;
}

static void *early_main(void *arg)
{
	struct appliance_early *e = arg;
	struct sock_watch *w = e->made ? xcalloc(1, sizeof(*w)) : NULL;
	pthread_t t;
	bool watching = false;
	char *sockdir;

	if (w) {
		w->e = e;
		pthread_mutex_init(&w->lock, NULL);
		own_sockdirs(watch_known, w);
		watching = pthread_create(&t, NULL, watch_main, w) == 0;
	}
	e->g = open_launched(NULL, NULL, false, "the output's inspection (started early)", e);
	if (!e->g)
		snprintf(e->why, sizeof(e->why), "%s", err_msg());
	err_clear();
	if (watching) {
		pthread_mutex_lock(&w->lock);
		w->done = true;
		pthread_mutex_unlock(&w->lock);
		pthread_join(t, NULL);
	}
	/* Not seen during the launch (no thread, or the directory's sockets
	 * already gone): from its QEMU's command line. */
	if (e->g && w && (sockdir = qemu_sockdir(e->g))) {
		if (!w->found || strcmp(w->found, sockdir) != 0)
			early_made(e, sockdir);
		free(sockdir);
	}
	if (w) {
		pthread_mutex_destroy(&w->lock);
		free(w->found);
		free(w);
	}
	return NULL;
}

struct appliance_early *appliance_early_start(const char *parent,
					      void (*made)(const char *dir, void *opaque),
					      void *opaque)
{
	const char *env = getenv("AMIFORGE_APPLIANCE_EARLY");
	struct appliance_early *e;

	if (env && strcmp(env, "0") == 0) {
		log_debug("appliance: none started early (AMIFORGE_APPLIANCE_EARLY=0)");
		return NULL;
	}
	e = xcalloc(1, sizeof(*e));
	e->parent = parent ? xstrdup(parent) : NULL;
	e->made = made;
	e->opaque = opaque;
	if (pthread_create(&e->thread, NULL, early_main, e) != 0) {
		log_debug("appliance: not started early: cannot create a thread");
		free(e->parent);
		free(e);
		return NULL;
	}
	return e;
}

static void early_join(struct appliance_early *e)
{
	if (!e->joined)
		pthread_join(e->thread, NULL);
	e->joined = true;
}

/* The appliance's kernel shows exactly one device, want, of size bytes
 * (want NULL: none at all). false with *ok false on an error (recorded):
 * the device of that size came up under another name. */
static bool sees(guestfs_h *g, const char *want, uint64_t size, bool *ok)
{
	char **devs = guestfs_list_devices(g);
	bool yes = false;
	int64_t n;

	*ok = devs != NULL;
	if (!devs) {
		handle_err(g, "list_devices", "failed");
		return false;
	}
	if (!want) {
		yes = !devs[0];
	} else if (devs[0] && !devs[1]) {
		n = guestfs_blockdev_getsize64(g, devs[0]);
		if (n < 0) {
			*ok = false;
			handle_err(g, "blockdev_getsize64", "failed");
		} else if ((uint64_t)n == size && strcmp(devs[0], want) != 0) {
			*ok = false;
			err_set("the disk came up as %s, not %s", devs[0], want);
		} else {
			yes = (uint64_t)n == size;
		}
	}
	strv_free(devs);
	return yes;
}

/* Poll until the appliance shows want (sees()) or the bound passes. */
static int wait_seen(guestfs_h *g, const char *want, uint64_t size)
{
	int64_t deadline = now_ms() + EARLY_SEE_MS;
	bool ok;

	while (!sees(g, want, size, &ok)) {
		if (!ok)
			return -1;
		if (now_ms() >= deadline)
			return err_set("the appliance did not see %s within %d s", want ? want :
				       "its placeholder go", EARLY_SEE_MS / 1000);
		usleep(EARLY_POLL_MS * 1000);
	}
	return 0;
}

/* The placeholder's device in QEMU (query-block): the one drive with a
 * device that is not libguestfs's "appliance". NULL when not exactly one. */
static const char *placeholder_qdev(json_t *blocks)
{
	const char *found = NULL;
	size_t i, n = 0;
	json_t *b;

	json_array_foreach(blocks, i, b) {
		const char *dev = json_string_value(json_object_get(b, "device"));
		const char *qdev = json_string_value(json_object_get(b, "qdev"));

		if (qdev && (!dev || strcmp(dev, "appliance") != 0)) {
			found = qdev;
			n++;
		}
	}
	return n == 1 ? found : NULL;
}

/* Swap the placeholder for disk (qcow2, opened writable: an overlay its
 * caller made; its backing chain as its header names it) over QMP: the
 * placeholder's device deleted and seen gone, disk added as a node and a
 * SCSI disk on libguestfs's controller, seen as /dev/sda of size bytes
 * (the name a single drive has; fstab specs are resolved to it). */
static int swap_disk(guestfs_h *g, const char *disk, uint64_t size)
{
	const char *tmp = guestfs_get_private(g, TMPDIR_KEY);
	char *path = xasprintf("%s" EARLY_QMP_SOCK, tmp ? tmp : "");
	struct qmp q;
	json_t *blocks = NULL;
	const char *qdev;
	int ret = -1;

	qmp_init(&q, -1);
	if (size == PLACEHOLDER_SIZE) {
		err_set("the disk is the placeholder's size");
		goto cleanup;
	}
	if (qmp_connect(&q, path) < 0 || qmp_handshake(&q, now_ms() + EARLY_QMP_MS) < 0 ||
	    qmp_call(&q, "query-block", NULL, EARLY_QMP_MS, &blocks) < 0)
		goto cleanup;
	if (!(qdev = placeholder_qdev(blocks))) {
		err_set("QMP: no single placeholder drive");
		goto cleanup;
	}
	if (qmp_call(&q, "device_del", json_pack("{s:s}", "id", qdev), EARLY_QMP_MS, NULL) < 0 ||
	    wait_seen(g, NULL, 0) < 0 ||
	    qmp_call(&q, "blockdev-add",
		     json_pack("{s:s, s:s, s:{s:b, s:b}, s:{s:s, s:s}}", "driver", "qcow2",
			       "node-name", "amiforge-disk", "cache", "direct", 0, "no-flush", 1,
			       "file", "driver", "file", "filename", disk),
		     EARLY_QMP_MS, NULL) < 0 ||
	    qmp_call(&q, "device_add",
		     json_pack("{s:s, s:s, s:s}", "driver", "scsi-hd", "drive", "amiforge-disk",
			       "id", "amiforge-disk"), EARLY_QMP_MS, NULL) < 0 ||
	    wait_seen(g, "/dev/sda", size) < 0)
		goto cleanup;
	ret = 0;

cleanup:
	json_decref(blocks);
	qmp_release(&q);
	free(path);
	return ret;
}

guestfs_h *appliance_early_take(struct appliance_early *e, const char *disk, uint64_t size,
				const char *name)
{
	guestfs_h *g;
	int64_t t0 = now_ms();

	if (!e)
		return NULL;
	early_join(e);
	g = e->g;
	e->g = NULL;
	if (!g) {
		log_debug("appliance: none started early (%s)", e->why);
		return NULL;
	}
	if (swap_disk(g, disk, size) < 0) {
		log_debug("appliance: the one started early did not take '%s' (%s)", name, err_msg());
		err_clear();
		appliance_abandon(g);
		return NULL;
	}
	log_info("inspect: the appliance started during the build has the disk (waited %.1f s)",
		 (double)(now_ms() - t0) / 1000.0);
	return g;
}

void appliance_early_free(struct appliance_early *e)
{
	if (!e)
		return;
	early_join(e);
	appliance_abandon(e->g);
	free(e->parent);
	free(e);
}

int appliance_close(guestfs_h *g, const char *disk)
{
	int ret = 0;

	if (!g)
		return 0;
	if (guestfs_umount_all(g) < 0 || guestfs_shutdown(g) < 0)
		ret = handle_err(g, disk, "shutdown failed");
	appliance_abandon(g);
	return ret;
}

void appliance_abandon(guestfs_h *g)
{
	char *tmp;
	bool counted;

	if (!g)
		return;
	tmp = guestfs_get_private(g, TMPDIR_KEY);
	counted = guestfs_get_private(g, LIVE_KEY) != NULL;
	/* No sync at close (libguestfs's autosync: umount-all and sync in the
	 * appliance, ~0.3 s under TCG): nothing written is wanted. */
	guestfs_set_autosync(g, 0);
	guestfs_close(g);	/* stops the appliance, removes libguestfs's own directories */
	if (counted) {
		pthread_mutex_lock(&live_lock);
		live--;
		pthread_mutex_unlock(&live_lock);
	}
	if (tmp) {
		remove_tree(tmp);
		free(tmp);
	}
}

/* --- a signal's cleanup ----------------------------------------------------- */

/* libguestfs's socket to the appliance's daemon: <sockdir>/libguestfsXXXXXX/
 * guestfsd.sock, bound by this process before QEMU starts, connected after. */
#define SOCK_NAME "/guestfsd.sock"
#define SOCKDIR_NAME "/libguestfs"	/* + mkdtemp's six characters */
/* The most sockets of our own looked at, and lines of /proc/net/unix read
 * (one per socket on the host). */
#define OWN_SOCKETS_MAX 256
#define NET_UNIX_LINES_MAX (1u << 20)
/* The longest the watcher waits for a live handle's socket to appear or the
 * handle to close, and how often it looks. */
#define SOCKDIR_WAIT_MS 5000
#define SOCKDIR_POLL_MS 10

/* The socket inodes this process has open (/proc/self/fd: "socket:[N]"). */
static size_t own_sockets(uint64_t *ino, size_t max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while (n < max && (de = readdir(d))) {
		char path[64], link[64];
		ssize_t len;
		uint64_t v;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len < 10 || strncmp(link, "socket:[", 8) != 0 || link[len - 1] != ']')
			continue;
		link[len - 1] = '\0';
		if (parse_u64(link + 8, UINT64_MAX, &v) == 0)
			ino[n++] = v;
	}
	closedir(d);
	return n;
}

/* DIR of DIR/libguestfsXXXXXX/guestfsd.sock (absolute, no "..", nothing
 * else), or NULL. */
static char *sockdir_of(const char *path)
{
	size_t n = strlen(path), sl = strlen(SOCK_NAME), dl = strlen(SOCKDIR_NAME);
	const char *base;

	if (path[0] != '/' || n <= sl || strcmp(path + n - sl, SOCK_NAME) != 0 ||
	    strstr(path, "/../"))
		return NULL;
	n -= sl;
	base = memrchr(path, '/', n);
	if (!base || (size_t)(path + n - base) != dl + 6 || strncmp(base, SOCKDIR_NAME, dl) != 0)
		return NULL;
	return xstrndup(path, n);
}

/* Call fn once for each socket directory of this process's appliances (the
 * directories its sockets name: a listener and the connection it accepted
 * name the same one); how many there are. */
static unsigned own_sockdirs(void (*fn)(const char *dir, void *arg), void *arg)
{
	uint64_t ino[OWN_SOCKETS_MAX];
	size_t nino = own_sockets(ino, OWN_SOCKETS_MAX), lines = 0;
	char line[512], seen[OWN_SOCKETS_MAX][32];
	unsigned nseen = 0;
	FILE *f;

	if (!nino || !(f = fopen("/proc/net/unix", "re")))
		return 0;
	/* "Num RefCount Protocol Flags Type St Inode Path": a path, where there
	 * is one, is the last field (at most 108 bytes). */
	while (lines++ < NET_UNIX_LINES_MAX && fgets(line, sizeof(line), f)) {
		char *field[8], *save = NULL, *dir;
		size_t nf = 0, i;
		uint64_t v;
		const char *base;

		if (!strchr(line, '\n'))
			continue;	/* longer than any of them */
		line[strcspn(line, "\n")] = '\0';
		for (char *t = strtok_r(line, " ", &save); t && nf < 8; t = strtok_r(NULL, " ", &save))
			field[nf++] = t;
		if (nf != 8 || parse_u64(field[6], UINT64_MAX, &v) < 0)
			continue;
		for (i = 0; i < nino && ino[i] != v; i++)
			;
		if (i == nino || !(dir = sockdir_of(field[7])))
			continue;
		base = strrchr(dir, '/') + 1;
		for (i = 0; i < nseen && strcmp(seen[i], base) != 0; i++)
			;
		if (i == nseen && nseen < OWN_SOCKETS_MAX) {
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", base);
			fn(dir, arg);
		}
		free(dir);
	}
	fclose(f);
	return nseen;
}

/* own_sockdirs()'s fn: remove one, where it is ours as libguestfs made it
 * (a directory, no link). */
static void remove_sockdir(const char *dir, void *arg)
{
	struct stat sb;

	(void)arg;
	if (lstat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && sb.st_uid == geteuid())
		remove_tree(dir);
}

void appliance_remove_sockdirs(void)
{
	int64_t end = now_ms() + SOCKDIR_WAIT_MS;
	unsigned n;

	pthread_mutex_lock(&live_lock);
	sealed = true;
	pthread_mutex_unlock(&live_lock);
	/* Every live handle's directory seen, or those not seen closed by the
	 * thread that has them (which removes them): a launch binds its
	 * socket milliseconds after it made the directory, a shutdown closes
	 * the handle well under a second after its connection. */
	for (;;) {
		n = own_sockdirs(remove_sockdir, NULL);
		pthread_mutex_lock(&live_lock);
		if (n >= live || now_ms() >= end) {
			pthread_mutex_unlock(&live_lock);
			break;
		}
		pthread_mutex_unlock(&live_lock);
		usleep(SOCKDIR_POLL_MS * 1000);
	}
}

/* --- small reads ---------------------------------------------------------- */

/* One pread's most: well under the protocol's 4 MiB message. */
#define PREAD_CHUNK (1u << 20)

/* read_file goes through the daemon's file transfer (a download to a host
 * file, then read back): ~300 ms a file under TCG, where a pread is one
 * request (~25 ms). The inspection reads a dozen small files. */
char *appliance_read_file(guestfs_h *g, const char *path, size_t max, size_t *len,
			  const char **why)
{
	int64_t size;
	size_t n = 0;
	char *out;

	if (why)
		*why = "missing";
	if (guestfs_is_file_opts(g, path, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) != 1)
		return NULL;
	size = guestfs_filesize(g, path);
	if (size < 0)
		return NULL;
	if ((uint64_t)size > max) {
		if (why)
			*why = "too large";
		return NULL;
	}
	/* What the file held when its size was read (it may shrink, never
	 * grows past max here); the file may hold NULs: callers treat it as
	 * text up to the first one. */
	out = xmalloc((size_t)size + 1);
	while (n < (size_t)size) {
		size_t want = (size_t)size - n < PREAD_CHUNK ? (size_t)size - n : PREAD_CHUNK, got = 0;
		char *chunk = guestfs_pread(g, path, (int)want, (int64_t)n, &got);

		if (!chunk || got > want) {
			free(chunk);
			free(out);
			if (why)
				*why = "unreadable";
			return NULL;
		}
		memcpy(out + n, chunk, got);
		free(chunk);
		if (got == 0)
			break;	/* shrank */
		n += got;
	}
	out[n] = '\0';
	if (len)
		*len = n;
	return out;
}

static char *read_small(guestfs_h *g, const char *path)
{
	return appliance_read_file(g, path, SMALL_FILE_MAX, NULL, NULL);
}

/* "12", "22.04", "2023", "8.9": major and minor (0 when absent). */
static void parse_version(const char *s, int *major, int *minor)
{
	char *end;
	long v;

	*major = *minor = 0;
	if (!s)
		return;
	v = strtol(s, &end, 10);
	if (end == s || v < 0 || v > 100000)
		return;
	*major = (int)v;
	if (*end == '.') {
		const char *m = end + 1;

		v = strtol(m, &end, 10);
		if (end != m && v >= 0 && v < 100000)
			*minor = (int)v;
	}
}

/* os-release IDs to the distribution names libguestfs uses (and VM
 * Import's tables are written in). */
static const char *distro_name(const char *id)
{
	static const char *const map[][2] = {
		{ "amzn", "amazonlinux" }, { "ol", "oraclelinux" }, { "sled", "sles" },
		{ "opensuse-leap", "opensuse" }, { "opensuse-tumbleweed", "opensuse" },
		{ "almalinux", "alma" }, { "rocky", "rocky" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(id, map[i][0]) == 0)
			return map[i][1];
	return id;
}

/* Control characters (a disk may carry escape sequences) become '?', and
 * the text stops at 200 bytes. */
static void printable(char *s)
{
	size_t i;

	for (i = 0; s[i] && i < 200; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
	s[i] = '\0';
}

/* Distribution facts from the mounted root: os-release, else the older
 * release files. */
static void read_release(guestfs_h *g, struct appliance_os *os)
{
	char *text = read_small(g, "/etc/os-release"), *id = NULL, *ver = NULL;

	if (!text)
		text = read_small(g, "/usr/lib/os-release");
	if (text) {
		id = os_release_value(text, "ID");
		ver = os_release_value(text, "VERSION_ID");
		os->product = os_release_value(text, "PRETTY_NAME");
		parse_version(ver, &os->major, &os->minor);
	} else if ((text = read_small(g, "/etc/redhat-release")) != NULL) {
		const char *r = strstr(text, "release ");

		id = xstrdup(str_startswith(text, "CentOS") ? "centos" :
			     str_startswith(text, "Fedora") ? "fedora" : "rhel");
		parse_version(r ? r + 8 : NULL, &os->major, &os->minor);
		os->product = xstrndup(text, strcspn(text, "\n"));
	} else if (guestfs_is_file(g, "/etc/debian_version") == 1) {
		id = xstrdup("debian");
	}
	/* Debian's os-release says "12"; debian_version says "12.15". */
	if (id && strcmp(id, "debian") == 0) {
		char *dv = read_small(g, "/etc/debian_version");
		int ma, mi;

		parse_version(dv, &ma, &mi);
		if (ma && (!os->major || ma == os->major)) {
			os->major = ma;
			os->minor = mi;
		}
		free(dv);
	}
	free(os->distro);
	os->distro = xstrdup(id ? distro_name(id) : "unknown");
	if (!os->product)
		os->product = xstrdup(os->distro);
	/* The disk's words reach terminals and reports: printable, bounded. */
	printable(os->distro);
	printable(os->product);
	free(id);
	free(ver);
	free(text);
}

/* --- filesystems ------------------------------------------------------------ */

static char *blkid_get(char **kv, const char *key)
{
	for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2)
		if (strcmp(kv[i], key) == 0 && kv[i + 1][0])
			return xstrdup(kv[i + 1]);
	return NULL;
}

static void fs_add(guestfs_h *g, struct appliance_fs *v, size_t *n, const char *dev,
		   enum appliance_fs_kind kind)
{
	char **kv;

	if (*n >= APPLIANCE_FS_MAX)
		return;
	for (size_t i = 0; i < *n; i++)
		if (strcmp(v[i].dev, dev) == 0)
			return;
	kv = guestfs_blkid(g, dev);	/* fails on a device with nothing on it */
	v[*n].dev = xstrdup(dev);
	v[*n].kind = kind;
	v[*n].type = blkid_get(kv, "TYPE");
	v[*n].uuid = blkid_get(kv, "UUID");
	v[*n].label = blkid_get(kv, "LABEL");
	v[*n].partuuid = blkid_get(kv, "PART_ENTRY_UUID");
	v[*n].pttype = blkid_get(kv, "PTTYPE");
	v[*n].part_type = blkid_get(kv, "PART_ENTRY_TYPE");
	for (char *c = v[*n].part_type; c && !str_startswith(v[*n].part_type, "0x") && *c; c++)
		*c = (char)toupper((unsigned char)*c);
	strv_free(kv);
	(*n)++;
}

/* Whole devices, partitions and logical volumes, each with what blkid says. */
static int list_fs(guestfs_h *g, struct appliance_fs *v, size_t *n)
{
	char **devs = guestfs_list_devices(g), **parts = guestfs_list_partitions(g), **lvs;
	bool pv = false;

	if (!devs || !parts) {
		strv_free(devs);
		strv_free(parts);
		return err_set("libguestfs: list devices: %s", guestfs_last_error(g));
	}
	for (size_t i = 0; devs[i]; i++)
		fs_add(g, v, n, devs[i], APPLIANCE_DEVICE);
	for (size_t i = 0; parts[i]; i++)
		fs_add(g, v, n, parts[i], APPLIANCE_PARTITION);
	/* LVM's tools only where blkid saw a physical volume (the appliance's
	 * init activated its volume groups already). */
	for (size_t i = 0; i < *n && !pv; i++)
		pv = v[i].type && strcmp(v[i].type, "LVM2_member") == 0;
	lvs = pv ? guestfs_lvs(g) : NULL;	/* NULL without LVM tools: no LVs then */
	for (size_t i = 0; lvs && lvs[i]; i++)
		fs_add(g, v, n, lvs[i], APPLIANCE_LV);
	strv_free(devs);
	strv_free(parts);
	strv_free(lvs);
	return 0;
}

static void fs_release(struct appliance_fs *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].dev);
		free(v[i].type);
		free(v[i].uuid);
		free(v[i].label);
		free(v[i].partuuid);
		free(v[i].pttype);
		free(v[i].part_type);
	}
	free(v);
}

const struct appliance_fs *appliance_fs_find(const struct appliance_os *os, const char *dev)
{
	for (size_t i = 0; i < os->nfs; i++)
		if (strcmp(os->fs[i].dev, dev) == 0)
			return &os->fs[i];
	return NULL;
}

static bool linux_fs(const char *type)
{
	static const char *const t[] = { "ext2", "ext3", "ext4", "xfs", "btrfs", "jfs", "reiserfs" };

	for (size_t i = 0; type && i < ARRAY_SIZE(t); i++)
		if (strcmp(type, t[i]) == 0)
			return true;
	return false;
}

static bool mountable_fs(const char *type)
{
	return linux_fs(type) || (type && strcmp(type, "vfat") == 0);
}

/* A root: /etc/fstab, and os-release or an older release file (os-release
 * may be a symlink into a /usr that is not mounted yet). */
static bool looks_like_root(guestfs_h *g, const char *prefix)
{
	static const char *const rel[] = { "/etc/os-release", "/usr/lib/os-release",
					   "/etc/redhat-release", "/etc/debian_version",
					   "/etc/SuSE-release" };
	char *p = xasprintf("%s/etc/fstab", prefix);
	bool yes = guestfs_is_file(g, p) == 1;

	for (size_t i = 0; yes && i < ARRAY_SIZE(rel); i++) {
		free(p);
		p = xasprintf("%s%s", prefix, rel[i]);
		if (guestfs_is_file(g, p) == 1 || guestfs_is_symlink(g, p) == 1)
			break;
		if (i + 1 == ARRAY_SIZE(rel))
			yes = false;
	}
	free(p);
	return yes;
}

/* The device an fstab spec names, among v (NULL when none). The disk's
 * single drive is /dev/sda in the appliance, whatever the guest calls it. */
static const char *resolve_spec(guestfs_h *g, const struct appliance_fs *v, size_t n, const char *spec)
{
	static const struct { const char *prefix; size_t field; } by[] = {
		{ "UUID=", 1 }, { "LABEL=", 2 }, { "PARTUUID=", 3 },
		{ "/dev/disk/by-uuid/", 1 }, { "/dev/disk/by-label/", 2 },
		{ "/dev/disk/by-partuuid/", 3 },
	};
	char dev[64];

	for (size_t k = 0; k < ARRAY_SIZE(by); k++) {
		const char *want;

		if (!str_startswith(spec, by[k].prefix))
			continue;
		want = spec + strlen(by[k].prefix);
		for (size_t i = 0; i < n; i++) {
			const char *have = by[k].field == 1 ? v[i].uuid :
					   by[k].field == 2 ? v[i].label : v[i].partuuid;

			if (have && strcasecmp(have, want) == 0)
				return v[i].dev;
		}
		return NULL;
	}
	/* /dev/vda2, /dev/xvda2, /dev/hda2, /dev/nvme0n1p2 -> /dev/sda2 */
	if (str_startswith(spec, "/dev/vd") || str_startswith(spec, "/dev/xvd") ||
	    str_startswith(spec, "/dev/hd") || str_startswith(spec, "/dev/sd")) {
		const char *p = spec + (spec[5] == 'x' ? 8 : 7);

		snprintf(dev, sizeof(dev), "/dev/sd%s", p);
	} else if (str_startswith(spec, "/dev/nvme0n1")) {
		const char *p = spec + 12;

		snprintf(dev, sizeof(dev), "/dev/sda%s", *p == 'p' ? p + 1 : p);
	} else if (str_startswith(spec, "/dev/mapper/")) {
		char *lv = guestfs_lvm_canonical_lv_name(g, spec);

		snprintf(dev, sizeof(dev), "%s", lv ? lv : spec);
		free(lv);
	} else {
		snprintf(dev, sizeof(dev), "%s", spec);
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].dev, dev) == 0)
			return v[i].dev;
	return NULL;
}

/* The next blank-separated field of *p into f (cut at cap - 1 bytes);
 * false when there is none. */
static bool next_field(const char **p, char *f, size_t cap)
{
	const char *s = *p + strspn(*p, " \t\r");
	size_t n = strcspn(s, " \t\r");

	if (!n)
		return false;
	snprintf(f, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
	*p = s + n;
	return true;
}

static int mp_cmp(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	size_t lx = strlen(x[0]), ly = strlen(y[0]);

	return lx < ly ? -1 : lx > ly;
}

/* "subvol=NAME" from a mount option list (btrfs), or "". */
static char *subvol_option(const char *opts)
{
	const char *p = strstr(opts, "subvol=");

	if (!p || (p != opts && p[-1] != ','))
		return xstrdup("");
	return xstrndup(p, strcspn(p, ","));
}

bool appliance_fstab_line(const char *line, struct appliance_fstab_entry *e)
{
	const char *p = line;

	e->opts[0] = '\0';
	if (!next_field(&p, e->spec, sizeof(e->spec)) || !next_field(&p, e->mp, sizeof(e->mp)) ||
	    !next_field(&p, e->type, sizeof(e->type)) || e->spec[0] == '#' ||
	    e->mp[0] != '/' || strcmp(e->mp, "/") == 0 || !mountable_fs(e->type))
		return false;
	next_field(&p, e->opts, sizeof(e->opts));
	return true;
}

char *appliance_subvol_option(const char *opts)
{
	return subvol_option(opts);
}

/* Mountpoints from the root's fstab (PREFIX: where the root's tree is in
 * what is mounted now), the root itself first with ROOT_OPTS. */
static void read_fstab(guestfs_h *g, struct appliance_os *os, const struct appliance_fs *v, size_t n,
		       const char *prefix, const char *root_opts)
{
	char *path = xasprintf("%s/etc/fstab", prefix);
	char *text = read_small(g, path), *save = NULL, *line;
	struct strv m = STRV_INIT, u = STRV_INIT;

	strv_push(&m, "/");
	strv_push(&m, os->root);
	strv_push(&m, root_opts);
	for (line = text ? strtok_r(text, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct appliance_fstab_entry e;
		const char *dev;

		if (!appliance_fstab_line(line, &e) || m.n / 3 >= APPLIANCE_FS_MAX)
			continue;
		dev = resolve_spec(g, v, n, e.spec);
		if (!dev) {
			strv_push(&u, e.mp);
			strv_push(&u, e.spec);
			continue;
		}
		strv_push(&m, e.mp);
		strv_push(&m, dev);
		m.v[m.n++] = subvol_option(e.opts);
		m.v[m.n] = NULL;
	}
	free(text);
	free(path);
	os->nmounts = m.n / 3;
	qsort(m.v, os->nmounts, 3 * sizeof(char *), mp_cmp);
	os->mounts = m.v;
	os->nunresolved = u.n / 2;
	os->unresolved = u.v;
}

/* A btrfs filesystem (mounted on /) whose root is a subvolume (Fedora's
 * "root", openSUSE's snapshots are not followed): the first subvolume that
 * looks like a root. */
static void find_btrfs_root(guestfs_h *g, struct appliance_os *os, const struct appliance_fs *v,
			    size_t n, const char *dev)
{
	struct guestfs_btrfssubvolume_list *l = guestfs_btrfs_subvolume_list(g, "/");

	for (size_t i = 0; l && i < l->len && i < APPLIANCE_FS_MAX; i++) {
		char *prefix = xasprintf("/%s", l->val[i].btrfssubvolume_path), *opt;

		if (looks_like_root(g, prefix)) {
			if (!os->nroots++) {
				os->root = xstrdup(dev);
				opt = xasprintf("subvol=%s", l->val[i].btrfssubvolume_path);
				read_fstab(g, os, v, n, prefix, opt);
				free(opt);
			}
			free(prefix);
			break;
		}
		free(prefix);
	}
	if (l)
		guestfs_free_btrfssubvolume_list(l);
}

int appliance_find_os(guestfs_h *g, struct appliance_os *os)
{
	struct appliance_fs *v = xcalloc(APPLIANCE_FS_MAX, sizeof(*v));
	size_t n = 0, i;
	bool ntfs = false;
	int ret = -1;

	memset(os, 0, sizeof(*os));
	os->fs = v;
	if (list_fs(g, v, &n) < 0)
		goto cleanup;
	os->nfs = n;
	for (i = 0; i < n; i++) {
		if (v[i].type && strcmp(v[i].type, "ntfs") == 0)
			ntfs = true;
		if (!linux_fs(v[i].type) || guestfs_mount_ro(g, v[i].dev, "/") < 0)
			continue;
		if (looks_like_root(g, "")) {
			if (!os->nroots++) {
				os->root = xstrdup(v[i].dev);
				read_fstab(g, os, v, n, "", "");
			}
		} else if (strcmp(v[i].type, "btrfs") == 0) {
			find_btrfs_root(g, os, v, n, v[i].dev);
		}
		if (guestfs_umount_all(g) < 0) {
			err_set("libguestfs: unmount: %s", guestfs_last_error(g));
			goto cleanup;
		}
	}
	os->type = xstrdup(os->nroots ? "linux" : ntfs ? "windows" : "unknown");
	os->distro = xstrdup("unknown");
	os->arch = xstrdup("unknown");
	ret = 0;
cleanup:
	if (ret < 0)
		appliance_os_release(os);	/* os->fs with the rest */
	return ret;
}

/* An ELF executable's architecture from its header, in libguestfs's
 * names (guestfs_file_architecture, which runs file(1) in the appliance),
 * or NULL for one this does not know. */
char *appliance_elf_arch(const unsigned char *h, size_t n)
{
	static const struct { uint16_t machine; const char *arch32, *arch64; } m[] = {
		{ 3, "i386", NULL }, { 62, NULL, "x86_64" }, { 40, "arm", NULL },
		{ 183, NULL, "aarch64" }, { 22, "s390", "s390x" }, { 243, "riscv32", "riscv64" },
	};
	uint16_t machine;

	if (n < 20 || memcmp(h, "\177ELF", 4) != 0 || (h[4] != 1 && h[4] != 2) || h[5] != 1)
		return NULL;	/* little-endian only: the rest is file(1)'s */
	machine = get_le16(h + 18);
	for (size_t i = 0; i < ARRAY_SIZE(m); i++)
		if (m[i].machine == machine) {
			const char *a = h[4] == 2 ? m[i].arch64 : m[i].arch32;

			return a ? xstrdup(a) : NULL;
		}
	return NULL;
}

int appliance_mount_os(guestfs_h *g, struct appliance_os *os, bool readonly,
		       void (*warn)(void *opaque, const char *mountpoint, const char *device,
				    const char *error),
		       void *opaque)
{
	static const char *const bins[] = { "/usr/bin/ls", "/bin/ls", "/bin/sh", "/usr/bin/env" };

	for (size_t i = 0; i < os->nmounts; i++) {
		const char *mp = os->mounts[3 * i], *dev = os->mounts[3 * i + 1];
		char *opts = xasprintf("%s%s%s", readonly ? "ro" : "",
				       readonly && os->mounts[3 * i + 2][0] ? "," : "",
				       os->mounts[3 * i + 2]);
		int r = guestfs_mount_options(g, opts, dev, mp);

		free(opts);
		if (r < 0 && i == 0)
			return err_set("libguestfs: mount %s on /: %s", dev, guestfs_last_error(g));
		if (r < 0 && warn)
			warn(opaque, mp, dev, guestfs_last_error(g));
	}
	read_release(g, os);
	for (size_t i = 0; i < ARRAY_SIZE(bins); i++) {
		char *a, *h;
		size_t hn = 0;

		if (guestfs_is_file_opts(g, bins[i], GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) != 1)
			continue;
		/* The header, read in the daemon; file(1) only when it is not
		 * an ELF this knows (a process in the appliance, ~0.3 s under
		 * TCG). */
		h = guestfs_pread(g, bins[i], 20, 0, &hn);
		a = h ? appliance_elf_arch((const unsigned char *)h, hn) : NULL;
		free(h);
		if (!a)
			a = guestfs_file_architecture(g, bins[i]);
		if (a) {
			free(os->arch);
			os->arch = a;
			break;
		}
	}
	return 0;
}

void appliance_os_release(struct appliance_os *os)
{
	free(os->root);
	free(os->type);
	free(os->distro);
	free(os->product);
	free(os->arch);
	strv_free(os->mounts);
	strv_free(os->unresolved);
	fs_release(os->fs, os->nfs);
	memset(os, 0, sizeof(*os));
}
