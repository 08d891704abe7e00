/* lifecycle.c: plan and apply a pipeline's lifecycle policy (lifecycle.h). */
#include <jansson.h>
#include <libxml/tree.h>
#include <sys/file.h>
#include <time.h>

#include "lifecycle.h"
#include "drivers/aws/ec2.h"
#include "drivers/aws/xml.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"

struct image {
	char *id, *name, *created, *state, *deprecation;
	char *snapshots[LC_SNAPSHOTS_MAX + 1];
	int64_t created_s;
	bool excluded;
	enum lc_action action;
	char *why;             /* what the action comes from */
	bool in_effect;        /* the action is already done */
};

struct region_plan {
	const char *region;
	struct image *img;
	size_t n;
};

static void images_release(struct region_plan *rp)
{
	size_t i, k;

	for (i = 0; i < rp->n; i++) {
		struct image *m = &rp->img[i];

		free(m->id);
		free(m->name);
		free(m->created);
		free(m->state);
		free(m->deprecation);
		free(m->why);
		for (k = 0; m->snapshots[k]; k++)
			free(m->snapshots[k]);
	}
	free(rp->img);
	rp->img = NULL;
	rp->n = 0;
}

static int64_t parse_time(const char *s)
{
	struct tm tm = { 0 };
	const char *e;

	if (!s)
		return -1;
	e = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!e)
		return -1;
	return (int64_t)timegm(&tm);
}

static int newest_first(const void *a, const void *b)
{
	const struct image *x = a, *y = b;

	if (x->created_s != y->created_s)
		return x->created_s < y->created_s ? 1 : -1;
	return strcmp(y->id, x->id);
}

static bool excluded(const struct pipeline *p, xmlNode *item)
{
	xmlNode *t;
	size_t i;

	for (t = xml_find(item, "tagSet/item"); t; t = xml_next(t)) {
		char *k = xml_text(t, "key"), *v = xml_text(t, "value");
		bool hit = false;

		for (i = 0; k && i < p->nlc_exclude; i++)
			if (strcmp(k, p->lc_exclude[i].key) == 0 &&
			    strcmp(v ? v : "", p->lc_exclude[i].value) == 0)
				hit = true;
		free(k);
		free(v);
		if (hit)
			return true;
	}
	return false;
}

static int describe(struct aws_client *cl, const struct pipeline *p, struct region_plan *rp)
{
	const char *params[] = { "Owner.1", "self", "Filter.1.Name", "tag:" PIPELINE_TAG,
				 "Filter.1.Value.1", p->name, "IncludeDeprecated", "true",
				 "IncludeDisabled", "true", NULL };
	xmlDoc *doc = NULL;
	xmlNode *it;
	size_t n = 0;

	if (ec2_call(cl, "DescribeImages", params, &doc) < 0)
		return -1;
	for (it = xml_find(xmlDocGetRootElement(doc), "imagesSet/item"); it; it = xml_next(it))
		n++;
	if (n > LC_IMAGES_MAX) {
		xmlFreeDoc(doc);
		return err_set("DescribeImages in %s: %zu AMIs tagged %s=%s; at most %d handled",
			       rp->region, n, PIPELINE_TAG, p->name, LC_IMAGES_MAX);
	}
	rp->img = xcalloc(n + 1, sizeof(*rp->img));
	for (it = xml_find(xmlDocGetRootElement(doc), "imagesSet/item"); it; it = xml_next(it)) {
		struct image *m = &rp->img[rp->n];
		xmlNode *bd;
		size_t k = 0;

		m->id = xml_text(it, "imageId");
		if (!m->id || !str_startswith(m->id, "ami-") || strlen(m->id) > 32) {
			free(m->id);
			m->id = NULL;
			continue;
		}
		rp->n++;
		m->name = xml_text(it, "name");
		m->created = xml_text(it, "creationDate");
		m->state = xml_text(it, "imageState");
		m->deprecation = xml_text(it, "deprecationTime");
		m->created_s = parse_time(m->created);
		m->excluded = excluded(p, it);
		for (bd = xml_find(it, "blockDeviceMapping/item"); bd && k < LC_SNAPSHOTS_MAX;
		     bd = xml_next(bd)) {
			char *s = xml_text(bd, "ebs/snapshotId");

			if (s && str_startswith(s, "snap-") && strlen(s) <= 32)
				m->snapshots[k++] = s;
			else
				free(s);
		}
	}
	xmlFreeDoc(doc);
	qsort(rp->img, rp->n, sizeof(*rp->img), newest_first);
	return 0;
}

