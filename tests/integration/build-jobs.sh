#!/bin/bash
# suite: scale  (make check-scale: scale-out in real guests; CI runs it when it fits, see .ci/run)
# Several builds at once (issue 21): three recipes on the Debian fixture built
# with `amiforge build A B C --jobs 3`, then the same three one after another
# (--no-cache both times: no run feeds the other; --no-inspect: the test
# reads the outputs itself). Each parallel output has the same contents as
# its sequential twin: the same package database (sha256 of
# /var/lib/dpkg/status) and the same file its component wrote, read by one
# guestfish from all six disks. The wall times of both runs
# are printed (SCALE.md quotes them). Then a --jobs 3 run is SIGKILLed, with
# all its builds, while their guests boot, and `amiforge clean` leaves
# nothing: no domain, no staging directory, no live journal entry.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"

build_test_setup build-jobs
export TMPDIR=$dir/tmp	# staging directories land here: easy to audit
mkdir -p "$TMPDIR"
chmod 711 "$TMPDIR"

for n in a b c; do
	cat >"$dir/r/$n-doc.yaml" <<DOC
name: job-$n
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Mark
        action: ExecuteBash
        inputs:
          commands:
            - echo "job $n \$(dpkg-query -W -f='\${Package}\n' | wc -l)" > /var/lib/job-mark
      - name: Hold
        action: ExecuteBash
        inputs:
          commands:
            - test ! -e /etc/amiforge-hold || sleep 900
DOC
	cat >"$dir/r/$n.yaml" <<YAML
name: job-$n
version: 1.0.0
parent: $base
components:
  - path: $n-doc.yaml
vm: {cpus: 1, memory: 768, accel: tcg}
YAML
done
recipes=("$dir/r/a.yaml" "$dir/r/b.yaml" "$dir/r/c.yaml")

# 1. --jobs 3
t0=$(date +%s)
"$AMIFORGE" build "${recipes[@]}" --jobs 3 --no-cache --no-inspect --output "$dir/par" --json \
	>"$dir/par.json" 2>"$dir/par.err"
rc=$?
t_par=$(($(date +%s) - t0))
check_eq "jobs: three builds with --jobs 3 succeed" "$rc" 0
[ "$rc" = 0 ] || tail -n 20 "$dir/par.err" | sed 's/^/    | /'
check_eq "jobs: all three ran at once (none waited)" "$(grep -c ': waiting' "$dir/par.err")" 0
check_eq "jobs: the agent layer was made once for the three (the others waited for it)" \
	"$(cat "$dir"/par/jobs-*/*.log 2>/dev/null | grep -c 'agent layer [0-9a-f]* made in')" 1
check "jobs: the --json summary has three builds, each ok with a build directory and a disk" \
	python3 -c "
import json, sys
s = json.load(open('$dir/par.json'))
b = s['builds']
sys.exit(not (len(b) == 3 and all(x['status'] == 'ok' and x['exit'] == 0 and x['build_dir']
	  and x['disk'] for x in b)))"

# 2. one after another
t0=$(date +%s)
for n in a b c; do
	"$AMIFORGE" build "$dir/r/$n.yaml" --no-cache --no-inspect --output "$dir/seq" \
		>>"$dir/seq.out" 2>>"$dir/seq.err" || {
		fail "jobs: sequential build of $n"
		tail -n 20 "$dir/seq.err" | sed 's/^/    | /'
	}
done
t_seq=$(($(date +%s) - t0))
echo "jobs: wall time: --jobs 3: ${t_par} s, one after another: ${t_seq} s ($(nproc) CPUs)"

disks=()
for n in a b c; do
	for run in par seq; do
		bd=$(ls -d "$dir"/$run/job-$n-1.0.0-* 2>/dev/null | head -n 1)
		disks+=("$bd/output/job-$n-1.0.0.qcow2")
	done
