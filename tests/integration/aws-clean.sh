#!/bin/bash
# `amiforge clean` after a SIGKILLed `publish`, against moto (and the VM
# Import fixture): killed with a multipart upload open, while an import task
# runs, and while an EBS direct snapshot is being written. Each time, clean
# (--dry-run first) releases what the publish journaled: no open multipart
# upload, no staging object, the import task cancelled, no pending snapshot;
# then the same publish runs again to the end. The fault proxy's --delay-ms
# slows the upload down so that the kill lands in the middle of it.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/fixtures/aws/lib.sh"

require aws aws-clean
dir=$AWSFX_DIR
id=$$
fx=$(start_import_fixture) || { fail "aws-clean: import fixture did not start"; exit 1; }
aws_env "$fx"
B=amiforge-clean-$id
cd "$dir" || exit 1

# boto3 against the import fixture (which forwards the rest to moto).
fxpy() {
	python3 -c "
import boto3, json, sys, os
kw = dict(endpoint_url='$fx', region_name=os.environ['AWS_REGION'],
          aws_access_key_id='x', aws_secret_access_key='x')
s3 = boto3.client('s3', **kw); ec2 = boto3.client('ec2', **kw)
$1" "${@:2}"
}
fxpy "s3.create_bucket(Bucket='$B', CreateBucketConfiguration={'LocationConstraint': os.environ['AWS_REGION']})"
uploads() { fxpy "print(len(s3.list_multipart_uploads(Bucket='$B').get('Uploads', [])))"; }
objects() { fxpy "print(s3.list_objects_v2(Bucket='$B', Prefix='amiforge/').get('KeyCount', 0))"; }
snap_state() {	# the snapshot's state, or "gone"
	fxpy "
try:
    print(ec2.describe_snapshots(SnapshotIds=[sys.argv[1]])['Snapshots'][0]['State'])
except Exception as e:
    print('gone' if 'NotFound' in str(e) else 'error: %s' % e)" "$1"
}
task_state() { fxpy "print(ec2.describe_import_snapshot_tasks(ImportTaskIds=[sys.argv[1]])['ImportSnapshotTasks'][0]['SnapshotTaskDetail']['Status'])" "$1"; }

