/* amiforge publish DISK|BUILD_DIR: upload a finished disk and register it
 * as an AMI through a target driver (drivers/target/target.h). Prints the AMI id,
 * or with --json the manifest. */
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>

#include "commands.h"
#include "error.h"
#include "log.h"
#include "util.h"
#include "drivers/target/target.h"
#include "drivers/aws/aws.h"
#include "drivers/aws/s3.h"
#include "builder/publish/publish-dist.h"
#include "builder/publish/publish-opts.h"
#include "builder/disk/admit.h"
#include "builder/disk/archprobe.h"
#include "builder/build/builddir.h"
#include "builder/build/journal.h"

static const char usage_text[] =
	"publish DISK|BUILD_DIR [--via import-snapshot|import-image|ebs] [OPTIONS] [--json]\n"
	"   or: publish --ami AMI_ID [--region R] [distribution options] [--json]\n"
	"(options: amiforge help publish)";

static void help(void)
{
	printf("usage: amiforge %s\n\n"
	       "Uploads the disk to S3 (multipart, parallel), imports it with VM Import\n"
	       "(ImportSnapshot by default, or ImportImage), registers the snapshot as an\n"
	       "AMI (ENA, SR-IOV and IMDSv2-only by default), tags AMI and snapshot, waits\n"
	       "until it is available and deletes the staging object (--keep-object keeps it).\n"
	       "A qcow2 disk is sent as a streamOptimized VMDK made while it uploads (parts\n"
	       "deflated in parallel and uploaded as they fill; no file in between; at\n"
	       "most 32 MiB of parts in memory, which start at --part-size, default 5 MiB,\n"
	       "and double every 1,000 parts).\n\n"
	       "--via ebs writes the disk (raw, qcow2, vmdk, vhd: read in place, only the\n"
	       "blocks holding data) straight into an EBS snapshot with the EBS direct\n"
	       "APIs, --parallel blocks in flight (default 32). --parent-snapshot makes it\n"
	       "incremental: only blocks that differ from the parent are sent, using the\n"
	       "block-hash manifest (ebs-blocks-SNAP.json) kept in --block-dir (default: the\n"
	       "build directory or the disk's directory); 'auto' takes the newest one there.\n\n"
	       "Distribution (after registration; --ami AMI_ID distributes an existing AMI):\n"
	       "--copy-to copies the AMI to other regions (encrypted with KMS_KEY if given),\n"
	       "--share/--share-org/--share-ou grant launch permissions (and the snapshots'\n"
	       "createVolumePermission to the accounts) in every region, --tag tags every\n"
	       "copy. A re-run skips AMIs that exist by name and adds only what is missing;\n"
	       "an interrupted run resumes from distribution-AMI.json in --block-dir.\n\n"
	       "--name TEMPLATE may use {{ name }} (the disk's name), {{ buildDate }}\n"
	       "(UTC YYYYMMDDHHMMSS) and {{ timestamp }} (Unix seconds); default\n"
	       "'{{ name }}-{{ buildDate }}'. Credentials, region and endpoints are\n"
	       "resolved like the AWS CLI (AWS_PROFILE, ~/.aws, AWS_ENDPOINT_URL_*...).\n"
	       "AMIFORGE_AWS_POLL_MS sets the polling interval (default 15000).\n\n"
	       "Options, each with its key in a recipe's publish: section (the same values;\n"
	       "'amiforge build' publishes with them):\n",
	       usage_text);
	publish_opt_help(stdout);
	printf("  %-30s (command only)\n      %s\n  %-30s (command only)\n      %s\n",
	       "--ami AMI_ID", "distribute an existing AMI (no disk)",
	       "--json", "print the manifest as JSON");
}

/* Expand the name template. NULL with an error on an unknown placeholder. */
static char *expand_name(const char *tmpl, const char *name)
{
	struct buf b = BUF_INIT(4096);
	char date[16], ts[24];
	time_t now = time(NULL);
	struct tm tm;
	const char *p = tmpl;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y%m%d%H%M%S", &tm);
	snprintf(ts, sizeof(ts), "%lld", (long long)now);
	while (*p) {
		const char *open = strstr(p, "{{"), *close;
		char *var;

		if (!open) {
			buf_adds(&b, p);
			break;
		}
		buf_add(&b, p, (size_t)(open - p));
		close = strstr(open, "}}");
		if (!close) {
			buf_release(&b);
			err_set("--name '%s': '{{' without '}}'", tmpl);
			return NULL;
		}
		var = xstrndup(open + 2, (size_t)(close - open - 2));
		{
			char *v = var, *e;
			while (*v == ' ')
				v++;
			e = v + strlen(v);
			while (e > v && e[-1] == ' ')
				*--e = '\0';
			if (strcmp(v, "name") == 0)
				buf_adds(&b, name);
			else if (strcmp(v, "buildDate") == 0)
				buf_adds(&b, date);
			else if (strcmp(v, "timestamp") == 0)
				buf_adds(&b, ts);
			else {
				err_set("--name '%s': unknown placeholder '{{ %s }}' (name, "
					"buildDate, timestamp)", tmpl, v);
				free(var);
				buf_release(&b);
				return NULL;
			}
		}
		free(var);
		p = close + 2;
	}
	return buf_detach(&b, NULL);
}

