/* The recipe's inspect: section (recipe-inspect.h). */
#include "recipe-inspect.h"
#include "recipe.h"
#include "builder/inspect/inspect.h"
#include "util.h"

static const char *const inspect_keys[] = { "skip", "canaries" };

static int string_list(const struct ydoc *doc, const struct ynode *n, const char *what,
		       struct strv *out, struct strv *where, bool check_ids)
{
	const struct ynode *const *items;
	size_t nitems, i, known = 0;

	if (!n || ynode_is_null(n))
		return 0;
	if (n->type != YNODE_SEQ)
		return yerr(doc, n, "inspect.%s must be a list, not %s", what, ynode_kind(n));
	items = (const struct ynode *const *)n->items;
	nitems = n->nitems;
	if (nitems > RECIPE_INSPECT_ITEMS_MAX)
		return yerr(doc, n, "inspect.%s has more than %d items", what,
			    RECIPE_INSPECT_ITEMS_MAX);
	while (inspect_check_ids[known])
		known++;
	for (i = 0; i < nitems; i++) {
		const struct ynode *it = items[i];
		const char *s = yscalar(it);

		if (!s || ynode_is_null(it))
			return yerr(doc, it, "inspect.%s items must be strings, not %s", what,
				    ynode_kind(it));
		if (strlen(s) != it->len)
			return yerr(doc, it, "inspect.%s item holds a NUL byte", what);
		if (check_ids && !inspect_check_known(s)) {
			const char *hint = closest_word(s, inspect_check_ids, known);

			if (hint)
				return yerr(doc, it, "unknown inspect check '%s'; did you mean '%s'?",
					    s, hint);
			return yerr(doc, it, "unknown inspect check '%s' (amiforge inspect --json "
				    "lists the ids)", s);
		}
		if (!check_ids && (it->len == 0 || it->len > RECIPE_CANARY_MAX))
			return yerr(doc, it, "a canary must be 1 to %d bytes", RECIPE_CANARY_MAX);
		strv_push(out, s);
		if (where) {
			char *at = xasprintf("%s:%d:%d", doc->path, it->line, it->col);

			strv_push(where, at);
			free(at);
		}
	}
	return 0;
}

int recipe_inspect_parse(const struct ydoc *doc, const struct ynode *n, struct recipe_inspect *out)
{
	struct strv skip = STRV_INIT, at = STRV_INIT, can = STRV_INIT;

	memset(out, 0, sizeof(*out));
	if (!n || ynode_is_null(n))
		return 0;
	if (n->type != YNODE_MAP)
		return yerr(doc, n, "'inspect' must be a mapping, not %s", ynode_kind(n));
	if (ymap_check_keys(doc, n, "inspect", inspect_keys, ARRAY_SIZE(inspect_keys)) < 0)
		return -1;
	if (string_list(doc, ymap_get(n, "skip"), "skip", &skip, &at, true) < 0 ||
	    string_list(doc, ymap_get(n, "canaries"), "canaries", &can, NULL, false) < 0) {
		strv_release(&skip);
		strv_release(&at);
		strv_release(&can);
		return -1;
	}
	out->skip = skip.v;
	out->nskip = skip.n;
	out->skip_at = at.v;
	out->canaries = can.v;
	out->ncanaries = can.n;
	return 0;
}

void recipe_inspect_release(struct recipe_inspect *ri)
{
	strv_free(ri->skip);
	strv_free(ri->skip_at);
	if (ri->canaries)
		for (size_t i = 0; ri->canaries[i]; i++)	/* the recipe's own secrets */
			explicit_bzero(ri->canaries[i], strlen(ri->canaries[i]));
	strv_free(ri->canaries);
	memset(ri, 0, sizeof(*ri));
}
