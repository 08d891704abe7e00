/* amiforge pipeline run|status|install|uninstall|deliver FILE and
 * amiforge lifecycle plan|apply FILE (builder/pipeline/). */
#include <getopt.h>

#include "commands.h"
#include "builder/pipeline/install.h"
#include "builder/pipeline/lifecycle.h"
#include "builder/pipeline/pipeline.h"
#include "builder/pipeline/runs.h"
#include "drivers/aws/aws.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define PIPELINE_USAGE "pipeline run|status|install|uninstall|deliver FILE [options]"
#define LIFECYCLE_USAGE "lifecycle plan|apply FILE [--json]"

static const char pipeline_help[] =
	"usage: amiforge " PIPELINE_USAGE "\n\n"
	"An image pipeline (EC2 Image Builder's, run on this host): a recipe, a\n"
	"schedule (cron(MIN HOUR DAY MONTH WEEKDAY YEAR) in a timezone), a condition\n"
	"(always | onlyIfUpdated), notifications (SNS, webhooks, commands),\n"
	"distribution extras (launch template versions, SSM parameters, license\n"
	"configurations) and a lifecycle policy, in one YAML file that\n"
	"'amiforge validate FILE' checks.\n\n"
	"  run FILE [--now] [--force]\n"
	"        evaluate once: build when the schedule is due (--now: due now) and,\n"
	"        for onlyIfUpdated, when the recipe, a document or the base image\n"
	"        changed since the last successful build (--force: build anyway);\n"
	"        then tag the AMIs, apply the distribution extras and notify.\n"
	"        Every run is recorded in the pipeline's state directory.\n"
	"  status FILE [--json]\n"
	"        the runs: status, reason, AMIs, failed step; the next scheduled time\n"
	"  install FILE [--scheduler systemd|cron] [--unit-dir DIR] [--print]\n"
	"        hand the schedule to the host: a systemd timer and service where\n"
	"        systemd runs, a crontab entry otherwise (--print: show, change nothing)\n"
	"  uninstall FILE [--scheduler systemd|cron] [--unit-dir DIR] [--print]\n"
	"        remove what install added\n"
	"  deliver FILE BUILD_DIR\n"
	"        tag, distribute and notify for a finished build again (recorded as a run)\n\n"
	"Exit status: 0 done (built, skipped or not due), 1 a build, distribution\n"
	"step or notification failed, 2 a usage error or an invalid pipeline file.\n";

static const char lifecycle_help[] =
	"usage: amiforge " LIFECYCLE_USAGE "\n\n"
	"The lifecycle policy of a pipeline file: in each of lifecycle.regions, the\n"
	"AMIs tagged amiforge:pipeline=NAME, minus those with an exclusion tag, newest\n"
	"first; rules (keep_last: N, or older_than: 30d with retain_at_least: N)\n"
	"deprecate (EnableImageDeprecation), disable (DisableImage) or delete\n"
	"(DeregisterImage and DeleteSnapshot) the others.\n\n"
	"  plan FILE [--json]     what apply would do; changes nothing\n"
	"  apply FILE [--json]    do it: journaled in the state directory, idempotent\n"
	"                         (an action in effect is not repeated; a deletion\n"
	"                         interrupted is finished by the next apply)\n";

static bool wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

static struct pipeline *load(const char *path)
{
	struct pipeline *p = pipeline_load(path);

	if (!p)
		log_err_msg();
	return p;
}

