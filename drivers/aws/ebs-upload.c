/* ebs-upload.c: the parallel block writer of EBS direct uploads and the
 * block-hash manifests that make the next upload incremental (ebs-upload.h).
 *
 * One producer (the caller's thread) reads blocks in index order into a
 * pool of buffers; workers check for zeros, hash, compare with the parent
 * and PutSnapshotBlock. Each block is retried as a whole a few times on top
 * of the client's own retries (PutSnapshotBlock is idempotent). */
#include <dirent.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "ebs-upload.h"
#include "ebs.h"
#include "error.h"
#include "log.h"
#include "progress.h"
#include "sha256-mb.h"
#include "util.h"

/* Whole-block attempts, each with the client's standard-mode retries: a
 * long throttling episode should slow an upload down, not fail it. */
#define BLOCK_ATTEMPTS 4
#define MANIFEST_PREFIX "ebs-blocks-"
/* Blocks the producer hashes together (sha256-mb.h: 16 lanes). */
#define HASH_BATCH 16

/* ---- block-hash manifests ---- */

void ebs_blockmap_release(struct ebs_blockmap *m)
{
	if (!m)
		return;
	free(m->snapshot_id);
	free(m->region);
	free(m->lineage);
	free(m->created);
	free(m->b);
	memset(m, 0, sizeof(*m));
}

static void map_add(struct ebs_blockmap *m, const struct ebs_block *b)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->b = xrealloc(m->b, m->cap * sizeof(*m->b));
	}
	m->b[m->n++] = *b;
}

