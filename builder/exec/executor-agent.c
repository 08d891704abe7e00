/* executor-agent.c: struct executor_ops on top of the guest agent
 * (agent-client.h). Each operation is one request; the exchanges are
 * described in guest-agent/exec.c and guest-agent/files.c. Everything the
 * agent sends back is checked: sizes against what was announced, digests
 * against our own, text sanitized before it reaches a message. */
#include <openssl/evp.h>

#include "builder/guest/agent-client.h"
#include "builder/guest/guest.h"
#include "error.h"
#include "log.h"
#include "util.h"
#include "xxh64.h"

/* Largest content accepted from a file whose size reads as 0 (procfs,
 * sysfs: /proc/cpuinfo of a 64-CPU guest is ~100 KiB; 1 MiB is ample). */
#define GET_UNSIZED_MAX (1024 * 1024)

/* The agent enforces an exec's deadline itself (SIGTERM, SIGKILL 2 s later,
 * then 1 s to drain output): the host waits this much longer before it
 * cancels and gives up on the agent. */
#define EXEC_GRACE_MS 10000
/* While a command runs silently, ping the agent this often; a reply within
 * the session timeout proves it alive (commands may run for hours). */
#define EXEC_PING_MS 10000
/* Entries of one directory listing we accept (a build's largest directories
 * hold a few thousand; a hostile guest could send millions). */
#define LIST_ENTRIES_MAX 200000u

/* Files at least this big go through the bulk disk when there is one;
 * smaller ones through the channel (one round trip either way). */
#define BULK_MIN (1024u * 1024)
/* A bulk transfer's reply comes once the agent has read or written the whole
 * file: the deadline is the session timeout plus this per MiB (1 MiB/s, far
 * below what even an emulated guest's disk does). */
#define BULK_MS_PER_MIB 1000

struct agent_exec_priv {
	struct agent *a;
	int bulk_fd;           /* the bulk disk's file on the host, or -1 */
	uint64_t bulk_nonce;
	uint64_t bulk_cap;     /* bytes of file data it holds (after the header) */
	size_t bulk_done;      /* transfers that went through it */
};

static struct agent *A(struct executor *ex)
{
	return ((struct agent_exec_priv *)ex->priv)->a;
}

/* Send a request built in m (its id set), wait for R_OK. 0 or -1. */
static int simple_request(struct agent *a, struct proto_msg *m, uint32_t id,
			  struct proto_frame *reply)
{
	struct proto_frame f;
	int r = agent_send_msg(a, m);

	proto_msg_release(m);
	if (r < 0)
		return -1;
	return agent_expect_ok(a, id, reply ? reply : &f, agent_get_timeout(a)) < 0 ? -1 : 0;
}

static bool abs_path(const char *p)
{
	return p && p[0] == '/' && strlen(p) < PATH_MAX;
}

/* --- exec ----------------------------------------------------------------- */

static void capture(struct buf *b, size_t max, const uint8_t *p, size_t n)
{
	size_t room = b->len < max ? max - b->len : 0;

	if (n > room)
		n = room;
	if (n)
		buf_add(b, p, n);
}

/* Handle one frame of a running exec: 1 finished (R_EXIT), 0 continue,
 * -1 error. */
static int exec_frame(struct agent *a, const struct proto_frame *f,
		      const struct exec_req *req, struct exec_result *res)
{
	uint32_t status = 0, b = 0;

	switch (f->type) {
	case PROTO_R_OUTPUT: {
		int stream = (f->flags & PROTO_F_STDERR) ? 2 : 1;

		capture(stream == 1 ? &res->out : &res->err, req->capture_max, f->payload, f->len);
		if (req->on_output && f->len)
			req->on_output(stream, (const char *)f->payload, f->len, req->opaque);
		return 0;
	}
	case PROTO_R_PONG:
		return 0;
	case PROTO_R_EXIT:
		if (proto_get_u32(f, PROTO_A_STATUS, &status) != 1 || status > 255 + 128)
			return agent_protocol_error(a, "exit frame without a valid status");
		res->status = (int)status;
		if (proto_get_u32(f, PROTO_A_TIMED_OUT, &b) == 1)
			res->timed_out = b != 0;
		return 1;
	case PROTO_R_ERROR:
		return agent_error_frame(f);
	default:
		return agent_protocol_error(a, "unexpected %s frame during exec",
					    proto_type_name(f->type));
	}
}

/* Wait for a frame until the absolute deadline: 1 frame, 0 nothing by then
 * (no error), -1 error. */
static int recv_until(struct agent *a, uint32_t id, struct proto_frame *f, int64_t deadline)
{
	int r;

	for (;;) {
		int64_t left = deadline - now_ms();

		r = agent_recv_now(a, id, f);
		if (r != 0 || left <= 0)
			return r;
		if (agent_wait_readable(a, left) < 0)
			return -1;
	}
}

/* Largest script sent in the exec request itself (the rest of
 * PROTO_EXEC_STRINGS_MAX is for argv and the environment). */
#define EXEC_SCRIPT_INLINE_MAX (PROTO_EXEC_STRINGS_MAX / 2)

