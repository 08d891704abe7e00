/* libvirt-remote.c: disks as storage volumes, the agent channel and the
 * console through the connection (see libvirt-remote.h). */
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "libvirt-remote.h"
#include "hypervisor.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* One read or receive of a bridge. */
#define LVR_CHUNK 65536
/* Volumes of one guest: overlay, its backing image, the seed, scratch disks. */
#define LVR_VOLS_MAX (2 * VM_DISKS_MAX + 1)
/* How long the console logger may take to drain once the stream ends. */
#define LVR_LOGGER_DRAIN_MS 2000

static int lv_fail(const char *what, const char *subject)
{
	return err_set("%s '%s': %s", what, subject, virGetLastErrorMessage());
}

/* ---- the event loop ------------------------------------------------------ */

static pthread_once_t loop_once = PTHREAD_ONCE_INIT;
static int loop_ok = -1;

static void *loop_run(void *arg UNUSED)
{
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			log_debug("libvirt event loop: %s", virGetLastErrorMessage());
	return NULL;
}

static void loop_start(void)
{
	pthread_t t;

	if (virEventRegisterDefaultImpl() < 0)
		return;
	if (pthread_create(&t, NULL, loop_run, NULL) != 0)
		return;
	pthread_detach(t);
	loop_ok = 0;
}

int lvr_event_loop(void)
{
	pthread_once(&loop_once, loop_start);
	if (loop_ok < 0)
		return err_set("cannot start libvirt's event loop");
	return 0;
}

/* ---- bridges: a virStream <-> a local socket ----------------------------- */

/* Every bridge's state is guarded by one lock: callbacks run on the loop
 * thread, start and stop on the build's. A bridge is freed when its owner
 * and both callbacks (freed by libvirt through their ff) have let go. */
static pthread_mutex_t pump_lock = PTHREAD_MUTEX_INITIALIZER;

struct pump {
	struct lvr *r;        /* listener: the guest whose channel it opens */
	virStreamPtr st;      /* NULL: a listener */
	int fd;               /* the local end (listener: the listening socket) */
	int watch;            /* virEventAddHandle id, or -1 */
	bool stream_cb;
	bool dead;
	int refs;
	char pend[LVR_CHUNK]; /* read from fd, not yet accepted by the stream */
	size_t npend, off;
};

struct lvr_vol {
	char *role;
	char *name;
	char *path;   /* on the remote host */
};

struct lvr {
	virConnectPtr conn;
	virDomainPtr dom;
	char *domain;
	struct lvr_vol vols[LVR_VOLS_MAX];
	size_t n_vols;
	struct pump *listener, *agent, *console;
	pid_t logger;
};

static void pump_unref(void *opaque)
{
	struct pump *p = opaque;

	if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(p);
}

