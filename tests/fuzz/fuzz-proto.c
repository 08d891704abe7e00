/* libFuzzer target: the host side of the agent protocol.
 *
 * The input is what a guest sends. First byte even: it goes straight into the
 * frame reader and TLV decoder. Odd: it is written into a socketpair whose
 * other end is a client session (ids start at 1, as after a sync), and every
 * executor operation that parses replies is run against it. Nothing may
 * crash, hang or leak; every failure must be a recorded error. */
#include <signal.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "builder/guest/agent-client.h"
#include "error.h"
#include "proto.h"
#include "util.h"



static void parse_frames(const uint8_t *data, size_t size)
{
	struct proto_in in;
	struct proto_frame f;
	int r;

	proto_in_init(&in);
	proto_in_feed(&in, data, size);
	while ((r = proto_in_next(&in, &f)) != 0) {
		struct proto_tlv t;
		size_t off = 0;
		const char *s;
		uint64_t u;

		if (r < 0) {
			proto_in_resync(&in);
			continue;
		}
		while (proto_tlv_next(&f, &off, &t) > 0) {
			proto_tlv_str(&t, &s);
			proto_tlv_u64(&t, &u);
		}
		proto_get_str(&f, PROTO_A_MSG, &s);
	}
	proto_in_release(&in);
}

static void run_ops(const uint8_t *data, size_t size)
{
	int sv[2];
	struct agent *a;
	struct executor *ex;
	struct exec_result res;
	struct file_stat st;
	struct dir_entry *e;
	struct buf b = BUF_INIT(4096);
	struct agent_info info;
	const char *argv[] = { "true", NULL };
	struct exec_req req = { .argv = argv, .capture_max = 64 };
	char *hex = NULL;
	size_t n;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	/* The socket buffer holds a -max_len sized input; the client's few small
	 * requests fit in the other direction. */
	if (write_all(sv[1], data, size) < 0 || shutdown(sv[1], SHUT_WR) < 0) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	a = agent_open_fds(sv[0], sv[0]);
	agent_set_timeout(a, 20);
	ex = executor_agent_new(a);

	agent_assume_synced(a);
	if (ex->ops->stat(ex, "/x", &st) == 0)
		file_stat_release(&st);
	agent_assume_synced(a);
	if (ex->ops->exec(ex, &req, &res) == 0 || true)
		exec_result_release(&res);
	agent_assume_synced(a);
	if (ex->ops->list_dir(ex, "/", &e, &n) == 0)
		dir_entries_free(e, n);
	agent_assume_synced(a);
	if (ex->ops->hash_file(ex, "/x", "sha256", &hex) == 0)
		free(hex);
	agent_assume_synced(a);
	ex->ops->read_file(ex, "/x", 4096, &b);
	buf_release(&b);
	agent_assume_synced(a);
	if (agent_get_info(a, &info, 20) == 0)
		agent_info_release(&info);
	agent_assume_synced(a);
	ex->ops->mkdir_p(ex, "/x", 0755);
	{
		/* get_file through a bulk disk: a stat reply, then get-bulk's */
		char bulk[256], dst[256];

		snprintf(bulk, sizeof(bulk), "%s", fuzz_file("bulk.raw", NULL, 0));
		snprintf(dst, sizeof(dst), "%s/got", fuzz_dir());
		agent_assume_synced(a);
		if (truncate(bulk, PROTO_BULK_HDR + (8u << 20)) == 0 &&
		    executor_agent_set_bulk(ex, bulk, 1, 8u << 20) == 0)
			ex->ops->get_file(ex, "/x", dst);
	}
	/* And a sync that sees the rest (nonces never match: all discarded). */
	agent_sync(a, 20);

	executor_close(ex);
	agent_close(a);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;

	if (!init) {
		signal(SIGPIPE, SIG_IGN);
		init = true;
	}
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
		parse_frames(data + 1, size - 1);
	else
		run_ops(data + 1, size - 1);
	err_clear();
	return 0;
}
