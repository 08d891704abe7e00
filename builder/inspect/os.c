/* The operating system: what it is, its kernels, the default boot entry
 * (read from the boot loader's own configuration), the boot modes it can
 * do, and whether its kernel command line has a serial console. */
#include <guestfs.h>
#include <jansson.h>

#include "internal.h"
#include "error.h"
#include "util.h"

/* Longest configuration line considered. */
#define LINE_MAX_LEN 4096

static void mount_warn(void *opaque, const char *mp, const char *dev, const char *error)
{
	report_add(opaque, CHECK_WARN, "os.mount", dev, "cannot mount %s read-only: %s", mp, error);
}

/* First word of s (lower-cased copy in w), rest after blanks in *rest. */
static void split_word(char *s, char *w, size_t cap, char **rest)
{
	size_t n = 0;

	s = str_trim(s);
	while (*s && *s != ' ' && *s != '\t' && *s != '=' && n + 1 < cap) {
		w[n++] = (char)((*s >= 'A' && *s <= 'Z') ? *s + 32 : *s);
		s++;
	}
	w[n] = '\0';
	while (*s == ' ' || *s == '\t' || *s == '=')
		s++;
	*rest = s;
}

static void set_entry(struct inspect_ctx *c, const char *loader, const char *file,
		      const char *kernel, const char *initrd, const char *cmdline, int line)
{
	free(c->bootloader);
	free(c->bootloader_file);
	free(c->kernel_path);
	free(c->initrd_path);
	free(c->cmdline);
	free(c->cmdline_evidence);
	c->bootloader = xstrdup(loader);
	c->bootloader_file = xstrdup(file);
	c->kernel_path = kernel ? xstrdup(kernel) : NULL;
	c->initrd_path = initrd ? xstrdup(initrd) : NULL;
	c->cmdline = xstrdup(cmdline ? cmdline : "");
	c->cmdline_evidence = xasprintf("%s:%d", file, line);
}

/* extlinux/syslinux: DEFAULT names a LABEL; LINUX/KERNEL, INITRD, APPEND. */
static bool extlinux_text(struct inspect_ctx *c, const char *file, const char *text)
{
	char line[LINE_MAX_LEN], w[32], *rest;
	char def[256] = "", label[256] = "", kernel[1024] = "", initrd[1024] = "", append[LINE_MAX_LEN] = "";
	char fk[1024] = "", fi[1024] = "", fa[LINE_MAX_LEN] = "";
	const char *p;
	int ln = 0, append_ln = 0, f_ln = 0;
	bool found = false, have_first = false;

	/* Two passes would be simpler to read; one pass keeps the label whose
	 * name matches DEFAULT, else the first label. */
	p = text;
	while (next_line(&p, line, sizeof(line))) {
		ln++;
		split_word(line, w, sizeof(w), &rest);
		if (strcmp(w, "default") == 0) {
			snprintf(def, sizeof(def), "%s", rest);
		} else if (strcmp(w, "label") == 0) {
			if (label[0] && !have_first) {
				snprintf(fk, sizeof(fk), "%s", kernel);
				snprintf(fi, sizeof(fi), "%s", initrd);
				snprintf(fa, sizeof(fa), "%s", append);
				f_ln = append_ln;
				have_first = true;
			}
			if (label[0] && def[0] && strcmp(label, def) == 0) {
				found = true;
				break;
			}
			snprintf(label, sizeof(label), "%s", rest);
			kernel[0] = initrd[0] = append[0] = '\0';
			append_ln = ln;
		} else if (strcmp(w, "linux") == 0 || strcmp(w, "kernel") == 0) {
			snprintf(kernel, sizeof(kernel), "%s", rest);
		} else if (strcmp(w, "initrd") == 0) {
			snprintf(initrd, sizeof(initrd), "%s", rest);
		} else if (strcmp(w, "append") == 0) {
			snprintf(append, sizeof(append), "%s", rest);
			append_ln = ln;
		}
	}
	if (label[0] && def[0] && strcmp(label, def) == 0)
		found = true;
	if (!found && have_first) {
		snprintf(kernel, sizeof(kernel), "%s", fk);
		snprintf(initrd, sizeof(initrd), "%s", fi);
		snprintf(append, sizeof(append), "%s", fa);
		append_ln = f_ln;
		found = true;
	} else if (!found && kernel[0]) {
		found = true;
	}
	if (found) {
		/* initrd= inside APPEND is the older spelling. */
		char *ir = strstr(append, "initrd=");

		if (!initrd[0] && ir) {
			size_t k = strcspn(ir + 7, " \t,");
			snprintf(initrd, sizeof(initrd), "%.*s", (int)k, ir + 7);
		}
		set_entry(c, "extlinux", file, kernel[0] ? kernel : NULL,
			  initrd[0] ? initrd : NULL, append, append_ln);
	}
	return found;
}

