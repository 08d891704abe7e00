/* document.h: an AWSTOE component document (schemaVersion 1.0) as a checked
 * model. doc_load() parses and validates everything that can be checked
 * without running: keys, types, names, actions and their inputs, loops,
 * conditions, where expressions appear and what they refer to, and the
 * documents ExecuteDocument includes (nesting, cycles). Every error is
 * "file:line:col: message" naming the offending key.
 *
 * The model points into the YAML tree (doc->y), which it owns. */
#ifndef AMIFORGE_COMPONENT_DOCUMENT_H
#define AMIFORGE_COMPONENT_DOCUMENT_H

#include "compat.h"
#include "builder/recipe/yaml.h"

/* AWSTOE limits. */
#define DOC_NEST_MAX 3          /* ExecuteDocument nesting levels */
#define DOC_NAME_MIN 3          /* parameter/constant names: 3..128 chars */
#define DOC_NAME_MAX 128
#define COND_DEPTH_MAX 4        /* nesting of and/or/not */
#define LOOP_ITER_MAX 100000    /* iterations of one loop (ours: bounds runaway loops) */
#define STEP_ATTEMPTS_MAX 100   /* maxAttempts ceiling (ours) */
#define STEP_TIMEOUT_DEFAULT 7200

enum onfailure { ONFAIL_ABORT, ONFAIL_CONTINUE, ONFAIL_IGNORE };
enum branch { BR_EXECUTE, BR_SKIP, BR_ABORT };

enum cond_op {
	C_AND, C_OR, C_NOT,
	C_STR_EMPTY, C_STR_WS, C_STR_EQ, C_STR_LT, C_STR_LE, C_STR_GT, C_STR_GE, C_PATTERN,
	C_NUM_EQ, C_NUM_LT, C_NUM_LE, C_NUM_GT, C_NUM_GE,
	C_MD5, C_SHA1, C_SHA256, C_SHA512,
	C_BIN_EXISTS, C_FILE_EXISTS, C_FOLDER_EXISTS,
};

/* A conditional expression (if, Assert). */
struct cond {
	enum cond_op op;
	const char *opname;
	const struct ynode *node;   /* the operator's key, for messages */
	const char *arg;            /* the operator's value */
	const char *value;          /* `value:` (two-value operators) or `path:` (file hashes) */
	struct cond **kids;         /* and/or: n kids; not: 1 */
	size_t nkids;
};

struct step_if {
	struct cond *expr;
	enum branch then_, else_;
};

enum loop_kind { LOOP_FOR, LOOP_LIST, LOOP_DELIMITED };

struct step_loop {
	const char *name;           /* NULL when unnamed */
	enum loop_kind kind;
	int64_t start, end, update;             /* LOOP_FOR */
	const struct ynode *list;               /* LOOP_LIST: a sequence of scalars */
	const char *joined;                     /* LOOP_DELIMITED */
	char delim;
};

struct action_def;
struct comp_doc;

struct comp_step {
	const char *name;
	const struct ynode *node;   /* the step mapping */
	const struct action_def *action;
	const struct ynode *inputs; /* NULL when absent */
	int64_t timeout_s;          /* -1: none */
	enum onfailure onfail;
	int max_attempts;
	struct step_loop *loop;
	struct step_if *cond;
	struct cond *assert_expr;   /* Assert: its inputs */
	struct comp_doc *child;     /* ExecuteDocument with a literal path */
};

struct comp_phase {
	const char *name;
	const struct ynode *node;
	struct comp_step *steps;
	size_t nsteps;
};

struct comp_param {
	const char *name;
	const char *value;          /* default (parameters) or value (constants); may be NULL */
	const char *description;
	bool constant;
	const struct ynode *node;
};

struct comp_doc {
	struct ydoc y;
	char *dir;                  /* directory of the file (nested documents are relative to it) */
	char *realpath;             /* for cycle detection */
	const char *name;           /* `name:` or NULL */
	const char *description;
	struct comp_param *params;
	size_t nparams;
	struct comp_phase *phases;
	size_t nphases;
	int depth;                  /* 0 top-level; ExecuteDocument children 1.. */
};

/* The chain of documents including the one being loaded (cycle detection). */
struct doc_chain {
	const char *realpath;
	const struct doc_chain *up;
};

/* Load and validate a top-level document. Returns it, or NULL with the error
 * recorded. The caller frees it with doc_free(). */
struct comp_doc *doc_load(const char *path);

/* Load a document included by parent (ExecuteDocument): path is relative to
 * parent's directory; depth and cycles are checked against chain (the
 * documents above, parent included). NULL with the error recorded. */
struct comp_doc *doc_load_child(const char *path, const struct comp_doc *parent,
				const struct doc_chain *chain);

/* From a buffer (tests, fuzzing); nested documents resolve against ".". */
struct comp_doc *doc_load_string(const char *name, const char *data, size_t len);

void doc_free(struct comp_doc *doc);

const struct comp_param *doc_param(const struct comp_doc *doc, const char *name);
const struct comp_phase *doc_phase(const struct comp_doc *doc, const char *name);

/* A display name: `name:` or the file's base name. */
const char *doc_display_name(const struct comp_doc *doc);

void cond_free(struct cond *c);

/* Is s "true"/"false" (any case)? *v gets the value. */
bool doc_parse_bool(const char *s, bool *v);

#endif
