/* hypervisor.c: the driver table and the checks every driver relies on. */
#include <ctype.h>

#include "hypervisor.h"
#include "error.h"
#include "log.h"
#include "util.h"

extern const struct hv_driver hv_libvirt_driver;
extern const struct hv_driver hv_qemu_driver;

const struct hv_driver *const hv_drivers[] = {
	&hv_libvirt_driver,
	&hv_qemu_driver,
	NULL,
};

struct hv {
	const struct hv_driver *drv;
	void *priv;
	bool remote;   /* the URI names another host */
};

struct hv_vm {
	struct hv *hv;
	void *priv;
	bool started;   /* start() succeeded: vm_release() owed */
	bool gone;      /* seen exited or destroyed */
	bool persistent;
	bool detached;  /* left running on purpose (hv_detach) */
	bool collected; /* hv_collect done */
};

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n &&
	       s[0] != '.' && s[0] != '-';
}

static bool format_ok(const char *f)
{
	return f && (strcmp(f, "qcow2") == 0 || strcmp(f, "raw") == 0);
}

/* QEMU splits -drive/-chardev options on ','; libvirt does not care, but one
 * rule for both keeps paths portable between drivers. */
static int path_ok(const char *what, const char *p)
{
	if (!p || p[0] != '/')
		return err_set("vm %s '%s': must be an absolute path", what, p ? p : "(none)");
	if (strchr(p, ','))
		return err_set("vm %s '%s': ',' is not allowed in paths", what, p);
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return err_set("vm %s '%s': control characters are not allowed", what, p);
	return 0;
}

const char *vm_net_name(enum vm_net n)
{
	switch (n) {
	case VM_NET_NONE:
		return "none";
	case VM_NET_USER:
		return "user";
	case VM_NET_NETWORK:
		return "network";
	case VM_NET_BRIDGE:
		return "bridge";
	}
	return "?";
}

static int port_parse(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (n < 1 || n > 5)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = v;
	return 0;
}

int vm_forward_parse(const char *s, struct vm_forward *f)
{
	const char *colon = strchr(s, ':');

	memset(f, 0, sizeof(*f));
	if (colon ? port_parse(s, (size_t)(colon - s), &f->host_port) < 0 ||
		    port_parse(colon + 1, strlen(colon + 1), &f->guest_port) < 0
		  : port_parse(s, strlen(s), &f->guest_port) < 0)
		return err_set("port forward '%s': expected GUEST_PORT or HOST_PORT:GUEST_PORT "
			       "(1-65535)", s);
	return 0;
}

/* A libvirt network or bridge name: no ',' or '=' (QEMU options), no '/'. */
static bool net_source_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.:-", s[i]))
			return false;
	return true;
}

static int net_check(const struct vm_spec *s)
{
	size_t i, k;

	switch (s->net) {
	case VM_NET_NONE:
	case VM_NET_USER:
		break;
	case VM_NET_NETWORK:
	case VM_NET_BRIDGE:
		if (!net_source_ok(s->net_source, s->net == VM_NET_BRIDGE ? 15 : VM_NET_SOURCE_MAX))
			return err_set("vm '%s': %s name '%s' must be 1-%d of [A-Za-z0-9_.:-]",
				       s->name, vm_net_name(s->net),
				       s->net_source ? s->net_source : "",
				       s->net == VM_NET_BRIDGE ? 15 : VM_NET_SOURCE_MAX);
		break;
	default:
		return err_set("vm '%s': unknown network mode", s->name);
	}
	if (s->n_forwards > VM_FORWARDS_MAX)
		return err_set("vm '%s': %zu port forwards, at most %d", s->name, s->n_forwards,
			       VM_FORWARDS_MAX);
	if (s->n_forwards && s->net != VM_NET_USER)
		return err_set("vm '%s': port forwards need the user network, not '%s'", s->name,
			       vm_net_name(s->net));
	for (i = 0; i < s->n_forwards; i++) {
		const struct vm_forward *f = &s->forwards[i];

		if (f->host_port < 1 || f->host_port > 65535 || f->guest_port < 1 ||
		    f->guest_port > 65535)
			return err_set("vm '%s': port forward %u:%u out of range 1-65535", s->name,
				       f->host_port, f->guest_port);
		for (k = 0; k < i; k++)
			if (s->forwards[k].host_port == f->host_port)
				return err_set("vm '%s': host port %u forwarded twice", s->name,
					       f->host_port);
	}
	return 0;
}

