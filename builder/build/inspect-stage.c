/* The build's inspect stage (inspect-stage.h). */
#include <jansson.h>

#include "inspect-stage.h"
#include "drivers/aws/aws.h"
#include "drivers/target/target.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* Credential strings searched: access key id, secret key, session token. */
#define CRED_NEEDLES_MAX (3 * CRED_FRAGMENTS_MAX)

size_t cred_fragments(const char *s, bool skip_start, char (*out)[CRED_FRAGMENT_BUF], size_t max)
{
	size_t len = s ? strlen(s) : 0, n = 0, offs[3], i;

	if (len < CRED_SEARCH_MIN || max == 0)
		return 0;
	if (len <= 2 * CRED_FRAGMENT_LEN) {
		memcpy(out[0], s, len);
		out[0][len] = '\0';
		return 1;
	}
	offs[0] = 0;
	offs[1] = len / 2 - CRED_FRAGMENT_LEN / 2;
	offs[2] = len - CRED_FRAGMENT_LEN;
	for (i = skip_start ? 1 : 0; i < 3 && n < max; i++) {
		memcpy(out[n], s + offs[i], CRED_FRAGMENT_LEN);
		out[n][CRED_FRAGMENT_LEN] = '\0';
		n++;
	}
	return n;
}

/* The recipe's publish route is the inspection's target (the same names);
 * not published: the checks every target shares. */
static enum inspect_target target_of(const struct recipe *r)
{
	const struct target_via *via = r->publish.set ? target_via_find(r->publish.o.spec.via) :
				       NULL;
	enum inspect_target t = INSPECT_FOR_GENERIC;   /* left as is when not found */

	if (via)
		inspect_target_find(via->name, &t);
	return t;
}

/* A boot mode the publish requires (uefi-preferred requires none). */
static enum inspect_boot boot_of(const struct recipe *r)
{
	enum inspect_boot b = INSPECT_BOOT_ANY;   /* left as is when not found */

	if (r->publish.set)
		inspect_boot_find(r->publish.o.spec.boot_mode, &b);
	return b;
}

/* Fragments of the credentials the build publishes with (the same profile
 * and region resolution as the publish stage). Nothing when the recipe does
 * not publish or no credentials resolve (then publishing fails later). */
static size_t cred_needles(const struct recipe *r, char (*frag)[CRED_FRAGMENT_BUF],
			   const char **needles)
{
	struct aws_client_opts ao = { .profile = r->publish.o.spec.profile,
				      .region = r->publish.o.spec.region };
	struct aws_client *cl;
	const struct aws_creds *cr;
	size_t n = 0, i;

	if (!r->publish.set)
		return 0;
	cl = aws_client_new(&ao);
	if (!cl) {
		log_warn("inspect: no AWS credentials to search the output for: %s", err_msg());
		err_clear();
		return 0;
	}
	cr = aws_client_creds(cl);
	n += cred_fragments(cr->access_key_id, false, frag + n, CRED_NEEDLES_MAX - n);
	n += cred_fragments(cr->secret_access_key, false, frag + n, CRED_NEEDLES_MAX - n);
	n += cred_fragments(cr->session_token, true, frag + n, CRED_NEEDLES_MAX - n);
	aws_client_free(cl);
	for (i = 0; i < n; i++) {
		log_add_secret(frag[i]);
		needles[i] = frag[i];
	}
	return n;
}

/* Write the SBOM; the manifest's summary of it: path, package count, kernels
 * (or why there is none). */
static json_t *write_sbom(const json_t *bom, const char *path)
{
	json_t *sum, *k, *c, *kernels = json_array();
	char *text;
	size_t i;

	if (!bom)
		return json_pack("{s:s}", "status", "none (see the build log)");
	text = json_dumps(bom, JSON_INDENT(2));
	if (!text || write_file_atomic(path, text, strlen(text), 0644) < 0) {
		log_warn("SBOM: %s", text ? err_msg() : "cannot encode it");
		err_clear();
		free(text);
		json_decref(kernels);
		return json_pack("{s:s}", "status", "not written (see the build log)");
	}
	free(text);
	json_array_foreach(json_object_get(json_object_get(bom, "metadata"), "properties"), i, c) {
		const char *n = json_string_value(json_object_get(c, "name"));

		if (n && strcmp(n, "amiforge:kernel") == 0 && (k = json_object_get(c, "value")))
			json_array_append(kernels, k);
	}
	sum = json_pack("{s:s, s:s, s:s, s:I, s:o}", "status", "written", "format",
			"CycloneDX 1.5", "path", path, "packages",
			(json_int_t)json_array_size(json_object_get(bom, "components")),
			"kernels", kernels);
	log_info("SBOM: %zu packages (%s)", json_array_size(json_object_get(bom, "components")),
		 path);
	return sum;
}

static json_t *check_json(const struct inspect_check *k)
{
	return json_pack("{s:s, s:s, s:s}", "id", k->id, "reason", k->reason, "evidence",
			 k->evidence);
}

