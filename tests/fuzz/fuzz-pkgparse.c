/* libFuzzer target: UpdateOS's readers of package manager output
 * (builder/component/pkgparse.c), which run on the host over what a guest
 * printed. The first byte picks the reader; the rest is the output. Nothing
 * may crash, hang or leak; a refusal must come with a recorded message, and
 * every accepted entry must carry the fields pkgparse.h promises. */
#include <jansson.h>

#include "builder/component/pkgparse.h"
#include "error.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_list(json_t *list)
{
	json_t *v;
	size_t i;

	json_array_foreach(list, i, v)
		if (!json_is_string(json_object_get(v, "package")) ||
		    !json_is_string(json_object_get(v, "oldVersion")) ||
		    !json_is_string(json_object_get(v, "newVersion")))
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;
	size_t n = size ? size - 1 : 0, half = n / 2;
	json_t *list = json_array(), *inc = json_pack("[s]", "a");
	char *l;
	int r = 0;

	if (!size)
		goto out;
	switch (data[0] % 6) {
	case 0:
		r = pkg_parse_apt(s, n, list);
		break;
	case 1:
		r = pkg_parse_dnf(s, half, data[0] & 8, s + half, n - half, list);
		break;
	case 2:
		r = pkg_parse_zypper(s, n, (data[0] & 8) ? inc : NULL, list);
		break;
	case 3:
		pkg_apt_refresh_failed(s, half, s + half, n - half);
		break;
	case 4:
		l = pkg_failure_line(s, half, s + half, n - half);
		if (strlen(l) > PKG_QUOTE_MAX)
			__builtin_trap();
		free(l);
		break;
	case 5:
		pkg_net_has_default_route(s, half, s + half, n - half);
		break;
	}
	if (r < 0 && !err_isset())
		__builtin_trap();
	if (r == 0)
		check_list(list);
	err_clear();
out:
	json_decref(list);
	json_decref(inc);
	return 0;
}
