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
AMIFORGE_CMD(init);
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

/* A guest command's output (an agent request's on_output) to stdout or
 * stderr, control characters escaped on a terminal. */
void cmd_relay_output(int stream, const char *data, size_t len, void *opaque);

struct json_t;
/* Print a JSON value to stdout (jansson's dump flags), a newline after it.
 * EXIT_OK, or EXIT_FAIL with the write error logged. */
int cmd_print_json(const struct json_t *j, size_t flags);

#endif
