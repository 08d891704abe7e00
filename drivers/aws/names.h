/* names.h: AWS's naming rules, in one place for every caller (the recipe's
 * publish: and distribution:, the publish command, the target drivers):
 * region names, AMI names and descriptions, tags. The predicates say only
 * whether a value passes; each caller words the error for its input
 * (file:line:col for a recipe, the flag for the command line). */
#ifndef AMIFORGE_AWS_NAMES_H
#define AMIFORGE_AWS_NAMES_H

#include "compat.h"

#define AWS_TAGS_MAX 50            /* tags per EC2 resource */
#define AWS_TAG_KEY_MAX 128
#define AWS_TAG_VALUE_MAX 256
#define AWS_AMI_NAME_MIN 3
#define AWS_AMI_NAME_MAX 128
#define AWS_DESCRIPTION_MAX 255    /* AMI description */
/* For messages: what an AMI name may hold, and a region for example. */
#define AWS_AMI_NAME_CHARS "letters, digits, ()[] ./-'@_"
#define AWS_REGION_EXAMPLE "eu-west-1"

/* A region name as AWS forms them: us-east-1, ap-southeast-2,
 * us-gov-west-1, cn-north-1 (letters, at least two dashes, then a number
 * of one or two digits). */
bool aws_region_ok(const char *r);

/* A character an AMI name may hold; a whole name (3 to 128 of them). */
bool aws_ami_name_char_ok(char c);
bool aws_ami_name_ok(const char *s);

/* A tag key: 1 to 128 characters, not in the reserved aws: prefix. */
bool aws_tag_key_ok(const char *k);

#endif
