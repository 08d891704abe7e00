/* s3.c: S3 multipart upload (parallel, per-part retries, SHA-256 checksums,
 * abort on failure or Ctrl-C), progress bar, path-style addressing for
 * custom endpoints and dotted bucket names. */
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "s3.h"
#include "client.h"
#include "xml.h"
#include "error.h"
#include "log.h"
#include "progress.h"
#include "util.h"

/* Hashing reads the part in slices of this size: memory per worker. */
#define HASH_SLICE (1024 * 1024)
#define MIB (1024.0 * 1024.0)

/* Path and endpoint of an object: virtual-hosted on AWS for DNS-safe
 * names, path-style for custom endpoints and dotted names. */
struct s3_loc {
	char *endpoint;   /* NULL: the client's */
	char *path;       /* encoded */
};

static bool dns_safe(const char *b)
{
	const char *p;

	if (strlen(b) < 3 || strlen(b) > 63)
		return false;
	for (p = b; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	return true;
}

static void s3_loc(struct aws_client *cl, const char *bucket, const char *key,
		   struct s3_loc *l)
{
	struct buf b = BUF_INIT(64 * 1024);

	memset(l, 0, sizeof(*l));
	if (!aws_client_custom_endpoint(cl, AWS_S3) && dns_safe(bucket)) {
		const char *ep = aws_client_endpoint(cl, AWS_S3);
		const char *host = strstr(ep, "://");
		l->endpoint = xasprintf("https://%s.%s", bucket, host ? host + 3 : ep);
	} else {
		buf_addc(&b, '/');
		sigv4_uri_encode(&b, bucket, strlen(bucket), false);
	}
	buf_addc(&b, '/');
	if (key)
		sigv4_uri_encode(&b, key, strlen(key), true);
	l->path = buf_detach(&b, NULL);
}

static void s3_loc_release(struct s3_loc *l)
{
	free(l->endpoint);
	free(l->path);
}

/* Start an S3 request: method on l; what names it in messages. */
static void s3_req(struct aws_req *rq, const struct s3_loc *l, const char *method,
		   const char *what)
{
	rq->service = AWS_S3;
	rq->method = method;
	rq->endpoint = l->endpoint;
	rq->path = l->path;
	rq->what = what;
}

/* Send rq; the error done_code says the work was done already (a retry of
 * an earlier call, or by someone else): success. 0 or -1. */
static int send_done_if(struct aws_client *cl, const struct aws_req *rq, const char *done_code)
{
	struct aws_resp rs;
	int r = aws_request(cl, rq, &rs);

	if (r < 0 && rs.error_code && strcmp(rs.error_code, done_code) == 0) {
		err_clear();
		r = 0;
	}
	aws_resp_release(&rs);
	return r;
}

uint64_t s3_part_size(uint64_t size, uint64_t wanted)
{
	uint64_t ps = wanted ? wanted : S3_PART_DEFAULT;
	uint64_t min = (size + S3_PARTS_MAX - 1) / S3_PARTS_MAX;

	if (ps < S3_PART_MIN)
		ps = S3_PART_MIN;
	if (ps < min) {
		if (wanted)
			return 0;
		ps = (min + (1 << 20) - 1) & ~(uint64_t)((1 << 20) - 1);
	}
	return ps > S3_PART_MAX ? 0 : ps;
}

/* A stream's part buffer and its size. */
struct pbuf {
	uint8_t *p;
	size_t cap;
};

struct part {
	int number;
	uint64_t off, len;
	uint8_t *data;         /* a streamed part's bytes (NULL: the file's range) */
	size_t cap;            /* the size of that buffer */
	char *etag;
	char sha256_b64[48];
	uint64_t sent;         /* progress of the current attempt */
	bool done;
};

struct upload {
	struct aws_client *cl;
	const struct s3_upload_opts *o;
	struct s3_loc loc;
	char *upload_id;
	int fd;                /* the file's parts: read from here */
	struct part *parts;
	int nparts;            /* parts ready to send (all of a file's at once) */
	bool eof;              /* no more parts will come */
	int next;              /* next part to start */
	int running;           /* workers still alive */
	/* A stream's parts: part_size is the first's (stream_part_size), free
	 * buffers on a stack, held: the bytes of every buffer allocated. */
	uint64_t part_size;
	struct pbuf *free_bufs;
	int nfree, nbufs;
	uint64_t held, stream_off;
	struct pbuf cur;       /* the part being filled by the producer */
	size_t cur_len, cur_want;
	bool failed;
	char *error;           /* first worker error */
	uint64_t done_bytes;   /* bytes of finished parts */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static int hash_part(int fd, const struct part *p, char hex[65], char b64[48])
{
	unsigned char *slice = xmalloc(HASH_SLICE), md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t off = 0;
	unsigned int mdlen;
	int r = -1;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		abort();
	while (off < p->len) {
		size_t want = p->len - off > HASH_SLICE ? HASH_SLICE : (size_t)(p->len - off);
		ssize_t got = pread(fd, slice, want, (off_t)(p->off + off));

		if (got <= 0) {
			err_set("read part %d: %s", p->number, got < 0 ? strerror(errno) :
				"file shrank during upload");
			goto cleanup;
		}
		EVP_DigestUpdate(ctx, slice, (size_t)got);
		off += (uint64_t)got;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	sigv4_hex(md, 32, hex);
	EVP_EncodeBlock((unsigned char *)b64, md, 32);
	r = 0;
cleanup:
	EVP_MD_CTX_free(ctx);
	free(slice);
	return r;
}

/* The same for a part in memory. */
static void hash_mem(const uint8_t *p, size_t n, char hex[65], char b64[48])
{
	unsigned char md[32];
	unsigned int mdlen;

	if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL))
		abort();
	sigv4_hex(md, 32, hex);
	EVP_EncodeBlock((unsigned char *)b64, md, 32);
}

static void part_progress(void *opaque, uint64_t sent)
{
	struct part *p = opaque;

	__atomic_store_n(&p->sent, sent, __ATOMIC_RELAXED);
}

static int upload_part(struct upload *u, struct part *p)
{
	char hex[65], *query, *what;
	const char *owner = u->o->expected_owner;
	const char *hdrs[] = { "x-amz-checksum-sha256", p->sha256_b64,
			       owner ? "x-amz-expected-bucket-owner" : NULL, owner, NULL };
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs;
	struct buf enc = BUF_INIT(4096);
	int r = -1;

	if (p->data)
		hash_mem(p->data, (size_t)p->len, hex, p->sha256_b64);
	else if (hash_part(u->fd, p, hex, p->sha256_b64) < 0)
		return -1;
	sigv4_uri_encode(&enc, u->upload_id, strlen(u->upload_id), false);
	query = xasprintf("partNumber=%d&uploadId=%s", p->number, enc.data);
	what = xasprintf("UploadPart %d of s3://%s/%s", p->number, u->o->bucket, u->o->key);
	s3_req(&rq, &u->loc, "PUT", what);
	rq.query = query;
	rq.headers = hdrs;
	if (p->data) {
		rq.body = p->data;
		rq.body_len = (size_t)p->len;
	} else {
		rq.body_fd = u->fd;
		rq.body_off = p->off;
		rq.body_size = p->len;
	}
	rq.body_sha256 = hex;
	rq.progress = part_progress;
	rq.progress_opaque = p;
	if (aws_request(u->cl, &rq, &rs) < 0)
		goto cleanup;
	if (!rs.etag) {
		err_set("%s: no ETag in the answer", what);
		goto cleanup;
	}
	p->etag = xstrdup(rs.etag);
	r = 0;
cleanup:
	aws_resp_release(&rs);
	buf_release(&enc);
	free(query);
	free(what);
	return r;
}

/* Wait on u->cond (u->lock held) for at most 250 ms: a signal handler
 * cannot wake anyone, so the cancel flag is looked at that often. */
static void wait_a_while(struct upload *u)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 250 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&u->cond, &u->lock, &ts);
}

