#!/bin/bash
# EBS direct upload, incremental snapshots and distribution against moto:
#   - the Debian fixture (qcow2, 4 GiB virtual) published --via ebs: every
#     block read back (ListSnapshotBlocks/GetSnapshotBlock) equals the disk,
#     zero blocks are absent, blocks sent (counted by the proxy) match the
#     blocks holding data and stay within the allocated extents;
#   - incremental after changing the disk (a qcow2 overlay written with
#     qemu-io: one changed block, one zeroed range, one new block; refused
#     as it is, having a backing file, then published flattened): only a
#     handful of blocks sent, the chain reads back as the changed disk;
#   - distribution to 3 regions with launch permissions checked through
#     DescribeImageAttribute, createVolumePermission on the snapshots; public
#     refused without --allow-public; a re-run makes no mutating call;
#   - 20% faults (500, 503, EBS throttling as HTTP 400, resets) on a raw
#     disk: same content.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/fixtures/aws/lib.sh"

require aws aws-ebs
img=$(fixture_image) || { fail "aws-ebs: fixture image"; exit 1; }
dir=$AWSFX_DIR
id=$$
aws_env "$AMIFORGE_TEST_MOTO_URL"
verify() { python3 "$TOP/tests/fixtures/aws/ebs-verify.py" --endpoint "$AMIFORGE_TEST_MOTO_URL" \
	--region "$AWS_REGION" "$@"; }
jf() { jq -r "$1" "$2" 2>/dev/null; }

# The disk as the guest sees it, for comparisons (sparse).
qemu-img convert -f qcow2 -O raw "$img" "$dir/base.raw"
cp "$img" "$dir/deb.qcow2"

