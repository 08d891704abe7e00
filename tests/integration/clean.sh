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
