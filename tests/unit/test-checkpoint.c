/* Unit tests for what checkpoints rely on in the component engine: the plan
 * (step order, key material that changes only with the step itself, external
 * steps) and resuming a run part-way with restored step outputs, against the
 * local executor. */
#include "test.h"
#include "buf.h"
#include "error.h"
#include "util.h"
#include "builder/base/cache.h"
#include "builder/exec/executor.h"
#include "builder/component/component.h"
#include "builder/build/checkpoint.h"

static char order[256];

static void on_done(const struct component_step_info *i, bool changed UNUSED, void *o UNUSED)
{
	snprintf(order + strlen(order), sizeof(order) - strlen(order), "%s:%s ", i->step,
		 i->status);
}

static char *write_doc(const char *dir, const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");

	fputs(text, f);
	fclose(f);
	return p;
}

static const char doc_text[] =
	"schemaVersion: 1.0\n"
	"parameters:\n  - Dir: {type: string}\n  - Word: {type: string, default: w}\n"
	"phases:\n  - name: build\n    steps:\n"
	"      - {name: a, action: ExecuteBash, inputs: {commands: ['echo A']}}\n"
	"      - {name: check, action: Assert, inputs: {stringIsEmpty: ''}}\n"
	"      - {name: c, action: CreateFile, inputs: [{path: '{{ Dir }}/out',"
	" content: '{{ Word }}-{{ build.a.outputs.stdout }}'}]}\n"
	"  - name: validate\n    steps:\n"
	"      - {name: v, action: ExecuteBash, inputs: {commands: ['true']}}\n";

static void test_plan(const char *dir)
{
	char *doc = write_doc(dir, "plan.yaml", doc_text);
	char *ext = write_doc(dir, "ext.yaml",
		"schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n"
		"      - {name: up, action: UpdateOS}\n"
		"      - {name: dl, action: WebDownload, inputs: [{source: 'http://x/y',"
		" destination: /tmp/y}]}\n"
		"      - {name: dls, action: WebDownload, inputs: [{source: 'http://x/y',"
		" destination: /tmp/y, checksum: abc, algorithm: SHA256}]}\n"
		"      - {name: tail, action: ExecuteBash, inputs: {commands: ['true']}}\n");
	const char *p1[] = { "Dir=/d", "Word=one", NULL }, *p2[] = { "Dir=/d", "Word=two", NULL };
	struct component_doc_spec specs[2] = { { doc, p1 }, { ext, NULL } };
	struct component_run_opts o = { .docs = specs, .ndocs = 2, .phases = "build" };
	struct component_plan a, b;

	CHECK(component_plan(&o, &a) == 0, "plan: builds (%s)", err_msg());
	CHECK(a.n == 7, "plan: build-phase steps of both documents, in order (%zu)", a.n);
	if (a.n != 7)
		return;
	CHECK_STR(a.steps[0].step, "a", "plan: first step");
	CHECK(a.steps[2].doc == 0 && a.steps[3].doc == 1, "plan: document indexes");
	CHECK(a.steps[0].changes_disk && !a.steps[1].changes_disk && a.steps[2].changes_disk,
	      "plan: changes_disk from the action");
	CHECK(!a.steps[0].external && a.steps[3].external && a.steps[4].external &&
	      !a.steps[5].external && !a.steps[6].external,
	      "plan: UpdateOS and WebDownload without checksum are external, with one not");
	/* The checkpoint policy on this plan: a, check, c | up, dl, dls, tail. */
	CHECK(ckpt_worth_it(&a, 0, 10, -1), "policy: the first checkpoint is taken (cost unknown)");
	CHECK(!ckpt_worth_it(&a, 0, 10, 500), "policy: 10 ms of work, a 500 ms checkpoint: none");
	CHECK(!ckpt_worth_it(&a, 0, 500, 500), "policy: as much work as a checkpoint costs: none");
	CHECK(!ckpt_worth_it(&a, 0, CKPT_WORK_PER_COST * 500 - 1, 500),
	      "policy: just under CKPT_WORK_PER_COST times its cost: none");
	CHECK(ckpt_worth_it(&a, 0, CKPT_WORK_PER_COST * 500, 500),
	      "policy: CKPT_WORK_PER_COST times what a checkpoint costs: taken");
	CHECK(ckpt_worth_it(&a, 2, 10, 500), "policy: the end of a component: taken");
	CHECK(ckpt_worth_it(&a, 3, 10, 500), "policy: before an external step: taken");
	CHECK(!ckpt_worth_it(&a, 4, 10, 500), "policy: before a WebDownload with checksum: none");
	CHECK(ckpt_worth_it(&a, 5, 10, 500), "policy: before the build's last step: taken");
	CHECK(!ckpt_worth_it(&a, 6, 10, 500),
	      "policy: the last step: none (the generalised checkpoint follows)");
	CHECK(ckpt_worth_it(&a, 6, CKPT_WORK_PER_COST * 500, 500),
	      "policy: the last step after much work: taken");
	CHECK(ckpt_worth_it(&a, 6, 10, -1), "policy: the last step as the first checkpoint: taken");
	specs[0].params = p2;
	CHECK(component_plan(&o, &b) == 0 && b.n == 7, "plan: again with another Word");
	CHECK(strcmp(a.steps[0].material, b.steps[0].material) == 0 &&
	      strcmp(a.steps[2].material, b.steps[2].material) != 0,
	      "plan: a parameter changes only the material of the step using it");
	component_plan_release(&b);
	o.phases = NULL;
	CHECK(component_plan(&o, &b) == 0 && b.n == 8, "plan: every phase when none is selected");
	component_plan_release(&b);
	component_plan_release(&a);
	free(doc);
	free(ext);
	/* Before a reboot: taken (the action's ACT_REBOOTS flag, not its name). */
	doc = write_doc(dir, "reboot.yaml",
		"schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n"
		"      - {name: a, action: ExecuteBash, inputs: {commands: ['true']}}\n"
		"      - {name: r, action: Reboot}\n"
		"      - {name: b, action: ExecuteBash, inputs: {commands: ['true']}}\n"
		"      - {name: c, action: ExecuteBash, inputs: {commands: ['true']}}\n"
		"      - {name: d, action: ExecuteBash, inputs: {commands: ['true']}}\n");
	specs[0] = (struct component_doc_spec){ doc, NULL };
	o.ndocs = 1;
	o.phases = "build";
	CHECK(component_plan(&o, &a) == 0 && a.n == 5, "plan: a document with a reboot");
	if (a.n == 5) {
		CHECK(!a.steps[0].reboots && a.steps[1].reboots, "plan: reboots from the action");
		CHECK(ckpt_worth_it(&a, 0, 10, 500), "policy: before a Reboot: taken");
		CHECK(!ckpt_worth_it(&a, 2, 10, 500), "policy: before a plain step: none");
	}
	component_plan_release(&a);
	free(doc);
}

