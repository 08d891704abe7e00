#!/bin/bash
# Measures 7 and 8 (upload) of issue 9, against one local moto: an 8 GiB
# disk holding ~1 GiB of data (random 16 MiB extents spread over the disk)
# published
#   - --via ebs from the qcow2 (EBS direct: only blocks holding data),
#   - --via import-snapshot from the streamOptimized VMDK (amiforge's S3
#     multipart upload; the import itself is the test fixture's, not timed:
#     the upload time is amiforge's own timings_ms.upload),
#   - `aws s3 cp` of the same VMDK (the AWS CLI's multipart upload),
#   - --via import-snapshot from the qcow2: the VMDK made while it uploads
#     (timings_ms.upload: from CreateMultipartUpload to the complete
#     object), against `qemu-img convert -O vmdk -o subformat=streamOptimized`
#     then `aws s3 cp`, one after the other (row 7e, goal ≤ 1/3; 7e' the
#     same on the Debian test fixture, real compressible data),
#     and the streamed publish's peak RSS (7g, goal ≤ 64 MiB),
#   - CPU seconds (user + system, with the helpers waited for: qemu-img)
#     per GiB sent, EBS direct vs `aws s3 cp` (row 9a, goal ≤ 1/2), and
#     EBS direct's peak RSS for a 64 GiB sparse qcow2 holding 1 GiB (9b,
#     goal ≤ 64 MiB whatever the size; the peer column: aws s3 cp's),
# BENCH_RUNS times each; medians. Both tools reach moto through the same
# endpoint (tests/fixtures/aws's import fixture, a pass-through for S3).
# moto is Python: rates are moto's, not AWS's; the bytes rows are what
# carries over to AWS. Peak RSS (VmHWM) of amiforge's S3 publish and of
# `aws s3 cp` (one process each) from bench/tsrun.py.
#
#   bench/upload.sh            (BENCH_RUNS=N, BENCH_ONLY=..., BENCH_ROWS=file)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export TOP
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"
AMIFORGE=${AMIFORGE:-$TOP/amiforge}
want 7 || want 8 || want 9 || exit 0

na() {   # why: every selected row of this script is "not available"
	want 7 && row 7a "upload wall: amiforge EBS direct vs aws s3 cp" "n/a: $1" "n/a" s "aws s3 cp"
	want 8 && row 8b "peak RSS during an upload (VmHWM)" "n/a: $1" "n/a" MiB "aws s3 cp"
	exit 0
}
command -v aws >/dev/null || na "aws CLI missing"
command -v moto_server >/dev/null || na "moto_server missing"
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/amiforge-bench-upload.XXXXXX")
S=$LOGDIR
# shellcheck source=tests/lib/services.sh
. "$TOP/tests/lib/services.sh"
services_start
# shellcheck source=tests/fixtures/aws/lib.sh
. "$TOP/tests/fixtures/aws/lib.sh"
at_exit 'services_stop; rm -rf "$S"'	# and lib.sh's, its fixtures
[ -n "$AMIFORGE_TEST_MOTO_URL" ] || na "moto_server did not start"

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
if want 9; then	# 64 GiB virtual, 1 GiB of data (64 x 16 MiB, one per GiB)
	python3 - "$S/big.raw" <<'PY'
