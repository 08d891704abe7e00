#!/bin/bash
# make check-valgrind: run each unit test program under valgrind memcheck.
# An invalid read/write, use of uninitialised memory, or a definite or
# possible leak fails the test; each program's own PASS/FAIL lines must
# also be clean. Prints "PASS: valgrind NAME" / "FAIL: ..." and, last,
# "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
logs=$BUILD/valgrind
mkdir -p "$logs"
passed=0 failed=0
if ! command -v valgrind >/dev/null 2>&1; then
	echo "FAIL: valgrind not installed (apt-get install valgrind)"
	echo "0 passed, 1 failed"
	exit 1
fi
for t in "$@"; do
	name=$(basename "$t")
	log=$logs/$name.log
	t0=$SECONDS
	valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,possible \
		--errors-for-leak-kinds=definite,possible --track-origins=yes \
		--suppressions=tests/lib/valgrind.supp --log-file="$logs/$name.vg" \
		"$t" >"$log" 2>&1
	rc=$?
	nf=$(grep -c '^FAIL:' "$log")
	errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$logs/$name.vg" | tail -n 1)
	if [ "$rc" -eq 0 ] && [ "$nf" -eq 0 ] && [ "${errs:-1}" -eq 0 ]; then
		echo "PASS: valgrind $name ($(grep -c '^PASS:' "$log") checks, $((SECONDS - t0)) s)"
		passed=$((passed + 1))
	else
		echo "FAIL: valgrind $name: exit $rc, $nf failed checks, ${errs:-?} valgrind errors (log: $logs/$name.vg)"
		grep -E '^==[0-9]+== +(Invalid|Conditional|Use of|[0-9,]+ bytes in|at 0x|by 0x)' "$logs/$name.vg" | head -n 20 | sed 's/^/    | /'
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
