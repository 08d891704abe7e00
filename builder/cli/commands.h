/* commands.h: the subcommands of amiforge. Each lives in its own file as
 * int cmd_<name>(int argc, char **argv), argv[0] being the command name,
 * and returns the process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef AMIFORGE_COMMANDS_H
#define AMIFORGE_COMMANDS_H

#include "compat.h"

/* Exit statuses shared by every command. */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define AMIFORGE_CMD(name) int cmd_##name(int argc, char **argv)

AMIFORGE_CMD(build);
AMIFORGE_CMD(validate);
AMIFORGE_CMD(run);
AMIFORGE_CMD(attach);
AMIFORGE_CMD(component);
AMIFORGE_CMD(inspect);
AMIFORGE_CMD(convert);
AMIFORGE_CMD(publish);
AMIFORGE_CMD(cache);
AMIFORGE_CMD(clean);
AMIFORGE_CMD(aws);
AMIFORGE_CMD(report);
AMIFORGE_CMD(sbom);
AMIFORGE_CMD(diff);
AMIFORGE_CMD(pipeline);
AMIFORGE_CMD(lifecycle);

/* Print "usage: amiforge <usage>" to stderr and return EXIT_USAGE. */
int cmd_usage(const char *usage);

#endif
