/* report.c: a build's report (see report.h). report_data() gathers the
 * build directory's files into one JSON object:
 *
 *	{ "build":   manifest's build (name, version, status, started, finished, error),
 *	  "dir":     the build directory,
 *	  "stages":  manifest's stages [{name, started, finished, seconds, status}],
 *	  "steps":   [{execution, document, phase, name, action, status, start_ms,
 *	               end_ms, seconds, failure, reused, continued, skipped_reason}],
 *	  "slowest": the ten slowest steps (same objects),
 *	  "failure": {message, step, output, console, attach, resume}  (failed builds),
 *	  "inspection": inspect.json as the build wrote it                 (when run),
 *	  "inputs", "outputs", "decisions": as in the manifest,
 *	  "amis":    [{region, image_id, snapshot_id, console}] }
 *
 * and report_write_html() renders that object, so --json and the page never
 * disagree. */
#include <fcntl.h>
#include <dirent.h>
#include <jansson.h>
#include <time.h>

#include "report.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* ---- reading the build directory ---- */

/* Read dir/name without following a symlink, up to REPORT_FILE_MAX. NULL
 * when the file is absent; NULL and *bad when it is unreadable, not a
 * regular file or too big (the error recorded). */
static char *read_in(const char *dir, const char *name, size_t *len, bool *bad)
{
	char *path = xasprintf("%s/%s", dir, name), *data = NULL;
	struct buf b = BUF_INIT(REPORT_FILE_MAX);

	*bad = false;
	if (buf_read_regular(&b, path) < 0)
		*bad = errno != ENOENT;
	else
		data = buf_detach(&b, len);
	buf_release(&b);
	free(path);
	return data;
}

/* A new reference to o's member key, or a new empty array. */
static json_t *member_or_empty(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return v ? json_incref(v) : json_array();
}

static json_t *load_json(const char *dir, const char *name, bool *bad)
{
	size_t len = 0;
	char *text = read_in(dir, name, &len, bad);
	json_error_t je;
	json_t *j;

	if (!text)
		return NULL;
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		err_set("%s/%s:%d:%d: %s", dir, name, je.line, je.column, je.text);
		*bad = true;
	}
	free(text);
	return j;
}

/* The last n lines of text, as a new string. */
static char *tail_lines(const char *text, size_t len, int n)
{
	const char *p = text + len;

	while (p > text && p[-1] == '\n')
		p--;
	while (p > text) {
		if (p[-1] == '\n' && --n == 0)
			break;
		p--;
	}
	return xstrndup(p, (size_t)(text + len - p));
}

