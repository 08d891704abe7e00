#!/bin/bash
# Benchmark: host <-> guest bulk data (issue 16 target 5). One guest per run
# (`amiforge run` on the Debian fixture, driver libvirt unless
# BENCH_DRIVER=qemu), through the executor's put_file/get_file: the path
# WebDownload and S3Download (into the guest) and S3Upload (out of it) take.
# Per run: a 256 MiB random file put into the guest, got back (compared on
# the host), and the guest's own disk write rate under the same accelerator:
# dd of 256 MiB to the root file system (oflag=direct, conv=fsync) in the
# same guest, timed by the agent's exec. Rows (seconds for 256 MiB; peer:
# the guest's dd, so peer/amiforge is the fraction of the guest's own write
# rate reached, target >= 0.5):
#   3c  host → guest 256 MiB (put)      vs the guest's dd
#   3d  guest → host 256 MiB (get)      vs the guest's dd
# Under bench/run (BENCH_ROWS set) it writes the rows; by hand it prints
# them and the MB/s.
#
#   bench/bulk.sh          (AMIFORGE=path/to/amiforge, BENCH_RUNS=N)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"
AMIFORGE=${AMIFORGE:-$TOP/amiforge}
want 3 || exit 0
img=$("$TOP/tests/fixtures/build-debian-image.sh") || exit 1
S=$(mktemp -d "${TMPDIR:-/var/tmp}/amiforge-bench-bulk.XXXXXX")
chmod 0755 "$S"
at_exit 'rm -rf "$S"'
size=$((256 * 1024 * 1024))
head -c $size /dev/urandom >"$S/up.bin"
put=() get=() dd=()
for i in $(seq 1 "$BENCH_RUNS"); do
	rm -f "$S/down.bin"
	{
		echo '["exec", "dd", "if=/dev/zero", "of=/var/tmp/dd.bin", "bs=4M", "count=64", "oflag=direct", "conv=fsync"]'
		echo '["exec", "rm", "-f", "/var/tmp/dd.bin"]'
		echo "[\"put\", \"$S/up.bin\", \"/root/up.bin\"]"
		echo "[\"get\", \"/root/up.bin\", \"$S/down.bin\"]"
		echo '["exec", "sha256sum", "/root/up.bin"]'
		echo '["exec", "rm", "-f", "/root/up.bin"]'
		echo '["poweroff"]'
	} >"$S/batch"
	if ! TMPDIR=$S "$AMIFORGE" run "$img" --driver "${BENCH_DRIVER:-libvirt}" --boot-timeout 900 \
		--batch "$S/batch" >"$S/run$i.jsonl" 2>"$S/run$i.err"; then
		blog "bulk run $i failed: $(tail -n 3 "$S/run$i.err")"
		continue
	fi
	if ! cmp -s "$S/up.bin" "$S/down.bin"; then
		blog "bulk run $i: the file got back differs from the one put"
		continue
	fi
	read -r p g d h < <("$PY" - "$S/run$i.jsonl" <<'PY'
import json, sys
ops = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ops = [r for r in ops if "op" in r]
ms = lambda k: next(r for r in ops if r.get("kind") == k)["ms"] / 1000.0
print(ms("put"), ms("get"), ops[0]["ms"] / 1000.0, ops[4]["ms"] / 1000.0)
PY
)
	put+=("$p") get+=("$g") dd+=("$d")
	blog "bulk run $i: put $p s, get $g s, guest dd $d s, guest sha256sum of the file $h s (256 MiB)"
done
mp=$(median "${put[@]}") mg=$(median "${get[@]}") md=$(median "${dd[@]}")
n=${#put[@]}
row 3c "host → guest 256 MiB (put_file)" "$mp" "$md" s "guest's own dd" "$n" "$n"
row 3d "guest → host 256 MiB (get_file)" "$mg" "$md" s "guest's own dd" "$n" "$n"
if [ -z "${BENCH_ROWS:-}" ]; then
	"$PY" -c "
s = 256 * 1.048576
for k, v in (('put', $mp), ('get', $mg), ('dd', $md)):
    print(f'{k}: {s / v:.1f} MB/s')"
fi
