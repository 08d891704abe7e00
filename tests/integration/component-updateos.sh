#!/bin/bash
# suite: guests  (make check-guests: slower guest tests, run by CI after make check)
# UpdateOS in a real Debian 12 guest (`amiforge component run --image`), two
# boots:
#  - offline (no network attached): the strict index refresh fails the step
#    with apt's own "Failed to fetch" line and the no-default-route hint;
#    the step after it never runs.
#  - online (--net, QEMU's user network to Debian's mirrors): a local
#    package, amiforge-probe, is installed at 1.0 and a file: repository
#    offers 1.1; UpdateOS (include: [amiforge-probe]) refreshes every index
#    strictly (Debian's and the local one), upgrades it, and its outputs list
#    exactly that upgrade; a later step reads them through chaining
#    ({{ build.Update.outputs.upgraded }}) and checks the installed version.
. "$(dirname "$0")/../lib/common.sh"

if ! need_libvirt; then
	skip "component-updateos: libvirt not available"
	exit 0
fi
img=$(fixture_image) || { fail "component-updateos: fixture image"; exit 1; }
S=$(scratch)

# Network flags: the online run asks for the network explicitly; the
# offline run says --no-net where amiforge has it (network by default),
# and otherwise relies on the guest being offline unless --net is given.
help=$("$AMIFORGE" component run --help 2>&1)
offline_flag=()
case "$help" in *--no-net*) offline_flag=(--no-net) ;; esac
online_flag=()
if printf '%s\n' "$help" | grep -qE -- '(^|[^-])--net([^-]|$)'; then online_flag=(--net); fi

run_guest() {	# name doc flags... -> rc in $rc; stdout/stderr in $S/name.out/.err
	local name=$1 doc=$2
	shift 2
	"$AMIFORGE" component run "$doc" --image "$img" --log-dir "$S/$name.logs" "$@" \
		>"$S/$name.out" 2>"$S/$name.err"
	rc=$?
}

# step_json LOGDIR STEP: the step's object from detailedoutput.json
step_json() {
	python3 - "$1" "$2" <<'PY'
import glob, json, sys
def walk(o):
    if isinstance(o, dict):
        if o.get('name') == sys.argv[2] and 'action' in o:
            yield o
        for v in o.values():
            yield from walk(v)
    elif isinstance(o, list):
        for v in o:
            yield from walk(v)
for f in glob.glob(sys.argv[1] + '/TOE_*/detailedoutput.json'):
    for s in walk(json.load(open(f))):
        print(json.dumps(s))
        sys.exit(0)
sys.exit(1)
PY
}

# ---- offline ----
cat >"$S/offline.yaml" <<'YAML'
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Update
        action: UpdateOS
      - name: After
        action: ExecuteBash
        inputs:
          commands: ["touch /root/after-update"]
YAML
run_guest offline "$S/offline.yaml" "${offline_flag[@]}"
err=$(cat "$S/offline.err")
check_eq "updateos offline: the run fails" "$rc" 1
check_contains "updateos offline: says the index could not be refreshed" "$err" \
	"UpdateOS: the package index could not be refreshed"
check_contains "updateos offline: the strict refresh command" "$err" \
	"apt-get -o APT::Update::Error-Mode=any update' exited with status 100"
check_contains "updateos offline: apt's own message" "$err" "Failed to fetch"
# The reason comes from the guest's network executor when amiforge itself
# left the guest offline (--no-net), else from the route check.
case "${offline_flag[*]}" in
--no-net) check_contains "updateos offline: says why the guest is offline" "$err" \
	"[the guest is offline: amiforge component run was given --no-net]" ;;
*) check_contains "updateos offline: the no-network hint" "$err" \
	"the target has no network: no default route" ;;
esac
if j=$(step_json "$S/offline.logs" Update); then
	check "updateos offline: detailedoutput marks the step Failed" python3 -c "
