#!/bin/bash
# Untrusted disks (#13): crafted images that would make qemu read another
# file of this host — a qcow2 with an external data file, a qcow2 with a
# backing file, a raw file holding a VMDK descriptor, a sparse VMDK whose
# header defers to such a descriptor — and files that are not what they are
# said to be (a raw file stated qcow2; a qcow2 stated raw), given to
# `convert`, `cache fetch` (local and downloaded), `build`, `run`, `inspect`
# and `publish --via ebs|import-snapshot` (moto). Each is refused with one
# line naming the disk and why, before any guest, appliance or upload; the
# canary written in the host file is found in no file produced, and moto
# holds no new snapshot or object. Controls: qemu-img itself does read the
# canary through each crafted disk, and honest disks still pass. No guest
# boots, no appliance starts.
. "$(dirname "$0")/../lib/common.sh"

scratch >/dev/null
S=$_scratch
export AMIFORGE_CACHE_DIR=$S/cache
mkdir -p "$S/host" "$S/in" "$S/out" "$S/log" "$S/r" "$S/www"
HOST=$S/host/secret.img
CANARY="amiforge-canary-$$-$RANDOM$RANDOM"

# The crafted disks. Creating a qcow2 with a data file empties that file,
# so the canary is written into the host file afterwards.
: >"$HOST"
qemu-img create -q -f qcow2 -o data_file="$HOST",data_file_raw=on "$S/in/data.qcow2" 1M
truncate -s 1M "$HOST"
printf '%s\n' "$CANARY" | dd of="$HOST" conv=notrunc status=none
qemu-img create -q -f qcow2 -b "$HOST" -F raw "$S/in/backing.qcow2" 1M
printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 2048 FLAT "%s" 0\n' \
	"$HOST" >"$S/in/descriptor.img"
qemu-img create -q -f vmdk "$S/in/sparse.vmdk" 1M
python3 - "$S/in/sparse.vmdk" "$S/in/capacity0.vmdk" "$HOST" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
off = struct.unpack_from("<Q", d, 28)[0] * 512
struct.pack_into("<Q", d, 12, 0)            # capacity 0: qemu follows the descriptor
desc = ('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
        'createType="monolithicFlat"\nRW 2048 FLAT "%s" 0\n' % sys.argv[3]).encode()
d[off:off + len(desc) + 1] = desc + b"\0"
open(sys.argv[2], "wb").write(d)
PY
head -c 1048576 /dev/urandom >"$S/in/raw-named.qcow2"        # raw, named qcow2
cp "$S/in/backing.qcow2" "$S/in/qcow2-inside.raw"              # a qcow2, to be stated raw
qemu-img create -q -f qcow2 "$S/in/honest.qcow2" 1M
EVIL="data.qcow2 backing.qcow2 descriptor.img capacity0.vmdk"

# Controls: each crafted disk really does read the host file through qemu.
control() {	# NAME FORMAT
	rm -f "$S/control.raw"
	qemu-img convert -f "$2" -O raw "$S/in/$1" "$S/control.raw" 2>/dev/null
	if grep -qa "$CANARY" "$S/control.raw" 2>/dev/null; then
		pass "control: qemu-img convert -f $2 $1 reads the host file's canary"
	else
		fail "control: qemu-img convert -f $2 $1 did not read the canary (crafted disk not hostile)"
	fi
	rm -f "$S/control.raw"
}
control data.qcow2 qcow2
control backing.qcow2 qcow2
control descriptor.img vmdk
control capacity0.vmdk vmdk

