/* libFuzzer target: the guest agent's side of the protocol — what it does
 * with the bytes the host (or anything else on the virtio-serial port)
 * sends, up to the point where it would act. The input goes through the
 * agent's own connection reader (conn_recv: framing, resync on garbage),
 * and each request frame through the checks its operation makes first:
 * paths (need_path), the EXEC request (exec_check_request: argv, env, cwd,
 * user lookup, environment), numbers, names and the hash algorithm.
 * Nothing is executed or written. Nothing may crash, hang or leak. */
#include <sys/socket.h>

#include "fuzz.h"
#include "guest-agent/agent.h"
#include "proto.h"

static void check_frame(const struct proto_frame *f)
{
	static const uint16_t strs[] = { PROTO_A_OWNER, PROTO_A_GROUP, PROTO_A_TARGET,
					 PROTO_A_CWD, PROTO_A_NAME };
	static const uint16_t u32s[] = { PROTO_A_MODE, PROTO_A_UID, PROTO_A_GID,
					 PROTO_A_RECURSIVE, PROTO_A_APPEND, PROTO_A_VER_MIN,
					 PROTO_A_VER_MAX };
	const char *s;
	uint32_t u;
	uint64_t v;
	size_t i;

	if (f->type == PROTO_T_EXEC) {
		exec_check_request(f);
		err_clear();
		return;
	}
	need_path(f, PROTO_A_PATH, &s);
	err_clear();
	need_path(f, PROTO_A_PATH2, &s);
	err_clear();
	for (i = 0; i < ARRAY_SIZE(strs); i++)
		proto_get_str(f, strs[i], &s);
	for (i = 0; i < ARRAY_SIZE(u32s); i++)
		proto_get_u32(f, u32s[i], &u);
	proto_get_u64(f, PROTO_A_NONCE, &v);
	proto_get_u64(f, PROTO_A_MTIME, &v);
	proto_get_u64(f, PROTO_A_SIZE, &v);
	if (f->type == PROTO_T_HASH && proto_get_str(f, PROTO_A_ALGO, &s) > 0) {
		struct agent_hash h;
		uint8_t out[PROTO_DIGEST_MAX];

		if (hash_init(&h, s) == 0) {
			hash_update(&h, f->payload, f->len);
			hash_final(&h, out);
		}
	}
	if (f->type == PROTO_T_CHOWN && proto_get_str(f, PROTO_A_OWNER, &s) > 0) {
		struct agent_user usr;
		gid_t g;

		if (user_lookup(s, &usr) == 0)
			user_release(&usr);
		if (proto_get_str(f, PROTO_A_GROUP, &s) > 0)
			group_lookup(s, &g);
	}
	err_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conn c;
	struct proto_frame f;
	int sv[2], n = 0;

	fuzz_dir();   /* SIGPIPE ignored */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (write_all(sv[1], data, size) < 0 || shutdown(sv[1], SHUT_WR) < 0)
		goto out;
	memset(&c, 0, sizeof(c));
	c.rfd = sv[0];
	c.wfd = sv[1];
	proto_in_init(&c.in);
	while (n++ < 4096 && conn_recv(&c, &f, 0) == 1)
		check_frame(&f);
	proto_in_release(&c.in);
	err_clear();
out:
	close(sv[0]);
	close(sv[1]);
	return 0;
}
