/* inspect/internal.h: what the check files of `amiforge inspect` share.
 * One inspect_ctx per run; each check file adds its results to ctx->rep
 * and the facts it learns to ctx->facts (a jansson object). */
#ifndef AMIFORGE_INSPECT_INTERNAL_H
#define AMIFORGE_INSPECT_INTERNAL_H

#include <guestfs.h>
#include <jansson.h>

#include "builder/disk/appliance.h"
#include "drivers/hypervisor/arch.h"
#include "inspect.h"
#include "buf.h"

/* Largest guest file read whole into memory (configs, fstab, kernel config,
 * grub.cfg, modules.dep). libguestfs caps one reply at 4 MiB
 * (GUESTFS_MESSAGE_MAX); 3 MiB leaves room for the protocol. */
#define GUEST_FILE_MAX (3u * 1024 * 1024)
/* Largest initramfs examined (Debian's are 30-70 MiB; dracut's with
 * firmware reach ~150 MiB). It is copied out of the appliance to a private
 * temporary file and listed with libarchive. */
#define INITRD_MAX (512u * 1024 * 1024)
/* Largest kernel image read to find its version (x86 bzImages are ~8 MiB,
 * arm64 Images ~40 MiB, UKIs with their initramfs ~100 MiB). */
#define KERNEL_MAX (256u * 1024 * 1024)
/* Symlinks followed in one guest path, and the longest path (Linux's
 * MAXSYMLINKS and PATH_MAX). */
#define GUEST_SYMLINKS_MAX 40
#define GUEST_PATH_MAX 4096
/* Most matches listed as evidence for one check. */
#define EVIDENCE_MAX 5

struct inspect_report {
	struct inspect_check *v;
	size_t n, cap;
	json_t *facts;            /* owned */
	json_t *sbom;             /* owned, or NULL */
	char *disk, *format;
	enum inspect_target target;
	enum inspect_boot boot;
};

struct inspect_ctx {
	guestfs_h *g;
	const struct inspect_opts *opts;
	struct inspect_report *rep;
	const char *format;       /* the explicit format given to libguestfs */
	uint64_t virtual_size;
	struct appliance_os os;   /* what appliance_find_os() found */
	const char *root;         /* os.root once it is mounted, else NULL */
	char *parttype;           /* "msdos", "gpt" or NULL (no partition table) */
	bool mbr_code;            /* boot code in the first 440 bytes */
	bool bios_boot_part;      /* GPT BIOS boot partition (GRUB's core.img) */
	char *esp;                /* EFI system partition, or NULL */
	/* The removable-media loaders it holds, EFI/BOOT/<arch's efi_loader>,
	 * one bit per row of arch_table[]: the OS's architecture (known only
	 * once it is mounted) picks which one boots it. */
	unsigned esp_loaders;
	bool encrypted;           /* a LUKS partition */
	/* From the boot loader configuration (NULL when not found). */
	char *bootloader;         /* "extlinux", "grub2", "grub-legacy", "bls" */
	char *bootloader_file;    /* where the default entry was read */
	char *kernel_path;        /* default kernel, as the loader names it */
	char *kernel_file;        /* the file that reaches (symlinks resolved), or NULL */
	char *kernel_version;     /* e.g. "6.1.0-28-cloud-amd64" */
	const char *kernel_version_source; /* "file name", "bzImage header", ... */
	char *kernel_version_why; /* why kernel_version is NULL */
	char *initrd_named;       /* the initramfs as the loader names it */
	char *initrd_path;        /* the file that reaches, or NULL when unresolved */
	char *initrd_why;         /* why initrd_path is NULL */
	char *cmdline;            /* the default entry's kernel command line */
	char *cmdline_evidence;   /* "file:line" */
};

/* Add a result; reason is printf-like, evidence may be NULL. */
void report_add(struct inspect_ctx *c, enum check_status st, const char *id,
		const char *evidence, const char *fmt, ...) PRINTF_LIKE(5, 6);

/* Guest file helpers. They never record an error for a missing file. */
bool guest_is_file(struct inspect_ctx *c, const char *path);
bool guest_is_dir(struct inspect_ctx *c, const char *path);
bool guest_exists(struct inspect_ctx *c, const char *path);
bool guest_lexists(struct inspect_ctx *c, const char *path);  /* a dangling link too */
/* Read a regular file up to GUEST_FILE_MAX. NULL when missing, not a file or
 * too large (then *why says which, when why is not NULL). Caller frees. */
char *guest_read(struct inspect_ctx *c, const char *path, size_t *len, const char **why);
/* The file a guest path reaches through symlinks (relative and absolute,
 * at most GUEST_SYMLINKS_MAX, never leaving the guest's root), resolved
 * component by component with lstat and readlink. NULL when it is missing,
 * dangling, a loop or too long: why (cap bytes) says which. Caller frees. */
char *guest_resolve(struct inspect_ctx *c, const char *path, char *why, size_t cap);
/* A guest file copied to a private temporary file and mapped read-only (the
 * copy is unlinked at once): for files larger than one libguestfs reply.
 * 0, or -1 (error recorded: missing, larger than max, empty). */
struct guest_map {
	void *data;
	size_t len;
};
int guest_map(struct inspect_ctx *c, const char *path, uint64_t max, struct guest_map *m);
void guest_unmap(struct guest_map *m);
/* Expand a glob in the guest; NULL-terminated, caller frees with strv_free. */
char **guest_glob(struct inspect_ctx *c, const char *pattern);
/* The next line of text starting at *p (advanced; NUL-terminated copy in
 * line, at most cap bytes). False at the end. */
bool next_line(const char **p, char *line, size_t cap);
/* Copy of s with leading and trailing blanks removed (in place). */
char *str_trim(char *s);

/* The parsers of guest files on their text (the readers above call them;
 * fuzzing calls them directly). kind: "extlinux", "grub2", "grub-legacy" or
 * "bls"; the default entry found goes to c (bootloader, kernel_path, ...).
 * inspect_fstab_text adds the fstab.device-names check (text NULL: no fstab). */
bool inspect_bootcfg_text(struct inspect_ctx *c, const char *kind, const char *file,
			  const char *text);
void inspect_fstab_text(struct inspect_ctx *c, const char *text);

/* The check groups, in the order inspect_run() calls them. Each returns 0,
 * or -1 only when the appliance itself failed (error recorded). */
int inspect_disk_layout(struct inspect_ctx *c);   /* before mounting the OS */
int inspect_os(struct inspect_ctx *c);            /* facts, kernels, boot entry */
int inspect_kernel_drivers(struct inspect_ctx *c);
int inspect_config(struct inspect_ctx *c);        /* fstab, console, MAC, cloud-init */
int inspect_generalised(struct inspect_ctx *c);
int inspect_canary(struct inspect_ctx *c);
int inspect_import_image(struct inspect_ctx *c);

#endif
