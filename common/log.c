#include <ctype.h>
#include <pthread.h>
#include <strings.h>

#include "log.h"
#include "error.h"
#include "util.h"

/* Longest log line kept; the rest is cut (guests can print a lot). */
#define LOG_LINE_MAX (64 * 1024)

static enum log_level log_level = LOG_INFO;
static FILE *log_file;
static char **secrets;          /* grows: no limit on registered secrets */
static size_t nsecrets, secrets_cap;
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
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "a");

	if (!f) {
		if (fd >= 0)
			close(fd);
		return err_errno("open log '%s'", path);
	}
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
	if (nsecrets == secrets_cap) {
		secrets_cap = secrets_cap ? secrets_cap * 2 : 16;
		secrets = xrealloc(secrets, secrets_cap * sizeof(*secrets));
	}
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

/* ---- credentials by shape ------------------------------------------------ */

/* Query parameters (and key=value pairs anywhere) whose value is a
 * credential: presigned AWS (v4 and v2), GCS, Azure SAS, generic tokens. */
static const char *const secret_params[] = {
	"X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential", "Signature",
	"AWSAccessKeyId", "Credential", "X-Goog-Signature", "X-Goog-Credential", "sig",
	"token", "access_token", "password",
};
/* Headers whose value is a credential: the rest of the line goes. */
static const char *const secret_headers[] = { "authorization:", "x-amz-security-token:" };

static bool is_secret_param(const char *name, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(secret_params); i++)
		if (strlen(secret_params[i]) == n && strncasecmp(name, secret_params[i], n) == 0)
			return true;
	return false;
}

static bool scheme_char(char c)
{
	return isalnum((unsigned char)c) || c == '+' || c == '-' || c == '.';
}

static bool url_end(char c)
{
	return !c || isspace((unsigned char)c) || strchr("'\"<>`()", c);
}

/* Append url[0..n) to out without its userinfo (when it holds a password,
 * or the scheme is http(s)/ftp(s)) and without secret query parameters. */
static void url_redact_to(struct buf *out, const char *url, size_t n)
{
	const char *end = url + n, *sep = memmem(url, n, "://", 3), *auth, *q, *p, *at, *stop;
	bool web, first = true;

	if (!sep) {
		buf_add(out, url, n);
		return;
	}
	web = (sep - url == 4 && strncasecmp(url, "http", 4) == 0) ||
	      (sep - url == 5 && strncasecmp(url, "https", 5) == 0) ||
	      (sep - url == 3 && strncasecmp(url, "ftp", 3) == 0) ||
	      (sep - url == 4 && strncasecmp(url, "ftps", 4) == 0);
	auth = sep + 3;
	for (stop = auth; stop < end && !strchr("/?#", *stop); stop++)
		;
	at = NULL;
	for (p = auth; p < stop; p++)
		if (*p == '@')
			at = p;
	buf_add(out, url, (size_t)(auth - url));
	if (at && (web || memchr(auth, ':', (size_t)(at - auth))))
		auth = at + 1;
	for (q = auth; q < end && *q != '?' && *q != '#'; q++)
		;
	buf_add(out, auth, (size_t)(q - auth));
	if (q == end || *q == '#') {
		buf_add(out, q, (size_t)(end - q));
		return;
	}
	for (p = q + 1; p <= end;) {
		const char *amp = p, *eq;

		while (amp < end && *amp != '&' && *amp != '#')
			amp++;
		eq = memchr(p, '=', (size_t)(amp - p));
		if (amp > p && !is_secret_param(p, (size_t)((eq ? eq : amp) - p))) {
			buf_addc(out, first ? '?' : '&');
			buf_add(out, p, (size_t)(amp - p));
			first = false;
		}
		if (amp >= end || *amp == '#') {
			buf_add(out, amp, (size_t)(end - amp));
			break;
		}
		p = amp + 1;
	}
}

char *url_redact(const char *url)
{
	struct buf b;

	if (!url)
		return NULL;
	buf_init(&b, SIZE_MAX / 2);
	url_redact_to(&b, url, strlen(url));
	buf_adds(&b, "");
	return buf_detach(&b, NULL);
}

/* Credentials recognised by their shape: URLs (url_redact_to), NAME=value
 * for secret_params, and the rest of a line after a secret header. */
static void scrub_shapes(struct buf *b)
{
	struct buf out;
	const char *s, *e;
	bool hit = false;

	if (!b->data)
		return;
	s = b->data;
	e = b->data + b->len;
	/* Cheap test first: most lines have none of these. */
	for (const char *p = s; p < e && !hit; p++) {
		if (*p == ':' || *p == '=')
			hit = true;
	}
	if (!hit)
		return;
	buf_init(&out, b->max > b->len + 4096 ? b->max : b->len + 4096);
	while (s < e) {
		const char *t = s, *sep;
		size_t i, hl;
		bool done = false;

		/* A secret header: keep the name, drop the line. */
		for (i = 0; i < ARRAY_SIZE(secret_headers) && !done; i++) {
			hl = strlen(secret_headers[i]);
			if ((size_t)(e - s) >= hl && strncasecmp(s, secret_headers[i], hl) == 0 &&
			    (s == b->data || !isalnum((unsigned char)s[-1]) ||
			     s[-1] == '"')) {
				const char *nl = memchr(s, '\n', (size_t)(e - s));

				buf_add(&out, s, hl);
				buf_adds(&out, " ");
				buf_add(&out, redacted, sizeof(redacted) - 1);
				s = nl ? nl : e;
				done = true;
			}
		}
		if (done)
			continue;
		if (url_end(*s) || *s == '\n') {
			buf_addc(&out, *s++);
			continue;
		}
		/* A token: up to a blank, quote or bracket. */
		while (t < e && !url_end(*t))
			t++;
		sep = memmem(s, (size_t)(t - s), "://", 3);
		if (sep) {
			const char *u = sep;

			while (u > s && scheme_char(u[-1]))
				u--;
			buf_add(&out, s, (size_t)(u - s));
			url_redact_to(&out, u, (size_t)(t - u));
		} else {
			/* NAME=value pairs: a secret's value goes. */
			const char *p = s;

			while (p < t) {
				const char *eq = memchr(p, '=', (size_t)(t - p)), *n, *v;

				if (!eq) {
					buf_add(&out, p, (size_t)(t - p));
					break;
				}
				for (n = eq; n > p && (isalnum((unsigned char)n[-1]) || n[-1] == '-' ||
						      n[-1] == '_'); n--)
					;
				buf_add(&out, p, (size_t)(eq + 1 - p));
				for (v = eq + 1; v < t && *v != '&' && *v != ',' && *v != ';'; v++)
					;
				if (is_secret_param(n, (size_t)(eq - n)) && v > eq + 1)
					buf_add(&out, redacted, sizeof(redacted) - 1);
				else
					buf_add(&out, eq + 1, (size_t)(v - eq - 1));
				p = v;
			}
		}
		s = t;
	}
	free(b->data);
	*b = out;
	if (!b->data)
		buf_adds(b, "");
}

/* Caller holds log_lock. */
static void redact_locked(struct buf *b)
{
	scrub_shapes(b);
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
