/* checkpoint.c: keyed qcow2 checkpoints of the build guest's disk (see
 * checkpoint.h). */
#include <dirent.h>
#include <jansson.h>
#include <sys/file.h>
#include <sys/random.h>

#include "checkpoint.h"
#include "builddir.h"
#include "buf.h"
#include "builder/base/cache.h"
#include "builder/component/component.h"
#include "error.h"
#include "builder/base/fetch.h"
#include "builder/disk/overlay.h"
#include "builder/disk/qemu-img.h"
#include "builder/exec/executor.h"
#include "builder/guest/guest.h"
#include "builder/guest/inject.h"
#include "journal.h"
#include "log.h"
#include "builder/recipe/recipe.h"
#include "util.h"

/* Bump when the key material or the layout changes: old checkpoints are
 * then simply never matched (and pruned). */
#define CKPT_VERSION "amiforge-checkpoint-v1"
/* A layer chain a build makes has one layer per disk-changing step; qemu-img
 * info --backing-chain of a long one stays far below this. */
#define CKPT_CHAIN_JSON_MAX (8u * 1024 * 1024)
/* state.json is a recipe path and a few vars. */
#define CKPT_STATE_MAX (1024u * 1024)
/* How long a build waits for another making the same agent layer (a
 * libguestfs appliance run: about a minute under TCG). */
#define AGENT_LAYER_WAIT_MS (10 * 60 * 1000)

struct ckpt {
	struct ckpt_opts o;
	char *dir;                 /* <cache>/checkpoints */
	char *layers;              /* <cache>/checkpoints/layers */
	int lockfd;
	char *nonce;
	struct component_plan plan;
	char **keys;               /* plan.n + 1: keys[i] is the state before step i */
	char *agent_key;           /* the agent layer's record, or NULL (seed) */
	char *agent_layer;         /* its layer */
	char *final_key;           /* the generalised checkpoint's, or NULL */
	char *final;               /* its layer when reusable */
	size_t skip;               /* steps done by the reused checkpoint */
	char *image;               /* reused layer, or NULL */
	char *parent;              /* key of the checkpoint the current top backs onto */
	char *top;                 /* the guest's current top layer */
	unsigned top_jid;
	unsigned seq;              /* next layer number */
	struct component_resume resume;
	char *resume_outputs;
	size_t pos;                /* next top-level step expected by ckpt_step_done */
	bool off;                  /* no more checkpoints in this run */
	size_t saved;
	int64_t since_ms;          /* end of the last checkpoint (0: none yet) */
	int64_t cost_ms;           /* what the last checkpoint took (-1: none yet) */
	struct strv chain;         /* the frozen layers under top, above the agent
				    * layer (or the base), bottom first */
	bool no_merge;             /* merging failed once: chains grow from here */
	size_t merged;             /* layers merged away by streams */
	bool hold_ci;              /* freeze layers with cloud-init held off */
	int ci_dir;                /* has the guest /etc/cloud? -1: not asked yet */
	bool ci_held;              /* the reused checkpoint's layer holds it off */
	char *state;               /* the reused checkpoint's saved guest state */
	char *state_shape;         /* ... and the guest shape it needs; or NULL */
	char *state_name;          /* ... and the name of the guest that saved it */
	char *my_state;            /* the last state this build saved (one is kept) */
	bool no_state;             /* saving one failed: checkpoints are disk-only */
};

static void ev(const struct ckpt *c, const char *kind, const char *name, const char *status,
	       const char *detail)
{
	if (c->o.event)
		c->o.event(kind, name, status, detail, c->o.opaque);
}

static char *sha256_hex(const char *a, const char *b, const char *d)
{
	struct hasher *h = hasher_new(CHECKSUM_NONE);
	char *hex = NULL, *extra = NULL;

	hasher_update(h, a, strlen(a) + 1);
	hasher_update(h, b, strlen(b) + 1);
	if (d)
		hasher_update(h, d, strlen(d) + 1);
	hasher_final(h, &hex, &extra);
	hasher_free(h);
	free(extra);
	return hex;
}

static char *record_path(const struct ckpt *c, const char *key)
{
	return xasprintf("%s/%s.json", c->dir, key);
}

/* ---- build state (--resume) ----------------------------------------------- */

static char *state_path(const char *build_dir)
{
	return xasprintf("%s/checkpoints/state.json", build_dir);
}

static json_t *state_read(const char *build_dir)
{
	char *p = state_path(build_dir);
	struct buf b = BUF_INIT(CKPT_STATE_MAX);
	json_t *j = NULL;
	json_error_t je;

	if (buf_read_file(&b, p) < 0)
		goto cleanup;
	j = json_loadb(b.data ? b.data : "", b.len, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		j = NULL;
		err_set("%s:%d:%d: %s", p, je.line, je.column, je.text);
	}
cleanup:
	buf_release(&b);
	free(p);
	return j;
}

int ckpt_state_load(const char *build_dir, char **recipe, struct strv *vars)
{
	json_t *j = state_read(build_dir), *v;
	const char *r;
	size_t i;

	*recipe = NULL;
	if (!j)
		return err_prefix("--resume '%s'", build_dir);
	r = json_string_value(json_object_get(j, "recipe"));
	if (!r) {
		json_decref(j);
		return err_set("--resume '%s': state.json names no recipe", build_dir);
	}
	*recipe = xstrdup(r);
	json_array_foreach(json_object_get(j, "vars"), i, v)
		if (json_is_string(v))
			strv_push(vars, json_string_value(v));
	json_decref(j);
	return 0;
}

static char *new_nonce(void)
{
	unsigned char r[8];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		uint64_t t = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 40);
		memcpy(r, &t, sizeof(r));
	}
	return xasprintf("%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
			 r[6], r[7]);
}

int ckpt_state_save(const char *build_dir, const char *recipe, const char *const *vars)
{
	json_t *old = NULL, *j, *jv = json_array();
	char *p = state_path(build_dir), *s, *nonce = NULL;
	size_t i;
	int ret = -1;

	if (access(p, F_OK) == 0 && (old = state_read(build_dir)))
		nonce = xstrdup(json_string_value(json_object_get(old, "nonce")) ?
				json_string_value(json_object_get(old, "nonce")) : "");
	if (!nonce || !nonce[0]) {
		free(nonce);
		nonce = new_nonce();
	}
	for (i = 0; vars && vars[i]; i++)
		json_array_append_new(jv, json_string(vars[i]));
	j = json_pack("{s:s, s:s, s:o}", "nonce", nonce, "recipe", recipe, "vars", jv);
	s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	if (!s)
		err_set("state.json for '%s': cannot encode", build_dir);
	else
		ret = write_file_atomic(p, s, strlen(s), 0600);
	free(s);
	json_decref(j);
	json_decref(old);
	free(nonce);
	free(p);
	return ret;
}

