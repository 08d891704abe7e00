#!/bin/bash
# suite: guests  (make check-guests: slower guest tests, run by CI after make check)
# Build checkpoints on the Debian fixture, with as few guest boots as
# possible (three full boots): a small recipe of eight chained steps (One,
# Two, five one-line Fill steps, Three).
#   1. full build with --checkpoint-every-step: eight checkpoints saved,
#      plus the generalised one (the powered-off disk after generalisation);
#      no layer lies more than CKPT_DEPTH_MAX (3) above the agent layer: the
#      chain was merged as the build went. The unit tests (test-checkpoint)
#      cover the default policy's "not worth it" and the merge policy.
#   2. only the last step changed, to one that hangs: steps 1-7 reused
#      (the deepest checkpoint, a merged chain; the guest restored from
#      the state saved with it);
#      SIGINT while step 3 runs leaves nothing behind, the journal shows
#      everything released
#   3. --resume of that build with step Three fixed, the saved state
#      removed (a boot from the disk checkpoint): steps 1-7 reused, Three
#      runs (default policy: the last step, checkpointed only when its
#      work paid for it: the generalised checkpoint follows), the output
#      disk has every step's result (Three used Two's restored output);
#      chains still at most 3 deep
#   4. --no-cache and SIGINT during boot: no checkpoint used, nothing left
#   5. SIGKILL during boot, then `amiforge clean`: nothing left; again
#      while the inspection's appliance launches: its socket directory in
#      /tmp goes too
#   6. cache prune removes every checkpoint and layer
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"

build_test_setup build-checkpoint
pids=0   # the builds' pids, "|"-separated: domains are amiforge-<pid>-<random>

write_component() {   # $1: the commands of step Three
	cat >"$dir/r/steps.yaml" <<EOF
name: ckpt-steps
schemaVersion: 1.0
parameters:
  - Word:
      type: string
      default: "three"
phases:
  - name: build
    steps:
      - name: One
        action: ExecuteBash
        inputs:
          commands:
            - test -e /var/lib/cloud/instance/boot-finished
            - echo one > /var/lib/ckpt-one
            - echo first-output
      - name: Two
        action: ExecuteBash
        inputs:
          commands:
            - sleep 15
            - echo "two after {{ build.One.outputs.stdout }}" > /var/lib/ckpt-two
            - echo second-output
      - name: Fill1
        action: ExecuteBash
        inputs:
          commands: [echo f1 > /var/lib/ckpt-f1]
      - name: Fill2
        action: ExecuteBash
        inputs:
          commands: [echo f2 > /var/lib/ckpt-f2]
      - name: Fill3
        action: ExecuteBash
        inputs:
          commands: [echo f3 > /var/lib/ckpt-f3]
      - name: Fill4
        action: ExecuteBash
        inputs:
          commands: [echo f4 > /var/lib/ckpt-f4]
      - name: Fill5
        action: ExecuteBash
        inputs:
          commands: [echo f5 > /var/lib/ckpt-f5]
      - name: Three
        action: ExecuteBash
        inputs:
          commands:
            - $1
EOF
}
cat >"$dir/r/recipe.yaml" <<EOF
name: ckpt
version: 1.0.0
parent: $base
components:
  - path: steps.yaml
vm: {cpus: 2, memory: 1024, wait_for_cloud_init: true}
EOF
# (step One fails unless cloud-init has finished: the agent starts from the
# agent layer long before it does, so only vm.wait_for_cloud_init passes it)