/* The disk comes in (admit.h): its format as stated, or detected from its
 * content (never from its name), refused when it would read other host
 * files; then it must be a format the route takes. di->path and *format
 * ("raw", "vmdk", "vhd", "qcow2") are what the upload uses. */
static int admit_disk(const char *path, const char *stated, const struct target_via *via,
		      struct disk_info *di, const char **format)
{
	char *names;
	size_t i;

	if (disk_admit(path, stated, di) < 0)
		return -1;
	*format = strcmp(di->format, "vpc") == 0 ? "vhd" : di->format;
	/* qcow2 through VM Import: sent as a streamOptimized VMDK made while it
	 * uploads (drivers/target/aws-import.c). */
	if (strcmp(*format, "vmdk") == 0 && !via->block_level &&
	    (!di->create_type || strcmp(di->create_type, "streamOptimized") != 0))
		return err_set("disk '%s' is a VMDK but not streamOptimized, which VM Import "
			       "requires (amiforge convert --format vmdk)", path);
	for (i = 0; via->formats[i]; i++)
		if (strcmp(*format, via->formats[i]) == 0)
			return 0;
	names = words_join(via->formats, ", ");
	err_set("disk '%s' is %s: publish --via %s takes %s (amiforge convert)", path, di->format,
		via->name, names);
	free(names);
	return -1;
}

/* A build directory holds one exported disk; prefer what uploads fastest. */
static char *find_disk(const char *dir, const struct target_via *via)
{
	/* The names a build directory gives each format's disk. */
	static const struct { const char *format, *ext; } exts[] = {
		{ "vmdk", ".vmdk" }, { "vhd", ".vhd" }, { "raw", ".raw" }, { "raw", ".img" },
		{ "qcow2", ".qcow2" },
	};
	char *best = NULL;
	size_t rank = SIZE_MAX, i, f;
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d) {
		err_errno("open build directory '%s'", dir);
		return NULL;
	}
	/* The route's order of formats, then the order of their names. */
	while ((e = readdir(d))) {
		for (f = 0; via->formats[f]; f++)
			for (i = 0; i < ARRAY_SIZE(exts); i++) {
				size_t r = f * ARRAY_SIZE(exts) + i;

				if (r < rank && strcmp(exts[i].format, via->formats[f]) == 0 &&
				    str_endswith(e->d_name, exts[i].ext)) {
					free(best);
					best = xasprintf("%s/%s", dir, e->d_name);
					rank = r;
				}
			}
	}
	closedir(d);
	if (!best)
		err_set("build directory '%s' holds no disk (*.qcow2, *.vmdk, *.vhd, *.raw, *.img)",
			dir);
	return best;
}

/* What a publish reports: the manifest's resources list, and the journal
 * `amiforge clean` releases from when the publish is killed. */
struct pub_resources {
	json_t *list;
	struct journal *j;
};

static void on_resource(enum aws_res_event ev, const char *kind, const char *id,
			const char *region, void *opaque)
{
	struct pub_resources *pr = opaque;

	if (pr->j && journal_resource(pr->j, ev == AWS_RES_CREATED ? JOURNAL_EV_CREATED
					     : ev == AWS_RES_RELEASED ? JOURNAL_EV_RELEASED
					     : JOURNAL_EV_KEPT, kind, id, region) < 0)
		log_warn("journal: %s", err_msg());
	if (ev == AWS_RES_RELEASED)
		return;
	if (ev == AWS_RES_KEPT) {   /* listed already when it was created */
		size_t i;
		json_t *r;

		json_array_foreach(pr->list, i, r)
			if (strcmp(json_string_value(json_object_get(r, "kind")), kind) == 0 &&
			    strcmp(json_string_value(json_object_get(r, "id")), id) == 0)
				return;
	}
	log_info("created %s %s (%s)", kind, id, region ? region : "");
	json_array_append_new(pr->list, json_pack("{s:s, s:s, s:s?}", "kind", kind, "id", id,
						  "region", region));
}