# refused NAME WANT CMD...: CMD fails, its stderr has one "refused" line
# naming the disk with WANT, and it ran no longer than LIMIT seconds.
n=0
refused() {
	local name=$1 want=$2 t0=$SECONDS rc
	shift 2
	n=$((n + 1))
	"$@" >"$S/log/$n.out" 2>"$S/log/$n.err" </dev/null
	rc=$?
	if [ "$rc" -eq 0 ]; then
		fail "$name: accepted (exit 0)"
	elif ! grep -q "refused: .*$want" "$S/log/$n.err"; then
		fail "$name: exit $rc without '$want': $(tail -n 1 "$S/log/$n.err")"
	elif [ "$(grep -c 'refused: ' "$S/log/$n.err")" -ne 1 ]; then
		fail "$name: the refusal is not one line: $(grep 'refused: ' "$S/log/$n.err" | head -3)"
	elif [ $((SECONDS - t0)) -gt "${LIMIT:-30}" ]; then
		fail "$name: refused only after $((SECONDS - t0)) s"
	else
		pass "$name: refused ($(grep -o 'refused: .*' "$S/log/$n.err" | cut -c10-70)...)"
	fi
}
why_of() {
	case $1 in
	data.qcow2) echo "external data file" ;;
	backing.qcow2) echo "backing file" ;;
	descriptor.img) echo "VMDK descriptor" ;;
	capacity0.vmdk) echo "defers to a descriptor" ;;
	esac
}
fmt_of() { case $1 in *.qcow2) echo qcow2 ;; *) echo vmdk ;; esac; }

# 1. convert: detected and stated, every output format.
for d in $EVIL; do
	refused "convert $d" "$(why_of "$d")" \
		"$AMIFORGE" convert "$S/in/$d" --format raw -o "$S/out/$d.raw"
	refused "convert $d --input-format $(fmt_of "$d")" "$(why_of "$d")" \
		"$AMIFORGE" convert "$S/in/$d" --input-format "$(fmt_of "$d")" --format vmdk \
		-o "$S/out/$d.vmdk"
done
refused "convert raw-named.qcow2 --input-format qcow2" "stated qcow2, but its content is raw" \
	"$AMIFORGE" convert "$S/in/raw-named.qcow2" --input-format qcow2 --format raw \
	-o "$S/out/raw-named.raw"
refused "convert qcow2-inside.raw (detected)" "backing file" \
	"$AMIFORGE" convert "$S/in/qcow2-inside.raw" --format raw -o "$S/out/inside.raw"
# Stated raw: read as raw — the file itself, warned, never its backing file.
"$AMIFORGE" convert "$S/in/qcow2-inside.raw" --input-format raw --format qcow2 \
	-o "$S/out/inside-as-raw.qcow2" >"$S/log/inside.out" 2>"$S/log/inside.err"
check_eq "convert qcow2-inside.raw --input-format raw: read as raw" "$?" 0
check_contains "convert qcow2-inside.raw --input-format raw: warned" \
	"$(cat "$S/log/inside.err")" "stated raw, but its content is a qcow2 image"
check "convert qcow2-inside.raw --input-format raw: the output is the file's bytes" \
	qemu-img compare -q -f raw -F qcow2 "$S/in/qcow2-inside.raw" "$S/out/inside-as-raw.qcow2"
"$AMIFORGE" convert "$S/in/honest.qcow2" --format vmdk -o "$S/out/honest.vmdk" \
	>"$S/log/honest.out" 2>&1
check_eq "convert honest.qcow2 (detected): converted" "$?" 0
"$AMIFORGE" convert "$S/in/raw-named.qcow2" --format qcow2 -o "$S/out/raw-named.qcow2" \
	>"$S/log/rawnamed.out" 2>&1
check_eq "convert raw-named.qcow2 (detected by content, not name): converted as raw" "$?" 0
check "convert: no output file beside the refused ones" \
	test -z "$(ls "$S/out" | grep -v -e '^inside-as-raw.qcow2$' -e '^honest.vmdk$' -e '^raw-named.qcow2$')"

# 2. inspect: refused before any appliance starts.
for d in $EVIL; do
	refused "inspect $d" "$(why_of "$d")" "$AMIFORGE" inspect "$S/in/$d" --json
done
refused "inspect raw-named.qcow2 --format qcow2" "stated qcow2, but its content is raw" \
	"$AMIFORGE" inspect "$S/in/raw-named.qcow2" --format qcow2

