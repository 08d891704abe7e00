#!/bin/bash
# A base image from an AMI (parent: {ami: ...} or {ssm: ...}, `cache fetch ami-...|ssm:NAME`),
# against moto (no guest: ami-build.sh, in the guests suite, builds from one):
#   - a disk with holes, published --via ebs and registered (arm64 + UEFI),
#     fetched back: the cached qcow2 equals the disk, the architecture and
#     boot mode come from the AMI, only blocks holding data were read
#     (counted by the fault proxy), each checked against EBS's checksum;
#   - a second fetch asks AWS nothing (the endpoint then points nowhere);
#   - a newer snapshot of the same lineage reads only its changed blocks
#     (ListChangedBlocks), another lineage or a tampered cached base all;
#   - a fetch broken by faults (no retries) fails with one line, keeps what
#     it has, and the next fetch resumes: fewer blocks read, same content;
#   - an unknown AMI, a malformed id: one clear line, non-zero exit.
# TEST FIXTURE: moto 5.2.1 drops RegisterImage's block device mapping;
# image-fixture.py describes registered AMIs as AWS documents.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/fixtures/aws/lib.sh"

require aws ami-parent
dir=$AWSFX_DIR
id=$$
aws_env "$AMIFORGE_TEST_MOTO_URL"
export AMIFORGE_CACHE_DIR=$dir/cache
jf() { jq -r "$1" "$2" 2>/dev/null; }
field() { sed -n "s/^$1 //p" "$2"; }

fx=$(start_image_fixture) || { fail "ami-parent: image fixture did not start"; exit 1; }
proxy=$(start_fault_proxy "$fx" --rate 0 --stats "$dir/stats1") ||
	{ fail "ami-parent: proxy did not start"; exit 1; }

# 1. A 96 MiB disk with holes, published as an arm64 UEFI AMI.
make_disk "$dir/disk.raw" 96
AWS_ENDPOINT_URL=$fx "$AMIFORGE" publish "$dir/disk.raw" --via ebs --name "ami-parent-$id" \
	--arch arm64 --boot-mode uefi --json >"$dir/pub" 2>"$dir/pub.err"
check_eq "ami-parent: publish --via ebs" "$?" 0
ami=$(jf .ami_id "$dir/pub")
sent=$(jf .ebs.blocks_sent "$dir/pub")
check "ami-parent: an AMI id ($ami)" test -n "$ami" -a "$ami" != null

# 2. Fetch it.
AWS_ENDPOINT_URL=$proxy "$AMIFORGE" cache fetch "$ami" >"$dir/f1" 2>"$dir/f1.err"
rc=$?
check_eq "ami-parent: cache fetch succeeds" "$rc" 0
[ "$rc" = 0 ] || tail -n 3 "$dir/f1.err" | sed 's/^/    | /'
check_eq "ami-parent: first fetch downloaded" "$(sed -n 4,7p "$dir/f1" | grep -c '^downloaded$')" 1
check_eq "ami-parent: format qcow2" "$(field format "$dir/f1")" qcow2
check_eq "ami-parent: architecture from the AMI" "$(field arch "$dir/f1")" arm64
check_eq "ami-parent: boot mode from the AMI" "$(field boot_mode "$dir/f1")" uefi
path=$(field path "$dir/f1")
check "ami-parent: cached base equals the published disk" \
	qemu-img compare -q -f raw -F qcow2 "$dir/disk.raw" "$path"
check_eq "ami-parent: blocks read = blocks stored (GetSnapshotBlock calls)" \
	"$(jf .ebs_gets "$dir/stats1")" "$sent"
check_eq "ami-parent: the cache object is owner-read-only" "$(stat -c %a "$path")" 400
check_eq "ami-parent: nothing left in the cache's tmp/" \
	"$(find "$AMIFORGE_CACHE_DIR/tmp" -type f ! -name '*.lock' | wc -l)" 0

# 3. Again: nothing asked of AWS (the endpoint is a closed port).
AWS_ENDPOINT_URL=http://127.0.0.1:9 "$AMIFORGE" cache fetch "$ami" >"$dir/f2" 2>"$dir/f2.err"
check_eq "ami-parent: second fetch succeeds with AWS unreachable" "$?" 0
check_eq "ami-parent: second fetch is cached" "$(grep -c '^cached$' "$dir/f2")" 1
check_eq "ami-parent: same object" "$(field path "$dir/f2")" "$path"
check_eq "ami-parent: arch kept in the cache" "$(field arch "$dir/f2")" arm64

