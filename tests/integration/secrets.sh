#!/bin/bash
# Credentials in a parent URL (user:password@ and a presigned query) never
# reach validate's output, the logs, the cache's refs or manifest.json; what
# a build writes under builds/ is 0600/0700. A local HTTP server
# (tests/fixtures/http-range-server.py) serves the image; the build stops at
# its hypervisor connection (a tls URI nobody answers), after the base stage:
# no guest boots.
. "$(dirname "$0")/../lib/common.sh"

scratch >/dev/null
S=$_scratch
export AMIFORGE_CACHE_DIR=$S/cache
mkdir -p "$S/www" "$S/r" "$S/w"
LOG=$S/requests.log
: >"$LOG"
head -c 1048576 /dev/urandom >"$S/www/disk.raw"
qemu-img convert -f raw -O qcow2 "$S/www/disk.raw" "$S/www/img.qcow2"
SHA=$(sha256sum "$S/www/img.qcow2" | cut -d' ' -f1)
python3 "$TOP/tests/fixtures/http-range-server.py" "$S/www" "$S/port" "$LOG" &
SRV=$!
at_exit_kill $SRV
for _ in $(seq 50); do [ -s "$S/port" ] && break; sleep 0.1; done
PORT=$(cat "$S/port")

PASSC=PassCanary41
SIGC=SigCanary42
TOKC=TokCanary43
CREDC=CredCanary44
URL="http://builder:$PASSC@127.0.0.1:$PORT/files/img.qcow2?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=$CREDC%2F20260101&X-Amz-Signature=$SIGC&X-Amz-Security-Token=$TOKC&X-Amz-Expires=3600"
cat >"$S/r/web.yaml" <<Y
name: web
version: 1.0.0
parent:
  url: "$URL"
  sha256: $SHA
vm:
  driver: libvirt
  connect: qemu+tls://127.0.0.1:9/system
Y
no_canary() {	# NAME FILE...: none of the canaries in the files
	local hits
	hits=$(grep -l -e "$PASSC" -e "$SIGC" -e "$TOKC" -e "$CREDC" "${@:2}" 2>/dev/null)
	if [ -z "$hits" ]; then pass "$1"; else fail "$1: found in $hits"; fi
}

"$AMIFORGE" validate "$S/r/web.yaml" >"$S/validate.out" 2>&1
check_eq "validate: recipe with a credentialed parent URL is valid" "$?" 0
check "validate: the parent is shown (host and path)" \
	grep -q "parent http://127.0.0.1:$PORT/files/img.qcow2?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600" "$S/validate.out"
no_canary "validate: no password, signature, token or credential in the output" "$S/validate.out"

"$AMIFORGE" -v cache fetch "$S/r/web.yaml" >"$S/fetch.out" 2>&1
check_eq "cache fetch: downloads with the credentials" "$?" 0
check "cache fetch: the server saw the request" grep -q "/files/img.qcow2" "$LOG"
no_canary "cache fetch --verbose: no secret in the output" "$S/fetch.out"
check "cache: a ref was written" test -n "$(ls "$S/cache/refs/" 2>/dev/null)"
no_canary "cache: no secret in the refs" "$S"/cache/refs/*
check "cache: the ref keeps the source host" grep -q "127.0.0.1:$PORT/files/img.qcow2" "$S"/cache/refs/*

rm -rf "$S/cache"
(cd "$S/w" && "$AMIFORGE" -v build "$S/r/web.yaml") >"$S/build.out" 2>&1
check "build: stops at the hypervisor connection" test $? -ne 0
bd=$(ls -d "$S"/w/builds/web-1.0.0-* 2>/dev/null | head -n1)
check "build: a build directory" test -n "$bd"
check "build: the base stage ran" grep -q "127.0.0.1:$PORT/files/img.qcow2" "$bd/manifest.json"
no_canary "build --verbose: no secret in the output" "$S/build.out"
no_canary "build: no secret in build.log, manifest.json, the journal" \
	"$bd/build.log" "$bd/manifest.json" "$bd/journal"
no_canary "build: no secret anywhere under the build directory or the cache" \
	$(find "$bd" "$S/cache" -type f -size -1M)
check_eq "build: the build directory is 0700" "$(stat -c %a "$bd")" 700
check_eq "build: build.log is 0600" "$(stat -c %a "$bd/build.log")" 600
check_eq "build: manifest.json is 0600" "$(stat -c %a "$bd/manifest.json")" 600
check_eq "build: the journal is 0600" "$(stat -c %a "$bd/journal")" 600
wide=$(find "$bd" -perm /022 | head -n3)
check_eq "build: nothing under the build directory is group/world-writable" "$wide" ""
finish
