"""benchlock.py: holds /tmp/barrage-bench.lock for a whole comparison, the
flock(1) lock everyone benchmarking on this machine takes, so two benchmarks
never share the CPUs.

If an ancestor already holds it (`flock /tmp/barrage-bench.lock
bench/peers/compare`), taking it again would wait for ourselves forever, so
then we run under the ancestor's hold instead."""

import fcntl
import os
import sys

PATH = "/tmp/barrage-bench.lock"
_held = []  # the open descriptor that keeps our lock, for as long as we run


def _ancestors():
    pids, pid = set(), os.getppid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            break
        pid = int(stat[stat.rfind(")") + 2:].split()[1])
    return pids


def _holders(path):
    """Pids holding a lock on `path` according to /proc/locks."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    out = set()
    try:
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                # "1: FLOCK ADVISORY WRITE 12582 fe:00:10954134 0 EOF"
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == f"{dev}:{st.st_ino}":
                    out.add(int(parts[4]))
    except OSError:
        pass
    return out


def acquire(path=PATH, log=print):
    """Blocks until the lock is ours (or an ancestor's). It is released when
    the process exits."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _held.append(fd)
        return
    except BlockingIOError:
        pass
    if _holders(path) & _ancestors():
        os.close(fd)
        log(f"compare: {path} is held by a parent process; running under its hold")
        return
    log(f"compare: waiting for {path} (someone else is benchmarking)")
    sys.stdout.flush()
    fcntl.flock(fd, fcntl.LOCK_EX)
    _held.append(fd)
