#!/bin/bash
# VM Import parameters against moto + the VM Import fixture, whose account
# has one service role (amiforge-import) and not the default vmimport:
#   - RoleName: absent means vmimport (refused here, as AWS refuses a role
#     the account lacks, naming it); --role-name of a role the account has
#     imports; an unknown one is refused with AWS's message;
#   - encryption: --encrypted --kms-key-id gives a snapshot encrypted with
#     that key (DescribeSnapshots); --kms-key-id alone is refused before any
#     upload; the fixture refuses KmsKeyId without Encrypted (boto3);
#   - ClientToken (boto3): the same token and parameters return the first
#     task, the same token with other parameters is refused, another token
#     starts another task.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/fixtures/aws/lib.sh"

require aws aws-import
dir=$AWSFX_DIR
fx=$(start_import_fixture --role amiforge-import) ||
	{ fail "aws-import: import fixture did not start"; exit 1; }
aws_env "$fx"
id=$$	# names unique per run: moto may be shared by earlier scripts
b=amiforge-imp-$id
make_disk "$dir/small.raw" 6
py 's3.create_bucket(Bucket=sys.argv[1], CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})' "$b" ||
	{ fail "aws-import: bucket"; exit 1; }

# 1. RoleName. A publish of a disk outside a build directory journals what
# it makes under ./builds (here $dir: tests/fixtures/aws/lib.sh), and what
# the refused imports left (their S3 objects) is then removed by `amiforge
# clean`.
out=$("$AMIFORGE" publish "$dir/small.raw" --bucket "$b" --name "role-default-$id" 2>&1)
rc=$?
check "role: default role where the account has no vmimport: fails" test "$rc" -ne 0
check_contains "role: default role: AWS's message names vmimport" "$out" \
	"The service role <vmimport> provided does not exist or does not have sufficient permissions"
out=$("$AMIFORGE" publish "$dir/small.raw" --bucket "$b" --name "role-bad-$id" \
	--role-name no-such-role 2>&1)
rc=$?
check "role: unknown role: fails" test "$rc" -ne 0
check_contains "role: unknown role: AWS's message names it" "$out" \
	"The service role <no-such-role> provided does not exist"
check_eq "role: the refused publishes journaled what they left under ./builds" \
	"$(ls -d "$dir"/builds/small-publish-* 2>/dev/null | wc -l)" 2
check "role: ... their S3 objects are still there" s3_has "$b" "amiforge/role-default-$id/small.raw"
out=$("$AMIFORGE" clean 2>&1)
check_eq "role: amiforge clean: exit status" "$?" 0
[ -z "$out" ] || sed 's/^/    | /' <<<"$out"
check "role: ... removed the S3 objects" s3_gone "$b" "amiforge/role-default-$id/small.raw" \
	"amiforge/role-bad-$id/small.raw"
check "role: ... and the journals" test -z "$(ls -A "$dir/builds" 2>/dev/null)"
"$AMIFORGE" publish "$dir/small.raw" --bucket "$b" --name "role-ok-$id" \
	--role-name amiforge-import --json >"$dir/out-role" 2>"$dir/err-role"
rc=$?
check_eq "role: a role the account has: publish succeeds" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$dir/err-role" | sed 's/^/    | /'
check "role: ... and registers an AMI" grep -Eq '"ami_id": "ami-[0-9a-f]+"' "$dir/out-role"

# 2. Encryption with a customer key (moto's KMS).
kms=$(py 'print(boto3.client("kms", **kw).create_key(Description="amiforge test")["KeyMetadata"]["Arn"])')
check "encryption: a KMS key for the test" grep -q '^arn:aws:kms:' <<<"$kms"
out=$("$AMIFORGE" publish "$dir/small.raw" --bucket "$b" --name "kms-only-$id" \
	--role-name amiforge-import --kms-key-id "$kms" 2>&1)
rc=$?
check "encryption: --kms-key-id without --encrypted: fails" test "$rc" -ne 0
check_contains "encryption: ... says why" "$out" "a KMS key needs --encrypted"
check "encryption: ... before any upload" test -z "$(grep 'created s3-upload' <<<"$out")"
"$AMIFORGE" publish "$dir/small.raw" --bucket "$b" --name "kms-$id" --role-name amiforge-import \
	--encrypted --kms-key-id "$kms" --json >"$dir/out-kms" 2>"$dir/err-kms"
