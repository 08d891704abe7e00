/* cache.h: the content-addressed base image cache.
 *
 *	$CACHE/objects/<sha256>        disk images, read-only, named by digest
 *	$CACHE/refs/<algo>-<hex>.json  "the file with this checksum (as a recipe
 *	                               names it) is object X, format F": a recipe
 *	                               hit needs no download at all
 *	$CACHE/local/<dev>-<ino>-<size>-<mtime>.json
 *	                               digests of local files, so a local parent is
 *	                               hashed once, not on every build
 *	$CACHE/tmp/                    downloads in progress (*.partial, *.lock)
 *	$CACHE/checkpoints/            (build checkpoints; not managed here)
 *
 * $CACHE is $AMIFORGE_CACHE_DIR, else /var/cache/amiforge as root, else
 * $XDG_CACHE_HOME/amiforge, else ~/.cache/amiforge. A ref's mtime is its last
 * use: `cache prune --older-than` goes by it. */
#ifndef AMIFORGE_CACHE_H
#define AMIFORGE_CACHE_H

#include "compat.h"
#include "builder/recipe/recipe.h"

/* Largest ref/record file read back (they are a few hundred bytes). */
#define CACHE_RECORD_MAX (64u * 1024)

/* The cache directory (created with its subdirectories). Caller frees.
 * NULL with an error recorded. */
char *cache_dir(void);

/* A digest being computed over a stream, with one or two algorithms. */
struct hasher;
struct hasher *hasher_new(enum checksum_algo extra);   /* sha256 + extra (or NONE) */
void hasher_update(struct hasher *h, const void *p, size_t n);
/* Hex digests (caller frees; *extra_hex NULL when no extra algorithm). Resets h. */
void hasher_final(struct hasher *h, char **sha256_hex, char **extra_hex);
void hasher_reset(struct hasher *h);
void hasher_free(struct hasher *h);

/* Hash a whole file: sha256 always, extra too when not NONE. 0 or -1. */
int hash_file(const char *path, enum checksum_algo extra, char **sha256_hex,
	      char **extra_hex);
/* The same over an open file, all of it whatever its offset (pread; the
 * offset is left alone); what names it in errors. */
int hash_fd(int fd, const char *what, enum checksum_algo extra, char **sha256_hex,
	    char **extra_hex);

/* What the cache knows about one disk image (a ref or a local record). */
struct cache_record {
	char *object;          /* sha256 hex of the disk image */
	char *format;          /* qcow2 | raw | vmdk */
	uint64_t size;         /* bytes on disk (apparent size) */
	uint64_t virtual_size; /* guest-visible size (qemu-img) */
	char *source;          /* URL or local path it came from */
	char *member;          /* the archive member, or NULL */
	char *sha512;          /* local records: sha512 of the file when known */
	char *file_sha256;     /* local records: sha256 of the file itself */
	char *arch;            /* AMI refs: the AMI's architecture */
	char *boot_mode;       /* AMI refs: its boot mode, when it has one */
};
void cache_record_release(struct cache_record *rec);

/* Read / write a record as JSON at path. Reading: 1 found, 0 absent, -1 error. */
int cache_record_load(const char *path, struct cache_record *rec);
int cache_record_save(const char *path, const struct cache_record *rec);

/* Path of objects/<sha256> (caller frees). */
char *cache_object_path(const char *cache, const char *sha256_hex);

/* Mark path as used now (mtime). Errors are ignored: it is a hint. */
void cache_touch(const char *path);

/* Remove path (not following links) and count it into *files / *bytes
 * (blocks freed); dry_run only counts. A line per file on f (may be NULL).
 * A missing file is not an error. 0 or -1. */
int cache_remove_file(const char *path, bool dry_run, FILE *f, size_t *files, uint64_t *bytes);

/* Every file some process has open now (/proc/PID/fd), resolved, sorted:
 * a running guest's disk chain — QEMU opens each backing file — so that
 * prune never pulls a layer or base from under a guest kept running
 * (--on-error=abort, ask). Free with strv_free(). */
char **cache_files_in_use(void);
/* Whether path (resolved) is in that list. */
bool cache_in_use(char *const *in_use, const char *path);

/* `amiforge cache list`: one line per ref and local record on f, or (json)
 * one JSON array of them. 0 or -1. */
int cache_list(FILE *f, bool json);
/* `amiforge cache prune`: drop refs and records unused for older_than_days
 * (0: all), then unreferenced objects and stale partial downloads. Counts
 * what was removed into *files / *bytes. dry_run only reports. 0 or -1. */
int cache_prune(unsigned older_than_days, bool dry_run, FILE *f);

#endif