static bool parse_extlinux(struct inspect_ctx *c, const char *file)
{
	char *text = guest_read(c, file, NULL, NULL);
	bool found = text && extlinux_text(c, file, text);

	free(text);
	return found;
}

/* GRUB 2 grub.cfg (generated): the entry numbered by `set default=N`
 * (0 when it is a title or saved), its linux/initrd lines. GRUB legacy
 * menu.lst: default N, title, kernel, initrd. */
static bool grub_text(struct inspect_ctx *c, const char *file, const char *text, bool legacy)
{
	char line[LINE_MAX_LEN], w[32], *rest;
	const char *p;
	int ln = 0, want = 0, entry = -1;
	bool found = false, blscfg = false;
	char kernel[1024] = "", initrd[1024] = "", args[LINE_MAX_LEN] = "";
	int kln = 0;

	p = text;
	while (next_line(&p, line, sizeof(line))) {
		char *t = str_trim(line);

		if (!legacy && str_startswith(t, "set default=")) {
			const char *v = t + 12;
			int64_t n;
			char num[32];
			size_t k = strcspn(v, " \t");

			if (*v == '"' || *v == '\'')
				v++, k = strcspn(v, "\"'");
			snprintf(num, sizeof(num), "%.*s", (int)k, v);
			if (parse_i64(num, 0, 1000, &n) == 0)
				want = (int)n;
		}
	}
	p = text;
	while (next_line(&p, line, sizeof(line))) {
		ln++;
		split_word(line, w, sizeof(w), &rest);
		if (legacy && strcmp(w, "default") == 0) {
			int64_t n;

			if (parse_i64(rest, 0, 1000, &n) == 0)
				want = (int)n;
		} else if (strcmp(w, legacy ? "title" : "menuentry") == 0) {
			entry++;
		} else if (!legacy && strcmp(w, "blscfg") == 0) {
			blscfg = true;
		} else if (entry == want && !kernel[0] &&
			   (strcmp(w, legacy ? "kernel" : "linux") == 0 ||
			    (!legacy && (strcmp(w, "linux16") == 0 || strcmp(w, "linuxefi") == 0)))) {
			size_t k = strcspn(rest, " \t");

			snprintf(kernel, sizeof(kernel), "%.*s", (int)k, rest);
			rest += k;
			while (*rest == ' ' || *rest == '\t')
				rest++;
			snprintf(args, sizeof(args), "%s", rest);
			kln = ln;
			found = true;
		} else if (entry == want && !initrd[0] &&
			   (strcmp(w, "initrd") == 0 || strcmp(w, "initrd16") == 0 ||
			    strcmp(w, "initrdefi") == 0)) {
			size_t k = strcspn(rest, " \t");

			snprintf(initrd, sizeof(initrd), "%.*s", (int)k, rest);
		}
	}
	if (found)
		set_entry(c, legacy ? "grub-legacy" : "grub2", file, kernel,
			  initrd[0] ? initrd : NULL, args, kln);
	else if (blscfg)	/* the entries live in /boot/loader/entries */
		set_entry(c, "grub2", file, NULL, NULL, NULL, 0);
	return found;
}

static bool parse_grub(struct inspect_ctx *c, const char *file, bool legacy)
{
	char *text = guest_read(c, file, NULL, NULL);
	bool found = text && grub_text(c, file, text, legacy);

	free(text);
	return found;
}