# 1. Full upload through a fault-free proxy that counts PutSnapshotBlock.
proxy=$(start_fault_proxy "$AMIFORGE_TEST_MOTO_URL" --rate 0 --stats "$dir/stats1") ||
	{ fail "aws-ebs: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy "$AMIFORGE" publish "$dir/deb.qcow2" --via ebs --name "ebs-full-$id" \
	--tag owner=amiforge --json >"$dir/out1" 2>"$dir/err1"
rc=$?
check_eq "ebs: publish qcow2 completes" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$dir/err1" | sed 's/^/    | /'
snap1=$(jf .snapshot_id "$dir/out1")
ami1=$(jf .ami_id "$dir/out1")
sent1=$(jf .ebs.blocks_sent "$dir/out1")
verify "$snap1" "$dir/base.raw" >"$dir/v1" || fail "ebs: read back failed"
check_eq "ebs: every block read back equals the disk" "$(jf .mismatched "$dir/v1")" 0
check_eq "ebs: no all-zero block stored" "$(jf .zero_stored "$dir/v1")" 0
check_eq "ebs: blocks stored = blocks of the disk holding data" "$(jf .own "$dir/v1")" \
	"$(jf .data_blocks "$dir/v1")"
check_eq "ebs: PutSnapshotBlock calls (proxy count) = blocks sent" \
	"$(jf .ebs_puts "$dir/stats1")" "$sent1"
# Connections are kept between requests: at most one per worker (32) and a
# few for the calls around the upload, not one per block (libcurl's default
# cache of 5 connections closed one for nearly every block of 32 workers).
conns=$(jf .connections "$dir/stats1")
check "ebs: connections reused ($conns connections for $sent1 blocks)" \
	test "${conns:-999}" -le 40 -a "${conns:-0}" -gt 0 -a "$sent1" -gt 200
# Allocated data rounded out to 512 KiB blocks bounds what may be sent.
alloc=$(qemu-img map --output=json -f qcow2 "$img" | python3 -c '
import json, sys
B = 524288
s = set()
for e in json.load(sys.stdin):
    if e["data"] and not e["zero"]:
        s.update(range(e["start"] // B, (e["start"] + e["length"] - 1) // B + 1))
print(len(s))')
check "ebs: blocks sent ($sent1) <= blocks touched by allocated data ($alloc)" \
	test "$sent1" -le "$alloc" -a "$sent1" -gt 0
check "ebs: block manifest written beside the disk" test -s "$dir/ebs-blocks-$snap1.json"
check_eq "ebs: AMI registered from the snapshot" \
	"$(py 'print(ec2.describe_images(ImageIds=[sys.argv[1]])["Images"][0]["State"])' "$ami1")" available
check_eq "ebs: snapshot tagged at StartSnapshot" \
	"$(py 'print({t["Key"]: t["Value"] for t in ec2.describe_snapshots(SnapshotIds=[sys.argv[1]])["Snapshots"][0].get("Tags", [])}.get("owner"))' "$snap1")" amiforge

# 2. Incremental: an overlay with one changed block, one zeroed MiB where the
#    base has data, one new block far away.
qemu-img create -q -f qcow2 -b "$dir/deb.qcow2" -F qcow2 "$dir/deb2-overlay.qcow2"
zoff=$(qemu-img map --output=json -f qcow2 "$img" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["data"] and e["start"] >= (32 << 20) and e["length"] >= (2 << 20):
        print((e["start"] + (1 << 20) - 1) // (1 << 20) * (1 << 20)); break')
qemu-io -f qcow2 -c "write -P 0x55 1M 64k" -c "write -z $zoff 1M" -c "write -P 0xaa 3G 4k" \
	"$dir/deb2-overlay.qcow2" >/dev/null
qemu-img convert -f qcow2 -O raw "$dir/deb2-overlay.qcow2" "$dir/deb2.raw"
# A disk with a backing file is refused (builder/disk/admit.h): the
# overlay is published flattened.
out=$("$AMIFORGE" publish "$dir/deb2-overlay.qcow2" --via ebs --name "ebs-ovl-$id" 2>&1)
check_contains "ebs: an overlay (backing file) is refused" "$out" \
	"refused: a qcow2 with a backing file"
qemu-img convert -f qcow2 -O qcow2 "$dir/deb2-overlay.qcow2" "$dir/deb2.qcow2"
rm -f "$dir/deb2-overlay.qcow2"
"$AMIFORGE" publish "$dir/deb2.qcow2" --via ebs --name "ebs-incr-$id" \
	--parent-snapshot "$snap1" --json >"$dir/out2" 2>"$dir/err2"
rc=$?
check_eq "ebs incremental: publish completes" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$dir/err2" | sed 's/^/    | /'
snap2=$(jf .snapshot_id "$dir/out2")
sent2=$(jf .ebs.blocks_sent "$dir/out2")
check_eq "ebs incremental: parent recorded" "$(jf .ebs.parent_snapshot_id "$dir/out2")" "$snap1"
check "ebs incremental: a handful of blocks sent ($sent2: 1 changed, 2 zeroed, 1 new)" \
	test "$sent2" -ge 3 -a "$sent2" -le 6
verify "$snap2" "$dir/deb2.raw" "$snap1" >"$dir/v2" || fail "ebs incremental: read back failed"
check_eq "ebs incremental: child over parent equals the changed disk" "$(jf .mismatched "$dir/v2")" 0
# auto finds the newest manifest recorded beside the disk (snap2).
"$AMIFORGE" publish "$dir/deb2.qcow2" --via ebs --name "ebs-auto-$id" --parent-snapshot auto \
	--json >"$dir/out3" 2>"$dir/err3"
check_eq "ebs auto parent: newest recorded snapshot" "$(jf .ebs.parent_snapshot_id "$dir/out3")" "$snap2"
check_eq "ebs auto parent: nothing changed, nothing sent" "$(jf .ebs.blocks_sent "$dir/out3")" 0

# 3. Distribution to 3 regions.
org=arn:aws:organizations::123456789012:organization/o-abc1234567
dist=(--ami "$ami1" --copy-to us-east-1 --copy-to ap-south-1 --share 111122223333
      --share-org "$org" --tag dist=yes --block-dir "$dir" --json)
out=$("$AMIFORGE" publish --ami "$ami1" --copy-to us-east-1 --share-group all 2>&1)
check_contains "distribution: public refused without --allow-public" "$out" "--allow-public"
"$AMIFORGE" publish "${dist[@]}" >"$dir/d1" 2>"$dir/derr1"
rc=$?
check_eq "distribution: completes" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$dir/derr1" | sed 's/^/    | /'
check_eq "distribution: 3 regions" "$(jq -r '[.amis[].region] | join(",")' "$dir/d1")" \
	"eu-west-1,us-east-1,ap-south-1"
jq -r '.amis[] | "\(.region) \(.ami_id) \(.snapshot_ids[0])"' "$dir/d1" >"$dir/amis"
while read -r region ami snap; do
	perms=$(AWS_REGION=$region py '
lp = ec2.describe_image_attribute(ImageId=sys.argv[1], Attribute="launchPermission")["LaunchPermissions"]
cv = ec2.describe_snapshot_attribute(SnapshotId=sys.argv[2], Attribute="createVolumePermission")["CreateVolumePermissions"]
im = ec2.describe_images(ImageIds=[sys.argv[1]])["Images"][0]
print(sorted(p.get("UserId") or p.get("OrganizationArn") or p.get("Group") for p in lp),
      [p["UserId"] for p in cv], {t["Key"]: t["Value"] for t in im.get("Tags", [])}.get("dist"),
      im["State"])' "$ami" "$snap" 2>&1)
	check_eq "distribution: $region launch permissions, volume permission, tag" "$perms" \
		"['111122223333', '$org'] ['111122223333'] yes available"
done <"$dir/amis"

# Re-run: same AMIs, no mutating call (moto's request recorder).
curl -s -X POST "$AMIFORGE_TEST_MOTO_URL/moto-api/recorder/reset-recording" >/dev/null
curl -s -X POST "$AMIFORGE_TEST_MOTO_URL/moto-api/recorder/start-recording" >/dev/null
"$AMIFORGE" publish "${dist[@]}" >"$dir/d2" 2>"$dir/derr2"
rc=$?
curl -s -X POST "$AMIFORGE_TEST_MOTO_URL/moto-api/recorder/stop-recording" >/dev/null
curl -s "$AMIFORGE_TEST_MOTO_URL/moto-api/recorder/download-recording" >"$dir/rec"
check_eq "distribution re-run: completes" "$rc" 0
check_eq "distribution re-run: same AMIs" "$(jq -c '[.amis[].ami_id]' "$dir/d2")" \
	"$(jq -c '[.amis[].ami_id]' "$dir/d1")"
# The recorded Actions (moto stores form bodies base64-encoded: recording.py
# decodes them). The re-run must be seen reading (DescribeImages in every
# region), so that "no mutating call" is not just an unreadable recording.
python3 "$AWSFX/recording.py" "$dir/rec" actions >"$dir/rec.actions"
check_eq "distribution re-run: recording read (exit status)" "$?" 0
check_eq "distribution re-run: every recorded line parsed" "$(grep -c '^?unparsed$' "$dir/rec.actions")" 0
check "distribution re-run: recorder saw the re-run read the AMIs (DescribeImages)" \
	test "$(grep -cx DescribeImages "$dir/rec.actions")" -ge 3
check_eq "distribution re-run: no mutating call" \
	"$(grep -cxE 'CopyImage|ModifyImageAttribute|ModifySnapshotAttribute|CreateTags|RegisterImage|DeregisterImage|DeleteSnapshot' "$dir/rec.actions")" 0

# 4. Faults on every request: content still identical (a raw disk: the
#    other reader path; holes and data every few MiB).
make_disk "$dir/f.raw" 96
proxy=$(start_fault_proxy "$AMIFORGE_TEST_MOTO_URL" --rate 0.2 --seed 7 --stats "$dir/stats4") ||
	{ fail "aws-ebs: proxy did not start"; exit 1; }
AWS_ENDPOINT_URL=$proxy AWS_MAX_ATTEMPTS=6 "$AMIFORGE" publish "$dir/f.raw" --via ebs \
	--name "ebs-faults-$id" --block-dir "$dir/faults" --json >"$dir/out4" 2>"$dir/err4"
rc=$?
check_eq "ebs faults: publish completes" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$dir/err4" | sed 's/^/    | /'
check "ebs faults: faults of every kind fired" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if all(s.get(k, 0) for k in ("500", "503", "throttle", "reset")) else 1)' "$dir/stats4"
verify "$(jf .snapshot_id "$dir/out4")" "$dir/f.raw" >"$dir/v4" || fail "ebs faults: read back failed"
check_eq "ebs faults: content identical" "$(jf .mismatched "$dir/v4"),$(jf .own "$dir/v4")" \
	"0,$(jf .data_blocks "$dir/v4")"
finish
