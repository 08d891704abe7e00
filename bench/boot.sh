#!/bin/bash
# Benchmark (not a test): boot the Debian fixture once per driver and print a
# table: boot to agent-ready; that minus the guest kernel's own time to
# userspace (from the console log); exec round trip of `true` (median of
# 100); host→guest and guest→host MB/s for a 256 MiB file.
#
#   bench/boot.sh [DRIVER...]     (default: libvirt qemu; AMIFORGE=path/to/amiforge)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
AMIFORGE=${AMIFORGE:-$TOP/amiforge}
drivers=${*:-libvirt qemu}
img=$("$TOP/tests/fixtures/build-debian-image.sh") || exit 1
dir=$(mktemp -d "${TMPDIR:-/tmp}/amiforge-bench.XXXXXX")
chmod 0755 "$dir"
trap 'rm -rf "$dir"' EXIT
size=$((256 * 1024 * 1024))
head -c $size /dev/urandom >"$dir/up.bin"

rows=()
for drv in $drivers; do
	{
		echo '["exec", "true"]'
		for _ in $(seq 1 100); do echo '["exec", "true"]'; done
		echo "[\"put\", \"$dir/up.bin\", \"/root/up.bin\"]"
		echo "[\"get\", \"/root/up.bin\", \"$dir/down.bin\"]"
		echo '["exec", "rm", "-f", "/root/up.bin"]'
		echo '["poweroff"]'
	} >"$dir/batch"
	if ! TMPDIR=$dir "$AMIFORGE" run "$img" --driver "$drv" --keep --boot-timeout 900 \
		--batch "$dir/batch" >"$dir/$drv.jsonl" 2>"$dir/$drv.err"; then
		echo "bench: $drv failed:" >&2
		tail -n 5 "$dir/$drv.err" >&2
		continue
	fi
	cmp -s "$dir/up.bin" "$dir/down.bin" || echo "bench: $drv: round trip differs!" >&2
	rows+=("$(python3 - "$dir/$drv.jsonl" "$drv" "$size" <<'PY'
import json, re, statistics, sys
path, drv, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
res = [json.loads(l) for l in open(path) if l.startswith("{")]
ready = next(r for r in res if r.get("event") == "ready")
console = open(ready["console_log"], "rb").read().decode("utf-8", "replace")
# printk time when the kernel hands over to userspace
m = re.search(r"\[\s*([0-9.]+)\] Run /sbin/init|\[\s*([0-9.]+)\] Run /init", console)
kern = float(m.group(1) or m.group(2)) if m else float("nan")
ops = [r for r in res if "op" in r]
execs = [r["ms"] for r in ops[1:101] if r.get("kind") == "exec"]
put = next(r for r in ops if r.get("kind") == "put")
get = next(r for r in ops if r.get("kind") == "get")
boot = ready["boot_ms"] / 1000.0
mbps = lambda r: size / 1e6 / (r["ms"] / 1000.0)
print(f"{drv:8} {ready['accel']:5} {boot:9.1f} {boot - kern:14.1f} {kern:9.1f} "
      f"{statistics.median(execs):10.1f} {mbps(put):9.1f} {mbps(get):9.1f}")
PY
)")
	python3 -c 'import json,sys; [print(json.loads(l)["console_log"]) for l in open(sys.argv[1]) if "ready" in l]' \
		"$dir/$drv.jsonl" | xargs -r dirname | xargs -r rm -rf
done

printf '%-8s %-5s %9s %14s %9s %10s %9s %9s\n' driver accel "ready(s)" "minus-kern(s)" "kern(s)" \
	"exec(ms)" "put MB/s" "get MB/s"
for r in "${rows[@]}"; do echo "$r"; done
echo "(host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); image $(basename "$img"))"
