/* guest.h: one booted guest with its agent — the "boot" stage shared by
 * `amiforge run` and `amiforge build`.
 *
 * guest_boot() creates a work directory (0711: QEMU may run as another user
 * and must reach the disks; every socket is in its 0700 sock/ subdirectory),
 * a qcow2 overlay on the image (the image is never written), the NoCloud
 * seed (or injects the agent with libguestfs), starts the guest with the
 * chosen hypervisor driver and waits until the agent answers a sync.
 *
 * SIGINT, SIGTERM and SIGHUP are handled while a guest exists: a watcher
 * thread destroys the guest, removes the work files and exits 128+signal,
 * so nothing is left running on any exit path short of SIGKILL (and under
 * libvirt even then: the domain is started with AUTODESTROY).
 *
 * A persistent guest (guest_opts.persistent, `build --on-error=abort|ask`)
 * may instead be left running on purpose (guest_detach): it is journaled
 * before it starts (guest_opts.journal) so that `amiforge clean` destroys
 * it, and its record (guest_record_write) tells `amiforge attach` how to
 * reach its agent. */
#ifndef AMIFORGE_GUEST_H
#define AMIFORGE_GUEST_H

#include "compat.h"
#include "util.h"
#include "drivers/hypervisor/hypervisor.h"

struct agent;
struct executor;
struct journal;

/* The host's 127.0.0.1 as a guest on QEMU's user network reaches it (slirp's
 * gateway): where a command in the guest finds the host end of a forward. */
#define GUEST_USER_NET_HOST "10.0.2.2"

/* Deadlines of the shutdown ladder, each rung (agent poweroff, ACPI). */
#define GUEST_POWEROFF_MS 60000
/* File data the bulk disk holds (a sparse file: only a transfer's bytes
 * take room, and only while it runs): as much as get_file takes. */
#define GUEST_BULK_CAPACITY EXEC_GET_FILE_MAX
#define GUEST_ACPI_MS 30000
/* Shell: wait (at most GUEST_BOOT_DONE_S) until systemd has finished the
 * boot's jobs, where systemd runs: cloud-init's stages are among them
 * (`cloud-init status --wait` alone may answer at once between two of
 * them). $boot_ended is then 1 when systemd says the boot ended (running
 * or degraded), empty otherwise or without systemd. A wait that passed its
 * bound (timeout's status 124; nothing else: systemd "offline", where it is
 * not the init, marks nothing) marks the boot (GUEST_BOOT_UNFINISHED, in
 * /run: gone at the next boot), and the later waits of that boot look once
 * instead of waiting as long again: a unit that never finishes starting
 * costs the bound once, not once per wait. For vm.wait_for_cloud_init, the
 * checkpoint before the last step, a reboot (executor-agent.c) and
 * generalisation. */
#define GUEST_BOOT_DONE_S 300
#define GUEST_STR_(x) #x
#define GUEST_STR(x) GUEST_STR_(x)
#define GUEST_BOOT_UNFINISHED "/run/amiforge-boot-unfinished"
#define GUEST_BOOT_DONE_SH \
	"boot_ended=\n" \
	"if command -v systemctl >/dev/null; then\n" \
	"  if [ -e " GUEST_BOOT_UNFINISHED " ]; then boot_end=$(systemctl is-system-running 2>/dev/null)\n" \
	"  else boot_end=$(timeout " GUEST_STR(GUEST_BOOT_DONE_S) " systemctl is-system-running --wait 2>/dev/null) ||\n" \
	"    [ $? -ne 124 ] || : >" GUEST_BOOT_UNFINISHED " 2>/dev/null; fi\n" \
	"  case $boot_end in running|degraded) boot_ended=1 ;; esac\n" \
	"fi\n"

enum guest_agent_via {
	GUEST_AGENT_SEED = 0,   /* NoCloud seed ISO + cloud-init bootcmd (default) */
	GUEST_AGENT_INJECT,     /* libguestfs writes agent + systemd unit into the overlay */
	GUEST_AGENT_DISK,       /* the image starts the agent itself (a build's agent
				 * layer, checkpoint.h); the seed is for cloud-init only */
};