/* Send parts as they become ready (a file's are all ready at once; a
 * stream's when the producer filled them), until there are no more. */
static void *worker(void *arg)
{
	struct upload *u = arg;

	for (;;) {
		struct part *p;
		int r;

		pthread_mutex_lock(&u->lock);
		while (!u->failed && !aws_cancelled() && u->next >= u->nparts && !u->eof)
			wait_a_while(u);
		if (u->failed || u->next >= u->nparts || aws_cancelled()) {
			u->running--;
			pthread_cond_broadcast(&u->cond);
			pthread_mutex_unlock(&u->lock);
			return NULL;
		}
		p = &u->parts[u->next++];
		pthread_mutex_unlock(&u->lock);

		r = upload_part(u, p);
		pthread_mutex_lock(&u->lock);
		if (r < 0 && !u->failed) {
			u->failed = true;
			u->error = xstrdup(err_msg());
		} else if (r == 0) {
			p->done = true;
			u->done_bytes += p->len;
		}
		if (p->data) {	/* the buffer goes back to the producer */
			u->free_bufs[u->nfree++] = (struct pbuf){ p->data, p->cap };
			p->data = NULL;
		}
		pthread_cond_broadcast(&u->cond);
		pthread_mutex_unlock(&u->lock);
	}
}

/* Caller holds u->lock. */
static void draw(struct upload *u, struct progress *pg, uint64_t total)
{
	uint64_t now = u->done_bytes;
	int i;

	for (i = 0; i < u->nparts; i++)
		if (!u->parts[i].done)
			now += __atomic_load_n(&u->parts[i].sent, __ATOMIC_RELAXED);
	progress_show(pg, now > total ? total : now, total, NULL);
}

