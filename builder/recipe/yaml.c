#include <yaml.h>

#include "yaml.h"
#include "buf.h"
#include "error.h"
#include "util.h"

struct yparser {
	yaml_parser_t p;
	struct ydoc *doc;
	int depth;
};

static void ynode_free(struct ynode *n)
{
	size_t i;

	if (!n)
		return;
	free(n->str);
	for (i = 0; i < n->nitems; i++)
		ynode_free(n->items[i]);
	free(n->items);
	for (i = 0; i < n->npairs; i++) {
		ynode_free(n->pairs[i].key);
		ynode_free(n->pairs[i].value);
	}
	free(n->pairs);
	free(n);
}

void ydoc_release(struct ydoc *doc)
{
	if (!doc)
		return;
	ynode_free(doc->root);
	free(doc->path);
	free(doc->text);
	memset(doc, 0, sizeof(*doc));
}

static int yerr_at(const struct ydoc *doc, int line, int col, const char *fmt, va_list ap)
{
	char msg[ERR_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return err_set("%s:%d:%d: %s", doc->path ? doc->path : "<input>", line, col, msg);
}

int yerr(const struct ydoc *doc, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = yerr_at(doc, n ? n->line : 1, n ? n->col : 1, fmt, ap);
	va_end(ap);
	return r;
}

static int perr(struct yparser *yp, int line, int col, const char *fmt, ...) PRINTF_LIKE(4, 5);
static int perr(struct yparser *yp, int line, int col, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = yerr_at(yp->doc, line, col, fmt, ap);
	va_end(ap);
	return r;
}

static int next_event(struct yparser *yp, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&yp->p, ev)) {
		const yaml_mark_t *m = yp->p.problem_mark.line || yp->p.problem_mark.column
			? &yp->p.problem_mark : &yp->p.context_mark;
		return perr(yp, (int)m->line + 1, (int)m->column + 1, "%s%s%s",
			    yp->p.problem ? yp->p.problem : "YAML syntax error",
			    yp->p.context ? " " : "", yp->p.context ? yp->p.context : "");
	}
	return 0;
}

static struct ynode *new_node(enum ynode_type t, const yaml_event_t *ev)
{
	struct ynode *n = xcalloc(1, sizeof(*n));

	n->type = t;
	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
	return n;
}

static int parse_node(struct yparser *yp, yaml_event_t *ev, struct ynode **out);

unsigned long ymap_key_compares;

/* The keys of one mapping while it is parsed: open addressing over indices
 * into n->pairs, so a duplicate is found in O(1) expected time per key
 * (a linear scan made 80,000 keys take 22 s). */
struct keyset {
	size_t *slot;         /* pair index + 1; 0 = empty */
	size_t cap;           /* power of two */
	size_t used;
};

static uint64_t key_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a, 64 bits */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static void keyset_release(struct keyset *ks)
{
	free(ks->slot);
	memset(ks, 0, sizeof(*ks));
}

/* The pair whose key equals key, or NULL. */
static const struct ypair *keyset_find(const struct keyset *ks, const struct ynode *map,
				       const char *key, uint64_t h)
{
	size_t i;

	if (!ks->cap)
		return NULL;
	for (i = h & (ks->cap - 1); ks->slot[i]; i = (i + 1) & (ks->cap - 1)) {
		const struct ypair *p = &map->pairs[ks->slot[i] - 1];

		ymap_key_compares++;
		if (strcmp(p->key->str, key) == 0)
			return p;
	}
	return NULL;
}

/* Record pair index idx of map (its key is known to be new). */
static void keyset_add(struct keyset *ks, const struct ynode *map, size_t idx)
{
	size_t i;

	if ((ks->used + 1) * 2 > ks->cap) {      /* keep the load at most 1/2 */
		struct keyset big = { .cap = ks->cap ? ks->cap * 2 : 16 };
		size_t j;

		big.slot = xcalloc(big.cap, sizeof(*big.slot));
		for (j = 0; j < ks->cap; j++) {
			size_t k;

			if (!ks->slot[j])
				continue;
			k = key_hash(map->pairs[ks->slot[j] - 1].key->str) & (big.cap - 1);
			while (big.slot[k])
				k = (k + 1) & (big.cap - 1);
			big.slot[k] = ks->slot[j];
		}
		big.used = ks->used;
		free(ks->slot);
		*ks = big;
	}
	i = key_hash(map->pairs[idx].key->str) & (ks->cap - 1);
	while (ks->slot[i])
		i = (i + 1) & (ks->cap - 1);
	ks->slot[i] = idx + 1;
	ks->used++;
}

