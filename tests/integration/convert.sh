#!/bin/bash
# amiforge convert: every output format round-trips to identical content,
# the OVA opens with tar and its manifest verifies, a raw disk with a qcow2
# header is copied as raw, failures leave no file behind.
. "$(dirname "$0")/../lib/common.sh"

F=$(fixture_image) || { fail "convert: fixture image"; exit 1; }
scratch >/dev/null
S=$_scratch

for fmt in raw qcow2 vmdk vhd vhdx; do
	qfmt=$fmt
	[ "$fmt" = vhd ] && qfmt=vpc
	if "$AMIFORGE" convert "$F" --format "$fmt" -o "$S/out.$fmt" 2>"$S/$fmt.err"; then
		check_eq "convert: $fmt detected by qemu-img" \
			"$(qemu-img info --output=json "$S/out.$fmt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')" "$qfmt"
		check "convert: $fmt has identical content" \
			qemu-img compare -q -f qcow2 -F "$qfmt" "$F" "$S/out.$fmt"
	else
		fail "convert: $fmt: $(tail -n1 "$S/$fmt.err")"
	fi
	ls -a "$S" | grep -q 'amiforge-' && fail "convert: $fmt left a temporary file" || pass "convert: $fmt no temporary left"
	[ "$fmt" = vmdk ] && check_contains "convert: vmdk is streamOptimized" \
		"$(qemu-img info -f vmdk "$S/out.vmdk" 2>&1)" "streamOptimized"
	[ "$fmt" = vmdk ] && check "convert: vmdk stream layout walks (tests/lib/vmdk_check.py)" \
		python3 "$TOP/tests/lib/vmdk_check.py" "$S/out.vmdk"
	[ "$fmt" = raw ] || rm -f "$S/out.$fmt"
done
# raw is sparse: far fewer blocks than its size.
blocks=$(( $(stat -c %b "$S/out.raw") * 512 ))
size=$(stat -c %s "$S/out.raw")
check "convert: raw is sparse ($blocks of $size bytes allocated)" test "$blocks" -lt "$((size / 2))"
check "convert: raw has a hole wherever the source holds no data (tests/lib/holes_check.py)" \
	python3 "$TOP/tests/lib/holes_check.py" "$F" qcow2 "$S/out.raw"
# VHD fixed with --verify, from a raw input named raw: the first 256 MiB of
# the raw output above (a fixed VHD is written in full: 4 GiB would cost
# a minute of I/O for nothing more).
dd if="$S/out.raw" of="$S/in.raw" bs=1M count=256 conv=sparse status=none
rm -f "$S/out.raw"
check "convert: vhd fixed --verify" "$AMIFORGE" convert "$S/in.raw" --input-format raw --format vhd --vhd-type fixed --verify -o "$S/f.vhd"
check_contains "convert: vhd fixed subformat" "$(qemu-img info -f vpc "$S/f.vhd" 2>&1)" "virtual size: 256 MiB"
check "convert: vhd fixed has identical content" qemu-img compare -q -f raw -F vpc "$S/in.raw" "$S/f.vhd"
rm -f "$S/f.vhd" "$S/in.raw"

# OVA: descriptor first, then the disk, then the manifest; manifest verifies.
if "$AMIFORGE" convert "$F" --format ova --verify -o "$S/img.ova" 2>"$S/ova.err"; then
	check_eq "convert: ova member order" "$(tar tf "$S/img.ova" | tr '\n' ' ')" "img.ovf img-disk1.vmdk img.mf "
	mkdir "$S/x" && tar xf "$S/img.ova" -C "$S/x"
	check "convert: ova manifest verifies" sh -c "cd '$S/x' && sha256sum -c --quiet img.mf"
	check "convert: ova disk identical" qemu-img compare -q -f qcow2 -F vmdk "$F" "$S/x/img-disk1.vmdk"
	check "convert: ovf is well-formed XML with the disk capacity" python3 -c '
