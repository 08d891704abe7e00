/* qemu.c: the direct driver — spawns qemu-system-ARCH (common/run.h) and
 * talks QMP (jansson) on a unix socket in the spec's 0700 run_dir. For hosts
 * without libvirtd. */
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "hypervisor.h"
#include "error.h"
#include "log.h"
#include "proc.h"
#include "qmp.h"
#include "run.h"
#include "util.h"

/* Waits on QMP: connecting after start, and any command. */
#define QMP_CONNECT_MS 10000
#define QMP_REPLY_MS 5000
/* Creating a snapshot file is a small qcow2 header write (and an fsync). */
#define QMP_SNAPSHOT_MS 60000
/* Saving or loading a guest's state: its memory through a file (hundreds
 * of MiB at page-cache speed; a slow disk takes longer). */
#define QMP_STATE_MS 300000
/* The fd name QEMU gets for a state file (getfd). */
#define STATE_FD_NAME "amiforge-state"
/* After "quit", how long QEMU gets before SIGKILL. */
#define QEMU_QUIT_MS 3000

struct qemu_vm {
	struct run run;      /* the QEMU process (own process group) */
	struct qmp q;        /* its QMP connection (q.fd -1: none) */
	char *qmp_path;
	char *err_path;      /* QEMU's stderr */
	char *fifo_path;     /* the serial console's FIFO (console.c) */
	pid_t logger;        /* its logger process, 0 none */
	bool dry;            /* run.h dry-run: nothing was started */
	bool detached;       /* left running on purpose: release must not kill it */
	bool exited;
	int status;
};

struct qemu_conn {
	int sandbox;         /* -1 unknown, 0 no, 1 yes (of the first QEMU asked) */
	char *version;       /* the first line of its -help ("QEMU emulator
			      * version ..."), or NULL */
};

static enum hv_open_result qemu_open(void *priv, const char *uri)
{
	struct qemu_conn *c = priv;

	if (uri && strcmp(uri, "qemu:///direct") != 0 && strcmp(uri, "direct") != 0) {
		err_set("driver qemu runs guests locally; URI '%s' is for libvirt", uri);
		return HV_OPEN_DECLINED;
	}
	c->sandbox = -1;
	return HV_OPEN_OK;
}

/* Is -sandbox (seccomp) compiled in? Asked once per connection. */
static bool have_sandbox(struct qemu_conn *c, const struct arch *a)
{
	const char *const argv[] = { a->qemu, "-help", NULL };
	struct run r = RUN_INIT;

	if (c->sandbox >= 0)
		return c->sandbox;
	r.argv = argv;
	r.out = RUN_CAPTURE;
	r.timeout_ms = 10000;
	c->sandbox = run_sync(&r) == 0 && r.status == 0 && r.out_buf.data &&
		     strstr(r.out_buf.data, "-sandbox") != NULL;
	if (r.status == 0 && r.out_buf.data && str_startswith(r.out_buf.data, "QEMU emulator"))
		c->version = xstrndup(r.out_buf.data, strcspn(r.out_buf.data, "\n"));
	if (!c->sandbox)
		log_debug("qemu: -sandbox not available, running without seccomp");
	run_release(&r);
	return c->sandbox;
}

/* Where the direct driver keeps a UEFI guest's variables by default. */
static char *nvram_path(const struct vm_spec *s)
{
	return s->nvram ? xstrdup(s->nvram) : xasprintf("%s/efivars.fd", s->run_dir ? s->run_dir : ".");
}

