#include "buf.h"
#include "error.h"
#include "util.h"

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_release(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

int buf_reserve(struct buf *b, size_t n)
{
	size_t want, cap;

	if (n > b->max || b->len > b->max - n) {
		buf_release(b);
		return err_set("buffer limit of %zu bytes exceeded", b->max);
	}
	want = b->len + n + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	if (cap < want)
		cap = want;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_addc(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return err_set("format error");
	if (buf_reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *p = b->data ? b->data : xstrdup("");

	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

int buf_read_fd(struct buf *b, int fd)
{
	for (;;) {
		ssize_t n;

		if (buf_reserve(b, b->len < b->max ? 1 : 0) < 0)
			return -1;
		if (b->cap - b->len - 1 == 0) {
			char c;
			n = read(fd, &c, 1);
			if (n == 0)
				return 0;
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return err_errno("read");
			buf_release(b);
			return err_set("buffer limit of %zu bytes exceeded", b->max);
		}
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_errno("read");
		if (n == 0) {
			b->data[b->len] = '\0';	/* an empty input is "" too */
			return 0;
		}
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
}

int buf_read_file(struct buf *b, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return err_errno("open '%s'", path);
	r = buf_read_fd(b, fd);
	close(fd);
	if (r < 0)
		return err_prefix("read '%s'", path);
	return 0;
}

int buf_read_regular(struct buf *b, const char *path)
{
	int fd = open_regular(path);
	int r;

	if (fd < 0)
		return -1;
	r = buf_read_fd(b, fd);
	close(fd);
	if (r < 0) {
		err_prefix("read '%s'", path);
		errno = EIO;	/* not ENOENT, whatever came before */
		return -1;
	}
	return 0;
}
