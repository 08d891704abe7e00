#include <ctype.h>

#include "expr.h"
#include "buf.h"
#include "error.h"
#include "util.h"

bool expr_has(const char *s)
{
	return s && strstr(s, "{{") != NULL;
}

/* Find the next reference from s: *start at "{{", *end after "}}", the
 * trimmed name in *name (malloc'ed). 1 found, 0 none, -1 malformed. */
static int next_ref(const char *s, const char **start, const char **end, char **name)
{
	const char *open = strstr(s, "{{"), *close, *a, *b;

	if (!open)
		return 0;
	close = strstr(open + 2, "}}");
	if (!close)
		return err_set("unterminated '{{' in '%.60s'", open);
	a = open + 2;
	b = close;
	while (a < b && isspace((unsigned char)*a))
		a++;
	while (b > a && isspace((unsigned char)b[-1]))
		b--;
	if (a == b)
		return err_set("empty reference '{{ }}'");
	if (memchr(a, '{', (size_t)(b - a)) || memchr(a, '}', (size_t)(b - a)))
		return err_set("invalid reference '%.*s'", (int)(close + 2 - open), open);
	*start = open;
	*end = close + 2;
	*name = xstrndup(a, (size_t)(b - a));
	return 1;
}

int expr_scan(const char *s, expr_visit_fn fn, void *opaque)
{
	const char *start, *end;
	char *name;
	int r;

	while (s && (r = next_ref(s, &start, &end, &name)) != 0) {
		if (r < 0)
			return -1;
		r = fn(name, opaque);
		free(name);
		if (r < 0)
			return -1;
		s = end;
	}
	return 0;
}

int expr_expand(const char *s, expr_resolve_fn fn, void *opaque, char **out)
{
	struct buf b = BUF_INIT(EXPR_OUT_MAX);
	const char *start, *end;
	char *name, *val;
	int r;

	*out = NULL;
	if (buf_adds(&b, "") < 0)
		return -1;
	while ((r = next_ref(s, &start, &end, &name)) != 0) {
		if (r < 0)
			goto fail;
		if (buf_add(&b, s, (size_t)(start - s)) < 0) {
			free(name);
			goto fail;
		}
		val = NULL;
		r = fn(name, &val, opaque);
		free(name);
		if (r < 0)
			goto fail;
		r = r > 0 ? buf_adds(&b, val) : buf_add(&b, start, (size_t)(end - start));
		free(val);
		if (r < 0)
			goto fail;
		s = end;
	}
	if (buf_adds(&b, s) < 0)
		goto fail;
	*out = buf_detach(&b, NULL);
	return 0;
fail:
	buf_release(&b);
	return -1;
}

void expr_path_release(struct expr_path *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->seg[i]);
	p->n = 0;
}

int expr_path_parse(const char *name, struct expr_path *p)
{
	const char *s = name;

	memset(p, 0, sizeof(*p));
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t len = dot ? (size_t)(dot - s) : strlen(s);
		const char *br = memchr(s, '[', len);
		size_t seglen = br ? (size_t)(br - s) : len;
		long idx = -1;

		if (p->n == EXPR_SEGS_MAX)
			goto bad;
		if (br) {
			int64_t v;
			char *num;
			/* exactly "[digits]" at the end of the segment */
			if (s[len - 1] != ']' || len - seglen < 3)
				goto bad;
			num = xstrndup(br + 1, len - seglen - 2);
			if (parse_i64(num, 0, INT32_MAX, &v) < 0) {
				free(num);
				goto bad;
			}
			free(num);
			idx = (long)v;
		}
		if (seglen == 0 || memchr(s, ']', seglen))
			goto bad;
		p->seg[p->n] = xstrndup(s, seglen);
		p->idx[p->n] = idx;
		p->n++;
		if (!dot)
			break;
		s = dot + 1;
	}
	return 0;
bad:
	expr_path_release(p);
	return err_set("invalid reference '{{ %s }}'", name);
}
