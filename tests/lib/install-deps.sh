#!/bin/sh
# Install every Debian package amiforge needs to build, test and run, and
# the AWS test service: moto (not packaged by Debian 12) from the Python
# registry into the project's virtualenv .venv/, unless a moto_server is
# found already (tests/lib/moto.sh says where it looks).
# Idempotent: runs apt-get update only when something is missing.
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)

PKGS="build-essential pkg-config clang libclang-rt-14-dev
 libvirt-dev libvirt-daemon-system libvirt-clients
 qemu-system-x86 qemu-utils ovmf
 libguestfs-dev libguestfs0 guestfish linux-image-amd64
 libcurl4-openssl-dev libssl-dev libarchive-dev libyaml-dev libjansson-dev libxml2-dev libdeflate-dev libsqlite3-dev rpm
 debootstrap extlinux syslinux-common e2fsprogs dosfstools fdisk xz-utils zstd
 python3 xxd libarchive-tools
 tidy chromium groff-base man-db python3-jsonschema valgrind
 jq curl awscli python3-boto3 python3-venv zsh cron openssh-server openssh-client
 qemu-system-arm qemu-efi-aarch64 qemu-user-static mtools cpio"

# arm64 guests (issue 22): the aarch64 agent is cross-built with Debian's
# cross compiler and linked statically with arm64's libcrypto (multiarch:
# dpkg's arm64 architecture added); the tests' arm64 disk takes busybox
# from arm64's archive too. On an arm64 host the cross direction flips.
case $(dpkg --print-architecture) in
amd64)
	PKGS="$PKGS gcc-aarch64-linux-gnu libc6-dev-arm64-cross libssl-dev:arm64"
	FOREIGN=arm64 ;;
arm64)
	PKGS="$PKGS gcc-x86-64-linux-gnu libc6-dev-amd64-cross libssl-dev:amd64 qemu-system-x86 ovmf"
	FOREIGN=amd64 ;;
*)
	FOREIGN= ;;
esac
if [ -n "$FOREIGN" ] && ! dpkg --print-foreign-architectures | grep -qx "$FOREIGN"; then
	echo "deps: adding dpkg architecture $FOREIGN (the cross-built agent's libcrypto)"
	if [ "$(id -u)" != 0 ]; then sudo dpkg --add-architecture "$FOREIGN"; else dpkg --add-architecture "$FOREIGN"; fi
	FORCE_UPDATE=1
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ] && [ -z "${FORCE_UPDATE:-}" ]; then
	echo "deps: all packages present"
else
	if [ "$(id -u)" != 0 ]; then
		SUDO=sudo
	else
		SUDO=
	fi
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# Wait for another apt run (a shared machine) rather than fail at once.
	$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
	# shellcheck disable=SC2086
	$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing
fi

# moto: the one found, else moto[server]==$MOTO_PIN into .venv/.
# shellcheck source=tests/lib/moto.sh
. "$TOP/tests/lib/moto.sh"
if moto=$(moto_server_path "$TOP"); then
	v=$(moto_version "$TOP" "$moto")
	echo "deps: moto_server present: $moto (moto $v)"
	[ "$v" = "$MOTO_PIN" ] ||
		echo "deps: warning: the tests are written against moto $MOTO_PIN, this is $v"
	exit 0
fi
echo "deps: no moto_server found: installing moto[server]==$MOTO_PIN into $TOP/.venv"
if ! python3 -m venv "$TOP/.venv" ||
	! "$TOP/.venv/bin/pip" install -q "moto[server]==$MOTO_PIN"; then
	rm -rf "$TOP/.venv"
	echo "deps: error: moto $MOTO_PIN could not be installed from the Python registry and" \
		"no moto_server is present: the AWS tests would fail (AMIFORGE_TEST_SKIP=aws" \
		"skips them)" >&2
	exit 1
fi
echo "deps: moto_server installed: $TOP/.venv/bin/moto_server (moto $(moto_version "$TOP" "$TOP/.venv/bin/moto_server"))"