int inspect_stage_run(const struct inspect_stage *s, char **summary)
{
	const struct recipe *r = s->r;
	const struct recipe_inspect *ri = &r->inspect;
	struct inspect_opts o = INSPECT_OPTS_INIT;
	struct inspect_report *rep = NULL;
	char frag[CRED_NEEDLES_MAX][CRED_FRAGMENT_BUF];
	const char *secrets[CRED_NEEDLES_MAX];
	const struct inspect_check *v;
	json_t *sum = NULL, *failed, *warned, *skipped;
	char msg[ERR_MAX] = "";
	char *path = NULL, *text = NULL;
	size_t n, i, cnt[4], nsecrets;
	int64_t t0 = now_ms();
	int ret = -1;

	*summary = NULL;
	o.disk = s->disk;
	o.format = "qcow2";
	o.own_chain = s->own_chain;
	o.early = s->early;
	o.target = target_of(r);
	o.boot = boot_of(r);
	o.canaries = (const char *const *)ri->canaries;
	o.ncanaries = ri->ncanaries;
	nsecrets = cred_needles(r, frag, secrets);
	o.secrets = secrets;
	o.nsecrets = nsecrets;
	o.skip = (const char *const *)ri->skip;
	o.nskip = ri->nskip;
	o.skip_why = "the recipe's inspect.skip";
	o.sbom_name = s->sbom_path ? r->name : NULL;
	log_info("inspecting the output for %s (one libguestfs appliance)",
		 inspect_target_name(o.target));
	if (inspect_run(&o, &rep) < 0) {
		err_prefix("inspect '%s'", s->disk);
		goto cleanup;
	}
	v = inspect_report_checks(rep, &n);
	inspect_report_counts(rep, cnt);
	text = inspect_report_json(rep);
	path = xasprintf("%s/inspect.json", s->build_dir);
	if (write_file_atomic(path, text, strlen(text), 0644) < 0)
		goto cleanup;

	failed = json_array();
	warned = json_array();
	skipped = json_array();
	for (i = 0; i < n; i++) {
		const struct inspect_check *k = &v[i];

		if (s->on_check)
			s->on_check(s->opaque, k);
		if (k->status == CHECK_FAIL) {
			json_array_append_new(failed, check_json(k));
			log_error("inspect: fail %s: %s%s%s%s", k->id, k->reason,
				  *k->evidence ? " [" : "", k->evidence, *k->evidence ? "]" : "");
			{	/* cut at ERR_MAX: the report has everything */
				size_t used = strlen(msg);

				snprintf(msg + used, sizeof(msg) - used, "%s%s%s%s%s: %s",
					 used ? "; " : "", k->id, *k->evidence ? " [" : "",
					 k->evidence, *k->evidence ? "]" : "", k->reason);
			}
		} else if (k->status == CHECK_WARN) {
			json_array_append_new(warned, check_json(k));
			log_warn("inspect: warn %s: %s%s%s%s", k->id, k->reason,
				 *k->evidence ? " [" : "", k->evidence, *k->evidence ? "]" : "");
		} else if (k->status == CHECK_SKIP) {
			json_t *j = check_json(k);

			for (size_t q = 0; q < ri->nskip; q++)
				if (strcmp(ri->skip[q], k->id) == 0)
					json_object_set_new(j, "at", json_string(ri->skip_at[q]));
			json_array_append_new(skipped, j);
		}
	}
	/* A skipped check that never ran is recorded too: the skip stands. */
	for (i = 0; i < ri->nskip; i++) {
		bool seen = false;

		for (size_t q = 0; q < n && !seen; q++)
			seen = strcmp(v[q].id, ri->skip[i]) == 0;
		if (!seen)
			json_array_append_new(skipped, json_pack("{s:s, s:s, s:s}", "id", ri->skip[i],
				"reason", "skipped by the recipe's inspect.skip (did not run on this "
				"disk)", "at", ri->skip_at[i]));
	}
	sum = json_pack("{s:s, s:s, s:s, s:f, s:s, s:i, s:i, s:i, s:i, s:i, s:i}",
			"status", cnt[CHECK_FAIL] ? "failed" : cnt[CHECK_WARN] ? "warnings" : "passed",
			"for", inspect_target_name(o.target), "boot_mode", inspect_boot_name(o.boot),
			"seconds", (double)(now_ms() - t0) / 1000.0, "report", path,
			"pass", (int)cnt[CHECK_PASS], "warn", (int)cnt[CHECK_WARN],
			"fail", (int)cnt[CHECK_FAIL], "skip", (int)cnt[CHECK_SKIP],
			"canaries", (int)ri->ncanaries, "credential_fragments", (int)nsecrets);
	if (s->sbom_path)
		json_object_set_new(sum, "sbom", write_sbom(inspect_report_sbom(rep), s->sbom_path));
	json_object_set_new(sum, "failed", failed);
	json_object_set_new(sum, "warnings", warned);
	json_object_set_new(sum, "skipped", skipped);
	*summary = json_dumps(sum, JSON_COMPACT | JSON_PRESERVE_ORDER);
	log_info("inspect: %zu passed, %zu warnings, %zu failed, %zu skipped in %.0f s (%s)",
		 cnt[CHECK_PASS], cnt[CHECK_WARN], cnt[CHECK_FAIL], cnt[CHECK_SKIP],
		 (double)(now_ms() - t0) / 1000.0, path);
	if (cnt[CHECK_FAIL]) {
		err_set("inspect: %zu check%s failed, nothing published: %s (report %s; a recipe "
			"skips a check with inspect: {skip: [ID]})", cnt[CHECK_FAIL],
			cnt[CHECK_FAIL] == 1 ? "" : "s", msg, path);
		goto cleanup;
	}
	ret = 0;

cleanup:
	explicit_bzero(frag, sizeof(frag));
	json_decref(sum);
	inspect_report_free(rep);
	free(text);
	free(path);
	return ret;
}
