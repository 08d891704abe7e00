/* `--for import-image`: the Linux rules VM Import's ImportImage applies
 * before it accepts a disk (ImportSnapshot and EBS direct apply none), as
 * the VM Import/Export User Guide documents them:
 *   docs.aws.amazon.com/vm-import/latest/userguide/prerequisites.html
 *   docs.aws.amazon.com/vm-import/latest/userguide/limitations-image-importing.html
 * 64-bit x86 only (ARM64 is not supported); a listed distribution with one
 * of its listed kernels; GRUB legacy or GRUB 2 as the boot loader; one root
 * filesystem of ext2/3/4, Btrfs, JFS or XFS; no dual boot, no encrypted
 * volumes; MBR boot volumes up to 2 TiB, GPT up to 16 TiB; free space on
 * the root for the drivers VM Import installs (250 MiB). */
#include <guestfs.h>
#include <jansson.h>

#include "internal.h"
#include "util.h"

#define TIB (UINT64_C(1) << 40)
#define IMPORT_MBR_MAX (2 * TIB)
#define IMPORT_GPT_MAX (16 * TIB)
#define IMPORT_ROOT_FREE_MIN (UINT64_C(250) << 20)

/* Supported distributions and kernel series (version prefix match). The
 * guide lists exact versions; a kernel is accepted when its version starts
 * with a listed series ("6.1.0-28-cloud-amd64" matches "6.1."). */
static const struct {
	const char *distro;   /* appliance_os.distro (libguestfs's names) */
	int major;
	const char *kernels;  /* space-separated series */
} supported[] = {
	{ "amazonlinux", 2, "4.14. 4.19. 5.4. 5.10." },
	{ "amazonlinux", 2023, "6.1." },
	{ "centos", 5, "2.6.18" },
	{ "centos", 6, "2.6.32" },
	{ "centos", 7, "3.10.0" },
	{ "centos", 8, "4.18.0" },
	{ "centos", 9, "5.14.0" },
	{ "debian", 6, "2.6.32" },
	{ "debian", 7, "3.2." },
	{ "debian", 10, "4.19." },
	{ "debian", 11, "5.10." },
	{ "debian", 12, "6.1." },
	{ "fedora", 18, "3.2.5 3.6." },
	{ "fedora", 19, "3.9.5" },
	{ "fedora", 20, "3.11.10" },
	{ "oraclelinux", 6, "2.6.32 2.6.39 3.8.13 4.1.12" },
	{ "oraclelinux", 7, "3.10.0 3.8.13 4.1.12 4.14.35 4.15. 5.4.17" },
	{ "rhel", 5, "2.6.18" },
	{ "rhel", 6, "2.6.32" },
	{ "rhel", 7, "3.10.0" },
	{ "rhel", 8, "4.18.0" },
	{ "rhel", 9, "5.14.0" },
	{ "sles", 11, "2.6.32 3.0." },
	{ "sles", 12, "3.12. 4.4. 4.12." },
	{ "sles", 15, "4.12. 5.3. 5.14." },
	{ "ubuntu", 12, "3.2. 3.5. 3.8." },
	{ "ubuntu", 13, "3.8. 3.11." },
	{ "ubuntu", 14, "3.13. 3.16. 3.19. 4.2. 4.4." },
	{ "ubuntu", 16, "4.4. 4.8. 4.10. 4.13. 4.15." },
	{ "ubuntu", 18, "4.15. 5.4." },
	{ "ubuntu", 20, "5.4. 5.8. 5.11. 5.13. 5.15." },
	{ "ubuntu", 22, "5.15. 6.2. 6.5. 6.8." },
};

static bool kernel_listed(const char *series, const char *kv)
{
	char tok[32];
	const char *p = series;

	while (*p) {
		size_t k = strcspn(p, " ");

		snprintf(tok, sizeof(tok), "%.*s", (int)k, p);
		if (str_startswith(kv, tok))
			return true;
		p += k;
		while (*p == ' ')
			p++;
	}
	return false;
}