# 3. cache fetch and build: a recipe's parent, local.
recipe() {	# NAME PARENT-LINES...
	local f=$S/r/$1.yaml
	shift
	{ printf 'name: t\nversion: 1.0.0\nparent:\n'; printf '  %s\n' "$@"; } >"$f"
	echo "$f"
}
for d in $EVIL; do
	r=$(recipe "local-$d" "path: $S/in/$d")
	refused "cache fetch (local parent) $d" "$(why_of "$d")" "$AMIFORGE" cache fetch "$r"
	refused "cache fetch --format $(fmt_of "$d") $d" "$(why_of "$d")" \
		"$AMIFORGE" cache fetch "$r" --format "$(fmt_of "$d")"
done
r=$(recipe stated-raw-named "path: $S/in/raw-named.qcow2" "format: qcow2")
refused "cache fetch raw-named.qcow2 with parent.format qcow2" \
	"stated qcow2, but its content is raw" "$AMIFORGE" cache fetch "$r"
r=$(recipe inside "path: $S/in/qcow2-inside.raw" "format: raw")
out=$("$AMIFORGE" cache fetch "$r" 2>"$S/log/fetch-inside.err")
check_eq "cache fetch qcow2-inside.raw with parent.format raw: admitted as raw" \
	"$(sed -n 's/^format //p' <<<"$out")" raw
check_contains "cache fetch qcow2-inside.raw with parent.format raw: warned" \
	"$(cat "$S/log/fetch-inside.err")" "stated raw, but its content is a qcow2 image"
# The same file again without the format: its record says raw, but the
# recipe states nothing now, and the record's format is what is used.
r=$(recipe inside-again "path: $S/in/qcow2-inside.raw")
out=$("$AMIFORGE" cache fetch "$r" 2>/dev/null)
check_eq "cache fetch qcow2-inside.raw again: the recorded format (raw), not detected" \
	"$(sed -n 's/^format //p' <<<"$out")" raw
# A record written before admission existed (simulated: a hand-made record
# for the data-file qcow2) is checked again when used.
rec_sha=$(sha256sum "$S/in/data.qcow2" | cut -d' ' -f1)
st=$(stat -c '%d-%i-%s-%Y' "$S/in/data.qcow2")
mt=$(stat -c '%y' "$S/in/data.qcow2" | sed 's/.*\.\([0-9]*\) .*/\1/')
mkdir -p "$AMIFORGE_CACHE_DIR/local"
printf '{"object": "%s", "file_sha256": "%s", "format": "qcow2", "size": %s, "virtual_size": 1048576, "source": "%s"}\n' \
	"$rec_sha" "$rec_sha" "$(stat -c %s "$S/in/data.qcow2")" "$S/in/data.qcow2" \
	>"$AMIFORGE_CACHE_DIR/local/$st.$mt.json"
r=$(recipe old-record "path: $S/in/data.qcow2")
refused "cache fetch data.qcow2 with an old local record saying qcow2" "external data file" \
	"$AMIFORGE" cache fetch "$r"
check "cache fetch data.qcow2 with an old local record: the record was used (no hashing)" \
	test -z "$(grep 'hashing' "$S/log/$n.err")"

# Downloaded parents: verified, then refused; nothing stored or left behind.
python3 "$TOP/tests/fixtures/http-range-server.py" "$S/www" "$S/port" "$S/requests.log" \
	>/dev/null 2>&1 &
SRV=$!
at_exit_kill $SRV
cp "$S/in/data.qcow2" "$S/in/descriptor.img" "$S/www/"
for _ in $(seq 50); do [ -s "$S/port" ] && break; sleep 0.1; done
U=http://127.0.0.1:$(cat "$S/port")
for d in data.qcow2 descriptor.img; do
	r=$(recipe "url-$d" "url: $U/files/$d" "sha256: $(sha256sum "$S/www/$d" | cut -d' ' -f1)")
	refused "cache fetch (downloaded parent) $d" "$(why_of "$d")" "$AMIFORGE" cache fetch "$r"
	check "cache fetch (downloaded parent) $d: it was downloaded" \
		grep -q "/files/$d" "$S/requests.log"
done
check_eq "cache fetch: no refused download stored" \
	"$(find "$AMIFORGE_CACHE_DIR/objects" -type f | wc -l)" 0