static int exec_build(struct proto_msg *m, const struct exec_req *req)
{
	size_t bytes = 0, items = 0;

	if (!req->argv || !req->argv[0] || !req->argv[0][0])
		return err_set("exec: empty argv");
	for (size_t i = 0; req->argv[i]; i++, items++) {
		bytes += strlen(req->argv[i]) + 1;
		proto_msg_str(m, PROTO_A_ARG, req->argv[i], PROTO_EXEC_STRINGS_MAX);
	}
	for (size_t i = 0; req->env && req->env[i]; i++, items++) {
		if (!strchr(req->env[i], '='))
			return err_set("exec: environment entry '%s' has no '='", req->env[i]);
		bytes += strlen(req->env[i]) + 1;
		proto_msg_str(m, PROTO_A_ENV, req->env[i], PROTO_EXEC_STRINGS_MAX);
	}
	if (req->script) {
		bytes += req->script_len;
		proto_msg_bytes(m, PROTO_A_SCRIPT, req->script, req->script_len);
	}
	if (bytes > PROTO_EXEC_STRINGS_MAX || items > PROTO_EXEC_ITEMS_MAX)
		return err_set("exec '%s': argv, environment and script exceed %u bytes or %u "
			       "entries", req->argv[0], PROTO_EXEC_STRINGS_MAX,
			       PROTO_EXEC_ITEMS_MAX);
	if (req->cwd)
		proto_msg_str(m, PROTO_A_CWD, req->cwd, PATH_MAX);
	if (req->user)
		proto_msg_str(m, PROTO_A_USER, req->user, PROTO_STR_MAX);
	if (req->timeout_ms > 0)
		proto_msg_u64(m, PROTO_A_TIMEOUT, (uint64_t)req->timeout_ms);
	proto_msg_u32(m, PROTO_A_STDIN, req->stdin_len > 0);
	return proto_msg_finish(m);
}

static int ex_exec(struct executor *ex, const struct exec_req *req, struct exec_result *res)
{
	struct agent *a = A(ex);
	struct proto_msg m;
	struct proto_frame f;
	int64_t timeout = agent_get_timeout(a);
	int64_t host_deadline = 0, last_frame, pinged_at;
	bool cancelled = false;
	uint32_t id;
	int r;

	/* a script goes with the request (the agent may have its shell
	 * started already); a large one is written first */
	if (req->script && (req->script_len > EXEC_SCRIPT_INLINE_MAX ||
			    agent_version(a) < PROTO_VERSION_SCRIPT))
		return exec_script_by_file(ex, req, res);
	memset(res, 0, sizeof(*res));
	buf_init(&res->out, req->capture_max ? req->capture_max : 1);
	buf_init(&res->err, req->capture_max ? req->capture_max : 1);
	res->status = -1;
	id = agent_begin(a);
	if (!id)
		return -1;
	proto_msg_init(&m, PROTO_T_EXEC, 0, id);
	if (exec_build(&m, req) < 0) {
		proto_msg_release(&m);
		return -1;
	}
	if (simple_request(a, &m, id, NULL) < 0)
		return -1;
	/* Stdin, chunk by chunk, handling output that arrives meanwhile. */
	for (size_t off = 0; off < req->stdin_len; ) {
		size_t n = req->stdin_len - off < PROTO_CHUNK ? req->stdin_len - off : PROTO_CHUNK;

		if (agent_send_data(a, PROTO_T_STDIN, off + n == req->stdin_len ? PROTO_F_EOF : 0,
				    id, (const char *)req->stdin_data + off, n) < 0)
			return err_prefix("exec '%s': stdin", req->argv[0]);
		off += n;
		while ((r = agent_recv_now(a, id, &f)) == 1) {
			r = exec_frame(a, &f, req, res);
			if (r < 0)
				return err_prefix("exec '%s'", req->argv[0]);
			if (r == 1)
				return 0;
		}
		if (r < 0)
			return err_prefix("exec '%s'", req->argv[0]);
	}
	if (req->timeout_ms > 0)
		host_deadline = now_ms() + req->timeout_ms + EXEC_GRACE_MS;
	last_frame = now_ms();
	pinged_at = 0;
	for (;;) {
		int64_t now = now_ms(), next;

		if (host_deadline && now >= host_deadline) {
			if (cancelled) {
				agent_desync(a);
				return err_set("exec '%s': the agent did not stop the command after "
					       "its %" PRId64 " ms timeout", req->argv[0], req->timeout_ms);
			}
			/* The agent missed the deadline: cancel, wait a little more. */
			if (agent_send_data(a, PROTO_T_CANCEL, 0, id, NULL, 0) < 0)
				return err_prefix("exec '%s'", req->argv[0]);
			cancelled = true;
			host_deadline = now + EXEC_GRACE_MS;
		}
		if (pinged_at && now >= pinged_at + timeout) {
			agent_desync(a);
			return err_set("exec '%s': the agent stopped responding (no answer to a "
				       "ping within %" PRId64 " ms)", req->argv[0], timeout);
		}
		if (!pinged_at && now >= last_frame + EXEC_PING_MS) {
			if (agent_send_data(a, PROTO_T_PING, 0, id, NULL, 0) < 0)
				return err_prefix("exec '%s'", req->argv[0]);
			pinged_at = now;
		}
		next = pinged_at ? pinged_at + timeout : last_frame + EXEC_PING_MS;
		if (host_deadline && host_deadline < next)
			next = host_deadline;
		r = recv_until(a, id, &f, next);
		if (r < 0)
			return err_prefix("exec '%s'", req->argv[0]);
		if (r == 0)
			continue;
		last_frame = now_ms();
		pinged_at = 0;
		r = exec_frame(a, &f, req, res);
		if (r < 0)
			return err_prefix("exec '%s'", req->argv[0]);
		if (r == 1)
			return 0;
	}
}

/* --- put ------------------------------------------------------------------ */

