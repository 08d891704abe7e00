/* inspect.h: offline checks of a finished disk before it goes to AWS
 * (`amiforge inspect`). Everything is read through libguestfs, read-only,
 * with the disk format always explicit; nothing is mounted on the host.
 *
 *	struct inspect_opts o = INSPECT_OPTS_INIT;
 *	struct inspect_report *rep;
 *	o.disk = "disk.qcow2";
 *	if (inspect_run(&o, &rep) < 0) ...         // error recorded
 *	inspect_report_print(rep, stdout);         // or inspect_report_json()
 *	exit(inspect_report_failed(rep) ? 1 : 0);
 *	inspect_report_free(rep);
 */
#ifndef AMIFORGE_INSPECT_H
#define AMIFORGE_INSPECT_H

#include <jansson.h>

#include "compat.h"

struct appliance_early;

/* Where the disk is going: the rules differ (ImportImage runs AWS's own OS
 * and bootloader checks, ImportSnapshot and EBS direct take blocks as-is). */
enum inspect_target {
	INSPECT_FOR_IMPORT_SNAPSHOT,
	INSPECT_FOR_IMPORT_IMAGE,
	INSPECT_FOR_EBS,
	INSPECT_FOR_GENERIC,        /* not published: the checks every target shares */
};

enum inspect_boot {
	INSPECT_BOOT_ANY,   /* report what the disk can do, require one */
	INSPECT_BOOT_BIOS,
	INSPECT_BOOT_UEFI,
};

/* CHECK_SKIP: the caller asked for the check to be skipped (a build's
 * inspect.skip); its reason says what it would have been. */
enum check_status { CHECK_PASS, CHECK_WARN, CHECK_FAIL, CHECK_SKIP };

struct inspect_opts {
	const char *disk;          /* path of the disk image */
	const char *format;        /* as stated, or NULL: detected once (admit.h) */
	enum inspect_target target;
	enum inspect_boot boot;
	const char *canary;        /* NULL: no canary search */
	/* More canaries (clean.canary), and secrets (clean.host-credentials:
	 * fragments of credentials, never printed, never written): one pass
	 * over every file finds them all. */
	const char *const *canaries;
	size_t ncanaries;
	const char *const *secrets;
	size_t nsecrets;
	/* Check ids reported as CHECK_SKIP, with why ("the recipe's inspect.skip"). */
	const char *const *skip;
	size_t nskip;
	const char *skip_why;
	/* Non-NULL: also read the image's installed packages (sbom.h), for an
	 * SBOM naming the image so; a failure to is a warning, not a check. */
	const char *sbom_name;
	/* Non-NULL: read this file instead of disk, which it holds the same
	 * content as and need not exist yet: amiforge's own qcow2 over a
	 * backing chain amiforge wrote (a build's guest disk, powered off,
	 * while it is flattened into disk). Not admitted (admit.h: amiforge's
	 * own files are never admitted again); disk names it everywhere. */
	const char *own_chain;
	/* Non-NULL: an appliance started before the disk was written
	 * (appliance_early_start), given the disk; when it cannot take it, one
	 * is started as usual. Still the caller's (appliance_early_free). */
	struct appliance_early *early;
};

#define INSPECT_OPTS_INIT { .target = INSPECT_FOR_IMPORT_SNAPSHOT, .boot = INSPECT_BOOT_ANY }

struct inspect_check {
	char *id;                  /* stable dotted name: "fstab.device-names" */
	enum check_status status;
	char *reason;              /* one line */
	char *evidence;            /* "file:line", "file", "/dev/sda" or "" */
};

struct inspect_report;

/* Open the disk read-only in a libguestfs appliance, run every check, fill
 * *out (caller frees with inspect_report_free()). Returns -1 (error recorded)
 * only when the disk cannot be examined at all; failed checks are results. */
int inspect_run(const struct inspect_opts *opts, struct inspect_report **out);

/* The checks in the order they ran; n receives the count. */
const struct inspect_check *inspect_report_checks(const struct inspect_report *rep, size_t *n);

/* Every check id inspect_run() may report, NULL-terminated (recipes name
 * them in inspect.skip). */
extern const char *const inspect_check_ids[];
bool inspect_check_known(const char *id);

/* Counts by status (pass, warn, fail, skip). */
void inspect_report_counts(const struct inspect_report *rep, size_t counts[4]);

/* The SBOM made when sbom_name was given (borrowed), or NULL. */
json_t *inspect_report_sbom(const struct inspect_report *rep);

/* True when any check failed. */
bool inspect_report_failed(const struct inspect_report *rep);

/* A table for the terminal (colour when use_colour). */
void inspect_report_print(const struct inspect_report *rep, FILE *f, bool use_colour);

/* The whole report as JSON text (caller frees). */
char *inspect_report_json(const struct inspect_report *rep);

void inspect_report_free(struct inspect_report *rep);

/* Names used on the command line and in JSON, one table each; the finds
 * take those names (and legacy-bios for bios): false when unknown (or
 * NULL), *out then unchanged. */
const char *inspect_target_name(enum inspect_target t);
bool inspect_target_find(const char *name, enum inspect_target *out);
const char *inspect_boot_name(enum inspect_boot b);
bool inspect_boot_find(const char *name, enum inspect_boot *out);
const char *check_status_name(enum check_status s);

#endif
