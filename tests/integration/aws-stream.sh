#!/bin/bash
# Streaming publish: a qcow2 through VM Import goes to S3 as a
# streamOptimized VMDK made while it uploads (no file in between), against
# moto + the VM Import fixture, through the fault proxy (which counts the
# UploadPart requests and their bytes):
#   - the disk has holes and ends in the middle of a grain; the object in S3
#     passes `qemu-img check` and `qemu-img compare` with the source, the
#     import succeeds (ImportSnapshot, and ImportImage from a build
#     directory holding only the qcow2); bytes sent <= 1.02 x the object;
#     every part carries its SHA-256 checksum;
#   - with UploadPart failing now and then (500, reset) the retries still
#     give an identical object;
#   - SIGINT in the middle: the upload is aborted, nothing left in S3;
#   - SIGKILL in the middle: `amiforge clean` aborts it, nothing left.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/fixtures/aws/lib.sh"

require aws aws-stream
dir=$AWSFX_DIR
id=$$
fx=$(start_import_fixture) || { fail "aws-stream: import fixture did not start"; exit 1; }
aws_env "$fx"
B=amiforge-stream-$id
cd "$dir" || exit 1
py 's3.create_bucket(Bucket=sys.argv[1], CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})' "$B" ||
	{ fail "aws-stream: bucket"; exit 1; }
uploads() { py 'print(len(s3.list_multipart_uploads(Bucket=sys.argv[1]).get("Uploads", [])))' "$B" 2>&1; }
objects() { py 'print(s3.list_objects_v2(Bucket=sys.argv[1]).get("KeyCount", 0))' "$B" 2>&1; }
stat_of() { jq -r ".$2 // 0" "$1" 2>/dev/null; }

# 48 MiB + 3 KiB: random runs with holes between, the last 3 KiB written
# (a grain cut short by the end of the disk).
python3 - "$dir/src.raw" <<'PY'
import os, random, sys
r = random.Random(17)
size = (48 << 20) + 3072
with open(sys.argv[1], "wb") as f:
    f.truncate(size)
    for off in range(0, 44 << 20, 4 << 20):
        f.seek(off + r.randrange(0, 1 << 20))
        f.write(os.urandom(r.randrange(512 << 10, 2 << 20)))
    f.seek(size - 3072)
    f.write(os.urandom(3072))
PY
qemu-img convert -q -f raw -O qcow2 "$dir/src.raw" "$dir/disk.qcow2" ||
	{ fail "aws-stream: qemu-img convert"; exit 1; }

