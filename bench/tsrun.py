#!/usr/bin/env python3
"""Run a command and observe it from the host, for the benchmarks (not a test).

    tsrun.py OUT [--console GLOB] [--rss] -- COMMAND ARGS...

Writes OUT, one record a line, tab-separated, times in seconds since just
before the command was started:
    start   EPOCH         wall clock (time.time()) when T was 0
    line    T   TEXT      each line of the command's stdout as it arrived
    init    T   PATH  UP  first sight of the guest kernel starting userspace
                          ("Run /init" / "Run /sbin/init") in a console log
                          matching GLOB (polled every 50 ms); UP, the guest's
                          own uptime on that line (printk's stamp)
    rss     KIB           peak resident set of the command's own processes:
                          the processes of its tree running the command's
                          own executable (so amiforge itself, or packer and
                          its plugin processes; never QEMU, qemu-img or other
                          helpers), the sum of their VmHWM (kernel-kept peak
                          RSS: exact for one process, double-counts shared
                          pages for several)
    pss     KIB           the largest sum of Pss (/proc/PID/smaps_rollup:
                          shared pages split between their users) over the
                          same processes, sampled every 100 ms
    cpu     SECONDS       user + system CPU time of the command and of the
                          children it waited for (wait4's rusage: amiforge
                          with its qemu-img helpers; aws-cli's python)
    exit    T   STATUS
The command's stderr is inherited. Exits with the command's status.
"""
import glob
import os
import re
import subprocess
import sys
import threading
import time

INIT_RE = re.compile(rb"\[\s*([0-9]+\.[0-9]+)\] Run (/init|/sbin/init) as init process")


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                s = f.read()
            ppid = int(s[s.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for ln in f:
                if ln.startswith("Pss:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def exe_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def main():
    args = sys.argv[1:]
    if len(args) < 3 or "--" not in args:
        sys.exit(__doc__)
    out_path = args[0]
    sep = args.index("--")
    opts, cmd = args[1:sep], args[sep + 1:]
    console_glob = None
    want_rss = False
    i = 0
    while i < len(opts):
        if opts[i] == "--console":
            console_glob = opts[i + 1]
            i += 2
        elif opts[i] == "--rss":
            want_rss = True
            i += 1
        else:
            sys.exit(f"tsrun: unknown option {opts[i]}")

    out = open(out_path, "w", buffering=1)
    lock = threading.Lock()

    def rec(*fields):
        with lock:
            out.write("\t".join(str(f) for f in fields) + "\n")

    done = threading.Event()
    rec("start", f"{time.time():.3f}")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    el = lambda: time.monotonic() - t0

    def watch_console():
        while not done.is_set():
            for path in glob.glob(console_glob):
                try:
                    with open(path, "rb") as f:
                        m = INIT_RE.search(f.read())
                        if m:
                            rec("init", f"{el():.3f}", path, m.group(1).decode())
                            return
                except OSError:
                    pass
            done.wait(0.05)

    peak = {}
    pss_peak = [0]

    def watch_rss():
        exe = None
        while not done.is_set():
            if exe is None:
                exe = exe_of(p.pid)
                # python3 -> python3.11 etc.: compare resolved paths
                exe = os.path.realpath(exe) if exe else None
            kids = children_map()
            stack = [p.pid]
            pss = 0
            while stack:
                pid = stack.pop()
                stack.extend(kids.get(pid, []))
                e = exe_of(pid)
                if exe and e and os.path.realpath(e) == exe:
                    h = hwm_kib(pid)
                    if h:
                        peak[pid] = max(peak.get(pid, 0), h)
                    pss += pss_kib(pid)
            pss_peak[0] = max(pss_peak[0], pss)
            done.wait(0.1)

    threads = []
    if console_glob:
        threads.append(threading.Thread(target=watch_console, daemon=True))
    if want_rss:
        threads.append(threading.Thread(target=watch_rss, daemon=True))
    for t in threads:
        t.start()
    for raw in p.stdout:
        rec("line", f"{el():.3f}", raw.decode("utf-8", "replace").rstrip("\n"))
    _, wst, ru = os.wait4(p.pid, 0)
    status = os.waitstatus_to_exitcode(wst)
    p.returncode = status
    t_end = el()
    done.set()
    for t in threads:
        t.join(timeout=2)
    if want_rss:
        rec("rss", sum(peak.values()))
        rec("pss", pss_peak[0])
    rec("cpu", f"{ru.ru_utime + ru.ru_stime:.3f}")
    rec("exit", f"{t_end:.3f}", status)
    sys.exit(status)


if __name__ == "__main__":
    main()
