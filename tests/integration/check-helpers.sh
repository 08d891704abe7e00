#!/bin/bash
# The test helpers that decide "nothing left" and "standalone" fail when they
# should (HACKING.md, "Writing a check that can fail"): each is run on an
# input that is broken on purpose and must say no. Seconds; no guest, no moto.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"
scratch >/dev/null
t=$_scratch

# says_no NAME CMD...: CMD must fail (its explanation goes to the log).
says_no() {
	local name=$1
	shift
	if "$@" >"$t/why" 2>&1; then
		fail "$name: '$*' succeeded"
	else
		pass "$name"
	fi
}

# qcow2_standalone
qemu-img create -q -f qcow2 "$t/base.qcow2" 64M
qemu-img create -q -f qcow2 -b "$t/base.qcow2" -F qcow2 "$t/overlay.qcow2"
check "qcow2_standalone: a plain qcow2 is standalone" qcow2_standalone "$t/base.qcow2"
says_no "qcow2_standalone: an overlay with a backing file is not" qcow2_standalone "$t/overlay.qcow2"
says_no "qcow2_standalone: a missing disk is not" qcow2_standalone "$t/nope.qcow2"
says_no "qcow2_standalone: an empty path is not" qcow2_standalone ""

# journal_nothing_live / journal_has_live / journal_dirs_gone
mkdir -p "$t/b" "$t/x"
printf '# amiforge journal v1\n' >"$t/b/journal"
check "journal_nothing_live: an empty journal" journal_nothing_live "$t/b"
says_no "journal_nothing_live: a missing build directory" journal_nothing_live "$t/missing"
says_no "journal_nothing_live: an empty path" journal_nothing_live ""
# (one process holds the lock, so that killing it releases the lock)
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(30)' "$t/b/journal" &
holder=$!
for ((i = 0; i < 50; i++)); do
	flock -n "$t/b/journal" true 2>/dev/null || break
	sleep 0.1
done
says_no "journal_nothing_live: a journal locked by a running build" journal_nothing_live "$t/b"
kill "$holder"
wait "$holder" 2>/dev/null
printf '+ 1 dir %s/x\n' "$t" >>"$t/b/journal"
says_no "journal_nothing_live: a journal with a live directory" journal_nothing_live "$t/b"
check "journal_has_live: a journal with a live directory" journal_has_live "$t/b"
says_no "journal_dirs_gone: a recorded directory still there" journal_dirs_gone "$t/b/journal"
says_no "journal_dirs_gone: a missing journal" journal_dirs_gone "$t/missing/journal"

# domains_of / domains_matching: a failing virsh is not "0 domains".
mkdir -p "$t/bin"
printf '#!/bin/sh\necho "error: failed to connect to the hypervisor" >&2\nexit 1\n' >"$t/bin/virsh"
chmod +x "$t/bin/virsh"
got=$(PATH="$t/bin:$PATH" domains_of 12345)
check "domains_of: a failing virsh gives no count" test "$got" != 0 -a -n "$got"
check_eq "domains_of: an empty pid gives no count" "$(domains_of '')" "domains_of: no build pid"

# recording.py: moto's base64-encoded form bodies are decoded.
python3 - "$t/rec" <<'PY'
import base64, json, sys
body = base64.b64encode(b"Action=CreateTags&Version=2016-11-15&ResourceId.1=ami-1").decode()
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"method": "POST", "body": body, "body_encoded": True}) + "\n")
    f.write(json.dumps({"method": "POST", "body": "Action=DescribeImages"}) + "\n")
    f.write('{"method": "POST", "bo\n')
PY
check_eq "recording.py: actions of encoded and plain bodies, unparsed lines shown" \
	"$(python3 "$TOP/tests/fixtures/aws/recording.py" "$t/rec" actions | tr '\n' ' ')" \
	"CreateTags DescribeImages ?unparsed "
check_eq "recording.py: parameters of an encoded body" \
	"$(python3 "$TOP/tests/fixtures/aws/recording.py" "$t/rec" params CreateTags | tr '\n' ' ')" \
	"Action=CreateTags ResourceId.1=ami-1 Version=2016-11-15 "
finish
