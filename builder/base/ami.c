/* ami.c: a base image from an AMI's root snapshot through EBS direct (ami.h). */
#include <ctype.h>
#include <fcntl.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <sys/stat.h>

#include "ami.h"
#include "drivers/aws/ebs.h"
#include "drivers/aws/ec2.h"
#include "drivers/aws/xml.h"
#include "error.h"
#include "log.h"
#include "util.h"

static bool id_ok(const char *s, const char *prefix)
{
	size_t n = strlen(prefix), i;

	if (!s || strncmp(s, prefix, n) != 0)
		return false;
	for (i = n; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i - n >= 8 && i - n <= 17;
}

bool ami_id_ok(const char *s)
{
	return id_ok(s, "ami-");
}

bool snapshot_id_ok(const char *s)
{
	return id_ok(s, "snap-");
}

bool ssm_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0, i;

	if (!n || n > 2048)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-/", s[i]))
			return false;
	return true;
}

void ami_info_release(struct ami_info *a)
{
	if (!a)
		return;
	free(a->image_id);
	free(a->name);
	free(a->arch);
	free(a->boot_mode);
	free(a->root_device);
	free(a->snapshot_id);
	memset(a, 0, sizeof(*a));
}

static bool one_of(const char *s, const char *const *v)
{
	for (; s && *v; v++)
		if (strcmp(s, *v) == 0)
			return true;
	return false;
}

int ami_describe(struct aws_client *cl, const char *ami, struct ami_info *out)
{
	static const char *const arches[] = { "i386", "x86_64", "arm64", NULL };
	static const char *const modes[] = { "legacy-bios", "uefi", "uefi-preferred", NULL };
	const char *p[] = { "ImageId.1", ami, NULL };
	xmlDoc *doc = NULL;
	xmlNode *item, *m;
	char *state = NULL, *type = NULL, *size = NULL;
	int64_t v;
	int r = -1;

	memset(out, 0, sizeof(*out));
	if (ec2_describe_one(cl, "DescribeImages", p, "imagesSet/item", &doc, &item) < 0)
		goto cleanup;
	if (!item) {
		err_set("DescribeImages: AMI '%s' not found (or not visible to this account)", ami);
		goto cleanup;
	}
	out->image_id = xml_text(item, "imageId");
	if (!out->image_id || strcmp(out->image_id, ami) != 0) {
		err_set("DescribeImages: asked for '%s', answered with another image", ami);
		goto cleanup;
	}
	state = xml_text(item, "imageState");
	if (!state || strcmp(state, "available") != 0) {
		err_set("AMI %s is %s, not available", ami, state ? state : "in no state");
		goto cleanup;
	}
	out->name = xml_text(item, "name");
	out->arch = xml_text(item, "architecture");
	if (!one_of(out->arch, arches)) {
		err_set("AMI %s: architecture '%s' is not one amiforge builds (x86_64, arm64)",
			ami, out->arch ? out->arch : "");
		goto cleanup;
	}
	out->boot_mode = xml_text(item, "bootMode");
	if (out->boot_mode && !one_of(out->boot_mode, modes)) {
		err_set("AMI %s: unknown boot mode '%s'", ami, out->boot_mode);
		goto cleanup;
	}
	type = xml_text(item, "rootDeviceType");
	if (type && strcmp(type, "ebs") != 0) {
		err_set("AMI %s has an %s root device; only EBS-backed AMIs can be read", ami, type);
		goto cleanup;
	}
	out->root_device = xml_text(item, "rootDeviceName");
	if (!out->root_device) {
		err_set("AMI %s: no rootDeviceName", ami);
		goto cleanup;
	}
	for (m = xml_find(item, "blockDeviceMapping/item"); m; m = xml_next(m)) {
		char *dev = xml_text(m, "deviceName");
		bool root = dev && strcmp(dev, out->root_device) == 0;

		free(dev);
		if (root)
			break;
	}
	if (!m) {
		err_set("AMI %s: no block device mapping for its root device %s", ami,
			out->root_device);
		goto cleanup;
	}
	out->snapshot_id = xml_text(m, "ebs/snapshotId");
	if (!snapshot_id_ok(out->snapshot_id)) {
		err_set("AMI %s: its root device %s has no valid snapshot id", ami,
			out->root_device);
		goto cleanup;
	}
	size = xml_text(m, "ebs/volumeSize");
	if (!size || parse_i64(size, 1, AMI_VOLUME_GIB_MAX, &v) < 0) {
		err_set("AMI %s: root volume size '%s' is not 1..%d GiB", ami, size ? size : "",
			AMI_VOLUME_GIB_MAX);
		goto cleanup;
	}
	out->size_gib = (int)v;
	r = 0;
cleanup:
	if (r < 0)
		ami_info_release(out);
	free(state);
	free(type);
	free(size);
	xmlFreeDoc(doc);
	return r;
}

