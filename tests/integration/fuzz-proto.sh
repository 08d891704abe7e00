#!/bin/bash
# Bounded libFuzzer run of the host-side agent protocol parser
# (tests/fuzz/fuzz-proto.c): 20 seconds must pass without a crash, hang or leak.
. "$(dirname "$0")/../lib/common.sh"
cd "$TOP" || exit 1
scratch >/dev/null   # not in $(...): its cleanup trap belongs to this shell
dir=$_scratch

require clang fuzz-proto
if ! make fuzz BUILD="$BUILD" >"$dir/build.log" 2>&1; then
	fail "fuzz-proto: make fuzz failed: $(tail -n 3 "$dir/build.log" | tr '\n' ' ')"
	finish
	exit
fi
mkdir -p "$dir/corpus"
cp tests/fuzz/corpus-proto/* "$dir/corpus/" 2>/dev/null
if "$BUILD/fuzz/fuzz-proto" -max_total_time=20 -max_len=65536 -timeout=10 \
	-rss_limit_mb=2048 "$dir/corpus" >"$dir/fuzz.log" 2>&1; then
	pass "fuzz-proto: 20 s of fuzzing, no crash ($(grep -o 'Done [0-9]* runs' "$dir/fuzz.log"))"
else
	fail "fuzz-proto: $(grep -m1 -E 'ERROR|SUMMARY|timeout' "$dir/fuzz.log")"
	tail -n 30 "$dir/fuzz.log"
fi
finish
