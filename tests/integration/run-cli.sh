#!/bin/bash
# `amiforge run` without booting anything: usage errors, the seed ISO it
# writes, and images it must refuse before a guest starts (nothing left behind).
. "$(dirname "$0")/../lib/common.sh"

scratch >/dev/null	# not $(scratch): its EXIT trap would fire in the subshell
dir=$_scratch
export TMPDIR=$dir/tmp
mkdir -p "$TMPDIR"

expect_fail() {	# NAME STATUS NEEDLE ARGS...
	local name=$1 want=$2 needle=$3 out rc
	shift 3
	out=$("$AMIFORGE" run "$@" 2>&1)
	rc=$?
	check_eq "$name: exit status" "$rc" "$want"
	check_contains "$name: message" "$out" "$needle"
}

expect_fail "run: bad --accel" 2 "invalid accelerator 'hvf'" img --accel hvf -- true
expect_fail "run: bad --driver" 2 "--driver 'vbox'" img --driver vbox -- true
expect_fail "run: no command" 2 "no COMMAND given" img
expect_fail "run: --cpus out of range" 2 "--cpus" img --cpus 0 -- true
expect_fail "run: --batch with a command" 2 "exclude each other" img --batch x -- true
expect_fail "run: missing image" 125 "image '$dir/nope.qcow2'" "$dir/nope.qcow2" \
	--driver qemu -- true

# A qcow2 whose header names a backing file (think: a "raw" upload carrying a
# qcow2 header pointing at a host file, CVE-2010-3851) is refused.
qemu-img create -q -f raw "$dir/secret.raw" 1M
qemu-img create -q -f qcow2 -F raw -b "$dir/secret.raw" "$dir/evil.img"
expect_fail "run: image with a backing file refused" 125 "a qcow2 with a backing file" \
	"$dir/evil.img" --driver qemu -- true
printf 'not an image at all' >"$dir/junk.bin"
truncate -s 1M "$dir/junk.bin"
qemu-img convert -O vmdk "$dir/junk.bin" "$dir/disk.vmdk"
expect_fail "run: vmdk base refused with a hint" 125 "format 'vmdk' is not supported" \
	"$dir/disk.vmdk" --driver qemu -- true
check_eq "run: refused images leave no work directory" "$(ls -A "$TMPDIR")" ""

# The seed ISO: label cidata, fresh instance-id in meta-data, agent inside.
id=$("$AMIFORGE" run --write-seed "$dir/seed.iso")
check_eq "seed: --write-seed exit status" "$?" 0
check_eq "seed: volume label is cidata" "$(blkid -s LABEL -o value "$dir/seed.iso")" cidata
check_contains "seed: meta-data has the printed instance-id" \
	"$(bsdtar -xOf "$dir/seed.iso" meta-data)" "instance-id: $id"
id2=$("$AMIFORGE" run --write-seed "$dir/seed2.iso")
check "seed: instance-id is fresh each time" test -n "$id" -a "$id" != "$id2"
bsdtar -xOf "$dir/seed.iso" amiforge-agent >"$dir/agent"
check "seed: carries the static agent built with this amiforge" cmp -s "$dir/agent" "$TOP/amiforge-agent"
check_contains "seed: user-data starts the agent in bootcmd" \
	"$(bsdtar -xOf "$dir/seed.iso" user-data)" "bootcmd:"
finish
