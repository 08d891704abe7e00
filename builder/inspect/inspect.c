/* `amiforge inspect`: open the disk in a libguestfs appliance, read-only,
 * and run the check groups in order. */
#include <guestfs.h>
#include <jansson.h>

#include "internal.h"
#include "sbom.h"
#include "builder/disk/admit.h"
#include "builder/disk/appliance.h"
#include "builder/disk/diskinfo.h"
#include "error.h"
#include "log.h"
#include "builder/disk/qemu-img.h"
#include "util.h"

/* libguestfs 1.48 attaches a readonly=1 drive through its own overlay as
 * "-drive file.driver=qcow2,..." with no top-level format, so QEMU probes
 * the guest-visible bytes: a raw disk that carries a qcow2 header would be
 * followed to its backing file. So amiforge makes the overlay itself
 * (qcow2 over the disk, backing format explicit) in a private directory and
 * attaches that read-write with format=qcow2: the disk itself is never
 * opened for writing, and nothing is probed. */
static int make_overlay(const char *disk, const char *format, char **dir_out, char **ovl_out)
{
	char *dir = NULL, *abs = NULL, *ovl = NULL;
	int ret = -1;

	abs = realpath(disk, NULL);
	if (!abs)
		return err_errno("open '%s'", disk);
	if (strchr(abs, ',')) {	/* qemu's option strings (-drive, -o) would split it */
		free(abs);
		return err_set("disk path '%s' contains a comma", disk);
	}
	if (!(dir = make_temp_dir("amiforge-inspect.", "/tmp"))) {
		free(abs);
		return -1;
	}
	ovl = xasprintf("%s/overlay.qcow2", dir);
	if (strchr(ovl, ',')) {	/* $TMPDIR: the same */
		err_set("temporary directory '%s' contains a comma", dir);
		rmdir_temp(dir);
		goto cleanup;
	}
	if (qemu_img_create_overlay(abs, format, ovl, 0, NULL) < 0) {
		err_prefix("overlay for '%s'", disk);
		rmdir_temp(dir);
		goto cleanup;
	}
	*dir_out = dir;
	dir = NULL;
	*ovl_out = ovl;
	ovl = NULL;
	ret = 0;

cleanup:
	free(dir);
	free(abs);
	free(ovl);
	return ret;
}

int inspect_run(const struct inspect_opts *opts, struct inspect_report **out)
{
	struct inspect_ctx c;
	struct inspect_report *rep;
	struct disk_info di;
	char *tmpdir = NULL, *overlay = NULL;
	int ret = -1;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	if (opts->own_chain) {
		if (disk_info_get(opts->own_chain, "qcow2", &di) < 0)
			return -1;
		di.path = xstrdup(opts->own_chain);
	} else if (disk_admit(opts->disk, opts->format, &di) < 0) {
		/* A disk from outside: its format is decided once (admit.h). */
		return -1;
	}
	rep = xcalloc(1, sizeof(*rep));
	rep->facts = json_object();
	rep->disk = xstrdup(opts->disk);
	rep->format = xstrdup(di.format);
	rep->target = opts->target;
	rep->boot = opts->boot;
	c.opts = opts;
	c.rep = rep;
	c.format = di.format;
	c.virtual_size = di.virtual_size;
	json_object_set_new(rep->facts, "virtual_size", json_integer((json_int_t)di.virtual_size));

	if (make_overlay(di.path, di.format, &tmpdir, &overlay) < 0)
		goto cleanup;
	c.g = appliance_early_take(opts->early, overlay, di.virtual_size, opts->disk);
	json_object_set_new(rep->facts, "appliance", json_string(c.g ? "started early" :
							       "started for the inspection"));
	if (!c.g)
		c.g = appliance_open(overlay, "qcow2", false, opts->disk);
	if (!c.g)
		goto cleanup;
	/* The devices and file systems, listed once; nothing left mounted. */
	if (appliance_find_os(c.g, &c.os) < 0 || inspect_disk_layout(&c) < 0 ||
	    inspect_os(&c) < 0)
		goto cleanup;
	if (c.root) {	/* an OS was found and mounted */
		if (inspect_kernel_drivers(&c) < 0 || inspect_config(&c) < 0 ||
		    inspect_generalised(&c) < 0 || inspect_canary(&c) < 0)
			goto cleanup;
		if (opts->target == INSPECT_FOR_IMPORT_IMAGE && inspect_import_image(&c) < 0)
			goto cleanup;
		if (opts->sbom_name &&
		    sbom_of_mounted(c.g, &c.os, opts->disk, opts->sbom_name, &rep->sbom) < 0) {
			log_warn("inspect: no SBOM: %s", err_msg());
			err_clear();
		}
	}
	*out = rep;
	rep = NULL;
	ret = 0;

cleanup:
	/* The overlay is discarded: nothing to sync or shut down cleanly. */
	appliance_abandon(c.g);
	if (overlay)
		unlink(overlay);
	if (tmpdir)
		rmdir_temp(tmpdir);
	free(overlay);
	free(tmpdir);
	appliance_os_release(&c.os);
	free(c.parttype);
	free(c.esp);
	free(c.bootloader);
	free(c.bootloader_file);
	free(c.kernel_path);
	free(c.kernel_file);
	free(c.kernel_version);
	free(c.kernel_version_why);
	free(c.initrd_named);
	free(c.initrd_why);
	free(c.initrd_path);
	free(c.cmdline);
	free(c.cmdline_evidence);
	inspect_report_free(rep);
	disk_info_release(&di);
	return ret;
}
