/* test.h: a tiny unit test harness. Each check prints one line,
 * "PASS: name" or "FAIL: name (file:line: detail)"; tests/run-tests.sh counts
 * them. A test program exits non-zero when any check failed. */
#ifndef AMIFORGE_TEST_H
#define AMIFORGE_TEST_H

#include <signal.h>

#include "compat.h"

/* As amiforge's main() does: a write to a socket or pipe whose reader is
 * gone (QMP after QEMU exited, an agent channel) fails with EPIPE, which the
 * code handles, instead of killing the test with SIGPIPE. */
__attribute__((constructor)) static void test_ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

static int test_failures;
static int test_count;

#define CHECK(cond, ...) do { \
	test_count++; \
	if (cond) { \
		printf("PASS: "); printf(__VA_ARGS__); printf("\n"); \
	} else { \
		test_failures++; \
		printf("FAIL: "); printf(__VA_ARGS__); \
		printf(" (%s:%d: %s)\n", __FILE__, __LINE__, #cond); \
	} \
	fflush(stdout); \
} while (0)

#define CHECK_STR(got, want, ...) do { \
	const char *g_ = (got), *w_ = (want); \
	test_count++; \
	if (g_ && w_ && strcmp(g_, w_) == 0) { \
		printf("PASS: "); printf(__VA_ARGS__); printf("\n"); \
	} else { \
		test_failures++; \
		printf("FAIL: "); printf(__VA_ARGS__); \
		printf(" (%s:%d: got '%s', want '%s')\n", __FILE__, __LINE__, \
		       g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
	} \
	fflush(stdout); \
} while (0)

#define TEST_DONE() (test_failures ? 1 : 0)

#endif
