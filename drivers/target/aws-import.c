/* aws-import.c: the VM Import target: S3 multipart upload, ImportSnapshot
 * (or ImportImage), wait for the task, register and tag (drivers/aws/ami.c),
 * delete the staging object unless asked to keep it. */
#include <sys/random.h>

#include "target.h"
#include "builder/convert/vmdk.h"
#include "drivers/aws/ami.h"
#include "drivers/aws/aws.h"
#include "drivers/aws/ec2.h"
#include "drivers/aws/s3.h"
#include "error.h"
#include "log.h"
#include "progress.h"
#include "util.h"

#define IMPORT_TIMEOUT_DEFAULT_MS (4ll * 60 * 60 * 1000)

static bool is_image(const struct publish_spec *s)
{
	return s->via && strcmp(s->via, "import-image") == 0;
}

static const char *task_kind(const struct publish_spec *s)
{
	return is_image(s) ? "import-image-task" : "import-snapshot-task";
}

static int check(const struct publish_spec *s)
{
	if (target_check_common(s) < 0)
		return -1;
	if (!s->bucket || !*s->bucket)
		return err_set("VM Import needs an S3 bucket (--bucket)");
	if (s->kms_key_id && !s->encrypted)
		return err_set("a KMS key needs --encrypted");
	if (!is_image(s) && (s->platform || s->license_type))
		return err_set("--platform and --license-type apply to --via import-image");
	if (s->platform && strcmp(s->platform, "Linux") != 0 && strcmp(s->platform, "Windows") != 0)
		return err_set("platform '%s': expected Linux or Windows", s->platform);
	if (s->license_type && strcmp(s->license_type, "AWS") != 0 &&
	    strcmp(s->license_type, "BYOL") != 0)
		return err_set("license type '%s': expected AWS or BYOL", s->license_type);
	return 0;
}

static const char *format_param(const char *f)
{
	if (strcmp(f, "raw") == 0)
		return "RAW";
	if (strcmp(f, "vmdk") == 0)
		return "VMDK";
	if (strcmp(f, "vhd") == 0)
		return "VHD";
	return NULL;
}

/* A disk VM Import cannot read (qcow2) is sent as the streamOptimized VMDK
 * made while it uploads (builder/convert/vmdk.h into s3_upload_stream):
 * no file in between. */
static bool streamed(const struct target_disk *d)
{
	return strcmp(d->format, "qcow2") == 0;
}

/* Deflate level of a streamed VMDK: libdeflate's level 1 deflates 1.4x
 * (random data) to 2.2x (the Debian fixture's) faster than level 6 for
 * 7% more bytes on the fixture: the upload, not the deflate, should be
 * what a streamed publish waits for. */
#define VMDK_STREAM_LEVEL 1

struct vmdk_job {
	const struct target_disk *d;
	const char *name;           /* the extent's name in the descriptor */
	bool progress;
	struct progress p;
	struct vmdk_stats st;
};

static void vmdk_progress(uint64_t done, uint64_t total, void *opaque)
{
	struct vmdk_job *j = opaque;

	progress_show(&j->p, done, total, NULL);
}

static int produce_vmdk(s3_write_fn write, void *wctx, void *opaque)
{
	struct vmdk_job *j = opaque;
	struct vmdk_sink sink = { write, wctx };
	struct vmdk_opts vo = {
		.input = j->d->path, .input_format = j->d->format, .name = j->name,
		.level = VMDK_STREAM_LEVEL,
		.progress = j->progress ? vmdk_progress : NULL, .opaque = j,
	};

	progress_init(&j->p, "vmdk to s3");
	return vmdk_write_stream(&vo, &sink, &j->st);
}

/* Upper bound of the VMDK's size, for the part size: every allocated byte
 * of the file as one grain's worth (deflate never grows a grain by more
 * than a few bytes; markers and tables are under 1%), plus the headers. */
