/* cmd-attach.c: `amiforge attach BUILD_DIR -- COMMAND ARGS...` — run one
 * command in the guest a failed build left running for inspection
 * (--on-error=abort|ask), as `amiforge run` does: its stdout and stderr
 * stream through, its exit status is amiforge's. The guest is found from the
 * build directory's guest record (guest.h); nothing is journaled or changed. */
#include <getopt.h>
#include <libvirt/libvirt.h>

#include "builder/guest/agent-client.h"
#include "builder/build/builddir.h"
#include "commands.h"
#include "builder/exec/executor.h"
#include "builder/guest/guest.h"
#include "drivers/hypervisor/libvirt-remote.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* As `amiforge run`: amiforge's own failure, and the command's deadline. */
#define ATTACH_EXIT_FAIL 125
#define ATTACH_EXIT_TIMEOUT 124
/* Connecting and the handshake: the agent answers at once when idle; a
 * build still using it (or a wedged guest) is reported, not waited for. */
#define ATTACH_CONNECT_MS 5000
#define ATTACH_SYNC_MS 20000

static const char attach_usage[] =
	"attach [--timeout S] BUILD_DIR -- COMMAND [ARGS...]";

static const char attach_help[] =
	"\n"
	"Run COMMAND in the guest that a build failed with --on-error=abort (or\n"
	"abort at the --on-error=ask question) left running, through its agent:\n"
	"stdout and stderr stream through, the exit status is the command's\n"
	"(124: --timeout expired, 125: amiforge failed). Works while an\n"
	"--on-error=ask build waits at its question. `amiforge clean BUILD_DIR`\n"
	"destroys the guest.\n";

/* Connect to the kept guest's agent. NULL with an error recorded. */
static struct agent *reach(const char *build_dir, struct guest_record *rec)
{
	struct build_dir bd;
	struct agent *a = NULL;
	char *path = NULL;

	if (build_dir_open(build_dir, &bd) < 0)
		return NULL;
	path = xasprintf("%s/" GUEST_RECORD_NAME, bd.path);
	if (access(path, F_OK) < 0) {
		err_set("%s: no guest kept for inspection (the build did not stop with "
			"--on-error=abort|ask, or `amiforge clean` destroyed it)", bd.path);
		goto cleanup;
	}
	if (path_check_private(path, "guest record") < 0 || guest_record_load(path, rec) < 0)
		goto cleanup;
	if (rec->uri) {
		/* Kept on another host: its agent is reached through libvirt,
		 * never through a socket of this one (libvirt-remote.h). */
		int fd, fd2;

		if (hv_uri_check(rec->uri) < 0 || !hv_uri_remote(rec->uri) ||
		    !hv_domain_name_ours(rec->name)) {
			err_set("guest record '%s': not a remote amiforge guest (%s, %s)", path,
				rec->name, rec->uri);
			goto cleanup;
		}
		if (lvr_channel_fd(rec->uri, rec->name, &fd) < 0)
			goto cleanup;
		fd2 = dup(fd);
		if (fd2 < 0) {
			err_errno("dup");
			close(fd);
			goto cleanup;
		}
		a = agent_open_fds(fd, fd2);
	} else {
		if (access(rec->agent_socket, F_OK) < 0) {
			err_errno("guest %s: agent socket '%s'", rec->name, rec->agent_socket);
			goto cleanup;
		}
		a = agent_open_unix(rec->agent_socket, ATTACH_CONNECT_MS);
	}
	if (!a)
		goto cleanup;
	/* Twice, as guest_resync: drop what an earlier client left queued. */
	if (agent_sync(a, ATTACH_SYNC_MS) < 0 || agent_sync(a, ATTACH_SYNC_MS) < 0) {
		err_prefix("guest %s (is it still running? is another amiforge using its "
			   "agent?)", rec->name);
		agent_close(a);
		a = NULL;
	}
cleanup:
	free(path);
	build_dir_release(&bd);
	return a;
}

int cmd_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct guest_record rec = { 0 };
	struct exec_req req = { 0 };
	struct exec_result res;
	struct executor *ex = NULL;
	struct agent *a = NULL;
	const char *dir;
	int64_t timeout_s = 0;
	int c, status = ATTACH_EXIT_FAIL;

	memset(&res, 0, sizeof(res));
	/* '+': options stop at BUILD_DIR; the command's own follow "--". */
	while ((c = cmd_getopt(argc, argv, "+h", opts)) != -1) {
		switch (c) {
		case 't':
			if (parse_i64(optarg, 1, 7 * 86400, &timeout_s) < 0) {
				err_prefix("--timeout");
				log_err_msg();
				return cmd_usage(attach_usage);
			}
			break;
		case 'h':
			printf("usage: amiforge %s\n%s", attach_usage, attach_help);
			return EXIT_OK;
		default:
			return cmd_usage(attach_usage);
		}
	}
	if (optind >= argc)
		return cmd_usage(attach_usage);
	dir = argv[optind++];
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc) {
		log_error("no COMMAND given (amiforge attach BUILD_DIR -- COMMAND ARGS...)");
		return cmd_usage(attach_usage);
	}
	a = reach(dir, &rec);
	if (!a)
		goto fail;
	ex = executor_agent_new(a);
	req.argv = (const char *const *)argv + optind;
	req.timeout_ms = timeout_s * 1000;
	req.on_output = cmd_relay_output;
	if (executor_exec(ex, &req, &res) < 0)
		goto fail;
	status = res.timed_out ? ATTACH_EXIT_TIMEOUT : res.status;
	if (res.timed_out)
		log_error("command timed out after %" PRId64 " s", timeout_s);
	goto done;
fail:
	log_err_msg();
	if (rec.console_log)
		log_error("console log: %s", rec.console_log);
done:
	exec_result_release(&res);
	executor_close(ex);
	agent_close(a);
	guest_record_release(&rec);
	return status;
}
