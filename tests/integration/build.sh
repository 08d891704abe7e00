#!/bin/bash
# amiforge build, end to end on the Debian fixture: the demo recipe (a web
# service, a reboot via exit 194, validate phase, generalisation, tests on a
# fresh boot of the output), then a recipe whose test phase fails: its
# components are the demo's, so it reuses the demo's generalised checkpoint
# and only boots the output for its tests. Then SIGINT at each stage from
# generalise on (build-checkpoint.sh interrupts boot and components), each
# time checking that nothing is left behind.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"
. "$(dirname "$0")/../lib/report.sh"

build_test_setup build
sum_before=$(sha256sum <"$base")

run_build "$dir/events.json" "$dir/build.err" "$TOP/recipes/demo.yaml" --var parent="$base" \
	--output "$dir/builds" --json
rc=$?
demo_pid=$build_pid
check_eq "build: demo recipe builds (exit status)" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/    | /' "$dir/build.err" | tail -n 30
bd=$(ls -d "$dir"/builds/demo-1.0.0-* 2>/dev/null | head -n 1)
check "build: build directory created" test -d "$bd"
disk="$bd/output/demo-1.0.0.qcow2"
check "build: output disk written" test -s "$disk"
check "build: output is a standalone qcow2 (no backing file)" qcow2_standalone "$disk"
check_eq "build: base image unchanged" "$(sha256sum <"$base")" "$sum_before"
# Steps run before cloud-init's stages end (the agent serves early); the
# demo's reboot waits for them to end, so what cloud-init's config stage
# writes once per instance is in the output as it was before issue 16:
# here, its grub_dpkg module's debconf selection for grub-pc.
grub_selection() {
	guestfish --ro --format=qcow2 -a "$disk" -i cat /var/cache/debconf/config.dat |
		grep -qx 'Name: grub-pc/install_devices'
}
check "build: cloud-init's config stage ended before the reboot (grub-pc's debconf selection)" \
	grub_selection

m="$bd/manifest.json"
check "build: manifest says succeeded" \
	python3 -c "import json,sys; m=json.load(open('$m')); sys.exit(m['build']['status']!='succeeded')"
for st in base boot components generalise poweroff flatten boot-test tests outputs inspect; do
	check "build: manifest has stage $st ok" python3 -c "
import json,sys
m=json.load(open('$m'))
sys.exit(not any(s['name']=='$st' and s['status']=='ok' for s in m['stages']))"
done
check_eq "build: manifest has the inspect summary (generic checks, nothing failed)" "$(python3 -c "
import json,os
i=json.load(open('$m'))['inspect']
print(i['status'] in ('passed','warnings'), i['for'], i['fail'], i['pass'] > 20, os.path.exists(i['report']))")" \
	"True generic 0 True True"
check "build: inspect stage while the disk is flattened, before the test guest" python3 -c "
import json,sys
st=json.load(open('$m'))['stages']
n=[s['name'] for s in st]
f,i=st[n.index('flatten')],st[n.index('inspect')]
sys.exit(not (n.index('flatten') < n.index('inspect') < n.index('boot-test') < n.index('outputs')
              and f['started'] <= i['started'] and i['finished'] <= f['finished']))"
check "build: --json check events from the inspection" python3 -c "
import json,sys
ev=[json.loads(l) for l in open('$dir/events.json') if l.strip()]
sys.exit(not any(e['event']=='check' and e['name']=='clean.amiforge' and e['status']=='pass' for e in ev))"
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
check "build: staging area removed" journal_dirs_gone "$bd/journal"
check_eq "build: no domain left" "$(domains_of "$demo_pid")" 0
check "build: journal keeps the output, nothing else live" journal_nothing_live "$bd"
check "build: journal records the kept output" grep -q "^= " "$bd/journal"
check "build: generalised checkpoint saved" python3 -c "
import json,sys
ev=[json.loads(l) for l in open('$dir/events.json') if l.strip()]
sys.exit(not any(e['event']=='checkpoint' and e['name']=='(generalised)' and e['status']=='saved' for e in ev))"