static uint64_t vmdk_size_hint(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512 * 2 + (64u << 20);
}

/* ClientToken: the same staging object and name give the same token, so a
 * retried ImportSnapshot after a lost answer does not start a second task. */
static char *client_token(const char *url, const char *etag, const char *name)
{
	unsigned char rnd[16] = { 0 };
	char *in, hex[65], nonce[33];
	size_t i;

	/* Idempotent for the retries of this run's call only: after `clean`
	 * cancelled a killed run's task, a re-run must start a new one. */
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
	in = xasprintf("%s\n%s\n%s\n%s", url, etag ? etag : "", name, nonce);

	sigv4_sha256_hex(in, strlen(in), hex);
	free(in);
	hex[48] = '\0';
	return xstrdup(hex);
}

/* Poll a task until completed; fail fast on deleting/deleted. */
static int wait_task(struct aws_client *cl, const struct publish_spec *s, const char *task,
		     struct ec2_import_status *out)
{
	int64_t deadline = now_ms() + (s->import_timeout_ms ? s->import_timeout_ms
							  : IMPORT_TIMEOUT_DEFAULT_MS);
	char *last = NULL;
	int r = -1;

	for (;;) {
		struct ec2_import_status st;
		char *line;
		int q = is_image(s) ? ec2_describe_import_image(cl, task, &st)
				    : ec2_describe_import_snapshot(cl, task, &st);

		if (q < 0)
			goto cleanup;
		line = xasprintf("%s: %s%s%s%s%s%s", task, st.status,
				 st.status_message ? ", " : "",
				 st.status_message ? st.status_message : "",
				 st.progress ? " (" : "", st.progress ? st.progress : "",
				 st.progress ? "%)" : "");
		if (!last || strcmp(line, last) != 0)
			log_info("%s", line);
		free(last);
		last = line;
		if (strcmp(st.status, "completed") == 0) {
			*out = st;
			r = 0;
			goto cleanup;
		}
		if (strcmp(st.status, "deleting") == 0 || strcmp(st.status, "deleted") == 0 ||
		    strcmp(st.status, "cancelled") == 0) {
			err_set("import task %s failed: %s", task,
				st.status_message ? st.status_message : st.status);
			ec2_import_status_release(&st);
			goto cleanup;
		}
		ec2_import_status_release(&st);
		if (now_ms() > deadline) {
			err_set("import task %s not done after %" PRId64 " min; it keeps running on "
				"AWS's side (cancel with: aws ec2 cancel-import-task "
				"--import-task-id %s)", task,
				(int64_t)((s->import_timeout_ms ? s->import_timeout_ms
						       : IMPORT_TIMEOUT_DEFAULT_MS) / 60000), task);
			goto cleanup;
		}
		if (aws_sleep_ms(ami_poll_ms(s)) < 0) {
			log_warn("interrupted: cancelling import task %s", task);
			aws_cancel_request();
			err_set("import task %s: interrupted", task);
			goto cleanup;
		}
	}
cleanup:
	free(last);
	return r;
}

static void import_params(const struct publish_spec *s, const char *format,
			  const char *key, const char *token, struct strv *p)
{
	const char *pre = is_image(s) ? "DiskContainer.1." : "DiskContainer.";

	{
		char *k;
		k = xasprintf("%sFormat", pre);
		ec2_param(p, k, format_param(format));
		free(k);
		k = xasprintf("%sUserBucket.S3Bucket", pre);
		ec2_param(p, k, s->bucket);
		free(k);
		k = xasprintf("%sUserBucket.S3Key", pre);
		ec2_param(p, k, key);
		free(k);
	}
	ec2_paramf(p, "Description", "amiforge: %s", s->name);
	ec2_param(p, "RoleName", s->role_name ? s->role_name : "vmimport");
	ec2_param(p, "ClientToken", token);
	if (s->encrypted) {
		ec2_param(p, "Encrypted", "true");
		if (s->kms_key_id)
			ec2_param(p, "KmsKeyId", s->kms_key_id);
	}
	if (is_image(s)) {
		ec2_param(p, "Architecture", s->arch ? s->arch : "x86_64");
		if (s->boot_mode)
			ec2_param(p, "BootMode", s->boot_mode);
		ec2_param(p, "Platform", s->platform ? s->platform : "Linux");
		if (s->license_type)
			ec2_param(p, "LicenseType", s->license_type);
	}
}

