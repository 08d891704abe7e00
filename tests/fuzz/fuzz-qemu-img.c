/* libFuzzer target: what amiforge reads from `qemu-img info` and
 * `qemu-img map` (JSON). qemu-img reads untrusted disk images, so its
 * answers are checked like any input.
 *
 * The input's first part is an info answer, parsed by disk_info_parse and
 * image_info_parse directly. Then a stand-in qemu-img (a shell script first
 * in PATH) answers `info --backing-chain` with the first part and `map` with
 * the second (after "\n---8<---\n"), and blockread_open / next_data / read
 * walk the disk the way the EBS upload does. Nothing may crash, hang or leak. */
#include "fuzz.h"
#include "builder/disk/blockread.h"
#include "builder/disk/diskinfo.h"
#include "builder/disk/overlay.h"

static const char fake[] =
	"#!/bin/sh\n"
	"d=${0%/bin/qemu-img}\n"
	"case $1 in\n"
	"info) exec cat \"$d/info.json\" ;;\n"
	"map) exec cat \"$d/map.json\" ;;\n"
	"*) echo \"qemu-img $1: not in this test\" >&2; exit 1 ;;\n"
	"esac\n";

static void init(void)
{
	char *bin = xasprintf("%s/bin", fuzz_dir()), *path;

	mkdir(bin, 0700);
	chmod(fuzz_file("bin/qemu-img", fake, sizeof(fake) - 1), 0700);
	path = xasprintf("%s:%s", bin, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	setenv("PATH", path, 1);
	free(path);
	free(bin);
	fuzz_file("disk.img", "", 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool done;
	const uint8_t *a, *b;
	size_t alen, blen;
	struct disk_info di;
	struct image_info ii;
	struct blockread *br;
	char *s, *disk;

	if (!done) {
		init();
		done = true;
	}
	fuzz_split(data, size, &a, &alen, &b, &blen);
	s = fuzz_str(a, alen);
	memset(&di, 0, sizeof(di));
	if (disk_info_parse(s, alen, "disk.img", NULL, &di) == 0)
		disk_info_release(&di);
	err_clear();
	memset(&di, 0, sizeof(di));
	if (disk_info_parse(s, alen, "disk.img", "qcow2", &di) == 0)
		disk_info_release(&di);
	err_clear();
	image_info_parse(s, "disk.img", &ii);
	err_clear();
	free(s);

	fuzz_file("info.json", a, alen);
	fuzz_file("map.json", b, blen);
	disk = xasprintf("%s/disk.img", fuzz_dir());
	br = blockread_open(disk, "qcow2");
	if (br) {
		uint64_t off = 0, next;
		char buf[512];
		int i;

		for (i = 0; i < 4 && off < blockread_size(br); i++) {
			if (blockread_next_data(br, off, &next) < 0)
				break;
			if (next >= blockread_size(br))
				break;
			blockread_read(br, next, buf, sizeof(buf) <= blockread_size(br) - next
						      ? sizeof(buf) : (size_t)(blockread_size(br) - next));
			off = next + sizeof(buf);
		}
		blockread_close(br);
	}
	err_clear();
	free(disk);
	return 0;
}
