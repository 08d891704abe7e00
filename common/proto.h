/* proto.h: the wire format between the host (builder/guest/agent-client.c) and the
 * guest agent (guest-agent/). libc only: the static agent links it.
 *
 * A frame is a fixed 16-byte little-endian header and a payload:
 *
 *	offset 0  u32 magic    PROTO_MAGIC ("AMIF" on the wire)
 *	       4  u8  version  PROTO_FRAME_VERSION (the framing itself)
 *	       5  u8  flags    PROTO_F_*
 *	       6  u16 type     PROTO_T_* (host to guest) or PROTO_R_* (replies)
 *	       8  u32 id       request id; replies and data frames carry the
 *	                       id of the request they belong to
 *	      12  u32 len      payload bytes, at most PROTO_MAX_PAYLOAD
 *
 * Control payloads are TLVs: u16 tag, u32 length, value. Integers are
 * little-endian u32/u64 of exactly that length; strings carry their
 * terminating NUL (and no other), so a decoded string is used in place.
 * File data (PROTO_T_DATA, PROTO_T_STDIN, PROTO_R_OUTPUT) is the raw payload,
 * no encoding: a 64 MiB file costs 64 MiB plus 16 bytes per chunk.
 *
 * The conversation is strictly one request at a time; see
 * guest-agent/agent.c for each operation's exchange. The sync handshake
 * (PROTO_T_SYNC with a random nonce, echoed in PROTO_R_SYNC) also
 * negotiates the protocol version (PROTO_A_VER_MIN/MAX → PROTO_A_VERSION). */
#ifndef AMIFORGE_PROTO_H
#define AMIFORGE_PROTO_H

#include "compat.h"

#define PROTO_MAGIC 0x46494d41u       /* bytes 'A' 'M' 'I' 'F' */
#define PROTO_FRAME_VERSION 1
#define PROTO_HDR_LEN 16

/* Operation-level protocol versions this code speaks (negotiated in sync).
 * 2: T_EXEC takes A_SCRIPT. */
#define PROTO_VERSION_MIN 1
#define PROTO_VERSION_MAX 2
#define PROTO_VERSION_SCRIPT 2

/* File data travels in chunks of this size: big enough that the 16-byte
 * header and one write per chunk are noise, small enough that a cancel or a
 * sync is noticed within one chunk's transfer time. */
#define PROTO_CHUNK (256u * 1024)

/* The bulk data plane: a raw disk the host attaches to the guest beside
 * the channel (builder/guest/guest.c). Its first PROTO_BULK_HDR bytes hold
 * PROTO_BULK_MAGIC, 16 hex digits of the guest's random nonce and a
 * newline, so that the agent finds it among the guest's disks; file data
 * starts at PROTO_BULK_HDR, in PROTO_BULK_ALIGN units (O_DIRECT), and is
 * read and written by the agent in chunks of PROTO_BULK_CHUNK. The channel
 * carries only the request: path, offset, size, and the data's XXH64
 * (xxh64.h; PROTO_BULK_DIGEST_LEN bytes, big-endian, seed 0): a check that
 * no block was lost or misplaced on the way, at a cost the guest can pay
 * under emulation, where SHA-256 would take most of the transfer's time.
 * The guest is not trusted either way: it could lie about any digest. */
#define PROTO_BULK_MAGIC "AMIFORGE-BULK-1 "
#define PROTO_BULK_HDR 4096u
#define PROTO_BULK_ALIGN 4096u
#define PROTO_BULK_CHUNK (4u * 1024 * 1024)
#define PROTO_BULK_DIGEST_LEN 8u

/* The argv and env strings of one exec, bytes together: half of Linux's
 * default execve() limit (ARG_MAX = stack rlimit / 4 = 2 MiB), so whatever we
 * accept can actually be executed. An exec's script counts in it too. */
#define PROTO_EXEC_STRINGS_MAX (1024u * 1024)
/* argv plus env entries of one exec. */
#define PROTO_EXEC_ITEMS_MAX 8192u

/* Largest payload of any frame. The biggest message is an exec request:
 * PROTO_EXEC_STRINGS_MAX + 6 bytes of TLV header per item
 * (PROTO_EXEC_ITEMS_MAX × 6 = 48 KiB) + cwd and user (PATH_MAX each) + a few
 * integers < 1 MiB + 64 KiB; a data chunk (PROTO_CHUNK) is far below. Every
 * header is checked against this before anything is allocated or read. */
