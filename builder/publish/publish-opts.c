/* publish-opts.c: the table of publish options (publish-opts.h). */
#include <stddef.h>

#include "publish-opts.h"
#include "drivers/aws/names.h"
#include "drivers/aws/s3.h"
#include "error.h"
#include "log.h"

static const char *const boot_modes[] = { "legacy-bios", "uefi", "uefi-preferred", NULL };
static const char *const arches[] = { "x86_64", "arm64", NULL };
static const char *const volume_types[] = { "gp3", "gp2", "io1", "io2", "st1", "sc1",
					    "standard", NULL };
static const char *const platforms[] = { "Linux", "Windows", NULL };
static const char *const licenses[] = { "AWS", "BYOL", NULL };
static const char *const formats[] = { "raw", "vmdk", "vhd", "qcow2", NULL };
static const char *const groups[] = { "all", NULL };

static int check_bucket(const char *b)
{
	size_t n = strlen(b), i;
	bool ok = n >= 3 && n <= 63;

	for (i = 0; ok && i < n; i++) {
		char ch = b[i];

		ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';
	}
	if (!ok || b[0] == '.' || b[0] == '-' || b[n - 1] == '.' || b[n - 1] == '-' ||
	    strstr(b, ".."))
		return err_set("'%s' is not a valid S3 bucket name (3-63 of a-z 0-9 . -)", b);
	return 0;
}

static int check_region(const char *r)
{
	if (!aws_region_ok(r))
		return err_set("'%s' is not an AWS region name (e.g. " AWS_REGION_EXAMPLE ")", r);
	return 0;
}

/* The command's name is a template expanded later ({{ name }} is the disk's);
 * only a name without one can be checked now. */
static int check_name(const char *s)
{
	if (!strstr(s, "{{") && !aws_ami_name_ok(s))
		return err_set("'%s' is not a valid AMI name (3-128 of " AWS_AMI_NAME_CHARS ")", s);
	return 0;
}

static int check_description(const char *s)
{
	if (strlen(s) > AWS_DESCRIPTION_MAX)
		return err_set("is longer than %d characters", AWS_DESCRIPTION_MAX);
	return 0;
}

static int check_account(const char *s)
{
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i != 12 || s[i])
		return err_set("'%s' is not a 12-digit AWS account id", s);
	return 0;
}

static int check_snapshot(const char *s)
{
	if (strcmp(s, "auto") != 0 && !str_startswith(s, "snap-"))
		return err_set("'%s': expected a snapshot id (snap-...) or 'auto'", s);
	return 0;
}

#define OFF(f) offsetof(struct publish_opts, f)
#define DIST "a recipe distributes in its distribution: section"