struct guest_opts {
	const char *image;         /* base image (path) */
	const char *image_format;  /* its format, known (admitted when it came
				    * in, or amiforge's own output): never
				    * detected again. NULL: image comes from
				    * outside; admitted here (admit.h) */
	const char *driver;        /* "libvirt", "qemu" or NULL (libvirt, else qemu) */
	const char *uri;           /* libvirt URI or NULL */
	enum accel accel;
	enum arch_id arch;         /* the guest's architecture (recipe vm.arch, run
				    * --arch); ARCH_AUTO: read from the image
				    * (builder/disk/archprobe.h) */
	unsigned cpus;             /* 0: 2 */
	unsigned memory_mib;       /* 0: 2048 */
	uint64_t disk_size;        /* 0: the image's size */
	enum vm_net net;           /* VM_NET_NONE: no NIC; callers default to USER */
	const char *net_source;    /* NETWORK, BRIDGE: its name */
	/* Port forwards (user network); host_port 0: a free port of this
	 * machine's 127.0.0.1, chosen at boot (guest.forwards says which). */
	const struct vm_forward *forwards;
	size_t n_forwards;
	/* For step_ex (builder/exec/executor-net.h): "K=V" entries every
	 * command gets (the proxy; may be NULL), and why an offline guest is
	 * offline (NULL: "it has no network"). */
	const char *const *net_env;
	const char *offline_reason;
	enum guest_agent_via via;
	int64_t boot_timeout_ms;   /* 0: 600 s, from the guest's start (after the disk) */
	const char *work_dir;      /* create exactly this directory for the work
				    * files (a build journals it first); NULL: a
				    * fresh one under $TMPDIR */
	const char *name;          /* domain name; NULL: amiforge-<pid>-<random> */
	const char *overlay;       /* create the overlay exactly here (a build
				    * journals it first); NULL: <work>/disk.qcow2 */
	bool image_chain;          /* image is a qcow2 checkpoint with a backing
				    * chain amiforge wrote (explicit formats) */
	bool persistent;           /* may be kept running after this process
				    * exits (guest_detach); refused by drivers
				    * that cannot (hv_can_detach) */
	/* Go on from a state saved with the image (a checkpoint's: guest_
	 * snapshot) instead of booting, when restore_shape is this guest's
	 * (hv_state_shape) and the driver can; otherwise, or when the restore
	 * fails, boot (a line says why). */
	const char *restore_state;
	const char *restore_shape;
	const char *restore_name;  /* the guest that saved it: the restored one
				    * keeps its name */
	struct journal *journal;   /* NULL, or the domain / QEMU process is
				    * journaled (before it starts when its name
				    * is known) and released when destroyed */
	/* Called at each phase ("booting", "agent ready", "shutting down"). */
	void (*on_phase)(const char *phase, void *opaque);
	void *opaque;
};

struct guest {
	char *dir;             /* work directory */
	char *overlay;
	char *bulk;            /* the bulk data disk (make_bulk), or NULL */
	uint64_t bulk_nonce;
	char *seed;
	char *console_log;
	char *sock_dir;
	char *agent_sock;
	char *instance_id;
	char *name;
	char *uri;             /* guest_opts.uri, or NULL */
	char *base;            /* the image, absolute */
	char *base_format;     /* decided once, passed explicitly */
	bool base_shared;      /* world-readable: libvirt need not chown it */
	struct hv *hv;
	struct hv_vm *vm;
	struct agent *agent;
	struct executor *ex;   /* runs through the agent */
	struct executor *step_ex;  /* ex for the commands the user asked for
				    * (component steps, run's COMMAND): network
				    * readiness before the first, proxy and
				    * forward environment, the offline note
				    * (builder/exec/executor-net.h) */
	enum accel accel;      /* resolved */
	const struct arch *arch;   /* decided (stated, or read from the image) */
	char *nvram;           /* a UEFI guest's variable store (work directory) */
	enum guest_agent_via via;
	enum vm_net net;
	struct vm_forward forwards[VM_FORWARDS_MAX];   /* host ports resolved */
	size_t n_forwards;
	int64_t t_start;       /* now_ms() when guest_boot began */
	int64_t t_started;     /* ... when the hypervisor started the guest */
	int64_t t_ready;       /* ... when the agent answered */
	bool keep_dir;         /* keep the work directory (console log) on free */
	bool detached;         /* left running (guest_detach): free keeps it all */
	struct journal *journal;
	unsigned vm_jid, pid_jid;   /* its journal entries (0: none) */
	unsigned sock_jid;          /* its socket directory's, when outside dir */
	struct strv vm_record;      /* the driver's record (kind, fields...), or empty */
	unsigned resets;            /* stuck boots reset (guest_watch_boot) */
	char *shape;                /* hv_state_shape of its spec: what a state it
				     * saves needs; NULL: it cannot save one */
	bool restored;              /* went on from guest_opts.restore_state */
};

