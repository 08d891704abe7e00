/* seed.h: the NoCloud seed ISO (volume label "cidata") that brings the agent
 * up in an unmodified cloud image.
 *
 * The ISO carries meta-data (a fresh instance-id), user-data and the static
 * agent binary. user-data is a cloud-config whose bootcmd — which cloud-init
 * runs on every boot, early in its init stage — copies the agent from the
 * seed to a small tmpfs mounted on /run/amiforge (/run itself is noexec on
 * Debian-like systems) and starts it as a transient systemd service
 * (systemd-run, Restart=always), detached when systemd is absent. Nothing is
 * written to the guest disk for the agent: after an in-guest reboot bootcmd
 * runs again and the agent comes back; images built from the disk carry no
 * trace of it. */
#ifndef AMIFORGE_SEED_H
#define AMIFORGE_SEED_H

#include "compat.h"

/* Where the agent lives in the guest (tmpfs). */
#define SEED_AGENT_DIR "/run/amiforge"
#define SEED_AGENT_NAME "amiforge-agent"
/* The console line bootcmd prints, followed by the instance-id cloud-init
 * recorded: tests and `run` read it from the serial log. */
#define SEED_CONSOLE_MARK "amiforge-seed: agent started, instance-id "

struct seed_opts {
	const char *instance_id;  /* NULL: a fresh random one */
	const char *hostname;     /* NULL: "amiforge" */
	const void *agent;        /* the agent binary (NULL: none, for smoke tests) */
	size_t agent_len;
	bool agent_in_disk;       /* the disk starts the agent (a build's agent
				   * layer): user-data has no bootcmd, the ISO
				   * no agent; cloud-init runs as for a user */
};

/* A fresh instance id: "i-" and 16 hex digits from getrandom(). Caller frees. */
char *seed_new_instance_id(void);

/* The user-data / meta-data text for o (caller frees). */
char *seed_user_data(const struct seed_opts *o);
char *seed_meta_data(const struct seed_opts *o, const char *instance_id);

/* Write the ISO to path (mode 0644: QEMU may run as another user).
 * *instance_id_out (may be NULL) receives the id used; caller frees.
 * 0 or -1; on failure no file is left. */
int seed_write(const char *path, const struct seed_opts *o, char **instance_id_out);

#endif
