#!/bin/bash
# suite: scale  (make check-scale: scale-out in real guests; CI runs it when it fits, see .ci/run)
# A build on a "remote" libvirt host: qemu+ssh://root@localhost:PORT/system
# through an sshd this test starts (tests/lib/sshd.sh). libvirt's URI has a
# host, so amiforge assumes no shared filesystem (issue 21): the overlay, its
# backing chain (the agent layer; the base once, as a volume shared by later
# guests) and the seed are uploaded as volumes of the "amiforge" pool, the
# agent channel and the console come through the connection, the disk is
# downloaded back and flattened here. Its checkpoints are taken there: each
# frozen layer comes back to the local cache (its header naming the local
# chain). A rebuild with the last step changed boots from one: its layers
# go up once as shared volumes, and the next rebuild finds every one of them
# in the pool. Then a build fails a step with
# --on-error=abort: its guest is kept on the "remote" host, `amiforge attach`
# reaches its agent through the connection (no local socket is left), and
# `amiforge clean` destroys it and deletes its volumes. First, a guest whose
# connection dies (its ssh killed) is still released, and so is one whose
# `run` gets Ctrl-C.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"
. "$(dirname "$0")/../lib/sshd.sh"

build_test_setup remote-libvirt
export TMPDIR=$dir/tmp	# the runs' work directories: checked below
mkdir -p "$TMPDIR"
chmod 711 "$dir" "$TMPDIR"
[ -x /usr/sbin/sshd ] || { fail "remote-libvirt: missing prerequisite: /usr/sbin/sshd (make deps installs openssh-server)"; exit 1; }
sshd_start "$dir/ssh" || { fail "remote-libvirt: start sshd"; exit 1; }
uri="qemu+ssh://root@localhost:$SSH_PORT/system"
check "remote: virsh reaches libvirt through the test's sshd" virsh -c "$uri" uri
# The fixture's shared base volume there (libvirt-remote.h: one per content,
# kept as a cache): none at first, so the first build uploads it.
base_vol() { echo "amiforge-base-$(sha256sum "$1" | cut -c1-32)"; }	# FILE
drop_base() {	# FILE: its shared volume and marker, if there
	local v
	for v in "$(base_vol "$1")-ok" "$(base_vol "$1")"; do
		virsh -c qemu:///system vol-delete --pool amiforge "$v" >/dev/null 2>&1
	done
}
basevol=$(base_vol "$base")
drop_base "$base"
# Shared layers (the agent layer, checkpoints') of earlier runs: none.
drop_layers() {
	local v
	for v in $(virsh -c qemu:///system vol-list amiforge 2>/dev/null |
		   awk 'NR > 2 && $1 ~ /^amiforge-layer-/ { print $1 }'); do
		virsh -c qemu:///system vol-delete --pool amiforge "$v" >/dev/null 2>&1
	done
}
drop_layers

cat >"$dir/r/mark.yaml" <<'DOC'
name: remote-mark
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Mark
        action: ExecuteBash
        inputs:
          commands:
            - echo remote-build-ok > /var/lib/remote-mark
      - name: Maybe-fail
        action: ExecuteBash
        inputs:
          commands:
            - test ! -e /var/lib/remote-fail || exit 3
DOC
write_recipe() {	# NAME plain|fail
	cat >"$dir/r/$1.yaml" <<YAML
name: $1
version: 1.0.0
parent: $base
components:
  - path: mark.yaml
vm: {cpus: 2, memory: 1024, accel: tcg, connect: "$uri"}
YAML
	if [ "$2" = fail ]; then
		sed -i "s|test ! -e /var/lib/remote-fail[a-z0-9]*|false|" "$dir/r/mark.yaml"
	fi
}
write_recipe remote plain
check "remote: the recipe with vm.connect $uri validates" "$AMIFORGE" validate "$dir/r/remote.yaml"

# 0. The connection dies under a running guest (its ssh killed): amiforge
# connects again and releases the domain and its volumes. A blank disk
# (SeaBIOS finds nothing to boot and idles): seconds of CPU, no OS.
qemu-img create -q -f raw "$dir/blank.raw" 16M
drop_base "$dir/blank.raw"	# the bottom of its guests' chain: shared too
blank_run() {	# TAG: `run` on the blank disk there, in the background (pid: $pid), until its domain runs
	"$AMIFORGE" run "$dir/blank.raw" --connect "$uri" --accel tcg --cpus 1 --memory 256 \
		--no-net --boot-timeout 120 -- true >"$dir/out$1" 2>"$dir/err$1" &
	pid=$!
	for ((i = 0; i < ${2:-60}; i++)); do
		[ "$(domains_of $pid)" = 1 ] && break
		sleep 1
	done
	check_eq "remote: a guest on a blank disk runs there ($1)" "$(domains_of $pid)" 1
}
blank_run 0
sleep 2
kill -9 $(pgrep -P $pid -x ssh) 2>/dev/null
wait $pid
check "remote: the closed connection is said once, with the URI" \
	grep -q "the connection to $uri closed" "$dir/err0"
