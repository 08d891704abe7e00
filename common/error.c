#include "error.h"

static _Thread_local char err_buf[ERR_MAX];
static _Thread_local bool err_has;

static void err_flatten(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

static void err_vset(const char *fmt, va_list ap)
{
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	err_flatten(err_buf);
	err_has = true;
}

int err_set(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(fmt, ap);
	va_end(ap);
	return -1;
}

int err_errno(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	err_vset(fmt, ap);
	va_end(ap);
	n = strlen(err_buf);
	if (n < sizeof(err_buf))
		snprintf(err_buf + n, sizeof(err_buf) - n, ": %s", strerror(saved));
	errno = saved;
	return -1;
}

int err_prefix(const char *fmt, ...)
{
	char old[ERR_MAX];
	va_list ap;
	size_t n;

	memcpy(old, err_has ? err_buf : "unknown error",
	       err_has ? sizeof(old) : sizeof("unknown error"));
	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	n = strlen(err_buf);
	if (n < sizeof(err_buf))
		snprintf(err_buf + n, sizeof(err_buf) - n, ": %s", old);
	err_flatten(err_buf);
	err_has = true;
	return -1;
}

const char *err_msg(void)
{
	return err_has ? err_buf : "unknown error";
}

void err_clear(void)
{
	err_has = false;
	err_buf[0] = '\0';
}

bool err_isset(void)
{
	return err_has;
}