static int create_upload(struct upload *u)
{
	const char *owner = u->o->expected_owner;
	const char *hdrs[] = { "x-amz-checksum-algorithm", "SHA256",
			       "Content-Type", "application/octet-stream",
			       owner ? "x-amz-expected-bucket-owner" : NULL, owner, NULL };
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs;
	xmlDoc *doc = NULL;
	int r = -1;

	s3_req(&rq, &u->loc, "POST", "CreateMultipartUpload");
	rq.query = "uploads=";
	rq.headers = hdrs;
	if (aws_request(u->cl, &rq, &rs) < 0)
		goto cleanup;
	doc = xml_parse(rs.body.data ? rs.body.data : "", rs.body.len);
	u->upload_id = doc ? xml_text(xmlDocGetRootElement(doc), "UploadId") : NULL;
	if (!u->upload_id || !*u->upload_id) {
		err_set("CreateMultipartUpload s3://%s/%s: no UploadId in the answer",
			u->o->bucket, u->o->key);
		goto cleanup;
	}
	r = 0;
cleanup:
	if (doc)
		xmlFreeDoc(doc);
	aws_resp_release(&rs);
	return r;
}

static int complete_upload(struct upload *u, struct s3_upload_result *res)
{
	struct buf body = BUF_INIT(4u * 1024 * 1024), enc = BUF_INIT(4096);
	const char *owner = u->o->expected_owner;
	const char *hdrs[] = { "Content-Type", "application/xml",
			       owner ? "x-amz-expected-bucket-owner" : NULL, owner, NULL };
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs;
	xmlDoc *doc = NULL;
	char *query;
	int i, r = -1;

	buf_adds(&body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (i = 0; i < u->nparts; i++)
		buf_printf(&body, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>"
			   "<ChecksumSHA256>%s</ChecksumSHA256></Part>", u->parts[i].number,
			   u->parts[i].etag, u->parts[i].sha256_b64);
	if (buf_adds(&body, "</CompleteMultipartUpload>") < 0)
		return -1;
	sigv4_uri_encode(&enc, u->upload_id, strlen(u->upload_id), false);
	query = xasprintf("uploadId=%s", enc.data);
	s3_req(&rq, &u->loc, "POST", "CompleteMultipartUpload");
	rq.query = query;
	rq.headers = hdrs;
	rq.body = body.data;
	rq.body_len = body.len;
	rq.error_in_200 = true;
	if (aws_request(u->cl, &rq, &rs) < 0) {
		/* A retry after a lost answer finds the upload already completed. */
		if (rs.attempts > 1 && rs.error_code && strcmp(rs.error_code, "NoSuchUpload") == 0) {
			struct aws_req hq = AWS_REQ_INIT;
			struct aws_resp hs;
			int ok;

			s3_req(&hq, &u->loc, "HEAD", "HeadObject");
			ok = aws_request(u->cl, &hq, &hs) == 0 &&
			     hs.content_length == (int64_t)res->size;
			if (ok) {
				res->etag = hs.etag ? xstrdup(hs.etag) : NULL;
				aws_resp_release(&hs);
				err_clear();
				r = 0;
				goto cleanup;
			}
			aws_resp_release(&hs);
		}
		goto cleanup;
	}
	doc = xml_parse(rs.body.data ? rs.body.data : "", rs.body.len);
	res->etag = doc ? xml_text(xmlDocGetRootElement(doc), "ETag") : NULL;
	if (!doc)
		err_clear();
	r = 0;
cleanup:
	if (doc)
		xmlFreeDoc(doc);
	aws_resp_release(&rs);
	buf_release(&body);
	buf_release(&enc);
	free(query);
	return r;
}

int s3_abort_upload(struct aws_client *cl, const char *bucket, const char *key,
		    const char *upload_id)
{
	struct buf enc = BUF_INIT(4096);
	struct aws_req rq = AWS_REQ_INIT;
	struct s3_loc l;
	char *query;
	int r;

	s3_loc(cl, bucket, key, &l);
	sigv4_uri_encode(&enc, upload_id, strlen(upload_id), false);
	query = xasprintf("uploadId=%s", enc.data);
	s3_req(&rq, &l, "DELETE", "AbortMultipartUpload");
	rq.query = query;
	rq.ignore_cancel = true;
	r = send_done_if(cl, &rq, "NoSuchUpload");
	s3_loc_release(&l);
	buf_release(&enc);
	free(query);
	return r;
}

/* ---- a stream's parts: filled by the producer (this thread) ---- */

uint64_t s3_stream_part_size(uint64_t base, int n)
{
	uint64_t ps = base;
	int k;

	for (k = (n - 1) / S3_STREAM_DOUBLING; k > 0 && ps < S3_PART_MAX; k--)
		ps *= 2;
	return ps > S3_PART_MAX ? S3_PART_MAX : ps;
}

uint64_t s3_stream_capacity(uint64_t base)
{
	uint64_t total = 0;
	int n;

	for (n = 1; n <= S3_PARTS_MAX; n += S3_STREAM_DOUBLING)
		total += s3_stream_part_size(base, n) * S3_STREAM_DOUBLING;
	return total;
}

/* Hand the part being filled to the workers. Caller holds nothing. */
static int stream_submit(struct upload *u)
{
	int r = 0;

	pthread_mutex_lock(&u->lock);
	if (u->nparts == S3_PARTS_MAX) {
		r = err_set("upload s3://%s/%s: more than %d parts", u->o->bucket, u->o->key,
			    S3_PARTS_MAX);
	} else {
		struct part *p = &u->parts[u->nparts];

		p->number = u->nparts + 1;
		p->off = u->stream_off;
		p->len = u->cur_len;
		p->data = u->cur.p;
		p->cap = u->cur.cap;
		u->stream_off += u->cur_len;
		u->cur = (struct pbuf){ NULL, 0 };
		u->cur_len = 0;
		u->nparts++;
		pthread_cond_broadcast(&u->cond);
	}
	pthread_mutex_unlock(&u->lock);
	return r;
}

/* A buffer for the next part (u->lock held): a free one of its size, else
 * a new one while the buffers stay within S3_STREAM_MEMORY (two at
 * least), else wait for a worker to give one back. Free buffers smaller
 * than the part (the schedule doubled) are released. 0 or -1. */
static int stream_take(struct upload *u)
{
	for (;;) {
		uint64_t want = s3_stream_part_size(u->part_size, u->nparts + 1);
		int i;

		if (u->failed || aws_cancelled())
			return err_set("upload s3://%s/%s: %s", u->o->bucket, u->o->key,
				       u->failed ? "a part failed" : "interrupted");
		for (i = 0; i < u->nfree;) {
			if (u->free_bufs[i].cap < want) {
				u->held -= u->free_bufs[i].cap;
				u->nbufs--;
				xfree_nofork(u->free_bufs[i].p, u->free_bufs[i].cap);
				u->free_bufs[i] = u->free_bufs[--u->nfree];
			} else {
				i++;
			}
		}
		u->cur_want = (size_t)want;
		if (u->nfree) {
			u->cur = u->free_bufs[--u->nfree];
			return 0;
		}
		if (u->nbufs < 2 || u->held + want <= S3_STREAM_MEMORY) {
			u->cur = (struct pbuf){ xmalloc_nofork((size_t)want), (size_t)want };
			u->held += want;
			u->nbufs++;
			return 0;
		}
		wait_a_while(u);
	}
}

/* The producer's write: copy into the part being filled, hand it over when
 * full; wait for a free buffer while every part is in flight. 0 or -1. */
static int stream_write(void *ctx, const void *data, size_t n)
{
	struct upload *u = ctx;
	const uint8_t *s = data;

	while (n) {
		size_t k;

		if (!u->cur.p) {
			int r;

			pthread_mutex_lock(&u->lock);
			r = stream_take(u);
			pthread_mutex_unlock(&u->lock);
			if (r < 0)
				return -1;
			u->cur_len = 0;
		}
		k = u->cur_want - u->cur_len < n ? u->cur_want - u->cur_len : n;
		memcpy(u->cur.p + u->cur_len, s, k);
		u->cur_len += k;
		s += k;
		n -= k;
		if (u->cur_len == u->cur_want && stream_submit(u) < 0)
			return -1;
	}
	return 0;
}

/* Create the upload, run the workers (a stream: while produce() writes),
 * complete it; abort it on any failure or Ctrl-C. 0 or -1. */
static int upload_run(struct upload *u, const char *what, s3_produce_fn produce, void *opaque,
		      struct s3_upload_result *res)
{
	struct aws_client *cl = u->cl;
	const struct s3_upload_opts *o = u->o;
	pthread_t *th = NULL;
	int i, nth = 0, nbufs = 0, r = -1;
	int64_t t0 = now_ms();
	bool bar = !produce && o->progress && log_get_level() >= LOG_INFO;
	struct progress pg;
	char *rid = NULL;

	progress_init(&pg, "upload");

	if (create_upload(u) < 0)
		goto cleanup;
	rid = xasprintf("s3://%s/%s?uploadId=%s", o->bucket, o->key, u->upload_id);
	if (o->on_resource)
		o->on_resource(AWS_RES_CREATED, "s3-upload", rid, aws_client_region(cl), o->opaque);
	if (produce)
		log_info("uploading %s to s3://%s/%s as it is made (parts of %.0f MiB and up)",
			 what, o->bucket, o->key, (double)u->part_size / MIB);
	else
		log_info("uploading '%s' (%.1f MiB, %d parts of %.0f MiB) to s3://%s/%s", what,
			 (double)res->size / MIB, u->nparts, (double)res->part_size / MIB,
			 o->bucket, o->key);

	nth = o->parallel > 0 ? o->parallel : S3_PARALLEL_DEFAULT;
	if (nth > S3_PARALLEL_MAX)
		nth = S3_PARALLEL_MAX;
	if (!produce && nth > u->nparts)
		nth = u->nparts;
	if (produce) {	/* buffers made as needed; one is being filled */
		int most = (int)(S3_STREAM_MEMORY / u->part_size);

		if (nth > most - 1)
			nth = most > 2 ? most - 1 : 1;
		nbufs = (int)(S3_STREAM_MEMORY / S3_PART_MIN) + 2;
		u->free_bufs = xcalloc((size_t)nbufs, sizeof(*u->free_bufs));
	}
	th = xcalloc((size_t)nth, sizeof(*th));
	u->running = nth;
	for (i = 0; i < nth; i++) {
		if (pthread_create(&th[i], NULL, worker, u) != 0) {
			pthread_mutex_lock(&u->lock);
			u->running -= nth - i;
			u->failed = true;
			if (!u->error)
				u->error = xstrdup("cannot start upload threads");
			pthread_mutex_unlock(&u->lock);
			nth = i;
			break;
		}
	}
	if (produce) {
		int pr = u->failed ? -1 : produce(stream_write, u, opaque);

		if (pr == 0 && !u->cur.p && u->nparts == 0) {	/* nothing written */
			pthread_mutex_lock(&u->lock);
			pr = stream_take(u);
			pthread_mutex_unlock(&u->lock);
			u->cur_len = 0;
		}
		if (pr == 0 && u->cur.p)	/* the last part, maybe short */
			pr = stream_submit(u);
		pthread_mutex_lock(&u->lock);
		if (pr < 0 && !u->failed) {
			u->failed = true;
			u->error = xstrdup(err_msg());
		}
		u->eof = true;
		pthread_cond_broadcast(&u->cond);
		pthread_mutex_unlock(&u->lock);
	}
	pthread_mutex_lock(&u->lock);
	while (u->running > 0) {
		wait_a_while(u);
		if (bar)
			draw(u, &pg, res->size);
	}
	if (bar && !u->failed && !aws_cancelled())
		draw(u, &pg, res->size);
	pthread_mutex_unlock(&u->lock);
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);

	if (u->failed || aws_cancelled()) {
		if (u->error)
			err_set("%s", u->error);
		else
			err_set("upload s3://%s/%s: interrupted", o->bucket, o->key);
		goto cleanup;
	}
	if (produce) {
		res->size = u->done_bytes;
		res->part_size = u->part_size;
		res->parts = u->nparts;
	}
	if (complete_upload(u, res) < 0)
		goto cleanup;
	res->elapsed_ms = now_ms() - t0;
	if (o->on_resource) {
		char *oid = xasprintf("s3://%s/%s", o->bucket, o->key);

		/* The object first: there is never a moment with neither. */
		o->on_resource(AWS_RES_CREATED, "s3-object", oid, aws_client_region(cl), o->opaque);
		o->on_resource(AWS_RES_RELEASED, "s3-upload", rid, aws_client_region(cl),
			       o->opaque);
		free(oid);
	}
	log_info("uploaded %.1f MiB in %.1f s (%.1f MiB/s)", (double)res->size / MIB,
		 (double)res->elapsed_ms / 1000.0,
		 res->elapsed_ms ? (double)res->size / MIB / ((double)res->elapsed_ms / 1000.0) : 0);
	r = 0;
cleanup:
	if (r < 0 && u->upload_id) {
		char saved[ERR_MAX];

		snprintf(saved, sizeof(saved), "%s", err_msg());
		if (s3_abort_upload(cl, o->bucket, o->key, u->upload_id) < 0) {
			log_warn("abort upload %s: %s (run `amiforge clean` later)", rid, err_msg());
		} else {
			log_info("aborted the multipart upload of s3://%s/%s", o->bucket, o->key);
			if (o->on_resource)
				o->on_resource(AWS_RES_RELEASED, "s3-upload", rid, aws_client_region(cl),
					       o->opaque);
		}
		err_set("%s", saved);
	}
	/* Every worker has ended: the buffers are on the stack, in a part or cur. */
	for (i = 0; i < u->nparts; i++)
		xfree_nofork(u->parts[i].data, u->parts[i].cap);
	for (i = 0; i < u->nfree; i++)
		xfree_nofork(u->free_bufs[i].p, u->free_bufs[i].cap);
	xfree_nofork(u->cur.p, u->cur.cap);
	free(u->free_bufs);
	free(th);
	free(rid);
	return r;
}