# 3b. Incremental: a child snapshot (ParentSnapshotId) of the same disk with
# a few blocks changed, registered as a second AMI: only the changed blocks
# are read (ListChangedBlocks against the cached snapshot), the rest is
# copied from the cache; the result equals the changed disk block for block.
# A disk of another lineage is read whole (EBS refuses the comparison), and
# a cached base whose object no longer matches its digest is not used.
# TEST FIXTURE: moto 5.2.1 has no snapshot lineage (ParentSnapshotId is
# ignored, its ListChangedBlocks sees only the first snapshot's blocks);
# ebs-lineage-fixture.py serves them as AWS documents.
snap1=$(jf .snapshot_id "$dir/pub")
lf=$(_start_py ebs-lineage-fixture.py "$AMIFORGE_TEST_MOTO_URL" --stats "$dir/lstats") ||
	fail "ami-parent: lineage fixture did not start"
fx2=$(_start_py image-fixture.py "$lf") || fail "ami-parent: image fixture 2 did not start"
cp "$dir/disk.raw" "$dir/disk2.raw"
python3 - "$dir/disk2.raw" <<'PY'
import os, sys
B = 524288
with open(sys.argv[1], "r+b") as f:
    data = [i for i in range(os.path.getsize(sys.argv[1]) // B)
            if f.seek(i * B) is not None and f.read(B).strip(b"\0")]
    for i in data[1:4]:                 # three blocks rewritten
        f.seek(i * B + 1000); f.write(os.urandom(3000))
    f.seek(data[-1] * B); f.write(bytes(B))   # one zeroed
    hole = next(i for i in range(len(data) + 200) if i not in data)
    f.seek(hole * B + 7); f.write(b"new block in a hole")   # one new
PY
AWS_ENDPOINT_URL=$fx2 "$AMIFORGE" publish "$dir/disk2.raw" --via ebs --name "ami-parent-child-$id" \
	--parent-snapshot "$snap1" --json >"$dir/pub2" 2>"$dir/pub2.err"
check_eq "ami-parent: child snapshot published (--parent-snapshot)" "$?" 0
ami2=$(jf .ami_id "$dir/pub2")
sent2=$(jf .ebs.blocks_sent "$dir/pub2")
check "ami-parent: the child holds the 5 changed blocks only ($sent2)" test "$sent2" = 5
dproxy=$(start_fault_proxy "$fx2" --rate 0 --stats "$dir/stats-d") || fail "ami-parent: proxy d"
AWS_ENDPOINT_URL=$dproxy "$AMIFORGE" cache fetch "$ami2" >"$dir/d1" 2>"$dir/d1.err"
rc=$?
check_eq "ami-parent: incremental fetch succeeds" "$rc" 0
[ "$rc" = 0 ] || tail -n 3 "$dir/d1.err" | sed 's/^/    | /'
check "ami-parent: read against the cached snapshot" \
	grep -q "incremental from $snap1: 5 blocks changed" "$dir/d1.err"
check_eq "ami-parent: only the changed blocks fetched (GetSnapshotBlock calls)" \
	"$(jf .ebs_gets "$dir/stats-d")" 5
check_eq "ami-parent: ListChangedBlocks asked once" "$(jf .list_changed "$dir/lstats")" 1
check "ami-parent: incremental base equals the changed disk block for block" \
	qemu-img compare -q -f raw -F qcow2 "$dir/disk2.raw" "$(field path "$dir/d1")"
check "ami-parent: ... and differs from the first" \
	bash -c "! qemu-img compare -q -f raw -F qcow2 '$dir/disk.raw' '$(field path "$dir/d1")'"
make_disk "$dir/other.raw" 96
AWS_ENDPOINT_URL=$fx2 "$AMIFORGE" publish "$dir/other.raw" --via ebs --name "ami-parent-other-$id" \
	--json >"$dir/pub3" 2>"$dir/pub3.err"
ami3=$(jf .ami_id "$dir/pub3")
oproxy=$(start_fault_proxy "$fx2" --rate 0 --stats "$dir/stats-o") || fail "ami-parent: proxy o"
AWS_ENDPOINT_URL=$oproxy "$AMIFORGE" cache fetch "$ami3" >"$dir/o1" 2>"$dir/o1.err"
check_eq "ami-parent: another lineage: fetch succeeds" "$?" 0
check_eq "ami-parent: ... EBS refused each cached base as unrelated" "$(jf .unrelated "$dir/lstats")" 2
check_eq "ami-parent: ... so every block was read" "$(jf .ebs_gets "$dir/stats-o")" "$(jf .ebs.blocks_sent "$dir/pub3")"
check "ami-parent: ... equal to its disk" \
	qemu-img compare -q -f raw -F qcow2 "$dir/other.raw" "$(field path "$dir/o1")"
# A tampered cached base: the child fetched again into a copy of the cache
# whose snap1 object has one byte changed (its refs for ami2 removed).
cp -a "$AMIFORGE_CACHE_DIR" "$dir/cache-bad"
rm -f "$dir"/cache-bad/refs/ami-*"${ami2#ami-}".json "$dir"/cache-bad/refs/ebs-*-"$(jf .snapshot_id "$dir/pub2")".json
obj=$(jq -r .object "$dir"/cache-bad/refs/ebs-*-"$snap1".json)
chmod 600 "$dir/cache-bad/objects/$obj"
flip_byte "$dir/cache-bad/objects/$obj" 1000000
tproxy=$(start_fault_proxy "$fx2" --rate 0 --stats "$dir/stats-t") || fail "ami-parent: proxy t"
AMIFORGE_CACHE_DIR=$dir/cache-bad AWS_ENDPOINT_URL=$tproxy "$AMIFORGE" cache fetch "$ami2" \
	>"$dir/t1" 2>"$dir/t1.err"
check_eq "ami-parent: a tampered cached base: fetch succeeds" "$?" 0
check "ami-parent: ... saying the base does not match its digest" \
	grep -q "cached $snap1 .* does not match its digest" "$dir/t1.err"
check_eq "ami-parent: ... and reading the whole snapshot (the parent's blocks and the new one)" \
	"$(jf .ebs_gets "$dir/stats-t")" "$((sent + 1))"
check "ami-parent: ... equal to the changed disk" \
	qemu-img compare -q -f raw -F qcow2 "$dir/disk2.raw" "$(field path "$dir/t1")"

# 4. A recipe with parent: {ami: ...} resolves to the same cached object.
cat >"$dir/recipe.yaml" <<EOF
name: from-ami
version: 1.0.0
parent:
  ami: $ami
  region: $AWS_REGION
components: []
EOF
AWS_ENDPOINT_URL=http://127.0.0.1:9 "$AMIFORGE" validate "$dir/recipe.yaml" >"$dir/v" 2>&1
check_eq "ami-parent: recipe with parent.ami validates" "$?" 0
check "ami-parent: validate names the AMI" grep -q "parent $ami" "$dir/v"
AWS_ENDPOINT_URL=http://127.0.0.1:9 "$AMIFORGE" cache fetch "$dir/recipe.yaml" >"$dir/f3" 2>&1
check_eq "ami-parent: recipe's parent fetched from the cache" "$(field path "$dir/f3")" "$path"

# 4b. An SSM parameter naming the AMI (asked each time; the AMI then cached).
ssm_put() {	# NAME VALUE DATATYPE
	python3 -c "
import boto3, os, sys
c = boto3.client('ssm', endpoint_url=os.environ['AMIFORGE_TEST_MOTO_URL'],
                 region_name=os.environ['AWS_REGION'], aws_access_key_id='x', aws_secret_access_key='x')
c.put_parameter(Name=sys.argv[1], Value=sys.argv[2], Type='String', DataType=sys.argv[3], Overwrite=True)" "$@"
}
ssm_put /amiforge/test/base "$ami" aws:ec2:image || fail "ami-parent: put the SSM parameter"
AWS_ENDPOINT_URL=$proxy "$AMIFORGE" cache fetch ssm:/amiforge/test/base >"$dir/s1" 2>"$dir/s1.err"
check_eq "ami-parent: cache fetch ssm:NAME succeeds" "$?" 0
check_eq "ami-parent: the parameter's AMI, from the cache" "$(field path "$dir/s1")" "$path"
check "ami-parent: says which AMI the parameter names" grep -q "SSM parameter /amiforge/test/base names $ami" "$dir/s1.err"
printf 'name: from-ssm\nversion: 1.0.0\nparent: {ssm: /amiforge/test/base}\ncomponents: []\n' >"$dir/recipe-ssm.yaml"
AWS_ENDPOINT_URL=$proxy "$AMIFORGE" cache fetch "$dir/recipe-ssm.yaml" >"$dir/s2" 2>&1
check_eq "ami-parent: a recipe's parent.ssm resolves to the same base" "$(field path "$dir/s2")" "$path"
ssm_put /amiforge/test/bad "not-an-ami; rm -rf /" text
AWS_ENDPOINT_URL=$proxy "$AMIFORGE" cache fetch ssm:/amiforge/test/bad >/dev/null 2>"$dir/s3"
check_eq "ami-parent: a parameter that names no AMI fails" "$?" 1
check_contains "ami-parent: ... saying so" "$(cat "$dir/s3")" "not an AMI id"
AWS_ENDPOINT_URL=$proxy "$AMIFORGE" cache fetch ssm:/amiforge/test/none >/dev/null 2>"$dir/s4"
check_eq "ami-parent: a missing parameter fails" "$?" 1
check_contains "ami-parent: ... with SSM's reason" "$(cat "$dir/s4")" "ParameterNotFound"

# 5. Broken by faults, then resumed.
export AMIFORGE_CACHE_DIR=$dir/cache2
fp=$(start_fault_proxy "$fx" --rate 0.15 --seed 3 --faults 500 --match '^GET /snapshots/' \
	--stats "$dir/stats2") || fail "ami-parent: fault proxy did not start"
AWS_MAX_ATTEMPTS=1 AWS_ENDPOINT_URL=$fp "$AMIFORGE" cache fetch "$ami" >"$dir/f4" 2>"$dir/f4.err"
rc=$?
check "ami-parent: a fetch with failing GetSnapshotBlock fails (rc $rc)" test "$rc" -ne 0
check "ami-parent: the failure says what failed" grep -q "GetSnapshotBlock" "$dir/f4.err"
check "ami-parent: ... and that blocks are kept" grep -q "kept for the next attempt" "$dir/f4.err"
check "ami-parent: the partial download stays" \
	bash -c "ls '$AMIFORGE_CACHE_DIR'/tmp/*.raw.partial >/dev/null 2>&1"
got1=$(jf .ebs_gets "$dir/stats2")
proxy3=$(start_fault_proxy "$fx" --rate 0 --stats "$dir/stats3") || fail "ami-parent: proxy 3"
AWS_ENDPOINT_URL=$proxy3 "$AMIFORGE" cache fetch "$ami" >"$dir/f5" 2>"$dir/f5.err"
check_eq "ami-parent: the next fetch succeeds" "$?" 0
check "ami-parent: it resumed" grep -q "resuming" "$dir/f5.err"
got2=$(jf .ebs_gets "$dir/stats3")
check "ami-parent: resumed fetch read fewer blocks ($got2 < $sent)" test "${got2:-999999}" -lt "$sent"
check "ami-parent: resumed base equals the published disk" \
	qemu-img compare -q -f raw -F qcow2 "$dir/disk.raw" "$(field path "$dir/f5")"

# 6. Bad input.
AWS_ENDPOINT_URL=$proxy "$AMIFORGE" cache fetch ami-0123456789abcdef0 >/dev/null 2>"$dir/e1"
rc=$?
check "ami-parent: unknown AMI fails (rc $rc)" test "$rc" -ne 0
check_eq "ami-parent: unknown AMI: one line" "$(wc -l <"$dir/e1")" 1
check "ami-parent: unknown AMI: EC2's own reason ($(cat "$dir/e1"))" grep -q "InvalidAMIID.NotFound" "$dir/e1"
"$AMIFORGE" cache fetch ami-xyz >/dev/null 2>"$dir/e2"
check_eq "ami-parent: malformed id is a usage error" "$?" 2
check "ami-parent: malformed id named" grep -q "ami-xyz" "$dir/e2"
