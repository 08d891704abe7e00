/* Can the default kernel reach its root disk and the network on EC2?
 * Nitro attaches EBS as NVMe and networks through ENA; Xen instance types
 * use xen-blkfront and xen-netfront. The storage drivers must be built in
 * or in the initramfs (the root disk is needed to load modules from it);
 * the network drivers may be modules. Read from the kernel's config, its
 * modules.builtin and modules.dep, and the initramfs listed with libarchive
 * on the host from a private copy (bounded by INITRD_MAX). */
#include <archive.h>
#include <archive_entry.h>
#include <guestfs.h>
#include <jansson.h>

#include "internal.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* Most file names kept from an initramfs (Debian's have ~2,000; dracut's
 * with all firmware ~10,000). */
#define INITRD_ENTRIES_MAX 200000
/* Concatenated archives in one initramfs (early microcode + main). */
#define INITRD_SEGMENTS_MAX 8

struct driver {
	const char *name;      /* module name as in modules.dep */
	const char *config;    /* Kconfig symbol */
	bool storage;          /* needed in the initramfs when a module */
	bool required;         /* fail when missing (else warn) */
	const char *why;
};

static const struct driver drivers[] = {
	{ "nvme", "CONFIG_BLK_DEV_NVME", true, true, "EBS volumes on Nitro instances" },
	{ "xen-blkfront", "CONFIG_XEN_BLKDEV_FRONTEND", true, false, "EBS volumes on Xen instances" },
	{ "ena", "CONFIG_ENA_ETHERNET", false, true, "network on Nitro instances" },
	{ "xen-netfront", "CONFIG_XEN_NETDEV_FRONTEND", false, false, "network on Xen instances" },
};

struct names {
	char **v;
	size_t n, cap;
};

static void names_add(struct names *s, const char *name)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = xstrdup(name);
}

static void names_release(struct names *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* Module base name of a path: ".../nvme-core.ko.zst" -> "nvme-core"; '_'
 * and '-' are the same to modprobe, so '_' becomes '-'. */
static void module_name(const char *path, char *out, size_t cap)
{
	const char *b = strrchr(path, '/');
	size_t n, i;

	b = b ? b + 1 : path;
	n = strcspn(b, ".");
	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++)
		out[i] = b[i] == '_' ? '-' : b[i];
	out[n] = '\0';
}

static bool names_has_module(const struct names *s, const char *mod)
{
	char m[128];
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (!strstr(s->v[i], ".ko"))
			continue;
		module_name(s->v[i], m, sizeof(m));
		if (strcmp(m, mod) == 0)
			return true;
	}
	return false;
}

/* List every archive in the initramfs image at base[0..size): the kernel
 * accepts concatenated cpio archives, each optionally compressed, with zero
 * padding between them. */
static int list_initrd(const unsigned char *base, size_t size, struct names *out)
{
	size_t off = 0;
	int seg;

	for (seg = 0; seg < INITRD_SEGMENTS_MAX; seg++) {
		struct archive *a;
		struct archive_entry *e;
		int r;
		bool plain;

		while (off < size && base[off] == 0)
			off++;
		if (off >= size)
			return 0;
		a = archive_read_new();
		archive_read_support_filter_all(a);
		archive_read_support_format_cpio(a);
		if (archive_read_open_memory(a, base + off, size - off) != ARCHIVE_OK) {
			err_set("initramfs: %s", archive_error_string(a));
			archive_read_free(a);
			return seg > 0 ? 0 : -1;
		}
		while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
			const char *p = archive_entry_pathname(e);

			if (out->n >= INITRD_ENTRIES_MAX) {
				archive_read_free(a);
				return err_set("initramfs: more than %d entries", INITRD_ENTRIES_MAX);
			}
			if (p)
				names_add(out, p);
		}
		if (r != ARCHIVE_EOF) {
			err_set("initramfs: %s", archive_error_string(a));
			archive_read_free(a);
			return -1;
		}
		plain = archive_filter_count(a) <= 1 ||
			archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE;
		/* A compressed archive is the last one the kernel unpacks in
		 * practice; after a plain one, continue where its trailer ended. */
		if (!plain) {
			archive_read_free(a);
			return 0;
		}
		off += (size_t)archive_filter_bytes(a, 0);
		archive_read_free(a);
	}
	return 0;
}

