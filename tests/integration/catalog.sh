#!/bin/bash
# Components by name and version (builder/component/catalog.h), without a
# guest: every catalog component validates; component list/show; a recipe
# naming {name, version} resolves to the highest match (and says what it
# looked for when nothing matches, at file:line:col); ExecuteDocument by
# NAME/VERSION and by Image Builder ARN, run on this host (--local).
. "$(dirname "$0")/../lib/common.sh"
S=$(scratch)

n=0
for f in "$TOP"/catalog/*/*/*.yaml; do
	n=$((n + 1))
	out=$("$AMIFORGE" component validate "$f" 2>&1)
	check_eq "catalog: ${f#"$TOP"/catalog/} validates" "$?:$out" "0:$f: valid"
done
check "catalog: at least 9 ready documents ($n)" test "$n" -ge 9
for c in update-linux reboot-linux python-3-linux docker-ce-linux openjdk-linux php-linux \
	chrony-time-linux simple-boot-test-linux reboot-test-linux stig-build-linux-low \
	stig-build-linux-medium stig-build-linux-high; do
	check "catalog: $c is there" test -f "$TOP/catalog/$c/1.0.0/document.yaml"
done
for l in low medium high; do
	check "catalog: stig-build-linux-$l has its test document" \
		test -f "$TOP/catalog/stig-build-linux-$l/1.0.0/test.yaml"
done
out=$(python3 "$TOP/catalog/mkstig.py" --check 2>&1)
check_eq "catalog: the STIG documents are what catalog/mkstig.py writes" "$?:$out" "0:"
# Each level holds the rules of the levels below it; every step is named by its STIG id.
check_eq "catalog: STIG rules per level (low, medium, high)" "$(for l in low medium high; do
	grep -c '^      - name: UBTU-22-' "$TOP/catalog/stig-build-linux-$l/1.0.0/document.yaml"; done | tr '\n' ' ')" "6 18 27 "

# A private catalog first in the path, holding two versions of one component.
mkdir -p "$S/cat/hello-cat/1.0.0" "$S/cat/hello-cat/1.2.0" "$S/cat/hello-cat/2.0.0"
for v in 1.0.0 1.2.0 2.0.0; do
	cat >"$S/cat/hello-cat/$v/document.yaml" <<DOC
name: hello-cat
schemaVersion: 1.0
parameters:
  - Out:
      type: string
      default: /dev/null
phases:
  - name: build
    steps:
      - name: Say
        action: ExecuteBash
        inputs:
          commands:
            - echo "hello-cat $v" >> "{{ Out }}"
DOC
done
export AMIFORGE_COMPONENT_PATH=$S/cat

out=$("$AMIFORGE" component list)
check_contains "list: a private component" "$out" "hello-cat                    2.0.0"
check_contains "list: the shipped ones too" "$out" "update-linux"
check_eq "list --json: every version, parsed" "$("$AMIFORGE" component list --json |
	python3 -c 'import json,sys; print(" ".join(e["version"] for e in json.load(sys.stdin) if e["name"] == "hello-cat"))')" \
	"1.0.0 1.2.0 2.0.0"
out=$("$AMIFORGE" component show hello-cat@1.x.x)
check_contains "show: resolves 1.x.x to 1.2.0" "$out" "# hello-cat 1.2.0: $S/cat/hello-cat/1.2.0/document.yaml"
check_contains "show: prints the document" "$out" 'echo "hello-cat 1.2.0"'
out=$("$AMIFORGE" component show hello-cat@3.x.x 2>&1)
check_eq "show: no match exits 2" "$?" 2
check_contains "show: no match says where it looked and what is there" "$out" \
	"component 'hello-cat' version '3.x.x' not found (looked in $S/cat"
check_contains "show: ... and the versions there" "$out" "versions there: 1.0.0 1.2.0 2.0.0"

# A recipe naming components by name and version.
touch "$S/base.raw"
cat >"$S/recipe.yaml" <<'R'
name: cat
version: 1.0.0
parent: base.raw
components:
  - name: hello-cat
    version: 1.x.x
  - {name: update-linux, version: x.x.x}
tests:
  - {name: simple-boot-test-linux, version: 1.0.0}
R
out=$("$AMIFORGE" validate "$S/recipe.yaml" 2>&1)
check_eq "recipe: by name and version validates" "$?" 0
check_contains "recipe: 2 components, 1 test" "$out" "2 components, 1 test"
cat >"$S/bad.yaml" <<'R'
name: cat
version: 1.0.0
parent: base.raw
components:
  - name: hello-cat
    version: 9.x.x
R
out=$("$AMIFORGE" validate "$S/bad.yaml" 2>&1)
check_eq "recipe: unknown version exits 2" "$?" 2
check_contains "recipe: unknown version at file:line:col" "$out" \
	"$S/bad.yaml:5:11: component 'hello-cat' version '9.x.x' not found"
printf 'name: c\nversion: 1.0.0\nparent: base.raw\ncomponents:\n  - {name: hello-cat, version: 1.x}\n' >"$S/bad2.yaml"
out=$("$AMIFORGE" validate "$S/bad2.yaml" 2>&1)
check_contains "recipe: malformed version pattern" "$out" "$S/bad2.yaml:5:32: version '1.x' is not a version or pattern"
printf 'name: c\nversion: 1.0.0\nparent: base.raw\ncomponents:\n  - {name: hello-cat, path: x.yaml}\n' >"$S/bad3.yaml"
out=$("$AMIFORGE" validate "$S/bad3.yaml" 2>&1)
check_contains "recipe: path and name together refused" "$out" "give a 'path' or a 'name' and 'version', not both"

# ExecuteDocument by NAME/VERSION and by ARN (the build number is ignored).
cat >"$S/parent.yaml" <<DOC
name: parent
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: ByRef
        action: ExecuteDocument
        inputs:
          document: hello-cat/1.0.x
          parameters:
            - name: Out
              value: $S/said
      - name: ByArn
        action: ExecuteDocument
        inputs:
          document: arn:aws:imagebuilder:us-east-1:aws:component/hello-cat/x.x.x/1
          parameters:
            - name: Out
              value: $S/said
DOC
out=$("$AMIFORGE" component run "$S/parent.yaml" --local --log-dir "$S/toe" 2>&1)
check_eq "ExecuteDocument by NAME/VERSION and ARN: runs" "$?" 0
check_eq "ExecuteDocument: the versions each resolved to" "$(cat "$S/said" 2>/dev/null | tr '\n' ' ')" \
	"hello-cat 1.0.0 hello-cat 2.0.0 "
sed -i 's|component/hello-cat/x.x.x/1|component/hello-cat/7.x.x|' "$S/parent.yaml"
out=$("$AMIFORGE" component validate "$S/parent.yaml" 2>&1)
check_eq "ExecuteDocument: an ARN that resolves to nothing fails validation" "$?" 2
check_contains "ExecuteDocument: ... naming it" "$out" "component 'hello-cat' version '7.x.x' not found"
finish
