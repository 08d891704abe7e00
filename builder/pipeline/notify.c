/* notify.c: SNS, webhooks and commands (notify.h). */
#include <jansson.h>

#include "notify.h"
#include "http.h"
#include "drivers/aws/extras.h"
#include "error.h"
#include "log.h"
#include "run.h"
#include "util.h"

static void result(json_t *results, const char *kind, const char *target, bool ok,
		   int attempts)
{
	json_t *o = json_pack("{s:s, s:s, s:b}", "kind", kind, "target", target, "ok", ok);

	if (!ok)
		json_object_set_new(o, "error", json_string(err_msg()));
	if (attempts)
		json_object_set_new(o, "attempts", json_integer(attempts));
	json_array_append_new(results, o);
	if (!ok)
		log_warn("notification %s %s: %s", kind, target, err_msg());
	else
		log_info("notification %s %s: sent", kind, target);
}

static int sns(const struct pipeline *p, const char *arn, const char *message,
	       const char *status)
{
	struct aws_client_opts o = { .profile = p->profile };
	struct aws_client *cl;
	char *region = arn_region(arn), *subject, *id = NULL;
	int r = -1;

	o.region = region;
	subject = xasprintf("amiforge pipeline %s: %s", p->name, status);
	cl = aws_client_new(&o);
	if (!cl)
		goto cleanup;
	if (sns_publish(cl, arn, subject, message, &id) < 0)
		goto cleanup;
	log_debug("SNS message id %s", id);
	r = 0;
cleanup:
	aws_client_free(cl);
	free(id);
	free(subject);
	free(region);
	return r;
}

static int64_t retry_base_ms(void)
{
	const char *e = getenv("AMIFORGE_WEBHOOK_RETRY_MS");
	int64_t v = 1000;

	if (e && parse_i64(e, 0, 60000, &v) < 0)
		v = 1000;
	return v;
}

static int webhook(const struct pipeline_webhook *w, const char *message, int *attempts)
{
	int64_t delay = retry_base_ms();
	char *shown = url_redact(w->url);
	int i, r = -1;

	for (i = 0; i <= w->retries; i++) {
		long status = 0;
		bool again;

		*attempts = i + 1;
		err_clear();
		if (http_post_json(w->url, message, w->timeout_ms, &status) == 0) {
			if (status >= 200 && status < 300) {
				r = 0;
				break;
			}
			err_set("POST '%s': HTTP %ld", shown, status);
			again = status >= 500 || status == 408 || status == 429;
		} else {
			again = true;
		}
		if (!again || i == w->retries)
			break;
		log_warn("webhook %s: %s; retrying in %" PRId64 " ms (%d/%d)", shown, err_msg(),
			 delay, i + 1, w->retries);
		usleep((useconds_t)(delay * 1000));
		delay = delay * 2 > 30000 ? 30000 : delay * 2;
	}
	free(shown);
	return r;
}

static int command(char *const *argv, const char *message)
{
	struct run r = RUN_INIT;
	int ret = -1;

	r.argv = (const char *const *)argv;
	r.in = RUN_CAPTURE;
	r.in_data = message;
	r.in_len = strlen(message);
	r.out = RUN_INHERIT;
	r.err = RUN_INHERIT;
	r.timeout_ms = NOTIFY_COMMAND_TIMEOUT_MS;
	if (run_sync(&r) < 0 || run_check(&r) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	run_release(&r);
	return ret;
}

int pipeline_notify(const struct pipeline *p, const char *message, const char *status,
		    json_t *results)
{
	int failed = 0, attempts = 0;
	size_t i;

	for (i = 0; p->sns && p->sns[i]; i++) {
		int ok = sns(p, p->sns[i], message, status) == 0;

		result(results, "sns", p->sns[i], ok, 0);
		failed += !ok;
	}
	for (i = 0; i < p->nwebhooks; i++) {
		char *shown = url_redact(p->webhooks[i].url);
		int ok = webhook(&p->webhooks[i], message, &attempts) == 0;

		result(results, "webhook", shown, ok, attempts);
		free(shown);
		failed += !ok;
	}
	for (i = 0; i < p->ncommands; i++) {
		char *shown = run_argv_str((const char *const *)p->commands[i]);
		int ok = command(p->commands[i], message) == 0;

		result(results, "command", shown, ok, 0);
		free(shown);
		failed += !ok;
	}
	return failed;
}