static void test_resume(const char *dir)
{
	char *doc = write_doc(dir, "run.yaml", doc_text);
	char *dirp = xasprintf("Dir=%s", dir), *out = xasprintf("%s/out", dir);
	const char *params[] = { dirp, NULL };
	struct component_doc_spec spec = { doc, params };
	struct component_resume rs = {
		.skip = 2, .outputs_doc = 0,
		.outputs = "{\"build\": {\"a\": {\"inputs\": {}, \"outputs\": {\"stdout\": \"SAVED\"}}}}",
	};
	struct component_run_opts o = { .docs = &spec, .ndocs = 1, .on_step_done = on_done,
					.resume = &rs };
	struct component_result res;
	struct executor *ex = executor_local_new();
	struct buf b = BUF_INIT(4096);

	/* An executor without a flush op runs `sync` for a checkpoint. */
	CHECK(!ex->ops->flush && executor_flush(ex, 60000) == 0,
	      "flush: the local executor runs sync");
	order[0] = '\0';
	CHECK(component_run(&o, ex, &res) == 0 && res.success, "resume: run succeeds (%s)",
	      res.failure ? res.failure : err_msg());
	CHECK_STR(order, "c:Success v:Success ", "resume: only the steps after skip run");
	CHECK(res.executed == 2, "resume: skipped steps are not counted (%d)", res.executed);
	CHECK(buf_read_file(&b, out) == 0 && b.data && strcmp(b.data, "w-SAVED") == 0,
	      "resume: restored outputs feed chaining (%s)", b.data ? b.data : "?");
	component_result_release(&res);

	/* Broken saved outputs fail the run, they are not ignored. */
	rs.outputs = "[1]";
	order[0] = '\0';
	CHECK(component_run(&o, ex, &res) == 0 && !res.success && order[0] == '\0',
	      "resume: invalid saved outputs fail the document before any step");
	component_result_release(&res);
	buf_release(&b);
	executor_close(ex);
	free(doc);
	free(dirp);
	free(out);
}