import sys, xml.etree.ElementTree as ET
ns = {"ovf": "http://schemas.dmtf.org/ovf/envelope/1"}
r = ET.parse(sys.argv[1]).getroot()
d = r.find("ovf:DiskSection/ovf:Disk", ns)
assert d.get("{%s}capacity" % ns["ovf"]) == sys.argv[2], d.attrib
assert r.find("ovf:VirtualSystem/ovf:OperatingSystemSection", ns) is not None
assert r.find("ovf:VirtualSystem/ovf:VirtualHardwareSection", ns) is not None
' "$S/x/img.ovf" "$(qemu-img info --output=json -f qcow2 "$F" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')"
	# A corrupted manifest is caught by sha256sum (the check can fail).
	# Each digest's first hex digit becomes another (0 stays 0 with s/= ./= 0/).
	sed -i 'h;s/.*= \(.\).*/\1/;y/0123456789abcdef/123456789abcdef0/;G;s/\(.\)\n\(.*= \)./\2\1/' \
		"$S/x/img.mf"
	if (cd "$S/x" && sha256sum -c --quiet img.mf >/dev/null 2>&1); then
		fail "convert: corrupted manifest not detected"
	else
		pass "convert: corrupted manifest detected"
	fi
	rm -rf "$S/x" "$S/img.ova"
else
	fail "convert: ova: $(tail -n1 "$S/ova.err")"
fi

# A raw disk whose bytes are a qcow2 header pointing at the fixture: named
# raw, it is copied byte for byte, not followed to the fixture.
qemu-img create -q -f qcow2 -F qcow2 -b "$F" "$S/evil.raw"
check "convert: qcow2-header raw converts" "$AMIFORGE" convert "$S/evil.raw" --input-format raw --format raw -o "$S/evil.out"
# qemu sizes raw images in whole 512-byte sectors: the copy is the input's
# bytes, then zeros to the next sector; never the fixture's 4 GiB.
in_size=$(stat -c %s "$S/evil.raw")
check "convert: qcow2-header raw copied byte for byte" cmp -s -n "$in_size" "$S/evil.raw" "$S/evil.out"
check_eq "convert: qcow2-header raw keeps its size (sector-rounded)" "$(stat -c %s "$S/evil.out")" "$(( (in_size + 511) / 512 * 512 ))"
check "convert: qcow2-header raw padding is zeros" sh -c "tail -c +$((in_size + 1)) '$S/evil.out' | tr -d '\\0' | wc -c | grep -qx 0"
"$AMIFORGE" convert "$S/evil.raw" --format raw -o "$S/evil2.out" 2>"$S/evil.err"
check_eq "convert: probed backing file refused" "$?" 1
check "convert: refused conversion leaves no file" test ! -e "$S/evil2.out"

# Failure and interruption leave nothing.
"$AMIFORGE" convert "$F" --format raw -o "$S/nodir/x.raw" >/dev/null 2>&1
check_eq "convert: unwritable output fails" "$?" 1
# SIGTERM while the conversion runs: sent only once amiforge is alive with its
# qemu-img child running and its temporary output present (not after a fixed
# delay: a process that already exited, for any reason, would pass).
"$AMIFORGE" convert "$F" --format vmdk -o "$S/int.vmdk" >/dev/null 2>"$S/int.err" &
pid=$!
running=
for ((i = 0; i < 600; i++)); do
	kill -0 "$pid" 2>/dev/null || break
	if pgrep -P "$pid" -x qemu-img >/dev/null && ls -a "$S" | grep -q '^\.int\.vmdk\.amiforge-'; then
		running=1
		break
	fi
	sleep 0.05
done
check "convert: signalled while converting (qemu-img child and temporary present)" test -n "$running"
kill -TERM "$pid"
check_eq "convert: SIGTERM delivered to the running amiforge" "$?" 0
wait "$pid"; rc=$?
check_eq "convert: SIGTERM exits 1" "$rc" 1
check_contains "convert: SIGTERM: says so" "$(cat "$S/int.err")" "interrupted by signal 15"
check "convert: SIGTERM leaves no output" test ! -e "$S/int.vmdk"
check_eq "convert: SIGTERM leaves no temporary" "$(ls -a "$S" | grep -c amiforge-)" 0

# Usage errors exit 2.
"$AMIFORGE" convert "$F" -o "$S/x" >/dev/null 2>&1; check_eq "convert: missing --format is a usage error" "$?" 2
"$AMIFORGE" convert "$F" --format iso -o "$S/x" >/dev/null 2>&1; check_eq "convert: unknown format is a usage error" "$?" 2
finish
