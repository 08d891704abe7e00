# Helpers for the tests that run `amiforge build` on the Debian fixture
# (build.sh, build-checkpoint.sh, build-onerror.sh). Source after common.sh.

# build_test_setup NAME: libvirt and the fixture, or a FAIL and exit. Sets
# base (the fixture), dir (a scratch directory QEMU can traverse: it runs as
# libvirt-qemu) and ck (the checkpoint store); the cache is private to the
# test, so other builds on the machine neither feed nor see it.
build_test_setup() {
	require libvirt "$1"
	base=$(fixture_image) || { fail "$1: fixture image"; exit 1; }
	dir=$(scratch)
	chmod 711 "$dir"
	export AMIFORGE_CACHE_DIR="$dir/cache"
	ck="$dir/cache/checkpoints"
	mkdir -p "$dir/r"
}

# run_build OUT ERR ARGS...: amiforge build ARGS; sets build_pid, so that the
# checks can look for what THIS build made (its domains are amiforge-<pid>-*).
build_pid=
run_build() {
	local out=$1 err=$2
	shift 2
	"$AMIFORGE" build "$@" >"$out" 2>"$err" &
	build_pid=$!
	wait "$build_pid"
}

# domains_of PID: the number of domains, running or not, that build made. A
# virsh that fails or an empty PID prints an error instead of a count (so that
# check_eq ... 0 fails rather than counting nothing).
domains_of() {
	[ -n "$1" ] || { echo "domains_of: no build pid"; return 1; }
	domains_matching "amiforge-$1-"
}

# domains_matching REGEX: how many domains (running or not) have a name
# matching ^REGEX (grep basic regex); "virsh failed: ..." if virsh fails.
domains_matching() {
	local names
	if ! names=$(virsh -c qemu:///system list --all --name 2>&1); then
		echo "virsh failed: $(head -n 1 <<<"$names")"
		return 1
	fi
	grep -c "^$1" <<<"$names"
}

# qcow2_standalone DISK: DISK is a qcow2 image with no backing file: qemu-img
# info succeeds, says qcow2, and its JSON has no backing-filename key at all.
# Prints why not.
qcow2_standalone() {
	local info
	if [ -z "$1" ] || [ ! -f "$1" ]; then
		echo "qcow2_standalone: no disk file '$1'"
		return 1
	fi
	info=$(qemu-img info -f qcow2 --output=json "$1") ||
		{ echo "qcow2_standalone: qemu-img info '$1' failed"; return 1; }
	python3 -c '
import json, sys
i = json.loads(sys.argv[1])
keys = sorted(k for k in i if "backing" in k)
if i.get("format") != "qcow2" or keys:
    print("qcow2_standalone: format %s, backing keys %s" % (i.get("format"), keys))
    sys.exit(1)' "$info"
}

# journal_nothing_live BUILD_DIR: `amiforge clean --dry-run BUILD_DIR` exits 0
# and prints nothing at all: no "would release" line, no "skipped: the build
# is still running" (a journal still locked), no error. A missing or empty
# BUILD_DIR, or one without a journal, fails. Prints why not.
journal_nothing_live() {
	local out rc
	if [ -z "$1" ] || [ ! -f "$1/journal" ]; then
		echo "journal_nothing_live: no journal in build directory '$1'"
		return 1
	fi
	out=$("$AMIFORGE" clean --dry-run "$1" 2>&1)
	rc=$?
	if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
		echo "journal_nothing_live: clean --dry-run exit $rc, output:"
		head -n 5 <<<"$out" | sed 's/^/    | /'
		return 1
	fi
}

# journal_has_live BUILD_DIR: `amiforge clean --dry-run BUILD_DIR` exits 0,
# and every line it prints (at least one) is a "would release ..." line.
journal_has_live() {
	local out rc
	if [ -z "$1" ] || [ ! -f "$1/journal" ]; then
		echo "journal_has_live: no journal in build directory '$1'"
		return 1
	fi
	out=$("$AMIFORGE" clean --dry-run "$1" 2>&1)
	rc=$?
	if [ "$rc" -ne 0 ] || [ -z "$out" ] || grep -qv '^would release ' <<<"$out"; then
		echo "journal_has_live: clean --dry-run exit $rc, output:"
		head -n 5 <<<"$out" | sed 's/^/    | /'
		return 1
	fi
}

# journal_dirs_gone JOURNAL: JOURNAL exists and every directory it records is gone.
journal_dirs_gone() {
	[ -f "$1" ] || { echo "journal_dirs_gone: no journal '$1'"; return 1; }
	! grep '^+ [0-9]* dir ' "$1" | cut -d' ' -f4- |
		while read -r d; do test -e "$d" && echo "$d"; done | grep -q .
}

# step_status EVENTS NAME: the statuses ("," between retries) of the --json
# step events for NAME (document/phase/step), or "none".
step_status() {
	python3 - "$1" "$2" <<'PY'
import json, sys
st = [e['status'] for e in map(json.loads, filter(str.strip, open(sys.argv[1])))
      if e['event'] == 'step' and e['name'] == sys.argv[2]]
print(','.join(st) or 'none')
PY
}

# count_events EVENTS KIND STATUS: how many --json events of KIND have STATUS.
count_events() {
	python3 - "$@" <<'PY'
import json, sys
print(sum(1 for e in map(json.loads, filter(str.strip, open(sys.argv[1])))
          if e['event'] == sys.argv[2] and e['status'] == sys.argv[3]))
PY
}

# wait_event EVENTS PID NAME: wait (up to 20 min) for an event named NAME
# while PID lives.
wait_event() {
	local i
	for ((i = 0; i < 1200; i++)); do
		grep -q "\"name\":\"$3\"" "$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 1
	done
	return 1
}