/* ---- the cache side ------------------------------------------------------- */

/* Is layer a qcow2 chain that ends at the base, every layer with an explicit
 * backing format (so nothing in it is ever probed)? When above is given, it
 * gets the chain's checkpoint layers above the agent layer (or the base),
 * bottom first, layer itself last. */
static bool chain_read(const struct ckpt *c, const char *layer, struct strv *above)
{
	struct qemu_img_read rd = { .max = CKPT_CHAIN_JSON_MAX };
	json_t *j, *e;
	size_t i, n;
	bool ok = false;

	j = qemu_img_info(layer, "qcow2", QEMU_IMG_CHAIN | QEMU_IMG_SHARED, &rd);
	n = json_array_size(j);
	if (n < 2)
		goto cleanup;
	json_array_foreach(j, i, e) {
		const char *fn = json_string_value(json_object_get(e, "filename"));
		const char *fmt = json_string_value(json_object_get(e, "format"));

		if (!fn || !fmt)
			goto cleanup;
		if (i + 1 < n) {
			if (strcmp(fmt, "qcow2") != 0 ||
			    !json_string_value(json_object_get(e, "backing-filename-format")) ||
			    !str_startswith(fn, c->layers))
				goto cleanup;
		} else if (strcmp(fn, c->o.base->path) != 0 || strcmp(fmt, c->o.base->format) != 0) {
			goto cleanup;
		}
	}
	for (i = n - 1; above && i-- > 0;) {
		const char *fn = json_string_value(json_object_get(json_array_get(j, i), "filename"));

		if (!c->agent_layer || strcmp(fn, c->agent_layer) != 0)
			strv_push(above, fn);
	}
	ok = true;
cleanup:
	if (!ok)
		log_debug("checkpoint layer %s: backing chain not usable (%s)", layer,
			  err_isset() ? err_msg() : "unexpected chain");
	err_clear();
	json_decref(j);
	return ok;
}

static bool chain_ok(const struct ckpt *c, const char *layer)
{
	return chain_read(c, layer, NULL);
}

