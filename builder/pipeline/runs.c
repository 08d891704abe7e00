/* runs.c: evaluate a pipeline once; its state and history (runs.h). */
#include <jansson.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "runs.h"
#include "notify.h"
#include "http.h"
#include "builder/base/cache.h"
#include "builder/base/fetch.h"
#include "builder/build/build.h"
#include "builder/recipe/recipe.h"
#include "drivers/aws/ec2.h"
#include "drivers/aws/extras.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* ---- state ---------------------------------------------------------------- */

struct state {
	char *path;
	int lock_fd;
	json_t *root;     /* {schema, pipeline, last_evaluated, runs: [...]} */
};

/* Open the state. With readonly (status): nothing is created, no lock is
 * taken, and *busy says whether an evaluation holds the lock. Otherwise the
 * lock is taken; a lock held elsewhere is an error, or *busy when busy is
 * not NULL. 0 or -1. */
static int state_open(const struct pipeline *p, struct state *s, bool readonly, bool *busy)
{
	struct stat st;
	struct buf b = BUF_INIT(PIPELINE_STATE_MAX);
	char *lock = NULL;
	json_error_t je;
	int r = -1;

	memset(s, 0, sizeof(*s));
	s->lock_fd = -1;
	if (busy)
		*busy = false;
	s->path = xasprintf("%s/state.json", p->state_dir);
	lock = xasprintf("%s/lock", p->state_dir);
	if (readonly) {
		int fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

		if (fd >= 0) {
			*busy = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
			close(fd);
		}
		if (access(p->state_dir, F_OK) == 0 &&
		    path_check_private(p->state_dir, "pipeline state directory") < 0)
			goto cleanup;
	} else {
		if (mkdir_p(p->state_dir, 0700) < 0 ||
		    path_check_private(p->state_dir, "pipeline state directory") < 0)
			goto cleanup;
		s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (s->lock_fd < 0) {
			err_errno("pipeline lock '%s'", lock);
			goto cleanup;
		}
		if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno == EWOULDBLOCK && busy) {
				*busy = true;
				r = 0;
				goto cleanup;
			}
			if (errno == EWOULDBLOCK)
				err_set("pipeline '%s' is being evaluated by another process (%s)",
					p->name, lock);
			else
				err_errno("lock '%s'", lock);
			goto cleanup;
		}
	}
	if (lstat(s->path, &st) < 0) {
		if (errno != ENOENT) {
			err_errno("pipeline state '%s'", s->path);
			goto cleanup;
		}
		s->root = json_pack("{s:i, s:s, s:[]}", "schema", 1, "pipeline", p->name, "runs");
		r = 0;
		goto cleanup;
	}
	if (path_check_private(s->path, "pipeline state") < 0 || buf_read_file(&b, s->path) < 0)
		goto cleanup;
	s->root = json_loadb(b.data ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &je);
	if (!s->root || !json_is_object(s->root) ||
	    !json_is_array(json_object_get(s->root, "runs"))) {
		err_set("%s:%d:%d: not a pipeline state file%s%s", s->path, je.line, je.column,
			s->root ? "" : ": ", s->root ? "" : je.text);
		goto cleanup;
	}
	/* Nobody holds the lock: a run still "running" was killed. */
	if (!busy || !*busy) {
		json_t *run;
		size_t i;

		json_array_foreach(json_object_get(s->root, "runs"), i, run) {
			json_t *rs = json_object_get(run, "status");

			if (!json_is_string(rs) || strcmp(json_string_value(rs), "running") == 0)
				json_object_set_new(run, "status", json_string("interrupted"));
		}
	}
	r = 0;
cleanup:
	if ((r < 0 || (busy && *busy)) && s->lock_fd >= 0) {
		close(s->lock_fd);
		s->lock_fd = -1;
	}
	if (r < 0) {
		json_decref(s->root);
		s->root = NULL;
		free(s->path);
		s->path = NULL;
	}
	free(lock);
	buf_release(&b);
	return r;
}

