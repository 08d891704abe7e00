/* cmd-run.c: `amiforge run` — boot an image, run one command in it through
 * the agent, shut down. The base image is never written (qcow2 overlay). */
#include <getopt.h>

#include "commands.h"
#include "builder/exec/executor.h"
#include "builder/guest/guest.h"
#include "run-batch.h"
#include "builder/guest/seed.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* Exit status when amiforge itself fails (as env(1) and docker run do), so
 * that it cannot be mistaken for the command's own status. */
#define RUN_EXIT_FAIL 125
/* The command's deadline expired (as timeout(1)). */
#define RUN_EXIT_TIMEOUT 124
/* --put entries at most. */
#define RUN_PUT_MAX 64

static const char run_usage[] =
	"run IMAGE [--driver libvirt|qemu] [--connect URI] [--accel auto|kvm|tcg]\n"
	"       [--cpus N] [--memory MiB] [--disk-size SIZE] [--no-net] [--forward [HOST:]GUEST ...]\n"
	"       [--agent-via seed|inject]\n"
	"       [--put LOCAL:REMOTE ...] [--timeout S] [--boot-timeout S] [--keep]\n"
	"       (-- COMMAND ARGS... | --batch FILE)\n"
	"   or: amiforge run --write-seed PATH   (write the NoCloud seed ISO, print its instance-id)";

struct progress {
	int64_t t0;
	bool tty;
};

static void show_phase(const char *name, void *opaque)
{
	struct progress *p = opaque;
	double s = (double)(now_ms() - p->t0) / 1000.0;

	if (p->tty)
		fprintf(stderr, "amiforge: [%6.1fs] %s\n", s, name);
	else
		log_debug("[%.1fs] %s", s, name);
}

static int put_one(struct executor *ex, const char *spec)
{
	const char *colon = strrchr(spec, ':');
	char *local, *remote, *parent, *slash;
	struct stat st;
	int ret = -1;

	if (!colon || colon == spec || colon[1] != '/')
		return err_set("--put '%s': expected LOCAL:/ABSOLUTE/REMOTE", spec);
	local = xstrndup(spec, (size_t)(colon - spec));
	remote = xstrdup(colon + 1);
	parent = xstrdup(remote);
	if (stat(local, &st) < 0) {
		err_errno("--put '%s'", local);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set("--put '%s': not a regular file", local);
		goto cleanup;
	}
	slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		if (executor_mkdir_p(ex, parent, 0755) < 0)
			goto cleanup;
	}
	if (executor_put_file(ex, local, remote, st.st_mode & 07777) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	free(local);
	free(remote);
	free(parent);
	return ret;
}

/* The seed for an arch guest (ARCH_AUTO: x86_64): --arch before
 * --write-seed chooses. */
static int write_seed_only(const char *path, enum arch_id arch)
{
	struct seed_opts so = { 0 };
	char *id = NULL;

	so.agent = arch_agent(arch_get(arch), &so.agent_len);
	if (!so.agent || seed_write(path, &so, &id) < 0) {
		log_err_msg();
		return EXIT_FAIL;
	}
	printf("%s\n", id);
	free(id);
	return EXIT_OK;
}

static int parse_uint(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (parse_i64(s, min, max, out) < 0)
		return err_prefix("%s", opt);
	return 0;
}

/* What the command line says. */
struct run_args {
	struct guest_opts go;
	struct vm_forward fwd[VM_FORWARDS_MAX];
	size_t n_fwd;
	const char *puts[RUN_PUT_MAX];
	size_t n_puts;
	int64_t timeout_s;
	const char *batch;
	bool keep;
	char **command;             /* argv after IMAGE [--], NULL-terminated */
};

/* Flags and IMAGE [--] COMMAND → args. 0 to go on (unless *exit_now is set
 * to the command's exit status: --help, --write-seed, a usage text), -1 on
 * a usage error (recorded). */
