#!/bin/bash
# amiforge build, end to end on the Debian fixture: the demo recipe (a web
# service, a reboot via exit 194, validate phase, generalisation, tests on a
# fresh boot of the output), then a recipe whose test phase fails.
. "$(dirname "$0")/../lib/common.sh"

if ! need_libvirt; then
	fail "build: libvirt is not available (qemu:///system does not answer)"
	exit 1
fi
base=$(fixture_image) || { fail "build: fixture image"; exit 1; }
dir=$(scratch)
sum_before=$(sha256sum <"$base")
domains_before=$(virsh -c qemu:///system list --name 2>/dev/null | grep -c amiforge)

# --no-cache: every step runs here, whatever checkpoints earlier builds left
# in the cache (it still records new ones, which the failing build reuses).
"$AMIFORGE" build "$TOP/recipes/demo.yaml" --var parent="$base" --output "$dir/builds" \
	--no-cache --json >"$dir/events.json" 2>"$dir/build.err"
rc=$?
check_eq "build: demo recipe builds (exit status)" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/    | /' "$dir/build.err" | tail -n 30
bd=$(ls -d "$dir"/builds/demo-1.0.0-* 2>/dev/null | head -n 1)
check "build: build directory created" test -d "$bd"
disk="$bd/output/demo-1.0.0.qcow2"
check "build: output disk written" test -s "$disk"
check "build: output is a standalone qcow2 (no backing file)" \
	bash -c "qemu-img info -f qcow2 --output=json '$disk' | grep -vq backing-filename"
check_eq "build: base image unchanged" "$(sha256sum <"$base")" "$sum_before"

m="$bd/manifest.json"
check "build: manifest says succeeded" \
	python3 -c "import json,sys; m=json.load(open('$m')); sys.exit(m['build']['status']!='succeeded')"
for st in base boot components generalise poweroff flatten boot-test tests outputs; do
	check "build: manifest has stage $st ok" python3 -c "
import json,sys
m=json.load(open('$m'))
sys.exit(not any(s['name']=='$st' and s['status']=='ok' for s in m['stages']))"
done
check "build: manifest lists the output with its sha256" python3 -c "
import json,sys,hashlib
m=json.load(open('$m'))
o=[x for x in m['outputs'] if x['format']=='qcow2'][0]
sys.exit(o['sha256']!=hashlib.sha256(open(o['path'],'rb').read()).hexdigest())"

# TOE logs: the build run (reboot step resumed) and the test run.
check "build: TOE logs for build and test runs" \
	bash -c "[ \$(ls -d '$bd'/toe/TOE_* | wc -l) -ge 2 ]"
check "build: reboot step ran to success after the reboot" python3 -c "
import json,glob,sys
ok=False
for f in glob.glob('$bd/toe/TOE_*/detailedoutput.json'):
    d=json.load(open(f))
    s=json.dumps(d)
    if 'RebootOnce' in s and 'resumed after reboot' in s: ok=True
sys.exit(not ok)"
check "build: test phase ran on the fresh boot" python3 -c "
import json,glob,sys
ok=False
for f in glob.glob('$bd/toe/TOE_*/detailedoutput.json'):
    d=json.load(open(f))
    if 'FreshMachineId' in json.dumps(d) and d['status']=='Success' and d['failedStepCount']==0: ok=True
sys.exit(not ok)"
check "build: console logs kept" test -s "$bd/console.log" -a -s "$bd/console-test.log"
check "build: --json events are JSON lines ending with the build event" python3 -c "
import json,sys
ev=[json.loads(l) for l in open('$dir/events.json') if l.strip()]
sys.exit(not (ev and ev[-1]['event']=='build' and ev[-1]['status']=='succeeded'))"
check "build: staging area removed" bash -c "! ls -d \"\${TMPDIR:-/var/tmp}\"/amiforge-build-demo-* 2>/dev/null"
check_eq "build: no domain left running" \
	"$(virsh -c qemu:///system list --name 2>/dev/null | grep -c amiforge)" "$domains_before"
check "build: journal keeps the output, nothing else live" bash -c \
	"! '$AMIFORGE' clean --dry-run '$bd' 2>&1 | grep -q 'would release'"
check "build: journal records the kept output" grep -q "^= " "$bd/journal"

# A failing test phase fails the build (and cleans up after itself).
mkdir -p "$dir/r/components"
cp "$TOP/recipes/components/hello-web.yaml" "$TOP/recipes/components/hello-web-test.yaml" "$dir/r/components/"
sed -e 's|^parent:.*|parent: '"$base"'|' \
    -e '/^tests:/,/^vm:/s|Greeting: "hello from amiforge"|Greeting: "a greeting the page does not have"|' \
    "$TOP/recipes/demo.yaml" >"$dir/r/failing.yaml"
"$AMIFORGE" build "$dir/r/failing.yaml" --output "$dir/builds2" >"$dir/fail.out" 2>"$dir/fail.err"
rc=$?
check_eq "build: failing test phase fails the build (exit 1)" "$rc" 1
check "build: the failure names the test step" grep -q "Serves" "$dir/fail.err"
bd2=$(ls -d "$dir"/builds2/demo-1.0.0-* 2>/dev/null | head -n 1)
check "build: failed manifest says failed" \
	python3 -c "import json,sys; sys.exit(json.load(open('$bd2/manifest.json'))['build']['status']!='failed')"
check "build: failed build left no staging area" bash -c "! ls -d \"\${TMPDIR:-/var/tmp}\"/amiforge-build-demo-* 2>/dev/null"
check_eq "build: no domain left after the failed build" \
	"$(virsh -c qemu:///system list --name 2>/dev/null | grep -c amiforge)" "$domains_before"
finish
