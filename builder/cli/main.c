/* amiforge: build AWS machine images on your own machine. */
#include <getopt.h>
#include <signal.h>

#include "commands.h"
#include "error.h"
#include "log.h"

#ifndef AMIFORGE_VERSION
#define AMIFORGE_VERSION "0.1.0"
#endif

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "build", cmd_build, "build an image from a recipe (boot, components, tests, outputs)" },
	{ "validate", cmd_validate, "check a recipe and its documents without booting anything" },
	{ "run", cmd_run, "boot an image, run one command in it through the agent" },
	{ "attach", cmd_attach, "run a command in the guest a failed build kept (--on-error)" },
	{ "component", cmd_component, "validate or run AWSTOE component documents" },
	{ "inspect", cmd_inspect, "check a disk offline for EC2 readiness (libguestfs)" },
	{ "convert", cmd_convert, "convert a disk to raw, qcow2, vmdk, vhd, vhdx or ova" },
	{ "publish", cmd_publish, "upload a disk and register it as an AMI" },
	{ "cache", cmd_cache, "list or prune the base image cache" },
	{ "clean", cmd_clean, "clean up what a crashed build left, from its journal" },
	{ "aws", cmd_aws, "AWS helpers (sigv4 debugging)" },
};

int cmd_usage(const char *usage)
{
	fprintf(stderr, "usage: amiforge %s\n", usage);
	return EXIT_USAGE;
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: amiforge [--verbose|--quiet] <command> [options]\n\n"
		   "Build AWS machine images on your own machine.\n\ncommands:\n");
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'amiforge <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	size_t i;
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
	for (i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		argc -= optind;
		argv += optind;
		optind = 0;	/* glibc: re-initialise getopt for the command */
		return commands[i].fn(argc, argv);
	}
	log_error("unknown command '%s' (see 'amiforge --help')", argv[optind]);
	return EXIT_USAGE;
}