/* Under pump_lock. */
static void pump_stop(struct pump *p)
{
	if (!p || p->dead)
		return;
	p->dead = true;
	if (p->watch >= 0)
		virEventRemoveHandle(p->watch);   /* its ff drops a reference */
	p->watch = -1;
	if (p->st) {
		if (p->stream_cb)
			virStreamEventRemoveCallback(p->st);
		virStreamAbort(p->st);
		virStreamFree(p->st);
		p->st = NULL;
	}
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static void pump_events(struct pump *p, bool writable)
{
	virStreamEventUpdateCallback(p->st, (writable ? VIR_STREAM_EVENT_WRITABLE :
					     VIR_STREAM_EVENT_READABLE) |
				     VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP);
	virEventUpdateHandle(p->watch, writable ? 0 : VIR_EVENT_HANDLE_READABLE);
}

/* Send what is pending; -2 when the stream is full, -1 on error. */
static int pump_flush(struct pump *p)
{
	while (p->off < p->npend) {
		int n = virStreamSend(p->st, p->pend + p->off, p->npend - p->off);

		if (n == -2)
			return -2;
		if (n < 0)
			return -1;
		p->off += (size_t)n;
	}
	p->off = p->npend = 0;
	return 0;
}

static void on_stream(virStreamPtr st UNUSED, int events, void *opaque)
{
	struct pump *p = opaque;
	char buf[LVR_CHUNK];

	pthread_mutex_lock(&pump_lock);
	if (p->dead)
		goto out;
	if (events & VIR_STREAM_EVENT_READABLE) {
		for (;;) {
			int n = virStreamRecv(p->st, buf, sizeof(buf));

			if (n == -2)
				break;
			if (n <= 0 || write_all(p->fd, buf, (size_t)n) < 0) {
				pump_stop(p);   /* end of stream, or the local end went */
				goto out;
			}
		}
	}
	if (events & VIR_STREAM_EVENT_WRITABLE) {
		int r = pump_flush(p);

		if (r == -1) {
			pump_stop(p);
			goto out;
		}
		if (r == 0)
			pump_events(p, false);
	}
	if (events & (VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP))
		pump_stop(p);
out:
	pthread_mutex_unlock(&pump_lock);
}

static void on_local(int watch UNUSED, int fd, int events UNUSED, void *opaque)
{
	struct pump *p = opaque;
	ssize_t n;
	int r;

	pthread_mutex_lock(&pump_lock);
	if (p->dead || p->npend)
		goto out;
	n = read(fd, p->pend, sizeof(p->pend));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		goto out;
	if (n <= 0) {
		pump_stop(p);   /* the client closed: the next one gets a fresh stream */
		goto out;
	}
	p->npend = (size_t)n;
	p->off = 0;
	r = pump_flush(p);
	if (r == -1)
		pump_stop(p);
	else if (r == -2)
		pump_events(p, true);
out:
	pthread_mutex_unlock(&pump_lock);
}

/* A bridge between st (non-blocking, opened) and fd; both become the
 * bridge's. Under pump_lock, so that no callback runs before it is whole.
 * NULL with an error (both closed). */
static struct pump *pump_new(struct lvr *r, virStreamPtr st, int fd)
{
	struct pump *p = xcalloc(1, sizeof(*p));

	p->r = r;
	p->st = st;
	p->fd = fd;
	p->refs = 3;   /* owner, local watch, stream callback */
	p->watch = virEventAddHandle(fd, VIR_EVENT_HANDLE_READABLE, on_local, p, pump_unref);
	if (p->watch < 0)
		p->refs--;
	if (virStreamEventAddCallback(st, VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR |
				      VIR_STREAM_EVENT_HANGUP, on_stream, p, pump_unref) == 0)
		p->stream_cb = true;
	else
		p->refs--;
	if (p->watch < 0 || !p->stream_cb) {
		err_set("bridge a libvirt stream: %s", virGetLastErrorMessage());
		pump_stop(p);
		pump_unref(p);
		return NULL;
	}
	return p;
}

/* Under pump_lock: stop and let go of *pp. */
static void pump_drop(struct pump **pp)
{
	if (!*pp)
		return;
	pump_stop(*pp);
	pump_unref(*pp);
	*pp = NULL;
}

/* A client connected to the local agent socket: give it a fresh channel
 * stream (FORCE takes the channel from a previous client). */
static void on_accept(int watch UNUSED, int fd, int events UNUSED, void *opaque)
{
	struct pump *l = opaque;
	virStreamPtr st = NULL;
	struct lvr *r;
	int c;

	pthread_mutex_lock(&pump_lock);
	if (l->dead)
		goto out;
	r = l->r;
	c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		goto out;
	pump_drop(&r->agent);
	st = virStreamNew(r->conn, VIR_STREAM_NONBLOCK);
	if (!st || virDomainOpenChannel(r->dom, HV_AGENT_PORT_NAME, st,
					VIR_DOMAIN_CHANNEL_FORCE) < 0) {
		log_debug("libvirt: open the agent channel of %s: %s", r->domain,
			  virGetLastErrorMessage());
		if (st)
			virStreamFree(st);
		close(c);
		goto out;
	}
	r->agent = pump_new(r, st, c);
	if (!r->agent)
		log_debug("libvirt: %s", err_msg());
out:
	pthread_mutex_unlock(&pump_lock);
}

static int listen_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(a.sun_path))
		return err_set("socket path '%s' is too long", path);
	memcpy(a.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_errno("socket for '%s'", path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0) {
		err_errno("listen on '%s'", path);
		close(fd);
		return -1;
	}
	return fd;
}