static void upload_init(struct upload *u, struct aws_client *cl, const struct s3_upload_opts *o)
{
	memset(u, 0, sizeof(*u));
	u->cl = cl;
	u->o = o;
	u->fd = -1;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	s3_loc(cl, o->bucket, o->key, &u->loc);
}

static void upload_release(struct upload *u)
{
	int i;

	for (i = 0; i < u->nparts; i++)
		free(u->parts[i].etag);
	free(u->parts);
	free(u->upload_id);
	free(u->error);
	s3_loc_release(&u->loc);
	if (u->fd >= 0)
		close(u->fd);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
}

int s3_upload_file(struct aws_client *cl, const char *path, const struct s3_upload_opts *o,
		   struct s3_upload_result *res)
{
	struct upload u;
	struct stat st;
	int i, r = -1;

	memset(res, 0, sizeof(*res));
	upload_init(&u, cl, o);
	u.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (u.fd < 0 || fstat(u.fd, &st) < 0) {
		err_errno("open '%s'", path);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		err_set("upload '%s': not a regular non-empty file", path);
		goto cleanup;
	}
	res->size = (uint64_t)st.st_size;
	res->part_size = s3_part_size(res->size, o->part_size);
	if (!res->part_size) {
		err_set("upload '%s': part size must be 5 MiB..5 GiB and give at most %d parts",
			path, S3_PARTS_MAX);
		goto cleanup;
	}
	u.nparts = (int)((res->size + res->part_size - 1) / res->part_size);
	u.eof = true;
	u.parts = xcalloc((size_t)u.nparts, sizeof(*u.parts));
	for (i = 0; i < u.nparts; i++) {
		u.parts[i].number = i + 1;
		u.parts[i].off = (uint64_t)i * res->part_size;
		u.parts[i].len = res->size - u.parts[i].off < res->part_size ?
				 res->size - u.parts[i].off : res->part_size;
	}
	res->parts = u.nparts;
	r = upload_run(&u, path, NULL, NULL, res);
cleanup:
	upload_release(&u);
	return r;
}