const struct publish_opt publish_opt_table[] = {
	{ .flag = "via", .recipe_key = "via", .arg = "ROUTE", .kind = POPT_WORD,
	  .off = OFF(spec.via), .words = target_via_names,
	  .help = "VM Import of a snapshot (default) or of an image, or EBS direct" },
	{ .flag = "region", .recipe_key = "region", .arg = "R", .kind = POPT_STR,
	  .off = OFF(spec.region), .check = check_region,
	  .help = "the region (default: AWS_REGION, the profile's)" },
	{ .flag = "profile", .recipe_key = "profile", .arg = "P", .kind = POPT_STR,
	  .off = OFF(spec.profile), .help = "the AWS profile (default: AWS_PROFILE, default)" },
	{ .flag = "bucket", .recipe_key = "bucket", .arg = "B", .kind = POPT_STR,
	  .off = OFF(spec.bucket), .check = check_bucket,
	  .help = "S3 bucket for VM Import's staging object" },
	{ .flag = "prefix", .recipe_key = "prefix", .arg = "P", .kind = POPT_STR,
	  .off = OFF(spec.key_prefix), .help = "S3 key prefix (default amiforge/)" },
	{ .flag = "create-bucket", .recipe_key = "create_bucket", .kind = POPT_BOOL,
	  .off = OFF(create_bucket), .flag_value = true, .help = "create the bucket first" },
	{ .flag = "keep-object", .recipe_key = "keep_object", .kind = POPT_BOOL,
	  .off = OFF(spec.keep_object), .flag_value = true,
	  .help = "keep the S3 staging object after the import" },
	{ .flag = "part-size", .recipe_key = "part_size", .arg = "SIZE", .kind = POPT_SIZE,
	  .off = OFF(spec.part_size), .min = (int64_t)S3_PART_MIN, .max = (int64_t)S3_PART_MAX,
	  .help = "S3 multipart part size, 5M..5G (default: automatic)" },
	{ .flag = "parallel", .recipe_key = "parallel", .arg = "N", .kind = POPT_INT,
	  .off = OFF(spec.parallel), .min = 1, .max = S3_PARALLEL_MAX,
	  .help = "parts (VM Import, default 8) or blocks (EBS, default 32) in flight" },
	{ .flag = "role-name", .recipe_key = "role", .arg = "R", .kind = POPT_STR,
	  .off = OFF(spec.role_name), .help = "VM Import's service role (default vmimport)" },
	{ .flag = "platform", .recipe_key = "platform", .arg = "P", .kind = POPT_WORD,
	  .off = OFF(spec.platform), .words = platforms, .help = "import-image: the platform" },
	{ .flag = "license-type", .recipe_key = "license_type", .arg = "T", .kind = POPT_WORD,
	  .off = OFF(spec.license_type), .words = licenses,
	  .help = "import-image: the license type" },
	{ .flag = "parent-snapshot", .recipe_key = "parent_snapshot", .arg = "snap-...|auto",
	  .kind = POPT_STR, .off = OFF(spec.parent_snapshot), .check = check_snapshot,
	  .help = "EBS direct: send only the blocks that differ from this snapshot "
		  "(a build: auto)" },
	{ .flag = "name", .recipe_key = "name", .arg = "TEMPLATE", .kind = POPT_STR,
	  .off = OFF(spec.name), .check = check_name,
	  .help = "the AMI's name (default '{{ name }}-{{ buildDate }}')" },
	{ .flag = "description", .recipe_key = "description", .arg = "D", .kind = POPT_STR,
	  .off = OFF(spec.description), .check = check_description,
	  .help = "the AMI's description" },
	{ .flag = "tag", .recipe_key = "tags", .arg = "KEY=VALUE", .kind = POPT_TAG,
	  .help = "a tag on the AMI and its snapshot (repeat; a recipe: a mapping)" },
	{ .flag = "arch", .recipe_key = "architecture", .arg = "A", .kind = POPT_WORD,
	  .off = OFF(spec.arch), .words = arches, .help = "the architecture (default: the disk's, read from it)" },
	{ .flag = "boot-mode", .recipe_key = "boot_mode", .arg = "M", .kind = POPT_WORD,
	  .off = OFF(spec.boot_mode), .words = boot_modes, .help = "the boot mode" },
	{ .flag = "root-device", .recipe_key = "root_device", .arg = "DEV", .kind = POPT_STR,
	  .off = OFF(spec.root_device), .help = "the root device name (default /dev/xvda)" },
	{ .flag = "volume-size", .recipe_key = "volume_size", .arg = "GIB", .kind = POPT_INT,
	  .off = OFF(spec.volume_size_gib), .min = 1, .max = 65536,
	  .help = "the root volume's size (default: the snapshot's)" },
	{ .flag = "volume-type", .recipe_key = "volume_type", .arg = "TYPE", .kind = POPT_WORD,
	  .off = OFF(spec.volume_type), .words = volume_types,
	  .help = "the root volume's type (default gp3)" },
	{ .flag = "tpm", .recipe_key = "tpm", .kind = POPT_BOOL, .off = OFF(spec.tpm),
	  .flag_value = true, .help = "NitroTPM v2.0 (UEFI boot modes only)" },
	{ .flag = "no-ena", .recipe_key = "ena", .kind = POPT_BOOL, .off = OFF(spec.ena),
	  .flag_value = false, .help = "no ENA support (a recipe: ena: false)" },
	{ .flag = "no-sriov", .recipe_key = "sriov", .kind = POPT_BOOL, .off = OFF(spec.sriov),
	  .flag_value = false, .help = "no SR-IOV (a recipe: sriov: false)" },
	{ .flag = "imds-optional", .recipe_key = "imds_v2", .kind = POPT_BOOL,
	  .off = OFF(spec.imds_v2), .flag_value = false,
	  .help = "IMDSv1 allowed too (a recipe: imds_v2: false)" },
	{ .flag = "encrypted", .recipe_key = "encrypted", .kind = POPT_BOOL,
	  .off = OFF(spec.encrypted), .flag_value = true, .help = "encrypt the snapshot" },
	{ .flag = "kms-key-id", .recipe_key = "kms_key_id", .arg = "K", .kind = POPT_STR,
	  .off = OFF(spec.kms_key_id), .help = "the KMS key to encrypt with" },
	{ .flag = "format", .arg = "F", .kind = POPT_WORD, .off = OFF(format), .words = formats,
	  .recipe_note = "a build publishes its own output (a vmdk when output.formats has "
			 "one, else the qcow2)",
	  .help = "the disk's format (default: from its content)" },
	{ .flag = "block-dir", .arg = "DIR", .kind = POPT_STR, .off = OFF(spec.block_dir),
	  .recipe_note = "a build keeps its block manifests in its build directory",
	  .help = "EBS direct: where block-hash manifests are kept" },
	{ .flag = "copy-to", .arg = "REGION[=KMS_KEY]", .kind = POPT_LIST, .off = OFF(copy_to),
	  .recipe_note = DIST " (regions: [{region: ...}])",
	  .help = "copy the AMI to another region (repeat)" },
	{ .flag = "share", .arg = "ACCOUNT", .kind = POPT_LIST, .off = OFF(share),
	  .check = check_account,
	  .recipe_note = DIST " (launch_permission: {accounts: [...]})",
	  .help = "launch permission for an account (repeat)" },
	{ .flag = "share-org", .arg = "ARN", .kind = POPT_LIST, .off = OFF(share_org),
	  .recipe_note = DIST " (launch_permission: {organization_arns: [...]})",
	  .help = "launch permission for an organization (repeat)" },
	{ .flag = "share-ou", .arg = "ARN", .kind = POPT_LIST, .off = OFF(share_ou),
	  .recipe_note = DIST " (launch_permission: {organizational_unit_arns: [...]})",
	  .help = "launch permission for an organizational unit (repeat)" },
	{ .flag = "share-group", .arg = "all", .kind = POPT_LIST, .off = OFF(share_group),
	  .words = groups, .recipe_note = DIST " (launch_permission: {groups: [all]})",
	  .help = "make the AMI public (with --allow-public)" },
	{ .flag = "allow-public", .kind = POPT_BOOL, .off = OFF(allow_public),
	  .flag_value = true, .recipe_note = DIST " (allow_public: true)",
	  .help = "confirm --share-group all" },
};
const size_t publish_opt_count = ARRAY_SIZE(publish_opt_table);
_Static_assert(ARRAY_SIZE(publish_opt_table) <= PUBLISH_OPT_ROWS_MAX, "PUBLISH_OPT_ROWS_MAX");