void lifecycle_decide(const struct pipeline *p, struct lc_decision *d, size_t n, int64_t now)
{
	size_t r, i;

	for (i = 0; i < n; i++) {
		d[i].action = LC_NONE;
		d[i].rule = 0;
	}
	for (r = 0; r < p->nlc_rules; r++) {
		const struct pipeline_lc_rule *rl = &p->lc_rules[r];
		size_t rank = 0;

		for (i = 0; i < n; i++) {
			bool hit;

			if (d[i].excluded)
				continue;
			if (rl->keep_last)
				hit = rank >= (size_t)rl->keep_last;
			else
				hit = d[i].created >= 0 && d[i].created < now - rl->older_than_s &&
				      rank >= (size_t)rl->retain_at_least;
			rank++;
			if (hit && rl->action > d[i].action) {
				d[i].action = rl->action;
				d[i].rule = r + 1;
			}
		}
	}
}

static void decide(const struct pipeline *p, struct region_plan *rp, int64_t now)
{
	struct lc_decision *d = xcalloc(rp->n + 1, sizeof(*d));
	size_t i;

	for (i = 0; i < rp->n; i++) {
		d[i].created = rp->img[i].created_s;
		d[i].excluded = rp->img[i].excluded;
	}
	lifecycle_decide(p, d, rp->n, now);
	for (i = 0; i < rp->n; i++) {
		struct image *m = &rp->img[i];
		const struct pipeline_lc_rule *rl = d[i].rule ? &p->lc_rules[d[i].rule - 1] : NULL;

		m->action = d[i].action;
		if (rl && rl->keep_last)
			m->why = xasprintf("rule %zu: beyond the newest %d", d[i].rule, rl->keep_last);
		else if (rl && rl->older_than_s % 86400 == 0)
			m->why = xasprintf("rule %zu: older than %" PRId64 " days", d[i].rule,
					   rl->older_than_s / 86400);
		else if (rl)
			m->why = xasprintf("rule %zu: older than %" PRId64 " hours", d[i].rule,
					   rl->older_than_s / 3600);
		if (m->action == LC_DEPRECATE && m->deprecation && *m->deprecation)
			m->in_effect = true;
		if (m->action == LC_DISABLE && m->state && strcmp(m->state, "disabled") == 0)
			m->in_effect = true;
	}
	free(d);
}

/* ---- journal ----------------------------------------------------------------- */

struct journal {
	char *path;
	int fd;
};

static int journal_open(const struct pipeline *p, struct journal *j)
{
	j->path = xasprintf("%s/lifecycle.journal", p->state_dir);
	if (mkdir_p(p->state_dir, 0700) < 0)
		return -1;
	j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (j->fd < 0)
		return err_errno("lifecycle journal '%s'", j->path);
	if (fd_check_private(j->fd, j->path, "lifecycle journal") < 0)
		return -1;
	if (flock(j->fd, LOCK_EX | LOCK_NB) < 0)
		return err_set("lifecycle journal '%s': another lifecycle apply is running",
			       j->path);
	return 0;
}

static int journal_add(struct journal *j, const char *region, const struct image *m,
		       const char *action, const char *phase, const char *error)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "region", region, "image", m->id,
			      "action", action, "phase", phase, "time", "");
	char *now = utc_iso8601(time(NULL)), *text;
	int r;

	json_object_set_new(o, "time", json_string(now));
	free(now);
	if (!strcmp(phase, "begin") && m->snapshots[0]) {
		json_t *a = json_array();
		size_t k;

		for (k = 0; m->snapshots[k]; k++)
			json_array_append_new(a, json_string(m->snapshots[k]));
		json_object_set_new(o, "snapshots", a);
	}
	if (error)
		json_object_set_new(o, "error", json_string(error));
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	r = write_all(j->fd, text, strlen(text)) < 0 || write_all(j->fd, "\n", 1) < 0 ||
	    fdatasync(j->fd) < 0 ? err_errno("lifecycle journal '%s'", j->path) : 0;
	free(text);
	return r;
}