int s3_upload_stream(struct aws_client *cl, uint64_t size_hint, s3_produce_fn produce,
		     void *opaque, const char *what, const struct s3_upload_opts *o,
		     struct s3_upload_result *res)
{
	struct upload u;
	int r = -1;

	memset(res, 0, sizeof(*res));
	upload_init(&u, cl, o);
	u.part_size = o->part_size ? o->part_size : S3_STREAM_PART;
	if (u.part_size < S3_PART_MIN || u.part_size > S3_PART_MAX ||
	    s3_stream_capacity(u.part_size) < size_hint) {
		err_set("upload %s: part size must be 5 MiB..5 GiB and give at most %d parts",
			what, S3_PARTS_MAX);
		goto cleanup;
	}
	/* Entries only: untouched pages cost no memory. */
	u.parts = xcalloc(S3_PARTS_MAX, sizeof(*u.parts));
	r = upload_run(&u, what, produce, opaque, res);
cleanup:
	upload_release(&u);
	return r;
}

void s3_upload_result_release(struct s3_upload_result *res)
{
	if (res) {
		free(res->etag);
		res->etag = NULL;
	}
}

int s3_delete_object(struct aws_client *cl, const char *bucket, const char *key)
{
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs;
	struct s3_loc l;
	int r;

	s3_loc(cl, bucket, key, &l);
	s3_req(&rq, &l, "DELETE", "DeleteObject");
	r = aws_request(cl, &rq, &rs);
	aws_resp_release(&rs);
	s3_loc_release(&l);
	return r;
}

