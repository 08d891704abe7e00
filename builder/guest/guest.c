/* guest.c: boot an image with the agent inside, and tear it all down. */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "guest.h"
#include "agent-client.h"
#include "builder/exec/executor.h"
#include "builder/exec/executor-net.h"
#include "inject.h"
#include "builder/build/journal.h"
#include "builder/disk/appliance.h"
#include "builder/disk/archprobe.h"
#include "builder/disk/overlay.h"
#include "seed.h"
#include "buf.h"
#include "drivers/hypervisor/hypervisor.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* One attempt of the agent handshake; the boot deadline bounds the total. */
#define GUEST_SYNC_SLICE_MS 3000
/* agent_poweroff acknowledgement. */
#define GUEST_POWEROFF_ACK_MS 10000
/* Console log read for diagnostics (the tail matters). */
#define GUEST_CONSOLE_SCAN_MAX (8u * 1024 * 1024)
/* How much of the console's end guest_watch_boot reads: a kernel's boot
 * messages up to a stall report are tens of KiB. */
#define GUEST_WATCH_TAIL (256 * 1024)

/* The guest the signal watcher tears down. */
static pthread_mutex_t active_lock = PTHREAD_MUTEX_INITIALIZER;
static struct guest *active;
/* The owner's last words (a build's journal cleanup), run by the watcher. */
static void (*signal_hook)(int sig, void *opaque);
static void *signal_hook_opaque;

/* `sync` in the guest before a snapshot: writes back the page cache. */
#define GUEST_SYNC_MS (300 * 1000)
/* A stream copies at most a few GiB host-side (no guest involved). */
#define GUEST_STREAM_MS (600 * 1000)

static void remove_work_files(struct guest *g)
{
	if (g->overlay)
		unlink(g->overlay);
	if (g->bulk)
		unlink(g->bulk);
	if (g->seed)
		unlink(g->seed);
	if (g->nvram)
		unlink(g->nvram);
	if (g->sock_dir)
		remove_tree(g->sock_dir);
	if (g->dir && !g->keep_dir)
		remove_tree(g->dir);
	else if (g->dir)
		temp_dir_forget(g->dir);	/* the user is told it is kept */
}

static void *signal_watcher(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;

	if (sigwait(set, &sig) != 0)
		return NULL;
	pthread_mutex_lock(&active_lock);
	if (active) {
		fprintf(stderr, "\namiforge: %s: destroying the guest\n", strsignal(sig));
		if (active->vm && hv_destroy(active->vm) < 0)
			fprintf(stderr, "amiforge: %s\n", err_msg());
		/* What the guest's driver made beside it (a remote host's
		 * volumes, uploaded or being uploaded): released from its
		 * record on a connection of its own, as `clean` would. A
		 * journal's owner does it in signal_hook, from the journal. */
		if (!active->journal && active->vm_record.n > 1 &&
		    hv_release_record(active->hv, (const char *const *)active->vm_record.v + 1,
				      active->vm_record.n - 1) < 0)
			fprintf(stderr, "amiforge: %s (amiforge clean cannot see it: no build "
				"journal)\n", err_msg());
		active->keep_dir = active->console_log != NULL;
		remove_work_files(active);
		if (active->keep_dir)
			fprintf(stderr, "amiforge: console log kept in %s\n", active->console_log);
	}
	if (signal_hook)
		signal_hook(sig, signal_hook_opaque);
	appliance_remove_sockdirs();	/* an inspection's or an injection's */
	temp_dirs_remove_all();	/* a component's host files, a decoder's chunk */
	_exit(128 + sig);
}

/* Block the termination signals in this (and every later) thread and let
 * one watcher thread handle them. Must run before other threads exist. */
static int install_watcher(void)
{
	static sigset_t set;
	static bool done;
	pthread_t t;

	if (done)
		return 0;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    pthread_create(&t, NULL, signal_watcher, &set) != 0)
		return err_set("cannot install the signal watcher");
	pthread_detach(t);
	done = true;
	return 0;
}