# 1. Stream, keep the object, read it back.
proxy=$(start_fault_proxy "$fx" --rate 0 --stats "$dir/s1.json") ||
	{ fail "aws-stream: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy "$AMIFORGE" publish "$dir/disk.qcow2" --bucket "$B" --name "st-$id" \
	--part-size 5M --keep-object --json >"$dir/out1.json" 2>"$dir/err1"
rc=$?
check_eq "stream: publish of a qcow2 through VM Import succeeds" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$dir/err1" | sed 's/^/    | /'
check "stream: registers an AMI" grep -Eq '"ami_id": "ami-[0-9a-f]+"' "$dir/out1.json"
check "stream: said it streams (no file)" grep -q "as a streamOptimized VMDK to s3://$B/" "$dir/err1"
check_eq "stream: no VMDK file was written beside the disk" \
	"$(find "$dir" -maxdepth 1 -name '*.vmdk*' | wc -l)" 0
key=amiforge/st-$id/disk.vmdk
py 's3.download_file(sys.argv[1], sys.argv[2], sys.argv[3])' "$B" "$key" "$dir/got.vmdk" 2>&1 | tail -n 1
check "stream: the object is disk.vmdk, read back" test -s "$dir/got.vmdk"
check "stream: qemu-img check passes on the object" qemu-img check -q -f vmdk "$dir/got.vmdk"
check "stream: its stream layout walks (grains, tables, GD, footer, EOS: tests/lib/vmdk_check.py)" \
	python3 "$TOP/tests/lib/vmdk_check.py" "$dir/got.vmdk"
check_eq "stream: the object is streamOptimized" \
	"$(qemu-img info --output=json -f vmdk "$dir/got.vmdk" 2>&1 | jq -r '.["format-specific"].data["create-type"]' 2>&1)" \
	streamOptimized
check_eq "stream: its virtual size is the disk's (ends mid-grain)" \
	"$(qemu-img info --output=json -f vmdk "$dir/got.vmdk" 2>&1 | jq -r '.["virtual-size"]' 2>&1)" \
	$(((48 << 20) + 3072))
check "stream: qemu-img compare with the source: identical" \
	qemu-img compare -q -f qcow2 -F vmdk "$dir/disk.qcow2" "$dir/got.vmdk"
size=$(stat -c %s "$dir/got.vmdk")
sent=$(stat_of "$dir/s1.json" part_bytes)
parts=$(stat_of "$dir/s1.json" parts)
check_eq "stream: the object's size is what the manifest says was uploaded" \
	"$(jq -r .bytes_uploaded "$dir/out1.json" 2>&1)" "$size"
check "stream: several parts ($parts)" test "$parts" -ge 3
check "stream: bytes sent ($sent) <= 1.02 x the VMDK ($size)" \
	test "$sent" -gt 0 -a "$((sent * 100))" -le "$((size * 102))"
check_eq "stream: every part carries its SHA-256" "$(stat_of "$dir/s1.json" parts_with_checksum)" "$parts"
check_eq "stream: no multipart upload left" "$(uploads)" 0
# Not a terminal: progress as plain lines (no carriage return), the last at 100%.
check "stream: progress as plain lines, the last at 100% with rate and ETA" \
	grep -Eq '^vmdk to s3: 48 of 48 MiB \(100%\), [0-9.]+ MiB/s, ETA 0:00$' "$dir/err1"
check_eq "stream: no carriage return on a non-terminal" "$(tr -cd '\r' <"$dir/err1" | wc -c)" 0

# 2. UploadPart fails now and then: retried, the same content arrives.
proxy2=$(start_fault_proxy "$fx" --rate 0.5 --seed 1 --faults 500,reset --match 'partNumber=' \
	--stats "$dir/s2.json") || { fail "aws-stream: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy2 "$AMIFORGE" publish "$dir/disk.qcow2" --bucket "$B" --name "flt-$id" \
	--part-size 5M --keep-object --json >"$dir/out2.json" 2>"$dir/err2"
rc=$?
check_eq "faults: publish succeeds through UploadPart faults" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$dir/err2" | sed 's/^/    | /'
check "faults: faults were injected ($(stat_of "$dir/s2.json" faults))" \
	test "$(stat_of "$dir/s2.json" faults)" -ge 1
py 's3.download_file(sys.argv[1], sys.argv[2], sys.argv[3])' "$B" "amiforge/flt-$id/disk.vmdk" \
	"$dir/got2.vmdk" 2>&1 | tail -n 1
check "faults: the object equals the source (qemu-img compare)" \
	qemu-img compare -q -f qcow2 -F vmdk "$dir/disk.qcow2" "$dir/got2.vmdk"
py 's3.delete_object(Bucket=sys.argv[1], Key="amiforge/st-%s/disk.vmdk" % sys.argv[2])
s3.delete_object(Bucket=sys.argv[1], Key="amiforge/flt-%s/disk.vmdk" % sys.argv[2])' "$B" "$id"

# 3. SIGINT in the middle of the stream (each part held 1 s, one at a time).
proxy3=$(start_fault_proxy "$fx" --rate 0 --delay-ms 1000 --match 'partNumber=' \
	--stats "$dir/s3.json") || { fail "aws-stream: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy3 "$AMIFORGE" publish "$dir/disk.qcow2" --bucket "$B" --name "int-$id" \
	--part-size 5M --parallel 1 >"$dir/out3" 2>"$dir/err3" &
pid=$!
for _ in $(seq 300); do
	[ "$(stat_of "$dir/s3.json" parts)" -ge 2 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
check "sigint: the stream was under way (2 parts sent)" test "$(stat_of "$dir/s3.json" parts)" -ge 2
kill -INT "$pid"
wait "$pid"
rc=$?
check "sigint: publish fails" test "$rc" -ne 0 -a "$rc" -lt 128
check "sigint: says it aborted the upload" grep -q "aborted the multipart upload of s3://$B/" "$dir/err3"
check_eq "sigint: no multipart upload left" "$(uploads)" 0
check_eq "sigint: no object left" "$(objects)" 0

# 4. SIGKILL in the middle: the journal has the upload, clean aborts it.
proxy4=$(start_fault_proxy "$fx" --rate 0 --delay-ms 1000 --match 'partNumber=' \
	--stats "$dir/s4.json") || { fail "aws-stream: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy4 "$AMIFORGE" publish "$dir/disk.qcow2" --bucket "$B" --name "kill-$id" \
	--part-size 5M --parallel 1 >"$dir/out4" 2>&1 &
pid=$!
for _ in $(seq 300); do
	[ "$(stat_of "$dir/s4.json" parts)" -ge 2 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -9 "$pid"
wait "$pid" 2>/dev/null
jdir=$(grep -l -E '^\+ [0-9]+ s3-upload ' builds/*/journal 2>/dev/null | head -n 1)
jdir=${jdir%/journal}
check "sigkill: the publish journaled its upload" test -n "$jdir"
check_eq "sigkill: the kill left an open multipart upload" "$(uploads)" 1
out=$("$AMIFORGE" clean "${jdir:-/nonexistent}" 2>&1)
check_eq "sigkill: clean succeeds" "$?" 0
check_contains "sigkill: clean released the upload" "$out" "released s3-upload"
check_eq "sigkill: no multipart upload left" "$(uploads)" 0
check_eq "sigkill: no object left" "$(objects)" 0

# 5. ImportImage from a build directory that holds only the qcow2.
mkdir -p "$dir/build"
cp "$dir/disk.qcow2" "$dir/build/image.qcow2"
out=$("$AMIFORGE" publish "$dir/build" --via import-image --bucket "$B" --name "img-$id" \
	--json 2>"$dir/err5")
rc=$?
check_eq "import-image: a build directory's qcow2 streams and imports" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$dir/err5" | sed 's/^/    | /'
check "import-image: an AMI" grep -Eq '"ami_id": "ami-[0-9a-f]+"' <<<"$out"
check_eq "import-image: nothing left in S3" "$(objects) $(uploads)" "0 0"
finish
