/* qmp.h: a QMP client on a connected unix socket (QEMU's machine protocol:
 * one JSON object per line). The direct driver's guests and the inspection's
 * early appliance (builder/disk/appliance.h) both talk to QEMU through it.
 *
 *	struct qmp q;
 *	qmp_init(&q, -1);
 *	if (qmp_connect(&q, "/run/x/qmp.sock") < 0 ||
 *	    qmp_handshake(&q, now_ms() + 10000) < 0 ||
 *	    qmp_call(&q, "stop", NULL, 5000, NULL) < 0) ...   // error recorded
 *	qmp_release(&q);                        // closes fd
 *
 * What QEMU sends is bounded (QMP_LINE_MAX per message) and every wait has
 * a deadline. Events are skipped. */
#ifndef AMIFORGE_QMP_H
#define AMIFORGE_QMP_H

#include <jansson.h>
#include <stdint.h>

#include "buf.h"

/* QMP replies we expect are a few hundred bytes; the greeting lists
 * capabilities. 64 KiB bounds what a confused QEMU can make us buffer. */
#define QMP_LINE_MAX (64u * 1024)

struct qmp {
	int fd;              /* the connection, or -1 */
	struct buf in;       /* bytes read but not yet consumed */
};

/* fd: a connection the client owns from here, or -1. */
void qmp_init(struct qmp *q, int fd);
/* Close the connection (when open) and free the buffer. */
void qmp_release(struct qmp *q);

/* Connect to QEMU's QMP server socket at path (once; a caller waiting for
 * QEMU to create it retries). 0 or -1 (error recorded). */
int qmp_connect(struct qmp *q, const char *path);
/* The greeting, then qmp_capabilities: 0 or -1 (error recorded). */
int qmp_handshake(struct qmp *q, int64_t deadline);
/* Send cmd with arguments (stolen; may be NULL), and with fd (>= 0: still
 * the caller's) passed to QEMU by SCM_RIGHTS on its first byte. 0 or -1. */
int qmp_send(struct qmp *q, const char *cmd, json_t *args, int fd);
/* Wait for the answer to cmd: 0 when QEMU answered "return" (its value in
 * *reply when reply is not NULL: the caller decrefs it), -1 with QEMU's
 * "error" or the failure recorded. */
int qmp_reply(struct qmp *q, const char *cmd, int64_t deadline, json_t **reply);
/* qmp_send, then qmp_reply within timeout_ms. */
int qmp_call(struct qmp *q, const char *cmd, json_t *args, int64_t timeout_ms, json_t **reply);

#endif