void guest_on_signal(void (*fn)(int sig, void *opaque), void *opaque)
{
	if (install_watcher() < 0)
		log_warn("%s", err_msg());
	pthread_mutex_lock(&active_lock);
	signal_hook = fn;
	signal_hook_opaque = opaque;
	pthread_mutex_unlock(&active_lock);
}

static void set_active(struct guest *g)
{
	pthread_mutex_lock(&active_lock);
	active = g;
	pthread_mutex_unlock(&active_lock);
}

static void phase(const struct guest_opts *o, const char *name)
{
	if (o->on_phase)
		o->on_phase(name, o->opaque);
}

static bool console_has(const struct guest *g, const char *needle)
{
	struct buf b = BUF_INIT(GUEST_CONSOLE_SCAN_MAX);
	bool found;

	if (!g->console_log || buf_read_file(&b, g->console_log) < 0) {
		buf_release(&b);
		err_clear();
		return false;
	}
	found = b.data && memmem(b.data, b.len, needle, strlen(needle)) != NULL;
	buf_release(&b);
	return found;
}

bool guest_console_stuck(const char *text, size_t len, char *line, size_t size)
{
	static const char *const stuck[] = {
		"detected stall", "soft lockup - CPU#", "Kernel panic - not syncing", NULL,
	};
	static const char *const user[] = { "systemd[1]", "Welcome to ", "[  OK  ]", NULL };
	const char *end = text + len, *b = NULL, *p = text, *hit = NULL, *eol;
	size_t i, n;

	while ((p = memmem(p, (size_t)(end - p), "Linux version ", 14))) {
		b = p;
		p += 14;
	}
	if (!b)
		return false;
	for (i = 0; user[i]; i++)
		if (memmem(b, (size_t)(end - b), user[i], strlen(user[i])))
			return false;
	for (i = 0; stuck[i] && !hit; i++)
		hit = memmem(b, (size_t)(end - b), stuck[i], strlen(stuck[i]));
	if (!hit)
		return false;
	eol = memchr(hit, '\n', (size_t)(end - hit));
	n = (size_t)((eol ? eol : end) - hit);
	if (n >= size)
		n = size - 1;
	memcpy(line, hit, n);
	line[n] = '\0';
	return true;
}

void guest_watch_boot(struct guest *g)
{
	char *buf = NULL, line[160], *shown;
	struct stat st;
	off_t from;
	ssize_t n;
	int fd;

	if (!g || !g->vm || !g->console_log || g->resets >= GUEST_BOOT_RESETS)
		return;
	fd = open(g->console_log, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		from = st.st_size > GUEST_WATCH_TAIL ? st.st_size - GUEST_WATCH_TAIL : 0;
		buf = xmalloc(GUEST_WATCH_TAIL);
		n = pread(fd, buf, GUEST_WATCH_TAIL, from);
		if (n > 0 && guest_console_stuck(buf, (size_t)n, line, sizeof(line))) {
			shown = str_escape_ctl(line, strlen(line), false);
			log_warn("the guest's kernel is stuck in its boot (console: \"%s\"): "
				 "resetting it", shown);
			free(shown);
			g->resets++;
			if (hv_reset(g->vm) < 0) {
				log_warn("%s", err_msg());
				err_clear();
			}
		}
	}
	free(buf);
	close(fd);
}

static void watch_boot(void *opaque)
{
	guest_watch_boot(opaque);
}

static int make_dirs(struct guest *g, const char *work_dir, const char *overlay)
{
	if (work_dir) {
		if (mkdir(work_dir, 0700) < 0)
			return err_errno("create work directory '%s'", work_dir);
		g->dir = xstrdup(work_dir);
	} else if (!(g->dir = make_temp_dir("amiforge-run-", "/tmp"))) {
		return err_prefix("work directory");
	}
	/* 0711: a QEMU running as another user (qemu:///system) reaches the
	 * disks it was given, nothing else; sockets are in the 0700 sock/. */
	if (chmod(g->dir, 0711) < 0)
		return err_errno("chmod '%s'", g->dir);
	g->sock_dir = xasprintf("%s/sock", g->dir);
	if (strlen(g->sock_dir) + sizeof("/agent.sock") > sizeof(((struct sockaddr_un *)0)->sun_path)) {
		/* A long $TMPDIR or build path: the sockets (bound by QEMU, whose
		 * sun_path holds 107 bytes) go in a private directory of /tmp. */
		free(g->sock_dir);
		if (!(g->sock_dir = make_temp_dir_in("/tmp", "amiforge-sock-")))
			return -1;
	} else if (mkdir(g->sock_dir, 0700) < 0) {
		return err_errno("create '%s'", g->sock_dir);
	}
	g->overlay = overlay ? xstrdup(overlay) : xasprintf("%s/disk.qcow2", g->dir);
	g->console_log = xasprintf("%s/console.log", g->dir);
	g->agent_sock = xasprintf("%s/agent.sock", g->sock_dir);
	return 0;
}

