# shellcheck shell=bash
# at_exit CMD: run CMD (a shell string) when the script exits, however it
# exits (an error, `exit`, SIGINT, SIGTERM or SIGHUP), the last registered
# first. The one cleanup mechanism of the tests: a script or helper never
# sets its own EXIT trap, which would replace the others (a test that did
# left its scratch directory behind, gigabytes each).
# Sourced once (a second source would forget what was registered).
[ -n "${_at_exit_loaded:-}" ] && return 0
_at_exit_loaded=1
_at_exit=()
at_exit() {
	_at_exit+=("$1")
}
_run_at_exit() {
	local i
	for ((i = ${#_at_exit[@]} - 1; i >= 0; i--)); do
		eval "${_at_exit[i]}"
	done
	_at_exit=()
}
trap _run_at_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
# at_exit_kill PID...: kill these processes (servers a script started) at exit.
at_exit_kill() {
	local p
	for p in "$@"; do
		at_exit "kill $p 2>/dev/null"
	done
}
