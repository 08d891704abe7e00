#!/usr/bin/env python3
"""holes_check.py SOURCE FORMAT RAW: exit 0 when RAW (a raw file) has a hole
wherever SOURCE (read as FORMAT) holds no data by `qemu-img map`, else print
the first extent of RAW that is allocated there and exit 1."""
import json
import os
import subprocess
import sys


def main():
    src, fmt, raw = sys.argv[1:4]
    out = subprocess.run(["qemu-img", "map", "--output=json", "-f", fmt, "--", src],
                         check=True, capture_output=True, text=True).stdout
    extents = json.loads(out)
    if not extents:
        print("no extents in the source's map")
        return 1
    fd = os.open(raw, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        holes = 0
        for e in extents:
            if e["data"]:
                continue
            start, end = e["start"], min(e["start"] + e["length"], size)
            if start >= end:
                continue
            holes += 1
            try:
                d = os.lseek(fd, start, os.SEEK_DATA)
            except OSError:           # ENXIO: nothing but holes to the end
                continue
            if d < end:
                print(f"data at {d} in the source's hole [{start}, {end})")
                return 1
        if not holes:
            print("the source has no hole to check")
            return 1
    finally:
        os.close(fd)
    return 0


sys.exit(main())
