/* agent-client.c: the host end of the agent channel (common/proto.h).
 *
 * One session = one channel fd pair plus a sync state. The reader is bounded
 * (struct proto_in: every header is checked against PROTO_MAX_PAYLOAD before
 * the payload is waited for; the buffer never grows), every wait has a
 * deadline, and any failure other than a clean R_ERROR marks the session for
 * a re-sync: a fresh random nonce, everything before its echo is dropped
 * (libvirt's qemuAgentGuestSync does the same). Unix socket sessions
 * reconnect when the socket closes (the agent restarted). */
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "agent-client.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* A sync is re-sent this often while the agent does not answer: the guest
 * may still be booting, and a sync written before the agent opened the port
 * may be lost or cut in half. */
#define SYNC_RETRY_MS 1000
/* Nonces of one sync call that are still accepted (a slow agent may answer
 * an earlier retry); older ones are forgotten. */
#define SYNC_NONCES 64
/* Frames dropped while syncing before we give up on a babbling guest:
 * a 64 MiB get interrupted by the sync is 256 chunks; allow far more. */
#define SYNC_DISCARD_MAX 100000
/* Pause between connection attempts to a socket that is not there yet. */
#define CONNECT_RETRY_MS 100
/* Between syncs while waiting for a reboot to show a new boot id. */
#define REBOOT_POLL_MS 1000

struct agent {
	int rfd, wfd;
	char *path;             /* unix socket to reconnect to, or NULL */
	struct proto_in in;
	bool synced;
	uint32_t next_id;
	uint32_t version;
	char *boot_id;
	uint64_t instance;
	int64_t timeout_ms;
	void (*on_wait)(void *opaque);   /* agent_set_on_wait */
	void *on_wait_opaque;
};

static void close_channel(struct agent *a)
{
	if (a->rfd >= 0)
		close(a->rfd);
	if (a->wfd >= 0 && a->wfd != a->rfd)
		close(a->wfd);
	a->rfd = a->wfd = -1;
	proto_in_clear(&a->in);
	a->synced = false;
}

static struct agent *agent_new(int rfd, int wfd, const char *path)
{
	struct agent *a = xcalloc(1, sizeof(*a));

	a->rfd = rfd;
	a->wfd = wfd;
	a->path = path ? xstrdup(path) : NULL;
	a->timeout_ms = AGENT_TIMEOUT_DEFAULT_MS;
	proto_in_init(&a->in);
	if (rfd >= 0)
		fcntl(rfd, F_SETFL, fcntl(rfd, F_GETFL) | O_NONBLOCK);
	if (wfd >= 0 && wfd != rfd)
		fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK);
	return a;
}

/* One connection attempt: fd, or -1 with errno. */
static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Connect, retrying until deadline while the socket is missing or refuses. */
static int reconnect(struct agent *a, int64_t deadline)
{
	for (;;) {
		int fd = connect_unix(a->path);

		if (fd >= 0) {
			fcntl(fd, F_SETFL, O_NONBLOCK);
			a->rfd = a->wfd = fd;
			return 0;
		}
		if (errno != ENOENT && errno != ECONNREFUSED && errno != EAGAIN)
			return err_errno("connect to agent socket '%s'", a->path);
		if (now_ms() + CONNECT_RETRY_MS > deadline)
			return err_errno("connect to agent socket '%s'", a->path);
		usleep(CONNECT_RETRY_MS * 1000);
	}
}

struct agent *agent_open_unix(const char *path, int64_t timeout_ms)
{
	struct agent *a = agent_new(-1, -1, path);

	if (reconnect(a, now_ms() + timeout_ms) < 0) {
		agent_close(a);
		return NULL;
	}
	return a;
}

struct agent *agent_open_fds(int rfd, int wfd)
{
	return agent_new(rfd, wfd, NULL);
}

void agent_close(struct agent *a)
{
	if (!a)
		return;
	close_channel(a);
	proto_in_release(&a->in);
	free(a->path);
	free(a->boot_id);
	free(a);
}

void agent_disconnect(struct agent *a)
{
	close_channel(a);
}

void agent_set_on_wait(struct agent *a, void (*fn)(void *opaque), void *opaque)
{
	a->on_wait = fn;
	a->on_wait_opaque = opaque;
}

void agent_set_timeout(struct agent *a, int64_t timeout_ms)
{
	a->timeout_ms = timeout_ms > 0 ? timeout_ms : AGENT_TIMEOUT_DEFAULT_MS;
}

int64_t agent_get_timeout(const struct agent *a)
{
	return a->timeout_ms;
}