/* The journal of this publish: the build directory's when one is given,
 * else a directory of its own under ./builds (removed again when nothing
 * is left in it). *own is set when it is ours. NULL with an error. */
static struct journal *publish_journal(const char *arg, bool is_dir, const char *stem,
				       struct build_dir *bd, bool *own)
{
	struct journal *j;

	*own = false;
	if (is_dir) {
		if (build_dir_open(arg, bd) < 0)
			return NULL;
	} else {
		if (build_dir_create(NULL, stem, BUILD_DIR_PUBLISH, 0, bd) < 0)
			return NULL;
		*own = true;
	}
	j = journal_open(bd->journal);
	if (j)
		log_debug("journal: %s", bd->journal);
	return j;
}

static json_t *manifest(const struct target_result *r, const struct target_disk *d,
			const struct publish_spec *s, json_t *resources)
{
	const struct target_via *via = r->via ? target_via_find(r->via) : NULL;
	json_t *tags = json_object(), *m;
	size_t i;

	for (i = 0; i < s->ntags; i++)
		json_object_set_new(tags, s->tags[i].key, json_string(s->tags[i].value));
	m = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:{s:s?, s:b}, s:I,"
			 " s:{s:s, s:s}, s:o, s:O, s:{s:I, s:I, s:I}}",
			 "via", r->via, "region", r->region, "ami_id", r->ami_id,
			 "ami_name", r->ami_name, "snapshot_id", r->snapshot_id,
			 "import_task_id", r->import_task_id,
			 "s3", "url", r->s3_url, "deleted", r->s3_deleted,
			 "bytes_uploaded", (json_int_t)r->bytes_uploaded,
			 "disk", "path", d->path, "format", d->format,
			 "tags", tags, "resources", resources,
			 "timings_ms", "upload", (json_int_t)r->upload_ms,
			 "import", (json_int_t)r->import_ms, "register", (json_int_t)r->register_ms);
	if (via && via->block_level)
		json_object_set_new(m, "ebs", json_pack("{s:s?, s:s?, s:I, s:I, s:I}",
			"parent_snapshot_id", r->parent_snapshot_id,
			"block_manifest", r->block_manifest,
			"blocks_sent", (json_int_t)r->blocks_sent,
			"blocks_data", (json_int_t)r->blocks_data,
			"blocks_unchanged", (json_int_t)r->blocks_unchanged));
	return m;
}

/* Distribute ami from region (NULL: the client's) to the source region
 * and every --copy-to region with the same shares and tags. Nothing to do
 * without distribution flags. 0 or -1. */
static int run_distribution(const struct publish_spec *s, const char *ami, const char *region,
			    const struct strv *copies, const struct strv *accounts,
			    const struct strv *groups, const struct strv *orgs,
			    const struct strv *ous, bool allow_public, struct dist_result *res)
{
	struct dist_region regs[DIST_REGIONS_MAX];
	struct dist_spec d = { .regions = regs, .allow_public = allow_public,
			       .profile = s->profile, .on_resource = s->on_resource,
			       .opaque = s->opaque };
	struct aws_client_opts co = { .profile = s->profile, .region = s->region,
				      .need_region = true };
	struct aws_client *cl = NULL;
	char *src_region = NULL, *state = NULL;
	size_t i;
	int r = -1;

	if (!copies->n && !accounts->n && !groups->n && !orgs->n && !ous->n)
		return 0;
	if (copies->n + 1 > DIST_REGIONS_MAX)
		return err_set("more than %d --copy-to regions", DIST_REGIONS_MAX - 1);
	if (!region) {
		cl = aws_client_new(&co);
		if (!cl)
			return -1;
		region = aws_client_region(cl);
	}
	src_region = xstrdup(region);
	memset(regs, 0, sizeof(regs));
	for (i = 0; i <= copies->n; i++) {
		struct dist_region *g = &regs[d.nregions++];

		g->region = src_region;
		if (i > 0) {
			char *eq = strchr(copies->v[i - 1], '=');

			g->region = copies->v[i - 1];
			if (eq) {
				*eq = '\0';
				g->kms_key_id = eq + 1;
				g->encrypted = true;
			} else {
				g->encrypted = s->encrypted;
			}
		}
		g->tags = s->tags;
		g->ntags = s->ntags;
		g->accounts = accounts->n ? (const char *const *)accounts->v : NULL;
		g->groups = groups->n ? (const char *const *)groups->v : NULL;
		g->org_arns = orgs->n ? (const char *const *)orgs->v : NULL;
		g->ou_arns = ous->n ? (const char *const *)ous->v : NULL;
	}
	state = dist_state_path(s->block_dir ? s->block_dir : ".", ami);
	d.state_file = state;
	r = distribute(&d, src_region, ami, res);
	free(state);
	free(src_region);
	aws_client_free(cl);
	return r;
}