static int state_save(struct state *s)
{
	json_t *runs = json_object_get(s->root, "runs");
	char *text;
	int r;

	while (json_array_size(runs) > PIPELINE_RUNS_KEPT)
		json_array_remove(runs, 0);
	text = json_dumps(s->root, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return err_set("pipeline state: cannot serialise");
	r = write_file_atomic(s->path, text, strlen(text), 0600);
	free(text);
	return r;
}

/* Save the state after a delivery that returned r, keeping the delivery's
 * error over what saving may record. r, or -1 when saving fails. */
static int save_after(struct state *s, int r)
{
	char *e = r < 0 ? xstrdup(err_msg()) : NULL;

	if (state_save(s) < 0)
		r = -1;
	else if (e)
		err_set("%s", e);
	free(e);
	return r;
}

static void state_close(struct state *s)
{
	json_decref(s->root);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->path);
	memset(s, 0, sizeof(*s));
	s->lock_fd = -1;
}

/* The last run with status "succeeded", or NULL. */
static json_t *last_success(const struct state *s)
{
	json_t *runs = json_object_get(s->root, "runs");
	size_t i = json_array_size(runs);

	while (i-- > 0) {
		json_t *r = json_array_get(runs, i);

		if (json_is_string(json_object_get(r, "status")) &&
		    strcmp(json_string_value(json_object_get(r, "status")), "succeeded") == 0)
			return r;
	}
	return NULL;
}

static int64_t next_id(const struct state *s)
{
	json_t *runs = json_object_get(s->root, "runs");
	json_t *last = json_array_get(runs, json_array_size(runs) - 1);

	return last ? json_integer_value(json_object_get(last, "id")) + 1 : 1;
}

/* ---- fingerprints ----------------------------------------------------------- */

/* The base image's fingerprint ("sha256:HEX", "etag:...", ...). prev: the
 * last run's inputs (a local file is hashed again only when its size or
 * mtime changed). */
