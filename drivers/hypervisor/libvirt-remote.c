/* libvirt-remote.c: disks as storage volumes, the agent channel and the
 * console through the connection (see libvirt-remote.h). */
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "libvirt-remote.h"
#include "builder/base/cache.h"
#include "builder/disk/qemu-img.h"
#include "hypervisor.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* One read or receive of a bridge. */
#define LVR_CHUNK 65536
/* How often a client waiting for another's upload of a base looks, and how
 * long the volume may stay the same size before that upload counts as dead. */
#define LVR_BASE_POLL_MS 2000
#define LVR_BASE_STALL_MS (60 * 1000)
/* Volumes of one guest: each disk with its backing chain, the seed. */
#define LVR_VOLS_MAX (VM_DISKS_MAX * (1 + LVR_CHAIN_MAX) + 1)
/* qemu-img info --backing-chain's JSON for one disk: a few KiB a layer. */
#define LVR_CHAIN_JSON_MAX (1024 * 1024)
/* The connection's keepalive: a ping after 5 s of silence, given up after
 * 6 unanswered (35 s): a dead host or ssh ends the build with an error
 * instead of a hang. */
#define LVR_KEEPALIVE_INTERVAL 5
#define LVR_KEEPALIVE_COUNT 6
/* How long the console logger may take to drain once the stream ends. */
#define LVR_LOGGER_DRAIN_MS 2000
/* The host's capabilities XML: tens of KiB. */
#define LVR_CAPS_MAX (4u * 1024 * 1024)
/* How long a bridge's owner waits for the event loop to let go of it. */
#define LVR_RELEASE_WAIT_MS 1000

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

virConnectPtr lvr_connect(const char *uri)
{
	virConnectPtr conn;

	if (lvr_event_loop() < 0)
		return NULL;
	conn = virConnectOpen(uri);
	if (!conn) {
		err_set("connect to libvirt '%s': %s", uri, virGetLastErrorMessage());
		return NULL;
	}
	if (virConnectSetKeepAlive(conn, LVR_KEEPALIVE_INTERVAL, LVR_KEEPALIVE_COUNT) < 0)
		log_debug("libvirt: keepalive on %s: %s", uri, virGetLastErrorMessage());
	return conn;
}

/* ---- bridges: a virStream <-> a local socket ----------------------------- */

/* The rule that keeps the connection alive: the event loop thread is the
 * one that reads the connection when no call is in flight (the server's
 * keepalive pings among it), so nothing it runs may block. Its callbacks
 * only move bytes between non-blocking ends, each direction through its own
 * buffer: a full end stops the other side being read until it drains. No
 * call that waits for the server (virDomainOpenChannel, virStreamAbort,
 * virStreamFree of a live stream) runs in a callback: opening a channel is
 * the accept thread's, tearing a stream down its owner's (lvr_unbridge, the
 * accept thread for the previous client's).
 *
 * Every bridge's state is guarded by pump_lock: callbacks run on the loop
 * thread, start and stop elsewhere. A bridge is freed when its owner and
 * both callbacks (freed by libvirt through their ff) have let go. */
static pthread_mutex_t pump_lock = PTHREAD_MUTEX_INITIALIZER;

struct pump {
	/* The agent channel's own connection and domain handle (NULL: the
	 * guest's connection, for the console): see open_channel. */
	virConnectPtr conn;
	virDomainPtr dom;
	virStreamPtr st;
	int fd;               /* the local end, non-blocking */
	int watch;            /* virEventAddHandle id, or -1 */
	bool stream_cb;
	bool dead;            /* callbacks removed, fd closed; st left to the owner */
	int refs;
	char up[LVR_CHUNK];   /* read from fd, not yet accepted by the stream */
	size_t nup, upoff;
	char down[LVR_CHUNK]; /* received from the stream, not yet written to fd */
	size_t ndown, downoff;
};

struct lvr_vol {
	char *role;
	char *name;
	char *path;   /* on the remote host */
};