static bool bls_text(struct inspect_ctx *c, const char *file, const char *text)
{
	char line[LINE_MAX_LEN], w[32], *rest;
	char kernel[1024] = "", initrd[1024] = "", opts[LINE_MAX_LEN] = "";
	const char *p;
	int ln = 0, oln = 0;
	bool grub = c->bootloader && strcmp(c->bootloader, "grub2") == 0;

	p = text;
	while (next_line(&p, line, sizeof(line))) {
		ln++;
		split_word(line, w, sizeof(w), &rest);
		if (strcmp(w, "linux") == 0)
			snprintf(kernel, sizeof(kernel), "%s", rest);
		else if (strcmp(w, "initrd") == 0 && !initrd[0])
			snprintf(initrd, sizeof(initrd), "%s", rest);
		else if (strcmp(w, "options") == 0) {
			snprintf(opts, sizeof(opts), "%s", rest);
			oln = ln;
		}
	}
	set_entry(c, grub ? "grub2" : "bls", file, kernel[0] ? kernel : NULL,
		  initrd[0] ? initrd : NULL, opts, oln ? oln : 1);
	return kernel[0] != '\0';
}

/* Boot Loader Specification entries: the highest-sorting entry is the
 * newest kernel (what grub2's blscfg and systemd-boot default to). */
static bool parse_bls(struct inspect_ctx *c)
{
	char **v = guest_glob(c, "/boot/loader/entries/*.conf");
	char *text;
	size_t n = 0;
	bool found;

	while (v[n])
		n++;
	if (n == 0) {
		strv_free(v);
		return false;
	}
	/* glob_expand sorts: the last is the newest */
	text = guest_read(c, v[n - 1], NULL, NULL);
	found = text && bls_text(c, v[n - 1], text);
	free(text);
	strv_free(v);
	return found;
}

bool inspect_bootcfg_text(struct inspect_ctx *c, const char *kind, const char *file,
			  const char *text)
{
	if (strcmp(kind, "extlinux") == 0)
		return extlinux_text(c, file, text);
	if (strcmp(kind, "grub2") == 0 || strcmp(kind, "grub-legacy") == 0)
		return grub_text(c, file, text, strcmp(kind, "grub-legacy") == 0);
	return bls_text(c, file, text);
}

/* A kernel path as the boot loader sees it may be relative to a separate
 * /boot filesystem: find it in the mounted tree. */
static char *resolve_boot_path(struct inspect_ctx *c, const char *path)
{
	char *alt;

	if (!path || path[0] != '/')
		return path ? xasprintf("/boot/%s", path) : NULL;
	if (guest_exists(c, path))
		return xstrdup(path);
	alt = xasprintf("/boot%s", path);
	if (guest_exists(c, alt))
		return alt;
	free(alt);
	return xstrdup(path);
}

static char *version_from_kernel(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	if (str_startswith(b, "vmlinuz-"))
		return xstrdup(b + 8);
	if (str_startswith(b, "vmlinux-"))
		return xstrdup(b + 8);
	return NULL;
}

static void find_boot_entry(struct inspect_ctx *c, char **kernels)
{
	static const char *const ext[] = { "/boot/extlinux/extlinux.conf", "/extlinux.conf",
					   "/boot/extlinux.conf", "/boot/syslinux/syslinux.cfg",
					   "/syslinux.cfg" };
	static const char *const grub[] = { "/boot/grub/grub.cfg", "/boot/grub2/grub.cfg" };
	bool ok = false;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(grub) && !ok; i++)
		ok = parse_grub(c, grub[i], false);
	if (!ok && c->bootloader)	/* grub.cfg with blscfg */
		ok = parse_bls(c);
	if (!ok)
		ok = parse_grub(c, "/boot/grub/menu.lst", true);
	for (i = 0; i < ARRAY_SIZE(ext) && !ok; i++)
		ok = parse_extlinux(c, ext[i]);
	if (!ok)
		ok = parse_bls(c);	/* systemd-boot */

	if (ok && c->kernel_path) {
		char *k = resolve_boot_path(c, c->kernel_path), *ir;

		free(c->kernel_path);
		c->kernel_path = k;
		ir = resolve_boot_path(c, c->initrd_path);
		free(c->initrd_path);
		c->initrd_path = ir;
		c->kernel_version = version_from_kernel(c->kernel_path);
		if (!guest_is_file(c, c->kernel_path))
			report_add(c, CHECK_FAIL, "boot.default-kernel", c->cmdline_evidence,
				   "the default entry's kernel %s does not exist", c->kernel_path);
		else
			report_add(c, CHECK_PASS, "boot.default-kernel", c->cmdline_evidence,
				   "%s boots %s", c->bootloader, c->kernel_path);
		return;
	}
	if (kernels[0]) {	/* no loader config: assume the newest kernel */
		size_t n = 0;

		while (kernels[n])
			n++;
		c->kernel_path = xstrdup(kernels[n - 1]);
		c->kernel_version = version_from_kernel(c->kernel_path);
		c->initrd_path = c->kernel_version ?
			xasprintf("/boot/initrd.img-%s", c->kernel_version) : NULL;
		if (c->initrd_path && !guest_exists(c, c->initrd_path)) {
			free(c->initrd_path);
			c->initrd_path = xasprintf("/boot/initramfs-%s.img", c->kernel_version);
		}
	}
	report_add(c, CHECK_FAIL, "boot.default-kernel", NULL,
		   "no boot loader configuration found (extlinux, GRUB, BLS)%s%s",
		   c->kernel_path ? "; assuming the newest kernel " : "",
		   c->kernel_path ? c->kernel_path : "");
}

