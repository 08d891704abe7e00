/* names.c: AWS's naming rules (names.h). */
#include "names.h"
#include "util.h"

bool aws_region_ok(const char *r)
{
	size_t i = 0, dashes = 0, digits;

	while (r[i] >= 'a' && r[i] <= 'z')
		i++;
	if (i < 2)
		return false;
	for (; r[i] && !(r[i] >= '0' && r[i] <= '9'); i++) {
		if (r[i] == '-')
			dashes++;
		else if (!(r[i] >= 'a' && r[i] <= 'z'))
			return false;
	}
	if (dashes < 2 || r[i - 1] != '-')
		return false;
	for (digits = 0; r[i + digits]; digits++)
		if (r[i + digits] < '0' || r[i + digits] > '9')
			return false;
	return digits >= 1 && digits <= 2;
}

bool aws_ami_name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("()[] ./-'@_", c) != NULL);
}

bool aws_ami_name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n < AWS_AMI_NAME_MIN || n > AWS_AMI_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!aws_ami_name_char_ok(s[i]))
			return false;
	return true;
}

bool aws_tag_key_ok(const char *k)
{
	size_t n = strlen(k);

	return n >= 1 && n <= AWS_TAG_KEY_MAX && !str_startswith(k, "aws:");
}
