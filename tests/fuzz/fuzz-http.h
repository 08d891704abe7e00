/* fuzz-http.h: a local HTTP server for the AWS fuzz targets. It answers each
 * request with the next part of the fuzz input: parts are separated by
 * "\n---8<---\n"; a part's first byte picks the status, the rest is the body.
 * Past the last part every request gets 404 with no body. One connection per
 * request (Connection: close); runs in a thread for the whole process. */
#ifndef AMIFORGE_FUZZ_HTTP_H
#define AMIFORGE_FUZZ_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "drivers/aws/aws.h"

static pthread_mutex_t http_lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *http_data;
static size_t http_left;
static int http_port;
static int http_served;

static const int http_statuses[] = { 200, 200, 200, 200, 400, 403, 404, 409, 401, 204, 301, 412 };

/* Read the request head and its Content-Length body (bounded, 5 s). */
static inline void http_drain(int fd)
{
	char b[65536];
	size_t n = 0;
	long body = -1;
	char *end;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 5000) <= 0)
			return;
		r = read(fd, b + n, sizeof(b) - 1 - n);
		if (r <= 0)
			return;
		n += (size_t)r;
		b[n] = '\0';
		end = strstr(b, "\r\n\r\n");
		if (end && body < 0) {
			char *cl = strcasestr(b, "\r\ncontent-length:");
			body = cl && cl < end ? strtol(cl + 17, NULL, 10) : 0;
			if (body < 0)
				body = 0;
		}
		if (end && (size_t)(end + 4 - b) + (size_t)body <= n)
			return;
		if (n == sizeof(b) - 1)   /* a large body: keep only the head */
			n = end ? (size_t)(end + 4 - b) : 0, body = body > 65536 ? body - 32768 : 0;
	}
}

static inline void *http_serve(void *arg)
{
	int ls = *(int *)arg;

	for (;;) {
		int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		const uint8_t *part = NULL;
		size_t len = 0;
		int status = 404;
		char head[256];

		if (fd < 0)
			continue;
		http_drain(fd);
		pthread_mutex_lock(&http_lock);
		if (http_data) {
			const uint8_t *a, *b;
			size_t alen, blen;

			fuzz_split(http_data, http_left, &a, &alen, &b, &blen);
			if (alen > 0) {
				status = http_statuses[a[0] % ARRAY_SIZE(http_statuses)];
				part = a + 1;
				len = alen - 1;
			}
			if (blen == 0) {
				http_data = NULL;   /* that was the last part */
			} else {
				http_data = b;
				http_left = blen;
			}
			http_served++;
		}
		snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n"
			 "ETag: \"0123456789abcdef\"\r\nx-amz-request-id: R1\r\n\r\n", status, len);
		if (write_all(fd, head, strlen(head)) == 0 && len)
			write_all(fd, part, len);
		pthread_mutex_unlock(&http_lock);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	return NULL;
}

/* Start the server (once); its URL is http://127.0.0.1:<port>. */
static inline void http_start(void)
{
	static int ls = -1;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	pthread_t t;

	if (ls >= 0)
		return;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 16) < 0 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) < 0)
		abort();
	http_port = ntohs(sa.sin_port);
	if (pthread_create(&t, NULL, http_serve, &ls) != 0)
		abort();
	pthread_detach(t);
}

/* The answers for the next requests. */
static inline void http_script(const uint8_t *data, size_t size)
{
	pthread_mutex_lock(&http_lock);
	http_data = size ? data : NULL;
	http_left = size;
	http_served = 0;
	pthread_mutex_unlock(&http_lock);
}

/* A client of the local server, with static keys, one attempt per call. */
static inline struct aws_client *http_client(void)
{
	char url[64];
	struct aws_client_opts o = { .region = "eu-west-1", .max_attempts = 1,
				     .request_timeout_ms = 10000, .operation_timeout_ms = 15000 };

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", http_port);
	setenv("AWS_ENDPOINT_URL", url, 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	setenv("AWS_CONFIG_FILE", "/dev/null", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AMIFORGE_AWS_POLL_MS", "1", 1);
	return aws_client_new(&o);
}

#endif