/* BIOS needs boot code in the MBR and a loader's files; UEFI needs an ESP
 * with the fallback loader, which is what EC2's firmware boots. */
static void check_boot_modes(struct inspect_ctx *c)
{
	static const char *const bios_files[] = {
		"/boot/extlinux/ldlinux.sys", "/boot/syslinux/ldlinux.sys", "/ldlinux.sys",
		"/boot/extlinux/ldlinux.c32", "/boot/grub/i386-pc", "/boot/grub2/i386-pc",
		"/boot/grub/stage2",
	};
	const char *bios_file = NULL, *req = inspect_boot_name(c->opts->boot);
	char bios_why[256], uefi_why[256];
	bool bios, uefi;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bios_files) && !bios_file; i++)
		if (guest_exists(c, bios_files[i]))
			bios_file = bios_files[i];
	bios = c->mbr_code && bios_file &&
	       (!c->parttype || strcmp(c->parttype, "gpt") != 0 || c->bios_boot_part ||
		strstr(bios_file, "linux"));
	uefi = c->esp && c->esp_fallback;
	if (bios)
		snprintf(bios_why, sizeof(bios_why), "BIOS: yes (boot code in the MBR, %s)", bios_file);
	else if (!c->mbr_code)
		snprintf(bios_why, sizeof(bios_why), "BIOS: no (no boot code in the MBR)");
	else if (!bios_file)
		snprintf(bios_why, sizeof(bios_why), "BIOS: no (no BIOS boot loader files)");
	else
		snprintf(bios_why, sizeof(bios_why), "BIOS: no (GPT without a BIOS boot partition)");
	if (uefi)
		snprintf(uefi_why, sizeof(uefi_why), "UEFI: yes (%s has EFI/BOOT/BOOTX64.EFI)", c->esp);
	else if (c->esp)
		snprintf(uefi_why, sizeof(uefi_why),
			 "UEFI: no (ESP %s has no EFI/BOOT/BOOTX64.EFI fallback loader)", c->esp);
	else
		snprintf(uefi_why, sizeof(uefi_why), "UEFI: no (no EFI system partition)");
	json_object_set_new(c->rep->facts, "boot_modes",
			    json_pack("{s:b, s:b}", "bios", bios, "uefi", uefi));

	switch (c->opts->boot) {
	case INSPECT_BOOT_BIOS:
		report_add(c, bios ? CHECK_PASS : CHECK_FAIL, "boot.mode", bios_file,
			   "%s asked: %s; %s", req, bios_why, uefi_why);
		break;
	case INSPECT_BOOT_UEFI:
		report_add(c, uefi ? CHECK_PASS : CHECK_FAIL, "boot.mode", c->esp,
			   "%s asked: %s; %s", req, uefi_why, bios_why);
		break;
	case INSPECT_BOOT_ANY:
	default:
		report_add(c, bios || uefi ? CHECK_PASS : CHECK_FAIL, "boot.mode", NULL,
			   "%s; %s", bios_why, uefi_why);
		break;
	}
}

static bool has_serial_console(const char *cmdline)
{
	const char *p = cmdline;

	while ((p = strstr(p, "console=")) != NULL) {
		if ((p == cmdline || p[-1] == ' ' || p[-1] == '\t') &&
		    str_startswith(p + 8, "ttyS"))
			return true;
		p += 8;
	}
	return false;
}