check "remote: amiforge connected again to release the guest" \
	grep -q "connecting again to release domain 'amiforge-$pid-" "$dir/err0"
check_eq "remote: no volume left after the connection died" "$(volumes_matching "amiforge-$pid-")" 0
check_eq "remote: no domain left after the connection died" "$(domains_of $pid)" 0

# 0b. Ctrl-C of a remote `run` (no build journal): the signal watcher
# destroys the domain and deletes its volumes from the driver's record.
blank_run 0b
kill -INT $pid
wait $pid
rc=$?
check_eq "remote: Ctrl-C: the run exits 130" "$rc" 130
check_eq "remote: Ctrl-C: no volume left" "$(volumes_matching "amiforge-$pid-")" 0
check_eq "remote: Ctrl-C: no domain left" "$(domains_of $pid)" 0

# 0c. A shared base whose upload died (no marker, not growing): after a
# minute the guest gives up on it, says which volume to delete, and uploads
# its own copy.
drop_base "$dir/blank.raw"
virsh -c qemu:///system vol-create-as amiforge "$(base_vol "$dir/blank.raw")" 1M >/dev/null
blank_run 0c 150
kill -INT $pid
wait $pid
check "remote: a dead shared upload is named, with how to delete it" \
	grep -q "shared volume '$(base_vol "$dir/blank.raw")' is incomplete and has not grown for 60 s.*virsh vol-delete" "$dir/err0c"
check "remote: ... and the guest's own copy went up instead" \
	grep -q "libvirt: uploaded .*/blank.raw to .*/amiforge-$pid-[0-9a-f]*-vda-b1 " "$dir/err0c"
check_eq "remote: ... and none of its volumes stay" "$(volumes_matching "amiforge-$pid-")" 0
drop_base "$dir/blank.raw"
# What the failed runs keep here: their console logs (named on stderr), nothing else.
kept=$(cd "$TMPDIR" && { find . -mindepth 1 -maxdepth 1 ! -name 'amiforge-run-*'
	find . -mindepth 2 ! -name console.log; } | head -n 3 | tr '\n' ' ')
check_eq "remote: the failed runs kept their console logs and nothing else" "$kept" ""
rm -rf "$TMPDIR"/amiforge-run-*

# 1. The build, with a look at the live domain while its components run.
"$AMIFORGE" build "$dir/r/remote.yaml" --output "$dir/b1" --no-inspect --json \
	>"$dir/ev1" 2>"$dir/err1" &
