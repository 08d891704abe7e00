#!/bin/bash
# amiforge publish through VM Import against moto + the ImportSnapshot
# fixture: 100 MiB multipart upload (content checked), ImportSnapshot
# progress, RegisterImage/CreateTags parameters (moto's request recorder),
# DescribeImages, failure paths (bad format, duplicate name), ImportImage.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/fixtures/aws/lib.sh"

require aws aws-publish
dir=$AWSFX_DIR
fx=$(start_import_fixture) || { fail "aws-publish: import fixture did not start"; exit 1; }
aws_env "$fx"
moto=$AMIFORGE_TEST_MOTO_URL
id=$$	# names unique per run: moto may be shared by earlier scripts

make_disk "$dir/disk.raw" 100
# A pass-through proxy counts the parts and their checksums. The request
# recorder starts once the upload is done (recording 100 MiB of parts would
# be slow); RegisterImage comes several polls later.
proxy=$(start_fault_proxy "$fx" --rate 0 --stats "$dir/stats") ||
	{ fail "aws-publish: proxy did not start"; exit 1; }
curl -sf -X POST "$moto/moto-api/recorder/reset-recording" >/dev/null
AWS_ENDPOINT_URL=$proxy AMIFORGE_AWS_POLL_MS=400 "$AMIFORGE" publish "$dir/disk.raw" \
	--bucket amiforge-pub --create-bucket \
	--name "pub-{{ name }}-$id" --description "amiforge test image" --tag env=ci \
	--tag owner=amiforge --boot-mode uefi --tpm --keep-object --parallel 4 --json \
	>"$dir/out.json" 2>"$dir/err" &
pid=$!
for _ in $(seq 1 600); do
	grep -q "created s3-object" "$dir/err" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
curl -sf -X POST "$moto/moto-api/recorder/start-recording" >/dev/null
wait "$pid"
rc=$?
curl -sf "$moto/moto-api/recorder/download-recording" >"$dir/recording"
curl -sf -X POST "$moto/moto-api/recorder/stop-recording" >/dev/null
curl -sf -X POST "$moto/moto-api/recorder/reset-recording" >/dev/null
check_eq "publish 100 MiB raw: exit status" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/    | /' "$dir/err"
ami=$(jq -r .ami_id "$dir/out.json" 2>/dev/null)
snap=$(jq -r .snapshot_id "$dir/out.json" 2>/dev/null)
task=$(jq -r .import_task_id "$dir/out.json" 2>/dev/null)
key=$(jq -r .s3.url "$dir/out.json" 2>/dev/null | sed 's|^s3://amiforge-pub/||')
check "publish: prints an AMI id" grep -q '"ami_id": "ami-' "$dir/out.json"
check "publish: import task id like AWS's" grep -Eq '^import-snap-[0-9a-f]{17}$' <<<"$task"
check "publish: import progress shown" grep -q "$task: active, converting (38%)" "$dir/err"
check "publish: every resource reported before use" test "$(jq -r '[.resources[].kind] | join(",")' "$dir/out.json")" = \
	"s3-upload,s3-object,import-snapshot-task,snapshot,image"