# nothing_left NAME BUILD_DIR: no domain, no qemu on our files, no work
# directory, socket or layer without a checkpoint record, journal released.
nothing_left() {
	local name=$1 bd=$2 l orphan= i
	# libvirtd and QEMU finish tearing down on their own time: allow 60 s.
	for ((i = 0; i < 60; i++)); do
		[ "$(pgrep -c -f "qemu-system.*$dir/")" = 0 ] && break
		sleep 1
	done
	check_eq "$name: no domain left on the build's files" \
		"$(domains_matching "amiforge-\\($pids\\)-")" 0
	# (in $(...): a `bash -c` would match its own command line)
	check_eq "$name: no qemu process on the build's files" \
		"$(pgrep -c -f "qemu-system.*$dir/")" 0
	check "$name: build directory exists" test -n "$bd" -a -d "$bd"
	check_eq "$name: guest work directory removed" "$(find "$bd" -maxdepth 1 -name 'guest-*' | wc -l)" 0
	check "$name: no socket left" bash -c "[ -z \"\$(find '$dir' -type s)\" ]"
	for l in "$ck"/layers/*.qcow2; do
		[ -e "$l" ] || continue
		grep -qs "\"$l\"" "$ck"/*.json || orphan="$orphan $l"
	done
	check_eq "$name: no layer without a checkpoint record" "$orphan" ""
	check "$name: journal shows everything released" journal_nothing_live "$bd"
}

# records: "STEPS GENERALISED AGENT", the checkpoint records in the cache by
# kind (AGENT: the agent layer's)
records() {
	python3 - "$ck" <<'PY'
import glob, json, sys
st = [json.load(open(f)).get('step') for f in glob.glob(sys.argv[1] + '/*.json')]
g = sum(1 for s in st if s == '(generalised)')
a = sum(1 for s in st if s == '(agent)')
print(len(st) - g - a, g, a)
PY
}

# depth_max: the most checkpoint layers any record's chain has above the
# agent layer (its own included); "error: ..." when a chain cannot be read
# or does not end agent layer, base.
depth_max() {
	python3 - "$ck" "$base" <<'PY'
import glob, json, subprocess, sys
recs = [json.load(open(f)) for f in glob.glob(sys.argv[1] + '/*.json')]
agent = [r['layer'] for r in recs if r.get('step') == '(agent)']
deepest = 0
for r in recs:
    if r.get('step') == '(agent)':
        continue
    p = subprocess.run(['qemu-img', 'info', '-U', '--backing-chain', '--output=json',
                        '-f', 'qcow2', r['layer']], capture_output=True, text=True)
    if p.returncode != 0:
        print('error: ' + p.stderr.strip()); sys.exit(0)
    names = [c['filename'] for c in json.loads(p.stdout)]
    if len(agent) != 1 or names[-2:] != [agent[0], sys.argv[2]]:
        print('error: chain of %s: %s' % (r['step'], names)); sys.exit(0)
    deepest = max(deepest, len(names) - 2)
print(deepest)
PY
}

# 1. Full build.
write_component 'echo "{{ Word }} after {{ build.Two.outputs.stdout }}" > /var/lib/ckpt-three'
"$AMIFORGE" build "$dir/r/recipe.yaml" --output "$dir/b1" --checkpoint-every-step --json \
	>"$dir/ev1" 2>"$dir/err1"
rc=$?
check_eq "checkpoint: full build succeeds" "$rc" 0
[ "$rc" = 0 ] || tail -n 20 "$dir/err1" | sed 's/^/    | /'
for s in One Two Fill1 Fill2 Fill3 Fill4 Fill5 Three; do
	check_eq "checkpoint: full build ran step $s" "$(step_status "$dir/ev1" ckpt-steps/build/$s)" Success
done
check_eq "checkpoint: full build saved eight step checkpoints and the generalised one" \
	"$(count_events "$dir/ev1" checkpoint saved)" 9
check_eq "checkpoint: cache records: eight steps, one generalised, the agent layer" "$(records)" "8 1 1"
check_eq "checkpoint: every step's layer was frozen with cloud-init held off" \
	"$(python3 -c "
import glob, json
print(sum(1 for f in glob.glob('$ck/*.json') if json.load(open(f)).get('cloud_init_held')))")" 8
check_eq "checkpoint: every chain at most 3 layers above the agent layer (merged as the build went)" \
	"$(depth_max)" 3
check "checkpoint: the first step's layer backs onto the agent layer, which backs onto the base" python3 -c "
import glob, json, subprocess, sys
recs = [json.load(open(f)) for f in glob.glob('$ck/*.json')]
one = [r for r in recs if r.get('step') == 'ckpt-steps/build/One'][0]
agent = [r for r in recs if r.get('step') == '(agent)'][0]
chain = json.loads(subprocess.run(['qemu-img', 'info', '-U', '--backing-chain', '--output=json',
                                   '-f', 'qcow2', one['layer']], capture_output=True, check=True).stdout)
names = [c['filename'] for c in chain]
sys.exit(names != [one['layer'], agent['layer'], '$base'])"

# 2. Only the last step changed (to one that hangs); SIGINT while it runs.
write_component 'sleep 900'
"$AMIFORGE" build "$dir/r/recipe.yaml" --output "$dir/b2" --json >"$dir/ev2" 2>"$dir/err2" &
pid=$!
pids="$pids\|$pid"
if wait_event "$dir/ev2" $pid components; then
	sleep 20
	kill -INT $pid
fi
wait $pid
rc=$?
check_eq "checkpoint: SIGINT during components exits 130" "$rc" 130
check_eq "checkpoint: rebuild reused step One" "$(step_status "$dir/ev2" ckpt-steps/build/One)" Reused
check_eq "checkpoint: rebuild reused step Fill5" "$(step_status "$dir/ev2" ckpt-steps/build/Fill5)" Reused
check "checkpoint: rebuild booted from the checkpoint of step Fill5 (7/8)" \
	grep -q '"event":"checkpoint".*"status":"reused".*"detail":"7/8"' "$dir/ev2"
bd2=$(ls -d "$dir"/b2/ckpt-1.0.0-* | head -n 1)
nothing_left "checkpoint: SIGINT during components" "$bd2"

# 3. --resume the interrupted build with the last step fixed. Booted from
# a checkpoint, the guest ran none of cloud-init's stages (it had at its
# first boot): held off by cloud-init's own switch in the layer, which the
# booted build removed at once. (Run 2 went on from the state saved with
# Fill5's checkpoint; with it removed, this run and the ones below boot from
# the disk checkpoint, as a guest of another shape would. build-state.sh
# tests the restores.)
check_eq "checkpoint: one saved guest state (Fill5's)" "$(ls "$ck"/layers/*.state 2>/dev/null | wc -l)" 1
check "checkpoint: run 2 went on from it" grep -q '"event":"guest","name":"restoring"' "$dir/ev2"
rm -f "$ck"/layers/*.state
write_component 'echo "{{ Word }} changed after {{ build.Two.outputs.stdout }}" > /var/lib/ckpt-three; test -e /run/amiforge-cloud-init-held; test ! -e /etc/cloud/cloud-init.disabled; cloud-init status | grep -q disabled'
"$AMIFORGE" build --resume "$bd2" --json >"$dir/ev3" 2>"$dir/err3"
rc=$?
check_eq "checkpoint: --resume succeeds" "$rc" 0
[ "$rc" = 0 ] || tail -n 20 "$dir/err3" | sed 's/^/    | /'
check_eq "checkpoint: --resume reused step One" "$(step_status "$dir/ev3" ckpt-steps/build/One)" Reused
check_eq "checkpoint: --resume reused step Two" "$(step_status "$dir/ev3" ckpt-steps/build/Two)" Reused
check_eq "checkpoint: --resume reused step Fill5" "$(step_status "$dir/ev3" ckpt-steps/build/Fill5)" Reused
check_eq "checkpoint: --resume ran step Three" "$(step_status "$dir/ev3" ckpt-steps/build/Three)" Success
check "checkpoint: --resume ran in the same build directory; its TOE log has One to Fill5 skipped as done, Three run" python3 -c "
import json,glob,sys
ok=False
for f in glob.glob('$bd2/toe/TOE_*/detailedoutput.json'):
    d=json.load(open(f))
    st={s['name']:s for p in d['documents'][0]['phases'] for s in p['steps']}
    ok|=(st['One']['status']=='Skipped' and 'skippedReason' in st['One'] and
         st['Two']['status']=='Skipped' and st['Fill5']['status']=='Skipped' and
         st['Three']['status']=='Success' and
         d['executedStepCount']==1)
sys.exit(not ok)"
disk="$bd2/output/ckpt-1.0.0.qcow2"
check "checkpoint: output is standalone" qcow2_standalone "$disk"
if have guestfs "checkpoint: output has every step's result"; then
got=$(guestfish --ro --format=qcow2 -a "$disk" -i <<'EOF' 2>&1
cat /var/lib/ckpt-one
cat /var/lib/ckpt-two
cat /var/lib/ckpt-f1
cat /var/lib/ckpt-f2
cat /var/lib/ckpt-f3
cat /var/lib/ckpt-f4
cat /var/lib/ckpt-f5
cat /var/lib/ckpt-three
exists /etc/cloud/cloud-init.disabled
EOF
)
check_eq "checkpoint: output has every step's result (chaining restored, merged layers intact)" \
	"$(echo "$got" | tr -s '\n' '|')" "one|two after first-output|f1|f2|f3|f4|f5|three changed after second-output|false|"
fi
nothing_left "checkpoint: --resume" "$bd2"
# Three, the last step, is checkpointed only when its work (cloud-init's
# Python among it) came to CKPT_WORK_PER_COST times the last checkpoint's
# cost: the record is there exactly when its event said so.
three=$(($(count_events "$dir/ev3" checkpoint saved) - 1))
check_eq "checkpoint: cache records: eight steps and the fixed Three's when it paid ($three), two generalised, one agent layer" \
	"$(records)" "$((8 + three)) 2 1"
check_eq "checkpoint: after --resume, every chain still at most 3 layers above the agent layer" \
	"$(depth_max)" 3

# 4. --no-cache, SIGINT during boot.
write_component 'true'
"$AMIFORGE" build "$dir/r/recipe.yaml" --output "$dir/b5" --no-cache --json >"$dir/ev5" 2>"$dir/err5" &
pid=$!
pids="$pids\|$pid"
if wait_event "$dir/ev5" $pid booting; then
	sleep 10
	kill -INT $pid
fi
wait $pid
rc=$?
check_eq "checkpoint: SIGINT during boot exits 130" "$rc" 130
check "checkpoint: --no-cache boots from the base (0/8)" \
	grep -q '"event":"checkpoint".*"status":"none".*"detail":"0/8"' "$dir/ev5"
nothing_left "checkpoint: SIGINT during boot" "$(ls -d "$dir"/b5/ckpt-1.0.0-* | head -n 1)"

# 5. SIGKILL during boot, then clean.
"$AMIFORGE" build "$dir/r/recipe.yaml" --output "$dir/b6" --json >"$dir/ev6" 2>"$dir/err6" &
pid=$!
pids="$pids\|$pid"
if wait_event "$dir/ev6" $pid booting; then
	sleep 10
	kill -KILL $pid
fi
wait $pid
bd6=$(ls -d "$dir"/b6/ckpt-1.0.0-* | head -n 1)
check "checkpoint: SIGKILL left a live journal to clean" journal_has_live "$bd6"
"$AMIFORGE" clean "$bd6" >"$dir/clean6" 2>&1
check_eq "checkpoint: clean after SIGKILL succeeds" "$?" 0
nothing_left "checkpoint: SIGKILL then clean" "$bd6"

# 5b. SIGKILL while the inspection's appliance launches (started early, as
# the last step starts), then clean: libguestfs's socket directory for it,
# in /tmp, was journaled as soon as it existed (appliance.c's watch), not
# when the launch ended (seconds later under TCG), and clean removes it.
socks_before=$(ls -d /tmp/libguestfs?????? 2>/dev/null)
new_sockdir() { comm -13 <(echo "$socks_before") <(ls -d /tmp/libguestfs?????? 2>/dev/null) | head -n 1; }
"$AMIFORGE" build "$dir/r/recipe.yaml" --output "$dir/b7" --json >"$dir/ev7" 2>"$dir/err7" &
pid=$!
pids="$pids\|$pid"
sd=
for ((i = 0; i < 6000 && ${#sd} == 0; i++)); do
	kill -0 $pid 2>/dev/null || break
	sd=$(new_sockdir)
	[ -n "$sd" ] || sleep 0.05
done
bd7=$(ls -d "$dir"/b7/ckpt-1.0.0-* 2>/dev/null | head -n 1)
# Two seconds for the journal to name it (the launch takes longer here).
for ((i = 0; i < 40; i++)); do
	[ -n "$sd" ] && grep -q " dir $sd\$" "$bd7/journal" 2>/dev/null && break
	sleep 0.05
done
launched=$(grep -c '"name":"flatten"' "$dir/ev7")
kill -KILL $pid
wait $pid
check "checkpoint: SIGKILL at the appliance's launch: its socket directory appeared" test -n "$sd"
check_eq "checkpoint: ... before the flatten stage (the appliance started early)" "$launched" 0
check "checkpoint: ... and the journal named it" grep -q " dir $sd\$" "$bd7/journal"
"$AMIFORGE" clean "$bd7" >"$dir/clean7" 2>&1
check_eq "checkpoint: clean after that SIGKILL succeeds" "$?" 0
check "checkpoint: ... and removed the socket directory" test ! -e "$sd"
nothing_left "checkpoint: SIGKILL at the appliance's launch, then clean" "$bd7"

# 6. Prune.
"$AMIFORGE" cache prune >"$dir/prune" 2>&1
check_eq "checkpoint: cache prune succeeds" "$?" 0
check_eq "checkpoint: prune removed every checkpoint and layer" \
	"$(ls "$ck"/*.json "$ck"/layers/* 2>/dev/null | wc -l)" 0
finish
