/* notify.h: a pipeline's notifications, on success and on failure: the same
 * JSON message (pipeline, buildId, status, amis per region, failedStep,
 * error, time) published to each SNS topic (drivers/aws/extras.h, the
 * project's signed client), POSTed to each webhook (retried: 5xx, 408, 429
 * and transport errors, with a doubling delay), and given on stdin to each
 * command (common/run.h, no shell, 60 s). */
#ifndef AMIFORGE_PIPELINE_NOTIFY_H
#define AMIFORGE_PIPELINE_NOTIFY_H

#include "compat.h"
#include "pipeline.h"

#define NOTIFY_COMMAND_TIMEOUT_MS 60000

struct json_t;

/* Send message (JSON text) everywhere p says. Each outcome is appended to
 * results (a JSON array: {kind, target, ok, error?, attempts?}); failures are
 * logged as warnings. Returns the number of failed notifications. */
int pipeline_notify(const struct pipeline *p, const char *message, const char *status,
		    struct json_t *results);

#endif