# kill_when NAME PATTERN CMD...: run CMD in the background, SIGKILL it once a
# journal under ./builds has a live line matching PATTERN. Sets $jdir.
kill_when() {
	local name=$1 pat=$2 pid
	shift 2
	"$@" >"$dir/$name.out" 2>&1 &
	pid=$!
	jdir=
	for _ in $(seq 600); do
		jdir=$(grep -l -E "$pat" builds/*/journal 2>/dev/null | head -n1)
		[ -n "$jdir" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	sleep 0.5
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	jdir=${jdir%/journal}
	check "$name: the publish journaled what it started" test -n "$jdir"
}

# 1. Killed with a multipart upload open (5 MiB parts, each held 1 s).
head -c 40M /dev/urandom >"$dir/mp.raw"
proxy=$(start_fault_proxy "$fx" --rate 0 --delay-ms 1000 --match 'partNumber=') ||
	{ fail "aws-clean: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy kill_when mp '^\+ [0-9]+ s3-upload ' \
	"$AMIFORGE" publish "$dir/mp.raw" --bucket "$B" --name "mp-$id" --part-size 5M --parallel 1
check_eq "mp: the kill left an open multipart upload" "$(uploads)" 1
out=$("$AMIFORGE" clean --dry-run "$jdir" 2>&1)
check_contains "mp: clean --dry-run lists the upload" "$out" "would release s3-upload s3://$B/"
check_eq "mp: --dry-run aborted nothing" "$(uploads)" 1
out=$("$AMIFORGE" clean "$jdir" 2>&1)
check_eq "mp: clean succeeds" "$?" 0
check_contains "mp: clean released the upload" "$out" "released s3-upload"
check_eq "mp: no open multipart upload left" "$(uploads)" 0
check_eq "mp: no staging object left" "$(objects)" 0
out=$("$AMIFORGE" publish "$dir/mp.raw" --bucket "$B" --name "mp-$id" --part-size 5M 2>&1)
check "mp: publish runs again to the end after clean" test $? -eq 0
check_eq "mp: the re-run left no staging object" "$(objects)" 0

# 2. Killed while the import task runs (every Describe held 60 s).
head -c 6M /dev/urandom >"$dir/imp.raw"
proxy2=$(start_fault_proxy "$fx" --rate 0 --delay-ms 60000 --match 'DescribeImportSnapshotTasks') ||
	{ fail "aws-clean: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy2 kill_when imp '^\+ [0-9]+ import-snapshot-task ' \
	"$AMIFORGE" publish "$dir/imp.raw" --bucket "$B" --name "imp-$id"
task=$(sed -n 's/^+ [0-9]* import-snapshot-task \([^ ]*\) .*/\1/p' "$jdir/journal")
check_eq "imp: the kill left the staging object" "$(objects)" 1
out=$("$AMIFORGE" clean --dry-run "$jdir" 2>&1)
check_contains "imp: clean --dry-run lists the task" "$out" "would release import-snapshot-task $task"
check_contains "imp: clean --dry-run lists the staging object" "$out" "would release s3-object s3://$B/"
out=$("$AMIFORGE" clean "$jdir" 2>&1)
check_eq "imp: clean succeeds" "$?" 0
check_eq "imp: the import task is cancelled" "$(task_state "$task")" deleted
check_eq "imp: no staging object left" "$(objects)" 0
check_eq "imp: no open multipart upload left" "$(uploads)" 0
out=$("$AMIFORGE" publish "$dir/imp.raw" --bucket "$B" --name "imp-$id" 2>&1)
check "imp: publish runs again to the end after clean" test $? -eq 0

# 3. Killed while the EBS direct snapshot is written (every block held 1 s).
head -c 16M /dev/urandom >"$dir/ebs.raw"
proxy3=$(start_fault_proxy "$fx" --rate 0 --delay-ms 1000 --match '/blocks/') ||
	{ fail "aws-clean: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy3 kill_when ebs '^\+ [0-9]+ snapshot ' \
	"$AMIFORGE" publish "$dir/ebs.raw" --via ebs --name "ebs-$id" --parallel 2
snap=$(sed -n 's/^+ [0-9]* snapshot \([^ ]*\) .*/\1/p' "$jdir/journal")
# moto shows a started snapshot "completed" at once (AWS: "pending"): either
# way no AMI uses it and the publish never saw it through.
st=$(snap_state "$snap")
check "ebs: the kill left the started snapshot ($st)" test -n "$snap" -a "$st" != gone
out=$("$AMIFORGE" clean --dry-run "$jdir" 2>&1)
check_contains "ebs: clean --dry-run lists the snapshot" "$out" "would release snapshot $snap"
out=$("$AMIFORGE" clean "$jdir" 2>&1)
check_eq "ebs: clean succeeds" "$?" 0
check_eq "ebs: the unfinished snapshot is deleted" "$(snap_state "$snap")" gone
out=$("$AMIFORGE" publish "$dir/ebs.raw" --via ebs --name "ebs-$id" --json 2>"$dir/ebs2.err")
check "ebs: publish runs again to the end after clean" test $? -eq 0
snap2=$(echo "$out" | jq -r .snapshot_id 2>/dev/null)
check_eq "ebs: the re-run's snapshot is completed" "$(snap_state "$snap2")" completed
out=$("$AMIFORGE" clean 2>&1)
check_contains "clean: nothing left under ./builds" "$out" "nothing to clean"
# (A completed snapshot an AMI maps is kept by clean; moto's RegisterImage
# does not record the mapping it is given, so that is not testable here.)
finish
