#!/usr/bin/env python3
"""Validate a CycloneDX 1.5 JSON document against the schema vendored in
tests/data/cyclonedx (references to the SPDX and JSF schemas resolved there,
never fetched). Exit 0 valid; 1 with the first error.
    cdx_validate.py FILE
"""
import json
import os
import sys
import warnings

import jsonschema

warnings.simplefilter("ignore", DeprecationWarning)
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "cyclonedx")
schemas = {}
for f in os.listdir(here):
    if f.endswith(".schema.json"):
        s = json.load(open(os.path.join(here, f)))
        schemas[s["$id"]] = s
        schemas[f] = s
        # the SNAPSHOT file names are what the bom schema refers to
        schemas["http://cyclonedx.org/schema/" + f] = s
bom_schema = schemas["http://cyclonedx.org/schema/bom-1.5.schema.json"]
resolver = jsonschema.RefResolver(base_uri=bom_schema["$id"], referrer=bom_schema, store=schemas)
doc = json.load(open(sys.argv[1]))
try:
    jsonschema.Draft7Validator(bom_schema, resolver=resolver,
                               format_checker=jsonschema.FormatChecker()).validate(doc)
except jsonschema.ValidationError as e:
    print("cdx_validate: %s: %s at %s" % (sys.argv[1], e.message, list(e.absolute_path)))
    sys.exit(1)
print("cdx_validate: %s: valid CycloneDX %s, %d components" % (
    sys.argv[1], doc.get("specVersion"), len(doc.get("components", []))))