void publish_opts_init(struct publish_opts *po)
{
	memset(po, 0, sizeof(*po));
	po->spec.ena = po->spec.sriov = po->spec.imds_v2 = true;
	po->spec.progress = true;
	po->spec.tags = po->tags;
}

void publish_opts_release(struct publish_opts *po)
{
	if (!po)
		return;
	strv_release(&po->copy_to);
	strv_release(&po->share);
	strv_release(&po->share_group);
	strv_release(&po->share_org);
	strv_release(&po->share_ou);
	strv_release(&po->owned);
	memset(po, 0, sizeof(*po));
}

static const char *keep(struct publish_opts *po, const char *s)
{
	strv_push(&po->owned, s);
	return po->owned.v[po->owned.n - 1];
}

static int one_of(const char *v, const char *const *words)
{
	const char *hint;
	char *list;
	size_t n;

	for (n = 0; words[n]; n++)
		if (strcmp(v, words[n]) == 0)
			return 0;
	list = words_join(words, ", ");
	hint = closest_word(v, words, n);
	if (hint)
		err_set("'%s' is not one of %s; did you mean '%s'?", v, list, hint);
	else
		err_set("'%s' is not one of %s", v, list);
	free(list);
	return -1;
}

int publish_opt_add_tag(struct publish_opts *po, const char *key, const char *value)
{
	if (po->spec.ntags == PUBLISH_TAGS_MAX)
		return err_set("more than %d tags", PUBLISH_TAGS_MAX);
	if (!aws_tag_key_ok(key))
		return err_set("key '%s' must be 1-%d characters and not start with 'aws:'",
			       key, AWS_TAG_KEY_MAX);
	if (strlen(value) > AWS_TAG_VALUE_MAX)
		return err_set("'%s' value is longer than %d characters", key,
			       AWS_TAG_VALUE_MAX);
	po->tags[po->spec.ntags].key = keep(po, key);
	po->tags[po->spec.ntags].value = keep(po, value);
	po->spec.tags = po->tags;
	po->spec.ntags++;
	return 0;
}