import json,sys
s=json.loads(sys.argv[1])
sys.exit(not (s.get('status')=='Failed' and 'could not be refreshed' in json.dumps(s)))" "$j"
else
	fail "updateos offline: no Update step in detailedoutput.json"
fi
if j=$(step_json "$S/offline.logs" After) &&
	python3 -c "import json,sys; sys.exit(json.loads(sys.argv[1]).get('status')=='Success')" "$j"; then
	pass "updateos offline: the step after it did not run"
elif [ -z "${j:-}" ]; then
	pass "updateos offline: the step after it did not run"
else
	fail "updateos offline: the step after UpdateOS ran: $j"
fi

# ---- online ----
if [ ${#online_flag[@]} -eq 0 ] && [ ${#offline_flag[@]} -eq 0 ]; then
	fail "updateos online: 'component run --help' names neither --net nor --no-net"
	finish
	exit
fi
cat >"$S/online.yaml" <<'YAML'
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Probe
        action: ExecuteBash
        inputs:
          commands:
            - set -euo pipefail
            - |
              mk() {
                d=/root/probe-$1
                mkdir -p $d/DEBIAN
                printf 'Package: amiforge-probe\nVersion: %s\nArchitecture: all\nMaintainer: amiforge tests <tests@amiforge.invalid>\nDescription: UpdateOS test package\n' $1 > $d/DEBIAN/control
                dpkg-deb --root-owner-group --build $d /root/amiforge-probe_$1_all.deb >/dev/null
              }
              mk 1.0
              mk 1.1
              dpkg -i /root/amiforge-probe_1.0_all.deb >/dev/null
              mkdir -p /srv/amiforge-repo
              mv /root/amiforge-probe_1.1_all.deb /srv/amiforge-repo/
              cd /srv/amiforge-repo
              apt-ftparchive packages . > Packages
              apt-ftparchive release . > Release
              echo 'deb [trusted=yes] file:/srv/amiforge-repo ./' > /etc/apt/sources.list.d/amiforge-probe.list
              dpkg-query -W -f '${Version}\n' amiforge-probe
      - name: Update
        action: UpdateOS
        inputs:
          include: [amiforge-probe]
      - name: Check
        action: ExecuteBash
        inputs:
          commands:
            - set -eu
            - "cat > /root/upgraded.json <<'EOF'\n{{ build.Update.outputs.upgraded }}\nEOF"
            - "test '{{ build.Update.outputs.upgradedCount }}' = 1"
            - grep -q '"newVersion":"1.1"' /root/upgraded.json
            - dpkg-query -W -f '${Version}\n' amiforge-probe
YAML
run_guest online "$S/online.yaml" "${online_flag[@]}"
if [ "$rc" = 0 ]; then
	pass "updateos online: refresh (Debian's mirrors and a file: repository) and upgrade succeed"
else
	fail "updateos online: exit $rc: $(grep -v '^\s*$' "$S/online.err" | tail -n 4)"
fi
if j=$(step_json "$S/online.logs" Update); then
	if python3 -c "
import json,sys
o=json.loads(sys.argv[1])['outputs']
u=json.loads(o['upgraded'])
sys.exit(not (u==[{'package':'amiforge-probe','arch':'all','oldVersion':'1.0','newVersion':'1.1'}]
              and o['upgradedCount']=='1'))" "$j"; then
		pass "updateos online: outputs.upgraded lists amiforge-probe 1.0 -> 1.1, nothing else"
	else
		fail "updateos online: outputs.upgraded: $j"
	fi
else
	fail "updateos online: no Update step in detailedoutput.json"
fi
if j=$(step_json "$S/online.logs" Check); then
	check "updateos online: a later step read the outputs by chaining; 1.1 installed" \
		python3 -c "
import json,sys
s=json.loads(sys.argv[1])
sys.exit(not (s['status']=='Success' and s['outputs']['stdout'].strip()=='1.1'))" "$j"
else
	fail "updateos online: no Check step in detailedoutput.json"
fi
finish