static json_t *record_load(const char *path)
{
	struct buf b = BUF_INIT(CKPT_RECORD_MAX);
	json_t *j = NULL;

	if (buf_read_file(&b, path) == 0)
		j = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
	err_clear();
	buf_release(&b);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* Mark the checkpoint and its ancestors used (prune goes by mtime). */
static void touch_chain(const struct ckpt *c, const char *key)
{
	char *k = xstrdup(key);
	int guard = 0;

	while (k && guard++ < 100000) {
		char *p = record_path(c, k);
		json_t *j = record_load(p);
		const char *parent = j ? json_string_value(json_object_get(j, "parent")) : NULL;

		cache_touch(p);
		free(k);
		k = parent ? xstrdup(parent) : NULL;
		json_decref(j);
		free(p);
	}
	free(k);
}

static void link_into_build(const struct ckpt *c, const char *key, const char *layer)
{
	char *l = xasprintf("%s/%s.qcow2", c->o.bd->checkpoints, key);

	unlink(l);
	if (symlink(layer, l) < 0)
		log_debug("checkpoint link '%s': %s", l, strerror(errno));
	free(l);
}

/* The record of KEY if its layer is there and its backing chain is intact
 * (NULL otherwise); *layer points into it; above (may be NULL) gets the
 * chain's layers as chain_read() gives them. The caller json_decref()s it. */
static json_t *usable_record(struct ckpt *c, const char *key, const char **layer,
			     struct strv *above)
{
	char *p = record_path(c, key);
	json_t *j = access(p, F_OK) == 0 ? record_load(p) : NULL;

	free(p);
	*layer = j ? json_string_value(json_object_get(j, "layer")) : NULL;
	if (*layer && access(*layer, R_OK) == 0 && chain_read(c, *layer, above))
		return j;
	if (above)
		strv_release(above);
	json_decref(j);
	*layer = NULL;
	return NULL;
}

/* Take the layer of KEY into this build: refresh the chain's use times, link
 * it under the build directory; returns our copy of the layer path. */
static char *adopt(struct ckpt *c, const char *key, const char *layer)
{
	char *copy = xstrdup(layer);

	touch_chain(c, key);
	link_into_build(c, key, copy);
	return copy;
}

/* The saved guest state of a reused checkpoint's record j, when its file
 * is there (a newer one of the same build replaced it, prune took it): a
 * state saved in the cache's layer directory, a regular file, not a link.
 * Its checkpoint's measured cost seeds the policy (ckpt_step_done). */
static void reusable_state(struct ckpt *c, json_t *j)
{
	json_t *st = json_object_get(j, "state");
	const char *file = json_string_value(json_object_get(st, "file"));
	const char *shape = json_string_value(json_object_get(st, "shape"));
	const char *name = json_string_value(json_object_get(st, "name"));
	json_t *cost = json_object_get(j, "cost_ms");
	struct stat sb;

	if (json_is_integer(cost) && json_integer_value(cost) >= 0 &&
	    json_integer_value(cost) < 3600 * 1000)
		c->cost_ms = (int64_t)json_integer_value(cost);
	if (!file || !shape || !name)
		return;
	if (!str_startswith(file, c->layers) || file[strlen(c->layers)] != '/' ||
	    strchr(file + strlen(c->layers) + 1, '/') || lstat(file, &sb) < 0 ||
	    !S_ISREG(sb.st_mode)) {
		log_debug("checkpoint: saved state '%s' not there: the guest boots", file);
		return;
	}
	c->state = xstrdup(file);
	cache_touch(c->state);   /* used: kept_states() keeps the recent ones */
	c->state_shape = xstrdup(shape);
	c->state_name = xstrdup(name);
}

/* The deepest step whose checkpoint is usable. */
static void find_reusable(struct ckpt *c)
{
	size_t i;

	for (i = c->plan.n; i > 0; i--) {
		const char *layer, *out;
		json_t *j = usable_record(c, c->keys[i], &layer, &c->chain), *od;

		if (!j)
			continue;
		out = json_string_value(json_object_get(j, "outputs"));
		od = json_object_get(j, "outputs_doc");
		c->skip = i;
		free(c->parent);
		c->parent = xstrdup(c->keys[i]);
		c->resume.skip = i;
		c->ci_held = json_is_true(json_object_get(j, "cloud_init_held"));
		reusable_state(c, j);
		if (out && json_is_integer(od)) {
			c->resume_outputs = xstrdup(out);
			c->resume.outputs = c->resume_outputs;
			c->resume.outputs_doc = (size_t)json_integer_value(od);
		}
		c->image = adopt(c, c->keys[i], layer);
		json_decref(j);
		return;
	}
}

/* A fresh layer name, journaled before anything creates it. */
static int next_layer(struct ckpt *c, char **path, unsigned *jid)
{
	char *p;

	for (;;) {
		p = xasprintf("%s/%s-%u.qcow2", c->layers, c->nonce, c->seq++);
		if (access(p, F_OK) < 0)
			break;
		free(p);
	}
	if (journal_add(c->o.journal, jid, "file", p, NULL) < 0) {
		free(p);
		return -1;
	}
	*path = p;
	return 0;
}

static void compute_keys(struct ckpt *c)
{
	const struct recipe *r = c->o.recipe;
	char size[32];
	bool tainted = false;
	size_t i;

	snprintf(size, sizeof(size), "%" PRIu64, c->o.disk_size);
	c->keys = xcalloc(c->plan.n + 1, sizeof(*c->keys));
	c->keys[0] = sha256_hex(CKPT_VERSION, c->o.base->sha256, size);
	if (c->o.network) {
		char *k = sha256_hex(c->keys[0], "network", c->o.network);

		free(c->keys[0]);
		c->keys[0] = k;
	}
	if (c->agent_key) {
		char *k = sha256_hex(c->keys[0], "agent-layer", c->agent_key);

		free(c->keys[0]);
		c->keys[0] = k;
	}
	for (i = 0; i < c->plan.n; i++) {
		const struct component_plan_step *s = &c->plan.steps[i];
		bool pinned = s->doc < r->ncomponents && r->components[s->doc].pin;

		if (s->external && !pinned && !tainted) {
			tainted = true;
			log_info("checkpoints after %s/%s/%s (%s) are kept for this build only "
				 "(pin the component to share them)", s->document, s->phase, s->step,
				 s->action);
		}
		c->keys[i + 1] = sha256_hex(c->keys[i], s->material ? s->material : "",
					    tainted ? c->nonce : NULL);
	}
	if (c->o.final_material)
		c->final_key = sha256_hex(c->keys[c->plan.n], "generalised", c->o.final_material);
}

/* The generalised checkpoint, when its record names a usable layer. */
static void find_final(struct ckpt *c)
{
	const char *layer;
	json_t *j = usable_record(c, c->final_key, &layer, NULL);

	if (j)
		c->final = adopt(c, c->final_key, layer);
	json_decref(j);
}

/* ---- the agent layer ------------------------------------------------------ */

/* The agent layer's record: like a checkpoint's, without parent or step
 * outputs; every first checkpoint names it as its parent, so prune drops
 * them together. */
static int write_agent_record(const struct ckpt *c)
{
	json_t *j = json_pack("{s:s, s:n, s:s, s:s, s:s, s:I}", "layer", c->agent_layer,
			      "parent", "base", c->o.base->path, "base_sha256", c->o.base->sha256,
			      "step", "(agent)", "created", (json_int_t)time(NULL));
	char *p = record_path(c, c->agent_key), *s = j ? json_dumps(j, JSON_INDENT(1)) : NULL;
	int ret = s ? write_file_atomic(p, s, strlen(s), 0600)
		    : err_set("checkpoint record '%s': cannot encode", p);

	free(s);
	free(p);
	json_decref(j);
	return ret;
}

/* Make the agent layer: an overlay on the base with the agent and its unit
 * injected by libguestfs, written under a temporary name and linked into
 * place (a build making the same layer meanwhile wins; its layer is used). */
static int make_agent_layer(struct ckpt *c)
{
	char *tmp = xasprintf("%s/agent-%s.%s.partial", c->layers, c->agent_key, c->nonce);
	unsigned jid = 0;
	int64_t t0 = now_ms();
	int ret = -1;

	if (journal_add(c->o.journal, &jid, "file", tmp, NULL) < 0)
		goto cleanup;
	if (overlay_create(c->o.base->path, c->o.base->format, tmp, 0) < 0 ||
	    chmod(tmp, 0600) < 0 ||
	    inject_agent(tmp, "qcow2", c->o.agent, c->o.agent_len) < 0)
		goto cleanup;
	if (link(tmp, c->agent_layer) < 0 && errno != EEXIST) {
		err_errno("link '%s'", c->agent_layer);
		goto cleanup;
	}
	log_info("agent layer %.12s made in %.1f s (once per base image and agent)",
		 c->agent_key, (double)(now_ms() - t0) / 1000.0);
	ret = 0;
cleanup:
	unlink(tmp);
	if (jid)
		journal_release(c->o.journal, jid);
	free(tmp);
	return ret;
}

/* An exclusive lock on checkpoints/agent-KEY.lock (beside the records, not
 * among the layers; an fd to close), waited for up to
 * AGENT_LAYER_WAIT_MS while another build holds it; -1 with the error
 * recorded. */
static int lock_layer(struct ckpt *c, const char *key)
{
	char *path = xasprintf("%s/agent-%s.lock", c->dir, key);
	int64_t deadline = now_ms() + AGENT_LAYER_WAIT_MS;
	bool said = false;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		err_errno("open '%s'", path);
		goto cleanup;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK || now_ms() >= deadline) {
			if (errno != EWOULDBLOCK)
				err_errno("lock '%s'", path);
			else
				err_set("lock '%s': another build has held it over %d s", path,
					AGENT_LAYER_WAIT_MS / 1000);
			close(fd);
			fd = -1;
			goto cleanup;
		}
		if (!said)
			log_info("agent layer %.12s: waiting for another build making it", key);
		said = true;
		usleep(200 * 1000);
	}
cleanup:
	free(path);
	return fd;
}

/* Find or make the agent layer for the base; -1 (error recorded) when it
 * cannot be had: the caller falls back to the seed. */
