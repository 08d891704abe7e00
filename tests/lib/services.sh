# Services the integration tests need; sourced by tests/run-tests.sh.
# Starts libvirt (virtlogd + libvirtd) when no daemon answers and moto_server
# (tests/lib/moto.sh says which) on a free loopback port, unless
# AMIFORGE_TEST_SKIP lists aws; stops what it started. Exports:
#   AMIFORGE_TEST_MOTO_URL  http://127.0.0.1:PORT (empty if moto is missing:
#                           the AWS tests then fail, see tests/lib/common.sh)
#   AMIFORGE_TEST_LIBVIRT   1 when qemu:///system answers
# and prints (stderr) one line per service saying what it uses.
# shellcheck source=tests/lib/moto.sh
. "$TOP/tests/lib/moto.sh"

_started_libvirtd=
_started_virtlogd=
_moto_pid=

_libvirt_answers() {
	virsh -c qemu:///system version >/dev/null 2>&1
}

services_start() {
	AMIFORGE_TEST_LIBVIRT=0
	if command -v libvirtd >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
		if ! _libvirt_answers; then
			if ! pgrep -x virtlogd >/dev/null; then
				virtlogd -d && _started_virtlogd=1
			fi
			# Under a reaper of its own: QEMU's exit is seen at once
			# (tests/lib/subreaper.py says why).
			if ! pgrep -x libvirtd >/dev/null; then
				"$TOP/tests/lib/subreaper.py" libvirtd -d && _started_libvirtd=1
			fi
			for _ in $(seq 1 50); do
				_libvirt_answers && break
				sleep 0.2
			done
		fi
		_libvirt_answers && AMIFORGE_TEST_LIBVIRT=1
	fi
	export AMIFORGE_TEST_LIBVIRT

	echo "== services: libvirt: $([ "$AMIFORGE_TEST_LIBVIRT" = 1 ] && echo "qemu:///system answers" ||
		echo "NOT available")" >&2
	AMIFORGE_TEST_MOTO_URL=
	local moto= l=${AMIFORGE_TEST_SKIP:-}
	case ",${l// /,}," in
	*,aws,*) echo "== services: moto: not started (AMIFORGE_TEST_SKIP=$AMIFORGE_TEST_SKIP)" >&2 ;;
	*)
		moto=$(moto_server_path "$TOP") ||
			echo "== services: moto: NO moto_server found (make deps installs one)" >&2
		;;
	esac
	if [ -n "$moto" ]; then
		local port
		port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		MOTO_RECORDER_FILEPATH="$LOGDIR/moto_recording" \
		MOTO_EC2_LOAD_DEFAULT_AMIS=false "$moto" -H 127.0.0.1 -p "$port" \
			>"$LOGDIR/moto.log" 2>&1 &
		_moto_pid=$!
		for _ in $(seq 1 100); do
			if python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/moto-api/')" \
				>/dev/null 2>&1; then
				AMIFORGE_TEST_MOTO_URL=http://127.0.0.1:$port
				break
			fi
			sleep 0.2
		done
		if [ -n "$AMIFORGE_TEST_MOTO_URL" ]; then
			echo "== services: moto: $moto (moto $(moto_version "$TOP" "$moto")) at $AMIFORGE_TEST_MOTO_URL" >&2
		else
			echo "== services: moto: $moto did NOT start (log: $LOGDIR/moto.log)" >&2
		fi
	fi
	export AMIFORGE_TEST_MOTO_URL
}

services_stop() {
	if [ -n "$_moto_pid" ]; then
		kill "$_moto_pid" 2>/dev/null
		wait "$_moto_pid" 2>/dev/null
	fi
	# Wait until they are gone: a libvirtd still shutting down has removed
	# its socket already but keeps its pidfile, so a libvirtd started
	# meanwhile (the next test run) cannot start and nothing answers.
	local d
	for d in ${_started_libvirtd:+libvirtd} ${_started_virtlogd:+virtlogd}; do
		pkill -x "$d" 2>/dev/null
		for _ in $(seq 1 100); do
			pgrep -x "$d" >/dev/null || break
			sleep 0.1
		done
		pkill -9 -x "$d" 2>/dev/null
	done
	return 0
} >/dev/null 2>&1
