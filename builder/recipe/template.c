#include "template.h"
#include "buf.h"
#include "error.h"
#include "util.h"

bool template_has(const char *s)
{
	return s && strstr(s, "{{") != NULL;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.' || c == ':';
}

int template_expand(const char *in, const struct tvar *vars, size_t nvars,
		    char **out, size_t *offset)
{
	struct buf b = BUF_INIT(TEMPLATE_OUT_MAX);
	const char *p = in;

	*out = NULL;
	*offset = 0;
	for (;;) {
		const char *open = strstr(p, "{{"), *s, *e, *close;
		size_t i, n;

		if (!open) {
			if (buf_adds(&b, p) < 0)
				goto fail;
			break;
		}
		if (buf_add(&b, p, (size_t)(open - p)) < 0)
			goto fail;
		*offset = (size_t)(open - in);
		close = strstr(open + 2, "}}");
		if (!close) {
			err_set("unterminated '{{' in template");
			goto fail_keep;
		}
		for (s = open + 2; *s == ' '; s++)
			;
		for (e = close; e > s && e[-1] == ' '; e--)
			;
		n = (size_t)(e - s);
		for (i = 0; i < n; i++)
			if (!is_name_char(s[i]))
				break;
		if (n == 0 || i < n) {
			err_set("invalid template '%.*s' (expected '{{ name }}')",
				(int)(close + 2 - open), open);
			goto fail_keep;
		}
		for (i = 0; i < nvars; i++)
			if (strlen(vars[i].name) == n && memcmp(vars[i].name, s, n) == 0)
				break;
		if (i == nvars) {
			struct buf names = BUF_INIT(4096);
			size_t k;

			for (k = 0; k < nvars; k++)
				buf_printf(&names, "%s%s", k ? ", " : "", vars[k].name);
			err_set("unknown template variable '%.*s' (known: %s)", (int)n, s,
				names.data ? names.data : "none");
			buf_release(&names);
			goto fail_keep;
		}
		if (buf_adds(&b, vars[i].value) < 0)
			goto fail;
		p = close + 2;
	}
	*out = buf_detach(&b, NULL);
	return 0;
fail:
	err_prefix("expanding template");
fail_keep:
	buf_release(&b);
	return -1;
}
