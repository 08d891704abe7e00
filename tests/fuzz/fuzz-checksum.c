/* libFuzzer target: checksum files (SHA256SUMS, SHA512SUMS, BSD style) as
 * downloaded next to a base image: checksum_file_lookup for a few names.
 * Nothing may crash, hang or leak. */
#include "fuzz.h"
#include "builder/base/fetch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "disk.qcow2", "debian-12-genericcloud-amd64.qcow2",
					     "", "a b", "*x" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		enum checksum_algo algo;
		char *hex = NULL;

		if (checksum_file_lookup((const char *)data, size, names[i], &algo, &hex) == 0)
			free(hex);
		err_clear();
	}
	return 0;
}
