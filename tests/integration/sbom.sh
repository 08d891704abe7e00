#!/bin/bash
# amiforge sbom and diff on the fixture, offline (libguestfs): the SBOM
# validates against the CycloneDX 1.5 schema (vendored, never fetched) and
# lists exactly the packages dpkg-query itself reads from the image's
# database; diff finds a package added, one removed and one changed in a
# copy of the fixture. An RPM-based image (a file system made here with
# mkfs.ext4 -d, holding an rpmdb.sqlite that Debian's rpm wrote from
# packages rpmbuild made): its SBOM lists exactly what `rpm -qa` reads from
# that database, as pkg:rpm package URLs; diff finds the package added to a
# second such image; an image with a Berkeley DB rpm database only gets an
# SBOM that says it is incomplete.
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

# ---- RPM ----
if ! command -v rpmbuild >/dev/null || ! command -v mkfs.ext4 >/dev/null; then
	fail "sbom rpm: rpm (rpmbuild) and e2fsprogs needed (make deps)"
	finish
	exit
fi
R=$S/rpm
mkdir -p "$R/root/etc" "$R/root/usr/bin" "$R/root/usr/lib/sysimage/rpm" \
	"$R/root/lib/modules/6.5.6-300.fc39.x86_64"
ln -s usr/bin "$R/root/bin"
printf 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=39\nPRETTY_NAME="Fedora Linux 39"\n' \
	>"$R/root/etc/os-release"
echo "Fedora release 39 (Thirty Nine)" >"$R/root/etc/fedora-release"
# libguestfs takes a file system for a Linux root only with /etc/fstab (or hosts) in it.
echo "LABEL=root / ext4 defaults 0 1" >"$R/root/etc/fstab"
cat >"$R/t.spec" <<'SPEC'
Name: %{pname}
Version: %{pver}
Release: %{prel}
%{?pepoch:Epoch: %{pepoch}}
Summary: amiforge test package
License: MIT
BuildArch: %{parch}
%description
An empty package for amiforge's tests.
%files
SPEC
mkrpm() {	# NAME VERSION RELEASE ARCH [EPOCH]
	rpmbuild -bb --define "_topdir $R/top" --define "pname $1" --define "pver $2" \
		--define "prel $3" --define "parch $4" ${5:+--define "pepoch $5"} "$R/t.spec" \
		>>"$R/rpmbuild.log" 2>&1 && echo "$R/top/RPMS/$4/$1-$2-$3.$4.rpm"
}
rpms="$(mkrpm bash 5.2.26 1.fc39 x86_64 1) $(mkrpm openssl-libs 3.1.1 4.fc39 x86_64 1)
	$(mkrpm kernel-core 6.5.6 300.fc39 x86_64) $(mkrpm amiforge-hello 1.2.3 4.fc39 noarch)"
db=$R/root/usr/lib/sysimage/rpm
rpmdb() { rpm --dbpath "$db" "$@" 2>>"$R/rpm.log"; }
# shellcheck disable=SC2086 # a list of paths
rpmdb --initdb && rpmdb -i --justdb --nodeps --noscripts --ignorearch --ignoreos $rpms
check_eq "sbom rpm: a database of 4 packages made with rpm" "$(rpmdb -qa | wc -l)" 4
rm -f "$db/.rpm.lock"
mkfs.ext4 -q -F -d "$R/root" "$R/a.img" 64M >/dev/null
"$AMIFORGE" -q sbom "$R/a.img" --input-format raw -o "$R/a.json" 2>"$R/a.err"
check_eq "sbom rpm: written (exit status)" "$?" 0
check "sbom rpm: valid CycloneDX 1.5" python3 "$TOP/tests/lib/cdx_validate.py" "$R/a.json"
want=$(rpmdb -qa --qf '%{NAME} %|EPOCH?{%{EPOCH}:}|%{VERSION}-%{RELEASE}\n' | grep -v '^gpg-pubkey ' | sort)
got=$(python3 -c 'import json,sys
for c in json.load(open(sys.argv[1]))["components"]: print(c["name"], c["version"])' "$R/a.json" 2>&1 | sort)
check_eq "sbom rpm: exactly the packages rpm -qa lists" "$got" "$want"
check_eq "sbom rpm: package URLs (rpm type, epoch a qualifier), the OS, complete" \
	"$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); m=d["metadata"]
print([c["purl"] for c in d["components"] if c["name"] == "bash"][0])
print(m["component"]["name"], m["component"]["version"], [p["value"] for p in m["properties"] if p["name"] == "amiforge:kernel"])
print([p["name"] for p in m["properties"] if p["name"].endswith("incomplete")])' "$R/a.json" 2>&1)" \
	"pkg:rpm/fedora/bash@5.2.26-1.fc39?arch=x86_64&distro=fedora-39&epoch=1
fedora 39 ['6.5.6-300.fc39.x86_64']
[]"
rpmdb -i --justdb --nodeps --noscripts --ignorearch --ignoreos "$(mkrpm amiforge-extra 2.0 1.fc39 noarch)"
rm -f "$db/.rpm.lock"
mkfs.ext4 -q -F -d "$R/root" "$R/b.img" 64M >/dev/null
out=$("$AMIFORGE" -q diff "$R/a.json" "$R/b.img" --input-format raw 2>&1)
check_eq "sbom rpm: diff shows the package added" "$out" "+ amiforge-extra 2.0-1.fc39"
# Only a Berkeley DB database (RHEL 8, Amazon Linux 2): not read, and said so.
rm -rf "$R/root/usr/lib/sysimage/rpm"
mkdir -p "$R/root/var/lib/rpm"
printf '\0\0\0\0\1\0\0\0\0\0\0\0a1\0\0\0' >"$R/root/var/lib/rpm/Packages"
mkfs.ext4 -q -F -d "$R/root" "$R/c.img" 64M >/dev/null
"$AMIFORGE" -q sbom "$R/c.img" --input-format raw -o "$R/c.json" 2>"$R/c.err"
check_eq "sbom rpm: Berkeley DB only: an SBOM all the same" "$?" 0
check_eq "sbom rpm: ... with no packages, saying why" \
	"$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(len(d["components"]), [p["value"] for p in d["metadata"]["properties"] if p["name"] == "amiforge:packages:incomplete"])' "$R/c.json" 2>&1)" \
	"0 ['/var/lib/rpm/Packages: a Berkeley DB or ndb rpm database (not read)']"
finish
