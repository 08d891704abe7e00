/* agent-client.h: the host side of the guest agent protocol (common/proto.h).
 *
 * The channel is a byte stream: a unix socket that QEMU/libvirt expose for the
 * virtio-serial port org.amiforge.agent.0, or any fd pair (tests, stdio).
 * Everything the guest sends is hostile: frames are bounded, every wait has a
 * deadline, and after a timeout or a reboot the client re-syncs with a fresh
 * nonce and drops stale replies. */
#ifndef AMIFORGE_AGENT_CLIENT_H
#define AMIFORGE_AGENT_CLIENT_H

#include "compat.h"
#include "builder/exec/executor.h"
#include "proto.h"

/* Default deadline of one wait for the agent: a reply, or the next chunk of
 * a transfer. A guest that stays silent this long has failed the operation
 * (and the next operation re-syncs first). */
#define AGENT_TIMEOUT_DEFAULT_MS 30000

struct agent;

struct agent_info {
	char *os_id;          /* os-release ID, e.g. "debian" */
	char *os_version;     /* os-release VERSION_ID */
	char *pretty_name;
	char *kernel;         /* uname -r */
	char *arch;           /* uname -m */
	double uptime;        /* seconds */
	uint32_t proto_version;
};
void agent_info_release(struct agent_info *info);

/* Connect to a unix socket (retrying until deadline_ms from now while it does
 * not exist yet). NULL with an error recorded. */
struct agent *agent_open_unix(const char *path, int64_t timeout_ms);

/* Use an existing fd pair (the agent owns and closes them). */
struct agent *agent_open_fds(int rfd, int wfd);

/* Handshake: send a sync with a fresh nonce until the agent echoes it (stale
 * frames are discarded), then negotiate the version. 0 or -1 on deadline. */
int agent_sync(struct agent *a, int64_t timeout_ms);

int agent_get_info(struct agent *a, struct agent_info *info, int64_t timeout_ms);

/* Ask the guest to power off; returns once the request is acknowledged or
 * the channel closes. */
int agent_poweroff(struct agent *a, int64_t timeout_ms);
/* Mix PROTO_RESEED_MAX bytes of this host's randomness into the guest
 * kernel's pool, credited, and reseed its CRNG (PROTO_T_RESEED): for a
 * guest restored from a saved state. 0, or -1 with the error recorded
 * (also when the kernel took the bytes but cannot reseed at once). */
int agent_reseed(struct agent *a, int64_t timeout_ms);

/* Reboot the guest through the agent and wait (up to timeout_ms) until an
 * agent from the new boot answers a sync: the old agent is told apart by the
 * kernel's boot_id. 0 or -1. */
int agent_reboot(struct agent *a, int64_t timeout_ms);

/* fn(opaque) is called between the tries of agent_reboot's wait for the new
 * boot (the guest's owner watching for a stuck boot). */
void agent_set_on_wait(struct agent *a, void (*fn)(void *opaque), void *opaque);

/* The deadline of each wait (default AGENT_TIMEOUT_DEFAULT_MS). */
void agent_set_timeout(struct agent *a, int64_t timeout_ms);
int64_t agent_get_timeout(const struct agent *a);

/* The guest's boot id from the last sync (NULL before the first). */
const char *agent_boot_id(const struct agent *a);
/* The protocol version the last sync agreed on (0 before the first). */
uint32_t agent_version(const struct agent *a);

/* --- Frame level, for executor-agent.c -----------------------------------
 * One request at a time. Every failure other than an R_ERROR from the agent
 * (a timeout, garbage, an unexpected frame, a closed channel) records the
 * error and marks the session for a re-sync, which the next request does
 * first (agent_begin). Frames returned point into the client's buffer: use
 * them before the next call on the agent. */

/* Re-sync if needed and return a fresh request id; 0 on failure. */
uint32_t agent_begin(struct agent *a);
/* Send a built message / a raw data frame. 0 or -1. */
int agent_send_msg(struct agent *a, struct proto_msg *m);
int agent_send_data(struct agent *a, uint16_t type, uint8_t flags, uint32_t id,
		    const void *data, size_t len);
/* The next frame for request id, waiting up to timeout_ms. 1, or -1 (error
 * recorded, session marked for re-sync) on deadline, garbage, a frame for
 * another request or a closed channel. TLV payloads are checked. */
int agent_recv(struct agent *a, uint32_t id, struct proto_frame *f, int64_t timeout_ms);
/* Like agent_recv() but only what is already buffered or readable now:
 * 1 frame, 0 none, -1 error. */
int agent_recv_now(struct agent *a, uint32_t id, struct proto_frame *f);
/* Wait until the channel is readable or a frame is buffered, at most
 * timeout_ms: 0 (also on timeout), or -1 when the channel is closed. */
int agent_wait_readable(struct agent *a, int64_t timeout_ms);
/* The next frame must be R_OK (1, f filled); R_ERROR becomes -1 with the
 * agent's message; anything else is a protocol error. */
int agent_expect_ok(struct agent *a, uint32_t id, struct proto_frame *f, int64_t timeout_ms);
/* Record the error carried by an R_ERROR frame ("agent: <message>"). -1. */
int agent_error_frame(const struct proto_frame *f);
/* Record a protocol error ("agent: <what>") and mark for re-sync. -1. */
int agent_protocol_error(struct agent *a, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Mark for re-sync (e.g. when abandoning a stream half-way). */
void agent_desync(struct agent *a);
/* Tests and fuzzing only: treat the session as synced without a handshake. */
void agent_assume_synced(struct agent *a);

/* An executor running everything through this agent. The executor does not
 * own the agent. */
struct executor *executor_agent_new(struct agent *a);
/* Give it the guest's bulk disk (proto.h PROTO_BULK_*): the host file
 * attached as a raw disk, its header written with nonce, capacity bytes of
 * file data after the header. Files of 1 MiB and more then go through it
 * (put_file, get_file); an agent without the disk makes it fall back to the
 * channel for good. 0 or -1. */
int executor_agent_set_bulk(struct executor *ex, const char *path, uint64_t nonce,
			    uint64_t capacity);
/* How many transfers went through the bulk disk (tests). */
size_t executor_agent_bulk_done(struct executor *ex);

/* Close the channel but keep the session: the next request reconnects (a
 * unix socket session) and re-syncs. Lets another client use the agent
 * meanwhile (`amiforge attach` while a build waits at its prompt). */
void agent_disconnect(struct agent *a);

/* Close the channel and free; accepts NULL. */
void agent_close(struct agent *a);

#endif
