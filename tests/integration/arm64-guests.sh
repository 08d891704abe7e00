#!/bin/bash
# suite: arm64  (make check-arm64: aarch64 guests under TCG, slow; CI runs it)
# arm64 guests end to end (issue 22), on the Debian 12 arm64 fixture
# (tests/fixtures/build-debian-arm64-image.sh: GPT, ESP with
# \EFI\BOOT\BOOTAA64.EFI, ext4 root, console=ttyAMA0, cloud-init NoCloud):
#   - `amiforge run` with EACH hypervisor driver, no --arch (the
#     architecture is read from the image): `uname -m` in the guest prints
#     aarch64; the console shows the guest booted through UEFI; nothing of
#     the guest is left (domain, qemu process, variable store);
#   - a small build (one component with one reboot, one test on a fresh
#     boot of the output): the manifest says aarch64 from the image, the
#     build's inspection says arm64 and UEFI, and the output's own
#     inspection too;
#   - publish --via ebs of the output in moto: RegisterImage gets
#     Architecture=arm64 and BootMode=uefi.
# ARM64_DRIVERS="qemu" limits the drivers (default: "libvirt qemu");
# ARM64_FIXTURE=PATH takes an image the fixture script built before.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"

FIX=$TOP/tests/fixtures/build-debian-arm64-image.sh
[ -x "$FIX" ] || { fail "arm64: the fixture script $FIX is missing (branch armfix)"; exit 1; }
require libvirt "arm64 guests"
# ARM64_FIXTURE=PATH: an image this script built already (say, by an earlier
# version of it) instead of building the current one.
img=${ARM64_FIXTURE:-$("$FIX" --print-only)}
if [ ! -s "$img" ]; then
	t0=$SECONDS
	img=$("$FIX") || { fail "arm64: fixture image could not be built"; exit 1; }
	echo "arm64: fixture built in $((SECONDS - t0)) s"
fi
check "arm64 fixture: image present" test -s "$img"
sum_before=$(sha256sum <"$img")
dir=$(scratch)
chmod 0711 "$dir"
export TMPDIR=$dir/tmp
mkdir -p "$TMPDIR"
export AMIFORGE_CACHE_DIR="$dir/cache"

# --- run, each driver ---------------------------------------------------------
for drv in ${ARM64_DRIVERS:-libvirt qemu}; do
	t0=$SECONDS
	"$AMIFORGE" run --driver "$drv" --boot-timeout 1500 --timeout 300 "$img" -- uname -m \
		>"$dir/run-$drv.out" 2>"$dir/run-$drv.err" &
	pid=$!	# its domain is amiforge-<pid>-*
	wait "$pid"
	rc=$?
	out=$(cat "$dir/run-$drv.out")
	check_eq "arm64 run ($drv): exit 0" "$rc" 0
	[ "$rc" = 0 ] || tail -n 15 "$dir/run-$drv.err" | sed 's/^/    | /'
	check_eq "arm64 run ($drv): uname -m in the guest" "$out" aarch64
	check_contains "arm64 run ($drv): the architecture read from the image" \
		"$(cat "$dir/run-$drv.err")" "guest architecture: aarch64 (from the image"
	echo "arm64 run ($drv): $((SECONDS - t0)) s"
	check_eq "arm64 run ($drv): no domain left" "$(domains_matching "amiforge-$pid-")" 0
	check_eq "arm64 run ($drv): no qemu-system-aarch64 left" \
		"$(pgrep -fc "qemu-system-aarch64 .*$TMPDIR" || true)" 0
	check_eq "arm64 run ($drv): no work directory left" "$(ls "$TMPDIR" | wc -l)" 0
done
check_eq "arm64 run: base image unchanged" "$(sha256sum <"$img")" "$sum_before"

# --- a small build --------------------------------------------------------------
mkdir -p "$dir/r"
cat >"$dir/r/step.yaml" <<'EOF'
name: arm64-step
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Mark
        action: ExecuteBash
        inputs:
          commands:
            - uname -m >/etc/amiforge-built-on
      - name: RebootOnce
        action: ExecuteBash
        inputs:
          commands:
            - |
              if [ ! -e /var/lib/arm64-rebooted ]; then
                touch /var/lib/arm64-rebooted
                exit 194
              fi
              echo "resumed after reboot"
