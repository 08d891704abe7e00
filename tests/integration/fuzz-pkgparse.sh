#!/bin/bash
# Bounded libFuzzer run of UpdateOS's readers of guest package manager output
# (tests/fuzz/fuzz-pkgparse.c), seeded with the unit tests' samples
# (tests/unit/data/updateos/): 20 seconds without a crash, hang or leak.
. "$(dirname "$0")/../lib/common.sh"
cd "$TOP" || exit 1
scratch >/dev/null   # not in $(...): its cleanup trap belongs to this shell
dir=$_scratch

if ! command -v "${CLANG:-clang}" >/dev/null 2>&1; then
	skip "fuzz-pkgparse: clang not installed (make deps)"
	exit 0
fi
if ! make "$BUILD/fuzz/fuzz-pkgparse" BUILD="$BUILD" >"$dir/build.log" 2>&1; then
	fail "fuzz-pkgparse: build failed: $(tail -n 3 "$dir/build.log" | tr '\n' ' ')"
	finish
	exit
fi
mkdir -p "$dir/corpus"
D=tests/unit/data/updateos
seed() {	# selector-byte file...
	local sel=$1
	shift
	{ printf "\\x$sel"; cat "$@"; } >"$dir/corpus/$sel-$(basename "$1")"
}
seed 00 $D/apt-upgrade-sim.txt; seed 00 $D/apt-install-new-sim.txt
seed 01 $D/dnf-check-update.txt $D/dnf-rpm-qa.txt; seed 09 $D/yum-check-update.txt $D/yum-rpm-qa.txt
seed 02 $D/zypper-list-updates.txt; seed 0a $D/zypper-list-updates-unicode.txt
seed 03 $D/apt-update-old-failed.out $D/apt-update-old-failed.err
seed 04 $D/apt-update-strict-failed.out $D/apt-update-strict-failed.err
seed 05 $D/route-online $D/ipv6_route-online
if "$BUILD/fuzz/fuzz-pkgparse" -max_total_time=20 -max_len=65536 -timeout=10 \
	-rss_limit_mb=2048 "$dir/corpus" >"$dir/fuzz.log" 2>&1; then
	pass "fuzz-pkgparse: 20 s of fuzzing, no crash ($(grep -o 'Done [0-9]* runs' "$dir/fuzz.log"))"
else
	fail "fuzz-pkgparse: $(grep -m1 -E 'ERROR|SUMMARY|timeout' "$dir/fuzz.log")"
	tail -n 30 "$dir/fuzz.log"
fi
finish