static int agent_layer(struct ckpt *c)
{
	char *digest = inject_agent_digest(c->o.arch ? c->o.arch : arch_get(ARCH_AUTO),
					   c->o.agent, c->o.agent_len);
	const char *layer;
	json_t *j;
	int lockfd = -1, ret = -1;

	c->agent_key = sha256_hex(CKPT_VERSION, c->o.base->sha256, digest);
	c->agent_layer = xasprintf("%s/agent-%s.qcow2", c->layers, c->agent_key);
	j = usable_record(c, c->agent_key, &layer, NULL);
	if (j && strcmp(layer, c->agent_layer) == 0) {
		touch_chain(c, c->agent_key);
		ret = 0;
		goto cleanup;
	}
	if (strcmp(c->o.base->format, "qcow2") != 0 && strcmp(c->o.base->format, "raw") != 0) {
		err_set("base format '%s' cannot carry an overlay", c->o.base->format);
		goto cleanup;
	}
	/* Only a finished layer is ever linked into place: one without its
	 * record (a crash, or a build writing it now) needs only the record;
	 * one with a broken chain (its base moved) is made again. */
	if (access(c->agent_layer, F_OK) == 0 && !chain_ok(c, c->agent_layer) &&
	    unlink(c->agent_layer) < 0) {
		err_errno("remove '%s'", c->agent_layer);
		goto cleanup;
	}
	/* Builds starting together on one base make it once: the others wait
	 * for the one making it, then take it. */
	if (access(c->agent_layer, F_OK) < 0 && (lockfd = lock_layer(c, c->agent_key)) < 0)
		goto cleanup;
	if ((access(c->agent_layer, F_OK) < 0 && make_agent_layer(c) < 0) ||
	    write_agent_record(c) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	if (lockfd >= 0)
		close(lockfd);
	if (ret < 0) {
		free(c->agent_key);
		free(c->agent_layer);
		c->agent_key = c->agent_layer = NULL;
	}
	json_decref(j);
	free(digest);
	return ret;
}

struct ckpt *ckpt_new(const struct ckpt_opts *o, const struct component_run_opts *co)
{
	struct ckpt *c = xcalloc(1, sizeof(*c));
	char *cache = NULL, *lock = NULL;
	json_t *st = NULL;

	c->o = *o;
	c->lockfd = -1;
	c->cost_ms = -1;
	if (!(cache = cache_dir()))
		goto fail;
	c->dir = xasprintf("%s/checkpoints", cache);
	c->layers = xasprintf("%s/layers", c->dir);
	/* 0711: QEMU may run as another user and must reach the layers by
	 * name (libvirt gives it each layer by ownership); nobody lists them. */
	if (mkdir_p(c->layers, 0711) < 0 || chmod(c->layers, 0711) < 0)
		goto fail;
	lock = xasprintf("%s/lock", c->dir);
	c->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lockfd < 0 || flock(c->lockfd, LOCK_SH) < 0) {
		err_errno("lock '%s'", lock);
		goto fail;
	}
	st = state_read(o->bd->path);
	if (st && json_string_value(json_object_get(st, "nonce")))
		c->nonce = xstrdup(json_string_value(json_object_get(st, "nonce")));
	else
		c->nonce = new_nonce();
	err_clear();
	if (o->agent && agent_layer(c) < 0) {
		log_warn("agent layer: %s; the agent comes from the seed (cloud-init)", err_msg());
		err_clear();
	}
	if (component_plan(co, &c->plan) < 0)
		goto fail;
	compute_keys(c);
	c->parent = c->agent_key ? xstrdup(c->agent_key) : NULL;
	c->hold_ci = c->agent_key && !o->network;
	c->ci_dir = -1;
	c->o.final_material = NULL;	/* the caller's: used for the key only */
	if (o->reuse && c->final_key)
		find_final(c);
	if (o->reuse && !c->final)
		find_reusable(c);
	if (next_layer(c, &c->top, &c->top_jid) < 0)
		goto fail;
	c->pos = c->skip;
	if (c->skip || c->final) {
		size_t i, done = c->final ? c->plan.n : c->skip;

		for (i = 0; i < done; i++) {
			char *name = xasprintf("%s/%s/%s", c->plan.steps[i].document,
					       c->plan.steps[i].phase, c->plan.steps[i].step);
			ev(c, "step", name, "Reused", NULL);
			free(name);
		}
		if (c->final)
			log_info("reusing generalised checkpoint %.12s: all %zu steps done, "
				 "the build guest is not booted", c->final_key, c->plan.n);
		else
			log_info("reusing checkpoint %.12s: %zu of %zu steps done",
				 c->keys[c->skip], c->skip, c->plan.n);
	}
	if (c->final) {
		char *d = xasprintf("%zu/%zu", c->plan.n, c->plan.n);
		ev(c, "checkpoint", c->final_key, "reused-generalised", d);
		free(d);
	} else {
		char *d = xasprintf("%zu/%zu", c->skip, c->plan.n);
		ev(c, "checkpoint", c->keys[c->skip], c->skip ? "reused" : "none", d);
		free(d);
	}
	json_decref(st);
	free(lock);
	free(cache);
	return c;
fail:
	json_decref(st);
	free(lock);
	free(cache);
	ckpt_free(c);
	return NULL;
}

const char *ckpt_image(const struct ckpt *c)
{
	return c->image ? c->image : c->agent_layer;
}

const char *ckpt_state(const struct ckpt *c, const char **shape, const char **name)
{
	*shape = c && c->state && !c->final ? c->state_shape : NULL;
	*name = *shape ? c->state_name : NULL;
	return *shape ? c->state : NULL;
}

bool ckpt_agent_in_layer(const struct ckpt *c)
{
	return c && c->agent_layer;
}

const char *ckpt_overlay(const struct ckpt *c)
{
	return c->top;
}

const struct component_resume *ckpt_resume(const struct ckpt *c)
{
	return c->skip ? &c->resume : NULL;
}

size_t ckpt_reused(const struct ckpt *c)
{
	return c ? (c->final ? c->plan.n : c->skip) : 0;
}

const char *ckpt_final(const struct ckpt *c)
{
	return c ? c->final : NULL;
}

size_t ckpt_steps_left(const struct ckpt *c)
{
	return c->pos < c->plan.n ? c->plan.n - c->pos : 0;
}

size_t ckpt_saved(const struct ckpt *c)
{
	return c ? c->saved : 0;
}

