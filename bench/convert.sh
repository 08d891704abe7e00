#!/bin/bash
# amiforge convert vs qemu-img convert on the fixture (streamOptimized VMDK
# and raw), as a time ratio; amiforge inspect wall time. Prints a table.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
AMIFORGE=${AMIFORGE:-$TOP/amiforge}
F=$("$TOP/tests/fixtures/build-debian-image.sh")
S=$(mktemp -d "${TMPDIR:-/tmp}/amiforge-bench.XXXXXX")
trap 'rm -rf "$S"' EXIT

# secs CMD...: wall seconds of one run (output discarded).
secs() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>&1 || { echo "bench: '$*' failed" >&2; echo NaN; return; }
	t1=$(date +%s.%N)
	python3 -c "print($t1 - $t0)"
}

printf '%-34s %10s %10s %8s\n' "task" "amiforge" "qemu-img" "ratio"
for fmt in vmdk raw; do
	case $fmt in
	vmdk) opts=(-O vmdk -o subformat=streamOptimized) ;;
	raw) opts=(-O raw) ;;
	esac
	q=$(secs qemu-img convert -f qcow2 "${opts[@]}" "$F" "$S/q.$fmt")
	a=$(secs "$AMIFORGE" -q convert "$F" --format "$fmt" -o "$S/a.$fmt")
	rm -f "$S/q.$fmt" "$S/a.$fmt"
	printf '%-34s %9.1fs %9.1fs %8.2f\n' "convert qcow2 -> $fmt" "$a" "$q" "$(python3 -c "print($a / $q)")"
done
i=$(secs "$AMIFORGE" -q inspect --input-format qcow2 "$F")
printf '%-34s %9.1fs %10s %8s\n' "inspect (one appliance, TCG)" "$i" "-" "-"