static int base_fingerprint(const struct recipe_parent *pa, json_t *prev, json_t *inputs)
{
	char *fp = NULL;
	int r = -1;

	if (pa->path) {
		struct stat st;
		char *stamp;
		json_t *ps = json_object_get(prev, "base_stamp"), *pb = json_object_get(prev, "base");

		if (stat(pa->path, &st) < 0)
			return err_errno("base image '%s'", pa->path);
		stamp = xasprintf("%llu-%lld.%09ld", (unsigned long long)st.st_size,
				  (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		if (json_is_string(ps) && strcmp(json_string_value(ps), stamp) == 0 &&
		    json_is_string(pb)) {
			fp = xstrdup(json_string_value(pb));
		} else {
			char *hex = NULL;

			log_info("pipeline: hashing the base image %s", pa->path);
			if (hash_file(pa->path, CHECKSUM_NONE, &hex, NULL) < 0) {
				free(stamp);
				return -1;
			}
			fp = xasprintf("sha256:%s", hex);
			free(hex);
		}
		json_object_set_new(inputs, "base_stamp", json_string(stamp));
		free(stamp);
	} else if (pa->checksum) {
		fp = xasprintf("%s:%s", checksum_algo_name(pa->algo), pa->checksum);
	} else if (pa->checksum_url) {
		struct buf b = BUF_INIT(FETCH_SUMS_MAX);
		char *name = url_file_name(pa->url), *hex = NULL;
		enum checksum_algo algo;

		if (!name || !*name || fetch_to_buf(pa->checksum_url, &b) < 0 ||
		    checksum_file_lookup(b.data ? b.data : "", b.len, name, &algo, &hex) < 0) {
			if (!err_isset() || !name || !*name)
				err_set("parent URL '%s' has no file name to look up", pa->url);
			err_prefix("checksum file '%s'", pa->checksum_url);
		} else {
			fp = xasprintf("%s:%s", checksum_algo_name(algo), hex);
		}
		free(name);
		free(hex);
		buf_release(&b);
	} else {
		struct http_head h;

		if (http_head(pa->url, &h) == 0) {
			if (h.etag)
				fp = xasprintf("etag:%s", h.etag);
			else if (h.digest)
				fp = xasprintf("digest:%s", h.digest);
			else if (h.last_modified)
				fp = xasprintf("modified:%s;length:%" PRId64, h.last_modified,
					       h.length);
			else
				err_set("base image '%s': the server gives no ETag, Digest or "
					"Last-Modified; state a checksum or checksum_url for "
					"condition onlyIfUpdated", pa->url);
		}
		http_head_release(&h);
	}
	if (fp) {
		json_object_set_new(inputs, "base", json_string(fp));
		r = 0;
	}
	free(fp);
	return r;
}

static int doc_digests(const struct recipe_doc *d, size_t n, json_t *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char *hex = NULL;

		if (hash_file(d[i].path, CHECKSUM_NONE, &hex, NULL) < 0)
			return -1;
		json_object_set_new(out, d[i].path, json_string(hex));
		free(hex);
	}
	return 0;
}

/* inputs: {recipe, base, base_stamp?, documents: {path: sha256}} */
static int fingerprint(const struct pipeline *p, json_t *prev, json_t **out)
{
	struct recipe_opts ro = { 0 };
	struct recipe *r = NULL;
	json_t *in = json_object(), *docs = json_object();
	char *hex = NULL;
	int ret = -1;

	*out = NULL;
	ro.vars = (const char *const *)p->vars;
	r = recipe_parse(p->recipe, &ro);
	if (!r)
		goto cleanup;
	if (hash_file(p->recipe, CHECKSUM_NONE, &hex, NULL) < 0)
		goto cleanup;
	json_object_set_new(in, "recipe", json_string(hex));
	if (doc_digests(r->components, r->ncomponents, docs) < 0 ||
	    doc_digests(r->tests, r->ntests, docs) < 0)
		goto cleanup;
	json_object_set(in, "documents", docs);
	if (base_fingerprint(&r->parent, prev, in) < 0)
		goto cleanup;
	*out = in;
	in = NULL;
	ret = 0;
cleanup:
	json_decref(in);
	json_decref(docs);
	free(hex);
	recipe_free(r);
	return ret;
}

/* What changed between two fingerprints, as a short phrase (NULL: nothing). */
static char *changes(json_t *old, json_t *now)
{
	struct buf b = BUF_INIT(4096);
	json_t *od = json_object_get(old, "documents"), *nd = json_object_get(now, "documents");
	const char *k;
	json_t *v;

	if (!old)
		return xstrdup("first build");
	if (!json_equal(json_object_get(old, "recipe"), json_object_get(now, "recipe")))
		buf_adds(&b, "recipe changed; ");
	if (!json_equal(json_object_get(old, "base"), json_object_get(now, "base")))
		buf_adds(&b, "base image changed; ");
	json_object_foreach(nd, k, v) {
		if (!json_equal(json_object_get(od, k), v))
			buf_printf(&b, "document %s changed; ", k);
	}
	json_object_foreach(od, k, v) {
		if (!json_object_get(nd, k))
			buf_printf(&b, "document %s removed; ", k);
	}
	if (!b.len)
		return NULL;
	b.data[b.len - 2] = '\0';
	return buf_detach(&b, NULL);
}

/* ---- delivery ---------------------------------------------------------------- */

static struct aws_client *client_in(const struct pipeline *p, const char *region)
{
	struct aws_client_opts o = { .profile = p->profile, .region = region,
				     .need_region = true };

	return aws_client_new(&o);
}

/* The manifest of a build directory: status, error, failed stage, AMIs. */
static int read_manifest(const char *build_dir, json_t *run)
{
	struct buf b = BUF_INIT(PIPELINE_MANIFEST_MAX);
	char *path = xasprintf("%s/manifest.json", build_dir);
	json_t *m = NULL, *amis = json_array(), *st, *a;
	json_error_t je;
	size_t i;
	int r = -1;

	if (buf_read_file(&b, path) < 0)
		goto cleanup;
	m = json_loadb(b.data ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &je);
	if (!m || !json_is_object(m)) {
		err_set("%s:%d:%d: not a build manifest: %s", path, je.line, je.column, je.text);
		goto cleanup;
	}
	st = json_object_get(json_object_get(m, "build"), "status");
	json_object_set_new(run, "status", json_string(json_is_string(st) &&
			    strcmp(json_string_value(st), "succeeded") == 0 ? "succeeded" : "failed"));
	st = json_object_get(json_object_get(m, "build"), "error");
	if (json_is_string(st))
		json_object_set_new(run, "error", json_string(json_string_value(st)));
	json_array_foreach(json_object_get(m, "stages"), i, a) {
		json_t *s = json_object_get(a, "status"), *n = json_object_get(a, "name");

		if (json_is_string(s) && json_is_string(n) &&
		    strcmp(json_string_value(s), "failed") == 0)
			json_object_set_new(run, "failed_step", json_string(json_string_value(n)));
	}
	json_array_foreach(json_object_get(m, "amis"), i, a) {
		json_t *rg = json_object_get(a, "region"), *id = json_object_get(a, "image_id"),
		       *sn = json_object_get(a, "snapshot_id");

		if (!json_is_string(rg) || !json_is_string(id) ||
		    !str_startswith(json_string_value(id), "ami-") ||
		    strlen(json_string_value(id)) > 32 || strlen(json_string_value(rg)) > 32) {
			err_set("%s: amis[%zu] is not {region, image_id: ami-...}", path, i);
			goto cleanup;
		}
		json_array_append_new(amis, json_pack("{s:s, s:s, s:o}", "region",
						      json_string_value(rg), "image_id",
						      json_string_value(id), "snapshot_id",
						      json_is_string(sn) ? json_string(json_string_value(sn))
						      : json_null()));
	}
	json_object_set(run, "amis", amis);
	r = 0;
cleanup:
	json_decref(amis);
	json_decref(m);
	buf_release(&b);
	free(path);
	return r;
}

static const char *ami_in(json_t *amis, const char *region)
{
	size_t i;
	json_t *a;

	json_array_foreach(amis, i, a)
		if (strcmp(json_string_value(json_object_get(a, "region")), region) == 0)
			return json_string_value(json_object_get(a, "image_id"));
	return NULL;
}

static void outcome(json_t *list, const char *kind, const char *target, const char *detail,
		    bool ok)
{
	json_t *o = json_pack("{s:s, s:s, s:b}", "kind", kind, "target", target, "ok", ok);

	if (detail)
		json_object_set_new(o, ok ? "result" : "error", json_string(detail));
	json_array_append_new(list, o);
	if (ok)
		log_info("distribution %s %s: %s", kind, target, detail ? detail : "done");
	else
		log_error("distribution %s %s: %s", kind, target, detail);
}

/* Tags and distribution extras. Returns the number of failures. */
static int distribute_extras(const struct pipeline *p, const char *build_id, json_t *run)
{
	json_t *amis = json_object_get(run, "amis"), *res = json_array(), *a;
	struct aws_identity who = { 0 };
	int failed = 0;
	size_t i;

	json_array_foreach(amis, i, a) {
		const char *region = json_string_value(json_object_get(a, "region"));
		const char *id = json_string_value(json_object_get(a, "image_id"));
		json_t *sn = json_object_get(a, "snapshot_id");
		const char *ids[] = { id, json_is_string(sn) ? json_string_value(sn) : NULL, NULL };
		const char *kv[] = { PIPELINE_TAG, p->name, PIPELINE_RECIPE_TAG, p->recipe,
				     PIPELINE_BUILD_TAG, build_id, NULL };
		struct aws_client *cl = client_in(p, region);

		if (!cl || ec2_create_tags(cl, ids, kv) < 0) {
			outcome(res, "tags", id, err_msg(), false);
			failed++;
		} else {
			outcome(res, "tags", id, PIPELINE_TAG, true);
		}
		aws_client_free(cl);
	}
	for (i = 0; i < p->nlts; i++) {
		const struct pipeline_lt *t = &p->lts[i];
		const char *ami = ami_in(amis, t->region);
		const char *name = t->id ? t->id : t->name;
		struct aws_client *cl = NULL;
		int64_t v = 0;

		if (!ami) {
			err_set("no AMI of this build in %s", t->region);
		} else if ((cl = client_in(p, t->region)) &&
			   ec2_launch_template_new_version(cl, t->id, t->name, ami, build_id,
							   t->set_default, &v) == 0) {
			char *d = xasprintf("version %" PRId64 "%s holds %s", v,
					    t->set_default ? " (default)" : "", ami);
			outcome(res, "launch-template", name, d, true);
			free(d);
			aws_client_free(cl);
			continue;
		}
		outcome(res, "launch-template", name, err_msg(), false);
		failed++;
		aws_client_free(cl);
	}
	for (i = 0; i < p->nssms; i++) {
		const struct pipeline_ssm *s = &p->ssms[i];
		const char *ami = ami_in(amis, s->region);
		struct aws_client *cl = NULL;
		int64_t v = 0;

		if (!ami) {
			err_set("no AMI of this build in %s", s->region);
		} else if ((cl = client_in(p, s->region)) &&
			   ssm_put_parameter(cl, s->name, ami, "aws:ec2:image", &v) == 0) {
			char *d = xasprintf("version %" PRId64 " holds %s", v, ami);
			outcome(res, "ssm-parameter", s->name, d, true);
			free(d);
			aws_client_free(cl);
			continue;
		}
		outcome(res, "ssm-parameter", s->name, err_msg(), false);
		failed++;
		aws_client_free(cl);
	}
	for (i = 0; i < p->nlicenses; i++) {
		const struct pipeline_license *l = &p->licenses[i];
		const char *ami = ami_in(amis, l->region);
		struct aws_client *cl = NULL;
		char *arn = NULL;

		if (!ami) {
			err_set("no AMI of this build in %s", l->region);
		} else if ((cl = client_in(p, l->region)) &&
			   (who.account || aws_sts_whoami(cl, &who) == 0)) {
			arn = xasprintf("arn:aws:ec2:%s:%s:image/%s", l->region, who.account, ami);
			if (lm_add_license_specifications(cl, arn,
							  (const char *const *)l->arns) == 0) {
				outcome(res, "license-configurations", arn, "attached", true);
				free(arn);
				aws_client_free(cl);
				continue;
			}
		}
		outcome(res, "license-configurations", arn ? arn : l->region, err_msg(), false);
		failed++;
		free(arn);
		aws_client_free(cl);
	}
	aws_identity_release(&who);
	json_object_set_new(run, "distribution", res);
	return failed;
}

/* The notification message: the run's public facts. */
static char *message(const struct pipeline *p, json_t *run)
{
	json_t *m = json_object(), *amis = json_array(), *a;
	char *text;
	size_t i;

	json_object_set_new(m, "pipeline", json_string(p->name));
	json_object_set(m, "buildId", json_object_get(run, "build_id"));
	json_object_set(m, "status", json_object_get(run, "status"));
	json_object_set(m, "time", json_object_get(run, "finished"));
	json_object_set_new(m, "recipe", json_string(p->recipe));
	json_array_foreach(json_object_get(run, "amis"), i, a)
		json_array_append_new(amis, json_pack("{s:O, s:O}", "region",
						      json_object_get(a, "region"), "imageId",
						      json_object_get(a, "image_id")));
	json_object_set_new(m, "amis", amis);
	if (json_object_get(run, "failed_step"))
		json_object_set(m, "failedStep", json_object_get(run, "failed_step"));
	if (json_object_get(run, "error"))
		json_object_set(m, "error", json_object_get(run, "error"));
	text = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(m);
	return text;
}

/* After the build (or for deliver): extras when it succeeded, then
 * notifications. Returns -1 when anything failed (error recorded). */
static int deliver(const struct pipeline *p, json_t *run)
{
	const char *build_id = json_string_value(json_object_get(run, "build_id"));
	bool ok = strcmp(json_string_value(json_object_get(run, "status")), "succeeded") == 0;
	json_t *results = json_array();
	char *msg, *now;
	int failed = 0, nfail;

	if (ok && (failed = distribute_extras(p, build_id, run)) > 0) {
		json_object_set_new(run, "status", json_string("failed"));
		json_object_set_new(run, "failed_step", json_string("distribution"));
		json_object_set_new(run, "error", json_sprintf("%d distribution step%s failed",
							       failed, failed == 1 ? "" : "s"));
	}
	now = utc_iso8601(time(NULL));
	json_object_set_new(run, "finished", json_string(now));
	free(now);
	msg = message(p, run);
	nfail = pipeline_notify(p, msg, json_string_value(json_object_get(run, "status")), results);
	json_object_set_new(run, "notifications", results);
	free(msg);
	if (failed)
		return err_set("pipeline %s: %d distribution step%s failed", p->name, failed,
			       failed == 1 ? "" : "s");
	if (!ok)
		return err_set("pipeline %s: build failed%s%s", p->name,
			       json_object_get(run, "error") ? ": " : "",
			       json_object_get(run, "error") ?
			       json_string_value(json_object_get(run, "error")) : "");
	if (nfail)
		return err_set("pipeline %s: %d notification%s failed", p->name, nfail,
			       nfail == 1 ? "" : "s");
	return 0;
}

static json_t *new_run(struct state *s, const char *reason)
{
	char *now = utc_iso8601(time(NULL));
	json_t *run = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)next_id(s), "started", now,
				"reason", reason);

	free(now);
	json_array_append_new(json_object_get(s->root, "runs"), run);
	return run;
}