/* info NULL: the generalised checkpoint (no step, no outputs). ci_held:
 * the layer holds cloud-init off (hold_cloud_init). */
static int write_record(const struct ckpt *c, const char *key, const char *layer,
			const struct component_step_info *info, bool ci_held, const char *state,
			const char *shape, const char *name, int64_t cost_ms)
{
	char *outputs = info ? component_step_outputs(info) : NULL;
	char *step = info ? xasprintf("%s/%s/%s", info->document, info->phase, info->step) :
		     xstrdup("(generalised)");
	json_t *j = json_pack("{s:s, s:o, s:s, s:s, s:s, s:I, s:I}", "layer", layer,
			      "parent", c->parent ? json_string(c->parent) : json_null(),
			      "base", c->o.base->path, "base_sha256", c->o.base->sha256,
			      "step", step, "outputs_doc",
			      (json_int_t)(info ? info->doc_index : 0),
			      "created", (json_int_t)time(NULL));
	char *p = record_path(c, key), *s;
	int ret = -1;

	if (j && outputs)
		json_object_set_new(j, "outputs", json_string(outputs));
	if (j && ci_held)
		json_object_set_new(j, "cloud_init_held", json_true());
	if (j && state)
		json_object_set_new(j, "state", json_pack("{s:s, s:s, s:s}", "file", state,
							  "shape", shape, "name", name));
	if (j && cost_ms >= 0)
		json_object_set_new(j, "cost_ms", json_integer(cost_ms));
	s = j ? json_dumps(j, JSON_INDENT(1)) : NULL;
	if (!s)
		err_set("checkpoint record '%s': cannot encode", p);
	else
		ret = write_file_atomic(p, s, strlen(s), 0600);
	free(s);
	free(p);
	free(step);
	free(outputs);
	json_decref(j);
	return ret;
}

bool ckpt_worth_it(const struct component_plan *plan, size_t idx, int64_t work_ms,
		   int64_t cost_ms)
{
	const struct component_plan_step *ps = &plan->steps[idx];
	const struct component_plan_step *next = idx + 1 < plan->n ? ps + 1 : NULL;

	if (cost_ms < 0 || work_ms >= CKPT_WORK_PER_COST * cost_ms)
		return true;
	/* After the last step comes generalisation, whose checkpoint is
	 * taken anyway: a rebuild that changes what follows the steps starts
	 * there, one that changes or adds steps from the one before the last,
	 * which holds the guest's state. */
	if (!next)
		return false;
	return idx + 2 == plan->n || next->doc != ps->doc ||
	       strcmp(next->phase, ps->phase) != 0 || next->external || next->reboots;
}

size_t ckpt_merge_keep(const uint64_t *sizes, size_t n, size_t max_depth)
{
	uint64_t merged = 0;
	size_t j, i;

	if (max_depth == 0 || n < max_depth)
		return n;
	j = max_depth - 1;
	for (i = j; i < n; i++)
		merged += sizes[i];
	while (j > 0 && sizes[j - 1] < merged) {
		merged += sizes[j - 1];
		j--;
	}
	return j;
}

