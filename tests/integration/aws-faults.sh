#!/bin/bash
# Failure handling of the S3 upload and VM Import path, with the fault proxy
# (a TEST FIXTURE) in front of the import fixture and moto:
#   - a part that always fails: the upload is aborted, no upload is left;
#   - Ctrl-C during the upload: aborted too, exit non-zero;
#   - 25% of all requests fail (500, 503, SlowDown/RequestLimitExceeded,
#     connection resets): upload and import still complete, content identical.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/fixtures/aws/lib.sh"

require aws aws-faults
dir=$AWSFX_DIR
id=$$
fx=$(start_import_fixture) || { fail "aws-faults: import fixture did not start"; exit 1; }
bucket=amiforge-faults-$id
aws_env "$fx"
py 's3.create_bucket(Bucket=sys.argv[1], CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})' "$bucket"
head -c 12M /dev/urandom >"$dir/d12.raw"
make_disk "$dir/d40.raw" 40

# 1. Part 2 always fails with 500: retried (3 attempts), then aborted.
proxy=$(start_fault_proxy "$fx" --rate 1 --faults 500 --match '^PUT .*partNumber=2&' \
	--stats "$dir/stats1") || { fail "aws-faults: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy "$AMIFORGE" publish "$dir/d12.raw" --bucket "$bucket" \
	--name "part-fails-$id" --part-size 5M >"$dir/out1" 2>&1
rc=$?
check "failing part: publish fails" test "$rc" -ne 0
check "failing part: error names the part and AWS's code" \
	grep -q "UploadPart 2 of s3://$bucket/.*InternalError" "$dir/out1"
check_eq "failing part: retried 3 times" "$(jq -r .faults "$dir/stats1")" 3
check "failing part: upload aborted" grep -q "aborted the multipart upload" "$dir/out1"

# 2. Ctrl-C while parts are in flight (the proxy slows parts down).
proxy=$(start_fault_proxy "$fx" --rate 0 --delay-ms 700 --match '^PUT .*partNumber=') ||
	{ fail "aws-faults: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy "$AMIFORGE" publish "$dir/d40.raw" --bucket "$bucket" \
	--name "interrupted-$id" --part-size 5M --parallel 2 >"$dir/out2" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
	grep -q "created s3-upload" "$dir/out2" && break
	sleep 0.1
done
sleep 0.5
kill -INT "$pid"
wait "$pid"
rc=$?
check "Ctrl-C: publish fails" test "$rc" -ne 0
check "Ctrl-C: reported as interrupted" grep -q "interrupted" "$dir/out2"
check "Ctrl-C: upload aborted" grep -q "aborted the multipart upload" "$dir/out2"

# 3. 25% faults of every kind on every request.
proxy=$(start_fault_proxy "$fx" --rate 0.25 --seed 42 --stats "$dir/stats3") ||
	{ fail "aws-faults: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy AWS_MAX_ATTEMPTS=8 "$AMIFORGE" publish "$dir/d40.raw" \
	--bucket "$bucket" --name "faulty-$id" --part-size 5M --keep-object --json \
	>"$dir/out3" 2>"$dir/err3"
rc=$?
check_eq "25% faults: publish completes" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$dir/err3" | sed 's/^/    | /'
key=$(jq -r .s3.url "$dir/out3" 2>/dev/null | sed "s|^s3://$bucket/||")
ami=$(jq -r .ami_id "$dir/out3" 2>/dev/null)
check "25% faults: faults of every kind fired" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if s["faults"] >= 8 and all(s.get(k, 0) for k in ("500", "503", "throttle", "reset")) else 1)' "$dir/stats3"

py 'h = hashlib.sha256()
for c in s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])["Body"].iter_chunks(1 << 20): h.update(c)
print("sha=" + h.hexdigest())
print("uploads=%d" % len(s3.list_multipart_uploads(Bucket=sys.argv[1]).get("Uploads", [])))
print("image=" + ec2.describe_images(ImageIds=[sys.argv[3]])["Images"][0]["State"])' \
	"$bucket" "$key" "$ami" >"$dir/facts" 2>&1
fact() { sed -n "s/^$1=//p" "$dir/facts"; }
check_eq "25% faults: object identical to the disk" "$(fact sha)" "$(sha256sum "$dir/d40.raw" | cut -d' ' -f1)"
check_eq "25% faults: AMI available" "$(fact image)" available
check_eq "no multipart upload left after failures, Ctrl-C and faults" "$(fact uploads)" 0
finish