int vm_spec_check(const struct vm_spec *s)
{
	size_t i;

	if (!s->name || !name_ok(s->name))
		return err_set("invalid vm name '%s': 1-64 of [A-Za-z0-9_.-]",
			       s->name ? s->name : "");
	if (s->n_disks < 1 || s->n_disks > VM_DISKS_MAX)
		return err_set("vm '%s': %zu disks, expected 1 to %d", s->name, s->n_disks,
			       VM_DISKS_MAX);
	for (i = 0; i < s->n_disks; i++) {
		if (path_ok("disk", s->disks[i].path) < 0)
			return -1;
		if (!format_ok(s->disks[i].format))
			return err_set("vm disk '%s': format '%s' is not qcow2 or raw",
				       s->disks[i].path,
				       s->disks[i].format ? s->disks[i].format : "(none)");
		if (s->disks[i].backing &&
		    (path_ok("backing file", s->disks[i].backing) < 0 ||
		     !format_ok(s->disks[i].backing_format) ||
		     strcmp(s->disks[i].format, "qcow2") != 0))
			return err_set("vm disk '%s': backing file needs an explicit format "
				       "and a qcow2 overlay", s->disks[i].path);
	}
	if (s->seed_iso && path_ok("seed", s->seed_iso) < 0)
		return -1;
	if (s->arch != ARCH_AUTO && arch_get(s->arch)->id != s->arch)   /* not a row */
		return err_set("vm '%s': unknown architecture %d", s->name, (int)s->arch);
	if (s->nvram && path_ok("UEFI variable store", s->nvram) < 0)
		return -1;
	if (s->cpus < 1 || s->cpus > 64)
		return err_set("vm '%s': %u CPUs, expected 1 to 64", s->name, s->cpus);
	if (s->memory_mib < 128 || s->memory_mib > 1048576)
		return err_set("vm '%s': %u MiB of memory, expected 128 to 1048576", s->name,
			       s->memory_mib);
	if (s->accel != ACCEL_KVM && s->accel != ACCEL_TCG)
		return err_set("vm '%s': accelerator not resolved", s->name);
	if (s->console_log && path_ok("console log", s->console_log) < 0)
		return -1;
	if (s->agent_socket && path_ok("agent socket", s->agent_socket) < 0)
		return -1;
	/* sun_path is 108 bytes including the NUL. */
	if (s->agent_socket && strlen(s->agent_socket) >= 108)
		return err_set("vm agent socket '%s': path too long for a unix socket",
			       s->agent_socket);
	if (s->run_dir && path_ok("run dir", s->run_dir) < 0)
		return -1;
	if (s->restore_state && path_ok("saved state", s->restore_state) < 0)
		return -1;
	return net_check(s);
}

const struct hv_driver *hv_driver_find(const char *name)
{
	for (size_t i = 0; hv_drivers[i]; i++)
		if (strcmp(hv_drivers[i]->name, name) == 0)
			return hv_drivers[i];
	return NULL;
}

static struct hv *try_open(const struct hv_driver *drv, const char *uri,
			   enum hv_open_result *res)
{
	struct hv *hv = xcalloc(1, sizeof(*hv));

	hv->drv = drv;
	hv->remote = hv_uri_remote(uri);
	hv->priv = xcalloc(1, drv->conn_size ? drv->conn_size : 1);
	*res = drv->open(hv->priv, uri);
	if (*res == HV_OPEN_OK)
		return hv;
	free(hv->priv);
	free(hv);
	return NULL;
}

struct hv *hv_open(const char *name, const char *uri)
{
	enum hv_open_result res;
	struct hv *hv;

	if (uri && hv_uri_check(uri) < 0)
		return NULL;
	if (name) {
		const struct hv_driver *drv = hv_driver_find(name);

		if (!drv) {
			err_set("unknown hypervisor driver '%s' (libvirt, qemu)", name);
			return NULL;
		}
		hv = try_open(drv, uri, &res);
		if (res == HV_OPEN_DECLINED && !err_isset())
			err_set("hypervisor driver '%s' declined URI '%s'", name,
				uri ? uri : "(default)");
		return hv;
	}
	for (size_t i = 0; hv_drivers[i]; i++) {
		err_clear();
		hv = try_open(hv_drivers[i], uri, &res);
		if (res == HV_OPEN_OK) {
			log_debug("hypervisor: using driver '%s'", hv_drivers[i]->name);
			return hv;
		}
		if (res == HV_OPEN_ERROR)
			return NULL;
		log_debug("hypervisor: driver '%s' declined: %s", hv_drivers[i]->name,
			  err_msg());
	}
	err_set("no hypervisor driver accepts URI '%s'", uri ? uri : "(default)");
	return NULL;
}

