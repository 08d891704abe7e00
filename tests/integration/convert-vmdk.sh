#!/bin/bash
# amiforge's own streamOptimized VMDK writer (builder/convert/vmdk.c) on the
# disks that catch writers out: holes across grain-table boundaries, a disk
# ending in the middle of a grain, a disk with no data at all, a grain that
# does not compress, and an interrupted conversion (the fixture, a qcow2
# with compressed clusters, is converted and walked in convert.sh). Each
# output is read back three ways: qemu-img compare (content), qemu-img
# check, and tests/lib/vmdk_check.py (the stream layout, independently of
# qemu). The same disks converted to raw: identical content, the exact
# size, and sparse (a hole wherever the source holds no data: at most the
# data's blocks allocated).
. "$(dirname "$0")/../lib/common.sh"
S=$(scratch)

vmdk_ok() {	# NAME INPUT FORMAT WANT_GRAINS
	local name=$1 in=$2 fmt=$3 want=$4 out=$S/$1.vmdk summary
	if ! "$AMIFORGE" -q convert "$in" --input-format "$fmt" --format vmdk -o "$out" \
		>/dev/null 2>"$S/$name.err"; then
		fail "vmdk $name: convert failed: $(tail -n 1 "$S/$name.err")"
		return
	fi
	check "vmdk $name: identical content (qemu-img compare)" \
		qemu-img compare -q -f "$fmt" -F vmdk "$in" "$out"
	check "vmdk $name: qemu-img check" qemu-img check -q -f vmdk "$out"
	summary=$(python3 "$TOP/tests/lib/vmdk_check.py" "$out")
	check_eq "vmdk $name: stream layout, grains written" \
		"$(echo "$summary" | sed -n 's/.* grains=\([0-9]*\) .*/\1/p')" "$want"
	check_contains "vmdk $name: capacity is the input's size" "$summary" \
		"capacity=$(( ($(qemu-img info --output=json -f "$fmt" "$in" |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])') + 511) / 512 * 512 ))"
	check_eq "vmdk $name: what VM Import looks for in the first 64 KiB" \
		"$(head -c 65536 "$out" | python3 -c 'import sys; d=sys.stdin.buffer.read(); print(d[:4] == b"KDMV" and b"streamOptimized" in d)')" True
}

raw_ok() {	# NAME INPUT FORMAT MAX_ALLOCATED_BYTES
	local name=$1 in=$2 fmt=$3 max=$4 out=$S/$1.out.raw alloc
	if ! "$AMIFORGE" -q convert "$in" --input-format "$fmt" --format raw -o "$out" \
		>/dev/null 2>"$S/$name.raw.err"; then
		fail "raw $name: convert failed: $(tail -n 1 "$S/$name.raw.err")"
		return
	fi
	check "raw $name: identical content (qemu-img compare)" \
		qemu-img compare -q -f "$fmt" -F raw "$in" "$out"
	check_eq "raw $name: size is the input's virtual size" "$(stat -c %s "$out")" \
		"$(qemu-img info --output=json -f "$fmt" "$in" | jq '.["virtual-size"]')"
	alloc=$(( $(stat -c %b "$out") * 512 ))
	check "raw $name: sparse ($alloc bytes allocated, at most $max)" test "$alloc" -le "$max"
	rm -f "$out"
}

# Holes: data in grain 0, at 40 MiB (the second grain table: 32 MiB each),
# at 100 MiB + 4 KiB (a grain partly written), and in the last grain; a
# grain of zeros written explicitly is a hole too.
d=$S/holes.raw
truncate -s 200M "$d"
head -c 65536 /dev/urandom | dd of="$d" bs=64K seek=0 conv=notrunc status=none
head -c 131072 /dev/urandom | dd of="$d" bs=1M seek=40 conv=notrunc status=none
head -c 4096 /dev/urandom | dd of="$d" bs=4096 seek=$((100 * 256 + 1)) conv=notrunc status=none
dd if=/dev/zero of="$d" bs=64K seek=1000 count=1 conv=notrunc status=none
printf 'the end' | dd of="$d" bs=1 seek=$((200 * 1048576 - 7)) conv=notrunc status=none
vmdk_ok holes "$d" raw 5
raw_ok holes "$d" raw $((512 * 1024))
check "vmdk holes: far smaller than the disk" test "$(stat -c %s "$S/holes.vmdk")" -lt $((1024 * 1024))

# A disk whose size is not a whole number of grains (1 MiB + 3 sectors),
# with data in its last sector.
d=$S/odd.raw
truncate -s $((1048576 + 1536)) "$d"
printf 'last sector' | dd of="$d" bs=512 seek=$((2048 + 2)) conv=notrunc status=none
vmdk_ok odd-size "$d" raw 1
raw_ok odd-size "$d" raw $((64 * 1024))

