#!/bin/sh
# Install every Debian package amiforge needs to build, test and run.
# Idempotent: runs apt-get update only when something is missing.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
 libvirt-dev libvirt-daemon-system libvirt-clients
 qemu-system-x86 qemu-utils ovmf
 libguestfs-dev libguestfs0 guestfish linux-image-amd64
 libcurl4-openssl-dev libssl-dev libarchive-dev libyaml-dev libjansson-dev libxml2-dev libdeflate-dev
 debootstrap extlinux syslinux-common e2fsprogs dosfstools fdisk xz-utils zstd
 python3 xxd libarchive-tools
 tidy chromium groff-base man-db python3-jsonschema valgrind"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