const char *hv_name(const struct hv *hv)
{
	return hv->drv->name;
}

int hv_resolve_accel(struct hv *hv, const struct arch *a, enum accel req, enum accel *out)
{
	if (!hv->remote && a != arch_host()) {
		if (req == ACCEL_KVM)
			return err_set("accelerator kvm: this host is %s, the guest %s: it runs "
				       "under TCG only", arch_host()->name, a->name);
		*out = ACCEL_TCG;
		log_debug("accelerator: tcg (an %s guest on an %s host)", a->name,
			  arch_host()->name);
		return 0;
	}
	if (hv->drv->resolve_accel)
		return hv->drv->resolve_accel(hv->priv, a, req, out);
	return accel_resolve(req, out);
}

struct hv_vm *hv_start(struct hv *hv, const struct vm_spec *spec)
{
	struct hv_vm *vm;

	if (vm_spec_check(spec) < 0)
		return NULL;
	vm = xcalloc(1, sizeof(*vm));
	vm->hv = hv;
	vm->priv = xcalloc(1, hv->drv->vm_size ? hv->drv->vm_size : 1);
	if (hv->drv->start(hv->priv, vm->priv, spec) < 0) {
		free(vm->priv);
		free(vm);
		return NULL;
	}
	vm->started = true;
	vm->persistent = spec->persistent;
	return vm;
}

int hv_wait(struct hv_vm *vm, int64_t timeout_ms)
{
	int r;

	if (vm->gone)
		return HV_EXITED;
	r = vm->hv->drv->wait(vm->hv->priv, vm->priv, timeout_ms);
	if (r == HV_EXITED)
		vm->gone = true;
	return r;
}

int hv_shutdown(struct hv_vm *vm)
{
	if (vm->gone)
		return 0;
	if (!vm->hv->drv->shutdown)
		return err_set("driver '%s' cannot shut a guest down", vm->hv->drv->name);
	return vm->hv->drv->shutdown(vm->hv->priv, vm->priv);
}

int hv_destroy(struct hv_vm *vm)
{
	if (vm->gone)
		return 0;
	if (vm->hv->drv->destroy(vm->hv->priv, vm->priv) < 0)
		return -1;
	vm->gone = true;
	return 0;
}

int hv_reset(struct hv_vm *vm)
{
	if (vm->gone)
		return err_set("reset: the guest is not running");
	if (!vm->hv->drv->reset)
		return err_set("driver '%s' cannot reset a guest", vm->hv->drv->name);
	return vm->hv->drv->reset(vm->hv->priv, vm->priv);
}

bool hv_can_snapshot(const struct hv *hv)
{
	return hv->drv->snapshot_disk != NULL;
}

int hv_snapshot_disk(struct hv_vm *vm, const char *new_top)
{
	if (vm->gone)
		return err_set("snapshot to '%s': the guest is not running", new_top);
	if (!vm->hv->drv->snapshot_disk)
		return err_set("driver '%s' cannot snapshot a running guest's disk",
			       vm->hv->drv->name);
	if (new_top[0] != '/')
		return err_set("snapshot to '%s': not an absolute path", new_top);
	return vm->hv->drv->snapshot_disk(vm->hv->priv, vm->priv, new_top);
}

bool hv_can_save_state(const struct hv *hv)
{
	return hv->drv->save_state != NULL && !hv->remote;
}

int hv_save_state(struct hv_vm *vm, const char *new_top, const char *state)
{
	if (vm->gone)
		return err_set("save the state to '%s': the guest is not running", state);
	if (!hv_can_save_state(vm->hv))
		return err_set("driver '%s' cannot save a guest's state here",
			       vm->hv->drv->name);
	if (new_top[0] != '/' || state[0] != '/')
		return err_set("save the state to '%s' beside '%s': not absolute paths", state,
			       new_top);
	return vm->hv->drv->save_state(vm->hv->priv, vm->priv, new_top, state);
}

