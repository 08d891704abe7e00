#!/bin/bash
# amiforge sbom and diff on the fixture, offline (libguestfs): the SBOM
# validates against the CycloneDX 1.5 schema (vendored, never fetched) and
# lists exactly the packages dpkg-query itself reads from the image's
# database; diff finds a package added, one removed and one changed in a
# copy of the fixture. (The RPM reader is tested by tests/unit/test-rpmdb.c
# on headers Debian's rpm wrote; an RPM image test needs an image libguestfs
# inspects as an OS: the bare mkfs.ext4 -d root tried first was "no Linux
# system found", see git log.)
. "$(dirname "$0")/../lib/common.sh"
require guestfs sbom
S=$(scratch)
F=$(fixture_image) || { fail "sbom: fixture image"; exit 1; }

if "$AMIFORGE" -q sbom "$F" --input-format qcow2 -o "$S/fx.json" 2>"$S/sbom.err"; then
	pass "sbom: written"
else
	fail "sbom: $(tail -n 1 "$S/sbom.err")"
	finish
	exit
fi
out=$(python3 "$TOP/tests/lib/cdx_validate.py" "$S/fx.json")
check_eq "sbom: valid CycloneDX 1.5 (vendored schema)" "$?" 0
# The validator can fail: a component of an unknown type is caught.
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["components"][0]["type"]="banana"
json.dump(d, open(sys.argv[2], "w"))' "$S/fx.json" "$S/broken.json"
if python3 "$TOP/tests/lib/cdx_validate.py" "$S/broken.json" >/dev/null; then
	fail "sbom: the schema check let an invalid document through"
else
	pass "sbom: the schema check refuses an invalid document"
fi

# The image's own database, read by dpkg-query on this host: same packages.
# One guestfish session on a copy of the fixture fetches the database, has
# it edited here (a package removed, one changed, one added) and puts the
# edited one back, for diff below.
mkdir -p "$S/admin"
cp "$F" "$S/copy.qcow2"	# a whole copy: an overlay names a backing file, which disk admission refuses
cat >"$S/edit.py" <<'PY'
import sys
paras = open(sys.argv[1]).read().rstrip("\n").split("\n\n")
out = []
for p in paras:
    if p.startswith("Package: adduser\n"):
        continue                                   # removed
    if p.startswith("Package: bash\n"):
        p = "\n".join("Version: 99.0-1" if l.startswith("Version:") else l
                      for l in p.split("\n"))      # changed
    out.append(p)
out.append("Package: amiforge-test\nStatus: install ok installed\nArchitecture: all\n"
           "Version: 1.2.3\nDescription: added by the test")
open(sys.argv[2], "w").write("\n\n".join(out) + "\n")
PY
guestfish -a "$S/copy.qcow2" -m /dev/sda1 <<GF
download /var/lib/dpkg/status $S/admin/status
!python3 $S/edit.py $S/admin/status $S/status.new
upload $S/status.new /var/lib/dpkg/status
write /etc/amiforge-added "added by the test"
rm /etc/motd
mkdir /etc/amiforge-dir
write "/etc/amiforge-dir/back\\\\slash" "x"
GF
want=$(dpkg-query --admindir="$S/admin" -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' |
	awk '$1 == "ii" {print $2, $3}' | sort)
got=$(python3 -c 'import json,sys
for c in json.load(open(sys.argv[1]))["components"]: print(c["name"], c["version"])' "$S/fx.json" | sort)
check "sbom: dpkg-query lists packages" test "$(echo "$want" | wc -l)" -gt 100
if [ "$got" = "$want" ]; then
	pass "sbom: exactly the packages dpkg-query lists ($(echo "$got" | wc -l))"
else
	fail "sbom: packages differ from dpkg-query's: $(diff <(echo "$want") <(echo "$got") | head -n 5 | tr '\n' ' ')"
fi
check_contains "sbom: the OS" "$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["metadata"]
print(m["component"]["name"], m["component"]["version"], [p["value"] for p in m["properties"] if p["name"] == "amiforge:kernel"])' "$S/fx.json")" "debian 12 ['"

bash_v=$(echo "$want" | awk '$1 == "bash" {print $2}')
adduser_v=$(echo "$want" | awk '$1 == "adduser" {print $2}')
# Packages and files in one appliance per disk.
cp "$F" "$S/fx.qcow2"
out=$("$AMIFORGE" -q diff "$S/fx.qcow2" "$S/copy.qcow2" --input-format qcow2 \
	--paths /etc,/var/lib/dpkg,/nonexistent 2>&1)
check_eq "diff: exit 0" "$?" 0
check_eq "diff --paths: packages added, removed, changed; files added, deleted, modified" "$out" \
	"+ amiforge-test 1.2.3
- adduser $adduser_v
~ bash $bash_v -> 99.0-1
A /etc/amiforge-added
A /etc/amiforge-dir/back\slash
D /etc/motd
M /var/lib/dpkg/status"
"$AMIFORGE" -q diff "$S/fx.json" "$S/copy.qcow2" --paths /etc >/dev/null 2>"$S/e.paths"
check_eq "diff --paths: an SBOM input refused" "$?" 1
check_contains "diff --paths: says why" "$(cat "$S/e.paths")" "is an SBOM"
"$AMIFORGE" -q diff "$S/fx.json" "$S/copy.qcow2" --paths etc >/dev/null 2>&1
check_eq "diff --paths: a relative path is a usage error" "$?" 2
out=$("$AMIFORGE" -q diff "$S/fx.json" "$S/fx.json" --json)
check_eq "diff --json: an SBOM against itself" "$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["added"]), len(d["removed"]), len(d["changed"]))')" "0 0 0"
"$AMIFORGE" -q diff "$S/fx.json" "$S/nowhere" >/dev/null 2>&1
check_eq "diff: a missing input fails" "$?" 1

finish