/* Deletions begun and not done: {image: {region, snapshots}}. */
static int journal_pending(struct journal *j, json_t **pending)
{
	struct buf b = BUF_INIT(LC_JOURNAL_MAX);
	const char *s, *e;
	size_t line = 0;

	*pending = json_object();
	if (lseek(j->fd, 0, SEEK_SET) < 0 || buf_read_fd(&b, j->fd) < 0)
		return err_prefix("lifecycle journal '%s'", j->path);
	for (s = b.data ? b.data : ""; *s; s = *e ? e + 1 : e) {
		json_t *o;
		const char *img, *act, *ph;

		e = strchr(s, '\n');
		if (!e)
			e = s + strlen(s);
		line++;
		o = json_loadb(s, (size_t)(e - s), 0, NULL);
		img = json_string_value(json_object_get(o, "image"));
		act = json_string_value(json_object_get(o, "action"));
		ph = json_string_value(json_object_get(o, "phase"));
		if (!img || !act || !ph) {
			json_decref(o);
			buf_release(&b);
			return err_set("%s:%zu: not a lifecycle journal entry", j->path, line);
		}
		if (strcmp(act, "delete") == 0 && strcmp(ph, "begin") == 0)
			json_object_set(*pending, img, o);
		else if (strcmp(act, "delete") == 0 && strcmp(ph, "done") == 0)
			json_object_del(*pending, img);
		json_decref(o);
	}
	buf_release(&b);
	return 0;
}

static void journal_close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	free(j->path);
}

/* ---- actions ------------------------------------------------------------------ */

static int delete_snapshots(struct aws_client *cl, char *const *snaps)
{
	size_t k;

	for (k = 0; snaps[k]; k++) {
		const char *params[] = { "SnapshotId", snaps[k], NULL };

		if (ec2_call(cl, "DeleteSnapshot", params, NULL) < 0) {
			if (strstr(err_msg(), "InvalidSnapshot.NotFound")) {
				err_clear();
				continue;
			}
			return -1;
		}
		log_info("lifecycle: deleted %s", snaps[k]);
	}
	return 0;
}

static int act(struct aws_client *cl, const struct image *m)
{
	const char *p1[] = { "ImageId", m->id, NULL, NULL, NULL };
	char *at = NULL;
	int r = -1;

	switch (m->action) {
	case LC_DEPRECATE:
		/* DeprecateAt cannot be in the past; seconds are rounded to the minute. */
		at = utc_iso8601((time(NULL) / 60 + 2) * 60);
		p1[2] = "DeprecateAt";
		p1[3] = at;
		r = ec2_call(cl, "EnableImageDeprecation", p1, NULL);
		break;
	case LC_DISABLE:
		r = ec2_call(cl, "DisableImage", p1, NULL);
		break;
	case LC_DELETE:
		if (ec2_call(cl, "DeregisterImage", p1, NULL) < 0 &&
		    !strstr(err_msg(), "InvalidAMIID.NotFound") &&
		    !strstr(err_msg(), "InvalidAMIID.Unavailable"))
			break;
		err_clear();
		r = delete_snapshots(cl, m->snapshots);
		break;
	case LC_NONE:
		r = 0;
		break;
	}
	free(at);
	return r;
}

static json_t *image_json(const struct image *m)
{
	json_t *o = json_pack("{s:s, s:s?, s:s?, s:s?, s:b, s:s, s:b}", "image", m->id, "name",
			      m->name, "created", m->created, "state", m->state, "excluded",
			      m->excluded, "action", m->action ? lc_action_name(m->action) : "keep",
			      "in_effect", m->in_effect);
	json_t *s = json_array();
	size_t k;

	for (k = 0; m->snapshots[k]; k++)
		json_array_append_new(s, json_string(m->snapshots[k]));
	json_object_set_new(o, "snapshots", s);
	if (m->why)
		json_object_set_new(o, "reason", json_string(m->why));
	return o;
}

static struct aws_client *client_in(const struct pipeline *p, const char *region)
{
	struct aws_client_opts o = { .profile = p->profile, .region = region,
				     .need_region = true };

	return aws_client_new(&o);
}

