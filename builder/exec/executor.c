/* executor.c: the parts of executor.h every implementation shares. */
#include "executor.h"
#include "error.h"

void exec_result_release(struct exec_result *res)
{
	if (!res)
		return;
	buf_release(&res->out);
	buf_release(&res->err);
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