/* Bytes a layer holds (what a stream copies out of it). */
static uint64_t layer_bytes(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* Before freezing the guest's top as the checkpoint of step idx: when the
 * frozen layer would lie deeper than CKPT_DEPTH_MAX above the agent layer
 * (one less for the last step, when a generalised layer goes on top), merge
 * the upper layers of the chain into the top first (guest_stream). The
 * merged layers stay, for their own checkpoints. A failure is a warning:
 * chains are then not bounded for the rest of this build. */
static void merge_before_freeze(struct ckpt *c, struct guest *g, size_t idx)
{
	size_t max = CKPT_DEPTH_MAX - (idx + 1 == c->plan.n && c->final_key ? 1 : 0);
	uint64_t *sizes, bytes = 0;
	struct strv now = STRV_INIT;
	const char *base;
	size_t keep, i;
	int64_t t0 = now_ms(), t_stream;

	if (c->no_merge || c->chain.n < max)
		return;
	sizes = xcalloc(c->chain.n, sizeof(*sizes));
	for (i = 0; i < c->chain.n; i++)
		sizes[i] = layer_bytes(c->chain.v[i]);
	keep = ckpt_merge_keep(sizes, c->chain.n, max);
	for (i = keep; i < c->chain.n; i++)
		bytes += sizes[i];
	free(sizes);
	base = keep ? c->chain.v[keep - 1] : c->agent_layer ? c->agent_layer : c->o.base->path;
	if (!guest_can_stream(g)) {
		err_set("the hypervisor driver cannot stream a disk");
		goto fail;
	}
	if (guest_stream(g, base) < 0)
		goto fail;
	t_stream = now_ms();
	/* What the hypervisor says is not taken on trust: the top must now
	 * back onto base, through the layers kept. (A guest on another host:
	 * the top is there; its header here is the driver's to write when it
	 * comes back, as the frozen layers' were.) */
	if (hv_uri_remote(g->uri))
		goto merged;
	if (!chain_read(c, c->top, &now) || now.n != keep + 1 ||
	    strcmp(now.v[keep], c->top) != 0) {
		err_set("the chain of '%s' is not the expected one after the stream", c->top);
		goto fail;
	}
	for (i = 0; i < keep; i++)
		if (strcmp(now.v[i], c->chain.v[i]) != 0) {
			err_set("the chain of '%s' is not the expected one after the stream",
				c->top);
			goto fail;
		}
merged:
	log_debug("checkpoint chain: %zu layer(s) (%" PRIu64 " KiB) merged into the top in "
		  "%" PRId64 " ms (the stream %" PRId64 " ms)", c->chain.n - keep, bytes / 1024,
		  now_ms() - t0, t_stream - t0);
	c->merged += c->chain.n - keep;
	while (c->chain.n > keep) {
		free(c->chain.v[--c->chain.n]);
		c->chain.v[c->chain.n] = NULL;
	}
	strv_release(&now);
	return;
fail:
	log_warn("checkpoint chain: cannot merge layers (%s); chains grow from here", err_msg());
	err_clear();
	c->no_merge = true;
	strv_release(&now);
}

struct state_file {
	char *path;
	time_t used;
};

static int state_cmp(const void *a, const void *b)
{
	const struct state_file *x = a, *y = b;

	return x->used < y->used ? 1 : x->used > y->used ? -1 : strcmp(x->path, y->path);
}

/* The cache keeps CKPT_STATES_KEEP saved states: the most recently saved
 * or restored (mtime); keep is never removed (just saved). */
static void kept_states(const struct ckpt *c, const char *keep)
{
	struct state_file *v = NULL;
	size_t n = 0, i, kept = 0;
	struct dirent *de;
	DIR *d = opendir(c->layers);

	while (d && (de = readdir(d))) {
		struct stat st;
		char *p;

		if (de->d_name[0] == '.' || !str_endswith(de->d_name, ".state"))
			continue;
		p = xasprintf("%s/%s", c->layers, de->d_name);
		if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(p);
			continue;
		}
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = (struct state_file){ p, st.st_mtime };
	}
	if (d)
		closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), state_cmp);
	for (i = 0; i < n; i++) {
		if (strcmp(v[i].path, keep) == 0 || kept < CKPT_STATES_KEEP - 1) {
			kept += strcmp(v[i].path, keep) != 0;
			continue;
		}
		if (unlink(v[i].path) == 0)
			log_debug("checkpoint: saved state '%s' removed (%d kept)", v[i].path,
				  CKPT_STATES_KEEP);
	}
	for (i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

/* A saved state's file: its layer's name with .state for .qcow2. */
static char *saved_state_path(const char *layer)
{
	size_t n = strlen(layer);

	if (str_endswith(layer, ".qcow2"))
		n -= strlen(".qcow2");
	return xasprintf("%.*s.state", (int)n, layer);
}

/* The checkpoint policy for top-level step idx, done now. */
static bool worth_it(const struct ckpt *c, size_t idx)
{
	int64_t work = now_ms() - c->since_ms;

	if (c->o.every_step || ckpt_worth_it(&c->plan, idx, work, c->cost_ms))
		return true;
	log_debug("no checkpoint after %s/%s: %" PRId64 " ms of work since the last one, "
		  "which took %" PRId64 " ms", c->plan.steps[idx].phase, c->plan.steps[idx].step,
		  work, c->cost_ms);
	return false;
}

/* cloud-init on a checkpoint's boot. A build that boots from a checkpoint
 * continues a build that never stopped there: its guest had run cloud-init
 * once, at its first boot, and a boot at the checkpoint runs no step of its
 * own. So the layer is frozen with cloud-init's own switch in it
 * (INJECT_CI_HOLD_PATH): cloud-init's stages, most of a boot under
 * emulation, do not run again, and the network comes up from the
 * configuration cloud-init rendered at the first boot. Only with the agent
 * layer (the seed's agent needs cloud-init) and the default network (its
 * MAC address, which a rendered configuration may name, is the same at
 * every boot); not where the image disabled cloud-init itself. A failure is
 * no failure: the layer is frozen without it. */
static bool hold_cloud_init(struct ckpt *c, struct guest *g)
{
	struct file_stat st;
	bool ok;

	if (!c->hold_ci)
		return false;
	memset(&st, 0, sizeof(st));
	if (c->ci_dir < 0) {
		c->ci_dir = executor_stat(g->ex, "/etc/cloud", &st) == 0 && st.exists &&
			    S_ISDIR(st.mode);
		file_stat_release(&st);
	}
	if (!c->ci_dir)
		return false;
	ok = executor_stat(g->ex, INJECT_CI_HOLD_PATH, &st) == 0 && !st.exists &&
	     executor_write_file(g->ex, INJECT_CI_HOLD_PATH, INJECT_CI_HOLD_TEXT,
				 strlen(INJECT_CI_HOLD_TEXT), 0644, false) == 0;
	file_stat_release(&st);
	if (!ok)
		log_debug("checkpoint: cloud-init not held off: %s", err_msg());
	err_clear();
	return ok;
}

/* The running build goes on with cloud-init as it was. */
static void release_cloud_init(struct guest *g)
{
	if (executor_remove(g->ex, INJECT_CI_HOLD_PATH, false) < 0) {
		log_warn("checkpoint: cannot remove %s: %s (generalisation will)",
			 INJECT_CI_HOLD_PATH, err_msg());
		err_clear();
	}
}

int ckpt_booted(struct ckpt *c, struct guest *g)
{
	struct buf b = BUF_INIT(256);
	bool ours;
	int ret = -1;

	if (!c || !g || !c->image || !c->ci_held)
		return 0;
	/* Only our own file: a step of the build may have made one since. */
	ours = executor_read_file(g->ex, INJECT_CI_HOLD_PATH, 256, &b) == 0 &&
	       b.len == strlen(INJECT_CI_HOLD_TEXT) &&
	       memcmp(b.data, INJECT_CI_HOLD_TEXT, b.len) == 0;
	err_clear();
	if (ours && executor_remove(g->ex, INJECT_CI_HOLD_PATH, false) < 0) {
		err_prefix("checkpoint boot: remove %s", INJECT_CI_HOLD_PATH);
		goto cleanup;
	}
	/* Whoever's file it was, this boot ran none of cloud-init's stages. */
	if (executor_write_file(g->ex, INJECT_CI_HELD_RUN, "", 0, 0644, false) < 0) {
		log_debug("checkpoint boot: %s: %s", INJECT_CI_HELD_RUN, err_msg());
		err_clear();
	}
	ret = 0;
cleanup:
	buf_release(&b);
	return ret;
}

/* Before the build's last step, where an edit-build loop's rebuild starts
 * (the guest's state is saved there): the guest's boot to its end, systemd
 * with no job left (cloud-init's last stages among them). Generalisation
 * waits for that end in every build; a state saved before it would have the
 * rebuild run the boot's tail again, ~10 s of Python under TCG. The last
 * step then runs on a finished boot (a degraded one is finished too). A
 * boot not ended within the bound is said (--verbose) and the step runs;
 * generalisation then looks once rather than waiting again (guest.h). */
static void wait_boot_end(struct guest *g)
{
	/* Status 1: systemd is there and its boot has not ended. */
	static const char *const argv[] = { "/bin/sh", "-c", GUEST_BOOT_DONE_SH
		"[ -n \"$boot_ended\" ] || [ ! -e " GUEST_BOOT_UNFINISHED " ]", NULL };
	struct exec_req req = { .argv = argv, .timeout_ms = (GUEST_BOOT_DONE_S + 10) * 1000,
				.capture_max = 1024 };
	struct exec_result res;
	int64_t t0 = now_ms();

	memset(&res, 0, sizeof(res));
	if (executor_exec(g->ex, &req, &res) < 0 || res.timed_out) {
		log_debug("checkpoint before the last step: the boot's end not waited for (%s)",
			  err_isset() ? err_msg() : "timed out");
		err_clear();
	} else if (res.status != 0) {
		log_debug("checkpoint before the last step: the guest's boot has not ended after "
			  "%d s; the step runs", GUEST_BOOT_DONE_S);
	} else {
		log_debug("checkpoint before the last step: the guest's boot ended %" PRId64
			  " ms later", now_ms() - t0);
	}
	exec_result_release(&res);
}

void ckpt_step_done(struct ckpt *c, struct guest *g, const struct component_step_info *info,
		    bool changed_disk)
{
	const struct component_plan_step *ps;
	char *new_top = NULL, *frozen = NULL, *state = NULL;
	unsigned jid = 0, sjid = 0;
	size_t idx;
	int64_t t0, tm[4];
	const char *key;
	bool held;
	int r;

	if (!c)
		return;
	/* A step the user continued past (--on-error=ask), at any depth (a
	 * nested one makes its top-level ExecuteDocument "pass"): its key says
	 * "this step done", the disk does not. The checkpoints before it stay
	 * valid; none after it. A step retried until it passed is
	 * checkpointed as any other, like one that needed a second of its
	 * maxAttempts. */
	if (info->continued && !c->off) {
		log_info("checkpoints: none after %s/%s (continued past its failure)",
			 info->phase, info->step);
		c->off = true;
	}
	if (!g || info->depth != 0)
		return;
	idx = c->pos++;
	if (c->off)
		return;
	ps = idx < c->plan.n ? &c->plan.steps[idx] : NULL;
	if (!ps || strcmp(ps->phase, info->phase) != 0 || strcmp(ps->step, info->step) != 0) {
		log_warn("checkpoints: step %s/%s is not the planned one: no more checkpoints",
			 info->phase, info->step);
		c->off = true;
		return;
	}
	/* After a failed step (onFailure Continue) the disk is not what the
	 * keys describe. */
	if (strcmp(info->status, "Failed") == 0) {
		c->off = true;
		return;
	}
	if (!c->since_ms) {
		/* The step's start is wall-clock time; since_ms is now_ms()'s. */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		c->since_ms = now_ms() - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
					  info->start_ms);
	}
	if (!changed_disk || (strcmp(info->status, "Success") != 0 &&
			      strcmp(info->status, "IgnoredFailure") != 0))
		return;
	if (!worth_it(c, idx))
		return;
	if (idx + 2 == c->plan.n && !c->no_state && g->shape)
		wait_boot_end(g);
	t0 = now_ms();
	key = c->keys[idx + 1];
	merge_before_freeze(c, g, idx);
	tm[0] = now_ms();
	held = next_layer(c, &new_top, &jid) == 0 && hold_cloud_init(c, g);
	tm[1] = now_ms();
	/* The guest's state too, where a rebuild most likely starts: the
	 * newest checkpoint before the last step. Each build keeps its newest
	 * state only (hundreds of MiB); none after the last step (the same
	 * steps again reuse the generalised checkpoint: no guest at all). */
	if (new_top && !c->no_state && g->shape && idx + 1 < c->plan.n) {
		state = saved_state_path(c->top);
		if (journal_add(c->o.journal, &sjid, "file", state, NULL) < 0) {
			log_warn("checkpoint: %s; no saved state", err_msg());
			err_clear();
			free(state);
			state = NULL;
		}
	}
	r = new_top ? guest_snapshot(g, new_top, state, &frozen) : -1;
	tm[2] = now_ms();
	if (held)
		release_cloud_init(g);
	tm[3] = now_ms();
	if (r != 0 && sjid) {
		if (r > 0)
			log_warn("checkpoint after %s/%s: %s; checkpoints go on without the "
				 "guest's state", info->phase, info->step, err_msg());
		err_clear();
		journal_release(c->o.journal, sjid);
		c->no_state = true;
		free(state);
		state = NULL;
		sjid = 0;
		if (r > 0)
			r = 0;
	}
	if (r < 0) {
		log_warn("checkpoint after %s/%s: %s; no more checkpoints in this build",
			 info->phase, info->step, err_msg());
		if (jid && access(new_top, F_OK) < 0)
			journal_release(c->o.journal, jid);
		c->off = true;
		free(new_top);
		return;
	}
	/* Layers are this user's and QEMU's (libvirt's dynamic ownership), not
	 * the world's. */
	chmod(new_top, 0600);
	chmod(frozen, 0600);
	/* The frozen layer is the cache's now; the guest writes to new_top. */
	if (journal_keep(c->o.journal, c->top_jid) < 0 ||
	    (sjid && journal_keep(c->o.journal, sjid) < 0) ||
	    write_record(c, key, frozen, info, held, state, g->shape, g->name,
			 now_ms() - t0) < 0) {
		log_warn("checkpoint after %s/%s: %s", info->phase, info->step, err_msg());
		if (state)
			unlink(state);
		c->off = true;
	} else {
		if (state) {
			/* The build's older state: a rebuild's start is this one
			 * or later. Its record stays (a missing state boots). */
			if (c->my_state)
				unlink(c->my_state);
			free(c->my_state);
			c->my_state = state;
			state = NULL;
			kept_states(c, c->my_state);
		}
		char *name = xasprintf("%s/%s/%s", info->document, info->phase, info->step);

		link_into_build(c, key, frozen);
		strv_push(&c->chain, frozen);
		free(c->parent);
		c->parent = xstrdup(key);
		c->saved++;
		c->since_ms = now_ms();
		c->cost_ms = c->since_ms - t0;
		log_debug("checkpoint after %s/%s took %" PRId64 " ms (merge %" PRId64 ", layer and "
			  "cloud-init hold %" PRId64 ", sync and snapshot %" PRId64 ", release %"
			  PRId64 ", record %" PRId64 ")", info->phase, info->step, c->cost_ms,
			  tm[0] - t0, tm[1] - tm[0], tm[2] - tm[1], tm[3] - tm[2],
			  c->since_ms - tm[3]);
		ev(c, "checkpoint", name, "saved", key);
		free(name);
	}
	free(c->top);
	c->top = new_top;
	c->top_jid = jid;
	free(frozen);
	free(state);
}

