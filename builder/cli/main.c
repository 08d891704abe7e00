/* amiforge: build AWS machine images on your own machine. */
#include <getopt.h>
#include <signal.h>
#include <jansson.h>

#include "commands.h"
#include "error.h"
#include "log.h"
#include "util.h"

#ifndef AMIFORGE_VERSION
#define AMIFORGE_VERSION "0.1.0"
#endif

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct command commands[] = {
	{ "build", cmd_build, "build an image from a recipe (boot, components, tests, outputs)" },
	{ "validate", cmd_validate, "check a recipe and its documents without booting anything" },
	{ "init", cmd_init, "start a project: a commented recipe, a component and its test" },
	{ "run", cmd_run, "boot an image, run one command in it through the agent" },
	{ "attach", cmd_attach, "run a command in the guest a failed build kept (--on-error)" },
	{ "component", cmd_component, "validate or run AWSTOE component documents" },
	{ "inspect", cmd_inspect, "check a disk offline for EC2 readiness (libguestfs)" },
	{ "convert", cmd_convert, "convert a disk to raw, qcow2, vmdk, vhd, vhdx or ova" },
	{ "publish", cmd_publish, "upload a disk and register it as an AMI" },
	{ "cache", cmd_cache, "list or prune the base image cache" },
	{ "clean", cmd_clean, "clean up what a crashed build left, from its journal" },
	{ "sbom", cmd_sbom, "list what an image contains (CycloneDX), read offline" },
	{ "diff", cmd_diff, "packages added, removed, changed between two images" },
	{ "report", cmd_report, "write a build's report page (HTML) again, or as JSON" },
	{ "pipeline", cmd_pipeline, "image pipelines: run on schedule when inputs change, notify" },
	{ "lifecycle", cmd_lifecycle, "deprecate, disable or delete a pipeline's old AMIs" },
	{ "aws", cmd_aws, "AWS helpers (sigv4 debugging)" },
	{ "help", cmd_help, "describe amiforge or one of its commands" },
	{ "version", cmd_version, "print amiforge's version" },
};

int cmd_usage(const char *usage)
{
	fprintf(stderr, "usage: amiforge %s\n", usage);
	return EXIT_USAGE;
}

/* The guest's output as it comes; on a terminal with control characters
 * escaped (str_escape_ctl), so a guest cannot drive the user's terminal. */
void cmd_relay_output(int stream, const char *data, size_t len, void *opaque UNUSED)
{
	int fd = stream == 2 ? 2 : 1;
	char *safe = isatty(fd) && str_has_ctl(data, len, true)
		? str_escape_ctl(data, len, true) : NULL;

	if (write_all(fd, safe ? safe : data, safe ? strlen(safe) : len) < 0)
		log_debug("relay output: %s", strerror(errno));
	free(safe);
}

int cmd_print_json(const json_t *j, size_t flags)
{
	if (!j) {
		log_error("the result cannot be written as JSON (text that is not UTF-8?)");
		return EXIT_FAIL;
	}
	if (json_dumpf(j, stdout, flags) < 0 || putchar('\n') == EOF || fflush(stdout) != 0) {
		log_error("write to standard output: %s", strerror(errno ? errno : EIO));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: amiforge [--verbose|--quiet] <command> [options]\n\n"
		   "Build AWS machine images on your own machine.\n\ncommands:\n");
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'amiforge help <command>' (or 'amiforge <command> --help') describes a command;\n"
		   "'man amiforge' describes them all. Exit status: 0 success, 1 failure,\n"
		   "2 usage or input error (a bad recipe, document or flag).\n");
}

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

/* One line for an unknown command, with the likeliest one it was meant to be. */
static int unknown_command(const char *name)
{
	const char *words[ARRAY_SIZE(commands)];
	const char *hint;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(commands); i++)
		words[i] = commands[i].name;
	hint = closest_word(name, words, ARRAY_SIZE(words));
	if (hint)
		log_error("unknown command '%s'; did you mean '%s'? (see 'amiforge help')", name, hint);
	else
		log_error("unknown command '%s' (see 'amiforge help')", name);
	return EXIT_USAGE;
}

/* amiforge help [COMMAND [SUBCOMMAND]]: the same text as COMMAND --help. */
static int cmd_help(int argc, char **argv)
{
	const struct command *cmd;
	char *av[4];
	int i, n = 0;

	if (argc < 2) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		printf("usage: amiforge help [COMMAND [SUBCOMMAND]]\n\n"
		       "Without COMMAND: the commands. With one: what it does and its options,\n"
		       "the same text as 'amiforge COMMAND --help'.\n");
		return EXIT_OK;
	}
	if (argc > 3)
		return cmd_usage("help [COMMAND [SUBCOMMAND]]");
	cmd = find_command(argv[1]);
	if (!cmd)
		return unknown_command(argv[1]);
	for (i = 1; i < argc; i++)
		av[n++] = argv[i];
	av[n++] = (char *)"--help";
	av[n] = NULL;
	optind = 0;
	return cmd->fn(n, av);
}

static int cmd_version(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: amiforge version\n\nPrint amiforge's version (the same as 'amiforge --version').\n");
		return EXIT_OK;
	}
	if (argc > 1)
		return cmd_usage("version");
	printf("amiforge %s\n", AMIFORGE_VERSION);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const struct command *cmd;
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	signal(SIGPIPE, SIG_IGN);
	/* Stop at the first non-option: the command's own options follow. */
	while ((c = getopt_long(argc, argv, "+vqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'q':
			log_set_level(LOG_QUIET);
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("amiforge %s\n", AMIFORGE_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = find_command(argv[optind]);
	if (!cmd)
		return unknown_command(argv[optind]);
	argc -= optind;
	argv += optind;
	optind = 0;	/* glibc: re-initialise getopt for the command */
	return cmd->fn(argc, argv);
}
