#!/bin/bash
# Base image fetching and the cache: downloads from a local HTTP server
# (tests/fixtures/http-range-server.py), checksums, resume, retries, checksum
# files, archives, local files, cache list/prune. No guest.
. "$(dirname "$0")/../lib/common.sh"

# Not S=$(scratch): its EXIT trap would fire in the subshell at once.
scratch >/dev/null
S=$_scratch
export AMIFORGE_CACHE_DIR=$S/cache
export AMIFORGE_FETCH_RETRY_MS=50
mkdir -p "$S/www" "$S/r"
LOG=$S/requests.log
: >"$LOG"

# Images: a 4 MiB random raw disk, the same as qcow2, archives around them.
head -c 4194304 /dev/urandom >"$S/www/disk.raw"
qemu-img convert -f raw -O qcow2 "$S/www/disk.raw" "$S/www/img.qcow2"
cp "$S/www/img.qcow2" "$S/www/big.qcow2"
(cd "$S/www" && tar -czf disk.tar.gz --sparse disk.raw && tar -cJf disk.tar.xz disk.raw &&
	tar --zstd -cf disk.tar.zst disk.raw)
mkdir -p "$S/two" && cp "$S/www/disk.raw" "$S/www/img.qcow2" "$S/two/"
(cd "$S/two" && tar -czf "$S/www/two.tar.gz" disk.raw img.qcow2)
python3 - "$S/www" <<'PY'
import sys, tarfile, zipfile, io, os
root = sys.argv[1]
with zipfile.ZipFile(os.path.join(root, "img.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    z.write(os.path.join(root, "img.qcow2"), "images/img.qcow2")
    z.writestr("README", "not a disk\n")
with tarfile.open(os.path.join(root, "evil.tar.gz"), "w:gz") as t:
    data = open(os.path.join(root, "img.qcow2"), "rb").read()
    ti = tarfile.TarInfo("../../evil.qcow2"); ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))
PY
sha() { sha256sum "$1" | cut -d' ' -f1; }
RAW_SHA=$(sha "$S/www/disk.raw")
QCOW_SHA=$(sha "$S/www/img.qcow2")
(cd "$S/www" && sha256sum disk.raw img.qcow2 disk.tar.gz >SHA256SUMS && sha512sum img.qcow2 >SHA512SUMS)

python3 "$TOP/tests/fixtures/http-range-server.py" "$S/www" "$S/port" "$LOG" &
SRV=$!
at_exit_kill $SRV
for _ in $(seq 50); do [ -s "$S/port" ] && break; sleep 0.1; done
PORT=$(cat "$S/port")
U=http://127.0.0.1:$PORT

# recipe NAME PARENT-YAML...: write a recipe whose parent is the given lines.
recipe() {
	local f=$S/r/$1.yaml
	shift
	{ printf 'name: t\nversion: 1.0.0\nparent:\n'; printf '  %s\n' "$@"; } >"$f"
	echo "$f"
}
# fetch RECIPE: amiforge cache fetch; stderr in $S/err; a sanitizer report fails.
fetch() {
	local rc
	"$AMIFORGE" cache fetch "$@" 2>"$S/err"
	rc=$?
	if grep -q 'Sanitizer' "$S/err"; then fail "sanitizer report: $(grep -m1 Sanitizer "$S/err")"; fi
	return $rc
}
field() { sed -n "s/^$1 //p" <<<"$2"; }
requests() { grep -c "$1" "$LOG"; }
objects() { find "$AMIFORGE_CACHE_DIR/objects" -type f | wc -l; }
partials() { find "$AMIFORGE_CACHE_DIR/tmp" -name '*.partial' | wc -l; }

# 1. A good download, verified and stored by digest.
r=$(recipe good "url: $U/files/img.qcow2" "sha256: $QCOW_SHA")
out=$(fetch "$r")
check_eq "fetch: good download succeeds" "$?" 0
check_eq "fetch: format detected" "$(field format "$out")" qcow2
check_eq "fetch: digest recorded" "$(field sha256 "$out")" "$QCOW_SHA"
check_eq "fetch: stored in the cache by digest" "$(field path "$out")" \
	"$AMIFORGE_CACHE_DIR/objects/$QCOW_SHA"
check_eq "fetch: cached object identical" "$(sha "$(field path "$out")")" "$QCOW_SHA"
check_eq "fetch: reported as downloaded" "$(tail -n1 <<<"$out")" downloaded
mode() { stat -c '%a %U' "$1"; }
check_eq "fetch: cache object owner-read-only" "$(mode "$AMIFORGE_CACHE_DIR/objects/$QCOW_SHA")" \
	"400 $(id -un)"