int lvr_bridge(struct lvr *r, virDomainPtr dom, const char *agent_socket,
	       const char *console_log, uint64_t max)
{
	virStreamPtr st = NULL;
	int sp[2] = { -1, -1 }, lfd = -1;
	struct pump *l;

	if (virDomainRef(dom) < 0)
		return lv_fail("reference domain", r->domain);
	r->dom = dom;
	if (console_log) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			return err_errno("socketpair for the console of '%s'", r->domain);
		r->logger = hv_console_logger_start(sp[1], console_log, max);
		close(sp[1]);
		if (r->logger < 0) {
			r->logger = 0;
			close(sp[0]);
			return -1;
		}
		st = virStreamNew(r->conn, VIR_STREAM_NONBLOCK);
		if (!st || virDomainOpenConsole(dom, NULL, st, VIR_DOMAIN_CONSOLE_FORCE) < 0) {
			lv_fail("open the console of domain", r->domain);
			if (st)
				virStreamFree(st);
			close(sp[0]);
			return -1;
		}
		pthread_mutex_lock(&pump_lock);
		r->console = pump_new(r, st, sp[0]);
		pthread_mutex_unlock(&pump_lock);
		if (!r->console)
			return -1;
	}
	if (agent_socket) {
		lfd = listen_unix(agent_socket);
		if (lfd < 0)
			return -1;
		l = xcalloc(1, sizeof(*l));
		l->r = r;
		l->fd = lfd;
		l->refs = 2;   /* owner, watch */
		pthread_mutex_lock(&pump_lock);
		l->watch = virEventAddHandle(lfd, VIR_EVENT_HANDLE_READABLE, on_accept, l,
					     pump_unref);
		if (l->watch >= 0)
			r->listener = l;
		pthread_mutex_unlock(&pump_lock);
		if (l->watch < 0) {
			close(lfd);
			free(l);
			return err_set("watch '%s': %s", agent_socket, virGetLastErrorMessage());
		}
	}
	return 0;
}

int lvr_channel_fd(const char *uri, const char *domain, int *fd)
{
	virConnectPtr conn = NULL;
	virDomainPtr dom = NULL;
	virStreamPtr st = NULL;
	struct pump *p;
	int sp[2] = { -1, -1 }, ret = -1;

	if (lvr_event_loop() < 0)
		return -1;
	conn = virConnectOpen(uri);
	if (!conn)
		return lv_fail("connect to libvirt", uri);
	dom = virDomainLookupByName(conn, domain);
	st = dom ? virStreamNew(conn, VIR_STREAM_NONBLOCK) : NULL;
	if (!st || virDomainOpenChannel(dom, HV_AGENT_PORT_NAME, st, VIR_DOMAIN_CHANNEL_FORCE) < 0) {
		lv_fail("open the agent channel of domain", domain);
		goto cleanup;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		err_errno("socketpair for the agent of '%s'", domain);
		goto cleanup;
	}
	pthread_mutex_lock(&pump_lock);
	p = pump_new(NULL, st, sp[0]);
	pthread_mutex_unlock(&pump_lock);
	st = NULL;
	sp[0] = -1;
	if (!p)
		goto cleanup;
	/* The bridge and the connection stay for the life of this process
	 * (attach runs one command and exits). */
	*fd = sp[1];
	sp[1] = -1;
	conn = NULL;
	ret = 0;
cleanup:
	if (st)
		virStreamFree(st);
	if (sp[1] >= 0)
		close(sp[1]);
	if (sp[0] >= 0)
		close(sp[0]);
	if (dom)
		virDomainFree(dom);
	if (conn)
		virConnectClose(conn);
	return ret;
}

void lvr_unbridge(struct lvr *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&pump_lock);
	pump_drop(&r->listener);
	pump_drop(&r->agent);
	pump_drop(&r->console);
	pthread_mutex_unlock(&pump_lock);
	if (r->logger > 0)
		hv_console_logger_stop(r->logger, LVR_LOGGER_DRAIN_MS);
	r->logger = 0;
	if (r->dom)
		virDomainFree(r->dom);
	r->dom = NULL;
}

/* ---- volumes -------------------------------------------------------------- */

