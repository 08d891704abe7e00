/* component.h: the AWSTOE-compatible component engine, as the build pipeline
 * and `amiforge component` call it.
 *
 * Documents are parsed and validated on the host (document.h); the control
 * flow (phases, steps, loops, conditions, retries, chaining) runs on the host;
 * each action runs against a struct executor (the local machine or a guest
 * through the agent). Actions that need the network or credentials
 * (WebDownload, S3Download, S3Upload) run on the host and move files with the
 * executor's put_file/get_file, so a guest never sees credentials.
 *
 *	struct component_doc_spec d = { .path = "nginx.yaml", .params = kv };
 *	struct component_run_opts o = { .docs = &d, .ndocs = 1, .log_dir = "logs" };
 *	struct component_result res;
 *	if (component_run(&o, executor, &res) < 0) ...   // error recorded
 *	if (!res.success) ... res.failure ...
 *	component_result_release(&res);
 */
#ifndef AMIFORGE_COMPONENT_H
#define AMIFORGE_COMPONENT_H

#include "compat.h"
#include "util.h"
#include "builder/exec/executor.h"

/* S3 access for S3Download/S3Upload, provided by the caller (drivers/aws/).
 * Every function returns 0 or -1 with the error recorded. When
 * component_run_opts.s3 is NULL these actions fail with
 * "S3 support not available". */
struct s3_ops {
	void *opaque;
	/* Download s3://bucket/key into the host file host_path. */
	int (*get)(void *opaque, const char *bucket, const char *key,
		   const char *expected_owner, const char *host_path);
	/* Append to keys every key starting with prefix (for wildcard sources). */
	int (*list)(void *opaque, const char *bucket, const char *prefix,
		    const char *expected_owner, struct strv *keys);
	/* Upload the host file host_path to s3://bucket/key. */
	int (*put)(void *opaque, const char *host_path, const char *bucket, const char *key,
		   const char *expected_owner);
};

/* One document to run. params are "name=value" strings (NULL-terminated,
 * may be NULL) overriding the document's parameter defaults; undeclared
 * names are ignored, as awstoe does. */
struct component_doc_spec {
	const char *path;
	const char *const *params;
};

/* What on_step_start/on_step_done receive. Strings are valid during the call. */
struct component_step_info {
	const char *document;    /* the document's name (or file name) */
	const char *phase;
	const char *step;
	const char *action;
	int depth;               /* 0 top-level, 1.. inside ExecuteDocument */
	size_t index;            /* step number in its phase, from 0 */
	const char *status;      /* on done: Success, Failed, IgnoredFailure, Skipped */
	const char *failure;     /* on done, failed steps: the message */
	int attempts;            /* attempts made (of the last try, see retries) */
	int retries;             /* times on_step_failed asked to run it again */
	bool continued;          /* on done: the step failed and on_step_failed said
				  * COMPONENT_CONTINUE; status is IgnoredFailure */
	int64_t start_ms, end_ms; /* wall clock, ms since the epoch */
	size_t doc_index;        /* the top-level document (index in opts->docs) */
	const void *run;         /* for component_step_outputs() */
};

/* During on_step_done: the inputs and outputs of the steps run so far in the
 * current top-level document (phase → step → {inputs, outputs}, what
 * chaining refers to), as JSON text. Caller frees; NULL inside a nested
 * document. */
char *component_step_outputs(const struct component_step_info *info);

/* changed_disk: the action may have modified the target's disk (false for
 * Assert, ReadFile, ListFiles, skipped steps...). The build pipeline hooks
 * its checkpoints here. */
typedef void (*component_step_fn)(const struct component_step_info *info, bool changed_disk,
				  void *opaque);

/* What the caller wants done with a failed step (on_step_failed). */
enum component_on_fail {
	COMPONENT_FAIL = 0,     /* what the document says (onFailure) */
	COMPONENT_RETRY,        /* run the step again, its `if` included */
	COMPONENT_CONTINUE,     /* treat it as passed: recorded IgnoredFailure with
				 * "continued": true, the run goes on */
	COMPONENT_ABORT,        /* stop the whole run now (Failed), whatever the
				 * step's onFailure says */
};

/* Called for a step that failed after all its attempts and whose onFailure
 * is not Ignore (at any depth; not again for the steps that fail because a
 * run was aborted). info->status is "Failed", info->failure the message.
 * `amiforge build --on-error=ask` prompts here. */