char *hv_state_shape(struct hv *hv, const struct vm_spec *s)
{
	const struct arch *a = arch_get(s->arch);
	struct buf b = BUF_INIT(4096);
	size_t i;

	if (!hv_can_save_state(hv)) {
		err_set("driver '%s' cannot save a guest's state here", hv->drv->name);
		return NULL;
	}
	if (vm_spec_check(s) < 0)
		return NULL;
	/* Only where a restored guest gets a new VM generation ID (x86_64
	 * here), for kernels that reseed on it, and keeps nothing outside the
	 * state but its disks (a UEFI variable store is a file of its own). */
	if (a->id != ARCH_X86_64 || a->fw_code) {
		err_set("no saved states for %s guests (no VM generation ID, or UEFI variables "
			"outside the state)", a->name);
		return NULL;
	}
	if (buf_printf(&b, "%s %s %s %s cpus=%u memory=%u", hv->drv->name, a->name, a->machine,
		       accel_name(s->accel), s->cpus, s->memory_mib) < 0)
		return NULL;
	for (i = 0; i < s->n_disks; i++)
		if (buf_printf(&b, " disk=%s%s", s->disks[i].format,
			       s->disks[i].readonly ? ":ro" : "") < 0)
			return NULL;
	if (buf_printf(&b, " seed=%d console=%d agent=%d net=%s\n", s->seed_iso != NULL,
		       s->console_log != NULL, s->agent_socket != NULL, vm_net_name(s->net)) < 0 ||
	    (hv->drv->state_identity && hv->drv->state_identity(hv->priv, s, &b) < 0)) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

int hv_collect(struct hv_vm *vm)
{
	if (vm->collected || !vm->hv->drv->collect)
		return 0;
	if (!vm->gone)
		return err_set("collect the disks: the guest is still running");
	if (vm->hv->drv->collect(vm->hv->priv, vm->priv) < 0)
		return -1;
	vm->collected = true;
	return 0;
}

bool hv_can_stream(const struct hv *hv)
{
	return hv->drv->stream_disk != NULL;
}

int hv_stream_disk(struct hv_vm *vm, const char *base, int64_t timeout_ms)
{
	if (vm->gone)
		return err_set("stream onto '%s': the guest is not running", base);
	if (!vm->hv->drv->stream_disk)
		return err_set("driver '%s' cannot stream a running guest's disk",
			       vm->hv->drv->name);
	if (base[0] != '/')
		return err_set("stream onto '%s': not an absolute path", base);
	return vm->hv->drv->stream_disk(vm->hv->priv, vm->priv, base, timeout_ms);
}

bool hv_can_detach(const struct hv *hv)
{
	return hv->drv->detach != NULL;
}

int hv_detach(struct hv_vm *vm)
{
	if (vm->gone)
		return err_set("detach: the guest is not running");
	if (!vm->hv->drv->detach)
		return err_set("driver '%s' cannot leave a guest running after amiforge exits",
			       vm->hv->drv->name);
	if (!vm->persistent)
		return err_set("detach: the guest was not started persistent");
	if (vm->hv->drv->detach(vm->hv->priv, vm->priv) < 0)
		return -1;
	vm->detached = true;
	return 0;
}

int hv_journal_record(struct hv *hv, const struct vm_spec *spec, struct strv *out)
{
	if (!hv->drv->journal_record)
		return 0;
	if (vm_spec_check(spec) < 0)
		return -1;
	return hv->drv->journal_record(hv->priv, spec, out);
}

const char *hv_release_kind(const struct hv *hv)
{
	return hv->drv->release_kind;
}

int hv_release_record(const struct hv *hv, const char *const *fields, size_t nfields)
{
	return hv->drv->release ? hv->drv->release(fields, nfields) : 0;
}

pid_t hv_pid(struct hv_vm *vm)
{
	if (!vm->hv->drv->pid || vm->gone)
		return 0;
	return vm->hv->drv->pid(vm->hv->priv, vm->priv);
}

int hv_stop(struct hv_vm *vm, int64_t acpi_ms)
{
	int r;

	r = hv_wait(vm, 0);
	if (r == HV_EXITED)
		return 0;
	if (r == HV_RUNNING && acpi_ms > 0 && hv_shutdown(vm) == 0) {
		r = hv_wait(vm, acpi_ms);
		if (r == HV_EXITED)
			return 0;
	}
	if (r < 0)
		log_debug("shutdown: %s", err_msg());
	log_debug("shutdown: destroying the guest");
	if (hv_destroy(vm) < 0)
		return -1;
	return 1;
}

int hv_vm_free(struct hv_vm *vm)
{
	int r = 0;

	if (!vm)
		return 0;
	if (vm->started) {
		/* Freeing is cleanup after success or failure: the error that
		 * led here (if any) is what the caller reports, not ours. */
		char *saved = err_isset() ? xstrdup(err_msg()) : NULL;

		if (!vm->gone && !vm->detached && hv_destroy(vm) < 0) {
			log_warn("%s", err_msg());
			r = -1;
		}
		if (vm->hv->drv->vm_release && vm->hv->drv->vm_release(vm->hv->priv, vm->priv) < 0)
			r = -1;
		if (saved)
			err_set("%s", saved);
		else
			err_clear();
		free(saved);
	}
	free(vm->priv);
	free(vm);
	return r;
}

void hv_close(struct hv *hv)
{
	if (!hv)
		return;
	if (hv->drv->close)
		hv->drv->close(hv->priv);
	free(hv->priv);
	free(hv);
}

/* ---- libvirt URIs ---------------------------------------------------------- */

/* Query parameters that choose how to reach a daemon and never name a
 * program to run or a socket to talk to (libvirt's remote driver also takes
 * command=, netcat=, socket= and name=: refused). */
static const char *const uri_params_ok[] = {
	"mode", "proxy", "no_verify", "no_tty", "pkipath", "keyfile", "known_hosts",
	"known_hosts_verify", "sshauth", "tls_priority",
};

static bool uri_host_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && !strchr(".-_:@[]", c))
			return false;
	}
	return true;
}

