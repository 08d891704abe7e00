/* ebs.c: EBS direct API calls over the shared client (http.c: signing,
 * retries by x-amzn-ErrorType, deadlines), JSON with jansson. */
#include <jansson.h>
#include <openssl/evp.h>

#include "ebs.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* A block in two sends of curl's upload buffer instead of eight: each send
 * is a turn of curl's transfer loop (two polls, the progress and speed
 * checks); 5% of EBS direct's CPU. Per worker thread: 32 x 256 KiB, paid
 * for by fewer block buffers (ebs-upload.c). 512 KiB measured no better. */
#define EBS_SEND_BUFFER (256u * 1024)

void ebs_sha256(const void *data, size_t n, unsigned char md[32], char b64[45], char hex[65])
{
	sigv4_sha256(data, n, md);
	ebs_digest_text(md, b64, hex);
}

void ebs_digest_text(const unsigned char md[32], char b64[45], char hex[65])
{
	if (b64)
		EVP_EncodeBlock((unsigned char *)b64, md, 32);
	if (hex)
		sigv4_hex(md, 32, hex);
}

/* A JSON answer's object, or NULL with "what: answer: ..." recorded. */
static json_t *answer(const struct aws_resp *rs, const char *what)
{
	json_error_t je;
	json_t *j = json_loadb(rs->body.data ? rs->body.data : "", rs->body.len, 0, &je);

	if (!j || !json_is_object(j)) {
		json_decref(j);
		err_set("%s: answer is not a JSON object (%s)", what, j ? "" : je.text);
		return NULL;
	}
	return j;
}

/* Start an EBS direct request (answers: JSON up to EBS_JSON_MAX). */
static void ebs_req(struct aws_req *rq, const char *method, const char *path, const char *what)
{
	rq->service = AWS_EBS;
	rq->method = method;
	rq->path = path;
	rq->resp_max = EBS_JSON_MAX;
	rq->what = what;
}

static char *path_of(const char *fmt, const char *snapshot_id, uint64_t index)
{
	struct buf b = BUF_INIT(4096);
	char *p;

	/* Snapshot ids are snap-[0-9a-f]+; encode anyway, they come from outside. */
	sigv4_uri_encode(&b, snapshot_id, strlen(snapshot_id), false);
	p = xasprintf(fmt, b.data ? b.data : "", index);
	buf_release(&b);
	return p;
}

int ebs_start_snapshot(struct aws_client *cl, const struct ebs_start *in, char **snapshot_id)
{
	const char *hdrs[] = { "Content-Type", "application/json", NULL };
	json_t *req = json_object(), *tags = NULL, *ans = NULL;
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs = { 0 };
	char *body = NULL;
	const char *id;
	size_t i;
	int r = -1;

	*snapshot_id = NULL;
	json_object_set_new(req, "VolumeSize", json_integer((json_int_t)in->volume_size_gib));
	json_object_set_new(req, "Timeout", json_integer(in->timeout_min ? in->timeout_min : 60));
	if (in->client_token)
		json_object_set_new(req, "ClientToken", json_string(in->client_token));
	if (in->encrypted)
		json_object_set_new(req, "Encrypted", json_true());
	if (in->kms_key_arn)
		json_object_set_new(req, "KmsKeyArn", json_string(in->kms_key_arn));
	if (in->parent_snapshot_id)
		json_object_set_new(req, "ParentSnapshotId", json_string(in->parent_snapshot_id));
	if (in->description)
		json_object_set_new(req, "Description", json_string(in->description));
	for (i = 0; in->tags && in->tags[i] && in->tags[i + 1]; i += 2) {
		if (!tags)
			tags = json_array();
		json_array_append_new(tags, json_pack("{s:s, s:s}", "Key", in->tags[i],
						      "Value", in->tags[i + 1]));
	}
	if (tags)
		json_object_set_new(req, "Tags", tags);
	body = json_dumps(req, JSON_COMPACT);
	ebs_req(&rq, "POST", "/snapshots", "StartSnapshot");
	rq.headers = hdrs;
	rq.body = body;
	rq.body_len = strlen(body);
	if (aws_request(cl, &rq, &rs) < 0 || !(ans = answer(&rs, "StartSnapshot")))
		goto cleanup;
	id = json_string_value(json_object_get(ans, "SnapshotId"));
	if (!id || !str_startswith(id, "snap-") || strlen(id) > 64) {
		err_set("StartSnapshot: no valid SnapshotId in the answer");
		goto cleanup;
	}
	/* moto answers BlockSize 512 (AWS: 524288): the API's size is fixed. */
	*snapshot_id = xstrdup(id);
	r = 0;
cleanup:
	json_decref(req);
	json_decref(ans);
	aws_resp_release(&rs);
	free(body);
	return r;
}

