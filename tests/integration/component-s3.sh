#!/bin/bash
# suite: guests  (make check-guests: slower guest tests, run by CI after make check)
# S3Download / S3Upload of the component engine against moto, with
# `amiforge component run DOC --local`: a single object, a prefix wildcard
# into a folder, a streamed 6 MiB object, missing objects, the
# x-amz-expected-bucket-owner header (recorded by moto; a wrong owner is
# refused by owner-proxy.py since moto does not enforce it), retries of
# streamed downloads (fault-proxy.py), ListObjectsV2 pages, S3Upload of a file, an empty file, a 6 MiB file (multipart), a
# folder and a wildcard set; content checked with aws-cli and sha256sum.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/fixtures/aws/lib.sh"

require aws component-s3
S=$AWSFX_DIR
moto=$AMIFORGE_TEST_MOTO_URL
aws_env "$moto"
b=amiforge-s3ops-$$
awsc() { aws --endpoint-url "$moto" --region "$AWS_REGION" "$@"; }

awsc s3 mb "s3://$b" >/dev/null || { fail "component-s3: create bucket"; exit 1; }
mkdir -p "$S/src/dir/sub" "$S/dl" "$S/up/tree/sub" "$S/logs"
head -c 10 /dev/urandom >"$S/src/one.txt"
head -c 6291456 /dev/urandom >"$S/src/big.bin"
echo a >"$S/src/dir/a.txt"
echo "with space" >"$S/src/dir/with space.txt"
head -c 3000 /dev/urandom >"$S/src/dir/sub/b.bin"
for f in one.txt big.bin dir/a.txt "dir/with space.txt" dir/sub/b.bin; do
	awsc s3 cp "$S/src/$f" "s3://$b/$f" >/dev/null || fail "component-s3: seed $f"
done
# a key beside the prefix that the wildcard must not pick
echo other | awsc s3 cp - "s3://$b/dirother.txt" >/dev/null

sha() { sha256sum <"$1" | cut -d' ' -f1; }
same() {	# name file1 file2
	if [ -f "$3" ] && [ "$(sha "$2")" = "$(sha "$3")" ]; then pass "$1"
	else fail "$1: '$3' differs from '$2' or is missing"; fi
}
run() {	# doc -> rc in $rc, stderr in $S/err
	"$AMIFORGE" component run "$1" --local --log-dir "$S/logs" >"$S/out" 2>"$S/err"
	rc=$?
}

# ---- S3Download ----
cat >"$S/down.yaml" <<YAML
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: One
        action: S3Download
        inputs:
          - {source: "s3://$b/one.txt", destination: "$S/dl/one.txt"}
          - {source: "s3://$b/big.bin", destination: "$S/dl/into/"}
      - name: Prefix
        action: S3Download
        inputs: [{source: "s3://$b/dir/*", destination: "$S/dl/tree"}]
YAML
run "$S/down.yaml"
if [ "$rc" = 0 ]; then pass "component-s3: download document succeeds"
else fail "component-s3: download exit $rc: $(tail -n 3 "$S/err")"; fi
same "component-s3: S3Download single object" "$S/src/one.txt" "$S/dl/one.txt"
same "component-s3: S3Download 6 MiB object into a folder (destination/)" \
	"$S/src/big.bin" "$S/dl/into/big.bin"
same "component-s3: S3Download prefix/* top file" "$S/src/dir/a.txt" "$S/dl/tree/a.txt"
same "component-s3: S3Download prefix/* key with a space" "$S/src/dir/with space.txt" \
	"$S/dl/tree/with space.txt"
same "component-s3: S3Download prefix/* nested key" "$S/src/dir/sub/b.bin" "$S/dl/tree/sub/b.bin"
n=$(find "$S/dl/tree" -type f | wc -l)
[ "$n" = 3 ] && pass "component-s3: S3Download prefix/* got exactly the 3 keys under dir/" ||
	fail "component-s3: S3Download prefix/* got $n files, want 3"
ls -a "$S/dl" "$S/dl/into" | grep -q '\.XXXXXX\|\.[A-Za-z0-9]\{6\}$' &&
	fail "component-s3: stray files beside the downloads" ||
	pass "component-s3: no stray files beside the downloads"

