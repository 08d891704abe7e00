#!/bin/bash
# suite: guests  (make check-guests: slower guest tests, run by CI after make check)
# Saved guest states (checkpoint.h): a rebuild goes on from the state saved
# with its checkpoint instead of booting. On the Debian fixture, a recipe of
# three steps — One leaves a random mark in /run (a tmpfs: only a restored
# guest still has it), Two, Three prints what it sees — for each driver:
#   1. full build: one state file, saved with the checkpoint after Two (the
#      one always taken before the last step, once the guest's boot has
#      ended; One's older state is removed), 0600, named by Two's record
#      alone, with the guest's shape and name; (libvirt) beside four older
#      states, the
#      cache keeps four (CKPT_STATES_KEEP): the least recently used goes
#   2. Three changed: the guest is restored, not booted; Three sees One's
#      mark; the guest's clock is this host's, its CRNG reseeded from this
#      host's bytes (build.log); the output has Three's file;
#      nothing is left running
# and with the direct QEMU driver:
#   3. Three changed again: a second guest restored from the same state
#   4. the state file cut short: the restore fails, a warning says so, the
#      guest boots and the build passes; Three sees no mark
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"

build_test_setup build-state

write_recipe() {   # DRIVER VERSION
	cat >"$dir/r/steps.yaml" <<EOF
name: state-steps
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: One
        action: ExecuteBash
        inputs:
          commands:
            - head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /run/amiforge-test-mark
            - echo "MARK=\$(cat /run/amiforge-test-mark)"
            - echo one > /var/lib/state-one
      - name: Two
        action: ExecuteBash
        inputs:
          commands: [echo two > /var/lib/state-two]
      - name: Three
        action: ExecuteBash
        inputs:
          commands:
            - echo "SEEN=\$(cat /run/amiforge-test-mark 2>/dev/null || echo none)"
            - echo "CLOCK=\$(date -u +%s)"
            - echo $2 > /var/lib/state-three
EOF
	cat >"$dir/r/recipe.yaml" <<EOF
name: state
version: 1.0.0
parent: $base
components:
  - path: steps.yaml
vm: {cpus: 2, memory: 1024, driver: $1}
EOF
}

# value NAME BUILD: what a step printed as NAME=... in that build's TOE log.
value() {
	grep -rhao "^$1=[^ ]*" "$dir/out-$2"/*/toe/ 2>/dev/null | tail -n 1 | cut -d= -f2
}

# build NAME: a build (--json events in $dir/NAME.json, stderr NAME.err).
build() {
	run_build "$dir/$1.json" "$dir/$1.err" "$dir/r/recipe.yaml" --output "$dir/out-$1" \
		--json --no-inspect
	local rc=$?
	[ "$rc" = 0 ] || tail -n 3 "$dir/$1.err" | sed 's/^/    | /'
	return "$rc"
}

restored() { grep -c '"event":"guest","name":"restoring"' "$dir/$1.json"; }
booted() { grep -c '"event":"guest","name":"booting"' "$dir/$1.json"; }

for drv in qemu libvirt; do
	rm -rf "$AMIFORGE_CACHE_DIR"
	if [ "$drv" = libvirt ]; then
		# Four older states of other builds: the cache keeps four in all.
		mkdir -p "$ck/layers"
		for h in 1 2 3 4; do
			echo "state $h" >"$ck/layers/old-$h.state"
			touch -d "$h hours ago" "$ck/layers/old-$h.state"
		done
	fi
	write_recipe "$drv" v1
	build "$drv-1"
	check_eq "$drv full build: exit 0" "$?" 0
	pid1=$build_pid
	mark=$(value MARK "$drv-1")
	check "$drv full build: One made a mark ($mark)" test -n "$mark"
	[ "$drv" = qemu ] ||
		check_eq "$drv full build: four states kept, the least recently used removed" \
			"$(cd "$ck/layers" && ls old-*.state | tr '\n' ' ')" "old-1.state old-2.state old-3.state "
	states=("$ck"/layers/[0-9a-f]*.state)
	check_eq "$drv full build: one saved state" "${#states[@]}:$(test -f "${states[0]}" && echo y)" 1:y
	check_eq "$drv full build: the state is 0600" "$(stat -c %a "${states[0]}" 2>&1)" 600
	check_eq "$drv full build: Two's record alone names it, with a shape and the guest's name" \
		"$(python3 - "$ck" "${states[0]}" "$drv" <<'PY'
import glob, json, sys
recs = [json.load(open(f)) for f in glob.glob(sys.argv[1] + '/*.json')]
hits = [r for r in recs if (r.get('state') or {}).get('file') == sys.argv[2]]
ok = (len(hits) == 1 and hits[0]['step'].endswith('/build/Two') and
      hits[0]['state']['shape'].startswith(sys.argv[3] + ' x86_64 ') and
      hits[0]['state']['name'].startswith('amiforge-'))
print('ok' if ok else hits)
PY
)" ok

	write_recipe "$drv" v2
	build "$drv-2"
	check_eq "$drv rebuild: exit 0" "$?" 0
	check_eq "$drv rebuild: restored, not booted" "$(restored "$drv-2"):$(booted "$drv-2")" 1:0
	check_eq "$drv rebuild: Three sees One's mark" "$(value SEEN "$drv-2")" "$mark"
	clock=$(value CLOCK "$drv-2")
	check "$drv rebuild: the guest's clock is the host's (guest $clock, host $(date -u +%s))" \
		test -n "$clock" -a "$(( $(date -u +%s) - ${clock:-0} ))" -lt 300 -a \
		"$(( $(date -u +%s) - ${clock:-0} ))" -ge 0
	check "$drv rebuild: the restored guest's random number generator was reseeded from the host's" \
		grep -q "its random number generator reseeded from the host's" "$dir/out-$drv-2"/*/build.log
	out=$(ls "$dir/out-$drv-2"/*/output/*.qcow2 2>/dev/null)
	check_eq "$drv rebuild: the output has every step's file" \
		"$(LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish --ro -a "$out" -i -- \
			cat /var/lib/state-one : cat /var/lib/state-two : cat /var/lib/state-three 2>&1 |
			tr -s '\n' ' ')" "one two v2 "
	check_eq "$drv rebuild: still one saved state of its own" "$(ls "$ck"/layers/[0-9a-f]*.state | wc -l)" 1
	check_eq "$drv rebuild: no domain or qemu left" \
		"$(domains_matching "amiforge-\\($pid1\\|$build_pid\\)-"):$(pgrep -c -f "qemu-system.*$dir/")" 0:0
	[ "$drv" = qemu ] || continue

	write_recipe "$drv" v3
	build "$drv-3"
	check_eq "$drv second restore: exit 0, restored" "$?:$(restored "$drv-3")" 0:1
	check_eq "$drv second restore: Three sees One's mark" "$(value SEEN "$drv-3")" "$mark"

	truncate -s 1M "${states[0]}"
	write_recipe "$drv" v4
	build "$drv-4"
	check_eq "$drv state cut short: the build passes" "$?" 0
	check "$drv state cut short: a warning says the restore failed" \
		grep -q "cannot go on from the saved state" "$dir/$drv-4.err"
	check_eq "$drv state cut short: booted instead" "$(booted "$drv-4")" 1
	check_eq "$drv state cut short: Three sees no mark" "$(value SEEN "$drv-4")" none
done

finish