const char *agent_boot_id(const struct agent *a)
{
	return a->boot_id;
}

uint32_t agent_version(const struct agent *a)
{
	return a->version;
}

void agent_desync(struct agent *a)
{
	a->synced = false;
}

void agent_assume_synced(struct agent *a)
{
	a->synced = true;
	a->next_id = 1;
}

int agent_protocol_error(struct agent *a, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	agent_desync(a);
	return err_set("agent: %s", msg);
}

/* Copy guest text for a message: printable ASCII only, at most max bytes. */
static void sanitize(char *out, size_t outsz, const char *in)
{
	size_t n = 0;

	for (; *in && n + 1 < outsz; in++)
		out[n++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
	out[n] = '\0';
}

int agent_error_frame(const struct proto_frame *f)
{
	const char *msg = NULL;
	char clean[512];

	if (proto_get_str(f, PROTO_A_MSG, &msg) != 1 || !msg)
		msg = "unspecified error";
	sanitize(clean, sizeof(clean), msg);
	return err_set("agent: %s", clean);
}

/* --- channel I/O ---------------------------------------------------------- */

static int channel_closed(struct agent *a)
{
	close_channel(a);
	return err_set("agent: channel closed (agent exited or guest rebooted)");
}

struct chan_wait {
	struct agent *a;
	int64_t deadline;
	bool failed;    /* the wait failed, its error recorded */
};

/* The channel is full: wait for room by the deadline. While the agent is
 * not reading, read what it sends into the buffer (as long as it fits) so
 * that neither side blocks the other. 0, or -1 with the error recorded. */
static int chan_wait(void *opaque)
{
	struct chan_wait *cw = opaque;
	struct agent *a = cw->a;
	struct pollfd p[2] = {
		{ .fd = a->wfd, .events = POLLOUT },
		{ .fd = a->rfd, .events = POLLIN },
	};
	int64_t left = cw->deadline - now_ms();
	nfds_t np = proto_in_space(&a->in) > 0 && a->rfd != a->wfd ? 2 : 1;
	int r = 0;

	if (a->rfd == a->wfd && proto_in_space(&a->in) > 0)
		p[0].events |= POLLIN;
	if (left <= 0) {
		agent_desync(a);
		r = err_set("agent: send timed out (the guest is not reading)");
	} else if (poll(p, np, (int)left) < 0 && errno != EINTR) {
		r = err_errno("agent: poll");
	} else if ((p[0].revents & POLLIN) || (np == 2 && (p[1].revents & POLLIN))) {
		ssize_t n = proto_in_read(&a->in, a->rfd);

		if (n == 0 || (n < 0 && errno != EAGAIN))
			r = channel_closed(a);
	}
	if (r == 0 && (p[0].revents & (POLLERR | POLLNVAL)))
		r = channel_closed(a);
	cw->failed = r < 0;
	return r;
}

/* Write iov fully by the deadline. */
static int chan_writev(struct agent *a, struct iovec *iov, int cnt, int64_t deadline)
{
	struct chan_wait cw = { .a = a, .deadline = deadline };

	if (a->wfd < 0)
		return err_set("agent: channel closed");
	if (writev_all(a->wfd, iov, cnt, chan_wait, &cw) < 0)
		return cw.failed ? -1 : channel_closed(a);
	return 0;
}

int agent_send_msg(struct agent *a, struct proto_msg *m)
{
	struct iovec iov;

	if (proto_msg_finish(m) < 0)
		return -1;
	iov = (struct iovec){ m->data, m->len };
	return chan_writev(a, &iov, 1, now_ms() + a->timeout_ms);
}

int agent_send_data(struct agent *a, uint16_t type, uint8_t flags, uint32_t id,
		    const void *data, size_t len)
{
	uint8_t hdr[PROTO_HDR_LEN];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)data, len } };

	if (len > PROTO_MAX_PAYLOAD)
		return err_set("agent: data frame of %zu bytes too large", len);
	proto_hdr_encode(hdr, type, flags, id, (uint32_t)len);
	return chan_writev(a, iov, len ? 2 : 1, now_ms() + a->timeout_ms);
}

/* Frames whose payload is raw data, not TLVs. */
static bool raw_payload(uint16_t type)
{
	return type == PROTO_T_DATA || type == PROTO_R_OUTPUT || type == PROTO_T_STDIN;
}

/* The next frame, any id. 1, 0 (nothing by deadline; no error recorded),
 * -1 (error recorded). deadline 0: only what is there now. */