check_eq "fetch: cache ref 0600" "$(mode "$AMIFORGE_CACHE_DIR/refs/sha256-$QCOW_SHA.json")" \
	"600 $(id -un)"
check_eq "fetch: cache and objects/ traversable only" \
	"$(mode "$AMIFORGE_CACHE_DIR") $(mode "$AMIFORGE_CACHE_DIR/objects")" \
	"711 $(id -un) 711 $(id -un)"
check_eq "fetch: refs/, local/, tmp/ 0700" "$(stat -c %a "$AMIFORGE_CACHE_DIR"/{refs,local,tmp})" \
	"$(printf '700\n700\n700')"

# 2. Second fetch: from the cache, no request.
n=$(requests /files/img.qcow2)
out=$(fetch "$r")
check_eq "fetch: second run served from the cache" "$(tail -n1 <<<"$out")" cached
check_eq "fetch: second run made no request" "$(requests /files/img.qcow2)" "$n"

# 3. Wrong checksum: fails, nothing stored, partial discarded.
before=$(objects)
WRONG=$(head -c 32 /dev/urandom | sha256sum | cut -d' ' -f1)
r=$(recipe bad "url: $U/files/disk.raw" "sha256: $WRONG")
fetch "$r" >/dev/null
check_eq "fetch: wrong checksum fails" "$?" 1
check_contains "fetch: wrong checksum message" "$(cat "$S/err")" "sha256 mismatch"
check_eq "fetch: wrong checksum stores nothing" "$(objects)" "$before"
check_eq "fetch: wrong checksum leaves no partial" "$(partials)" 0
check_eq "fetch: wrong checksum writes no ref" \
	"$(ls "$AMIFORGE_CACHE_DIR/refs" | grep -c "$WRONG")" 0
r=$(recipe samesum "url: $U/files/nope.qcow2" "sha256: $QCOW_SHA")
out=$(fetch "$r")
check_eq "fetch: content addressed: a known checksum needs no download" \
	"$(field sha256 "$out") $(requests /files/nope.qcow2)" "$QCOW_SHA 0"

# 4. Connection cut mid-way: retried with Range, completes, verified.
RAW512=$(sha512sum "$S/www/disk.raw" | cut -d' ' -f1)
r=$(recipe cut "url: $U/cut/disk.raw" "sha512: $RAW512")
out=$(fetch "$r")
check_eq "resume: cut download completes" "$?" 0
check_eq "resume: digest of the resumed file" "$(field sha256 "$out")" "$RAW_SHA"
check "resume: second request asked for the rest (Range)" \
	grep -Eq '^/cut/disk.raw bytes=[1-9][0-9]*-$' "$LOG"
check_eq "resume: exactly two requests" "$(requests /cut/disk.raw)" 2
check_contains "resume: retry reported" "$(cat "$S/err")" "retrying"

# 5. A partial left by an earlier run is resumed across invocations.
rm -rf "$AMIFORGE_CACHE_DIR"
mkdir -p "$AMIFORGE_CACHE_DIR/tmp"
head -c 1000000 "$S/www/big.qcow2" >"$AMIFORGE_CACHE_DIR/tmp/sha256-$QCOW_SHA.partial"
r=$(recipe across "url: $U/files/big.qcow2" "sha256: $QCOW_SHA")
out=$(fetch "$r")
check_eq "resume: earlier partial completed" "$(field sha256 "$out")" "$QCOW_SHA"
check "resume: asked from byte 1000000" grep -q '^/files/big.qcow2 bytes=1000000-$' "$LOG"
check_eq "resume: partial renamed away" "$(partials)" 0

# 6. A corrupt partial: resumed, mismatch, downloaded again from zero.
rm -rf "$AMIFORGE_CACHE_DIR"
mkdir -p "$AMIFORGE_CACHE_DIR/tmp"
head -c 1000000 /dev/urandom >"$AMIFORGE_CACHE_DIR/tmp/sha256-$QCOW_SHA.partial"
: >"$LOG"
out=$(fetch "$r")
check_eq "resume: corrupt partial replaced by a full download" "$(field sha256 "$out")" \
	"$QCOW_SHA"
check_eq "resume: corrupt partial: resumed then full request" \
	"$(cut -d' ' -f2 "$LOG" | tr '\n' ' ')" "bytes=1000000- - "

# 7. A server that ignores Range: the partial is restarted, not appended to.
rm -rf "$AMIFORGE_CACHE_DIR"
mkdir -p "$AMIFORGE_CACHE_DIR/tmp"
head -c 1000000 "$S/www/img.qcow2" >"$AMIFORGE_CACHE_DIR/tmp/sha256-$QCOW_SHA.partial"
r=$(recipe norange "url: $U/norange/img.qcow2" "sha256: $QCOW_SHA")
out=$(fetch "$r")
check_eq "resume: server without Range support still verified" "$(field sha256 "$out")" \
	"$QCOW_SHA"