static int prepare_disk(struct guest *g, const struct guest_opts *o)
{
	size_t agent_len = 0;
	const void *agent = NULL;
	struct image_info info;
	struct stat st;
	char *base = realpath(o->image, NULL);
	int ret = -1;

	if (!base)
		return err_errno("image '%s'", o->image);
	if ((o->image_chain ? image_probe_chain(base, &info) :
	     o->image_format ? image_known(base, o->image_format, &info) :
	     image_admit(base, NULL, &info)) < 0)
		goto cleanup;
	if (o->disk_size && o->disk_size < info.virtual_size) {
		err_set("disk size %" PRIu64 " is smaller than the image's %" PRIu64,
			o->disk_size, info.virtual_size);
		goto cleanup;
	}
	if (overlay_create(base, info.format, g->overlay, o->disk_size) < 0)
		goto cleanup;
	/* The guest's disk is this user's; a QEMU running as another user gets
	 * it by ownership (libvirt's dynamic_ownership), not by world bits. */
	if (chmod(g->overlay, 0600) < 0) {
		err_errno("chmod '%s'", g->overlay);
		goto cleanup;
	}
	g->base = xstrdup(base);
	g->base_format = xstrdup(info.format);
	g->base_shared = stat(base, &st) == 0 && (st.st_mode & S_IROTH);
	log_debug("overlay %s on %s (%s)", g->overlay, base, info.format);
	if (o->arch != ARCH_AUTO) {
		g->arch = arch_get(o->arch);
	} else {
		const char *how = NULL;

		if (archprobe_disk(base, info.format, &g->arch, &how) < 0)
			goto cleanup;
		log_info("guest architecture: %s (from the image: %s)", g->arch->name, how);
	}
	if (o->via != GUEST_AGENT_DISK && !(agent = arch_agent(g->arch, &agent_len)))
		goto cleanup;
	if (o->via == GUEST_AGENT_INJECT &&
	    inject_agent(g->overlay, "qcow2", agent, agent_len) < 0)
		goto cleanup;
	/* A seed even where the disk starts the agent: cloud-init still
	 * configures the image's network from it (without one it finds no
	 * datasource and brings nothing up); an image without cloud-init
	 * ignores it. */
	struct seed_opts so = { .agent = agent, .agent_len = agent_len };

	if (o->via != GUEST_AGENT_SEED)
		so = (struct seed_opts){ .agent_in_disk = true };
	g->seed = xasprintf("%s/seed.iso", g->dir);
	if (seed_write(g->seed, &so, &g->instance_id) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	free(base);
	return ret;
}

/* Sync, then sync once more: while the guest was not listening, syncs
 * queued up in QEMU, and the agent answers every one of them once it reads
 * its port. The client accepts the first answer and would trip over the
 * others at the next request; the second sync discards them as stale. */
int guest_resync(struct guest *g, int64_t timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	if (agent_sync(g->agent, timeout_ms) < 0)
		return -1;
	return agent_sync(g->agent, deadline - now_ms() > GUEST_SYNC_SLICE_MS ?
				    deadline - now_ms() : GUEST_SYNC_SLICE_MS);
}

/* Wait until the agent answers, or the guest dies, or the deadline. */
static int wait_agent(struct guest *g, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		int st;

		if (left <= 0)
			break;
		if (!g->agent &&
		    (g->agent = agent_open_unix(g->agent_sock, left < GUEST_SYNC_SLICE_MS ?
						left : GUEST_SYNC_SLICE_MS)))
			agent_set_on_wait(g->agent, watch_boot, g);
		if (g->agent) {
			left = deadline - now_ms();
			if (guest_resync(g, left < GUEST_SYNC_SLICE_MS ? left :
					 GUEST_SYNC_SLICE_MS) == 0)
				return 0;
		}
		st = hv_wait(g->vm, 0);
		if (st < 0)
			return -1;
		if (st == HV_EXITED)
			return err_set("the guest stopped before its agent answered");
		guest_watch_boot(g);
	}
	if (g->via != GUEST_AGENT_SEED)
		return err_set("no agent within the boot deadline: the image's unit did not "
			       "start it (last: %s)", err_msg());
	if (g->seed && !console_has(g, SEED_CONSOLE_MARK))
		return err_set("no agent within the boot deadline: cloud-init did not run "
			       "the seed's bootcmd (does the image have cloud-init? "
			       "try --agent-via inject)");
	return err_set("no agent within the boot deadline (last: %s)", err_msg());
}

