/* aws-ebs.c: the EBS direct target (`--via ebs`): read the disk where it
 * holds data (builder/disk/blockread.h, no conversion), write those blocks into
 * a new snapshot (drivers/aws/ebs-upload.h; incremental against a parent
 * when one is given or recorded), complete it with the LINEAR checksum,
 * wait until it is completed, register and tag (drivers/aws/ami.c). */
#include <dirent.h>
#include <libxml/tree.h>

#include "target.h"
#include "builder/disk/blockread.h"
#include "drivers/aws/ami.h"
#include "drivers/aws/aws.h"
#include "drivers/aws/ebs.h"
#include "drivers/aws/xml.h"
#include "drivers/aws/ebs-upload.h"
#include "drivers/aws/ec2.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* EBS direct: snapshots up to 64 TiB. */
#define EBS_VOLUME_MAX_GIB (64ull * 1024)
/* A completed EBS direct snapshot turns "completed" within minutes. */
#define SNAPSHOT_WAIT_MS (2ll * 60 * 60 * 1000)
/* Sibling build directories searched for a parent's block manifest. */
#define SIBLINGS_MAX 1000
#define GIB (1024ull * 1024 * 1024)

static int check(const struct publish_spec *s)
{
	if (target_check_common(s) < 0)
		return -1;
	if (s->kms_key_id && !s->encrypted)
		return err_set("a KMS key needs --encrypted");
	if (s->kms_key_id && !str_startswith(s->kms_key_id, "arn:"))
		return err_set("EBS direct takes the KMS key as an ARN, not '%s'", s->kms_key_id);
	if (s->parallel < 0 || s->parallel > EBS_PARALLEL_MAX)
		return err_set("--parallel %d: EBS direct takes 1..%d blocks in flight",
			       s->parallel, EBS_PARALLEL_MAX);
	if (s->parent_snapshot && strcmp(s->parent_snapshot, "auto") != 0 &&
	    !str_startswith(s->parent_snapshot, "snap-"))
		return err_set("parent snapshot '%s': expected snap-... or auto", s->parent_snapshot);
	if (s->bucket || s->platform || s->license_type || s->role_name)
		return err_set("--bucket, --role-name, --platform and --license-type apply to VM "
			       "Import, not --via ebs");
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	return slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
}

/* Where to look for block manifests: the block directory and, when it is a
 * build directory (it holds manifest.json), the other builds beside it. */
static void search_dirs(const char *block_dir, struct strv *dirs)
{
	char *mf = xasprintf("%s/manifest.json", block_dir), *root;
	DIR *d;
	struct dirent *e;
	int n = 0;

	strv_push(dirs, block_dir);
	if (access(mf, F_OK) < 0) {
		free(mf);
		return;
	}
	free(mf);
	root = dir_of(block_dir);
	d = opendir(root);
	while (d && (e = readdir(d)) && n < SIBLINGS_MAX) {
		char *p;
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", root, e->d_name);
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode) && strcmp(p, block_dir) != 0) {
			strv_push(dirs, p);
			n++;
		}
		free(p);
	}
	if (d)
		closedir(d);
	free(root);
}

static int add_listed(uint64_t index, const char *token, void *opaque)
{
	struct ebs_blockmap *m = opaque;
	struct ebs_block b = { .index = index };

	(void)token;
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->b = xrealloc(m->b, m->cap * sizeof(*m->b));
	}
	m->b[m->n++] = b;
	return 0;
}

