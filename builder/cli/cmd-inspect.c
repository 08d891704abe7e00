/* amiforge inspect DISK: offline EC2-readiness checks (see inspect.h). */
#include <getopt.h>

#include "commands.h"
#include "error.h"
#include "builder/guest/guest.h"
#include "builder/inspect/inspect.h"
#include "log.h"
#include "util.h"

#define INSPECT_USAGE "inspect DISK [--json] [--format|--input-format raw|qcow2|vmdk|vhd|vhdx]\n" \
	"         [--for import-snapshot|import-image|ebs|generic] [--boot-mode bios|uefi] [--canary STRING]"

int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "input-format", required_argument, NULL, 'f' },
		{ "format", required_argument, NULL, 'f' },
		{ "for", required_argument, NULL, 't' },
		{ "boot-mode", required_argument, NULL, 'b' },
		{ "canary", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct inspect_opts o = INSPECT_OPTS_INIT;
	struct inspect_report *rep = NULL;
	bool json = false;
	int ch, ret;

	while ((ch = cmd_getopt(argc, argv, "jf:t:b:c:h", opts)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'f':
			o.format = optarg;
			break;
		case 't':
			if (!inspect_target_find(optarg, &o.target)) {
				log_error("inspect: unknown --for '%s'", optarg);
				return cmd_usage(INSPECT_USAGE);
			}
			break;
		case 'b':
			if (!inspect_boot_find(optarg, &o.boot)) {
				log_error("inspect: unknown --boot-mode '%s'", optarg);
				return cmd_usage(INSPECT_USAGE);
			}
			break;
		case 'c':
			o.canary = optarg;
			if (!*optarg) {
				log_error("inspect: empty --canary");
				return cmd_usage(INSPECT_USAGE);
			}
			break;
		case 'h':
			printf("usage: amiforge %s\n\nCheck a disk offline, read-only, for EC2: OS, "
			       "kernel drivers, boot modes,\nfstab, network, cloud-init, "
			       "generalisation. Exit 0: no failure; 1: a check failed.\n",
			       INSPECT_USAGE);
			return EXIT_OK;
		default:
			return cmd_usage(INSPECT_USAGE);
		}
	}
	if (optind + 1 != argc)
		return cmd_usage(INSPECT_USAGE);
	o.disk = argv[optind];
	/* Interrupted: the appliance and the temporary files go (guest.c). */
	guest_on_signal(NULL, NULL);
	if (inspect_run(&o, &rep) < 0) {
		log_err_msg();
		return EXIT_FAIL;
	}
	if (json) {
		char *s = inspect_report_json(rep);

		printf("%s\n", s);
		free(s);
	} else {
		inspect_report_print(rep, stdout, isatty(STDOUT_FILENO));
	}
	ret = inspect_report_failed(rep) ? EXIT_FAIL : EXIT_OK;
	inspect_report_free(rep);
	return ret;
}