/* The driver's record of the guest (a libvirt domain), journaled before it
 * exists: a crash or SIGKILL from here on leaves something clean can find.
 * Kept in g too: without a journal, the signal watcher releases it. */
static int journal_vm(struct guest *g, const struct vm_spec *spec)
{
	struct strv rec = STRV_INIT;
	int r = 0;

	if (hv_journal_record(g->hv, spec, &rec) < 0)
		r = -1;
	else if (rec.n && g->journal)
		r = journal_addv(g->journal, &g->vm_jid, rec.v[0], (const char *const *)rec.v + 1);
	pthread_mutex_lock(&active_lock);
	strv_release(&g->vm_record);
	g->vm_record = rec;
	pthread_mutex_unlock(&active_lock);
	return r;
}

/* A free TCP port on 127.0.0.1, for a forward whose host port is left to
 * us. The socket is closed before QEMU binds the port: another process may
 * take it in between, and QEMU then fails to start, saying so. */
static int free_local_port(unsigned *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		err_errno("choose a free port on 127.0.0.1");
	else {
		*port = ntohs(a.sin_port);
		r = 0;
	}
	if (fd >= 0)
		close(fd);
	return r;
}

static int resolve_forwards(struct guest *g, const struct guest_opts *o)
{
	size_t i;

	if (o->n_forwards > VM_FORWARDS_MAX)
		return err_set("at most %d port forwards", VM_FORWARDS_MAX);
	g->net = o->net;
	for (i = 0; i < o->n_forwards; i++) {
		g->forwards[i] = o->forwards[i];
		if (!g->forwards[i].host_port && free_local_port(&g->forwards[i].host_port) < 0)
			return -1;
		log_info("port forward: 127.0.0.1:%u → guest port %u", g->forwards[i].host_port,
			 g->forwards[i].guest_port);
	}
	g->n_forwards = o->n_forwards;
	return 0;
}

/* The bulk data disk (proto.h PROTO_BULK_*): a sparse raw file in the work
 * directory, its header naming a random nonce, attached as the guest's
 * second disk. Files of a megabyte and more travel through it (the channel
 * carries only the request). Without it, everything goes through the
 * channel: a warning, not an error. */
static void make_bulk(struct guest *g)
{
	char hdr[PROTO_BULK_HDR] = { 0 };
	char *path = xasprintf("%s/bulk.raw", g->dir);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (getrandom(&g->bulk_nonce, sizeof(g->bulk_nonce), 0) != sizeof(g->bulk_nonce))
		g->bulk_nonce = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
	snprintf(hdr, sizeof(hdr), "%s%016" PRIx64 "\n", PROTO_BULK_MAGIC, g->bulk_nonce);
	if (fd < 0 || ftruncate(fd, (off_t)(PROTO_BULK_HDR + GUEST_BULK_CAPACITY)) < 0 ||
	    write_all(fd, hdr, sizeof(hdr)) < 0) {
		log_warn("bulk data disk '%s': %s; files go through the agent channel", path,
			 strerror(errno));
		if (fd >= 0)
			unlink(path);
		free(path);
	} else {
		g->bulk = path;
	}
	if (fd >= 0)
		close(fd);
}

