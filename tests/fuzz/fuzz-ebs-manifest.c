/* libFuzzer target: the EBS block manifest (ebs-blocks-<snapshot>.json)
 * that an incremental upload reads back from an earlier build's folder:
 * ebs_blockmap_load, and ebs_blockmap_find_newest over that folder.
 * Nothing may crash, hang or leak. */
#include "fuzz.h"
#include "drivers/aws/ebs-upload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ebs_blockmap m;
	const char *dirs[] = { fuzz_dir(), NULL };
	char *snap = NULL, *dir = NULL;

	fuzz_file("ebs-blocks-snap-0123456789abcdef0.json", data, size);
	memset(&m, 0, sizeof(m));
	ebs_blockmap_load(&m, fuzz_dir(), "snap-0123456789abcdef0");
	ebs_blockmap_release(&m);
	err_clear();
	if (ebs_blockmap_find_newest(dirs, "eu-west-1", NULL, &snap, &dir) == 0) {
		free(snap);
		free(dir);
	}
	err_clear();
	return 0;
}
