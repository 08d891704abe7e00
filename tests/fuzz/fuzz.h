/* fuzz.h: what the libFuzzer targets share (static helpers, one include per
 * target). Parsers that only take a path get the input written to a file in
 * a private temporary folder, removed at exit. */
#ifndef AMIFORGE_FUZZ_H
#define AMIFORGE_FUZZ_H

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_tmp[64];

static inline int fuzz_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	remove(p);
	return 0;
}

static inline void fuzz_cleanup(void)
{
	if (fuzz_tmp[0])
		nftw(fuzz_tmp, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The private folder (made on first use). */
static inline const char *fuzz_dir(void)
{
	if (!fuzz_tmp[0]) {
		const char *t = getenv("TMPDIR");

		snprintf(fuzz_tmp, sizeof(fuzz_tmp), "%s/amiforge-fuzz.XXXXXX", t && *t && strlen(t) < 32 ? t : "/tmp");
		if (!mkdtemp(fuzz_tmp))
			abort();
		atexit(fuzz_cleanup);
		signal(SIGPIPE, SIG_IGN);
	}
	return fuzz_tmp;
}

/* Write data to <dir>/<name> (replaced); the path is static until the next call. */
static inline const char *fuzz_file(const char *name, const void *data, size_t size)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fuzz_dir(), name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write_all(fd, data, size) < 0))
		abort();
	close(fd);
	return path;
}

/* Split the input at the first "\n---8<---\n": *a is the part before, *b
 * the rest (empty when there is no marker). */
static inline void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *alen,
		       const uint8_t **b, size_t *blen)
{
	static const char mark[] = "\n---8<---\n";
	const uint8_t *m = memmem(data, size, mark, sizeof(mark) - 1);

	*a = data;
	if (!m) {
		*alen = size;
		*b = data + size;
		*blen = 0;
		return;
	}
	*alen = (size_t)(m - data);
	*b = m + sizeof(mark) - 1;
	*blen = size - *alen - (sizeof(mark) - 1);
}

/* A NUL-terminated copy (caller frees). */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
