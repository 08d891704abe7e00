/* yaml.h: a YAML document as a tree of nodes that remember where they came
 * from, so every error can say file:line:col. Parsed with libyaml; anchors
 * and aliases are refused (neither recipes nor AWSTOE documents need them,
 * and they are the classic way to blow up a parser's memory). */
#ifndef AMIFORGE_YAML_H
#define AMIFORGE_YAML_H

#include "compat.h"

/* Largest YAML file read (recipes and component documents are small; AWSTOE
 * caps documents at 64 KiB inline, 1 MiB from S3 — 16 MiB is generous). */
#define YAML_FILE_MAX (16u * 1024 * 1024)
/* Deepest nesting of collections accepted. */
#define YAML_DEPTH_MAX 64

enum ynode_type { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };

struct ynode;

struct ypair {
	struct ynode *key;    /* always a scalar */
	struct ynode *value;
};

struct ynode {
	enum ynode_type type;
	int line, col;        /* 1-based position of the node's start */
	/* YNODE_SCALAR */
	char *str;            /* NUL-terminated value (may contain NULs: see len) */
	size_t len;
	bool plain;           /* unquoted (so "null", "~", "" mean null) */
	/* YNODE_SEQ */
	struct ynode **items;
	size_t nitems;
	/* YNODE_MAP, in document order; keys are unique */
	struct ypair *pairs;
	size_t npairs;
};

struct ydoc {
	char *path;           /* as given; used in messages */
	struct ynode *root;   /* NULL for an empty document */
	char *text;           /* the raw file contents (NUL-terminated) */
	size_t text_len;
};

/* Parse path. 0, or -1 with "path:line:col: message" recorded. */
int ydoc_load_file(struct ydoc *doc, const char *path);
/* Parse a buffer; name is used in messages. */
int ydoc_load_string(struct ydoc *doc, const char *name, const char *data, size_t len);
void ydoc_release(struct ydoc *doc);

/* Record "doc:line:col: message" for node n (n may be NULL: line 1 col 1).
 * Returns -1. */
int yerr(const struct ydoc *doc, const struct ynode *n, const char *fmt, ...)
	PRINTF_LIKE(3, 4);

/* Key comparisons made while checking mappings for duplicate keys, since
 * the program started (tests use it to see that the check is not quadratic). */
extern unsigned long ymap_key_compares;

/* Value for key in a mapping, or NULL (also when map is not a mapping). */
struct ynode *ymap_get(const struct ynode *map, const char *key);

/* The one key checker for recipes, distribution and documents: the first
 * key of map not among keys[0..n), or NULL when all are known. With it,
 * *msg is the one message for it, "unknown key 'K' in WHERE" and, when a
 * known key is close, "; did you mean 'H'?" (the caller frees it). */
const struct ynode *ymap_unknown_key(const struct ynode *map, const char *where,
				     const char *const *keys, size_t n, char **msg);
/* The same as an error at the key: 0, or -1 with "file:line:col: ...". */
int ymap_check_keys(const struct ydoc *doc, const struct ynode *map, const char *where,
		    const char *const *keys, size_t n);
/* The pair for key (to report the key's own position), or NULL. */
const struct ypair *ymap_pair(const struct ynode *map, const char *key);

/* True for a plain null scalar: "", "~", "null", "Null", "NULL". */
bool ynode_is_null(const struct ynode *n);

/* Type name for messages: "a string", "a list", "a mapping". */
const char *ynode_kind(const struct ynode *n);

/* The scalar's string, or NULL when n is not a scalar. */
const char *yscalar(const struct ynode *n);

#endif