/* The executor for user commands: the proxy first, then the forwards:
 * AMIFORGE_HOST_ADDR (the host as the user network's guest sees it: its
 * 127.0.0.1) and AMIFORGE_HOST_PORT_<guest port>=<host port>. */
static struct executor *step_executor(struct guest *g, const struct guest_opts *o)
{
	struct exec_net_opts no = { .online = g->net != VM_NET_NONE,
				    .offline_reason = o->offline_reason };
	struct strv env = STRV_INIT;
	struct executor *ex;
	size_t i;

	for (i = 0; o->net_env && o->net_env[i]; i++)
		strv_push(&env, o->net_env[i]);
	if (g->n_forwards)
		strv_push(&env, "AMIFORGE_HOST_ADDR=" GUEST_USER_NET_HOST);
	for (i = 0; i < g->n_forwards; i++)
		strv_pushf(&env, "AMIFORGE_HOST_PORT_%u=%u", g->forwards[i].guest_port,
			   g->forwards[i].host_port);
	no.env = (const char *const *)env.v;
	ex = executor_net_new(g->ex, &no);
	strv_release(&env);
	return ex;
}

/* The journal entries of the guest's domain or process, once it is gone. */
static void release_vm_entries(struct guest *g)
{
	unsigned *ids[] = { &g->pid_jid, &g->vm_jid };

	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		if (*ids[i] && g->journal && journal_release(g->journal, *ids[i]) < 0)
			log_warn("journal: %s", err_msg());
		*ids[i] = 0;
	}
}

/* A guest restored from a saved state wakes at the time it was saved:
 * its clock is set to this host's (TLS, package signatures and file times
 * need it). A failure is a warning. */