int hv_qemu_argv(const struct vm_spec *s, const char *qmp_path, bool sandbox, struct strv *a)
{
	const struct arch *ar = arch_get(s->arch);
	size_t i;

	if (vm_spec_check(s) < 0)
		return -1;
	strv_push(a, ar->qemu);
	strv_push(a, "-name");
	strv_push(a, s->name);
	strv_push(a, "-nodefaults");
	strv_push(a, "-no-user-config");
	strv_push(a, "-machine");
	strv_push(a, ar->machine);
	strv_push(a, "-accel");
	strv_push(a, s->accel == ACCEL_KVM ? "kvm" : "tcg");
	if (s->accel == ACCEL_KVM || ar->tcg_cpu) {
		strv_push(a, "-cpu");
		strv_push(a, s->accel == ACCEL_KVM ? "host" : ar->tcg_cpu);
	}
	if (ar->fw_code) {
		/* UEFI: the firmware read-only, the guest's own variables. */
		char *nv = nvram_path(s);

		strv_push(a, "-drive");
		strv_pushf(a, "if=pflash,unit=0,format=raw,readonly=on,file=%s", ar->fw_code);
		strv_push(a, "-drive");
		strv_pushf(a, "if=pflash,unit=1,format=raw,file=%s", nv);
		free(nv);
	}
	strv_push(a, "-m");
	strv_pushf(a, "%u", s->memory_mib);
	strv_push(a, "-smp");
	strv_pushf(a, "%u", s->cpus);
	strv_push(a, "-display");
	strv_push(a, "none");
	for (i = 0; i < s->n_disks; i++) {
		strv_push(a, "-drive");
		strv_pushf(a, "file=%s,format=%s,if=virtio,%s", s->disks[i].path,
			   s->disks[i].format,
			   s->disks[i].readonly ? "readonly=on" : "discard=unmap");
	}
	if (s->seed_iso && ar->seed_scsi) {
		/* No IDE on this machine: the cdrom on virtio-scsi. */
		strv_push(a, "-device");
		strv_push(a, "virtio-scsi-pci,id=scsi0");
		strv_push(a, "-drive");
		strv_pushf(a, "file=%s,format=raw,if=none,id=seed0,media=cdrom,readonly=on",
			   s->seed_iso);
		strv_push(a, "-device");
		strv_push(a, "scsi-cd,bus=scsi0.0,drive=seed0");
	} else if (s->seed_iso) {
		strv_push(a, "-drive");
		strv_pushf(a, "file=%s,format=raw,if=ide,index=2,media=cdrom,readonly=on",
			   s->seed_iso);
	}
	if (s->console_log) {
		strv_push(a, "-chardev");
		strv_pushf(a, "file,id=console0,path=%s,append=on", s->console_log);
		strv_push(a, "-serial");
		strv_push(a, "chardev:console0");
	}
	if (s->agent_socket) {
		strv_push(a, "-device");
		strv_push(a, "virtio-serial-pci,id=vser0");
		strv_push(a, "-chardev");
		strv_pushf(a, "socket,id=agent0,path=%s,server=on,wait=off", s->agent_socket);
		strv_push(a, "-device");
		strv_push(a, "virtserialport,bus=vser0.0,chardev=agent0,name=" HV_AGENT_PORT_NAME);
	}
	switch (s->net) {
	case VM_NET_NONE:
		break;
	case VM_NET_USER: {
		char *netdev = xstrdup("user,id=net0"), *t;

		/* hostfwd: the host side on 127.0.0.1 only. */
		for (i = 0; i < s->n_forwards; i++) {
			t = xasprintf("%s,hostfwd=tcp:127.0.0.1:%u-:%u", netdev,
				      s->forwards[i].host_port, s->forwards[i].guest_port);
			free(netdev);
			netdev = t;
		}
		strv_push(a, "-netdev");
		strv_push(a, netdev);
		free(netdev);
		break;
	}
	case VM_NET_BRIDGE:
		/* QEMU's setuid bridge helper decides who may use which bridge
		 * (/etc/qemu/bridge.conf). */
		strv_push(a, "-netdev");
		strv_pushf(a, "bridge,id=net0,br=%s", s->net_source);
		break;
	case VM_NET_NETWORK:
		return err_set("vm '%s': a libvirt network ('%s') needs the libvirt driver",
			       s->name, s->net_source);
	}
	if (s->net != VM_NET_NONE) {
		strv_push(a, "-device");
		strv_push(a, "virtio-net-pci,netdev=net0");
	}
	/* A VM generation ID: a guest restored from a saved state gets a new
	 * one, on which a kernel with the vmgenid driver reseeds its random
	 * number generator (two guests from one state must not share it). */
	if (ar->id == ARCH_X86_64) {
		strv_push(a, "-device");
		strv_push(a, "vmgenid");
	}
	strv_push(a, "-object");
	strv_push(a, "rng-random,id=rng0,filename=/dev/urandom");
	strv_push(a, "-device");
	strv_push(a, "virtio-rng-pci,rng=rng0");
	strv_push(a, "-chardev");
	strv_pushf(a, "socket,id=qmp0,path=%s,server=on,wait=off", qmp_path);
	strv_push(a, "-mon");
	strv_push(a, "chardev=qmp0,mode=control");
	if (s->restore_state) {
		/* The state comes through QMP (getfd, migrate-incoming). */
		strv_push(a, "-incoming");
		strv_push(a, "defer");
	}
	if (sandbox) {
		strv_push(a, "-sandbox");
		/* The bridge helper is spawned and setuid: only then allowed. */
		strv_push(a, s->net == VM_NET_BRIDGE
			  ? "on,obsolete=deny,resourcecontrol=deny"
			  : "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	}
	return 0;
}

/* QMP getfd: fd (ours, still) passed to QEMU under name. 0 or -1. */
static int vm_getfd(struct qemu_vm *v, int fd, const char *name)
{
	int64_t deadline = now_ms() + QMP_REPLY_MS;

	if (qmp_send(&v->q, "getfd", json_pack("{s:s}", "fdname", name), fd) < 0)
		return -1;
	return qmp_reply(&v->q, "getfd", deadline, NULL);
}

static int vm_cmd_args(struct qemu_vm *v, const char *cmd, json_t *args, int64_t timeout_ms)
{
	return qmp_call(&v->q, cmd, args, timeout_ms, NULL);
}

static int vm_cmd(struct qemu_vm *v, const char *cmd)
{
	return vm_cmd_args(v, cmd, NULL, QMP_REPLY_MS);
}

static int vm_connect(struct qemu_vm *v)
{
	int64_t deadline = now_ms() + QMP_CONNECT_MS;

	while (qmp_connect(&v->q, v->qmp_path) < 0) {
		if (now_ms() >= deadline)
			return -1;
		err_clear();
		if (waitpid(v->run.pid, &(int){0}, WNOHANG) == v->run.pid) {
			v->run.pid = -1;
			v->exited = true;
			return err_set("qemu exited during startup");
		}
		usleep(50 * 1000);
	}
	return qmp_handshake(&v->q, deadline);
}

/* Last line of QEMU's stderr, for error messages. */
static void append_qemu_stderr(struct qemu_vm *v)
{
	struct buf b = BUF_INIT(64 * 1024);
	char *e, *line;

	if (!v->err_path || buf_read_file(&b, v->err_path) < 0 || !b.len) {
		buf_release(&b);
		return;
	}
	e = b.data + b.len;
	while (e > b.data && (e[-1] == '\n' || e[-1] == ' '))
		*--e = '\0';
	line = strrchr(b.data, '\n');
	err_prefix("%s", line ? line + 1 : b.data);
	buf_release(&b);
}

/* The variable store template is a pflash image (AAVMF's: 64 MiB, nearly
 * all zeros); larger is refused. */
#define NVRAM_TEMPLATE_MAX (256u << 20)

/* Copy the template to nv (0600, created): zero blocks become holes, as in
 * the template's own file. 0 or -1; no file is left on failure. */
static int nvram_copy(const char *tmpl, const char *nv)
{
	static const char zero[64 * 1024];
	char *blk = xmalloc(sizeof(zero));
	int in = open(tmpl, O_RDONLY | O_CLOEXEC), out = -1, ret = -1;
	struct stat st;
	off_t off = 0;

	if (in < 0 || fstat(in, &st) < 0) {
		err_errno("open '%s'", tmpl);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > NVRAM_TEMPLATE_MAX) {
		err_set("'%s': not a regular file of at most %u MiB", tmpl, NVRAM_TEMPLATE_MAX >> 20);
		goto cleanup;
	}
	out = open(nv, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		err_errno("create '%s'", nv);
		goto cleanup;
	}
	for (;;) {
		ssize_t n = read(in, blk, sizeof(zero));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_errno("read '%s'", tmpl);
			goto cleanup;
		}
		if (n == 0)
			break;
		if (memcmp(blk, zero, (size_t)n) != 0 &&
		    pwrite(out, blk, (size_t)n, off) != n) {
			err_errno("write '%s'", nv);
			goto cleanup;
		}
		off += n;
	}
	if (ftruncate(out, off) < 0) {
		err_errno("write '%s'", nv);
		goto cleanup;
	}
	ret = 0;
cleanup:
	if (out >= 0 && close(out) < 0 && ret == 0)
		ret = err_errno("write '%s'", nv);
	if (out >= 0 && ret < 0)
		unlink(nv);
	if (in >= 0)
		close(in);
	free(blk);
	return ret;
}

/* A UEFI guest's firmware must be there, and its variable store: a copy
 * of the template unless the guest has one already (a reboot keeps it). */
static int nvram_prepare(const struct vm_spec *s)
{
	const struct arch *a = arch_get(s->arch);
	char *nv = nvram_path(s);
	int ret = -1;

	if (access(a->fw_code, R_OK) < 0) {
		err_errno("%s firmware '%s' (Debian's package %s)", a->name, a->fw_code,
			  a->fw_package);
		goto cleanup;
	}
	if (access(nv, F_OK) == 0) {
		ret = 0;
		goto cleanup;
	}
	if (nvram_copy(a->fw_vars, nv) < 0) {
		err_prefix("%s firmware variables (Debian's package %s)", a->name, a->fw_package);
		goto cleanup;
	}
	ret = 0;
cleanup:
	free(nv);
	return ret;
}

/* Wait for the migration QEMU runs (either side) to end: 0 when it
 * completed, -1 with its error. */
static int migration_wait(struct qemu_vm *v, int64_t deadline)
{
	for (;;) {
		json_t *st = NULL;
		const char *status;
		int r = 1;

		if (qmp_call(&v->q, "query-migrate", NULL, QMP_REPLY_MS, &st) < 0)
			return -1;
		status = json_string_value(json_object_get(st, "status"));
		if (status && strcmp(status, "completed") == 0)
			r = 0;
		else if (status && (strcmp(status, "failed") == 0 ||
				    strcmp(status, "cancelled") == 0)) {
			const char *why = json_string_value(json_object_get(st, "error-desc"));

			r = err_set("qemu: the state transfer %s%s%s", status, why ? ": " : "",
				    why ? why : "");
		}
		json_decref(st);
		if (r <= 0)
			return r;
		if (now_ms() >= deadline) {
			vm_cmd(v, "migrate_cancel");
			return err_set("qemu: the state transfer did not end within %d s",
				       QMP_STATE_MS / 1000);
		}
		usleep(10 * 1000);
	}
}

/* A guest started with -incoming defer takes its state from path, then
 * runs. 0 or -1. */
static int restore_state(struct qemu_vm *v, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	struct stat st;
	int ret = -1;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err_errno("saved state '%s'", path);
		goto cleanup;
	}
	if (vm_getfd(v, fd, STATE_FD_NAME) < 0 ||
	    vm_cmd_args(v, "migrate-incoming", json_pack("{s:s}", "uri", "fd:" STATE_FD_NAME),
			 QMP_REPLY_MS) < 0 ||
	    migration_wait(v, now_ms() + QMP_STATE_MS) < 0 || vm_cmd(v, "cont") < 0) {
		err_prefix("restore '%s'", path);
		goto cleanup;
	}
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int qemu_start(void *priv, void *vpriv, const struct vm_spec *spec)
{
	struct qemu_conn *c = priv;
	struct qemu_vm *v = vpriv;
	struct strv argv = STRV_INIT;
	struct vm_spec sp = *spec;
	int errfd = -1, fifo_fd = -1, ret = -1;
	char *cmdline;

	qmp_init(&v->q, -1);
	if (!spec->run_dir)
		return err_set("qemu driver: vm '%s' has no run directory", spec->name);
	v->qmp_path = xasprintf("%s/qmp.sock", spec->run_dir);
	v->err_path = xasprintf("%s/qemu.stderr", spec->run_dir);
	if (spec->console_log) {
		/* The console goes through a FIFO to a logger that keeps at
		 * most HV_CONSOLE_LOG_MAX bytes (a guest can print forever). */
		v->fifo_path = xasprintf("%s/console.fifo", spec->run_dir);
		unlink(v->fifo_path);
		if (mkfifo(v->fifo_path, 0600) < 0) {
			err_errno("create '%s'", v->fifo_path);
			goto cleanup;
		}
		sp.console_log = v->fifo_path;
	}
	if (arch_get(spec->arch)->fw_code && nvram_prepare(spec) < 0)
		goto cleanup;
	if (hv_qemu_argv(&sp, v->qmp_path, have_sandbox(c, arch_get(spec->arch)), &argv) < 0)
		goto cleanup;
	cmdline = run_argv_str((const char *const *)argv.v);
	log_debug("qemu: %s", cmdline);
	free(cmdline);
	errfd = open(v->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (errfd < 0) {
		err_errno("open '%s'", v->err_path);
		goto cleanup;
	}
	unlink(v->qmp_path);
	if (v->fifo_path) {
		/* A reader before QEMU starts: its open for writing never waits. */
		fifo_fd = open(v->fifo_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fifo_fd < 0) {
			err_errno("open '%s'", v->fifo_path);
			goto cleanup;
		}
		v->logger = hv_console_logger_start(fifo_fd, spec->console_log,
						    spec->console_log_max ? spec->console_log_max
									  : HV_CONSOLE_LOG_MAX);
		if (v->logger < 0) {
			v->logger = 0;
			goto cleanup;
		}
	}
	v->run = (struct run)RUN_INIT;
	v->run.argv = (const char *const *)argv.v;
	v->run.err = RUN_FD;
	v->run.err_fd = errfd;
	v->run.new_pgroup = true;
	/* Even if amiforge is SIGKILLed, unless it may be kept for inspection:
	 * then it is journaled (its pid) and `clean` stops it. */
	v->run.die_with_parent = !spec->persistent;
	if (run_start(&v->run) < 0)
		goto cleanup;
	if (v->run.pid <= 0) {   /* dry run */
		hv_console_logger_stop(v->logger, 0);
		v->logger = 0;
		v->dry = true;
		v->exited = true;
		ret = 0;
		goto cleanup;
	}
	if (vm_connect(v) < 0) {
		append_qemu_stderr(v);
		goto cleanup;
	}
	if (spec->restore_state && restore_state(v, spec->restore_state) < 0) {
		append_qemu_stderr(v);
		goto cleanup;
	}
	ret = 0;
cleanup:
	if (ret < 0 && v->run.pid > 0)
		run_release(&v->run);   /* kills and reaps */
	if (ret < 0 && v->logger > 0) {
		hv_console_logger_stop(v->logger, 1000);
		v->logger = 0;
	}
	if (fifo_fd >= 0)
		close(fifo_fd);
	v->run.argv = NULL;          /* argv is freed below */
	if (errfd >= 0)
		close(errfd);
	strv_release(&argv);
	return ret;
}

static int qemu_wait(void *priv UNUSED, void *vpriv, int64_t timeout_ms)
{
	struct qemu_vm *v = vpriv;
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		int st;
		pid_t w;

		if (v->exited)
			return HV_EXITED;
		w = waitpid(v->run.pid, &st, WNOHANG);
		if (w < 0 && errno != EINTR)
			return err_errno("wait for qemu");
		if (w == v->run.pid) {
			v->exited = true;
			v->run.pid = -1;
			v->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			if (v->status)
				log_debug("qemu exited with status %d", v->status);
			return HV_EXITED;
		}
		if (now_ms() >= deadline)
			return HV_RUNNING;
		usleep(50 * 1000);
	}
}

static int qemu_shutdown(void *priv UNUSED, void *vpriv)
{
	struct qemu_vm *v = vpriv;

	if (v->exited)
		return 0;
	if (v->q.fd < 0)
		return err_set("qemu: no QMP connection to send system_powerdown");
	return vm_cmd(v, "system_powerdown");
}

static int qemu_reset(void *priv UNUSED, void *vpriv)
{
	struct qemu_vm *v = vpriv;

	if (v->exited || v->q.fd < 0)
		return err_set("qemu: no running guest to reset");
	return vm_cmd(v, "system_reset");
}

static int qemu_destroy(void *priv, void *vpriv)
{
	struct qemu_vm *v = vpriv;

	if (v->exited)
		return 0;
	/* Politely first (QEMU flushes its disks), then the whole group. */
	if (v->q.fd >= 0 && vm_cmd(v, "quit") == 0 &&
	    qemu_wait(priv, v, QEMU_QUIT_MS) == HV_EXITED)
		return 0;
	kill(-v->run.pid, SIGKILL);
	kill(v->run.pid, SIGKILL);
	return qemu_wait(priv, v, 10000) == HV_EXITED ? 0 :
	       err_set("qemu pid %d does not die", (int)v->run.pid);
}

/* QEMU names the first -drive if=virtio "virtio0"; it creates new_top
 * itself with the old top as backing file (absolute path, format recorded). */
static int qemu_snapshot_disk(void *priv UNUSED, void *vpriv, const char *new_top)
{
	struct qemu_vm *v = vpriv;

	if (v->exited || v->q.fd < 0)
		return err_set("qemu: no running guest to snapshot");
	return vm_cmd_args(v, "blockdev-snapshot-sync",
			    json_pack("{s:s, s:s, s:s, s:s}", "device", "virtio0",
				      "snapshot-file", new_top, "format", "qcow2",
				      "mode", "absolute-paths"), QMP_SNAPSHOT_MS);
}

/* Paused, the disk frozen, then the state: QEMU's migration into the
 * file, which leaves the guest paused with its disks handed over ("cont"
 * takes them back). The disk before the state: a migration that fails
 * leaves a disk-only snapshot. */
static int qemu_save_state(void *priv, void *vpriv, const char *new_top, const char *state)
{
	struct qemu_vm *v = vpriv;
	int fd, r;

	if (v->exited || v->q.fd < 0)
		return err_set("qemu: no running guest to save");
	fd = open(state, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_errno("create '%s'", state);
	if (vm_cmd(v, "stop") < 0) {
		r = -1;
		goto cleanup;
	}
	if (qemu_snapshot_disk(priv, v, new_top) < 0) {
		r = -1;
		goto resume;
	}
	/* QEMU's default bandwidth cap (128 MiB/s) is for networks. */
	r = vm_cmd_args(v, "migrate-set-parameters",
			 json_pack("{s:I}", "max-bandwidth", (json_int_t)1 << 40), QMP_REPLY_MS) < 0 ||
	    vm_getfd(v, fd, STATE_FD_NAME) < 0 ||
	    vm_cmd_args(v, "migrate", json_pack("{s:s}", "uri", "fd:" STATE_FD_NAME),
			 QMP_REPLY_MS) < 0 ||
	    migration_wait(v, now_ms() + QMP_STATE_MS) < 0 ? 1 : 0;
	/* On the disk before anyone records it (a torn state restores a
	 * guest whose memory is wrong, and nothing would say so). */
	if (r == 0 && fsync(fd) < 0) {
		err_errno("write '%s'", state);
		r = 1;
	}
	if (r)
		err_prefix("save the state to '%s'", state);
resume:
	if (vm_cmd(v, "cont") < 0) {
		err_prefix("qemu: the guest stays paused");
		r = -1;
	}
cleanup:
	close(fd);
	if (r)
		unlink(state);
	return r;
}

/* A state restores into the QEMU that saved it (the same -help banner:
 * version and build). */
static int qemu_state_identity(void *priv, const struct vm_spec *spec, struct buf *out)
{
	struct qemu_conn *c = priv;

	have_sandbox(c, arch_get(spec->arch));
	if (!c->version)
		return err_set("qemu: its version is not known (%s -help)",
			       arch_get(spec->arch)->qemu);
	return buf_printf(out, "%s\n", c->version);
}

static void qemu_close(void *priv)
{
	struct qemu_conn *c = priv;

	free(c->version);
}

/* block-stream of virtio0 down to base; the job ends by itself (auto
 * finalize and dismiss): done when query-block-jobs no longer lists it. */
static int qemu_stream_disk(void *priv UNUSED, void *vpriv, const char *base, int64_t timeout_ms)
{
	struct qemu_vm *v = vpriv;
	int64_t deadline = now_ms() + timeout_ms;

	if (v->exited || v->q.fd < 0)
		return err_set("qemu: no running guest to stream");
	if (vm_cmd_args(v, "block-stream",
			 json_pack("{s:s, s:s, s:s}", "job-id", "amiforge-stream",
				   "device", "virtio0", "base", base), QMP_REPLY_MS) < 0)
		return -1;
	for (;;) {
		json_t *jobs = NULL, *e;
		size_t i;
		bool running = false;

		if (qmp_call(&v->q, "query-block-jobs", NULL, QMP_REPLY_MS, &jobs) < 0)
			return -1;
		json_array_foreach(jobs, i, e)
			if (json_is_string(json_object_get(e, "device")) &&
			    strcmp(json_string_value(json_object_get(e, "device")),
				   "amiforge-stream") == 0)
				running = true;
		json_decref(jobs);
		if (!running)
			return 0;
		if (now_ms() >= deadline) {
			vm_cmd_args(v, "block-job-cancel",
				     json_pack("{s:s}", "device", "amiforge-stream"), QMP_REPLY_MS);
			return err_set("qemu: stream onto '%s' not done within %" PRId64 " s", base,
				       timeout_ms / 1000);
		}
		usleep(50 * 1000);
	}
}

static pid_t qemu_pid(void *priv UNUSED, void *vpriv)
{
	struct qemu_vm *v = vpriv;

	return v->dry || v->exited || v->run.pid <= 0 ? 0 : v->run.pid;
}

/* QEMU was started without die-with-parent in its own process group: it
 * lives on once we stop watching it (init reaps it). */
static int qemu_detach(void *priv UNUSED, void *vpriv)
{
	struct qemu_vm *v = vpriv;

	if (v->exited || v->run.pid <= 0)
		return err_set("qemu: no running guest to detach");
	v->detached = true;
	return 0;
}

static int qemu_vm_release(void *priv UNUSED, void *vpriv)
{
	struct qemu_vm *v = vpriv;

	qmp_release(&v->q);
	if (v->detached) {
		/* Its sockets and stderr stay with it (the work directory); so
		 * does the console logger, which ends when QEMU does. */
		free(v->qmp_path);
		free(v->err_path);
		free(v->fifo_path);
		return 0;
	}
	if (v->run.pid > 0)
		run_release(&v->run);
	/* QEMU is gone: the logger drains the FIFO and ends. */
	if (v->logger > 0 && hv_console_logger_stop(v->logger, 5000) < 0)
		log_debug("qemu: the console logger did not end cleanly");
	v->logger = 0;
	if (v->fifo_path)
		unlink(v->fifo_path);
	free(v->fifo_path);
	if (v->qmp_path)
		unlink(v->qmp_path);
	if (v->err_path)
		unlink(v->err_path);
	free(v->qmp_path);
	free(v->err_path);
	return 0;
}

const struct hv_driver hv_qemu_driver = {
	.name = "qemu",
	.conn_size = sizeof(struct qemu_conn),
	.vm_size = sizeof(struct qemu_vm),
	.open = qemu_open,
	.start = qemu_start,
	.wait = qemu_wait,
	.shutdown = qemu_shutdown,
	.destroy = qemu_destroy,
	.snapshot_disk = qemu_snapshot_disk,
	.save_state = qemu_save_state,
	.state_identity = qemu_state_identity,
	.reset = qemu_reset,
	.stream_disk = qemu_stream_disk,
	.detach = qemu_detach,
	.release_kind = "qemu-pid",
	.release = proc_release,
	.pid = qemu_pid,
	.vm_release = qemu_vm_release,
	.close = qemu_close,
};
