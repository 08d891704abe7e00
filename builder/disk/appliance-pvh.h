/* appliance-pvh.h: a libguestfs appliance whose kernel does not decompress
 * itself (issue 16: the inspect stage of every build, agent injection).
 *
 * Under TCG the appliance's compressed kernel (a bzImage) spends ~4-5 s
 * decompressing itself before Linux prints its first line; the same kernel
 * uncompressed, an ELF with a PVH entry note (CONFIG_PVH), is loaded by
 * QEMU's -kernel as it is and starts at once. So amiforge keeps a libguestfs
 * *fixed appliance* (a directory with README.fixed, kernel, initrd, root:
 * guestfs_set_path() makes libguestfs boot it instead of its supermin one):
 *
 *   <libguestfs cachedir>/.amiforge-appliance-<euid>/  (0700, ours)
 *     lock                  supermin's lock
 *     appliance.d/          supermin --build --if-newer, exactly as libguestfs
 *                           builds its own (ms when up to date)
 *     fixed-<key>/          kernel: the vmlinux inside appliance.d's kernel;
 *                           initrd, root: hard links to appliance.d's files;
 *                           README.fixed. key: the inode numbers of initrd and
 *                           root (supermin rebuilds into a new directory, so
 *                           a rebuild means new inodes; the files are never
 *                           written in place)
 *
 * Only for x86_64 hosts; only with libguestfs's "direct" backend (QEMU run
 * by libvirt, as another user, could not read this private directory);
 * only where libguestfs boots a supermin appliance (not a distribution's
 * fixed one); only where the kernel's payload is xz or
 * gzip (xz/gzip on PATH) and the result has the PVH note. Anything else: NULL
 * (a debug line says why) and libguestfs boots as it always did. A launch
 * that fails with this directory is retried without it (appliance.c), and
 * the directory removed: the next launch makes it again.
 * AMIFORGE_APPLIANCE_PVH=0 turns it off. */
#ifndef AMIFORGE_APPLIANCE_PVH_H
#define AMIFORGE_APPLIANCE_PVH_H

#include <guestfs.h>

#include "compat.h"

/* The fixed appliance's directory for guestfs_set_path() (caller frees), or
 * NULL (nothing recorded: the reason is logged at debug level). */
char *appliance_pvh_dir(guestfs_h *g);

/* A fixed appliance dir from appliance_pvh_dir() did not boot: remove it,
 * so that the next launch makes it again rather than trying it again. */
void appliance_pvh_forget(const char *dir);

/* The uncompressed kernel inside a bzImage (x86 boot protocol >= 2.08:
 * payload_offset/payload_length) written to out (created, 0644). 0, or -1
 * with an error recorded (not a bzImage, a payload it cannot decompress, no
 * PVH entry note in the result). For appliance_pvh_dir() and its test. */
int appliance_pvh_extract(const char *bzimage, const char *out);

/* Does this ELF image carry a PVH entry note (Xen note type 18,
 * XEN_ELFNOTE_PHYS32_ENTRY)? Bounded reads of its program headers. */
bool appliance_pvh_has_note(const void *elf, size_t len);

#endif
