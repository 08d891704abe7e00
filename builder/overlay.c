/* overlay.c: format detection of the base and the qcow2 overlay on it. */
#include <jansson.h>

#include "overlay.h"
#include "error.h"
#include "run.h"
#include "util.h"

static int info_parse(const char *json, const char *path, bool chain, struct image_info *out)
{
	json_error_t je;
	json_t *root = json_loads(json, 0, &je);
	const char *fmt;
	json_t *vs;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!root || !json_is_object(root)) {
		err_set("image '%s': qemu-img info: invalid JSON at %d:%d: %s", path, je.line,
			je.column, je.text);
		goto cleanup;
	}
	fmt = json_string_value(json_object_get(root, "format"));
	vs = json_object_get(root, "virtual-size");
	if (!fmt || !json_is_integer(vs) || json_integer_value(vs) <= 0) {
		err_set("image '%s': qemu-img info lacks format or virtual-size", path);
		goto cleanup;
	}
	if (strcmp(fmt, "qcow2") != 0 && strcmp(fmt, "raw") != 0) {
		err_set("image '%s': format '%s' is not supported (qcow2 or raw; "
			"convert it with qemu-img convert)", path, fmt);
		goto cleanup;
	}
	if (!chain && (json_object_get(root, "backing-filename") ||
		       json_object_get(root, "full-backing-filename"))) {
		err_set("image '%s': has a backing file; flatten it first "
			"(qemu-img convert -O qcow2)", path);
		goto cleanup;
	}
	snprintf(out->format, sizeof(out->format), "%s", fmt);
	out->virtual_size = (uint64_t)json_integer_value(vs);
	ret = 0;
cleanup:
	json_decref(root);
	return ret;
}

int image_info_parse(const char *json, const char *path, struct image_info *out)
{
	return info_parse(json, path, false, out);
}

static int probe(const char *path, const char *format, bool chain, struct image_info *out)
{
	/* -U: reading the header is safe while another process has it open. */
	const char *argv[] = { "qemu-img", "info", "-U", "--output=json", path, NULL, NULL, NULL };
	struct run r = RUN_INIT;
	int ret = -1;

	if (format) {
		argv[4] = "-f";
		argv[5] = format;
		argv[6] = path;
	}

	if (access(path, R_OK) < 0)
		return err_errno("image '%s'", path);
	r.argv = argv;
	r.out = RUN_CAPTURE;
	r.err = RUN_CAPTURE;
	r.capture_max = IMAGE_INFO_JSON_MAX;
	r.timeout_ms = 60000;
	if (run_sync(&r) < 0 || run_check(&r) < 0)
		goto cleanup;
	if (r.truncated) {
		err_set("image '%s': qemu-img info output over %u bytes", path,
			IMAGE_INFO_JSON_MAX);
		goto cleanup;
	}
	ret = info_parse(r.out_buf.data ? r.out_buf.data : "", path, chain, out);
cleanup:
	run_release(&r);
	return ret;
}

int image_probe(const char *path, const char *format, struct image_info *out)
{
	return probe(path, format, false, out);
}

int image_probe_chain(const char *path, struct image_info *out)
{
	return probe(path, "qcow2", true, out);
}

int overlay_create(const char *base, const char *base_fmt, const char *overlay,
		   uint64_t size)
{
	const char *argv[12];
	char sizestr[32];
	struct run r = RUN_INIT;
	size_t n = 0;
	int ret = -1;

	if (base[0] != '/')
		return err_set("overlay: base '%s' must be an absolute path", base);
	if (strcmp(base_fmt, "qcow2") != 0 && strcmp(base_fmt, "raw") != 0)
		return err_set("overlay: base format '%s' is not qcow2 or raw", base_fmt);
	argv[n++] = "qemu-img";
	argv[n++] = "create";
	argv[n++] = "-q";
	argv[n++] = "-f";
	argv[n++] = "qcow2";
	argv[n++] = "-F";
	argv[n++] = base_fmt;
	argv[n++] = "-b";
	argv[n++] = base;
	argv[n++] = overlay;
	if (size) {
		snprintf(sizestr, sizeof(sizestr), "%" PRIu64, size);
		argv[n++] = sizestr;
	}
	argv[n] = NULL;
	r.argv = argv;
	r.err = RUN_CAPTURE;
	r.timeout_ms = 60000;
	if (run_sync(&r) < 0 || run_check(&r) < 0) {
		err_prefix("create overlay '%s'", overlay);
		unlink(overlay);
		goto cleanup;
	}
	ret = 0;
cleanup:
	run_release(&r);
	return ret;
}
