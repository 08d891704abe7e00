/* Unit tests for common/proto.c: frame encoding and decoding, limits, TLVs,
 * stream reassembly and resynchronisation after garbage. */
#include "test.h"
#include "error.h"
#include "proto.h"
#include "util.h"
#include <sys/wait.h>

static void test_roundtrip(void)
{
	struct proto_msg m;
	struct proto_in in;
	struct proto_frame f;
	const char *s = NULL;
	uint32_t u32 = 0;
	uint64_t u64 = 0;
	const uint8_t *bytes = NULL;
	size_t n = 0;

	proto_msg_init(&m, PROTO_T_STAT, 0, 77);
	proto_msg_str(&m, PROTO_A_PATH, "/etc/os-release", PROTO_STR_MAX);
	proto_msg_u32(&m, PROTO_A_MODE, 0644);
	proto_msg_u64(&m, PROTO_A_SIZE, UINT64_C(0x1122334455667788));
	proto_msg_bytes(&m, PROTO_A_DIGEST, "\x01\x02\x00\x03", 4);
	CHECK(proto_msg_finish(&m) == 0, "proto: message builds");
	CHECK(m.len == PROTO_HDR_LEN + 6 + 16 + 6 + 4 + 6 + 8 + 6 + 4, "proto: encoded size");
	CHECK(memcmp(m.data, "AMIF", 4) == 0, "proto: magic bytes on the wire");

	proto_in_init(&in);
	/* Byte by byte: a frame is returned only once complete. */
	for (size_t i = 0; i < m.len - 1; i++) {
		proto_in_feed(&in, m.data + i, 1);
		if (proto_in_next(&in, &f) != 0) {
			CHECK(0, "proto: partial frame not returned early (at %zu)", i);
			break;
		}
	}
	proto_in_feed(&in, m.data + m.len - 1, 1);
	CHECK(proto_in_next(&in, &f) == 1 && f.type == PROTO_T_STAT && f.id == 77,
	      "proto: frame reassembled from single bytes");
	CHECK(proto_tlv_check(&f) == 0, "proto: TLVs well-formed");
	CHECK(proto_get_str(&f, PROTO_A_PATH, &s) == 1 && strcmp(s, "/etc/os-release") == 0,
	      "proto: string attribute");
	CHECK(proto_get_u32(&f, PROTO_A_MODE, &u32) == 1 && u32 == 0644, "proto: u32 attribute");
	CHECK(proto_get_u64(&f, PROTO_A_SIZE, &u64) == 1 &&
	      u64 == UINT64_C(0x1122334455667788), "proto: u64 attribute");
	CHECK(proto_get_bytes(&f, PROTO_A_DIGEST, &bytes, &n) == 1 && n == 4 && bytes[2] == 0,
	      "proto: bytes attribute with NUL inside");
	CHECK(proto_get_u32(&f, PROTO_A_UID, &u32) == 0, "proto: absent attribute");
	CHECK(proto_get_u32(&f, PROTO_A_SIZE, &u32) < 0 && strstr(err_msg(), "expected 4"),
	      "proto: wrong integer width rejected");
	CHECK(proto_get_str(&f, PROTO_A_DIGEST, &s) < 0, "proto: embedded NUL string rejected");
	CHECK(proto_in_next(&in, &f) == 0 && !proto_in_pending(&in), "proto: buffer drained");
	proto_in_release(&in);
	proto_msg_release(&m);
}