int ebs_put_block(struct aws_client *cl, const char *snapshot_id, uint64_t index,
		  const void *data, const char *sha256_b64, const char *sha256_hex)
{
	char len[16], *path = path_of("/snapshots/%s/blocks/%" PRIu64, snapshot_id, index);
	char *what = xasprintf("PutSnapshotBlock %" PRIu64 " of %s", index, snapshot_id);
	const char *hdrs[] = { "Content-Type", "application/octet-stream",
			       "x-amz-Data-Length", len,
			       "x-amz-Checksum", sha256_b64,
			       "x-amz-Checksum-Algorithm", "SHA256", NULL };
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs = { 0 };
	int r = -1;

	snprintf(len, sizeof(len), "%u", EBS_BLOCK_SIZE);
	ebs_req(&rq, "PUT", path, what);
	rq.headers = hdrs;
	rq.body = data;
	rq.body_len = EBS_BLOCK_SIZE;
	rq.body_sha256 = sha256_hex;
	rq.send_buffer = EBS_SEND_BUFFER;
	if (aws_request(cl, &rq, &rs) < 0)
		goto cleanup;
	if (rs.checksum && strcmp(rs.checksum, sha256_b64) != 0) {
		err_set("%s: the service stored checksum %s, we sent %s", what, rs.checksum,
			sha256_b64);
		goto cleanup;
	}
	r = 0;
cleanup:
	aws_resp_release(&rs);
	free(path);
	free(what);
	return r;
}

int ebs_complete_snapshot(struct aws_client *cl, const char *snapshot_id, uint64_t changed,
			  const char *aggregate_b64)
{
	char count[24], *path = path_of("/snapshots/completion/%s", snapshot_id, 0);
	const char *hdrs[] = { "x-amz-ChangedBlocksCount", count,
			       "x-amz-Checksum", aggregate_b64,
			       "x-amz-Checksum-Algorithm", "SHA256",
			       "x-amz-Checksum-Aggregation-Method", "LINEAR", NULL };
	const char *plain[] = { "x-amz-ChangedBlocksCount", count, NULL };
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs = { 0 };
	json_t *ans = NULL;
	const char *st;
	int r = -1;

	snprintf(count, sizeof(count), "%" PRIu64, changed);
	ebs_req(&rq, "POST", path, "CompleteSnapshot");
	/* No block written: there is no checksum to aggregate. */
	rq.headers = changed ? hdrs : plain;
	if (aws_request(cl, &rq, &rs) < 0 || !(ans = answer(&rs, "CompleteSnapshot")))
		goto cleanup;
	st = json_string_value(json_object_get(ans, "Status"));
	if (!st || (strcmp(st, "completed") != 0 && strcmp(st, "pending") != 0)) {
		err_set("CompleteSnapshot %s: status '%s'", snapshot_id, st ? st : "(none)");
		goto cleanup;
	}
	r = 0;
cleanup:
	json_decref(ans);
	aws_resp_release(&rs);
	free(path);
	return r;
}

/* The two listings, one mechanism: ListSnapshotBlocks (one token per block)
 * and ListChangedBlocks (the first and the second snapshot's tokens, either
 * absent where that snapshot lacks the block). */
struct listing {
	const char *what, *path_fmt, *array, *tok1, *tok2;
};
static const struct listing LIST_BLOCKS = {
	"ListSnapshotBlocks", "/snapshots/%s/blocks", "Blocks", "BlockToken", NULL
};
static const struct listing LIST_CHANGED = {
	"ListChangedBlocks", "/snapshots/%s/changedblocks", "ChangedBlocks", "FirstBlockToken",
	"SecondBlockToken"
};

