/* error.h: the error of the current thread, recorded once where a failure
 * happens (as libvirt's virReportError does) and printed once at the top.
 *
 * Convention: functions return 0 / -1 (or a pointer / NULL) and, before
 * returning -1, call err_set() or err_errno() exactly once. Callers that
 * merely pass -1 up do not touch the error. */
#ifndef AMIFORGE_ERROR_H
#define AMIFORGE_ERROR_H

#include "compat.h"

/* Longest recorded message, including the NUL; longer ones are truncated. */
#define ERR_MAX 1024

/* Record a one-line message (newlines are replaced by spaces). Returns -1 so
 * that "return err_set(...);" reads naturally. */
int err_set(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Same, with ": strerror(errno)" appended; errno is preserved. */
int err_errno(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Prefix the recorded message with context: "ctx: old message". */
int err_prefix(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* The recorded message, or "unknown error" if none. Never NULL. */
const char *err_msg(void);

/* Forget the recorded message. */
void err_clear(void);

/* True when a message is recorded. */
bool err_isset(void);

#endif
