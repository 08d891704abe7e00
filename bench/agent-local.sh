#!/bin/bash
# The agent protocol's own cost without a VM (real agent on a unix socket).
# Guest numbers (boot to agent-ready, virtio-serial MB/s) need a VM: see the
# hypervisor benchmarks.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -s "$BUILD/libamiforge.a" "$BUILD/amiforge-agent" >/dev/null
cc -std=c11 -D_GNU_SOURCE -O2 -I. -Icommon -Ibuilder -o "$BUILD/bench-agent-local" \
	bench/agent-local.c "$BUILD/libamiforge.a" $(pkg-config --libs openssl) -lpthread
"$BUILD/bench-agent-local" "$BUILD/amiforge-agent"