struct lvr {
	virConnectPtr conn;
	virDomainPtr dom;
	char *uri;      /* conn's, for the agent channel's own connections */
	char *domain;
	struct lvr_vol vols[LVR_VOLS_MAX];
	size_t n_vols;
	struct strv bases;   /* paths of the shared volumes it uses */
	long qemu_gid;       /* QEMU's group on the host: -1 none said, -2 not asked */
	struct pump *agent, *console;
	/* The accept thread: listen_fd, woken to stop through stop_pipe. */
	int listen_fd;
	int stop_pipe[2];
	pthread_t acceptor;
	bool acceptor_running;
	pid_t logger;
};

static void pump_unref(void *opaque)
{
	struct pump *p = opaque;

	if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(p);
}

/* Under pump_lock: no more callbacks, the local end closed. Local calls
 * only (no round trip to the server): safe in a callback. */
static void pump_stop(struct pump *p)
{
	if (!p || p->dead)
		return;
	p->dead = true;
	if (p->watch >= 0)
		virEventRemoveHandle(p->watch);   /* its ff drops a reference */
	p->watch = -1;
	if (p->stream_cb)
		virStreamEventRemoveCallback(p->st);
	p->stream_cb = false;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

/* Under pump_lock: what each side should be watched for. The stream is read
 * only while down is empty, the local end only while up is empty. */
static void pump_arm(struct pump *p)
{
	int sev = VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP;
	int lev = 0;

	if (p->dead)
		return;
	if (p->nup)
		sev |= VIR_STREAM_EVENT_WRITABLE;
	else
		lev |= VIR_EVENT_HANDLE_READABLE;
	if (p->ndown)
		lev |= VIR_EVENT_HANDLE_WRITABLE;
	else
		sev |= VIR_STREAM_EVENT_READABLE;
	virStreamEventUpdateCallback(p->st, sev);
	virEventUpdateHandle(p->watch, lev);
}

/* Move what each buffer holds as far as it goes; -1: the bridge ends. */
static int pump_move(struct pump *p)
{
	while (p->upoff < p->nup) {
		int n = virStreamSend(p->st, p->up + p->upoff, p->nup - p->upoff);

		if (n == -2)
			break;
		if (n < 0)
			return -1;
		p->upoff += (size_t)n;
	}
	if (p->upoff == p->nup)
		p->upoff = p->nup = 0;
	while (p->downoff < p->ndown) {
		ssize_t n = write(p->fd, p->down + p->downoff, p->ndown - p->downoff);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;   /* the local end went */
		p->downoff += (size_t)n;
	}
	if (p->downoff == p->ndown)
		p->downoff = p->ndown = 0;
	return 0;
}

static void on_stream(virStreamPtr st UNUSED, int events, void *opaque)
{
	struct pump *p = opaque;

	pthread_mutex_lock(&pump_lock);
	if (p->dead)
		goto out;
	if ((events & VIR_STREAM_EVENT_READABLE) && !p->ndown) {
		int n = virStreamRecv(p->st, p->down, sizeof(p->down));

		if (n == 0 || n == -1) {
			pump_stop(p);   /* end of stream, or its error */
			goto out;
		}
		if (n > 0)
			p->ndown = (size_t)n;
	}
	if (pump_move(p) < 0 ||
	    ((events & (VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP)) &&
	     !(events & VIR_STREAM_EVENT_READABLE))) {
		pump_stop(p);
		goto out;
	}
	pump_arm(p);
out:
	pthread_mutex_unlock(&pump_lock);
}

static void on_local(int watch UNUSED, int fd, int events, void *opaque)
{
	struct pump *p = opaque;

	pthread_mutex_lock(&pump_lock);
	if (p->dead)
		goto out;
	if ((events & VIR_EVENT_HANDLE_READABLE) && !p->nup) {
		ssize_t n = read(fd, p->up, sizeof(p->up));

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			pump_stop(p);   /* the client closed: the next one gets a fresh stream */
			goto out;
		}
		if (n > 0)
			p->nup = (size_t)n;
	}
	if (pump_move(p) < 0 ||
	    ((events & (VIR_EVENT_HANDLE_ERROR | VIR_EVENT_HANDLE_HANGUP)) &&
	     !(events & VIR_EVENT_HANDLE_READABLE))) {
		pump_stop(p);
		goto out;
	}
	pump_arm(p);
out:
	pthread_mutex_unlock(&pump_lock);
}