check_eq "cache fetch: no refused download left in tmp/" \
	"$(find "$AMIFORGE_CACHE_DIR/tmp" -name '*.partial' | wc -l)" 0
# A ref an older amiforge wrote for a download (object in the cache, format
# qcow2): checked again when used, no download needed to refuse it.
cp "$S/in/backing.qcow2" "$S/www/old.qcow2"
rec_sha=$(sha256sum "$S/www/old.qcow2" | cut -d' ' -f1)
cp "$S/www/old.qcow2" "$AMIFORGE_CACHE_DIR/objects/$rec_sha"
printf '{"object": "%s", "format": "qcow2", "size": %s, "virtual_size": 1048576}\n' "$rec_sha" \
	"$(stat -c %s "$S/www/old.qcow2")" >"$AMIFORGE_CACHE_DIR/refs/sha256-$rec_sha.json"
r=$(recipe old-ref "url: $U/files/old.qcow2" "sha256: $rec_sha")
refused "cache fetch with an old ref saying qcow2 (backing file)" "backing file" \
	"$AMIFORGE" cache fetch "$r"
check "cache fetch with an old ref: refused from the cache, nothing downloaded" \
	test -z "$(grep /files/old.qcow2 "$S/requests.log")"
rm -f "$AMIFORGE_CACHE_DIR/objects/$rec_sha"

# 4. build: refused at its base stage, before any guest (quick).
for d in $EVIL; do
	r=$(recipe "build-$d" "path: $S/in/$d")
	LIMIT=20 refused "build $d" "$(why_of "$d")" \
		"$AMIFORGE" build "$r" --output "$S/builds"
done
LIMIT=20 refused "build raw-named.qcow2 with parent.format qcow2" \
	"stated qcow2, but its content is raw" \
	"$AMIFORGE" build "$S/r/stated-raw-named.yaml" --output "$S/builds"
check "build: no guest work directory, overlay or console log made" \
	test -z "$(find "$S/builds" -name 'disk.qcow2' -o -name 'console*.log' -size +0 | head -1)"
# 5. run: an IMAGE from the command line, refused before booting.
for d in data.qcow2 descriptor.img; do
	LIMIT=20 refused "run $d" "$(why_of "$d")" "$AMIFORGE" run "$S/in/$d" -- true
done

# 6. publish: refused before anything reaches AWS (moto).
if have aws "publish: crafted disks against moto"; then
	. "$TOP/tests/fixtures/aws/lib.sh"
	aws_env "$AMIFORGE_TEST_MOTO_URL"
	bucket=disktrust-$$
	py 's3.create_bucket(Bucket=sys.argv[1], CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})' \
		"$bucket" >/dev/null 2>&1
	snaps() { py 'print(len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]))'; }
	objs() { py 'print(s3.list_objects_v2(Bucket=sys.argv[1]).get("KeyCount", 0))' "$bucket"; }
	before=$(snaps)
	for d in $EVIL; do
		refused "publish --via ebs $d" "$(why_of "$d")" \
			"$AMIFORGE" publish "$S/in/$d" --via ebs --name "dt-$$-$d"
		refused "publish --via import-snapshot $d" "$(why_of "$d")" \
			"$AMIFORGE" publish "$S/in/$d" --via import-snapshot --bucket "$bucket" \
			--name "dt-$$-i-$d"
	done
	refused "publish --via ebs raw-named.qcow2 --format qcow2" \
		"stated qcow2, but its content is raw" \
		"$AMIFORGE" publish "$S/in/raw-named.qcow2" --via ebs --format qcow2 --name "dt-$$-r"
	check_eq "publish: no snapshot started in moto" "$(snaps)" "$before"
	check_eq "publish: no object uploaded to moto" "$(objs)" 0
fi

# 7. The canary is in no file any of this produced (outputs, logs, cache,
#    build directories), only in the host file itself.
hits=$(grep -rl -a --exclude-dir=host -- "$CANARY" "$S" 2>/dev/null)
check_eq "canary: in no output, log, cache or build file" "$hits" ""
check "canary: still in the host file (the search works)" grep -qa -- "$CANARY" "$HOST"
finish