static void print_dist(bool json, const char *ami, const struct dist_result *r)
{
	size_t i;

	if (json) {
		json_t *j = json_pack("{s:s, s:o}", "source_ami", ami, "amis", dist_result_json(r));
		char *out = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		printf("%s\n", out);
		free(out);
		json_decref(j);
		return;
	}
	for (i = 0; i < r->n; i++)
		printf("%s %s\n", r->o[i].region, r->o[i].ami_id);
}

enum { O_JSON = 256, O_AMI, O_HELP, O_TABLE };

/* What the command line says: the table's options and the command's own. */
struct publish_cmd {
	struct publish_opts po;
	bool json;
	const char *ami_only;   /* --ami: distribution of an existing AMI only */
	const char *input;      /* DISK or BUILD_DIR */
};

/* One publish's state, from the disk to the printed result. */
struct publish_run {
	struct publish_spec s;
	struct stat st;         /* of the input */
	struct disk_info di;
	struct target_disk d;
	struct target_result res;
	struct dist_result dres;
	char *path, *name, *stem;
	json_t *resources;
	struct pub_resources pr;
	struct build_dir jbd;
	bool own_dir;
};

/* Flags → c: 0, or -1 with the exit status to return now in *rc (after
 * --help, or a usage error: said). */
static int parse_flags(int argc, char **argv, struct publish_cmd *c, int *rc)
{
	struct option opts[PUBLISH_OPT_ROWS_MAX + 4] = { { 0 } };
	size_t n = publish_opt_count;
	int o;

	publish_opt_getopt(opts, O_TABLE);
	opts[n++] = (struct option){ "json", no_argument, NULL, O_JSON };
	opts[n++] = (struct option){ "ami", required_argument, NULL, O_AMI };
	opts[n++] = (struct option){ "help", no_argument, NULL, O_HELP };
	while ((o = cmd_getopt(argc, argv, "", opts)) != -1) {
		switch (o) {
		case O_JSON: c->json = true; break;
		case O_AMI: c->ami_only = optarg; break;
		case O_HELP:
			help();
			*rc = EXIT_OK;
			return -1;
		default:
			if (o >= O_TABLE && (size_t)(o - O_TABLE) < publish_opt_count) {
				const struct publish_opt *t = &publish_opt_table[o - O_TABLE];

				if (publish_opt_set(&c->po, t,
						    t->kind == POPT_BOOL ? NULL : optarg) < 0) {
					log_error("--%s %s (see 'amiforge help publish')", t->flag,
						  err_msg());
					err_clear();
					*rc = EXIT_USAGE;
					return -1;
				}
				break;
			}
			*rc = cmd_usage(usage_text);
			return -1;
		}
	}
	if (c->ami_only ? optind != argc : optind + 1 != argc) {
		*rc = cmd_usage(usage_text);
		return -1;
	}
	c->input = c->ami_only ? NULL : argv[optind];
	return 0;
}

/* The disk → the spec: which file, admitted as what, the AMI's name, the
 * journal of what the upload creates. 0 or -1 (recorded). */
static int publish_prepare(struct publish_run *p, const struct publish_cmd *c)
{
	const char *tmpl = p->s.name ? p->s.name : "{{ name }}-{{ buildDate }}";
	const char *format = c->po.format, *b;
	const struct target_via *via = target_via_find(p->s.via);
	bool is_dir;
	char *dot;

	if (!via)
		return -1;
	if (stat(c->input, &p->st) < 0)
		return err_errno("publish '%s'", c->input);
	is_dir = S_ISDIR(p->st.st_mode);
	p->path = is_dir ? find_disk(c->input, via) : xstrdup(c->input);
	if (!p->path)
		return -1;
	/* A build directory keeps the block manifests beside its manifest.json. */
	if (is_dir && !p->s.block_dir)
		p->s.block_dir = c->input;
	if (admit_disk(p->path, format, via, &p->di, &format) < 0)
		return -1;
	p->d.path = p->di.path;
	p->d.format = format;
	/* The architecture RegisterImage gets is the disk's (its partitions,
	 * else its binaries: archprobe.h), unless --arch says; a UEFI-only
	 * one (arm64) registers with BootMode uefi (drivers/aws/ami.c). */
	if (!p->s.arch) {
		const struct arch *a;
		const char *how = NULL;

		if (archprobe_disk(p->di.path, p->di.format, &a, &how) < 0)
			return -1;
		p->s.arch = a->ec2;
		log_info("architecture %s (the disk: %s)", a->ec2, how);
	}
	b = strrchr(p->path, '/');
	p->stem = xstrdup(b ? b + 1 : p->path);
	dot = strrchr(p->stem, '.');
	if (dot && dot != p->stem)
		*dot = '\0';
	p->name = expand_name(tmpl, p->stem);
	if (!p->name)
		return -1;
	p->s.name = p->name;
	p->pr.j = publish_journal(c->input, is_dir, p->stem, &p->jbd, &p->own_dir);
	if (!p->pr.j) {
		if (is_dir)
			return -1;   /* a build directory someone else wrote, or in use */
		log_warn("no journal for this publish (%s): if it is killed, `amiforge clean` "
			 "cannot release its uploads", err_msg());
		err_clear();
	}
	p->s.on_resource = on_resource;
	p->s.opaque = &p->pr;
	return 0;
}