static int publish(const struct target_disk *d, const struct publish_spec *s,
		   struct target_result *res)
{
	struct aws_client *cl = NULL;
	struct s3_upload_opts uo = { 0 };
	struct s3_upload_result ur = { 0 };
	struct ec2_import_status st = { 0 };
	struct strv p = STRV_INIT;
	const char *base = strrchr(d->path, '/');
	char *key = NULL, *token = NULL, *task = NULL, *vname = NULL;
	int64_t t0;
	int r = -1;

	memset(res, 0, sizeof(*res));
	res->via = xstrdup(is_image(s) ? "import-image" : "import-snapshot");
	if (!format_param(d->format) && !streamed(d))
		return err_set("VM Import takes raw, vmdk or vhd (or qcow2, sent as a VMDK), not '%s'",
			       d->format);
	if (check(s) < 0)
		return -1;
	cl = ami_client_new(s, res);
	if (!cl)
		return -1;
	/* Fail before uploading gigabytes (ImportImage names the AMI itself). */
	if (!is_image(s) && ami_check_name(cl, s->name) < 0)
		goto cleanup;

	base = base ? base + 1 : d->path;
	if (streamed(d)) {	/* disk.qcow2 is sent as disk.vmdk */
		const char *dot = strrchr(base, '.');

		vname = xasprintf("%.*s.vmdk", (int)(dot && dot != base ? dot - base : (ptrdiff_t)strlen(base)),
				  base);
		base = vname;
	}
	key = xasprintf("%s%s/%s", s->key_prefix ? s->key_prefix : "amiforge/", s->name, base);
	for (char *c = key; *c; c++)
		if (*c == ' ')
			*c = '_';
	res->s3_url = xasprintf("s3://%s/%s", s->bucket, key);
	uo.bucket = s->bucket;
	uo.key = key;
	uo.part_size = s->part_size;
	uo.parallel = s->parallel;
	uo.progress = s->progress;
	uo.on_resource = s->on_resource;
	uo.opaque = s->opaque;
	if (streamed(d)) {
		struct vmdk_job job = { .d = d, .name = base, .progress = s->progress };
		char *what = xasprintf("'%s' (%s) as a streamOptimized VMDK", d->path, d->format);
		int ur_r = s3_upload_stream(cl, vmdk_size_hint(d->path), produce_vmdk, &job, what,
					    &uo, &ur);

		free(what);
		if (ur_r < 0)
			goto cleanup;
		log_info("vmdk: %" PRIu64 " grains of %" PRIu64 " MiB of disk, %" PRIu64
			 " bytes in %d parts", job.st.grains_written, job.st.capacity >> 20,
			 ur.size, ur.parts);
	} else if (s3_upload_file(cl, d->path, &uo, &ur) < 0) {
		goto cleanup;
	}
	res->bytes_uploaded = ur.size;
	res->upload_ms = ur.elapsed_ms;

