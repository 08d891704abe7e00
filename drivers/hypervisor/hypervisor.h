/* hypervisor.h: start and stop a local guest, whatever runs it (after
 * libvirt's virHypervisorDriver). Each driver fills a struct hv_driver with
 * designated initializers in its own file and is listed once in hv_drivers[]
 * (hypervisor.c); the core (hv_* functions) checks for missing operations in
 * one place and allocates each driver's private state.
 *
 *	struct hv *hv = hv_open("libvirt", NULL);        // or NULL: first that accepts
 *	struct hv_vm *vm = hv_start(hv, &spec);
 *	... talk to the agent on spec.agent_socket ...
 *	hv_shutdown(vm); hv_wait(vm, 60000) ...; hv_destroy(vm);
 *	hv_vm_free(vm); hv_close(hv);
 *
 * Every path in a vm_spec must exist (or be creatable) where the hypervisor
 * runs; for a remote libvirt URI that is the remote host. */
#ifndef AMIFORGE_HYPERVISOR_H
#define AMIFORGE_HYPERVISOR_H

#include "compat.h"
#include "accel.h"
#include "arch.h"
#include "buf.h"

/* Name of the virtio-serial port the guest agent listens on. */
#define HV_AGENT_PORT_NAME "org.amiforge.agent.0"

/* Disks per guest besides the seed (system disk + a few scratch disks). */
#define VM_DISKS_MAX 4

/* One image of a backing chain spelled out (vm_disk.chain). */
struct vm_backing {
	const char *path;
	const char *format;   /* "qcow2" or "raw" */
	bool shared;          /* other guests use it too: its ownership is left alone */
};

struct vm_disk {
	const char *path;
	const char *format;   /* "qcow2" or "raw": always explicit, never probed */
	bool readonly;
	/* The image this qcow2 overlay is backed by (NULL: none), its format,
	 * and whether the hypervisor may leave its ownership alone (it is
	 * world-readable): libvirt otherwise chowns the base for QEMU's user. */
	const char *backing;
	const char *backing_format;
	bool backing_shared;
	/* The backing image has a chain of its own (a checkpoint layer whose
	 * headers name every backing file with its format): the hypervisor
	 * must follow it, not be told it ends here. */
	bool backing_chain;
	/* Or the whole chain below this disk, top-down, each image with its
	 * format (n_chain > 0: backing and backing_chain are not used). The
	 * libvirt driver's copy of a spec for a remote host: the images there
	 * are volumes whose headers still name this host's files. */
	const struct vm_backing *chain;
	size_t n_chain;
};

/* The guest's network (issue 25). NONE: no interface at all. USER: QEMU's
 * user-mode network (slirp: outbound NAT, DHCP and DNS from QEMU itself, no
 * privileges), the default for every amiforge guest. NETWORK: a libvirt
 * network by name (libvirt only). BRIDGE: a host bridge (libvirt, or QEMU's
 * bridge helper under the direct driver). */
enum vm_net { VM_NET_NONE = 0, VM_NET_USER, VM_NET_NETWORK, VM_NET_BRIDGE };
/* "none", "user", "network", "bridge". */
const char *vm_net_name(enum vm_net n);

/* Host → guest TCP port forwards (user network only), host side bound to
 * 127.0.0.1 and nothing else. */
#define VM_FORWARDS_MAX 16
#define VM_NET_SOURCE_MAX 64   /* a libvirt network's name; a bridge: 15 (IFNAMSIZ) */
struct vm_forward {
	unsigned host_port;    /* 1..65535 */
	unsigned guest_port;   /* 1..65535 */
};

/* "GUEST" (host port 0: chosen free at boot) or "HOST:GUEST", decimal
 * ports 1-65535. 0, or -1 with an error recorded. */
int vm_forward_parse(const char *s, struct vm_forward *f);

