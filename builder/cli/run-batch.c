/* run-batch.c: JSON-lines operations against one guest (see run-batch.h). */
#include <jansson.h>

#include "run-batch.h"
#include "builder/guest/agent-client.h"
#include "builder/exec/executor.h"
#include "builder/guest/guest.h"
#include "buf.h"
#include "drivers/hypervisor/hypervisor.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* boot_id is a UUID: 36 characters and a newline. */
#define BOOT_ID_MAX 64
/* A rebooting guest gets this long to answer again with a new boot_id. */
#define BATCH_REBOOT_MS 600000

static void emit(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s) {
		printf("%s\n", s);
		fflush(stdout);
	}
	free(s);
	json_decref(o);
}

/* argv from the array's members first..end (all strings). Caller frees the
 * vector (the strings belong to the JSON). */
static const char **strings(json_t *arr, size_t first, const char *op)
{
	size_t n = json_array_size(arr), i;
	const char **v;

	if (n <= first) {
		err_set("batch '%s': missing arguments", op);
		return NULL;
	}
	v = xcalloc(n - first + 1, sizeof(*v));
	for (i = first; i < n; i++) {
		v[i - first] = json_string_value(json_array_get(arr, i));
		if (!v[i - first]) {
			err_set("batch '%s': argument %zu is not a string", op, i);
			free(v);
			return NULL;
		}
	}
	return v;
}

static int do_exec(struct guest *g, const char **argv, int64_t timeout_ms, json_t *out)
{
	struct exec_req req = { 0 };
	struct exec_result res;
	int64_t t0 = now_ms();
	int ret;

	memset(&res, 0, sizeof(res));
	req.argv = argv;
	req.timeout_ms = timeout_ms;
	req.capture_max = BATCH_CAPTURE_MAX;
	ret = executor_exec(g->ex, &req, &res);
	if (ret == 0) {
		json_object_set_new(out, "status", json_integer(res.status));
		json_object_set_new(out, "timed_out", json_boolean(res.timed_out));
		json_object_set_new(out, "stdout", json_stringn(res.out.data ? res.out.data : "",
								res.out.len));
		json_object_set_new(out, "stderr", json_stringn(res.err.data ? res.err.data : "",
								res.err.len));
	}
	json_object_set_new(out, "ms", json_integer(now_ms() - t0));
	exec_result_release(&res);
	return ret;
}

/* The guest's boot_id, through exec (procfs files announce size 0, which
 * a file transfer would rightly refuse). */
static int read_boot_id(struct guest *g, char *id, size_t size)
{
	static const char *const argv[] = { "cat", "/proc/sys/kernel/random/boot_id", NULL };
	struct exec_req req = { .argv = argv, .timeout_ms = 10000, .capture_max = BOOT_ID_MAX };
	struct exec_result res;
	int ret = -1;

	memset(&res, 0, sizeof(res));
	if (executor_exec(g->ex, &req, &res) < 0)
		goto cleanup;
	if (res.status != 0 || !res.out.len) {
		err_set("read boot_id: cat exited with status %d", res.status);
		goto cleanup;
	}
	snprintf(id, size, "%.*s", (int)res.out.len, res.out.data);
	ret = 0;
cleanup:
	exec_result_release(&res);
	return ret;
}

/* A command reboots the guest: run it (its fate does not matter: the reboot
 * may kill it or the channel under it), then re-sync until the agent answers
 * from a new boot. */
static int do_reboot_by(struct guest *g, const char **argv, json_t *out)
{
	int64_t t0 = now_ms(), deadline = t0 + BATCH_REBOOT_MS;
	char before[BOOT_ID_MAX + 1], now[BOOT_ID_MAX + 1];
	json_t *ignored = json_object();

	if (read_boot_id(g, before, sizeof(before)) < 0) {
		json_decref(ignored);
		return -1;
	}
	if (do_exec(g, argv, 60000, ignored) < 0)
		log_debug("reboot-by: command: %s", err_msg());
	json_decref(ignored);
	for (;;) {
		if (now_ms() >= deadline)
			return err_set("reboot-by: the guest did not come back within %d s",
				       BATCH_REBOOT_MS / 1000);
		if (hv_wait(g->vm, 0) == HV_EXITED)
			return err_set("reboot-by: the guest stopped instead of rebooting");
		if (guest_resync(g, 3000) == 0 &&
		    read_boot_id(g, now, sizeof(now)) == 0 && strcmp(now, before) != 0)
			break;
		guest_watch_boot(g);
		usleep(500 * 1000);
	}
	json_object_set_new(out, "ms", json_integer(now_ms() - t0));
	return 0;
}

