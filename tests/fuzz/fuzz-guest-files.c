/* libFuzzer target: the guest files `amiforge inspect` and the OS probe
 * read from a disk image (untrusted: the base image is anyone's). The first
 * byte selects the file: os-release (os_release_value), /etc/fstab (the
 * fstab.device-names check), extlinux.conf, grub.cfg, GRUB legacy menu.lst,
 * a BLS entry, a cloud-init YAML file (ydoc_load_string), or /etc/fstab as
 * the OS probe reads it to mount the guest (appliance_fstab_line). Nothing
 * may crash, hang or leak. */
#include "fuzz.h"
#include "builder/disk/appliance.h"
#include "builder/inspect/internal.h"
#include "builder/recipe/yaml.h"

static void ctx_release(struct inspect_ctx *c)
{
	free(c->bootloader);
	free(c->bootloader_file);
	free(c->kernel_path);
	free(c->kernel_version);
	free(c->initrd_path);
	free(c->cmdline);
	free(c->cmdline_evidence);
	inspect_report_free(c->rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "ID", "VERSION_ID", "PRETTY_NAME", "NAME" };
	static const char *const kinds[] = { "extlinux", "grub2", "grub-legacy", "bls" };
	struct inspect_ctx c;
	struct inspect_report *rep;
	char *text;
	unsigned sel;

	if (size == 0)
		return 0;
	sel = data[0] % 8;
	text = fuzz_str(data + 1, size - 1);
	memset(&c, 0, sizeof(c));
	rep = xcalloc(1, sizeof(*rep));
	rep->facts = json_object();
	c.rep = rep;
	if (sel == 0) {
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
			free(os_release_value(text, keys[i]));
	} else if (sel == 1) {
		inspect_fstab_text(&c, text);
	} else if (sel <= 5) {
		/* grub2 set first: a BLS entry then keeps "grub2" */
		if (sel == 5)
			c.bootloader = xstrdup("grub2");
		inspect_bootcfg_text(&c, kinds[sel - 2], "/boot/x.cfg", text);
	} else if (sel == 7) {
		char *save = NULL, *line;

		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			struct appliance_fstab_entry e;

			if (appliance_fstab_line(line, &e))
				free(appliance_subvol_option(e.opts));
		}
	} else {
		struct ydoc d;

		/* released whatever the outcome, as inspect does */
		ydoc_load_string(&d, "/etc/cloud/cloud.cfg", text, size - 1);
		ydoc_release(&d);
	}
	err_clear();
	ctx_release(&c);
	free(text);
	return 0;
}