#define PROTO_MAX_PAYLOAD (1024u * 1024 + 64u * 1024)

/* Input buffer of a reader: one whole frame of the largest size fits, with
 * the rest of a read behind it. */
#define PROTO_IN_CAP (2u * (PROTO_HDR_LEN + PROTO_MAX_PAYLOAD))

/* Largest string attribute other than argv/env (paths, names, messages). */
#define PROTO_STR_MAX 4096u

/* Digests are at most SHA-512's 64 bytes. */
#define PROTO_DIGEST_MAX 64u
/* T_RESEED's bytes: at least the CRNG's 256-bit key, at most what a
 * request carries as a digest. */
#define PROTO_RESEED_MIN 32u
#define PROTO_RESEED_MAX PROTO_DIGEST_MAX

/* Frame flags. */
#define PROTO_F_EOF    0x01   /* PROTO_T_STDIN: no more stdin */
#define PROTO_F_STDERR 0x02   /* PROTO_R_OUTPUT: stderr (else stdout) */

/* Host → guest. */
enum proto_type {
	PROTO_T_SYNC = 1,      /* A_NONCE, A_VER_MIN, A_VER_MAX → R_SYNC */
	PROTO_T_INFO,          /* → R_OK with A_OS_ID... */
	PROTO_T_EXEC,          /* A_ARG+, A_ENV*, A_CWD, A_USER, A_TIMEOUT, A_STDIN, A_SCRIPT
				  → R_OK (started), R_OUTPUT*, R_EXIT. With A_SCRIPT (it
				  needs A_CWD): the agent writes it to a new file in A_CWD
				  (0700, a name it picks), appends that path to argv, and
				  removes the file when the command has exited */
	PROTO_T_STDIN,         /* raw data for the running exec; F_EOF on the last */
	PROTO_T_CANCEL,        /* kill the running exec's process group */
	PROTO_T_PING,          /* → R_PONG, also while an exec runs */
	PROTO_T_PUT,           /* A_PATH, A_MODE, A_UID, A_GID, A_MTIME, A_APPEND → R_OK,
				  then T_DATA*, T_DATA_END → R_OK (A_SIZE, A_DIGEST) */
	PROTO_T_DATA,          /* raw file data, either direction */
	PROTO_T_DATA_END,      /* A_SIZE, A_DIGEST (sha256 of all data), either direction */
	PROTO_T_GET,           /* A_PATH → R_OK (A_SIZE, A_MODE...), T_DATA*, T_DATA_END */
	PROTO_T_STAT,          /* A_PATH → R_OK (A_EXISTS, A_MODE, A_UID, ...) */
	PROTO_T_MKDIR,         /* A_PATH, A_MODE */
	PROTO_T_REMOVE,        /* A_PATH, A_RECURSIVE */
	PROTO_T_RENAME,        /* A_PATH, A_PATH2 */
	PROTO_T_COPY,          /* A_PATH, A_PATH2, A_RECURSIVE */
	PROTO_T_CHMOD,         /* A_PATH, A_MODE, A_RECURSIVE */
	PROTO_T_CHOWN,         /* A_PATH, A_OWNER, A_GROUP, A_RECURSIVE */
	PROTO_T_SYMLINK,       /* A_TARGET, A_PATH */
	PROTO_T_LIST,          /* A_PATH → R_ENTRIES*, R_OK */
	PROTO_T_HASH,          /* A_PATH, A_ALGO → R_OK (A_HEX) */
	PROTO_T_REBOOT,        /* → R_OK, then the guest reboots */
	PROTO_T_POWEROFF,      /* → R_OK, then the guest powers off */
	PROTO_T_PUT_BULK,      /* A_PATH, A_MODE, A_MTIME, A_NONCE, A_OFFSET, A_SIZE, A_DIGEST
				* (XXH64): the data is on the bulk disk → R_OK (A_SIZE,
				* A_DIGEST: XXH64 of what was written); R_ERROR ENODEV: no
				* such disk */
	PROTO_T_GET_BULK,      /* A_PATH, A_NONCE, A_OFFSET, A_SIZE (the most to write)
				* → R_OK (A_SIZE, A_MODE, A_DIGEST: XXH64) once the file is on
				* the bulk disk; R_ERROR ENODEV: no such disk, EFBIG */
	PROTO_T_FLUSH,         /* → R_OK once the guest's file systems are written back
				* (sync(2)): what a disk snapshot then freezes is whole */
	PROTO_T_RESEED,        /* A_DIGEST: PROTO_RESEED_MIN..MAX random bytes from the
				* host → R_OK once the kernel mixed them in, credited,
				* and reseeded its CRNG (RNDADDENTROPY, RNDRESEEDCRNG);
				* A_STATUS 0, or the reseed's errno where the kernel has
				* no RNDRESEEDCRNG (the bytes are mixed in still) */
	PROTO_T_LAST_REQUEST = PROTO_T_RESEED,
};