/* A bridge between st (non-blocking, opened) and fd; both become the
 * bridge's. Under pump_lock, so that no callback runs before it is whole.
 * NULL with an error (fd closed; st left to the caller). */
static struct pump *pump_new(virStreamPtr st, int fd)
{
	struct pump *p;

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		err_errno("make the bridge's socket non-blocking");
		close(fd);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->st = st;
	p->fd = fd;
	/* The owner's and the local watch's (libvirt 9's remote streams never
	 * call a stream callback's ff, so it gets none: see pump_drop). */
	p->refs = 2;
	p->watch = virEventAddHandle(fd, VIR_EVENT_HANDLE_READABLE, on_local, p, pump_unref);
	if (p->watch < 0)
		p->refs--;
	if (virStreamEventAddCallback(st, VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR |
				      VIR_STREAM_EVENT_HANGUP, on_stream, p, NULL) == 0)
		p->stream_cb = true;
	if (p->watch < 0 || !p->stream_cb) {
		err_set("bridge a libvirt stream: %s", virGetLastErrorMessage());
		pump_stop(p);
		pump_unref(p);
		return NULL;
	}
	return p;
}

/* Stop *pp and let go of it; its stream is aborted and freed here, outside
 * pump_lock and never on the loop thread. */
static void pump_drop(struct pump **pp)
{
	struct pump *p;
	virStreamPtr st;
	virConnectPtr conn;
	virDomainPtr dom;

	pthread_mutex_lock(&pump_lock);
	p = *pp;
	*pp = NULL;
	if (p)
		pump_stop(p);
	pthread_mutex_unlock(&pump_lock);
	if (!p)
		return;
	st = p->st;
	/* The loop lets go of the watch on its next turn, after any stream
	 * callback already under way (callbacks run on the loop thread, one at
	 * a time): wait for that (briefly), then the bridge is ours to free.
	 * Past the wait it is left alone rather than freed under a callback. */
	for (int i = 0; i < LVR_RELEASE_WAIT_MS &&
	     __atomic_load_n(&p->refs, __ATOMIC_ACQUIRE) > 1; i++)
		usleep(1000);
	conn = p->conn;
	dom = p->dom;
	pump_unref(p);
	virStreamAbort(st);   /* an ended stream refuses: nothing to undo */
	virStreamFree(st);
	if (dom)
		virDomainFree(dom);
	if (conn)
		virConnectClose(conn);
}

/* Open the domain's agent channel into a new non-blocking stream (FORCE
 * takes the channel from a previous client). NULL with an error. */
static virStreamPtr open_channel(virConnectPtr conn, virDomainPtr dom, const char *domain)
{
	virStreamPtr st = virStreamNew(conn, VIR_STREAM_NONBLOCK);

	if (!st || virDomainOpenChannel(dom, HV_AGENT_PORT_NAME, st,
					VIR_DOMAIN_CHANNEL_FORCE) < 0) {
		lv_fail("open the agent channel of domain", domain);
		if (st)
			virStreamFree(st);
		return NULL;
	}
	return st;
}

/* The accept thread: each client of the local agent socket gets a fresh
 * channel stream, the previous client's is torn down. A thread of its own
 * because opening a channel waits for the server. */
