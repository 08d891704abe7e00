#!/bin/bash
# Benchmark (by hand; no guest): what chain depth costs a flatten
# (qemu-img convert to a standalone qcow2, as a build's output is made).
# On the Debian fixture, the same 55 writes of 2 MiB (one per "step", at
# spread offsets) laid out as: one overlay holding them all; a chain of 55
# layers (one per step: a checkpoint chain before issue 16's merging); a
# chain of 3 layers (what CKPT_DEPTH_MAX leaves). Prints the flatten time of
# each (median of BENCH_RUNS, default 3) and the ratio to the one-layer
# overlay (issue 16 target 3: <= 1.2).
#
#   bench/chain.sh
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"
img=$("$TOP/tests/fixtures/build-debian-image.sh") || exit 1
S=$(mktemp -d "${TMPDIR:-/var/tmp}/amiforge-bench-chain.XXXXXX")
at_exit 'rm -rf "$S"'
steps=55
write() {   # write LAYER STEP: step's 2 MiB, pattern = step
	qemu-io -f qcow2 -c "write -P $(($2 % 255 + 1)) $(($2 * 64))M 2M" "$1" >/dev/null
}
layer() {   # layer NEW BACKING FORMAT
	qemu-img create -q -f qcow2 -F "$3" -b "$2" "$1"
}
fmt=$(qemu-img info --output=json "$img" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["format"])')
# one layer
layer "$S/one.qcow2" "$img" "$fmt"
for i in $(seq 1 $steps); do write "$S/one.qcow2" "$i"; done
# 55 layers
prev=$img pf=$fmt
for i in $(seq 1 $steps); do
	layer "$S/deep-$i.qcow2" "$prev" "$pf"
	write "$S/deep-$i.qcow2" "$i"
	prev=$S/deep-$i.qcow2 pf=qcow2
done
# 3 layers: steps 1-36, 37-48, 49-55 (the shape ckpt_merge_keep leaves)
layer "$S/m1.qcow2" "$img" "$fmt"
layer "$S/m2.qcow2" "$S/m1.qcow2" qcow2
layer "$S/m3.qcow2" "$S/m2.qcow2" qcow2
for i in $(seq 1 $steps); do
	if [ "$i" -le 36 ]; then write "$S/m1.qcow2" "$i"
	elif [ "$i" -le 48 ]; then write "$S/m2.qcow2" "$i"
	else write "$S/m3.qcow2" "$i"; fi
done
flat() { rm -f "$S/out.qcow2"; secs qemu-img convert -O qcow2 "$1" "$S/out.qcow2"; }
for name in one.qcow2 "deep-$steps.qcow2" m3.qcow2; do
	t=()
	for _ in $(seq 1 "$BENCH_RUNS"); do t+=("$(flat "$S/$name")"); done
	eval "med_${name%%[-.]*}=$(median "${t[@]}")"
done
cmp_out() { qemu-img compare -q "$S/$1" "$S/$2"; }
cmp_out one.qcow2 "deep-$steps.qcow2" && cmp_out one.qcow2 m3.qcow2 ||
	blog "the three layouts differ!"
"$PY" - "$med_one" "$med_deep" "$med_m3" <<'PY'
import sys
one, deep, m3 = map(float, sys.argv[1:])
print(f"flatten, one overlay:   {one:6.2f} s")
print(f"flatten, 55 layers:     {deep:6.2f} s  ({deep / one:.2f}x)")
print(f"flatten, 3 layers:      {m3:6.2f} s  ({m3 / one:.2f}x)")
PY