/* ---- the download ------------------------------------------------------------ */

struct block {
	uint64_t index;
	char *token;
};

struct fetch {
	struct aws_client *cl;
	const char *snap;
	int fd, done_fd;
	struct block *v;
	size_t n, cap, next;       /* next: the next block to hand out */
	uint64_t max_blocks;
	unsigned char *bits;       /* blocks on disk (synced once persisted) */
	size_t nbits_bytes;
	uint64_t fetched, skipped, since_sync;
	int64_t t0, last_report;
	bool failed;
	char err[ERR_MAX];
	pthread_mutex_t mu;
};

static int add_block(uint64_t index, const char *token, void *opaque)
{
	struct fetch *f = opaque;

	if (!token || !*token || strlen(token) > 1024)
		return err_set("ListSnapshotBlocks: block %" PRIu64 " without a valid token", index);
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 1024;
		f->v = xrealloc(f->v, f->cap * sizeof(*f->v));
	}
	f->v[f->n].index = index;
	f->v[f->n].token = xstrdup(token);
	f->n++;
	return 0;
}

static bool bit(const struct fetch *f, uint64_t i)
{
	return f->bits[i / 8] & (1u << (i % 8));
}

/* Sync the data, then record the bitmap: a bit on disk means its block's
 * data is on disk. Called with mu held. */
static int persist(struct fetch *f)
{
	if (fdatasync(f->fd) < 0)
		return err_errno("sync the downloaded base image");
	if (pwrite(f->done_fd, f->bits, f->nbits_bytes, 0) != (ssize_t)f->nbits_bytes)
		return err_errno("record the blocks downloaded");
	f->since_sync = 0;
	return 0;
}

static void fail(struct fetch *f)
{
	pthread_mutex_lock(&f->mu);
	if (!f->failed) {
		f->failed = true;
		snprintf(f->err, sizeof(f->err), "%s", err_msg());
	}
	pthread_mutex_unlock(&f->mu);
}

static bool all_zero(const unsigned char *p, size_t n)
{
	static const unsigned char z[4096];
	size_t i;

	for (i = 0; i < n; i += sizeof(z))
		if (memcmp(p + i, z, sizeof(z)) != 0)
			return false;
	return true;
}

static void *worker(void *opaque)
{
	struct fetch *f = opaque;
	unsigned char *buf = xmalloc(EBS_BLOCK_SIZE);

	for (;;) {
		struct block *b;
		int64_t t;

		pthread_mutex_lock(&f->mu);
		while (f->next < f->n && bit(f, f->v[f->next].index))
			f->next++;
		b = f->failed || f->next == f->n ? NULL : &f->v[f->next++];
		pthread_mutex_unlock(&f->mu);
		if (!b)
			break;
		if (ebs_get_block(f->cl, f->snap, b->index, b->token, buf) < 0) {
			fail(f);
			break;
		}
		/* A block of zeros stays a hole. */
		if (!all_zero(buf, EBS_BLOCK_SIZE) &&
		    pwrite(f->fd, buf, EBS_BLOCK_SIZE, (off_t)(b->index * EBS_BLOCK_SIZE)) !=
			    (ssize_t)EBS_BLOCK_SIZE) {
			err_errno("write block %" PRIu64 " of the base image", b->index);
			fail(f);
			break;
		}
		pthread_mutex_lock(&f->mu);
		f->bits[b->index / 8] |= (unsigned char)(1u << (b->index % 8));
		f->fetched++;
		if (++f->since_sync >= 256 && persist(f) < 0 && !f->failed) {
			f->failed = true;
			snprintf(f->err, sizeof(f->err), "%s", err_msg());
		}
		t = now_ms();
		if (t - f->last_report >= 5000) {
			double s = (double)(t - f->t0) / 1000.0;

			f->last_report = t;
			log_info("base image: %s: %" PRIu64 " of %zu blocks (%.1f MiB/s)", f->snap,
				 f->fetched + f->skipped, f->n,
				 s > 0 ? (double)f->fetched * EBS_BLOCK_SIZE / 1048576.0 / s : 0.0);
		}
		pthread_mutex_unlock(&f->mu);
	}
	free(buf);
	return NULL;
}