static void *acceptor_run(void *opaque)
{
	struct lvr *r = opaque;

	for (;;) {
		struct pollfd pf[2] = { { .fd = r->listen_fd, .events = POLLIN },
					{ .fd = r->stop_pipe[0], .events = POLLIN } };
		virConnectPtr conn;
		virDomainPtr dom;
		virStreamPtr st;
		struct pump *p;
		int c;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("libvirt: agent bridge of %s: poll: %s", r->domain,
				 strerror(errno));
			break;
		}
		if (pf[1].revents)
			break;
		c = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		pump_drop(&r->agent);
		/* A connection of the channel's own: libvirtd stops reading a
		 * client whose stream the far end does not take (the guest has
		 * not opened its port yet), and after 30 s of that closes it
		 * for missed keepalives; the guest's own connection must not
		 * be that one. */
		conn = lvr_connect(r->uri);
		dom = conn ? virDomainLookupByName(conn, r->domain) : NULL;
		st = dom ? open_channel(conn, dom, r->domain) : NULL;
		if (!st) {
			log_debug("libvirt: agent channel of %s: %s", r->domain,
				  err_isset() ? err_msg() : virGetLastErrorMessage());
			if (dom)
				virDomainFree(dom);
			if (conn)
				virConnectClose(conn);
			close(c);   /* the client retries */
			continue;
		}
		pthread_mutex_lock(&pump_lock);
		p = pump_new(st, c);
		if (p) {
			p->conn = conn;
			p->dom = dom;
		}
		r->agent = p;
		pthread_mutex_unlock(&pump_lock);
		if (!p) {
			log_debug("libvirt: %s", err_msg());
			virStreamAbort(st);
			virStreamFree(st);
			virDomainFree(dom);
			virConnectClose(conn);
		}
	}
	return NULL;
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
	int sp[2] = { -1, -1 };

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
		r->console = pump_new(st, sp[0]);
		pthread_mutex_unlock(&pump_lock);
		if (!r->console) {
			virStreamAbort(st);
			virStreamFree(st);
			return -1;
		}
	}
	if (agent_socket) {
		r->listen_fd = listen_unix(agent_socket);
		if (r->listen_fd < 0)
			return -1;
		if (pipe2(r->stop_pipe, O_CLOEXEC) < 0)
			return err_errno("pipe for the agent bridge of '%s'", r->domain);
		if (pthread_create(&r->acceptor, NULL, acceptor_run, r) != 0)
			return err_set("start the agent bridge of '%s'", r->domain);
		r->acceptor_running = true;
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
	conn = lvr_connect(uri);
	if (!conn)
		return -1;
	dom = virDomainLookupByName(conn, domain);
	if (!dom) {
		lv_fail("look up domain", domain);
		goto cleanup;
	}
	if (!(st = open_channel(conn, dom, domain)))
		goto cleanup;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		err_errno("socketpair for the agent of '%s'", domain);
		goto cleanup;
	}
	pthread_mutex_lock(&pump_lock);
	p = pump_new(st, sp[0]);
	pthread_mutex_unlock(&pump_lock);
	sp[0] = -1;
	if (!p)
		goto cleanup;
	st = NULL;
	/* The bridge and the connection stay for the life of this process
	 * (attach runs one command and exits). */
	*fd = sp[1];
	sp[1] = -1;
	conn = NULL;
	ret = 0;
cleanup:
	if (st) {
		virStreamAbort(st);
		virStreamFree(st);
	}
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
	if (r->acceptor_running) {
		if (write(r->stop_pipe[1], "x", 1) < 0)
			log_debug("libvirt: wake the agent bridge: %s", strerror(errno));
		pthread_join(r->acceptor, NULL);
		r->acceptor_running = false;
	}
	if (r->listen_fd >= 0)
		close(r->listen_fd);
	r->listen_fd = -1;
	for (int i = 0; i < 2; i++)
		if (r->stop_pipe[i] >= 0)
			close(r->stop_pipe[i]);
	r->stop_pipe[0] = r->stop_pipe[1] = -1;
	pump_drop(&r->agent);
	/* The console: what the stream still holds reaches the logger first
	 * (the guest has stopped; its end of the stream is closing). */
	pump_drop(&r->console);
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

void lvr_set_conn(struct lvr *r, virConnectPtr conn)
{
	if (r)
		r->conn = conn;
}

struct lvr *lvr_new(virConnectPtr conn, const char *domain)
{
	struct lvr *r = xcalloc(1, sizeof(*r));
	char *uri = virConnectGetURI(conn);

