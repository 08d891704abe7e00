/* build.h: `amiforge build` — the whole chain for one recipe:
 *
 *	recipe → base image (cache) → boot overlay + agent → build and validate
 *	phases of every component → generalise → poweroff → flatten to the
 *	output disk → boot the output on a throw-away overlay → test phases →
 *	outputs → inspect (inspect-stage.h) → publish → manifest.json
 *
 * Every stage is a call into its own module (recipe.h, fetch.h, guest.h,
 * component/component.h, ...) with plain structs in between; this file only
 * orders them, journals what they create and reports progress. */
#ifndef AMIFORGE_BUILD_H
#define AMIFORGE_BUILD_H

#include "compat.h"
#include "onerror.h"

struct build_opts {
	const char *recipe;          /* path of the recipe */
	const char *const *vars;     /* "k=v", NULL-terminated, or NULL */
	const char *output_root;     /* where build directories go; NULL: ./builds */
	bool json;                   /* machine-readable events on stdout */
	enum build_on_error on_error;   /* --on-error (onerror.h): abort and ask
					 * keep a failed build's guest running */
	bool no_cache;               /* --no-cache: reuse no checkpoint (still record them) */
	bool checkpoint_every_step;  /* ckpt_opts.every_step */
	const char *resume_dir;      /* --resume: continue in this build directory */
	bool allow_local_sources;    /* component_run_opts.allow_local_sources */
	bool no_inspect;             /* --no-inspect: publish without inspecting the output */
};

struct build_result {
	char *build_dir;             /* the build directory (caller frees) */
	char *disk;                  /* the finished disk, or NULL */
	bool success;
	bool guest_kept;             /* failed, and its guest is left running for
				      * inspection (--on-error=abort|ask) */
};

/* Run a build. Returns 0 when the build ran to completion and succeeded,
 * -1 otherwise (error recorded; res->build_dir set once it existed). */
int build_run(const struct build_opts *o, struct build_result *res);

void build_result_release(struct build_result *res);

struct recipe;
struct recipe_doc;
/* The recipe_opts.check_doc hook: a component or test document must be a
 * valid AWSTOE document (file:line:col errors from the component engine). */
int build_check_doc(const struct recipe *r, const struct recipe_doc *d, bool is_test,
		    void *opaque);

/* The generalisation script run in the build guest (`/bin/sh -c SCRIPT
 * amiforge-generalise SECTION...`), for its test. */
const char *build_generalise_script(void);

#endif
