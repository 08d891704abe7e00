/* expr.h: AWSTOE reference expressions, "{{ Name }}", "{{ loop.index }}",
 * "{{ phase.step.outputs.key }}", "{{ phase.step.inputs[0].key }}".
 * Spaces inside the braces are trimmed; names are case-sensitive. */
#ifndef AMIFORGE_COMPONENT_EXPR_H
#define AMIFORGE_COMPONENT_EXPR_H

#include "compat.h"

/* Most segments in a reference (phase.step.inputs[i].key is 4). */
#define EXPR_SEGS_MAX 8
/* Longest expanded string (AWSTOE caps documents at 64 KiB; step outputs
 * can be larger, 16 MiB bounds a chained stdout). */
#define EXPR_OUT_MAX (16u * 1024 * 1024)

/* Called for each reference with its trimmed name. Return 0 to go on, -1 to
 * stop (error recorded). */
typedef int (*expr_visit_fn)(const char *name, void *opaque);

/* Visit every reference in s. -1 on a malformed reference ("unterminated
 * '{{'", "empty '{{ }}'") with the message recorded (no position: the caller
 * prefixes it), or when fn fails. */
int expr_scan(const char *s, expr_visit_fn fn, void *opaque);

/* True when s contains "{{". */
bool expr_has(const char *s);

/* Resolve a name: 1 with *val (malloc'ed, caller of expr_expand frees) when
 * known, 0 to leave the reference unreplaced, -1 on error (recorded). */
typedef int (*expr_resolve_fn)(const char *name, char **val, void *opaque);

/* Expand every reference in s into *out (malloc'ed). 0 or -1. */
int expr_expand(const char *s, expr_resolve_fn fn, void *opaque, char **out);

/* A reference split on '.', each segment with an optional "[N]" index. */
struct expr_path {
	char *seg[EXPR_SEGS_MAX];
	long idx[EXPR_SEGS_MAX];   /* -1: no index */
	size_t n;
};

/* Split name. 0 or -1 ("invalid reference 'x'"). Release with expr_path_release. */
int expr_path_parse(const char *name, struct expr_path *p);
void expr_path_release(struct expr_path *p);

#endif
