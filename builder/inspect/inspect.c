/* `amiforge inspect`: open the disk in a libguestfs appliance, read-only,
 * and run the check groups in order. */
#include <guestfs.h>
#include <jansson.h>

#include "internal.h"
#include "builder/convert-diskinfo.h"
#include "drivers/accel.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* The appliance, its disk attached read-only with an explicit format. */
static guestfs_h *appliance_open(const char *disk, const char *format)
{
	guestfs_h *g = guestfs_create();
	const char *why;

	if (!g) {
		err_set("libguestfs: cannot create a handle");
		return NULL;
	}
	/* Errors are collected with guestfs_last_error(), not printed. */
	guestfs_set_error_handler(g, NULL, NULL);
	if (!accel_kvm_usable(&why)) {
		log_debug("libguestfs under TCG: %s", why);
		if (guestfs_set_backend_setting(g, "force_tcg", "1") < 0)
			goto fail;
	}
	if (guestfs_add_drive_opts(g, disk, GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
				   GUESTFS_ADD_DRIVE_OPTS_FORMAT, format, -1) < 0)
		goto fail;
	log_info("starting the libguestfs appliance for '%s' (%s)", disk,
		 accel_kvm_usable(NULL) ? "KVM" : "TCG, about 15 s");
	if (guestfs_launch(g) < 0)
		goto fail;
	return g;

fail:
	err_set("libguestfs '%s': %s", disk, guestfs_last_error(g) ? guestfs_last_error(g) : "failed");
	guestfs_close(g);
	return NULL;
}

int inspect_run(const struct inspect_opts *opts, struct inspect_report **out)
{
	struct inspect_ctx c;
	struct inspect_report *rep;
	struct disk_info di;
	int ret = -1;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	if (disk_info_get(opts->disk, opts->format, &di) < 0)
		return -1;
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

	c.g = appliance_open(opts->disk, di.format);
	if (!c.g)
		goto cleanup;
	if (inspect_disk_layout(&c) < 0 || inspect_os(&c) < 0)
		goto cleanup;
	if (c.root) {	/* an OS was found and mounted */
		if (inspect_kernel_drivers(&c) < 0 || inspect_config(&c) < 0 ||
		    inspect_generalised(&c) < 0 || inspect_canary(&c) < 0)
			goto cleanup;
		if (opts->target == INSPECT_FOR_IMPORT_IMAGE && inspect_import_image(&c) < 0)
			goto cleanup;
	}
	if (guestfs_umount_all(c.g) < 0 || guestfs_shutdown(c.g) < 0) {
		err_set("libguestfs: %s", guestfs_last_error(c.g));
		goto cleanup;
	}
	*out = rep;
	rep = NULL;
	ret = 0;

cleanup:
	if (c.g)
		guestfs_close(c.g);
	free(c.root);
	free(c.parttype);
	free(c.esp);
	free(c.bootloader);
	free(c.bootloader_file);
	free(c.kernel_path);
	free(c.kernel_version);
	free(c.initrd_path);
	free(c.cmdline);
	free(c.cmdline_evidence);
	inspect_report_free(rep);
	disk_info_release(&di);
	return ret;
}
