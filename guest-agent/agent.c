/* amiforge-agent: the static in-guest agent (see common/proto.h).
 *
 *	amiforge-agent [--port PATH]         serve the virtio-serial port (default)
 *	amiforge-agent --socket PATH         serve a unix socket (tests, local use)
 *	amiforge-agent --stdio               serve stdin/stdout (tests)
 *	              [--fake-power]         reboot/poweroff only simulate (tests)
 *
 * It runs as root from cloud-init or a systemd unit, for the whole life of the
 * guest: it waits for the port to appear, survives the host closing and
 * reopening the channel, and never exits on anything the host sends. */
#include <linux/random.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>

#include "agent.h"
#include "error.h"
#include "log.h"
#include "run.h"
#include "util.h"

#define DEFAULT_PORT "/dev/virtio-ports/org.amiforge.agent.0"
#define PORT_NAME "org.amiforge.agent.0"
/* How often to look for the port, or for a host on it, while there is none. */
#define IDLE_RETRY_MS 200
/* Longest file the info op reads (os-release, boot_id, uptime). */
#define SMALL_FILE_MAX (64u * 1024)

struct agent_opts agent_opts;

/* --- the channel ---------------------------------------------------------- */

/* Room to write on the channel: 0, or -1 on a hangup. */
static int conn_wait(void *opaque)
{
	struct conn *c = opaque;
	struct pollfd p = { .fd = c->wfd, .events = POLLOUT };

	if (poll(&p, 1, -1) < 0 && errno != EINTR)
		return -1;
	return p.revents & (POLLHUP | POLLERR | POLLNVAL) ? -1 : 0;
}

/* Write all of iov[0..cnt), waiting for room; a hangup kills the connection. */
static int conn_writev(struct conn *c, struct iovec *iov, int cnt)
{
	if (c->dead)
		return -1;
	if (writev_all(c->wfd, iov, cnt, conn_wait, c) < 0) {
		c->dead = true;
		return -1;
	}
	return 0;
}

int conn_send(struct conn *c, uint16_t type, uint8_t flags, uint32_t id,
	      const void *payload, size_t len)
{
	uint8_t hdr[PROTO_HDR_LEN];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)payload, len } };

	proto_hdr_encode(hdr, type, flags, id, (uint32_t)len);
	return conn_writev(c, iov, len ? 2 : 1);
}

int conn_send_msg(struct conn *c, struct proto_msg *m)
{
	struct iovec iov = { m->data, m->len };

	if (proto_msg_finish(m) < 0) {
		/* Our own reply overflowed (e.g. a huge listing): say so. */
		struct proto_frame f;

		proto_hdr_decode(m->data, &f);
		return conn_send_error(c, f.id, EOVERFLOW);
	}
	return conn_writev(c, &iov, 1);
}

int conn_send_error(struct conn *c, uint32_t id, int errnum)
{
	struct proto_msg m;
	int r;

	proto_msg_init(&m, PROTO_R_ERROR, 0, id);
	proto_msg_u32(&m, PROTO_A_ERRNO, (uint32_t)errnum);
	proto_msg_str(&m, PROTO_A_MSG, err_msg(), PROTO_STR_MAX);
	r = conn_send_msg(c, &m);
	proto_msg_release(&m);
	return r;
}

void conn_push_back(struct conn *c, const struct proto_frame *f)
{
	c->pending = *f;
	c->have_pending = true;
}

int conn_recv(struct conn *c, struct proto_frame *f, int timeout_ms)
{
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;

	if (c->have_pending) {
		*f = c->pending;
		c->have_pending = false;
		return 1;
	}
	for (;;) {
		struct pollfd p = { .fd = c->rfd, .events = POLLIN };
		int r, wait;
		ssize_t n;

		if (c->dead)
			return -1;
		r = proto_in_next(&c->in, f);
		if (r == 1)
			return 1;
		if (r < 0) {
			/* Leftovers of an earlier connection, or garbage. */
			log_debug("%s; skipping to the next frame", err_msg());
			proto_in_resync(&c->in);
			continue;
		}
		wait = timeout_ms < 0 ? -1 : (int)(deadline ? deadline - now_ms() : 0);
		if (timeout_ms >= 0 && wait < 0)
			wait = 0;
		r = poll(&p, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			c->dead = true;
			return -1;
		}
		if (r == 0)
			return 0;
		if (!(p.revents & POLLIN) && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
			c->dead = true;
			return -1;
		}
		n = proto_in_read(&c->in, c->rfd);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0) {
			c->dead = true;
			return -1;
		}
	}
}