struct put_src {
	int fd;                 /* read from fd, or */
	const uint8_t *data;    /* from memory */
	size_t len;
};

static int put_stream(struct agent *a, const char *path, const struct put_src *src,
		      mode_t mode, bool append, bool have_mtime, int64_t mtime)
{
	struct proto_msg m;
	struct proto_frame f;
	uint8_t digest[EVP_MAX_MD_SIZE], *chunk = NULL;
	unsigned dlen = 0;
	const uint8_t *their;
	size_t their_len, off = 0;
	uint64_t size = 0, their_size = 0;
	EVP_MD_CTX *md = NULL;
	uint32_t id;
	int ret = -1;

	if (!abs_path(path))
		return err_set("put: path '%s' is not absolute", path ? path : "");
	id = agent_begin(a);
	if (!id)
		return -1;
	proto_msg_init(&m, PROTO_T_PUT, 0, id);
	proto_msg_str(&m, PROTO_A_PATH, path, PATH_MAX);
	proto_msg_u32(&m, PROTO_A_MODE, mode & 07777);
	if (append)
		proto_msg_u32(&m, PROTO_A_APPEND, 1);
	if (have_mtime)
		proto_msg_u64(&m, PROTO_A_MTIME, (uint64_t)mtime);
	if (simple_request(a, &m, id, NULL) < 0)
		return -1;
	md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		err_set("put '%s': sha256 init failed", path);
		agent_desync(a);
		goto cleanup;
	}
	if (src->fd >= 0)
		chunk = xmalloc(PROTO_CHUNK);
	for (;;) {
		const uint8_t *p;
		size_t n;
		int r;

		if (src->fd >= 0) {
			ssize_t got = read_all(src->fd, chunk, PROTO_CHUNK);

			if (got < 0) {
				err_errno("read");
				agent_desync(a);
				goto cleanup;
			}
			p = chunk;
			n = (size_t)got;
		} else {
			p = src->data + off;
			n = src->len - off < PROTO_CHUNK ? src->len - off : PROTO_CHUNK;
			off += n;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, p, n);
		size += n;
		if (agent_send_data(a, PROTO_T_DATA, 0, id, p, n) < 0)
			goto cleanup;
		/* The agent says nothing until the end; anything now is wrong. */
		r = agent_recv_now(a, id, &f);
		if (r < 0)
			goto cleanup;
		if (r == 1) {
			if (f.type == PROTO_R_ERROR)
				agent_error_frame(&f);
			else
				agent_protocol_error(a, "unexpected %s frame during put",
						     proto_type_name(f.type));
			agent_desync(a);
			goto cleanup;
		}
		if (src->fd >= 0 && n < PROTO_CHUNK)
			break;
	}
	EVP_DigestFinal_ex(md, digest, &dlen);
	proto_msg_init(&m, PROTO_T_DATA_END, 0, id);
	proto_msg_u64(&m, PROTO_A_SIZE, size);
	proto_msg_bytes(&m, PROTO_A_DIGEST, digest, dlen);
	if (simple_request(a, &m, id, &f) < 0)
		goto cleanup;
	/* Verified the other way too: the agent's digest of what it wrote. */
	if (proto_get_u64(&f, PROTO_A_SIZE, &their_size) != 1 || their_size != size ||
	    proto_get_bytes(&f, PROTO_A_DIGEST, &their, &their_len) != 1 ||
	    their_len != dlen || memcmp(their, digest, dlen) != 0) {
		err_set("agent: wrote a different size or sha256 than sent");
		goto cleanup;
	}
	ret = 0;
cleanup:
	EVP_MD_CTX_free(md);
	free(chunk);
	if (ret < 0)
		err_prefix("put '%s'", path);
	return ret;
}

/* --- the bulk disk (proto.h PROTO_BULK_*) ---------------------------------- */

static struct agent_exec_priv *P(struct executor *ex)
{
	return ex->priv;
}

static int64_t bulk_timeout(struct agent *a, uint64_t size)
{
	return agent_get_timeout(a) + (int64_t)(size / (1024 * 1024) + 1) * BULK_MS_PER_MIB;
}

/* The reply to a bulk request: 1 (R_OK in *f), 0 when the agent has no bulk
 * disk (ENODEV) or does not know the request (an older agent: errno 0), so
 * the caller uses the channel; -1 otherwise (error recorded). */
static int bulk_reply(struct agent *a, uint32_t id, uint64_t size, struct proto_frame *f)
{
	uint32_t e = 0;

	if (agent_recv(a, id, f, bulk_timeout(a, size)) < 0)
		return -1;
	if (f->type == PROTO_R_OK)
		return 1;
	if (f->type != PROTO_R_ERROR)
		return agent_protocol_error(a, "unexpected %s frame, expected a reply",
					    proto_type_name(f->type));
	proto_get_u32(f, PROTO_A_ERRNO, &e);
	if (e == 0 || e == ENODEV) {
		agent_error_frame(f);
		log_warn("bulk data disk not usable (%s): files go through the agent channel",
			 err_msg());
		err_clear();
		return 0;
	}
	return agent_error_frame(f);
}

/* Does a file of size bytes go through the bulk disk? */
static bool bulk_for(const struct agent_exec_priv *p, uint64_t size)
{
	return p->bulk_fd >= 0 && size >= BULK_MIN && size <= p->bulk_cap;
}

/* No bulk disk from now on (the agent has none). */
static void bulk_off(struct agent_exec_priv *p)
{
	if (p->bulk_fd >= 0)
		close(p->bulk_fd);
	p->bulk_fd = -1;
}

