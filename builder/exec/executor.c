/* executor.c: the parts of executor.h every implementation shares. */
#include "executor.h"
#include "error.h"
#include "util.h"

void exec_result_release(struct exec_result *res)
{
	if (!res)
		return;
	buf_release(&res->out);
	buf_release(&res->err);
}

int exec_script_by_file(struct executor *ex, const struct exec_req *req,
			struct exec_result *res)
{
	static unsigned seq;
	struct exec_req r = *req;
	const char **argv = NULL;
	char *path = NULL;
	size_t n = 0;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	if (!req->cwd)
		return err_set("exec '%s': a script needs a directory", req->argv[0]);
	while (req->argv[n])
		n++;
	argv = xcalloc(n + 2, sizeof(*argv));
	memcpy(argv, req->argv, n * sizeof(*argv));
	path = xasprintf("%s/step-%u.sh", req->cwd, ++seq);
	argv[n] = path;
	r.argv = argv;
	r.script = NULL;
	r.script_len = 0;
	if (executor_write_file(ex, path, req->script, req->script_len, 0700, false) < 0)
		goto cleanup;
	ret = executor_exec(ex, &r, res);
	executor_remove(ex, path, false);   /* what is left, generalisation removes */
cleanup:
	free(path);
	free(argv);
	return ret;
}

void file_stat_release(struct file_stat *st)
{
	if (!st)
		return;
	free(st->link_target);
	st->link_target = NULL;
}

int executor_flush(struct executor *ex, int64_t timeout_ms)
{
	static const char *const argv[] = { "sync", NULL };
	struct exec_req req = { .argv = argv, .timeout_ms = timeout_ms, .capture_max = 4096 };
	struct exec_result res;
	int r;

	if (ex->ops->flush)
		return ex->ops->flush(ex, timeout_ms);
	memset(&res, 0, sizeof(res));
	r = executor_exec(ex, &req, &res);
	if (r == 0 && (res.timed_out || res.status != 0))
		r = err_set("sync failed (status %d%s)", res.status,
			    res.timed_out ? ", timed out" : "");
	exec_result_release(&res);
	return r;
}

void dir_entries_free(struct dir_entry *entries, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(entries[i].name);
	free(entries);
}

void executor_close(struct executor *ex)
{
	if (ex && ex->ops && ex->ops->close)
		ex->ops->close(ex);
}
