# Services the integration tests need; sourced by tests/run-tests.sh.
# Starts libvirt (virtlogd + libvirtd) when no daemon answers and moto_server
# on a free loopback port; stops what it started. Exports:
#   AMIFORGE_TEST_MOTO_URL  http://127.0.0.1:PORT (empty if moto is missing)
#   AMIFORGE_TEST_LIBVIRT   1 when qemu:///system answers

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
			if ! pgrep -x libvirtd >/dev/null; then
				libvirtd -d && _started_libvirtd=1
			fi
			for _ in $(seq 1 50); do
				_libvirt_answers && break
				sleep 0.2
			done
		fi
		_libvirt_answers && AMIFORGE_TEST_LIBVIRT=1
	fi
	export AMIFORGE_TEST_LIBVIRT

	AMIFORGE_TEST_MOTO_URL=
	if command -v moto_server >/dev/null 2>&1; then
		local port
		port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		MOTO_RECORDER_FILEPATH="$LOGDIR/moto_recording" \
		MOTO_EC2_LOAD_DEFAULT_AMIS=false moto_server -H 127.0.0.1 -p "$port" \
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
