# bench/lib.sh: shared by the measure scripts that bench/run calls (sourced).
#
# A measure script appends rows to $BENCH_ROWS (stdout when unset), one per
# line, tab-separated:
#   ID  MEASURE  AMIFORGE  PEER  UNIT  PEER-NAME  [AMIFORGE-N  PEER-N]
# AMIFORGE and PEER are numbers (medians) or "n/a: why". Lower is better for
# every unit used here (s, ms, MiB): bench/run prints PEER/AMIFORGE as the
# ratio, so > 1 means amiforge is faster (or smaller). The -N fields, when
# given, count the runs that gave a value (shown when short of BENCH_RUNS).
# shellcheck shell=bash

# shellcheck source=tests/lib/at-exit.sh
. "$TOP/tests/lib/at-exit.sh"

BENCH_RUNS=${BENCH_RUNS:-3}
PY=${PYTHON:-python3}

now() { date +%s.%N; }

# median V...: the median of the numeric arguments ("nan" when none is).
median() {
	"$PY" - "$@" <<'PY'
import math, statistics, sys
v = []
for a in sys.argv[1:]:
    try:
        f = float(a)
    except ValueError:
        continue
    if not math.isnan(f):
        v.append(f)
print(statistics.median(v) if v else "nan")
PY
}

# row ID MEASURE AMIFORGE PEER UNIT PEER-NAME [AMIFORGE-N PEER-N]
row() {
	local a=$3 p=$4
	[ "$a" = nan ] && a="n/a: failed (see log)"
	[ "$p" = nan ] && p="n/a: failed (see log)"
	if [ -n "${BENCH_ROWS:-}" ]; then
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$a" "$p" "$5" "$6" "${7:-}" "${8:-}" >>"$BENCH_ROWS"
	else
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$a" "$p" "$5" "$6" "${7:-}" "${8:-}"
	fi
}

# want N: is measure N selected (BENCH_ONLY=1,3,7; empty: all)?
want() {
	[ -z "${BENCH_ONLY:-}" ] && return 0
	case ",${BENCH_ONLY// /}," in *",$1,"*) return 0 ;; esac
	return 1
}

# secs CMD...: wall seconds of one run of CMD (its output discarded), or nan.
secs() {
	local t0 t1
	t0=$(now)
	"$@" >/dev/null 2>>"${BENCH_LOG:-/dev/null}" || { echo "bench: '$*' failed" >&2; echo nan; return; }
	t1=$(now)
	"$PY" -c "print($t1 - $t0)"
}

# free_port: a TCP port nothing listens on right now.
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

blog() { echo "bench: $*" >&2; }
