# Where the tests' moto_server comes from; sourced by tests/lib/install-deps.sh
# (POSIX sh) and tests/lib/services.sh.
#
# `make deps` installs moto $MOTO_PIN from the Python registry into the
# project's own virtualenv, $TOP/.venv (gitignored), when no moto_server is
# found; where one is found (the project's .venv, PATH, pyenv's shims) it is
# used as it is, and `make deps` and the test run say which and its version.

MOTO_PIN=5.2.1

# moto_server_path TOP: print the moto_server to use (one that runs), or
# return 1.
moto_server_path() {
	for _m in "$1/.venv/bin/moto_server" "$(command -v moto_server 2>/dev/null)" \
		"${HOME:-/root}/.pyenv/shims/moto_server"; do
		if [ -n "$_m" ] && [ -x "$_m" ] && "$_m" --help >/dev/null 2>&1; then
			echo "$_m"
			return 0
		fi
	done
	return 1
}

# moto_version TOP MOTO_SERVER: the version of moto that MOTO_SERVER runs
# ("unknown" if it cannot be told).
moto_version() {
	# The interpreter of its #! line; a pyenv shim (a shell script) has its
	# python3 beside it.
	_py=$(sed -n '1s/^#![[:space:]]*//p' "$2")
	case $_py in
	*sh) _py="$(dirname "$2")/python3" ;;
	esac
	# shellcheck disable=SC2086 # "/usr/bin/env python3" is two words
	$_py -c 'import moto; print(moto.__version__)' 2>/dev/null || echo unknown
}
