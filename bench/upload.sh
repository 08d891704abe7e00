#!/bin/bash
# Upload paths to the same local moto, one run: an 8 GiB disk holding ~1 GiB
# of data (random 16 MiB extents spread over the disk) published
#   - --via ebs from the qcow2 (EBS direct: only blocks holding data),
#   - --via import-snapshot from the streamOptimized VMDK (amiforge's S3
#     multipart upload; the import itself is the test fixture's, not timed),
#   - `aws s3 cp` of the same VMDK (the AWS CLI's multipart upload).
# Prints bytes sent and wall time per path as a table. moto is Python: rates
# are moto's, not AWS's; the bytes column is what matters across paths.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export TOP
AMIFORGE=${AMIFORGE:-$TOP/amiforge}
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/amiforge-bench-upload.XXXXXX")
S=$LOGDIR
# shellcheck source=tests/lib/services.sh
. "$TOP/tests/lib/services.sh"
services_start
[ -n "$AMIFORGE_TEST_MOTO_URL" ] || { echo "bench: moto_server not available" >&2; exit 1; }
# shellcheck source=tests/fixtures/aws/lib.sh
. "$TOP/tests/fixtures/aws/lib.sh"
trap 'aws_fixtures_stop; services_stop; rm -rf "$S" "$AWSFX_DIR"' EXIT

python3 - "$S/disk.raw" <<'PY'
import os, random, sys
r = random.Random(1)
with open(sys.argv[1], "wb") as f:
    f.truncate(8 << 30)
    for i in range(64):                       # 64 x 16 MiB = 1 GiB of data
        f.seek(i * (128 << 20) + r.randrange(0, 96 << 20) // 4096 * 4096)
        f.write(os.urandom(16 << 20))
PY
qemu-img convert -f raw -O qcow2 "$S/disk.raw" "$S/disk.qcow2"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$S/disk.raw" "$S/disk.vmdk"
rm -f "$S/disk.raw"
fx=$(start_import_fixture) || exit 1
aws_env "$fx"
py 's3.create_bucket(Bucket="bench-upload", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})'

now() { date +%s.%N; }
t0=$(now)
"$AMIFORGE" -q publish "$S/disk.qcow2" --via ebs --name bench-ebs --json >"$S/ebs.json" 2>"$S/ebs.err" ||
	{ echo "bench: ebs publish failed: $(tail -1 "$S/ebs.err")" >&2; exit 1; }
t_ebs=$(python3 -c "print($(now) - $t0)")
t0=$(now)
"$AMIFORGE" -q publish "$S/disk.vmdk" --bucket bench-upload --name bench-s3 --json >"$S/s3.json" \
	2>"$S/s3.err" || { echo "bench: import publish failed: $(tail -1 "$S/s3.err")" >&2; exit 1; }
t_imp=$(python3 -c "print($(now) - $t0)")
t0=$(now)
aws s3 cp --only-show-errors "$S/disk.vmdk" s3://bench-upload/cli.vmdk >/dev/null 2>"$S/cli.err" ||
	{ echo "bench: aws s3 cp failed: $(tail -1 "$S/cli.err")" >&2; exit 1; }
t_cli=$(python3 -c "print($(now) - $t0)")

mib() { python3 -c "print('%.0f' % ($1 / 1048576))"; }
printf '%-46s %12s %10s\n' "path (8 GiB disk, ~1 GiB data, local moto)" "MiB sent" "wall s"
printf '%-46s %12s %10.1f\n' "amiforge --via ebs (qcow2, EBS direct)" \
	"$(mib "$(jq .bytes_uploaded "$S/ebs.json")")" "$t_ebs"
printf '%-46s %12s %10.1f\n' "amiforge --via import-snapshot: S3 upload" \
	"$(mib "$(jq .bytes_uploaded "$S/s3.json")")" "$(python3 -c "print($(jq .timings_ms.upload "$S/s3.json") / 1000)")"
printf '%-46s %12s %10.1f\n' "  (whole publish incl. fixture import)" "" "$t_imp"
printf '%-46s %12s %10.1f\n' "aws s3 cp of the streamOptimized VMDK" \
	"$(mib "$(stat -c %s "$S/disk.vmdk")")" "$t_cli"
jq -r '"ebs: \(.ebs.blocks_sent) blocks sent of \(.ebs.blocks_data) holding data"' "$S/ebs.json"