static int recv_any(struct agent *a, struct proto_frame *f, int64_t deadline)
{
	for (;;) {
		struct pollfd p;
		int r;
		int64_t left;
		ssize_t n;

		if (a->rfd < 0)
			return err_set("agent: channel closed");
		r = proto_in_next(&a->in, f);
		if (r < 0) {
			agent_desync(a);
			return err_prefix("agent");
		}
		if (r == 1)
			return 1;
		left = deadline ? deadline - now_ms() : 0;
		if (left < 0)
			left = 0;
		p = (struct pollfd){ .fd = a->rfd, .events = POLLIN };
		r = poll(&p, 1, (int)(left > INT32_MAX ? INT32_MAX : left));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_errno("agent: poll");
		if (r == 0) {
			if (deadline && now_ms() < deadline)
				continue;
			return 0;
		}
		n = proto_in_read(&a->in, a->rfd);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return channel_closed(a);
	}
}

static int check_frame(struct agent *a, uint32_t id, struct proto_frame *f)
{
	if (f->id != id)
		return agent_protocol_error(a, "%s frame for request %" PRIu32
					    " while waiting for request %" PRIu32,
					    proto_type_name(f->type), f->id, id);
	if (!raw_payload(f->type) && proto_tlv_check(f) < 0) {
		agent_desync(a);
		return err_prefix("agent");
	}
	return 1;
}

/* A sync reply for another request is an echo of an earlier sync that the
 * (restarted) agent found queued in the channel: the nonce handshake already
 * discarded it in spirit, so drop it here too instead of failing. */
static bool stale_sync(uint32_t id, const struct proto_frame *f)
{
	return f->type == PROTO_R_SYNC && f->id != id;
}

int agent_recv(struct agent *a, uint32_t id, struct proto_frame *f, int64_t timeout_ms)
{
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	int r;

	while ((r = recv_any(a, f, deadline)) == 1 && stale_sync(id, f))
		log_debug("agent: dropping a stale sync reply (request %" PRIu32 ")", f->id);
	if (r < 0) {
		agent_desync(a);
		return -1;
	}
	if (r == 0) {
		agent_desync(a);
		return err_set("agent: no answer within %" PRId64 " ms", timeout_ms);
	}
	return check_frame(a, id, f);
}

int agent_recv_now(struct agent *a, uint32_t id, struct proto_frame *f)
{
	int r;

	while ((r = recv_any(a, f, 0)) == 1 && stale_sync(id, f))
		log_debug("agent: dropping a stale sync reply (request %" PRIu32 ")", f->id);

	if (r < 0) {
		agent_desync(a);
		return -1;
	}
	return r == 0 ? 0 : check_frame(a, id, f);
}

int agent_wait_readable(struct agent *a, int64_t timeout_ms)
{
	struct pollfd p;

	if (a->rfd < 0)
		return err_set("agent: channel closed");
	if (proto_in_ready(&a->in))
		return 0;
	p = (struct pollfd){ .fd = a->rfd, .events = POLLIN };
	if (poll(&p, 1, (int)(timeout_ms > INT32_MAX ? INT32_MAX : timeout_ms)) < 0 &&
	    errno != EINTR)
		return err_errno("agent: poll");
	return 0;
}

int agent_expect_ok(struct agent *a, uint32_t id, struct proto_frame *f, int64_t timeout_ms)
{
	if (agent_recv(a, id, f, timeout_ms) < 0)
		return -1;
	if (f->type == PROTO_R_OK)
		return 1;
	if (f->type == PROTO_R_ERROR)
		return agent_error_frame(f);
	return agent_protocol_error(a, "unexpected %s frame, expected a reply",
				    proto_type_name(f->type));
}

/* --- sync ----------------------------------------------------------------- */

static uint64_t random_u64(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint64_t)now_ms() * 6364136223846793005u ^ (uint64_t)getpid();
	return v;
}

struct sync_state {
	uint64_t nonce[SYNC_NONCES];
	uint32_t id[SYNC_NONCES];
	size_t n;
};

static int send_sync(struct agent *a, struct sync_state *s, int64_t deadline)
{
	struct proto_msg m;
	uint64_t nonce = random_u64();
	uint32_t id = (uint32_t)(nonce >> 32) | 0x80000000u;
	size_t slot = s->n++ % SYNC_NONCES;
	struct iovec iov;
	int r;

	s->nonce[slot] = nonce;
	s->id[slot] = id;
	proto_msg_init(&m, PROTO_T_SYNC, 0, id);
	proto_msg_u64(&m, PROTO_A_NONCE, nonce);
	proto_msg_u32(&m, PROTO_A_VER_MIN, PROTO_VERSION_MIN);
	proto_msg_u32(&m, PROTO_A_VER_MAX, PROTO_VERSION_MAX);
	proto_msg_finish(&m);
	iov = (struct iovec){ m.data, m.len };
	r = chan_writev(a, &iov, 1, deadline);
	proto_msg_release(&m);
	return r;
}