static virStoragePoolPtr pool_get(virConnectPtr conn)
{
	static const char xml[] =
		"<pool type='dir'><name>" LVR_POOL "</name><target><path>" LVR_POOL_PATH
		"</path><permissions><mode>0711</mode></permissions></target></pool>";
	virStoragePoolPtr pool = virStoragePoolLookupByName(conn, LVR_POOL);

	if (!pool) {
		pool = virStoragePoolDefineXML(conn, xml, 0);
		if (pool) {
			log_info("libvirt: defined storage pool '%s' at %s", LVR_POOL,
				 LVR_POOL_PATH);
			if (virStoragePoolBuild(pool, 0) < 0)
				log_debug("libvirt: build pool: %s", virGetLastErrorMessage());
			virStoragePoolSetAutostart(pool, 1);
		} else {
			/* Another build defined it meanwhile. */
			pool = virStoragePoolLookupByName(conn, LVR_POOL);
		}
	}
	if (!pool) {
		lv_fail("storage pool", LVR_POOL);
		return NULL;
	}
	if (virStoragePoolIsActive(pool) != 1 && virStoragePoolCreate(pool, 0) < 0 &&
	    virStoragePoolIsActive(pool) != 1) {
		lv_fail("start storage pool", LVR_POOL);
		virStoragePoolFree(pool);
		return NULL;
	}
	return pool;
}

struct lvr *lvr_new(virConnectPtr conn, const char *domain)
{
	struct lvr *r = xcalloc(1, sizeof(*r));

	r->conn = conn;
	r->domain = xstrdup(domain);
	return r;
}

static int send_from_fd(virStreamPtr st UNUSED, char *data, size_t n, void *opaque)
{
	ssize_t got = read(*(int *)opaque, data, n);

	return got < 0 ? -1 : (int)got;
}

static int recv_to_fd(virStreamPtr st UNUSED, const char *data, size_t n, void *opaque)
{
	return write_all(*(int *)opaque, data, n) < 0 ? -1 : (int)n;
}

const char *lvr_upload(struct lvr *r, const char *role, const char *local)
{
	virStoragePoolPtr pool = NULL;
	virStorageVolPtr vol = NULL;
	virStreamPtr st = NULL;
	struct lvr_vol *v;
	struct stat sb;
	char *name = NULL, *xml = NULL, *path = NULL;
	int fd = -1;
	int64_t t0 = now_ms();

	if (r->n_vols >= LVR_VOLS_MAX) {
		err_set("domain '%s': too many volumes", r->domain);
		goto cleanup;
	}
	fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		err_errno("open '%s'", local);
		goto cleanup;
	}
	if (!(pool = pool_get(r->conn)))
		goto cleanup;
	name = xasprintf("%s-%s", r->domain, role);
	/* Raw whatever the file holds: the volume is its bytes; the domain
	 * XML states each disk's format, never probed. */
	xml = xasprintf("<volume><name>%s</name><capacity unit='bytes'>%lld</capacity>"
			"<allocation unit='bytes'>0</allocation><target><format type='raw'/>"
			"<permissions><mode>0600</mode></permissions></target></volume>",
			name, (long long)sb.st_size);
	vol = virStorageVolCreateXML(pool, xml, 0);
	if (!vol) {
		lv_fail("create volume", name);
		goto cleanup;
	}
	/* Recorded at once: lvr_free deletes it whatever happens next. */
	v = &r->vols[r->n_vols++];
	v->role = xstrdup(role);
	v->name = xstrdup(name);
	path = virStorageVolGetPath(vol);
	if (!path) {
		lv_fail("path of volume", name);
		goto cleanup;
	}
	v->path = xstrdup(path);
	st = virStreamNew(r->conn, 0);
	if (!st || virStorageVolUpload(vol, st, 0, (unsigned long long)sb.st_size, 0) < 0 ||
	    virStreamSendAll(st, send_from_fd, &fd) < 0 || virStreamFinish(st) < 0) {
		lv_fail("upload to volume", name);
		if (st)
			virStreamAbort(st);
		goto cleanup;
	}
	log_info("libvirt: uploaded %s to %s (%lld bytes, %lld ms)", local, v->path,
		  (long long)sb.st_size, (long long)(now_ms() - t0));
	free(path);
	path = NULL;
	if (st)
		virStreamFree(st);
	virStorageVolFree(vol);
	virStoragePoolFree(pool);
	free(name);
	free(xml);
	close(fd);
	return v->path;
