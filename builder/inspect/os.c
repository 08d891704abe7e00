/* The operating system: what it is, its kernels, the default boot entry
 * (read from the boot loader's own configuration), the boot modes it can
 * do, and whether its kernel command line has a serial console. */
#include <guestfs.h>
#include <jansson.h>

#include "internal.h"
#include "kver.h"
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

/* A path the boot loader names, resolved in the mounted tree: relative
 * paths are under /boot; an absolute one may be relative to a separate /boot
 * filesystem. *named gets the path as found, the return value the file it
 * reaches through symlinks (NULL: why says why). */
static char *resolve_boot_path(struct inspect_ctx *c, const char *path, char **named,
			       char *why, size_t cap)
{
	char *p, *alt, *file, altwhy[512];

	p = path[0] == '/' ? xstrdup(path) : xasprintf("/boot/%s", path);
	file = guest_resolve(c, p, why, cap);
	/* Only when the path is not there at all (a dangling link is an answer). */
	if (!file && path[0] == '/' && !str_startswith(path, "/boot/") && !guest_lexists(c, p)) {
		alt = xasprintf("/boot%s", path);
		file = guest_resolve(c, alt, altwhy, sizeof(altwhy));
		if (file) {
			free(p);
			p = alt;
		} else {
			free(alt);
		}
	}
	*named = p;
	return file;
}

/* "vmlinuz-VERSION" (or vmlinux-): the version, else NULL. */
static char *version_from_name(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	if ((str_startswith(b, "vmlinuz-") || str_startswith(b, "vmlinux-")) && b[8])
		return xstrdup(b + 8);
	return NULL;
}

static bool modules_dir_exists(void *opaque, const char *release)
{
	struct inspect_ctx *c = opaque;
	char *d = xasprintf("/lib/modules/%s", release);
	bool yes = guest_is_dir(c, d);

	free(d);
	return yes;
}

/* The default kernel's version: from the name of the file reached, else of
 * the path the loader names, else from the kernel image itself (x86 setup
 * header; the "Linux version" banner, compressed or not), read through a
 * bounded private copy. Sets kernel_version and its source, or the reason
 * it stays unknown. */
static void find_kernel_version(struct inspect_ctx *c)
{
	struct guest_map m;
	char v[KVER_MAX];
	const char *src;

	if (!c->kernel_file) {
		c->kernel_version_why = xstrdup("the default kernel cannot be reached");
		return;
	}
	c->kernel_version = version_from_name(c->kernel_file);
	if (!c->kernel_version)
		c->kernel_version = version_from_name(c->kernel_path);
	if (c->kernel_version) {
		c->kernel_version_source = "file name";
		return;
	}
	if (guest_map(c, c->kernel_file, KERNEL_MAX, &m) < 0) {
		c->kernel_version_why = xasprintf("no version in its name; %s", err_msg());
		err_clear();
		return;
	}
	if (kver_from_image(m.data, m.len, modules_dir_exists, c, v, sizeof(v), &src) == 0) {
		c->kernel_version = xstrdup(v);
		c->kernel_version_source = src;
	} else {
		c->kernel_version_why = xasprintf("no version in its name, and %s has no x86 setup "
						  "header version or 'Linux version' banner",
						  c->kernel_file);
	}
	guest_unmap(&m);
}

