/* log.h: leveled logging to stderr and optionally a file, with redaction.
 *
 * Every line passes through the redactor before it is written anywhere:
 * strings registered with log_add_secret() are replaced by "[REDACTED]".
 * Code that writes user-visible text elsewhere (manifests, TOE logs) runs
 * it through log_redact() too. */
#ifndef AMIFORGE_LOG_H
#define AMIFORGE_LOG_H

#include "compat.h"
#include "buf.h"

enum log_level {
	LOG_QUIET = 0,  /* errors only */
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,   /* default */
	LOG_DEBUG = 3,  /* --verbose */
};

/* Shortest secret that is redacted; shorter strings would mangle logs. */
#define LOG_SECRET_MIN 4

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Also append every line (all levels, timestamped) to path. 0 or -1. */
int log_open_file(const char *path);
void log_close_file(void);

/* Register a secret (copied). Strings shorter than LOG_SECRET_MIN are
 * ignored. There is no limit on how many. Returns 0. */
int log_add_secret(const char *secret);
void log_clear_secrets(void);

/* Replace every registered secret in b in place, and credentials known by
 * their shape: a URL's userinfo and secret query parameters (url_redact),
 * X-Amz-Signature=/X-Amz-Security-Token=/X-Amz-Credential=/Signature=/
 * token=... values anywhere, and the rest of the line after an
 * Authorization: or X-Amz-Security-Token: header. Every log line, journal
 * line and recorded source goes through it. */
void log_redact(struct buf *b);
/* Return a redacted copy of s (caller frees). */
char *log_redact_str(const char *s);
/* The URL as it may be printed or stored: userinfo (user:password@, any
 * userinfo for http/https/ftp) and secret query parameters removed. The one
 * function for every URL amiforge prints or records. Caller frees; NULL
 * for NULL. */
char *url_redact(const char *url);

void log_msg(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Print "amiforge: <err_msg()>" as an error line. */
void log_err_msg(void);

#endif