static char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return xstrdup(s ? s + 1 : path);
}

int pipeline_run(const struct pipeline *p, const struct pipeline_run_opts *o)
{
	struct state s;
	struct build_opts bo = { 0 };
	struct build_result br = { 0 };
	json_t *prev_ok, *inputs = NULL, *run = NULL;
	int64_t now = time(NULL), fired = -1;
	char *why = NULL;
	int r = -1, br_rc;
	bool busy;

	if (state_open(p, &s, false, &busy) < 0)
		return -1;
	if (busy) {
		/* The scheduler fires while a build runs (cron: every minute). */
		printf("pipeline %s: an evaluation is running already; nothing to do\n", p->name);
		state_close(&s);
		return 0;
	}
	if (p->scheduled && !o->now) {
		json_t *le = json_object_get(s.root, "last_evaluated");

		fired = cron_prev(&p->cron, now);
		if (fired < 0 || (json_is_integer(le) && json_integer_value(le) >= fired)) {
			int64_t next = cron_next(&p->cron, now);
			char *t = next >= 0 ? utc_iso8601(next) : xstrdup("never");

			printf("pipeline %s: not due; next run %s\n", p->name, t);
			free(t);
			r = 0;
			goto cleanup;
		}
	}
	if (p->scheduled)
		json_object_set_new(s.root, "last_evaluated", json_integer(now));
	prev_ok = last_success(&s);
	if (fingerprint(p, json_object_get(prev_ok, "inputs"), &inputs) < 0) {
		err_prefix("pipeline %s: inputs", p->name);
		run = new_run(&s, "inputs could not be read");
		json_object_set_new(run, "status", json_string("failed"));
		json_object_set_new(run, "failed_step", json_string("inputs"));
		json_object_set_new(run, "error", json_string(err_msg()));
		{
			char *e = xstrdup(err_msg());

			json_object_set_new(run, "finished", json_string(""));
			deliver(p, run);
			err_set("%s", e);
			free(e);
		}
		state_save(&s);
		goto cleanup;
	}
	why = changes(json_object_get(prev_ok, "inputs"), inputs);
	if (!why && p->condition == PIPELINE_ONLY_IF_UPDATED && !o->force) {
		char *t = utc_iso8601(time(NULL));

		run = new_run(&s, "inputs unchanged since the last successful build");
		json_object_set_new(run, "status", json_string("skipped"));
		json_object_set(run, "inputs", inputs);
		json_object_set_new(run, "finished", json_string(t));
		free(t);
		printf("pipeline %s: nothing to build: inputs unchanged since run %" PRId64 "\n",
		       p->name, (int64_t)json_integer_value(json_object_get(prev_ok, "id")));
		r = state_save(&s);
		goto cleanup;
	}
	run = new_run(&s, why ? why : o->force ? "forced" : "condition always");
	json_object_set(run, "inputs", inputs);
	json_object_set_new(run, "status", json_string("running"));
	if (state_save(&s) < 0)
		goto cleanup;
	log_info("pipeline %s: run %" PRId64 ": building (%s)", p->name,
		 (int64_t)json_integer_value(json_object_get(run, "id")),
		 json_string_value(json_object_get(run, "reason")));
	bo.recipe = p->recipe;
	bo.vars = (const char *const *)p->vars;
	bo.output_root = p->builds_dir;
	if (mkdir_p(p->builds_dir, 0755) < 0)
		goto cleanup;
	br_rc = build_run(&bo, &br);
	if (br_rc < 0)
		json_object_set_new(run, "error", json_string(err_msg()));
	if (br.build_dir) {
		char *id = base_name(br.build_dir);

		json_object_set_new(run, "build_dir", json_string(br.build_dir));
		json_object_set_new(run, "build_id", json_string(id));
		free(id);
		if (read_manifest(br.build_dir, run) < 0) {
			json_object_set_new(run, "status", json_string("failed"));
			json_object_set_new(run, "error", json_string(err_msg()));
		}
	} else {
		json_object_set_new(run, "build_id", json_null());
		json_object_set_new(run, "amis", json_array());
		json_object_set_new(run, "failed_step", json_string("build"));
	}
	if (br_rc < 0)
		json_object_set_new(run, "status", json_string("failed"));
	r = save_after(&s, deliver(p, run));
	if (r == 0)
		printf("pipeline %s: run %" PRId64 " succeeded: %s\n", p->name,
		       (int64_t)json_integer_value(json_object_get(run, "id")), br.build_dir);
cleanup:
	build_result_release(&br);
	json_decref(inputs);
	free(why);
	state_close(&s);
	return r;
}