struct vm_spec {
	const char *name;             /* [A-Za-z0-9_.-]{1,64}; the libvirt domain name */
	struct vm_disk disks[VM_DISKS_MAX];
	size_t n_disks;               /* >= 1; disks[0] boots */
	const char *seed_iso;         /* NoCloud seed (read-only cdrom, raw) or NULL */
	enum arch_id arch;            /* the guest's (arch.h); ARCH_AUTO: x86_64 */
	const char *nvram;            /* UEFI architectures: this guest's copy of the
				       * firmware's variable store (made from the
				       * template when missing); NULL: the direct
				       * driver's run_dir/efivars.fd, libvirt's own */
	unsigned cpus;                /* 1..64 */
	unsigned memory_mib;          /* 128..1048576 */
	enum accel accel;             /* ACCEL_KVM or ACCEL_TCG (resolved, not AUTO) */
	const char *console_log;      /* serial console appended to this file */
	uint64_t console_log_max;     /* direct QEMU driver: the file's ceiling;
				       * 0: HV_CONSOLE_LOG_MAX */
	const char *agent_socket;     /* the agent channel: a unix socket, server side */
	const char *run_dir;          /* 0700 directory for the driver's own sockets */
	enum vm_net net;              /* VM_NET_NONE: no NIC */
	const char *net_source;       /* the network's or bridge's name (NETWORK, BRIDGE):
				       * [A-Za-z0-9_.:-]{1,64}, a bridge at most 15 */
	struct vm_forward forwards[VM_FORWARDS_MAX];
	size_t n_forwards;            /* only with VM_NET_USER */
	bool persistent;              /* may outlive this process (hv_detach): libvirt
				       * starts it without AUTODESTROY; the owner
				       * journals it so that `clean` can destroy it */
	const char *restore_state;    /* NULL: boot. Else go on from this state
				       * (hv_save_state's file): the guest that
				       * saved it had this spec's shape
				       * (hv_state_shape) and disks[0] backs onto
				       * the layer frozen with it. */
};

/* Check a spec before it reaches a driver: 0 or -1 with an error recorded. */
int vm_spec_check(const struct vm_spec *spec);

enum hv_open_result {
	HV_OPEN_OK = 0,
	HV_OPEN_DECLINED = 1,  /* "not for me": the core tries the next driver */
	HV_OPEN_ERROR = -1,    /* error recorded */
};

/* The state of a started guest as a driver sees it. */
enum hv_state {
	HV_RUNNING = 0,
	HV_EXITED = 1,
};

struct hv;
struct strv;
struct hv_vm;

struct hv_driver {
	const char *name;
	/* What a recipe may ask of this driver (recipe.c checks): a connection
	 * URI (vm.connect, --connect), and libvirt's named networks
	 * (vm.network {network: NAME}). */
	bool takes_uri;
	bool named_networks;
	size_t conn_size;   /* bytes of private state the core allocates per connection */
	size_t vm_size;     /* bytes of private state the core allocates per guest */
	/* Connect. uri may be NULL (driver default). DECLINED when this host or URI
	 * is not for this driver; conn is zeroed memory of conn_size bytes. */
	enum hv_open_result (*open)(void *conn, const char *uri);
	/* Turn ACCEL_AUTO into KVM or TCG for where this connection runs guests
	 * of architecture a (a local connection's guest of another
	 * architecture than the host's is TCG before this is asked). NULL:
	 * accel_resolve() (the local probe). */
	int (*resolve_accel)(void *conn, const struct arch *a, enum accel req, enum accel *out);
	/* Create and start a transient guest. 0 or -1. */
	int (*start)(void *conn, void *vm, const struct vm_spec *spec);
	/* Has the guest exited? Waits up to timeout_ms (0: just look).
	 * HV_RUNNING, HV_EXITED or -1. */
	int (*wait)(void *conn, void *vm, int64_t timeout_ms);
	/* Ask politely: ACPI power button. 0 or -1. */
	int (*shutdown)(void *conn, void *vm);
	/* Pull the plug; the guest is gone when this returns 0. */
	int (*destroy)(void *conn, void *vm);
	/* Press the reset button: the guest boots again from its disks as they
	 * are (a hung boot's way out). NULL: the driver cannot. 0 or -1. */
	int (*reset)(void *conn, void *vm);
	/* Live external snapshot of the boot disk (disks[0]): its current top
	 * layer is frozen and the guest writes to new_top from now on, a qcow2
	 * the driver creates backed by the old top (absolute path, explicit
	 * backing format). Flush the guest's caches first (sync). A guest on
	 * another host writes to a top the driver makes there, which comes
	 * back to new_top when it stops (collect), and the frozen layer comes
	 * back over its file here at once, its header naming the image below
	 * it here. NULL: the driver cannot; checkpoints are then off. 0 or -1. */
	int (*snapshot_disk)(void *conn, void *vm, const char *new_top);
	/* snapshot_disk and, at the same instant, the guest's memory and
	 * device state: paused, boot disk frozen into new_top, state written
	 * to state (a new file, 0600), resumed. A guest started from the two
	 * (vm_spec.restore_state) goes on from that instant. Local guests
	 * only. NULL: the driver cannot. 0: both; 1: the disk snapshot only
	 * (the error says why not the state); -1: neither. The guest runs on
	 * in every case. */
	int (*save_state)(void *conn, void *vm, const char *new_top, const char *state);
	/* What a saved state depends on besides the spec's shape: the
	 * emulator's identity (its binary, its version), appended to out as
	 * one line. NULL: nothing more. 0 or -1. */
	int (*state_identity)(void *conn, const struct vm_spec *spec, struct buf *out);
	/* The guest has stopped (shut down or destroyed): bring its writable
	 * disks' contents back to the spec's paths (a remote libvirt host's
	 * volumes are downloaded). NULL: the disks are the spec's files
	 * already. 0 or -1. */
	int (*collect)(void *conn, void *vm);
	/* Live stream into the boot disk's top layer: copy into it the data of
	 * every backing layer above base (a file in its backing chain, absolute
	 * path), then back it onto base directly; the layers in between are
	 * left unchanged (they may be other checkpoints'). Returns when the
	 * job has ended, within timeout_ms. On another host, base is a local
	 * file of the chain and the driver streams onto its copy there (the
	 * top's header here is written when it comes back). NULL: the driver
	 * cannot (chains are then not merged). 0 or -1. */
	int (*stream_disk)(void *conn, void *vm, const char *base, int64_t timeout_ms);
	/* Let a guest started with spec->persistent outlive this process: after
	 * it, vm_release and close must leave it running. NULL: the driver's
	 * guests cannot outlive amiforge (--on-error=abort is refused). 0 or -1. */
	int (*detach)(void *conn, void *vm);
	/* The journal record (journal.h) that lets `amiforge clean` destroy the
	 * guest spec describes, written before start: kind then fields, pushed
	 * onto out (libvirt: "domain NAME URI"). NULL: none. 0 or -1. */
	int (*journal_record)(void *conn, const struct vm_spec *spec, struct strv *out);
	/* `amiforge clean`'s side of that record: release_kind names it, and
	 * release destroys what it names from its fields (no connection of the
	 * run's is left; the fields are untrusted: checked here). The journal
	 * looks the kind up in hv_drivers[] as it does target.h's table. NULL:
	 * none. 0 (also when it is gone already) or -1. */
	const char *release_kind;
	int (*release)(const char *const *fields, size_t nfields);
	/* The process running the guest when the driver runs one itself (QEMU),
	 * journaled right after start under release_kind (journal_add_pid's
	 * fields: release is then proc.h's proc_release); 0: none. NULL: never. */
	pid_t (*pid)(void *conn, void *vm);
	/* Free what start() allocated (the guest is no longer running, or was
	 * detached). -1 (warned) when something of the guest is left behind (a
	 * remote host's volumes): the owner keeps its journal record for
	 * `clean`. */
	int (*vm_release)(void *conn, void *vm);
	void (*close)(void *conn);
};

