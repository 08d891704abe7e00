#include "proto.h"
#include "error.h"
#include "util.h"

/* TLV header: u16 tag, u32 length. */
#define TLV_HDR_LEN 6

void proto_hdr_encode(uint8_t out[PROTO_HDR_LEN], uint16_t type, uint8_t flags,
		      uint32_t id, uint32_t len)
{
	put_le32(out, PROTO_MAGIC);
	out[4] = PROTO_FRAME_VERSION;
	out[5] = flags;
	put_le16(out + 6, type);
	put_le32(out + 8, id);
	put_le32(out + 12, len);
}

int proto_hdr_decode(const uint8_t in[PROTO_HDR_LEN], struct proto_frame *f)
{
	if (get_le32(in) != PROTO_MAGIC)
		return err_set("bad frame: wrong magic 0x%08" PRIx32, get_le32(in));
	if (in[4] != PROTO_FRAME_VERSION)
		return err_set("bad frame: framing version %u, expected %u", in[4],
			       PROTO_FRAME_VERSION);
	f->flags = in[5];
	f->type = get_le16(in + 6);
	f->id = get_le32(in + 8);
	f->len = get_le32(in + 12);
	f->payload = NULL;
	if (f->len > PROTO_MAX_PAYLOAD)
		return err_set("bad frame: payload of %" PRIu32 " bytes exceeds the limit of %u",
			       f->len, PROTO_MAX_PAYLOAD);
	return 0;
}

/* --- building ----------------------------------------------------------- */

void proto_msg_init(struct proto_msg *m, uint16_t type, uint8_t flags, uint32_t id)
{
	m->cap = 256;
	m->data = xmalloc(m->cap);
	m->len = PROTO_HDR_LEN;
	m->failed = false;
	proto_hdr_encode(m->data, type, flags, id, 0);
}

void proto_msg_release(struct proto_msg *m)
{
	free(m->data);
	m->data = NULL;
	m->len = m->cap = 0;
}

/* Room for n more bytes, within the payload limit; false (sticky) if not. */
static bool msg_room(struct proto_msg *m, size_t n)
{
	if (m->failed)
		return false;
	if (n > PROTO_MAX_PAYLOAD || m->len - PROTO_HDR_LEN > PROTO_MAX_PAYLOAD - n) {
		m->failed = true;
		return false;
	}
	if (m->len + n > m->cap) {
		while (m->len + n > m->cap)
			m->cap *= 2;
		m->data = xrealloc(m->data, m->cap);
	}
	return true;
}

static void msg_tlv(struct proto_msg *m, uint16_t tag, const void *p, size_t n)
{
	if (n > PROTO_MAX_PAYLOAD || !msg_room(m, TLV_HDR_LEN + n)) {
		m->failed = true;
		return;
	}
	put_le16(m->data + m->len, tag);
	put_le32(m->data + m->len + 2, (uint32_t)n);
	if (n)
		memcpy(m->data + m->len + TLV_HDR_LEN, p, n);
	m->len += TLV_HDR_LEN + n;
}

void proto_msg_u32(struct proto_msg *m, uint16_t tag, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	msg_tlv(m, tag, b, sizeof(b));
}

void proto_msg_u64(struct proto_msg *m, uint16_t tag, uint64_t v)
{
	uint8_t b[8];

	put_le64(b, v);
	msg_tlv(m, tag, b, sizeof(b));
}

void proto_msg_bytes(struct proto_msg *m, uint16_t tag, const void *p, size_t n)
{
	msg_tlv(m, tag, p, n);
}

void proto_msg_str(struct proto_msg *m, uint16_t tag, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max) {
		m->failed = true;
		return;
	}
	msg_tlv(m, tag, s, n + 1);
}

int proto_msg_finish(struct proto_msg *m)
{
	if (m->failed)
		return err_set("message too large for the agent protocol (limit %u bytes)",
			       PROTO_MAX_PAYLOAD);
	put_le32(m->data + 12, (uint32_t)(m->len - PROTO_HDR_LEN));
	return 0;
}

/* --- attributes --------------------------------------------------------- */

