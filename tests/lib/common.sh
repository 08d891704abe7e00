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

# A scratch directory, made when this file is sourced (so that `d=$(scratch)`,
# which runs in a subshell, cannot delete it early) and removed at exit.
_scratch=$(mktemp -d "${TMPDIR:-/tmp}/amiforge-test.XXXXXX")
trap 'rm -rf "$_scratch"' EXIT
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

# Exit status for the script: non-zero when any check failed.
finish() {
	[ "$_fails" -eq 0 ]
}