void ckpt_save_final(struct ckpt *c, struct guest *g)
{
	char *layer;

	if (!c || !g || !c->final_key || c->off || c->final || c->pos != c->plan.n ||
	    !g->overlay || strcmp(g->overlay, c->top) != 0)
		return;
	/* The layer is the cache's from here: the guest must not remove it. */
	layer = guest_release_overlay(g);
	if (journal_keep(c->o.journal, c->top_jid) < 0 ||
	    write_record(c, c->final_key, layer, NULL, false, NULL, NULL, NULL, -1) < 0) {
		log_warn("generalised checkpoint: %s", err_msg());
	} else {
		link_into_build(c, c->final_key, layer);
		c->saved++;
		ev(c, "checkpoint", "(generalised)", "saved", c->final_key);
	}
	c->top_jid = 0;
	free(layer);
}

void ckpt_free(struct ckpt *c)
{
	size_t i;

	if (!c)
		return;
	/* The guest removed its top layer (guest_free): journal that. */
	if (c->top_jid && c->top && access(c->top, F_OK) < 0 &&
	    journal_release(c->o.journal, c->top_jid) < 0)
		log_warn("journal: %s", err_msg());
	if (c->lockfd >= 0)
		close(c->lockfd);
	for (i = 0; c->keys && i <= c->plan.n; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c->final_key);
	free(c->agent_key);
	free(c->agent_layer);
	free(c->final);
	component_plan_release(&c->plan);
	free(c->dir);
	free(c->layers);
	free(c->nonce);
	free(c->image);
	free(c->parent);
	free(c->top);
	free(c->resume_outputs);
	free(c->state);
	free(c->state_shape);
	free(c->state_name);
	free(c->my_state);
	strv_release(&c->chain);
	free(c);
}