int pipeline_deliver(const struct pipeline *p, const char *build_dir)
{
	struct state s;
	json_t *run;
	char *id = NULL, *abs = NULL;
	int r = -1;

	abs = realpath(build_dir, NULL);
	if (!abs)
		return err_errno("build directory '%s'", build_dir);
	if (state_open(p, &s, false, NULL) < 0) {
		free(abs);
		return -1;
	}
	run = new_run(&s, "deliver");
	id = base_name(abs);
	json_object_set_new(run, "build_dir", json_string(abs));
	json_object_set_new(run, "build_id", json_string(id));
	if (read_manifest(abs, run) < 0) {
		json_array_remove(json_object_get(s.root, "runs"),
				  json_array_size(json_object_get(s.root, "runs")) - 1);
		goto cleanup;
	}
	r = save_after(&s, deliver(p, run));
	if (r == 0)
		printf("pipeline %s: run %" PRId64 ": delivered %s\n", p->name,
		       (int64_t)json_integer_value(json_object_get(run, "id")), id);
cleanup:
	free(id);
	free(abs);
	state_close(&s);
	return r;
}

/* A state value for the terminal: a short string without control
 * characters, else "?" (state.json could have been edited). */
static const char *shown(json_t *v)
{
	const char *s = json_string_value(v);

	return s && strlen(s) <= 64 && !str_has_ctl(s, strlen(s), false) ? s : "?";
}