/* Parse the children of a collection whose start event was ev. */
static int parse_collection(struct yparser *yp, struct ynode *n)
{
	yaml_event_type_t end = n->type == YNODE_SEQ ? YAML_SEQUENCE_END_EVENT
						     : YAML_MAPPING_END_EVENT;
	size_t cap = 0;
	struct keyset keys = { 0 };
	int r = -1;

	if (++yp->depth > YAML_DEPTH_MAX)
		return perr(yp, n->line, n->col, "nesting deeper than %d levels",
			    YAML_DEPTH_MAX);
	for (;;) {
		yaml_event_t ev;
		struct ynode *child = NULL, *val = NULL;
		uint64_t h;

		if (next_event(yp, &ev) < 0)
			goto cleanup;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			break;
		}
		if (parse_node(yp, &ev, &child) < 0)
			goto cleanup;
		if (n->type == YNODE_SEQ) {
			if (n->nitems == cap) {
				cap = cap ? cap * 2 : 4;
				n->items = xrealloc(n->items, cap * sizeof(*n->items));
			}
			n->items[n->nitems++] = child;
			continue;
		}
		if (child->type != YNODE_SCALAR) {
			perr(yp, child->line, child->col,
			     "mapping keys must be strings, not %s", ynode_kind(child));
			ynode_free(child);
			goto cleanup;
		}
		h = key_hash(child->str);
		if (keyset_find(&keys, n, child->str, h)) {
			perr(yp, child->line, child->col, "duplicate key '%s'", child->str);
			ynode_free(child);
			goto cleanup;
		}
		if (next_event(yp, &ev) < 0 || parse_node(yp, &ev, &val) < 0) {
			ynode_free(child);
			goto cleanup;
		}
		if (n->npairs == cap) {
			cap = cap ? cap * 2 : 4;
			n->pairs = xrealloc(n->pairs, cap * sizeof(*n->pairs));
		}
		n->pairs[n->npairs].key = child;
		n->pairs[n->npairs].value = val;
		keyset_add(&keys, n, n->npairs);
		n->npairs++;
	}
	yp->depth--;
	r = 0;
cleanup:
	keyset_release(&keys);
	return r;
}

/* Consumes ev. */
static int parse_node(struct yparser *yp, yaml_event_t *ev, struct ynode **out)
{
	struct ynode *n = NULL;
	int r = 0;

	*out = NULL;
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		r = perr(yp, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			 "YAML aliases are not supported");
		break;
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor) {
			r = perr(yp, (int)ev->start_mark.line + 1,
				 (int)ev->start_mark.column + 1, "YAML anchors are not supported");
			break;
		}
		n = new_node(YNODE_SCALAR, ev);
		n->len = ev->data.scalar.length;
		n->str = xmalloc(n->len + 1);
		memcpy(n->str, ev->data.scalar.value, n->len);
		n->str[n->len] = '\0';
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		const yaml_char_t *anchor = ev->type == YAML_SEQUENCE_START_EVENT
			? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
		if (anchor) {
			r = perr(yp, (int)ev->start_mark.line + 1,
				 (int)ev->start_mark.column + 1, "YAML anchors are not supported");
			break;
		}
		n = new_node(ev->type == YAML_SEQUENCE_START_EVENT ? YNODE_SEQ : YNODE_MAP, ev);
		yaml_event_delete(ev);
		if (parse_collection(yp, n) < 0) {
			ynode_free(n);
			return -1;
		}
		*out = n;
		return 0;
	}
	default:
		r = perr(yp, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			 "unexpected YAML event");
		break;
	}
	yaml_event_delete(ev);
	if (r < 0) {
		ynode_free(n);
		return -1;
	}
	*out = n;
	return 0;
}