# 8. Transient 503s are retried; 404 is not.
r=$(recipe flaky "url: $U/flaky/img.qcow2" "sha256: $QCOW_SHA")
rm -rf "$AMIFORGE_CACHE_DIR"
out=$(fetch "$r")
check_eq "retry: 503 twice then success" "$(field sha256 "$out")" "$QCOW_SHA"
check_eq "retry: three requests" "$(requests /flaky/img.qcow2)" 3
r=$(recipe missing "url: $U/files/nope.qcow2" "sha256: $WRONG")
fetch "$r" >/dev/null
check_eq "retry: 404 fails" "$?" 1
check_eq "retry: 404 not retried" "$(requests /files/nope.qcow2)" 1
check_contains "retry: 404 message" "$(cat "$S/err")" "HTTP 404"

# 9. Checksum files (GNU format, sha256 and sha512).
rm -rf "$AMIFORGE_CACHE_DIR"
r=$(recipe sums "url: $U/files/img.qcow2" "checksum_url: $U/files/SHA256SUMS")
out=$(fetch "$r")
check_eq "sums: SHA256SUMS lookup" "$(field sha256 "$out")" "$QCOW_SHA"
check "sums: ref keyed by the looked-up digest" test -f "$AMIFORGE_CACHE_DIR/refs/sha256-$QCOW_SHA.json"
r=$(recipe sums512 "url: $U/files/img.qcow2" "checksum_url: $U/files/SHA512SUMS")
out=$(fetch "$r")
check_eq "sums: SHA512SUMS lookup" "$(field sha256 "$out")" "$QCOW_SHA"
r=$(recipe sumsmissing "url: $U/files/big.qcow2" "checksum_url: $U/files/SHA256SUMS")
fetch "$r" >/dev/null
check_contains "sums: file not listed is an error" "$(cat "$S/err")" "no checksum for 'big.qcow2'"

# 10. Archives.
for a in disk.tar.gz disk.tar.xz disk.tar.zst; do
	r=$(recipe "arch-$a" "url: $U/files/$a" "sha256: $(sha "$S/www/$a")")
	out=$(fetch "$r")
	check_eq "archive $a: disk.raw unpacked and verified" "$(field sha256 "$out")" "$RAW_SHA"
	check_eq "archive $a: raw detected" "$(field format "$out")" raw
done
check_eq "archive: downloaded archives not kept as partials" "$(partials)" 0
r=$(recipe zip "url: $U/files/img.zip" "sha256: $(sha "$S/www/img.zip")")
out=$(fetch "$r")
check_eq "archive zip: qcow2 found in a subdirectory" "$(field sha256 "$out")" "$QCOW_SHA"
check_eq "archive zip: qcow2 detected" "$(field format "$out")" qcow2
r=$(recipe two "url: $U/files/two.tar.gz" "sha256: $(sha "$S/www/two.tar.gz")")
fetch "$r" >/dev/null
check_contains "archive: two disks need 'member'" "$(cat "$S/err")" "set parent.member"
r=$(recipe twomember "url: $U/files/two.tar.gz" "sha256: $(sha "$S/www/two.tar.gz")" \
	"member: img.qcow2")
out=$(fetch "$r")
check_eq "archive: member picks the disk" "$(field sha256 "$out")" "$QCOW_SHA"
r=$(recipe evil "url: $U/files/evil.tar.gz" "sha256: $(sha "$S/www/evil.tar.gz")")
fetch "$r" >/dev/null
check_contains "archive: '..' entry refused" "$(cat "$S/err")" "refusing entry '../../evil.qcow2'"
check "archive: nothing written outside the cache" test ! -e "$AMIFORGE_CACHE_DIR/../evil.qcow2"

# 11. Local files: used in place, digest cached by (dev, inode, size, mtime).
cp "$S/www/img.qcow2" "$S/local.qcow2"
r=$(recipe local "path: $S/local.qcow2")
out=$(fetch "$r")
check_eq "local: used in place" "$(field path "$out")" "$S/local.qcow2"
check_eq "local: digest" "$(field sha256 "$out")" "$QCOW_SHA"
check_contains "local: hashed the first time" "$(cat "$S/err")" "hashing"
fetch "$r" >/dev/null
check_eq "local: not hashed again" "$(grep -c hashing "$S/err")" 0
flip_byte "$S/local.qcow2" 200000
out=$(fetch "$r")
check_contains "local: changed file hashed again" "$(cat "$S/err")" "hashing"
check "local: changed file gets a new digest" test "$(field sha256 "$out")" != "$QCOW_SHA"
r=$(recipe localbad "path: $S/local.qcow2" "sha256: $QCOW_SHA")
fetch "$r" >/dev/null
check_contains "local: checksum mismatch refused" "$(cat "$S/err")" "sha256 mismatch"
cp "$S/www/disk.tar.gz" "$S/local.tar.gz"
r=$(recipe localtar "path: $S/local.tar.gz")
out=$(fetch "$r")
check_eq "local archive: unpacked into the cache" "$(field path "$out")" \
	"$AMIFORGE_CACHE_DIR/objects/$RAW_SHA"

