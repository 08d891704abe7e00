#!/usr/bin/env python3
"""Check one conformance document's run against the expectations in its
leading comment lines (see tests/component/README). Prints PASS/FAIL lines.

usage: check-run.py DOC SCRATCH EXIT_STATUS DETAILED_JSON_OR_- STDERR_FILE
"""
import json
import os
import stat
import sys

doc, scratch, rc, detailed_path, stderr_path = sys.argv[1:6]
stderr_text = open(stderr_path).read()
name = "component/" + os.path.basename(doc)[:-5]
work = os.path.join(scratch, "work")
fails = 0


def report(ok, what, detail=""):
    global fails
    if ok:
        print(f"PASS: {name}: {what}")
    else:
        fails += 1
        print(f"FAIL: {name}: {what}: {detail}")


def subst(s):
    s = s.replace("{{BaseUrl}}", os.environ.get("BASE_URL", "{{BaseUrl}}"))
    return s.replace("{{S}}", work).replace("\\n", "\n")


def walk(j, path):
    for part in path.split("."):
        if isinstance(j, list):
            j = j[int(part)]
        elif isinstance(j, dict):
            j = j[part]
        else:
            raise KeyError(part)
    return j


detailed = None
if detailed_path != "-" and os.path.exists(detailed_path):
    with open(detailed_path) as f:
        detailed = json.load(f)

with open(doc) as f:
    lines = [l.rstrip("\n") for l in f]

for line in lines:
    if not line.startswith("# "):
        break
    words = line[2:].split(" ", 1)
    kind, rest = words[0], words[1] if len(words) > 1 else ""
    if rest.startswith("= "):
        lhs, want = "", rest[2:]
    else:
        lhs, _, want = rest.partition(" = ")
    want = subst(want)
    try:
        if kind == "exit":
            report(rc == want, f"exit status {want}", f"got {rc}")
        elif kind in ("doc", "step"):
            if detailed is None:
                report(False, rest, "no detailedoutput.json")
                continue
            if kind == "doc":
                got = walk(detailed, lhs)
            else:
                where, _, path = lhs.partition(" ")
                phase, _, step = where.partition("/")
                d = detailed["documents"][0]
                ph = [p for p in d["phases"] if p["name"] == phase][0]
                st = [s for s in ph["steps"] if s["name"] == step]
                if path == "absent":
                    report(len(st) == 0, f"{where} did not run", "it ran")
                    continue
                got = walk(st[0], path)
            report(str(got) == want, f"{lhs} = {want!r}", f"got {str(got)!r}")
        elif kind == "file":
            p = os.path.join(work, lhs)
            got = open(p, "rb").read().decode("utf-8", "replace") if os.path.exists(p) else None
            report(got == want, f"file {lhs}", f"got {got!r}, want {want!r}")
        elif kind == "bytes":
            p = os.path.join(work, lhs)
            got = open(p, "rb").read().hex() if os.path.exists(p) else None
            report(got == want, f"bytes {lhs}", f"got {got}, want {want}")
        elif kind == "exists":
            report(os.path.lexists(os.path.join(work, lhs)), f"{lhs} exists", "missing")
        elif kind == "missing":
            report(not os.path.lexists(os.path.join(work, lhs)), f"{lhs} missing", "exists")
        elif kind == "mode":
            m = stat.S_IMODE(os.lstat(os.path.join(work, lhs)).st_mode)
            report(oct(m)[2:] == want, f"mode {lhs} = {want}", oct(m)[2:])
        elif kind == "link":
            got = os.readlink(os.path.join(work, lhs))
            report(got == want, f"link {lhs}", f"got {got!r}")
        elif kind == "stderr":
            report(rest in stderr_text, f"stderr has {rest!r}", stderr_text[-300:])
        elif kind in ("param", "phases", "setup"):
            pass
        else:
            report(False, line, "unknown expectation")
    except (KeyError, IndexError, ValueError, OSError) as e:
        report(False, rest, f"{type(e).__name__}: {e}")

sys.exit(1 if fails else 0)
