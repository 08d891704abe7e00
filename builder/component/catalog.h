/* catalog.h: components by name and semantic version, as EC2 Image Builder
 * names them (`update-linux` 1.0.x, or an Image Builder ARN), found in a
 * search path of catalog directories. A catalog directory holds
 *
 *	NAME/VERSION/document.yaml      the AWSTOE document
 *	NAME/VERSION/test.yaml          its test document (optional)
 *
 * The search path, first to last (a version found in several is taken
 * from the first):
 *	$AMIFORGE_COMPONENT_PATH        colon-separated, when set
 *	RECIPE_DIR/components           the recipe's own (when there is one)
 *	$XDG_DATA_HOME/amiforge/components (~/.local/share/...)   the user's
 *	catalog/ beside the amiforge binary                       a source tree
 *	DATADIR/amiforge/components     what `make install` puts there
 *
 * Version patterns follow Image Builder: "1.2.3" exactly, "1.2.x", "1.x.x"
 * or "x.x.x" (a wildcard may only follow wildcards), resolving to the
 * highest version that matches. Versions are MAJOR.MINOR.PATCH numbers. */
#ifndef AMIFORGE_CATALOG_H
#define AMIFORGE_CATALOG_H

#include "compat.h"

#define CATALOG_NAME_MAX 128
/* Most entries read from one catalog directory. */
#define CATALOG_ENTRIES_MAX 4096

struct catalog_entry {
	char *name;
	char *version;
	char *path;        /* the document */
	char *test_path;   /* its test document, or NULL */
	char *dir;         /* the catalog directory it is in */
};

/* 0 when pattern is a valid version pattern; -1 (error recorded) if not. */
int catalog_pattern_check(const char *pattern);
/* True when version (MAJOR.MINOR.PATCH) matches pattern. */
bool catalog_version_match(const char *pattern, const char *version);
/* <0, 0, >0 as a is lower, equal, higher than b (numerically). */
int catalog_version_cmp(const char *a, const char *b);

/* Image Builder component ARN →  name and version pattern:
 * arn:aws:imagebuilder:REGION:(aws|ACCOUNT):component/NAME/VERSION[/BUILD].
 * 0 or -1 (not such an ARN; error recorded). */
int catalog_parse_arn(const char *arn, char **name, char **version);
/* "NAME/VERSION" (a catalog reference, not a file path)? Then split. */
bool catalog_parse_ref(const char *s, char **name, char **version);

/* The search path for a recipe in recipe_dir (NULL: none). NULL-terminated. */
char **catalog_dirs(const char *recipe_dir);

/* The highest version of name matching pattern. 0 with *out filled (release
 * it with catalog_entry_release), or -1 with an error naming what was
 * looked for and where. */
int catalog_resolve(const char *recipe_dir, const char *name, const char *pattern,
		    struct catalog_entry *out);

/* Every component of the search path (name, then version, ascending; a
 * name/version found twice is listed once, from the first directory). */
int catalog_list(const char *recipe_dir, struct catalog_entry **out, size_t *n);

void catalog_entry_release(struct catalog_entry *e);
void catalog_entries_free(struct catalog_entry *v, size_t n);

#endif