static int do_op(struct guest *g, json_t *arr, int64_t timeout_ms, json_t *out, bool *stop)
{
	const char *op = json_string_value(json_array_get(arr, 0));
	const char **v = NULL;
	int64_t t0 = now_ms();
	struct stat st;
	int ret = -1;

	if (!op)
		return err_set("batch: an operation is a JSON array starting with its name");
	json_object_set_new(out, "kind", json_string(op));
	if (strcmp(op, "exec") == 0) {
		if ((v = strings(arr, 1, op)))
			ret = do_exec(g, v, timeout_ms, out);
	} else if (strcmp(op, "put") == 0 || strcmp(op, "get") == 0) {
		if (!(v = strings(arr, 1, op)))
			goto cleanup;
		if (!v[1] || v[2]) {
			err_set("batch '%s': expected SOURCE and DESTINATION", op);
			goto cleanup;
		}
		if (op[0] == 'p') {
			if (stat(v[0], &st) < 0) {
				err_errno("batch put '%s'", v[0]);
				goto cleanup;
			}
			ret = executor_put_file(g->ex, v[0], v[1], st.st_mode & 07777);
		} else {
			ret = executor_get_file(g->ex, v[0], v[1]);
			if (ret == 0 && stat(v[1], &st) < 0)
				ret = err_errno("batch get '%s'", v[1]);
		}
		if (ret == 0) {
			json_object_set_new(out, "bytes", json_integer((json_int_t)st.st_size));
			json_object_set_new(out, "ms", json_integer(now_ms() - t0));
		}
	} else if (strcmp(op, "reboot") == 0) {
		if (!g->ex->ops->reboot)
			err_set("batch reboot: executor '%s' cannot reboot", g->ex->ops->name);
		else if ((ret = executor_reboot(g->ex, BATCH_REBOOT_MS)) == 0)
			json_object_set_new(out, "ms", json_integer(now_ms() - t0));
	} else if (strcmp(op, "reboot-by") == 0) {
		if ((v = strings(arr, 1, op)))
			ret = do_reboot_by(g, v, out);
	} else if (strcmp(op, "poweroff") == 0) {
		int r = guest_shutdown(g);

		if (r >= 0) {
			json_object_set_new(out, "how", json_string(r == 0 ? "clean" : "destroyed"));
			json_object_set_new(out, "ms", json_integer(now_ms() - t0));
			*stop = true;
			ret = 0;
		}
	} else {
		err_set("batch: unknown operation '%s'", op);
	}
cleanup:
	free(v);
	return ret;
}

int run_batch(struct guest *g, const char *path, int64_t op_timeout_ms, bool *powered_off)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int ret = 0, op = 0;
	json_t *ready;

	*powered_off = false;
	if (!f)
		return err_errno("batch '%s'", path);
	ready = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s?}", "event", "ready", "name", g->name,
			  "boot_ms", (json_int_t)(g->t_ready - g->t_start),
			  "started_ms", (json_int_t)(g->t_started - g->t_start),
			  "console_log", g->console_log, "accel", accel_name(g->accel),
			  "instance_id", g->instance_id);
	emit(ready);
	while ((n = getline(&line, &cap, f)) >= 0) {
		json_error_t je;
		json_t *arr, *out;
		bool stop = false;

		lineno++;
		if ((size_t)n > BATCH_LINE_MAX) {
			ret = err_set("%s:%zu: line longer than %u bytes", path, lineno,
				      BATCH_LINE_MAX);
			break;
		}
		if (strspn(line, " \t\r\n") == (size_t)n || line[0] == '#')
			continue;
		arr = json_loads(line, 0, &je);
		if (!arr || !json_is_array(arr)) {
			json_decref(arr);
			ret = err_set("%s:%zu:%d: %s", path, lineno, je.column,
				      arr ? "expected a JSON array" : je.text);
			break;
		}
		out = json_object();
		json_object_set_new(out, "op", json_integer(++op));
		if (do_op(g, arr, op_timeout_ms, out, &stop) < 0) {
			err_prefix("%s:%zu", path, lineno);
			json_object_set_new(out, "error", json_string(err_msg()));
			emit(out);
			json_decref(arr);
			ret = -1;
			break;
		}
		emit(out);
		json_decref(arr);
		if (stop) {
			*powered_off = true;
			break;
		}
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return ret;
}