int publish_opt_set(struct publish_opts *po, const struct publish_opt *o, const char *value)
{
	char *field = (char *)po + o->off;
	int64_t v;
	uint64_t u;

	switch (o->kind) {
	case POPT_BOOL:
		if (!value)
			*(bool *)field = o->flag_value;
		else if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0)
			*(bool *)field = false;
		else
			return err_set("must be true or false, not '%s'", value);
		return 0;
	case POPT_STR:
		if (!*value)
			return err_set("is empty");
		if (o->check && o->check(value) < 0)
			return -1;
		*(const char **)field = keep(po, value);
		return 0;
	case POPT_WORD:
		if (one_of(value, o->words) < 0)
			return -1;
		*(const char **)field = keep(po, value);
		return 0;
	case POPT_INT:
		if (parse_i64(value, o->min, o->max, &v) < 0)
			return -1;
		*(int *)field = (int)v;
		return 0;
	case POPT_SIZE:
		if (parse_size(value, &u) < 0 || u < (uint64_t)o->min || u > (uint64_t)o->max)
			return err_set("'%s': expected 5M..5G", value);
		*(uint64_t *)field = u;
		return 0;
	case POPT_TAG: {
		const char *eq = strchr(value, '=');
		char *key;
		int r;

		if (!eq || eq == value)
			return err_set("'%s': expected KEY=VALUE", value);
		key = xstrndup(value, (size_t)(eq - value));
		r = publish_opt_add_tag(po, key, eq + 1);
		free(key);
		return r;
	}
	case POPT_LIST:
		if (o->words && one_of(value, o->words) < 0)
			return -1;
		if (o->check && o->check(value) < 0)
			return -1;
		strv_push((struct strv *)field, value);
		return 0;
	}
	return err_set("unknown option kind");
}

const struct publish_opt *publish_opt_find(const char *name)
{
	size_t i, j;

	for (i = 0; i < publish_opt_count; i++) {
		const char *f = publish_opt_table[i].flag;

		for (j = 0; f[j] && (f[j] == name[j] || (f[j] == '-' && name[j] == '_')); j++)
			;
		if (!f[j] && !name[j])
			return &publish_opt_table[i];
	}
	return NULL;
}

void publish_opt_getopt(struct option *out, int base)
{
	size_t i;

	for (i = 0; i < publish_opt_count; i++) {
		out[i].name = publish_opt_table[i].flag;
		out[i].has_arg = publish_opt_table[i].kind == POPT_BOOL ? no_argument
									 : required_argument;
		out[i].flag = NULL;
		out[i].val = base + (int)i;
	}
}

void publish_opt_help(FILE *f)
{
	size_t i;

	for (i = 0; i < publish_opt_count; i++) {
		const struct publish_opt *o = &publish_opt_table[i];
		struct buf left = BUF_INIT(1024);
		const char *const *w;

		buf_printf(&left, "--%s", o->flag);
		if (o->kind == POPT_WORD)
			for (w = o->words; *w; w++)
				buf_printf(&left, "%s%s", w == o->words ? " " : "|", *w);
		else if (o->arg)
			buf_printf(&left, " %s", o->arg);
		fprintf(f, "  %-30s %s\n      %s\n", left.data,
			o->recipe_key ? o->recipe_key : "(command only)", o->help);
		buf_release(&left);
	}
}