int ydoc_load_string(struct ydoc *doc, const char *name, const char *data, size_t len)
{
	struct yparser yp = { .doc = doc };
	yaml_event_t ev;
	int r = -1;
	bool have_doc = false;

	memset(doc, 0, sizeof(*doc));
	doc->path = xstrdup(name);
	doc->text = xmalloc(len + 1);
	memcpy(doc->text, data, len);
	doc->text[len] = '\0';
	doc->text_len = len;
	if (len > YAML_FILE_MAX)
		return perr(&yp, 1, 1, "document larger than %u bytes", YAML_FILE_MAX);
	if (memchr(data, '\0', len))
		return perr(&yp, 1, 1, "document contains a NUL byte");
	if (!yaml_parser_initialize(&yp.p))
		return err_set("%s: cannot initialise the YAML parser", name);
	yaml_parser_set_input_string(&yp.p, (const unsigned char *)doc->text, len);

	for (;;) {
		if (next_event(&yp, &ev) < 0)
			goto cleanup;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			yaml_event_delete(&ev);
			continue;
		case YAML_DOCUMENT_START_EVENT:
			if (have_doc) {
				perr(&yp, (int)ev.start_mark.line + 1,
				     (int)ev.start_mark.column + 1,
				     "more than one YAML document in the file");
				yaml_event_delete(&ev);
				goto cleanup;
			}
			have_doc = true;
			yaml_event_delete(&ev);
			continue;
		case YAML_STREAM_END_EVENT:
			yaml_event_delete(&ev);
			r = 0;
			goto cleanup;
		default:
			if (parse_node(&yp, &ev, &doc->root) < 0)
				goto cleanup;
			continue;
		}
	}
cleanup:
	yaml_parser_delete(&yp.p);
	return r;
}

int ydoc_load_file(struct ydoc *doc, const char *path)
{
	struct buf b;
	int r;

	memset(doc, 0, sizeof(*doc));
	buf_init(&b, YAML_FILE_MAX);
	if (buf_read_file(&b, path) < 0)
		return -1;
	r = ydoc_load_string(doc, path, b.data ? b.data : "", b.len);
	buf_release(&b);
	return r;
}

const struct ypair *ymap_pair(const struct ynode *map, const char *key)
{
	size_t i;

	if (!map || map->type != YNODE_MAP)
		return NULL;
	for (i = 0; i < map->npairs; i++)
		if (strcmp(map->pairs[i].key->str, key) == 0)
			return &map->pairs[i];
	return NULL;
}

struct ynode *ymap_get(const struct ynode *map, const char *key)
{
	const struct ypair *p = ymap_pair(map, key);

	return p ? p->value : NULL;
}

bool ynode_is_null(const struct ynode *n)
{
	if (!n)
		return true;
	if (n->type != YNODE_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
	       strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

const char *ynode_kind(const struct ynode *n)
{
	if (!n)
		return "nothing";
	switch (n->type) {
	case YNODE_SCALAR:
		return "a string";
	case YNODE_SEQ:
		return "a list";
	case YNODE_MAP:
		return "a mapping";
	}
	return "?";
}

const char *yscalar(const struct ynode *n)
{
	return n && n->type == YNODE_SCALAR ? n->str : NULL;
}

const struct ynode *ymap_unknown_key(const struct ynode *map, const char *where,
				     const char *const *keys, size_t n, char **msg)
{
	size_t i, k;

	*msg = NULL;
	for (i = 0; map && map->type == YNODE_MAP && i < map->npairs; i++) {
		const struct ynode *key = map->pairs[i].key;
		const char *hint;

		for (k = 0; k < n; k++)
			if (strcmp(key->str, keys[k]) == 0)
				break;
		if (k < n)
			continue;
		hint = closest_word(key->str, keys, n);
		*msg = xasprintf("unknown key '%s' in %s%s%s%s", key->str, where,
				 hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
		return key;
	}
	return NULL;
}

int ymap_check_keys(const struct ydoc *doc, const struct ynode *map, const char *where,
		    const char *const *keys, size_t n)
{
	char *msg;
	const struct ynode *key = ymap_unknown_key(map, where, keys, n, &msg);
	int r;

	if (!key)
		return 0;
	r = yerr(doc, key, "%s", msg);
	free(msg);
	return r;
}