typedef enum component_on_fail (*component_fail_fn)(const struct component_step_info *info,
						    void *opaque);

/* Resume a run part-way (the build's checkpoints): the first `skip`
 * top-level steps, in component_plan() order, are recorded as Skipped
 * without running; `outputs` (component_step_outputs() of step skip-1, or
 * NULL) restores what later steps of that document may refer to. */
struct component_resume {
	size_t skip;
	size_t outputs_doc;          /* the document outputs belongs to */
	const char *outputs;
};

struct component_run_opts {
	const struct component_doc_spec *docs;
	size_t ndocs;
	const char *phases;          /* "build,validate"; NULL: every phase, in document order */
	const char *log_dir;         /* TOE_<date>_UTC-0_<id>/ is created in it; NULL: no logs */
	/* Where the host's scratch directory (downloads on their way to the
	 * target) is made: a directory of the caller's that outlives a SIGKILL
	 * in its records (a build's journaled staging area); NULL: $TMPDIR. */
	const char *host_dir;
	const char *work_dir;        /* scratch dir on the target; NULL: a new
					 * $TMPDIR/amiforge-toe-<id>-XXXXXX (local,
					 * mkdtemp) or /tmp/amiforge-toe-<id> (guest) */
	const struct s3_ops *s3;     /* NULL: S3 actions fail at run time */
	bool progress;               /* live per-step lines on stderr */
	/* WebDownload runs on the host: by default it takes only http(s) URLs
	 * and refuses to connect to this host's own addresses (loopback,
	 * link-local such as the instance metadata service 169.254.169.254).
	 * true also allows file:// sources and those addresses. Redirects
	 * only ever go to http(s). */
	bool allow_local_sources;
	component_step_fn on_step_start, on_step_done;
	component_fail_fn on_step_failed;   /* NULL: always COMPONENT_FAIL */
	void *opaque;
	const struct component_resume *resume;   /* NULL: run every step */
};

struct component_result {
	bool success;               /* Success or SuccessWithIgnoredFailure */
	char *status;               /* "Success", "Failed", "SuccessWithIgnoredFailure" */
	char *execution_id;
	char *log_path;             /* the TOE_... folder, or NULL */
	char *failure;              /* first failure message, or NULL */
	int executed, failed, ignored;  /* step counts as in detailedoutput.json */
	int continued;              /* failures on_step_failed continued past
				     * (counted in ignored too) */
	bool aborted;               /* on_step_failed said COMPONENT_ABORT */
};

/* Validate every document (and the documents they include), then run the
 * selected phases. Returns 0 when the run happened (whatever its outcome, see
 * res), -1 when it could not (invalid document, log folder, executor): error
 * recorded. res is always initialised; release it with component_result_release. */
int component_run(const struct component_run_opts *opts, struct executor *ex,
		  struct component_result *res);

void component_result_release(struct component_result *res);

/* One top-level step a run would execute, in execution order. */
struct component_plan_step {
	size_t doc;                 /* index in opts->docs */
	char *document, *phase, *step, *action;
	bool changes_disk;          /* the action may modify the target's disk */
	bool reboots;               /* the action is a reboot (ACT_REBOOTS) */
	bool external;              /* its outcome depends on the outside world:
				     * WebDownload without checksums, UpdateOS,
				     * S3Download, ExecuteDocument of a document
				     * only known at run time */
	char *material;             /* canonical JSON of what the step's outcome
				     * depends on within the documents: its
				     * definition, the parameter values it may
				     * use, included documents' text */
};

struct component_plan {
	struct component_plan_step *steps;
	size_t n;
};

/* The top-level steps of opts' documents and phases (opts->resume ignored),
 * in the order component_run() runs them; steps an `if` skips at run time
 * are included. 0, or -1 (invalid document, recorded). */
int component_plan(const struct component_run_opts *opts, struct component_plan *plan);
void component_plan_release(struct component_plan *plan);

/* Parse and validate a document file and what it includes. 0 or -1 with
 * "file:line:col: message" recorded. */
int component_validate_file(const char *path);

/* The same, and the parameters the document declares (constants are not
 * parameters): every name into *names, those without a default also into
 * *required. 0 or -1 with the error recorded. */
struct strv;
int component_doc_params(const char *path, struct strv *names, struct strv *required);

#endif