# overwrite: false on an existing file fails; a missing key fails clearly
cat >"$S/missing.yaml" <<YAML
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Missing
        action: S3Download
        inputs: [{source: "s3://$b/nope.txt", destination: "$S/dl/nope.txt"}]
YAML
run "$S/missing.yaml"
if [ "$rc" != 0 ] && grep -q "GetObject s3://$b/nope.txt: NoSuchKey" "$S/err" &&
   [ ! -e "$S/dl/nope.txt" ]; then pass "component-s3: missing key fails with NoSuchKey"
else fail "component-s3: missing key: exit $rc: $(tail -n 2 "$S/err")"; fi
cat >"$S/nobucket.yaml" <<YAML
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: NoBucket
        action: S3Download
        inputs: [{source: "s3://$b-missing/x/*", destination: "$S/dl/x"}]
YAML
run "$S/nobucket.yaml"
if [ "$rc" != 0 ] && grep -q "ListObjectsV2 s3://$b-missing/x/: NoSuchBucket" "$S/err"
then pass "component-s3: wildcard on a missing bucket fails with NoSuchBucket"
else fail "component-s3: missing bucket: exit $rc: $(tail -n 2 "$S/err")"; fi

# expectedBucketOwner: sent on ListObjectsV2 and GetObject (request recorder).
# moto 5.2.1 ignores the header, so a wrong owner cannot be made to fail here.
cat >"$S/owner.yaml" <<YAML
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Owner
        action: S3Download
        inputs:
          - {source: "s3://$b/dir/sub/*", destination: "$S/dl/owner", expectedBucketOwner: "111122223333"}
      - name: OwnerUp
        action: S3Upload
        inputs:
          - {source: "$S/src/one.txt", destination: "s3://$b/owner/", expectedBucketOwner: "111122223333"}
YAML
curl -sf -X POST "$moto/moto-api/recorder/reset-recording" >/dev/null
curl -sf -X POST "$moto/moto-api/recorder/start-recording" >/dev/null
run "$S/owner.yaml"
curl -sf -X POST "$moto/moto-api/recorder/stop-recording" >/dev/null
curl -sf "$moto/moto-api/recorder/download-recording" >"$S/recording"
[ "$rc" = 0 ] || fail "component-s3: expectedBucketOwner document: exit $rc: $(tail -n 2 "$S/err")"
python3 - "$S/recording" "$b" <<'PY' && pass "component-s3: x-amz-expected-bucket-owner sent on ListObjectsV2, GetObject, PutObject" || fail "component-s3: x-amz-expected-bucket-owner not sent everywhere"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
seen = set()
for r in rows:
    h = {k.lower(): v for k, v in r.get("headers", {}).items()}
    if sys.argv[2] not in r.get("url", "") + h.get("host", ""):
        continue
    kind = ("List" if "list-type=2" in r.get("qs", "") + r.get("url", "") else
            "Get" if r["method"] == "GET" else "Put" if r["method"] == "PUT" else r["method"])
    if h.get("x-amz-expected-bucket-owner") != "111122223333":
        print("missing on", r["method"], r.get("url"), file=sys.stderr); sys.exit(1)
    seen.add(kind)
sys.exit(0 if {"List", "Get", "Put"} <= seen else 1)
PY
# A wrong owner: moto ignores the header, so owner-proxy.py (a test fixture)
# answers 403 AccessDenied as S3 does; the right owner goes through it too.
op=$(_start_py owner-proxy.py "$moto" --owner 111122223333 --stats "$S/ostats") ||
	{ fail "component-s3: owner proxy did not start"; exit 1; }
rm -rf "$S/dl/owner"
AWS_ENDPOINT_URL=$op run "$S/owner.yaml"
[ "$rc" = 0 ] && [ -f "$S/dl/owner/b.bin" ] &&
	pass "component-s3: right expectedBucketOwner succeeds (owner-enforcing proxy)" ||
	fail "component-s3: right owner through the proxy: exit $rc: $(tail -n 2 "$S/err")"
cat >"$S/wrongowner.yaml" <<YAML
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: GetWrong
        action: S3Download
        onFailure: Continue
        inputs: [{source: "s3://$b/one.txt", destination: "$S/dl/wrong/one.txt", expectedBucketOwner: "999988887777"}]
      - name: ListWrong
        action: S3Download
        onFailure: Continue
        inputs: [{source: "s3://$b/dir/*", destination: "$S/dl/wrong/tree", expectedBucketOwner: "999988887777"}]
      - name: PutWrong
        action: S3Upload
        inputs: [{source: "$S/src/one.txt", destination: "s3://$b/wrong/one.txt", expectedBucketOwner: "999988887777"}]