int ami_fetch_snapshot(struct aws_client *cl, const char *snap, int size_gib, const char *raw,
		       const char *done, uint64_t *fetched)
{
	struct fetch f = { .cl = cl, .snap = snap, .fd = -1, .done_fd = -1 };
	pthread_t th[AMI_FETCH_THREADS];
	unsigned nth = 0, i;
	uint64_t size = (uint64_t)size_gib << 30;
	struct stat st;
	int r = -1;

	*fetched = 0;
	pthread_mutex_init(&f.mu, NULL);
	f.max_blocks = size / EBS_BLOCK_SIZE;
	f.nbits_bytes = (size_t)((f.max_blocks + 7) / 8);
	f.bits = xcalloc(1, f.nbits_bytes);
	f.fd = open(raw, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f.fd < 0 || fstat(f.fd, &st) < 0) {
		err_errno("open '%s'", raw);
		goto cleanup;
	}
	f.done_fd = open(done, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f.done_fd < 0) {
		err_errno("open '%s'", done);
		goto cleanup;
	}
	/* Resume only a file of the right size with a bitmap of the right size;
	 * anything else starts over. */
	if ((uint64_t)st.st_size == size &&
	    pread(f.done_fd, f.bits, f.nbits_bytes, 0) == (ssize_t)f.nbits_bytes) {
		uint64_t k, have = 0;

		for (k = 0; k < f.max_blocks; k++)
			have += bit(&f, k);
		if (have)
			log_info("base image: %s: resuming, %" PRIu64 " blocks already here", snap,
				 have);
	} else {
		memset(f.bits, 0, f.nbits_bytes);
		if (ftruncate(f.fd, 0) < 0 || ftruncate(f.fd, (off_t)size) < 0 ||
		    ftruncate(f.done_fd, 0) < 0) {
			err_errno("size '%s'", raw);
			goto cleanup;
		}
	}
	if (ebs_list_all_blocks(cl, snap, f.max_blocks, add_block, &f) < 0)
		goto cleanup;
	for (i = 0; i < f.n; i++)
		f.skipped += bit(&f, f.v[i].index);
	log_info("base image: %s: %zu blocks of data in %d GiB, %" PRIu64 " to fetch", snap, f.n,
		 size_gib, (uint64_t)f.n - f.skipped);
	f.t0 = f.last_report = now_ms();
	for (nth = 0; nth < AMI_FETCH_THREADS && nth < f.n; nth++)
		if (pthread_create(&th[nth], NULL, worker, &f) != 0) {
			fail(&f);
			break;
		}
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	*fetched = f.fetched;
	pthread_mutex_lock(&f.mu);
	if (persist(&f) < 0 && !f.failed) {
		f.failed = true;
		snprintf(f.err, sizeof(f.err), "%s", err_msg());
	}
	pthread_mutex_unlock(&f.mu);
	if (f.failed) {
		err_set("%s (%" PRIu64 " blocks kept for the next attempt)", f.err,
			f.fetched + f.skipped);
		goto cleanup;
	}
	unlink(done);
	r = 0;
cleanup:
	for (i = 0; i < f.n; i++)
		free(f.v[i].token);
	free(f.v);
	free(f.bits);
	if (f.fd >= 0)
		close(f.fd);
	if (f.done_fd >= 0)
		close(f.done_fd);
	pthread_mutex_destroy(&f.mu);
	return r;
}
