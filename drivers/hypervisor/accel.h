/* accel.h: which accelerator a local guest runs under.
 *
 * KVM is used only when it really works: /dev/kvm opens, KVM_GET_API_VERSION
 * answers 12 and KVM_CREATE_VM succeeds, and the host is not a PVM guest
 * (/sys/module/kvm_pvm: its nested KVM hangs stock guest kernels and QEMU's
 * -cpu host aborts). The same verdict drives the hypervisor drivers and
 * libguestfs (force_tcg), so both agree.
 *
 * AMIFORGE_KVM=0 or AMIFORGE_KVM=1 in the environment overrides the probe
 * (for hosts where it guesses wrong). */
#ifndef AMIFORGE_ACCEL_H
#define AMIFORGE_ACCEL_H

#include "compat.h"

enum accel {
	ACCEL_AUTO = 0,
	ACCEL_KVM,
	ACCEL_TCG,
};

/* Expected KVM_GET_API_VERSION answer (stable since Linux 2.6.22). */
#define ACCEL_KVM_API_VERSION 12

/* "auto", "kvm", "tcg" → *out. 0 or -1 with an error recorded. */
int accel_parse(const char *s, enum accel *out);
const char *accel_name(enum accel a);

struct accel_probe {
	bool usable;
	char why[256];   /* one line: why KVM is (not) usable */
};

/* Probe KVM under sysroot ("" or NULL for the real host; tests pass a fake
 * tree with sys/module/... and dev/kvm). Does not look at the environment. */
void accel_probe_at(const char *sysroot, struct accel_probe *out);

/* The host verdict: the environment override, else accel_probe_at("")
 * (computed once). why may be NULL; *why points to static storage. */
bool accel_kvm_usable(const char **why);

/* Turn a request into KVM or TCG for a local hypervisor: auto → KVM when
 * usable, else TCG (logged at debug level); kvm → KVM, or -1 when /dev/kvm
 * cannot be opened at all (a warning when the probe distrusts it); tcg → TCG. */
int accel_resolve(enum accel req, enum accel *out);

#endif