/* A guest under emulation now and then hangs early in its kernel (seen
 * here: an RCU stall report, nothing after it), and a wait for its agent
 * would last its whole deadline. The waits for the agent (the first boot,
 * reboots) call this between tries: when the console shows the current
 * boot stuck before userspace, the guest is reset, at most
 * GUEST_BOOT_RESETS times in its life (a warning says so). */
#define GUEST_BOOT_RESETS 1
void guest_watch_boot(struct guest *g);

/* Is the boot that starts at the last kernel banner ("Linux version ") in
 * console text stuck before userspace: a stall, soft lockup or panic
 * report and no line of systemd's after the banner? The report's line
 * into *line (NUL-terminated, at most size - 1 bytes, as the guest wrote
 * it: escape before printing). */
bool guest_console_stuck(const char *text, size_t len, char *line, size_t size);

/* What `amiforge attach` needs to reach a guest kept running, as JSON
 * (GUEST_RECORD_NAME in the build directory). */
#define GUEST_RECORD_NAME "guest.json"
#define GUEST_RECORD_MAX (64u * 1024)
struct guest_record {
	char *name;            /* domain name */
	char *driver;
	char *agent_socket;
	char *console_log;
	char *dir;             /* work directory */
	long pid;              /* the QEMU process (direct driver), or 0 */
	char *uri;             /* the libvirt URI when it names another host (its
				* agent is reached through the connection), or NULL */
};

/* Boot and wait for the agent. NULL with an error recorded; the work
 * directory is kept on failure when it holds a console log (its path is
 * part of the error). */
struct guest *guest_boot(const struct guest_opts *o);

/* Re-sync the agent within timeout_ms, discarding every stale answer (after
 * a reboot or a timeout). 0 or -1. */
int guest_resync(struct guest *g, int64_t timeout_ms);

/* Freeze the guest's disk as it is now: sync through the agent, then a live
 * external snapshot (hv_snapshot_disk) so that the current top layer stops
 * changing and the guest writes to new_top (absolute path; must not exist)
 * from now on. *frozen gets the frozen layer's path (caller frees); the
 * guest now owns new_top (removed by guest_free). With state (not NULL,
 * and g->shape set): the guest's memory saved there at the same instant
 * (hv_save_state), for guest_opts.restore_state. 0; 1: the disk frozen but
 * not the state (the error says why); -1: neither. */
int guest_snapshot(struct guest *g, const char *new_top, const char *state, char **frozen);

/* Give up the (powered-off) guest's overlay: it is the caller's now and
 * guest_free leaves it. Caller frees the returned path; NULL if none. */
char *guest_release_overlay(struct guest *g);

/* Can g's driver snapshot a running guest? */
bool guest_can_snapshot(const struct guest *g);

/* Merge the layers of the guest's disk chain above base (a layer of that
 * chain) into its top layer, live (hv_stream_disk): the top then backs onto
 * base; the merged layers are left as they are. The caller checks the top's
 * backing file. 0 or -1. guest_can_stream: can g's driver? */
int guest_stream(struct guest *g, const char *base);
bool guest_can_stream(const struct guest *g);

/* Run fn(sig, opaque) on SIGINT/SIGTERM/SIGHUP after the active guest (if
 * any) is torn down, before exiting 128+sig; installs the signal watcher
 * now (call it before starting threads). fn NULL removes the hook. */
void guest_on_signal(void (*fn)(int sig, void *opaque), void *opaque);

/* The ladder: agent poweroff → ACPI → destroy, each with its deadline.
 * 0 when the guest stopped by itself, 1 when it had to be destroyed, -1. */
int guest_shutdown(struct guest *g);

/* Close the agent channel, so that another process (`amiforge attach`)
 * can talk to the agent meanwhile; the next request reconnects and re-syncs. */
void guest_disconnect(struct guest *g);

/* Leave the guest running for inspection: it must have been booted
 * persistent. Its files stay (guest_free only frees memory), its journal
 * entries stay live. 0 or -1 (nothing changed: the guest is destroyed as
 * usual by guest_free). */
int guest_detach(struct guest *g);

/* Write g's record to path (atomically, 0600). 0 or -1. */
int guest_record_write(const struct guest *g, const char *path);
/* Read a record; every string is checked present. 0 or -1. */
int guest_record_load(const char *path, struct guest_record *rec);
void guest_record_release(struct guest_record *rec);

/* Destroy the guest if still running, remove overlay, seed and sockets (and
 * the work directory unless keep_dir), free; accepts NULL. A detached guest
 * is left as it is. */
void guest_free(struct guest *g);

#endif
