#!/bin/bash
# suite: arm64  (make check-arm64; needs no arm64 image, only the firmware)
# An aarch64 guest as each hypervisor driver starts it, up to its UEFI
# firmware (AAVMF under TCG): tests/fixtures/build-arm64-root-disk.sh's disk
# (architecture read from its binaries, no --arch) has no real loader, so the
# boot ends in the UEFI shell and `amiforge run` gives up at --boot-timeout
# with exit 125. What that proves about the machine amiforge made: the
# firmware ran from pflash and printed on the serial console amiforge logs
# (the PL011), it saw the virtio boot disk (its GPT partition) and, under
# the direct driver, the NoCloud seed as a SCSI cdrom; afterwards nothing is
# left: no domain, no QEMU, no variable store, only the console log the
# error names.
. "$(dirname "$0")/../lib/common.sh"

require guestfs "arm64 firmware"
disk=$("$TOP/tests/fixtures/build-arm64-root-disk.sh") || { fail "arm64 firmware: fixture disk"; exit 1; }
dir=$(scratch)
chmod 0711 "$dir"
cp "$disk" "$dir/arm64.qcow2"
chmod 0644 "$dir/arm64.qcow2"
export TMPDIR=$dir/tmp
mkdir -p "$TMPDIR"
chmod 0755 "$TMPDIR"

for drv in ${ARM64_DRIVERS:-libvirt qemu}; do
	[ "$drv" = libvirt ] && ! have libvirt "arm64 firmware (libvirt)" && continue
	t0=$SECONDS
	"$AMIFORGE" run --driver "$drv" --no-net --boot-timeout 60 "$dir/arm64.qcow2" -- true \
		>"$dir/$drv.out" 2>"$dir/$drv.err" &
	pid=$!	# its domain is amiforge-<pid>-*
	wait "$pid"
	rc=$?
	echo "arm64 firmware ($drv): $((SECONDS - t0)) s"
	check_eq "arm64 firmware ($drv): no agent, exit 125" "$rc" 125
	err=$(cat "$dir/$drv.err")
	check_contains "arm64 firmware ($drv): the architecture read from the disk" "$err" \
		"guest architecture: aarch64 (from the image: its binaries)"
	log=$(sed -n 's/.*console log \([^:]*\): .*/\1/p' "$dir/$drv.err" | head -n 1)
	check "arm64 firmware ($drv): the console log is kept and named" test -s "$log"
	con=$(tr -d '\000' <"$log" 2>/dev/null)
	check_contains "arm64 firmware ($drv): AAVMF ran (UEFI firmware banner)" "$con" "UEFI firmware"
	check_contains "arm64 firmware ($drv): it saw the virtio disk's GPT" "$con" "HD(1,GPT,"
	check_contains "arm64 firmware ($drv): and ended in its shell" "$con" "UEFI Interactive Shell"
	[ "$drv" = qemu ] && check_contains "arm64 firmware (qemu): the seed is a SCSI cdrom" "$con" \
		"UEFI QEMU QEMU CD-ROM"
	check_eq "arm64 firmware ($drv): only the console log is left in the work directory" \
		"$(ls "$(dirname "$log")" 2>&1)" console.log
	check_eq "arm64 firmware ($drv): no qemu-system-aarch64 left" \
		"$(pgrep -fc "qemu-system-aarch64.*$TMPDIR" || true)" 0
	if [ "$drv" = libvirt ]; then
		. "$TOP/tests/lib/build.sh"
		check_eq "arm64 firmware (libvirt): no domain left" "$(domains_matching "amiforge-$pid-")" 0
	fi
	rm -rf "$(dirname "$log")"
done
finish
