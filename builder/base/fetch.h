/* fetch.h: turn a recipe's parent into a verified local disk image with a
 * known format — download (resumed, retried, checksum-verified) into the
 * cache, unpack archives, or use a local file in place — first stage of a
 * build. See cache.h for the cache's layout. */
#ifndef AMIFORGE_FETCH_H
#define AMIFORGE_FETCH_H

#include "compat.h"
#include "buf.h"
#include "builder/recipe/recipe.h"

/* Download attempts before giving up (each resumes where the last stopped). */
#define FETCH_ATTEMPTS 5
/* Largest checksum file (SHA256SUMS) read: Debian's are ~2 KiB. */
#define FETCH_SUMS_MAX (1u << 20)

struct base_image {
	char *path;            /* the disk image to use, absolute; never write to it */
	char *format;          /* qcow2 | raw | vmdk: pass it explicitly everywhere */
	char *sha256;          /* hex digest of the disk image (checkpoint keys) */
	char *source;          /* URL or local path (for the manifest) */
	char *member;          /* archive member it came from, or NULL */
	uint64_t size;         /* bytes */
	uint64_t virtual_size; /* guest-visible bytes */
	char *arch;            /* from an AMI parent: x86_64 | arm64 | i386; else NULL */
	char *boot_mode;       /* from an AMI parent, when it says; else NULL */
	bool downloaded;       /* fetched over the network by this call */
	bool in_place;         /* a local file used where it is */
};

/* Resolve parent into *out (zeroed first). The digest is verified before
 * anything is returned: a download that does not match is deleted and never
 * used. 0, or -1 with an error recorded. */
int base_image_get(const struct recipe_parent *parent, struct base_image *out);
void base_image_release(struct base_image *img);

/* The last path component of url's path, unescaped (the name a checksum
 * file lists it by). Caller frees; NULL when url does not parse. */
char *url_file_name(const char *url);

/* Look name up in a SHA256SUMS / SHA512SUMS style text (GNU "HEX  name",
 * "HEX *name", or BSD "SHA256 (name) = HEX"); the algorithm follows from the
 * digest's length. 0 with *algo and *hex (caller frees, lowercase), or -1. */
int checksum_file_lookup(const char *text, size_t len, const char *name,
			 enum checksum_algo *algo, char **hex);

/* GET url into b (bounded by b->max), with the retry policy. 0 or -1. */
int fetch_to_buf(const char *url, struct buf *b);

/* Download url to path (appending to what is there: resume), computing
 * sha256 and extra. Digests returned like hasher_final. 0 or -1 (path kept
 * for a later resume unless the server gave a permanent error). */
int fetch_to_file(const char *url, const char *path, enum checksum_algo extra,
		  char **sha256_hex, char **extra_hex);

#endif