YAML
AWS_ENDPOINT_URL=$op run "$S/wrongowner.yaml"
[ "$rc" != 0 ] && pass "component-s3: wrong expectedBucketOwner fails the document" ||
	fail "component-s3: wrong expectedBucketOwner: exit $rc"
for w in "GetWrong: Failed.*GetObject s3://$b/one.txt: AccessDenied" \
	 "ListWrong: Failed.*ListObjectsV2 s3://$b/dir/: AccessDenied" \
	 "PutWrong: Failed.*PutObject s3://$b/wrong/one.txt: AccessDenied"; do
	grep -q "$w" "$S/err" && pass "component-s3: wrong owner: ${w%%:*} denied" ||
		fail "component-s3: wrong owner: no '$w' in: $(grep Failed "$S/err" | head -n 3)"
done
[ ! -e "$S/dl/wrong" ] && pass "component-s3: wrong owner wrote nothing" ||
	fail "component-s3: wrong owner left $(find "$S/dl/wrong" | head -n 3)"
awsc s3api head-object --bucket "$b" --key wrong/one.txt >/dev/null 2>&1 &&
	fail "component-s3: wrong owner upload reached the bucket" ||
	pass "component-s3: wrong owner upload did not reach the bucket"

# Retries: GETs fail half the time (503, SlowDown, connection reset); the
# streamed download restarts from the beginning and the content is intact.
fp=$(start_fault_proxy "$moto" --rate 0.5 --seed 3 --match '^GET' \
	--faults 503,throttle,reset --stats "$S/fstats") ||
	{ fail "component-s3: fault proxy did not start"; exit 1; }
rm -rf "$S/dl"
mkdir -p "$S/dl"
AWS_ENDPOINT_URL=$fp AWS_MAX_ATTEMPTS=10 run "$S/down.yaml"
faults=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("faults", 0))' "$S/fstats")
if [ "$rc" = 0 ] && [ "$faults" -gt 0 ] && cmp -s "$S/src/big.bin" "$S/dl/into/big.bin" &&
   cmp -s "$S/src/dir/sub/b.bin" "$S/dl/tree/sub/b.bin"; then
	pass "component-s3: downloads survive $faults injected faults (retries)"
else fail "component-s3: downloads with faults: exit $rc, $faults faults: $(tail -n 2 "$S/err")"; fi

# ListObjectsV2 pagination: 1001 keys need two pages (continuation token).
py '
b = sys.argv[1]
for i in range(1001):
    s3.put_object(Bucket=b, Key="many/k%04d" % i, Body=b"%d" % i)
' "$b"
cat >"$S/many.yaml" <<YAML
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Many
        action: S3Download
        inputs: [{source: "s3://$b/many/*", destination: "$S/many"}]
YAML
run "$S/many.yaml"
n=$(find "$S/many" -type f 2>/dev/null | wc -l)
if [ "$rc" = 0 ] && [ "$n" = 1001 ] && [ "$(cat "$S/many/k1000")" = 1000 ]; then
	pass "component-s3: prefix/* over 1001 keys (two ListObjectsV2 pages)"
else fail "component-s3: 1001 keys: exit $rc, $n files: $(tail -n 2 "$S/err")"; fi

# ---- S3Upload ----
head -c 10 /dev/urandom >"$S/up/file.txt"
: >"$S/up/empty"
head -c 6291456 /dev/urandom >"$S/up/big6.bin"
echo t1 >"$S/up/tree/t1.txt"
echo t2 >"$S/up/tree/sub/t2.txt"
cat >"$S/upload.yaml" <<YAML
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Files
        action: S3Upload
        inputs:
          - {source: "$S/up/file.txt", destination: "s3://$b/up/"}
          - {source: "$S/up/empty", destination: "s3://$b/up/empty-renamed"}
          - {source: "$S/up/big6.bin", destination: "s3://$b/up/big6.bin"}
      - name: Folder
        action: S3Upload
        inputs: [{source: "$S/up/tree", destination: "s3://$b/tree", recurse: true}]
      - name: Wild
        action: S3Upload
        inputs: [{source: "$S/up/tree/*", destination: "s3://$b/wild/"}]
      - name: WildRecurse
        action: S3Upload
        inputs: [{source: "$S/up/tree/*", destination: "s3://$b/wildr/", recurse: true}]
