/* accel.h: can this host run guests under KVM, or must it use TCG?
 *
 * A KVM is usable when /dev/kvm opens read-write, KVM_GET_API_VERSION
 * answers 12 (the stable API), and it is not the PVM flavour
 * (/sys/module/kvm_pvm), under which stock guest kernels hang and QEMU's
 * -cpu host aborts. Both QEMU guests and the libguestfs appliance use this
 * answer (libguestfs gets force_tcg when it is false). */
#ifndef AMIFORGE_ACCEL_H
#define AMIFORGE_ACCEL_H

#include "compat.h"

/* Probe once per process (cached). Returns true when KVM is usable. When
 * why is not NULL it receives a static one-line reason (never NULL). The
 * environment variable AMIFORGE_ACCEL=tcg forces false, =kvm forces true. */
bool accel_kvm_usable(const char **why);

#endif
