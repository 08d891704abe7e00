#!/bin/bash
# suite: guests  (make check-guests: slower guest tests, run by CI after make check)
# Boot the Debian fixture with EACH hypervisor driver (libvirt, qemu) — once
# per driver — and drive it through the agent with `amiforge run --batch`:
# agent ready, commands (exit codes, output), 64 MiB put/get with sha256 both
# ways (through the bulk data disk), a reboot from inside a command (qemu driver), poweroff. Afterwards the base image is
# unchanged and nothing is left behind: no domain, no qemu process, no socket,
# no overlay. The same boots check the fixture itself: kernel on ttyS0,
# cloud-init on the NoCloud seed with the seed's instance-id (instance data
# is there from init-local on: the agent starts later, in bootcmd).
#
# The qemu driver's run has its agent injected into the overlay
# (--agent-via inject): cloud-init still gets its seed there (the agent
# answers before cloud-init's stages then: the query waits for them).
# BOOT_AGENT_DRIVERS="qemu" limits the drivers (default: "libvirt qemu").
. "$(dirname "$0")/../lib/common.sh"

img=$(fixture_image) || { fail "boot-agent: fixture image"; exit 1; }
check "fixture: image built and cached" test -s "$img"
check "fixture: qcow2 with a few GiB virtual size" \
	bash -c "qemu-img info -U -f qcow2 --output=json '$img' | grep -q '\"virtual-size\": 4294967296'"
sum_before=$(sha256sum <"$img")
scratch >/dev/null	# not $(scratch): its EXIT trap would fire in the subshell
dir=$_scratch
export TMPDIR=$dir/tmp	# amiforge's work directories land here: easy to audit
mkdir -p "$TMPDIR"
chmod 0755 "$dir"	# qemu:///system runs QEMU as libvirt-qemu: it must reach the disks
head -c $((64 * 1024 * 1024)) /dev/urandom >"$dir/up.bin"
up_sum=$(sha256sum <"$dir/up.bin" | cut -c1-64)

# field FILE OP KEY: a member of the result line of operation OP.
field() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if str(o.get("op", o.get("event"))) == sys.argv[2]:
        v = o.get(sys.argv[3])
        print("" if v is None else v, end="")
        break
PY
}

# A reboot from inside a command, with the qemu driver only: libvirt's
# reboot (and the agent coming back) is exercised by build.sh's demo build
# (exit 194); each reboot costs a boot.
reboot_line() {	# DRIVER
	if [ "$1" = qemu ]; then
		echo '["reboot-by", "systemctl", "reboot"]'
	else
		echo '["exec", "true"]'
	fi
}

write_batch() {	# DRIVER
	local down=$dir/$1-down.bin
	cat <<BATCH
["exec", "true"]
["exec", "sh", "-c", "exit 7"]
["exec", "sh", "-c", "echo to-stdout; echo to-stderr >&2"]
["exec", "sh", "-c", ". /etc/os-release; echo \$ID \$VERSION_ID"]
["exec", "cat", "/proc/sys/kernel/random/boot_id"]
["put", "$dir/up.bin", "/root/up.bin"]
["exec", "sh", "-c", "sha256sum /root/up.bin | cut -c1-64"]
["exec", "sh", "-c", "head -c 67108864 /dev/urandom >/root/down.bin && sha256sum /root/down.bin | cut -c1-64"]
["get", "/root/down.bin", "$down"]
["exec", "sh", "-c", "echo survives > /root/marker; sync"]
$(reboot_line "$1")
["exec", "cat", "/proc/sys/kernel/random/boot_id"]
["exec", "cat", "/root/marker"]
["exec", "sh", "-c", "sha256sum /root/up.bin | cut -c1-64"]
["exec", "sh", "-c", "cloud-init status --wait >/dev/null 2>&1; cloud-init query platform; cloud-init query instance_id; cat /proc/cmdline"]
["poweroff"]
BATCH
}

