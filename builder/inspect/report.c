/* The report of `amiforge inspect`: a list of checks, a table, JSON. */
#include <jansson.h>

#include "internal.h"
#include "util.h"

/* The targets are the publish routes (drivers/target/target.h's vias) and
 * "generic"; a name each. */
static const char *const target_names[] = {
	[INSPECT_FOR_IMPORT_SNAPSHOT] = "import-snapshot",
	[INSPECT_FOR_IMPORT_IMAGE] = "import-image",
	[INSPECT_FOR_EBS] = "ebs",
	[INSPECT_FOR_GENERIC] = "generic",
};

/* Boot modes as inspect prints them first, then the names they are also
 * given (a publish's legacy-bios). */
static const struct {
	const char *name;
	enum inspect_boot boot;
} boot_names[] = {
	{ "any", INSPECT_BOOT_ANY },
	{ "bios", INSPECT_BOOT_BIOS },
	{ "uefi", INSPECT_BOOT_UEFI },
	{ "legacy-bios", INSPECT_BOOT_BIOS },
};

const char *inspect_target_name(enum inspect_target t)
{
	return (size_t)t < ARRAY_SIZE(target_names) && target_names[t] ? target_names[t] :
	       target_names[INSPECT_FOR_IMPORT_SNAPSHOT];
}

bool inspect_target_find(const char *name, enum inspect_target *out)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(target_names); i++)
		if (target_names[i] && strcmp(target_names[i], name) == 0) {
			*out = (enum inspect_target)i;
			return true;
		}
	return false;
}

const char *inspect_boot_name(enum inspect_boot b)
{
	for (size_t i = 0; i < ARRAY_SIZE(boot_names); i++)
		if (boot_names[i].boot == b)
			return boot_names[i].name;
	return boot_names[0].name;
}

bool inspect_boot_find(const char *name, enum inspect_boot *out)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(boot_names); i++)
		if (strcmp(boot_names[i].name, name) == 0) {
			*out = boot_names[i].boot;
			return true;
		}
	return false;
}

const char *const inspect_check_ids[] = {
	"os.detected", "os.arch", "os.mount", "os.kernels", "disk.partition-table",
	"disk.root-fs", "disk.encryption", "boot.default-kernel", "boot.mode",
	"boot.serial-console", "kernel.drivers", "kernel.config", "kernel.initramfs",
	"kernel.nvme", "kernel.xen-blkfront", "kernel.ena", "kernel.xen-netfront",
	"fstab.device-names", "network.mac", "cloud-init.config", "cloud-init.ec2",
	"clean.ssh-host-keys", "clean.authorized-keys", "clean.machine-id", "clean.history",
	"clean.credentials", "clean.cloud-init-state", "clean.amiforge", "clean.canary",
	"clean.host-credentials", "import-image.arch", "import-image.os", "import-image.kernel",
	"import-image.bootloader", "import-image.root", "import-image.encryption",
	"import-image.size", "import-image.free-space", NULL,
};

bool inspect_check_known(const char *id)
{
	for (size_t i = 0; inspect_check_ids[i]; i++)
		if (strcmp(inspect_check_ids[i], id) == 0)
			return true;
	return false;
}

const char *check_status_name(enum check_status s)
{
	switch (s) {
	case CHECK_PASS:
		return "pass";
	case CHECK_WARN:
		return "warn";
	case CHECK_SKIP:
		return "skip";
	case CHECK_FAIL:
	default:
		return "fail";
	}
}

/* Guest text is hostile: keep report lines on one line, printable ASCII
 * (no terminal escapes, always valid UTF-8 for JSON). */
static void sanitise(char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
		else if ((unsigned char)*s >= 0x80)
			*s = '?';
	}
}

void report_add(struct inspect_ctx *c, enum check_status st, const char *id,
		const char *evidence, const char *fmt, ...)
{
	struct inspect_report *rep = c->rep;
	struct inspect_check *k;
	va_list ap;
	struct buf b = BUF_INIT(4096);
	size_t i;

	if (rep->n == rep->cap) {
		rep->cap = rep->cap ? rep->cap * 2 : 32;
		rep->v = xrealloc(rep->v, rep->cap * sizeof(*rep->v));
	}
	k = &rep->v[rep->n++];
	k->id = xstrdup(id);
	k->status = st;
	va_start(ap, fmt);
	if (buf_vprintf(&b, fmt, ap) < 0)
		buf_adds(&b, "(reason too long)");
	va_end(ap);
	k->reason = buf_detach(&b, NULL);
	for (i = 0; c->opts && i < c->opts->nskip; i++) {
		if (strcmp(c->opts->skip[i], id) == 0) {
			char *r = xasprintf("skipped by %s (would be %s): %s",
					    c->opts->skip_why ? c->opts->skip_why : "request",
					    check_status_name(st), k->reason);

			free(k->reason);
			k->reason = r;
			k->status = CHECK_SKIP;
			break;
		}
	}
	sanitise(k->reason);
	k->evidence = xstrdup(evidence ? evidence : "");
	sanitise(k->evidence);
}