EOF
cat >"$dir/r/test.yaml" <<'EOF'
name: arm64-test
schemaVersion: 1.0
phases:
  - name: test
    steps:
      - name: Arch
        action: ExecuteBash
        inputs:
          commands:
            - test "$(uname -m)" = aarch64
            - test "$(cat /etc/amiforge-built-on)" = aarch64
            - test -e /var/lib/arm64-rebooted
EOF
cat >"$dir/r/recipe.yaml" <<EOF
name: arm64-small
version: 1.0.0
parent: $img
components:
  - path: step.yaml
tests:
  - path: test.yaml
vm:
  cpus: 2
  memory: 1024
EOF
t0=$SECONDS
run_build "$dir/events.json" "$dir/build.err" "$dir/r/recipe.yaml" --output "$dir/builds" --json
rc=$?
check_eq "arm64 build: exit 0" "$rc" 0
[ "$rc" = 0 ] || tail -n 30 "$dir/build.err" | sed 's/^/    | /'
echo "arm64 build: $((SECONDS - t0)) s"
bd=$(ls -d "$dir"/builds/arm64-small-1.0.0-* 2>/dev/null | head -n 1)
m=$bd/manifest.json
check_eq "arm64 build: manifest architecture (from the image, UEFI)" \
	"$(jq -r '.build.architecture | "\(.name) \(.ec2) \(.boot)"' "$m" 2>&1)" "aarch64 arm64 uefi"
check_eq "arm64 build: the reboot step ran to success, the test passed" \
	"$(jq -r '[.stages[] | select(.name == "components" or .name == "tests") | .status] | join(" ")' "$m" 2>&1)" \
	"ok ok"
rep=$(jq -r '.inspect.report' "$m" 2>/dev/null)
check_eq "arm64 build: its inspection says aarch64, EC2 arm64, UEFI" \
	"$(jq -r '.facts | "\(.arch) \(.ec2_architecture) \(.ec2_boot_mode) \(.boot_modes.uefi)"' "$rep" 2>&1)" \
	"aarch64 arm64 uefi true"
check_eq "arm64 build: boot.mode passes" \
	"$(jq -r '.checks[] | select(.id == "boot.mode") | .status' "$rep" 2>&1)" pass
disk=$bd/output/arm64-small-1.0.0.qcow2
check "arm64 build: output written, standalone" qcow2_standalone "$disk"
"$AMIFORGE" inspect --json --input-format qcow2 "$disk" >"$dir/out-inspect.json" 2>/dev/null
check_eq "arm64 build: the output inspected again: arm64, UEFI" \
	"$(jq -r '.facts | "\(.ec2_architecture) \(.ec2_boot_mode)"' "$dir/out-inspect.json" 2>&1)" \
	"arm64 uefi"
check "arm64 build: nothing live in the journal" journal_nothing_live "$bd"

# --- publish --via ebs in moto ------------------------------------------------------
if have aws "arm64: publish the build"; then
	. "$TOP/tests/fixtures/aws/lib.sh"
	aws_env "$AMIFORGE_TEST_MOTO_URL"
	moto=$AMIFORGE_TEST_MOTO_URL
	curl -sf -X POST "$moto/moto-api/recorder/reset-recording" >/dev/null
	curl -sf -X POST "$moto/moto-api/recorder/start-recording" >/dev/null
	"$AMIFORGE" publish "$disk" --via ebs --name "arm64-small-$$" --json >"$dir/pub.json" \
		2>"$dir/pub.err"
	rc=$?
	curl -sf "$moto/moto-api/recorder/download-recording" >"$dir/recording"
	curl -sf -X POST "$moto/moto-api/recorder/stop-recording" >/dev/null
	curl -sf -X POST "$moto/moto-api/recorder/reset-recording" >/dev/null
	check_eq "arm64 publish --via ebs: exit 0" "$rc" 0
	[ "$rc" = 0 ] || tail -n 5 "$dir/pub.err" | sed 's/^/    | /'
	reg=$(python3 "$AWSFX/recording.py" "$dir/recording" params RegisterImage)
	check_eq "arm64 publish: RegisterImage Architecture=arm64, BootMode=uefi" \
		"$(grep -cxE 'Architecture=arm64|BootMode=uefi' <<<"$reg")" 2
fi
finish