/* prune's "in use" test: a file this very process holds open is in use,
 * found through a different spelling of its path; once closed it is not. */
static void test_in_use(const char *dir)
{
	char *p = xasprintf("%s/layer.qcow2", dir), *alias = xasprintf("%s/./layer.qcow2", dir);
	char **v;
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	v = cache_files_in_use();
	CHECK(fd >= 0 && cache_in_use(v, alias), "in use: an open file is in use");
	CHECK(!cache_in_use(v, "/nonexistent/layer"), "in use: a missing file is not");
	strv_free(v);
	close(fd);
	v = cache_files_in_use();
	CHECK(!cache_in_use(v, p), "in use: a closed file is not");
	strv_free(v);
	free(p);
	free(alias);
}

/* A build of 55 checkpointed steps, each writing w[i] bytes into the top:
 * the depth after every freeze and the bytes the streams copied. */
static void simulate(size_t max, const uint64_t *w, size_t steps, size_t *depth_max,
		     uint64_t *copied, uint64_t *written)
{
	uint64_t chain[16];
	size_t n = 0, i, k, keep;

	*depth_max = 0;
	*copied = *written = 0;
	for (i = 0; i < steps; i++) {
		uint64_t merged = 0;

		keep = ckpt_merge_keep(chain, n, max);
		for (k = keep; k < n; k++)
			merged += chain[k];
		*copied += merged;
		*written += w[i];
		n = keep;
		chain[n++] = merged + w[i];
		if (n > *depth_max)
			*depth_max = n;
	}
}

static void test_merge(void)
{
	uint64_t eq[55], big[55], copied, written;
	size_t i, depth;

	CHECK(ckpt_merge_keep((uint64_t[]){ 1, 1 }, 2, 3) == 2,
	      "merge: below the bound, nothing merged");
	CHECK(ckpt_merge_keep((uint64_t[]){ 4, 4, 1 }, 3, 3) == 2,
	      "merge: at the bound, the top layer merged into the new one");
	CHECK(ckpt_merge_keep((uint64_t[]){ 4, 1, 2 }, 3, 3) == 1,
	      "merge: a kept layer smaller than what is merged above it goes too");
	CHECK(ckpt_merge_keep((uint64_t[]){ 1, 1, 100 }, 3, 3) == 0,
	      "merge: small layers under a big one: all merged");
	CHECK(ckpt_merge_keep((uint64_t[]){ 50, 40, 9, 9, 1 }, 5, 3) == 2,
	      "merge: a chain deeper than the bound (an older build) is cut to it");
	CHECK(ckpt_merge_keep((uint64_t[]){ 1, 2 }, 2, 1) == 0,
	      "merge: bound 1: everything into the top");
	for (i = 0; i < 55; i++) {
		eq[i] = 1000;
		big[i] = i == 10 ? 256000 : 1000;
	}
	simulate(CKPT_DEPTH_MAX, eq, 55, &depth, &copied, &written);
	CHECK(depth <= CKPT_DEPTH_MAX, "merge: 55 equal steps: depth %zu <= %d", depth,
	      CKPT_DEPTH_MAX);
	CHECK(copied <= 4 * written, "merge: 55 equal steps: streams copy %" PRIu64
	      " bytes for %" PRIu64 " written (<= 4x)", copied, written);
	simulate(CKPT_DEPTH_MAX, big, 55, &depth, &copied, &written);
	CHECK(depth <= CKPT_DEPTH_MAX, "merge: one big step among 55: depth %zu", depth);
	CHECK(copied <= 2 * written, "merge: one big step among 55: streams copy %" PRIu64
	      " bytes for %" PRIu64 " written (<= 2x: the big layer sinks and stays)",
	      copied, written);
}

int main(void)
{
	char dir[] = "/tmp/amiforge-unit-ckpt.XXXXXX";

	if (!mkdtemp(dir))
		return 1;
	test_plan(dir);
	test_resume(dir);
	test_in_use(dir);
	test_merge();
	remove_tree(dir);
	return TEST_DONE();
}
