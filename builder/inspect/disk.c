/* Disk layout, before the OS is mounted: partition table, partitions,
 * LVM, encryption, the EFI system partition and its fallback loader. */
#include <guestfs.h>
#include <jansson.h>

#include "internal.h"
#include "error.h"
#include "util.h"

#define GPT_TYPE_ESP "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define GPT_TYPE_BIOS_BOOT "21686148-6453-6F6E-7465-6E6564454649"
#define MBR_ID_ESP 0xef
/* MBR addresses 2^32 sectors of 512 bytes. */
#define MBR_DISK_MAX (UINT64_C(2) << 40)

/* Mount the ESP alone at / in the appliance and look for the fallback
 * loaders the EC2 UEFI firmware boots: EFI/BOOT/BOOTX64.EFI, BOOTAA64.EFI
 * (any case; arch.h's efi_loader column). */
static void check_esp(struct inspect_ctx *c, const char *part)
{
	json_t *found = json_array();

	if (guestfs_mount_ro(c->g, part, "/") < 0) {
		json_decref(found);
		return;
	}
	for (size_t i = 0; arch_table[i]; i++) {
		char *want = xasprintf("/EFI/BOOT/%s", arch_table[i]->efi_loader);
		char *p = guestfs_case_sensitive_path(c->g, want);

		if (p && guest_is_file(c, p)) {
			c->esp_loaders |= 1u << i;
			json_array_append_new(found, json_string(want + 1));
		}
		free(p);
		free(want);
	}
	json_object_set_new(c->rep->facts, "esp_loaders", found);
	guestfs_umount_all(c->g);
}

int inspect_disk_layout(struct inspect_ctx *c)
{
	const struct appliance_os *os = &c->os;
	const struct appliance_fs *disk = NULL;
	const char *dev;
	json_t *jparts = json_array();
	char *code = NULL;
	size_t i, n = 0, len = 0;
	bool lvm = false;

	/* What appliance_find_os() listed (inspect.c runs it first): one
	 * listing and one blkid per device and partition for the whole
	 * inspection; the partition table and each partition's type are
	 * blkid's too (no parted, sfdisk or sgdisk run for them). */
	for (i = 0; i < os->nfs && !disk; i++)
		if (os->fs[i].kind == APPLIANCE_DEVICE)
			disk = &os->fs[i];
	if (!disk) {
		json_decref(jparts);
		return err_set("libguestfs: no disk");
	}
	dev = disk->dev;
	if (disk->pttype)
		c->parttype = xstrdup(strcmp(disk->pttype, "dos") == 0 ? "msdos" : disk->pttype);
	code = guestfs_pread_device(c->g, dev, 440, 0, &len);
	if (code)
		for (i = 0; i < len && !c->mbr_code; i++)
			c->mbr_code = code[i] != 0;
	for (i = 0; i < os->nfs; i++) {
		const struct appliance_fs *p = &os->fs[i];
		const char *fs = p->type, *type = p->part_type;
		bool esp = false;

		lvm |= p->kind == APPLIANCE_LV;
		if (p->kind != APPLIANCE_PARTITION)
			continue;
		n++;
		if (c->parttype && strcmp(c->parttype, "gpt") == 0) {
			esp = type && strcasecmp(type, GPT_TYPE_ESP) == 0;
			if (type && strcasecmp(type, GPT_TYPE_BIOS_BOOT) == 0)
				c->bios_boot_part = true;
		} else if (c->parttype && strcmp(c->parttype, "msdos") == 0) {
			esp = type && strtol(type, NULL, 16) == MBR_ID_ESP;
		}
		if (fs && strcmp(fs, "crypto_LUKS") == 0)
			c->encrypted = true;
		if (esp && !c->esp)
			c->esp = xstrdup(p->dev);
		json_array_append_new(jparts, json_pack("{s:s, s:s?, s:s?, s:b}", "device", p->dev,
							"type", type, "fs", fs && *fs ? fs : NULL,
							"esp", esp));
	}
	json_object_set_new(c->rep->facts, "partition_table",
			    c->parttype ? json_string(c->parttype) : json_null());
	json_object_set_new(c->rep->facts, "partitions", jparts);

	if (!c->parttype)
		report_add(c, CHECK_WARN, "disk.partition-table", dev,
			   "no partition table: a bare filesystem boots on neither BIOS nor UEFI");
	else if (strcmp(c->parttype, "msdos") == 0 && c->virtual_size > MBR_DISK_MAX)
		report_add(c, CHECK_FAIL, "disk.partition-table", dev,
			   "MBR, but the disk is %" PRIu64 " GiB: MBR addresses 2 TiB at most",
			   c->virtual_size >> 30);
	else
		report_add(c, CHECK_PASS, "disk.partition-table", dev, "%s, %zu partition%s",
			   strcmp(c->parttype, "msdos") == 0 ? "MBR" :
			   strcmp(c->parttype, "gpt") == 0 ? "GPT" : c->parttype, n,
			   n == 1 ? "" : "s");

	json_object_set_new(c->rep->facts, "lvm", json_boolean(lvm));
	if (c->encrypted)
		report_add(c, CHECK_FAIL, "disk.encryption", NULL,
			   "a LUKS partition: an EC2 instance cannot type its passphrase at boot "
			   "(use EBS encryption instead)");
	if (c->esp)
		check_esp(c, c->esp);
	free(code);
	return 0;
}