/* Guest → host. */
enum proto_reply {
	PROTO_R_SYNC = 0x81,   /* A_NONCE, A_VERSION, A_BOOT_ID, A_INSTANCE */
	PROTO_R_OK,            /* attributes depend on the request */
	PROTO_R_ERROR,         /* A_ERRNO, A_MSG */
	PROTO_R_OUTPUT,        /* raw output of the running exec (F_STDERR) */
	PROTO_R_EXIT,          /* A_STATUS, A_SIGNALED, A_TIMED_OUT */
	PROTO_R_PONG,
	PROTO_R_ENTRIES,       /* (A_NAME, A_MODE)* */
};

/* Attribute tags. */
enum proto_attr {
	PROTO_A_NONCE = 1,     /* u64 */
	PROTO_A_VER_MIN,       /* u32 */
	PROTO_A_VER_MAX,       /* u32 */
	PROTO_A_VERSION,       /* u32 */
	PROTO_A_BOOT_ID,       /* str: /proc/sys/kernel/random/boot_id */
	PROTO_A_INSTANCE,      /* u64: random per agent process */
	PROTO_A_ARG,           /* str, repeated */
	PROTO_A_ENV,           /* str "K=V", repeated */
	PROTO_A_CWD,           /* str */
	PROTO_A_USER,          /* str: name or numeric uid */
	PROTO_A_TIMEOUT,       /* u64 milliseconds, 0 = none */
	PROTO_A_STDIN,         /* u32 bool: T_STDIN frames follow */
	PROTO_A_PATH,          /* str */
	PROTO_A_PATH2,         /* str */
	PROTO_A_MODE,          /* u32 */
	PROTO_A_UID,           /* u32 */
	PROTO_A_GID,           /* u32 */
	PROTO_A_MTIME,         /* u64 (int64 seconds) */
	PROTO_A_SIZE,          /* u64 */
	PROTO_A_DIGEST,        /* bytes */
	PROTO_A_RECURSIVE,     /* u32 bool */
	PROTO_A_APPEND,        /* u32 bool */
	PROTO_A_OWNER,         /* str */
	PROTO_A_GROUP,         /* str */
	PROTO_A_TARGET,        /* str */
	PROTO_A_NAME,          /* str */
	PROTO_A_ALGO,          /* str */
	PROTO_A_HEX,           /* str */
	PROTO_A_ERRNO,         /* u32 */
	PROTO_A_MSG,           /* str */
	PROTO_A_STATUS,        /* u32 */
	PROTO_A_SIGNALED,      /* u32 bool */
	PROTO_A_TIMED_OUT,     /* u32 bool */
	PROTO_A_EXISTS,        /* u32 bool */
	PROTO_A_OS_ID,         /* str */
	PROTO_A_OS_VERSION,    /* str */
	PROTO_A_PRETTY,        /* str */
	PROTO_A_KERNEL,        /* str */
	PROTO_A_ARCH,          /* str */
	PROTO_A_UPTIME_MS,     /* u64 */
	PROTO_A_LINK,          /* str: symlink target */
	PROTO_A_OFFSET,        /* u64: byte offset on the bulk disk */
	PROTO_A_SCRIPT,        /* bytes: T_EXEC's script (see there) */
};

/* A decoded frame. payload points into the reader's buffer and stays valid
 * until the next proto_in_read()/proto_in_feed() on that reader. */
struct proto_frame {
	uint16_t type;
	uint8_t flags;
	uint32_t id;
	uint32_t len;
	const uint8_t *payload;
};

/* Encode a header into out. */
void proto_hdr_encode(uint8_t out[PROTO_HDR_LEN], uint16_t type, uint8_t flags,
		      uint32_t id, uint32_t len);

/* Decode and check a header (magic, version, len <= PROTO_MAX_PAYLOAD).
 * 0, or -1 with the error recorded. */
int proto_hdr_decode(const uint8_t in[PROTO_HDR_LEN], struct proto_frame *f);

