/* run-batch.h: `amiforge run IMAGE --batch FILE` — many operations against
 * one booted guest, for tests, benchmarks and debugging sessions.
 *
 * FILE ("-" for stdin) holds one JSON array per line (jansson), e.g.
 *	["exec", "sh", "-c", "exit 3"]
 *	["put", "/host/file", "/guest/file"]        (mode of the host file)
 *	["get", "/guest/file", "/host/file"]
 *	["reboot"]                                  (the executor's reboot)
 *	["reboot-by", "systemctl", "reboot"]        (a command reboots the guest:
 *	                                             wait until a new boot_id answers)
 *	["poweroff"]                                (the shutdown ladder; ends the batch)
 * Blank lines and lines starting with '#' are skipped. For each operation one
 * JSON object is printed on stdout, e.g.
 *	{"op": 1, "kind": "exec", "status": 3, "stdout": "", "stderr": "", "ms": 41}
 *	{"op": 2, "kind": "put", "bytes": 67108864, "ms": 1234}
 *	{"op": 3, "kind": "poweroff", "how": "agent", "ms": 5230}
 * and first {"event": "ready", "boot_ms": ..., "console_log": "..."}. The
 * batch stops at the first failed operation (an "error" member); a non-zero
 * exit status of a command is a result, not a failure. */
#ifndef AMIFORGE_RUN_BATCH_H
#define AMIFORGE_RUN_BATCH_H

#include "compat.h"

struct guest;

/* Longest batch line; arguments beyond it are a mistake, not data. */
#define BATCH_LINE_MAX (64u * 1024)
/* stdout/stderr kept per exec result. */
#define BATCH_CAPTURE_MAX (1u * 1024 * 1024)

/* Run the batch in path against g. 0 when every operation ran (the guest
 * may have been powered off), -1 with an error recorded. *powered_off tells
 * whether a poweroff operation ended the guest. */
int run_batch(struct guest *g, const char *path, int64_t op_timeout_ms, bool *powered_off);

#endif
