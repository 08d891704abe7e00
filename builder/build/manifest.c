#include <jansson.h>

#include "manifest.h"
#include "buf.h"
#include "builder/base/cache.h"
#include "error.h"
#include "log.h"
#include "util.h"

#ifndef AMIFORGE_VERSION
#define AMIFORGE_VERSION "0.1.0"
#endif

struct manifest {
	char *path;
	json_t *root;      /* the whole document */
	json_t *build, *inputs, *stages, *outputs, *amis;
	int64_t *stage_t0; /* monotonic start of each stage, by index */
	size_t nstages;
};

static json_t *now_iso(void)
{
	struct timespec ts;
	struct tm tm;
	char s[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(s);
}

/* json_string() refuses invalid UTF-8; fall back to an escaped copy. */
static json_t *jstr(const char *s)
{
	json_t *v;

	if (!s)
		return json_null();
	v = json_string(s);
	if (!v) {
		struct buf b = BUF_INIT(1 << 20);
		const unsigned char *p;

		for (p = (const unsigned char *)s; *p; p++) {
			if (*p < 0x80)
				buf_addc(&b, (char)*p);
			else
				buf_printf(&b, "\\x%02x", *p);
		}
		v = json_string(b.data ? b.data : "");
		buf_release(&b);
	}
	return v;
}

struct manifest *manifest_new(const char *path)
{
	struct manifest *m = xcalloc(1, sizeof(*m));

	m->path = xstrdup(path);
	m->root = json_object();
	m->build = json_object();
	m->inputs = json_array();
	m->stages = json_array();
	m->outputs = json_array();
	m->amis = json_array();
	if (!m->root || !m->build || !m->inputs || !m->stages || !m->outputs || !m->amis)
		abort();
	json_object_set_new(m->root, "schema", json_integer(1));
	json_object_set_new(m->root, "amiforge", json_string(AMIFORGE_VERSION));
	json_object_set(m->root, "build", m->build);
	json_object_set_new(m->root, "recipe", json_object());
	json_object_set(m->root, "inputs", m->inputs);
	json_object_set_new(m->root, "variables", json_object());
	json_object_set(m->root, "stages", m->stages);
	json_object_set(m->root, "outputs", m->outputs);
	json_object_set(m->root, "amis", m->amis);
	json_object_set_new(m->build, "started", now_iso());
	json_object_set_new(m->build, "status", json_string("running"));
	return m;
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	json_decref(m->build);
	json_decref(m->inputs);
	json_decref(m->stages);
	json_decref(m->outputs);
	json_decref(m->amis);
	json_decref(m->root);
	free(m->stage_t0);
	free(m->path);
	free(m);
}

static int add_doc(json_t *inputs, const char *kind, const struct recipe_doc *d)
{
	json_t *o = json_object(), *params = json_object();
	char *sha = NULL;
	size_t i;

	if (hash_file(d->path, CHECKSUM_NONE, &sha, NULL) < 0) {
		json_decref(o);
		json_decref(params);
		return -1;
	}
	json_object_set_new(o, "kind", json_string(kind));
	json_object_set_new(o, "path", jstr(d->path));
	if (d->name) {	/* a catalog component: what was asked and what it resolved to */
		json_object_set_new(o, "name", jstr(d->name));
		json_object_set_new(o, "version", jstr(d->version));
		json_object_set_new(o, "requested", jstr(d->given));
	}
	json_object_set_new(o, "sha256", json_string(sha));
	for (i = 0; i < d->nparams; i++)
		json_object_set_new(params, d->params[i].name, jstr(d->params[i].value));
	json_object_set_new(o, "parameters", params);
	json_array_append_new(inputs, o);
	free(sha);
	return 0;
}

int manifest_set_recipe(struct manifest *m, const struct recipe *r)
{
	json_t *rec = json_object(), *vars = json_object();
	char *sha = NULL;
	size_t i;

	if (hash_file(r->path, CHECKSUM_NONE, &sha, NULL) < 0) {
		json_decref(rec);
		json_decref(vars);
		return -1;
	}
	json_object_set_new(rec, "path", jstr(r->path));
	json_object_set_new(rec, "sha256", json_string(sha));
	free(sha);
	json_object_set_new(m->root, "recipe", rec);
	json_object_set_new(m->build, "name", jstr(r->name));
	json_object_set_new(m->build, "version", jstr(r->version));
	json_object_set_new(m->build, "description", jstr(r->description));
	json_object_set_new(m->build, "build_date", jstr(r->build_date));
	for (i = 0; i < r->nvars; i++)
		json_object_set_new(vars, r->vars[i].name, jstr(r->vars[i].value));
	json_object_set_new(m->root, "variables", vars);
	for (i = 0; i < r->ncomponents; i++)
		if (add_doc(m->inputs, "component", &r->components[i]) < 0)
			return -1;
	for (i = 0; i < r->ntests; i++)
		if (add_doc(m->inputs, "test", &r->tests[i]) < 0)
			return -1;
	return 0;
}

void manifest_set_base(struct manifest *m, const struct base_image *img)
{
	json_t *o = json_object();

	json_object_set_new(o, "kind", json_string("base"));
	{
		char *src = url_redact(img->source);   /* no userinfo, no signature */

		json_object_set_new(o, "source", jstr(src));
		free(src);
	}
	json_object_set_new(o, "path", jstr(img->path));
	json_object_set_new(o, "sha256", jstr(img->sha256));
	json_object_set_new(o, "format", jstr(img->format));
	json_object_set_new(o, "size", json_integer((json_int_t)img->size));
	json_object_set_new(o, "virtual_size", json_integer((json_int_t)img->virtual_size));
	if (img->member)
		json_object_set_new(o, "member", jstr(img->member));
	if (img->arch)
		json_object_set_new(o, "architecture", jstr(img->arch));
	if (img->boot_mode)
		json_object_set_new(o, "boot_mode", jstr(img->boot_mode));
	json_array_insert_new(m->inputs, 0, o);
}

void manifest_set_arch(struct manifest *m, const struct arch *a, const char *from)
{
	json_object_set_new(m->build, "architecture",
			    json_pack("{s:s, s:s, s:s, s:s}", "name", a->name, "ec2", a->ec2,
				      "boot", a->uefi_only ? "uefi" : "bios-or-uefi", "from", from));
}

void manifest_stage_begin(struct manifest *m, const char *stage)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", jstr(stage));
	json_object_set_new(o, "started", now_iso());
	json_object_set_new(o, "status", json_string("running"));
	json_array_append_new(m->stages, o);
	m->stage_t0 = xrealloc(m->stage_t0, (m->nstages + 1) * sizeof(*m->stage_t0));
	m->stage_t0[m->nstages++] = now_ms();
}

