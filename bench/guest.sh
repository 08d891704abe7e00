#!/bin/bash
# Measures 1-5 and 8 (build) of issue 9: amiforge build vs Packer 1.6.6's
# qemu builder on the same Debian base image (the test fixture), same guest
# work, same accelerator (TCG here), both observed from the host by
# bench/tsrun.py (stdout lines time-stamped as they arrive, the console log
# polled for the kernel starting userspace, the tool's own peak RSS).
#
# The recipe (generated here, as is the Packer template; neither is part of
# the product), in this order on both sides:
#   First       echo BENCH-FIRST                 (measure 1)
#   C01..C50    echo BENCH-Cnn, one step each    (measure 2)
#   Floor       the guest's own floors under this accelerator (the brief:
#               where a target is below such a floor, the floor is the
#               target): 20 runs of bash on a one-line script file (what one
#               ExecuteBash step costs the guest at least), and the uptime at
#               which multi-user.target came up (the guest's own boot)
#   Blob        256 MiB of random data host → /root/blob.bin (measure 3):
#               amiforge WebDownload from a local HTTP server (the build's
#               host→guest file action: fetched on the host, then put through
#               the agent); Packer `file` provisioner (SFTP/SCP over SSH)
#   AfterBlob   echo BENCH-AFTER-BLOB
#   Check       the blob has 268435456 bytes; rm it
#   Last        echo v1 > /etc/bench-last        (changed for measure 5)
# then amiforge's built-in generalisation (cloud-init clean, host keys,
# logs, machine-id, history) — Packer runs the same commands as its last
# provisioner — shutdown, and a standalone qcow2 output (amiforge: qemu-img
# convert of the overlay chain; Packer: the same qemu-img convert as a
# shell-local post-processor, since use_backing_file turns its compaction off).
#
# Per run: amiforge full build (--no-cache), the flatten of its checkpoint
# chain against a one-layer overlay (5c), amiforge rebuild with only the
# Last step changed (checkpoints reused), the same rebuild again with the
# saved guest states removed (a boot from the deepest checkpoint's disk:
# 5b), Packer full build, Packer build with the same change (Packer has no
# reuse: a full build again).
#
#   bench/guest.sh            (BENCH_RUNS=N, BENCH_ONLY=..., BENCH_ROWS=file)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"
AMIFORGE=${AMIFORGE:-$TOP/amiforge}
TSRUN="$PY $TOP/bench/tsrun.py"
# Both tools get the same accelerator; TCG by default (this project's
# machines have no KVM that boots a stock kernel). BENCH_ACCEL=kvm elsewhere.
ACCEL=${BENCH_ACCEL:-tcg}

# Which builds the selected measures need.
need_rebuild=false
want 5 && need_rebuild=true
if ! want 1 && ! want 2 && ! want 3 && ! want 4 && ! want 5 && ! want 8; then
	exit 0
fi