/* The registered drivers, NULL-terminated, default first. */
extern const struct hv_driver *const hv_drivers[];

const struct hv_driver *hv_driver_find(const char *name);

/* Every domain amiforge defines is named HV_DOMAIN_PREFIX + [A-Za-z0-9_-]+;
 * `clean` touches no other (hv_domain_name_ours). */
#define HV_DOMAIN_PREFIX "amiforge-"
bool hv_domain_name_ours(const char *name);

/* The libvirt URIs amiforge connects to (recipe vm.connect, --connect, the
 * journal): the qemu driver, locally or over the unix, ssh or tls transport,
 * path /system or /session, and only query parameters that cannot run a
 * program or redirect the connection (no ext transport, command=, netcat=,
 * socket=, name=). 0, or -1 with the reason recorded. */
int hv_uri_check(const char *uri);

/* Open a connection with the named driver, or (name NULL) with the first
 * driver that does not decline. NULL with an error recorded. */
struct hv *hv_open(const char *name, const char *uri);
const char *hv_name(const struct hv *hv);
/* KVM or TCG for a guest of architecture a: KVM serves only the host's
 * own architecture (another one runs under TCG; kvm asked for it is an
 * error), then the driver's resolve_accel or the local probe. */
int hv_resolve_accel(struct hv *hv, const struct arch *a, enum accel req, enum accel *out);

/* Start a guest; the spec's strings must outlive the vm. NULL on error. */
struct hv_vm *hv_start(struct hv *hv, const struct vm_spec *spec);
/* HV_RUNNING (still running after timeout_ms), HV_EXITED, or -1. */
int hv_wait(struct hv_vm *vm, int64_t timeout_ms);
int hv_shutdown(struct hv_vm *vm);
int hv_destroy(struct hv_vm *vm);
/* The driver's reset: the guest's hard reset button. -1 with "cannot"
 * when it has none. */
int hv_reset(struct hv_vm *vm);
/* The driver's snapshot_disk (see struct hv_driver); -1 with "cannot" when
 * it has none. hv_can_snapshot: does it have one? */
