/* client.h: internals of struct aws_client shared by config.c, creds.c,
 * http.c and query.c. Not for use outside drivers/aws/. */
#ifndef AMIFORGE_AWS_CLIENT_H
#define AMIFORGE_AWS_CLIENT_H

#include <pthread.h>

#include "aws.h"
#include "util.h"

/* ~/.aws/config and ~/.aws/credentials: INI files, a few KiB in practice. */
#define AWS_INI_MAX (1024 * 1024)

struct aws_ini_kv {
	char *section;   /* "default", "profile x" (config) or "x" (credentials) */
	char *key;
	char *value;
};

struct aws_ini {
	struct aws_ini_kv *kv;
	size_t n, cap;
};

/* Load an INI file as the AWS CLI reads it (sub-sections, i.e. indented
 * "key = value" lines under "s3 =", are skipped). A missing file is empty.
 * 0 or -1 ("path:line: ..."). */
int aws_ini_load(struct aws_ini *ini, const char *path);
void aws_ini_release(struct aws_ini *ini);
const char *aws_ini_get(const struct aws_ini *ini, const char *section, const char *key);
bool aws_ini_has_section(const struct aws_ini *ini, const char *section);

/* The shared configuration: both files and the selected profile. */
struct aws_config {
	struct aws_ini config, credentials;
	char *profile;          /* selected profile name */
	bool profile_explicit;  /* --profile given (env keys then ignored) */
	bool profile_from_env;  /* AWS_PROFILE given: it must exist */
};

int aws_config_load(struct aws_config *cfg, const char *profile);
void aws_config_release(struct aws_config *cfg);
/* A setting of profile name: credentials file first for keys, then config. */
const char *aws_profile_get(const struct aws_config *cfg, const char *profile, const char *key);
bool aws_profile_exists(const struct aws_config *cfg, const char *profile);

/* Resolve credentials through the CLI's chain (see creds.c). 0 or -1. */
int aws_creds_resolve(struct aws_client *cl, struct aws_creds *out);

/* Split a credential_process command line into argv the way the AWS CLI
 * does (POSIX shlex: quotes and backslashes, no shell). 0 or -1. */
int aws_split_command(const char *s, struct strv *out);

/* Parse "2024-01-02T03:04:05Z" (fraction and +00:00 allowed). 0 or -1. */
int aws_parse_time(const char *s, int64_t *out);

/* Plain unsigned HTTP for IMDS: 0 with status and body, -1 on transport error. */
int aws_http_plain(const char *method, const char *url, const char *const *headers,
		   int64_t timeout_ms, long *status, struct buf *body);

struct aws_client {
	struct aws_client_opts opts;
	struct aws_config cfg;
	char *region;
	char *endpoint[AWS_SERVICE_COUNT];
	bool custom[AWS_SERVICE_COUNT];
	struct aws_creds creds;
	bool fixed_creds;
	bool cleanup;                   /* aws_client_set_cleanup() */               /* given by the caller, never refreshed */
	int max_attempts;
	int64_t req_timeout_ms, op_timeout_ms;
	int retry_tokens;               /* standard mode retry quota */
	pthread_mutex_t lock;           /* creds refresh, retry quota */
	void *share;                    /* CURLSH: connection and DNS cache */
	pthread_mutex_t share_lock[8];
};



/* Sign m with the client's current credentials (p->creds is set for the call). */
int aws_client_sign(struct aws_client *cl, struct sigv4_params *p, struct sigv4_msg *m);
/* curl_global_init, once per process. */
void aws_curl_init(void);
/* Free the calling thread's kept curl handle (http.c; other threads'
 * go when they end). */
void aws_http_thread_release(void);
#endif
