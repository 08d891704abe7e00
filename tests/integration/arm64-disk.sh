#!/bin/bash
# arm64 (issue 22) without an arm64 guest — the parts make check can afford:
#   - the aarch64 agent: an AArch64 static ELF, embedded (the seed an
#     --arch arm64 run writes carries exactly it), and it speaks the
#     protocol: run under qemu-user (qemu-aarch64-static), `amiforge attach`
#     runs commands through it (streams, exit status);
#   - libvirt accepts amiforge's aarch64 domain XML (the golden file test-hv
#     compares the generator's output with) and turns it into a
#     qemu-system-aarch64 command line with AAVMF and no x86 device;
#   - an arm64 disk (tests/fixtures/build-arm64-root-disk.sh: GPT, ESP with
#     BOOTAA64.EFI, a generic-type root holding Debian's arm64 busybox):
#     the inspector says aarch64/arm64, UEFI only, boot.mode passes; the
#     same disk with only BOOTX64.EFI on its ESP fails boot.mode; the SBOM
#     carries the architecture;
#   - publish --via ebs of that disk in moto, no --arch given: RegisterImage
#     gets Architecture=arm64 and BootMode=uefi (moto's request recorder:
#     moto 5.2.1's RegisterImage keeps only the name and description, so
#     DescribeImages cannot say it), and the AMI is available.
. "$(dirname "$0")/../lib/common.sh"

dir=$(scratch)

# --- the aarch64 agent ---------------------------------------------------
agent=$TOP/amiforge-agent-aarch64
check "agent aarch64: built (make builds it with aarch64-linux-gnu-gcc)" test -s "$agent"
hdr=$(od -An -tx1 -N20 "$agent" 2>/dev/null | tr -d ' \n')
check_eq "agent aarch64: a 64-bit little-endian ELF for AArch64 (e_machine 0xb7)" \
	"${hdr:0:12}:${hdr:36:4}" "7f454c460201:b700"
check_eq "agent aarch64: statically linked (no PT_INTERP)" \
	"$(readelf -lW "$agent" 2>&1 | grep -c 'Requesting program interpreter')" 0
"$AMIFORGE" run --arch arm64 --write-seed "$dir/seed.iso" >/dev/null
check_eq "seed --arch arm64: written" "$?" 0
bsdtar -xOf "$dir/seed.iso" amiforge-agent >"$dir/agent" 2>/dev/null
check "seed --arch arm64: carries the aarch64 agent amiforge embeds" cmp -s "$dir/agent" "$agent"
"$AMIFORGE" run --write-seed "$dir/seed-x86.iso" >/dev/null
bsdtar -xOf "$dir/seed-x86.iso" amiforge-agent >"$dir/agent-x86" 2>/dev/null
check "seed without --arch: the x86_64 agent" cmp -s "$dir/agent-x86" "$TOP/amiforge-agent"
out=$("$AMIFORGE" run --arch sparc --write-seed "$dir/s.iso" 2>&1)
check_eq "run --arch sparc: exit 2" "$?" 2
check_contains "run --arch sparc: names the architectures" "$out" "aarch64 (arm64)"

QU=$(command -v qemu-aarch64-static || true)
if [ -z "$QU" ]; then
	fail "agent aarch64 under qemu-user: missing prerequisite qemu-aarch64-static (qemu-user-static; make deps)"
else
	out=$("$QU" "$agent" --version 2>&1)
	check_eq "agent aarch64 under qemu-user: --version" "$?:$out" "0:amiforge-agent protocol 1..2"
	# The protocol: the aarch64 agent serves `amiforge attach` on a socket.
	mkdir -p "$dir/fake"
	"$QU" "$agent" --socket "$dir/fake/a.sock" 2>"$dir/fake/agent.err" &
	apid=$!
	cat >"$dir/fake/guest.json" <<EOF
{"name": "fake-arm64", "driver": "libvirt", "agent_socket": "$dir/fake/a.sock",
 "console_log": "/nonexistent", "dir": "$dir/fake", "pid": 0}
