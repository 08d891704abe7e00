#!/bin/bash
# Measure 6 of issue 9: amiforge convert vs qemu-img convert of the Debian
# fixture (qcow2, 4 GiB virtual) to a streamOptimized VMDK and to raw; wall
# time, median of BENCH_RUNS runs each, the two tools alternating.
#
#   bench/convert.sh            (BENCH_RUNS=N, BENCH_ONLY=..., BENCH_ROWS=file)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"
AMIFORGE=${AMIFORGE:-$TOP/amiforge}
want 6 || exit 0
F=$("$TOP/tests/fixtures/build-debian-image.sh") || {
	row 6a "convert qcow2 → VMDK (streamOptimized)" "n/a: no fixture image" "n/a" s qemu-img
	exit 0
}
S=$(mktemp -d "${TMPDIR:-/tmp}/amiforge-bench-convert.XXXXXX")
at_exit 'rm -rf "$S"'

for fmt in vmdk raw; do
	case $fmt in
	vmdk) opts=(-O vmdk -o subformat=streamOptimized) id=6a what="convert qcow2 → VMDK (streamOptimized)" ;;
	raw) opts=(-O raw) id=6b what="convert qcow2 → raw" ;;
	esac
	q=() a=()
	for run in $(seq 1 "$BENCH_RUNS"); do
		blog "convert $fmt run $run"
		q+=("$(secs qemu-img convert -f qcow2 "${opts[@]}" "$F" "$S/q.$fmt")")
		rm -f "$S/q.$fmt"
		a+=("$(secs "$AMIFORGE" -q convert "$F" --format "$fmt" -o "$S/a.$fmt")")
		rm -f "$S/a.$fmt"
	done
	row "$id" "$what" "$(median "${a[@]}")" "$(median "${q[@]}")" s qemu-img
done
exit 0