	r->conn = conn;
	r->uri = xstrdup(uri ? uri : "");
	free(uri);
	r->domain = xstrdup(domain);
	r->listen_fd = -1;
	r->stop_pipe[0] = r->stop_pipe[1] = -1;
	r->qemu_gid = -2;
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

/* Create volume name in pool: size bytes, raw whatever the file holds (the
 * volume is its bytes; the domain XML states each disk's format, never
 * probed), the given mode, owned by root and group gid when gid >= 0. NULL
 * with an error; *exists says whether it was there already. */
static virStorageVolPtr create_volume(virStoragePoolPtr pool, const char *name, off_t size,
				      const char *mode, long gid, bool *exists)
{
	char owner[64] = "";
	char *xml;
	virStorageVolPtr vol;

	if (gid >= 0)
		snprintf(owner, sizeof(owner), "<owner>0</owner><group>%ld</group>", gid);
	xml = xasprintf("<volume><name>%s</name><capacity unit='bytes'>%lld</capacity>"
			"<allocation unit='bytes'>0</allocation><target><format type='raw'/>"
			"<permissions><mode>%s</mode>%s</permissions></target></volume>",
			name, (long long)size, mode, owner);
	vol = virStorageVolCreateXML(pool, xml, 0);

	*exists = false;
	if (!vol) {
		virErrorPtr e = virGetLastError();

		*exists = e && e->code == VIR_ERR_STORAGE_VOL_EXIST;
		lv_fail("create volume", name);
	}
	free(xml);
	return vol;
}

/* The whole of fd (size bytes, from its start) into vol. 0 or -1. */
static int upload_fd(struct lvr *r, virStorageVolPtr vol, const char *name, int fd, off_t size)
{
	virStreamPtr st = virStreamNew(r->conn, 0);
	int ret = 0;

	if (!st || lseek(fd, 0, SEEK_SET) < 0 ||
	    virStorageVolUpload(vol, st, 0, (unsigned long long)size, 0) < 0 ||
	    virStreamSendAll(st, send_from_fd, &fd) < 0 || virStreamFinish(st) < 0) {
		ret = lv_fail("upload to volume", name);
		if (st)
			virStreamAbort(st);
	}
	if (st)
		virStreamFree(st);
	return ret;
}

/* vol, named name, is the guest's own (for role): recorded at once, so that
 * lvr_free deletes it whatever happens next. Its path there, owned by r;
 * NULL with an error. */
static const char *own_volume(struct lvr *r, virStorageVolPtr vol, const char *role,
			      const char *name)
{
	struct lvr_vol *v = &r->vols[r->n_vols++];
	char *path;

	v->role = xstrdup(role);
	v->name = xstrdup(name);
	if (!(path = virStorageVolGetPath(vol))) {
		lv_fail("path of volume", name);
		return NULL;
	}
	v->path = xstrdup(path);
	free(path);
	return v->path;
}

const char *lvr_upload(struct lvr *r, const char *role, const char *local)
{
	virStoragePoolPtr pool = NULL;
	virStorageVolPtr vol = NULL;
	struct stat sb;
	char *name = NULL;
	const char *ret = NULL, *path;
	bool exists;
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
	if (!(vol = create_volume(pool, name, sb.st_size, "0600", -1, &exists)) ||
	    !(path = own_volume(r, vol, role, name)) || upload_fd(r, vol, name, fd, sb.st_size) < 0)
		goto cleanup;
	log_info("libvirt: uploaded %s to %s (%lld bytes, %lld ms)", local, path,
		 (long long)sb.st_size, (long long)(now_ms() - t0));
	ret = path;
cleanup:
	if (vol)
		virStorageVolFree(vol);
	if (pool)
		virStoragePoolFree(pool);
	free(name);
	if (fd >= 0)
		close(fd);
	return ret;
}

const char *lvr_overlay(struct lvr *r, const char *role, const char *backing,
			const char *backing_fmt, uint64_t size)
{
	virStoragePoolPtr pool = NULL;
	virStorageVolPtr vol = NULL;
	char *name = NULL, *xml = NULL;
	const char *ret = NULL;

	if (r->n_vols >= LVR_VOLS_MAX) {
		err_set("domain '%s': too many volumes", r->domain);
		goto cleanup;
	}
	if (!(pool = pool_get(r->conn)))
		goto cleanup;
	name = xasprintf("%s-%s", r->domain, role);
	xml = xasprintf("<volume><name>%s</name><capacity unit='bytes'>%" PRIu64 "</capacity>"
			"<target><format type='qcow2'/><permissions><mode>0600</mode>"
			"</permissions></target><backingStore><path>%s</path>"
			"<format type='%s'/></backingStore></volume>",
			name, size, backing, backing_fmt);
	if (!(vol = virStorageVolCreateXML(pool, xml, 0)))
		lv_fail("create volume", name);
	else
		ret = own_volume(r, vol, role, name);
cleanup:
	if (vol)
		virStorageVolFree(vol);
	if (pool)
		virStoragePoolFree(pool);
	free(xml);
	free(name);
	return ret;
}

/* Is there a complete shared base name in pool (its marker, and the volume
 * itself)? Its path into *path then. (Not its size: a directory pool
 * reports the virtual size of the qcow2 it finds in the file.) */
static bool base_ready(virStoragePoolPtr pool, const char *name, char **path)
{
	char *marker = xasprintf("%s-ok", name);
	virStorageVolPtr m = virStorageVolLookupByName(pool, marker), vol = NULL;
	bool ok = false;

	if (m && (vol = virStorageVolLookupByName(pool, name)))
		ok = (*path = virStorageVolGetPath(vol)) != NULL;
	if (m)
		virStorageVolFree(m);
	if (vol)
		virStorageVolFree(vol);
	free(marker);
	return ok;
}

/* The group QEMU runs as on r's host: the DAC driver's base label
 * ("+UID:+GID") in the host's capabilities, asked once; -1 when none is
 * said (no DAC driver, or an unexpected answer). */
static long qemu_gid(struct lvr *r)
{
	char *caps;
	xmlDocPtr doc = NULL;
	xmlXPathContextPtr x = NULL;
	xmlXPathObjectPtr o = NULL;
	const char *label, *colon;
	uint64_t gid;

	if (r->qemu_gid != -2)
		return r->qemu_gid;
	r->qemu_gid = -1;
	caps = virConnectGetCapabilities(r->conn);
	if (caps && strlen(caps) < LVR_CAPS_MAX)
		doc = xmlReadMemory(caps, (int)strlen(caps), NULL, NULL,
				    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc && (x = xmlXPathNewContext(doc)))
		o = xmlXPathEvalExpression(BAD_CAST "string(/capabilities/host/secmodel"
					   "[model='dac']/baselabel[@type='kvm'])", x);
	label = o && o->type == XPATH_STRING && o->stringval ? (const char *)o->stringval : "";
	colon = strchr(label, ':');
	if (label[0] == '+' && colon && colon[1] == '+' &&
	    parse_u64(colon + 2, 0x7fffffff, &gid) == 0)
		r->qemu_gid = (long)gid;
	else
		err_clear();
	if (r->qemu_gid < 0)
		log_debug("libvirt: %s says no DAC label for QEMU", r->uri);
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(x);
	xmlFreeDoc(doc);
	free(caps);
	return r->qemu_gid;
}

const char *lvr_upload_shared(struct lvr *r, const char *local, bool layer)
{
	virStoragePoolPtr pool = NULL;
	virStorageVolPtr vol = NULL, m = NULL;
	struct stat sb;
	char *hex = NULL, *name = NULL, *marker = NULL, *path = NULL;
	const char *ret = NULL, *mode = layer ? "0640" : "0644";
	int64_t t0 = now_ms(), deadline, moved;
	unsigned long long last = 0;
	bool exists, said = false;
	long gid = layer ? qemu_gid(r) : -1;
	int fd = -1;

	if (layer && gid < 0) {
		err_set("%s: %s names no group for QEMU to read a shared layer with", local,
			r->uri);
		goto cleanup;
	}
	fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		err_errno("open '%s'", local);
		goto cleanup;
	}
	if (hash_fd(fd, local, CHECKSUM_NONE, &hex, NULL) < 0 || !(pool = pool_get(r->conn)))
		goto cleanup;
	name = xasprintf("%s%.32s", layer ? LVR_LAYER_PREFIX : LVR_BASE_PREFIX, hex);
	marker = xasprintf("%s-ok", name);
	moved = now_ms();   /* after the hash, however long it took */
	deadline = moved + LVR_BASE_WAIT_MS;
	for (;;) {
		if (base_ready(pool, name, &path)) {
			log_info("libvirt: %s is in the pool already as %s", local, path);
			break;
		}
		vol = create_volume(pool, name, sb.st_size, mode, gid, &exists);
		if (vol) {
			if (upload_fd(r, vol, name, fd, sb.st_size) < 0 ||
			    !(m = create_volume(pool, marker, 0, "0644", -1, &exists)) ||
			    !(path = virStorageVolGetPath(vol))) {
				err_prefix("shared volume '%s'", name);
				if (!m)
					virStorageVolDelete(vol, 0);
				goto cleanup;
			}
			log_info("libvirt: uploaded %s to %s, shared (%lld bytes, %lld ms)", local,
				 path, (long long)sb.st_size, (long long)(now_ms() - t0));
			break;
		}
		if (!exists)
			goto cleanup;
		/* Another client is uploading it, or died doing so: then the
		 * volume stops growing and stays incomplete for everyone. */
		if ((vol = virStorageVolLookupByName(pool, name))) {
			virStorageVolInfo info;

			if (virStorageVolGetInfo(vol, &info) == 0 && info.allocation != last) {
				last = info.allocation;
				moved = now_ms();
			}
			virStorageVolFree(vol);
			vol = NULL;
		}
		if (now_ms() - moved >= LVR_BASE_STALL_MS) {
			err_set("shared volume '%s' is incomplete and has not grown for %d s (an "
				"upload that died?): delete it with virsh vol-delete --pool %s %s",
				name, LVR_BASE_STALL_MS / 1000, LVR_POOL, name);
			goto cleanup;
		}
		if (now_ms() >= deadline) {
			err_set("shared volume '%s': its upload by another client did not complete "
				"within %d s", name, LVR_BASE_WAIT_MS / 1000);
			goto cleanup;
		}
		if (!said)
			log_info("libvirt: waiting for another client's upload of %s", name);
		said = true;
		usleep(LVR_BASE_POLL_MS * 1000);
	}
	strv_push(&r->bases, path);
	ret = r->bases.v[r->bases.n - 1];
cleanup:
	if (m)
		virStorageVolFree(m);
	if (vol)
		virStorageVolFree(vol);
	if (pool)
		virStoragePoolFree(pool);
	free(path);
	free(hex);
	free(name);
	free(marker);
	if (fd >= 0)
		close(fd);
	return ret;
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
	fd = open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
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

int lvr_drop(struct lvr *r, const char *path)
{
	virStoragePoolPtr pool;
	size_t i;
	int ret;

	for (i = 0; i < r->n_vols; i++)
		if (r->vols[i].path && strcmp(r->vols[i].path, path) == 0)
			break;
	if (i == r->n_vols)
		return 0;   /* shared, or not this guest's */
	if (!(pool = pool_get(r->conn)))
		return -1;
	ret = delete_volume(pool, r->vols[i].name);
	virStoragePoolFree(pool);
	if (ret < 0)
		return -1;
	free(r->vols[i].role);
	free(r->vols[i].name);
	free(r->vols[i].path);
	r->vols[i] = r->vols[--r->n_vols];
	return 0;
}

int lvr_free(struct lvr *r, bool keep)
{
	virStoragePoolPtr pool = NULL;
	size_t i;
	int ret = 0;

	if (!r)
		return 0;
	lvr_unbridge(r);
	if (!keep && r->n_vols && !(pool = pool_get(r->conn))) {
		log_warn("%s", err_msg());
		ret = -1;
	}
	for (i = 0; i < r->n_vols; i++) {
		if (pool && delete_volume(pool, r->vols[i].name) < 0) {
			log_warn("%s", err_msg());
			ret = -1;
		}
		free(r->vols[i].role);
		free(r->vols[i].name);
		free(r->vols[i].path);
	}
	if (pool)
		virStoragePoolFree(pool);
	strv_release(&r->bases);
	free(r->domain);
	free(r->uri);
	free(r);
	return ret;
}

/* Is name one of the volumes lvr gives the guest named domain: exactly
 * "<domain>-seed", "<domain>-vdX", "<domain>-vdX-bN" (a backing image) or
 * "<domain>-vdX.tN" (a top made by a snapshot)? Never a prefix match:
 * another domain's name may start with this one's. */
static bool volume_of(const char *name, const char *domain)
{
	size_t n = strlen(domain);
	const char *t = name + n + 1;

	if (strncmp(name, domain, n) != 0 || name[n] != '-')
		return false;
	if (strcmp(t, "seed") == 0)
		return true;
	if (t[0] != 'v' || t[1] != 'd' || t[2] < 'a' || t[2] >= 'a' + VM_DISKS_MAX)
		return false;
	if (!t[3])
		return true;
	if (!((t[3] == '-' && t[4] == 'b') || (t[3] == '.' && t[4] == 't')) || !t[5])
		return false;
	for (t += 5; *t; t++)
		if (!isdigit((unsigned char)*t))
			return false;
	return true;
}

int lvr_remove_volumes(virConnectPtr conn, const char *domain)
{
	virStoragePoolPtr pool = virStoragePoolLookupByName(conn, LVR_POOL);
	virStorageVolPtr *vols = NULL;
	int i, n, ret = 0;

	if (!pool) {
		virErrorPtr e = virGetLastError();

		return e && e->code == VIR_ERR_NO_STORAGE_POOL ? 0 : lv_fail("storage pool", LVR_POOL);
	}
	if (virStoragePoolIsActive(pool) != 1) {
		virStoragePoolFree(pool);
		return 0;
	}
	n = virStoragePoolListAllVolumes(pool, &vols, 0);
	if (n < 0)
		ret = lv_fail("list the volumes of pool", LVR_POOL);
	for (i = 0; i < n; i++) {
		const char *name = virStorageVolGetName(vols[i]);

		if (name && volume_of(name, domain) && virStorageVolDelete(vols[i], 0) < 0)
			ret = lv_fail("delete volume", name);
		virStorageVolFree(vols[i]);
	}
	free(vols);
	virStoragePoolFree(pool);
	return ret;
}

int lvr_chain(const char *top, struct strv *files, struct strv *formats)
{
	struct qemu_img_read rd = { .max = LVR_CHAIN_JSON_MAX };
	json_t *j, *e;
	size_t i;
	int ret = -1;

	j = qemu_img_info(top, "qcow2", QEMU_IMG_CHAIN | QEMU_IMG_SHARED, &rd);
	if (!j) {
		err_prefix("backing chain of '%s'", top);
		goto cleanup;
	}
	if (!json_is_array(j) || json_array_size(j) < 1 ||
	    json_array_size(j) > 1 + LVR_CHAIN_MAX) {
		err_set("backing chain of '%s': not 1 to %d images", top, 1 + LVR_CHAIN_MAX);
		goto cleanup;
	}
	json_array_foreach(j, i, e) {
		const char *fn = json_string_value(json_object_get(e, "filename"));
		const char *fmt = json_string_value(json_object_get(e, "format"));

		if (!fn || fn[0] != '/' || !fmt ||
		    (strcmp(fmt, "qcow2") != 0 && strcmp(fmt, "raw") != 0) ||
		    (i + 1 < json_array_size(j) && strcmp(fmt, "qcow2") != 0)) {
			err_set("backing chain of '%s': image %zu is not an absolute qcow2 or raw "
				"file", top, i);
			goto cleanup;
		}
		strv_push(files, fn);
		strv_push(formats, fmt);
	}
	ret = 0;
cleanup:
	if (ret < 0) {
		strv_release(files);
		strv_release(formats);
	}
	json_decref(j);
	return ret;
}