EOF
	for ((i = 0; i < 100; i++)); do [ -S "$dir/fake/a.sock" ] && break; sleep 0.1; done
	out=$(timeout 60 "$AMIFORGE" attach "$dir/fake" -- sh -c 'echo out; echo err >&2; exit 3' \
		2>"$dir/fake/err")
	check_eq "agent aarch64 under qemu-user: attach runs a command (exit status)" "$?" 3
	check_eq "agent aarch64 under qemu-user: stdout streamed" "$out" "out"
	check_eq "agent aarch64 under qemu-user: stderr streamed" "$(cat "$dir/fake/err")" "err"
	kill "$apid" 2>/dev/null
	wait "$apid" 2>/dev/null
fi

# --- libvirt takes the aarch64 domain ----------------------------------------
if have libvirt "arm64: libvirt domain XML"; then
	sed "s#/var/tmp/amiforge-run-X#$dir/run#g" "$TOP/tests/unit/golden/hv-aarch64-tcg.xml" \
		>"$dir/dom.xml"
	argv=$(timeout 120 virsh -c qemu:///system domxml-to-native qemu-argv "$dir/dom.xml" 2>&1)
	check_eq "libvirt: domxml-to-native accepts the aarch64 domain" "$?" 0
	check_contains "libvirt: ... runs qemu-system-aarch64" "$argv" "/qemu-system-aarch64 "
	check_contains "libvirt: ... on the virt machine" "$argv" "-machine virt"
	check_contains "libvirt: ... with -cpu max under TCG" "$argv" "-accel tcg -cpu max"
	check_contains "libvirt: ... AAVMF code read-only" "$argv" \
		'"filename":"/usr/share/AAVMF/AAVMF_CODE.fd"'
	check_contains "libvirt: ... the guest's own variable store" "$argv" "$dir/run/efivars.fd"
	check_contains "libvirt: ... the seed as a SCSI cdrom" "$argv" '"driver":"scsi-cd"'
	check_contains "libvirt: ... the agent port" "$argv" "org.amiforge.agent.0"
	check_eq "libvirt: ... no IDE, ISA serial, VGA or PS/2 device" \
		"$(grep -ciE 'ide-cd|isa-serial|VGA|i8042|piix' <<<"$argv")" 0
fi

# --- an arm64 disk: inspect, SBOM, publish ------------------------------------
require guestfs "arm64: disk"
disk=$("$TOP/tests/fixtures/build-arm64-root-disk.sh") || { fail "arm64: fixture disk"; exit 1; }
disk_x64=$("$TOP/tests/fixtures/build-arm64-root-disk.sh" --variant x64-esp) ||
	{ fail "arm64: fixture disk (x64 ESP)"; exit 1; }
# facts KEY... < report JSON; status ID < report JSON
facts() { python3 -c 'import json,sys
f=json.load(sys.stdin)["facts"]
print(" ".join(json.dumps(f.get(k)) for k in sys.argv[1:]))' "$@"; }
status() { python3 -c 'import json,sys
for c in json.load(sys.stdin)["checks"]:
    if c["id"] == sys.argv[1]: print(c["status"], c["reason"])' "$1"; }

"$AMIFORGE" inspect --json --input-format qcow2 "$disk" >"$dir/i1.json" 2>"$dir/i1.err"
check_eq "inspect arm64: exit 1 (no kernel on this disk: os.kernels fails)" "$?" 1
check_eq "inspect arm64: arch aarch64, EC2 arm64, boot mode uefi, UEFI only" \
	"$(facts arch ec2_architecture ec2_boot_mode boot_modes <"$dir/i1.json")" \
	'"aarch64" "arm64" "uefi" {"bios": false, "uefi": true}'
st=$(status boot.mode <"$dir/i1.json")
check_eq "inspect arm64: boot.mode passes" "${st%% *}" pass
check_contains "inspect arm64: ... through EFI/BOOT/BOOTAA64.EFI" "$st" "BOOTAA64.EFI"
check_contains "inspect arm64: ... and says BIOS does not exist for it" "$st" "aarch64 boots UEFI only"
check_eq "inspect arm64: os.detected passes, naming aarch64" \
	"$(status os.detected <"$dir/i1.json" | grep -c '^pass .*aarch64')" 1

"$AMIFORGE" inspect --json --input-format qcow2 "$disk_x64" >"$dir/i2.json" 2>"$dir/i2.err"
check_eq "inspect arm64, ESP with BOOTX64.EFI only: exit 1" "$?" 1
st=$(status boot.mode <"$dir/i2.json")
check_eq "inspect arm64, BOOTX64.EFI only: boot.mode fails" "${st%% *}" fail
check_contains "inspect arm64, BOOTX64.EFI only: ... wants BOOTAA64.EFI" "$st" "no EFI/BOOT/BOOTAA64.EFI"
check_eq "inspect arm64, BOOTX64.EFI only: the ESP's loaders listed" \
	"$(facts esp_loaders <"$dir/i2.json")" '["EFI/BOOT/BOOTX64.EFI"]'

"$AMIFORGE" sbom --input-format qcow2 "$disk" -o "$dir/sbom.json" 2>"$dir/sbom.err"
check_eq "sbom arm64: exit 0" "$?" 0
check_eq "sbom arm64: architecture properties (aarch64, EC2 arm64)" \
	"$(jq -r '[.properties[] | select(.name == "amiforge:architecture" or .name == "amiforge:ec2-architecture") | .value] | join(" ")' \
		<(jq '.metadata' "$dir/sbom.json") 2>&1)" \
	"aarch64 arm64"
check_eq "sbom arm64: the arm64 package" \
	"$(jq -r '[.components[] | select(.name == "busybox-static") | .purl] | length' "$dir/sbom.json" 2>&1)" 1
check_contains "sbom arm64: its purl says arm64" "$(jq -r '.components[0].purl' "$dir/sbom.json")" "arch=arm64"

# publish --via ebs in moto: the architecture comes from the disk.
require aws "arm64: publish"
. "$TOP/tests/fixtures/aws/lib.sh"
aws_env "$AMIFORGE_TEST_MOTO_URL"
moto=$AMIFORGE_TEST_MOTO_URL
id=$$
cp "$disk" "$dir/arm64.qcow2"
curl -sf -X POST "$moto/moto-api/recorder/reset-recording" >/dev/null
curl -sf -X POST "$moto/moto-api/recorder/start-recording" >/dev/null
"$AMIFORGE" publish "$dir/arm64.qcow2" --via ebs --name "arm64-$id" --json \
	>"$dir/pub.json" 2>"$dir/pub.err"
rc=$?
curl -sf "$moto/moto-api/recorder/download-recording" >"$dir/recording"
curl -sf -X POST "$moto/moto-api/recorder/stop-recording" >/dev/null
curl -sf -X POST "$moto/moto-api/recorder/reset-recording" >/dev/null
check_eq "publish arm64 --via ebs: exit 0" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$dir/pub.err" | sed 's/^/    | /'
check_contains "publish arm64: says where the architecture came from" "$(cat "$dir/pub.err")" \
	"architecture arm64 (the disk: its binaries)"
reg=$(python3 "$AWSFX/recording.py" "$dir/recording" params RegisterImage)
check_eq "publish arm64: RegisterImage sent Architecture=arm64" \
	"$(grep -cxF "Architecture=arm64" <<<"$reg")" 1
check_eq "publish arm64: RegisterImage sent BootMode=uefi" "$(grep -cxF "BootMode=uefi" <<<"$reg")" 1
ami=$(jq -r .ami_id "$dir/pub.json" 2>/dev/null)
check_eq "publish arm64: the AMI is available" \
	"$(py 'print(ec2.describe_images(ImageIds=[sys.argv[1]])["Images"][0]["State"])' "$ami" 2>&1)" \
	available
finish