# 12. cache list / prune.
list=$("$AMIFORGE" cache list)
check_contains "cache list: shows a downloaded image" "$list" "$U/files/img.zip"
check_contains "cache list: shows the local file" "$list" "(local, in place)"
json=$("$AMIFORGE" cache list --json)
check_eq "cache list --json: exit 0" "$?" 0
check_eq "cache list --json: one object per line of the list" "$(jq length <<<"$json")" \
	"$(($(wc -l <<<"$list") - 1))"
check_eq "cache list --json: the downloaded zip, cached, with its object's path" \
	"$(jq -r --arg u "$U/files/img.zip" '.[] | select(.source == $u) | [.state, .format, .path] | @tsv' <<<"$json")" \
	"$(printf 'cached\tqcow2\t%s' "$AMIFORGE_CACHE_DIR/objects/$QCOW_SHA")"
check_eq "cache list --json: the local file in place, no object path" \
	"$(jq -r '[.[] | select(.state == "local, in place")] | length, (.[0].path // "none")' <<<"$json" | tr '\n' ' ')" \
	"$(grep -c '(local, in place)' <<<"$list") none "
"$AMIFORGE" cache prune --older-than 1 >/dev/null
check_eq "cache prune --older-than 1: recent images kept" "$("$AMIFORGE" cache list)" "$list"
"$AMIFORGE" cache prune --older-than 0 >/dev/null 2>&1
check_eq "cache prune: --older-than 0 is a usage error" "$?" 2
touch -d '10 days ago' "$AMIFORGE_CACHE_DIR/refs/sha256-$(sha "$S/www/img.zip").json"
touch -d '10 days ago' "$AMIFORGE_CACHE_DIR/objects/$QCOW_SHA"
"$AMIFORGE" cache prune --older-than 5 >/dev/null
check_eq "cache prune --older-than 5: old ref removed" \
	"$(ls "$AMIFORGE_CACHE_DIR/refs" | grep -c "$(sha "$S/www/img.zip")")" 0
check "cache prune --older-than 5: object still referenced elsewhere kept" \
	test -f "$AMIFORGE_CACHE_DIR/objects/$QCOW_SHA"
find "$AMIFORGE_CACHE_DIR/objects" -type f -exec touch -d '2 minutes ago' {} +
"$AMIFORGE" cache prune >/dev/null
check_eq "cache prune: everything removed" "$(objects)" 0
check_eq "cache prune: list empty" "$("$AMIFORGE" cache list | wc -l)" 1

# 13. A cache someone else can write is refused, with one line naming it.
unsafe_cache() {
	local out rc
	out=$("$AMIFORGE" cache list 2>&1)
	rc=$?
	[ "$rc" = 1 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -qF -- "$1" <<<"$out" ||
		{ echo "exit $rc: $out"; return 1; }
}
chmod 0777 "$AMIFORGE_CACHE_DIR/objects"
check "cache: group/other-writable objects/ refused" \
	unsafe_cache "cache directory '$AMIFORGE_CACHE_DIR/objects': writable by group or others (mode 0777): refused"
chmod 0711 "$AMIFORGE_CACHE_DIR/objects"
chmod 0775 "$AMIFORGE_CACHE_DIR"
check "cache: group-writable cache refused" \
	unsafe_cache "cache directory '$AMIFORGE_CACHE_DIR': writable by group or others (mode 0775): refused"
chmod 0711 "$AMIFORGE_CACHE_DIR"
chown nobody "$AMIFORGE_CACHE_DIR/refs"
check "cache: refs/ of another user refused" \
	unsafe_cache "cache directory '$AMIFORGE_CACHE_DIR/refs': owned by uid $(id -u nobody), not by this user"
chown "$(id -u)" "$AMIFORGE_CACHE_DIR/refs"
ln -s "$AMIFORGE_CACHE_DIR" "$S/cache-link"
AMIFORGE_CACHE_DIR=$S/cache-link check "cache: a symlink as the cache refused" \
	unsafe_cache "cache directory '$S/cache-link': a symbolic link: refused"
check "cache: the repaired cache is accepted again" "$AMIFORGE" cache list

finish