/* The spec → an AMI: the target uploads and registers, then distribution.
 * 0 or -1 (recorded). */
static int publish_execute(struct publish_run *p, const struct publish_cmd *c)
{
	const struct publish_opts *po = &c->po;
	const struct target_driver *drv = target_find(&p->s);

	if (!drv || (drv->check && drv->check(&p->s) < 0))
		return -1;
	aws_cancel_install();
	if (po->create_bucket) {
		struct aws_client_opts co = { .profile = p->s.profile, .region = p->s.region };
		struct aws_client *cl = aws_client_new(&co);
		int r = cl ? s3_create_bucket(cl, p->s.bucket) : -1;

		aws_client_free(cl);
		if (r < 0)
			return -1;
	}
	if (drv->publish(&p->d, &p->s, &p->res) < 0)
		return -1;
	return run_distribution(&p->s, p->res.ami_id, p->res.region, &po->copy_to, &po->share,
				&po->share_group, &po->share_org, &po->share_ou,
				po->allow_public, &p->dres);
}

/* The AMI id, or with --json the manifest (redacted). */
static void publish_print(struct publish_run *p, bool json)
{
	json_t *m;
	char *out, *safe;

	if (!json) {
		printf("%s\n", p->res.ami_id);
		return;
	}
	m = manifest(&p->res, &p->d, &p->s, p->resources);
	if (p->dres.n)
		json_object_set_new(m, "amis", dist_result_json(&p->dres));
	out = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	safe = log_redact_str(out);
	printf("%s\n", safe);
	free(safe);
	free(out);
	json_decref(m);
}

/* Release the run; its journal says whether anything is left in AWS. */
static void publish_release(struct publish_run *p, int rc)
{
	dist_result_release(&p->dres);
	target_result_release(&p->res);
	disk_info_release(&p->di);
	if (p->pr.j) {
		int live = journal_live_count(p->jbd.journal);

		journal_close(p->pr.j);
		if (p->own_dir && live == 0)
			remove_tree(p->jbd.path);
		else if (live > 0 && rc != EXIT_OK)
			log_warn("what this publish left in AWS is journaled: amiforge clean %s",
				 p->jbd.path);
	}
	build_dir_release(&p->jbd);
	json_decref(p->resources);
	free(p->path);
	free(p->name);
	free(p->stem);
}

/* flags → spec → run: parse_flags, publish_prepare, publish_execute,
 * publish_print. */
int cmd_publish(int argc, char **argv)
{
	struct publish_cmd c = { 0 };
	struct publish_run p = { 0 };
	int rc = EXIT_FAIL;

	publish_opts_init(&c.po);
	p.resources = json_array();
	p.pr.list = p.resources;
	if (parse_flags(argc, argv, &c, &rc) < 0)
		goto cleanup;
	p.s = c.po.spec;
	if (c.ami_only) {
		aws_cancel_install();
		if (run_distribution(&p.s, c.ami_only, NULL, &c.po.copy_to, &c.po.share,
				     &c.po.share_group, &c.po.share_org, &c.po.share_ou,
				     c.po.allow_public, &p.dres) < 0)
			goto fail;
		print_dist(c.json, c.ami_only, &p.dres);
	} else {
		if (publish_prepare(&p, &c) < 0 || publish_execute(&p, &c) < 0)
			goto fail;
		publish_print(&p, c.json);
	}
	rc = EXIT_OK;
	goto cleanup;
fail:
	log_err_msg();
	rc = EXIT_FAIL;
cleanup:
	publish_release(&p, rc);
	publish_opts_release(&c.po);
	return rc;
}
