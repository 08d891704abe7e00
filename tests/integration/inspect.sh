#!/bin/bash
# amiforge inspect on the Debian fixture and on purpose-broken copies of it.
# Broken copies are qcow2 overlays of the fixture, all edited in one
# guestfish session (one appliance launch); each inspect run checks several
# aspects at once, since an appliance costs ~15-60 s under TCG.
. "$(dirname "$0")/../lib/common.sh"

if ! command -v guestfish >/dev/null; then
	skip "inspect: guestfish missing (make deps)"
	exit 0
fi
F=$(fixture_image) || { fail "inspect: fixture image"; exit 1; }
S=$(scratch)
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}

# status ID < json: the status of one check in an inspect --json report.
status() {
	python3 -c 'import json,sys
r=json.load(sys.stdin)
print(next((c["status"]+" "+c["evidence"] for c in r["checks"] if c["id"]==sys.argv[1]), "absent"))' "$1"
}

# 1. The fixture passes.
out=$("$AMIFORGE" inspect --json --input-format qcow2 "$F" 2>"$S/base.err"); rc=$?
check_eq "inspect: fixture exits 0" "$rc" 0
for id in os.detected disk.partition-table boot.mode boot.default-kernel boot.serial-console \
	  kernel.nvme kernel.ena fstab.device-names network.mac cloud-init.ec2 \
	  clean.ssh-host-keys clean.authorized-keys clean.machine-id clean.history \
	  clean.credentials clean.cloud-init-state; do
	st=$(echo "$out" | status "$id")
	check_eq "inspect: fixture $id" "${st%% *}" pass
done
check_eq "inspect: fixture distro" "$(echo "$out" | python3 -c 'import json,sys; f=json.load(sys.stdin)["facts"]; print(f["distro"], f["arch"], f["partition_table"], f["root_fs"])')" \
	"debian x86_64 msdos ext4"
check_contains "inspect: fixture default kernel from extlinux" \
	"$(echo "$out" | status boot.default-kernel)" "/boot/extlinux/extlinux.conf:"
# ImportImage wants GRUB: the fixture boots with extlinux.
out=$("$AMIFORGE" inspect --json --for import-image --input-format qcow2 "$F" 2>/dev/null); rc=$?
check_eq "inspect: import-image on extlinux exits 1" "$rc" 1
check_eq "inspect: import-image bootloader" "$(echo "$out" | status import-image.bootloader | cut -d' ' -f1)" fail
check_eq "inspect: import-image debian 12 kernel listed" "$(echo "$out" | status import-image.os | cut -d' ' -f1)" pass

# 2. Broken copies.
for n in b1 b2 b3; do
	qemu-img create -q -f qcow2 -F qcow2 -b "$F" "$S/$n.qcow2"
done
qemu-img resize -q "$S/b2.qcow2" +64M
qemu-img resize -q "$S/b3.qcow2" +64M
size=$(qemu-img info --output=json -f qcow2 "$S/b2.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
end=$((size / 512 - 1))
start=$((4 * 1024 * 1024 * 1024 / 512))
KCONF=$(guestfish --ro -a "$F" -i glob-expand '/boot/config-*' 2>/dev/null | head -n1)
KV=${KCONF#/boot/config-}
mkdir -p "$S/k"
guestfish --ro -a "$F" -i <<EOF
download $KCONF $S/k/config
download /lib/modules/$KV/modules.builtin $S/k/modules.builtin
download /lib/modules/$KV/modules.dep $S/k/modules.dep
