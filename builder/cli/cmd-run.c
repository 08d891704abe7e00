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
		if (ex->ops->mkdir_p(ex, parent, 0755) < 0)
			goto cleanup;
	}
	if (ex->ops->put_file(ex, local, remote, st.st_mode & 07777) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	free(local);
	free(remote);
	free(parent);
	return ret;
}

static int write_seed_only(const char *path)
{
	extern const char amiforge_agent_blob[], amiforge_agent_blob_end[];
	struct seed_opts so = {
		.agent = amiforge_agent_blob,
		.agent_len = (size_t)(amiforge_agent_blob_end - amiforge_agent_blob),
	};
	char *id = NULL;

	if (seed_write(path, &so, &id) < 0) {
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

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "driver", required_argument, NULL, 'd' },
		{ "connect", required_argument, NULL, 'c' },
		{ "accel", required_argument, NULL, 'a' },
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
	struct guest_opts go = { .net = VM_NET_USER,
				 .offline_reason = "amiforge run was given --no-net" };
	struct vm_forward fwd[VM_FORWARDS_MAX];
	size_t n_fwd = 0;
	struct progress prog = { .t0 = now_ms(), .tty = isatty(2) };
	const char *puts_[RUN_PUT_MAX];
	size_t n_puts = 0, i;
	int64_t timeout_s = 0, v;
	struct guest *g = NULL;
	struct exec_result res;
	struct exec_req req = { 0 };
	const char *batch = NULL;
	bool keep = false, powered_off = false;
	int c, status = RUN_EXIT_FAIL;

	memset(&res, 0, sizeof(res));
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			go.driver = optarg;
			break;
		case 'c':
			go.uri = optarg;
			break;
		case 'a':
			if (accel_parse(optarg, &go.accel) < 0)
				goto usage_err;
			break;
		case 'n':
			if (parse_uint("--cpus", optarg, 1, 64, &v) < 0)
				goto usage_err;
			go.cpus = (unsigned)v;
			break;
		case 'm':
			if (parse_uint("--memory", optarg, 128, 1048576, &v) < 0)
				goto usage_err;
			go.memory_mib = (unsigned)v;
			break;
		case 's':
			if (parse_size(optarg, &go.disk_size) < 0) {
				err_prefix("--disk-size");
				goto usage_err;
			}
			break;
		case 'N':
			break;
		case 'O':
			go.net = VM_NET_NONE;
			break;
		case 'F':
			if (n_fwd == VM_FORWARDS_MAX) {
				err_set("--forward: at most %d", VM_FORWARDS_MAX);
				goto usage_err;
			}
			if (vm_forward_parse(optarg, &fwd[n_fwd]) < 0)
				goto usage_err;
			n_fwd++;
			break;
		case 'A':
			if (strcmp(optarg, "seed") == 0) {
				go.via = GUEST_AGENT_SEED;
			} else if (strcmp(optarg, "inject") == 0) {
				go.via = GUEST_AGENT_INJECT;
			} else {
				err_set("--agent-via '%s': expected seed or inject", optarg);
				goto usage_err;
			}
			break;
		case 'p':
			if (n_puts == RUN_PUT_MAX) {
				err_set("--put: at most %d files", RUN_PUT_MAX);
				goto usage_err;
			}
			puts_[n_puts++] = optarg;
			break;
		case 't':
			if (parse_uint("--timeout", optarg, 1, 7 * 86400, &timeout_s) < 0)
				goto usage_err;
			break;
		case 'b':
			if (parse_uint("--boot-timeout", optarg, 1, 86400, &v) < 0)
				goto usage_err;
			go.boot_timeout_ms = v * 1000;
			break;
		case 'W':
			return write_seed_only(optarg);
		case 'B':
			batch = optarg;
			break;
		case 'K':
			keep = true;
			break;
		case 'h':
			printf("usage: amiforge %s\n", run_usage);
			return EXIT_OK;
		default:
			return cmd_usage(run_usage);
		}
	}
	if (optind >= argc)
		return cmd_usage(run_usage);
	go.image = argv[optind++];
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc && !batch) {
		err_set("no COMMAND given (amiforge run IMAGE -- COMMAND ARGS...)");
		goto usage_err;
	}
	if (optind < argc && batch) {
		err_set("--batch and a COMMAND exclude each other");
		goto usage_err;
	}
	if (go.driver && strcmp(go.driver, "libvirt") != 0 && strcmp(go.driver, "qemu") != 0) {
		err_set("--driver '%s': expected libvirt or qemu", go.driver);
		goto usage_err;
	}
	if (n_fwd && go.net == VM_NET_NONE) {
		err_set("--forward needs the network (--no-net was given)");
		goto usage_err;
	}
	go.forwards = fwd;
	go.n_forwards = n_fwd;
	go.on_phase = show_phase;
	go.opaque = &prog;

	g = guest_boot(&go);
	if (!g)
		goto fail;
	for (i = 0; i < n_puts; i++)
		if (put_one(g->ex, puts_[i]) < 0)
			goto fail;
	g->keep_dir = keep;
	show_phase("running", &prog);
	if (batch) {
		if (run_batch(g, batch, timeout_s * 1000, &powered_off) < 0)
			goto fail;
		status = EXIT_OK;
		goto shutdown;
	}
	req.argv = (const char *const *)argv + optind;
	req.timeout_ms = timeout_s * 1000;
	req.on_output = cmd_relay_output;
	if (g->step_ex->ops->exec(g->step_ex, &req, &res) < 0)
		goto fail;
	status = res.timed_out ? RUN_EXIT_TIMEOUT : res.status;
	if (res.timed_out)
		log_error("command timed out after %" PRId64 " s", timeout_s);
shutdown:
	show_phase("shutting down", &prog);
	if (!powered_off && guest_shutdown(g) < 0)
		log_warn("shutdown: %s", err_msg());
	if (keep)
		log_info("work directory kept: %s", g->dir);
	guest_free(g);
	exec_result_release(&res);
	return status;

usage_err:
	log_err_msg();
	return cmd_usage(run_usage);
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
	exec_result_release(&res);
	return RUN_EXIT_FAIL;
}