rc=$?
check_eq "encryption: --encrypted --kms-key-id: publish succeeds" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$dir/err-kms" | sed 's/^/    | /'
snap=$(jq -r '.snapshot_id // empty' "$dir/out-kms" 2>/dev/null)
task=$(jq -r '.import_task_id // empty' "$dir/out-kms" 2>/dev/null)
# moto's DescribeSnapshots shows Encrypted but not the key: the key is read
# from the import task (the fixture keeps what was sent, as AWS reports it).
check_eq "encryption: the snapshot is encrypted" \
	"$(py 'print(ec2.describe_snapshots(SnapshotIds=[sys.argv[1]])["Snapshots"][0]["Encrypted"])' \
		"${snap:-none}" 2>&1 | tail -n 1)" "True"
check_eq "encryption: the import task used that key, encrypted" \
	"$(py 'e = boto3.client("ec2", **dict(kw, endpoint_url=os.environ["AWS_ENDPOINT_URL"]))
d = e.describe_import_snapshot_tasks(ImportTaskIds=[sys.argv[1]])["ImportSnapshotTasks"][0]["SnapshotTaskDetail"]
print(d.get("Encrypted"), d.get("KmsKeyId"), d.get("SnapshotId"))' "${task:-none}" 2>&1 | tail -n 1)" \
	"True $kms $snap"

# 3. The fixture itself, through boto3: KmsKeyId without Encrypted, the
#    default RoleName, ClientToken reuse.
py '
from botocore.exceptions import ClientError
e = boto3.client("ec2", **dict(kw, endpoint_url=os.environ["AWS_ENDPOINT_URL"]))
s3.put_object(Bucket=sys.argv[1], Key="tok.raw", Body=b"\1" * (1 << 20))
dc = {"Format": "RAW", "UserBucket": {"S3Bucket": sys.argv[1], "S3Key": "tok.raw"}}
def call(**k):
    try:
        return e.import_snapshot(DiskContainer=dc, **k)["ImportTaskId"]
    except ClientError as x:
        return "%s: %s" % (x.response["Error"]["Code"], x.response["Error"]["Message"])
tok = "amiforge-tok-" + sys.argv[2]
print("kms-alone=" + call(RoleName="amiforge-import", KmsKeyId="alias/aws/ebs"))
print("no-role=" + call(Description="no role"))
first = call(RoleName="amiforge-import", ClientToken=tok, Description="one")
print("first=" + first)
print("again=" + call(RoleName="amiforge-import", ClientToken=tok, Description="one"))
print("changed=" + call(RoleName="amiforge-import", ClientToken=tok, Description="two"))
print("other=" + call(RoleName="amiforge-import", ClientToken=tok + "-2", Description="one"))
t = e.describe_import_snapshot_tasks()["ImportSnapshotTasks"]
print("tasks-with-first=%d" % sum(1 for x in t if x["ImportTaskId"] == first))
print("descriptions-one=%d" % sum(1 for x in t if x.get("Description") == "one"))
' "$b" "$id" >"$dir/fx" 2>&1
fx_() { sed -n "s/^$1=//p" "$dir/fx"; }
check_eq "fixture: KmsKeyId without Encrypted refused" "$(fx_ kms-alone)" \
	"InvalidParameterCombination: KmsKeyId requires Encrypted to be set to true"
check_contains "fixture: no RoleName means vmimport (refused here, named)" "$(fx_ no-role)" \
	"InvalidParameter: The service role <vmimport> provided does not exist"
first=$(fx_ first)
check "fixture: a task started with a client token" grep -Eqx 'import-snap-[0-9a-f]{17}' <<<"$first"
check_eq "fixture: the same token and parameters return the first task" "$(fx_ again)" "$first"
check_contains "fixture: the same token with other parameters is refused" "$(fx_ changed)" \
	"IdempotentParameterMismatch"
other=$(fx_ other)
check "fixture: another token starts another task" \
	bash -c "[[ '$other' =~ ^import-snap-[0-9a-f]{17}$ ]] && [ '$other' != '$first' ]"
check_eq "fixture: one task for the reused token" "$(fx_ tasks-with-first)" 1
check_eq "fixture: two tasks described 'one' (first and other token)" "$(fx_ descriptions-one)" 2
[ -n "$first" ] || sed 's/^/    | /' "$dir/fx"
finish