static int cmp_block(const void *a, const void *b)
{
	const struct ebs_block *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

static bool snap_id_ok(const char *s)
{
	size_t i;

	if (!s || !str_startswith(s, "snap-") || strlen(s) > 64 || strlen(s) < 6)
		return false;
	for (i = 5; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int ebs_blockmap_load(struct ebs_blockmap *m, const char *dir, const char *snapshot_id)
{
	char *path = xasprintf("%s/" MANIFEST_PREFIX "%s.json", dir, snapshot_id);
	json_error_t je;
	json_t *j = NULL, *blocks, *e;
	struct stat st;
	size_t i;
	int r = -1;

	memset(m, 0, sizeof(*m));
	if (stat(path, &st) < 0) {
		r = errno == ENOENT ? 1 : err_errno("block manifest '%s'", path);
		goto cleanup;
	}
	if ((uint64_t)st.st_size > EBS_MANIFEST_MAX) {
		err_set("block manifest '%s' is larger than %llu bytes", path,
			(unsigned long long)EBS_MANIFEST_MAX);
		goto cleanup;
	}
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		err_set("%s:%d:%d: %s", path, je.line, je.column, je.text);
		goto cleanup;
	}
	blocks = json_object_get(j, "blocks");
	if (json_integer_value(json_object_get(j, "schema")) != 1 ||
	    json_integer_value(json_object_get(j, "block_size")) != EBS_BLOCK_SIZE ||
	    !json_is_array(blocks) ||
	    !json_is_string(json_object_get(j, "snapshot_id")) ||
	    strcmp(json_string_value(json_object_get(j, "snapshot_id")), snapshot_id) != 0) {
		err_set("block manifest '%s': not a schema 1 manifest of %s", path, snapshot_id);
		goto cleanup;
	}
	m->snapshot_id = xstrdup(snapshot_id);
	m->region = xstrdup(json_string_value(json_object_get(j, "region")) ?
			    json_string_value(json_object_get(j, "region")) : "");
	if (json_string_value(json_object_get(j, "lineage")))
		m->lineage = xstrdup(json_string_value(json_object_get(j, "lineage")));
	m->created = xstrdup(json_string_value(json_object_get(j, "created")) ?
			     json_string_value(json_object_get(j, "created")) : "");
	m->volume_size_gib = (uint64_t)json_integer_value(json_object_get(j, "volume_size_gib"));
	json_array_foreach(blocks, i, e) {
		struct ebs_block b = { 0 };
		json_t *ix = json_array_get(e, 0);
		const char *h = json_string_value(json_array_get(e, 1));
		unsigned char raw[48];
		int n;

		if (!json_is_integer(ix) || json_integer_value(ix) < 0 || !h || strlen(h) != 44 ||
		    (n = EVP_DecodeBlock(raw, (const unsigned char *)h, 44)) != 33 ||
		    (m->n && (uint64_t)json_integer_value(ix) <= m->b[m->n - 1].index)) {
			err_set("block manifest '%s': entry %zu is not [index, base64 SHA-256] in "
				"increasing order", path, i);
			goto cleanup;
		}
		b.index = (uint64_t)json_integer_value(ix);
		memcpy(b.md, raw, 32);
		b.known = true;
		map_add(m, &b);
	}
	r = 0;
cleanup:
	if (r != 0)
		ebs_blockmap_release(m);
	json_decref(j);
	free(path);
	return r;
}

int ebs_blockmap_save(const struct ebs_blockmap *m, const char *dir, char **path)
{
	json_t *j = json_object(), *blocks = json_array();
	char *text = NULL;
	size_t i;
	int r = -1;

	*path = xasprintf("%s/" MANIFEST_PREFIX "%s.json", dir, m->snapshot_id);
	for (i = 0; i < m->n; i++) {
		char b64[45];

		if (!m->b[i].known)
			continue;
		EVP_EncodeBlock((unsigned char *)b64, m->b[i].md, 32);
		json_array_append_new(blocks, json_pack("[I, s]", (json_int_t)m->b[i].index, b64));
	}
	json_object_set_new(j, "schema", json_integer(1));
	json_object_set_new(j, "snapshot_id", json_string(m->snapshot_id));
	json_object_set_new(j, "region", json_string(m->region ? m->region : ""));
	if (m->lineage)
		json_object_set_new(j, "lineage", json_string(m->lineage));
	json_object_set_new(j, "created", json_string(m->created ? m->created : ""));
	json_object_set_new(j, "block_size", json_integer(EBS_BLOCK_SIZE));
	json_object_set_new(j, "volume_size_gib", json_integer((json_int_t)m->volume_size_gib));
	json_object_set_new(j, "blocks", blocks);
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text) {
		err_set("block manifest '%s': cannot serialise", *path);
		goto cleanup;
	}
	r = write_file_atomic(*path, text, strlen(text), 0644);
cleanup:
	free(text);
	json_decref(j);
	return r;
}

/* "created" of a manifest file, cheaply enough: manifests are read whole. */
static int manifest_meta(const char *path, char **snap, char **created, bool *match,
			 const char *region, const char *lineage)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	const char *s, *c, *rg, *ln;

	*match = false;
	if (!j)
		return 0;   /* not ours to judge: skipped */
	s = json_string_value(json_object_get(j, "snapshot_id"));
	c = json_string_value(json_object_get(j, "created"));
	rg = json_string_value(json_object_get(j, "region"));
	ln = json_string_value(json_object_get(j, "lineage"));
	if (snap_id_ok(s) && c && rg && strcmp(rg, region) == 0 &&
	    (!lineage || (ln && strcmp(ln, lineage) == 0))) {
		*match = true;
		*snap = xstrdup(s);
		*created = xstrdup(c);
	}
	json_decref(j);
	return 0;
}

int ebs_blockmap_find_newest(const char *const *dirs, const char *region, const char *lineage,
			     char **snapshot_id, char **dir)
{
	char *best_created = NULL;
	size_t i;

	*snapshot_id = *dir = NULL;
	for (i = 0; dirs[i]; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;

		if (!d)
			continue;
		while ((e = readdir(d))) {
			char *p, *snap = NULL, *created = NULL;
			bool match;

			if (!str_startswith(e->d_name, MANIFEST_PREFIX) ||
			    !str_endswith(e->d_name, ".json"))
				continue;
			p = xasprintf("%s/%s", dirs[i], e->d_name);
			manifest_meta(p, &snap, &created, &match, region, lineage);
			if (match && (!best_created || strcmp(created, best_created) > 0)) {
				free(best_created);
				free(*snapshot_id);
				free(*dir);
				best_created = created;
				*snapshot_id = snap;
				*dir = xstrdup(dirs[i]);
			} else {
				free(snap);
				free(created);
			}
			free(p);
		}
		closedir(d);
	}
	free(best_created);
	return 0;
}

/* ---- the upload ---- */

struct slot {
	uint64_t index;
	unsigned char *buf;
	struct slot *next;
	bool zero;              /* buf is all zeros */
	bool hashed;            /* md is buf's SHA-256 (the producer's batch) */
	unsigned char md[32];
};

