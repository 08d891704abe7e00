#include <pthread.h>

#include "log.h"
#include "error.h"
#include "util.h"

/* Longest log line kept; the rest is cut (guests can print a lot). */
#define LOG_LINE_MAX (64 * 1024)

static enum log_level log_level = LOG_INFO;
static FILE *log_file;
static char *secrets[LOG_SECRETS_MAX];
static size_t nsecrets;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

int log_open_file(const char *path)
{
	FILE *f = fopen(path, "ae");

	if (!f)
		return err_errno("open log '%s'", path);
	pthread_mutex_lock(&log_lock);
	if (log_file)
		fclose(log_file);
	log_file = f;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void log_close_file(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_file)
		fclose(log_file);
	log_file = NULL;
	pthread_mutex_unlock(&log_lock);
}

int log_add_secret(const char *secret)
{
	size_t i;
	int r = 0;

	if (!secret || strlen(secret) < LOG_SECRET_MIN)
		return 0;
	pthread_mutex_lock(&log_lock);
	for (i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], secret) == 0)
			goto out;
	if (nsecrets == LOG_SECRETS_MAX)
		r = err_set("too many secrets registered (limit %d)", LOG_SECRETS_MAX);
	else
		secrets[nsecrets++] = xstrdup(secret);
out:
	pthread_mutex_unlock(&log_lock);
	return r;
}

void log_clear_secrets(void)
{
	size_t i;

	pthread_mutex_lock(&log_lock);
	for (i = 0; i < nsecrets; i++) {
		explicit_bzero(secrets[i], strlen(secrets[i]));
		free(secrets[i]);
	}
	nsecrets = 0;
	pthread_mutex_unlock(&log_lock);
}

static const char redacted[] = "[REDACTED]";

/* Caller holds log_lock. */
static void redact_locked(struct buf *b)
{
	size_t i;

	for (i = 0; i < nsecrets && b->data; i++) {
		const char *s = secrets[i];
		size_t sl = strlen(s);
		char *hit;
		struct buf out;
		const char *p;

		if (!memmem(b->data, b->len, s, sl))
			continue;
		buf_init(&out, b->max > b->len + 4096 ? b->max : b->len + 4096);
		p = b->data;
		while ((hit = memmem(p, b->len - (size_t)(p - b->data), s, sl))) {
			buf_add(&out, p, (size_t)(hit - p));
			buf_add(&out, redacted, sizeof(redacted) - 1);
			p = hit + sl;
		}
		buf_add(&out, p, b->len - (size_t)(p - b->data));
		free(b->data);
		*b = out;
	}
}

void log_redact(struct buf *b)
{
	pthread_mutex_lock(&log_lock);
	redact_locked(b);
	pthread_mutex_unlock(&log_lock);
}

char *log_redact_str(const char *s)
{
	struct buf b;

	buf_init(&b, SIZE_MAX / 2);
	buf_adds(&b, s);
	log_redact(&b);
	return buf_detach(&b, NULL);
}

static const char *level_name[] = { "error", "warning", "info", "debug" };

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	struct buf b;
	va_list cp;

	if (level > log_level && !log_file)
		return;
	buf_init(&b, LOG_LINE_MAX);
	va_copy(cp, ap);
	if (buf_vprintf(&b, fmt, cp) < 0) {
		buf_init(&b, LOG_LINE_MAX);
		buf_adds(&b, "(log line too long)");
	}
	va_end(cp);
	pthread_mutex_lock(&log_lock);
	redact_locked(&b);
	if (level <= log_level) {
		/* Messages carry text from YAML, guests and HTTP answers: the
		 * terminal gets control characters escaped, the file the text. */
		char *safe = str_escape_ctl(b.data, b.len, true);

		if (level <= LOG_WARN)
			fprintf(stderr, "amiforge: %s: %s\n", level_name[level], safe);
		else
			fprintf(stderr, "%s\n", safe);
		free(safe);
	}
	if (log_file) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		fprintf(log_file, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s\n",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_name[level],
			b.data);
		fflush(log_file);
	}
	pthread_mutex_unlock(&log_lock);
	buf_release(&b);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_err_msg(void)
{
	log_error("%s", err_msg());
}
