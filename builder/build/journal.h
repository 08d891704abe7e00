/* journal.h: the record of every resource a build creates, so that a build
 * killed at any point can be cleaned up afterwards (`amiforge clean`).
 *
 * An append-only text file in the build directory, one line per event,
 * each written with one write(2) and fsynced before the caller goes on:
 *
 *	# amiforge journal v1
 *	+ 1 file /abs/path/overlay.qcow2          resource 1 created
 *	+ 2 domain amiforge-web-1a2b qemu:///system 0f3e...-uuid
 *	+ 3 qemu-pid 4242 123456789               pid and its start time
 *	- 2                                       resource 2 released
 *	= 1                                       resource 1 kept (a product)
 *	~ 3                                       resource 3 held for inspection
 *	                                          (--on-error=abort): still to
 *	                                          release, by `amiforge clean`
 *
 * Fields are percent-encoded (space, control bytes, '%', non-ASCII), so any
 * path fits; lines go through log_redact() — never journal a secret, the
 * redactor is only a safety net. Write the line BEFORE creating the
 * resource when its name is known in advance, and always before waiting on
 * it: a handler must treat "already gone" as success.
 *
 * Cleanup walks the file backwards and calls, for every live resource, the
 * handler registered for its kind (a table kind → function, as libvirt's
 * driver tables: AWS and hypervisor code register theirs). Built in:
 *	file PATH            unlink
 *	dir PATH             remove the tree
 *	pid PID START EXE    SIGTERM, then SIGKILL; only if /proc/PID still has
 *	qemu-pid PID START EXE  that start time and executable (no killing a
 *	                     recycled pid)
 *	domain NAME URI [UUID]  libvirt: destroy and undefine
 *
 * The journal is not a script: a build directory may come from someone
 * else. journal_open refuses a journal (and its directory) that is a
 * symlink, not owned by this user or writable by group or others. file and
 * dir paths must lie, without a symlink on the way, inside the journal's
 * directory, the cache, a staging directory of this user
 * (<$TMPDIR|/var/tmp|/tmp>/amiforge-build-*) or a directory the running build
 * allowed (journal_allow_root); domains must be amiforge's (HV_DOMAIN_PREFIX)
 * behind an allowed URI (hv_uri_check). Anything else fails to release.
 *
 * The process owning a journal holds an exclusive flock on it: `clean`
 * refuses a journal whose build is still running. */
#ifndef AMIFORGE_JOURNAL_H
#define AMIFORGE_JOURNAL_H

#include "compat.h"

#define JOURNAL_LINE_MAX 4096     /* longest line (a few paths) */
#define JOURNAL_FIELDS_MAX 16     /* fields per resource, kind excluded */
#define JOURNAL_SIZE_MAX (16u * 1024 * 1024)   /* largest journal read back */
#define JOURNAL_KINDS_MAX 64      /* registered handler kinds */

enum journal_state { JOURNAL_LIVE, JOURNAL_RELEASED, JOURNAL_KEPT, JOURNAL_HELD };

struct journal_entry {
	unsigned id;
	char *kind;
	char **fields;            /* decoded, NULL-terminated */
	size_t nfields;
	enum journal_state state;
};

struct journal;

/* Open (creating) the journal at path for appending, and lock it.
 * NULL with an error recorded ("... in use by a running build" when locked). */
struct journal *journal_open(const char *path);
/* Let file and dir entries under dir (an output directory the recipe
 * names) be released by this process's cleanup. 0 or -1. */
int journal_allow_root(struct journal *j, const char *dir);
/* Unlock and close; accepts NULL. Does not clean anything up. */
void journal_close(struct journal *j);

/* Record a new resource: kind then fields (NULL-terminated list), fsynced.
 * *id (may be NULL) gets the resource's id. 0 or -1. */
int journal_add(struct journal *j, unsigned *id, const char *kind, ...);
int journal_addv(struct journal *j, unsigned *id, const char *kind,
		 const char *const *fields);
/* Record a process: "<kind> PID STARTTIME". 0 or -1. */
int journal_add_pid(struct journal *j, unsigned *id, const char *kind, pid_t pid);
/* The resource was destroyed (released) / is a product to keep. 0 or -1. */
int journal_release(struct journal *j, unsigned id);
int journal_keep(struct journal *j, unsigned id);
/* Mark every live resource held for inspection: a failed build leaves them
 * (a running guest and its files) on purpose. They stay to release: cleanup
 * and clean treat them as live and say "(kept for inspection)". 0 or -1. */
int journal_hold_live(struct journal *j);

/* A resource someone else created and reports (a target driver's
 * on_resource): CREATED journals "KIND ID REGION"; RELEASED marks the
 * newest live one with that kind and id released (none: nothing to do);
 * KEPT marks it kept, journaling it first when it was not (then 1). 0, 1
 * or -1. */
enum journal_event { JOURNAL_EV_CREATED, JOURNAL_EV_RELEASED, JOURNAL_EV_KEPT };
int journal_resource(struct journal *j, enum journal_event ev, const char *kind,
		     const char *id, const char *region);

/* From now on only the calling thread writes to j: any other thread that
 * writes to it waits for ever. For a signal's cleanup (journal_cleanup from
 * the signal watcher, then _exit) while the build's thread runs on: a
 * resource journaled before it is made (a file, a directory) is then never
 * made after the walk, where nothing would release it. */
void journal_seal(struct journal *j);

/* Release, newest first, every live resource through its handler; each
 * success is journaled. Failures do not stop the walk. *released and
 * *failed (may be NULL) count them. dry_run only prints what would be done.
 * Each action is reported on report (may be NULL). 0, or -1 with the first
 * failure recorded when anything failed. */
int journal_cleanup(struct journal *j, bool dry_run, FILE *report, unsigned *released,
		    unsigned *failed);

/* Read a journal without locking it. *entries (caller frees with
 * journal_entries_free) in file order. 0 or -1. */
int journal_load(const char *path, struct journal_entry **entries, size_t *n);
void journal_entries_free(struct journal_entry *e, size_t n);
/* Number of live (or held) resources in the journal at path, or -1 on error. */
int journal_live_count(const char *path);

/* A release handler: 0 when the resource is gone (including "was already
 * gone"), -1 with an error recorded. */
typedef int (*journal_release_fn)(const struct journal_entry *e, void *opaque);
/* Register (or replace) the handler for kind. 0, or -1 when the table is full. */
int journal_register(const char *kind, journal_release_fn fn, void *opaque);


#endif
