/* archprobe.h: which architecture a disk's system is for, when nobody said
 * (a recipe's vm.arch and run --arch say it; drivers/hypervisor/arch.h).
 *
 * First the cheap read: the partition table (the first 64 KiB, through the
 * block reader). A GPT partition of an architecture's root or /usr type
 * (the Discoverable Partitions Specification) names it; a BIOS boot
 * partition, or an MBR disk with partitions and no GPT, is x86_64 (arm64
 * machines boot UEFI only); no partition table at all is x86_64 too. Else
 * — a GPT with an ESP and generic Linux
 * partitions, as most arm64 cloud images have — the libguestfs appliance
 * mounts the system and reads the architecture of its /bin binaries (as the
 * inspector does; ~20 s under TCG). Nothing found: x86_64. */
#ifndef AMIFORGE_DISK_ARCHPROBE_H
#define AMIFORGE_DISK_ARCHPROBE_H

#include "compat.h"
#include "drivers/hypervisor/arch.h"

/* Bytes of the disk's start the partition read looks at. */
#define ARCHPROBE_HEAD (64u * 1024)

/* The pure half: what the partition table in head (n bytes from offset 0,
 * 512-byte sectors) says; NULL when it does not say. *why (static) names
 * the evidence; with NULL returned, it is NULL when there is no partition
 * table at all (no libguestfs then: a bare filesystem or no disk boots on
 * no arm64 machine), else it says what is undecided. */
const struct arch *archprobe_table(const unsigned char *head, size_t n, const char **why);

/* The disk's architecture (format explicit): the table, else libguestfs,
 * else x86_64. *how (may be NULL; static) says which. -1 (recorded) only
 * when the disk cannot be read at all. */
int archprobe_disk(const char *path, const char *format, const struct arch **out,
		   const char **how);

#endif