void inspect_report_counts(const struct inspect_report *rep, size_t counts[4])
{
	counts[0] = counts[1] = counts[2] = counts[3] = 0;
	for (size_t i = 0; i < rep->n; i++)
		counts[rep->v[i].status]++;
}

const struct inspect_check *inspect_report_checks(const struct inspect_report *rep, size_t *n)
{
	*n = rep->n;
	return rep->v;
}

bool inspect_report_failed(const struct inspect_report *rep)
{
	size_t i;

	for (i = 0; i < rep->n; i++)
		if (rep->v[i].status == CHECK_FAIL)
			return true;
	return false;
}

void inspect_report_print(const struct inspect_report *rep, FILE *f, bool colour)
{
	static const char *const col[] = { "\033[32m", "\033[33m", "\033[31m", "\033[36m" };
	size_t i, idw = 5, np = 0, nw = 0, nf = 0, ns = 0;

	for (i = 0; i < rep->n; i++)
		if (strlen(rep->v[i].id) > idw)
			idw = strlen(rep->v[i].id);
	fprintf(f, "%s (%s) for %s, boot mode %s\n\n", rep->disk, rep->format,
		inspect_target_name(rep->target), inspect_boot_name(rep->boot));
	fprintf(f, "%-6s %-*s %s\n", "STATUS", (int)idw, "CHECK", "REASON [EVIDENCE]");
	for (i = 0; i < rep->n; i++) {
		const struct inspect_check *k = &rep->v[i];

		np += k->status == CHECK_PASS;
		nw += k->status == CHECK_WARN;
		nf += k->status == CHECK_FAIL;
		ns += k->status == CHECK_SKIP;
		fprintf(f, "%s%-6s%s %-*s %s%s%s%s\n", colour ? col[k->status] : "",
			check_status_name(k->status), colour ? "\033[0m" : "", (int)idw,
			k->id, k->reason, *k->evidence ? " [" : "", k->evidence,
			*k->evidence ? "]" : "");
	}
	fprintf(f, "\n%zu passed, %zu warnings, %zu failed", np, nw, nf);
	if (ns)
		fprintf(f, ", %zu skipped", ns);
	fputc('\n', f);
}

char *inspect_report_json(const struct inspect_report *rep)
{
	json_t *root = json_object(), *checks = json_array(), *sum = json_object();
	size_t i, cnt[4] = { 0, 0, 0, 0 };
	char *out;

	for (i = 0; i < rep->n; i++) {
		const struct inspect_check *k = &rep->v[i];

		cnt[k->status]++;
		json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:s}",
			"id", k->id, "status", check_status_name(k->status),
			"reason", k->reason, "evidence", k->evidence));
	}
	json_object_set_new(sum, "pass", json_integer((json_int_t)cnt[CHECK_PASS]));
	json_object_set_new(sum, "warn", json_integer((json_int_t)cnt[CHECK_WARN]));
	json_object_set_new(sum, "fail", json_integer((json_int_t)cnt[CHECK_FAIL]));
	json_object_set_new(sum, "skip", json_integer((json_int_t)cnt[CHECK_SKIP]));
	json_object_set_new(root, "disk", json_string(rep->disk));
	json_object_set_new(root, "format", json_string(rep->format));
	json_object_set_new(root, "for", json_string(inspect_target_name(rep->target)));
	json_object_set_new(root, "boot_mode", json_string(inspect_boot_name(rep->boot)));
	json_object_set_new(root, "ok", json_boolean(cnt[CHECK_FAIL] == 0));
	json_object_set_new(root, "summary", sum);
	json_object_set(root, "facts", rep->facts);
	json_object_set_new(root, "checks", checks);
	/* Facts from the guest go through json_string(), which refuses
	 * invalid UTF-8 (the key is then dropped): the output stays valid. */
	out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return out ? out : xstrdup("{}");
}

void inspect_report_free(struct inspect_report *rep)
{
	size_t i;

	if (!rep)
		return;
	for (i = 0; i < rep->n; i++) {
		free(rep->v[i].id);
		free(rep->v[i].reason);
		free(rep->v[i].evidence);
	}
	free(rep->v);
	json_decref(rep->facts);
	json_decref(rep->sbom);
	free(rep->disk);
	free(rep->format);
	free(rep);
}

json_t *inspect_report_sbom(const struct inspect_report *rep)
{
	return rep->sbom;
}