static int cmp_index(const void *a, const void *b)
{
	const struct ebs_block *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

/* The parent's blocks: its manifest, or (none recorded) the list of its
 * blocks from ListSnapshotBlocks with unknown content, so that every one
 * of them is overwritten. 0 with pm filled, or -1. */
static int load_parent(struct aws_client *cl, const struct publish_spec *s,
		       const char *block_dir, const char *snap, const char *dir_hint,
		       int size_gib, struct ebs_blockmap *pm)
{
	struct strv dirs = STRV_INIT;
	size_t i;
	int r = -1, q = 1;

	if (dir_hint)
		strv_push(&dirs, dir_hint);
	else
		search_dirs(block_dir, &dirs);
	for (i = 0; i < dirs.n && q == 1; i++)
		q = ebs_blockmap_load(pm, dirs.v[i], snap);
	if (q < 0)
		goto cleanup;
	if (q == 0) {
		log_info("incremental from %s (block manifest in %s, %zu blocks)", snap,
			 dirs.v[i - 1], pm->n);
		r = 0;
		goto cleanup;
	}
	log_warn("no block manifest of %s under %s: listing its blocks; every data block is "
		 "sent", snap, block_dir);
	memset(pm, 0, sizeof(*pm));
	pm->snapshot_id = xstrdup(snap);
	/* size unknown: EBS's largest volume, 64 TiB */
	if (ebs_list_all_blocks(cl, snap, (uint64_t)(size_gib > 0 ? size_gib : 64 * 1024) *
				(1024 * 1024 * 1024 / EBS_BLOCK_SIZE), add_listed, pm) < 0)
		goto cleanup;
	qsort(pm->b, pm->n, sizeof(*pm->b), cmp_index);
	r = 0;
cleanup:
	(void)s;
	strv_release(&dirs);
	return r;
}

/* Resolve spec->parent_snapshot: NULL, "auto" or an id. *parent set to
 * the parent's map (or left empty for a fresh snapshot). */
static int resolve_parent(struct aws_client *cl, const struct publish_spec *s,
			  const char *block_dir, struct ebs_blockmap *parent, bool *have)
{
	char *snap = NULL, *dir = NULL, *state = NULL;
	int size = 0, r = -1;
	bool automatic = s->parent_snapshot && strcmp(s->parent_snapshot, "auto") == 0;

	*have = false;
	if (!s->parent_snapshot)
		return 0;
	if (automatic) {
		struct strv dirs = STRV_INIT;

		search_dirs(block_dir, &dirs);
		ebs_blockmap_find_newest((const char *const *)dirs.v, aws_client_region(cl),
					 s->lineage, &snap, &dir);
		strv_release(&dirs);
		if (!snap) {
			log_info("no earlier EBS upload recorded for %s: full upload",
				 s->lineage ? s->lineage : "this disk");
			return 0;
		}
	} else {
		snap = xstrdup(s->parent_snapshot);
	}
	if (ec2_snapshot_info(cl, snap, &size, &state) < 0 ||
	    !state || strcmp(state, "completed") != 0) {
		if (!automatic) {
			if (state)
				err_set("parent snapshot %s is '%s', not completed", snap, state);
			goto cleanup;
		}
		log_warn("previous snapshot %s is gone or not completed (%s): full upload", snap,
			 state ? state : err_msg());
		err_clear();
		r = 0;
		goto cleanup;
	}
	if (load_parent(cl, s, block_dir, snap, dir, size, parent) < 0)
		goto cleanup;
	if (!parent->volume_size_gib)
		parent->volume_size_gib = (uint64_t)size;
	*have = true;
	r = 0;
cleanup:
	free(snap);
	free(dir);
	free(state);
	return r;
}

static int wait_completed(struct aws_client *cl, const struct publish_spec *s, const char *snap)
{
	int64_t deadline = now_ms() + SNAPSHOT_WAIT_MS;

	for (;;) {
		char *state = NULL;
		int size;

		if (ec2_snapshot_info(cl, snap, &size, &state) < 0)
			return -1;
		if (state && strcmp(state, "completed") == 0) {
			free(state);
			return 0;
		}
		if (state && strcmp(state, "error") == 0) {
			free(state);
			return err_set("snapshot %s is in state 'error' after CompleteSnapshot", snap);
		}
		log_info("%s: %s", snap, state ? state : "unknown");
		free(state);
		if (now_ms() > deadline)
			return err_set("snapshot %s not completed after %lld min", snap,
				       SNAPSHOT_WAIT_MS / 60000);
		if (aws_sleep_ms(ami_poll_ms(s)) < 0)
			return err_set("wait for snapshot %s: interrupted", snap);
	}
}

/* A snapshot that was never completed is useless: delete it. */
static void discard_snapshot(struct aws_client *cl, const struct publish_spec *s,
			     const char *snap)
{
	const char *p[] = { "SnapshotId", snap, NULL };
	char saved[ERR_MAX];

	snprintf(saved, sizeof(saved), "%s", err_msg());
	aws_client_set_cleanup(cl, true);
	if (ec2_call(cl, "DeleteSnapshot", p, NULL) < 0) {
		log_warn("delete incomplete snapshot %s: %s", snap, err_msg());
	} else {
		log_info("deleted the incomplete snapshot %s", snap);
		if (s->on_resource)
			s->on_resource(AWS_RES_RELEASED, "snapshot", snap, aws_client_region(cl),
				       s->opaque);
	}
	aws_client_set_cleanup(cl, false);
	err_set("%s", saved);
}

static void start_params(const struct publish_spec *s, uint64_t gib, const char *parent,
			 struct strv *tags, struct ebs_start *in, char token[65])
{
	size_t i;
	uint32_t nonce[4];
	char *seed;

	/* Same token on a retried StartSnapshot of this run only. */
	for (i = 0; i < 4; i++)
		nonce[i] = arc4random();
	seed = xasprintf("%s/%08x%08x%08x%08x", s->name, nonce[0], nonce[1], nonce[2], nonce[3]);
	sigv4_sha256_hex(seed, strlen(seed), token);
	free(seed);
	token[48] = '\0';
	for (i = 0; i < s->ntags; i++) {
		strv_push(tags, s->tags[i].key);
		strv_push(tags, s->tags[i].value);
	}
	memset(in, 0, sizeof(*in));
	in->volume_size_gib = gib;
	in->client_token = token;
	in->encrypted = s->encrypted;
	in->kms_key_arn = s->kms_key_id;
	in->parent_snapshot_id = parent;
	in->description = s->description ? s->description : s->name;
	in->tags = tags->n ? (const char *const *)tags->v : NULL;
}

static int publish(const struct target_disk *d, const struct publish_spec *s,
		   struct target_result *res)
{
	struct aws_client *cl = NULL;
	struct blockread *br = NULL;
	struct ebs_blockmap parent = { 0 };
	struct ebs_upload_result ur = { 0 };
	struct ebs_upload_opts uo = { 0 };
	struct ebs_start in;
	struct strv tags = STRV_INIT;
	char *block_dir = NULL, *snap = NULL, token[65], created[32];
	bool have_parent = false, completed = false;
	uint64_t gib;
	time_t now = time(NULL);
	struct tm tm;
	int r = -1;

	memset(res, 0, sizeof(*res));
	res->via = xstrdup("ebs");
	if (check(s) < 0)
		return -1;
	cl = ami_client_new(s, res);
	if (!cl)
		return -1;
	if (!s->no_register && ami_check_name(cl, s->name) < 0)
		goto cleanup;
	br = blockread_open(d->path, d->format);
	if (!br)
		goto cleanup;
	blockread_uncached(br);      /* each byte read once, then sent */
	gib = (blockread_size(br) + GIB - 1) / GIB;
	if (gib > EBS_VOLUME_MAX_GIB) {
		err_set("disk '%s' is larger than EBS direct's %llu GiB", d->path,
			EBS_VOLUME_MAX_GIB);
		goto cleanup;
	}
	block_dir = s->block_dir ? xstrdup(s->block_dir) : dir_of(d->path);
	if (resolve_parent(cl, s, block_dir, &parent, &have_parent) < 0)
		goto cleanup;
	if (have_parent) {
		res->parent_snapshot_id = xstrdup(parent.snapshot_id);
		if (parent.volume_size_gib > gib)
			gib = parent.volume_size_gib;
	}

	start_params(s, gib, have_parent ? parent.snapshot_id : NULL, &tags, &in, token);
	if (ebs_start_snapshot(cl, &in, &snap) < 0)
		goto cleanup;
	res->snapshot_id = xstrdup(snap);
	if (s->on_resource)
		s->on_resource(AWS_RES_CREATED, "snapshot", snap, res->region, s->opaque);
	log_info("StartSnapshot: %s (%" PRIu64 " GiB%s%s)", snap, gib,
		 have_parent ? ", parent " : "", have_parent ? parent.snapshot_id : "");

	uo.snapshot_id = snap;
	uo.parallel = s->parallel;
	uo.parent = have_parent ? &parent : NULL;
	uo.progress = s->progress;
	if (ebs_upload(cl, br, &uo, &ur) < 0)
		goto cleanup;
	{
		const struct blockread_stats *bs = blockread_stats(br);

		log_info("%s: %" PRIu64 " blocks sent of %" PRIu64 " holding data (%" PRIu64
			 " unchanged, %" PRIu64 " zeroed) in %.1f s; read %.1f MiB directly (%.1f "
			 "around the page cache), %.1f MiB decoded by qemu-img (%d runs, %.1f s)",
			 snap, ur.sent, ur.data, ur.unchanged, ur.zeroed,
			 (double)ur.elapsed_ms / 1000.0, (double)bs->direct_bytes / 1048576.0,
			 (double)bs->uncached_bytes / 1048576.0, (double)bs->decoded_bytes / 1048576.0,
			 bs->decode_runs, (double)bs->decode_ms / 1000.0);
	}
	if (ebs_complete_snapshot(cl, snap, ur.sent, ur.aggregate_b64) < 0)
		goto cleanup;
	completed = true;
	if (wait_completed(cl, s, snap) < 0)
		goto cleanup;
	if (s->on_resource)
		s->on_resource(AWS_RES_KEPT, "snapshot", snap, res->region, s->opaque);
	res->upload_ms = ur.elapsed_ms;
	res->blocks_sent = ur.sent;
	res->blocks_data = ur.data;
	res->blocks_unchanged = ur.unchanged;
	res->bytes_uploaded = ur.sent * (uint64_t)EBS_BLOCK_SIZE;

	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ur.map.snapshot_id = xstrdup(snap);
	ur.map.region = xstrdup(res->region);
	ur.map.lineage = s->lineage ? xstrdup(s->lineage) : NULL;
	ur.map.created = xstrdup(created);
	ur.map.volume_size_gib = gib;
	if (mkdir_p(block_dir, 0755) < 0 ||
	    ebs_blockmap_save(&ur.map, block_dir, &res->block_manifest) < 0) {
		/* The snapshot is good; only the next incremental upload suffers. */
		log_warn("block manifest: %s", err_msg());
		err_clear();
	}
	if (!s->no_register && ami_register(cl, s, snap, res) < 0)
		goto cleanup;
	r = 0;
cleanup:
	if (r < 0 && snap && !completed)
		discard_snapshot(cl, s, snap);
	ebs_upload_result_release(&ur);
	ebs_blockmap_release(&parent);
	blockread_close(br);
	strv_release(&tags);
	free(block_dir);
	free(snap);
	aws_client_free(cl);
	return r;
}

const struct target_driver target_aws_ebs = {
	.name = "aws-ebs",
	.check = check,
	.publish = publish,
};

/* Does one of this account's AMIs map snap? 1, 0, or -1. (Scanned: moto
 * has no block-device-mapping.snapshot-id filter.) */
static int snapshot_in_use(struct aws_client *cl, const char *snap)
{
	const char *q[] = { "Owner.1", "self", NULL };
	xmlDoc *doc = NULL;
	xmlNode *item = NULL, *m;
	int used = 0;

	if (ec2_describe_one(cl, "DescribeImages", q, "imagesSet/item", &doc, &item) < 0)
		return -1;
	for (; item && !used; item = xml_next(item))
		for (m = xml_find(item, "blockDeviceMapping/item"); m && !used; m = xml_next(m)) {
			char *id = xml_text(m, "ebs/snapshotId");

			used = id && strcmp(id, snap) == 0;
			free(id);
		}
	if (doc)
		xmlFreeDoc(doc);
	return used;
}

/* `amiforge clean`: a snapshot StartSnapshot made and the killed publish
 * never completed is deleted; a completed one is a product and kept. */
int aws_ebs_release_snapshot(const char *kind UNUSED, const char *id, const char *region)
{
	struct aws_client_opts co = { .region = region && *region ? region : NULL };
	struct aws_client *cl = aws_client_new(&co);
	const char *p[] = { "SnapshotId", id, NULL };
	char *state = NULL;
	int gib, r = -1;

	if (!cl)
		return -1;
	if (!str_startswith(id, "snap-")) {
		err_set("'%s' is not a snapshot id", id);
		goto cleanup;
	}
	if (ec2_snapshot_info(cl, id, &gib, &state) < 0) {
		if (strstr(err_msg(), "not found") || strstr(err_msg(), "NotFound"))
			r = 0;
		goto cleanup;
	}
	/* The publish never saw it completed (else it would be journaled
	 * kept): an orphan, whatever its state, unless an AMI uses it. */
	if (state && strcmp(state, "completed") == 0) {
		int used = snapshot_in_use(cl, id);

		if (used < 0)
			goto cleanup;
		if (used) {
			log_info("snapshot %s is completed and an AMI uses it: kept", id);
			r = 0;
			goto cleanup;
		}
	}
	if (ec2_call(cl, "DeleteSnapshot", p, NULL) < 0)
		goto cleanup;
	log_info("deleted the incomplete snapshot %s", id);
	r = 0;
cleanup:
	free(state);
	aws_client_free(cl);
	return r;
}
