/* cond.c: evaluating conditional expressions (if, Assert) against the
 * target. String comparisons ignore case and do not trim; numbers that do not
 * parse make a comparison false, as the guide says. */
#include <ctype.h>
#include <regex.h>

#include "engine.h"
#include "error.h"
#include "util.h"

/* Directories binaryExists searches on the target (a guest's PATH is not
 * ours; these are what a root login shell has on the distributions we run). */
static const char *const bin_dirs[] = {
	"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
};

/* The guide: a number is ^[-+]?([0-9]+[.])?[0-9]+$ (YAML ints and floats
 * arrive as such strings too). */
static bool to_number(const char *s, double *v)
{
	const char *p = s;
	size_t digits = 0, dots = 0;

	if (*p == '-' || *p == '+')
		p++;
	for (; *p; p++) {
		if (isdigit((unsigned char)*p))
			digits++;
		else if (*p == '.' && digits && !dots && isdigit((unsigned char)p[1]))
			dots++;
		else
			return false;
	}
	if (!digits)
		return false;
	*v = strtod(s, NULL);
	return true;
}

static int file_kind(struct executor *ex, const char *path, bool dir, bool *result)
{
	struct file_stat st;

	if (executor_stat(ex, path, &st) < 0)
		return -1;
	/* follow one level of symlink, as a test -f/-d would */
	if (st.exists && S_ISLNK(st.mode) && st.link_target) {
		char *t = st.link_target[0] == '/' ? xstrdup(st.link_target) : NULL;
		if (!t) {
			const char *sl = strrchr(path, '/');
			t = xasprintf("%.*s/%s", sl ? (int)(sl - path) : 0, path, st.link_target);
		}
		file_stat_release(&st);
		if (executor_stat(ex, t, &st) < 0) {
			free(t);
			return -1;
		}
		free(t);
	}
	*result = st.exists && (dir ? S_ISDIR(st.mode) : S_ISREG(st.mode));
	file_stat_release(&st);
	return 0;
}

static int binary_exists(struct executor *ex, const char *name, bool *result)
{
	size_t i;

	*result = false;
	if (strchr(name, '/')) {
		struct file_stat st;
		if (executor_stat(ex, name, &st) < 0)
			return -1;
		*result = st.exists && !S_ISDIR(st.mode) && (st.mode & 0111);
		file_stat_release(&st);
		return 0;
	}
	for (i = 0; i < ARRAY_SIZE(bin_dirs) && !*result; i++) {
		char *p = xasprintf("%s/%s", bin_dirs[i], name);
		bool f = false;
		int r = file_kind(ex, p, false, &f);
		free(p);
		if (r < 0)
			return -1;
		*result = f;
	}
	return 0;
}

static int compare(const struct cond *c, const char *a, const char *b, struct executor *ex,
		   bool *res)
{
	static const char *const algos[] = { "md5", "sha1", "sha256", "sha512" };
	double x, y;
	int cmp;

	switch (c->op) {
	case C_STR_EMPTY:
		*res = a[0] == '\0';
		return 0;
	case C_STR_WS: {
		const char *p = a;
		while (*p && isspace((unsigned char)*p))
			p++;
		*res = a[0] != '\0' && *p == '\0';
		return 0;
	}
	case C_STR_EQ:
	case C_STR_LT:
	case C_STR_LE:
	case C_STR_GT:
	case C_STR_GE:
		/* the guide: "stringLessThan: 'b', value: 'a'" is true: the
		 * variable value is compared against the operator's string */
		cmp = strcasecmp(b, a);
		*res = c->op == C_STR_EQ ? cmp == 0 : c->op == C_STR_LT ? cmp < 0
		     : c->op == C_STR_LE ? cmp <= 0 : c->op == C_STR_GT ? cmp > 0 : cmp >= 0;
		return 0;
	case C_PATTERN: {
		regex_t re;
		/* the guide's example matches '^[a-z]+$' against 'ThisIsValue':
		 * string comparisons ignore case */
		if (regcomp(&re, a, REG_EXTENDED | REG_NOSUB | REG_ICASE) != 0)
			return err_set("patternMatches: invalid regular expression '%s'", a);
		*res = regexec(&re, b, 0, NULL, 0) == 0;
		regfree(&re);
		return 0;
	}
	case C_NUM_EQ:
	case C_NUM_LT:
	case C_NUM_LE:
	case C_NUM_GT:
	case C_NUM_GE:
		if (!to_number(a, &x) || !to_number(b, &y)) {
			*res = false;
			return 0;
		}
		*res = c->op == C_NUM_EQ ? y == x : c->op == C_NUM_LT ? y < x
		     : c->op == C_NUM_LE ? y <= x : c->op == C_NUM_GT ? y > x : y >= x;
		return 0;
	case C_MD5:
	case C_SHA1:
	case C_SHA256:
	case C_SHA512: {
		char *hex = NULL;
		bool f;
		if (file_kind(ex, b, false, &f) < 0)
			return -1;
		if (!f) {
			*res = false;
			return 0;
		}
		if (executor_hash_file(ex, b, algos[c->op - C_MD5], &hex) < 0)
			return -1;
		*res = strcasecmp(hex, a) == 0;
		free(hex);
		return 0;
	}
	case C_BIN_EXISTS:
		return binary_exists(ex, a, res);
	case C_FILE_EXISTS:
		return file_kind(ex, a, false, res);
	case C_FOLDER_EXISTS:
		return file_kind(ex, a, true, res);
	default:
		break;
	}
	return err_set("internal: operator %d", (int)c->op);
}

int cond_eval(const struct cond *c, struct doc_run *dr, struct executor *ex, bool *result)
{
	char *a = NULL, *b = NULL;
	size_t i;
	int r = -1;

	switch (c->op) {
	case C_AND:
	case C_OR:
		for (i = 0; i < c->nkids; i++) {
			if (cond_eval(c->kids[i], dr, ex, result) < 0)
				return -1;
			if (c->op == C_AND ? !*result : *result)
				return 0;
		}
		return 0;
	case C_NOT:
		if (cond_eval(c->kids[0], dr, ex, result) < 0)
			return -1;
		*result = !*result;
		return 0;
	default:
		break;
	}
	if (runner_expand(dr, c->arg, &a) < 0)
		goto cleanup;
	if (c->value && runner_expand(dr, c->value, &b) < 0)
		goto cleanup;
	r = compare(c, a, b ? b : "", ex, result);
	if (r < 0)
		err_prefix("%s", c->opname);
cleanup:
	free(a);
	free(b);
	return r;
}