/* ---- prune ---------------------------------------------------------------- */

struct rec {
	char *key, *path, *layer, *parent, *base, *state;
	time_t used;
	bool drop;
};

static void recs_free(struct rec *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].path);
		free(v[i].layer);
		free(v[i].parent);
		free(v[i].base);
		free(v[i].state);
	}
	free(v);
}

int ckpt_prune(const char *cache, unsigned older_than_days, bool dry, FILE *f, size_t *files,
	       uint64_t *bytes)
{
	char *dir = xasprintf("%s/checkpoints", cache), *layers = xasprintf("%s/layers", dir);
	char *lock = xasprintf("%s/lock", dir);
	time_t cutoff = time(NULL) - (time_t)older_than_days * 86400;
	struct rec *v = NULL;
	size_t n = 0, i, k;
	struct dirent *de;
	DIR *d = opendir(dir);
	bool changed = true;
	char **in_use = NULL;
	int lfd = -1, ret = -1;

	if (!d) {
		ret = errno == ENOENT ? 0 : err_errno("open '%s'", dir);
		goto cleanup;
	}
	while ((de = readdir(d))) {
		struct rec r = { 0 };
		struct stat st;
		json_t *j;

		if (!str_endswith(de->d_name, ".json"))
			continue;
		r.path = xasprintf("%s/%s", dir, de->d_name);
		r.key = xstrndup(de->d_name, strlen(de->d_name) - 5);
		j = record_load(r.path);
		if (j) {
			const char *s;

			if ((s = json_string_value(json_object_get(j, "layer"))))
				r.layer = xstrdup(s);
			if ((s = json_string_value(json_object_get(j, "parent"))))
				r.parent = xstrdup(s);
			if ((s = json_string_value(json_object_get(j, "base"))))
				r.base = xstrdup(s);
			if ((s = json_string_value(json_object_get(json_object_get(j, "state"),
								   "file"))))
				r.state = xstrdup(s);
			json_decref(j);
		}
		r.used = stat(r.path, &st) == 0 ? st.st_mtime : 0;
		r.drop = !r.layer || !r.base || (older_than_days == 0 || r.used < cutoff) ||
			 access(r.layer, F_OK) < 0 || access(r.base, F_OK) < 0;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = r;
	}
	closedir(d);
	/* A layer a running guest uses (kept by --on-error) stays, and so does
	 * every checkpoint under it: its layer backs onto theirs. */
	in_use = cache_files_in_use();
	for (i = 0; i < n; i++) {
		const char *key = v[i].key;
		size_t steps;

		if (!v[i].layer || !cache_in_use(in_use, v[i].layer))
			continue;
		/* this record, then its ancestors (at most n: no loops) */
		for (steps = 0; key && steps < n; steps++) {
			for (k = 0; k < n && strcmp(v[k].key, key) != 0; k++)
				;
			if (k == n)
				break;
			if (f && v[k].drop)
				fprintf(f, "kept %s: a running guest uses its layer\n", v[k].path);
			v[k].drop = false;
			key = v[k].parent;
		}
	}
	/* A checkpoint whose parent goes, goes: its layer backs onto the parent's. */
	while (changed) {
		changed = false;
		for (i = 0; i < n; i++) {
			if (v[i].drop || !v[i].parent)
				continue;
			for (k = 0; k < n; k++)
				if (strcmp(v[k].key, v[i].parent) == 0)
					break;
			if (k == n || v[k].drop) {
				v[i].drop = true;
				changed = true;
			}
		}
	}
	for (i = 0; i < n; i++)
		if (v[i].drop && cache_remove_file(v[i].path, dry, f, files, bytes) < 0)
			goto cleanup;
	/* Layers nobody refers to — unless a build is running (its top layer
	 * has no record yet). */
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		if (f)
			fprintf(f, "checkpoint layers kept: a build is running\n");
		ret = 0;
		goto cleanup;
	}
	d = opendir(layers);
	while (d && (de = readdir(d))) {
		char *p;

		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", layers, de->d_name);
		for (k = 0; k < n; k++)
			if (!v[k].drop && ((v[k].layer && strcmp(v[k].layer, p) == 0) ||
					   (v[k].state && strcmp(v[k].state, p) == 0)))
				break;
		if (k == n && !cache_in_use(in_use, p) &&
		    cache_remove_file(p, dry, f, files, bytes) < 0) {
			free(p);
			closedir(d);
			goto cleanup;
		}
		free(p);
	}
	if (d)
		closedir(d);
	ret = 0;
cleanup:
	if (lfd >= 0)
		close(lfd);
	recs_free(v, n);
	strv_free(in_use);
	free(lock);
	free(layers);
	free(dir);
	return ret;
}
