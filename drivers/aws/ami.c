/* ami.c: the target client, the name check, RegisterImage, CreateTags and
 * the wait for "available". */
#include "ami.h"
#include "ec2.h"
#include "error.h"
#include "drivers/hypervisor/arch.h"
#include "log.h"
#include "util.h"

/* EC2 usually marks a registered EBS AMI available within seconds; a
 * stuck "pending" beyond this is an AWS-side problem worth reporting. */
#define AMI_AVAILABLE_TIMEOUT_MS (60 * 60 * 1000)

int64_t ami_poll_ms(const struct publish_spec *spec)
{
	const char *v = getenv("AMIFORGE_AWS_POLL_MS");
	int64_t ms;

	if (spec->poll_ms > 0)
		return spec->poll_ms;
	if (v && parse_i64(v, 1, 3600 * 1000, &ms) == 0)
		return ms;
	return 15000;
}

void ami_register_params(const struct publish_spec *s, const char *snapshot_id,
			 int size_gib, struct strv *p)
{
	const char *root = s->root_device ? s->root_device : "/dev/xvda";
	const char *arch = s->arch ? s->arch : arch_get(ARCH_AUTO)->ec2;
	const char *boot = s->boot_mode;

	/* An architecture that boots UEFI only (arm64) registers so. */
	if (!boot && arch_find_ec2(arch) && arch_find_ec2(arch)->uefi_only)
		boot = "uefi";
	ec2_param(p, "Name", s->name);
	if (s->description)
		ec2_param(p, "Description", s->description);
	ec2_param(p, "Architecture", arch);
	ec2_param(p, "RootDeviceName", root);
	ec2_param(p, "VirtualizationType", "hvm");
	ec2_param(p, "BlockDeviceMapping.1.DeviceName", root);
	ec2_param(p, "BlockDeviceMapping.1.Ebs.SnapshotId", snapshot_id);
	ec2_paramf(p, "BlockDeviceMapping.1.Ebs.VolumeSize", "%d",
		   s->volume_size_gib ? s->volume_size_gib : size_gib);
	ec2_param(p, "BlockDeviceMapping.1.Ebs.VolumeType", s->volume_type ? s->volume_type : "gp3");
	ec2_param(p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
	if (s->ena)
		ec2_param(p, "EnaSupport", "true");
	if (s->sriov)
		ec2_param(p, "SriovNetSupport", "simple");
	if (boot)
		ec2_param(p, "BootMode", boot);
	if (s->imds_v2)
		ec2_param(p, "ImdsSupport", "v2.0");
	if (s->tpm)
		ec2_param(p, "TpmSupport", "v2.0");
}

int ami_tag(struct aws_client *cl, const struct publish_spec *s, const char *const *ids)
{
	struct strv kv = STRV_INIT;
	size_t i;
	int r;

	if (!s->ntags)
		return 0;
	for (i = 0; i < s->ntags; i++) {
		strv_push(&kv, s->tags[i].key);
		strv_push(&kv, s->tags[i].value);
	}
	r = ec2_create_tags(cl, ids, (const char *const *)kv.v);
	strv_release(&kv);
	return r;
}

int ami_wait_available(struct aws_client *cl, const struct publish_spec *s,
		       const char *image_id)
{
	int64_t deadline = now_ms() + AMI_AVAILABLE_TIMEOUT_MS;
	char *state = NULL, *reason = NULL;
	int r = -1;

	for (;;) {
		free(state);
		free(reason);
		if (ec2_image_state(cl, image_id, &state, &reason) < 0)
			goto cleanup;
		if (state && strcmp(state, "available") == 0)
			break;
		if (state && (strcmp(state, "failed") == 0 || strcmp(state, "error") == 0 ||
			      strcmp(state, "invalid") == 0 || strcmp(state, "deregistered") == 0)) {
			err_set("AMI %s is %s: %s", image_id, state, reason ? reason : "no reason given");
			goto cleanup;
		}
		if (now_ms() > deadline) {
			err_set("AMI %s still '%s' after %d min", image_id, state ? state : "unknown",
				AMI_AVAILABLE_TIMEOUT_MS / 60000);
			goto cleanup;
		}
		log_info("%s: %s", image_id, state ? state : "not visible yet");
		if (aws_sleep_ms(ami_poll_ms(s)) < 0) {
			err_set("wait for AMI %s: interrupted (it stays registered)", image_id);
			goto cleanup;
		}
	}
	r = 0;
cleanup:
	free(state);
	free(reason);
	return r;
}

struct aws_client *ami_client_new(const struct publish_spec *s, struct target_result *res)
{
	struct aws_client_opts co = { .profile = s->profile, .region = s->region,
				      .need_region = true };
	struct aws_client *cl = aws_client_new(&co);

	if (cl)
		res->region = xstrdup(aws_client_region(cl));
	return cl;
}

int ami_check_name(struct aws_client *cl, const char *name)
{
	char *existing = NULL;

	if (ec2_find_image_by_name(cl, name, &existing) < 0)
		return -1;
	if (existing) {
		err_set("an AMI named '%s' already exists in %s: %s", name, aws_client_region(cl),
			existing);
		free(existing);
		return -1;
	}
	return 0;
}

int ami_finish(struct aws_client *cl, const struct publish_spec *s, const char *image_id,
	       const char *snapshot_id, struct target_result *res)
{
	const char *ids[] = { image_id, snapshot_id, NULL };

	res->ami_id = xstrdup(image_id);
	res->ami_name = xstrdup(s->name);
	if (s->on_resource)
		s->on_resource(AWS_RES_KEPT, "image", image_id, aws_client_region(cl), s->opaque);
	if (ami_tag(cl, s, ids) < 0)
		return -1;
	return ami_wait_available(cl, s, image_id);
}

int ami_register(struct aws_client *cl, const struct publish_spec *s,
		 const char *snapshot_id, struct target_result *res)
{
	struct strv p = STRV_INIT;
	char *state = NULL, *image = NULL;
	int size = 0, r = -1;
	int64_t t0 = now_ms();

	if (!s->volume_size_gib && ec2_snapshot_info(cl, snapshot_id, &size, &state) < 0)
		goto cleanup;
	ami_register_params(s, snapshot_id, size, &p);
	if (ec2_register_image(cl, &p, &image) < 0)
		goto cleanup;
	log_info("registered %s '%s' from %s", image, s->name, snapshot_id);
	if (ami_finish(cl, s, image, snapshot_id, res) < 0)
		goto cleanup;
	res->register_ms = now_ms() - t0;
	r = 0;
cleanup:
	free(state);
	free(image);
	strv_release(&p);
	return r;
}