int s3_create_bucket(struct aws_client *cl, const char *bucket)
{
	struct aws_req rq = AWS_REQ_INIT;
	struct s3_loc l;
	const char *region = aws_client_region(cl);
	char *body = NULL;
	int r;

	s3_loc(cl, bucket, NULL, &l);
	s3_req(&rq, &l, "PUT", "CreateBucket");
	if (region && strcmp(region, "us-east-1") != 0) {
		body = xasprintf("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
				 "2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
				 "</CreateBucketConfiguration>", region);
		rq.body = body;
		rq.body_len = strlen(body);
	}
	r = send_done_if(cl, &rq, "BucketAlreadyOwnedByYou");
	s3_loc_release(&l);
	free(body);
	return r;
}

/* ---- GetObject, ListObjectsV2, PutObject ---- */

struct sink {
	int fd;
	uint64_t size;     /* bytes of the current attempt */
	uint64_t max;      /* the caller's limit */
};

static int sink_write(void *opaque, uint64_t off, const void *data, size_t len)
{
	struct sink *s = opaque;
	const char *p = data;

	if (off > s->max || len > s->max - off)
		return err_set("the object is larger than the limit of %" PRIu64 " bytes",
			       s->max);

	while (len) {
		ssize_t w = pwrite(s->fd, p, len, (off_t)off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return err_errno("write the downloaded object");
		}
		p += w;
		off += (uint64_t)w;
		len -= (size_t)w;
	}
	s->size = off;
	return 0;
}