img=$("$TOP/tests/fixtures/build-debian-image.sh") || {
	for m in 1 2 3 4 5 8; do want $m && row "$m" "guest measures" "n/a: no fixture image" "n/a" s ""; done
	exit 0
}
S=$(mktemp -d "${TMPDIR:-/tmp}/amiforge-bench-guest.XXXXXX")
chmod 0711 "$S"
http_pid=
cleanup() {
	[ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null
	if [ -n "${BENCH_KEEP:-}" ]; then blog "scratch kept in $S"; else rm -rf "$S"; fi
}
at_exit cleanup
mkdir -p "$S/tmp" "$S/www" "$S/cache"
chmod 0711 "$S/tmp"
BLOB_SIZE=$((256 * 1024 * 1024))
head -c $BLOB_SIZE /dev/urandom >"$S/www/blob.bin"

# The blob's HTTP server (amiforge's WebDownload fetches it on the host).
port=$(free_port)
$PY -m http.server --bind 127.0.0.1 --directory "$S/www" "$port" >/dev/null 2>&1 &
http_pid=$!
for _ in $(seq 50); do
	curl -sfI "http://127.0.0.1:$port/blob.bin" >/dev/null 2>&1 && break
	sleep 0.1
done

# ---- amiforge: recipe and component ----------------------------------------
steps() {   # the ExecuteBash/WebDownload steps of the component, $1: Last's value
	cat <<EOF
      - name: First
        action: ExecuteBash
        inputs:
          commands: ["echo BENCH-FIRST"]
EOF
	for i in $(seq -w 1 50); do
		cat <<EOF
      - name: C$i
        action: ExecuteBash
        inputs:
          commands: ["echo BENCH-C$i"]
EOF
	done
	cat <<'EOF'
      - name: Floor
        action: ExecuteBash
        inputs:
          commands:
            - printf 'true\n' > /tmp/bench-floor.sh; s=$(date +%s%N); for i in $(seq 20); do bash /tmp/bench-floor.sh; done; e=$(date +%s%N); rm -f /tmp/bench-floor.sh; echo "BENCH-FLOOR-STEP-US $(( (e - s) / 20000 ))"
            - echo "BENCH-FLOOR-BOOT-US $(systemctl show -p ActiveEnterTimestampMonotonic --value multi-user.target)"
EOF
	cat <<EOF
      - name: Blob
        action: WebDownload
        inputs:
          - source: http://127.0.0.1:$port/blob.bin
            destination: /root/blob.bin
      - name: AfterBlob
        action: ExecuteBash
        inputs:
          commands: ["echo BENCH-AFTER-BLOB"]
      - name: Check
        action: ExecuteBash
        inputs:
          commands:
            - test "\$(stat -c %s /root/blob.bin)" = $BLOB_SIZE
            - rm -f /root/blob.bin
      - name: Last
        action: ExecuteBash
        inputs:
          commands: ["echo $1 > /etc/bench-last"]
EOF
}
write_component() {
	{
		printf 'name: bench\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n'
		steps "$1"
	} >"$S/bench.yaml"
}
# pin: the Blob step fetches a URL (an "external" step); the recipe pins the
# component so checkpoints after it are reused across builds (the file is
# the same every time), as a user with a fixed download would.
cat >"$S/recipe.yaml" <<EOF
name: bench
version: 1.0.0
parent: $img
components:
  - path: bench.yaml
    pin: true
vm:
  cpus: 2
  memory: 1024
  accel: $ACCEL
output:
  formats: [qcow2]
EOF

# ---- Packer: key, NoCloud seed, template -----------------------------------
have_packer=true
command -v packer >/dev/null || have_packer=false
if $have_packer; then
	ssh-keygen -q -t ed25519 -N '' -C bench -f "$S/key" || have_packer=false
	mkdir -p "$S/seed"
	cat >"$S/seed/user-data" <<EOF
#cloud-config
disable_root: false
ssh_authorized_keys:
  - $(cat "$S/key.pub")
EOF
	printf 'instance-id: bench-packer\nlocal-hostname: bench\n' >"$S/seed/meta-data"
	# NoCloud finds the volume by its label (cidata, any case); Rock Ridge
	# keeps the file names.
	bsdtar -C "$S/seed" -cf "$S/seed.iso" --format iso9660 \
		--options 'iso9660:volume-id=CIDATA,iso9660:rockridge' user-data meta-data ||
		have_packer=false
fi
# The generalisation amiforge runs after the components (builder/build/build.c's
# generalise_script, sections cloudinit ssh logs machine-id history).
cat >"$S/generalise.sh" <<'EOF'
if command -v cloud-init >/dev/null; then cloud-init clean --logs --seed >/dev/null 2>&1 || true; fi
rm -rf /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/data /var/lib/cloud/sem
rm -f /var/log/cloud-init.log /var/log/cloud-init-output.log
rm -f /etc/ssh/ssh_host_*
for h in /root /home/*; do rm -f "$h/.ssh/authorized_keys" "$h/.ssh/authorized_keys2"; done
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete 2>/dev/null
find /var/log -type f -exec truncate -s 0 {} + 2>/dev/null
rm -rf /var/log/journal/* /var/lib/dhcp/*.leases /var/lib/dhclient/* /var/lib/NetworkManager/*.lease
: > /etc/machine-id; rm -f /var/lib/dbus/machine-id
for h in /root /home/*; do rm -f "$h/.bash_history" "$h/.zsh_history" "$h/.python_history" "$h/.lesshst" "$h/.viminfo"; done
sync
EOF

# packer_template LASTVALUE OUT: the Packer 1.6.6 JSON template.
# use_backing_file = true makes Packer run `qemu-img create -b BASE` without
# -F, which QEMU 7.2 refuses ("Backing file specified without backing
# format"); qemu_img_args.create = [-F, qcow2] supplies it, so Packer boots
# a thin overlay on the base exactly as asked (and as amiforge does).
# qemuargs: a -drive there replaces all of Packer's default -drive options,
# so the system disk (Packer's default line: virtio, cache=writeback,
# discard=ignore) is given again, then the cidata ISO; -serial writes the
# console log the bench reads.
packer_template() {
	$PY - "$1" "$2" "$img" "$S" "$BLOB_SIZE" "$ACCEL" <<'PY'
import json, sys
last, out, img, S, size, accel = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
od = f"{S}/pk-out"
def shell(*cmds):
    return {"type": "shell", "inline": list(cmds)}
prov = [shell("echo BENCH-FIRST")]
# 50 provisioners of one inline command each: Packer concatenates the inline
# commands of one provisioner into one uploaded script, so only separate
# provisioners give 50 round trips, as 50 component steps are 50.
prov += [shell(f"echo BENCH-C{i:02d}") for i in range(1, 51)]
prov.append(shell(
    "printf 'true\\n' > /tmp/bench-floor.sh; s=$(date +%s%N); for i in $(seq 20); do bash /tmp/bench-floor.sh; done; "
    "e=$(date +%s%N); rm -f /tmp/bench-floor.sh; echo \"BENCH-FLOOR-STEP-US $(( (e - s) / 20000 ))\"",
    "echo \"BENCH-FLOOR-BOOT-US $(systemctl show -p ActiveEnterTimestampMonotonic --value multi-user.target)\""))
prov.append({"type": "file", "source": f"{S}/www/blob.bin", "destination": "/root/blob.bin"})
prov.append(shell("echo BENCH-AFTER-BLOB"))
prov.append(shell(f'test "$(stat -c %s /root/blob.bin)" = {size}', "rm -f /root/blob.bin"))
prov.append(shell(f"echo {last} > /etc/bench-last"))
prov.append({"type": "shell", "script": f"{S}/generalise.sh"})
b = {
    "type": "qemu",
    "iso_url": img, "iso_checksum": "none",
    "disk_image": True, "use_backing_file": True,
    "qemu_img_args": {"create": ["-F", "qcow2"]},
    "format": "qcow2", "skip_resize_disk": True, "disk_size": "4096M",
    "accelerator": accel, "headless": True, "memory": 1024, "cpus": 2,
    "output_directory": od, "vm_name": "bench.qcow2", "boot_wait": "1s",
    "qemuargs": [
        ["-drive", f"file={od}/bench.qcow2,if=virtio,cache=writeback,discard=ignore,format=qcow2"],
        ["-drive", f"file={S}/seed.iso,media=cdrom,format=raw,readonly=on"],
        ["-serial", f"file:{S}/pk-console.log"],
    ],
    "communicator": "ssh", "ssh_username": "root", "ssh_private_key_file": f"{S}/key",
    "ssh_timeout": "30m", "ssh_handshake_attempts": 1000,
    "shutdown_command": "shutdown -P now", "shutdown_timeout": "15m",
}
# use_backing_file makes Packer skip its compaction step: its artifact is a
# thin overlay that needs the base image. amiforge's output stands alone
# (qemu-img convert of the chain), so Packer's run does the same here, as a
# shell-local post-processor (timed with the rest of its run).
pp = [{"type": "shell-local", "inline": [
    f"qemu-img convert -f qcow2 -O qcow2 {od}/bench.qcow2 {od}/bench-standalone.qcow2"]}]
json.dump({"builders": [b], "provisioners": prov, "post-processors": pp}, open(out, "w"),
          indent=1)
PY
}

# ---- runs ------------------------------------------------------------------
# metrics KIND TSV [TOE-JSON]: one observed build as
#   first minus_init cycle_ms step_ms blob total rss_mib pss_mib
# (nan where missing):
#   first       s from the tool's start to the first step's command run:
#               amiforge, the First step's endTime in its TOE log (host wall
#               clock, ms; the engine runs on the host; its command is one
#               echo, and the step's time holds the wait for the booted
#               system before it); Packer, the arrival of the first
#               command's output (BENCH-FIRST)
#   minus_init  first, minus the first sight of "Run /init" in the console
#               log (firmware, boot loader and kernel up to userspace)
#   cycle_ms    (C50 done - First done) / 50, observed on the host: what one
#               more step costs; amiforge's includes the disk checkpoint it
#               takes after every step that may change the disk
#   step_ms     amiforge only: median C01..C50 startTime→endTime (the exec
#               round trip through the agent, no checkpoint)
#   blob        s for the 256 MiB file: amiforge, the Blob step's startTime→
#               endTime (host fetch from the local HTTP server + put through
#               the agent); Packer, "Uploading ... blob.bin" to the next
#               provisioner starting
#   total       s, the whole build (nan if it failed)
#   floor_step  ms, amiforge's run only: the guest's own bash on a script
#               file (the Floor step's BENCH-FLOOR-STEP-US, in its TOE log)
#   floor_boot  s, the same: the guest's own boot from its power-on to
#               multi-user.target: the uptime at which that target came up
#               plus what came before the kernel (firmware, boot loader):
#               the host's first sight of "Run /init" minus the guest's
#               uptime on that line, minus the guest's booting event
#   first_boot  s, amiforge only: the guest booting (its --json event) to
#               the First step's end: 1a from power-on, against floor_boot
#   boot_run    s, amiforge only: the guest booting (its --json event) to
#               the first step that ran (its Success event): First in a
#               full build, Last in a rebuild (measure 5b)
metrics() {
	$PY - "$@" <<'PY'
import datetime, json, re, statistics, sys
kind, path = sys.argv[1], sys.argv[2]
toe = sys.argv[3] if len(sys.argv) > 3 else None
toelog = sys.argv[4] if len(sys.argv) > 4 else None
nan = float("nan")
floor_step = floor_boot = first_boot = booting = boot_run = nan
t = {}
init = init_up = total = rss = pss = start = nan
status = None
upload_at = blob = nan
for ln in open(path):
    f = ln.rstrip("\n").split("\t")
    if f[0] == "start":
        start = float(f[1])
    elif f[0] == "init":
        init = float(f[1])
        init_up = float(f[3]) if len(f) > 3 else nan
    elif f[0] == "exit":
        total, status = float(f[1]), int(f[2])
    elif f[0] == "rss":
        rss = int(f[1]) / 1024
    elif f[0] == "pss":
        pss = int(f[1]) / 1024
    elif f[0] == "line":
        at, text = float(f[1]), f[2]
        if kind == "amiforge":
            try:
                e = json.loads(text)
            except ValueError:
                continue
            if e.get("event") == "step" and e.get("status", "").lower() == "success":
                t.setdefault(e["name"].rsplit("/", 1)[-1], at)
            if e.get("event") == "guest" and e.get("name") == "booting" and booting != booting:
                booting = at
        else:
            m = re.search(r"qemu: BENCH-(FIRST|C50)\s*$", text)
            if m:
                t.setdefault({"FIRST": "First", "C50": "C50"}[m.group(1)], at)
            if re.search(r"qemu: Uploading .*blob\.bin", text):
                upload_at = at
            elif upload_at == upload_at and blob != blob and "qemu: Provisioning with" in text:
                blob = at - upload_at
if status != 0:
    total = nan
cycle = (t.get("C50", nan) - t.get("First", nan)) / 50 * 1000
first = t.get("First", nan)
step_ms = nan
if kind == "amiforge":
    first = nan
    boot_run = min(t.values(), default=nan) - booting
    def ts(x):
        return datetime.datetime.strptime(x, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    try:
        d = json.load(open(toe))
        steps = {s["name"]: s for doc in d["documents"] for ph in doc["phases"] for s in ph["steps"]
                 if s.get("status") == "Success"}
        first = ts(steps["First"]["endTime"]) - start
        blob = ts(steps["Blob"]["endTime"]) - ts(steps["Blob"]["startTime"])
        step_ms = statistics.median((ts(s["endTime"]) - ts(s["startTime"])) * 1000
                                    for n, s in steps.items() if re.fullmatch(r"C\d\d", n))
        first_boot = first - booting
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        text = open(toelog, errors="replace").read()
        m = re.search(r"BENCH-FLOOR-STEP-US (\d+)", text)
        floor_step = int(m.group(1)) / 1000 if m else nan
        m = re.search(r"BENCH-FLOOR-BOOT-US (\d+)", text)
        floor_boot = int(m.group(1)) / 1e6 if m else nan
    except (OSError, TypeError):
        pass
    # From the same power-on as first_boot: the guest's uptime starts with
    # its kernel, after the firmware and the boot loader (the host saw "Run
    # /init" at init, when the guest's uptime was init_up).
    floor_boot += init - init_up - booting
print(" ".join(f"{x:.3f}" for x in (first, first - init, cycle, step_ms, blob, total, rss, pss,
                                     floor_step, floor_boot, first_boot, boot_run)))
PY
}

# A build that fails (a guest lost to something outside the bench, say) is
# run once more; its failure stays in the log, and in the row as n < runs.
failed() {
	echo "$1" >>"$S/failures"
	if [ -n "${BENCH_KEEP:-}" ]; then blog "$1 failed: see $S/$1.out"
	else blog "$1 failed (BENCH_KEEP=1 keeps its log)"; fi
}

af_build() {   # NAME LASTVALUE [--no-cache]
	local name=$1
	write_component "$2"
	shift 2
	local try
	for try in 1 2; do
		blog "$name$([ "$try" = 2 ] && echo ' (again)')"
		rm -rf "$S/af-out"
		AMIFORGE_CACHE_DIR="$S/cache" TMPDIR="$S/tmp" $TSRUN "$S/$name.tsv" --rss \
			--console "$S/tmp/amiforge-build-*/guest-build/console.log" -- \
			"$AMIFORGE" build "$S/recipe.yaml" --output "$S/af-out" --json --allow-local-sources "$@" \
			>>"$S/$name.out" 2>&1 && break
		failed "$name"
	done
	# The TOE log's detailed output: step start and end times.
	local toe
	toe=$(ls -d "$S"/af-out/*/toe/TOE_* 2>/dev/null | tail -n 1)
	cp "$toe/detailedoutput.json" "$S/$name.toe.json" 2>/dev/null
	cp "$toe/console.log" "$S/$name.toe.log" 2>/dev/null
	metrics amiforge "$S/$name.tsv" "$S/$name.toe.json" "$S/$name.toe.log"
	rm -rf "$S/af-out"
}
pk_build() {   # NAME LASTVALUE
	packer_template "$2" "$S/packer.json"
	rm -f "$S/pk-console.log"
	local try
	for try in 1 2; do
		blog "$1$([ "$try" = 2 ] && echo ' (again)')"
		rm -rf "$S/pk-out" "$S/pk-console.log"
		PACKER_CACHE_DIR="$S/pk-cache" CHECKPOINT_DISABLE=1 $TSRUN "$S/$1.tsv" --rss \
			--console "$S/pk-console.log" -- packer build -force -color=false "$S/packer.json" \
			>>"$S/$1.out" 2>&1 && break
		failed "$1"
	done
	metrics packer "$S/$1.tsv"
	rm -rf "$S/pk-out"
}

# The base image's digest is computed once per cache: outside every timing.
write_component v1
AMIFORGE_CACHE_DIR="$S/cache" "$AMIFORGE" cache fetch "$S/recipe.yaml" >/dev/null 2>&1 ||
	blog "cache fetch failed (the first build will digest the base)"

# af_flatten: measure 5c, on the full build just made. Its generalised
# checkpoint's chain (the base, the agent layer, the checkpoint layers left
# after merging, the generalised top: what the build's flatten stage reads)
# against a one-layer overlay of the same content (the top copied, then
# rebased onto the base, which copies in what the layers between hold):
# the flatten's own command (qemu-img convert -f qcow2 -O qcow2) on each,
# in turn. Prints "chain one" in s (nan where it failed).
af_flatten() {
	local top base fmt chain tc=nan to=nan
	read -r top base < <($PY - "$S/cache/checkpoints" <<'PY'
import glob, json, os, sys
recs = []
for f in glob.glob(os.path.join(sys.argv[1], "*.json")):
    try:
        r = json.load(open(f))
    except ValueError:
        continue
    if r.get("step") == "(generalised)":
        recs.append((r.get("created", 0), r["layer"], r["base"]))
if recs:
    print(*max(recs)[1:])
PY
)
	if [ -n "$top" ] && [ -f "$top" ]; then
		fmt=$(qemu-img info --output=json "$base" | $PY -c 'import json,sys; print(json.load(sys.stdin)["format"])')
		cp "$top" "$S/one.qcow2"
		if qemu-img rebase -q -f qcow2 -F "$fmt" -b "$base" "$S/one.qcow2"; then
			rm -f "$S/flat.qcow2"
			tc=$(secs qemu-img convert -q -f qcow2 -O qcow2 -- "$top" "$S/flat.qcow2")
			mv "$S/flat.qcow2" "$S/flat-chain.qcow2" 2>/dev/null
			to=$(secs qemu-img convert -q -f qcow2 -O qcow2 -- "$S/one.qcow2" "$S/flat.qcow2")
			qemu-img compare -q "$S/flat-chain.qcow2" "$S/flat.qcow2" ||
				{ blog "flatten: the chain and the one layer differ"; tc=nan; }
		fi
		chain=$(qemu-img info --backing-chain "$top" | grep -c '^image:')
		blog "flatten: $chain images in the chain ($tc s), one layer ($to s)"
	else
		blog "flatten: no generalised checkpoint in the cache"
	fi
	rm -f "$S/one.qcow2" "$S/flat.qcow2" "$S/flat-chain.qcow2"
	echo "$tc $to"
}

: >"$S/af-full" >"$S/af-re" >"$S/pk-full" >"$S/pk-re" >"$S/af-cold" >"$S/af-flat"
# BENCH_SIDES (development): "amiforge", "packer" or both (default).
sides=${BENCH_SIDES:-amiforge packer}
for run in $(seq 1 "$BENCH_RUNS"); do
	if [[ " $sides " == *" amiforge "* ]]; then
		af_build "af-full-$run" v1 --no-cache >>"$S/af-full"
		want 5 && af_flatten >>"$S/af-flat"
		$need_rebuild && af_build "af-re-$run" "v2-run$run" >>"$S/af-re"
		# Measure 5b: the same rebuild with its saved guest state gone,
		# so the guest boots from the deepest checkpoint's disk.
		if $need_rebuild; then
			rm -f "$S"/cache/checkpoints/layers/*.state
			af_build "af-cold-$run" "v3-run$run" >>"$S/af-cold"
		fi
	fi
	if $have_packer && [[ " $sides " == *" packer "* ]]; then
		pk_build "pk-full-$run" v1 >>"$S/pk-full"
		$need_rebuild && pk_build "pk-re-$run" "v2-run$run" >>"$S/pk-re"
	fi
done

col() { awk -v c="$1" '{print $c}' "$2"; }
med() {   # FILE COLUMN
	if [ -s "$1" ]; then median $(col "$2" "$1"); else echo nan; fi
}
# n FILE COLUMN: how many runs gave a value
n() { if [ -s "$1" ]; then col "$2" "$1" | grep -vc nan; else echo 0; fi; }
pkv() {   # FILE COLUMN: Packer's median or why it has none
	if $have_packer; then med "$1" "$2"; else echo "n/a: packer not installed"; fi
}
P="Packer 1.6.6"
want 1 && row 1a "build start → first step's command run" "$(med "$S/af-full" 1)" "$(pkv "$S/pk-full" 1)" s "$P" "$(n "$S/af-full" 1)" "$(n "$S/pk-full" 1)"
want 1 && row 1b "  same, minus boot to userspace" "$(med "$S/af-full" 2)" "$(pkv "$S/pk-full" 2)" s "$P" "$(n "$S/af-full" 2)" "$(n "$S/pk-full" 2)"
want 2 && row 2a "per step, 50 trivial steps in a build" "$(med "$S/af-full" 3)" "$(pkv "$S/pk-full" 3)" ms "$P" "$(n "$S/af-full" 3)" "$(n "$S/pk-full" 3)"
# The floors (the brief: under TCG, where a target is below the guest's own
# floor, the floor is the target; peer/amiforge >= 1 meets it).
want 1 && row "1a'" "  first step vs the guest's own boot (multi-user.target), from power-on" "$(med "$S/af-full" 11)" "$(med "$S/af-full" 10)" s "guest's floor" "$(n "$S/af-full" 11)" "$(n "$S/af-full" 10)"
want 2 && row "2a'" "  per step vs the guest's own bash running a script file" "$(med "$S/af-full" 3)" "$(med "$S/af-full" 9)" ms "guest's floor" "$(n "$S/af-full" 3)" "$(n "$S/af-full" 9)"
want 2 && row 2b "  same, amiforge exec only (no checkpoint)" "$(med "$S/af-full" 4)" "$(pkv "$S/pk-full" 3)" ms "$P" "$(n "$S/af-full" 4)" "$(n "$S/pk-full" 3)"
want 3 && row 3 "host → guest 256 MiB file" "$(med "$S/af-full" 5)" "$(pkv "$S/pk-full" 5)" s "$P" "$(n "$S/af-full" 5)" "$(n "$S/pk-full" 5)"
want 4 && row 4 "full build, end to end" "$(med "$S/af-full" 6)" "$(pkv "$S/pk-full" 6)" s "$P" "$(n "$S/af-full" 6)" "$(n "$S/pk-full" 6)"
want 5 && row 5 "rebuild, last step changed" "$(med "$S/af-re" 6)" "$(pkv "$S/pk-re" 6)" s "$P" "$(n "$S/af-re" 6)" "$(n "$S/pk-re" 6)"
# Target 4 of issue 16: the rebuild at most a quarter of the full build in
# the same run (ratio >= 1).
quarter() { local m; m=$(med "$S/af-full" 6); [ "$m" = nan ] && echo nan || $PY -c "print($m / 4)"; }
want 5 && row "5'" "  rebuild vs a quarter of the full build (4), same run" "$(med "$S/af-re" 6)" "$(quarter)" s "full build / 4" "$(n "$S/af-re" 6)" "$(n "$S/af-full" 6)"
# Target 3 of issue 16: the boot from the deepest checkpoint within 10 % of
# the boot from the base (ratio >= 0.91), the flatten of the 55-step build's
# chain within 1.2x of a one-layer overlay's (ratio >= 0.83).
want 5 && row 5b "  boot from the deepest checkpoint (disk only) vs from the base: booting → first step run" "$(med "$S/af-cold" 12)" "$(med "$S/af-full" 12)" s "boot from the base" "$(n "$S/af-cold" 12)" "$(n "$S/af-full" 12)"
want 5 && row 5c "  flatten the 55-step build's checkpoint chain vs a one-layer overlay" "$(med "$S/af-flat" 1)" "$(med "$S/af-flat" 2)" s "one-layer overlay" "$(n "$S/af-flat" 1)" "$(n "$S/af-flat" 2)"
want 8 && row 8a "peak RSS during a build (VmHWM)" "$(med "$S/af-full" 7)" "$(pkv "$S/pk-full" 7)" MiB "$P" "$(n "$S/af-full" 7)" "$(n "$S/pk-full" 7)"
want 8 && row 8a\' "  same as PSS (shared pages split)" "$(med "$S/af-full" 8)" "$(pkv "$S/pk-full" 8)" MiB "$P" "$(n "$S/af-full" 8)" "$(n "$S/pk-full" 8)"
exit 0