int proto_tlv_next(const struct proto_frame *f, size_t *off, struct proto_tlv *t)
{
	size_t left;

	if (*off >= f->len)
		return 0;
	left = f->len - *off;
	if (left < TLV_HDR_LEN)
		return err_set("bad %s frame: truncated attribute header", proto_type_name(f->type));
	t->tag = get_le16(f->payload + *off);
	t->len = get_le32(f->payload + *off + 2);
	if (t->len > left - TLV_HDR_LEN)
		return err_set("bad %s frame: attribute %u runs past the payload",
			       proto_type_name(f->type), t->tag);
	t->val = f->payload + *off + TLV_HDR_LEN;
	*off += TLV_HDR_LEN + t->len;
	return 1;
}

int proto_tlv_check(const struct proto_frame *f)
{
	struct proto_tlv t;
	size_t off = 0;
	int r;

	while ((r = proto_tlv_next(f, &off, &t)) > 0)
		;
	return r;
}

int proto_tlv_u32(const struct proto_tlv *t, uint32_t *v)
{
	if (t->len != 4)
		return err_set("bad attribute %u: %" PRIu32 " bytes, expected 4", t->tag, t->len);
	*v = get_le32(t->val);
	return 0;
}

int proto_tlv_u64(const struct proto_tlv *t, uint64_t *v)
{
	if (t->len != 8)
		return err_set("bad attribute %u: %" PRIu32 " bytes, expected 8", t->tag, t->len);
	*v = get_le64(t->val);
	return 0;
}

int proto_tlv_str(const struct proto_tlv *t, const char **s)
{
	if (t->len == 0 || t->val[t->len - 1] != '\0' ||
	    memchr(t->val, '\0', t->len - 1) != NULL)
		return err_set("bad attribute %u: not a NUL-terminated string", t->tag);
	*s = (const char *)t->val;
	return 0;
}

static int find(const struct proto_frame *f, uint16_t tag, struct proto_tlv *t)
{
	size_t off = 0;
	int r;

	while ((r = proto_tlv_next(f, &off, t)) > 0)
		if (t->tag == tag)
			return 1;
	return r;
}

int proto_get_u32(const struct proto_frame *f, uint16_t tag, uint32_t *v)
{
	struct proto_tlv t;
	int r = find(f, tag, &t);

	if (r <= 0)
		return r;
	return proto_tlv_u32(&t, v) < 0 ? -1 : 1;
}

int proto_get_u64(const struct proto_frame *f, uint16_t tag, uint64_t *v)
{
	struct proto_tlv t;
	int r = find(f, tag, &t);

	if (r <= 0)
		return r;
	return proto_tlv_u64(&t, v) < 0 ? -1 : 1;
}

int proto_get_str(const struct proto_frame *f, uint16_t tag, const char **s)
{
	struct proto_tlv t;
	int r = find(f, tag, &t);

	if (r <= 0)
		return r;
	return proto_tlv_str(&t, s) < 0 ? -1 : 1;
}

int proto_get_bytes(const struct proto_frame *f, uint16_t tag, const uint8_t **p, size_t *n)
{
	struct proto_tlv t;
	int r = find(f, tag, &t);

	if (r <= 0)
		return r;
	*p = t.val;
	*n = t.len;
	return 1;
}

/* --- reading a stream --------------------------------------------------- */

void proto_in_init(struct proto_in *in)
{
	in->buf = xmalloc(PROTO_IN_CAP);
	in->start = in->end = 0;
}

void proto_in_release(struct proto_in *in)
{
	free(in->buf);
	in->buf = NULL;
	in->start = in->end = 0;
}

void proto_in_clear(struct proto_in *in)
{
	in->start = in->end = 0;
}

size_t proto_in_space(const struct proto_in *in)
{
	return PROTO_IN_CAP - (in->end - in->start);
}

bool proto_in_pending(const struct proto_in *in)
{
	return in->end > in->start;
}

bool proto_in_ready(const struct proto_in *in)
{
	struct proto_frame f;
	size_t avail = in->end - in->start;

	if (avail < PROTO_HDR_LEN)
		return false;
	if (proto_hdr_decode(in->buf + in->start, &f) < 0)
		return true;
	return avail - PROTO_HDR_LEN >= f.len;
}

