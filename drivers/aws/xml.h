/* xml.h: the few libxml2 helpers the AWS client needs. Names are matched
 * by local name (AWS answers carry a default namespace). Parsing never
 * loads external entities or DTDs and never touches the network. */
#ifndef AMIFORGE_AWS_XML_H
#define AMIFORGE_AWS_XML_H

#include <libxml/tree.h>

#include "compat.h"

/* Parse an answer. NULL with "XML: line N: ..." recorded. Free with xmlFreeDoc. */
xmlDoc *xml_parse(const char *data, size_t len);
/* First child element named name, or NULL. */
xmlNode *xml_child(xmlNode *parent, const char *name);
/* Follow "a/b/c" from node through child elements; "" returns node. */
xmlNode *xml_find(xmlNode *node, const char *path);
/* Next sibling element with the same name as node, or NULL. */
xmlNode *xml_next(xmlNode *node);
/* Text of the element at path (copied, caller frees), or NULL. */
char *xml_text(xmlNode *node, const char *path);
/* Local name of the root element ("" if none). */
const char *xml_root_name(xmlDoc *doc);

#endif
