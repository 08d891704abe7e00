/* amiforge: build AWS machine images on your own machine. */
#include <archive.h>
#include <curl/curl.h>
#include <getopt.h>
#include <guestfs.h>
#include <jansson.h>
#include <libdeflate.h>
#include <libvirt/libvirt.h>
#include <libxml/xmlversion.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <yaml.h>

#include "commands.h"
#include "builder/guest/guest.h"
#include "builder/guest/inject.h"
#include "error.h"
#include "log.h"
#include "proto.h"
#include "util.h"

#ifndef AMIFORGE_VERSION
#define AMIFORGE_VERSION "0.1.0"
#endif

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
	const char *const *subs;   /* its subcommands, NULL-terminated, or NULL */
	const char *examples;      /* after its --help: "Examples:" and these lines */
	const char *exits;         /* after its --help; NULL: EXIT_STATUS_HELP */
};

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const char *const component_subs[] = { "validate", "run", "list", "show", NULL };
static const char *const cache_subs[] = { "list", "prune", "fetch", "dir", NULL };
static const char *const pipeline_subs[] = { "run", "status", "install", "uninstall", "deliver",
					     NULL };
static const char *const lifecycle_subs[] = { "plan", "apply", NULL };
static const char *const aws_subs[] = { "sigv4", "whoami", NULL };

/* One table: the dispatcher, 'amiforge help', the man page (doc/mkman.py)
 * and shell completion ('amiforge help --commands') all read it. */
static const struct command commands[] = {
	{ "build", cmd_build, "build an image from a recipe (boot, components, tests, outputs)", NULL,
	  "amiforge build web.yaml\n"
	  "amiforge build web.yaml --var version=1.2.0 --on-error=ask\n"
	  "amiforge build --resume builds/web-1.2.0-20260101120000", NULL },
	{ "validate", cmd_validate, "check a recipe and its documents without booting anything",
	  NULL, "amiforge validate web.yaml\n"
	  "amiforge validate --json --var parent=images/debian-12.qcow2 web.yaml", NULL },
	{ "init", cmd_init, "start a project: a commented recipe, a component and its test", NULL,
	  "amiforge init web            (asks, on a terminal)\n"
	  "amiforge init web --yes --name web --components update-linux \\\n"
	  "    --publish ebs --region eu-west-1 --copy-to us-east-1", 
	  "Exit status: 0 written; 1 failure (a file exists...); 2 usage, or answers\n"
	  "the recipe does not accept (file:line:col: message).\n" },
	{ "run", cmd_run, "boot an image, run one command in it through the agent", NULL,
	  "amiforge run debian-12.qcow2 -- cat /etc/os-release\n"
	  "amiforge run img.qcow2 --put setup.sh:/tmp/setup.sh -- sh /tmp/setup.sh",
	  "Exit status: the command's; 124 its --timeout expired; 125 amiforge failed\n"
	  "(the boot, the agent); 2 bad usage before anything booted.\n" },
	{ "attach", cmd_attach, "run a command in the guest a failed build kept (--on-error)", NULL,
	  "amiforge attach builds/web-1.0.0-20260101120000 -- journalctl -b",
	  "Exit status: the command's; 124 its --timeout expired; 125 amiforge failed;\n"
	  "2 bad usage.\n" },
	{ "component", cmd_component, "validate, run, list or show AWSTOE component documents",
	  component_subs, "amiforge component validate components/*.yaml\n"
	  "amiforge component run hello.yaml --local\n"
	  "amiforge component list --json\n"
	  "amiforge component show update-linux", NULL },
	{ "inspect", cmd_inspect, "check a disk offline for EC2 readiness (libguestfs)", NULL,
	  "amiforge inspect output/web-1.0.0.qcow2 --for ebs --json", NULL },
	{ "convert", cmd_convert, "convert a disk to raw, qcow2, vmdk, vhd, vhdx or ova", NULL,
	  "amiforge convert web.qcow2 --format vmdk -o web.vmdk --verify", NULL },
	{ "publish", cmd_publish, "upload a disk and register it as an AMI", NULL,
	  "amiforge publish web.vmdk --bucket my-images --region eu-west-1\n"
	  "amiforge publish builds/web-1.0.0-20260101120000 --via ebs --tpm --boot-mode uefi\n"
	  "amiforge publish --ami ami-0123456789abcdef0 --copy-to us-east-1 --share 123456789012",
	  NULL },
	{ "cache", cmd_cache, "list, prune or fill the base image cache", cache_subs,
	  "amiforge cache fetch web.yaml\n"
	  "amiforge cache list --json\n"
	  "amiforge cache prune --older-than 30 --dry-run", NULL },
	{ "clean", cmd_clean, "clean up what a crashed build left, from its journal", NULL,
	  "amiforge clean --dry-run\n"
	  "amiforge clean builds/web-1.0.0-20260101120000", NULL },
	{ "sbom", cmd_sbom, "list what an image contains (CycloneDX), read offline", NULL,
	  "amiforge sbom output/web-1.0.0.qcow2 -o web.cdx.json", NULL },
	{ "diff", cmd_diff, "packages added, removed, changed between two images", NULL,
	  "amiforge diff builds/web-1.0.0-A builds/web-1.1.0-B --paths /etc", NULL },
	{ "report", cmd_report, "write a build's report page (HTML) again, or as JSON", NULL,
	  "amiforge report builds/web-1.0.0-20260101120000 -o report.html", NULL },
	{ "pipeline", cmd_pipeline, "image pipelines: run on schedule when inputs change, notify",
	  pipeline_subs, "amiforge pipeline run nightly.yaml --now\n"
	  "amiforge pipeline status nightly.yaml --json\n"
	  "amiforge pipeline install nightly.yaml --scheduler cron --print",
	  "Exit status: 0 done (built, skipped or not due); 1 a build, distribution\n"
	  "step or notification failed; 2 a usage error or an invalid pipeline file.\n" },
	{ "lifecycle", cmd_lifecycle, "deprecate, disable or delete a pipeline's old AMIs",
	  lifecycle_subs, "amiforge lifecycle plan nightly.yaml --json", NULL },
	{ "aws", cmd_aws, "AWS helpers (sigv4 debugging, whoami)", aws_subs,
	  "amiforge aws whoami --profile build --region eu-west-1", NULL },
	{ "help", cmd_help, "describe amiforge or one of its commands", NULL,
	  "amiforge help publish\n"
	  "amiforge help component run", NULL },
	{ "version", cmd_version, "print amiforge's version", NULL, NULL, NULL },
};