static int pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
	const uint8_t *q = buf;

	while (n) {
		ssize_t w = pwrite(fd, q, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		q += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* The bulk disk's bytes are scratch: give them back to the host. */
static void bulk_release(struct agent_exec_priv *p, uint64_t size)
{
	uint64_t len = (size + PROTO_BULK_ALIGN - 1) / PROTO_BULK_ALIGN * PROTO_BULK_ALIGN;

	if (len && fallocate(p->bulk_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			     PROTO_BULK_HDR, (off_t)len) < 0)
		log_debug("bulk disk: punch hole: %s", strerror(errno));
}

/* Put the open host file fd (size bytes) to path through the bulk disk. 1
 * done, 0 not possible (use the channel), -1 error recorded. */
static int bulk_put(struct agent_exec_priv *p, int fd, uint64_t size, const char *path,
		    mode_t mode, int64_t mtime)
{
	struct agent *a = p->a;
	uint8_t digest[PROTO_BULK_DIGEST_LEN], *chunk = xmalloc_nofork(PROTO_BULK_CHUNK);
	const uint8_t *their;
	size_t their_len;
	uint64_t done = 0, their_size = 0;
	struct xxh64 h;
	struct proto_msg m;
	struct proto_frame f;
	uint32_t id;
	int ret = -1, r;

	xxh64_init(&h, 0);
	while (done < size) {
		ssize_t n = read_all(fd, chunk, PROTO_BULK_CHUNK);

		if (n < 0) {
			err_errno("read");
			goto cleanup;
		}
		if (n == 0 || (uint64_t)n > size - done) {
			err_set("the file changed size while it was read");
			goto cleanup;
		}
		xxh64_update(&h, chunk, (size_t)n);
		if (pwrite_all(p->bulk_fd, chunk, (size_t)n, (off_t)(PROTO_BULK_HDR + done)) < 0) {
			err_errno("write the bulk disk");
			goto cleanup;
		}
		done += (uint64_t)n;
	}
	xxh64_bytes(xxh64_final(&h), digest);
	id = agent_begin(a);
	if (!id)
		goto cleanup;
	proto_msg_init(&m, PROTO_T_PUT_BULK, 0, id);
	proto_msg_str(&m, PROTO_A_PATH, path, PATH_MAX);
	proto_msg_u32(&m, PROTO_A_MODE, mode & 07777);
	proto_msg_u64(&m, PROTO_A_MTIME, (uint64_t)mtime);
	proto_msg_u64(&m, PROTO_A_NONCE, p->bulk_nonce);
	proto_msg_u64(&m, PROTO_A_OFFSET, PROTO_BULK_HDR);
	proto_msg_u64(&m, PROTO_A_SIZE, size);
	proto_msg_bytes(&m, PROTO_A_DIGEST, digest, sizeof(digest));
	r = agent_send_msg(a, &m);
	proto_msg_release(&m);
	if (r < 0 || (r = bulk_reply(a, id, size, &f)) < 0)
		goto cleanup;
	if (r == 0) {
		ret = 0;
		goto cleanup;
	}
	if (proto_get_u64(&f, PROTO_A_SIZE, &their_size) != 1 || their_size != size ||
	    proto_get_bytes(&f, PROTO_A_DIGEST, &their, &their_len) != 1 ||
	    their_len != sizeof(digest) || memcmp(their, digest, sizeof(digest)) != 0) {
		err_set("agent: wrote a different size or XXH64 than sent");
		goto cleanup;
	}
	log_debug("put '%s': %" PRIu64 " bytes through the bulk disk", path, size);
	p->bulk_done++;
	ret = 1;
cleanup:
	bulk_release(p, done);
	xfree_nofork(chunk, PROTO_BULK_CHUNK);
	return ret;
}

static int ex_put_file(struct executor *ex, const char *host_path, const char *path, mode_t mode)
{
	struct put_src src = { .fd = open(host_path, O_RDONLY | O_CLOEXEC) };
	struct stat st;
	int r;

	if (src.fd < 0)
		return err_errno("open '%s'", host_path);
	if (fstat(src.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(src.fd);
		return err_set("put '%s': not a regular file", host_path);
	}
	r = 0;
	if (bulk_for(P(ex), (uint64_t)st.st_size) && abs_path(path)) {
		r = bulk_put(P(ex), src.fd, (uint64_t)st.st_size, path, mode, st.st_mtim.tv_sec);
		if (r < 0)
			err_prefix("put '%s'", path);
		else if (r == 0 && (bulk_off(P(ex)), lseek(src.fd, 0, SEEK_SET) < 0))
			r = err_errno("seek '%s'", host_path);
	}
	if (r == 0)
		r = put_stream(A(ex), path, &src, mode, false, true, st.st_mtim.tv_sec);
	else if (r == 1)
		r = 0;
	close(src.fd);
	return r;
}

static int ex_write_file(struct executor *ex, const char *path, const void *data, size_t len,
			 mode_t mode, bool append)
{
	struct put_src src = { .fd = -1, .data = data, .len = len };

	return put_stream(A(ex), path, &src, mode, append, false, 0);
}

/* --- get ------------------------------------------------------------------ */

/* Receive a get stream into fd or (fd < 0) into out, at most max bytes. */
static int get_stream(struct agent *a, const char *path, int fd, struct buf *out, uint64_t max,
		      uint32_t *mode)
{
	struct proto_msg m;
	struct proto_frame f;
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	const uint8_t *their;
	size_t their_len;
	uint64_t announced = 0, size = 0, their_size = 0, limit;
	EVP_MD_CTX *md = NULL;
	uint32_t id;
	int ret = -1;

	if (!abs_path(path))
		return err_set("get: path '%s' is not absolute", path ? path : "");
	id = agent_begin(a);
	if (!id)
		return -1;
	proto_msg_init(&m, PROTO_T_GET, 0, id);
	proto_msg_str(&m, PROTO_A_PATH, path, PATH_MAX);
	if (simple_request(a, &m, id, &f) < 0)
		goto cleanup;
	if (proto_get_u64(&f, PROTO_A_SIZE, &announced) != 1) {
		agent_protocol_error(a, "get reply without a size");
		goto cleanup;
	}
	if (mode && proto_get_u32(&f, PROTO_A_MODE, mode) != 1)
		*mode = 0644;
	if (announced > max) {
		/* Abandon the stream; the next request re-syncs. */
		agent_desync(a);
		err_set("file is %" PRIu64 " bytes, more than the limit of %" PRIu64,
			announced, max);
		goto cleanup;
	}
	/* procfs and sysfs files report size 0 and still have content. */
	limit = announced ? announced : (max < GET_UNSIZED_MAX ? max : GET_UNSIZED_MAX);
	md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		agent_desync(a);
		err_set("sha256 init failed");
		goto cleanup;
	}
	for (;;) {
		if (agent_recv(a, id, &f, agent_get_timeout(a)) < 0)
			goto cleanup;
		if (f.type == PROTO_T_DATA_END)
			break;
		if (f.type == PROTO_R_ERROR) {
			agent_error_frame(&f);
			goto cleanup;
		}
		if (f.type != PROTO_T_DATA) {
			agent_protocol_error(a, "unexpected %s frame during get",
					     proto_type_name(f.type));
			goto cleanup;
		}
		/* A file that grows while read is cut at what was announced:
		 * a guest cannot make us write without bound. */
		if (f.len > limit - size) {
			agent_protocol_error(a, "sent more than the %" PRIu64 " bytes %s", limit,
					     announced ? "announced" : "allowed for a file of size 0");
			goto cleanup;
		}
		EVP_DigestUpdate(md, f.payload, f.len);
		size += f.len;
		if (fd >= 0 ? write_all(fd, f.payload, f.len) < 0 : buf_add(out, f.payload, f.len) < 0) {
			if (fd >= 0)
				err_errno("write");
			agent_desync(a);
			goto cleanup;
		}
	}
	EVP_DigestFinal_ex(md, digest, &dlen);
	if (proto_get_u64(&f, PROTO_A_SIZE, &their_size) != 1 || their_size != size ||
	    proto_get_bytes(&f, PROTO_A_DIGEST, &their, &their_len) != 1 ||
	    their_len != dlen || memcmp(their, digest, dlen) != 0) {
		err_set("agent: sha256 or size of the received data does not match");
		goto cleanup;
	}
	ret = 0;
cleanup:
	EVP_MD_CTX_free(md);
	if (ret < 0)
		err_prefix("get '%s'", path);
	return ret;
}

static int ex_stat(struct executor *ex, const char *path, struct file_stat *st);

/* Get path into the host file fd through the bulk disk; the guest says the
 * file has size bytes. 1 done (*mode set), 0 not possible (use the channel),
 * -1 error recorded. What the agent writes on the disk is the guest's: at
 * most the room given is read, and its XXH64 must be the agent's. */
static int bulk_get(struct agent_exec_priv *p, const char *path, uint64_t size, int fd,
		    uint32_t *mode)
{
	struct agent *a = p->a;
	uint64_t max = p->bulk_cap < EXEC_GET_FILE_MAX ? p->bulk_cap : EXEC_GET_FILE_MAX;
	uint8_t digest[2 * PROTO_BULK_DIGEST_LEN], *chunk = NULL;
	const uint8_t *their;
	size_t their_len;
	uint64_t got = 0, done = 0;
	struct xxh64 h;
	struct proto_msg m;
	struct proto_frame f;
	uint32_t id;
	int ret = -1, r;

	id = agent_begin(a);
	if (!id)
		return -1;
	proto_msg_init(&m, PROTO_T_GET_BULK, 0, id);
	proto_msg_str(&m, PROTO_A_PATH, path, PATH_MAX);
	proto_msg_u64(&m, PROTO_A_NONCE, p->bulk_nonce);
	proto_msg_u64(&m, PROTO_A_OFFSET, PROTO_BULK_HDR);
	proto_msg_u64(&m, PROTO_A_SIZE, max);
	r = agent_send_msg(a, &m);
	proto_msg_release(&m);
	if (r < 0 || (r = bulk_reply(a, id, size, &f)) <= 0)
		return r;
	if (proto_get_u64(&f, PROTO_A_SIZE, &got) != 1 || got > max ||
	    proto_get_bytes(&f, PROTO_A_DIGEST, &their, &their_len) != 1 ||
	    their_len != PROTO_BULK_DIGEST_LEN) {
		agent_protocol_error(a, "get-bulk reply without a size within %" PRIu64
				     " bytes and an XXH64", max);
		got = 0;
		goto cleanup;
	}
	if (proto_get_u32(&f, PROTO_A_MODE, mode) != 1)
		*mode = 0644;
	/* f points into the client's buffer: keep the digest. */
	memcpy(digest, their, their_len);
	chunk = xmalloc_nofork(PROTO_BULK_CHUNK);
	xxh64_init(&h, 0);
	while (done < got) {
		size_t n = got - done < PROTO_BULK_CHUNK ? (size_t)(got - done) : PROTO_BULK_CHUNK;
		ssize_t rd = pread(p->bulk_fd, chunk, n, (off_t)(PROTO_BULK_HDR + done));

		if (rd < 0 && errno == EINTR)
			continue;
		if (rd <= 0) {
			err_errno("read the bulk disk");
			goto cleanup;
		}
		xxh64_update(&h, chunk, (size_t)rd);
		if (write_all(fd, chunk, (size_t)rd) < 0) {
			err_errno("write");
			goto cleanup;
		}
		done += (uint64_t)rd;
	}
	xxh64_bytes(xxh64_final(&h), digest + PROTO_BULK_DIGEST_LEN);
	if (memcmp(digest, digest + PROTO_BULK_DIGEST_LEN, PROTO_BULK_DIGEST_LEN) != 0) {
		err_set("agent: XXH64 or size of the received data does not match");
		goto cleanup;
	}
	log_debug("get '%s': %" PRIu64 " bytes through the bulk disk", path, got);
	p->bulk_done++;
	ret = 1;
cleanup:
	bulk_release(p, got);
	if (chunk)
		xfree_nofork(chunk, PROTO_BULK_CHUNK);
	return ret;
}

static int ex_get_file(struct executor *ex, const char *path, const char *host_path)
{
	char *tmp = xasprintf("%s.amiforge-XXXXXX", host_path);
	uint32_t mode = 0644;
	int fd = mkostemp(tmp, O_CLOEXEC), ret = -1, r;

	if (fd < 0) {
		err_errno("create '%s'", tmp);
		goto cleanup;
	}
	r = 0;
	if (P(ex)->bulk_fd >= 0 && abs_path(path)) {
		struct file_stat st = { 0 };

		if (ex_stat(ex, path, &st) < 0)
			goto cleanup;
		if (st.exists && S_ISREG(st.mode) && bulk_for(P(ex), st.size)) {
			r = bulk_get(P(ex), path, st.size, fd, &mode);
			if (r < 0)
				err_prefix("get '%s'", path);
			else if (r == 0)
				bulk_off(P(ex));
		}
		file_stat_release(&st);
		if (r < 0)
			goto cleanup;
	}
	if (r == 0 && get_stream(A(ex), path, fd, NULL, EXEC_GET_FILE_MAX, &mode) < 0)
		goto cleanup;
	/* Never setuid/setgid/sticky on the host, whatever the guest says. */
	if (fchmod(fd, mode & 0777) < 0 || close(fd) < 0) {
		fd = -1;
		err_errno("write '%s'", tmp);
		goto cleanup;
	}
	fd = -1;
	if (rename(tmp, host_path) < 0) {
		err_errno("rename '%s' to '%s'", tmp, host_path);
		goto cleanup;
	}
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		unlink(tmp);
	free(tmp);
	return ret;
}

static int ex_read_file(struct executor *ex, const char *path, size_t max, struct buf *out)
{
	struct buf b;
	int r;

	buf_init(&b, max);
	r = get_stream(A(ex), path, -1, &b, max, NULL);
	if (r < 0) {
		buf_release(&b);
		return -1;
	}
	buf_release(out);
	*out = b;
	return 0;
}

/* --- metadata and tree operations ------------------------------------------ */

static int ex_stat(struct executor *ex, const char *path, struct file_stat *st)
{
	struct agent *a = A(ex);
	struct proto_msg m;
	struct proto_frame f;
	uint32_t exists = 0, mode = 0, uid = 0, gid = 0, id;
	uint64_t size = 0, mtime = 0;
	const char *link;

	memset(st, 0, sizeof(*st));
	if (!abs_path(path))
		return err_set("stat: path '%s' is not absolute", path ? path : "");
	if (!(id = agent_begin(a)))
		return -1;
	proto_msg_init(&m, PROTO_T_STAT, 0, id);
	proto_msg_str(&m, PROTO_A_PATH, path, PATH_MAX);
	if (simple_request(a, &m, id, &f) < 0)
		return err_prefix("stat '%s'", path);
	if (proto_get_u32(&f, PROTO_A_EXISTS, &exists) != 1)
		return agent_protocol_error(a, "stat reply without exists");
	if (!exists)
		return 0;
	if (proto_get_u32(&f, PROTO_A_MODE, &mode) != 1 || proto_get_u32(&f, PROTO_A_UID, &uid) != 1 ||
	    proto_get_u32(&f, PROTO_A_GID, &gid) != 1 || proto_get_u64(&f, PROTO_A_SIZE, &size) != 1 ||
	    proto_get_u64(&f, PROTO_A_MTIME, &mtime) != 1)
		return agent_protocol_error(a, "stat reply for '%s' incomplete", path);
	st->exists = true;
	st->mode = mode;
	st->uid = uid;
	st->gid = gid;
	st->size = size;
	st->mtime = (int64_t)mtime;
	if (S_ISLNK(mode) && proto_get_str(&f, PROTO_A_LINK, &link) == 1)
		st->link_target = xstrdup(link);
	return 0;
}

/* A request with a path, maybe a second path, flags; expects R_OK. */
static int path_op(struct executor *ex, uint16_t type, const char *path, const char *path2,
		   int mode, int recursive)
{
	struct agent *a = A(ex);
	struct proto_msg m;
	uint32_t id;

	if (!abs_path(path) || (path2 && !abs_path(path2)))
		return err_set("%s: path '%s' is not absolute", proto_type_name(type),
			       abs_path(path) ? path2 : path ? path : "");
	if (!(id = agent_begin(a)))
		return -1;
	proto_msg_init(&m, type, 0, id);
	proto_msg_str(&m, PROTO_A_PATH, path, PATH_MAX);
	if (path2)
		proto_msg_str(&m, PROTO_A_PATH2, path2, PATH_MAX);
	if (mode >= 0)
		proto_msg_u32(&m, PROTO_A_MODE, (uint32_t)mode);
	if (recursive >= 0)
		proto_msg_u32(&m, PROTO_A_RECURSIVE, (uint32_t)recursive);
	return simple_request(a, &m, id, NULL);
}

static int ex_mkdir_p(struct executor *ex, const char *path, mode_t mode)
{
	return path_op(ex, PROTO_T_MKDIR, path, NULL, (int)(mode & 07777), -1);
}

static int ex_remove(struct executor *ex, const char *path, bool recursive)
{
	return path_op(ex, PROTO_T_REMOVE, path, NULL, -1, recursive);
}

static int ex_rename(struct executor *ex, const char *from, const char *to)
{
	return path_op(ex, PROTO_T_RENAME, from, to, -1, -1);
}

static int ex_copy(struct executor *ex, const char *from, const char *to, bool recursive)
{
	return path_op(ex, PROTO_T_COPY, from, to, -1, recursive);
}

static int ex_chmod(struct executor *ex, const char *path, mode_t mode, bool recursive)
{
	return path_op(ex, PROTO_T_CHMOD, path, NULL, (int)(mode & 07777), recursive);
}

static int ex_chown(struct executor *ex, const char *path, const char *owner,
		    const char *group, bool recursive)
{
	struct agent *a = A(ex);
	struct proto_msg m;
	uint32_t id;

	if (!abs_path(path))
		return err_set("chown: path '%s' is not absolute", path ? path : "");
	if (!owner && !group)
		return 0;
	if (!(id = agent_begin(a)))
		return -1;
	proto_msg_init(&m, PROTO_T_CHOWN, 0, id);
	proto_msg_str(&m, PROTO_A_PATH, path, PATH_MAX);
	if (owner)
		proto_msg_str(&m, PROTO_A_OWNER, owner, PROTO_STR_MAX);
	if (group)
		proto_msg_str(&m, PROTO_A_GROUP, group, PROTO_STR_MAX);
	proto_msg_u32(&m, PROTO_A_RECURSIVE, recursive);
	return simple_request(a, &m, id, NULL);
}

static int ex_symlink(struct executor *ex, const char *target, const char *path)
{
	struct agent *a = A(ex);
	struct proto_msg m;
	uint32_t id;

	if (!abs_path(path) || !target || !*target)
		return err_set("symlink: path '%s' is not absolute or target empty",
			       path ? path : "");
	if (!(id = agent_begin(a)))
		return -1;
	proto_msg_init(&m, PROTO_T_SYMLINK, 0, id);
	proto_msg_str(&m, PROTO_A_PATH, path, PATH_MAX);
	proto_msg_str(&m, PROTO_A_TARGET, target, PATH_MAX);
	return simple_request(a, &m, id, NULL);
}

static int ex_list_dir(struct executor *ex, const char *path, struct dir_entry **entries,
		       size_t *n)
{
	struct agent *a = A(ex);
	struct proto_msg m;
	struct proto_frame f;
	struct dir_entry *v = NULL;
	size_t cnt = 0, cap = 0;
	uint32_t id;

	*entries = NULL;
	*n = 0;
	if (!abs_path(path))
		return err_set("list: path '%s' is not absolute", path ? path : "");
	if (!(id = agent_begin(a)))
		return -1;
	proto_msg_init(&m, PROTO_T_LIST, 0, id);
	proto_msg_str(&m, PROTO_A_PATH, path, PATH_MAX);
	if (agent_send_msg(a, &m) < 0) {
		proto_msg_release(&m);
		return -1;
	}
	proto_msg_release(&m);
	for (;;) {
		struct proto_tlv t;
		size_t off = 0;
		const char *name = NULL;

		if (agent_recv(a, id, &f, agent_get_timeout(a)) < 0)
			goto fail;
		if (f.type == PROTO_R_OK)
			break;
		if (f.type == PROTO_R_ERROR) {
			agent_error_frame(&f);
			goto fail;
		}
		if (f.type != PROTO_R_ENTRIES) {
			agent_protocol_error(a, "unexpected %s frame during list",
					     proto_type_name(f.type));
			goto fail;
		}
		/* Pairs: A_NAME then A_MODE. */
		while (proto_tlv_next(&f, &off, &t) > 0) {
			uint32_t mode;

			if (t.tag == PROTO_A_NAME) {
				/* ".", ".." and "a/b" would lead the caller outside
				 * the directory it lists. */
				if (proto_tlv_str(&t, &name) < 0 || !name_is_safe(name)) {
					agent_protocol_error(a, "bad entry name in listing of '%s'", path);
					goto fail;
				}
				continue;
			}
			if (t.tag != PROTO_A_MODE || !name || proto_tlv_u32(&t, &mode) < 0) {
				agent_protocol_error(a, "malformed listing of '%s'", path);
				goto fail;
			}
			if (cnt == LIST_ENTRIES_MAX) {
				agent_protocol_error(a, "listing of '%s' exceeds %u entries", path,
						     LIST_ENTRIES_MAX);
				goto fail;
			}
			if (cnt == cap) {
				cap = cap ? cap * 2 : 64;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[cnt].name = xstrdup(name);
			v[cnt].mode = mode;
			cnt++;
			name = NULL;
		}
	}
	*entries = v;
	*n = cnt;
	return 0;
fail:
	dir_entries_free(v, cnt);
	return err_prefix("list '%s'", path);
}

static int ex_hash_file(struct executor *ex, const char *path, const char *algo, char **hex)
{
	static const struct { const char *name; size_t len; } algos[] = {
		{ "md5", 32 }, { "sha1", 40 }, { "sha256", 64 }, { "sha512", 128 },
	};
	struct agent *a = A(ex);
	struct proto_msg m;
	struct proto_frame f;
	const char *h;
	size_t want = 0;
	uint32_t id;

	*hex = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(algos); i++)
		if (algo && strcmp(algo, algos[i].name) == 0)
			want = algos[i].len;
	if (!want)
		return err_set("hash: unknown algorithm '%s' (md5, sha1, sha256, sha512)",
			       algo ? algo : "");
	if (!abs_path(path))
		return err_set("hash: path '%s' is not absolute", path ? path : "");
	if (!(id = agent_begin(a)))
		return -1;
	proto_msg_init(&m, PROTO_T_HASH, 0, id);
	proto_msg_str(&m, PROTO_A_PATH, path, PATH_MAX);
	proto_msg_str(&m, PROTO_A_ALGO, algo, 16);
	if (simple_request(a, &m, id, &f) < 0)
		return err_prefix("hash '%s'", path);
	if (proto_get_str(&f, PROTO_A_HEX, &h) != 1 || strlen(h) != want ||
	    strspn(h, "0123456789abcdef") != want)
		return agent_protocol_error(a, "hash of '%s': malformed digest", path);
	*hex = xstrdup(h);
	return 0;
}

/* A reboot waits for the boot's jobs to end first (guest.h
 * GUEST_BOOT_DONE_SH, bounded; at once when they have): a step runs before
 * cloud-init's stages are done (the agent serves early), and a reboot then
 * would cut the running stage short, leaving out what it writes once per
 * instance (Debian's grub-pc debconf selections, among others). Said, not
 * fatal, when the wait fails. */
static int ex_reboot(struct executor *ex, int64_t timeout_ms)
{
	static const char *const argv[] = { "/bin/sh", "-c", GUEST_BOOT_DONE_SH, NULL };
	struct exec_req req = { .argv = argv, .timeout_ms = (GUEST_BOOT_DONE_S + 10) * 1000,
				.capture_max = 1024 };
	struct exec_result res;
	int64_t t0 = now_ms();

	memset(&res, 0, sizeof(res));
	if (ex_exec(ex, &req, &res) < 0 || res.timed_out) {
		log_debug("reboot: the boot's end not waited for (%s)",
			  err_isset() ? err_msg() : "timed out");
		err_clear();
	} else {
		log_debug("reboot: the boot's jobs ended %" PRId64 " ms before it", now_ms() - t0);
	}
	exec_result_release(&res);
	return agent_reboot(A(ex), timeout_ms);
}

static int ex_flush(struct executor *ex, int64_t timeout_ms)
{
	struct agent *a = A(ex);
	struct proto_frame f;
	struct proto_msg m;
	uint32_t id;
	int r;

	if (!(id = agent_begin(a)))
		return -1;
	proto_msg_init(&m, PROTO_T_FLUSH, 0, id);
	r = agent_send_msg(a, &m);
	proto_msg_release(&m);
	if (r < 0 || agent_expect_ok(a, id, &f, timeout_ms) < 0)
		return err_prefix("flush the guest's file systems");
	return 0;
}

static void ex_close(struct executor *ex)
{
	bulk_off(P(ex));
	free(ex->priv);
	free(ex);
}

int executor_agent_set_bulk(struct executor *ex, const char *path, uint64_t nonce,
			    uint64_t capacity)
{
	struct agent_exec_priv *p = P(ex);

	bulk_off(p);
	p->bulk_fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (p->bulk_fd < 0)
		return err_errno("open the bulk disk '%s'", path);
	p->bulk_nonce = nonce;
	p->bulk_cap = capacity;
	return 0;
}

size_t executor_agent_bulk_done(struct executor *ex)
{
	return P(ex)->bulk_done;
}

static const struct executor_ops agent_ops = {
	.name = "agent",
	.exec = ex_exec,
	.put_file = ex_put_file,
	.get_file = ex_get_file,
	.write_file = ex_write_file,
	.read_file = ex_read_file,
	.stat = ex_stat,
	.mkdir_p = ex_mkdir_p,
	.remove = ex_remove,
	.rename = ex_rename,
	.copy = ex_copy,
	.chmod = ex_chmod,
	.chown = ex_chown,
	.symlink = ex_symlink,
	.list_dir = ex_list_dir,
	.hash_file = ex_hash_file,
	.reboot = ex_reboot,
	.flush = ex_flush,
	.close = ex_close,
};

struct executor *executor_agent_new(struct agent *a)
{
	struct executor *ex = xcalloc(1, sizeof(*ex));
	struct agent_exec_priv *p = xcalloc(1, sizeof(*p));

	p->a = a;
	p->bulk_fd = -1;
	ex->ops = &agent_ops;
	ex->priv = p;
	return ex;
}