static int run_flags(int argc, char **argv, struct run_args *a, int *exit_now)
{
	static const struct option opts[] = {
		{ "driver", required_argument, NULL, 'd' },
		{ "connect", required_argument, NULL, 'c' },
		{ "accel", required_argument, NULL, 'a' },
		{ "arch", required_argument, NULL, 'R' },
		{ "cpus", required_argument, NULL, 'n' },
		{ "memory", required_argument, NULL, 'm' },
		{ "disk-size", required_argument, NULL, 's' },
		{ "net", no_argument, NULL, 'N' },         /* the default; kept for old scripts */
		{ "no-net", no_argument, NULL, 'O' },
		{ "forward", required_argument, NULL, 'F' },
		{ "agent-via", required_argument, NULL, 'A' },
		{ "put", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "boot-timeout", required_argument, NULL, 'b' },
		{ "write-seed", required_argument, NULL, 'W' },
		{ "batch", required_argument, NULL, 'B' },
		{ "keep", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t v;
	int c;

	*exit_now = -1;
	while ((c = cmd_getopt(argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'd':
			a->go.driver = optarg;
			break;
		case 'c':
			a->go.uri = optarg;
			break;
		case 'a':
			if (accel_parse(optarg, &a->go.accel) < 0)
				return -1;
			break;
		case 'R': {
			const struct arch *ar = arch_find(optarg);

			if (!ar)
				return err_set("--arch '%s': expected %s", optarg, arch_names());
			a->go.arch = ar->id;
			break;
		}
		case 'n':
			if (parse_uint("--cpus", optarg, 1, 64, &v) < 0)
				return -1;
			a->go.cpus = (unsigned)v;
			break;
		case 'm':
			if (parse_uint("--memory", optarg, 128, 1048576, &v) < 0)
				return -1;
			a->go.memory_mib = (unsigned)v;
			break;
		case 's':
			if (parse_size(optarg, &a->go.disk_size) < 0) {
				err_prefix("--disk-size");
				return -1;
			}
			break;
		case 'N':
			break;
		case 'O':
			a->go.net = VM_NET_NONE;
			break;
		case 'F':
			if (a->n_fwd == VM_FORWARDS_MAX) {
				err_set("--forward: at most %d", VM_FORWARDS_MAX);
				return -1;
			}
			if (vm_forward_parse(optarg, &a->fwd[a->n_fwd]) < 0)
				return -1;
			a->n_fwd++;
			break;
		case 'A':
			if (strcmp(optarg, "seed") == 0) {
				a->go.via = GUEST_AGENT_SEED;
			} else if (strcmp(optarg, "inject") == 0) {
				a->go.via = GUEST_AGENT_INJECT;
			} else {
				err_set("--agent-via '%s': expected seed or inject", optarg);
				return -1;
			}
			break;
		case 'p':
			if (a->n_puts == RUN_PUT_MAX) {
				err_set("--put: at most %d files", RUN_PUT_MAX);
				return -1;
			}
			a->puts[a->n_puts++] = optarg;
			break;
		case 't':
			if (parse_uint("--timeout", optarg, 1, 7 * 86400, &a->timeout_s) < 0)
				return -1;
			break;
		case 'b':
			if (parse_uint("--boot-timeout", optarg, 1, 86400, &v) < 0)
				return -1;
			a->go.boot_timeout_ms = v * 1000;
			break;
		case 'W':
			*exit_now = write_seed_only(optarg, a->go.arch);
			return 0;
		case 'B':
			a->batch = optarg;
			break;
		case 'K':
			a->keep = true;
			break;
		case 'h':
			printf("usage: amiforge %s\n\n"
			       "Boot IMAGE on a throwaway overlay (the image is never written), run\n"
			       "COMMAND in it through the agent with its output streamed, shut down.\n"
			       "  --put LOCAL:REMOTE    copy a file into the guest first (repeat)\n"
			       "  --batch FILE          run the commands and copies FILE lists, in order\n"
			       "  --no-net              no network interface (default: user-mode NAT;\n"
			       "                        --net, the old opt-in, is accepted)\n"
			       "  --forward [HOST:]GUEST  a TCP port of the guest on 127.0.0.1\n"
			       "  --agent-via seed|inject  the agent from the NoCloud seed (default) or\n"
			       "                        written into the overlay\n"
			       "  --timeout S           the command's deadline; --boot-timeout S the boot's\n"
			       "  --keep                leave the guest running (amiforge clean removes it)\n"
			       "  --arch A              the guest's architecture: x86_64 (amd64) or\n"
			       "                        aarch64 (arm64); default: read from IMAGE\n"
			       "  --driver, --connect, --accel, --cpus, --memory, --disk-size: the VM\n",
			       run_usage);
			*exit_now = EXIT_OK;
			return 0;
		default:
			*exit_now = cmd_usage(run_usage);
			return 0;
		}
	}
	if (optind >= argc) {
		*exit_now = cmd_usage(run_usage);
		return 0;
	}
	a->go.image = argv[optind++];
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	a->command = argv + optind;
	if (optind >= argc && !a->batch)
		return err_set("no COMMAND given (amiforge run IMAGE -- COMMAND ARGS...)");
	if (optind < argc && a->batch)
		return err_set("--batch and a COMMAND exclude each other");
	if (a->go.driver && !hv_driver_find(a->go.driver))
		return err_set("--driver '%s': expected libvirt or qemu", a->go.driver);
	if (a->n_fwd && a->go.net == VM_NET_NONE)
		return err_set("--forward needs the network (--no-net was given)");
	a->go.forwards = a->fwd;
	a->go.n_forwards = a->n_fwd;
	return 0;
}

/* The guest's work: --put files, then the batch or the one command (its
 * output relayed). The exit status, or -1 (recorded). */
static int run_work(struct guest *g, const struct run_args *a, struct progress *prog,
		    bool *powered_off)
{
	struct exec_req req = { .argv = (const char *const *)a->command,
				.timeout_ms = a->timeout_s * 1000,
				.on_output = cmd_relay_output };
	struct exec_result res;
	int status;
	size_t i;

	for (i = 0; i < a->n_puts; i++)
		if (put_one(g->ex, a->puts[i]) < 0)
			return -1;
	show_phase("running", prog);
	if (a->batch)
		return run_batch(g, a->batch, a->timeout_s * 1000, powered_off) < 0 ? -1 : EXIT_OK;
	memset(&res, 0, sizeof(res));
	if (executor_exec(g->step_ex, &req, &res) < 0) {
		exec_result_release(&res);
		return -1;
	}
	status = res.timed_out ? RUN_EXIT_TIMEOUT : res.status;
	if (res.timed_out)
		log_error("command timed out after %" PRId64 " s", a->timeout_s);
	exec_result_release(&res);
	return status;
}

/* flags → boot → work → shutdown (the guest kept for a look on failure) */
int cmd_run(int argc, char **argv)
{
	struct run_args a = { .go = { .net = VM_NET_USER,
				      .offline_reason = "amiforge run was given --no-net" } };
	struct progress prog = { .t0 = now_ms(), .tty = isatty(2) };
	struct guest *g = NULL;
	bool powered_off = false;
	int exit_now, status;

	if (run_flags(argc, argv, &a, &exit_now) < 0) {
		log_err_msg();
		return cmd_usage(run_usage);
	}
	if (exit_now >= 0)
		return exit_now;
	a.go.on_phase = show_phase;
	a.go.opaque = &prog;

	g = guest_boot(&a.go);
	if (!g)
		goto fail;
	g->keep_dir = a.keep;
	status = run_work(g, &a, &prog, &powered_off);
	if (status < 0)
		goto fail;
	show_phase("shutting down", &prog);
	if (!powered_off && guest_shutdown(g) < 0)
		log_warn("shutdown: %s", err_msg());
	if (a.keep)
		log_info("work directory kept: %s", g->dir);
	guest_free(g);
	return status;

fail:
	log_err_msg();
	if (g) {
		show_phase("shutting down", &prog);
		g->keep_dir = true;
		if (guest_shutdown(g) < 0)
			log_debug("shutdown: %s", err_msg());
		log_error("console log: %s", g->console_log);
	}
	guest_free(g);
	return RUN_EXIT_FAIL;
}
