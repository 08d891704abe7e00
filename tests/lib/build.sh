# Helpers for the tests that run `amiforge build` on the Debian fixture
# (build.sh, build-checkpoint.sh, build-onerror.sh). Source after common.sh.

# build_test_setup NAME: libvirt and the fixture, or a FAIL and exit. Sets
# base (the fixture), dir (a scratch directory QEMU can traverse: it runs as
# libvirt-qemu) and ck (the checkpoint store); the cache is private to the
# test, so other builds on the machine neither feed nor see it.
build_test_setup() {
	if ! need_libvirt; then
		fail "$1: libvirt is not available (qemu:///system does not answer)"
		exit 1
	fi
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

# domains_of PID: the number of domains, running or not, that build made.
domains_of() {
	virsh -c qemu:///system list --all --name 2>/dev/null | grep -c "^amiforge-$1-"
}

# journal_dirs_gone JOURNAL: every directory it records is gone.
journal_dirs_gone() {
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
