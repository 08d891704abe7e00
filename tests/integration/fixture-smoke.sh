#!/bin/bash
# The Debian fixture image boots under QEMU/TCG with a NoCloud seed and
# cloud-init reports the seed's instance-id. Plain QEMU and a seed made with
# bsdtar on purpose: this checks the fixture, not amiforge.
. "$(dirname "$0")/../lib/common.sh"

img=$(fixture_image) || { fail "fixture: build-debian-image.sh failed"; exit 1; }
check "fixture: image built and cached" test -s "$img"
check "fixture: qcow2 with a few GiB virtual size" \
	bash -c "qemu-img info -f qcow2 --output=json '$img' | grep -q '\"virtual-size\": 4294967296'"

dir=$(scratch)
iid="smoke-$RANDOM$RANDOM"
mkdir -p "$dir/seed"
printf 'instance-id: %s\nlocal-hostname: smoke\n' "$iid" >"$dir/seed/meta-data"
cat >"$dir/seed/user-data" <<'UD'
#cloud-config
runcmd:
  - [ sh, -c, 'echo "SMOKE-IID $(cloud-init query instance_id) SMOKE-DS $(cloud-init query platform)" > /dev/ttyS0; poweroff' ]
UD
(cd "$dir/seed" && bsdtar --format iso9660 --options volume-id=cidata,rockridge \
	-cf "$dir/seed.iso" meta-data user-data)
qemu-img create -q -f qcow2 -F qcow2 -b "$img" "$dir/overlay.qcow2"
sum_before=$(sha256sum <"$img")

timeout 400 qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nodefaults -display none \
	-serial "file:$dir/console.log" -no-reboot \
	-drive "file=$dir/overlay.qcow2,format=qcow2,if=virtio" \
	-drive "file=$dir/seed.iso,format=raw,if=virtio,readonly=on"
rc=$?
check_eq "fixture: guest powered itself off (no timeout)" "$rc" 0
check "fixture: kernel booted with console=ttyS0" grep -aq 'console=ttyS0' "$dir/console.log"
check "fixture: cloud-init used the NoCloud seed" grep -aq 'SMOKE-DS nocloud' "$dir/console.log"
check "fixture: cloud-init reports the seed's instance-id" grep -aq "SMOKE-IID $iid" "$dir/console.log"
check_eq "fixture: base image unchanged by the boot" "$(sha256sum <"$img")" "$sum_before"
finish
