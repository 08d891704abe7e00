#!/bin/bash
# Replay every fuzz target's corpus (tests/fuzz/corpus/<name>/: seeds and
# the regression inputs of bugs found) under ASan + UBSan: each input once,
# no crash, leak or sanitizer report. Seconds; `make fuzz` does the fuzzing.
. "$(dirname "$0")/../lib/common.sh"
cd "$TOP" || exit 1
scratch >/dev/null   # not in $(...): its cleanup trap belongs to this shell
dir=$_scratch

require clang fuzz-replay
if ! make fuzz-build BUILD="$BUILD" >"$dir/build.log" 2>&1; then
	fail "fuzz-replay: make fuzz-build failed: $(tail -n 3 "$dir/build.log" | tr '\n' ' ')"
	finish
	exit
fi
n=0
for c in tests/fuzz/corpus/*/; do
	name=$(basename "$c")
	n=$((n + 1))
	check "fuzz-replay: target fuzz-$name exists for corpus $name" test -x "$BUILD/fuzz/fuzz-$name"
done
check "fuzz-replay: at least 12 corpora" test "$n" -ge 12
# run.sh prints PASS/FAIL per target (and FAIL for a target without corpus)
out=$(tests/fuzz/run.sh replay 0 "$BUILD")
rc=$?
printf '%s\n' "$out"
_fails=$((_fails + $(printf '%s\n' "$out" | grep -c '^FAIL:')))
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | grep -q '^FAIL:' || fail "fuzz-replay: run.sh exited $rc"
finish
