/* inject.c: agent injection into the overlay with libguestfs. */
#include <guestfs.h>

#include "inject.h"
#include "builder/base/cache.h"
#include "builder/disk/appliance.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* Started as soon as the local file systems are mounted (read-write: the
 * first step may write) and systemd-tmpfiles has emptied /tmp at boot (the
 * components' work directories live there: a file put there before that
 * cleanup vanished under it after a reboot), long before cloud-init's
 * stages: the agent finds its virtio-serial port through sysfs and waits for
 * it, so neither udev nor the network is needed; the port's driver is loaded
 * here rather than when udev gets to it (a module on most distributions;
 * "-": built in, or no modprobe, is fine). Its log reaches the console too
 * (when it serves the port, with the guest's uptime). Stopped at shutdown
 * like any service. */
static const char unit_text[] =
	"[Unit]\n"
	"Description=amiforge guest agent\n"
	"DefaultDependencies=no\n"
	"After=local-fs.target systemd-tmpfiles-setup.service\n"
	"Conflicts=shutdown.target\n"
	"Before=shutdown.target\n"
	"\n"
	"[Service]\n"
	"ExecStartPre=-/sbin/modprobe -q virtio_console\n"
	"ExecStart=" INJECT_AGENT_PATH "\n"
	"StandardOutput=journal+console\n"
	"StandardError=journal+console\n"
	"Restart=always\n"
	"RestartSec=1\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

const char *inject_unit_text(void)
{
	return unit_text;
}

char *inject_agent_digest(const struct arch *a, const void *agent, size_t len)
{
	struct hasher *h = hasher_new(CHECKSUM_NONE);
	char *hex = NULL, *extra = NULL;

	hasher_update(h, a->name, strlen(a->name) + 1);
	hasher_update(h, INJECT_AGENT_PATH, sizeof(INJECT_AGENT_PATH));
	hasher_update(h, unit_text, sizeof(unit_text));
	hasher_update(h, agent, len);
	hasher_final(h, &hex, &extra);
	hasher_free(h);
	free(extra);
	return hex;
}

/* Mount the disk's OS read-write, as its fstab says. */
static int mount_os(guestfs_h *g, const char *disk)
{
	struct appliance_os os;
	int ret = -1;

	if (appliance_find_os(g, &os) < 0)
		return err_prefix("inject into '%s'", disk);
	if (os.nroots == 0) {
		err_set("inject into '%s': no Linux system found", disk);
		goto cleanup;
	}
	if (os.nroots > 1)
		log_warn("inject: '%s' has several operating systems; using %s", disk, os.root);
	if (appliance_mount_os(g, &os, false, NULL, NULL) < 0) {
		err_prefix("inject into '%s'", disk);
		goto cleanup;
	}
	ret = 0;
cleanup:
	appliance_os_release(&os);
	return ret;
}

int inject_agent(const char *disk, const char *format, const void *agent, size_t len)
{
	guestfs_h *g = appliance_open(disk, format, false, NULL);

	if (!g)
		return err_prefix("inject");
	if (mount_os(g, disk) < 0)
		goto fail;
	/* A unit is only worth writing where systemd will read it. */
	if (guestfs_is_file_opts(g, "/lib/systemd/systemd", GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1,
				 -1) <= 0 &&
	    guestfs_is_file_opts(g, "/usr/lib/systemd/systemd",
				 GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) <= 0) {
		err_set("inject into '%s': the image has no systemd", disk);
		goto fail;
	}
	if (guestfs_mkdir_p(g, "/usr/local/sbin") < 0 ||
	    guestfs_write(g, INJECT_AGENT_PATH, agent, len) < 0 ||
	    guestfs_chmod(g, 0755, INJECT_AGENT_PATH) < 0 ||
	    guestfs_mkdir_p(g, "/etc/systemd/system/multi-user.target.wants") < 0 ||
	    guestfs_write(g, INJECT_UNIT_PATH, unit_text, strlen(unit_text)) < 0 ||
	    guestfs_chmod(g, 0644, INJECT_UNIT_PATH) < 0 ||
	    guestfs_ln_sf(g, INJECT_UNIT_PATH, INJECT_WANTS_PATH) < 0) {
		err_set("inject into '%s': write agent: %s", disk,
			guestfs_last_error(g) ? guestfs_last_error(g) : "failed");
		goto fail;
	}
	return appliance_close(g, disk);
fail:
	appliance_abandon(g);
	return -1;
}
