/* qemu-img info, parsed with jansson. */
#include <jansson.h>

#include "diskinfo.h"
#include "error.h"
#include "log.h"
#include "qemu-img.h"
#include "util.h"

/* qemu-img info's JSON for one image (no backing chain) is well under 64 KiB;
 * snapshots tables can grow it, 1 MiB is generous. */
#define QEMU_IMG_INFO_MAX (1u * 1024 * 1024)
/* qemu-img info reads headers only: a minute is plenty even on NFS. */
#define QEMU_IMG_INFO_TIMEOUT_MS 60000

/* The one list of formats: as qemu-img names them, and whether a disk from
 * outside may come in as one (admit.h); vdi and qed are read, not admitted. */
static const struct {
	const char *name;
	bool admitted;
} disk_formats[] = {
	{ "raw", true }, { "qcow2", true }, { "vmdk", true }, { "vpc", true }, { "vhdx", true },
	{ "vdi", false }, { "qed", false },
};

const char *disk_format_name(const char *f, bool admitted_only)
{
	size_t i;

	if (!f)
		return NULL;
	if (strcmp(f, "vhd") == 0)
		f = "vpc";
	for (i = 0; i < ARRAY_SIZE(disk_formats); i++)
		if (strcmp(f, disk_formats[i].name) == 0 &&
		    (disk_formats[i].admitted || !admitted_only))
			return disk_formats[i].name;
	return NULL;
}

bool disk_format_known(const char *f)
{
	return f && strcmp(f, "vhd") != 0 && disk_format_name(f, false);
}

json_t *disk_info_load(const char *json, size_t len, const char *path)
{
	json_error_t je;
	json_t *root = json_loadb(json, len, 0, &je);

	if (!root || !json_is_object(root)) {
		err_set("qemu-img info '%s': invalid JSON: %s", path,
			root ? "not an object" : je.text);
		json_decref(root);
		return NULL;
	}
	return root;
}

int disk_info_parse(const char *json, size_t len, const char *path, const char *format,
		    struct disk_info *di)
{
	json_t *root = disk_info_load(json, len, path);
	int ret;

	memset(di, 0, sizeof(*di));
	if (!root)
		return -1;
	ret = disk_info_from_json(root, path, format, di);
	json_decref(root);
	return ret;
}

int disk_info_from_json(const json_t *root, const char *path, const char *format,
			struct disk_info *di)
{
	const json_t *v;
	int ret = -1;

	memset(di, 0, sizeof(*di));
	v = json_object_get(root, "format");
	if (!json_is_string(v)) {
		err_set("qemu-img info '%s': no format", path);
		goto cleanup;
	}
	di->format = xstrdup(json_string_value(v));
	di->probed = format == NULL;
	v = json_object_get(root, "virtual-size");
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		err_set("qemu-img info '%s': no virtual size", path);
		goto cleanup;
	}
	di->virtual_size = (uint64_t)json_integer_value(v);
	v = json_object_get(root, "actual-size");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		di->actual_size = (uint64_t)json_integer_value(v);
	v = json_object_get(root, "backing-filename");
	if (json_is_string(v))
		di->backing = xstrdup(json_string_value(v));
	v = json_object_get(json_object_get(json_object_get(root, "format-specific"), "data"),
			    "create-type");
	if (json_is_string(v))
		di->create_type = xstrdup(json_string_value(v));
	if (!disk_format_known(di->format)) {
		err_set("'%s' is a %s image, which amiforge does not read", path, di->format);
		goto cleanup;
	}
	if (di->backing && di->probed) {
		err_set("'%s' (probed as %s) has a backing file '%s': name its format with "
			"--input-format to follow it", path, di->format, di->backing);
		goto cleanup;
	}
	if (di->backing && !json_is_string(json_object_get(root, "backing-filename-format"))) {
		err_set("'%s' has a backing file '%s' without a recorded format: refusing to "
			"let qemu probe it", path, di->backing);
		goto cleanup;
	}
	log_debug("%s: %s, %" PRIu64 " bytes%s%s%s", path, di->format, di->virtual_size,
		  di->probed ? " (probed)" : "", di->backing ? ", backing " : "",
		  di->backing ? di->backing : "");
	ret = 0;
cleanup:
	if (ret < 0)
		disk_info_release(di);
	return ret;
}

int disk_info_json(const char *path, const char *format, char **json, size_t *len)
{
	struct qemu_img_read rd = { .max = QEMU_IMG_INFO_MAX,
				    .timeout_ms = QEMU_IMG_INFO_TIMEOUT_MS };
	/* -U: reading the header is safe while a guest has the image open.
	 * Never --backing-chain: no backing file is opened. */
	const char *argv[] = { "qemu-img", "info", "-U", "--output=json", "-f", format, "--",
			       path, NULL };

	*len = 0;
	*json = qemu_img_capture(argv, "qemu-img info", &rd, len);
	if (!*json)
		return err_prefix("inspect '%s'", path);
	return 0;
}

int disk_info_get(const char *path, const char *format, struct disk_info *di)
{
	char *json;
	size_t len;
	int ret;

	memset(di, 0, sizeof(*di));
	/* Never probed: a disk from outside comes in through disk_admit(). */
	if (!format)
		return err_set("disk '%s': no format stated", path);
	if (!disk_format_known(format))
		return err_set("unknown disk format '%s'", format);
	if (access(path, R_OK) < 0)
		return err_errno("open '%s'", path);
	if (disk_info_json(path, format, &json, &len) < 0)
		return -1;
	ret = disk_info_parse(json, len, path, format, di);
	free(json);
	return ret;
}

void disk_info_release(struct disk_info *di)
{
	if (!di)
		return;
	free(di->path);
	free(di->format);
	free(di->backing);
	free(di->create_type);
	memset(di, 0, sizeof(*di));
}
