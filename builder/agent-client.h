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
#include "executor.h"

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

/* An executor running everything through this agent. The executor does not
 * own the agent. */
struct executor *executor_agent_new(struct agent *a);

/* Close the channel and free; accepts NULL. */
void agent_close(struct agent *a);

#endif