/* Move unconsumed bytes to the front when the tail has no room for a read. */
static void compact(struct proto_in *in)
{
	if (in->start == 0)
		return;
	if (in->start == in->end) {
		in->start = in->end = 0;
		return;
	}
	if (PROTO_IN_CAP - in->end >= PROTO_CHUNK + PROTO_HDR_LEN)
		return;
	memmove(in->buf, in->buf + in->start, in->end - in->start);
	in->end -= in->start;
	in->start = 0;
}

ssize_t proto_in_read(struct proto_in *in, int fd)
{
	ssize_t n;

	compact(in);
	if (in->end == PROTO_IN_CAP) {
		if (in->start == 0) {
			errno = ENOBUFS;
			return -1;
		}
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->start = 0;
	}
	do {
		n = read(fd, in->buf + in->end, PROTO_IN_CAP - in->end);
	} while (n < 0 && errno == EINTR);
	if (n > 0)
		in->end += (size_t)n;
	return n;
}

size_t proto_in_feed(struct proto_in *in, const void *p, size_t n)
{
	if (in->start) {
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->start = 0;
	}
	if (n > PROTO_IN_CAP - in->end)
		n = PROTO_IN_CAP - in->end;
	memcpy(in->buf + in->end, p, n);
	in->end += n;
	return n;
}

int proto_in_next(struct proto_in *in, struct proto_frame *f)
{
	size_t avail = in->end - in->start;

	if (avail < PROTO_HDR_LEN)
		return 0;
	if (proto_hdr_decode(in->buf + in->start, f) < 0)
		return -1;
	if (avail - PROTO_HDR_LEN < f->len)
		return 0;
	f->payload = in->buf + in->start + PROTO_HDR_LEN;
	in->start += PROTO_HDR_LEN + f->len;
	return 1;
}

void proto_in_resync(struct proto_in *in)
{
	static const uint8_t magic[4] = { 'A', 'M', 'I', 'F' };

	if (in->start < in->end)
		in->start++;
	while (in->start < in->end) {
		size_t avail = in->end - in->start;
		size_t cmp = avail < sizeof(magic) ? avail : sizeof(magic);

		if (memcmp(in->buf + in->start, magic, cmp) == 0)
			return;
		in->start++;
	}
}

const char *proto_type_name(uint16_t type)
{
	static const char *const req[] = {
		[PROTO_T_SYNC] = "sync", [PROTO_T_INFO] = "info", [PROTO_T_EXEC] = "exec",
		[PROTO_T_STDIN] = "stdin", [PROTO_T_CANCEL] = "cancel", [PROTO_T_PING] = "ping",
		[PROTO_T_PUT] = "put", [PROTO_T_DATA] = "data", [PROTO_T_DATA_END] = "data-end",
		[PROTO_T_GET] = "get", [PROTO_T_STAT] = "stat", [PROTO_T_MKDIR] = "mkdir",
		[PROTO_T_REMOVE] = "remove", [PROTO_T_RENAME] = "rename", [PROTO_T_COPY] = "copy",
		[PROTO_T_CHMOD] = "chmod", [PROTO_T_CHOWN] = "chown",
		[PROTO_T_SYMLINK] = "symlink", [PROTO_T_LIST] = "list", [PROTO_T_HASH] = "hash",
		[PROTO_T_REBOOT] = "reboot", [PROTO_T_POWEROFF] = "poweroff",
		[PROTO_T_PUT_BULK] = "put-bulk", [PROTO_T_GET_BULK] = "get-bulk",
		[PROTO_T_FLUSH] = "flush", [PROTO_T_RESEED] = "reseed",
	};
	static const char *const rep[] = {
		"sync-reply", "ok", "error", "output", "exit", "pong", "entries",
	};

	if (type < ARRAY_SIZE(req) && req[type])
		return req[type];
	if (type >= PROTO_R_SYNC && type - PROTO_R_SYNC < (int)ARRAY_SIZE(rep))
		return rep[type - PROTO_R_SYNC];
	return "unknown";
}
