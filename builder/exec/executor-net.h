/* executor-net.h: the network's side of a guest's executor (issue 25).
 *
 * A build, validate or test guest gets a network by default; this executor
 * wraps the guest's (it does not own it) and, for every command it runs:
 *   - adds the network environment: the recipe's proxy (http_proxy,
 *     https_proxy, no_proxy, and their upper-case forms) and the port
 *     forwards (AMIFORGE_HOST_ADDR, AMIFORGE_HOST_PORT_<guest port>), before
 *     the request's own entries (which win);
 *   - before the first command after each boot (and after a reboot through
 *     it), waits (bounded) for the boot's services: the agent layer's agent
 *     answers as soon as the file systems are mounted, long before the
 *     services a build enabled have started again, and a step after a reboot
 *     expects a booted system (as Image Builder's, whose SSM agent starts
 *     late in boot). While systemd says "starting", the wait lasts until
 *     multi-user.target is reached; cloud-init's final stage, ordered after
 *     it, is not waited for (vm.wait_for_cloud_init is). Past the bound a
 *     warning, and the command runs;
 *   - then, when the guest has a network, waits (bounded) until it has a
 *     default route: DHCP may still be under way; later commands do not
 *     wait. A guest whose DHCP never answers fails that command with a
 *     message saying so;
 *   - on an offline guest (vm.network: none, --no-net), a command that fails
 *     gets a last stderr line saying the guest is offline and why: the
 *     failing step's message ends with it.
 * File operations pass through untouched. */
#ifndef AMIFORGE_EXECUTOR_NET_H
#define AMIFORGE_EXECUTOR_NET_H

#include "compat.h"
#include "executor.h"

/* Default wait for a default route before the first command (and after a
 * reboot). The agent layer's agent answers as soon as the file systems are
 * mounted, before the guest's own DHCP: under TCG on a busy host that took
 * more than 60 s after a reboot, so the bound is generous; it is there for a
 * clear message when DHCP never answers, not as a tuning knob. */
#define EXEC_NET_READY_MS 300000
/* Default wait for the boot's services (multi-user.target) before the first
 * command after a boot: a warning past it, not an error. */
#define EXEC_BOOT_READY_MS 300000
/* Most environment entries added. */
#define EXEC_NET_ENV_MAX 64

struct exec_net_opts {
	bool online;                 /* the guest has a network interface */
	const char *offline_reason;  /* !online: e.g. "the recipe sets vm.network: none" */
	const char *const *env;      /* "K=V" entries for every command (copied); may be NULL */
	int64_t ready_timeout_ms;    /* 0: EXEC_NET_READY_MS */
	int64_t boot_timeout_ms;     /* 0: EXEC_BOOT_READY_MS; < 0: no boot wait */
};

/* Wrap inner (which must outlive the result; closing the result does not
 * close inner). Free with executor_close(). */
struct executor *executor_net_new(struct executor *inner, const struct exec_net_opts *o);

/* Does /proc/net/route (or ipv6_route) text name a default route on an
 * interface other than lo? For the readiness check and its unit test. */
bool exec_net_has_default_route(const char *route, const char *ipv6_route);

#endif
