/* appliance.h: a libguestfs appliance on one disk image, and the Linux
 * system on it. Shared by `amiforge inspect` (read-only) and agent
 * injection (read-write).
 *
 * The OS is found without libguestfs's own inspection (guestfs_inspect_os),
 * which starts Augeas and costs ~15 s under TCG: each Linux-type filesystem
 * is mounted in turn and looked at for /etc/fstab and os-release; the root's
 * fstab gives the other mountpoints.
 *
 *	guestfs_h *g = appliance_open(disk, "qcow2", true, NULL);
 *	struct appliance_os os;
 *	if (!g || appliance_find_os(g, &os) < 0) ...      // error recorded
 *	if (os.nroots) appliance_mount_os(g, &os, true, on_warn, ctx);
 *	... os.distro, os.major, os.arch ...
 *	appliance_os_release(&os);
 *	appliance_close(g);                                // checks shutdown
 */
#ifndef AMIFORGE_APPLIANCE_H
#define AMIFORGE_APPLIANCE_H

#include <guestfs.h>

#include "compat.h"

/* Create, configure (TCG when KVM cannot boot a stock kernel, two vCPUs where
 * the host has them) and launch an appliance with DISK attached in FORMAT.
 * NAME is what messages call it (NULL: DISK; an overlay's user names the
 * disk under it). NULL on failure (error recorded, naming it). */
guestfs_h *appliance_open(const char *disk, const char *format, bool readonly, const char *name);

/* An appliance started before its disk exists, to have its boot (seconds
 * under TCG) behind something else: a build starts one for the output's
 * inspection while its guest runs the last step and powers off.
 *
 *	struct appliance_early *e = appliance_early_start(dir, NULL, NULL);  // a thread launches it
 *	... the disk is written ...
 *	g = appliance_early_take(e, overlay, size, name);      // waits for the launch
 *	if (!g) g = appliance_open(overlay, "qcow2", false, name);
 *	appliance_early_free(e);
 *
 * It boots with a placeholder drive (libguestfs launches none without one)
 * and QEMU's QMP monitor; take swaps the placeholder for the disk over QMP
 * and waits until the appliance's kernel shows the disk as /dev/sda, as
 * appliance_open's does. Needs libguestfs's direct backend (the default).
 * Its temporary directory (with the QMP socket) goes in parent (NULL:
 * $TMPDIR): a build's staging directory, which `amiforge clean` removes
 * after a SIGKILL; where the socket's path would be too long there, in
 * /tmp/amiforge-sock-XXXXXX. made (may be NULL) is told, from the launching
 * thread, each directory it has outside parent, for the same reason: that
 * one when made, and once launched, the socket directory libguestfs made
 * (/tmp/libguestfsXXXXXX for root; a SIGKILL during the launch leaves it).
 * NULL when no thread could be made or AMIFORGE_APPLIANCE_EARLY=0 (a build
 * goes on without). */
struct appliance_early *appliance_early_start(const char *parent,
					      void (*made)(const char *dir, void *opaque),
					      void *opaque);
/* Wait for the launch and give the appliance disk (a qcow2 opened
 * writable: the caller's overlay, its backing as its header says), of size
 * bytes (virtual). The handle is the caller's, as appliance_open's. NULL
 * when it did not launch or the swap failed (said at --verbose, nothing
 * recorded: the caller opens one the usual way, which records what fails).
 * e NULL: NULL. */
guestfs_h *appliance_early_take(struct appliance_early *e, const char *disk, uint64_t size,
				const char *name);
/* Join its thread and stop the appliance if not taken. NULL is accepted. */
void appliance_early_free(struct appliance_early *e);

/* Unmount everything and shut the appliance down cleanly (so writes reach
 * the disk), then close it. -1 (error recorded) when shutdown failed; the
 * handle is closed either way. NULL is accepted. */
int appliance_close(guestfs_h *g, const char *disk);
/* Close without syncing or the checked shutdown, for a handle whose writes
 * nobody wants (an error path; an inspection of an overlay that is then
 * discarded): the appliance is stopped, the handle's temporary directory
 * removed. NULL is accepted. Every handle appliance_open() returns ends in
 * one of the two. */
void appliance_abandon(guestfs_h *g);