/* Is f the answer to one of our syncs? 1 yes (session updated), 0 no
 * (stale: drop it), -1 a fatal answer (no common version). */
static int sync_answer(struct agent *a, const struct sync_state *s, const struct proto_frame *f)
{
	uint64_t nonce = 0, instance = 0;
	uint32_t version = 0;
	const char *bid = NULL;
	size_t i, k = s->n < SYNC_NONCES ? s->n : SYNC_NONCES;

	for (i = 0; i < k; i++)
		if (s->id[i] == f->id)
			break;
	if (i == k)
		return 0;
	if (f->type == PROTO_R_ERROR)
		return agent_error_frame(f);
	if (f->type != PROTO_R_SYNC || proto_tlv_check(f) < 0 ||
	    proto_get_u64(f, PROTO_A_NONCE, &nonce) != 1 || nonce != s->nonce[i])
		return 0;
	if (proto_get_u32(f, PROTO_A_VERSION, &version) != 1 ||
	    version < PROTO_VERSION_MIN || version > PROTO_VERSION_MAX)
		return err_set("agent: sync answered with unsupported protocol version %" PRIu32,
			       version);
	if (proto_get_str(f, PROTO_A_BOOT_ID, &bid) != 1 || strlen(bid) > 128)
		return err_set("agent: sync answer without a valid boot id");
	proto_get_u64(f, PROTO_A_INSTANCE, &instance);
	free(a->boot_id);
	a->boot_id = xstrdup(bid);
	a->version = version;
	a->instance = instance;
	return 1;
}

int agent_sync(struct agent *a, int64_t timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	struct sync_state *s = xcalloc(1, sizeof(*s));
	size_t discarded = 0;
	int ret = -1;

	a->synced = false;
	while (now_ms() < deadline) {
		int64_t retry_at = now_ms() + SYNC_RETRY_MS;
		struct proto_frame f;

		if (a->rfd < 0) {
			if (!a->path) {
				err_set("agent: channel closed");
				goto cleanup;
			}
			if (reconnect(a, deadline) < 0)
				goto cleanup;
		}
		if (retry_at > deadline)
			retry_at = deadline;
		if (send_sync(a, s, retry_at) < 0) {
			if (a->rfd < 0 && a->path)
				continue;       /* closed: reconnect */
			if (a->rfd < 0)
				goto cleanup;
			err_clear();            /* not reading yet: wait */
		}
		for (;;) {
			int r = recv_any(a, &f, retry_at);

			if (r == 0)
				break;
			if (r < 0) {
				if (a->rfd < 0) {
					if (!a->path)
						goto cleanup;
					usleep(CONNECT_RETRY_MS * 1000);
					break;
				}
				/* Garbage (half a frame from before): skip it. */
				proto_in_resync(&a->in);
				continue;
			}
			r = sync_answer(a, s, &f);
			if (r < 0)
				goto cleanup;
			if (r == 1) {
				a->synced = true;
				a->next_id = 1;
				ret = 0;
				log_debug("agent synced (protocol %" PRIu32 ", boot %s, %zu stale frames dropped)",
					  a->version, a->boot_id, discarded);
				goto cleanup;
			}
			if (++discarded > SYNC_DISCARD_MAX) {
				err_set("agent: more than %d stale frames while syncing", SYNC_DISCARD_MAX);
				goto cleanup;
			}
		}
	}
	err_set("agent: no answer to sync within %" PRId64 " ms", timeout_ms);
cleanup:
	free(s);
	return ret;
}

uint32_t agent_begin(struct agent *a)
{
	if (!a->synced && agent_sync(a, a->timeout_ms) < 0)
		return 0;
	if (a->next_id == 0 || a->next_id >= 0x7fffffffu)
		a->next_id = 1;
	return a->next_id++;
}

/* --- session-level requests ----------------------------------------------- */

static char *dup_attr(const struct proto_frame *f, uint16_t tag)
{
	const char *s;
	char clean[256];

	if (proto_get_str(f, tag, &s) != 1)
		return NULL;
	sanitize(clean, sizeof(clean), s);
	return xstrdup(clean);
}

void agent_info_release(struct agent_info *info)
{
	if (!info)
		return;
	free(info->os_id);
	free(info->os_version);
	free(info->pretty_name);
	free(info->kernel);
	free(info->arch);
	memset(info, 0, sizeof(*info));
}