/* "2026-12-03T09:50:26[.123]Z" → ms since the epoch; -1 when not that form. */
static int64_t iso_ms(const char *s)
{
	struct tm tm = { 0 };
	const char *p;
	int64_t ms = 0;

	if (!s || !(p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return -1;
	if (*p == '.') {
		int digits = 0;

		for (p++; *p >= '0' && *p <= '9'; p++)
			if (digits++ < 3)
				ms = ms * 10 + (*p - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (*p != 'Z' && *p != '\0')
		return -1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

static const char *jstr(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Steps of one detailedoutput.json, appended to steps. */
static void add_steps(json_t *steps, const json_t *det, const char *exec)
{
	const json_t *doc, *phase, *st;
	size_t i, j, k;

	json_array_foreach(json_object_get(det, "documents"), i, doc) {
		json_array_foreach(json_object_get(doc, "phases"), j, phase) {
			json_array_foreach(json_object_get(phase, "steps"), k, st) {
				int64_t t0 = iso_ms(jstr(st, "startTime"));
				int64_t t1 = iso_ms(jstr(st, "endTime"));
				const json_t *out = json_object_get(st, "outputs");
				json_t *s;

				if (json_array_size(steps) >= REPORT_STEPS_MAX)
					return;
				s = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:I, s:I, s:f}",
					      "execution", exec, "document", jstr(doc, "name"),
					      "phase", jstr(phase, "name"), "name", jstr(st, "name"),
					      "action", jstr(st, "action"), "status", jstr(st, "status"),
					      "start_ms", (json_int_t)t0, "end_ms", (json_int_t)t1,
					      "seconds", t0 >= 0 && t1 >= t0 ? (double)(t1 - t0) / 1000 : 0.0);
				if (!s)
					continue;
				if (jstr(st, "failureMessage"))
					json_object_set_new(s, "failure", json_string(jstr(st, "failureMessage")));
				if (jstr(st, "skippedReason"))
					json_object_set_new(s, "skipped_reason",
							    json_string(jstr(st, "skippedReason")));
				if (json_is_true(json_object_get(st, "continued")))
					json_object_set_new(s, "continued", json_true());
				if (json_is_true(json_object_get(st, "reused")) ||
				    (jstr(st, "skippedReason") &&
				     strstr(jstr(st, "skippedReason"), "checkpoint")))
					json_object_set_new(s, "reused", json_true());
				if (jstr(out, "stdout"))
					json_object_set_new(s, "stdout", json_string(jstr(out, "stdout")));
				json_array_append_new(steps, s);
			}
		}
	}
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every toe/<execution>/detailedoutput.json, in name (= time) order. */
static int add_toe(json_t *steps, const char *dir)
{
	char *toe = xasprintf("%s/toe", dir), **names = NULL;
	size_t n = 0, i;
	struct dirent *e;
	DIR *d;
	int fd, ret = 0;

	fd = open(toe, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		free(toe);
		return 0;	/* a build that ran no component has none */
	}
	names = xcalloc(REPORT_TOE_MAX, sizeof(*names));
	while ((e = readdir(d)) && n < REPORT_TOE_MAX)
		if (e->d_name[0] != '.' && !strchr(e->d_name, '/'))
			names[n++] = xstrdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		char *sub = xasprintf("%s/%s", toe, names[i]);
		bool bad;
		json_t *det = load_json(sub, "detailedoutput.json", &bad);

		if (det)
			add_steps(steps, det, jstr(det, "executionId") ? jstr(det, "executionId")
								     : names[i]);
		else if (bad) {
			log_warn("report: %s", err_msg());
			ret = 1;
		}
		json_decref(det);
		free(sub);
		free(names[i]);
	}
	free(names);
	free(toe);
	return ret;
}

static int cmp_seconds(const void *a, const void *b)
{
	double x = json_real_value(json_object_get(*(json_t *const *)a, "seconds"));
	double y = json_real_value(json_object_get(*(json_t *const *)b, "seconds"));

	return x < y ? 1 : x > y ? -1 : 0;
}

static json_t *slowest(const json_t *steps, size_t n)
{
	size_t count = json_array_size(steps), i;
	json_t **v = xcalloc(count ? count : 1, sizeof(*v)), *out = json_array();

	for (i = 0; i < count; i++)
		v[i] = json_array_get(steps, i);
	qsort(v, count, sizeof(*v), cmp_seconds);
	for (i = 0; i < count && i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	return out;
}

static json_t *failure_of(const char *dir, const json_t *build, const json_t *steps)
{
	const char *error = jstr(build, "error");
	json_t *f = json_object(), *st;
	size_t i, len;
	bool bad;
	char *console;

	json_object_set_new(f, "message", json_string(error ? error : "the build failed"));
	json_array_foreach(steps, i, st) {
		const char *s = jstr(st, "status");

		if (s && strcmp(s, "Failed") == 0) {
			json_object_set(f, "step", st);
			if (jstr(st, "stdout"))
				json_object_set_new(f, "output",
						    json_string(jstr(st, "stdout")));
			break;
		}
	}
	if (jstr(f, "output")) {
		const char *o = jstr(f, "output");
		char *t = tail_lines(o, strlen(o), REPORT_TAIL_LINES);

		json_object_set_new(f, "output", json_string(t));
		free(t);
	}
	console = read_in(dir, "console.log", &len, &bad);
	if (console) {
		char *t = tail_lines(console, len, REPORT_TAIL_LINES);
		json_t *js = json_stringn(t, strlen(t));

		/* Console bytes need not be UTF-8 (jansson refuses those). */
		json_object_set_new(f, "console", js ? js : json_string(
			"(not shown: the console log's last lines are not UTF-8)"));
		free(t);
		free(console);
	}
	json_object_set_new(f, "resume", json_sprintf("amiforge build --resume %s", dir));
	json_object_set_new(f, "attach", json_sprintf("amiforge attach %s -- COMMAND", dir));
	return f;
}

static json_t *amis_of(const json_t *manifest)
{
	json_t *out = json_array(), *a;
	size_t i;

	json_array_foreach(json_object_get(manifest, "amis"), i, a) {
		json_t *c = json_deep_copy(a);
		const char *region = jstr(a, "region"), *id = jstr(a, "image_id");

		if (region && id)
			json_object_set_new(c, "console", json_sprintf(
				"https://%s.console.aws.amazon.com/ec2/home?region=%s#ImageDetails:imageId=%s",
				region, region, id));
		json_array_append_new(out, c);
	}
	return out;
}

json_t *report_data(const char *dir)
{
	json_t *manifest, *data = NULL, *steps, *build, *inspect;
	const char *status;
	bool bad;

	manifest = load_json(dir, "manifest.json", &bad);
	if (!manifest) {
		if (!bad)
			err_set("'%s' is not a build directory: it has no manifest.json", dir);
		return NULL;
	}
	if (!json_is_object(manifest)) {
		err_set("%s/manifest.json: not a JSON object", dir);
		goto cleanup;
	}
	build = json_object_get(manifest, "build");
	steps = json_array();
	add_toe(steps, dir);
	/* "o" takes each reference: the manifest's members are increfed, an
	 * empty stand-in is new. */
	data = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			 "dir", dir,
			 "build", json_is_object(build) ? json_incref(build) : json_object(),
			 "stages", member_or_empty(manifest, "stages"),
			 "steps", steps,
			 "inputs", member_or_empty(manifest, "inputs"),
			 "outputs", member_or_empty(manifest, "outputs"),
			 "decisions", member_or_empty(manifest, "decisions"),
			 "amis", amis_of(manifest));
	if (!data) {
		err_set("%s/manifest.json: unexpected shape", dir);
		goto cleanup;
	}
	json_object_set_new(data, "slowest", slowest(json_object_get(data, "steps"), 10));
	status = jstr(build, "status");
	if (status && strcmp(status, "succeeded") != 0)
		json_object_set_new(data, "failure", failure_of(dir, build,
								json_object_get(data, "steps")));
	inspect = load_json(dir, "inspect.json", &bad);
	if (inspect)
		json_object_set_new(data, "inspection", inspect);
	else if (bad)
		log_warn("report: %s", err_msg());
cleanup:
	json_decref(manifest);
	return data;
}

/* ---- the page ---- */

/* Text into HTML: &<>"' escaped; control characters (but \n and \t) shown
 * as U+FFFD, so nothing from a guest or a log can become markup. */
static void esc(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '&': buf_adds(b, "&amp;"); break;
		case '<': buf_adds(b, "&lt;"); break;
		case '>': buf_adds(b, "&gt;"); break;
		case '"': buf_adds(b, "&quot;"); break;
		case '\'': buf_adds(b, "&#39;"); break;
		default:
			if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
				buf_adds(b, "\xef\xbf\xbd");
			else
				buf_addc(b, (char)c);
		}
	}
}

static void tag_text(struct buf *b, const char *open, const char *s, const char *close)
{
	buf_adds(b, open);
	esc(b, s ? s : "");
	buf_adds(b, close);
}

static const char *step_class(const json_t *st)
{
	const char *s = jstr(st, "status");

	if (json_is_true(json_object_get(st, "reused")))
		return "reused";
	if (json_is_true(json_object_get(st, "continued")))
		return "ignored";
	if (!s)
		return "other";
	if (strcmp(s, "Success") == 0)
		return "ok";
	if (strcmp(s, "Failed") == 0)
		return "failed";
	if (strcmp(s, "IgnoredFailure") == 0 || strcmp(s, "SuccessWithIgnoredFailure") == 0)
		return "ignored";
	if (strcmp(s, "Skipped") == 0)
		return "skipped";
	return "other";
}

static const char *stage_class(const json_t *st)
{
	const char *s = jstr(st, "status");

	if (!s)
		return "other";
	if (strcmp(s, "ok") == 0)
		return "ok";
	if (strcmp(s, "failed") == 0)
		return "failed";
	if (strcmp(s, "skipped") == 0)
		return "skipped";
	return "other";
}

static const char *step_label(const json_t *st)
{
	static const char *const labels[][2] = {
		{ "reused", "reused from a checkpoint" }, { "ok", "success" },
		{ "failed", "failed" }, { "ignored", "failure ignored" },
		{ "skipped", "skipped" }, { "other", "" },
	};
	const char *c = step_class(st);
	size_t i;

	for (i = 0; i < ARRAY_SIZE(labels); i++)
		if (strcmp(labels[i][0], c) == 0)
			return labels[i][1];
	return "";
}

static void step_path(struct buf *b, const json_t *st)
{
	esc(b, jstr(st, "document") ? jstr(st, "document") : "?");
	buf_adds(b, "/");
	esc(b, jstr(st, "phase") ? jstr(st, "phase") : "?");
	buf_adds(b, "/");
	esc(b, jstr(st, "name") ? jstr(st, "name") : "?");
}

#define SVG_W 960
#define SVG_LABEL 150
#define SVG_ROW 18

/* The timeline: one row per stage, then one per step, on a common time axis. */
static void timeline(struct buf *b, const json_t *data)
{
	const json_t *stages = json_object_get(data, "stages");
	const json_t *steps = json_object_get(data, "steps"), *st;
	int64_t t0 = INT64_MAX, t1 = 0, prev;
	size_t i, rows, row = 0;
	double scale;

	json_array_foreach(stages, i, st) {
		int64_t a = iso_ms(jstr(st, "started"));
		int64_t z = a + (int64_t)(json_number_value(json_object_get(st, "seconds")) * 1000);

		if (a >= 0 && a < t0)
			t0 = a;
		if (a >= 0 && z > t1)
			t1 = z;
	}
	json_array_foreach(steps, i, st) {
		int64_t a = json_integer_value(json_object_get(st, "start_ms"));
		int64_t z = json_integer_value(json_object_get(st, "end_ms"));

		if (a > 0 && a < t0)
			t0 = a;
		if (z > t1)
			t1 = z;
	}
	if (t0 == INT64_MAX || t1 <= t0) {
		buf_adds(b, "<p>No timing recorded.</p>\n");
		return;
	}
	rows = json_array_size(stages) + json_array_size(steps);
	scale = (double)(SVG_W - SVG_LABEL - 10) / (double)(t1 - t0);
	buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%zu\" "
		   "role=\"img\" aria-label=\"timeline\">\n", SVG_W, (rows + 1) * SVG_ROW + 4);
	buf_printf(b, "<text x=\"%d\" y=\"12\" class=\"axis\">0 s</text>"
		   "<text x=\"%d\" y=\"12\" class=\"axis\" text-anchor=\"end\">%.1f s</text>\n",
		   SVG_LABEL, SVG_W - 10, (double)(t1 - t0) / 1000);
	row = 1;
	prev = t0;
	json_array_foreach(stages, i, st) {
		int64_t a = iso_ms(jstr(st, "started"));
		double secs = json_number_value(json_object_get(st, "seconds"));
		double x = SVG_LABEL + (double)(a - t0) * scale, w = secs * 1000 * scale;

		if (a < 0)
			continue;
		buf_printf(b, "<g class=\"%s\"><title>", stage_class(st));
		esc(b, jstr(st, "name"));
		buf_printf(b, ": %.1f s, ", secs);
		esc(b, jstr(st, "status"));
		buf_printf(b, "</title><text x=\"2\" y=\"%zu\">", row * SVG_ROW + 12);
		esc(b, jstr(st, "name"));
		buf_printf(b, "</text><rect x=\"%.1f\" y=\"%zu\" width=\"%.1f\" height=\"%d\"/></g>\n",
			   x, row * SVG_ROW + 2, w < 1 ? 1 : w, SVG_ROW - 4);
		row++;
	}
	json_array_foreach(steps, i, st) {
		int64_t a = json_integer_value(json_object_get(st, "start_ms"));
		double secs = json_real_value(json_object_get(st, "seconds"));
		double x, w = secs * 1000 * scale;

		/* A step that did not run here (reused from a checkpoint,
		 * skipped) has no times: a mark where the run was then. */
		if (a <= 0) {
			a = prev;
			w = 4;
		}
		prev = json_integer_value(json_object_get(st, "end_ms")) > 0
			       ? json_integer_value(json_object_get(st, "end_ms")) : a;
		x = SVG_LABEL + (double)(a - t0) * scale;
		buf_printf(b, "<g class=\"step %s\"><title>", step_class(st));
		step_path(b, st);
		buf_printf(b, ": %.2f s, %s</title><text x=\"8\" y=\"%zu\">", secs, step_label(st),
			   row * SVG_ROW + 12);
		esc(b, jstr(st, "name"));
		buf_printf(b, "</text><rect x=\"%.1f\" y=\"%zu\" width=\"%.1f\" height=\"%d\"/></g>\n",
			   x, row * SVG_ROW + 2, w < 1 ? 1 : w, SVG_ROW - 4);
		row++;
	}
	buf_adds(b, "</svg>\n<p class=\"legend\"><span class=\"ok\">success</span> "
		    "<span class=\"failed\">failed</span> <span class=\"ignored\">failure "
		    "ignored</span> <span class=\"reused\">reused from a checkpoint</span> "
		    "<span class=\"skipped\">skipped</span></p>\n");
}

static void steps_table(struct buf *b, const json_t *steps, const char *caption)
{
	const json_t *st;
	size_t i;

	buf_adds(b, "<table>\n");
	tag_text(b, "<caption>", caption, "</caption>\n");
	buf_adds(b, "<tr><th>step</th><th>action</th><th>outcome</th><th>seconds</th></tr>\n");
	json_array_foreach(steps, i, st) {
		buf_printf(b, "<tr class=\"%s\"><td>", step_class(st));
		step_path(b, st);
		tag_text(b, "</td><td>", jstr(st, "action"), "</td><td>");
		esc(b, jstr(st, "status"));
		if (json_is_true(json_object_get(st, "reused")))
			buf_adds(b, " (reused from a checkpoint)");
		buf_printf(b, "</td><td class=\"num\">%.2f</td></tr>\n",
			   json_real_value(json_object_get(st, "seconds")));
	}
	buf_adds(b, "</table>\n");
}

static void failure_section(struct buf *b, const json_t *f)
{
	const json_t *st = json_object_get(f, "step");

	buf_adds(b, "<section id=\"failure\"><h2>Failure</h2>\n");
	tag_text(b, "<p class=\"error\">", jstr(f, "message"), "</p>\n");
	if (st) {
		buf_adds(b, "<p>Failing step: <code class=\"failstep\">");
		step_path(b, st);
		buf_adds(b, "</code>");
		if (jstr(st, "action"))
			tag_text(b, " (", jstr(st, "action"), ")");
		buf_adds(b, "</p>\n");
		if (jstr(st, "failure"))
			tag_text(b, "<pre>", jstr(st, "failure"), "</pre>\n");
	}
	if (jstr(f, "output"))
		tag_text(b, "<h3>Last lines of its output</h3>\n<pre>", jstr(f, "output"), "</pre>\n");
	if (jstr(f, "console"))
		tag_text(b, "<h3>Last lines of the guest console</h3>\n<pre>",
			 jstr(f, "console"), "</pre>\n");
	buf_adds(b, "<p>Continue where it failed:</p>\n");
	tag_text(b, "<pre>", jstr(f, "resume"), "</pre>\n");
	buf_adds(b, "<p>If it failed with <code>--on-error=abort</code>, the guest is still "
		    "running:</p>\n");
	tag_text(b, "<pre>", jstr(f, "attach"), "</pre>\n</section>\n");
}

/* inspect.json (builder/inspect/report.c): ok, summary counts, and each
 * check's id, status, reason and evidence. */
static void inspection_section(struct buf *b, const json_t *in)
{
	const json_t *checks = json_object_get(in, "checks"), *c, *sum;
	size_t i;

	buf_adds(b, "<section id=\"inspection\"><h2>Inspection</h2>\n");
	if (json_is_boolean(json_object_get(in, "ok")))
		buf_printf(b, "<p>Result: <strong>%s</strong>",
			   json_is_true(json_object_get(in, "ok")) ? "no check failed" : "failed");
	else
		tag_text(b, "<p>Result: <strong>", jstr(in, "status"), "</strong>");
	sum = json_object_get(in, "summary");
	if (json_is_object(sum))
		buf_printf(b, " (%" JSON_INTEGER_FORMAT " passed, %" JSON_INTEGER_FORMAT
			   " warnings, %" JSON_INTEGER_FORMAT " failed, %" JSON_INTEGER_FORMAT
			   " skipped)", json_integer_value(json_object_get(sum, "pass")),
			   json_integer_value(json_object_get(sum, "warn")),
			   json_integer_value(json_object_get(sum, "fail")),
			   json_integer_value(json_object_get(sum, "skip")));
	if (jstr(in, "for"))
		tag_text(b, ", checks for <code>", jstr(in, "for"), "</code>");
	buf_adds(b, "</p>\n");
	if (!json_is_array(checks)) {
		buf_adds(b, "<p>No checks recorded.</p></section>\n");
		return;
	}
	buf_adds(b, "<table><tr><th>check</th><th>status</th><th>evidence</th></tr>\n");
	json_array_foreach(checks, i, c) {
		const char *s = jstr(c, "status");

		buf_printf(b, "<tr class=\"%s\">", s && strcmp(s, "fail") == 0 ? "failed"
						 : s && strcmp(s, "warn") == 0 ? "ignored"
						 : s && strcmp(s, "skip") == 0 ? "skipped" : "ok");
		tag_text(b, "<td>", jstr(c, "id"), "</td>");
		tag_text(b, "<td>", s, "</td><td>");
		esc(b, jstr(c, "reason") ? jstr(c, "reason") : jstr(c, "message"));
		if (jstr(c, "evidence") && *jstr(c, "evidence"))
			tag_text(b, " [", jstr(c, "evidence"), "]");
		buf_adds(b, "</td></tr>\n");
	}
	buf_adds(b, "</table></section>\n");
}

static void outputs_section(struct buf *b, const json_t *data)
{
	const json_t *o;
	size_t i;

	buf_adds(b, "<section id=\"outputs\"><h2>Outputs</h2>\n");
	if (!json_array_size(json_object_get(data, "outputs"))) {
		buf_adds(b, "<p>None.</p>\n");
	} else {
		buf_adds(b, "<table><tr><th>format</th><th>file</th><th>bytes</th>"
			    "<th>sha256</th></tr>\n");
		json_array_foreach(json_object_get(data, "outputs"), i, o) {
			tag_text(b, "<tr><td>", jstr(o, "format"), "</td>");
			tag_text(b, "<td>", jstr(o, "path"), "</td>");
			buf_printf(b, "<td class=\"num\">%" JSON_INTEGER_FORMAT "</td>",
				   json_integer_value(json_object_get(o, "size")));
			tag_text(b, "<td><code>", jstr(o, "sha256"), "</code></td></tr>\n");
		}
		buf_adds(b, "</table>\n");
	}
	if (json_array_size(json_object_get(data, "amis"))) {
		buf_adds(b, "<h3>AMIs</h3>\n<table><tr><th>region</th><th>AMI</th>"
			    "<th>snapshot</th></tr>\n");
		json_array_foreach(json_object_get(data, "amis"), i, o) {
			tag_text(b, "<tr><td>", jstr(o, "region"), "</td><td>");
			if (jstr(o, "console"))
				tag_text(b, "<a href=\"", jstr(o, "console"), "\">");
			esc(b, jstr(o, "image_id"));
			buf_adds(b, jstr(o, "console") ? "</a>" : "");
			tag_text(b, "</td><td>", jstr(o, "snapshot_id"), "</td></tr>\n");
		}
		buf_adds(b, "</table>\n");
	}
	buf_adds(b, "</section>\n");
}

static void inputs_section(struct buf *b, const json_t *data)
{
	const json_t *in;
	size_t i;

	buf_adds(b, "<section id=\"inputs\"><h2>What went in</h2>\n<table><tr><th>kind</th>"
		    "<th>source</th><th>sha256</th></tr>\n");
	json_array_foreach(json_object_get(data, "inputs"), i, in) {
		tag_text(b, "<tr><td>", jstr(in, "kind"), "</td><td>");
		if (jstr(in, "name")) {	/* a catalog component: name, version, pattern */
			esc(b, jstr(in, "name"));
			tag_text(b, " ", jstr(in, "version"), "");
			tag_text(b, " (asked: ", jstr(in, "requested"), ")<br>");
		}
		esc(b, jstr(in, "source") ? jstr(in, "source") : jstr(in, "path"));
		buf_adds(b, "</td>");
		tag_text(b, "<td><code>", jstr(in, "sha256"), "</code></td></tr>\n");
	}
	buf_adds(b, "</table></section>\n");
}

static const char css[] =
	"body{font:14px/1.4 sans-serif;margin:1em 2em;color:#222}"
	"h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc}"
	"table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;"
	"padding:2px 6px;text-align:left;vertical-align:top}td.num{text-align:right}"
	"caption{text-align:left;font-weight:bold}pre{background:#f6f6f6;padding:.5em;"
	"overflow-x:auto;white-space:pre-wrap}.error{color:#a00;font-weight:bold}"
	"svg text{font-size:11px}svg text.axis{fill:#666}"
	"g.ok rect,.legend .ok{fill:#3a3;background:#3a3}"
	"g.failed rect,.legend .failed{fill:#c33;background:#c33}"
	"g.ignored rect,.legend .ignored{fill:#e90;background:#e90}"
	"g.reused rect,.legend .reused{fill:#39c;background:#39c}"
	"g.skipped rect,g.other rect,.legend .skipped{fill:#aaa;background:#aaa}"
	".legend span{color:#fff;padding:0 4px;margin-right:4px}"
	"tr.failed td{background:#fdd}tr.reused td{background:#def}"
	"tr.ignored td{background:#fec}";

int report_write_html(const json_t *data, const char *out)
{
	const json_t *build = json_object_get(data, "build"), *st;
	struct buf b = BUF_INIT(256u * 1024 * 1024);
	size_t i, reused = 0;
	int ret;

	buf_adds(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
	buf_adds(&b, "<title>amiforge build ");
	esc(&b, jstr(build, "name"));
	buf_adds(&b, " ");
	esc(&b, jstr(build, "version"));
	buf_adds(&b, "</title>\n<style>");
	buf_adds(&b, css);
	buf_adds(&b, "</style>\n</head>\n<body>\n<h1>Build ");
	esc(&b, jstr(build, "name"));
	buf_adds(&b, " ");
	esc(&b, jstr(build, "version"));
	tag_text(&b, ": <span class=\"status\">", jstr(build, "status"), "</span></h1>\n");
	buf_adds(&b, "<p>");
	tag_text(&b, "Started ", jstr(build, "started"), "");
	if (jstr(build, "finished"))
		tag_text(&b, ", finished ", jstr(build, "finished"), "");
	tag_text(&b, ". Build directory: <code>", jstr(data, "dir"), "</code>.</p>\n");
	if (json_is_object(json_object_get(build, "architecture"))) {
		const json_t *ar = json_object_get(build, "architecture");

		tag_text(&b, "<p>Architecture: <strong>", jstr(ar, "name"), "</strong>");
		tag_text(&b, " (EC2 ", jstr(ar, "ec2"), "");
		tag_text(&b, ", boot ", jstr(ar, "boot"), ")");
		tag_text(&b, ", from ", jstr(ar, "from"), ".</p>\n");
	}
	json_array_foreach(json_object_get(data, "steps"), i, st)
		if (json_is_true(json_object_get(st, "reused")))
			reused++;
	buf_printf(&b, "<p>%zu steps, %zu reused from checkpoints.</p>\n",
		   json_array_size(json_object_get(data, "steps")), reused);
	if (json_object_get(data, "failure"))
		failure_section(&b, json_object_get(data, "failure"));
	buf_adds(&b, "<section id=\"timeline\"><h2>Timeline</h2>\n");
	timeline(&b, data);
	buf_adds(&b, "</section>\n<section id=\"stages\"><h2>Stages</h2>\n<table><tr><th>stage"
		     "</th><th>status</th><th>seconds</th></tr>\n");
	json_array_foreach(json_object_get(data, "stages"), i, st) {
		tag_text(&b, "<tr><td>", jstr(st, "name"), "</td>");
		tag_text(&b, "<td>", jstr(st, "status"), "</td>");
		buf_printf(&b, "<td class=\"num\">%.1f</td></tr>\n",
			   json_number_value(json_object_get(st, "seconds")));
	}
	buf_adds(&b, "</table></section>\n<section id=\"steps\"><h2>Steps</h2>\n");
	steps_table(&b, json_object_get(data, "slowest"), "The slowest ten");
	steps_table(&b, json_object_get(data, "steps"), "Every step");
	buf_adds(&b, "</section>\n");
	if (json_object_get(data, "inspection"))
		inspection_section(&b, json_object_get(data, "inspection"));
	outputs_section(&b, data);
	inputs_section(&b, data);
	buf_adds(&b, "</body>\n</html>\n");
	if (!b.data) {
		err_set("report for '%s': too large", jstr(data, "dir"));
		return -1;
	}
	ret = write_file_atomic(out, b.data, b.len, 0600);
	buf_release(&b);
	return ret;
}

int report_write_for_build(const char *dir)
{
	json_t *data = report_data(dir);
	char *out;
	int ret;

	if (!data)
		return -1;
	out = xasprintf("%s/report.html", dir);
	ret = report_write_html(data, out);
	free(out);
	json_decref(data);
	return ret;
}