int hv_uri_check(const char *uri)
{
	static const char *const schemes[] = { "qemu", "qemu+unix", "qemu+ssh", "qemu+tls" };
	const char *sep = strstr(uri, "://"), *auth, *path, *q;
	size_t slen, alen, plen, i;
	bool ok = false, remote;

	for (i = 0; uri[i]; i++)
		if ((unsigned char)uri[i] <= ' ' || uri[i] == 0x7f || uri[i] == '#')
			return err_set("libvirt URI: control character, space or '#' refused");
	if (!sep)
		return err_set("libvirt URI '%s': not DRIVER[+TRANSPORT]://[HOST]/PATH "
			       "(e.g. qemu:///system)", uri);
	slen = (size_t)(sep - uri);
	for (i = 0; i < ARRAY_SIZE(schemes); i++)
		ok = ok || (strlen(schemes[i]) == slen && strncmp(uri, schemes[i], slen) == 0);
	if (!ok)
		return err_set("libvirt URI '%s': only the qemu driver over the local, unix, "
			       "ssh and tls transports (qemu, qemu+unix, qemu+ssh, qemu+tls) "
			       "is allowed", uri);
	remote = slen > 4 && (strncmp(uri + 5, "ssh", 3) == 0 || strncmp(uri + 5, "tls", 3) == 0);
	auth = sep + 3;
	path = strchr(auth, '/');
	if (!path)
		return err_set("libvirt URI '%s': no path (/system or /session)", uri);
	alen = (size_t)(path - auth);
	if (alen && !remote)
		return err_set("libvirt URI '%s': a host needs the ssh or tls transport", uri);
	if (remote && (!alen || !uri_host_ok(auth, alen)))
		return err_set("libvirt URI '%s': bad or missing host", uri);
	q = strchr(path, '?');
	plen = q ? (size_t)(q - path) : strlen(path);
	if (!((plen == 7 && strncmp(path, "/system", 7) == 0) ||
	      (plen == 8 && strncmp(path, "/session", 8) == 0)))
		return err_set("libvirt URI '%s': path must be /system or /session", uri);
	while (q && *q) {
		const char *p = q + 1, *end = strchr(p, '&'), *eq;
		size_t klen;

		if (!end)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		klen = eq ? (size_t)(eq - p) : (size_t)(end - p);
		for (i = 0, ok = false; i < ARRAY_SIZE(uri_params_ok); i++)
			ok = ok || (strlen(uri_params_ok[i]) == klen &&
				    strncmp(p, uri_params_ok[i], klen) == 0);
		if (klen && !ok)
			return err_set("libvirt URI '%s': parameter '%.*s' is not allowed "
				       "(it can run a command or redirect the connection)",
				       uri, (int)klen, p);
		q = *end ? end : NULL;
	}
	return 0;
}

bool hv_uri_remote(const char *uri)
{
	const char *sep = uri ? strstr(uri, "://") : NULL;

	return sep && sep[3] && sep[3] != '/';
}

bool hv_domain_name_ours(const char *name)
{
	size_t n = strlen(HV_DOMAIN_PREFIX);

	if (strncmp(name, HV_DOMAIN_PREFIX, n) != 0 || !name[n])
		return false;
	for (name += n; *name; name++)
		if (!isalnum((unsigned char)*name) && *name != '-' && *name != '_')
			return false;
	return true;
}
