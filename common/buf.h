/* buf.h: a growable byte buffer with a mandatory ceiling (after curl's
 * dynbuf). The data is always NUL-terminated, so text can be used as a C
 * string; the NUL is not counted in len and not against max.
 *
 * Appending past max fails with -1, records an error and frees the buffer
 * (the caller must not keep half a message around). */
#ifndef AMIFORGE_BUF_H
#define AMIFORGE_BUF_H

#include "compat.h"

struct buf {
	char *data;   /* NULL until the first append; owned by the buf */
	size_t len;
	size_t cap;
	size_t max;   /* largest len allowed */
};

#define BUF_INIT(m) { NULL, 0, 0, (m) }

/* Start an empty buffer that may hold at most max bytes. */
void buf_init(struct buf *b, size_t max);

/* Free the contents; the buffer is empty and reusable with the same max. */
void buf_release(struct buf *b);

/* Empty the buffer but keep its memory. */
void buf_reset(struct buf *b);

/* Append n bytes / a string / formatted text. 0 or -1 (over max: buffer freed). */
int buf_add(struct buf *b, const void *p, size_t n);
int buf_adds(struct buf *b, const char *s);
int buf_addc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);

/* Make sure n more bytes fit without another allocation. 0 or -1 (over max). */
int buf_reserve(struct buf *b, size_t n);

/* Take the data out: the caller owns it (never NULL: "" for an empty buf);
 * the buffer is left empty. */
char *buf_detach(struct buf *b, size_t *len);

/* Read all of fd into b (up to b->max). 0 or -1. */
int buf_read_fd(struct buf *b, int fd);

/* Read a whole file into b (up to b->max). 0 or -1 with "read 'path': ..." */
int buf_read_file(struct buf *b, const char *path);

/* The same for a file that may not be what it claims (in a build directory
 * amiforge did not write, a path given for a document): a regular file, not
 * a symlink, opened without blocking (a FIFO does not hang). 0 or -1 with
 * the error recorded; errno is ENOENT when the file does not exist. */
int buf_read_regular(struct buf *b, const char *path);

#endif
