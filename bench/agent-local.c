/* bench/agent-local.c: the agent protocol's own cost, no VM: the real agent
 * on a local unix socket. Prints exec round trip of `true` (median of 100)
 * and put/get MB/s for a 256 MiB file. Built and run by bench/agent-local.sh. */
#include <sys/random.h>

#include "builder/guest/agent-client.h"
#include "error.h"
#include "log.h"
#include "run.h"
#include "util.h"

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *agent_bin = argc > 1 ? argv[1] : "build/amiforge-agent";
	char dir[] = "/tmp/amiforge-bench.XXXXXX";
	char *sock, *src, *dst, *back;
	const char *aargv[5];
	const char *t[] = { "true", NULL };
	struct run r = RUN_INIT;
	struct agent *a;
	struct executor *ex;
	int64_t lat[100], t0, tput, tget;
	size_t size = 256u << 20;
	uint8_t *data;
	int fd;

	if (!mkdtemp(dir))
		return 1;
	sock = xasprintf("%s/a.sock", dir);
	src = xasprintf("%s/src", dir);
	dst = xasprintf("%s/dst", dir);
	back = xasprintf("%s/back", dir);
	aargv[0] = agent_bin; aargv[1] = "--socket"; aargv[2] = sock;
	aargv[3] = "--fake-power"; aargv[4] = NULL;
	r.argv = aargv;
	if (run_start(&r) < 0 || !(a = agent_open_unix(sock, 5000)) || agent_sync(a, 5000) < 0) {
		log_err_msg();
		return 1;
	}
	ex = executor_agent_new(a);
	for (int i = 0; i < 100; i++) {
		struct exec_req req = { .argv = t };
		struct exec_result res;

		t0 = now_ms();
		if (ex->ops->exec(ex, &req, &res) < 0) {
			log_err_msg();
			return 1;
		}
		lat[i] = now_ms() - t0;
		exec_result_release(&res);
	}
	qsort(lat, 100, sizeof(lat[0]), cmp);
	data = xmalloc(size);
	for (size_t off = 0; off < size; ) {
		ssize_t n = getrandom(data + off, size - off, 0);
		if (n > 0)
			off += (size_t)n;
	}
	fd = open(src, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write_all(fd, data, size) < 0 || close(fd) < 0)
		return 1;
	free(data);
	t0 = now_ms();
	if (ex->ops->put_file(ex, src, dst, 0644) < 0) {
		log_err_msg();
		return 1;
	}
	tput = now_ms() - t0;
	t0 = now_ms();
	if (ex->ops->get_file(ex, dst, back) < 0) {
		log_err_msg();
		return 1;
	}
	tget = now_ms() - t0;
	printf("%-40s %12s\n", "agent (local socket, no VM)", "value");
	printf("%-40s %9" PRId64 " ms\n", "exec true: median of 100", lat[50]);
	printf("%-40s %9" PRId64 " ms\n", "exec true: max of 100", lat[99]);
	printf("%-40s %7.1f MB/s\n", "put 256 MiB (sha256 both sides)", 256.0 * 1048576 / 1e6 / (tput / 1000.0));
	printf("%-40s %7.1f MB/s\n", "get 256 MiB (sha256 both sides)", 256.0 * 1048576 / 1e6 / (tget / 1000.0));
	agent_poweroff(a, 5000);
	executor_close(ex);
	agent_close(a);
	run_finish(&r);
	run_release(&r);
	remove_tree(dir);
	return 0;
}
