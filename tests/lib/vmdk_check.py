#!/usr/bin/env python3
"""Walk a streamOptimized VMDK as VM Import and VMware read it, independently
of qemu: header, descriptor, every grain marker (zlib stream inflating to a
whole grain), grain tables and directory pointing at what they should, the
footer and the end-of-stream marker. Prints one summary line
    capacity=BYTES grains=N gts=N size=BYTES
and exits 1 with the first problem found.
    vmdk_check.py FILE
"""
import struct
import sys
import zlib

S = 512


def die(msg):
    print("vmdk_check: " + msg)
    sys.exit(1)


data = open(sys.argv[1], "rb").read()
if len(data) % S:
    die("size %d is not a whole number of sectors" % len(data))


def hdr(off):
    h = data[off:off + S]
    if h[:4] != b"KDMV":
        die("no KDMV magic at %d" % off)
    (ver, flags, cap, grain, doff, dsize, ngte, rgd, gd, over) = struct.unpack_from(
        "<IIQQQQIQQQ", h, 4)
    if h[73:77] != b"\n \r\n":
        die("newline check bytes wrong")
    comp = struct.unpack_from("<H", h, 77)[0]
    return ver, flags, cap, grain, doff, dsize, ngte, rgd, gd, over, comp


ver, flags, cap, grain, doff, dsize, ngte, rgd, gd, over, comp = hdr(0)
if ver != 3 or flags != 0x30001 or comp != 1:
    die("header version %d flags %#x compress %d" % (ver, flags, comp))
if grain != 128 or ngte != 512 or gd != 0xFFFFFFFFFFFFFFFF or doff != 1:
    die("header grain %d gtes %d gd %#x desc %d" % (grain, ngte, gd, doff))
desc = data[doff * S:(doff + dsize) * S].rstrip(b"\0").decode()
if 'createType="streamOptimized"' not in desc:
    die("descriptor lacks createType streamOptimized")
if "RW %d SPARSE" % cap not in desc:
    die("descriptor extent line does not give the capacity")
# footer marker, footer, EOS at the end
end = len(data)
fm = data[end - 3 * S:end - 2 * S]
if struct.unpack_from("<QII", fm) != (1, 0, 3):
    die("footer marker wrong: %r" % (struct.unpack_from("<QII", fm),))
fver, fflags, fcap, _, _, _, _, _, fgd, _, _ = hdr(end - 2 * S)
if fcap != cap or fgd in (0, 0xFFFFFFFFFFFFFFFF):
    die("footer capacity %d gd %d" % (fcap, fgd))
if data[end - S:] != b"\0" * S:
    die("no end-of-stream marker")
ngts = (cap + grain * ngte - 1) // (grain * ngte)
gdm = data[(fgd - 1) * S:fgd * S]
if struct.unpack_from("<QII", gdm) != ((ngts * 4 + S - 1) // S, 0, 2):
    die("grain directory marker wrong")
gdir = struct.unpack_from("<%dI" % ngts, data, fgd * S)
grains = 0
for t, gts in enumerate(gdir):
    if not gts:
        continue
    if struct.unpack_from("<QII", data, (gts - 1) * S) != (4, 0, 1):
        die("grain table %d: marker wrong" % t)
    for i, g in enumerate(struct.unpack_from("<512I", data, gts * S)):
        if not g:
            continue
        lba, size = struct.unpack_from("<QI", data, g * S)
        want = (t * 512 + i) * grain
        if lba != want:
            die("grain at sector %d: lba %d, want %d" % (g, lba, want))
        try:
            raw = zlib.decompress(data[g * S + 12:g * S + 12 + size])
        except zlib.error as e:
            die("grain lba %d: %s" % (lba, e))
        if len(raw) != grain * S:
            die("grain lba %d inflates to %d bytes" % (lba, len(raw)))
        grains += 1
print("capacity=%d grains=%d gts=%d size=%d" % (cap * S, grains,
      sum(1 for x in gdir if x), len(data)))