/* What every --help ends with: the command's examples and exit statuses. */
static void help_footer(const struct command *cmd)
{
	const char *p, *nl;

	if (cmd->examples) {
		printf("\nExamples:\n");
		for (p = cmd->examples; *p; p = *nl ? nl + 1 : nl) {
			nl = strchr(p, '\n');
			if (!nl)
				nl = p + strlen(p);
			printf("  %.*s\n", (int)(nl - p), p);
		}
	}
	printf("\n%s", cmd->exits ? cmd->exits : EXIT_STATUS_HELP);
}

/* Run a command; after its help (exit 0), the footer from the table. */
static int run_command(const struct command *cmd, int argc, char **argv)
{
	bool help = cmd->fn != cmd_help && cmd_wants_help(argc, argv);
	int rc = cmd->fn(argc, argv);

	if (help && rc == EXIT_OK)
		help_footer(cmd);
	return rc;
}

/* The command being run (for messages) and whether its option error was
 * said already (then cmd_usage adds nothing: one line per error). */
static const char *current_command = "amiforge";
static bool option_error_said;

int cmd_usage(const char *usage)
{
	if (!option_error_said)
		fprintf(stderr, "usage: amiforge %s\n", usage);
	return EXIT_USAGE;
}

/* getopt_long's '?' as one line: the option, why, the likeliest meant. */
static void option_error(int argc, char **argv, const char *shortopts,
			 const struct option *longopts)
{
	const char *words[128], *hint = NULL, *arg = optind > 0 && optind <= argc
		? argv[optind - 1] : "";
	char name[64];
	size_t n = 0, len;

	if (optopt && !str_startswith(arg, "--")) {     /* a short option */
		if (strchr(shortopts, optopt))
			log_error("%s: option '-%c' needs a value (see 'amiforge help %s')",
				  current_command, optopt, current_command);
		else
			log_error("%s: unknown option '-%c' (see 'amiforge help %s')",
				  current_command, optopt, current_command);
		goto said;
	}
	if (str_startswith(arg, "--"))
		arg += 2;
	len = strcspn(arg, "=");
	snprintf(name, sizeof(name), "%.*s", (int)(len < sizeof(name) - 1 ? len : sizeof(name) - 1),
		 arg);
	if (optopt) {
		if (arg[len] == '=')
			log_error("%s: option '--%s' takes no value (see 'amiforge help %s')",
				  current_command, name, current_command);
		else
			log_error("%s: option '--%s' needs a value (see 'amiforge help %s')",
				  current_command, name, current_command);
		goto said;
	}
	for (; longopts[n].name && n < ARRAY_SIZE(words); n++)
		words[n] = longopts[n].name;
	hint = closest_word(name, words, n);
	if (hint)
		log_error("%s: unknown option '--%s'; did you mean '--%s'? (see 'amiforge help %s')",
			  current_command, name, hint, current_command);
	else
		log_error("%s: unknown option '--%s' (see 'amiforge help %s')", current_command,
			  name, current_command);
said:
	option_error_said = true;
}

static const struct command *find_command(const char *name);

bool cmd_wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