import os, random, sys
r = random.Random(2)
with open(sys.argv[1], "wb") as f:
    f.truncate(64 << 30)
    for i in range(64):
        f.seek(i * (1 << 30) + r.randrange(0, 1000 << 20) // 4096 * 4096)
        f.write(os.urandom(16 << 20))
PY
	qemu-img convert -f raw -O qcow2 "$S/big.raw" "$S/big.qcow2"
	rm -f "$S/big.raw"
fi
fx=$(start_import_fixture) || na "import fixture did not start"
aws_env "$fx"
py 's3.create_bucket(Bucket="bench-upload", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})'

TSRUN="$PY $TOP/bench/tsrun.py"
# json TSV: amiforge's --json document from tsrun's records.
json() { awk -F'\t' '$1 == "line" { sub(/^line\t[^\t]*\t/, ""); print }' "$1"; }
field() { awk -F'\t' -v k="$2" '$1 == k { print $2 }' "$1"; }   # TSV KEY

: >"$S/ebs" >"$S/s3" >"$S/cli" >"$S/stream" >"$S/peer" >"$S/big" >"$S/fstream" >"$S/fpeer"
# 7e': the same with real data: the Debian fixture (4 GiB virtual, compressed qcow2).
FX=
want 7 && FX=$("$TOP/tests/fixtures/build-debian-image.sh" 2>/dev/null)
for run in $(seq 1 "$BENCH_RUNS"); do
	blog "upload run $run: amiforge --via ebs"
	if $TSRUN "$S/ebs.tsv" --rss -- "$AMIFORGE" -q publish "$S/disk.qcow2" --via ebs \
		--name "bench-ebs-$run" --json 2>"$S/ebs.err"; then
		echo "$(field "$S/ebs.tsv" exit) $(json "$S/ebs.tsv" | jq .bytes_uploaded) $(field "$S/ebs.tsv" rss) $(field "$S/ebs.tsv" cpu)" >>"$S/ebs"
	else
		blog "ebs publish failed: $(tail -1 "$S/ebs.err")"
	fi
	blog "upload run $run: amiforge --via import-snapshot (S3 multipart)"
	if $TSRUN "$S/s3.tsv" --rss -- "$AMIFORGE" -q publish "$S/disk.vmdk" --bucket bench-upload \
		--name "bench-s3-$run" --json 2>"$S/s3.err"; then
		echo "$(json "$S/s3.tsv" | jq '.timings_ms.upload / 1000') $(json "$S/s3.tsv" | jq .bytes_uploaded) $(field "$S/s3.tsv" rss)" >>"$S/s3"
	else
		blog "import publish failed: $(tail -1 "$S/s3.err")"
	fi
	blog "upload run $run: aws s3 cp"
	if $TSRUN "$S/cli.tsv" --rss -- aws s3 cp --only-show-errors "$S/disk.vmdk" \
		"s3://bench-upload/cli-$run.vmdk" 2>"$S/cli.err"; then
		echo "$(field "$S/cli.tsv" exit) $(stat -c %s "$S/disk.vmdk") $(field "$S/cli.tsv" rss) $(field "$S/cli.tsv" cpu)" >>"$S/cli"
	else
		blog "aws s3 cp failed: $(tail -1 "$S/cli.err")"
	fi
	if want 7; then
		blog "upload run $run: amiforge --via import-snapshot from the qcow2 (streamed VMDK)"
		if $TSRUN "$S/st.tsv" --rss -- "$AMIFORGE" -q publish "$S/disk.qcow2" \
			--bucket bench-upload --name "bench-st-$run" --json 2>"$S/st.err"; then
			echo "$(json "$S/st.tsv" | jq '.timings_ms.upload / 1000') $(json "$S/st.tsv" | jq .bytes_uploaded) $(field "$S/st.tsv" rss)" >>"$S/stream"
		else
			blog "streamed publish failed: $(tail -1 "$S/st.err")"
		fi
		blog "upload run $run: qemu-img convert, then aws s3 cp"
		c=$(secs qemu-img convert -f qcow2 -O vmdk -o subformat=streamOptimized "$S/disk.qcow2" "$S/peer.vmdk")
		u=$(secs aws s3 cp --only-show-errors "$S/peer.vmdk" "s3://bench-upload/peer-$run.vmdk")
		echo "$c $u $(stat -c %s "$S/peer.vmdk" 2>/dev/null || echo nan)" >>"$S/peer"
		rm -f "$S/peer.vmdk"
	fi
	if want 7 && [ -n "$FX" ]; then
		blog "upload run $run: the Debian fixture, streamed, then qemu-img + aws s3 cp"
		if $TSRUN "$S/fst.tsv" -- "$AMIFORGE" -q publish "$FX" --bucket bench-upload \
			--name "bench-fst-$run" --json 2>"$S/fst.err"; then
			echo "$(json "$S/fst.tsv" | jq '.timings_ms.upload / 1000') $(json "$S/fst.tsv" | jq .bytes_uploaded)" >>"$S/fstream"
		else
			blog "streamed publish of the fixture failed: $(tail -1 "$S/fst.err")"
		fi
		c=$(secs qemu-img convert -f qcow2 -O vmdk -o subformat=streamOptimized "$FX" "$S/fpeer.vmdk")
		u=$(secs aws s3 cp --only-show-errors "$S/fpeer.vmdk" "s3://bench-upload/fpeer-$run.vmdk")
		echo "$c $u $(stat -c %s "$S/fpeer.vmdk" 2>/dev/null || echo nan)" >>"$S/fpeer"
		rm -f "$S/fpeer.vmdk"
	fi
	if want 9; then
		blog "upload run $run: amiforge --via ebs, 64 GiB sparse disk"
		if $TSRUN "$S/big.tsv" --rss -- "$AMIFORGE" -q publish "$S/big.qcow2" --via ebs \
			--name "bench-big-$run" --json 2>"$S/big.err"; then
			echo "$(field "$S/big.tsv" exit) $(json "$S/big.tsv" | jq .bytes_uploaded) $(field "$S/big.tsv" rss) $(field "$S/big.tsv" cpu)" >>"$S/big"
		else
			blog "ebs publish (64 GiB) failed: $(tail -1 "$S/big.err")"
		fi
	fi
	# moto keeps every object in memory: drop this run's copies.
	py 'for o in s3.list_objects_v2(Bucket="bench-upload").get("Contents", []): s3.delete_object(Bucket="bench-upload", Key=o["Key"])' \
		2>/dev/null
done

med() {   # FILE COLUMN [SCALE]: median of a column, divided by SCALE
	[ -s "$1" ] || { echo nan; return; }
	median $(awk -v c="$2" -v d="${3:-1}" '{ printf "%.6f\n", $c / d }' "$1")
}
C="aws s3 cp"
if want 7; then
	row 7a "upload 8 GiB disk/1 GiB data: EBS direct" "$(med "$S/ebs" 1)" "$(med "$S/cli" 1)" s "$C"
	row 7b "  same: S3 multipart (VMDK)" "$(med "$S/s3" 1)" "$(med "$S/cli" 1)" s "$C"
	row 7c "  MiB sent: EBS direct" "$(med "$S/ebs" 2 1048576)" "$(med "$S/cli" 2 1048576)" MiB "$C"
	row 7d "  MiB sent: S3 multipart (VMDK)" "$(med "$S/s3" 2 1048576)" "$(med "$S/cli" 2 1048576)" MiB "$C"
	peer=$(median $(awk '{ printf "%.6f\n", $1 + $2 }' "$S/peer"))
	row 7e "disk → S3 object: streamed VMDK vs convert + cp" "$(med "$S/stream" 1)" "$peer" s \
		"qemu-img + aws s3 cp"
	row 7f "  MiB sent: streamed VMDK vs qemu-img's VMDK" "$(med "$S/stream" 2 1048576)" \
		"$(med "$S/peer" 3 1048576)" MiB "qemu-img VMDK"
	row 7g "  peak RSS: streamed VMDK publish (VmHWM)" "$(med "$S/stream" 3 1024)" \
		"$(med "$S/cli" 3 1024)" MiB "$C"
	if [ -n "$FX" ]; then
		fpeer=$(median $(awk '{ printf "%.6f\n", $1 + $2 }' "$S/fpeer"))
		row 7e\' "  same, the Debian fixture (real data)" "$(med "$S/fstream" 1)" "$fpeer" s \
			"qemu-img + aws s3 cp"
		row 7f\' "  MiB sent: fixture, streamed vs qemu-img's VMDK" "$(med "$S/fstream" 2 1048576)" \
			"$(med "$S/fpeer" 3 1048576)" MiB "qemu-img VMDK"
	else
		row 7e\' "  same, the Debian fixture (real data)" "n/a: no fixture image" "n/a" s "qemu-img + aws s3 cp"
	fi
fi
if want 9; then	# CPU seconds per GiB sent: column 4 / (column 2 / GiB)
	cpg() { [ -s "$1" ] && median $(awk '$2 > 0 { printf "%.6f\n", $4 / ($2 / 1073741824) }' "$1") || echo nan; }
	row 9a "CPU s per GiB sent: EBS direct" "$(cpg "$S/ebs")" "$(cpg "$S/cli")" s "$C"
	row 9a\' "  same, 64 GiB sparse disk" "$(cpg "$S/big")" "$(cpg "$S/cli")" s "$C"
	row 9b "peak RSS: EBS direct, 64 GiB disk/1 GiB data" "$(med "$S/big" 3 1024)" "$(med "$S/cli" 3 1024)" MiB "$C"
fi
if want 8; then
	row 8b "peak RSS during an upload (VmHWM)" "$(med "$S/s3" 3 1024)" "$(med "$S/cli" 3 1024)" MiB "$C"
	row 8b\' "  same, amiforge EBS direct" "$(med "$S/ebs" 3 1024)" "$(med "$S/cli" 3 1024)" MiB "$C"
fi
exit 0