pid=$!
xml=
if wait_event "$dir/ev1" $pid components; then
	dom=$(virsh -c qemu:///system list --name | grep "^amiforge-$pid-" | head -n 1)
	[ -n "$dom" ] && xml=$(virsh -c qemu:///system dumpxml "$dom")
fi
wait $pid
rc=$?
check_eq "remote: build through $uri succeeds" "$rc" 0
[ "$rc" = 0 ] || tail -n 20 "$dir/err1" | sed 's/^/    | /'
# overlay -> agent layer -> base (#16: the agent layer is above the base),
# and the seed: the overlay and the seed are the guest's volumes, the base
# and the agent layer shared.
check_eq "remote: overlay and seed uploaded into the pool as the guest's" \
	"$(grep -c "libvirt: uploaded .* to /var/lib/libvirt/images/amiforge/amiforge-$pid-" "$dir/err1")" 2
check "remote: the base uploaded once as a shared volume named by its SHA-256" \
	grep -q "libvirt: uploaded .* to /var/lib/libvirt/images/amiforge/$basevol, shared" "$dir/err1"
agentvol=$(sed -n "s|^libvirt: uploaded .*/checkpoints/layers/agent-[0-9a-f]*\.qcow2 to /var/lib/libvirt/images/amiforge/\(amiforge-layer-[0-9a-f]*\), shared .*|\1|p" "$dir/err1")
check "remote: the agent layer (from the cache) went up as a shared layer volume" \
	test -n "$agentvol"
check_eq "remote: a shared layer is root's, readable by QEMU's group only" \
	"$(stat -c '%a %U %G' "/var/lib/libvirt/images/amiforge/$agentvol" 2>&1)" "640 root libvirt-qemu"
# Checkpoints there: each frozen layer came back to the cache, then the top.
nck=$(grep -c '"event":"checkpoint".*"status":"saved"' "$dir/ev1")
check "remote: checkpoints were saved from the remote guest ($nck)" test "$nck" -ge 1
check "remote: the first frozen layer (the uploaded overlay) came back to the cache" \
	grep -q "libvirt: downloaded amiforge-$pid-[0-9a-f]*-vda to .*/checkpoints/layers/" "$dir/err1"
check "remote: the guest's last top (a volume made there) came back" \
	grep -q "libvirt: downloaded amiforge-$pid-[0-9a-f]*-vda\.t[0-9]* to " "$dir/err1"
check "remote: the live domain's disks are the pool's volumes" python3 -c "
import sys, xml.etree.ElementTree as ET
d = ET.fromstring(sys.argv[1])
srcs = [s.get('file') for s in d.findall('./devices/disk/source')]
# the backing chain as libvirt runs it: every layer a volume of the pool
srcs += [s.get('file') for s in d.findall('./devices/disk//backingStore/source')]
# (a checkpoint's snapshot may have put a vda.tN top above the overlay)
srcs = [s for s in srcs if '-vda.t' not in s]
ok = len(srcs) == 4 and sum(s.startswith('/var/lib/libvirt/images/amiforge/amiforge-$pid-') for s in srcs) == 2 \
     and srcs[-1] == '/var/lib/libvirt/images/amiforge/$basevol' \
     and srcs[-2] == '/var/lib/libvirt/images/amiforge/$agentvol'
# the shared base and layer are not relabelled (other guests use them)
for v in ('$basevol', '$agentvol'):
    ok = ok and d.find('./devices/disk//backingStore/source[@file=\"/var/lib/libvirt/images/amiforge/%s\"]/seclabel[@relabel=\"no\"]' % v) is not None
ch = d.find('./devices/channel/target[@name=\"org.amiforge.agent.0\"]/..')
# libvirt placed the channel's socket itself (under its own directory), and
# the console is a pty read through the connection: nothing in our TMPDIR.
ok = ok and ch is not None and ch.get('type') == 'unix' and \
     ch.find('source').get('path', '').startswith('/var/lib/libvirt/qemu/')
ok = ok and d.find('./devices/serial').get('type') == 'pty'
sys.exit(0 if ok else 1)" "${xml:-<none/>}"
bd1=$(ls -d "$dir"/b1/remote-1.0.0-* 2>/dev/null | head -n 1)
check "remote: the console log came through the connection (kernel messages)" \
	grep -q "Linux version" "$bd1/console.log"
disk="$bd1/output/remote-1.0.0.qcow2"
check "remote: output is standalone" qcow2_standalone "$disk"
if have guestfs "remote: output has the component's file"; then
	check_eq "remote: output has the component's file (downloaded disk)" \
		"$(guestfish --ro --format=qcow2 -a "$disk" -i cat /var/lib/remote-mark 2>&1)" remote-build-ok
fi
check_eq "remote: no volume of the build left in the pool" "$(volumes_matching "amiforge-$pid-")" 0
check_eq "remote: the shared base and its marker stay for the next guest" \
	"$(volumes_matching "$basevol")" 2
check_eq "remote: no domain of the build left" "$(domains_of $pid)" 0
check "remote: nothing live in the journal" journal_nothing_live "$bd1"

# 1b. The last step changed: the rebuild boots from a checkpoint made there,
# whose layers go up once, shared. 1c: another change, and the pool has
# them all: nothing but the new overlay and the seed goes up.
rebuild() {	# TAG WORD: the Maybe-fail step's command changed to mention WORD
	sed -i "s|test ! -e /var/lib/remote-fail[a-z0-9]* |test ! -e /var/lib/remote-fail$2 |" "$dir/r/mark.yaml"
	"$AMIFORGE" build "$dir/r/remote.yaml" --output "$dir/b$1" --no-inspect --json \
		>"$dir/ev$1" 2>"$dir/err$1" &
	pid=$!
	wait $pid
	rc=$?
	check_eq "remote: rebuild $1 (last step changed) succeeds" "$rc" 0
	[ "$rc" = 0 ] || tail -n 20 "$dir/err$1" | sed 's/^/    | /'
	check "remote: rebuild $1 booted from a checkpoint" grep -q "^reusing checkpoint " "$dir/err$1"
	bd=$(ls -d "$dir"/b$1/remote-1.0.0-* 2>/dev/null | head -n 1)
	if have guestfs "remote: rebuild $1's output"; then
		check_eq "remote: rebuild $1's output has the first step's file" \
			"$(guestfish --ro --format=qcow2 -a "$bd/output/remote-1.0.0.qcow2" -i cat /var/lib/remote-mark 2>&1)" remote-build-ok
	fi
	check_eq "remote: rebuild $1: no volume of the build left" "$(volumes_matching "amiforge-$pid-")" 0
	check_eq "remote: rebuild $1: no domain left" "$(domains_of $pid)" 0
}
rebuild 1b x
check "remote: rebuild 1b: the checkpoint's layers went up as shared volumes" \
	grep -q "libvirt: uploaded .*/checkpoints/layers/[0-9a-f]*-[0-9]*\.qcow2 to /var/lib/libvirt/images/amiforge/amiforge-layer-[0-9a-f]*, shared" "$dir/err1b"
rebuild 1c y
check_eq "remote: rebuild 1c: only its overlay and seed went up" \
	"$(grep -c "libvirt: uploaded " "$dir/err1c")" 2
check "remote: rebuild 1c: the checkpoint's layers were in the pool already" \
	grep -q "libvirt: .*/checkpoints/layers/[0-9a-f]*-[0-9]*\.qcow2 is in the pool already as /var/lib/libvirt/images/amiforge/amiforge-layer-" "$dir/err1c"

# 2. A failed step with --on-error=abort: the guest stays, attach, clean.
write_recipe remote fail
"$AMIFORGE" build "$dir/r/remote.yaml" --output "$dir/b2" --no-inspect --on-error=abort \
	>"$dir/out2" 2>"$dir/err2"
rc=$?
check_eq "remote: a failed step with --on-error=abort exits 1" "$rc" 1
bd2=$(ls -d "$dir"/b2/remote-1.0.0-* 2>/dev/null | head -n 1)
name=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["name"])' "$bd2/guest.json")
pid=$(cut -d- -f2 <<<"$name")
check_eq "remote: the kept guest's overlay and seed stay in the pool" \
	"$(volumes_matching "$name-\(vda\|seed\)\$")" 2
check "remote: the second build found the base in the pool (no upload)" \
	grep -q "libvirt: .* is in the pool already as /var/lib/libvirt/images/amiforge/$basevol" "$dir/err2" ||
	grep "libvirt:" "$dir/err2" | sed 's/^/    | /'
check_eq "remote: the kept guest is running" "$(domains_of "$pid")" 1
check "remote: the guest record names the remote URI" \
	grep -q "\"uri\": \"qemu+ssh://root@localhost:$SSH_PORT/system\"" "$bd2/guest.json"
got=$("$AMIFORGE" attach "$bd2" -- cat /var/lib/remote-mark 2>"$dir/err-attach")
check_eq "remote: attach reaches the kept guest's agent through the connection" "$got" remote-build-ok
[ "$got" = remote-build-ok ] || sed 's/^/    | /' "$dir/err-attach"
# A decoy: another domain's volume whose name starts with this one's. And a
# top a checkpoint's snapshot would have made (vda.tN): the guest's, it goes.
virsh -c qemu:///system vol-create-as amiforge "${name}0-vda" 1M >/dev/null
virsh -c qemu:///system vol-create-as amiforge "${name}-vda.t9" 1M >/dev/null
check "remote: clean destroys the kept guest" "$AMIFORGE" clean "$bd2"
check_eq "remote: after clean, no volume of the kept guest (a vda.tN top included)" \
	"$(volumes_matching "$name-")" 0
check_eq "remote: clean left another domain's volume alone (exact names)" \
	"$(volumes_matching "${name}0-vda")" 1
virsh -c qemu:///system vol-delete --pool amiforge "${name}0-vda" >/dev/null
check_eq "remote: after clean, no domain of the kept guest" "$(domains_of "$pid")" 0
check "remote: after clean, nothing live in the journal" journal_nothing_live "$bd2"
check_eq "remote: clean left the shared base (a cache, not the guest's)" \
	"$(volumes_matching "$basevol")" 2
drop_base "$base"
drop_base "$dir/blank.raw"
drop_layers
check_eq "remote: the test's shared bases dropped" \
	"$(volumes_matching "$basevol")$(volumes_matching "$(base_vol "$dir/blank.raw")")" 00
finish
