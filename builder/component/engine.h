/* engine.h: the runner's internals shared with the actions and the TOE logs
 * (not for callers outside builder/component/). */
#ifndef AMIFORGE_COMPONENT_ENGINE_H
#define AMIFORGE_COMPONENT_ENGINE_H

#include <jansson.h>

#include "compat.h"
#include "buf.h"
#include "component.h"
#include "document.h"
#include "actions.h"

/* Captured output of one command kept for outputs and logs (AWSTOE keeps
 * stdout as a step output; 16 MiB bounds what a step can make us hold). */
#define STEP_OUTPUT_MAX (16u * 1024 * 1024)
/* Reboots one step may ask for before it fails (a script that always exits
 * 194 would otherwise reboot forever). */
#define STEP_REBOOTS_MAX 10
/* Largest file ReadFile returns as an output. */
#define READFILE_MAX (16u * 1024 * 1024)

enum run_status { ST_SUCCESS, ST_FAILED, ST_IGNORED, ST_SKIPPED };
const char *status_name(enum run_status s);

struct toelog;

struct run_state {
	const struct component_run_opts *opts;
	struct executor *ex;
	char *exec_id;
	char *work_dir;            /* on the target */
	char *host_tmp;            /* on the host */
	struct toelog *log;        /* NULL: no log folder */
	int executed, failed, ignored;
	int continued;             /* failures on_step_failed continued past */
	bool aborted;              /* on_step_failed said COMPONENT_ABORT: stop */
	char *failure;             /* first failure */
	json_t *chaining;          /* chaining.json: document → phase → step → {inputs, outputs} */
	size_t top_steps;          /* top-level steps reached so far (resume) */
	size_t doc_index;          /* the top-level document running */
};

/* One loop iteration being run. */
struct loop_iter {
	const struct step_loop *loop;
	int64_t index;
	char *value;
};

struct doc_run {
	const struct comp_doc *doc;
	const struct doc_chain *chain;  /* documents above (ExecuteDocument) */
	json_t *params;            /* name → value (after run-time overrides) */
	json_t *steps;             /* phase → step → {inputs, outputs} */
	const struct loop_iter *iter;
	const struct comp_step *step;
};

/* Run the selected phases of doc (phases: comma list or NULL for all) with
 * params (object name → value overriding defaults, may be NULL). Fills jdoc
 * (status, phases...) and returns the document's status; -1 only on an
 * internal error (recorded). */
int runner_run_document(struct run_state *rs, const struct comp_doc *doc,
			const struct doc_chain *chain, const char *phases, json_t *params,
			json_t *jdoc, enum run_status *status, char **failure);

/* Is phase `name` in the comma list phases (NULL: all)? */
bool runner_phase_selected(const char *phases, const char *name);

/* Expand the references in s for the step being run. 0 or -1 (recorded). */
int runner_expand(struct doc_run *dr, const char *s, char **out);

/* Evaluate a conditional expression. 0 with *result, or -1 (recorded). */
int cond_eval(const struct cond *c, struct doc_run *dr, struct executor *ex, bool *result);

/* Logs (toelog.c). */
struct toelog *toelog_open(const char *parent, const char *exec_id, char **path);
void toelog_app(struct toelog *l, const char *fmt, ...) PRINTF_LIKE(2, 3);
void toelog_console(struct toelog *l, const char *data, size_t len);
int toelog_add_document(struct toelog *l, const struct comp_doc *doc, size_t index);
int toelog_write_json(struct toelog *l, const char *name, json_t *j);
void toelog_close(struct toelog *l);

/* Record the time as ISO 8601 UTC with milliseconds into a JSON string. */
json_t *json_time(int64_t epoch_ms);
int64_t wall_ms(void);

#endif
