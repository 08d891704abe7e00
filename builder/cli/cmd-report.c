/* amiforge report BUILD_DIR [-o FILE] [--json]: a build's report page,
 * written again from its directory (builder/report/report.h). */
#include <getopt.h>
#include <jansson.h>

#include "builder/report/report.h"
#include "commands.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define REPORT_USAGE "report BUILD_DIR [-o FILE] [--json]"

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL;
	bool json = false;
	json_t *data;
	char *path = NULL;
	int c, rc = EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "o:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: amiforge %s\n\n"
			       "Write a build's report, one self-contained HTML page (no external\n"
			       "resources, no JavaScript), from what the build left in its directory:\n"
			       "the timeline of stages and steps (coloured by outcome, checkpoint reuse\n"
			       "marked), the slowest steps, the failure with its last output and guest\n"
			       "console lines, the inspection, the outputs and AMIs, what went in.\n"
			       "Every build writes BUILD_DIR/report.html itself; this writes it again\n"
			       "(also for a failed or interrupted build).\n\n"
			       "  -o, --output FILE   write the page to FILE (default BUILD_DIR/report.html)\n"
			       "  --json              print the report's content as JSON instead\n\n"
			       "Exit status: 0 written, 1 failure (not a build directory...), 2 usage.\n",
			       REPORT_USAGE);
			return EXIT_OK;
		default:
			return cmd_usage(REPORT_USAGE);
		}
	}
	if (optind != argc - 1)
		return cmd_usage(REPORT_USAGE);
	data = report_data(argv[optind]);
	if (!data) {
		log_err_msg();
		return EXIT_FAIL;
	}
	if (json) {
		rc = cmd_print_json(data, JSON_INDENT(2) | JSON_SORT_KEYS);
		goto cleanup;
	}
	path = out ? xstrdup(out) : xasprintf("%s/report.html", argv[optind]);
	if (report_write_html(data, path) < 0) {
		log_err_msg();
		goto cleanup;
	}
	printf("%s\n", path);
	rc = EXIT_OK;
cleanup:
	free(path);
	json_decref(data);
	return rc;
}
