/* inject.c: agent injection into the overlay with libguestfs. */
#include <guestfs.h>

#include "inject.h"
#include "drivers/accel.h"
#include "error.h"
#include "log.h"
#include "util.h"

static const char unit_text[] =
	"[Unit]\n"
	"Description=amiforge guest agent\n"
	"DefaultDependencies=no\n"
	"After=systemd-udevd.service\n"
	"\n"
	"[Service]\n"
	"ExecStart=" INJECT_AGENT_PATH "\n"
	"Restart=always\n"
	"RestartSec=1\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

const char *inject_unit_text(void)
{
	return unit_text;
}

static int gerr(guestfs_h *g, const char *what, const char *disk)
{
	const char *e = guestfs_last_error(g);

	return err_set("inject into '%s': %s: %s", disk, what, e ? e : "failed");
}

static int cmp_len(const void *a, const void *b)
{
	/* mountpoints: shortest first so "/" mounts before "/usr" */
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);

	return la < lb ? -1 : la > lb;
}

/* Mount the OS's filesystems (from inspection) read-write. */
static int mount_os(guestfs_h *g, const char *disk)
{
	char **roots = NULL, **mps = NULL, **sorted = NULL;
	size_t n = 0, i;
	int ret = -1;

	roots = guestfs_inspect_os(g);
	if (!roots) {
		gerr(g, "inspect", disk);
		goto cleanup;
	}
	if (!roots[0]) {
		err_set("inject into '%s': no operating system found", disk);
		goto cleanup;
	}
	if (roots[1])
		log_warn("inject: '%s' has several operating systems; using %s", disk, roots[0]);
	mps = guestfs_inspect_get_mountpoints(g, roots[0]);
	if (!mps) {
		gerr(g, "get mountpoints", disk);
		goto cleanup;
	}
	while (mps[2 * n])
		n++;
	sorted = xcalloc(n + 1, sizeof(*sorted));
	for (i = 0; i < n; i++)
		sorted[i] = mps[2 * i];
	qsort(sorted, n, sizeof(*sorted), cmp_len);
	for (i = 0; i < n; i++) {
		const char *dev = NULL;

		for (size_t j = 0; j < n; j++)
			if (mps[2 * j] == sorted[i])
				dev = mps[2 * j + 1];
		if (guestfs_mount(g, dev, sorted[i]) < 0) {
			gerr(g, "mount", disk);
			goto cleanup;
		}
	}
	ret = 0;
cleanup:
	free(sorted);
	strv_free(mps);
	strv_free(roots);
	return ret;
}

int inject_agent(const char *disk, const char *format, const void *agent, size_t len)
{
	guestfs_h *g = guestfs_create();
	const char *why;
	int ret = -1;

	if (!g)
		return err_set("inject into '%s': cannot create libguestfs handle", disk);
	guestfs_set_error_handler(g, NULL, NULL);
	if (!accel_kvm_usable(&why)) {
		char *settings[] = { (char *)"force_tcg", NULL };

		log_debug("inject: libguestfs without KVM: %s", why);
		if (guestfs_set_backend_settings(g, settings) < 0) {
			gerr(g, "set force_tcg", disk);
			goto cleanup;
		}
	}
	if (guestfs_add_drive_opts(g, disk, GUESTFS_ADD_DRIVE_OPTS_FORMAT, format,
				   GUESTFS_ADD_DRIVE_OPTS_READONLY, 0, -1) < 0) {
		gerr(g, "add drive", disk);
		goto cleanup;
	}
	if (guestfs_launch(g) < 0) {
		gerr(g, "launch", disk);
		goto cleanup;
	}
	if (mount_os(g, disk) < 0)
		goto cleanup;
	if (guestfs_mkdir_p(g, "/usr/local/sbin") < 0 ||
	    guestfs_write(g, INJECT_AGENT_PATH, agent, len) < 0 ||
	    guestfs_chmod(g, 0755, INJECT_AGENT_PATH) < 0 ||
	    guestfs_mkdir_p(g, "/etc/systemd/system/multi-user.target.wants") < 0 ||
	    guestfs_write(g, INJECT_UNIT_PATH, unit_text, strlen(unit_text)) < 0 ||
	    guestfs_chmod(g, 0644, INJECT_UNIT_PATH) < 0 ||
	    guestfs_ln_sf(g, INJECT_UNIT_PATH, INJECT_WANTS_PATH) < 0) {
		gerr(g, "write agent", disk);
		goto cleanup;
	}
	if (guestfs_umount_all(g) < 0 || guestfs_shutdown(g) < 0) {
		gerr(g, "close", disk);
		goto cleanup;
	}
	ret = 0;
cleanup:
	guestfs_close(g);
	return ret;
}
