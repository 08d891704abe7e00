#!/bin/bash
# `amiforge clean`: a process that journaled a file, a directory and a child
# process is SIGKILLed; clean (default: every build under ./builds) releases
# them. A running build is skipped. With libvirt: a journaled domain is
# undefined. The journaling process is `test-journal --crash-helper`.
. "$(dirname "$0")/../lib/common.sh"

# Not S=$(scratch): its EXIT trap would fire in the subshell at once.
scratch >/dev/null
S=$_scratch
HELPER=$TOP/$BUILD/tests/test-journal
cd "$S" || exit 1

start_helper() {	# sets $bd (its build dir) and $HPID
	"$HELPER" --crash-helper >"$S/helper.out" 2>&1 &
	HPID=$!
	for _ in $(seq 100); do grep -q '^ready$' "$S/helper.out" && break; sleep 0.05; done
	bd=$(head -n1 "$S/helper.out")
}
sleeper_of() { sed -n 's/^+ [0-9]* qemu-pid \([0-9]*\) .*/\1/p' "$1/journal"; }
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

out=$("$AMIFORGE" clean)
check_contains "clean: no builds, nothing to do" "$out" "nothing to clean"

# A running build is left alone.
start_helper
check "clean: helper journaled resources" test -f "$bd/output/overlay.qcow2"
sp=$(sleeper_of "$bd")
out=$("$AMIFORGE" clean 2>&1)
check_contains "clean: running build skipped" "$out" "still running"
check "clean: running build's file kept" test -f "$bd/output/overlay.qcow2"
check "clean: running build's process kept" alive "$sp"

# SIGKILL, then clean.
kill -9 "$HPID"
wait "$HPID" 2>/dev/null
out=$("$AMIFORGE" clean --dry-run)
check_contains "clean --dry-run: lists the process" "$out" "would release qemu-pid $sp"
check "clean --dry-run: changes nothing" test -f "$bd/output/overlay.qcow2"
out=$("$AMIFORGE" clean)
check_eq "clean: exit status" "$?" 0
check_contains "clean: reports 3 released" "$out" "3 resources released"
check "clean: file removed" test ! -e "$bd/output/overlay.qcow2"
check "clean: directory removed" test ! -e "$bd/seed"
if alive "$sp"; then fail "clean: process killed: $sp still running"; kill -9 "$sp"; else pass "clean: process killed"; fi
check_eq "clean: journal records the releases" "$(grep -c '^- ' "$bd/journal")" 3
out=$("$AMIFORGE" clean)
check_contains "clean: second run has nothing to do" "$out" "nothing to clean"
out=$("$AMIFORGE" clean "$bd")
check_contains "clean BUILD_DIR: explicit dir, nothing left" "$out" "0 resources released"
"$AMIFORGE" clean "$S/nope" 2>/dev/null
check_eq "clean: missing build dir fails" "$?" 1

# A hostile journal (the build directory may come from someone else): an
# ext URI whose command would run as root, a file outside, a path through a
# symlink, another user's directory. Nothing is obeyed, clean fails.
mkdir -p "$S/outside" hostile && chmod 0700 hostile
echo canary >"$S/outside/canary"
printf '#!/bin/sh\ntouch %s/pwned\n' "$S" >"$S/pwn" && chmod +x "$S/pwn"
ln -s "$S/outside" hostile/link
printf '# amiforge journal v1\n+ 1 file %s\n+ 2 file %s/hostile/link/canary\n+ 3 domain amiforge-evil qemu+ext:///system?command=%s\n+ 4 domain web qemu:///system\n' \
	"$S/outside/canary" "$S" "$S/pwn" >hostile/journal
chmod 0600 hostile/journal
out=$("$AMIFORGE" clean hostile 2>&1)
check_eq "clean hostile: fails" "$?" 1
check_contains "clean hostile: ext URI refused" "$out" "only the qemu driver"
check_contains "clean hostile: foreign domain name refused" "$out" "not one of amiforge's"
check_contains "clean hostile: path outside refused" "$out" "outside the build directory"
check_contains "clean hostile: path through a symlink refused" "$out" "symbolic link"
check "clean hostile: no command ran" test ! -e "$S/pwned"
check "clean hostile: nothing deleted outside" test -f "$S/outside/canary"
# A pid whose start time matches but whose program is not the one journaled
# (a recycled pid, or a journal naming someone's process): left alone.
sleep 300 &
vp=$!
vst=$(awk '{sub(/.*\) /, ""); print $20}' "/proc/$vp/stat")
printf '# amiforge journal v1\n+ 1 qemu-pid %s %s /usr/bin/qemu-system-x86_64\n+ 2 pid %s %s\n' \
	"$vp" "$vst" "$vp" "$vst" >hostile/journal
out=$("$AMIFORGE" clean hostile 2>&1)
check_contains "clean hostile: a pid running another program is left alone" "$out" \
	"is not the journaled '/usr/bin/qemu-system-x86_64'"
check_contains "clean hostile: a pid entry without its executable refused" "$out" "needs 3 fields"
check "clean hostile: the process still runs" kill -0 "$vp"
kill "$vp"; wait "$vp" 2>/dev/null
chmod 0770 hostile
out=$("$AMIFORGE" clean hostile 2>&1)
check_contains "clean hostile: group-writable build directory refused" "$out" "writable by group"
chmod 0700 hostile && chmod 0660 hostile/journal
out=$("$AMIFORGE" clean hostile 2>&1)
check_contains "clean hostile: group-writable journal refused" "$out" "writable by group"
chmod 0600 hostile/journal
if [ "$(id -u)" = 0 ]; then
	chown -R 65534:65534 hostile
	out=$("$AMIFORGE" clean hostile 2>&1)
	check_contains "clean hostile: another user's build directory refused" "$out" "owned by uid 65534"
	out=$("$AMIFORGE" build --resume hostile 2>&1)
	check_contains "build --resume: another user's build directory refused" "$out" "owned by uid 65534"
	out=$("$AMIFORGE" attach hostile -- true 2>&1)
	check_contains "attach: another user's build directory refused" "$out" "owned by uid 65534"
else
	skip "clean hostile: foreign owner: needs root"
fi
rm -rf hostile

# A libvirt domain (defined, never started: no guest boots here).
if have libvirt "clean: libvirt domain"; then
	name=amiforge-clean-test-$$
	cat >"$S/dom.xml" <<XML
<domain type='qemu'><name>$name</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os></domain>
XML
	if virsh -q -c qemu:///system define "$S/dom.xml" >/dev/null; then
		uuid=$(virsh -q -c qemu:///system domuuid "$name")
		mkdir -p builds/dom-1.0.0-x
		printf '# amiforge journal v1\n+ 1 domain %s qemu:///system %s\n' "$name" "$uuid" \
			>builds/dom-1.0.0-x/journal
		out=$("$AMIFORGE" clean 2>&1)
		check_contains "clean: domain released" "$out" "released domain $name"
		if virsh -q -c qemu:///system dominfo "$name" >/dev/null 2>&1; then
			fail "clean: domain undefined: $name still defined"
			virsh -q -c qemu:///system undefine "$name" >/dev/null
		else
			pass "clean: domain undefined"
		fi
	else
		fail "clean: could not define a test domain"
	fi
fi

finish