static void set_clock(struct guest *g)
{
	struct timespec ts;
	char at[48];
	const char *argv[] = { "date", "-u", "-s", at, NULL };
	struct exec_req req = { .argv = argv, .timeout_ms = 30000, .capture_max = 4096 };
	struct exec_result res = { 0 };

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(at, sizeof(at), "@%lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
	/* What the guest printed is not repeated (a guest's bytes are not
	 * ours to put on a terminal): its exit status says enough. */
	if (executor_exec(g->ex, &req, &res) < 0)
		log_warn("guest %s: cannot set its clock after the restore: %s", g->name,
			 err_msg());
	else if (res.status != 0)
		log_warn("guest %s: cannot set its clock after the restore: date exited %d",
			 g->name, res.status);
	err_clear();
	exec_result_release(&res);
}

/* A restored guest's kernel goes on from the saved random number
 * generator's state: reseeded from this host's randomness before any step
 * runs (agent_reseed), so that two restores of one state do not draw the
 * same numbers. A failure is a warning that says so. */
static void after_restore(struct guest *g)
{
	set_clock(g);
	if (agent_reseed(g->agent, 30000) < 0)
		log_warn("guest %s: %s: steps may draw the random numbers another restore of "
			 "this state drew", g->name, err_msg());
	else
		log_debug("guest %s: its random number generator reseeded from the host's",
			  g->name);
	err_clear();
}

struct guest *guest_boot(const struct guest_opts *o)
{
	struct guest *g = xcalloc(1, sizeof(*g));
	int64_t timeout = o->boot_timeout_ms ? o->boot_timeout_ms : 600000;
	struct vm_spec spec = { 0 };
	unsigned char r[2];
	char *fresh = NULL;   /* the name booting would use, while restoring */

	g->t_start = now_ms();
	if (install_watcher() < 0)
		goto fail;
	set_active(g);
	if (make_dirs(g, o->work_dir, o->overlay) < 0)
		goto fail;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r[0] = r[1] = 0;
	g->name = o->name ? xstrdup(o->name)
			  : xasprintf(HV_DOMAIN_PREFIX "%ld-%02x%02x", (long)getpid(), r[0], r[1]);

	g->uri = o->uri ? xstrdup(o->uri) : NULL;
	g->hv = hv_open(o->driver, o->uri);
	if (!g->hv)
		goto fail;
	if (o->persistent && !hv_can_detach(g->hv)) {
		err_set("the %s driver cannot keep a guest running after amiforge exits",
			hv_name(g->hv));
		goto fail;
	}
	g->via = o->via;
	if (prepare_disk(g, o) < 0)
		goto fail;
	/* After the disk: the architecture decides whether KVM can serve. */
	if (hv_resolve_accel(g->hv, g->arch, o->accel, &g->accel) < 0)
		goto fail;
	log_debug("guest %s: driver %s, %s, accelerator %s", g->name, hv_name(g->hv),
		  g->arch->name, accel_name(g->accel));

	spec.name = g->name;
	spec.disks[0] = (struct vm_disk){
		.path = g->overlay, .format = "qcow2",
		.backing = g->base, .backing_format = g->base_format,
		.backing_shared = g->base_shared,
		.backing_chain = o->image_chain,
	};
	spec.n_disks = 1;
	/* A remote hypervisor cannot open a file of this host. */
	if (!o->uri || str_startswith(o->uri, "qemu:///") || str_startswith(o->uri, "qemu+unix:///") ||
	    strcmp(o->uri, "direct") == 0)
		make_bulk(g);
	if (g->bulk)
		spec.disks[spec.n_disks++] = (struct vm_disk){ .path = g->bulk, .format = "raw" };
	spec.seed_iso = g->seed;
	spec.arch = g->arch->id;
	if (g->arch->fw_code) {
		g->nvram = xasprintf("%s/efivars.fd", g->dir);
		spec.nvram = g->nvram;
	}
	spec.cpus = o->cpus ? o->cpus : 2;
	spec.memory_mib = o->memory_mib ? o->memory_mib : 2048;
	spec.accel = g->accel;
	spec.console_log = g->console_log;
	spec.agent_socket = g->agent_sock;
	spec.run_dir = g->sock_dir;
	spec.net = o->net;
	spec.net_source = o->net_source;
	if (resolve_forwards(g, o) < 0)
		goto fail;
	memcpy(spec.forwards, g->forwards, sizeof(spec.forwards));
	spec.n_forwards = g->n_forwards;
	spec.persistent = o->persistent;
	g->journal = o->journal;
	/* A socket directory of /tmp (make_dirs) is not below the work
	 * directory the build journals: journaled itself, for clean. */
	if (g->journal && !str_startswith(g->sock_dir, g->dir) &&
	    journal_add(g->journal, &g->sock_jid, "dir", g->sock_dir, NULL) < 0)
		goto fail;
	if (hv_can_save_state(g->hv) && !(g->shape = hv_state_shape(g->hv, &spec))) {
		log_debug("guest %s: no saved states: %s", g->name, err_msg());
		err_clear();
	}
	if (o->restore_state && g->shape && o->restore_shape && o->restore_name &&
	    strcmp(g->shape, o->restore_shape) == 0) {
		/* A guest goes on under the name it saved its state with
		 * (libvirt's restore keeps the domain's name). */
		fresh = g->name;
		g->name = xstrdup(o->restore_name);
		spec.name = g->name;
		spec.restore_state = o->restore_state;
	} else if (o->restore_state) {
		log_info("guest %s: the saved state %s is for another guest (%s); booting",
			 g->name, o->restore_state, g->shape ? "its shape differs" : "this driver");
	}
	if (journal_vm(g, &spec) < 0)
		goto fail;
	phase(o, spec.restore_state ? "restoring" : "booting");
	g->vm = hv_start(g->hv, &spec);
	if (!g->vm && spec.restore_state) {
		log_warn("guest %s: cannot go on from the saved state (%s); booting under the "
			 "name %s", g->name, err_msg(), fresh);
		err_clear();
		release_vm_entries(g);
		free(g->name);
		g->name = fresh;
		fresh = NULL;
		spec.name = g->name;
		spec.restore_state = NULL;
		if (journal_vm(g, &spec) < 0)
			goto fail;
		phase(o, "booting");
		g->vm = hv_start(g->hv, &spec);
	}
	free(fresh);
	fresh = NULL;
	if (!g->vm)
		goto fail;
	g->restored = spec.restore_state != NULL;
	if (g->journal && hv_pid(g->vm) > 0 && hv_release_kind(g->hv) &&
	    journal_add_pid(g->journal, &g->pid_jid, hv_release_kind(g->hv), hv_pid(g->vm)) < 0)
		goto fail;
	g->t_started = now_ms();
	/* The boot's deadline runs from the guest's start: reading the image's
	 * architecture or injecting the agent (libguestfs, tens of seconds
	 * under TCG) is not the guest's boot. */
	if (wait_agent(g, g->t_started + timeout) < 0)
		goto fail;
	g->t_ready = now_ms();
	g->ex = executor_agent_new(g->agent);
	if (g->restored)
		after_restore(g);
	if (g->bulk && executor_agent_set_bulk(g->ex, g->bulk, g->bulk_nonce,
					       GUEST_BULK_CAPACITY) < 0) {
		log_warn("%s; files go through the agent channel", err_msg());
		err_clear();
	}
	g->step_ex = step_executor(g, o);
	phase(o, "agent ready");
	return g;
fail:
	free(fresh);
	g->keep_dir = g->vm != NULL;
	if (g->keep_dir)
		err_prefix("console log %s", g->console_log);
	guest_free(g);
	return NULL;
}

bool guest_can_snapshot(const struct guest *g)
{
	return g->hv && hv_can_snapshot(g->hv);
}

int guest_snapshot(struct guest *g, const char *new_top, const char *state, char **frozen)
{
	char *old;
	int64_t t_sync, t0;
	int r;

	*frozen = NULL;
	if (!g->vm || !g->ex)
		return err_set("snapshot: the guest is not running");
	if (state && !g->shape)
		return err_set("snapshot: the guest's state cannot be saved (%s driver)",
			       hv_name(g->hv));
	t_sync = now_ms();
	if (executor_flush(g->ex, GUEST_SYNC_MS) < 0)
		return err_prefix("snapshot");
	t0 = now_ms();
	r = state ? hv_save_state(g->vm, new_top, state) : hv_snapshot_disk(g->vm, new_top);
	if (r < 0)
		return -1;
	log_debug("snapshot: sync in the guest %" PRId64 " ms, the hypervisor's snapshot%s %"
		  PRId64 " ms", t0 - t_sync, state && r == 0 ? " and state" : "", now_ms() - t0);
	/* From here the guest writes to new_top: it is the work file to
	 * remove on any exit; the frozen layer is the caller's. */
	pthread_mutex_lock(&active_lock);
	old = g->overlay;
	g->overlay = xstrdup(new_top);
	pthread_mutex_unlock(&active_lock);
	*frozen = old;
	return r;
}

bool guest_can_stream(const struct guest *g)
{
	return g->hv && hv_can_stream(g->hv);
}

int guest_stream(struct guest *g, const char *base)
{
	if (!g->vm)
		return err_set("stream: the guest is not running");
	return hv_stream_disk(g->vm, base, GUEST_STREAM_MS);
}

char *guest_release_overlay(struct guest *g)
{
	char *p;

	pthread_mutex_lock(&active_lock);
	p = g->overlay;
	g->overlay = NULL;
	pthread_mutex_unlock(&active_lock);
	return p;
}

int guest_shutdown(struct guest *g)
{
	int r = 0;

	if (!g->vm)
		return 0;
	if (!(g->agent && agent_poweroff(g->agent, GUEST_POWEROFF_ACK_MS) == 0 &&
	      hv_wait(g->vm, GUEST_POWEROFF_MS) == HV_EXITED)) {
		log_debug("shutdown: agent poweroff did not stop the guest (%s); trying ACPI",
			  err_msg());
		r = hv_stop(g->vm, GUEST_ACPI_MS);
	}
	/* The disks' contents back where the caller expects them (a remote
	 * host's volumes). */
	if (r >= 0 && hv_collect(g->vm) < 0)
		return -1;
	return r;
}

void guest_disconnect(struct guest *g)
{
	if (g->agent)
		agent_disconnect(g->agent);
}

int guest_detach(struct guest *g)
{
	if (!g->vm || hv_wait(g->vm, 0) != HV_RUNNING)
		return err_set("guest %s is not running", g->name);
	if (hv_detach(g->vm) < 0)
		return -1;
	g->detached = true;
	return 0;
}

void guest_free(struct guest *g)
{
	bool gone = true;

	if (!g)
		return;
	executor_close(g->step_ex);
	executor_close(g->ex);
	agent_close(g->agent);
	g->agent = NULL;
	/* The signal watcher waits for the teardown (it would otherwise use
	 * g->vm and g->hv as they are freed), then finds nothing to do. */
	pthread_mutex_lock(&active_lock);
	if (g->vm && !g->detached && hv_destroy(g->vm) < 0) {
		log_warn("%s", err_msg());
		gone = false;   /* its journal entry stays, for clean */
	}
	if (hv_vm_free(g->vm) < 0)   /* a detached guest keeps running */
		gone = false;        /* a remote host's volumes may be left: clean */
	g->vm = NULL;
	hv_close(g->hv);
	g->hv = NULL;
	if (gone && !g->detached)
		release_vm_entries(g);
	if (active == g)
		active = NULL;
	if (!g->detached) {
		remove_work_files(g);
		if (g->sock_jid && g->journal && journal_release(g->journal, g->sock_jid) < 0)
			log_warn("journal: %s", err_msg());
	}
	pthread_mutex_unlock(&active_lock);
	free(g->dir);
	free(g->overlay);
	free(g->bulk);
	free(g->seed);
	free(g->nvram);
	free(g->console_log);
	free(g->sock_dir);
	free(g->agent_sock);
	free(g->instance_id);
	free(g->name);
	free(g->shape);
	free(g->uri);
	free(g->base);
	free(g->base_format);
	strv_release(&g->vm_record);
	free(g);
}

int guest_record_write(const struct guest *g, const char *path)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "name", g->name,
			      "driver", g->hv ? hv_name(g->hv) : "", "agent_socket", g->agent_sock,
			      "console_log", g->console_log, "dir", g->dir,
			      "pid", (json_int_t)(g->vm ? hv_pid(g->vm) : 0));
	char *text;
	int r;

	if (j && g->uri && hv_uri_remote(g->uri))
		json_object_set_new(j, "uri", json_string(g->uri));
	text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	if (!text)
		r = err_set("guest record '%s': cannot encode", path);
	else
		r = write_file_atomic(path, text, strlen(text), 0600);
	free(text);
	json_decref(j);
	return r;
}