# The agent layer: made once, the agent started from its unit, and it holds
# the agent (so clean.amiforge's pass above is not vacuous: generalisation
# removed what the layer put there).
check_eq "build: one agent layer in the cache" "$(python3 -c "
import glob, json
print(sum(1 for f in glob.glob('$AMIFORGE_CACHE_DIR/checkpoints/*.json') if json.load(open(f)).get('step') == '(agent)'))")" 1
check "build: the build guest's agent served its port (console, with its uptime)" \
	grep -q 'serving /dev/vport.* (uptime [0-9.]* ' "$bd/console.log"
check_eq "build: ... started by the agent layer's unit, not by the seed's bootcmd" \
	"$(grep -c 'amiforge-seed: agent' "$bd/console.log")" 0
check "build: the test guest's agent came from the seed (the output has none)" \
	grep -q 'amiforge-seed: agent started' "$bd/console-test.log"
agent_layer=$(ls "$AMIFORGE_CACHE_DIR"/checkpoints/layers/agent-*.qcow2 2>/dev/null | head -n 1)
if have guestfs "build: the agent layer holds the agent and its unit"; then
	check_eq "build: the agent layer holds the agent and its enabled unit" "$(test -n "$agent_layer" &&
		guestfish --ro --format=qcow2 -a "$agent_layer" -i <<'EOF' 2>&1 | tr '\n' ' '
is-file /usr/local/sbin/amiforge-agent
is-file /etc/systemd/system/amiforge-agent.service
is-symlink /etc/systemd/system/multi-user.target.wants/amiforge-agent.service
EOF
)" "true true true "
fi

# A failing test phase fails the build (and cleans up after itself).
mkdir -p "$dir/r/components"
cp "$TOP/recipes/components/hello-web.yaml" "$TOP/recipes/components/hello-web-test.yaml" "$dir/r/components/"
sed -e 's|^parent:.*|parent: '"$base"'|' \
    -e '/^tests:/,/^vm:/s|Greeting: "hello from amiforge"|Greeting: "a greeting the page does not have"|' \
    "$TOP/recipes/demo.yaml" >"$dir/r/failing.yaml"
# Without the inspection (it now comes before the test guest; the first
# build checked it): this build is about its failing test phase.
run_build "$dir/fail.out" "$dir/fail.err" "$dir/r/failing.yaml" --output "$dir/builds2" --json \
	--no-inspect
rc=$?
check_eq "build: failing test phase fails the build (exit 1)" "$rc" 1
check "build: the failure names the test step" grep -q "Serves" "$dir/fail.err"
bd2=$(ls -d "$dir"/builds2/demo-1.0.0-* 2>/dev/null | head -n 1)
check "build: only the tests changed: the build guest is not booted" python3 -c "
import json,sys
m=json.load(open('$bd2/manifest.json'))
st={s['name']:s['status'] for s in m['stages']}
sys.exit(not (st.get('boot')=='reused' and st.get('components')=='reused' and
              st.get('flatten')=='ok' and st.get('boot-test')=='ok' and st.get('tests')=='failed'))"
check "build: every step reported reused" python3 -c "
import json,sys
ev=[json.loads(l) for l in open('$dir/fail.out') if l.strip()]
st=[e['status'] for e in ev if e['event']=='step' and e['name'].startswith('hello-web/')]
sys.exit(not (st and all(s=='Reused' for s in st)))"
check "build: no build-guest console log (no boot)" test ! -e "$bd2/console.log"
check "build: failed manifest says failed" \
	python3 -c "import json,sys; sys.exit(json.load(open('$bd2/manifest.json'))['build']['status']!='failed')"
# The report pages of both builds: the demo's (stages, steps, inspection,
# outputs), and the failed one's (its failing test step, stages reused).
report_check "build: demo report.html" "$bd" "hello-web/build/Enable" "Timeline" "Inspection" "Outputs"
report_check "build: failed build's report.html" "$bd2" "Failure" "hello-web-test/test/Serves" "reused"
check "build: failed build left no staging area" journal_dirs_gone "$bd2/journal"
check_eq "build: no domain left after the failed build" "$(domains_of "$build_pid")" 0