/* Copy the initramfs out of the appliance (bounded by INITRD_MAX) and list
 * it. 0 (names in out) or -1 (error recorded). */
static int read_initrd(struct inspect_ctx *c, const char *path, struct names *out)
{
	struct guest_map m;
	int ret;

	if (guest_map(c, path, INITRD_MAX, &m) < 0)
		return err_prefix("initramfs");
	ret = list_initrd(m.data, m.len, out);
	guest_unmap(&m);
	return ret;
}

/* CONFIG_X=y|m from the kernel config text: 'y', 'm' or 0; *line its line. */
static char config_value(const char *text, const char *sym, int *line)
{
	const char *p = text;
	size_t n = strlen(sym);
	int ln = 0;
	char buf[512];

	while (next_line(&p, buf, sizeof(buf))) {
		ln++;
		if (strncmp(buf, sym, n) == 0 && buf[n] == '=') {
			*line = ln;
			return buf[n + 1] == 'y' || buf[n + 1] == 'm' ? buf[n + 1] : 0;
		}
	}
	return 0;
}

/* The modules.dep line of a module: "kernel/.../nvme.ko: deps..." or NULL.
 * Copied into line; *ln its line number. */
static bool dep_line(const char *dep, const char *mod, char *line, size_t cap, int *ln)
{
	const char *p = dep;
	char m[128];

	*ln = 0;
	while (next_line(&p, line, cap)) {
		char *colon = strchr(line, ':');

		(*ln)++;
		if (!colon)
			continue;
		*colon = '\0';
		module_name(line, m, sizeof(m));
		*colon = ':';
		if (strcmp(m, mod) == 0)
			return true;
	}
	return false;
}

static bool in_builtin(const char *builtin, const char *mod)
{
	const char *p = builtin;
	char line[512], m[128];

	while (builtin && next_line(&p, line, sizeof(line))) {
		module_name(line, m, sizeof(m));
		if (strcmp(m, mod) == 0)
			return true;
	}
	return false;
}

/* The dependencies of a modules.dep line that are missing from the
 * initramfs, as a space-separated list in miss (empty: none). */
static void missing_deps(const char *line, const struct names *initrd, char *miss, size_t cap)
{
	const char *p = strchr(line, ':');
	char tok[512], m[128];

	miss[0] = '\0';
	if (!p)
		return;
	p++;
	while (*p) {
		size_t k;

		while (*p == ' ')
			p++;
		k = strcspn(p, " ");
		if (!k)
			break;
		snprintf(tok, sizeof(tok), "%.*s", (int)k, p);
		p += k;
		module_name(tok, m, sizeof(m));
		if (!names_has_module(initrd, m)) {
			size_t used = strlen(miss);
			snprintf(miss + used, cap - used, "%s%s", used ? " " : "", m);
		}
	}
}