int s3_get_object(struct aws_client *cl, const char *bucket, const char *key,
		  const char *expected_owner, uint64_t max, const char *path)
{
	const char *hdrs[] = { expected_owner ? "x-amz-expected-bucket-owner" : NULL,
			       expected_owner, NULL };
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs;
	struct s3_loc l;
	struct sink sk = { .fd = -1, .max = max };
	char *tmp = xasprintf("%s.XXXXXX", path), *what;
	int r = -1;

	memset(&rs, 0, sizeof(rs));
	what = xasprintf("GetObject s3://%s/%s", bucket, key);
	s3_loc(cl, bucket, key, &l);
	sk.fd = mkstemp(tmp);
	if (sk.fd < 0) {
		err_errno("%s: create a temporary file beside '%s'", what, path);
		free(tmp);
		tmp = NULL;
		goto cleanup;
	}
	s3_req(&rq, &l, "GET", what);
	rq.headers = hdrs;
	rq.on_body = sink_write;
	rq.body_opaque = &sk;
	if (aws_request(cl, &rq, &rs) < 0)
		goto cleanup;
	if (rs.content_length >= 0 && (uint64_t)rs.content_length != sk.size) {
		err_set("%s: got %" PRIu64 " bytes, Content-Length said %" PRId64, what,
			sk.size, rs.content_length);
		goto cleanup;
	}
	if (ftruncate(sk.fd, (off_t)sk.size) < 0 || fchmod(sk.fd, 0644) < 0 ||
	    close(sk.fd) < 0) {
		sk.fd = -1;
		err_errno("%s: write '%s'", what, tmp);
		goto cleanup;
	}
	sk.fd = -1;
	if (rename(tmp, path) < 0) {
		err_errno("%s: rename '%s' to '%s'", what, tmp, path);
		goto cleanup;
	}
	log_info("downloaded s3://%s/%s (%" PRIu64 " bytes)", bucket, key, sk.size);
	r = 0;
cleanup:
	if (sk.fd >= 0)
		close(sk.fd);
	if (r < 0 && tmp)
		unlink(tmp);
	aws_resp_release(&rs);
	s3_loc_release(&l);
	free(tmp);
	free(what);
	return r;
}

/* Pages of up to 1,000 keys: S3_LIST_MAX keys never need more than this
 * many non-empty pages; a server that keeps answering empty truncated pages
 * is stopped here. */
#define S3_LIST_PAGES_MAX (S3_LIST_MAX / 1000 + 100)

int s3_list_keys(struct aws_client *cl, const char *bucket, const char *prefix,
		 const char *expected_owner, struct strv *keys)
{
	const char *hdrs[] = { expected_owner ? "x-amz-expected-bucket-owner" : NULL,
			       expected_owner, NULL };
	struct s3_loc l;
	char *token = NULL, *what = xasprintf("ListObjectsV2 s3://%s/%s", bucket, prefix);
	size_t n = 0;
	int page, r = -1;

	s3_loc(cl, bucket, NULL, &l);
	for (page = 0;; page++) {
		struct buf q = BUF_INIT(64 * 1024);
		struct aws_req rq = AWS_REQ_INIT;
		struct aws_resp rs;
		xmlDoc *doc = NULL;
		xmlNode *root, *c;
		char *trunc = NULL;
		bool more, bad = false;

		if (page >= S3_LIST_PAGES_MAX) {
			err_set("%s: more than %d pages", what, S3_LIST_PAGES_MAX);
			buf_release(&q);
			goto cleanup;
		}
		if (token) {
			buf_adds(&q, "continuation-token=");
			sigv4_uri_encode(&q, token, strlen(token), false);
			buf_addc(&q, '&');
		}
		buf_adds(&q, "list-type=2&prefix=");
		sigv4_uri_encode(&q, prefix, strlen(prefix), false);
		s3_req(&rq, &l, "GET", what);
		rq.query = q.data;
		rq.headers = hdrs;
		if (aws_request(cl, &rq, &rs) < 0) {
			aws_resp_release(&rs);
			buf_release(&q);
			goto cleanup;
		}
		buf_release(&q);
		doc = xml_parse(rs.body.data ? rs.body.data : "", rs.body.len);
		aws_resp_release(&rs);
		if (!doc) {
			err_prefix("%s", what);
			goto cleanup;
		}
		root = xmlDocGetRootElement(doc);
		if (strcmp(xml_root_name(doc), "ListBucketResult") != 0) {
			err_set("%s: unexpected answer <%s>", what, xml_root_name(doc));
			xmlFreeDoc(doc);
			goto cleanup;
		}
		for (c = xml_child(root, "Contents"); c && !bad; c = xml_next(c)) {
			char *k = xml_text(c, "Key");

			if (!k)
				continue;
			if (n >= S3_LIST_MAX) {
				err_set("%s: more than %d keys match", what, S3_LIST_MAX);
				bad = true;
			} else if (strncmp(k, prefix, strlen(prefix)) == 0) {
				strv_push(keys, k);
				n++;
			}
			free(k);
		}
		trunc = xml_text(root, "IsTruncated");
		more = trunc && strcmp(trunc, "true") == 0;
		free(trunc);
		free(token);
		token = more ? xml_text(root, "NextContinuationToken") : NULL;
		xmlFreeDoc(doc);
		if (bad)
			goto cleanup;
		if (!more)
			break;
		if (!token || !*token) {
			err_set("%s: truncated answer without NextContinuationToken", what);
			goto cleanup;
		}
	}
	r = 0;
cleanup:
	s3_loc_release(&l);
	free(token);
	free(what);
	return r;
}