/* Resolve the entry's kernel and initramfs, find the version, report. */
static void check_default_kernel(struct inspect_ctx *c)
{
	char why[512], *named = NULL, *mods;
	bool have_mods;

	c->kernel_file = resolve_boot_path(c, c->kernel_path, &named, why, sizeof(why));
	free(c->kernel_path);
	c->kernel_path = named;
	if (c->initrd_path) {
		char iwhy[512], *inamed = NULL, *ifile;

		ifile = resolve_boot_path(c, c->initrd_path, &inamed, iwhy, sizeof(iwhy));
		free(c->initrd_path);
		c->initrd_path = ifile;
		c->initrd_named = inamed;
		if (!ifile)
			c->initrd_why = xstrdup(iwhy);
	}
	if (!c->kernel_file) {
		report_add(c, CHECK_FAIL, "boot.default-kernel", c->cmdline_evidence,
			   "the default entry's kernel %s cannot be reached: %s", c->kernel_path, why);
		c->kernel_version_why = xasprintf("%s cannot be reached", c->kernel_path);
		return;
	}
	if (!guest_is_file(c, c->kernel_file)) {	/* resolved: no link left */
		report_add(c, CHECK_FAIL, "boot.default-kernel", c->cmdline_evidence,
			   "the default entry's kernel %s%s%s is not a regular file", c->kernel_path,
			   strcmp(c->kernel_path, c->kernel_file) ? " -> " : "",
			   strcmp(c->kernel_path, c->kernel_file) ? c->kernel_file : "");
		c->kernel_version_why = xasprintf("%s is not a regular file", c->kernel_file);
		return;
	}
	find_kernel_version(c);
	mods = c->kernel_version ? xasprintf("/lib/modules/%s", c->kernel_version) : NULL;
	have_mods = mods && guest_is_dir(c, mods);
	json_object_set_new(c->rep->facts, "kernel_modules_dir",
			    mods ? json_boolean(have_mods) : json_null());
	report_add(c, CHECK_PASS, "boot.default-kernel", c->cmdline_evidence,
		   "%s boots %s%s%s, version %s%s%s%s", c->bootloader, c->kernel_path,
		   strcmp(c->kernel_path, c->kernel_file) ? " -> " : "",
		   strcmp(c->kernel_path, c->kernel_file) ? c->kernel_file : "",
		   c->kernel_version ? c->kernel_version : "unknown",
		   c->kernel_version ? " (from its " : "",
		   c->kernel_version ? c->kernel_version_source : "",
		   !c->kernel_version ? "" : have_mods ? ")" : "; no /lib/modules for it)");
	free(mods);
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
		check_default_kernel(c);
		return;
	}
	if (kernels[0]) {	/* no loader config: assume the newest kernel */
		size_t n = 0;
		char why[512];

		while (kernels[n])
			n++;
		c->kernel_path = xstrdup(kernels[n - 1]);
		c->kernel_file = guest_resolve(c, c->kernel_path, why, sizeof(why));
		c->kernel_version = version_from_name(c->kernel_path);
		c->kernel_version_source = "file name";
		c->initrd_path = c->kernel_version ?
			xasprintf("/boot/initrd.img-%s", c->kernel_version) : NULL;
		if (c->initrd_path && !guest_exists(c, c->initrd_path)) {
			free(c->initrd_path);
			c->initrd_path = xasprintf("/boot/initramfs-%s.img", c->kernel_version);
		}
		if (c->initrd_path) {
			char *f = guest_resolve(c, c->initrd_path, why, sizeof(why));

			c->initrd_named = c->initrd_path;
			c->initrd_path = f;
			if (!f)
				c->initrd_why = xstrdup(why);
		}
	}
	if (!c->kernel_version)
		c->kernel_version_why = xstrdup("no boot loader configuration names a kernel");
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
	/* The OS's architecture decides which EFI loader boots it, and
	 * whether BIOS exists at all (arm64: UEFI only). */
	const struct arch *a = arch_find(c->os.arch) ? arch_find(c->os.arch) : arch_get(ARCH_AUTO);
	unsigned bit = 0;
	char bios_why[256], uefi_why[256];
	bool bios, uefi;
	size_t i;

	for (i = 0; arch_table[i]; i++)
		if (arch_table[i] == a)
			bit = 1u << i;
	for (i = 0; i < ARRAY_SIZE(bios_files) && !bios_file; i++)
		if (guest_exists(c, bios_files[i]))
			bios_file = bios_files[i];
	bios = !a->uefi_only && c->mbr_code && bios_file &&
	       (!c->parttype || strcmp(c->parttype, "gpt") != 0 || c->bios_boot_part ||
		strstr(bios_file, "linux"));
	uefi = c->esp && (c->esp_loaders & bit);
	if (a->uefi_only)
		snprintf(bios_why, sizeof(bios_why), "BIOS: no (%s boots UEFI only)", a->name);
	else if (bios)
		snprintf(bios_why, sizeof(bios_why), "BIOS: yes (boot code in the MBR, %s)", bios_file);
	else if (!c->mbr_code)
		snprintf(bios_why, sizeof(bios_why), "BIOS: no (no boot code in the MBR)");
	else if (!bios_file)
		snprintf(bios_why, sizeof(bios_why), "BIOS: no (no BIOS boot loader files)");
	else
		snprintf(bios_why, sizeof(bios_why), "BIOS: no (GPT without a BIOS boot partition)");
	if (uefi)
		snprintf(uefi_why, sizeof(uefi_why), "UEFI: yes (%s has EFI/BOOT/%s)", c->esp,
			 a->efi_loader);
	else if (c->esp)
		snprintf(uefi_why, sizeof(uefi_why),
			 "UEFI: no (ESP %s has no EFI/BOOT/%s fallback loader for %s)", c->esp,
			 a->efi_loader, a->name);
	else
		snprintf(uefi_why, sizeof(uefi_why), "UEFI: no (no EFI system partition)");
	json_object_set_new(c->rep->facts, "boot_modes",
			    json_pack("{s:b, s:b}", "bios", bios, "uefi", uefi));
	/* What RegisterImage takes for this disk (publish reads it): the boot
	 * mode only when one alone boots it (both: EC2's default). */
	json_object_set_new(c->rep->facts, "ec2_architecture", json_string(a->ec2));
	json_object_set_new(c->rep->facts, "ec2_boot_mode",
			    a->uefi_only || (uefi && !bios) ? json_string("uefi") :
			    bios && !uefi ? json_string("legacy-bios") : json_null());

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
	const struct appliance_fs *rootfs;
	char **kernels = NULL;
	const char *s;
	size_t i;

	/* appliance_find_os() ran before the disk layout (inspect.c). */
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
	/* The architectures amiforge runs guests of (drivers/hypervisor/arch.c)
	 * are EC2's. */
	if (!arch_find(os->arch))
		report_add(c, CHECK_FAIL, "os.arch", NULL,
			   "%s: EC2 runs x86_64 and arm64 (aarch64) only", os->arch);

	rootfs = appliance_fs_find(os, c->root);
	s = rootfs ? rootfs->type : NULL;
	json_object_set_new(facts, "root_fs", json_string(s ? s : "unknown"));
	if (s && (strcmp(s, "ext4") == 0 || strcmp(s, "ext3") == 0 || strcmp(s, "ext2") == 0 ||
		  strcmp(s, "xfs") == 0 || strcmp(s, "btrfs") == 0))
		report_add(c, CHECK_PASS, "disk.root-fs", c->root, "%s", s);
	else
		report_add(c, CHECK_WARN, "disk.root-fs", c->root,
			   "%s: not one of ext2/3/4, XFS, Btrfs", s ? s : "unknown");

	kernels = guest_glob(c, "/boot/vmlinuz-*");
	jk = json_array();
	for (i = 0; kernels[i]; i++)
		json_array_append_new(jk, json_string(kernels[i]));
	json_object_set_new(facts, "kernels", jk);
	find_boot_entry(c, kernels);
	if (kernels[0])
		report_add(c, CHECK_PASS, "os.kernels", "/boot", "%zu kernel%s installed", i,
			   i == 1 ? "" : "s");
	else if (c->kernel_file && guest_is_file(c, c->kernel_file))
		report_add(c, CHECK_PASS, "os.kernels", c->kernel_file,
			   "no /boot/vmlinuz-*, but the default entry's kernel %s is installed",
			   c->kernel_file);
	else
		report_add(c, CHECK_FAIL, "os.kernels", "/boot", "no kernel (/boot/vmlinuz-*) installed");
	strv_free(kernels);
	json_object_set_new(facts, "bootloader", c->bootloader ? json_string(c->bootloader) : json_null());
	json_object_set_new(facts, "default_kernel", c->kernel_path ? json_string(c->kernel_path) : json_null());
	json_object_set_new(facts, "default_kernel_file", c->kernel_file ? json_string(c->kernel_file) : json_null());
	json_object_set_new(facts, "kernel_version", c->kernel_version ? json_string(c->kernel_version) : json_null());
	json_object_set_new(facts, "kernel_version_source", c->kernel_version ?
			    json_string(c->kernel_version_source) : json_null());
	json_object_set_new(facts, "initrd", c->initrd_named ? json_string(c->initrd_named) : json_null());
	json_object_set_new(facts, "initrd_file", c->initrd_path ? json_string(c->initrd_path) : json_null());
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
