#!/bin/bash
# suite: guests  (make check-guests: the slower scripts, run by CI after make check)
# amiforge inspect on the Debian fixture and on purpose-broken copies of it.
# Broken copies are qcow2 copies of the fixture, all edited in one
# guestfish session (one appliance launch); each inspect run checks several
# aspects at once, since an appliance costs ~15-60 s under TCG.
. "$(dirname "$0")/../lib/common.sh"

require guestfs inspect
F=$(fixture_image) || { fail "inspect: fixture image"; exit 1; }
scratch >/dev/null
S=$_scratch
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}

# status ID < json: the status of one check in an inspect --json report.
status() {
	python3 -c 'import json,sys
r=json.load(sys.stdin)
print(next((c["status"]+" "+c["evidence"] for c in r["checks"] if c["id"]==sys.argv[1]), "absent"))' "$1"
}

# 1. The fixture passes.
out=$("$AMIFORGE" inspect --json --input-format qcow2 "$F" 2>"$S/base.err"); rc=$?
base=$out
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

# 2. Broken copies.
# Copies, not overlays: a disk with a backing file is refused (admit.h).
for n in b1 b2 b3; do
	cp --reflink=auto "$F" "$S/$n.qcow2" && chmod 0644 "$S/$n.qcow2"
done
# b4: a blank disk made here: GPT, an ESP and an LVM physical volume
# whose logical volume holds a minimal root (fstab, os-release, ls): the
# partition table and types as blkid reads them, and the root found on LVM.
qemu-img create -q -f qcow2 "$S/b4.qcow2" 512M
qemu-img resize -q "$S/b2.qcow2" +64M
qemu-img resize -q "$S/b3.qcow2" +64M
size=$(qemu-img info --output=json -f qcow2 "$S/b2.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
end=$((size / 512 - 1))
start=$((4 * 1024 * 1024 * 1024 / 512))
KV=$(echo "$base" | python3 -c 'import json,sys; print(json.load(sys.stdin)["facts"]["kernel_version"])')
KCONF=/boot/config-$KV
mkdir -p "$S/k"
# b1: a kernel whose NVMe driver is a module missing from the initramfs
# (the fixture's has it built in: make the config and module lists say
# "module"), fstab by device name, a leftover host key.
echo "CANARY-amiforge-7f3a9c" >"$S/k/canary"
# b2: an ESP without the fallback loader; b3: an ESP with it, and a canary.
# The default entry's kernel, one way per copy (each copy's inspect run
# checks it beside the rest): b1 boots the kernel renamed /boot/bzImage (no
# version in the name: read from its x86 setup header); b2 names /vmlinuz,
# an absolute symlink to /boot/vmlinuz, a relative one (through "..") to
# the kernel, and /initrd.img, a relative symlink; b3 names /vmlinuz,
# dangling, and an /initrd.img whose ".."s climb past the root (they stay
# in the guest).
guestfish --rw -a "$S/b1.qcow2" -a "$S/b2.qcow2" -a "$S/b3.qcow2" -a "$S/b4.qcow2" \
	>"$S/gf.log" 2>&1 <<EOF
set-smp 2
run
mount /dev/sda1 /
download /usr/bin/ls $S/k/ls
download /usr/lib/os-release $S/k/os-release
download $KCONF $S/k/config
download /lib/modules/$KV/modules.builtin $S/k/modules.builtin
download /lib/modules/$KV/modules.dep $S/k/modules.dep
! sed -i 's/^CONFIG_BLK_DEV_NVME=y/CONFIG_BLK_DEV_NVME=m/' $S/k/config
! grep -v '/nvme/host/nvme.ko\$' $S/k/modules.builtin >$S/k/modules.builtin.new
! echo "kernel/drivers/nvme/host/nvme.ko: kernel/drivers/nvme/host/nvme-core.ko" >>$S/k/modules.dep
write /etc/fstab "/dev/sda1 / ext4 defaults 0 1\n"
download /boot/extlinux/extlinux.conf $S/k/ext.conf
! sed 's#^ *LINUX .*#  LINUX /boot/bzImage#' $S/k/ext.conf >$S/k/ext-b1.conf
! sed -e 's#^ *LINUX .*#  LINUX /vmlinuz#' -e 's#^ *INITRD .*#  INITRD /initrd.img#' $S/k/ext.conf >$S/k/ext-b23.conf
mv /boot/vmlinuz-$KV /boot/bzImage
upload $S/k/ext-b1.conf /boot/extlinux/extlinux.conf
upload $S/k/config $KCONF
upload $S/k/modules.builtin.new /lib/modules/$KV/modules.builtin
upload $S/k/modules.dep /lib/modules/$KV/modules.dep
write /etc/ssh/ssh_host_ed25519_key "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n"
write /etc/cloud/cloud-init.disabled "amiforge: cloud-init held off while booting a build checkpoint\n"
umount-all
part-add /dev/sdb p $start $end
part-set-mbr-id /dev/sdb 2 0xef
mkfs vfat /dev/sdb2
mount /dev/sdb2 /
mkdir-p /EFI/debian
write /EFI/debian/grubx64.efi "stub"
umount-all
mount /dev/sdb1 /
ln-sf /boot/vmlinuz /vmlinuz
ln-sf ../boot/vmlinuz-$KV /boot/vmlinuz
ln-sf boot/initrd.img-$KV /initrd.img
upload $S/k/ext-b23.conf /boot/extlinux/extlinux.conf
write /etc/cloud/cloud-init.disabled "disabled by the image's maker\n"
umount-all
part-add /dev/sdc p $start $end
part-set-mbr-id /dev/sdc 2 0xef
mkfs vfat /dev/sdc2
mount /dev/sdc2 /
mkdir-p /EFI/BOOT
write /EFI/BOOT/BOOTX64.EFI "stub"
umount-all
mount /dev/sdc1 /
upload $S/k/canary /var/lib/amiforge-canary
ln-sf /boot/vmlinuz-0.0.0-gone /vmlinuz
ln-sf ../../../../../boot/initrd.img-$KV /initrd.img
upload $S/k/ext-b23.conf /boot/extlinux/extlinux.conf
umount-all
part-init /dev/sdd gpt
part-add /dev/sdd p 2048 133119
part-add /dev/sdd p 133120 -34
part-set-gpt-type /dev/sdd 1 C12A7328-F81F-11D2-BA4B-00A0C93EC93B
part-set-gpt-type /dev/sdd 2 E6D6D379-F507-44C2-A23C-238F2A3DF928
mkfs vfat /dev/sdd1
pvcreate /dev/sdd2
vgcreate afvg /dev/sdd2
lvcreate-free root afvg 100
mkfs ext4 /dev/afvg/root
mount /dev/afvg/root /
mkdir-p /etc
mkdir-p /usr/bin
write /etc/fstab "/dev/mapper/afvg-root / ext4 defaults 0 1\n"
upload $S/k/os-release /etc/os-release
upload $S/k/ls /usr/bin/ls
umount-all
EOF
check "inspect: broken copies made with guestfish" test $? -eq 0

# b1 is also checked for ImportImage (one appliance less): it wants GRUB,
# the fixture boots with extlinux.
out=$("$AMIFORGE" inspect --json --for import-image --input-format qcow2 "$S/b1.qcow2" 2>/dev/null); rc=$?
check_eq "inspect: broken b1 exits 1" "$rc" 1
check_eq "inspect: import-image bootloader (extlinux)" "$(echo "$out" | status import-image.bootloader | cut -d' ' -f1)" fail
check_eq "inspect: import-image debian 12 kernel listed" "$(echo "$out" | status import-image.os | cut -d' ' -f1)" pass
st=$(echo "$out" | status fstab.device-names)
check_eq "inspect: fstab with /dev/sda1 fails" "$st" "fail /etc/fstab:1"
st=$(echo "$out" | status kernel.nvme)
check_eq "inspect: initramfs without nvme fails" "${st%% *}" fail
check_contains "inspect: nvme failure names the initramfs" "$st" "/boot/initrd.img-"
st=$(echo "$out" | status clean.ssh-host-keys)
check_eq "inspect: leftover host key fails" "$st" "fail /etc/ssh/ssh_host_ed25519_key"
check_eq "inspect: cloud-init held off by amiforge (a checkpoint's file) fails clean.amiforge" \
	"$(echo "$out" | status clean.amiforge)" "fail /etc/cloud/cloud-init.disabled"
check_eq "inspect: b1 ena still passes" "$(echo "$out" | status kernel.ena | cut -d' ' -f1)" pass
# fact NAME... < json: the named facts, space-separated.
fact() {
	python3 -c 'import json,sys
f=json.load(sys.stdin)["facts"]
print(" ".join(str(f.get(k)) for k in sys.argv[1:]))' "$@"
}
check_eq "inspect: renamed kernel's version from its bzImage header" \
	"$(echo "$out" | fact default_kernel default_kernel_file kernel_version kernel_version_source)" \
	"/boot/bzImage /boot/bzImage $KV bzImage header"
check_eq "inspect: renamed kernel passes boot.default-kernel" "$(echo "$out" | status boot.default-kernel | cut -d' ' -f1)" pass
check_eq "inspect: renamed kernel counts as installed" "$(echo "$out" | status os.kernels)" "pass /boot/bzImage"

out=$("$AMIFORGE" inspect --json --boot-mode uefi --input-format qcow2 "$S/b2.qcow2" 2>/dev/null); rc=$?
check_eq "inspect: ESP without fallback loader exits 1" "$rc" 1
st=$(echo "$out" | status boot.mode)
check_eq "inspect: ESP without BOOTX64.EFI fails uefi" "$st" "fail /dev/sda2"
check_eq "inspect: cloud-init disabled by the image itself is not amiforge's" \
	"$(echo "$out" | status clean.amiforge | cut -d' ' -f1)" pass
check_eq "inspect: b2 fails only boot.mode and cloud-init.ec2 (the image disables cloud-init)" \
	"$(echo "$out" | python3 -c 'import json,sys; print(sorted(c["id"] for c in json.load(sys.stdin)["checks"] if c["status"] == "fail"))')" \
	"['boot.mode', 'cloud-init.ec2']"
check_eq "inspect: /vmlinuz through absolute and relative symlinks" \
	"$(echo "$out" | fact default_kernel default_kernel_file kernel_version kernel_version_source)" \
	"/vmlinuz /boot/vmlinuz-$KV $KV file name"
check_eq "inspect: /initrd.img through a relative symlink" "$(echo "$out" | fact initrd initrd_file)" \
	"/initrd.img /boot/initrd.img-$KV"
for id in boot.default-kernel kernel.nvme kernel.ena kernel.initramfs os.kernels; do
	check_eq "inspect: b2 (symlinked kernel) $id" "$(echo "$out" | status $id | cut -d' ' -f1)" pass
done

# The table form of b3; the canary search reads every file.
"$AMIFORGE" inspect --boot-mode uefi --canary CANARY-amiforge-7f3a9c \
	--input-format qcow2 "$S/b3.qcow2" >"$S/b3.txt" 2>/dev/null; rc=$?
check_eq "inspect: canary run exits 1" "$rc" 1
check_contains "inspect: ESP with BOOTX64.EFI passes uefi" "$(grep -E '^pass +boot.mode' "$S/b3.txt")" "UEFI: yes"
check_contains "inspect: canary found" "$(grep -E '^fail +clean.canary' "$S/b3.txt")" "var/lib/amiforge-canary"
check_contains "inspect: dangling /vmlinuz fails boot.default-kernel" \
	"$(grep -E '^fail +boot.default-kernel' "$S/b3.txt")" \
	"/vmlinuz cannot be reached: dangling symlink: /vmlinuz -> /boot/vmlinuz-0.0.0-gone"
check_contains "inspect: unknown kernel version warns kernel.drivers" \
	"$(grep -E '^warn +kernel.drivers' "$S/b3.txt")" "version is unknown"

# b4: GPT and LVM, read from blkid's answers (the partition table, each
# partition's type GUID) and LVM's (the root's logical volume).
out=$("$AMIFORGE" inspect --json --input-format qcow2 "$S/b4.qcow2" 2>/dev/null)
check_eq "inspect: b4 (GPT, root on LVM): table, partitions, LVM, root, arch" \
	"$(echo "$out" | python3 -c 'import json,sys
f=json.load(sys.stdin)["facts"]
print(f["partition_table"], [(p["device"], p["type"], p.get("fs"), p["esp"]) for p in f["partitions"]],
      f["lvm"], f.get("root"), f.get("root_fs"), f.get("arch"))')" \
	"gpt [('/dev/sda1', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'vfat', True), ('/dev/sda2', 'E6D6D379-F507-44C2-A23C-238F2A3DF928', 'LVM2_member', False)] True /dev/afvg/root ext4 x86_64"
check_eq "inspect: b4 root on LVM detected" "$(echo "$out" | status os.detected | cut -d' ' -f1)" pass
check_eq "inspect: b4 partition table" "$(echo "$out" | status disk.partition-table)" "pass /dev/sda"

# 3. A raw disk whose bytes are a qcow2 header pointing at the fixture:
# named raw, it is read as raw (no OS on it), never followed.
qemu-img create -q -f qcow2 -F qcow2 -b "$F" "$S/evil.raw"
out=$("$AMIFORGE" inspect --json --input-format raw "$S/evil.raw" 2>/dev/null); rc=$?
check_eq "inspect: qcow2-header raw disk exits 1" "$rc" 1
check_eq "inspect: qcow2-header raw disk read as raw" "$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')" raw
check_eq "inspect: qcow2-header raw disk has no OS" "$(echo "$out" | status os.detected)" "fail "
# Probed, its backing file is refused rather than followed.
err=$("$AMIFORGE" inspect "$S/evil.raw" 2>&1 >/dev/null); rc=$?
check_eq "inspect: probed image with backing file refused" "$rc" 1
check_contains "inspect: refusal names the backing file" "$err" "backing file"

# 4. Interrupted while the appliance starts: nothing is left (its QEMU, the
# overlay, libguestfs's temporary directory in $TMPDIR and its socket
# directory, which libguestfs puts in /tmp for root whatever $TMPDIR says).
mkdir -p "$S/int-tmp"
socks_before=$(ls -d /tmp/libguestfs?????? 2>/dev/null)
TMPDIR=$S/int-tmp "$AMIFORGE" inspect --input-format qcow2 "$F" >/dev/null 2>"$S/int.err" &
ipid=$!
for _ in $(seq 600); do
	grep -q "starting the libguestfs appliance" "$S/int.err" && break
	sleep 0.1
done
sleep 3
kill -INT "$ipid"
wait "$ipid"; rc=$?
check_eq "inspect: interrupted: exit status 130" "$rc" 130
check_eq "inspect: interrupted: nothing left in its TMPDIR" "$(ls -A "$S/int-tmp")" ""
check_eq "inspect: interrupted: no socket directory left in /tmp" \
	"$(comm -13 <(echo "$socks_before") <(ls -d /tmp/libguestfs?????? 2>/dev/null))" ""
# libguestfs's recovery process stops QEMU once amiforge is gone (it looks
# every second or two).
for _ in $(seq 50); do pgrep -f "$S/int-tmp" >/dev/null || break; sleep 0.2; done
check_eq "inspect: interrupted: its appliance is gone" "$(pgrep -f "$S/int-tmp" | wc -l)" 0

# 5. Usage errors exit 2.
"$AMIFORGE" inspect >/dev/null 2>&1; check_eq "inspect: no disk is a usage error" "$?" 2
"$AMIFORGE" inspect --for nowhere "$F" >/dev/null 2>&1; check_eq "inspect: bad --for is a usage error" "$?" 2
"$AMIFORGE" inspect --boot-mode pxe "$F" >/dev/null 2>&1; check_eq "inspect: bad --boot-mode is a usage error" "$?" 2
finish