int hv_snapshot_disk(struct hv_vm *vm, const char *new_top);
bool hv_can_snapshot(const struct hv *hv);
/* The driver's stream_disk (see struct hv_driver); -1 with "cannot" when it
 * has none. The caller checks the result (the top's backing file). */
int hv_stream_disk(struct hv_vm *vm, const char *base, int64_t timeout_ms);
bool hv_can_stream(const struct hv *hv);

/* The driver's save_state (see struct hv_driver): 0, 1 (disk only, the
 * error recorded says why) or -1. hv_can_save_state: does g's driver have
 * one, for a local guest? */
int hv_save_state(struct hv_vm *vm, const char *new_top, const char *state);
bool hv_can_save_state(const struct hv *hv);
/* What a guest's saved state needs of the guest that restores it, as text
 * (driver, architecture, machine, accelerator, vCPUs, memory, each disk's
 * format and mode, the seed, console, agent channel and NIC, the driver's
 * state_identity): a state saved by a guest of one shape is only restored
 * into a spec with the same. NULL (error recorded) when the driver cannot
 * save states, or for a guest that a restore would leave without a new VM
 * generation ID (only x86_64 has one) or without its UEFI variables.
 * Caller frees. */
char *hv_state_shape(struct hv *hv, const struct vm_spec *spec);

/* After the guest stopped: the driver's collect, once (see struct
 * hv_driver). 0 or -1. */
int hv_collect(struct hv_vm *vm);

/* Does the URI name another host (a server part)? Its guests' files are
 * then placed there by the driver (their backing chains too), and no
 * checkpoint is taken while they run (hv_can_snapshot). */
bool hv_uri_remote(const char *uri);

/* Leave the guest running when vm is freed and this process exits (it was
 * started with spec->persistent). 0 or -1 ("cannot" when the driver has no
 * detach). hv_can_detach: does it have one? */
int hv_detach(struct hv_vm *vm);
bool hv_can_detach(const struct hv *hv);
/* The driver's journal_record and pid (see struct hv_driver): out stays
 * empty / 0 when there is nothing to journal. */
int hv_journal_record(struct hv *hv, const struct vm_spec *spec, struct strv *out);
pid_t hv_pid(struct hv_vm *vm);
/* The journal kind the driver's records (journal_record, or the pid) go
 * under: its release_kind; NULL: none. */
const char *hv_release_kind(const struct hv *hv);
/* Release what a record of hv_journal_record's names (fields: the record
 * without its kind), as `clean` does, on a connection of the driver's own:
 * safe while another thread uses hv. No release: 0. 0 or -1. */
int hv_release_record(const struct hv *hv, const char *const *fields, size_t nfields);

/* The shutdown ladder's last two rungs: ACPI, wait up to acpi_ms, then
 * destroy. Returns 0 when the guest is gone (1 if it had to be destroyed),
 * -1 when even destroy failed. */
int hv_stop(struct hv_vm *vm, int64_t acpi_ms);

/* Destroy the guest if it still runs (unless detached), then free; accepts
 * NULL. -1 when something of it may be left (warned; the journal record
 * must stay), else 0. */
int hv_vm_free(struct hv_vm *vm);
void hv_close(struct hv *hv);

/* The direct QEMU driver's console log keeps this much of a guest's serial
 * output (the boot checks scan it whole: keep it below their 8 MiB), then
 * one line saying it was truncated (drivers/hypervisor/console.c). */
#define HV_CONSOLE_LOG_MAX (4u * 1024 * 1024)

/* Copy in to out (opened for appending) until EOF, keeping the file within
 * max bytes plus one truncation note. 0 or -1. */
int hv_console_copy(int in, int out, uint64_t max);
/* Fork a logger reading fifo_fd (a FIFO opened O_RDONLY|O_NONBLOCK, so that
 * its writer never waits for a reader): it opens log_path (appending, 0600)
 * and runs hv_console_copy() until the writer closes. Its pid, or -1. The
 * caller closes its own fifo_fd. */
pid_t hv_console_logger_start(int fifo_fd, const char *log_path, uint64_t max);
/* Reap the logger, waiting up to wait_ms for it to drain, then SIGKILL.
 * 0 when it ended by itself with success. */
int hv_console_logger_stop(pid_t pid, int64_t wait_ms);

/* Generated configuration, for golden tests and --dry-run. Caller frees.
 * NULL with an error recorded on a bad spec. */
char *hv_libvirt_domain_xml(const struct vm_spec *spec);
/* argv of the spec's QEMU (qemu-system-x86_64, -aarch64: arch.h) for spec
 * with its QMP socket at qmp_path. */
int hv_qemu_argv(const struct vm_spec *spec, const char *qmp_path, bool sandbox,
		 struct strv *argv);

#endif
