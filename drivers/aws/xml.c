#include <libxml/parser.h>
#include <libxml/tree.h>

#include "xml.h"
#include "error.h"
#include "util.h"

xmlDoc *xml_parse(const char *data, size_t len)
{
	xmlDoc *doc;
	const xmlError *e;

	if (len > INT_MAX) {
		err_set("XML: answer of %zu bytes is too large", len);
		return NULL;
	}
	doc = xmlReadMemory(data, (int)len, NULL, NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		e = xmlGetLastError();
		err_set("XML: line %d: %s", e ? e->line : 0,
			e && e->message ? e->message : "not well-formed");
		return NULL;
	}
	return doc;
}

xmlNode *xml_child(xmlNode *parent, const char *name)
{
	xmlNode *c;

	if (!parent)
		return NULL;
	for (c = parent->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
			return c;
	return NULL;
}

xmlNode *xml_next(xmlNode *node)
{
	xmlNode *c;

	if (!node)
		return NULL;
	for (c = node->next; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name,
							  (const char *)node->name) == 0)
			return c;
	return NULL;
}

xmlNode *xml_find(xmlNode *node, const char *path)
{
	char *copy = xstrdup(path), *p = copy, *slash;

	while (node && *p) {
		slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		node = xml_child(node, p);
		p = slash ? slash + 1 : p + strlen(p);
	}
	free(copy);
	return node;
}

char *xml_text(xmlNode *node, const char *path)
{
	xmlChar *t;
	char *r;

	node = xml_find(node, path);
	if (!node)
		return NULL;
	t = xmlNodeGetContent(node);
	r = xstrdup(t ? (const char *)t : "");
	xmlFree(t);
	return r;
}

const char *xml_root_name(xmlDoc *doc)
{
	xmlNode *r = doc ? xmlDocGetRootElement(doc) : NULL;

	return r ? (const char *)r->name : "";
}
