# Helpers for integration test scripts (bash). Source it first:
#   . "$(dirname "$0")/../lib/common.sh"
# Each check prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why".
set -u
TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
AMIFORGE=${AMIFORGE:-$TOP/amiforge}
BUILD=${BUILD:-build}
_fails=0

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; _fails=$((_fails + 1)); }
skip() { echo "SKIP: $*"; }

# check NAME CMD...: pass when CMD exits 0.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name: '$*' failed"; fi
}

# check_eq NAME GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: got '$2', want '$3'"; fi
}

# check_contains NAME HAYSTACK NEEDLE
check_contains() {
	case "$2" in
	*"$3"*) pass "$1" ;;
	*) fail "$1: output does not contain '$3'" ;;
	esac
}

# Change the byte at OFFSET of FILE to a different one (its complement): a
# fixed byte written over random data would already be there once in 256.
flip_byte() {	# FILE OFFSET
	python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    off = int(sys.argv[2]); f.seek(off); b = f.read(1)
    if len(b) != 1: sys.exit("flip_byte: %s is shorter than %d bytes" % (sys.argv[1], off + 1))
    f.seek(off); f.write(bytes([b[0] ^ 0xff]))
' "$1" "$2"
}

# shellcheck source=tests/lib/at-exit.sh
. "$TOP/tests/lib/at-exit.sh"

# A scratch directory, made when this file is sourced (so that `d=$(scratch)`,
# which runs in a subshell, cannot delete it early) and removed at exit
# (kept, and named on stderr, with AMIFORGE_TEST_KEEP=1: to debug a test).
_scratch=$(mktemp -d "${TMPDIR:-/tmp}/amiforge-test.XXXXXX")
if [ -n "${AMIFORGE_TEST_KEEP:-}" ]; then
	at_exit 'echo "scratch kept: $_scratch" >&2'
else
	at_exit 'rm -rf "$_scratch"'
fi
scratch() {
	echo "$_scratch"
}

# Path of the Debian 12 fixture image (built and cached on first use).
fixture_image() {
	"$TOP/tests/fixtures/build-debian-image.sh"
}

# guestfish (the tests' own tool) needs TCG where KVM cannot boot stock
# kernels; amiforge decides this itself from its KVM probe.
if [ ! -w /dev/kvm ] || [ -e /sys/module/kvm_pvm ]; then
	guestfish() { LIBGUESTFS_BACKEND_SETTINGS=force_tcg command guestfish "$@"; }
fi

need_libvirt() {
	[ "${AMIFORGE_TEST_LIBVIRT:-0}" = 1 ]
}

need_moto() {
	[ -n "${AMIFORGE_TEST_MOTO_URL:-}" ]
}

# ---- Prerequisites ----------------------------------------------------------
# A test whose prerequisite is missing FAILS (`make deps` installs them all),
# unless the user opted out of that kind of test explicitly:
#   AMIFORGE_TEST_SKIP=aws,libvirt   (comma or space separated)
# Kinds: aws (moto_server, boto3, the AWS CLI), libvirt (qemu:///system
# answering), guestfs (guestfish), clang (the fuzz build). An opted-out kind is
# skipped whether or not it is installed, with one SKIP line, which
# tests/run-tests.sh counts in its summary.

# opted_out KIND: the user listed KIND in AMIFORGE_TEST_SKIP.
opted_out() {
	local l=${AMIFORGE_TEST_SKIP:-}
	case ",${l// /,}," in
	*",$1,"*) return 0 ;;
	esac
	return 1
}

# prereq_why KIND: print what is missing for KIND and return 1, or return 0.
prereq_why() {
	case $1 in
	aws)
		need_moto || { echo "moto_server not running (none found, or it did not start)"; return 1; }
		python3 -c 'import boto3' 2>/dev/null || { echo "python3 cannot import boto3"; return 1; }
		command -v aws >/dev/null || { echo "the AWS CLI (aws) is not installed"; return 1; }
		;;
	libvirt)
		need_libvirt || { echo "libvirt: qemu:///system does not answer"; return 1; }
		;;
	guestfs)
		command -v guestfish >/dev/null || { echo "guestfish (libguestfs) is not installed"; return 1; }
		;;
	clang)
		command -v "${CLANG:-clang}" >/dev/null || { echo "${CLANG:-clang} is not installed"; return 1; }
		;;
	zsh)
		command -v zsh >/dev/null || { echo "zsh is not installed"; return 1; }
		;;
	*)
		echo "unknown prerequisite kind '$1'"
		return 1
		;;
	esac
	return 0
}

# have KIND NAME: true when the tests of KIND can run. Otherwise prints one
# line, SKIP (the user opted out of KIND) or FAIL (KIND is missing), and
# returns 1: `have libvirt "clean: libvirt domain" && { ... }`.
have() {
	local why
	if opted_out "$1"; then
		skip "$2: AMIFORGE_TEST_SKIP=${AMIFORGE_TEST_SKIP} opts out of $1 tests"
		return 1
	fi
	if ! why=$(prereq_why "$1"); then
		fail "$2: missing prerequisite: $why (make deps installs it; AMIFORGE_TEST_SKIP=$1 skips these tests)"
		return 1
	fi
	return 0
}

# require KIND NAME: at the top of a script whose every check needs KIND:
# exits 0 after a SKIP (opted out) or 1 after a FAIL (missing).
require() {
	have "$1" "$2" && return 0
	opted_out "$1" && exit 0
	exit 1
}

# Exit status for the script: non-zero when any check failed.
finish() {
	[ "$_fails" -eq 0 ]
}