run_driver() {
	local drv=$1 out=$dir/$1.jsonl err=$dir/$1.err rc b1 b2

	# The qemu driver's guest gets its agent written into the overlay
	# (--agent-via inject): it still gets the NoCloud seed, for cloud-init
	# (the checks below: the seed's instance-id, a network for the image).
	local via=seed
	[ "$drv" = qemu ] && via=inject
	write_batch "$drv" >"$dir/$drv.batch"
	"$AMIFORGE" --verbose run "$img" --driver "$drv" --agent-via "$via" --boot-timeout 900 \
		--timeout 600 --batch "$dir/$drv.batch" >"$out" 2>"$err"
	rc=$?
	check_eq "$drv: amiforge run --batch exit status" "$rc" 0
	if [ "$rc" != 0 ]; then
		sed 's/^/    | /' "$err" | tail -n 15
		sed 's/^/    > /' "$out" | tail -n 3 | cut -c1-300
	fi
	check "$drv: agent ready" grep -q '"event": *"ready"' "$out"
	check_eq "$drv: 'true' exits 0" "$(field "$out" 1 status)" 0
	check_eq "$drv: 'exit 7' exit status" "$(field "$out" 2 status)" 7
	check_eq "$drv: stdout captured" "$(field "$out" 3 stdout)" "to-stdout"
	check_eq "$drv: stderr captured" "$(field "$out" 3 stderr)" "to-stderr"
	check_eq "$drv: guest is the Debian 12 fixture" "$(field "$out" 4 stdout)" "debian 12"
	check_eq "$drv: put 64 MiB: size" "$(field "$out" 6 bytes)" 67108864
	check_eq "$drv: put 64 MiB: sha256 in the guest matches" "$(field "$out" 7 stdout)" "$up_sum"
	local guest_sum
	guest_sum=$(field "$out" 8 stdout)
	check "$drv: get 64 MiB: guest computed a sha256" test ${#guest_sum} = 64
	check_eq "$drv: get 64 MiB: sha256 on the host matches" \
		"$(sha256sum <"$dir/$drv-down.bin" 2>/dev/null | cut -c1-64)" "$guest_sum"
	# Both went through the bulk data disk, not the channel (--verbose says so).
	check_eq "$drv: put 64 MiB through the bulk disk" \
		"$(grep -c "put '/root/up.bin': 67108864 bytes through the bulk disk" "$err")" 1
	check_eq "$drv: get 64 MiB through the bulk disk" \
		"$(grep -c "get '/root/down.bin': 67108864 bytes through the bulk disk" "$err")" 1
	b1=$(field "$out" 5 stdout) b2=$(field "$out" 12 stdout)
	if [ "$drv" = qemu ]; then
		check "$drv: reboot from inside a command, agent back" \
			test -n "$(field "$out" 11 ms)" -a -z "$(field "$out" 11 error)"
		check "$drv: boot_id changed across the reboot" test -n "$b1" -a -n "$b2" -a "$b1" != "$b2"
	fi
	check_eq "$drv: overlay content persists" "$(field "$out" 13 stdout)" "survives"
	check_eq "$drv: uploaded file intact" "$(field "$out" 14 stdout)" "$up_sum"
	local ci iid
	ci=$(field "$out" 15 stdout)
	iid=$(field "$out" ready instance_id)
	check_eq "$drv: fixture: cloud-init used the NoCloud seed" "$(echo "$ci" | sed -n 1p)" nocloud
	check "$drv: fixture: cloud-init reports the seed's instance-id" \
		test -n "$iid" -a "$(echo "$ci" | sed -n 2p)" = "$iid"
	check_contains "$drv: fixture: kernel booted with console=ttyS0" "$(echo "$ci" | sed -n 3p)" "console=ttyS0"
	check_eq "$drv: poweroff through the agent is clean" "$(field "$out" 16 how)" "clean"
	# Nothing left behind.
	check_eq "$drv: no work directory left" "$(ls -A "$TMPDIR")" ""
	if [ "$drv" = libvirt ]; then
		local name
		name=$(field "$out" ready name)
		check "libvirt: guest had a domain name" test -n "$name"
		check_eq "libvirt: its domain is gone" \
			"$(virsh -c qemu:///system list --all --name | grep -cx "$name")" 0
	fi
	check_eq "$drv: no qemu process of ours left" \
		"$(pgrep -fc "qemu-system-x86_64.*$TMPDIR")" 0
	check_eq "$drv: no socket left" "$(find "$dir" -type s | wc -l)" 0
	check_eq "$drv: base image unchanged" "$(sha256sum <"$img")" "$sum_before"
}

for drv in ${BOOT_AGENT_DRIVERS:-libvirt qemu}; do
	if [ "$drv" = libvirt ] && ! have libvirt "boot-agent: libvirt driver"; then
		continue
	fi
	run_driver "$drv"
done
finish
