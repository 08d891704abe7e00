/* inject.h: the fallback for images without cloud-init — put the agent and a
 * systemd unit into the overlay with libguestfs before the first boot (the
 * guest filesystem is only ever mounted inside the libguestfs appliance).
 * Unlike the seed, this writes to the overlay: the unit stays enabled across
 * in-guest reboots. */
#ifndef AMIFORGE_INJECT_H
#define AMIFORGE_INJECT_H

#include "compat.h"
#include "drivers/hypervisor/arch.h"

#define INJECT_AGENT_PATH "/usr/local/sbin/amiforge-agent"
#define INJECT_UNIT_PATH "/etc/systemd/system/amiforge-agent.service"
#define INJECT_WANTS_PATH "/etc/systemd/system/multi-user.target.wants/amiforge-agent.service"

/* cloud-init's own switch (every cloud-init since 0.7.9 honours it): a
 * checkpoint's layer is frozen with this file in it, carrying this text, so
 * that a build booting from the checkpoint does not run cloud-init's stages
 * again (builder/build/checkpoint.h); the running build removes it at once,
 * the booted one as soon as its agent answers, generalisation if it is
 * still there, and the inspector fails an image that has it. */
#define INJECT_CI_HOLD_PATH "/etc/cloud/cloud-init.disabled"
#define INJECT_CI_HOLD_TEXT "amiforge: cloud-init held off while booting a build checkpoint\n"
/* Said in the booted guest's tmpfs once the file is gone: generalisation
 * then does not wait for cloud-init's stages, which this boot did not run. */
#define INJECT_CI_HELD_RUN "/run/amiforge-cloud-init-held"

/* The unit file text (static storage). The unit starts the agent early
 * (DefaultDependencies=no, after local-fs.target and the boot's tmpfiles
 * cleanup of /tmp). */
const char *inject_unit_text(void);

/* What injection writes, as a sha256 hex (the architecture's name, the
 * agent, the unit and their paths): a cached agent layer is named by it.
 * Caller frees. */
char *inject_agent_digest(const struct arch *a, const void *agent, size_t len);

/* Inject agent (len bytes) into disk (format explicit). libguestfs runs with
 * force_tcg when accel_kvm_usable() says no. 0 or -1 (also when the image
 * has no systemd to start the unit). */
int inject_agent(const char *disk, const char *format, const void *agent, size_t len);

#endif
