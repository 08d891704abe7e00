#!/bin/bash
# Benchmark (not a test): `amiforge build` of the demo recipe on the Debian
# fixture from scratch (--no-cache), then again after changing only the last
# step of its component (checkpoints reused), and the ratio. Prints a table.
#
#   bench/build.sh                (AMIFORGE=path/to/amiforge)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
AMIFORGE=${AMIFORGE:-$TOP/amiforge}
img=$("$TOP/tests/fixtures/build-debian-image.sh") || exit 1
dir=$(mktemp -d "${TMPDIR:-/tmp}/amiforge-bench.XXXXXX")
chmod 0711 "$dir"
trap 'rm -rf "$dir"' EXIT
export AMIFORGE_CACHE_DIR="$dir/cache"   # no checkpoint from earlier runs
cp -r "$TOP/recipes" "$dir/recipes"
r="$dir/recipes/demo.yaml"
# The base image's digest is computed once per cache: not part of either build.
"$AMIFORGE" cache fetch "$r" --var parent="$img" >/dev/null || exit 1

build() {   # $1: label; the rest: extra arguments
	local label=$1 t0 t1
	shift
	t0=$(date +%s.%N)
	if ! "$AMIFORGE" build "$r" --var parent="$img" --output "$dir/builds" --json "$@" \
		>"$dir/$label.jsonl" 2>"$dir/$label.err"; then
		echo "bench: $label build failed:" >&2
		tail -n 5 "$dir/$label.err" >&2
		exit 1
	fi
	t1=$(date +%s.%N)
	python3 - "$dir/$label.jsonl" "$label" "$t0" "$t1" <<'PY'
import json, sys
path, label, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
ev = [json.loads(l) for l in open(path) if l.strip()]
ran = sum(1 for e in ev if e['event'] == 'step' and e['status'] not in ('Reused', 'Skipped'))
reused = sum(1 for e in ev if e['event'] == 'step' and e['status'] == 'Reused')
saved = sum(1 for e in ev if e['event'] == 'checkpoint' and e['status'] == 'saved')
print(f"{label}\t{t1 - t0:.1f}\t{ran}\t{reused}\t{saved}")
PY
}

full=$(build full --no-cache) || exit 1
# Change only the last step of the component (its Assert's pattern).
sed -i 's|patternMatches: .{{ Greeting }}.|patternMatches: "{{ Greeting }}</h1>"|' \
	"$dir/recipes/components/hello-web.yaml"
grep -q '</h1>"' "$dir/recipes/components/hello-web.yaml" || { echo "bench: edit failed" >&2; exit 1; }
re=$(build rebuild) || exit 1

printf '%-26s %10s %10s %8s %8s\n' build seconds "steps run" reused saved
printf '%-26s %10s %10s %8s %8s\n' -------------------------- ---------- ---------- -------- --------
echo "$full" | awk -F'\t' '{printf "%-26s %10s %10s %8s %8s\n", "full (--no-cache)", $2, $3, $4, $5}'
echo "$re" | awk -F'\t' '{printf "%-26s %10s %10s %8s %8s\n", "last step changed", $2, $3, $4, $5}'
python3 -c "print(f'rebuild/full ratio: {float(\"$(echo "$re" | cut -f2)\") / float(\"$(echo "$full" | cut -f2)\"):.2f}')"
