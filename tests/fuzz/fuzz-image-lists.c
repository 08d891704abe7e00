/* libFuzzer target: what the host reads back from an image's appliance for
 * `amiforge sbom` and `diff` — a dpkg status database
 * (sbom_parse_dpkg_status) and a sha256sum listing of a directory
 * (files_parse_sums). The first byte picks the reader. Nothing may crash,
 * hang or leak; a refusal must come with a recorded message; accepted
 * entries carry the fields the headers promise. */
#include <jansson.h>

#include "builder/inspect/files.h"
#include "builder/inspect/sbom.h"
#include "error.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;
	size_t n = size ? size - 1 : 0, i;
	json_t *out = NULL, *v;
	const char *k;
	int r;

	if (!size)
		return 0;
	if (data[0] & 1) {
		out = sbom_parse_dpkg_status(s, n);
		if (!out && !err_isset())
			__builtin_trap();
		json_array_foreach(out, i, v)
			if (!json_is_string(json_object_get(v, "name")) ||
			    !json_is_string(json_object_get(v, "version")))
				__builtin_trap();
	} else {
		out = json_object();
		r = files_parse_sums(s, n, (data[0] & 2) ? "/" : "/etc", out);
		if (r < 0 && !err_isset())
			__builtin_trap();
		json_object_foreach(out, k, v)
			if (k[0] != '/' || json_string_length(v) != 64)
				__builtin_trap();
	}
	err_clear();
	json_decref(out);
	return 0;
}