struct up {
	struct aws_client *cl;
	const struct ebs_upload_opts *o;
	pthread_mutex_t lock;
	pthread_cond_t work;            /* workers: a block queued, the end, a failure */
	pthread_cond_t space;           /* producer: a slot freed, a failure */
	struct slot *free_list;
	size_t nfree;                   /* slots in free_list */
	size_t space_wanted;            /* 0, or the free slots the producer waits for */
	struct slot *q_head, *q_tail;   /* blocks read, waiting for a worker */
	bool eof;                       /* producer done */
	bool failed;
	char *error;
	struct ebs_upload_result *res;  /* res->map collects blocks (under lock) */
	uint64_t sent, unchanged, zeroed, data, done;
};

static const struct ebs_block *parent_block(const struct ebs_blockmap *p, uint64_t index)
{
	struct ebs_block key = { .index = index };

	return p && p->n ? bsearch(&key, p->b, p->n, sizeof(*p->b), cmp_block) : NULL;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

static void fail_up(struct up *u, const char *msg)
{
	pthread_mutex_lock(&u->lock);
	if (!u->failed) {
		u->failed = true;
		u->error = xstrdup(msg);
	}
	pthread_cond_broadcast(&u->work);
	pthread_cond_broadcast(&u->space);
	pthread_mutex_unlock(&u->lock);
}

static int put_block(struct up *u, uint64_t index, const unsigned char *buf,
		     const char *b64, const char *hex)
{
	int i;

	for (i = 1;; i++) {
		if (ebs_put_block(u->cl, u->o->snapshot_id, index, buf, b64, hex) == 0)
			return 0;
		if (i >= BLOCK_ATTEMPTS || aws_cancelled() || strstr(err_msg(), "checksum"))
			return -1;
		log_debug("ebs: block %" PRIu64 ": %s; whole-block retry %d", index, err_msg(), i);
		if (aws_sleep_ms(500LL << i) < 0)
			return -1;
		err_clear();
	}
}

/* Decide and write one block (zero and, with the batch hashing, md set
 * by the producer). */
static int process(struct up *u, struct slot *s)
{
	const struct ebs_block *pb = parent_block(u->o->parent, s->index);
	struct ebs_block rec = { .index = s->index, .known = true };
	bool zero = s->zero;
	char b64[45], hex[65];

	if (zero && !pb)
		return 0;      /* reads as zeros already */
	if (s->hashed) {
		memcpy(rec.md, s->md, 32);
		ebs_digest_text(rec.md, b64, hex);
	} else {
		ebs_sha256(s->buf, EBS_BLOCK_SIZE, rec.md, b64, hex);
	}
	if (pb && pb->known && memcmp(pb->md, rec.md, 32) == 0) {
		pthread_mutex_lock(&u->lock);
		u->unchanged++;
		u->data += !zero;
		map_add(&u->res->map, &rec);
		pthread_mutex_unlock(&u->lock);
		return 0;
	}
	if (put_block(u, s->index, s->buf, b64, hex) < 0)
		return -1;
	rec.sent = true;
	pthread_mutex_lock(&u->lock);
	u->sent++;
	u->data += !zero;
	u->zeroed += zero;
	map_add(&u->res->map, &rec);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

static void *worker(void *arg)
{
	struct up *u = arg;

	for (;;) {
		struct slot *s;
		int r;

		pthread_mutex_lock(&u->lock);
		while (!u->q_head && !u->eof && !u->failed)
			pthread_cond_wait(&u->work, &u->lock);
		if (u->failed || !u->q_head) {
			pthread_mutex_unlock(&u->lock);
			return NULL;
		}
		s = u->q_head;
		u->q_head = s->next;
		if (!u->q_head)
			u->q_tail = NULL;
		pthread_mutex_unlock(&u->lock);

		r = process(u, s);
		if (r < 0)
			fail_up(u, err_msg());
		pthread_mutex_lock(&u->lock);
		u->done++;
		s->next = u->free_list;
		u->free_list = s;
		/* The producer fills a batch at a time: woken once per batch,
		 * or when the workers have nothing left queued. */
		u->nfree++;
		if (u->space_wanted && (u->nfree >= u->space_wanted || !u->q_head))
			pthread_cond_signal(&u->space);
		pthread_mutex_unlock(&u->lock);
	}
}

/* Position in the disk as done of total, the bytes sent beside it. */
static void draw(struct up *u, struct progress *pg, uint64_t index, uint64_t total)
{
	char extra[64];

	snprintf(extra, sizeof(extra), "%.1f MiB sent",
		 (double)__atomic_load_n(&u->sent, __ATOMIC_RELAXED) * EBS_BLOCK_SIZE / 1048576.0);
	progress_show(pg, index * EBS_BLOCK_SIZE, total * EBS_BLOCK_SIZE, extra);
}

/* The next block index >= from to look at: data on disk or held by the
 * parent. 1 with *index, 0 at the end, -1 on error. */
static int next_block(struct blockread *br, const struct ebs_blockmap *p, size_t *pi,
		      uint64_t from, uint64_t *index)
{
	uint64_t data, best = UINT64_MAX;
	int r = blockread_next_data(br, from * EBS_BLOCK_SIZE, &data);

	if (r < 0)
		return -1;
	if (r == 1)
		best = data / EBS_BLOCK_SIZE;
	while (p && *pi < p->n && p->b[*pi].index < from)
		(*pi)++;
	if (p && *pi < p->n && p->b[*pi].index < best)
		best = p->b[*pi].index;
	if (best == UINT64_MAX)
		return 0;
	*index = best;
	return 1;
}

/* Blocks read and not yet queued: hashed together (the ones a worker will
 * hash: not zeros, or held by the parent), then queued in index order.
 * Without the 16-lane code a batch is one block, queued unhashed: the
 * workers hash, on every core. */
struct batch {
	struct slot *s[HASH_BATCH];
	size_t n, max;
};

static void flush(struct up *u, struct batch *b)
{
	const unsigned char *data[HASH_BATCH];
	unsigned char md[HASH_BATCH][32];
	struct slot *h[HASH_BATCH];
	size_t i, n = 0;

	for (i = 0; b->max > 1 && i < b->n; i++) {
		struct slot *s = b->s[i];

		if (!s->zero || parent_block(u->o->parent, s->index)) {
			h[n] = s;
			data[n++] = s->buf;
		}
	}
	if (n)
		sha256_mb(data, n, EBS_BLOCK_SIZE, md);
	for (i = 0; i < n; i++) {
		memcpy(h[i]->md, md[i], 32);
		h[i]->hashed = true;
	}
	pthread_mutex_lock(&u->lock);
	for (i = 0; i < b->n; i++) {
		struct slot *s = b->s[i];

		s->next = NULL;
		if (u->q_tail)
			u->q_tail->next = s;
		else
			u->q_head = s;
		u->q_tail = s;
	}
	if (b->n > 1)
		pthread_cond_broadcast(&u->work);
	else if (b->n)
		pthread_cond_signal(&u->work);
	pthread_mutex_unlock(&u->lock);
	b->n = 0;
}

/* A free slot; NULL once the upload failed. While there is none, the
 * workers have queued blocks to send (the batch fills as they finish) or
 * they have nothing left but the batch: then it goes now. */
static struct slot *take_slot(struct up *u, struct batch *b)
{
	struct slot *s = NULL;

	pthread_mutex_lock(&u->lock);
	while (!u->free_list && !u->failed) {
		if (b->n && !u->q_head) {
			pthread_mutex_unlock(&u->lock);
			flush(u, b);
			pthread_mutex_lock(&u->lock);
			continue;
		}
		/* Enough for the rest of the batch (there are more slots than a
		 * batch: they all come back, or the queue runs dry first). */
		u->space_wanted = b->max - b->n;
		pthread_cond_wait(&u->space, &u->lock);
		u->space_wanted = 0;
	}
	if (!u->failed) {
		s = u->free_list;
		u->free_list = s->next;
		u->nfree--;
	}
	pthread_mutex_unlock(&u->lock);
	return s;
}

static int produce(struct up *u, struct blockread *br, int64_t t0)
{
	const struct ebs_blockmap *p = u->o->parent;
	uint64_t total = (blockread_size(br) + EBS_BLOCK_SIZE - 1) / EBS_BLOCK_SIZE;
	uint64_t from = 0, index;
	bool bar = u->o->progress && log_get_level() >= LOG_INFO;
	struct batch b = { .max = sha256_mb_fast() ? HASH_BATCH : 1 };
	struct progress pg;
	size_t pi = 0;
	int r;

	progress_init(&pg, "ebs");
	pg.t0 = t0;
	while ((r = next_block(br, p, &pi, from, &index)) == 1) {
		/* Parent blocks past the disk's end read as zeros: written so. */
		struct slot *s = take_slot(u, &b);

		if (!s)
			return -1;
		s->index = index;
		s->hashed = false;
		if (aws_cancelled() || blockread_read(br, index * EBS_BLOCK_SIZE, s->buf,
							EBS_BLOCK_SIZE) < 0) {
			if (aws_cancelled())
				err_set("EBS upload to %s: interrupted", u->o->snapshot_id);
			fail_up(u, err_msg());
			pthread_mutex_lock(&u->lock);
			s->next = u->free_list;
			u->free_list = s;
			u->nfree++;
			pthread_mutex_unlock(&u->lock);
			return -1;
		}
		s->zero = all_zero(s->buf, EBS_BLOCK_SIZE);
		b.s[b.n++] = s;
		if (b.n == b.max)
			flush(u, &b);
		from = index + 1;
		if (bar)
			draw(u, &pg, index, total);
	}
	if (r < 0)
		fail_up(u, err_msg());
	if (r == 0)
		flush(u, &b);
	if (bar && r == 0)
		draw(u, &pg, total, total);
	return r;
}

int ebs_upload(struct aws_client *cl, struct blockread *br, const struct ebs_upload_opts *o,
	       struct ebs_upload_result *res)
{
	int nth = o->parallel > 0 ? o->parallel : EBS_PARALLEL_DEFAULT, nslots, i, started = 0;
	struct up u = { .cl = cl, .o = o, .res = res };
	struct slot *slots;
	pthread_t *th;
	int64_t t0 = now_ms();
	int r = -1;

	memset(res, 0, sizeof(*res));
	if (nth > EBS_PARALLEL_MAX)
		nth = EBS_PARALLEL_MAX;
	/* The reader stays ahead while blocks are in flight: one more batch
	 * than the workers (16 lanes hashing), else twice the workers. */
	nslots = sha256_mb_fast() ? nth + HASH_BATCH : 2 * nth;
	slots = xcalloc((size_t)nslots, sizeof(*slots));
	th = xcalloc((size_t)nth, sizeof(*th));
	pthread_mutex_init(&u.lock, NULL);
	pthread_cond_init(&u.work, NULL);
	pthread_cond_init(&u.space, NULL);
	for (i = 0; i < nslots; i++) {
		slots[i].buf = xmalloc_nofork(EBS_BLOCK_SIZE);
		slots[i].next = u.free_list;
		u.free_list = &slots[i];
		u.nfree++;
	}
	for (i = 0; i < nth; i++) {
		if (pthread_create(&th[i], NULL, worker, &u) != 0) {
			fail_up(&u, "cannot start an upload thread");
			break;
		}
		started++;
	}
	if (!u.failed)
		produce(&u, br, t0);
	pthread_mutex_lock(&u.lock);
	u.eof = true;
	pthread_cond_broadcast(&u.work);
	pthread_mutex_unlock(&u.lock);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (u.failed) {
		err_set("%s", u.error);
		goto cleanup;
	}
	/* The LINEAR checksum: SHA-256 over the written blocks' digests in
	 * index order. */
	qsort(res->map.b, res->map.n, sizeof(*res->map.b), cmp_block);
	{
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		unsigned char md[32];
		unsigned int len;
		size_t k;

		if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
			abort();
		for (k = 0; k < res->map.n; k++)
			if (res->map.b[k].sent)
				EVP_DigestUpdate(ctx, res->map.b[k].md, 32);
		EVP_DigestFinal_ex(ctx, md, &len);
		EVP_MD_CTX_free(ctx);
		EVP_EncodeBlock((unsigned char *)res->aggregate_b64, md, 32);
	}
	res->sent = u.sent;
	res->data = u.data;
	res->unchanged = u.unchanged;
	res->zeroed = u.zeroed;
	r = 0;
cleanup:
	res->elapsed_ms = now_ms() - t0;
	for (i = 0; i < nslots; i++)
		xfree_nofork(slots[i].buf, EBS_BLOCK_SIZE);
	free(slots);
	free(th);
	free(u.error);
	pthread_mutex_destroy(&u.lock);
	pthread_cond_destroy(&u.work);
	pthread_cond_destroy(&u.space);
	return r;
}

void ebs_upload_result_release(struct ebs_upload_result *res)
{
	if (!res)
		return;
	ebs_blockmap_release(&res->map);
	memset(res, 0, sizeof(*res));
}
