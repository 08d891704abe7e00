/* template.h: "{{ name }}" substitution in recipe strings (after Image
 * Builder's {{imagebuilder:buildDate}}). Only names defined in the variable
 * table expand; anything else between braces is an error, so a typo never
 * ends up in an AMI name. "{{" can be written literally as "{{ '{{' }}" is
 * NOT supported: recipes have no need for literal double braces. */
#ifndef AMIFORGE_TEMPLATE_H
#define AMIFORGE_TEMPLATE_H

#include "compat.h"

/* Longest expanded string (AMI names are 128 bytes, descriptions 255; tags
 * 256; parameters are bounded by the document size anyway). */
#define TEMPLATE_OUT_MAX (64u * 1024)

struct tvar {
	const char *name;
	const char *value;
};

/* Expand in using vars[0..nvars). On success *out is a new string the caller
 * frees and 0 is returned. On error -1 is returned with a message recorded
 * (without position) and *offset set to the byte offset in `in` where the
 * offending "{{" starts, so the caller can report file:line:col. */
int template_expand(const char *in, const struct tvar *vars, size_t nvars,
		    char **out, size_t *offset);

/* True when s contains "{{". */
bool template_has(const char *s);

#endif