int inspect_os(struct inspect_ctx *c)
{
	struct appliance_os *os = &c->os;
	json_t *facts = c->rep->facts, *jk;
	char **kernels = NULL, *s;
	size_t i;

	if (appliance_find_os(c->g, os) < 0)
		return -1;
	json_object_set_new(facts, "type", json_string(os->type));
	if (os->nroots == 0) {
		if (strcmp(os->type, "unknown") != 0)
			report_add(c, CHECK_FAIL, "os.detected", NULL, "%s: only Linux is checked",
				   os->type);
		else
			report_add(c, CHECK_FAIL, "os.detected", NULL,
				   "no operating system found on the disk");
		return 0;
	}
	if (appliance_mount_os(c->g, os, true, mount_warn, c) < 0)
		return -1;
	c->root = os->root;
	for (i = 0; i < os->nunresolved; i++)
		report_add(c, CHECK_WARN, "os.mount", "/etc/fstab",
			   "%s: no filesystem on the disk is %s", os->unresolved[2 * i],
			   os->unresolved[2 * i + 1]);
	json_object_set_new(facts, "distro", json_string(os->distro));
	json_object_set_new(facts, "version", json_sprintf("%d.%d", os->major, os->minor));
	json_object_set_new(facts, "arch", json_string(os->arch));
	json_object_set_new(facts, "product", json_string(os->product));
	json_object_set_new(facts, "root", json_string(c->root));

	if (os->nroots > 1)
		report_add(c, CHECK_FAIL, "os.detected", c->root,
			   "%d operating systems on one disk (dual boot): the first is checked",
			   os->nroots);
	else
		report_add(c, CHECK_PASS, "os.detected", c->root, "%s, version %d.%d, %s",
			   os->distro, os->major, os->minor, os->arch);
	if (strcmp(os->arch, "x86_64") != 0 && strcmp(os->arch, "aarch64") != 0)
		report_add(c, CHECK_FAIL, "os.arch", NULL,
			   "%s: EC2 runs x86_64 and arm64 (aarch64) only", os->arch);

	s = guestfs_vfs_type(c->g, c->root);
	json_object_set_new(facts, "root_fs", json_string(s ? s : "unknown"));
	if (s && (strcmp(s, "ext4") == 0 || strcmp(s, "ext3") == 0 || strcmp(s, "ext2") == 0 ||
		  strcmp(s, "xfs") == 0 || strcmp(s, "btrfs") == 0))
		report_add(c, CHECK_PASS, "disk.root-fs", c->root, "%s", s);
	else
		report_add(c, CHECK_WARN, "disk.root-fs", c->root,
			   "%s: not one of ext2/3/4, XFS, Btrfs", s ? s : "unknown");
	free(s);

	kernels = guest_glob(c, "/boot/vmlinuz-*");
	jk = json_array();
	for (i = 0; kernels[i]; i++)
		json_array_append_new(jk, json_string(kernels[i]));
	json_object_set_new(facts, "kernels", jk);
	if (!kernels[0])
		report_add(c, CHECK_FAIL, "os.kernels", "/boot", "no kernel (/boot/vmlinuz-*) installed");
	else
		report_add(c, CHECK_PASS, "os.kernels", "/boot", "%zu kernel%s installed", i,
			   i == 1 ? "" : "s");

	find_boot_entry(c, kernels);
	strv_free(kernels);
	json_object_set_new(facts, "bootloader", c->bootloader ? json_string(c->bootloader) : json_null());
	json_object_set_new(facts, "default_kernel", c->kernel_path ? json_string(c->kernel_path) : json_null());
	json_object_set_new(facts, "kernel_version", c->kernel_version ? json_string(c->kernel_version) : json_null());
	json_object_set_new(facts, "initrd", c->initrd_path ? json_string(c->initrd_path) : json_null());
	json_object_set_new(facts, "cmdline", c->cmdline ? json_string(c->cmdline) : json_null());
	check_boot_modes(c);

	if (!c->cmdline)
		report_add(c, CHECK_WARN, "boot.serial-console", NULL,
			   "no kernel command line found to check");
	else if (has_serial_console(c->cmdline))
		report_add(c, CHECK_PASS, "boot.serial-console", c->cmdline_evidence,
			   "console=ttyS* on the kernel command line");
	else
		report_add(c, CHECK_WARN, "boot.serial-console", c->cmdline_evidence,
			   "no console=ttyS0 on the kernel command line: the EC2 serial console and "
			   "get-console-output will show nothing");
	return 0;
}
