#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "accel.h"

/* KVM_GET_API_VERSION has answered 12 since Linux 2.6.22; anything else is
 * an API this code does not know. */
#define KVM_STABLE_API 12

static const char *probe(bool *usable)
{
	const char *force = getenv("AMIFORGE_ACCEL");
	int fd, api;

	*usable = false;
	if (force && strcmp(force, "tcg") == 0)
		return "AMIFORGE_ACCEL=tcg";
	if (force && strcmp(force, "kvm") == 0) {
		*usable = true;
		return "AMIFORGE_ACCEL=kvm";
	}
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? "/dev/kvm does not exist" : "/dev/kvm cannot be opened";
	api = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (api != KVM_STABLE_API)
		return "KVM_GET_API_VERSION is not 12";
	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		return "KVM is the PVM flavour (/sys/module/kvm_pvm), which cannot boot stock kernels";
	*usable = true;
	return "/dev/kvm usable (API 12)";
}

bool accel_kvm_usable(const char **why)
{
	static bool done, usable;
	static const char *reason;

	if (!done) {
		reason = probe(&usable);
		done = true;
	}
	if (why)
		*why = reason;
	return usable;
}
