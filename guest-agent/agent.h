/* agent.h: internals of the guest agent shared between its files.
 *
 * The agent serves one host at a time over one byte stream (virtio-serial
 * port, unix socket connection, or stdin/stdout). Requests are handled one
 * after the other; while a request streams (exec, put, get) a new request or a
 * sync from the host aborts it and is handled next. */
#ifndef AMIFORGE_AGENT_H
#define AMIFORGE_AGENT_H

#include "compat.h"
#include "proto.h"

struct conn {
	int rfd, wfd;
	struct proto_in in;
	bool dead;                  /* host went away: stop, wait for the next one */
	bool have_pending;          /* a frame that interrupted an operation */
	struct proto_frame pending;
};

struct agent_opts {
	bool fake_power;            /* tests: reboot/poweroff only simulate */
	unsigned fake_boots;        /* simulated reboots so far */
	bool fake_reboot_now;       /* set by the reboot op in fake mode */
	bool exit_now;              /* set by poweroff in fake mode */
	uint64_t instance;          /* random, per agent process */
};

extern struct agent_opts agent_opts;

/* Send one frame (header + payload). 0, or -1 when the host is gone
 * (c->dead set). Blocks until written: the host always drains. */
int conn_send(struct conn *c, uint16_t type, uint8_t flags, uint32_t id,
	      const void *payload, size_t len);
/* Send a built message (proto_msg_finish() is called here). */
int conn_send_msg(struct conn *c, struct proto_msg *m);
/* An R_ERROR for request id with the recorded error message. */
int conn_send_error(struct conn *c, uint32_t id, int errnum);

/* The next frame: 1 (f filled; payload valid until the next call), 0 when
 * timeout_ms passed (-1 waits forever, 0 only looks), -1 when the host is
 * gone. Bad bytes are skipped. */
int conn_recv(struct conn *c, struct proto_frame *f, int timeout_ms);

/* Keep a frame that interrupted an operation for the main loop. The payload
 * stays valid because nothing reads until it is handled. */
void conn_push_back(struct conn *c, const struct proto_frame *f);

/* Required string attribute: an absolute path of at most PATH_MAX bytes.
 * 0 or -1 with an error recorded. */
int need_path(const struct proto_frame *f, uint16_t tag, const char **path);

/* Operations. Each returns 0 (fill `ok`, the R_OK payload, for the caller to
 * send), -1 (error recorded; the caller sends R_ERROR), or 1 (the operation
 * replied itself, or the host went away). */
int op_exec(struct conn *c, const struct proto_frame *f);
/* Stop the shell exec started ahead of the next script, if any (before a
 * power-off, at exit). */
void exec_warm_stop(void);
/* What op_exec does with a request before it spawns anything: parse it,
 * look the user up, build the environment (fuzzing). 0 or -1 (recorded). */
int exec_check_request(const struct proto_frame *f);
int op_put(struct conn *c, const struct proto_frame *f, struct proto_msg *ok);
/* put's steps, shared by op_put and op_put_bulk: the temporary file beside
 * path (".NAME.amiforge-XXXXXX"; its fd, *tmp owned; -1 recorded), its
 * mtime, and the commit: close *fd, rename *tmp over path (none when *tmp is
 * NULL: an append), size and digest into ok. -1 recorded; *fd is -1 after
 * put_commit, *tmp NULL once renamed (else the caller unlinks it). */
int put_tmp_create(const char *path, char **tmp);
int put_set_mtime(int fd, const char *path, uint64_t mtime);
int put_commit(int *fd, char **tmp, const char *path, uint64_t size, const uint8_t *digest,
	       size_t dlen, struct proto_msg *ok);
int op_get(struct conn *c, const struct proto_frame *f);
int op_stat(struct conn *c, const struct proto_frame *f, struct proto_msg *ok);
int op_mkdir(struct conn *c, const struct proto_frame *f, struct proto_msg *ok);
int op_remove(struct conn *c, const struct proto_frame *f, struct proto_msg *ok);
int op_rename(struct conn *c, const struct proto_frame *f, struct proto_msg *ok);
int op_copy(struct conn *c, const struct proto_frame *f, struct proto_msg *ok);
int op_chmod(struct conn *c, const struct proto_frame *f, struct proto_msg *ok);
int op_chown(struct conn *c, const struct proto_frame *f, struct proto_msg *ok);
int op_symlink(struct conn *c, const struct proto_frame *f, struct proto_msg *ok);
int op_list(struct conn *c, const struct proto_frame *f);
int op_hash(struct conn *c, const struct proto_frame *f, struct proto_msg *ok);
/* bulk.c: file data through the bulk disk (proto.h PROTO_BULK_*). */
int op_put_bulk(const struct proto_frame *f, struct proto_msg *ok);
int op_get_bulk(const struct proto_frame *f, struct proto_msg *ok);

/* Users and groups from /etc/passwd and /etc/group (fgetpwent/fgetgrent:
 * no NSS, which a static binary cannot load). A name or a decimal id.
 * 0 or -1 with an error recorded. */
struct agent_user {
	uid_t uid;
	gid_t gid;
	char *name;
	char *home;
	char *shell;
	gid_t *groups;     /* supplementary groups, for setgroups() */
	size_t ngroups;
};
int user_lookup(const char *spec, struct agent_user *u);
void user_release(struct agent_user *u);
int group_lookup(const char *spec, gid_t *gid);

/* Hashes (hash.c): algo is "md5", "sha1", "sha256" or "sha512". */
struct agent_hash {
	int algo;
	union {
		uint8_t opaque[256] __attribute__((aligned(16)));
	} u;
};
int hash_init(struct agent_hash *h, const char *algo);
void hash_update(struct agent_hash *h, const void *p, size_t n);
/* Digest into out (PROTO_DIGEST_MAX bytes); returns its length. */
size_t hash_final(struct agent_hash *h, uint8_t *out);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *p, size_t n, char *out);

#endif