int inspect_import_image(struct inspect_ctx *c)
{
	json_t *f = c->rep->facts;
	const char *distro = json_string_value(json_object_get(f, "distro"));
	const char *arch = json_string_value(json_object_get(f, "arch"));
	const char *rootfs = json_string_value(json_object_get(f, "root_fs"));
	const char *kv = c->kernel_version;
	int major = c->os.major;
	struct guestfs_statvfs *sv;
	bool distro_ok = false, kernel_ok = false, gpt;
	uint64_t limit;
	size_t i;

	if (!arch || strcmp(arch, "x86_64") != 0)
		report_add(c, CHECK_FAIL, "import-image.arch", NULL,
			   "%s: ImportImage takes 64-bit x86 Linux only", arch ? arch : "unknown");
	else
		report_add(c, CHECK_PASS, "import-image.arch", NULL, "x86_64");

	for (i = 0; i < ARRAY_SIZE(supported); i++) {
		if (!distro || strcmp(distro, supported[i].distro) != 0 || major != supported[i].major)
			continue;
		distro_ok = true;
		if (kv && kernel_listed(supported[i].kernels, kv))
			kernel_ok = true;
	}
	if (!distro_ok)
		report_add(c, CHECK_FAIL, "import-image.os", c->root,
			   "%s %d is not in VM Import's supported list (use ImportSnapshot)",
			   distro ? distro : "unknown", major);
	else if (!kernel_ok)
		report_add(c, CHECK_FAIL, "import-image.kernel", c->kernel_path,
			   "kernel %s is not one VM Import lists for %s %d (use ImportSnapshot)",
			   kv ? kv : "unknown", distro, major);
	else
		report_add(c, CHECK_PASS, "import-image.os", c->root,
			   "%s %d with kernel %s is supported", distro, major, kv);

	if (c->bootloader && (strcmp(c->bootloader, "grub2") == 0 ||
			      strcmp(c->bootloader, "grub-legacy") == 0))
		report_add(c, CHECK_PASS, "import-image.bootloader", c->bootloader_file,
			   "%s", c->bootloader);
	else
		report_add(c, CHECK_FAIL, "import-image.bootloader", c->bootloader_file,
			   "boot loader %s: ImportImage requires GRUB legacy or GRUB 2 "
			   "(use ImportSnapshot)", c->bootloader ? c->bootloader : "not found");

	if (c->os.nroots != 1)
		report_add(c, CHECK_FAIL, "import-image.root", NULL,
			   "%d root filesystems: ImportImage takes exactly one (no dual boot)", c->os.nroots);
	else if (!rootfs || (strcmp(rootfs, "ext2") && strcmp(rootfs, "ext3") &&
			     strcmp(rootfs, "ext4") && strcmp(rootfs, "btrfs") &&
			     strcmp(rootfs, "jfs") && strcmp(rootfs, "xfs")))
		report_add(c, CHECK_FAIL, "import-image.root", c->root,
			   "root filesystem %s: ImportImage takes ext2/3/4, Btrfs, JFS or XFS",
			   rootfs ? rootfs : "unknown");
	else
		report_add(c, CHECK_PASS, "import-image.root", c->root, "one root filesystem, %s",
			   rootfs);

	gpt = c->parttype && strcmp(c->parttype, "gpt") == 0;
	limit = gpt ? IMPORT_GPT_MAX : IMPORT_MBR_MAX;
	if (c->virtual_size > limit)
		report_add(c, CHECK_FAIL, "import-image.size", NULL,
			   "%" PRIu64 " GiB: ImportImage takes %s boot volumes up to %d TiB",
			   c->virtual_size >> 30, gpt ? "GPT" : "MBR", gpt ? 16 : 2);
	else
		report_add(c, CHECK_PASS, "import-image.size", NULL, "%" PRIu64 " GiB, %s limit %d TiB",
			   c->virtual_size >> 30, gpt ? "GPT" : "MBR", gpt ? 16 : 2);
	if (c->encrypted)
		report_add(c, CHECK_FAIL, "import-image.encryption", NULL,
			   "encrypted volumes cannot be imported");

	sv = guestfs_statvfs(c->g, "/");
	if (sv) {
		uint64_t avail = (uint64_t)sv->bavail * (uint64_t)sv->bsize;

		report_add(c, avail >= IMPORT_ROOT_FREE_MIN ? CHECK_PASS : CHECK_FAIL,
			   "import-image.free-space", "/",
			   "%" PRIu64 " MiB free on the root filesystem (VM Import needs 250 MiB "
			   "for drivers)", avail >> 20);
		guestfs_free_statvfs(sv);
	}
	return 0;
}