static const char *opt_token(const json_t *b, const char *key, bool *bad)
{
	const json_t *t = key ? json_object_get(b, key) : NULL;

	if (t && (!json_is_string(t) || !json_string_length(t)))
		*bad = true;
	return json_string_value(t);
}

/* One page of a listing of snapshot_id (first: ListChangedBlocks' first
 * snapshot, else NULL). */
static int list_page(struct aws_client *cl, const struct listing *k, const char *snapshot_id,
		     const char *first, char **next_token, ebs_change_fn fn, void *opaque)
{
	char *path = path_of(k->path_fmt, snapshot_id, 0), *what = NULL;
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs = { 0 };
	struct buf q = BUF_INIT(64 * 1024);
	json_t *ans = NULL, *blocks, *b;
	const char *nt;
	size_t i;
	int r = -1;

	/* Parameters in canonical (sorted) order. */
	if (first) {
		buf_adds(&q, "firstSnapshotId=");
		sigv4_uri_encode(&q, first, strlen(first), false);
		buf_adds(&q, "&");
	}
	buf_adds(&q, "maxResults=10000");
	if (*next_token) {
		buf_adds(&q, "&pageToken=");
		sigv4_uri_encode(&q, *next_token, strlen(*next_token), false);
	}
	free(*next_token);
	*next_token = NULL;
	what = xasprintf("%s %s", k->what, snapshot_id);
	ebs_req(&rq, "GET", path, what);
	rq.query = q.data;
	if (aws_request(cl, &rq, &rs) < 0 || !(ans = answer(&rs, what)))
		goto cleanup;
	blocks = json_object_get(ans, k->array);
	if (blocks && !json_is_array(blocks)) {
		err_set("%s: %s is not a list", what, k->array);
		goto cleanup;
	}
	json_array_foreach(blocks, i, b) {
		json_t *ix = json_object_get(b, "BlockIndex");
		bool bad = false;
		const char *t1 = opt_token(b, k->tok1, &bad), *t2 = opt_token(b, k->tok2, &bad);
		int64_t v = -1;

		/* moto sends the index as a string */
		if (json_is_integer(ix))
			v = json_integer_value(ix);
		else if (json_is_string(ix) && parse_i64(json_string_value(ix), 0, INT64_MAX, &v) < 0)
			v = -1;
		if (v < 0 || bad || (!t1 && !t2) || (!k->tok2 && !t1)) {
			err_set("%s: block %zu lacks a valid BlockIndex or block token", what, i);
			goto cleanup;
		}
		if (fn((uint64_t)v, t1, t2, opaque) < 0)
			goto cleanup;
	}
	nt = json_string_value(json_object_get(ans, "NextToken"));
	if (nt && *nt)
		*next_token = xstrdup(nt);
	r = 0;
cleanup:
	json_decref(ans);
	aws_resp_release(&rs);
	buf_release(&q);
	free(path);
	free(what);
	return r;
}

struct one_token {
	ebs_block_fn fn;
	void *opaque;
};

static int one_token(uint64_t index, const char *token, const char *unused, void *opaque)
{
	struct one_token *o = opaque;

	(void)unused;
	return o->fn(index, token, o->opaque);
}

int ebs_list_blocks(struct aws_client *cl, const char *snapshot_id, char **next_token,
		    ebs_block_fn fn, void *opaque)
{
	struct one_token o = { fn, opaque };

	return list_page(cl, &LIST_BLOCKS, snapshot_id, NULL, next_token, one_token, &o);
}

struct list_bound {
	uint64_t max_blocks, seen, page_blocks;
	ebs_change_fn fn;
	void *opaque;
	const char *what, *snapshot_id;
};

static int bounded_block(uint64_t index, const char *t1, const char *t2, void *opaque)
{
	struct list_bound *lb = opaque;

	if (index >= lb->max_blocks)
		return err_set("%s %s: block index %" PRIu64 " is past the snapshot's %" PRIu64
			       " blocks", lb->what, lb->snapshot_id, index, lb->max_blocks);
	if (++lb->seen > lb->max_blocks)
		return err_set("%s %s: more than the snapshot's %" PRIu64 " blocks listed",
			       lb->what, lb->snapshot_id, lb->max_blocks);
	lb->page_blocks++;
	return lb->fn(index, t1, t2, lb->opaque);
}

