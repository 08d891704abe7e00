/* manifest.h: manifest.json, the record of what a build consumed and made:
 *
 *	{ "schema": 1, "amiforge": "0.1.0",
 *	  "build":   { name, version, description, build_date, started, finished,
 *	               status: "running"|"succeeded"|"failed", error },
 *	  "recipe":  { path, sha256 },
 *	  "inputs":  [ { kind: "base", source, path, sha256, format, size,
 *	                 virtual_size, member },
 *	               { kind: "component"|"test", path, sha256, parameters,
 *	                 name, version, requested (catalog components) } ],
 *	  "variables": { NAME: VALUE },
 *	  "stages":  [ { name, started, finished, seconds, status } ],
 *	  "outputs": [ { format, path, sha256, size } ],
 *	  "amis":    [ { region, image_id, snapshot_id } ],
 *	  "decisions": [ { step, decision: "retry"|"continue"|"abort", failure,
 *	                   time } ],     (--on-error=ask: only when there are some)
 *	  "inspect": { status: "passed"|"warnings"|"failed"|"disabled", for,
 *	               boot_mode, seconds, report, pass, warn, fail, skip,
 *	               failed: [ {id, reason, evidence} ], warnings: [...],
 *	               skipped: [ {id, reason, evidence, at} ], canaries,
 *	               credential_fragments } }   (builder/build/inspect-stage.h)
 *
 * Times are UTC ISO 8601; "seconds" comes from the monotonic clock. The file
 * is written atomically (temporary file, fsync, rename) and redacted with
 * log_redact() — write it as often as useful (after every stage). */
#ifndef AMIFORGE_MANIFEST_H
#define AMIFORGE_MANIFEST_H

#include "compat.h"
#include "builder/base/fetch.h"
#include "builder/recipe/recipe.h"

/* Largest manifest written (outputs and stages are few; parameters bounded
 * by the recipe). */
#define MANIFEST_MAX (16u * 1024 * 1024)

struct manifest;

/* A manifest to be written at path (copied). Never NULL. */
struct manifest *manifest_new(const char *path);
void manifest_free(struct manifest *m);

/* Record the recipe: its path and digest, every component and test document
 * with its digest and resolved parameters, the --var values. 0 or -1 (a
 * document could not be read). */
int manifest_set_recipe(struct manifest *m, const struct recipe *r);
/* Record the base image as the first input. */
void manifest_set_base(struct manifest *m, const struct base_image *img);

/* Record the guest's architecture under build: {"name": "aarch64", "ec2":
 * "arm64", "boot": "uefi"|"bios-or-uefi", "from": where it was decided}. */
void manifest_set_arch(struct manifest *m, const struct arch *a, const char *from);

/* Stage timing: begin starts a stage (status "running"), end closes the
 * most recent stage of that name with status ("ok", "failed", "skipped"). */
void manifest_stage_begin(struct manifest *m, const char *stage);
void manifest_stage_end(struct manifest *m, const char *stage, const char *status);

/* Record an output file; its size and sha256 are computed now. 0 or -1. */
int manifest_add_output(struct manifest *m, const char *format, const char *path);
/* The same with its sha256 taken earlier (hex), when st (from stat() at
 * that time) is still what path is: device, inode, size and mtime; else
 * computed now. */
int manifest_add_output_hashed(struct manifest *m, const char *format, const char *path,
			       const struct stat *st, const char *sha256);
/* Record an AMI (snapshot_id may be NULL). */
void manifest_add_ami(struct manifest *m, const char *region, const char *image_id,
		      const char *snapshot_id);

/* Record what the user answered about a failed step (--on-error=ask):
 * step is "document/phase/step", decision "retry", "continue" or "abort". */
void manifest_add_decision(struct manifest *m, const char *step, const char *decision,
			   const char *failure);

/* The build's inspect stage: its summary as JSON text (an object), kept
 * under "inspect". 0, or -1 (error recorded) when it is not a JSON object. */
int manifest_set_inspect(struct manifest *m, const char *json_text);

/* Overall status ("running", "succeeded", "failed") and error (or NULL);
 * a final status also stamps "finished". */
void manifest_set_status(struct manifest *m, const char *status, const char *error);

/* Write the file atomically. 0 or -1. */
int manifest_write(struct manifest *m);

#endif