int agent_get_info(struct agent *a, struct agent_info *info, int64_t timeout_ms)
{
	struct proto_msg m;
	struct proto_frame f;
	uint64_t up = 0;
	uint32_t id = agent_begin(a);
	int r;

	memset(info, 0, sizeof(*info));
	if (!id)
		return -1;
	proto_msg_init(&m, PROTO_T_INFO, 0, id);
	r = agent_send_msg(a, &m);
	proto_msg_release(&m);
	if (r < 0 || agent_expect_ok(a, id, &f, timeout_ms) < 0)
		return -1;
	info->os_id = dup_attr(&f, PROTO_A_OS_ID);
	info->os_version = dup_attr(&f, PROTO_A_OS_VERSION);
	info->pretty_name = dup_attr(&f, PROTO_A_PRETTY);
	info->kernel = dup_attr(&f, PROTO_A_KERNEL);
	info->arch = dup_attr(&f, PROTO_A_ARCH);
	if (proto_get_u64(&f, PROTO_A_UPTIME_MS, &up) == 1)
		info->uptime = (double)up / 1000.0;
	info->proto_version = a->version;
	return 0;
}

/* Send a power request; an OK or the channel closing both count. */
static int power_request(struct agent *a, uint16_t type, int64_t timeout_ms)
{
	struct proto_msg m;
	struct proto_frame f;
	uint32_t id = agent_begin(a);
	int r;

	if (!id)
		return -1;
	proto_msg_init(&m, type, 0, id);
	r = agent_send_msg(a, &m);
	proto_msg_release(&m);
	if (r < 0)
		return -1;
	r = agent_expect_ok(a, id, &f, timeout_ms);
	if (r < 0 && a->rfd < 0) {
		err_clear();
		return 0;
	}
	return r < 0 ? -1 : 0;
}

int agent_reseed(struct agent *a, int64_t timeout_ms)
{
	uint8_t bytes[PROTO_RESEED_MAX];
	struct proto_msg m;
	struct proto_frame f;
	uint32_t id, status;
	int r;

	/* 64 bytes: getrandom(2) returns them whole (at most 256 never
	 * come back short once the host's pool is ready). */
	if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
		return err_errno("reseed the guest: getrandom");
	if (!(id = agent_begin(a))) {
		explicit_bzero(bytes, sizeof(bytes));
		return -1;
	}
	proto_msg_init(&m, PROTO_T_RESEED, 0, id);
	proto_msg_bytes(&m, PROTO_A_DIGEST, bytes, sizeof(bytes));
	explicit_bzero(bytes, sizeof(bytes));
	r = agent_send_msg(a, &m);
	explicit_bzero(m.data, m.len);
	proto_msg_release(&m);
	if (r < 0 || agent_expect_ok(a, id, &f, timeout_ms) < 0)
		return err_prefix("reseed the guest's random number generator");
	if (proto_get_u32(&f, PROTO_A_STATUS, &status) != 1)
		return agent_protocol_error(a, "reseed: no status");
	if (status != 0)
		return err_set("reseed the guest's random number generator: RNDRESEEDCRNG: %s "
			       "(host bytes mixed in, not yet used)", strerror((int)status));
	return 0;
}

int agent_poweroff(struct agent *a, int64_t timeout_ms)
{
	if (power_request(a, PROTO_T_POWEROFF, timeout_ms) < 0)
		return err_prefix("poweroff through the agent");
	a->synced = false;
	return 0;
}

int agent_reboot(struct agent *a, int64_t timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	char *old;
	int ret = -1;

	if (!a->synced && agent_sync(a, a->timeout_ms) < 0)
		return err_prefix("reboot");
	old = xstrdup(a->boot_id ? a->boot_id : "");
	if (power_request(a, PROTO_T_REBOOT, a->timeout_ms) < 0) {
		err_prefix("reboot");
		goto cleanup;
	}
	a->synced = false;
	/* Drop whatever the old agent still had in flight. */
	proto_in_clear(&a->in);
	for (;;) {
		int64_t left = deadline - now_ms();

		if (left <= 0) {
			err_set("reboot: the agent did not come back within %" PRId64 " ms",
				timeout_ms);
			break;
		}
		if (agent_sync(a, left) == 0 && strcmp(a->boot_id, old) != 0) {
			ret = 0;
			break;
		}
		/* Still the old boot (shutdown in progress), or no answer yet. */
		a->synced = false;
		err_clear();
		if (a->on_wait)
			a->on_wait(a->on_wait_opaque);
		usleep(REBOOT_POLL_MS * 1000);
	}
cleanup:
	free(old);
	return ret;
}