int inspect_kernel_drivers(struct inspect_ctx *c)
{
	char *config = NULL, *builtin = NULL, *dep = NULL;
	char *cfg_path = NULL, *builtin_path = NULL, *dep_path = NULL;
	struct names initrd = { NULL, 0, 0 };
	bool have_initrd = false;
	const char *kv = c->kernel_version, *why;
	size_t i;

	if (!kv) {	/* an unknown is not a defect of the image */
		report_add(c, CHECK_WARN, "kernel.drivers", c->kernel_file ? c->kernel_file : c->kernel_path,
			   "the default kernel's version is unknown (%s): NVMe/ENA drivers not checked",
			   c->kernel_version_why ? c->kernel_version_why : "no default kernel");
		return 0;
	}
	cfg_path = xasprintf("/boot/config-%s", kv);
	builtin_path = xasprintf("/lib/modules/%s/modules.builtin", kv);
	dep_path = xasprintf("/lib/modules/%s/modules.dep", kv);
	config = guest_read(c, cfg_path, NULL, &why);
	builtin = guest_read(c, builtin_path, NULL, NULL);
	dep = guest_read(c, dep_path, NULL, NULL);
	if (!config && !builtin)
		report_add(c, CHECK_WARN, "kernel.config", cfg_path,
			   "kernel config %s and modules.builtin both unavailable: built-in drivers "
			   "cannot be seen", why);
	if (c->initrd_path && guest_is_file(c, c->initrd_path)) {	/* resolved */
		if (read_initrd(c, c->initrd_path, &initrd) < 0)
			report_add(c, CHECK_WARN, "kernel.initramfs", c->initrd_path, "%s", err_msg());
		else
			have_initrd = true;
		err_clear();
		if (have_initrd)
			report_add(c, CHECK_PASS, "kernel.initramfs", c->initrd_path,
				   "%s%s%s lists %zu files", c->initrd_named,
				   strcmp(c->initrd_named, c->initrd_path) ? " -> " : "",
				   strcmp(c->initrd_named, c->initrd_path) ? c->initrd_path : "", initrd.n);
	} else {
		report_add(c, CHECK_FAIL, "kernel.initramfs", c->initrd_named,
			   "the default entry has no initramfs%s%s", c->initrd_named ? ": " : "",
			   c->initrd_named ? c->initrd_why : "");
	}
	json_object_set_new(c->rep->facts, "initramfs_files",
			    have_initrd ? json_integer((json_int_t)initrd.n) : json_null());

	for (i = 0; i < ARRAY_SIZE(drivers); i++) {
		const struct driver *d = &drivers[i];
		char id[64], ev[1024], line[4096], miss[1024];
		int cln = 0, dln = 0;
		char v = config ? config_value(config, d->config, &cln) : 0;
		bool bi = v == 'y' || in_builtin(builtin, d->name);
		bool mod = dep && dep_line(dep, d->name, line, sizeof(line), &dln);
		enum check_status bad = d->required ? CHECK_FAIL : CHECK_WARN;

		snprintf(id, sizeof(id), "kernel.%s", d->name);
		if (cln)
			snprintf(ev, sizeof(ev), "%s:%d", cfg_path, cln);
		else if (dln)
			snprintf(ev, sizeof(ev), "%s:%d", dep_path, dln);
		else
			snprintf(ev, sizeof(ev), "%s", config ? cfg_path : dep_path);
		if (bi) {
			report_add(c, CHECK_PASS, id, ev, "%s built into %s (%s)", d->name, kv, d->why);
		} else if (!mod) {
			report_add(c, bad, id, ev, "%s: neither built in nor a module of %s (%s)%s",
				   d->name, kv, d->why, d->required ? "" : "; only Nitro instance types");
		} else if (!d->storage) {
			report_add(c, CHECK_PASS, id, ev, "%s is a module of %s (%s)", d->name, kv, d->why);
		} else if (!have_initrd) {
			report_add(c, bad, id, ev, "%s is a module, and the initramfs could not be "
				   "listed (%s)", d->name, d->why);
		} else if (!names_has_module(&initrd, d->name)) {
			report_add(c, bad, id, c->initrd_path,
				   "%s is a module but not in the initramfs: the root disk is "
				   "unreachable (%s)", d->name, d->why);
		} else {
			missing_deps(line, &initrd, miss, sizeof(miss));
			if (miss[0])
				report_add(c, bad, id, c->initrd_path, "%s is in the initramfs without "
					   "its dependencies: %s", d->name, miss);
			else
				report_add(c, CHECK_PASS, id, c->initrd_path,
					   "%s is a module in the initramfs (%s)", d->name, d->why);
		}
	}
	names_release(&initrd);
	free(config);
	free(builtin);
	free(dep);
	free(cfg_path);
	free(builtin_path);
	free(dep_path);
	return 0;
}
