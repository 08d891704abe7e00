#!/usr/bin/env python3
"""Start a daemon under a process that reaps its orphans at once.

    tests/lib/subreaper.py DAEMON ARGS...      (e.g. libvirtd -d)

Exits with DAEMON's own status once it returns (a daemon that forks away,
as `libvirtd -d` does); a background process, a child subreaper
(prctl PR_SET_CHILD_SUBREAPER), stays behind and waits for every process
that DAEMON leaves orphaned, until none is left.

Why: libvirt starts QEMU as an orphan, and when a guest stops it waits
for that QEMU to be gone from the process table before it reports the
domain stopped (virProcessKillPainfully polls kill(pid, 0)). Under systemd
init reaps it at once. On the project's machines, with no systemd, PID 1
reaps orphans 1.2-1.7 s late, and every guest's stop took that much longer
(1.4-2 s of a rebuild's power-off, measured: libvirtd's debug log). The
tests (tests/lib/services.sh) and the benchmarks (bench/run) start libvirtd
through this, so this host measures what a systemd host would. amiforge
itself does not need it: users' libvirtd is theirs.
"""
import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: subreaper.py DAEMON [ARGS...]\n")
        return 2
    r, w = os.pipe()
    if os.fork() != 0:
        os.close(w)
        data = os.read(r, 16)
        return int(data) if data.strip().isdigit() else 1
    # The reaper: its own session, no terminal, nothing of the caller's
    # output held open (a test runner's pipe would never see its end).
    os.close(r)
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    pid = os.fork()
    if pid == 0:
        os.close(w)
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        except OSError as e:
            sys.stderr.write("subreaper.py: %s: %s\n" % (sys.argv[1], e.strerror))
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.write(w, str(code if code >= 0 else 128 - code).encode())
    os.close(w)
    if not subreaper:
        return 0
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue


if __name__ == "__main__":
    sys.exit(main())
