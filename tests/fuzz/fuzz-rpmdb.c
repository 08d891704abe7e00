/* libFuzzer target: an image's rpm database as `amiforge sbom` reads it —
 * one package's header blob (rpmdb_parse_header) or a whole rpmdb.sqlite
 * (rpmdb_parse_sqlite, header blobs inside). The first byte picks the
 * reader. Nothing may crash, hang or leak; a refusal comes with a recorded
 * message; a package has a name and a version. */
#include <jansson.h>

#include "builder/inspect/rpmdb.h"
#include "error.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_pkg(const json_t *p)
{
	if (!json_string_length(json_object_get(p, "name")) ||
	    !json_string_length(json_object_get(p, "version")) ||
	    !json_is_string(json_object_get(p, "arch")))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *out, *v;
	size_t i;

	if (!size)
		return 0;
	if (data[0] & 1) {
		out = rpmdb_parse_sqlite(data + 1, size - 1);
		json_array_foreach(out, i, v)
			check_pkg(v);
	} else {
		out = rpmdb_parse_header(data + 1, size - 1);
		if (out)
			check_pkg(out);
	}
	if (!out && !err_isset())
		__builtin_trap();
	err_clear();
	json_decref(out);
	return 0;
}
