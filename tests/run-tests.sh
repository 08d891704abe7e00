#!/bin/bash
# Run amiforge's tests and print, last, one line: "N passed, N failed, N skipped".
#
#   tests/run-tests.sh unit    unit tests only (C programs in $BUILD/tests)
#   tests/run-tests.sh all     unit + integration (guests, libvirt, moto)
#   tests/run-tests.sh all PATTERN   only integration scripts whose name matches
#                                    (several patterns: "boot-agent inspect";
#                                    ^NAME matches names starting with NAME:
#                                    "^build.sh" is build.sh, not ami-build.sh)
#   tests/run-tests.sh suite NAME    only the integration scripts of suite NAME
#
# A script belongs to a named suite with a line "# suite: NAME" among its
# first ten lines; `all` runs the scripts of no suite (make check), `suite
# guests` the slower guest scripts (make check-guests). A PATTERN given to
# `all` picks among every script, whatever its suite.
#
# Every test prints lines "PASS: name", "FAIL: name ..." or "SKIP: name ...".
# A program or script that exits non-zero without printing a FAIL line counts
# as one failure, so a crash is never silent. A missing prerequisite (moto,
# libvirt, libguestfs, clang) is a failure, not a skip, unless the user opts
# out of that kind of test: AMIFORGE_TEST_SKIP=aws,libvirt,guestfs,clang
# (tests/lib/common.sh); skips are counted in the summary line.
#
# Every program and script runs with its own empty TMPDIR, in one directory
# of this run (under $TMPDIR or /tmp) removed at the end: whatever a test or
# amiforge leaves there is a failure ("left ... behind"), as is anything it
# adds to the source tree's builds/ (a command's default output), and a run killed
# half-way leaves one directory, which the next run of the same tree removes.
set -u
cd "$(dirname "$0")/.."
TOP=$PWD
export TOP
BUILD=${BUILD:-build}
export BUILD
export AMIFORGE=${AMIFORGE:-$TOP/amiforge}
case "$AMIFORGE" in /*) ;; *) AMIFORGE=$TOP/$AMIFORGE ;; esac
# moto, aws-cli and boto3 come with the machine's pyenv Python: make sure
# its shims are found even where a login shell did not set PATH up.
for d in "${HOME:-/root}/.pyenv/shims" "${HOME:-/root}/.pyenv/bin"; do
	case ":$PATH:" in
	*":$d:"*) ;;
	*) [ -d "$d" ] && PATH="$d:$PATH" ;;
	esac
done
export PATH
mode=${1:-all}
pattern=${2:-}

LOGDIR=$TOP/$BUILD/test-logs
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
passed=0 failed=0 skipped=0

# libguestfs keeps its appliance (built once, ~200 MiB) in $TMPDIR unless
# told: where it would be without ours.
export LIBGUESTFS_CACHEDIR=${LIBGUESTFS_CACHEDIR:-${TMPDIR:-/var/tmp}}
# The run's temporary directory, named after the tree (a previous run of this
# tree that was killed left its own: removed here). 0711: QEMU, run by
# libvirt as another user, reaches the work directories below it.
RUN_TMP=${TMPDIR:-/tmp}/amiforge-check-$(printf '%s' "$TOP" | sha256sum | cut -c1-12)
rm -rf "$RUN_TMP"
mkdir -m 0711 "$RUN_TMP" || { echo "cannot create $RUN_TMP" >&2; exit 2; }
cleanup() {
	[ "$(type -t services_stop)" = function ] && services_stop
	rm -rf "$RUN_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

run_one() {	# name command...
	local name=$1 log rc np nf ns
	shift
	log=$LOGDIR/$(echo "$name" | tr '/ ' '__').log
	local t0=$SECONDS tmp left
	tmp=$RUN_TMP/$(echo "$name" | tr '/ ' '__')
	mkdir -m 0711 "$tmp"
	# Scripts run in the source tree: a command's default output there
	# (./builds) is a leak too.
	local builds0
	builds0=$(ls -A builds 2>/dev/null)
	TMPDIR=$tmp "$@" >"$log" 2>&1 </dev/null
	rc=$?
	left=$(cd "$tmp" && ls -A | head -n 5 | tr '\n' ' ')
	[ -z "$left" ] || echo "FAIL: $name left files behind in its TMPDIR: $left" >>"$log"
	left=$(ls -A builds 2>/dev/null | grep -vxF "$builds0" | head -n 5 | tr '\n' ' ')
	[ -z "$left" ] || echo "FAIL: $name left files behind in the source tree's builds/: $left" >>"$log"
	rm -rf "$tmp"
	grep -E '^(PASS|FAIL|SKIP):' "$log"
	np=$(grep -c '^PASS:' "$log")
	nf=$(grep -c '^FAIL:' "$log")
	ns=$(grep -c '^SKIP:' "$log")
	if [ "$rc" -ne 0 ] && [ "$nf" -eq 0 ]; then
		echo "FAIL: $name exited with status $rc (log: $log)"
		tail -n 20 "$log" | sed 's/^/    | /'
		nf=1
	elif [ "$nf" -ne 0 ]; then
		echo "    (log: $log)"
	fi
	passed=$((passed + np))
	failed=$((failed + nf))
	skipped=$((skipped + ns))
	echo "== $name: $np passed, $nf failed, $ns skipped ($((SECONDS - t0)) s)"
}

suite=
if [ "$mode" = suite ]; then
	suite=$pattern
	pattern=
	[ -n "$suite" ] || { echo "usage: tests/run-tests.sh suite NAME" >&2; exit 2; }
fi

# suite_of SCRIPT: the "# suite: NAME" of its first ten lines, or nothing.
suite_of() {
	head -n 10 "$1" | sed -n 's/^# suite: *\([a-z0-9-]*\).*/\1/p' | head -n 1
}

if [ "$mode" != suite ]; then
	for t in "$BUILD"/tests/test-*; do
		[ -x "$t" ] || continue
		run_one "unit/$(basename "$t")" "$t"
	done
fi

if [ "$mode" = all ] || [ "$mode" = suite ]; then
	# shellcheck source=tests/lib/services.sh
	. tests/lib/services.sh
	TMPDIR=$RUN_TMP services_start
	# The fixture first: every guest test needs it (built once, cached).
	t0=$SECONDS
	if "$TOP/tests/fixtures/build-debian-image.sh" >"$LOGDIR/fixture.log" 2>&1; then
		echo "== fixture image ready ($((SECONDS - t0)) s)"
	else
		echo "FAIL: fixture image could not be built (log: $LOGDIR/fixture.log)"
		tail -n 20 "$LOGDIR/fixture.log" | sed 's/^/    | /'
		failed=$((failed + 1))
	fi
	for t in tests/integration/*.sh; do
		[ -f "$t" ] || continue
		match=
		for p in ${pattern:-.sh}; do
			case "$p" in
			^*) case "$(basename "$t")" in "${p#^}"*) match=1 ;; esac ;;   # ^NAME: a prefix
			*) case "$(basename "$t")" in *"$p"*) match=1 ;; esac ;;
			esac
		done
		[ -n "$match" ] || continue
		# Without a pattern, `all` runs the scripts of no suite and
		# `suite NAME` those of NAME.
		if [ -z "$pattern" ] && [ "$(suite_of "$t")" != "$suite" ]; then
			continue
		fi
		run_one "integration/$(basename "$t" .sh)" bash "$t"
	done
fi

echo "== total: $SECONDS s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
