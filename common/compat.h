/* compat.h: the system headers every file uses, then banned.h.
 *
 * Project headers include this; .c files include library headers (libvirt,
 * curl, yaml, ...) before any project header so that banned.h comes last. */
#ifndef AMIFORGE_COMPAT_H
#define AMIFORGE_COMPAT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define UNUSED __attribute__((unused))
#else
#define PRINTF_LIKE(f, a)
#define UNUSED
#endif

#include "banned.h"

#endif