/* For a process ending on a signal (guest.c's watcher), which never closes
 * its handles: the socket directory of every appliance it has a connection
 * to (or is listening for) is removed. libguestfs puts root's in /tmp,
 * whatever $TMPDIR says, and no call names it: it is found from this
 * process's own sockets in /proc/net/unix. The appliance's QEMU is stopped
 * by libguestfs's recovery process when this one is gone; the temporary
 * directories are amiforge's and go with temp_dirs_remove_all(). From its
 * first call no appliance launches; it returns once every handle between
 * its launch and its close has had its directory found, or was closed by
 * its own thread (bounded: 5 s). */
void appliance_remove_sockdirs(void);

/* Read a regular file (symlinks followed) of at most max bytes, copied and
 * NUL-terminated (*len: its length, may be NULL). NULL when it is missing,
 * not a file, larger or unreadable; *why (may be NULL) says which. Never
 * records an error: a missing file is an answer. */
char *appliance_read_file(guestfs_h *g, const char *path, size_t max, size_t *len,
			  const char **why);

/* One line of a guest's /etc/fstab, as the OS probe mounts it: false for
 * comments, short lines, "/" itself, relative mount points and file systems
 * it does not mount. Fields are cut to the buffers' sizes. */
struct appliance_fstab_entry {
	char spec[1024], mp[1024], type[64], opts[1024];
};
bool appliance_fstab_line(const char *line, struct appliance_fstab_entry *e);
/* "subvol=NAME" from a mount option list (btrfs), or "" (caller frees). */
char *appliance_subvol_option(const char *opts);

/* A block device the appliance sees, with what blkid says of it. */
enum appliance_fs_kind { APPLIANCE_DEVICE, APPLIANCE_PARTITION, APPLIANCE_LV };
struct appliance_fs {
	char *dev;           /* /dev/sda, /dev/sda1, /dev/VG/LV */
	enum appliance_fs_kind kind;
	char *type;          /* blkid's TYPE (ext4, vfat, crypto_LUKS...), or NULL */
	char *uuid, *label, *partuuid;
	char *pttype;        /* a device's partition table: PTTYPE (dos, gpt), or NULL */
	char *part_type;     /* a partition's PART_ENTRY_TYPE: "0x83" (dos), a GUID
				(gpt, upper case, as sgdisk prints it), or NULL */
};

struct appliance_os {
	int nroots;          /* Linux roots found (0: none) */
	char *root;          /* the first root's device */
	char *type;          /* "linux", or "windows" when only NTFS was seen, or "unknown" */
	char *distro;        /* libguestfs's names: debian, ubuntu, rhel, amazonlinux... */
	char *product;       /* PRETTY_NAME, or the release file's line */
	int major, minor;
	char *arch;          /* "x86_64", "aarch64"... once mounted; "unknown" */
	char **mounts;       /* "mountpoint", "device", "options" triples, "/" first,
			      * shortest first; options "" or "subvol=NAME" (btrfs) */
	size_t nmounts;      /* triples */
	char **unresolved;   /* "mountpoint", "fstab spec" pairs fstab names but no device has */
	size_t nunresolved;
	/* What appliance_find_os() looked at: whole devices, partitions (in the
	 * appliance's order), logical volumes; at most APPLIANCE_FS_MAX. */
	struct appliance_fs *fs;
	size_t nfs;
};
/* Block devices looked at; those beyond this are ignored. */
#define APPLIANCE_FS_MAX 64

/* The entry for dev in os->fs, or NULL. */
const struct appliance_fs *appliance_fs_find(const struct appliance_os *os, const char *dev);

/* Find the Linux system on the attached disk. Returns 0 with os->nroots 0
 * when there is none; -1 only when the appliance itself failed. Leaves
 * nothing mounted; os is released on failure. */
int appliance_find_os(guestfs_h *g, struct appliance_os *os);

/* Mount os->mounts (read-only or not), then read what needs /usr mounted
 * (os-release through its /usr symlink, the architecture). A mount that
 * fails is passed to warn (which may be NULL) and skipped, except "/":
 * -1 (error recorded). */
int appliance_mount_os(guestfs_h *g, struct appliance_os *os, bool readonly,
		       void (*warn)(void *opaque, const char *mountpoint, const char *device,
				    const char *error),
		       void *opaque);

void appliance_os_release(struct appliance_os *os);

/* The architecture an ELF header (its first n bytes) names, as libguestfs
 * names it ("x86_64", "aarch64", "i386"...; caller frees), or NULL when it
 * is not a little-endian ELF of a machine this knows. */
char *appliance_elf_arch(const unsigned char *h, size_t n);

#endif