int s3_put_object(struct aws_client *cl, const char *path, const char *bucket,
		  const char *key, const char *expected_owner)
{
	char hex[65], b64[48], *what = xasprintf("PutObject s3://%s/%s", bucket, key);
	const char *hdrs[] = { "x-amz-checksum-sha256", b64,
			       "Content-Type", "application/octet-stream",
			       expected_owner ? "x-amz-expected-bucket-owner" : NULL,
			       expected_owner, NULL };
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs;
	struct s3_loc l;
	struct stat st;
	struct part p = { .number = 1 };
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = -1;

	memset(&rs, 0, sizeof(rs));
	s3_loc(cl, bucket, key, &l);
	if (fd < 0 || fstat(fd, &st) < 0) {
		err_errno("%s: open '%s'", what, path);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size >= S3_PART_MIN) {
		err_set("%s: '%s' is not a regular file under %llu bytes", what, path,
			(unsigned long long)S3_PART_MIN);
		goto cleanup;
	}
	p.len = (uint64_t)st.st_size;
	if (hash_part(fd, &p, hex, b64) < 0) {
		err_prefix("%s", what);
		goto cleanup;
	}
	s3_req(&rq, &l, "PUT", what);
	rq.headers = hdrs;
	rq.body_fd = fd;
	rq.body_off = 0;
	rq.body_size = p.len;
	rq.body_sha256 = hex;
	if (aws_request(cl, &rq, &rs) < 0)
		goto cleanup;
	log_info("uploaded '%s' (%" PRIu64 " bytes) to s3://%s/%s", path, p.len, bucket, key);
	r = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	aws_resp_release(&rs);
	s3_loc_release(&l);
	free(what);
	return r;
}

/* ---- `amiforge clean` ------------------------------------------------------ */

/* "s3://bucket/key[?uploadId=ID]" into its parts (caller frees). 0 or -1. */
static int parse_s3_id(const char *id, char **bucket, char **key, char **upload)
{
	const char *b, *slash, *q;

	*bucket = *key = *upload = NULL;
	if (!str_startswith(id, "s3://"))
		return err_set("'%s' is not an s3:// URL", id);
	b = id + 5;
	slash = strchr(b, '/');
	if (!slash || slash == b || !slash[1])
		return err_set("'%s' names no bucket and key", id);
	q = strstr(slash, "?uploadId=");
	*bucket = xstrndup(b, (size_t)(slash - b));
	*key = q ? xstrndup(slash + 1, (size_t)(q - slash - 1)) : xstrdup(slash + 1);
	if (q)
		*upload = xstrdup(q + strlen("?uploadId="));
	return 0;
}

static struct aws_client *release_client(const char *region)
{
	struct aws_client_opts co = { .region = region && *region ? region : NULL };

	return aws_client_new(&co);
}

int s3_release_upload(const char *kind UNUSED, const char *id, const char *region)
{
	struct aws_client *cl = NULL;
	char *bucket, *key, *upload;
	int r = -1;

	if (parse_s3_id(id, &bucket, &key, &upload) < 0)
		return -1;
	if (!upload) {
		err_set("'%s' names no uploadId", id);
		goto cleanup;
	}
	cl = release_client(region);
	if (cl && s3_abort_upload(cl, bucket, key, upload) == 0)
		r = 0;   /* NoSuchUpload (completed or aborted already) included */
cleanup:
	aws_client_free(cl);
	free(bucket);
	free(key);
	free(upload);
	return r;
}

int s3_release_object(const char *kind UNUSED, const char *id, const char *region)
{
	struct aws_client *cl = NULL;
	char *bucket, *key, *upload;
	int r = -1;

	if (parse_s3_id(id, &bucket, &key, &upload) < 0)
		return -1;
	cl = release_client(region);
	/* DeleteObject of a missing key succeeds: already gone is gone. */
	if (cl && s3_delete_object(cl, bucket, key) == 0)
		r = 0;
	aws_client_free(cl);
	free(bucket);
	free(key);
	free(upload);
	return r;
}