static int list_all(struct aws_client *cl, const struct listing *k, const char *snapshot_id,
		    const char *first, uint64_t max_blocks, ebs_change_fn fn, void *opaque)
{
	struct list_bound lb = { .max_blocks = max_blocks, .fn = fn, .opaque = opaque,
				 .what = k->what, .snapshot_id = snapshot_id };
	char *tok = NULL, *prev = NULL;
	int pages = 0, empty = 0, r = -1;

	do {
		if (++pages > EBS_LIST_PAGES_MAX) {
			err_set("%s %s: more than %d pages", k->what, snapshot_id,
				EBS_LIST_PAGES_MAX);
			goto cleanup;
		}
		free(prev);
		prev = tok ? xstrdup(tok) : NULL;
		lb.page_blocks = 0;
		if (list_page(cl, k, snapshot_id, first, &tok, bounded_block, &lb) < 0)
			goto cleanup;
		if (tok && prev && strcmp(tok, prev) == 0) {
			err_set("%s %s: NextToken repeats the previous one", k->what, snapshot_id);
			goto cleanup;
		}
		empty = lb.page_blocks ? 0 : empty + 1;
		if (tok && empty >= EBS_LIST_EMPTY_PAGES_MAX) {
			err_set("%s %s: %d pages in a row without a block", k->what, snapshot_id,
				empty);
			goto cleanup;
		}
	} while (tok);
	r = 0;
cleanup:
	free(tok);
	free(prev);
	return r;
}

int ebs_list_all_blocks(struct aws_client *cl, const char *snapshot_id, uint64_t max_blocks,
			ebs_block_fn fn, void *opaque)
{
	struct one_token o = { fn, opaque };

	return list_all(cl, &LIST_BLOCKS, snapshot_id, NULL, max_blocks, one_token, &o);
}

int ebs_list_changed_blocks(struct aws_client *cl, const char *first, const char *second,
			    uint64_t max_blocks, ebs_change_fn fn, void *opaque)
{
	return list_all(cl, &LIST_CHANGED, second, first, max_blocks, fn, opaque);
}

int ebs_get_block(struct aws_client *cl, const char *snapshot_id, uint64_t index,
		  const char *token, void *buf)
{
	char *path = path_of("/snapshots/%s/blocks/%" PRIu64, snapshot_id, index), *query;
	char *what = xasprintf("GetSnapshotBlock %" PRIu64 " of %s", index, snapshot_id);
	struct buf enc = BUF_INIT(64 * 1024);
	struct aws_req rq = AWS_REQ_INIT;
	struct aws_resp rs = { 0 };
	unsigned char md[32];
	char b64[45];
	int r = -1;

	sigv4_uri_encode(&enc, token, strlen(token), false);
	query = xasprintf("blockToken=%s", enc.data ? enc.data : "");
	ebs_req(&rq, "GET", path, what);
	rq.query = query;
	rq.resp_max = EBS_BLOCK_SIZE;
	if (aws_request(cl, &rq, &rs) < 0)
		goto cleanup;
	if (rs.body.len != EBS_BLOCK_SIZE) {
		err_set("%s: %zu bytes, expected %u", what, rs.body.len, EBS_BLOCK_SIZE);
		goto cleanup;
	}
	ebs_sha256(rs.body.data, rs.body.len, md, b64, NULL);
	/* EBS always sends the block's checksum: an answer without one is not
	 * trusted either. */
	if (!rs.checksum) {
		err_set("%s: no checksum in the answer", what);
		goto cleanup;
	}
	if (strcmp(rs.checksum, b64) != 0) {
		err_set("%s: checksum mismatch (header %s, data %s)", what, rs.checksum, b64);
		goto cleanup;
	}
	memcpy(buf, rs.body.data, EBS_BLOCK_SIZE);
	r = 0;
cleanup:
	aws_resp_release(&rs);
	buf_release(&enc);
	free(query);
	free(path);
	free(what);
	return r;
}