	t0 = now_ms();
	token = client_token(res->s3_url, ur.etag, s->name);
	import_params(s, streamed(d) ? "vmdk" : d->format, key, token, &p);
	if ((is_image(s) ? ec2_import_image(cl, &p, &task)
			 : ec2_import_snapshot(cl, &p, &task)) < 0)
		goto cleanup;
	res->import_task_id = xstrdup(task);
	if (s->on_resource)
		s->on_resource(AWS_RES_CREATED, task_kind(s), task, res->region, s->opaque);
	log_info("%s started: %s", is_image(s) ? "ImportImage" : "ImportSnapshot", task);
	if (wait_task(cl, s, task, &st) < 0) {
		if (aws_cancelled()) {
			char saved[ERR_MAX];
			snprintf(saved, sizeof(saved), "%s", err_msg());
			/* The flag is set: run the cancel call as a clean-up call. */
			aws_client_set_cleanup(cl, true);
			if (ec2_cancel_import_task(cl, task) < 0)
				log_warn("cancel import task %s: %s", task, err_msg());
			else if (s->on_resource)
				s->on_resource(AWS_RES_RELEASED, task_kind(s), task, res->region,
					       s->opaque);
			aws_client_set_cleanup(cl, false);
			err_set("%s", saved);
		}
		goto cleanup;
	}
	res->import_ms = now_ms() - t0;
	if (s->on_resource)
		s->on_resource(AWS_RES_RELEASED, task_kind(s), task, res->region, s->opaque);
	if (!st.snapshot_id) {
		err_set("import task %s completed without a snapshot id", task);
		goto cleanup;
	}
	res->snapshot_id = xstrdup(st.snapshot_id);
	if (s->on_resource)
		s->on_resource(AWS_RES_KEPT, "snapshot", st.snapshot_id, res->region, s->opaque);

	if (is_image(s)) {
		if (!st.image_id) {
			err_set("import task %s completed without an image id", task);
			goto cleanup;
		}
		if (ami_finish(cl, s, st.image_id, st.snapshot_id, res) < 0)
			goto cleanup;
	} else if (ami_register(cl, s, st.snapshot_id, res) < 0) {
		goto cleanup;
	}
	if (!s->keep_object) {
		if (s3_delete_object(cl, s->bucket, key) < 0) {
			log_warn("delete staging object %s: %s", res->s3_url, err_msg());
			err_clear();
		} else {
			res->s3_deleted = true;
			if (s->on_resource)
				s->on_resource(AWS_RES_RELEASED, "s3-object", res->s3_url, res->region,
					       s->opaque);
		}
	} else if (s->on_resource) {
		s->on_resource(AWS_RES_KEPT, "s3-object", res->s3_url, res->region, s->opaque);
	}
	r = 0;
cleanup:
	ec2_import_status_release(&st);
	s3_upload_result_release(&ur);
	strv_release(&p);
	free(key);
	free(vname);
	free(token);
	free(task);
	aws_client_free(cl);
	return r;
}

const struct target_driver target_aws_import = {
	.name = "aws-import",
	.check = check,
	.publish = publish,
};

/* `amiforge clean`: cancel an import task a killed publish left running. A
 * task already completed, deleting or deleted is gone (its snapshot, if it
 * completed, is a product and not touched). */
int aws_import_release_task(const char *kind, const char *id, const char *region)
{
	struct aws_client_opts co = { .region = region && *region ? region : NULL };
	struct aws_client *cl = aws_client_new(&co);
	struct ec2_import_status st = { 0 };
	bool image = strcmp(kind, "import-image-task") == 0;
	int r = -1;

	if (!cl)
		return -1;
	if ((image ? ec2_describe_import_image(cl, id, &st)
		   : ec2_describe_import_snapshot(cl, id, &st)) < 0) {
		if (strstr(err_msg(), "does not exist") || strstr(err_msg(), "NotFound"))
			r = 0;
		goto cleanup;
	}
	if (st.status && (strcmp(st.status, "completed") == 0 ||
			  strcmp(st.status, "deleting") == 0 || strcmp(st.status, "deleted") == 0)) {
		r = 0;
		goto cleanup;
	}
	if (ec2_cancel_import_task(cl, id) < 0)
		goto cleanup;
	log_info("cancelled import task %s", id);
	r = 0;
cleanup:
	ec2_import_status_release(&st);
	aws_client_free(cl);
	return r;
}