int guest_record_load(const char *path, struct guest_record *rec)
{
	struct buf b = BUF_INIT(GUEST_RECORD_MAX);
	const char *name = NULL, *driver = NULL, *sock = NULL, *console = NULL, *dir = NULL;
	const char *uri = NULL;
	json_int_t pid = 0;
	json_error_t je;
	json_t *j = NULL;
	int r = -1;

	memset(rec, 0, sizeof(*rec));
	if (buf_read_file(&b, path) < 0)
		goto cleanup;
	j = json_loadb(b.data ? b.data : "", b.len, 0, &je);
	if (!j) {
		err_set("%s:%d:%d: %s", path, je.line, je.column, je.text);
		goto cleanup;
	}
	if (json_unpack_ex(j, &je, 0, "{s:s, s:s, s:s, s:s, s:s, s?I, s?s}", "name", &name,
			   "driver", &driver, "agent_socket", &sock, "console_log", &console,
			   "dir", &dir, "pid", &pid, "uri", &uri) < 0 || pid < 0 || pid > INT_MAX) {
		err_set("guest record '%s': %s", path, je.text[0] ? je.text : "bad pid");
		goto cleanup;
	}
	rec->name = xstrdup(name);
	rec->driver = xstrdup(driver);
	rec->agent_socket = xstrdup(sock);
	rec->console_log = xstrdup(console);
	rec->dir = xstrdup(dir);
	rec->pid = (long)pid;
	rec->uri = uri ? xstrdup(uri) : NULL;
	r = 0;
cleanup:
	json_decref(j);
	buf_release(&b);
	return r;
}

void guest_record_release(struct guest_record *rec)
{
	if (!rec)
		return;
	free(rec->name);
	free(rec->driver);
	free(rec->agent_socket);
	free(rec->console_log);
	free(rec->dir);
	free(rec->uri);
	memset(rec, 0, sizeof(*rec));
}
