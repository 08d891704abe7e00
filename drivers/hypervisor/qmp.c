/* qmp.c: a QMP client on a connected unix socket (qmp.h). */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp.h"
#include "error.h"
#include "util.h"

void qmp_init(struct qmp *q, int fd)
{
	q->fd = fd;
	buf_init(&q->in, QMP_LINE_MAX);
}

void qmp_release(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	buf_release(&q->in);
}

/* Read one QMP message (a JSON object on one line) within deadline. */
static json_t *qmp_read(struct qmp *q, int64_t deadline)
{
	for (;;) {
		char *nl = q->in.data ? memchr(q->in.data, '\n', q->in.len) : NULL;
		char tmp[4096];
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
		int64_t left;
		ssize_t n;

		if (nl) {
			size_t line = (size_t)(nl - q->in.data) + 1;
			json_error_t je;
			json_t *j = json_loadb(q->in.data, line - 1, 0, &je);

			memmove(q->in.data, q->in.data + line, q->in.len - line);
			q->in.len -= line;
			q->in.data[q->in.len] = '\0';
			if (!j || !json_is_object(j)) {
				json_decref(j);
				err_set("QMP: malformed message: %s", je.text);
				return NULL;
			}
			return j;
		}
		left = deadline - now_ms();
		if (left <= 0) {
			err_set("QMP: no reply within the deadline");
			return NULL;
		}
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			err_errno("QMP: poll");
			return NULL;
		}
		if (!pfd.revents)
			continue;
		n = read(q->fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err_set("QMP: connection closed");
			return NULL;
		}
		if (buf_add(&q->in, tmp, (size_t)n) < 0) {
			err_prefix("QMP");
			return NULL;
		}
	}
}

/* Wait for the answer to cmd: 0 when QEMU answered "return" (its value in
 * *reply when reply is not NULL: the caller decrefs it). Events are
 * skipped. */
int qmp_reply(struct qmp *q, const char *cmd, int64_t deadline, json_t **reply)
{
	int ret = -1;

	for (;;) {
		json_t *j = qmp_read(q, deadline);
		json_t *e;

		if (!j)
			return err_prefix("QMP '%s'", cmd);
		if (json_object_get(j, "return")) {
			if (reply)
				*reply = json_incref(json_object_get(j, "return"));
			ret = 0;
		} else if ((e = json_object_get(j, "error"))) {
			const char *desc = json_string_value(json_object_get(e, "desc"));
			err_set("QMP '%s': %s", cmd, desc ? desc : "error");
			ret = -1;
		} else {
			json_decref(j);   /* an event */
			continue;
		}
		json_decref(j);
		return ret;
	}
}

/* Send a QMP command with arguments (stolen; may be NULL), and with fd
 * (>= 0: still ours) passed to QEMU by SCM_RIGHTS on its first byte. 0 or
 * -1. */
int qmp_send(struct qmp *q, const char *cmd, json_t *args, int fd)
{
	json_t *req = json_pack("{s:s}", "execute", cmd);
	char *line;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm;
	size_t sent = 0;
	ssize_t n;

	if (args)
		json_object_set_new(req, "arguments", args);
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (line && fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		iov.iov_base = line;
		iov.iov_len = 1;
		do
			n = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		sent = n == 1 ? 1 : 0;
	}
	if (!line || (fd >= 0 && !sent) ||
	    write_all(q->fd, line + sent, strlen(line) - sent) < 0 ||
	    write_all(q->fd, "\n", 1) < 0) {
		err_errno("QMP: send '%s'", cmd);
		free(line);
		return -1;
	}
	free(line);
	return 0;
}

/* Run a QMP command with arguments (stolen; may be NULL); 0 when QEMU
 * answered "return" (its value in *reply when reply is not NULL: the
 * caller decrefs it). Events are skipped. */
int qmp_call(struct qmp *q, const char *cmd, json_t *args, int64_t timeout_ms,
		    json_t **reply)
{
	int64_t deadline = now_ms() + timeout_ms;

	if (qmp_send(q, cmd, args, -1) < 0)
		return -1;
	return qmp_reply(q, cmd, deadline, reply);
}

int qmp_connect(struct qmp *q, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set("QMP socket path '%s' too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (q->fd >= 0)
		close(q->fd);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q->fd < 0)
		return err_errno("QMP: socket");
	if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err_errno("QMP: connect '%s'", path);
		close(q->fd);
		q->fd = -1;
		return -1;
	}
	return 0;
}

int qmp_handshake(struct qmp *q, int64_t deadline)
{
	json_t *greeting = qmp_read(q, deadline);

	if (!greeting || !json_object_get(greeting, "QMP")) {
		json_decref(greeting);
		return err_set("QMP: no greeting from qemu");
	}
	json_decref(greeting);
	if (qmp_send(q, "qmp_capabilities", NULL, -1) < 0)
		return -1;
	return qmp_reply(q, "qmp_capabilities", deadline, NULL);
}