done
check "jobs: six output disks" test "$(ls "${disks[@]}" 2>/dev/null | wc -l)" = 6
[ "$(ls "${disks[@]}" 2>/dev/null | wc -l)" = 6 ] ||
	ls -d "$dir"/par/* "$dir"/seq/* "${disks[@]}" 2>&1 | sed 's/^/    | /'
if have guestfs "jobs: outputs have their component's file and the same packages"; then
	args=()
	for d in "${disks[@]}"; do args+=(--format=qcow2 -a "$d"); done
	script="run"
	for dev in sda sdb sdc sdd sde sdf; do
		script="$script : mount /dev/${dev}1 / : cat /var/lib/job-mark"
		script="$script : checksum sha256 /var/lib/dpkg/status : umount /"
	done
	# cat prints the file and its own newline: squeeze the empty lines.
	got=$(guestfish --ro "${args[@]}" -- $script 2>&1 | tr -s '\n' '|')
	IFS='|' read -r -a f <<<"$got"
	[ "${#f[@]}" -ge 12 ] || { fail "jobs: guestfish read 6 disks: got '$got'"; finish; exit; }
	pk=$(awk '{print $3}' <<<"${f[0]}")
	check "jobs: the package count is a number ($pk)" test -n "$pk" -a "$pk" -gt 100
	for i in 0 1 2; do
		n=$(echo a b c | cut -d' ' -f$((i + 1)))
		check_eq "jobs: $n: --jobs and sequential outputs have their component's file" \
			"${f[i * 4]}|${f[i * 4 + 2]}" "job $n $pk|job $n $pk"
		check "jobs: $n: --jobs and sequential outputs have the same package database" \
			test -n "${f[i * 4 + 1]}" -a "${f[i * 4 + 1]}" = "${f[i * 4 + 3]}"
	done
	check_eq "jobs: the three recipes' outputs have one package database" \
		"$(printf '%s\n' "${f[1]}" "${f[5]}" "${f[9]}" | sort -u | wc -l)" 1
fi

# 3. SIGKILL a --jobs 3 run (parent and builds) while the guests boot; clean.
for n in a b c; do
	sed -i 's|test ! -e /etc/amiforge-hold|false|' "$dir/r/$n-doc.yaml"
done
setsid "$AMIFORGE" build "${recipes[@]}" --jobs 3 --no-cache --output "$dir/kill" \
	>"$dir/kill.out" 2>"$dir/kill.err" &
leader=$!
pids=
deadline=$(($(date +%s) + 600))
while [ "$(date +%s)" -lt "$deadline" ]; do
	pids=$(pgrep -P "$leader" -x amiforge | tr '\n' ' ')
	n=0
	for p in $pids; do
		[ "$(domains_of "$p")" = 1 ] && n=$((n + 1))
	done
	[ "$n" = 3 ] && break
	sleep 1
done
check_eq "jobs: three builds had a guest running before the kill" "$n" 3
[ "$n" = 3 ] || {
	echo "    | builds: $pids; domains: $(virsh -q list --all --name | grep -c amiforge-)"
	tail -n 5 "$dir"/kill/jobs-*/*.log "$dir/kill.err" 2>&1 | sed 's/^/    | /'
}
kill -KILL -- -"$leader"
wait "$leader"
sleep 2
check "jobs: clean after SIGKILL succeeds" "$AMIFORGE" clean "$dir"/kill/job-*
left=0
for p in $pids; do
	left=$((left + $(domains_of "$p")))
done
check_eq "jobs: after clean, no domain of the killed builds" "$left" 0
check_eq "jobs: after clean, no staging directory" \
	"$(find "$TMPDIR" -mindepth 1 -maxdepth 1 -name 'amiforge-build-*' | wc -l)" 0
for bd in "$dir"/kill/job-*; do
	check "jobs: after clean, nothing live in $(basename "$bd")" journal_nothing_live "$bd"
done
check_eq "jobs: the killed run had three build directories" "$(ls -d "$dir"/kill/job-* | wc -l)" 3
finish
