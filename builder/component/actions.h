/* actions.h: the AWSTOE action modules, as a table (name, input schema,
 * implementation). The parser checks inputs against the schema; the runner
 * calls run() with the inputs resolved. */
#ifndef AMIFORGE_COMPONENT_ACTIONS_H
#define AMIFORGE_COMPONENT_ACTIONS_H

#include <jansson.h>

#include "compat.h"
#include "buf.h"
#include "builder/exec/executor.h"

enum in_type {
	IN_STR,        /* a scalar */
	IN_BOOL,       /* true/false (any case) */
	IN_INT,        /* an integer */
	IN_STRLIST,    /* a list of scalars */
	IN_PARAMLIST,  /* a list of {name, value} (ExecuteDocument parameters) */
};

struct input_def {
	const char *key;
	enum in_type type;
	bool required;
};

enum action_shape {
	SHAPE_MAP,     /* inputs: a mapping */
	SHAPE_LIST,    /* inputs: a list of mappings (a single mapping is accepted) */
	SHAPE_COND,    /* inputs: a conditional expression (Assert) */
	SHAPE_NONE,    /* inputs: optional mapping (Reboot, UpdateOS) */
};

struct action_ctx;

/* What the runner and the planner need to know of an action: its flags in
 * the table, never its name. */
enum action_flag {
	ACT_CHANGES_DISK = 1 << 0, /* may modify the target's disk (checkpoints) */
	ACT_HOST_SIDE = 1 << 1,    /* runs on the host (network, S3) */
	ACT_REBOOTS = 1 << 2,      /* a reboot: done once the target is back */
	ACT_OWN_TIMEOUT = 1 << 3,  /* not bounded by the step's timeoutSeconds */
	ACT_RUNS_DOCUMENT = 1 << 4,/* its inputs name a document, loaded when parsed */
};

/* Whether a step's outcome depends on the outside world (checkpoint keys). */
enum action_outside {
	OUTSIDE_NEVER,
	OUTSIDE_ALWAYS,
	OUTSIDE_UNLESS_CHECKSUMS, /* unless every source has a checksum */
	OUTSIDE_UNLESS_KNOWN,     /* unless its document is known before the run */
};

struct action_def {
	const char *name;
	enum action_shape shape;
	const struct input_def *inputs;   /* NULL-key terminated */
	/* 0 on success, -1 on failure (message recorded). Sets ctx->reboot to
	 * ask for a reboot and a re-run of the step. */
	int (*run)(struct action_ctx *ctx);
	unsigned flags;                   /* enum action_flag */
	enum action_outside outside;
};

struct component_run_opts;
struct comp_step;
struct run_state;

/* What an action runs with. inputs is resolved: a JSON object (SHAPE_MAP,
 * SHAPE_NONE) or an array of objects (SHAPE_LIST), every leaf a string. */
struct action_ctx {
	struct executor *ex;
	const struct component_run_opts *opts;
	const struct comp_step *step;
	struct run_state *rs;          /* for ExecuteDocument */
	void *doc_run;                 /* the document being run (runner-private) */
	json_t *inputs;
	json_t *outputs;               /* an object; actions set string members */
	int64_t deadline_ms;           /* now_ms() clock; 0: none */
	struct buf *console;           /* command output and messages, for console.log */
	const char *work_dir;          /* scratch dir on the target */
	const char *host_tmp;          /* scratch dir on the host */
	json_t *detail;                /* out: extra members for the step in detailedoutput */
	bool reboot;                   /* out: reboot and re-run this step */
	int64_t reboot_delay_s;
};

/* NULL when name is not a Linux action. */
const struct action_def *action_find(const char *name);
/* The action name closest to a mistyped one, or NULL (did-you-mean). */
const char *action_closest(const char *name);
/* True for actions AWSTOE only has on Windows. */
bool action_windows_only(const char *name);

/* Input helpers for implementations: the string member key of obj, or def. */
const char *in_str(json_t *obj, const char *key, const char *def);
bool in_bool(json_t *obj, const char *key, bool def);
/* True for an IP address (text) of this host or its link, which WebDownload
 * refuses without --allow-local-sources (actions-net.c). */
bool net_addr_is_local(const char *ip);

/* The actions, by module (actions-*.c). */
int act_execute_bash(struct action_ctx *c);
int act_execute_binary(struct action_ctx *c);
int act_execute_document(struct action_ctx *c);
int act_assert(struct action_ctx *c);
int act_reboot(struct action_ctx *c);
int act_update_os(struct action_ctx *c);
int act_create_file(struct action_ctx *c);
int act_append_file(struct action_ctx *c);
int act_create_folder(struct action_ctx *c);
int act_create_symlink(struct action_ctx *c);
int act_copy_file(struct action_ctx *c);
int act_copy_folder(struct action_ctx *c);
int act_move_file(struct action_ctx *c);
int act_move_folder(struct action_ctx *c);
int act_delete_file(struct action_ctx *c);
int act_delete_folder(struct action_ctx *c);
int act_list_files(struct action_ctx *c);
int act_read_file(struct action_ctx *c);
int act_set_file_encoding(struct action_ctx *c);
int act_set_owner(struct action_ctx *c);
int act_set_permissions(struct action_ctx *c);
int act_web_download(struct action_ctx *c);
int act_s3_download(struct action_ctx *c);
int act_s3_upload(struct action_ctx *c);

/* Run argv (env: extra "K=V", may be NULL) on the target within the step's
 * deadline; output goes to the console buffer and, when out is not NULL,
 * stdout is moved there. Returns the exit status (>= 0), or -1 on
 * failure/timeout (recorded). */
int action_exec(struct action_ctx *c, const char *const *argv, const char *const *env,
		struct buf *out);

/* The same, stderr moved to err too (when not NULL). */
int action_exec_full(struct action_ctx *c, const char *const *argv, const char *const *env,
		     struct buf *out, struct buf *err);

/* Milliseconds left before the step's deadline (0: no deadline), or -1 with
 * "timed out" recorded when it has passed. */
int64_t action_time_left(struct action_ctx *c);

#endif