int cmd_unknown_sub(const char *sub)
{
	const struct command *cmd = find_command(current_command);
	struct buf list = BUF_INIT(1024);
	const char *hint = NULL;
	size_t n = 0;

	for (; cmd && cmd->subs && cmd->subs[n]; n++)
		buf_printf(&list, "%s%s", n ? ", " : "", cmd->subs[n]);
	if (sub[0] == '-')
		log_error("%s: unknown option '%s' (a subcommand comes first: %s; see "
			  "'amiforge help %s')", current_command, sub, list.data ? list.data : "",
			  current_command);
	else if (n && (hint = closest_word(sub, cmd->subs, n)))
		log_error("unknown subcommand '%s %s'; did you mean '%s'? (see 'amiforge help %s')",
			  current_command, sub, hint, current_command);
	else
		log_error("unknown subcommand '%s %s' (%s; see 'amiforge help %s')", current_command,
			  sub, list.data ? list.data : "", current_command);
	buf_release(&list);
	return EXIT_USAGE;
}

int cmd_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	int c;

	opterr = 0;
	c = getopt_long(argc, argv, shortopts, longopts, NULL);
	if (c == '?')
		option_error(argc, argv, shortopts, longopts);
	return c;
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
		   "'man amiforge' describes them all.\n\n" EXIT_STATUS_HELP);
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
		printf("usage: amiforge help [COMMAND [SUBCOMMAND]]\n"
		       "       amiforge help --commands [COMMAND]\n\n"
		       "Without COMMAND: the commands. With one: what it does and its options,\n"
		       "the same text as 'amiforge COMMAND --help'. --commands: the command names\n"
		       "(or COMMAND's subcommands), one a line, for shell completion.\n");
		help_footer(find_command("help"));
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--commands") == 0) {
		const char *const *w;

		if (argc > 3)
			return cmd_usage("help --commands [COMMAND]");
		if (argc == 2) {
			for (i = 0; i < (int)ARRAY_SIZE(commands); i++)
				printf("%s\n", commands[i].name);
			return EXIT_OK;
		}
		cmd = find_command(argv[2]);
		if (!cmd)
			return unknown_command(argv[2]);
		for (w = cmd->subs; w && *w; w++)
			printf("%s\n", *w);
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
	current_command = cmd->name;
	return run_command(cmd, n, av);
}

/* amiforge's version; then the agent it carries and the libraries it runs
 * with (their versions at run time, where the library says). */
static void print_versions(void)
{
	unsigned long lv = 0;
	guestfs_h *g = guestfs_create_flags(GUESTFS_CREATE_NO_ENVIRONMENT |
					    GUESTFS_CREATE_NO_CLOSE_ON_EXIT);
	struct guestfs_version *gv = g ? guestfs_version(g) : NULL;

	printf("amiforge %s\n", AMIFORGE_VERSION);
	for (size_t i = 0; arch_table[i]; i++) {
		size_t alen = 0;
		const void *agent = arch_agent(arch_table[i], &alen);
		char *digest = agent ? inject_agent_digest(arch_table[i], agent, alen) : NULL;

		if (agent)
			printf("agent %s: built in, %zu bytes, protocol %d..%d, digest %.16s\n",
			       arch_table[i]->name, alen, PROTO_VERSION_MIN, PROTO_VERSION_MAX,
			       digest ? digest : "?");
		else
			printf("agent %s: not built in (make AGENT_ARCHES)\n", arch_table[i]->name);
		free(digest);
		err_clear();
	}
	virGetVersion(&lv, NULL, NULL);
	printf("libvirt %lu.%lu.%lu, ", lv / 1000000, lv / 1000 % 1000, lv % 1000);
	if (gv)
		printf("libguestfs %" PRId64 ".%" PRId64 ".%" PRId64 ", ", gv->major, gv->minor,
		       gv->release);
	printf("libcurl %s, %s,\nlibyaml %s, jansson %s, libxml2 %s, %s, libdeflate %s\n",
	       curl_version_info(CURLVERSION_NOW)->version, OpenSSL_version(OPENSSL_VERSION),
	       yaml_get_version_string(),
	       JANSSON_VERSION, LIBXML_DOTTED_VERSION, archive_version_string(),
	       LIBDEFLATE_VERSION_STRING);
	guestfs_free_version(gv);
	if (g)
		guestfs_close(g);
}

static int cmd_version(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = cmd_getopt(argc, argv, "h", opts)) != -1) {
		if (c != 'h')
			return EXIT_USAGE;
		printf("usage: amiforge version\n\nPrint amiforge's version (the first line, the\n"
		       "same as 'amiforge --version'), the agent it carries (its size, protocol\n"
		       "versions and digest: the agent layer's key) and the versions of the\n"
		       "libraries it runs with.\n");
		return EXIT_OK;
	}
	if (optind != argc)
		return cmd_usage("version");
	print_versions();
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
	while ((c = cmd_getopt(argc, argv, "+vqhV", opts)) != -1) {
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
	current_command = cmd->name;
	return run_command(cmd, argc, argv);
}