# One Python (boto3 is slow to start on a busy machine) for all moto-side facts.
py 'h = hashlib.sha256()
for c in s3.get_object(Bucket="amiforge-pub", Key=sys.argv[1])["Body"].iter_chunks(1 << 20): h.update(c)
print("sha=" + h.hexdigest())
print("uploads=%d" % len(s3.list_multipart_uploads(Bucket="amiforge-pub").get("Uploads", [])))
i = ec2.describe_images(ImageIds=[sys.argv[2]])["Images"][0]
print("image=%s %s %s" % (i["Name"], i["State"], {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("env")))
sn = ec2.describe_snapshots(SnapshotIds=[sys.argv[3]])["Snapshots"][0]
print("snaptag=%s" % {t["Key"]: t["Value"] for t in sn.get("Tags", [])}.get("owner"))' "$key" "$ami" "$snap" >"$dir/facts" 2>&1
fact() { sed -n "s/^$1=//p" "$dir/facts"; }
check_eq "s3 multipart: object content equals the file" "$(fact sha)" "$(sha256sum "$dir/disk.raw" | cut -d' ' -f1)"
check_eq "s3 multipart: no upload left" "$(fact uploads)" 0
check_eq "s3 multipart: 7 parts of 16 MiB, each with x-amz-checksum-sha256" \
	"$(jq -r '"\(.parts) \(.parts_with_checksum)"' "$dir/stats")" "7 7"

# The exact parameters sent, as moto recorded them.
params() {	# ACTION: print the form parameters of the recorded call, k=v per line
	python3 "$AWSFX/recording.py" "$dir/recording" params "$1"
}
reg=$(params RegisterImage)
for kv in "Name=pub-disk-$id" "Description=amiforge test image" "Architecture=x86_64" \
	"RootDeviceName=/dev/xvda" "VirtualizationType=hvm" \
	"BlockDeviceMapping.1.DeviceName=/dev/xvda" "BlockDeviceMapping.1.Ebs.SnapshotId=$snap" \
	"BlockDeviceMapping.1.Ebs.VolumeSize=1" "BlockDeviceMapping.1.Ebs.VolumeType=gp3" \
	"BlockDeviceMapping.1.Ebs.DeleteOnTermination=true" "EnaSupport=true" \
	"SriovNetSupport=simple" "BootMode=uefi" "ImdsSupport=v2.0" "TpmSupport=v2.0"; do
	check "RegisterImage sent $kv" grep -qxF "$kv" <<<"$reg"
done
tags=$(params CreateTags)
for kv in "ResourceId.1=$ami" "ResourceId.2=$snap" "Tag.1.Key=env" "Tag.1.Value=ci" \
	"Tag.2.Key=owner" "Tag.2.Value=amiforge"; do
	check "CreateTags sent $kv" grep -qxF "$kv" <<<"$tags"
done
check_eq "DescribeImages shows the AMI available" "$(fact image)" "pub-disk-$id available ci"
check_eq "the snapshot is tagged" "$(fact snaptag)" "amiforge"

# Same name again: refused before any upload.
out=$("$AMIFORGE" publish "$dir/disk.raw" --bucket amiforge-pub --name "pub-disk-$id" 2>&1)
rc=$?
check "duplicate AMI name: fails" test "$rc" -ne 0
check_contains "duplicate AMI name: says which AMI" "$out" "already exists in eu-west-1: $ami"
check "duplicate AMI name: nothing uploaded" test -z "$(grep 'created s3-upload' <<<"$out")"

# A qcow2 announced as raw (amiforge warns, reads it as raw: safe): the
# import task is deleted with AWS's message.
head -c 6M /dev/urandom >"$dir/small.raw"
qemu-img create -q -f qcow2 "$dir/q.qcow2" 6M
# A publish of a disk outside a build directory journals what it makes
# under ./builds (here $dir: tests/fixtures/aws/lib.sh); what the failed
# import left, `amiforge clean` removes.
out=$("$AMIFORGE" publish "$dir/q.qcow2" --format raw --bucket amiforge-pub \
	--name "bad-format-$id" 2>&1)
rc=$?
check "bad format: fails" test "$rc" -ne 0
check_contains "bad format: amiforge warned" "$out" "stated raw, but its content is a qcow2 image"
check_contains "bad format: AWS's message" "$out" \
	"failed: ClientError: Disk validation failed [Unsupported RAW File Format]"
check "bad format: shows deleting" grep -q ": deleting, ClientError" <<<"$out"
check_eq "bad format: the publish journaled what it left under ./builds" \
	"$(ls -d "$dir"/builds/q-publish-* 2>/dev/null | wc -l)" 1
out=$("$AMIFORGE" clean 2>&1)
check_eq "bad format: amiforge clean: exit status" "$?" 0
[ -z "$out" ] || sed 's/^/    | /' <<<"$out"
check "bad format: ... removed the S3 object" s3_gone amiforge-pub "amiforge/bad-format-$id/q.qcow2"
check "bad format: ... and the journal" test -z "$(ls -A "$dir/builds" 2>/dev/null)"
# A raw disk announced as VMDK is refused locally (disk admission).
out=$("$AMIFORGE" publish "$dir/small.raw" --format vmdk --bucket amiforge-pub --name "bad-vmdk-$id" 2>&1)
check_contains "raw stated vmdk: refused before upload" "$out" \
	"refused: stated vmdk, but its content is raw"
# A qcow2 holding no data at all streams as a VMDK of tables only, and imports.
out=$("$AMIFORGE" publish "$dir/q.qcow2" --bucket amiforge-pub --name "empty-$id" \
	--keep-object 2>&1)
check_eq "qcow2 with no data: streamed and imported" "$?" 0
py 's3.download_file("amiforge-pub", "amiforge/empty-%s/q.vmdk" % sys.argv[1], sys.argv[2])' \
	"$id" "$dir/empty.vmdk" 2>&1 | tail -n 1
check "qcow2 with no data: the object passes qemu-img check" qemu-img check -q -f vmdk "$dir/empty.vmdk"
check "qcow2 with no data: ... and reads as the (all-zero) source" \
	qemu-img compare -q -f qcow2 -F vmdk "$dir/q.qcow2" "$dir/empty.vmdk"
py 's3.delete_object(Bucket="amiforge-pub", Key="amiforge/empty-%s/q.vmdk" % sys.argv[1])' "$id"
out=$("$AMIFORGE" publish "$dir/small.raw" --bucket amiforge-pub --name 'a*b' 2>&1)
check_eq "invalid AMI name: refused as bad input, before any upload" "$?" 2
check_contains "invalid AMI name: refused" "$out" "--name 'a*b' is not a valid AMI name"
out=$("$AMIFORGE" publish "$dir/small.raw" --bucket amiforge-pub --arch arm64 --boot-mode legacy-bios 2>&1)
check_contains "arm64 + legacy-bios: refused" "$out" "arm64 images boot with UEFI only"

# ImportImage path; a build directory as input.
mkdir -p "$dir/build"
cp "$dir/small.raw" "$dir/build/image.raw"
out=$("$AMIFORGE" publish "$dir/build" --via import-image --bucket amiforge-pub \
	--name "imported-$id" --tag kind=image-import --json 2>"$dir/err2")
rc=$?
check_eq "import-image: exit status" "$rc" 0
iami=$(jq -r .ami_id <<<"$out" 2>/dev/null)
check "import-image: task id import-ami-" grep -q '"import_task_id": "import-ami-' <<<"$out"
py 'i = ec2.describe_images(ImageIds=[sys.argv[1]])["Images"][0]
print("image=%s %s" % (i["State"], {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("kind")))
print("keys=%s" % s3.list_objects_v2(Bucket="amiforge-pub", Prefix="amiforge/imported-%s/" % sys.argv[2]).get("KeyCount"))
print("uploads=%d" % len(s3.list_multipart_uploads(Bucket="amiforge-pub").get("Uploads", [])))' "$iami" "$id" >"$dir/facts" 2>&1
check_eq "import-image: AMI available and tagged" "$(fact image)" "available image-import"
check_eq "import-image: staging object deleted" "$(fact keys)" 0
check_eq "no multipart upload left behind by any run" "$(fact uploads)" 0
finish