cleanup:
	if (st)
		virStreamFree(st);
	if (vol)
		virStorageVolFree(vol);
	if (pool)
		virStoragePoolFree(pool);
	free(path);
	free(name);
	free(xml);
	if (fd >= 0)
		close(fd);
	return NULL;
}

int lvr_download(struct lvr *r, const char *role, const char *local)
{
	virStoragePoolPtr pool = NULL;
	virStorageVolPtr vol = NULL;
	virStreamPtr st = NULL;
	char *name = xasprintf("%s-%s", r->domain, role);
	int fd = -1, ret = -1;
	int64_t t0 = now_ms();

	if (!(pool = pool_get(r->conn)))
		goto cleanup;
	vol = virStorageVolLookupByName(pool, name);
	if (!vol) {
		lv_fail("look up volume", name);
		goto cleanup;
	}
	fd = open(local, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		err_errno("open '%s'", local);
		goto cleanup;
	}
	st = virStreamNew(r->conn, 0);
	if (!st || virStorageVolDownload(vol, st, 0, 0, 0) < 0 ||
	    virStreamRecvAll(st, recv_to_fd, &fd) < 0 || virStreamFinish(st) < 0) {
		lv_fail("download volume", name);
		if (st)
			virStreamAbort(st);
		goto cleanup;
	}
	if (fsync(fd) < 0) {
		err_errno("fsync '%s'", local);
		goto cleanup;
	}
	log_info("libvirt: downloaded %s to %s (%lld ms)", name, local,
		  (long long)(now_ms() - t0));
	ret = 0;
cleanup:
	if (st)
		virStreamFree(st);
	if (vol)
		virStorageVolFree(vol);
	if (pool)
		virStoragePoolFree(pool);
	if (fd >= 0)
		close(fd);
	free(name);
	return ret;
}

static int delete_volume(virStoragePoolPtr pool, const char *name)
{
	virStorageVolPtr vol = virStorageVolLookupByName(pool, name);
	int r = 0;

	if (!vol) {
		virErrorPtr e = virGetLastError();

		return e && e->code == VIR_ERR_NO_STORAGE_VOL ? 0 : lv_fail("look up volume", name);
	}
	if (virStorageVolDelete(vol, 0) < 0)
		r = lv_fail("delete volume", name);
	virStorageVolFree(vol);
	return r;
}

void lvr_free(struct lvr *r, bool keep)
{
	virStoragePoolPtr pool = NULL;
	size_t i;

	if (!r)
		return;
	lvr_unbridge(r);
	if (!keep && r->n_vols && !(pool = pool_get(r->conn)))
		log_warn("%s", err_msg());
	for (i = 0; i < r->n_vols; i++) {
		if (pool && delete_volume(pool, r->vols[i].name) < 0)
			log_warn("%s", err_msg());
		free(r->vols[i].role);
		free(r->vols[i].name);
		free(r->vols[i].path);
	}
	if (pool)
		virStoragePoolFree(pool);
	free(r->domain);
	free(r);
}

int lvr_remove_volumes(virConnectPtr conn, const char *domain)
{
	virStoragePoolPtr pool = virStoragePoolLookupByName(conn, LVR_POOL);
	struct strv names = STRV_INIT;
	size_t i;
	int ret = 0;

	if (!pool) {
		virErrorPtr e = virGetLastError();

		return e && e->code == VIR_ERR_NO_STORAGE_POOL ? 0 : lv_fail("storage pool", LVR_POOL);
	}
	if (virStoragePoolIsActive(pool) != 1) {
		virStoragePoolFree(pool);
		return 0;
	}
	/* Exactly the names lv_start gives, never a prefix match: another
	 * domain's name may start with this one's. */
	for (i = 0; i < VM_DISKS_MAX; i++) {
		strv_pushf(&names, "%s-vd%c", domain, (char)('a' + i));
		strv_pushf(&names, "%s-vd%c-base", domain, (char)('a' + i));
	}
	strv_pushf(&names, "%s-seed", domain);
	for (i = 0; i < names.n; i++)
		if (delete_volume(pool, names.v[i]) < 0)
			ret = -1;
	strv_release(&names);
	virStoragePoolFree(pool);
	return ret;
}