/* Finish deletions an earlier apply began (snapshots left). */
static int finish_pending(const struct pipeline *p, struct journal *j, json_t *pending,
			  int *failed)
{
	const char *img;
	json_t *o;

	json_object_foreach(pending, img, o) {
		const char *region = json_string_value(json_object_get(o, "region"));
		struct image m = { 0 };
		struct aws_client *cl;
		json_t *s;
		size_t k;
		int rc;

		if (!region)
			continue;
		m.id = (char *)img;
		m.action = LC_DELETE;
		json_array_foreach(json_object_get(o, "snapshots"), k, s)
			if (k < LC_SNAPSHOTS_MAX && json_is_string(s))
				m.snapshots[k] = (char *)json_string_value(s);
		log_info("lifecycle: finishing the deletion of %s in %s (journal)", img, region);
		cl = client_in(p, region);
		rc = cl ? act(cl, &m) : -1;
		if (journal_add(j, region, &m, "delete", rc == 0 ? "done" : "failed",
				rc == 0 ? NULL : err_msg()) < 0)
			rc = -1;
		if (rc < 0) {
			log_error("lifecycle: %s: %s", img, err_msg());
			(*failed)++;
		}
		aws_client_free(cl);
	}
	return 0;
}

int lifecycle_run(const struct pipeline *p, bool apply, bool json)
{
	struct journal j = { .fd = -1 };
	json_t *out = json_object(), *regions = json_object(), *pending = NULL;
	int64_t now = time(NULL);
	int failed = 0, r = -1;
	size_t ri, i;

	if (!p->lc_regions)
		return err_set("pipeline %s has no lifecycle section", p->name);
	if (apply) {
		if (journal_open(p, &j) < 0 || journal_pending(&j, &pending) < 0)
			goto cleanup;
		finish_pending(p, &j, pending, &failed);
	}
	for (ri = 0; p->lc_regions[ri]; ri++) {
		struct region_plan rp = { .region = p->lc_regions[ri] };
		struct aws_client *cl = client_in(p, rp.region);
		json_t *list = json_array();

		json_object_set_new(regions, rp.region, list);
		if (!cl || describe(cl, p, &rp) < 0) {
			aws_client_free(cl);
			goto cleanup;
		}
		decide(p, &rp, now);
		if (!json)
			printf("%s: %zu AMI%s of pipeline %s\n", rp.region, rp.n,
			       rp.n == 1 ? "" : "s", p->name);
		for (i = 0; i < rp.n; i++) {
			struct image *m = &rp.img[i];
			const char *what = m->excluded ? "excluded" : m->action ?
					   lc_action_name(m->action) : "keep";
			json_t *o = image_json(m);

			if (!json) {
				char *name = str_escape_ctl(m->name ? m->name : "",
							    strlen(m->name ? m->name : ""), false);

				printf("  %-22s %-20s %-10s %s%s%s%s\n", m->id,
				       m->created ? m->created : "?", what, name,
				       m->why ? " (" : "", m->why ? m->why : "", m->why ? ")" : "");
				if (m->in_effect)
					printf("  %-22s already %s\n", "",
					       m->action == LC_DEPRECATE ? "deprecated" : "disabled");
				free(name);
			}
			if (apply && m->action && !m->in_effect) {
				const char *an = lc_action_name(m->action);
				int rc;

				if (journal_add(&j, rp.region, m, an, "begin", NULL) < 0) {
					json_decref(o);
					images_release(&rp);
					aws_client_free(cl);
					goto cleanup;
				}
				rc = act(cl, m);
				json_object_set_new(o, "applied", json_boolean(rc == 0));
				if (rc < 0) {
					json_object_set_new(o, "error", json_string(err_msg()));
					log_error("lifecycle: %s %s in %s: %s", an, m->id, rp.region,
						  err_msg());
					failed++;
				} else if (!json) {
					printf("  %-22s %s: done\n", "", an);
				}
				if (journal_add(&j, rp.region, m, an, rc == 0 ? "done" : "failed",
						rc == 0 ? NULL : json_string_value(json_object_get(o,
								"error"))) < 0) {
					json_decref(o);
					images_release(&rp);
					aws_client_free(cl);
					goto cleanup;
				}
			}
			json_array_append_new(list, o);
		}
		images_release(&rp);
		aws_client_free(cl);
	}
	if (json) {
		char *text;

		json_object_set_new(out, "pipeline", json_string(p->name));
		json_object_set_new(out, "applied", json_boolean(apply));
		json_object_set(out, "regions", regions);
		text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("%s\n", text);
		free(text);
	}
	if (failed) {
		err_set("lifecycle of pipeline %s: %d action%s failed", p->name, failed,
			failed == 1 ? "" : "s");
		goto cleanup;
	}
	r = 0;
cleanup:
	json_decref(pending);
	json_decref(out);
	json_decref(regions);
	journal_close(&j);
	return r;
}