int need_path(const struct proto_frame *f, uint16_t tag, const char **path)
{
	int r = proto_get_str(f, tag, path);

	if (r < 0)
		return -1;
	if (r == 0)
		return err_set("%s: missing path", proto_type_name(f->type));
	if ((*path)[0] != '/')
		return err_set("%s: path '%s' is not absolute", proto_type_name(f->type), *path);
	if (strlen(*path) >= PATH_MAX)
		return err_set("%s: path too long", proto_type_name(f->type));
	return 0;
}

/* --- small operations ----------------------------------------------------- */

static char *read_small(const char *path)
{
	struct buf b = BUF_INIT(SMALL_FILE_MAX);

	if (buf_read_file(&b, path) < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

static void strip_nl(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

static char *boot_id(void)
{
	char *id = read_small("/proc/sys/kernel/random/boot_id");
	char *r;

	if (!id)
		id = xstrdup("unknown");
	strip_nl(id);
	if (!agent_opts.fake_power)
		return id;
	r = xasprintf("%s:fake-%u", id, agent_opts.fake_boots);
	free(id);
	return r;
}

static int op_sync(struct conn *c, const struct proto_frame *f)
{
	uint64_t nonce;
	uint32_t vmin = 1, vmax = 1, v;
	struct proto_msg m;
	char *bid;
	int r;

	if (proto_get_u64(f, PROTO_A_NONCE, &nonce) != 1)
		return err_set("sync: missing nonce");
	if (proto_get_u32(f, PROTO_A_VER_MIN, &vmin) < 0 ||
	    proto_get_u32(f, PROTO_A_VER_MAX, &vmax) < 0)
		return -1;
	v = vmax < PROTO_VERSION_MAX ? vmax : PROTO_VERSION_MAX;
	if (v < vmin || v < PROTO_VERSION_MIN)
		return err_set("no common protocol version: host speaks %u..%u, agent %u..%u",
			       vmin, vmax, PROTO_VERSION_MIN, PROTO_VERSION_MAX);
	bid = boot_id();
	proto_msg_init(&m, PROTO_R_SYNC, 0, f->id);
	proto_msg_u64(&m, PROTO_A_NONCE, nonce);
	proto_msg_u32(&m, PROTO_A_VERSION, v);
	proto_msg_str(&m, PROTO_A_BOOT_ID, bid, PROTO_STR_MAX);
	proto_msg_u64(&m, PROTO_A_INSTANCE, agent_opts.instance);
	r = conn_send_msg(c, &m);
	proto_msg_release(&m);
	free(bid);
	(void)r;
	return 1;
}

static int op_info(const struct proto_frame *f UNUSED, struct proto_msg *ok)
{
	static const struct { const char *key; uint16_t tag; } keys[] = {
		{ "ID", PROTO_A_OS_ID }, { "VERSION_ID", PROTO_A_OS_VERSION },
		{ "PRETTY_NAME", PROTO_A_PRETTY },
	};
	char *osr = read_small("/etc/os-release");
	struct timespec ts;
	struct utsname u;

	if (!osr)
		osr = read_small("/usr/lib/os-release");
	for (size_t i = 0; osr && i < ARRAY_SIZE(keys); i++) {
		char *v = os_release_value(osr, keys[i].key);

		if (v)
			proto_msg_str(ok, keys[i].tag, v, PROTO_STR_MAX);
		free(v);
	}
	free(osr);
	if (uname(&u) == 0) {
		proto_msg_str(ok, PROTO_A_KERNEL, u.release, PROTO_STR_MAX);
		proto_msg_str(ok, PROTO_A_ARCH, u.machine, PROTO_STR_MAX);
	}
	if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
		proto_msg_u64(ok, PROTO_A_UPTIME_MS,
			      (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
	return 0;
}

/* Reboot or power off through the init system (services stop cleanly,
 * filesystems unmount); if nothing takes the request, the syscall. */
static void do_power(bool reboot_it)
{
	static const char *const reboot_cmds[][4] = {
		{ "systemctl", "reboot", NULL }, { "shutdown", "-r", "now", NULL },
		{ "reboot", NULL },
	};
	static const char *const off_cmds[][4] = {
		{ "systemctl", "poweroff", NULL }, { "shutdown", "-h", "now", NULL },
		{ "poweroff", NULL },
	};

	sync();
	for (size_t i = 0; i < 3; i++) {
		struct run r = RUN_INIT;
		int ok;

		r.argv = reboot_it ? reboot_cmds[i] : off_cmds[i];
		r.timeout_ms = 60000;
		ok = run_sync(&r) == 0 && r.status == 0;
		run_release(&r);
		if (ok)
			return;
		log_warn("%s did not take the request: %s", r.argv[0], err_msg());
	}
	sync();
	reboot(reboot_it ? RB_AUTOBOOT : RB_POWER_OFF);
	log_error("reboot(2): %s", strerror(errno));
}

static int op_power(struct conn *c, const struct proto_frame *f)
{
	bool reboot_it = f->type == PROTO_T_REBOOT;

	exec_warm_stop();
	conn_send(c, PROTO_R_OK, 0, f->id, NULL, 0);
	log_info("%s requested by the host", reboot_it ? "reboot" : "poweroff");
	if (agent_opts.fake_power) {
		if (reboot_it)
			agent_opts.fake_reboot_now = true;
		else
			agent_opts.exit_now = true;
		c->dead = true;
		return 1;
	}
	do_power(reboot_it);
	return 1;
}

/* A guest restored from a saved state goes on with the saved kernel's
 * random number generator: every restore of one state would draw the
 * same numbers until the kernel reseeds on its own (a VM generation ID
 * makes kernels with the vmgenid driver reseed; Debian 12's cloud kernel
 * has none). The host's bytes are mixed in and credited, then the CRNG is
 * reseeded from them at once. */
static int op_reseed(const struct proto_frame *f, struct proto_msg *ok)
{
	/* struct rand_pool_info and its flexible buf[], in one aligned block. */
	uint32_t e[(sizeof(struct rand_pool_info) + PROTO_RESEED_MAX) / sizeof(uint32_t)];
	struct rand_pool_info *info = (struct rand_pool_info *)(void *)e;
	const uint8_t *p;
	size_t n;
	int fd, r = -1, saved;

	if (proto_get_bytes(f, PROTO_A_DIGEST, &p, &n) != 1 || n < PROTO_RESEED_MIN ||
	    n > PROTO_RESEED_MAX) {
		errno = EINVAL;
		return err_set("reseed: %u to %u bytes expected", PROTO_RESEED_MIN,
			       PROTO_RESEED_MAX);
	}
	memset(e, 0, sizeof(e));
	info->entropy_count = (int)(8 * n);
	info->buf_size = (int)n;
	memcpy(info->buf, p, n);
	fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		err_errno("reseed: open /dev/urandom");
		goto cleanup;
	}
	if (ioctl(fd, RNDADDENTROPY, info) < 0) {
		err_errno("reseed: RNDADDENTROPY");
		goto cleanup;
	}
	proto_msg_u32(ok, PROTO_A_STATUS, ioctl(fd, RNDRESEEDCRNG) < 0 ? (uint32_t)errno : 0);
	r = 0;
cleanup:
	saved = errno;	/* what the reply's A_ERRNO says */
	if (fd >= 0)
		close(fd);
	explicit_bzero(e, sizeof(e));
	errno = saved;
	return r;
}

/* --- the request loop ----------------------------------------------------- */

static void dispatch(struct conn *c, const struct proto_frame *f)
{
	struct proto_msg ok;
	int r;

	switch (f->type) {
	case PROTO_T_STDIN: case PROTO_T_DATA: case PROTO_T_DATA_END: case PROTO_T_CANCEL:
		/* Leftovers of an operation that already ended. */
		return;
	case PROTO_T_PING:
		conn_send(c, PROTO_R_PONG, 0, f->id, NULL, 0);
		return;
	default:
		break;
	}
	proto_msg_init(&ok, PROTO_R_OK, 0, f->id);
	err_clear();
	errno = 0;
	if (proto_tlv_check(f) < 0) {
		r = -1;
		goto reply;
	}
	switch (f->type) {
	case PROTO_T_SYNC: r = op_sync(c, f); break;
	case PROTO_T_INFO: r = op_info(f, &ok); break;
	case PROTO_T_EXEC: r = op_exec(c, f); break;
	case PROTO_T_PUT: r = op_put(c, f, &ok); break;
	case PROTO_T_GET: r = op_get(c, f); break;
	case PROTO_T_STAT: r = op_stat(c, f, &ok); break;
	case PROTO_T_MKDIR: r = op_mkdir(c, f, &ok); break;
	case PROTO_T_REMOVE: r = op_remove(c, f, &ok); break;
	case PROTO_T_RENAME: r = op_rename(c, f, &ok); break;
	case PROTO_T_COPY: r = op_copy(c, f, &ok); break;
	case PROTO_T_CHMOD: r = op_chmod(c, f, &ok); break;
	case PROTO_T_CHOWN: r = op_chown(c, f, &ok); break;
	case PROTO_T_SYMLINK: r = op_symlink(c, f, &ok); break;
	case PROTO_T_LIST: r = op_list(c, f); break;
	case PROTO_T_HASH: r = op_hash(c, f, &ok); break;
	case PROTO_T_PUT_BULK: r = op_put_bulk(f, &ok); break;
	case PROTO_T_GET_BULK: r = op_get_bulk(f, &ok); break;
	case PROTO_T_REBOOT: case PROTO_T_POWEROFF: r = op_power(c, f); break;
	case PROTO_T_FLUSH: sync(); r = 0; break;
	case PROTO_T_RESEED: r = op_reseed(f, &ok); break;
	default:
		r = err_set("unknown request type %u", f->type);
		break;
	}
reply:
	if (r == 0)
		conn_send_msg(c, &ok);
	else if (r < 0)
		conn_send_error(c, f->id, errno);
	proto_msg_release(&ok);
}

static void serve(struct conn *c)
{
	struct proto_frame f;

	c->dead = false;
	c->have_pending = false;
	proto_in_clear(&c->in);
	while (!c->dead) {
		if (conn_recv(c, &f, -1) != 1)
			break;
		dispatch(c, &f);
	}
}

/* --- channels ------------------------------------------------------------- */

/* /dev/virtio-ports/NAME is a udev symlink; without udev rules, find the
 * vportNpM device whose sysfs name matches. Caller frees. */
static char *find_port(const char *path)
{
	char sys[128], *name;

	if (access(path, F_OK) == 0 || strcmp(path, DEFAULT_PORT) != 0)
		return xstrdup(path);
	for (int dev = 0; dev < 8; dev++) {
		for (int port = 0; port < 32; port++) {
			snprintf(sys, sizeof(sys), "/sys/class/virtio-ports/vport%dp%d/name",
				 dev, port);
			name = read_small(sys);
			if (!name)
				continue;
			strip_nl(name);
			if (strcmp(name, PORT_NAME) == 0) {
				free(name);
				return xasprintf("/dev/vport%dp%d", dev, port);
			}
			free(name);
		}
	}
	return xstrdup(path);
}

static void serve_port(struct conn *c, const char *path)
{
	bool said = false;

	for (;;) {
		char *dev = find_port(path);
		int fd = open(dev, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

		if (fd < 0) {
			if (!said)
				log_info("waiting for %s: %s", dev, strerror(errno));
			said = true;
			free(dev);
			usleep(IDLE_RETRY_MS * 1000);
			continue;
		}
		{
			/* The guest's uptime: how long after the kernel the
			 * agent could answer (bench/boot.sh reads it). */
			char *up = read_small("/proc/uptime");

			if (up)
				strip_nl(up);
			log_info("serving %s (uptime %s)", dev, up ? up : "?");
			free(up);
		}
		free(dev);
		said = false;
		/* The fd stays open across host disconnects: while no host is
		 * connected, poll() reports POLLHUP and read() returns 0. */
		for (;;) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int r;

			c->rfd = c->wfd = fd;
			serve(c);
			if (agent_opts.fake_reboot_now)
				agent_opts.fake_boots++, agent_opts.fake_reboot_now = false;
			r = poll(&p, 1, 0);
			if (r < 0 || (p.revents & (POLLERR | POLLNVAL)))
				break;
			usleep(IDLE_RETRY_MS * 1000);
		}
		close(fd);
	}
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set("socket path '%s' too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_errno("socket");
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		err_errno("listen on '%s'", path);
		close(fd);
		return -1;
	}
	return fd;
}

static int serve_socket(struct conn *c, const char *path)
{
	int lfd = listen_unix(path);

	if (lfd < 0)
		return -1;
	log_info("listening on %s", path);
	while (!agent_opts.exit_now) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			err_errno("accept on '%s'", path);
			close(lfd);
			return -1;
		}
		fcntl(fd, F_SETFL, O_NONBLOCK);
		c->rfd = c->wfd = fd;
		serve(c);
		close(fd);
		if (agent_opts.fake_reboot_now) {
			/* Simulate the agent going away for a moment. */
			close(lfd);
			unlink(path);
			agent_opts.fake_boots++;
			agent_opts.fake_reboot_now = false;
			usleep(500 * 1000);
			lfd = listen_unix(path);
			if (lfd < 0)
				return -1;
		}
	}
	close(lfd);
	unlink(path);
	return 0;
}

static void usage(void)
{
	fputs("usage: amiforge-agent [--port PATH | --socket PATH | --stdio] "
	      "[--fake-power] [--verbose]\n", stderr);
}

int main(int argc, char **argv)
{
	const char *port = DEFAULT_PORT, *sock = NULL;
	bool use_stdio = false;
	struct conn c = { .rfd = -1, .wfd = -1 };
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = argv[++i];
		} else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			sock = argv[++i];
		} else if (strcmp(argv[i], "--stdio") == 0) {
			use_stdio = true;
		} else if (strcmp(argv[i], "--fake-power") == 0) {
			agent_opts.fake_power = true;
		} else if (strcmp(argv[i], "--verbose") == 0) {
			log_set_level(LOG_DEBUG);
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("amiforge-agent protocol %d..%d\n", PROTO_VERSION_MIN,
			       PROTO_VERSION_MAX);
			return 0;
		} else {
			usage();
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	/* Modes and owners are set explicitly per request; commands get 022. */
	umask(0);
	if (!getenv("PATH"))
		setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	if (getrandom(&agent_opts.instance, sizeof(agent_opts.instance), 0) !=
	    sizeof(agent_opts.instance))
		agent_opts.instance = (uint64_t)getpid() << 32 ^ (uint64_t)now_ms();
	if (chdir("/") < 0)
		log_warn("chdir /: %s", strerror(errno));
	proto_in_init(&c.in);
	if (use_stdio) {
		c.rfd = 0;
		c.wfd = 1;
		fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
		fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
		serve(&c);
	} else if (sock) {
		if (serve_socket(&c, sock) < 0) {
			log_err_msg();
			ret = 1;
		}
	} else {
		serve_port(&c, port);
	}
	exec_warm_stop();
	proto_in_release(&c.in);
	return ret;
}