static void test_limits(void)
{
	struct proto_msg m;
	struct proto_frame f;
	struct proto_in in;
	uint8_t hdr[PROTO_HDR_LEN];
	char *big;

	proto_hdr_encode(hdr, PROTO_R_OK, 0, 1, PROTO_MAX_PAYLOAD);
	CHECK(proto_hdr_decode(hdr, &f) == 0, "proto: payload at the limit accepted");
	proto_hdr_encode(hdr, PROTO_R_OK, 0, 1, PROTO_MAX_PAYLOAD + 1);
	CHECK(proto_hdr_decode(hdr, &f) < 0 && strstr(err_msg(), "exceeds the limit"),
	      "proto: oversized payload rejected from the header alone");
	proto_hdr_encode(hdr, PROTO_R_OK, 0, 1, UINT32_MAX);
	CHECK(proto_hdr_decode(hdr, &f) < 0, "proto: 4 GiB length rejected");
	proto_hdr_encode(hdr, PROTO_R_OK, 0, 1, 0);
	hdr[4] = 9;
	CHECK(proto_hdr_decode(hdr, &f) < 0 && strstr(err_msg(), "framing version"),
	      "proto: unknown framing version rejected");
	hdr[4] = PROTO_FRAME_VERSION;
	hdr[0] = 'X';
	CHECK(proto_hdr_decode(hdr, &f) < 0 && strstr(err_msg(), "magic"),
	      "proto: wrong magic rejected");

	/* Building past the limit fails once, at finish. */
	big = xmalloc(PROTO_MAX_PAYLOAD);
	memset(big, 'a', PROTO_MAX_PAYLOAD - 1);
	big[PROTO_MAX_PAYLOAD - 1] = '\0';
	proto_msg_init(&m, PROTO_T_EXEC, 0, 1);
	proto_msg_str(&m, PROTO_A_ARG, big, PROTO_MAX_PAYLOAD);
	proto_msg_u32(&m, PROTO_A_MODE, 1);
	CHECK(proto_msg_finish(&m) < 0 && strstr(err_msg(), "too large"),
	      "proto: oversized message fails to build");
	proto_msg_release(&m);
	proto_msg_init(&m, PROTO_T_EXEC, 0, 1);
	proto_msg_str(&m, PROTO_A_PATH, "abcdef", 3);
	CHECK(proto_msg_finish(&m) < 0, "proto: string over its own limit fails");
	proto_msg_release(&m);
	free(big);

	/* A TLV whose length runs past the payload. */
	{
		uint8_t frame[PROTO_HDR_LEN + 10];
		const char *s;

		proto_hdr_encode(frame, PROTO_R_OK, 0, 5, 10);
		memcpy(frame + PROTO_HDR_LEN, "\x0d\x00\xff\xff\xff\x7f" "abcd", 10);
		proto_in_init(&in);
		proto_in_feed(&in, frame, sizeof(frame));
		CHECK(proto_in_next(&in, &f) == 1, "proto: frame with bad TLV is still a frame");
		CHECK(proto_tlv_check(&f) < 0 && strstr(err_msg(), "runs past"),
		      "proto: TLV running past the payload rejected");
		CHECK(proto_get_str(&f, PROTO_A_PATH, &s) < 0, "proto: lookup in bad TLVs fails");
		proto_in_release(&in);
	}
}

static void test_resync(void)
{
	struct proto_msg m;
	struct proto_in in;
	struct proto_frame f;
	int r, bad = 0;

	proto_in_init(&in);
	proto_in_feed(&in, "garbage AMI garbage", 19);
	proto_msg_init(&m, PROTO_R_PONG, 0, 9);
	proto_msg_finish(&m);
	proto_in_feed(&in, m.data, m.len);
	while ((r = proto_in_next(&in, &f)) < 0 && bad < 100) {
		bad++;
		proto_in_resync(&in);
	}
	CHECK(r == 1 && f.type == PROTO_R_PONG && f.id == 9 && bad == 1,
	      "proto: resync skips garbage to the next frame (%d bad)", bad);
	proto_msg_release(&m);
	proto_in_release(&in);
}

static void test_stream_fd(void)
{
	int p[2];
	struct proto_in in;
	struct proto_frame f;
	uint8_t hdr[PROTO_HDR_LEN];
	char *data = xmalloc(PROTO_CHUNK);
	int frames = 0;

	memset(data, 'z', PROTO_CHUNK);
	CHECK(pipe(p) == 0, "proto: pipe");
	proto_in_init(&in);
	/* Many full chunks through a pipe: buffer compaction keeps up. */
	if (fork() == 0) {
		close(p[0]);
		for (int i = 0; i < 40; i++) {
			proto_hdr_encode(hdr, PROTO_T_DATA, 0, (uint32_t)i, PROTO_CHUNK);
			if (write_all(p[1], hdr, sizeof(hdr)) < 0 ||
			    write_all(p[1], data, PROTO_CHUNK) < 0)
				_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	for (;;) {
		int r = proto_in_next(&in, &f);

		if (r < 0)
			break;
		if (r == 1) {
			if (f.id != (uint32_t)frames || f.len != PROTO_CHUNK ||
			    f.payload[PROTO_CHUNK - 1] != 'z')
				break;
			frames++;
			continue;
		}
		if (proto_in_read(&in, p[0]) <= 0)
			break;
	}
	CHECK(frames == 40, "proto: 40 chunks of %u bytes read in order (%d)", PROTO_CHUNK, frames);
	close(p[0]);
	while (wait(NULL) > 0)
		;
	proto_in_release(&in);
	free(data);
}

int main(void)
{
	test_roundtrip();
	test_limits();
	test_resync();
	test_stream_fd();
	CHECK(strcmp(proto_type_name(PROTO_R_EXIT), "exit") == 0 &&
	      strcmp(proto_type_name(999), "unknown") == 0, "proto: type names");
	return TEST_DONE();
}