# ---- SIGINT at each stage ---------------------------------------------------
# interrupt STAGE DELAY RECIPE: build RECIPE, send SIGINT DELAY seconds after
# STAGE begins, then check that nothing is left: exit 130, the journal has
# nothing live, no staging area, no domain, no temporary or partial file, no
# cache layer that no checkpoint names.
interrupt() {
	local stage=$1 delay=$2 recipe=$3 o=$dir/int-$1 pid hit rc ibd insp=()
	mkdir -p "$o"
	# The inspection runs inside the flatten stage: interrupted there, the
	# appliance goes too; past it, it is time these checks do not need.
	[ "$stage" = flatten ] || insp=(--no-inspect)
	# libguestfs puts root's socket directory in /tmp, whatever $TMPDIR says.
	local socks_before
	socks_before=$(ls -d /tmp/libguestfs?????? 2>/dev/null)
	"$AMIFORGE" build "$recipe" --output "$o/builds" --json "${insp[@]}" >"$o/events" 2>"$o/err" &
	pid=$!
	python3 - "$o/events" "$stage" "$pid" "$delay" <<'PY'
import json, os, signal, sys, time
path, stage, pid, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def alive():
    try:
        return open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False
end = time.time() + 1500
while time.time() < end and alive():
    for l in open(path).read().splitlines():
        try:
            e = json.loads(l)
        except ValueError:
            continue
        if e.get('event') == 'stage' and e.get('name') == stage and e.get('status') == 'begin':
            time.sleep(delay)
            os.kill(pid, signal.SIGINT)
            sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
PY
	hit=$?
	wait "$pid"
	rc=$?
	check_eq "SIGINT at $stage: the stage was reached" "$hit" 0
	check_eq "SIGINT at $stage: exit status 130" "$rc" 130
	[ "$rc" = 130 ] || tail -n 5 "$o/err" | sed 's/^/    | /'
	ibd=$(ls -d "$o"/builds/*-1.0.0-* 2>/dev/null | head -n 1)
	check "SIGINT at $stage: the journal holds nothing live" journal_nothing_live "$ibd"
	check "SIGINT at $stage: no staging area" journal_dirs_gone "$ibd/journal"
	check_eq "SIGINT at $stage: no domain left" "$(domains_of "$pid")" 0
	check_eq "SIGINT at $stage: no appliance socket directory left in /tmp" \
		"$(comm -13 <(echo "$socks_before") <(ls -d /tmp/libguestfs?????? 2>/dev/null))" ""
	check_eq "SIGINT at $stage: no temporary or partial file" \
		"$(find "$o/builds" \( -name '*.partial' -o -name '.*.amiforge-*' \) | wc -l)" 0
	check "SIGINT at $stage: every cache layer and saved state belongs to a checkpoint" python3 -c "
import glob, json, os, sys
recs = [json.load(open(f)) for f in glob.glob('$AMIFORGE_CACHE_DIR/checkpoints/*.json')]
named = {r.get('layer') for r in recs} | {(r.get('state') or {}).get('file') for r in recs}
stray = [l for l in glob.glob('$AMIFORGE_CACHE_DIR/checkpoints/layers/*') if l not in named]
print(stray) if stray else None
sys.exit(bool(stray))"
}
demo_variant() {	# NAME SED-SCRIPT: the demo recipe on the fixture, edited
	sed -e 's|^parent:.*|parent: '"$base"'|' -e "$2" "$TOP/recipes/demo.yaml" >"$dir/r/$1.yaml"
	echo "$dir/r/$1.yaml"
}
# Another cleanup: section, so the generalised checkpoint does not match; the
# build guest boots from the last step's checkpoint and generalises.
interrupt generalise 0 "$(demo_variant gen 's|^output:|cleanup: {history: false}\noutput:|')"
# Generalised checkpoint reused: flatten starts at once.
interrupt flatten 0 "$(demo_variant outs '/^tests:/,/^vm:/{/^vm:/!d};s|formats: \[qcow2\]|formats: [qcow2, vmdk, ova]|')"
interrupt boot-test 3 "$(demo_variant btest '')"
interrupt tests 5 "$dir/r/btest.yaml"
interrupt outputs 1 "$dir/r/outs.yaml"
finish