# No data at all: header, descriptor, an empty grain directory, the footer.
d=$S/empty.qcow2
qemu-img create -q -f qcow2 "$d" 3G
vmdk_ok empty "$d" qcow2 0
raw_ok empty "$d" qcow2 0
check "vmdk empty: a few sectors only" test "$(stat -c %s "$S/empty.vmdk")" -lt $((80 * 1024))

# A long sparse stretch, then a dense one: the block reader maps sparse
# stretches in ever longer windows (builder/disk/blockread.c); the first
# long window over the dense 640 MiB (4 KiB of data every 8 KiB: ~19 MiB of
# qemu-img map JSON) is over the capture limit and falls back to short
# ones. (Raw only: the VMDK writer reads through the same reader.)
d=$S/sparse-dense.raw
truncate -s 18G "$d"
python3 - "$d" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for i in range(0, 640 << 20, 8192):
    os.pwrite(fd, i.to_bytes(8, "little") * 512, (16 << 30) + i)
os.pwrite(fd, b"end", (18 << 30) - 3)
PY
# (81,921 extents: the file system's extent tree takes a few blocks more.)
raw_ok sparse-dense "$d" raw $(((320 << 20) + (4 << 20)))
rm -f "$d"

# On a terminal, progress is redrawn in place (carriage returns: bytes, rate,
# ETA), ending with a newline at 100%.
python3 - "$AMIFORGE" "$S/holes.raw" "$S/tty.vmdk" >"$S/tty.out" <<'PY'
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "convert", sys.argv[2], "--input-format", "raw",
                           "--format", "vmdk", "-o", sys.argv[3]])
out = b""
while True:
    try:
        b = os.read(fd, 4096)
    except OSError:
        break
    if not b:
        break
    out += b
_, st = os.waitpid(pid, 0)
sys.stdout.write(repr(out.decode("utf-8", "replace")) + "\n" + str(os.waitstatus_to_exitcode(st)) + "\n")
PY
check_eq "vmdk on a terminal: exit status" "$(tail -n 1 "$S/tty.out")" 0
check "vmdk on a terminal: progress redrawn in place, bytes, rate and ETA" \
	grep -Eq '\\rvmdk: 200 of 200 MiB \(100%\), [0-9.]+ MiB/s, ETA 0:00\\r?\\n' "$S/tty.out"
rm -f "$S/tty.vmdk"

# A grain that does not compress (random bytes) still inflates whole.
d=$S/random.raw
head -c 262144 /dev/urandom >"$d"
vmdk_ok incompressible "$d" raw 4

# The checker itself fails on a broken stream (a corrupt grain, a missing
# footer), so the layout checks above can fail.
cp "$S/holes.vmdk" "$S/broken.vmdk"
printf 'XXXX' | dd of="$S/broken.vmdk" bs=1 seek=$((128 * 512 + 12)) conv=notrunc status=none
if python3 "$TOP/tests/lib/vmdk_check.py" "$S/broken.vmdk" >/dev/null; then
	fail "vmdk_check: a corrupt grain went unnoticed"
else
	pass "vmdk_check: a corrupt grain is caught"
fi
head -c -512 "$S/holes.vmdk" >"$S/broken.vmdk"
if python3 "$TOP/tests/lib/vmdk_check.py" "$S/broken.vmdk" >/dev/null; then
	fail "vmdk_check: a missing end-of-stream marker went unnoticed"
else
	pass "vmdk_check: a missing end-of-stream marker is caught"
fi

# Interrupted: SIGTERM while it is still writing leaves neither the output
# nor a temporary file.
# Text (base64) deflates slowly enough to be caught: random bytes would be
# stored at memcpy speed (vmdk.c) and be over in a moment. Signalled once
# the process is alive and its temporary file exists.
d=$S/big.raw
truncate -s 2G "$d"
head -c $((384 * 1048576)) /dev/urandom | base64 -w 0 | dd of="$d" bs=1M conv=notrunc status=none
"$AMIFORGE" -q convert "$d" --input-format raw --format vmdk -o "$S/int.vmdk" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do
	kill -0 "$pid" 2>/dev/null || break
	ls -a "$S" | grep -q '^\.int\.vmdk\.amiforge-' && break
	sleep 0.02
done
if kill -0 "$pid" 2>/dev/null && [ ! -e "$S/int.vmdk" ]; then
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	check "vmdk interrupted: exits non-zero ($rc)" test "$rc" -ne 0
	check "vmdk interrupted: no output" test ! -e "$S/int.vmdk"
	check_eq "vmdk interrupted: no temporary file" "$(ls -a "$S" | grep -c amiforge-)" 0
else
	wait "$pid"
	fail "vmdk interrupted: the conversion was over before it could be signalled"
fi
finish