int cmd_pipeline(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "now", no_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "scheduler", required_argument, NULL, 's' },
		{ "unit-dir", required_argument, NULL, 'u' },
		{ "print", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct pipeline_run_opts ro = { 0 };
	struct install_opts io = { 0 };
	struct pipeline *p = NULL;
	const char *sub;
	bool json = false;
	int c, rc = EXIT_USAGE, nargs;

	if (wants_help(argc, argv)) {
		fputs(pipeline_help, stdout);
		return EXIT_OK;
	}
	if (argc < 2)
		return cmd_usage(PIPELINE_USAGE);
	sub = argv[1];
	argc--;
	argv++;
	optind = 0;     /* glibc: start over (argv[0] is now the subcommand) */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			ro.now = true;
			break;
		case 'f':
			ro.force = true;
			break;
		case 'j':
			json = true;
			break;
		case 's':
			if (strcmp(optarg, "systemd") == 0)
				io.scheduler = SCHED_SYSTEMD;
			else if (strcmp(optarg, "cron") == 0)
				io.scheduler = SCHED_CRON;
			else {
				log_error("--scheduler must be systemd or cron, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'u':
			io.unit_dir = optarg;
			break;
		case 'p':
			io.print = true;
			break;
		default:
			return cmd_usage(PIPELINE_USAGE);
		}
	}
	nargs = argc - optind;
	if (strcmp(sub, "deliver") == 0 ? nargs != 2 : nargs != 1)
		return cmd_usage(PIPELINE_USAGE);
	if ((ro.now || ro.force) && strcmp(sub, "run") != 0) {
		log_error("--now and --force go with 'pipeline run'");
		return EXIT_USAGE;
	}
	if (json && strcmp(sub, "status") != 0) {
		log_error("--json goes with 'pipeline status'");
		return EXIT_USAGE;
	}
	if ((io.scheduler || io.unit_dir || io.print) && strcmp(sub, "install") != 0 &&
	    strcmp(sub, "uninstall") != 0) {
		log_error("--scheduler, --unit-dir and --print go with install and uninstall");
		return EXIT_USAGE;
	}
	if (strcmp(sub, "run") && strcmp(sub, "status") && strcmp(sub, "install") &&
	    strcmp(sub, "uninstall") && strcmp(sub, "deliver")) {
		log_error("unknown pipeline subcommand '%s' (run, status, install, uninstall, "
			  "deliver)", sub);
		return EXIT_USAGE;
	}
	p = load(argv[optind]);
	if (!p)
		goto cleanup;
	rc = EXIT_FAIL;
	if (strcmp(sub, "run") == 0) {
		aws_cancel_install();
		if (pipeline_run(p, &ro) < 0)
			goto fail;
	} else if (strcmp(sub, "status") == 0) {
		if (pipeline_status(p, json) < 0)
			goto fail;
	} else if (strcmp(sub, "install") == 0) {
		if (pipeline_install(p, &io) < 0)
			goto fail;
	} else if (strcmp(sub, "uninstall") == 0) {
		if (pipeline_uninstall(p, &io) < 0)
			goto fail;
	} else if (pipeline_deliver(p, argv[optind + 1]) < 0) {
		goto fail;
	}
	rc = EXIT_OK;
	goto cleanup;
fail:
	log_err_msg();
cleanup:
	pipeline_free(p);
	return rc;
}

int cmd_lifecycle(int argc, char **argv)
{
	struct pipeline *p = NULL;
	bool json = false, apply;
	int i, rc = EXIT_USAGE;
	const char *file = NULL;

	if (wants_help(argc, argv)) {
		fputs(lifecycle_help, stdout);
		return EXIT_OK;
	}
	if (argc < 3 || (strcmp(argv[1], "plan") && strcmp(argv[1], "apply")))
		return cmd_usage(LIFECYCLE_USAGE);
	apply = strcmp(argv[1], "apply") == 0;
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (argv[i][0] == '-' || file)
			return cmd_usage(LIFECYCLE_USAGE);
		else
			file = argv[i];
	}
	if (!file)
		return cmd_usage(LIFECYCLE_USAGE);
	p = load(file);
	if (!p)
		goto cleanup;
	rc = EXIT_FAIL;
	if (lifecycle_run(p, apply, json) < 0) {
		log_err_msg();
		goto cleanup;
	}
	rc = EXIT_OK;
cleanup:
	pipeline_free(p);
	return rc;
}
