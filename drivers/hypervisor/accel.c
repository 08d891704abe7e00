/* accel.c: KVM probe (see accel.h). */
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "accel.h"
#include "error.h"
#include "log.h"
#include "util.h"

int accel_parse(const char *s, enum accel *out)
{
	if (strcmp(s, "auto") == 0)
		*out = ACCEL_AUTO;
	else if (strcmp(s, "kvm") == 0)
		*out = ACCEL_KVM;
	else if (strcmp(s, "tcg") == 0)
		*out = ACCEL_TCG;
	else
		return err_set("invalid accelerator '%s': expected auto, kvm or tcg", s);
	return 0;
}

const char *accel_name(enum accel a)
{
	switch (a) {
	case ACCEL_KVM:
		return "kvm";
	case ACCEL_TCG:
		return "tcg";
	case ACCEL_AUTO:
	default:
		return "auto";
	}
}

static void verdict(struct accel_probe *p, bool usable, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void verdict(struct accel_probe *p, bool usable, const char *fmt, ...)
{
	va_list ap;

	p->usable = usable;
	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
}

void accel_probe_at(const char *sysroot, struct accel_probe *out)
{
	const char *root = sysroot ? sysroot : "";
	char path[PATH_MAX];
	struct stat st;
	int fd = -1, vm, api;

	/* A PVM guest's nested KVM: stock kernels hang, -cpu host aborts. */
	snprintf(path, sizeof(path), "%s/sys/module/kvm_pvm", root);
	if (stat(path, &st) == 0) {
		verdict(out, false, "PVM nested KVM (kvm_pvm loaded) cannot boot stock guest kernels");
		return;
	}
	snprintf(path, sizeof(path), "%s/dev/kvm", root);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		verdict(out, false, "open '%s': %s", path, strerror(errno));
		return;
	}
	api = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (api != ACCEL_KVM_API_VERSION) {
		if (api < 0)
			verdict(out, false, "KVM_GET_API_VERSION on '%s': %s", path, strerror(errno));
		else
			verdict(out, false, "KVM API version %d on '%s', expected %d", api, path,
				ACCEL_KVM_API_VERSION);
		goto cleanup;
	}
	vm = ioctl(fd, KVM_CREATE_VM, 0);
	if (vm < 0) {
		verdict(out, false, "KVM_CREATE_VM on '%s': %s", path, strerror(errno));
		goto cleanup;
	}
	close(vm);
	verdict(out, true, "'%s' answers KVM API %d and creates VMs", path, api);
cleanup:
	close(fd);
}

bool accel_kvm_usable(const char **why)
{
	static struct accel_probe probe;
	static bool done;
	const char *env = getenv("AMIFORGE_KVM");

	if (env && (strcmp(env, "0") == 0 || strcmp(env, "1") == 0)) {
		static char msg[64];

		snprintf(msg, sizeof(msg), "AMIFORGE_KVM=%s in the environment", env);
		if (why)
			*why = msg;
		return env[0] == '1';
	}
	if (!done) {
		accel_probe_at("", &probe);
		done = true;
	}
	if (why)
		*why = probe.why;
	return probe.usable;
}

int accel_resolve(enum accel req, enum accel *out)
{
	const char *why;
	bool ok = accel_kvm_usable(&why);

	switch (req) {
	case ACCEL_TCG:
		*out = ACCEL_TCG;
		return 0;
	case ACCEL_KVM:
		if (access("/dev/kvm", R_OK | W_OK) < 0)
			return err_errno("accelerator kvm: '/dev/kvm'");
		if (!ok)
			log_warn("using KVM as asked although the probe distrusts it: %s", why);
		*out = ACCEL_KVM;
		return 0;
	case ACCEL_AUTO:
	default:
		*out = ok ? ACCEL_KVM : ACCEL_TCG;
		log_debug("accelerator auto: %s (%s)", accel_name(*out), why);
		return 0;
	}
}
