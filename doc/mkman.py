#!/usr/bin/env python3
"""Write amiforge(1) from the program's own help texts, so the manual page
says exactly what `amiforge help COMMAND` says.

    doc/mkman.py ./amiforge > build/amiforge.1
"""
import re
import subprocess
import sys

amiforge = sys.argv[1]


def helptext(*args):
    p = subprocess.run([amiforge, *args], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        sys.exit(f"mkman: {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def esc(line):
    """Roff-escape one line of plain text."""
    line = line.replace("\\", "\\e")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line.replace("-", "\\-")


def block(text):
    """Help text as literal lines (no filling), which keeps its layout."""
    out = [".nf"]
    out += [esc(l) if l.strip() else "" for l in text.rstrip("\n").split("\n")]
    out.append(".fi")
    return "\n".join(out)


top = helptext("help")
commands = []
for line in top.split("\n"):
    m = re.match(r"^  ([a-z][a-z-]*) +(.*)$", line)
    if m:
        commands.append((m.group(1), m.group(2)))
if not commands:
    sys.exit("mkman: no commands found in 'amiforge help'")
version = helptext("version").split()[-1]

print(f'.TH AMIFORGE 1 "" "amiforge {version}" "User Commands"')
print(".SH NAME")
print("amiforge \\- build AWS machine images on your own machine")
print(".SH SYNOPSIS")
print(".B amiforge")
print("[\\fB\\-\\-verbose\\fR|\\fB\\-\\-quiet\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]")
print(".SH DESCRIPTION")
print("amiforge is EC2 Image Builder run locally: a base cloud image boots in a")
print("local QEMU guest (through libvirt or QEMU directly), an agent inside runs")
print("EC2 Image Builder / AWSTOE component documents unchanged, and the disk is")
print("validated offline with libguestfs, converted, uploaded and registered as an AMI.")
print(".SH COMMANDS")
for name, summary in commands:
    print(f".TP\n.B {name}\n{esc(summary)}")
for name, _ in commands:
    if name in ("help", "version"):
        continue
    print(f'.SH "AMIFORGE {name.upper()}"')
    text = helptext(name, "--help")
    print(block(text))
    # Subcommands (the command table, 'amiforge help --commands NAME') whose
    # help says more than the command's own.
    for sub in helptext("help", "--commands", name).split():
        subtext = helptext(name, sub, "--help")
        if subtext != text:
            print(".PP")
            print(block(subtext))
print(".SH EXIT STATUS")
print("Every command:")
print(".TP\n.B 0\nsuccess")
print(".TP\n.B 1\nthe work failed (a step, a check, an upload, AWS refused)")
print(".TP\n.B 2\nbad usage or input: an unknown option (one line, with the likeliest")
print("option meant), a bad recipe, pipeline or document (reported as")
print(".IR file : line : col ),")
print("a missing file")
print(".PP")
print(".B run")
print("and")
print(".B attach")
print("exit with the command's own status, 124 when its")
print(".B \\-\\-timeout")
print("expired and 125 when amiforge itself failed.")
print(".SH ENVIRONMENT")
print(".TP\n.B AMIFORGE_CACHE_DIR\nthe base image and checkpoint cache")
print(".TP\n.BR AWS_PROFILE ", " AWS_REGION ", " AWS_ENDPOINT_URL_* \nAWS credentials, region and endpoints, resolved as the AWS CLI does")
print(".SH FILES")
print(".TP\n.I builds/NAME\\-VERSION\\-TIME/\none directory per build: journal, console.log, toe/, output/, manifest.json")
print(".SH SEE ALSO")
print(".BR virsh (1),")
print(".BR qemu\\-img (1),")
print(".BR guestfish (1)")