void manifest_stage_end(struct manifest *m, const char *stage, const char *status)
{
	size_t i = m->nstages;

	while (i-- > 0) {
		json_t *o = json_array_get(m->stages, i);

		if (strcmp(json_string_value(json_object_get(o, "name")), stage) != 0)
			continue;
		json_object_set_new(o, "finished", now_iso());
		json_object_set_new(o, "seconds",
				    json_real((double)(now_ms() - m->stage_t0[i]) / 1000.0));
		json_object_set_new(o, "status", jstr(status));
		return;
	}
}

int manifest_add_output_hashed(struct manifest *m, const char *format, const char *path,
			       const struct stat *was, const char *known)
{
	json_t *o;
	struct stat st;
	char *sha = NULL;

	if (stat(path, &st) < 0)
		return err_errno("output '%s'", path);
	if (known && was && st.st_dev == was->st_dev && st.st_ino == was->st_ino &&
	    st.st_size == was->st_size && st.st_mtim.tv_sec == was->st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == was->st_mtim.tv_nsec)
		sha = xstrdup(known);
	else if (hash_file(path, CHECKSUM_NONE, &sha, NULL) < 0)
		return -1;
	o = json_object();
	json_object_set_new(o, "format", jstr(format));
	json_object_set_new(o, "path", jstr(path));
	json_object_set_new(o, "sha256", json_string(sha));
	json_object_set_new(o, "size", json_integer((json_int_t)st.st_size));
	json_array_append_new(m->outputs, o);
	free(sha);
	return 0;
}

int manifest_add_output(struct manifest *m, const char *format, const char *path)
{
	return manifest_add_output_hashed(m, format, path, NULL, NULL);
}

void manifest_add_ami(struct manifest *m, const char *region, const char *image_id,
		      const char *snapshot_id)
{
	json_t *o = json_object();

	json_object_set_new(o, "region", jstr(region));
	json_object_set_new(o, "image_id", jstr(image_id));
	if (snapshot_id)
		json_object_set_new(o, "snapshot_id", jstr(snapshot_id));
	json_array_append_new(m->amis, o);
}

void manifest_add_decision(struct manifest *m, const char *step, const char *decision,
			   const char *failure)
{
	json_t *a = json_object_get(m->root, "decisions");
	json_t *o = json_object();

	if (!json_is_array(a)) {
		a = json_array();
		json_object_set_new(m->root, "decisions", a);
	}
	json_object_set_new(o, "step", jstr(step));
	json_object_set_new(o, "decision", jstr(decision));
	json_object_set_new(o, "failure", jstr(failure ? failure : ""));
	json_object_set_new(o, "time", now_iso());
	json_array_append_new(a, o);
}

int manifest_set_inspect(struct manifest *m, const char *json_text)
{
	json_error_t je;
	json_t *v = json_loads(json_text, 0, &je);

	if (!json_is_object(v)) {
		json_decref(v);
		return err_set("manifest: inspect summary is not a JSON object");
	}
	json_object_set_new(m->root, "inspect", v);
	return 0;
}

void manifest_set_status(struct manifest *m, const char *status, const char *error)
{
	json_object_set_new(m->build, "status", jstr(status));
	if (error)
		json_object_set_new(m->build, "error", jstr(error));
	else
		json_object_del(m->build, "error");
	if (strcmp(status, "running") != 0)
		json_object_set_new(m->build, "finished", now_iso());
}

int manifest_write(struct manifest *m)
{
	char *text = json_dumps(m->root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	struct buf b = BUF_INIT(MANIFEST_MAX);
	int r = -1;

	if (!text)
		return err_set("encode manifest '%s'", m->path);
	if (buf_adds(&b, text) < 0 || buf_addc(&b, '\n') < 0) {
		err_prefix("manifest '%s'", m->path);
		goto cleanup;
	}
	/* Secrets are never put in a manifest; this is the safety net. */
	log_redact(&b);
	r = write_file_atomic(m->path, b.data, b.len, 0600);
cleanup:
	free(text);
	buf_release(&b);
	return r;
}