YAML
run "$S/upload.yaml"
if [ "$rc" = 0 ]; then pass "component-s3: upload document succeeds"
else fail "component-s3: upload exit $rc: $(tail -n 3 "$S/err")"; fi
mkdir -p "$S/back"
check_up() {	# name local key
	rm -f "$S/back/x"
	awsc s3 cp "s3://$b/$3" "$S/back/x" >/dev/null 2>&1
	same "$1" "$2" "$S/back/x"
}
check_up "component-s3: S3Upload file to prefix/" "$S/up/file.txt" up/file.txt
check_up "component-s3: S3Upload empty file (PutObject)" "$S/up/empty" up/empty-renamed
check_up "component-s3: S3Upload 6 MiB file (multipart)" "$S/up/big6.bin" up/big6.bin
check_up "component-s3: S3Upload folder recurse nested" "$S/up/tree/sub/t2.txt" tree/sub/t2.txt
check_up "component-s3: S3Upload wildcard set" "$S/up/tree/t1.txt" wild/t1.txt
check_up "component-s3: S3Upload wildcard with recurse" "$S/up/tree/sub/t2.txt" wildr/sub/t2.txt
keys=$(awsc s3api list-objects-v2 --bucket "$b" --prefix wild/ --query 'Contents[].Key' --output text)
[ "$keys" = "wild/t1.txt" ] && pass "component-s3: wildcard without recurse skips sub-folders" ||
	fail "component-s3: wildcard without recurse uploaded '$keys'"

# ---- no credentials: a clear error, nothing sent ----
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
	"$AMIFORGE" component run "$S/missing.yaml" --local >"$S/out" 2>"$S/err"
rc=$?
if [ "$rc" != 0 ] && grep -q "S3 support not available: no AWS credentials found" "$S/err"
then pass "component-s3: no credentials gives a clear error"
else fail "component-s3: no credentials: exit $rc: $(tail -n 2 "$S/err")"; fi
grep -q "amiforge-test-secret" "$S"/logs/TOE_*/*.* "$S/err" 2>/dev/null &&
	fail "component-s3: the secret key reached the logs" ||
	pass "component-s3: secret key not in the logs"
# ---- in a guest (--image): the host moves the files, the guest gets no credentials ----
if have libvirt "component-s3: in a guest"; then
	img=$(fixture_image) || fail "component-s3: fixture image"
	cat >"$S/guest.yaml" <<YAML
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Down
        action: S3Download
        inputs:
          - {source: "s3://$b/big.bin", destination: "/root/s3/big.bin"}
          - {source: "s3://$b/dir/*", destination: "/root/s3/tree"}
      - name: NoCredentials
        action: ExecuteBash
        inputs:
          commands:
            - "! env | grep -q '^AWS_'"
            - "! grep -rqs amiforge-test-secret /root /tmp /run /etc"
            - "cat /root/s3/tree/sub/b.bin /root/s3/tree/a.txt > /root/s3/both"
      - name: Up
        action: S3Upload
        inputs:
          - {source: "/root/s3/*", destination: "s3://$b/guest/", recurse: true}
YAML
	"$AMIFORGE" component run "$S/guest.yaml" --image "$img" --log-dir "$S/glogs" \
		>"$S/gout" 2>"$S/gerr"
	rc=$?
	[ "$rc" = 0 ] && pass "component-s3: in a guest: S3Download, no credentials, S3Upload" ||
		fail "component-s3: in a guest: exit $rc: $(grep -i 'fail\|error' "$S/gerr" | tail -n 3)"
	check_up "component-s3: in a guest: 6 MiB object down and up again" "$S/src/big.bin" guest/big.bin
	cat "$S/src/dir/sub/b.bin" "$S/src/dir/a.txt" >"$S/both"
	check_up "component-s3: in a guest: prefix/* content as the guest saw it" "$S/both" guest/both
	check_up "component-s3: in a guest: nested key round trip" "$S/src/dir/sub/b.bin" guest/tree/sub/b.bin
fi
finish
