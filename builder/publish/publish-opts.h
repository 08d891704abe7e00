/* publish-opts.h: every option of a publish, in one table read by both the
 * `publish` command (its --flags, its help) and a recipe's publish: section
 * (its keys, with file:line:col errors). A new option is one row here: it
 * appears in both, in `amiforge help publish`, in the man page and in shell
 * completion (which read the help).
 *
 * A row the recipe does not take (recipe_key NULL) says in recipe_note where a
 * recipe says the same thing (the distribution: section, output.formats...);
 * a recipe using the flag's name gets that note as its error. */
#ifndef AMIFORGE_PUBLISH_OPTS_H
#define AMIFORGE_PUBLISH_OPTS_H

#include <getopt.h>
#include <stdio.h>

#include "compat.h"
#include "util.h"
#include "drivers/target/target.h"

enum popt_kind {
	POPT_STR,     /* a string; check() may refuse it */
	POPT_WORD,    /* one of words[] */
	POPT_BOOL,    /* the flag sets flag_value; a recipe writes true/false */
	POPT_INT,     /* an integer in [min, max] */
	POPT_SIZE,    /* a size (5M, 1G) in [min, max] */
	POPT_TAG,     /* --tag KEY=VALUE, repeated; a recipe's tags: mapping */
	POPT_LIST,    /* repeated flag, into a struct strv */
};

struct publish_opts;

struct publish_opt {
	const char *flag;          /* the command's --flag */
	const char *recipe_key;    /* the key under a recipe's publish:, NULL: none */
	const char *recipe_note;   /* recipe_key NULL: where a recipe says it */
	const char *arg;           /* the value's name in the help; NULL for POPT_BOOL */
	enum popt_kind kind;
	size_t off;                /* offsetof(struct publish_opts, the field) */
	const char *const *words;  /* POPT_WORD, POPT_LIST: NULL-terminated, or NULL */
	bool flag_value;           /* POPT_BOOL */
	int64_t min, max;          /* POPT_INT, POPT_SIZE */
	int (*check)(const char *value);   /* POPT_STR, POPT_LIST items: 0, or -1 */
	const char *help;
};

#define PUBLISH_TAGS_MAX 50
#define PUBLISH_OPT_ROWS_MAX 64

/* Everything a publish is told: the driver's spec and what happens around
 * it (the bucket created first, the distribution after registration). */
struct publish_opts {
	struct publish_spec spec;  /* spec.name: a template for the command;
				      spec.tags points into tags */
	const char *format;        /* the disk's format (the command's DISK) */
	bool create_bucket;
	bool allow_public;
	struct strv copy_to, share, share_group, share_org, share_ou;
	struct target_tag tags[PUBLISH_TAGS_MAX];
	struct strv owned;         /* the strings the fields point to */
};

extern const struct publish_opt publish_opt_table[];
extern const size_t publish_opt_count;

/* Defaults: ENA, SR-IOV, IMDSv2 only, progress on a terminal. */
void publish_opts_init(struct publish_opts *po);
void publish_opts_release(struct publish_opts *po);

/* Set o from a value (NULL for a POPT_BOOL flag: flag_value; else the
 * recipe's true/false/yes/no). 0, or -1 with an error naming the value, not
 * the option ("'x' is not one of a, b; did you mean 'c'?"): the caller puts
 * "--flag " or "file:line:col: publish.key " before it. */
int publish_opt_set(struct publish_opts *po, const struct publish_opt *o, const char *value);
/* One tag (a recipe's tags: entry, or --tag's KEY=VALUE split). */
int publish_opt_add_tag(struct publish_opts *po, const char *key, const char *value);

/* The row whose flag is name, or whose flag with '-' as '_' is name. */
const struct publish_opt *publish_opt_find(const char *name);
/* The table's long options, val = base + row index, into out (room for
 * publish_opt_count entries). */
void publish_opt_getopt(struct option *out, int base);
/* Every row: "  --flag ARG   recipe_key" and its help on the next line. */
void publish_opt_help(FILE *f);

#endif
