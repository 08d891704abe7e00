/* executor.c: the parts of executor.h every implementation shares. */
#include "executor.h"

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
