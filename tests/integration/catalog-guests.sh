#!/bin/bash
# suite: catalog  (make check-catalog: the catalog's components in real guests; CI runs it)
# The catalog's components run in a real build of the Debian fixture, named
# by name and version as users name them:
#   - update-linux (on the user network), stig-build-linux-low, then the
#     tests stig-build-linux-low-test (every applied rule holds on a fresh
#     boot, every skip says why), reboot-test-linux, simple-boot-test-linux;
#     the STIG report lists each rule, and the settings are in the output
#     image (read offline);
#   - update-linux with the network off fails within its bound, saying the
#     guest is offline, instead of hanging.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"

build_test_setup catalog-guests

cat >"$dir/r/recipe.yaml" <<EOF
name: cat
version: 1.0.0
parent: $base
components:
  - {name: update-linux, version: 1.x.x}
  - {name: stig-build-linux-low, version: x.x.x}
tests:
  - {name: stig-build-linux-low, version: 1.0.0}   # its test document
  - {name: reboot-test-linux, version: 1.0.x}
  - {name: simple-boot-test-linux, version: 1.0.0}
vm: {cpus: 2, memory: 1024}
output: {formats: [qcow2]}
EOF
"$AMIFORGE" validate "$dir/r/recipe.yaml" >"$dir/val" 2>&1
check_eq "catalog-guests: the recipe validates" "$?" 0

run_build "$dir/ev" "$dir/err" "$dir/r/recipe.yaml" --output "$dir/b" --json --no-cache
rc=$?
check_eq "catalog-guests: build succeeds" "$rc" 0
[ "$rc" = 0 ] || tail -n 15 "$dir/err" | sed 's/^/    | /'
bd=$(ls -d "$dir"/b/cat-1.0.0-* 2>/dev/null | head -n 1)
m=$bd/manifest.json
check_eq "catalog-guests: update-linux ran" "$(step_status "$dir/ev" update-linux/build/UpdateOS)" Success
for id in UBTU-22-213010 UBTU-22-214010 UBTU-22-215025 UBTU-22-412010 UBTU-22-412015 UBTU-22-412020; do
	check_eq "catalog-guests: STIG low step $id" \
		"$(step_status "$dir/ev" stig-build-linux-low/build/$id)" Success
	check_eq "catalog-guests: STIG low test $id" \
		"$(step_status "$dir/ev" stig-build-linux-low-test/test/$id)" Success
done
check_eq "catalog-guests: reboot-test-linux passed after its reboot" \
	"$(step_status "$dir/ev" reboot-test-linux/test/After)" Success
check_eq "catalog-guests: resolved versions in the manifest" \
	"$(python3 -c "import json,sys; m=json.load(open(sys.argv[1]))
print(sorted({(d['name'], d['version']) for d in m['inputs'] if d.get('name')}))" "$m" 2>&1)" \
	"[('reboot-test-linux', '1.0.0'), ('simple-boot-test-linux', '1.0.0'), ('stig-build-linux-low', '1.0.0'), ('update-linux', '1.0.0')]"
report=$(grep -rhoE 'applied: [0-9]+, skipped: [0-9]+' "$bd"/toe 2>/dev/null | head -n 1)
check "catalog-guests: the STIG report counts its rules ($report)" \
	bash -c "[[ '$report' =~ ^applied:\ ([0-9]+),\ skipped:\ ([0-9]+)$ ]] && (( BASH_REMATCH[1] + BASH_REMATCH[2] == 6 && BASH_REMATCH[1] >= 5 ))"

# The settings are in the image itself, read offline.
out=$(ls "$bd"/output/*.qcow2 2>/dev/null | head -n 1)
got=$(guestfish --ro -a "$out" -i <<'GF' 2>&1
cat /etc/sysctl.d/60-stig-dmesg-restrict.conf
cat /etc/stig-hardening/report-low.txt
head-n 1 /etc/security/limits.conf
GF
)
check_contains "catalog-guests: the image restricts dmesg" "$got" "kernel.dmesg_restrict = 1"
check_contains "catalog-guests: the image carries the report" "$got" "UBTU-22-412020 applied"
check_contains "catalog-guests: maxlogins at the top of limits.conf" "$got" "* hard maxlogins 10"

# update-linux with the network off: a clear failure, in bounded time.
start=$SECONDS
"$AMIFORGE" component run "$TOP/catalog/update-linux/1.0.0/document.yaml" --image "$base" \
	--no-net >"$dir/off.out" 2>"$dir/off.err"
rc=$?
check "catalog-guests: update-linux offline fails (rc $rc)" test "$rc" -ne 0
check_contains "catalog-guests: ... saying the guest is offline" "$(cat "$dir/off.out" "$dir/off.err")" "offline"
check "catalog-guests: ... within 10 minutes ($((SECONDS - start)) s)" test $((SECONDS - start)) -lt 600
finish
