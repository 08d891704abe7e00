#!/bin/bash
# suite: guests  (make check-guests: two appliance launches, ~45 s; make check stays under 30 min)
# The libguestfs appliance amiforge boots (builder/disk/appliance-pvh.h): a
# fixed appliance whose kernel is the uncompressed vmlinux of libguestfs's
# own, made once per libguestfs cache directory in a private directory there,
# hard links to supermin's initrd and root; reused by the next launch; a
# fixed appliance that cannot boot (its kernel replaced by junk) is given up
# for libguestfs's own, the inspection still passes, and it is removed. A scratch cache
# directory: the shared one is left alone.
. "$(dirname "$0")/../lib/common.sh"

require guestfs appliance-pvh
F=$(fixture_image) || { fail "appliance-pvh: fixture image"; exit 1; }
S=$(scratch)
export LIBGUESTFS_BACKEND=direct
export LIBGUESTFS_CACHEDIR=$S/cache
mkdir -m 0755 "$S/cache"
base=$S/cache/.amiforge-appliance-$(id -u)

case $(uname -m) in
x86_64) ;;
*)
	skip "appliance-pvh: PVH boot is for x86_64 hosts"
	exit 0
	;;
esac

# os NAME: the os.detected check's status in an inspect --json report.
os() {
	python3 -c 'import json,sys
r=json.load(sys.stdin)
print(next((c["status"] for c in r["checks"] if c["id"]=="os.detected"), "absent"))' <"$1"
}

# 1. Made and booted.
"$AMIFORGE" --verbose inspect --json --input-format qcow2 "$F" >"$S/1.json" 2>"$S/1.err"
check_eq "appliance-pvh: inspect exits 0" "$?" 0
check_eq "appliance-pvh: the OS found" "$(os "$S/1.json")" pass
check_contains "appliance-pvh: the fixed appliance made" "$(cat "$S/1.err")" "appliance: made $base/fixed-"
fixed=$(ls -d "$base"/fixed-* 2>/dev/null)
check_eq "appliance-pvh: one fixed directory" "$(echo "$fixed" | grep -c fixed-)" 1
check_eq "appliance-pvh: private directory" "$(stat -c %a "$base")" 700
check_eq "appliance-pvh: README.fixed" "$(test -f "$fixed/README.fixed" && echo yes)" yes
check_eq "appliance-pvh: the kernel is an ELF" "$(head -c 4 "$fixed/kernel" | od -An -c | tr -d ' ')" '177ELF'
check_eq "appliance-pvh: root is supermin's file" "$(stat -c %i "$fixed/root")" \
	"$(stat -c %i "$base/appliance.d/root")"
check_eq "appliance-pvh: initrd is supermin's file" "$(stat -c %i "$fixed/initrd")" \
	"$(stat -c %i "$base/appliance.d/initrd")"
grep -v '^appliance: \|^starting the libguestfs' "$S/1.err" | grep -i 'warn\|error' >"$S/1.noise"
check_eq "appliance-pvh: nothing warned" "$(cat "$S/1.noise")" ""

# 2. Reused, and a fixed appliance that cannot boot is given up for
#    libguestfs's own: the inspection still runs.
printf 'not a kernel\n' >"$fixed/kernel"
"$AMIFORGE" --verbose inspect --json --input-format qcow2 "$F" >"$S/2.json" 2>"$S/2.err"
check_eq "appliance-pvh: broken fixed appliance: inspect exits 0" "$?" 0
check_eq "appliance-pvh: broken fixed appliance: the OS found" "$(os "$S/2.json")" pass
check_contains "appliance-pvh: broken fixed appliance: said at debug level" "$(cat "$S/2.err")" \
	"appliance: $fixed did not launch"
check_eq "appliance-pvh: the existing fixed directory reused, not made again" \
	"$(grep -c 'appliance: made' "$S/2.err")" 0
check_eq "appliance-pvh: the broken fixed directory removed (the next launch makes it)" \
	"$(ls -d "$base"/fixed-* 2>/dev/null)" ""
finish
