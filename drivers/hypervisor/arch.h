/* arch.h: the guest architectures amiforge builds images for, as data.
 *
 * One row per architecture holds everything that differs between them, for
 * every role that cares: the hypervisor drivers (QEMU binary, machine, CPU
 * model under TCG, UEFI firmware, where the seed cdrom goes, PCI root bus),
 * the agent amiforge puts into the guest (its embedded static build), the
 * inspector (the removable-media EFI loader name, UEFI only or not) and AWS
 * (RegisterImage's architecture name). Code looks a row up and reads its
 * columns; nothing else compares architecture names.
 *
 * Where a guest's architecture comes from: a recipe's vm.arch (run --arch),
 * else the base image (arch_probe_disk(), builder/guest/guest.h), else
 * x86_64. */
#ifndef AMIFORGE_ARCH_H
#define AMIFORGE_ARCH_H

#include "compat.h"

/* ARCH_AUTO: not stated; a vm_spec reads it as x86_64 (arch_get). */
enum arch_id { ARCH_AUTO = 0, ARCH_X86_64, ARCH_AARCH64 };

struct arch {
	enum arch_id id;
	const char *name;         /* uname -m, libguestfs, vm.arch: "x86_64", "aarch64" */
	const char *alias;        /* also taken in vm.arch and --arch: "amd64", "arm64" */
	const char *ec2;          /* RegisterImage Architecture: "x86_64", "arm64" */
	const char *qemu;         /* the system emulator: qemu-system-x86_64 ... */
	const char *machine;      /* QEMU's -machine: "pc", "virt" */
	const char *libvirt_machine;  /* <type machine=...>; NULL: libvirt's default */
	const char *tcg_cpu;      /* -cpu under TCG; NULL: the machine's default */
	/* UEFI firmware (Debian's packages): the code (read-only pflash) and
	 * the variable store template each guest gets a copy of. NULL: the
	 * machine boots from its BIOS. */
	const char *fw_code;
	const char *fw_vars;
	const char *fw_package;   /* the Debian package holding them */
	const char *pci_root;     /* the root bus's id for an explicit slot */
	bool seed_scsi;           /* the seed cdrom on virtio-scsi (no IDE) */
	bool apic;                /* libvirt <features><apic/> */
	const char *console;      /* the kernel's serial console: ttyS0, ttyAMA0 */
	const char *efi_loader;   /* the removable-media loader: BOOTX64.EFI... */
	bool uefi_only;           /* no legacy BIOS boot exists (EC2: BootMode uefi) */
	/* The static agent amiforge carries for it (agent-blob.S); empty when
	 * this amiforge was built without it (make AGENT_ARCHES=...). */
	const char *agent;
	const char *agent_end;
	const char *elf_machine;  /* file(1)-style, for messages */
};

/* The rows, ARCH_AUTO excluded; NULL-terminated. */
extern const struct arch *const arch_table[];

/* The row of id (ARCH_AUTO: x86_64's). */
const struct arch *arch_get(enum arch_id id);
/* By name or alias ("aarch64", "arm64", "x86_64", "amd64"); NULL if none. */
const struct arch *arch_find(const char *name);
/* By EC2 name ("arm64", "x86_64"); NULL if none. */
const struct arch *arch_find_ec2(const char *ec2);
/* The architecture amiforge itself runs on (KVM only serves that one). */
const struct arch *arch_host(void);
/* "x86_64, aarch64" (static), for messages. */
const char *arch_names(void);
/* The names and aliases, NULL-terminated (did-you-mean lists). */
extern const char *const arch_words[];
/* The embedded agent for a; NULL with an error when this build has none. */
const void *arch_agent(const struct arch *a, size_t *len);

#endif
