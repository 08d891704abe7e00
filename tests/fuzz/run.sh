#!/bin/bash
# Run or replay the libFuzzer targets in $BUILD/fuzz (make fuzz / fuzz-replay).
#
#   tests/fuzz/run.sh fuzz SECONDS BUILD   each target SECONDS on a copy of its
#                                          corpus; one line per target with its
#                                          executions and findings
#   tests/fuzz/run.sh replay 0 BUILD       each corpus input once; PASS/FAIL
#                                          lines (tests/integration/fuzz-replay.sh)
#
# A target's seed corpus is tests/fuzz/corpus/<name>/ for build/fuzz/fuzz-<name>.
# Findings (crash-*, leak-*, timeout-*, oom-*) are kept in
# $BUILD/fuzz/findings/<name>/: add them to the corpus once the bug is fixed.
set -u
cd "$(dirname "$0")/../.." || exit 1
mode=${1:-replay}
seconds=${2:-60}
BUILD=${3:-${BUILD:-build}}
FUZZ_ONLY=${FUZZ_ONLY:-}
failed=0 total_findings=0
opts=(-rss_limit_mb=2048 -timeout=20 -max_len=65536)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for bin in "$BUILD"/fuzz/fuzz-*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin"); name=${name#fuzz-}
	case "$name" in *"$FUZZ_ONLY"*) ;; *) continue ;; esac
	corpus=tests/fuzz/corpus/$name
	if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
		echo "FAIL: fuzz $name: no seed corpus in $corpus"
		failed=$((failed + 1))
		continue
	fi
	log=$BUILD/fuzz/$name.log
	if [ "$mode" = replay ]; then
		n=$(find "$corpus" -type f | wc -l)
		t0=$SECONDS
		if find "$corpus" -type f -print0 | sort -z |
			xargs -0 "$bin" "${opts[@]}" >"$log" 2>&1; then
			echo "PASS: fuzz replay $name: $n inputs ($((SECONDS - t0)) s)"
		else
			echo "FAIL: fuzz replay $name: $(grep 'Running:' "$log" | tail -n 1 | sed 's/^Running: //'): $(grep -m1 -E '^SUMMARY|ERROR' "$log") (log: $log)"
			grep -E '^(Running|==[0-9]+==ERROR|SUMMARY|    #[0-5] )' "$log" | tail -n 12 | sed 's/^/    | /'
			failed=$((failed + 1))
		fi
		continue
	fi
	work=$BUILD/fuzz/work/$name findings=$BUILD/fuzz/findings/$name
	rm -rf "$work" && mkdir -p "$work" "$findings"
	cp -r "$corpus"/. "$work"/
	before=$(find "$findings" -type f | wc -l)
	"$bin" "${opts[@]}" -max_total_time="$seconds" -print_final_stats=1 \
		-artifact_prefix="$findings/" "$work" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -n 1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
	found=$(( $(find "$findings" -type f | wc -l) - before ))
	[ "$rc" -ne 0 ] && [ "$found" -eq 0 ] && found=1
	total_findings=$((total_findings + found))
	printf '%-14s %10s execs in %s s, coverage %s, corpus %s -> %s, %d findings%s\n' \
		"$name" "${execs:-?}" "$seconds" "${cov:-?}" "$(find "$corpus" -type f | wc -l)" \
		"$(find "$work" -type f | wc -l)" "$found" \
		"$([ "$found" -gt 0 ] && echo " (see $findings/, log $log)")"
done
if [ "$mode" = fuzz ]; then
	echo "fuzz: $total_findings findings"
	[ "$total_findings" -eq 0 ]
else
	[ "$failed" -eq 0 ]
fi
