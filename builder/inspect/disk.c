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
	char **devs = NULL, **parts = NULL, **lvs = NULL, *code = NULL;
	json_t *jparts = json_array();
	size_t i, n, len = 0;
	const char *dev;

	devs = guestfs_list_devices(c->g);
	if (!devs || !devs[0]) {
		err_set("libguestfs: no disk: %s", guestfs_last_error(c->g));
		goto fail;
	}
	dev = devs[0];
	c->parttype = guestfs_part_get_parttype(c->g, dev);	/* NULL: none */
	code = guestfs_pread_device(c->g, dev, 440, 0, &len);
	if (code)
		for (i = 0; i < len && !c->mbr_code; i++)
			c->mbr_code = code[i] != 0;
	parts = guestfs_list_partitions(c->g);
	if (!parts) {
		err_set("libguestfs: list partitions: %s", guestfs_last_error(c->g));
		goto fail;
	}
	for (n = 0; parts[n]; n++) {
		int num = guestfs_part_to_partnum(c->g, parts[n]);
		char *fs = guestfs_vfs_type(c->g, parts[n]);
		char *type = NULL;
		bool esp = false;

		if (c->parttype && strcmp(c->parttype, "gpt") == 0) {
			type = guestfs_part_get_gpt_type(c->g, dev, num);
			esp = type && strcasecmp(type, GPT_TYPE_ESP) == 0;
			if (type && strcasecmp(type, GPT_TYPE_BIOS_BOOT) == 0)
				c->bios_boot_part = true;
		} else if (c->parttype && strcmp(c->parttype, "msdos") == 0) {
			int id = guestfs_part_get_mbr_id(c->g, dev, num);

			if (id >= 0)
				type = xasprintf("0x%02x", id);
			esp = id == MBR_ID_ESP;
		}
		if (fs && strcmp(fs, "crypto_LUKS") == 0)
			c->encrypted = true;
		if (esp && !c->esp)
			c->esp = xstrdup(parts[n]);
		json_array_append_new(jparts, json_pack("{s:s, s:s?, s:s?, s:b}", "device", parts[n],
							"type", type, "fs", fs && *fs ? fs : NULL,
							"esp", esp));
		free(fs);
		free(type);
	}
	json_object_set_new(c->rep->facts, "partition_table",
			    c->parttype ? json_string(c->parttype) : json_null());
	json_object_set_new(c->rep->facts, "partitions", jparts);
	jparts = NULL;

	if (!c->parttype)
		report_add(c, CHECK_WARN, "disk.partition-table", dev,
			   "no partition table: a bare filesystem boots on neither BIOS nor UEFI");
	else if (strcmp(c->parttype, "msdos") == 0 && c->virtual_size > MBR_DISK_MAX)
		report_add(c, CHECK_FAIL, "disk.partition-table", dev,
			   "MBR, but the disk is %" PRIu64 " GiB: MBR addresses 2 TiB at most",
			   c->virtual_size >> 30);
	else
		report_add(c, CHECK_PASS, "disk.partition-table", dev, "%s, %zu partition%s",
			   strcmp(c->parttype, "msdos") == 0 ? "MBR" : "GPT", n, n == 1 ? "" : "s");

	lvs = guestfs_lvs(c->g);
	json_object_set_new(c->rep->facts, "lvm", json_boolean(lvs && lvs[0]));
	if (c->encrypted)
		report_add(c, CHECK_FAIL, "disk.encryption", NULL,
			   "a LUKS partition: an EC2 instance cannot type its passphrase at boot "
			   "(use EBS encryption instead)");
	if (c->esp)
		check_esp(c, c->esp);
	free(code);
	strv_free(devs);
	strv_free(parts);
	strv_free(lvs);
	return 0;

fail:
	json_decref(jparts);
	free(code);
	strv_free(devs);
	strv_free(parts);
	return -1;
}