/* --- Building a frame ---------------------------------------------------
 * Errors are sticky: a message that would exceed PROTO_MAX_PAYLOAD (or a
 * string longer than its limit) sets ->failed and later appends are no-ops,
 * so callers check once, in proto_msg_finish(). */
struct proto_msg {
	uint8_t *data;   /* header + payload; owned */
	size_t len;
	size_t cap;
	bool failed;
};

/* Start a frame; the header is filled in by proto_msg_finish(). */
void proto_msg_init(struct proto_msg *m, uint16_t type, uint8_t flags, uint32_t id);
void proto_msg_release(struct proto_msg *m);
void proto_msg_u32(struct proto_msg *m, uint16_t tag, uint32_t v);
void proto_msg_u64(struct proto_msg *m, uint16_t tag, uint64_t v);
void proto_msg_bytes(struct proto_msg *m, uint16_t tag, const void *p, size_t n);
/* A string with its NUL; strings with more than max bytes fail the message. */
void proto_msg_str(struct proto_msg *m, uint16_t tag, const char *s, size_t max);
/* Fill in the header. 0, or -1 with an error recorded when the message
 * overflowed. m->data/m->len are then the bytes to write. */
int proto_msg_finish(struct proto_msg *m);

/* --- Reading attributes of a decoded frame ------------------------------ */
struct proto_tlv {
	uint16_t tag;
	uint32_t len;
	const uint8_t *val;
};

/* Walk the TLVs of a payload: *off starts at 0. 1 with *t filled, 0 at the
 * end, -1 (error recorded) when a TLV runs past the payload. */
int proto_tlv_next(const struct proto_frame *f, size_t *off, struct proto_tlv *t);

/* Check that the whole payload is well-formed TLVs. 0 or -1. */
int proto_tlv_check(const struct proto_frame *f);

/* Value of a TLV as an integer / a string. 0, or -1 (error recorded) when the
 * length is wrong or the string is not exactly NUL-terminated. */
int proto_tlv_u32(const struct proto_tlv *t, uint32_t *v);
int proto_tlv_u64(const struct proto_tlv *t, uint64_t *v);
int proto_tlv_str(const struct proto_tlv *t, const char **s);

/* The first attribute with tag in f: 1 found (value stored), 0 absent
 * (value untouched), -1 malformed (error recorded). */
int proto_get_u32(const struct proto_frame *f, uint16_t tag, uint32_t *v);
int proto_get_u64(const struct proto_frame *f, uint16_t tag, uint64_t *v);
int proto_get_str(const struct proto_frame *f, uint16_t tag, const char **s);
int proto_get_bytes(const struct proto_frame *f, uint16_t tag, const uint8_t **p,
		    size_t *n);

/* --- Reading frames from a byte stream ---------------------------------- */
struct proto_in {
	uint8_t *buf;    /* PROTO_IN_CAP bytes, owned */
	size_t start;    /* first unconsumed byte */
	size_t end;      /* one past the last byte read */
};

void proto_in_init(struct proto_in *in);
void proto_in_release(struct proto_in *in);
/* Forget everything buffered. */
void proto_in_clear(struct proto_in *in);
/* True when proto_in_next() would return a frame or an error now. */
bool proto_in_ready(const struct proto_in *in);
/* Bytes that still fit (after compaction). */
size_t proto_in_space(const struct proto_in *in);
/* True when bytes are buffered. */
bool proto_in_pending(const struct proto_in *in);

/* One read(2) into the buffer: bytes read, 0 at end of file, -1 with errno
 * set (EAGAIN included; no error recorded). With no space left, returns -1
 * with errno ENOBUFS. Invalidates frames returned earlier. */
ssize_t proto_in_read(struct proto_in *in, int fd);

/* Append bytes (tests, fuzzing): returns how many fit. Invalidates frames
 * returned earlier. */
size_t proto_in_feed(struct proto_in *in, const void *p, size_t n);

/* The next complete frame: 1 (f filled, consumed from the buffer), 0 (need
 * more bytes), -1 (bad header, error recorded; the bad bytes stay buffered:
 * call proto_in_resync() to skip them, or give up). */
int proto_in_next(struct proto_in *in, struct proto_frame *f);

/* Drop at least one byte and everything up to the next possible magic. */
void proto_in_resync(struct proto_in *in);

/* Human name of a frame type, for messages. */
const char *proto_type_name(uint16_t type);

#endif
