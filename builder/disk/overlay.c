/* overlay.c: what a guest's base is, and the qcow2 overlay on it. */

#include "overlay.h"
#include "admit.h"
#include "qemu-img.h"
#include "diskinfo.h"
#include "error.h"
#include "util.h"

/* What a guest's base may be: qcow2 or raw, standalone (chain: a checkpoint
 * layer amiforge wrote, whose backing chain is allowed). */
static int image_info_from(struct disk_info *di, const char *path, bool chain,
			   struct image_info *out)
{
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (strcmp(di->format, "qcow2") != 0 && strcmp(di->format, "raw") != 0) {
		err_set("image '%s': format '%s' is not supported (qcow2 or raw; "
			"convert it with amiforge convert)", path, di->format);
		goto cleanup;
	}
	/* A base pointing at another host file: the guest would read a file
	 * the user never named. */
	if (di->backing && !chain) {
		err_set("image '%s': has a backing file; flatten it first "
			"(qemu-img convert -O qcow2)", path);
		goto cleanup;
	}
	snprintf(out->format, sizeof(out->format), "%s", di->format);
	out->virtual_size = di->virtual_size;
	ret = 0;
cleanup:
	disk_info_release(di);
	return ret;
}

int image_info_parse(const char *json, const char *path, struct image_info *out)
{
	struct disk_info di;

	if (disk_info_parse(json, strlen(json), path, NULL, &di) < 0)
		return -1;
	return image_info_from(&di, path, false, out);
}

int image_admit(const char *path, const char *format, struct image_info *out)
{
	struct disk_info di;

	if (disk_admit(path, format, &di) < 0)
		return -1;
	return image_info_from(&di, path, false, out);
}

int image_known(const char *path, const char *format, struct image_info *out)
{
	struct disk_info di;

	if (disk_info_get(path, format, &di) < 0)
		return -1;
	return image_info_from(&di, path, false, out);
}

int image_probe_chain(const char *path, struct image_info *out)
{
	struct disk_info di;

	if (disk_info_get(path, "qcow2", &di) < 0)
		return -1;
	return image_info_from(&di, path, true, out);
}

int overlay_create(const char *base, const char *base_fmt, const char *overlay,
		   uint64_t size)
{
	struct qemu_img_how how = { .timeout_ms = 60000 };

	if (base[0] != '/')
		return err_set("overlay: base '%s' must be an absolute path", base);
	if (strcmp(base_fmt, "qcow2") != 0 && strcmp(base_fmt, "raw") != 0)
		return err_set("overlay: base format '%s' is not qcow2 or raw", base_fmt);
	if (qemu_img_create_overlay(base, base_fmt, overlay, size, &how) < 0) {
		err_prefix("create overlay '%s'", overlay);
		unlink(overlay);
		return -1;
	}
	return 0;
}
