/* target.c: the table of target drivers and the checks they share. */
#include "target.h"
#include "drivers/aws/names.h"
#include "error.h"
#include "drivers/hypervisor/arch.h"
#include "util.h"

extern const struct target_driver target_aws_import;
extern const struct target_driver target_aws_ebs;

static const char *const import_formats[] = { "vmdk", "vhd", "raw", "qcow2", NULL };
static const char *const ebs_formats[] = { "qcow2", "raw", "vmdk", "vhd", NULL };

const struct target_via target_vias[] = {
	{ .name = "import-snapshot", .driver = &target_aws_import, .s3_staged = true,
	  .formats = import_formats },
	{ .name = "import-image", .driver = &target_aws_import, .s3_staged = true,
	  .formats = import_formats },
	{ .name = "ebs", .driver = &target_aws_ebs, .block_level = true, .formats = ebs_formats },
	{ .name = NULL },
};

const char *const target_via_names[] = { "import-snapshot", "import-image", "ebs", NULL };

const struct target_via *target_via_find(const char *via)
{
	char *names;
	size_t i;

	if (!via)
		return &target_vias[0];
	for (i = 0; target_vias[i].name; i++)
		if (strcmp(target_vias[i].name, via) == 0)
			return &target_vias[i];
	names = words_join(target_via_names, ", ");
	err_set("unknown --via '%s' (%s)", via, names);
	free(names);
	return NULL;
}

const struct target_driver *target_find(const struct publish_spec *spec)
{
	const struct target_via *v = target_via_find(spec->via);

	return v ? v->driver : NULL;
}

const struct target_release target_releases[] = {
	{ "s3-upload", s3_release_upload },
	{ "s3-object", s3_release_object },
	{ "import-snapshot-task", aws_import_release_task },
	{ "import-image-task", aws_import_release_task },
	{ "snapshot", aws_ebs_release_snapshot },
	{ NULL, NULL },
};

void target_result_release(struct target_result *r)
{
	if (!r)
		return;
	free(r->via);
	free(r->region);
	free(r->ami_id);
	free(r->ami_name);
	free(r->snapshot_id);
	free(r->import_task_id);
	free(r->s3_url);
	free(r->parent_snapshot_id);
	free(r->block_manifest);
	memset(r, 0, sizeof(*r));
}

int target_check_common(const struct publish_spec *s)
{
	const char *p;
	size_t i;

	if (!s->name || strlen(s->name) < AWS_AMI_NAME_MIN || strlen(s->name) > AWS_AMI_NAME_MAX)
		return err_set("AMI name '%s' must be %d to %d characters", s->name ? s->name : "",
			       AWS_AMI_NAME_MIN, AWS_AMI_NAME_MAX);
	for (p = s->name; *p; p++)
		if (!aws_ami_name_char_ok(*p))
			return err_set("AMI name '%s': character '%c' is not allowed ("
				       AWS_AMI_NAME_CHARS ")", s->name, *p);
	if (s->description && strlen(s->description) > AWS_DESCRIPTION_MAX)
		return err_set("AMI description is longer than %d characters",
			       AWS_DESCRIPTION_MAX);
	if (s->arch && !arch_find_ec2(s->arch))
		return err_set("architecture '%s': expected x86_64 or arm64", s->arch);
	if (s->boot_mode && strcmp(s->boot_mode, "legacy-bios") != 0 &&
	    strcmp(s->boot_mode, "uefi") != 0 && strcmp(s->boot_mode, "uefi-preferred") != 0)
		return err_set("boot mode '%s': expected legacy-bios, uefi or uefi-preferred",
			       s->boot_mode);
	if (s->arch && arch_find_ec2(s->arch)->uefi_only && s->boot_mode &&
	    strcmp(s->boot_mode, "uefi") != 0)
		return err_set("%s images boot with UEFI only (boot mode '%s')", s->arch,
			       s->boot_mode);
	if (s->tpm && (!s->boot_mode || strcmp(s->boot_mode, "legacy-bios") == 0))
		return err_set("TPM support needs --boot-mode uefi or uefi-preferred");
	if (s->volume_type && strcmp(s->volume_type, "gp2") != 0 &&
	    strcmp(s->volume_type, "gp3") != 0 && strcmp(s->volume_type, "io1") != 0 &&
	    strcmp(s->volume_type, "io2") != 0 && strcmp(s->volume_type, "st1") != 0 &&
	    strcmp(s->volume_type, "sc1") != 0 && strcmp(s->volume_type, "standard") != 0)
		return err_set("volume type '%s' is not an EBS volume type", s->volume_type);
	if (s->volume_size_gib < 0 || s->volume_size_gib > 65536)
		return err_set("volume size %d GiB out of range", s->volume_size_gib);
	if (s->ntags > AWS_TAGS_MAX)
		return err_set("%zu tags: EC2 allows at most %d per resource", s->ntags,
			       AWS_TAGS_MAX);
	for (i = 0; i < s->ntags; i++) {
		if (str_startswith(s->tags[i].key, "aws:"))
			return err_set("tag '%s': the aws: prefix is reserved", s->tags[i].key);
		if (!aws_tag_key_ok(s->tags[i].key) ||
		    strlen(s->tags[i].value) > AWS_TAG_VALUE_MAX)
			return err_set("tag '%s': keys are 1..%d characters, values up to %d",
				       s->tags[i].key, AWS_TAG_KEY_MAX, AWS_TAG_VALUE_MAX);
	}
	return 0;
}