int pipeline_status(const struct pipeline *p, bool json)
{
	struct state s;
	json_t *runs, *run, *a;
	size_t i, k;
	bool busy;

	if (state_open(p, &s, true, &busy) < 0)
		return -1;
	json_object_set_new(s.root, "evaluating", json_boolean(busy));
	if (p->scheduled) {
		int64_t next = cron_next(&p->cron, time(NULL));
		char *t = next >= 0 ? utc_iso8601(next) : xstrdup("never");

		json_object_set_new(s.root, "next_run", json_string(t));
		json_object_set_new(s.root, "schedule", json_sprintf("%s %s", p->expression,
								       p->cron.tz));
		free(t);
	}
	if (json) {
		char *text = json_dumps(s.root, JSON_INDENT(2) | JSON_SORT_KEYS);

		printf("%s\n", text ? text : "{}");
		free(text);
		state_close(&s);
		return 0;
	}
	printf("pipeline %s: %s%s%s%s\n", p->name, p->scheduled ? p->expression : "no schedule",
	       p->scheduled ? ", next run " : "",
	       p->scheduled ? json_string_value(json_object_get(s.root, "next_run")) : "",
	       busy ? " (an evaluation is running now)" : "");
	runs = json_object_get(s.root, "runs");
	if (!json_array_size(runs))
		printf("no runs yet\n");
	json_array_foreach(runs, i, run) {
		const char *reason = json_string_value(json_object_get(run, "reason"));
		char *esc = str_escape_ctl(reason ? reason : "", strlen(reason ? reason : ""), false);

		printf("%4" PRId64 "  %s  %-9s  %s", (int64_t)json_integer_value(json_object_get(run, "id")),
		       shown(json_object_get(run, "started")), shown(json_object_get(run, "status")), esc);
		free(esc);
		json_array_foreach(json_object_get(run, "amis"), k, a)
			printf("  %s:%s", shown(json_object_get(a, "region")),
			       shown(json_object_get(a, "image_id")));
		if (json_is_string(json_object_get(run, "failed_step")))
			printf("  failed at %s", shown(json_object_get(run, "failed_step")));
		printf("\n");
	}
	state_close(&s);
	return 0;
}
